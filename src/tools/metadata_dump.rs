//! `odradek metadata-dump`: the whole znode tree, from ZooKeeper or from the embedded store of
//! a data directory, as one JSON object `{"<path>": <data as a string, or null>}` (the shape of
//! a ZooKeeper tree dump, which `odradek import-zk-tree` reads back).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::metadata::embedded::{EmbeddedStore, TREE_FILE};
use crate::metadata::store::{MetadataStore, StoreError, StoreResult};
use crate::metadata::zk::ZkStore;

/// Where the tree is read from.
pub enum Source<'a> {
    /// `zookeeper.connect`, chroot included.
    ZooKeeper {
        connect: &'a str,
        connection_timeout: Duration,
    },
    /// The directory holding the embedded store: the first entry of the broker's `log.dirs`.
    Embedded { data_dir: &'a Path },
}

/// Kafka's default `zookeeper.session.timeout.ms`; the dump closes its session when done.
const SESSION_TIMEOUT: Duration = Duration::from_secs(18);

/// Every node under `/` with its data. Data that is not UTF-8 (Kafka writes none) is shown with
/// replacement characters rather than failing the whole dump. Nodes deleted while the tree is
/// walked are left out.
pub async fn read_tree(store: &dyn MetadataStore) -> StoreResult<BTreeMap<String, Option<String>>> {
    let mut tree = BTreeMap::new();
    let mut pending = vec!["/".to_string()];
    while let Some(path) = pending.pop() {
        let Some((data, _)) = store.get(&path).await? else {
            continue;
        };
        for child in store.children(&path).await?.unwrap_or_default() {
            pending.push(if path == "/" {
                format!("/{child}")
            } else {
                format!("{path}/{child}")
            });
        }
        tree.insert(path, data.map(|d| String::from_utf8_lossy(&d).into_owned()));
    }
    Ok(tree)
}

/// Reads the tree from `source` and returns it as pretty-printed JSON.
pub async fn dump(source: Source<'_>) -> StoreResult<String> {
    let tree = match source {
        Source::ZooKeeper {
            connect,
            connection_timeout,
        } => {
            let store = ZkStore::connect(connect, SESSION_TIMEOUT, connection_timeout).await?;
            let tree = read_tree(&store).await;
            // Ends the session now rather than when it times out.
            let _ = store.close().await;
            tree?
        }
        Source::Embedded { data_dir } => {
            // Opening a directory without a tree would show an empty one: say what is missing.
            let file = data_dir.join(TREE_FILE);
            if !file.is_file() {
                return Err(StoreError::Unavailable(format!(
                    "{} not found: --data-dir must be the first log.dirs entry of a broker \
                     running without zookeeper.connect",
                    file.display()
                )));
            }
            read_tree(&EmbeddedStore::open_read_only(data_dir)?).await?
        }
    };
    let mut json = serde_json::to_string_pretty(&tree)
        .map_err(|e| StoreError::Unavailable(format!("cannot encode the tree: {e}")))?;
    json.push('\n');
    Ok(json)
}

/// `odradek metadata-dump`'s flags.
#[derive(clap::Args)]
pub struct Args {
    /// Read this ZooKeeper, given as `zookeeper.connect` is: `host:port[,host:port...][/chroot]`.
    #[arg(long, value_name = "CONNECT", conflicts_with = "data_dir")]
    zookeeper: Option<String>,
    /// Read the embedded store (`odradek-metadata.json`) of a broker running without
    /// `zookeeper.connect`: the first entry of its `log.dirs`. Required without --zookeeper.
    #[arg(long, value_name = "DIR", required_unless_present = "zookeeper")]
    data_dir: Option<std::path::PathBuf>,
    /// How long to wait for a ZooKeeper session and each answer.
    #[arg(long, value_name = "MS", default_value_t = 18_000)]
    zookeeper_connection_timeout_ms: u64,
}

impl Args {
    /// Prints the tree as JSON to standard output.
    pub async fn run(self) -> StoreResult<()> {
        let source = match (&self.zookeeper, &self.data_dir) {
            (Some(connect), _) => Source::ZooKeeper {
                connect,
                connection_timeout: Duration::from_millis(self.zookeeper_connection_timeout_ms),
            },
            (None, Some(dir)) => Source::Embedded { data_dir: dir },
            // clap requires one of the two; this is only the type system's case.
            (None, None) => {
                return Err(StoreError::Unavailable(
                    "--zookeeper or --data-dir is required".into(),
                ));
            }
        };
        print!("{}", dump(source).await?);
        Ok(())
    }
}
