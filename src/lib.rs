//! odradek: a broker that speaks Apache Kafka's protocol, stores data in Kafka's on-disk format
//! and keeps metadata in ZooKeeper's znode layout, as Kafka does.
//!
//! # Layout
//!
//! The modules form layers; each uses only the ones below it (`tests/it/layering.rs` checks
//! this, `ARCHITECTURE.md` explains it):
//!
//! - [`tools`]: the bundled client tools (the binary, `main.rs`, sits above them);
//! - [`server`]: wires the rest together, start-up and shutdown;
//! - [`network`]: listeners and connections;
//! - [`api`]: request handlers, routed from one table ([`api::ROUTES`]);
//! - coordinators: [`txn`], [`group`], [`controller`];
//! - [`replica`]: the partitions this broker hosts;
//! - [`metadata`]: the znode store and the metadata cache;
//! - [`log`]: partition logs on disk;
//! - [`config`]: broker and topic configs;
//! - connections to other brokers: [`client`]; client quotas, which the API layer, the
//!   connections and the config listener share: [`quota`]; and the authentication both ends
//!   use: [`security`];
//! - leaves anyone may use: [`protocol`], [`metrics`], [`alloc`], [`logging`].

pub mod alloc;
pub mod api;
pub mod client;
pub mod config;
pub mod controller;
pub mod group;
pub mod log;
pub mod logging;
pub mod metadata;
pub mod metrics;
pub mod network;
pub mod protocol;
pub mod quota;
pub mod replica;
pub mod security;
pub mod server;
pub mod tools;
pub mod txn;
