//! Log compaction through a running broker, over the wire: a compacted topic reads back as the
//! last value of each key at the offset it was produced at, tombstoned keys vanish after
//! `delete.retention.ms`, a kill -9 in the middle of cleaning loses nothing, keyless records are
//! refused, and `__consumer_offsets` stays small under a group committing 100,000 times.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::broker_process::BrokerProcess;
use common::wire::{Conn, create_topic_with, s, start_broker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use odradek::log::records::{BatchBuilder, NewRecord, Record};
use odradek::server::Broker;

const KEYS: usize = 1000;
const ROUNDS: usize = 100;
const PER_BATCH: usize = 50;
const INVALID_RECORD: i16 = 87;

/// Broker settings that let a test see the cleaner work within seconds.
const QUICK_CLEANER: &[&str] = &[
    "log.cleaner.backoff.ms=100",
    "log.segment.delete.delay.ms=0",
    "log.retention.check.interval.ms=500",
];

async fn start(dir: &Path, extra: &[&str]) -> Broker {
    let mut overrides = vec!["offsets.topic.replication.factor=1"];
    overrides.extend(QUICK_CLEANER);
    overrides.extend(extra);
    start_broker(dir, &overrides).await
}

async fn create_compacted_topic(c: &mut Conn, name: &str, delete_retention_ms: &str) {
    create_topic_with(
        c,
        name,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "16384"),
            ("delete.retention.ms", delete_retention_ms),
        ],
    )
    .await
}

type Rec = (Vec<u8>, Option<Vec<u8>>);
/// Key -> (offset, value) of a compacted topic.
type Contents = BTreeMap<Vec<u8>, (i64, Vec<u8>)>;

fn produce_request(topic: &str, records: &[Rec]) -> ProduceRequest {
    let batch = BatchBuilder {
        records: records
            .iter()
            .map(|(k, v)| NewRecord {
                timestamp: odradek::log::segment::now_ms(),
                key: Some(k.clone()),
                value: v.clone(),
                headers: Vec::new(),
            })
            .collect(),
        ..BatchBuilder::default()
    };
    let mut pd = produce_request::PartitionProduceData::default();
    pd.index = 0;
    pd.records = Some(Bytes::from(batch.build().unwrap()));
    let mut td = produce_request::TopicProduceData::default();
    td.name = TopicName(s(topic));
    td.partition_data.push(pd);
    let mut r = ProduceRequest::default();
    r.acks = -1;
    r.timeout_ms = 5000;
    r.topic_data.push(td);
    r
}

fn partition_response(resp: &ProduceResponse) -> &produce_response::PartitionProduceResponse {
    &resp.responses[0].partition_responses[0]
}

/// What was produced, by offset, and each key's last record.
#[derive(Default)]
struct Produced {
    at: HashMap<i64, Rec>,
    latest: BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)>,
}

impl Produced {
    /// Sends `batches` pipelined (up to 100 in flight) and records where each record went.
    async fn produce(&mut self, c: &mut Conn, topic: &str, batches: Vec<Vec<Rec>>) {
        for window in batches.chunks(100) {
            for b in window {
                c.send_request(
                    ApiKey::Produce,
                    8,
                    RequestKind::Produce(produce_request(topic, b)),
                )
                .await;
            }
            for b in window {
                let mut frame = c.read_frame().await.expect("a produce response");
                let _ =
                    ResponseHeader::decode(&mut frame, ApiKey::Produce.response_header_version(8))
                        .unwrap();
                let resp = match ResponseKind::decode(ApiKey::Produce, &mut frame, 8).unwrap() {
                    ResponseKind::Produce(r) => r,
                    other => panic!("{other:?}"),
                };
                let p = partition_response(&resp);
                assert_eq!(p.error_code, 0);
                for (i, (k, v)) in b.iter().enumerate() {
                    let offset = p.base_offset + i as i64;
                    self.at.insert(offset, (k.clone(), v.clone()));
                    self.latest.insert(k.clone(), (offset, v.clone()));
                }
            }
        }
    }

    /// Exactly the last record of each key not deleted, at the offset it was produced at.
    fn compacted(&self) -> Contents {
        self.latest
            .iter()
            .filter_map(|(k, (o, v))| v.as_ref().map(|v| (k.clone(), (*o, v.clone()))))
            .collect()
    }
}

/// 100,000 records over 1,000 keys, tombstones for every tenth key, then 32 KiB of records
/// with keys of their own so the tombstones end up in a closed (cleanable) segment.
async fn produce_workload(c: &mut Conn, topic: &str) -> Produced {
    let mut p = Produced::default();
    let mut batches = Vec::new();
    for round in 0..ROUNDS {
        for first in (0..KEYS).step_by(PER_BATCH) {
            batches.push(
                (first..first + PER_BATCH)
                    .map(|k| {
                        (
                            format!("key-{k:04}").into_bytes(),
                            Some(format!("value-{k}-{round}").into_bytes()),
                        )
                    })
                    .collect(),
            );
        }
    }
    for first in (0..KEYS).step_by(100) {
        batches.push(
            (first..first + 100)
                .step_by(10)
                .map(|k| (format!("key-{k:04}").into_bytes(), None))
                .collect(),
        );
    }
    for first in (0..400).step_by(20) {
        batches.push(
            (first..first + 20)
                .map(|i| (format!("filler-{i}").into_bytes(), Some(vec![b'f'; 64])))
                .collect(),
        );
    }
    p.produce(c, topic, batches).await;
    p
}

/// Every record a consumer reads from offset 0 (control records skipped).
async fn consume_all(c: &mut Conn, topic: &str) -> Vec<Record> {
    let mut out = Vec::new();
    let mut offset = 0;
    for _ in 0..100_000 {
        let mut p = fetch_request::FetchPartition::default();
        p.partition = 0;
        p.fetch_offset = offset;
        p.partition_max_bytes = 1 << 20;
        let mut t = fetch_request::FetchTopic::default();
        t.topic = TopicName(s(topic));
        t.partitions.push(p);
        let mut r = FetchRequest::default();
        r.replica_id = BrokerId(-1);
        r.max_wait_ms = 0;
        r.min_bytes = 1;
        r.max_bytes = 8 << 20;
        r.topics.push(t);
        let data = c.send(11, r).await.responses.remove(0).partitions.remove(0);
        assert_eq!(data.error_code, 0, "fetch at {offset}");
        let records = data.records.unwrap_or_default();
        if records.is_empty() {
            return out;
        }
        let mut pos = 0;
        while pos < records.len() {
            let size = odradek::log::batch::entry_size(&records[pos..]).unwrap() as usize;
            let (h, recs) = odradek::log::records::decode_batch(&records[pos..pos + size]).unwrap();
            if !h.is_control() {
                out.extend(recs.into_iter().filter(|r| r.offset >= offset));
            }
            offset = offset.max(h.next_offset());
            pos += size;
        }
    }
    panic!("consuming {topic} does not end");
}

/// The topic as a consumer sees it, if every key is there once; `Err` describes what is off.
fn as_compacted(records: &[Record], produced: &Produced) -> Result<Contents, String> {
    let mut seen = BTreeMap::new();
    for r in records {
        let (k, v) = produced
            .at
            .get(&r.offset)
            .ok_or_else(|| format!("offset {} was never produced", r.offset))?;
        if r.key.as_deref() != Some(&k[..]) || r.value.as_deref() != v.as_deref() {
            return Err(format!(
                "record at {} is not what was produced there",
                r.offset
            ));
        }
        let Some(value) = &r.value else {
            return Err(format!("tombstone at {} still there", r.offset));
        };
        if seen.insert(k.clone(), (r.offset, value.to_vec())).is_some() {
            return Err(format!("{} read twice", String::from_utf8_lossy(k)));
        }
    }
    Ok(seen)
}

/// Polls (bounded) until consuming the topic gives exactly the compacted contents.
async fn await_compacted(c: &mut Conn, topic: &str, produced: &Produced, why: &str) {
    let expected = produced.compacted();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = String::new();
    while Instant::now() < deadline {
        let records = consume_all(c, topic).await;
        match as_compacted(&records, produced) {
            Ok(seen) if seen == expected => return,
            Ok(seen) => last = format!("{} keys read, {} expected", seen.len(), expected.len()),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("{why}: topic not compacted within 2 minutes: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_topic_reads_back_as_the_last_value_of_each_live_key() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    create_compacted_topic(&mut c, "compacted", "2000").await;
    let produced = produce_workload(&mut c, "compacted").await;
    await_compacted(&mut c, "compacted", &produced, "in-process broker").await;
    let checkpoint = std::fs::read_to_string(tmp.path().join("cleaner-offset-checkpoint")).unwrap();
    assert!(checkpoint.contains("compacted 0 "), "{checkpoint}");

    // A keyless record is refused and nothing is appended.
    let before = produced.at.keys().max().copied().unwrap_or(0);
    let mut r = produce_request("compacted", &[]);
    let batch = BatchBuilder {
        records: vec![NewRecord {
            timestamp: 1,
            key: None,
            value: Some(b"no key".to_vec()),
            headers: Vec::new(),
        }],
        ..BatchBuilder::default()
    };
    r.topic_data[0].partition_data[0].records = Some(Bytes::from(batch.build().unwrap()));
    assert_eq!(
        partition_response(&c.send(8, r).await).error_code,
        INVALID_RECORD
    );
    let mut after = Produced::default();
    after
        .produce(
            &mut c,
            "compacted",
            vec![vec![(b"k".to_vec(), Some(b"v".to_vec()))]],
        )
        .await;
    assert_eq!(
        after.at.keys().next().copied(),
        Some(before + 1),
        "the refused record took no offset"
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_the_broker_cleans_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut overrides: Vec<&str> = QUICK_CLEANER.to_vec();
    overrides.push("offsets.topic.replication.factor=1");
    // The cleaner stops after writing its first .cleaned segment, before the swap.
    let mut broker = BrokerProcess::start_with_env(
        tmp.path(),
        &overrides,
        &[("ODRADEK_CLEANER_FAILPOINT", "cleaned:pause")],
    );
    let mut c = Conn::connect(broker.port).await;
    create_compacted_topic(&mut c, "crashing", "2000").await;
    let produced = produce_workload(&mut c, "crashing").await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(broker.log_path())
        .unwrap_or_default()
        .contains("failpoint cleaned reached")
    {
        assert!(
            Instant::now() < deadline,
            "the cleaner never reached its failpoint:\n{}",
            broker.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let part = tmp.path().join("logs").join("crashing-0");
    let cleaned: Vec<_> = std::fs::read_dir(&part)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".log.cleaned"))
        .collect();
    assert!(
        !cleaned.is_empty(),
        "killed mid-clean, with a .cleaned segment on disk"
    );
    drop(c);
    broker.env.clear();
    broker.restart(true);
    let mut c = Conn::connect(broker.port).await;
    // Nothing lost: right after the restart, each key's newest record is the one produced last.
    let records = consume_all(&mut c, "crashing").await;
    let mut newest: HashMap<Vec<u8>, &Record> = HashMap::new();
    for r in &records {
        let (k, v) = produced.at.get(&r.offset).expect("a produced offset");
        assert_eq!(r.key.as_deref(), Some(&k[..]));
        assert_eq!(r.value.as_deref(), v.as_deref());
        newest.insert(k.clone(), r);
    }
    for (k, (offset, v)) in &produced.latest {
        match newest.get(k) {
            Some(r) => assert_eq!((r.offset, r.value.as_deref()), (*offset, v.as_deref())),
            None => assert!(v.is_none(), "{} lost", String::from_utf8_lossy(k)),
        }
    }
    await_compacted(&mut c, "crashing", &produced, "after kill -9 and restart").await;
}

/// On-disk bytes of the partition's log segments (index files are preallocated sparse files
/// while active, so their length says nothing about the disk).
fn segment_bytes(dir: &Path) -> (u64, usize) {
    let mut bytes = 0;
    let mut count = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        if name.contains(".log") {
            bytes += e.metadata().unwrap().len();
            count += 1;
        }
    }
    (bytes, count)
}

fn commit_request(offset: i64) -> OffsetCommitRequest {
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(s("committer"));
    r.generation_id_or_member_epoch = -1;
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = TopicName(s("events"));
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    p.committed_metadata = Some(s("m"));
    t.partitions.push(p);
    r.topics.push(t);
    r
}

async fn committed(c: &mut Conn) -> i64 {
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(s("committer"));
    let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = TopicName(s("events"));
    t.partition_indexes = vec![0];
    r.topics = Some(vec![t]);
    c.send(5, r).await.topics[0].partitions[0].committed_offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_offsets_stays_bounded_under_100000_commits() {
    const COMMITS: i64 = 100_000;
    const SEGMENT: u64 = 64 * 1024;
    let tmp = tempfile::tempdir().unwrap();
    let settings = [
        "offsets.topic.num.partitions=1",
        "offsets.topic.segment.bytes=65536",
    ];
    let broker = start(tmp.path(), &settings).await;
    let mut c = Conn::connect(broker.port).await;
    create_topic_with(&mut c, "events", &[]).await;
    let part = tmp.path().join("__consumer_offsets-0");
    common::wire::wait_for_group_coordinator(&mut c).await;
    let mut largest = 0;
    for window_start in (0..COMMITS).step_by(200) {
        for offset in window_start..window_start + 200 {
            c.send_request(
                ApiKey::OffsetCommit,
                2,
                RequestKind::OffsetCommit(commit_request(offset)),
            )
            .await;
        }
        for _ in 0..200 {
            let mut frame = c.read_frame().await.expect("an OffsetCommit response");
            let _ =
                ResponseHeader::decode(&mut frame, ApiKey::OffsetCommit.response_header_version(2))
                    .unwrap();
            match ResponseKind::decode(ApiKey::OffsetCommit, &mut frame, 2).unwrap() {
                ResponseKind::OffsetCommit(r) => {
                    assert_eq!(r.topics[0].partitions[0].error_code, 0)
                }
                other => panic!("{other:?}"),
            }
        }
        if window_start % 10_000 == 0 && part.exists() {
            largest = largest.max(segment_bytes(&part).0);
        }
    }
    assert_eq!(committed(&mut c).await, COMMITS - 1);
    // 100,000 commit records take megabytes; compacted, one per key is left.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (bytes, segments) = segment_bytes(&part);
        if bytes <= 2 * SEGMENT && segments <= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "__consumer_offsets-0 still holds {bytes} bytes in {segments} segments"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        largest < 40 * SEGMENT,
        "the partition grew to {largest} bytes while committing"
    );
    // The group's offsets come back from the compacted log after a restart.
    drop(c);
    broker.shutdown().await.unwrap();
    let broker = start(tmp.path(), &settings).await;
    let mut c = Conn::connect(broker.port).await;
    // __consumer_offsets loads in the background after a restart, as in Kafka.
    common::wire::wait_for_group_coordinator(&mut c).await;
    assert_eq!(committed(&mut c).await, COMMITS - 1);
    broker.shutdown().await.unwrap();
}
