use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the log layer. The `api` layer maps these to Kafka error codes
/// (`api::errors::KafkaCode`); nothing above `log` needs to know how a batch was judged.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("corrupt record batch: {0}")]
    CorruptMessage(String),
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    #[error("record batch of {size} bytes exceeds max.message.bytes ({max})")]
    MessageTooLarge { size: usize, max: usize },
    #[error("the in-sync replicas ({in_sync}) are fewer than min.insync.replicas ({min})")]
    NotEnoughReplicas { in_sync: usize, min: i32 },
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    #[error("unsupported compression codec {0}")]
    UnsupportedCompression(i16),
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    #[error("transaction coordinator fenced: {0}")]
    TransactionCoordinatorFenced(String),
    #[error("malformed checkpoint file {path}: {reason}")]
    BadCheckpoint { path: PathBuf, reason: String },
    #[error("log directory {path}: {reason}")]
    BadLogDir { path: PathBuf, reason: String },
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl LogError {
    /// The disk failed us, not the records: Kafka's KAFKA_STORAGE_ERROR (a client may retry
    /// elsewhere, a coordinator answers NOT_COORDINATOR).
    pub fn is_storage(&self) -> bool {
        matches!(
            self,
            LogError::BadCheckpoint { .. } | LogError::BadLogDir { .. } | LogError::Io { .. }
        )
    }

    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        LogError::Io {
            path: path.into(),
            source: super::descriptors::explain_out_of_descriptors(source),
        }
    }
}

pub type Result<T> = std::result::Result<T, LogError>;

/// Attaches a path to an `io::Error`, since a bare "No such file" is useless in a broker log.
pub trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| LogError::io(path, e))
    }
}
