//! Other implementations against ours: the Java, Kafka 2.4.1 and KafkaJS clients (also over
//! secured listeners), and a data directory Kafka 2.4.1 wrote, served by our broker.

mod acls;
mod admin;
mod authorization;
mod delegation_tokens;
mod idempotence;
mod java;
mod java_transactions;
mod kafka241;
mod kafka_data_dir;
mod kafkajs;
mod log_dirs;
mod quotas;
mod security;
