//! `odradek perf consumer` (Kafka's `kafka-consumer-perf-test.sh`): reads a topic from the
//! beginning with one fetch in flight per leader, the next sent as soon as the previous
//! answer's batch headers give the next offsets, and counts records from their framing.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;

use super::stats::{MB, MIN_REPORT_INTERVAL, Stats};
use crate::client::{Pipeline, Responses};
use crate::log::batch::BatchHeader;
use crate::tools::client::{
    Bootstrap, Cluster, FETCH_VERSION_CAP, Result, ToolError, complete_batches, fetch_request,
    fetched_records,
};

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

#[cfg(test)]
mod tests {
    use super::count_batch;
    use crate::log::records::{BatchBuilder, NewRecord};

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
}
