//! `odradek perf producer|consumer`: load like Kafka's `kafka-producer-perf-test.sh` and
//! `kafka-consumer-perf-test.sh`. A progress line goes to standard error every reporting
//! interval and a summary line to standard output at the end, in the Java tools' wording.
//!
//! Both keep requests in flight on one pipelined connection per leader: the producer up to
//! `max_in_flight` produce requests, the consumer the next fetch, sent as soon as the previous
//! answer's batch headers give the next offsets and before its records are decoded.
//!
//! This file holds the command line and the connections load; `producer` and `consumer` are
//! the two loads, `stats` the counting and wording both report with.

mod consumer;
mod producer;
mod stats;

use std::io::Write;
use std::time::{Duration, Instant};

use self::consumer::{ConsumerOptions, consumer};
use self::producer::{ProducerOptions, producer};
use super::client::{Bootstrap, ConnectArgs, Result, ToolError};

/// `odradek perf`: a producer or a consumer load.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(clap::Subcommand)]
enum Mode {
    /// Send --num-records records of --record-size bytes and report records/s, MB/s and latency.
    Producer(ProducerArgs),
    /// Read --messages records from the beginning and report records/s and MB/s.
    Consumer(ConsumerArgs),
    /// Open --connections new connections (TLS and SASL login included, as --command-config
    /// says), --concurrency at a time, and report connections/s: what authentication costs.
    Connections(ConnectionsArgs),
}

#[derive(clap::Args)]
struct ConnectionsArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[arg(long, default_value_t = 1000)]
    connections: u64,
    #[arg(long, default_value_t = 4)]
    concurrency: u64,
}

/// Opens `count` connections to the first bootstrap broker that answers, `concurrency` at a time, each closed once
/// it is ready (versions known, logged in); prints connections/s.
pub async fn connections(
    bootstrap: &Bootstrap,
    count: u64,
    concurrency: u64,
    out: &mut impl Write,
) -> Result<()> {
    let started = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let next = next.clone();
        let bootstrap = bootstrap.clone();
        tasks.spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                bootstrap.connect().await?;
            }
            Ok::<_, ToolError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| ToolError::Kafka(e.to_string()))??;
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = writeln!(
        out,
        "{count} connections in {secs:.2} s: {:.1} connections/s",
        count as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// kafka-producer-perf-test.sh's flags.
#[derive(clap::Args)]
struct ProducerArgs {
    #[command(flatten)]
    connect: ConnectArgs,
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
    #[arg(long, default_value = "-1", allow_hyphen_values = true, value_parser = super::invocation::parse_acks)]
    acks: i16,
    #[arg(long, visible_alias = "compression-codec", default_value = "none", value_parser = super::invocation::CODECS)]
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
}

/// kafka-consumer-perf-test.sh's flags.
#[derive(clap::Args)]
struct ConsumerArgs {
    #[command(flatten)]
    connect: ConnectArgs,
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
}

impl Args {
    /// Runs the load and prints its figures to standard output.
    pub async fn run(self) -> Result<()> {
        let mut stdout = std::io::stdout();
        match self.mode {
            Mode::Producer(a) => {
                let opts = ProducerOptions {
                    topic: a.topic,
                    num_records: a.num_records,
                    record_size: a.record_size,
                    throughput: a.throughput,
                    acks: a.acks,
                    codec: super::invocation::codec(&a.compression),
                    batch_size: a.batch_size,
                    linger: Duration::from_millis(a.linger_ms),
                    max_in_flight: a.max_in_flight,
                    report_interval: Duration::from_millis(a.reporting_interval),
                };
                producer(&a.connect.bootstrap()?, &opts, &mut stdout).await
            }
            Mode::Consumer(a) => {
                let opts = ConsumerOptions {
                    topic: a.topic,
                    messages: a.messages,
                    timeout: Duration::from_millis(a.timeout_ms),
                    fetch_size: a.fetch_size,
                    report_interval: Duration::from_millis(a.reporting_interval),
                };
                consumer(&a.connect.bootstrap()?, &opts, &mut stdout).await
            }
            Mode::Connections(a) => {
                connections(
                    &a.connect.bootstrap()?,
                    a.connections,
                    a.concurrency,
                    &mut stdout,
                )
                .await
            }
        }
    }
}
