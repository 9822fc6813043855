//! `odradek import-zk-tree`: seeds the embedded metadata store of a log directory from a
//! ZooKeeper tree dump (the JSON `odradek metadata-dump` prints), so that a broker without
//! ZooKeeper can serve a data directory an Apache Kafka broker wrote.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// `odradek import-zk-tree`'s arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The dump: `{"/brokers/topics/t": "{...}", ...}`.
    tree: PathBuf,
    /// The first entry of the broker's `log.dirs`.
    log_dir: PathBuf,
}

impl Args {
    /// Imports the dump and says how many znodes it held; any error names the dump file.
    pub fn run(self) -> ExitCode {
        let parsed = std::fs::read_to_string(&self.tree)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                serde_json::from_str::<BTreeMap<String, Option<String>>>(&t)
                    .map_err(|e| e.to_string())
            });
        match parsed.map(|t| {
            crate::metadata::embedded::import_tree(&self.log_dir, &t).map_err(|e| e.to_string())
        }) {
            Ok(Ok(n)) => {
                println!("imported {n} znodes into {}", self.log_dir.display());
                ExitCode::SUCCESS
            }
            Ok(Err(e)) | Err(e) => {
                eprintln!("odradek: {}: {e}", self.tree.display());
                ExitCode::FAILURE
            }
        }
    }
}
