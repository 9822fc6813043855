//! Cluster metadata: the znode store (embedded or ZooKeeper), Kafka's znode formats, and the
//! broker's cache of what the controller told it.

pub mod acls;
pub mod cache;
pub mod delegation_tokens;
pub mod embedded;
pub mod notifications;
pub mod registration;
pub mod store;
pub mod zk;
pub mod znodes;

pub use cache::MetadataCache;
pub use store::{CreateMode, MetadataStore, StoreError};
