use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "odradek", version, about = "A Kafka-compatible broker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the batches (and with --print-data-log the records) of log segments, indexes and
    /// producer snapshots, as Kafka's kafka-dump-log.sh does.
    DumpLog {
        #[arg(long, num_args = 1.., required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        print_data_log: bool,
        /// Accepted for kafka-dump-log.sh compatibility; records are always iterated.
        #[arg(long)]
        deep_iteration: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::DumpLog {
            files,
            print_data_log,
            ..
        } => {
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
    }
}
