//! `odradek perf producer` (Kafka's `kafka-producer-perf-test.sh`): records batched per
//! partition as the Java client batches them (batch.size, linger.ms), sent with up to
//! `max_in_flight` produce requests pipelined per leader, each batch's latency measured from
//! its records' creation to the acknowledgement.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::stats::{MIN_REPORT_INTERVAL, Stats};
use crate::client::{Pipeline, Responses};
use crate::log::records::BatchWriter;
use crate::tools::client::{Bootstrap, Cluster, Result, ToolError, error_name};

/// A produce request carries batches up to this many bytes (the Java client's max.request.size).
const MAX_REQUEST_BYTES: usize = 1 << 20;

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

#[cfg(test)]
mod tests {
    use super::{OpenBatch, ProducerOptions, payload};
    use crate::log::records::{BatchBuilder, NewRecord, decode_batch};
    use std::time::{Duration, Instant};

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
