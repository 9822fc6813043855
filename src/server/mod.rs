//! Wires the modules together: the running [`Broker`], its start-up (`startup`) and its
//! graceful shutdown (`shutdown`).

mod shutdown;
mod startup;

pub use startup::apply_open_file_limit;

use std::sync::Arc;

use tokio::sync::watch;

use crate::api::Api;
use crate::controller::Controller;
use crate::log::LogManager;
use crate::metadata::MetadataStore;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("log directories: {0}")]
    Log(#[from] crate::log::LogError),
    #[error("metadata: {0}")]
    Store(#[from] crate::metadata::StoreError),
    #[error("controller: {0}")]
    Controller(#[from] crate::controller::ControllerError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
}

/// A running broker; `shutdown` stops it cleanly.
pub struct Broker {
    /// The port of the first listener (most brokers have one).
    pub port: u16,
    /// Every listener's name and bound port.
    pub ports: Vec<(String, u16)>,
    pub metrics_port: u16,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    logs: Arc<LogManager>,
    controller: Arc<Controller>,
    store: Arc<dyn MetadataStore>,
    broker_id: i32,
    api: Arc<Api>,
}

impl Broker {
    pub fn api(&self) -> &Arc<Api> {
        &self.api
    }

    /// The bound port of listener `name`.
    pub fn port_of(&self, name: &str) -> Option<u16> {
        self.ports.iter().find(|(n, _)| n == name).map(|(_, p)| *p)
    }
}
