//! `odradek consume`: prints a topic's records, like `kafka-console-consumer.sh`: partitions
//! assigned directly (from the beginning, the end, an offset or a timestamp), or as a member of
//! a consumer group that starts from the group's committed offsets and commits what it printed.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::client::{
    Bootstrap, Cluster, ConnectArgs, FETCH_VERSION_CAP, Result, ToolError, complete_batches,
    fetch_request, fetched_records,
};
use super::membership::{GroupStatus, Member, committed_offsets};
use crate::log::records::{Record, decode_batch};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

/// Where reading starts; with a group, for partitions without a committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Latest,
    Earliest,
    Offset(i64),
    /// The first record at or after this time (ms since the epoch); the end when there is none.
    Timestamp(i64),
}

pub struct Options {
    pub topic: String,
    pub partition: Option<i32>,
    pub start: Start,
    pub group: Option<String>,
    pub max_messages: Option<u64>,
    /// Stop after this long without a new record.
    pub timeout: Duration,
    pub format: Format,
}

/// How often a group member commits what it has printed (the Java consumer's auto-commit).
const COMMIT_INTERVAL: Duration = Duration::from_secs(5);
const FETCH_MAX_WAIT_MS: i32 = 500;

/// Prints records until `max_messages`, `timeout` without a record, or `stop` (a signal): a
/// group member then commits what it printed and leaves the group.
pub async fn run(
    bootstrap: &Bootstrap,
    opts: &Options,
    stop: &AtomicBool,
    out: &mut impl Write,
) -> Result<u64> {
    let mut cluster = Cluster::connect(bootstrap).await?;
    let all = cluster.partitions(&opts.topic, false).await?;
    if let Some(p) = opts.partition
        && !all.contains(&p)
    {
        return Err(ToolError::Usage(format!(
            "topic {} has no partition {p}",
            opts.topic
        )));
    }
    let mut member = match &opts.group {
        Some(g) => Some(Member::new(&mut cluster, g, &opts.topic).await?),
        None => None,
    };
    let mut positions = match member.as_mut() {
        Some(m) => group_positions(&mut cluster, m, opts).await?,
        None => {
            let partitions: Vec<i32> = opts.partition.map_or(all, |p| vec![p]);
            start_positions(&mut cluster, &opts.topic, &partitions, opts.start).await?
        }
    };
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    let mut last_commit = Instant::now();
    let write_err = |e: std::io::Error| ToolError::Usage(format!("writing output: {e}"));
    let result = loop {
        if stop.load(Ordering::SeqCst) {
            break Ok(printed);
        }
        if let Some(m) = member.as_mut() {
            let mut status = GroupStatus::Ok;
            if last_commit.elapsed() >= COMMIT_INTERVAL {
                status = m.commit(&mut cluster, &positions).await?;
                last_commit = Instant::now();
            }
            if status == GroupStatus::Ok && m.heartbeat_due() {
                status = m.heartbeat(&mut cluster).await?;
            }
            if status == GroupStatus::Rejoin {
                // Whatever was printed is committed before the partitions may move.
                m.commit(&mut cluster, &positions).await?;
                positions = group_positions(&mut cluster, m, opts).await?;
            }
        }
        let mut got_any = false;
        if positions.is_empty() {
            // A member without partitions stays in the group (heartbeats) until it times out.
            tokio::time::sleep(Duration::from_millis(FETCH_MAX_WAIT_MS as u64)).await;
        }
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        for (&p, &offset) in &positions {
            by_leader
                .entry(cluster.leader_id(&opts.topic, p)?)
                .or_default()
                .push((p, offset));
        }
        'leaders: for (leader, wanted) in by_leader {
            let req = fetch_request(&opts.topic, &wanted, FETCH_MAX_WAIT_MS, 1 << 20);
            let response = cluster
                .broker(leader)
                .await?
                .call_upto(ApiKey::Fetch, FETCH_VERSION_CAP, RequestKind::Fetch(req))
                .await?;
            let lost = out_of_range(&response);
            if !lost.is_empty() {
                // Retention (or a truncation) passed the position: start again per the reset
                // policy, as a consumer's auto.offset.reset does.
                let policy = match opts.start {
                    Start::Latest => Start::Latest,
                    _ => Start::Earliest,
                };
                let reset = start_positions(&mut cluster, &opts.topic, &lost, policy).await?;
                positions.extend(reset);
                continue;
            }
            for (p, records) in fetched_records(&opts.topic, response)? {
                let Some(position) = positions.get_mut(&p) else {
                    continue;
                };
                for batch in complete_batches(&records) {
                    let (h, recs) = decode_batch(batch)
                        .map_err(|e| ToolError::Kafka(format!("{}-{p}: {e}", opts.topic)))?;
                    if h.is_control() {
                        *position = (*position).max(h.next_offset());
                        continue;
                    }
                    let from = *position;
                    for r in recs.iter().filter(|r| r.offset >= from) {
                        opts.format
                            .write(out, &opts.topic, p, r)
                            .map_err(write_err)?;
                        printed += 1;
                        got_any = true;
                        *position = r.offset + 1;
                        if opts.max_messages.is_some_and(|m| printed >= m) {
                            break 'leaders;
                        }
                    }
                    *position = (*position).max(h.next_offset());
                }
            }
        }
        out.flush().map_err(write_err)?;
        if opts.max_messages.is_some_and(|m| printed >= m) {
            break Ok(printed);
        }
        if got_any {
            last_record = Instant::now();
        } else if last_record.elapsed() >= opts.timeout {
            break Ok(printed);
        }
    };
    if let Some(m) = member.as_mut() {
        m.commit(&mut cluster, &positions).await?;
        m.leave(&mut cluster).await?;
    }
    result
}

/// Partitions a Fetch answered with OFFSET_OUT_OF_RANGE.
fn out_of_range(response: &ResponseKind) -> Vec<i32> {
    const OFFSET_OUT_OF_RANGE: i16 = 1;
    match response {
        ResponseKind::Fetch(r) => r
            .responses
            .iter()
            .flat_map(|t| &t.partitions)
            .filter(|p| p.error_code == OFFSET_OUT_OF_RANGE)
            .map(|p| p.partition_index)
            .collect(),
        _ => Vec::new(),
    }
}

/// Joins (or rejoins) the group and positions each assigned partition at its committed offset,
/// or per `opts.start` where nothing is committed.
async fn group_positions(
    cluster: &mut Cluster,
    member: &mut Member,
    opts: &Options,
) -> Result<BTreeMap<i32, i64>> {
    let assigned = member.join(cluster).await?;
    // Leaders may have changed while the group rebalanced.
    cluster.partitions(&opts.topic, false).await?;
    let committed = committed_offsets(
        cluster,
        member.coordinator(),
        opts.group.as_deref().unwrap_or(""),
        Some(&[(opts.topic.clone(), assigned.clone())]),
    )
    .await?;
    let fresh: Vec<i32> = assigned
        .iter()
        .copied()
        .filter(|&p| !committed.contains_key(&(opts.topic.clone(), p)))
        .collect();
    let mut positions = start_positions(cluster, &opts.topic, &fresh, opts.start).await?;
    for ((_, p), offset) in committed {
        positions.insert(p, offset);
    }
    Ok(positions)
}

async fn start_positions(
    cluster: &mut Cluster,
    topic: &str,
    partitions: &[i32],
    start: Start,
) -> Result<BTreeMap<i32, i64>> {
    if partitions.is_empty() {
        return Ok(BTreeMap::new());
    }
    match start {
        Start::Earliest => cluster.list_offsets(topic, partitions, -2).await,
        Start::Latest => cluster.list_offsets(topic, partitions, -1).await,
        Start::Offset(n) => {
            // An offset outside the log is clamped into it, as the console consumer's is.
            let earliest = cluster.list_offsets(topic, partitions, -2).await?;
            let latest = cluster.list_offsets(topic, partitions, -1).await?;
            Ok(partitions
                .iter()
                .map(|p| {
                    let lo = earliest.get(p).copied().unwrap_or(0);
                    let hi = latest.get(p).copied().unwrap_or(lo).max(lo);
                    (*p, n.clamp(lo, hi))
                })
                .collect())
        }
        Start::Timestamp(ts) => {
            let found = cluster.list_offsets(topic, partitions, ts).await?;
            let latest = cluster.list_offsets(topic, partitions, -1).await?;
            Ok(partitions
                .iter()
                .map(|p| {
                    let end = latest.get(p).copied().unwrap_or(0);
                    let at = found.get(p).copied().filter(|&o| o >= 0).unwrap_or(end);
                    (*p, at)
                })
                .collect())
        }
    }
}

/// One output line per record, from a kcat-style format: `%t` topic, `%p` partition, `%o`
/// offset, `%T` timestamp (ms), `%k` key, `%s` value, `%h` headers (`k=v,k2=v2`), `%K` and `%S`
/// key and value lengths (-1 for null), `%%`; `\t`, `\n` and `\\` escapes. A null key or value
/// prints as `null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format(Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    Value,
    Headers,
    KeyLen,
    ValueLen,
}

impl Format {
    pub fn parse(spec: &str) -> Result<Format> {
        let mut pieces = Vec::new();
        let mut text = Vec::new();
        let mut chars = spec.chars();
        while let Some(c) = chars.next() {
            let piece = match c {
                '%' => match chars.next() {
                    Some('t') => Piece::Topic,
                    Some('p') => Piece::Partition,
                    Some('o') => Piece::Offset,
                    Some('T') => Piece::Timestamp,
                    Some('k') => Piece::Key,
                    Some('s') => Piece::Value,
                    Some('h') => Piece::Headers,
                    Some('K') => Piece::KeyLen,
                    Some('S') => Piece::ValueLen,
                    Some('%') => {
                        text.push(b'%');
                        continue;
                    }
                    other => {
                        return Err(ToolError::Usage(format!(
                            "unknown format token %{} in {spec:?}",
                            other.map_or(String::new(), String::from)
                        )));
                    }
                },
                '\\' => {
                    match chars.next() {
                        Some('t') => text.push(b'\t'),
                        Some('n') => text.push(b'\n'),
                        Some('\\') => text.push(b'\\'),
                        other => {
                            text.push(b'\\');
                            if let Some(o) = other {
                                text.extend_from_slice(o.to_string().as_bytes());
                            }
                        }
                    }
                    continue;
                }
                c => {
                    let mut b = [0u8; 4];
                    text.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                    continue;
                }
            };
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(piece);
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Format(pieces))
    }

    /// The console consumer's output: the value, or key, separator, value.
    pub fn console(print_key: bool, key_separator: &str) -> Format {
        let mut pieces = Vec::new();
        if print_key {
            pieces.push(Piece::Key);
            pieces.push(Piece::Text(key_separator.as_bytes().to_vec()));
        }
        pieces.push(Piece::Value);
        Format(pieces)
    }

    pub fn write(
        &self,
        out: &mut impl Write,
        topic: &str,
        partition: i32,
        r: &Record,
    ) -> std::io::Result<()> {
        let bytes = |out: &mut dyn Write, b: &Option<bytes::Bytes>| match b {
            Some(b) => out.write_all(b),
            None => out.write_all(b"null"),
        };
        let len = |b: &Option<bytes::Bytes>| b.as_ref().map_or(-1, |b| b.len() as i64);
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.write_all(t)?,
                Piece::Topic => out.write_all(topic.as_bytes())?,
                Piece::Partition => write!(out, "{partition}")?,
                Piece::Offset => write!(out, "{}", r.offset)?,
                Piece::Timestamp => write!(out, "{}", r.timestamp)?,
                Piece::Key => bytes(out, &r.key)?,
                Piece::Value => bytes(out, &r.value)?,
                Piece::KeyLen => write!(out, "{}", len(&r.key))?,
                Piece::ValueLen => write!(out, "{}", len(&r.value))?,
                Piece::Headers => {
                    for (i, (k, v)) in r.headers.iter().enumerate() {
                        if i > 0 {
                            out.write_all(b",")?;
                        }
                        out.write_all(k)?;
                        out.write_all(b"=")?;
                        bytes(out, v)?;
                    }
                }
            }
        }
        out.write_all(b"\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_prints_every_field_of_a_record() {
        let r = Record {
            offset: 42,
            timestamp: 1700000000000,
            key: Some(bytes::Bytes::from_static(b"k")),
            value: None,
            headers: vec![
                (
                    bytes::Bytes::from_static(b"a"),
                    Some(bytes::Bytes::from_static(b"1")),
                ),
                (bytes::Bytes::from_static(b"b"), None),
            ],
        };
        let f = Format::parse("%t/%p@%o %T %k=%s [%h] %K %S 100%%\\t.").unwrap();
        let mut out = Vec::new();
        f.write(&mut out, "top", 3, &r).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "top/3@42 1700000000000 k=null [a=1,b=null] 1 -1 100%\t.\n"
        );
        assert!(Format::parse("%x").is_err());
        let mut out = Vec::new();
        Format::console(true, ":")
            .write(&mut out, "t", 0, &r)
            .unwrap();
        assert_eq!(out, b"k:null\n");
    }
}

/// `odradek consume`: kafka-console-consumer.sh's flags.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    connect: ConnectArgs,
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
}

impl Args {
    /// Prints records to standard output until a limit, a timeout or a signal.
    pub async fn run(self) -> Result<()> {
        let start = match (self.offset.as_deref(), self.timestamp) {
            (Some("earliest"), _) => Start::Earliest,
            (Some("latest"), _) => Start::Latest,
            (Some(n), _) => Start::Offset(n.parse().map_err(|_| {
                ToolError::Usage(format!("--offset {n:?}: a number, earliest or latest"))
            })?),
            (None, Some(ts)) => Start::Timestamp(ts),
            (None, None) if self.from_beginning => Start::Earliest,
            (None, None) => Start::Latest,
        };
        let format = match self.format {
            Some(f) => Format::parse(&f)?,
            None => Format::console(self.print_key, &self.key_separator.replace("\\t", "\t")),
        };
        let opts = Options {
            topic: self.topic,
            partition: self.partition,
            start,
            group: self.group,
            max_messages: self.max_messages,
            timeout: Duration::from_millis(self.timeout_ms),
            format,
        };
        // The first SIGINT/SIGTERM ends the loop (a group member commits and leaves);
        // a second exits at once.
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        tokio::spawn(async move {
            super::invocation::wait_for_signal().await;
            flag.store(true, Ordering::SeqCst);
            super::invocation::wait_for_signal().await;
            std::process::exit(130);
        });
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let n = run(&self.connect.bootstrap()?, &opts, &stop, &mut out).await?;
        eprintln!("Processed a total of {n} messages");
        Ok(())
    }
}
