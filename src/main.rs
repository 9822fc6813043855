use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: odradek::alloc::Allocator = odradek::alloc::Allocator;

#[derive(Parser)]
#[command(
    name = "odradek",
    version,
    about = "A broker that speaks Apache Kafka's protocol and stores Kafka's format"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `odradek [server.properties] [--override k=v]...` runs a broker, like `odradek broker`.
    #[command(flatten)]
    broker: BrokerArgs,
}

#[derive(Args, Clone, Default)]
struct BrokerArgs {
    /// A Kafka `server.properties` file.
    config: Option<PathBuf>,
    /// Overrides one property, as `kafka-server-start.sh --override` does.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Logs as JSON lines instead of human-readable text.
    #[arg(long)]
    log_json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker.
    Broker(BrokerArgs),
    /// Create, list, describe or delete topics (like kafka-topics.sh --bootstrap-server).
    Topics {
        #[arg(long)]
        bootstrap_server: String,
        #[arg(long, conflicts_with_all = ["list", "describe", "delete"])]
        create: bool,
        #[arg(long)]
        list: bool,
        #[arg(long)]
        describe: bool,
        #[arg(long)]
        delete: bool,
        #[arg(long)]
        topic: Option<String>,
        #[arg(long, default_value_t = -1)]
        partitions: i32,
        #[arg(long, default_value_t = -1)]
        replication_factor: i16,
        /// A topic config, `key=value`; repeat for more.
        #[arg(long, value_name = "KEY=VALUE")]
        config: Vec<String>,
    },
    /// Send standard input's lines as records (like kafka-console-producer.sh).
    Produce {
        #[arg(long)]
        bootstrap_server: String,
        #[arg(long)]
        topic: String,
        /// Split each line into key and value at this separator.
        #[arg(long)]
        key_separator: Option<String>,
        #[arg(long, default_value = "none", value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
        compression_codec: String,
        #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
        acks: i16,
        #[arg(long, default_value_t = 500)]
        batch_lines: usize,
    },
    /// Print a topic's records (like kafka-console-consumer.sh, without a consumer group).
    Consume {
        #[arg(long)]
        bootstrap_server: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: Option<i32>,
        #[arg(long)]
        from_beginning: bool,
        #[arg(long)]
        max_messages: Option<u64>,
        /// Exit after this many milliseconds without a record.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
        #[arg(long)]
        print_key: bool,
        #[arg(long, default_value = "\t")]
        key_separator: String,
    },
    /// Seed the embedded metadata store of a log directory from a ZooKeeper tree dump (a JSON
    /// object of znode path to data), to serve a data directory an Apache Kafka broker wrote.
    ImportZkTree {
        /// The dump: `{"/brokers/topics/t": "{...}", ...}`.
        tree: PathBuf,
        /// The first entry of the broker's `log.dirs`.
        log_dir: PathBuf,
    },
    /// Print the whole metadata tree as JSON, `{"<znode path>": <data as a string, or null>}`,
    /// from ZooKeeper or from the embedded store of a broker's data directory.
    MetadataDump {
        /// Read this ZooKeeper, given as `zookeeper.connect` is: `host:port[,host:port...][/chroot]`.
        #[arg(long, value_name = "CONNECT", conflicts_with = "data_dir")]
        zookeeper: Option<String>,
        /// Read the embedded store (`odradek-metadata.json`) of a broker running without
        /// `zookeeper.connect`: the first entry of its `log.dirs`. Required without --zookeeper.
        #[arg(long, value_name = "DIR", required_unless_present = "zookeeper")]
        data_dir: Option<PathBuf>,
        /// How long to wait for a ZooKeeper session and each answer.
        #[arg(long, value_name = "MS", default_value_t = 18_000)]
        zookeeper_connection_timeout_ms: u64,
    },
    /// Print the batches (and with --print-data-log the records) of log segments, indexes and
    /// producer snapshots, as Kafka's kafka-dump-log.sh does.
    DumpLog {
        #[arg(long, num_args = 1.., value_delimiter = ',', required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        print_data_log: bool,
        /// Accepted for kafka-dump-log.sh compatibility; records are always iterated.
        #[arg(long)]
        deep_iteration: bool,
    },
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::DumpLog {
            files,
            print_data_log,
            ..
        }) => {
            init_logging(false);
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut ok = true;
            for f in &files {
                if let Err(e) = odradek::tools::dump_log::dump_file(f, print_data_log, &mut out) {
                    eprintln!("error: {e}");
                    ok = false;
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some(Command::Broker(args)) => run_broker(args),
        Some(Command::MetadataDump {
            zookeeper,
            data_dir,
            zookeeper_connection_timeout_ms,
        }) => {
            use odradek::tools::metadata_dump::{Source, dump};
            init_logging(false);
            let Some(runtime) = runtime(false) else {
                return ExitCode::FAILURE;
            };
            let source = match (&zookeeper, &data_dir) {
                (Some(connect), _) => Source::ZooKeeper {
                    connect,
                    connection_timeout: std::time::Duration::from_millis(
                        zookeeper_connection_timeout_ms,
                    ),
                },
                (None, Some(dir)) => Source::Embedded { data_dir: dir },
                // clap requires one of the two.
                (None, None) => return ExitCode::from(2),
            };
            match runtime.block_on(dump(source)) {
                Ok(json) => {
                    print!("{json}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("odradek: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::ImportZkTree { tree, log_dir }) => {
            let parsed = std::fs::read_to_string(&tree)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    serde_json::from_str::<std::collections::BTreeMap<String, Option<String>>>(&t)
                        .map_err(|e| e.to_string())
                });
            match parsed.map(|t| {
                odradek::metadata::embedded::import_tree(&log_dir, &t).map_err(|e| e.to_string())
            }) {
                Ok(Ok(n)) => {
                    println!("imported {n} znodes into {}", log_dir.display());
                    ExitCode::SUCCESS
                }
                Ok(Err(e)) | Err(e) => {
                    eprintln!("odradek: {}: {e}", tree.display());
                    ExitCode::FAILURE
                }
            }
        }
        Some(
            tool @ (Command::Topics { .. } | Command::Produce { .. } | Command::Consume { .. }),
        ) => run_tool(tool),
        None => run_broker(cli.broker),
    }
}

/// The broker runs on all cores; a tool needs one thread.
fn runtime(multi_thread: bool) -> Option<tokio::runtime::Runtime> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| eprintln!("odradek: cannot start the runtime: {e}"))
        .ok()
}

fn run_tool(tool: Command) -> ExitCode {
    use odradek::tools::{consume, produce, topics};
    init_logging(false);
    let Some(runtime) = runtime(false) else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(async move {
        let mut stdout = std::io::stdout();
        match tool {
            Command::Topics {
                bootstrap_server,
                create,
                list,
                describe,
                delete,
                topic,
                partitions,
                replication_factor,
                config,
            } => {
                let need_topic = || {
                    topic.clone().ok_or_else(|| {
                        odradek::tools::client::ToolError::Usage("--topic is required".into())
                    })
                };
                let action = if create {
                    let configs = config
                        .iter()
                        .map(|c| {
                            c.split_once('=')
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                                .ok_or_else(|| {
                                    odradek::tools::client::ToolError::Usage(format!(
                                        "--config {c:?} is not key=value"
                                    ))
                                })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    topics::Action::Create {
                        topic: need_topic()?,
                        partitions,
                        replication_factor,
                        configs,
                    }
                } else if delete {
                    topics::Action::Delete {
                        topic: need_topic()?,
                    }
                } else if describe {
                    topics::Action::Describe {
                        topic: topic.clone(),
                    }
                } else if list {
                    topics::Action::List
                } else {
                    return Err(odradek::tools::client::ToolError::Usage(
                        "one of --create, --list, --describe, --delete".into(),
                    ));
                };
                topics::run(&bootstrap_server, action, &mut stdout).await
            }
            Command::Produce {
                bootstrap_server,
                topic,
                key_separator,
                compression_codec,
                acks,
                batch_lines,
            } => {
                let codec = ["none", "gzip", "snappy", "lz4", "zstd"]
                    .iter()
                    .position(|c| *c == compression_codec)
                    .unwrap_or(0) as i16;
                let opts = produce::Options {
                    topic,
                    key_separator,
                    codec,
                    acks,
                    batch_lines,
                };
                let stdin = tokio::io::BufReader::new(tokio::io::stdin());
                let sent = produce::run(&bootstrap_server, &opts, stdin).await?;
                eprintln!("{sent} records sent");
                Ok(())
            }
            Command::Consume {
                bootstrap_server,
                topic,
                partition,
                from_beginning,
                max_messages,
                timeout_ms,
                print_key,
                key_separator,
            } => {
                let key_separator = key_separator.replace("\\t", "\t");
                let opts = consume::Options {
                    topic,
                    partition,
                    from_beginning,
                    max_messages,
                    timeout: std::time::Duration::from_millis(timeout_ms),
                    print_key,
                    key_separator,
                };
                let n = consume::run(&bootstrap_server, &opts, &mut stdout).await?;
                eprintln!("Processed a total of {n} messages");
                Ok(())
            }
            _ => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("odradek: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_broker(args: BrokerArgs) -> ExitCode {
    init_logging(args.log_json);
    odradek::alloc::tune_malloc();
    let config = match odradek::config::BrokerConfig::load(args.config.as_deref(), &args.overrides)
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("odradek: {e}");
            return ExitCode::from(2);
        }
    };
    for key in &config.unknown_keys {
        tracing::warn!(key, "unknown configuration key, ignored");
    }
    let Some(runtime) = runtime(true) else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        let broker = match odradek::server::Broker::start(config).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "start-up failed");
                eprintln!("odradek: {e}");
                return ExitCode::FAILURE;
            }
        };
        wait_for_signal().await;
        // A second signal during the graceful stop exits at once.
        tokio::spawn(async {
            wait_for_signal().await;
            eprintln!("odradek: second signal, exiting now");
            std::process::exit(130);
        });
        match broker.shutdown().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "shutdown failed");
                ExitCode::FAILURE
            }
        }
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers we can only run until killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
