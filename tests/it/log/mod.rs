//! Partition logs on disk, without a broker: appends, recovery, retention, compaction,
//! producer and transaction state, and the data directory Kafka 2.4.1 wrote.

mod append;
mod compaction;
mod descriptors;
mod fixture;
mod flush_and_tasks;
mod group_records_fixture;
mod kafka_reads_ours;
mod producer_state;
mod recovery;
mod retention;
mod transactions;
