//! One broker in this process (or one broker process) over Kafka's wire protocol, and its
//! `server.properties`.

mod compaction;
mod configs;
mod create_topics;
mod delegation_tokens;
mod delete_records;
mod down_conversion;
mod fetch_cold;
mod fetch_sessions;
mod fetch_under_appends;
mod groups;
mod log_dirs;
mod producers;
mod quotas;
mod routes;
mod scram_credentials;
mod server_properties;
mod transactions;
mod wire;
