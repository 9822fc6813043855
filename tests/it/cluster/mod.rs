//! Several brokers and a real ZooKeeper: forming, failing over, the controller's operations,
//! replication, transactions across brokers, a secured cluster, and the ZooKeeper store itself.

mod acls;
mod controller_ops;
mod delegation_tokens;
mod lifecycle;
mod log_dirs;
mod quotas;
mod replication;
mod scram_credentials;
mod security;
mod transactions;
mod zk_store;
