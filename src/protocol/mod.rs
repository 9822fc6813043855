//! Kafka wire-protocol rules that both sides of a connection follow: what the broker's request
//! handlers and odradek's own clients (the follower fetcher, the tools) must agree on. A leaf:
//! it imports no other module of odradek.

pub mod fetch_metadata;
