use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use odradek::tools;
use odradek::tools::invocation::wait_for_signal;

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

/// One variant per tool, each with its own flags; `main` dispatches every one explicitly.
#[derive(Subcommand)]
enum Command {
    /// Run a broker.
    Broker(BrokerArgs),
    /// Create, list, describe, delete topics or add partitions (like kafka-topics.sh
    /// --bootstrap-server).
    Topics(tools::topics::Args),
    /// Send standard input's lines as records (like kafka-console-producer.sh).
    Produce(tools::produce::Args),
    /// Print a topic's records (like kafka-console-consumer.sh): from the end, the beginning, an
    /// offset or a time, or as a member of a consumer group.
    Consume(tools::consume::Args),
    /// List consumer groups, or describe them with offsets and lag (like kafka-consumer-groups.sh).
    Groups(tools::groups::Args),
    /// Producer or consumer load with throughput and latency figures (like
    /// kafka-producer-perf-test.sh and kafka-consumer-perf-test.sh).
    Perf(tools::perf::Args),
    /// Seed the embedded metadata store of a log directory from a ZooKeeper tree dump (a JSON
    /// object of znode path to data), to serve a data directory an Apache Kafka broker wrote.
    ImportZkTree(tools::import_zk_tree::Args),
    /// Print the whole metadata tree as JSON, `{"<znode path>": <data as a string, or null>}`,
    /// from ZooKeeper or from the embedded store of a broker's data directory.
    MetadataDump(tools::metadata_dump::Args),
    /// Print the batches (and with --print-data-log the records) of log segments, indexes and
    /// producer snapshots, as Kafka's kafka-dump-log.sh does.
    DumpLog(tools::dump_log::Args),
}

fn init_logging(json: bool) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A warning repeated at each retry (ZooKeeper down) is written once, then counted.
    let repeats = odradek::logging::RepeatSummary::default();
    let output = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let output = if json {
        output.json().with_filter(repeats.clone()).boxed()
    } else {
        output.with_filter(repeats.clone()).boxed()
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .init();
    repeats.spawn_flusher();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        return run_broker(cli.broker);
    };
    match command {
        Command::Broker(args) => run_broker(args),
        Command::Topics(args) => run_tool(args.run()),
        Command::Produce(args) => run_tool(args.run()),
        Command::Consume(args) => run_tool(args.run()),
        Command::Groups(args) => run_tool(args.run()),
        Command::Perf(args) => run_tool(args.run()),
        Command::MetadataDump(args) => run_tool(args.run()),
        Command::ImportZkTree(args) => args.run(),
        Command::DumpLog(args) => {
            init_logging(false);
            args.run()
        }
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

/// Runs a networked tool on a one-thread runtime; its error, if any, goes to standard error
/// and fails the exit status.
fn run_tool<E: std::fmt::Display>(tool: impl Future<Output = Result<(), E>>) -> ExitCode {
    init_logging(false);
    let Some(runtime) = runtime(false) else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(tool) {
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
    odradek::server::apply_open_file_limit();
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
