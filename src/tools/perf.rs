//! `odradek perf producer|consumer`: load like Kafka's `kafka-producer-perf-test.sh` and
//! `kafka-consumer-perf-test.sh`. A progress line goes to standard error every reporting
//! interval and a summary line to standard output at the end, in the Java tools' wording.
//!
//! Both keep requests in flight on one pipelined connection per leader: the producer up to
//! `max_in_flight` produce requests, the consumer the next fetch, sent as soon as the previous
//! answer's batch headers give the next offsets and before its records are decoded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::client::{
    Bootstrap, Cluster, ConnectArgs, FETCH_VERSION_CAP, Result, ToolError, complete_batches,
    error_name, fetch_request, fetched_records,
};
use crate::client::{Pipeline, Responses};
use crate::log::batch::BatchHeader;
use crate::log::records::BatchWriter;

/// The fewest milliseconds between progress lines, however small the interval asked for.
pub const MIN_REPORT_INTERVAL: Duration = Duration::from_millis(100);
/// A produce request carries batches up to this many bytes (the Java client's max.request.size).
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Latency samples kept for the percentiles, as the Java tool keeps at most 500,000.
const MAX_LATENCY_SAMPLES: u64 = 500_000;

const MB: f64 = 1024.0 * 1024.0;

pub struct ProducerOptions {
    pub topic: String,
    pub num_records: u64,
    pub record_size: usize,
    /// Records per second; zero or less sends as fast as the broker takes them.
    pub throughput: f64,
    pub acks: i16,
    pub codec: i16,
    /// Bytes of records per batch (the Java client's batch.size).
    pub batch_size: usize,
    pub linger: Duration,
    pub max_in_flight: usize,
    pub report_interval: Duration,
}

/// Latency and rate accounting, overall and for the current reporting window.
struct Stats {
    start: Instant,
    count: u64,
    bytes: u64,
    latency_sum_ms: f64,
    latency_max_ms: f64,
    samples: Vec<f32>,
    sampling: u64,
    window_start: Instant,
    window_count: u64,
    window_bytes: u64,
    window_latency_sum_ms: f64,
    window_latency_max_ms: f64,
}

impl Stats {
    fn new(expected: u64) -> Stats {
        let now = Instant::now();
        Stats {
            start: now,
            count: 0,
            bytes: 0,
            latency_sum_ms: 0.0,
            latency_max_ms: 0.0,
            samples: Vec::new(),
            sampling: (expected / expected.clamp(1, MAX_LATENCY_SAMPLES)).max(1),
            window_start: now,
            window_count: 0,
            window_bytes: 0,
            window_latency_sum_ms: 0.0,
            window_latency_max_ms: 0.0,
        }
    }

    fn record(&mut self, bytes: u64, latency_ms: Option<f64>) {
        if let Some(l) = latency_ms {
            if self.count.is_multiple_of(self.sampling) {
                self.samples.push(l as f32);
            }
            self.latency_sum_ms += l;
            self.latency_max_ms = self.latency_max_ms.max(l);
            self.window_latency_sum_ms += l;
            self.window_latency_max_ms = self.window_latency_max_ms.max(l);
        }
        self.count += 1;
        self.bytes += bytes;
        self.window_count += 1;
        self.window_bytes += bytes;
    }

    /// `n` records of `bytes` in all, without latencies (a consumer's).
    fn record_many(&mut self, n: u64, bytes: u64) {
        self.count += n;
        self.bytes += bytes;
        self.window_count += n;
        self.window_bytes += bytes;
    }

    /// The window's line, then a new window.
    fn window_line(&mut self, verb: &str, latencies: bool) -> String {
        let secs = self.window_start.elapsed().as_secs_f64().max(1e-9);
        let n = self.window_count;
        let mut line = format!(
            "{n} records {verb}, {:.1} records/sec ({:.2} MB/sec)",
            n as f64 / secs,
            self.window_bytes as f64 / MB / secs
        );
        if latencies {
            line += &format!(
                ", {:.1} ms avg latency, {:.1} ms max latency",
                self.window_latency_sum_ms / n.max(1) as f64,
                self.window_latency_max_ms
            );
        }
        line.push('.');
        self.window_start = Instant::now();
        self.window_count = 0;
        self.window_bytes = 0;
        self.window_latency_sum_ms = 0.0;
        self.window_latency_max_ms = 0.0;
        line
    }

    fn rate(&self) -> (f64, f64, f64) {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        (
            self.count as f64 / secs,
            self.bytes as f64 / MB / secs,
            secs,
        )
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let i = ((p * self.samples.len() as f64) as usize).min(self.samples.len() - 1);
        self.samples[i] as f64
    }

    fn producer_summary(&mut self) -> String {
        let (rps, mbs, _) = self.rate();
        self.samples.sort_unstable_by(f32::total_cmp);
        format!(
            "{} records sent, {rps:.1} records/sec ({mbs:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th.",
            self.count,
            self.latency_sum_ms / self.count.max(1) as f64,
            self.latency_max_ms,
            self.percentile(0.5),
            self.percentile(0.95),
            self.percentile(0.99),
            self.percentile(0.999),
        )
    }
}

/// Records of one partition waiting to be sent together, already encoded into their batch,
/// with when each was created.
struct OpenBatch {
    partition: i32,
    writer: BatchWriter,
    created: Vec<Instant>,
    bytes: usize,
}

impl OpenBatch {
    fn new(partition: i32, opts: &ProducerOptions) -> OpenBatch {
        let per_record = opts.record_size.max(1);
        OpenBatch {
            partition,
            writer: BatchWriter::new(opts.codec, opts.batch_size + per_record),
            created: Vec::with_capacity(opts.batch_size / per_record + 1),
            bytes: 0,
        }
    }

    fn push(&mut self, timestamp: i64, value: &[u8], created: Instant) {
        self.writer.append(timestamp, None, Some(value));
        self.created.push(created);
        self.bytes += value.len();
    }

    /// The batch as a produce request carries it (compressed if asked), and what to time.
    fn finish(self) -> Result<(i32, Bytes, SentBatch)> {
        let built = self
            .writer
            .finish()
            .map_err(|e| ToolError::Usage(e.to_string()))?;
        let sent = SentBatch {
            created: self.created,
        };
        Ok((self.partition, Bytes::from(built), sent))
    }
}

struct SentBatch {
    created: Vec<Instant>,
}

struct InFlight {
    correlation: i32,
    version: i16,
    batches: Vec<SentBatch>,
}

/// Kafka's perf tool fills values with random upper-case letters: compressible like text.
fn payload(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect()
}

pub async fn producer(
    bootstrap: &Bootstrap,
    opts: &ProducerOptions,
    out: &mut impl Write,
) -> Result<()> {
    let mut cluster = Cluster::connect(bootstrap).await?;
    let partitions = cluster.partitions(&opts.topic, true).await?;
    let mut responses = Responses::default();
    let mut leaders: Vec<i32> = Vec::new();
    let mut pipelines: Vec<Pipeline> = Vec::new();
    let mut leader_of: HashMap<i32, usize> = HashMap::new();
    for &p in &partitions {
        let id = cluster.leader_id(&opts.topic, p)?;
        let slot = match leaders.iter().position(|&l| l == id) {
            Some(s) => s,
            None => {
                let conn = cluster.open(id).await?;
                pipelines.push(conn.into_pipeline(leaders.len(), &responses));
                leaders.push(id);
                leaders.len() - 1
            }
        };
        leader_of.insert(p, slot);
    }
    let mut in_flight: Vec<VecDeque<InFlight>> =
        pipelines.iter().map(|_| VecDeque::new()).collect();
    let value = payload(opts.record_size);
    let record_bytes = opts.record_size as u64;
    let mut stats = Stats::new(opts.num_records);
    let start = stats.start;
    let mut next_report = start + opts.report_interval.max(MIN_REPORT_INTERVAL);
    let mut generated = 0u64;
    let mut sticky = 0usize;
    let mut open: Option<OpenBatch> = None;
    let mut ready: VecDeque<OpenBatch> = VecDeque::new();
    let max_in_flight = opts.max_in_flight.max(1);
    let throttled = opts.throughput > 0.0;
    loop {
        let now = Instant::now();
        // One clock read for the records made in this pass, as `now` is their creation time.
        let timestamp = crate::log::segment::now_ms();
        // Records due by now (all, unthrottled, as long as the sender keeps up).
        while generated < opts.num_records && ready.len() <= max_in_flight * pipelines.len() {
            if throttled {
                let due = start + Duration::from_secs_f64(generated as f64 / opts.throughput);
                if due > now {
                    break;
                }
            }
            let batch = open
                .get_or_insert_with(|| OpenBatch::new(partitions[sticky % partitions.len()], opts));
            batch.push(timestamp, &value, now);
            generated += 1;
            if batch.bytes >= opts.batch_size {
                ready.extend(open.take());
                // The sticky partitioner moves on once a batch is full.
                sticky += 1;
            }
        }
        let lingered = open.as_ref().is_some_and(|b| {
            b.created[0].elapsed() >= opts.linger || generated == opts.num_records
        });
        if lingered {
            ready.extend(open.take());
            sticky += 1;
        }
        // Fill every connection's free request slots from the ready batches.
        for slot in 0..pipelines.len() {
            while in_flight[slot].len() < max_in_flight
                && ready
                    .iter()
                    .any(|b| leader_of.get(&b.partition) == Some(&slot))
            {
                let mut taken: Vec<OpenBatch> = Vec::new();
                let mut size = 0usize;
                let mut i = 0;
                while i < ready.len() {
                    let b = &ready[i];
                    let fits = taken.is_empty() || size + b.bytes <= MAX_REQUEST_BYTES;
                    if leader_of.get(&b.partition) == Some(&slot)
                        && fits
                        && !taken.iter().any(|t| t.partition == b.partition)
                    {
                        size += b.bytes;
                        taken.extend(ready.remove(i));
                    } else {
                        i += 1;
                    }
                }
                let sent = send_produce(&mut pipelines[slot], opts, taken).await?;
                if opts.acks == 0 {
                    // No answer comes: the write is the acknowledgement.
                    let at = Instant::now();
                    for b in &sent.batches {
                        for c in &b.created {
                            stats.record(record_bytes, Some(ms(at - *c)));
                        }
                    }
                } else {
                    in_flight[slot].push_back(sent);
                }
            }
        }
        if Instant::now() >= next_report {
            eprintln!("{}", stats.window_line("sent", true));
            next_report += opts.report_interval.max(MIN_REPORT_INTERVAL);
        }
        let idle = in_flight.iter().all(VecDeque::is_empty);
        if generated == opts.num_records && open.is_none() && ready.is_empty() && idle {
            break;
        }
        // Wait for an answer, the next record's time, the linger deadline or the next report.
        let mut wake = next_report;
        if throttled && generated < opts.num_records {
            wake = wake.min(start + Duration::from_secs_f64(generated as f64 / opts.throughput));
        }
        if let Some(b) = &open {
            wake = wake.min(b.created[0] + opts.linger);
        }
        let can_make_more = generated < opts.num_records
            && !throttled
            && ready.len() <= max_in_flight * pipelines.len();
        if can_make_more {
            continue;
        }
        if idle {
            tokio::time::sleep_until(wake.into()).await;
            continue;
        }
        let frame = tokio::select! {
            f = responses.next() => f,
            _ = tokio::time::sleep_until(wake.into()) => continue,
        };
        let Some((slot, frame)) = frame else {
            return Err(ToolError::Kafka("all connections closed".into()));
        };
        let (frame, at) = frame?;
        let Some(request) = in_flight.get_mut(slot).and_then(VecDeque::pop_front) else {
            return Err(ToolError::Kafka("a response nobody asked for".into()));
        };
        let response =
            pipelines[slot].decode(ApiKey::Produce, request.version, request.correlation, frame)?;
        check_produce(&opts.topic, response)?;
        for b in &request.batches {
            for c in &b.created {
                stats.record(record_bytes, Some(ms(at - *c)));
            }
        }
    }
    writeln!(out, "{}", stats.producer_summary())
        .map_err(|e| ToolError::Usage(format!("writing output: {e}")))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn send_produce(
    pipeline: &mut Pipeline,
    opts: &ProducerOptions,
    batches: Vec<OpenBatch>,
) -> Result<InFlight> {
    let mut td = produce_request::TopicProduceData::default();
    td.name = TopicName(StrBytes::from_string(opts.topic.clone()));
    let mut sent = Vec::with_capacity(batches.len());
    for b in batches {
        let (partition, records, created) = b.finish()?;
        let mut pd = produce_request::PartitionProduceData::default();
        pd.index = partition;
        pd.records = Some(records);
        td.partition_data.push(pd);
        sent.push(created);
    }
    let mut req = ProduceRequest::default();
    req.acks = opts.acks;
    req.timeout_ms = 30_000;
    req.topic_data.push(td);
    let version = pipeline.version(ApiKey::Produce)?;
    let correlation = pipeline
        .send(ApiKey::Produce, version, RequestKind::Produce(req))
        .await?;
    Ok(InFlight {
        correlation,
        version,
        batches: sent,
    })
}

fn check_produce(topic: &str, response: ResponseKind) -> Result<()> {
    let ResponseKind::Produce(r) = response else {
        return Err(ToolError::Kafka("unexpected response to Produce".into()));
    };
    for p in r.responses.iter().flat_map(|t| &t.partition_responses) {
        if p.error_code != 0 {
            return Err(ToolError::Kafka(format!(
                "{topic}-{}: {}",
                p.index,
                error_name(p.error_code)
            )));
        }
    }
    Ok(())
}

pub struct ConsumerOptions {
    pub topic: String,
    pub messages: u64,
    /// Give up after this long without a record.
    pub timeout: Duration,
    /// Bytes per partition per fetch (the Java consumer's max.partition.fetch.bytes).
    pub fetch_size: i32,
    pub report_interval: Duration,
}

/// Reads `messages` records of the topic from the beginning, as fast as the broker serves them.
pub async fn consumer(
    bootstrap: &Bootstrap,
    opts: &ConsumerOptions,
    out: &mut impl Write,
) -> Result<()> {
    let mut cluster = Cluster::connect(bootstrap).await?;
    let partitions = cluster.partitions(&opts.topic, false).await?;
    let mut positions = cluster.list_offsets(&opts.topic, &partitions, -2).await?;
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for &p in &partitions {
        by_leader
            .entry(cluster.leader_id(&opts.topic, p)?)
            .or_default()
            .push(p);
    }
    let mut responses = Responses::default();
    let mut pipelines = Vec::new();
    let mut owned: Vec<Vec<i32>> = Vec::new();
    let mut in_flight: Vec<(i32, i16)> = Vec::new();
    for (leader, ps) in by_leader {
        let conn = cluster.open(leader).await?;
        pipelines.push(conn.into_pipeline(pipelines.len(), &responses));
        owned.push(ps);
        in_flight.push((0, 0));
    }
    let mut stats = Stats::new(opts.messages);
    let mut next_report = stats.start + opts.report_interval.max(MIN_REPORT_INTERVAL);
    let mut last_record = Instant::now();
    for slot in 0..pipelines.len() {
        in_flight[slot] = send_fetch(&mut pipelines[slot], opts, &owned[slot], &positions).await?;
    }
    while stats.count < opts.messages {
        let wake = next_report.min(last_record + opts.timeout);
        let frame = tokio::select! {
            f = responses.next() => f,
            _ = tokio::time::sleep_until(wake.into()) => None,
        };
        if Instant::now() >= next_report {
            eprintln!("{}", stats.window_line("consumed", false));
            next_report += opts.report_interval.max(MIN_REPORT_INTERVAL);
        }
        let Some((slot, frame)) = frame else {
            if last_record.elapsed() >= opts.timeout {
                return Err(ToolError::Kafka(format!(
                    "only {} of {} records within {} ms of the last one",
                    stats.count,
                    opts.messages,
                    opts.timeout.as_millis()
                )));
            }
            continue;
        };
        let (frame, _) = frame?;
        let (correlation, version) = in_flight[slot];
        let fetched = fetched_records(
            &opts.topic,
            pipelines[slot].decode(ApiKey::Fetch, version, correlation, frame)?,
        )?;
        // The next offsets from the batch headers alone, so the next fetch goes out before
        // this one's records are decoded.
        let starts: HashMap<i32, i64> = fetched
            .iter()
            .filter_map(|(p, _)| positions.get(p).map(|&o| (*p, o)))
            .collect();
        for (p, records) in &fetched {
            if let Some(pos) = positions.get_mut(p) {
                for batch in complete_batches(records) {
                    if let Ok(h) = BatchHeader::parse(batch) {
                        *pos = (*pos).max(h.next_offset());
                    }
                }
            }
        }
        in_flight[slot] = send_fetch(&mut pipelines[slot], opts, &owned[slot], &positions).await?;
        for (p, records) in &fetched {
            let from = starts.get(p).copied().unwrap_or(0);
            for batch in complete_batches(records) {
                let left = opts.messages - stats.count;
                let (n, bytes) = count_batch(batch, from, left)
                    .map_err(|e| ToolError::Kafka(format!("{}-{p}: {e}", opts.topic)))?;
                if n > 0 {
                    stats.record_many(n, bytes);
                    last_record = Instant::now();
                }
            }
        }
    }
    let (rps, mbs, secs) = stats.rate();
    writeln!(
        out,
        "{} records consumed, {rps:.1} records/sec ({mbs:.2} MB/sec), {:.2} MB in {secs:.2} s.",
        stats.count,
        stats.bytes as f64 / MB
    )
    .map_err(|e| ToolError::Usage(format!("writing output: {e}")))
}

/// The records of a fetched batch at or after offset `from`, at most `limit` of them, and their
/// key and value bytes (what Kafka's consumer perf tool counts), read from the records' framing
/// in place: no CRC check, no copy and no allocation per record, so that the tool rather than
/// the broker is not what bounds a consumer load. Only a compressed batch is decompressed, since
/// its sizes are inside. Control batches hold no records a consumer sees.
fn count_batch(
    batch: &[u8],
    from: i64,
    limit: u64,
) -> std::result::Result<(u64, u64), crate::log::error::LogError> {
    use crate::log::batch::{BATCH_HEADER_LEN, read_varint, read_varlong};
    use crate::log::compression;
    use crate::log::error::LogError;
    let header = BatchHeader::parse(batch)?;
    if header.is_control() || header.last_offset() < from || limit == 0 {
        return Ok((0, 0));
    }
    let body = batch.get(BATCH_HEADER_LEN..).unwrap_or(&[]);
    let plain;
    let body = if header.compression() == compression::NONE {
        body
    } else {
        plain = compression::decompress(
            header.compression(),
            body,
            crate::log::records::MAX_DECOMPRESSED_BATCH,
        )?;
        &plain[..]
    };
    let bad = |what: &str| LogError::InvalidRecord(format!("record {what}"));
    let (mut n, mut bytes, mut pos) = (0u64, 0u64, 0usize);
    for _ in 0..header.records_count {
        if n >= limit {
            break;
        }
        let (len, size) =
            read_varint(body.get(pos..).unwrap_or(&[])).ok_or_else(|| bad("length"))?;
        pos += size;
        let end = pos.saturating_add(usize::try_from(len).unwrap_or(0));
        let record = match body.get(pos..end) {
            Some(r) if len > 0 => r,
            _ => return Err(bad("length overruns the batch")),
        };
        pos = end;
        // attributes (1 byte), timestampDelta, offsetDelta, key length, key, value length.
        let mut at = 1usize;
        let field = |at: &mut usize, what: &str| -> std::result::Result<i64, LogError> {
            let (v, size) =
                read_varlong(record.get(*at..).unwrap_or(&[])).ok_or_else(|| bad(what))?;
            *at += size;
            Ok(v)
        };
        field(&mut at, "timestamp")?;
        let offset = header.base_offset + field(&mut at, "offset delta")?;
        let key_len = field(&mut at, "key length")?.max(0);
        at = at.saturating_add(usize::try_from(key_len).unwrap_or(usize::MAX));
        let value_len = field(&mut at, "value length")?.max(0);
        if offset >= from {
            n += 1;
            bytes += (key_len + value_len) as u64;
        }
    }
    Ok((n, bytes))
}

async fn send_fetch(
    pipeline: &mut Pipeline,
    opts: &ConsumerOptions,
    partitions: &[i32],
    positions: &BTreeMap<i32, i64>,
) -> Result<(i32, i16)> {
    let wanted: Vec<(i32, i64)> = partitions
        .iter()
        .filter_map(|p| positions.get(p).map(|&o| (*p, o)))
        .collect();
    let req = fetch_request(&opts.topic, &wanted, 500, opts.fetch_size);
    let version = pipeline.version(ApiKey::Fetch)?.min(FETCH_VERSION_CAP);
    let correlation = pipeline
        .send(ApiKey::Fetch, version, RequestKind::Fetch(req))
        .await?;
    Ok((correlation, version))
}

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

#[cfg(test)]
mod tests {
    use super::{OpenBatch, ProducerOptions, count_batch, payload};
    use crate::log::records::{BatchBuilder, NewRecord, decode_batch};
    use std::time::{Duration, Instant};

    type Headers = Vec<(Vec<u8>, Option<Vec<u8>>)>;

    fn record(key: Option<&[u8]>, value: Option<&[u8]>, headers: Headers) -> NewRecord {
        NewRecord {
            timestamp: 1_700_000_000_000,
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers,
        }
    }

    fn batch(codec: i16, control: bool) -> Vec<u8> {
        BatchBuilder {
            base_offset: 10,
            codec,
            control,
            records: vec![
                record(Some(b"k0"), Some(b"value-0"), vec![]),
                record(
                    None,
                    Some(b"v1"),
                    vec![(b"h".to_vec(), Some(b"hv".to_vec()))],
                ),
                record(Some(b"key-2"), None, vec![]),
                record(None, Some(&[7u8; 300][..]), vec![]),
            ],
            ..BatchBuilder::default()
        }
        .build()
        .expect("builds")
    }

    #[test]
    fn counts_records_and_key_and_value_bytes_from_the_framing() {
        for codec in [0, 1, 3] {
            let b = batch(codec, false);
            assert_eq!(count_batch(&b, 0, u64::MAX).unwrap(), (4, 9 + 2 + 5 + 300));
            // A fetch from inside the batch counts only what follows its offset.
            assert_eq!(count_batch(&b, 12, u64::MAX).unwrap(), (2, 305));
            assert_eq!(count_batch(&b, 14, u64::MAX).unwrap(), (0, 0));
            // No more than the load asked for.
            assert_eq!(count_batch(&b, 0, 2).unwrap(), (2, 11));
        }
        assert_eq!(count_batch(&batch(0, true), 0, u64::MAX).unwrap(), (0, 0));
    }

    #[test]
    fn a_malformed_batch_is_an_error_not_a_panic() {
        let mut b = batch(0, false);
        let len = b.len();
        // Record count raised past what the bytes hold.
        b[57..61].copy_from_slice(&9i32.to_be_bytes());
        assert!(count_batch(&b, 0, u64::MAX).is_err());
        b.truncate(len - 100);
        assert!(count_batch(&b, 0, u64::MAX).is_err());
        assert!(count_batch(&b[..30], 0, u64::MAX).is_err());
        // A negative record length.
        let mut b = batch(0, false);
        b[61] = 0x01;
        assert!(count_batch(&b, 0, u64::MAX).is_err());
    }

    #[test]
    fn the_producers_batches_decode_with_the_brokers_reader() {
        for codec in [0, 3, 4] {
            let opts = ProducerOptions {
                topic: "t".into(),
                num_records: 10,
                record_size: 100,
                throughput: -1.0,
                acks: 1,
                codec,
                batch_size: 1000,
                linger: Duration::from_millis(5),
                max_in_flight: 5,
                report_interval: Duration::from_secs(5),
            };
            let value = payload(100);
            let mut b = OpenBatch::new(3, &opts);
            // Timestamps need not rise: the batch's max is the largest, its base the first.
            let stamps = [1_700_000_000_005, 1_700_000_000_000, 1_700_000_000_300];
            for ts in stamps {
                b.push(ts, &value, Instant::now());
            }
            let (partition, bytes, sent) = b.finish().unwrap();
            assert_eq!((partition, sent.created.len()), (3, 3));
            let (header, records) = decode_batch(&bytes).expect("CRC and framing valid");
            assert_eq!(header.compression(), codec);
            assert_eq!((header.base_offset, header.last_offset_delta), (0, 2));
            assert_eq!(header.records_count, 3);
            assert_eq!(header.base_timestamp, stamps[0]);
            assert_eq!(header.max_timestamp, 1_700_000_000_300);
            assert_eq!((header.producer_id, header.base_sequence), (-1, -1));
            assert_eq!(records.len(), 3);
            for (i, r) in records.iter().enumerate() {
                assert_eq!(r.offset, i as i64);
                assert_eq!(r.timestamp, stamps[i]);
                assert_eq!(
                    (r.key.as_deref(), r.value.as_deref()),
                    (None, Some(&value[..]))
                );
                assert!(r.headers.is_empty());
            }
            if codec == 0 {
                // Byte for byte what the general builder makes of the same records.
                let built = BatchBuilder {
                    records: stamps
                        .iter()
                        .map(|&timestamp| NewRecord {
                            timestamp,
                            value: Some(value.clone()),
                            ..NewRecord::default()
                        })
                        .collect(),
                    ..BatchBuilder::default()
                }
                .build()
                .unwrap();
                assert_eq!(&bytes[..], &built[..]);
            }
        }
    }
}
