//! Several brokers and a real ZooKeeper: forming, failing over, the controller's operations,
//! replication, transactions across brokers, and the ZooKeeper store itself.

mod controller_ops;
mod lifecycle;
mod replication;
mod scram_credentials;
mod transactions;
mod zk_store;
