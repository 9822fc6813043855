//! `odradek produce`: lines from standard input become records, like
//! `kafka-console-producer.sh`; with a key separator each line is `key<sep>value`, and with
//! `parse_headers` the line starts with `k1:v1,k2:v2<TAB>` (the console producer's
//! `parse.headers` with its default delimiters).

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::client::{
    Bootstrap, Cluster, ConnectArgs, Result, ToolError, error_name, partition_for_key,
};
use crate::log::records::{BatchBuilder, NewRecord};

/// A record header: key, and value (null when `None`).
type Header = (Vec<u8>, Option<Vec<u8>>);

pub struct Options {
    pub topic: String,
    pub key_separator: Option<String>,
    /// Headers every record carries.
    pub headers: Vec<(String, String)>,
    pub parse_headers: bool,
    pub codec: i16,
    pub acks: i16,
    /// Lines sent per request.
    pub batch_lines: usize,
}

/// Sends every line of `input`; returns how many records were acknowledged.
pub async fn run(
    bootstrap: &Bootstrap,
    opts: &Options,
    input: impl AsyncBufRead + Unpin,
) -> Result<u64> {
    let mut cluster = Cluster::connect(bootstrap).await?;
    let partitions = cluster.partitions(&opts.topic, true).await?;
    let mut lines = input.lines();
    let mut pending: Vec<NewRecord> = Vec::new();
    let mut sent = 0u64;
    let mut round_robin = 0usize;
    loop {
        let line = lines
            .next_line()
            .await
            .map_err(|e| ToolError::Usage(format!("reading standard input: {e}")))?;
        let done = line.is_none();
        if let Some(line) = line {
            let mut headers: Vec<Header> = opts
                .headers
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec())))
                .collect();
            let line = if opts.parse_headers {
                let Some((hs, rest)) = line.split_once('\t') else {
                    return Err(ToolError::Usage(format!(
                        "no headers delimiter (a tab) in line {line:?}"
                    )));
                };
                headers.extend(parse_line_headers(hs)?);
                rest.to_string()
            } else {
                line
            };
            let (key, value) = match &opts.key_separator {
                Some(sep) => match line.split_once(sep.as_str()) {
                    Some((k, v)) => (Some(k.as_bytes().to_vec()), v.as_bytes().to_vec()),
                    None => {
                        return Err(ToolError::Usage(format!(
                            "no key separator {sep:?} in line {line:?}"
                        )));
                    }
                },
                None => (None, line.into_bytes()),
            };
            pending.push(NewRecord {
                timestamp: crate::log::segment::now_ms(),
                key,
                value: Some(value),
                headers,
            });
        }
        if pending.len() >= opts.batch_lines.max(1) || (done && !pending.is_empty()) {
            let mut by_partition: BTreeMap<i32, Vec<NewRecord>> = BTreeMap::new();
            for r in pending.drain(..) {
                let p = match &r.key {
                    Some(k) => partitions[partition_for_key(k, partitions.len())],
                    None => partitions[round_robin % partitions.len()],
                };
                by_partition.entry(p).or_default().push(r);
            }
            round_robin += 1;
            for (partition, records) in by_partition {
                let n = records.len() as u64;
                let batch = BatchBuilder {
                    codec: opts.codec,
                    records,
                    ..BatchBuilder::default()
                }
                .build()
                .map_err(|e| ToolError::Usage(e.to_string()))?;
                produce(&mut cluster, opts, partition, Bytes::from(batch)).await?;
                sent += n;
            }
        }
        if done {
            return Ok(sent);
        }
    }
}

async fn produce(
    cluster: &mut Cluster,
    opts: &Options,
    partition: i32,
    records: Bytes,
) -> Result<()> {
    let mut pd = produce_request::PartitionProduceData::default();
    pd.index = partition;
    pd.records = Some(records);
    let mut td = produce_request::TopicProduceData::default();
    td.name = TopicName(StrBytes::from_string(opts.topic.clone()));
    td.partition_data.push(pd);
    let mut req = ProduceRequest::default();
    req.acks = opts.acks;
    req.timeout_ms = 30_000;
    req.topic_data.push(td);
    let conn = cluster.leader(&opts.topic, partition).await?;
    if opts.acks == 0 {
        // The broker answers no acks=0 produce: written is all the acknowledgement there is.
        let version = conn.version(ApiKey::Produce)?;
        conn.write_request(ApiKey::Produce, version, RequestKind::Produce(req))
            .await?;
        return Ok(());
    }
    let ResponseKind::Produce(r) = conn
        .call(ApiKey::Produce, RequestKind::Produce(req))
        .await?
    else {
        return Err(ToolError::Kafka("unexpected response to Produce".into()));
    };
    for t in &r.responses {
        for p in &t.partition_responses {
            if p.error_code != 0 {
                return Err(ToolError::Kafka(format!(
                    "{}-{}: {}",
                    opts.topic,
                    p.index,
                    error_name(p.error_code)
                )));
            }
        }
    }
    Ok(())
}

/// `k1:v1,k2:v2`: the console producer's headers with its default separators; an empty string
/// is no headers.
fn parse_line_headers(s: &str) -> Result<Vec<Header>> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|h| match h.split_once(':') {
            Some((k, v)) => Ok((k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))),
            None => Err(ToolError::Usage(format!("header {h:?} is not key:value"))),
        })
        .collect()
}

/// `odradek produce`: kafka-console-producer.sh's flags.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    connect: ConnectArgs,
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
    #[arg(long, visible_alias = "compression", default_value = "none", value_parser = super::invocation::CODECS)]
    compression_codec: String,
    /// 0 (no answer), 1 (the leader's) or -1/all (the in-sync replicas').
    #[arg(long, default_value = "-1", allow_hyphen_values = true, value_parser = super::invocation::parse_acks)]
    acks: i16,
    /// Lines sent per request.
    #[arg(long, default_value_t = 500)]
    batch_lines: usize,
}

impl Args {
    /// Sends standard input's lines and reports how many records went.
    pub async fn run(self) -> Result<()> {
        let opts = Options {
            topic: self.topic,
            key_separator: self.key_separator,
            headers: self
                .headers
                .iter()
                .map(|h| super::invocation::key_value(h, "--header"))
                .collect::<Result<Vec<_>>>()?,
            parse_headers: self.parse_headers,
            codec: super::invocation::codec(&self.compression_codec),
            acks: self.acks,
            batch_lines: self.batch_lines,
        };
        let stdin = tokio::io::BufReader::new(tokio::io::stdin());
        let sent = run(&self.connect.bootstrap()?, &opts, stdin).await?;
        eprintln!("{sent} records sent");
        Ok(())
    }
}
