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
        None => run_broker(cli.broker),
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("odradek: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
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
