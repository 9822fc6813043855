//! Partition logs in Apache Kafka's on-disk format (Kafka's documentation, "Message Format"),
//! checked against the data directory Kafka 2.4.1 wrote in `tests/fixtures/kafka-2.4.1-single`.

mod aborted_txns;
pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod compression;
pub mod descriptors;
pub mod down_convert;
pub mod error;
mod flush;
pub mod handle;
pub mod index;
mod leader_epoch;
mod loader;
pub mod log_dirs;
pub mod manager;
mod page_cache;
pub mod partition;
pub mod producer_state;
pub mod records;
mod retention;
pub mod segment;
pub mod tasks;
mod timestamp_lookup;
mod truncation;
pub mod txn_index;
pub mod validator;

pub use error::{LogError, Result};
pub use handle::LogHandle;
pub use manager::{LogManager, TopicPartition};
pub use partition::{AppendInfo, LoadParams, PartitionLog, ReadResult, ReadSnapshot};
pub use segment::FileRegion;
