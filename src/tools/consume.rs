//! `odradek consume`: prints a topic's records, like `kafka-console-consumer.sh` with
//! partitions assigned directly (no consumer group).

use std::io::Write;
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::client::{Cluster, Result, ToolError, error_name};
use crate::log::batch;
use crate::log::records::decode_batch;

pub struct Options {
    pub topic: String,
    pub partition: Option<i32>,
    pub from_beginning: bool,
    pub max_messages: Option<u64>,
    /// Stop after this long without a new record.
    pub timeout: Duration,
    pub print_key: bool,
    pub key_separator: String,
}

pub async fn run(bootstrap: &str, opts: &Options, out: &mut impl Write) -> Result<u64> {
    let mut cluster = Cluster::connect(bootstrap).await?;
    let all = cluster.partitions(&opts.topic, false).await?;
    let partitions: Vec<i32> = match opts.partition {
        Some(p) if all.contains(&p) => vec![p],
        Some(p) => {
            return Err(ToolError::Usage(format!(
                "topic {} has no partition {p}",
                opts.topic
            )));
        }
        None => all,
    };
    let mut positions = Vec::new();
    for &p in &partitions {
        positions.push((
            p,
            start_offset(&mut cluster, &opts.topic, p, opts.from_beginning).await?,
        ));
    }
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    loop {
        let mut got_any = false;
        for (p, offset) in positions.iter_mut() {
            let records = fetch(&mut cluster, &opts.topic, *p, *offset).await?;
            let mut pos = 0;
            while let Some(size) = batch::entry_size(&records[pos..]) {
                let size = size as usize;
                if pos + size > records.len() {
                    break;
                }
                let (h, recs) = decode_batch(&records[pos..pos + size])
                    .map_err(|e| ToolError::Kafka(format!("{}-{p}: {e}", opts.topic)))?;
                pos += size;
                if !h.is_control() {
                    for r in recs.iter().filter(|r| r.offset >= *offset) {
                        let value = r
                            .value
                            .as_deref()
                            .map_or("null".into(), String::from_utf8_lossy);
                        let line = if opts.print_key {
                            let key = r
                                .key
                                .as_deref()
                                .map_or("null".into(), String::from_utf8_lossy);
                            format!("{key}{}{value}", opts.key_separator)
                        } else {
                            value.into_owned()
                        };
                        writeln!(out, "{line}").map_err(|e| ToolError::Usage(e.to_string()))?;
                        printed += 1;
                        got_any = true;
                        if opts.max_messages.is_some_and(|m| printed >= m) {
                            return Ok(printed);
                        }
                    }
                }
                *offset = (*offset).max(h.next_offset());
            }
        }
        if got_any {
            last_record = Instant::now();
        } else if last_record.elapsed() >= opts.timeout {
            return Ok(printed);
        }
    }
}

async fn start_offset(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
    from_beginning: bool,
) -> Result<i64> {
    let mut lp = list_offsets_request::ListOffsetsPartition::default();
    lp.partition_index = partition;
    lp.timestamp = if from_beginning { -2 } else { -1 };
    lp.current_leader_epoch = -1;
    let mut lt = list_offsets_request::ListOffsetsTopic::default();
    lt.name = TopicName(StrBytes::from_string(topic.to_string()));
    lt.partitions.push(lp);
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics.push(lt);
    let conn = cluster.leader(topic, partition).await?;
    let ResponseKind::ListOffsets(r) = conn
        .call(ApiKey::ListOffsets, RequestKind::ListOffsets(req))
        .await?
    else {
        return Err(ToolError::Kafka(
            "unexpected response to ListOffsets".into(),
        ));
    };
    let p = r
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| ToolError::Kafka("empty ListOffsets response".into()))?;
    if p.error_code != 0 {
        return Err(ToolError::Kafka(format!(
            "{topic}-{partition}: {}",
            error_name(p.error_code)
        )));
    }
    Ok(p.old_style_offsets.first().copied().unwrap_or(p.offset))
}

async fn fetch(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<bytes::Bytes> {
    let mut fp = fetch_request::FetchPartition::default();
    fp.partition = partition;
    fp.fetch_offset = offset;
    fp.partition_max_bytes = 1 << 20;
    fp.current_leader_epoch = -1;
    fp.last_fetched_epoch = -1;
    fp.log_start_offset = -1;
    let conn = cluster.leader(topic, partition).await?;
    let mut ft = fetch_request::FetchTopic::default();
    ft.topic = TopicName(StrBytes::from_string(topic.to_string()));
    ft.partitions.push(fp);
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = 500;
    req.min_bytes = 1;
    req.max_bytes = 50 << 20;
    req.session_epoch = -1;
    req.topics.push(ft);
    // v12 is the last version that names topics, which is all this tool needs.
    let ResponseKind::Fetch(r) = conn
        .call_upto(ApiKey::Fetch, 12, RequestKind::Fetch(req))
        .await?
    else {
        return Err(ToolError::Kafka("unexpected response to Fetch".into()));
    };
    let p = r
        .responses
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| ToolError::Kafka("empty Fetch response".into()))?;
    if p.error_code != 0 {
        return Err(ToolError::Kafka(format!(
            "{topic}-{partition}: {}",
            error_name(p.error_code)
        )));
    }
    Ok(p.records.clone().unwrap_or_default())
}
