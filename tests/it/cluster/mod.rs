//! Several brokers and a real ZooKeeper: forming, failing over, the controller's operations,
//! replication, transactions across brokers, a secured cluster, and the ZooKeeper store itself.

mod acks;
mod acls;
mod alter_partition;
mod controller_ops;
mod create_topics;
mod delegation_tokens;
mod follower_fetch;
mod lifecycle;
mod log_dirs;
mod migration;
mod mixed_ibp;
mod quotas;
mod replication;
mod scram_credentials;
mod security;
mod transactions;
mod zk_down;
mod zk_store;
