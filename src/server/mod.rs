//! Wires the modules together: the running [`Broker`], its start-up (`startup`) and its
//! graceful shutdown (`shutdown`).

mod shutdown;
mod startup;

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
    pub port: u16,
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
}
