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
    /// Create, list, describe, delete topics or add partitions (like kafka-topics.sh
    /// --bootstrap-server).
    Topics {
        /// A broker to start from, host:port.
        #[arg(long)]
        bootstrap_server: String,
        /// Create --topic with --partitions, --replication-factor and --config.
        #[arg(long, conflicts_with_all = ["list", "describe", "delete", "alter"])]
        create: bool,
        /// Print every topic's name.
        #[arg(long)]
        list: bool,
        /// Print partitions, leaders, replicas and ISR of --topic (or of every topic).
        #[arg(long)]
        describe: bool,
        /// Delete --topic.
        #[arg(long)]
        delete: bool,
        /// Grow the topic to --partitions partitions.
        #[arg(long, conflicts_with_all = ["list", "describe", "delete"])]
        alter: bool,
        #[arg(long)]
        topic: Option<String>,
        /// Partitions to create, or to grow to with --alter (-1: the broker's default).
        #[arg(long, default_value_t = -1)]
        partitions: i32,
        /// Replicas per partition (-1: the broker's default).
        #[arg(long, default_value_t = -1)]
        replication_factor: i16,
        /// A topic config, `key=value`; repeat for more.
        #[arg(long, value_name = "KEY=VALUE")]
        config: Vec<String>,
    },
    /// Send standard input's lines as records (like kafka-console-producer.sh).
    Produce {
        /// A broker to start from, host:port.
        #[arg(long)]
        bootstrap_server: String,
        #[arg(long)]
        topic: String,
        /// Split each line into key and value at this separator.
        #[arg(long)]
        key_separator: Option<String>,
        /// A header every record carries; repeat for more.
        #[arg(long = "header", value_name = "KEY=VALUE")]
        headers: Vec<String>,
        /// Each line starts with headers, `k1:v1,k2:v2` then a tab (the console producer's
        /// parse.headers).
        #[arg(long)]
        parse_headers: bool,
        #[arg(long, visible_alias = "compression", default_value = "none", value_parser = CODECS)]
        compression_codec: String,
        /// 0 (no answer), 1 (the leader's) or -1/all (the in-sync replicas').
        #[arg(long, default_value = "-1", allow_hyphen_values = true, value_parser = parse_acks)]
        acks: i16,
        /// Lines sent per request.
        #[arg(long, default_value_t = 500)]
        batch_lines: usize,
    },
    /// Print a topic's records (like kafka-console-consumer.sh): from the end, the beginning, an
    /// offset or a time, or as a member of a consumer group.
    Consume {
        /// A broker to start from, host:port.
        #[arg(long)]
        bootstrap_server: String,
        #[arg(long)]
        topic: String,
        /// Read only this partition.
        #[arg(long)]
        partition: Option<i32>,
        /// Join this consumer group: start at its committed offsets and commit what was printed.
        #[arg(long, conflicts_with_all = ["partition", "offset", "timestamp"])]
        group: Option<String>,
        /// Without a group, start at the log start; with one, where nothing is committed.
        #[arg(long, conflicts_with_all = ["offset", "timestamp"])]
        from_beginning: bool,
        /// Start at this offset (a number, `earliest` or `latest`) of --partition.
        #[arg(long, requires = "partition", conflicts_with = "timestamp")]
        offset: Option<String>,
        /// Start at the first record at or after this time (ms since the epoch).
        #[arg(long)]
        timestamp: Option<i64>,
        /// Exit after printing this many records.
        #[arg(long)]
        max_messages: Option<u64>,
        /// Exit after this many milliseconds without a record.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
        /// Print `key<separator>value` rather than the value alone.
        #[arg(long, conflicts_with = "format")]
        print_key: bool,
        #[arg(long, default_value = "\t")]
        key_separator: String,
        /// One line per record: %t topic, %p partition, %o offset, %T timestamp, %k key, %s
        /// value, %h headers (k=v,...), %K/%S key/value length, %%; \t \n escapes.
        #[arg(long)]
        format: Option<String>,
    },
    /// List consumer groups, or describe them with offsets and lag (like kafka-consumer-groups.sh).
    Groups {
        /// A broker to start from, host:port.
        #[arg(long)]
        bootstrap_server: String,
        /// Print every consumer group's id.
        #[arg(long, conflicts_with = "describe")]
        list: bool,
        /// Describe --group (or --all-groups): by default offsets and lag per partition.
        #[arg(long)]
        describe: bool,
        /// The group to describe; repeat for more.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Describe every group.
        #[arg(long, conflicts_with = "groups")]
        all_groups: bool,
        /// With --describe: committed offset, log end offset and lag per partition (the default).
        #[arg(long, conflicts_with_all = ["members", "state"])]
        offsets: bool,
        /// With --describe: the members and how many partitions each has.
        #[arg(long, conflicts_with = "state")]
        members: bool,
        /// With --members: each member's partitions.
        #[arg(long, requires = "members")]
        verbose: bool,
        /// With --describe: coordinator, assignment strategy, state and member count.
        #[arg(long)]
        state: bool,
    },
    /// Producer or consumer load with throughput and latency figures (like
    /// kafka-producer-perf-test.sh and kafka-consumer-perf-test.sh).
    Perf {
        #[command(subcommand)]
        mode: PerfMode,
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

#[derive(Subcommand)]
enum PerfMode {
    /// Send --num-records records of --record-size bytes and report records/s, MB/s and latency.
    Producer {
        /// A broker to start from, host:port.
        #[arg(long)]
        bootstrap_server: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        num_records: u64,
        #[arg(long, default_value_t = 100)]
        record_size: usize,
        /// Records per second; -1 sends as fast as the broker takes them.
        #[arg(long, allow_hyphen_values = true)]
        throughput: f64,
        /// 0, 1 or -1/all.
        #[arg(long, default_value = "-1", allow_hyphen_values = true, value_parser = parse_acks)]
        acks: i16,
        #[arg(long, visible_alias = "compression-codec", default_value = "none", value_parser = CODECS)]
        compression: String,
        /// Bytes of records per partition batch (batch.size).
        #[arg(long, default_value_t = 16384)]
        batch_size: usize,
        /// How long a batch waits to fill (linger.ms).
        #[arg(long, default_value_t = 5)]
        linger_ms: u64,
        /// Produce requests in flight per broker connection.
        #[arg(long, default_value_t = 5)]
        max_in_flight: usize,
        /// Milliseconds between progress lines on standard error (at least 100).
        #[arg(long, default_value_t = 5000)]
        reporting_interval: u64,
    },
    /// Read --messages records from the beginning and report records/s and MB/s.
    Consumer {
        /// A broker to start from, host:port.
        #[arg(long)]
        bootstrap_server: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        messages: u64,
        /// Fail after this many milliseconds without a record.
        #[arg(long, default_value_t = 10000)]
        timeout_ms: u64,
        /// Bytes per partition per fetch (max.partition.fetch.bytes).
        #[arg(long, default_value_t = 1048576)]
        fetch_size: i32,
        /// Milliseconds between progress lines on standard error (at least 100).
        #[arg(long, default_value_t = 5000)]
        reporting_interval: u64,
    },
}

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

fn codec(name: &str) -> i16 {
    CODECS.iter().position(|c| *c == name).unwrap_or(0) as i16
}

fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "all" | "-1" => Ok(-1),
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(format!("{s:?}: acks is 0, 1, -1 or all")),
    }
}

fn key_value(s: &str, what: &str) -> Result<(String, String), odradek::tools::client::ToolError> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| {
            odradek::tools::client::ToolError::Usage(format!("{what} {s:?} is not key=value"))
        })
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
            tool @ (Command::Topics { .. }
            | Command::Produce { .. }
            | Command::Consume { .. }
            | Command::Groups { .. }
            | Command::Perf { .. }),
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
    use odradek::tools::client::ToolError;
    use odradek::tools::{consume, groups, perf, produce, topics};
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
                alter,
                topic,
                partitions,
                replication_factor,
                config,
            } => {
                let need_topic = || {
                    topic
                        .clone()
                        .ok_or_else(|| ToolError::Usage("--topic is required".into()))
                };
                let action = if create {
                    let configs = config
                        .iter()
                        .map(|c| key_value(c, "--config"))
                        .collect::<Result<Vec<_>, _>>()?;
                    topics::Action::Create {
                        topic: need_topic()?,
                        partitions,
                        replication_factor,
                        configs,
                    }
                } else if alter {
                    if partitions < 1 {
                        return Err(ToolError::Usage(
                            "--alter needs --partitions, the new partition count".into(),
                        ));
                    }
                    topics::Action::Alter {
                        topic: need_topic()?,
                        partitions,
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
                    return Err(ToolError::Usage(
                        "one of --create, --list, --describe, --delete, --alter".into(),
                    ));
                };
                topics::run(&bootstrap_server, action, &mut stdout).await
            }
            Command::Produce {
                bootstrap_server,
                topic,
                key_separator,
                headers,
                parse_headers,
                compression_codec,
                acks,
                batch_lines,
            } => {
                let opts = produce::Options {
                    topic,
                    key_separator,
                    headers: headers
                        .iter()
                        .map(|h| key_value(h, "--header"))
                        .collect::<Result<Vec<_>, _>>()?,
                    parse_headers,
                    codec: codec(&compression_codec),
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
                group,
                from_beginning,
                offset,
                timestamp,
                max_messages,
                timeout_ms,
                print_key,
                key_separator,
                format,
            } => {
                let start = match (offset.as_deref(), timestamp) {
                    (Some("earliest"), _) => consume::Start::Earliest,
                    (Some("latest"), _) => consume::Start::Latest,
                    (Some(n), _) => consume::Start::Offset(n.parse().map_err(|_| {
                        ToolError::Usage(format!("--offset {n:?}: a number, earliest or latest"))
                    })?),
                    (None, Some(ts)) => consume::Start::Timestamp(ts),
                    (None, None) if from_beginning => consume::Start::Earliest,
                    (None, None) => consume::Start::Latest,
                };
                let format = match format {
                    Some(f) => consume::Format::parse(&f)?,
                    None => {
                        consume::Format::console(print_key, &key_separator.replace("\\t", "\t"))
                    }
                };
                let opts = consume::Options {
                    topic,
                    partition,
                    start,
                    group,
                    max_messages,
                    timeout: std::time::Duration::from_millis(timeout_ms),
                    format,
                };
                // The first SIGINT/SIGTERM ends the loop (a group member commits and leaves);
                // a second exits at once.
                let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                let flag = stop.clone();
                tokio::spawn(async move {
                    wait_for_signal().await;
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    wait_for_signal().await;
                    std::process::exit(130);
                });
                let mut out = std::io::BufWriter::new(stdout.lock());
                let n = consume::run(&bootstrap_server, &opts, &stop, &mut out).await?;
                eprintln!("Processed a total of {n} messages");
                Ok(())
            }
            Command::Groups {
                bootstrap_server,
                list,
                describe,
                groups: names,
                all_groups,
                members,
                verbose,
                state,
                ..
            } => {
                let action = if list {
                    groups::Action::List
                } else if describe {
                    if names.is_empty() && !all_groups {
                        return Err(ToolError::Usage(
                            "--describe needs --group or --all-groups".into(),
                        ));
                    }
                    let view = if members {
                        groups::View::Members { verbose }
                    } else if state {
                        groups::View::State
                    } else {
                        groups::View::Offsets
                    };
                    groups::Action::Describe {
                        groups: names,
                        view,
                    }
                } else {
                    return Err(ToolError::Usage("one of --list, --describe".into()));
                };
                groups::run(&bootstrap_server, action, &mut stdout).await
            }
            Command::Perf {
                mode:
                    PerfMode::Producer {
                        bootstrap_server,
                        topic,
                        num_records,
                        record_size,
                        throughput,
                        acks,
                        compression,
                        batch_size,
                        linger_ms,
                        max_in_flight,
                        reporting_interval,
                    },
            } => {
                let opts = perf::ProducerOptions {
                    topic,
                    num_records,
                    record_size,
                    throughput,
                    acks,
                    codec: codec(&compression),
                    batch_size,
                    linger: std::time::Duration::from_millis(linger_ms),
                    max_in_flight,
                    report_interval: std::time::Duration::from_millis(reporting_interval),
                };
                perf::producer(&bootstrap_server, &opts, &mut stdout).await
            }
            Command::Perf {
                mode:
                    PerfMode::Consumer {
                        bootstrap_server,
                        topic,
                        messages,
                        timeout_ms,
                        fetch_size,
                        reporting_interval,
                    },
            } => {
                let opts = perf::ConsumerOptions {
                    topic,
                    messages,
                    timeout: std::time::Duration::from_millis(timeout_ms),
                    fetch_size,
                    report_interval: std::time::Duration::from_millis(reporting_interval),
                };
                perf::consumer(&bootstrap_server, &opts, &mut stdout).await
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
