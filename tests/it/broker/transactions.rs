//! Transactions over the wire: the coordinator's state machine and its errors by version,
//! transactional produce checks, markers, the last stable offset and the aborted-transaction
//! list of read_committed fetches, timeouts, and Kafka 2.4.1's transactional fixture
//! (`txn` and `__transaction_state`) served as Kafka served it.

use crate::common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::broker_process::BrokerProcess;
use common::wire::{Conn, create_topic, s, topic_name};
use kafka_protocol::messages::*;
use odradek::log::records::{BatchBuilder, NewRecord, decode_batch};

const NONE: i16 = 0;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const CONCURRENT_TRANSACTIONS: i16 = 51;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const DEADLINE: Duration = Duration::from_secs(30);

fn tid(v: &str) -> TransactionalId {
    TransactionalId(s(v))
}

async fn find_txn_coordinator(c: &mut Conn, id: &str) -> (i16, i32) {
    let mut r = FindCoordinatorRequest::default();
    r.key = s(id);
    r.key_type = 1;
    let r = c.send(2, r).await;
    (r.error_code, r.node_id.0)
}

async fn init_pid(c: &mut Conn, version: i16, id: &str, timeout_ms: i32) -> (i16, i64, i16) {
    let mut r = InitProducerIdRequest::default();
    r.transactional_id = Some(tid(id));
    r.transaction_timeout_ms = timeout_ms;
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    let r = c.send(version, r).await;
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// InitProducerId until it stops answering CONCURRENT_TRANSACTIONS (an abort it started).
async fn init_pid_retrying(c: &mut Conn, id: &str, timeout_ms: i32) -> (i64, i16) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (err, pid, epoch) = init_pid(c, 4, id, timeout_ms).await;
        if err == NONE {
            return (pid, epoch);
        }
        assert!(
            err == CONCURRENT_TRANSACTIONS || err == 14 || err == 16 || err == 15,
            "InitProducerId: {err}"
        );
        assert!(
            Instant::now() < deadline,
            "InitProducerId kept failing: {err}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn add_partitions(
    c: &mut Conn,
    version: i16,
    id: &str,
    pid: i64,
    epoch: i16,
    topic: &str,
    partitions: &[i32],
) -> Vec<i16> {
    let mut t = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
    t.name = topic_name(topic);
    t.partitions = partitions.to_vec();
    let mut r = AddPartitionsToTxnRequest::default();
    r.v3_and_below_transactional_id = tid(id);
    r.v3_and_below_producer_id = ProducerId(pid);
    r.v3_and_below_producer_epoch = epoch;
    r.v3_and_below_topics.push(t);
    c.send(version, r)
        .await
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect()
}

async fn end_txn(c: &mut Conn, version: i16, id: &str, pid: i64, epoch: i16, commit: bool) -> i16 {
    let mut r = EndTxnRequest::default();
    r.transactional_id = tid(id);
    r.producer_id = ProducerId(pid);
    r.producer_epoch = epoch;
    r.committed = commit;
    c.send(version, r).await.error_code
}

fn txn_batch(pid: i64, epoch: i16, seq: i32, values: &[&str]) -> Bytes {
    // Current timestamps: an old one would roll a segment at each append (segment.ms), and a
    // fetch returns one segment's data at a time.
    let now = odradek::log::segment::now_ms();
    let producer = common::Producer::transactional(pid, epoch, seq);
    common::values_batch(producer, now, values.iter().copied())
}

async fn produce_txn(
    c: &mut Conn,
    id: Option<&str>,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> i16 {
    let mut r = common::wire::produce_request(topic, partition, records, -1);
    r.transactional_id = id.map(tid);
    c.send(8, r).await.responses[0].partition_responses[0].error_code
}

/// What a read_committed (or read_uncommitted) consumer gets from offset 0: the data records'
/// values, the last stable offset, and the aborted transactions listed.
struct Fetched {
    values: Vec<String>,
    last_stable_offset: i64,
    high_watermark: i64,
    aborted: Vec<(i64, i64)>,
}

async fn fetch_values(c: &mut Conn, topic: &str, partition: i32, read_committed: bool) -> Fetched {
    let mut r = common::wire::fetch_request(topic, partition, 0, 0);
    r.isolation_level = i8::from(read_committed);
    r.min_bytes = 0;
    let pd = c.send(11, r).await.responses.remove(0).partitions.remove(0);
    assert_eq!(pd.error_code, NONE);
    let aborted: Vec<(i64, i64)> = pd
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    // Filter as a consumer does: a producer's batches from an aborted transaction's first
    // offset up to its ABORT marker are skipped; control batches are never shown.
    let mut values = Vec::new();
    let mut skipping: Vec<i64> = Vec::new();
    let mut pending_aborts = aborted.clone();
    let buf = pd.records.unwrap_or_default();
    let mut pos = 0;
    while pos + 12 <= buf.len() {
        let len = i32::from_be_bytes(buf[pos + 8..pos + 12].try_into().unwrap()) as usize + 12;
        if pos + len > buf.len() {
            break;
        }
        let (h, recs) = decode_batch(&buf[pos..pos + len]).unwrap();
        pos += len;
        if read_committed
            && let Some(i) = pending_aborts
                .iter()
                .position(|(p, first)| *p == h.producer_id && *first <= h.base_offset)
        {
            pending_aborts.remove(i);
            skipping.push(h.producer_id);
        }
        if h.is_control() {
            skipping.retain(|p| *p != h.producer_id);
            continue;
        }
        if skipping.contains(&h.producer_id) {
            continue;
        }
        values.extend(
            recs.iter()
                .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or(b"")).to_string()),
        );
    }
    Fetched {
        values,
        last_stable_offset: pd.last_stable_offset,
        high_watermark: pd.high_watermark,
        aborted,
    }
}

/// Until the partition's last stable offset reaches its high watermark (markers written).
async fn wait_stable(c: &mut Conn, topic: &str, partition: i32) -> Fetched {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let f = fetch_values(c, topic, partition, true).await;
        if f.last_stable_offset == f.high_watermark {
            return f;
        }
        assert!(
            Instant::now() < deadline,
            "LSO {} never reached HW {}",
            f.last_stable_offset,
            f.high_watermark
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn describe(c: &mut Conn, id: &str) -> describe_transactions_response::TransactionState {
    let mut r = DescribeTransactionsRequest::default();
    r.transactional_ids.push(tid(id));
    c.send(0, r).await.transaction_states.remove(0)
}

async fn describe_until(
    c: &mut Conn,
    id: &str,
    state: &str,
) -> describe_transactions_response::TransactionState {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let d = describe(c, id).await;
        if d.error_code == NONE && d.transaction_state.as_str() == state {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never reached {state}: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_abort_fencing_and_the_produce_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = common::wire::start_broker(
        tmp.path(),
        &[
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.num.partitions=4",
            "transaction.max.timeout.ms=120000",
        ],
    )
    .await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "orders", 3).await, NONE);
    let id = "orders-writer";
    assert_eq!(find_txn_coordinator(&mut c, id).await, (NONE, 0));

    // A timeout above transaction.max.timeout.ms is refused.
    assert_eq!(
        init_pid(&mut c, 1, id, 120_001).await.0,
        INVALID_TRANSACTION_TIMEOUT
    );
    let (pid, epoch) = init_pid_retrying(&mut c, id, 60_000).await;
    assert_eq!(epoch, 0);

    // A transactional batch needs the transactional id (without one Kafka's KafkaApis refuses
    // the request as not authorized for it, authorizer or not), and a partition added to the
    // transaction.
    assert_eq!(
        produce_txn(&mut c, None, "orders", 0, txn_batch(pid, epoch, 0, &["x"])).await,
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    );
    assert_eq!(
        produce_txn(
            &mut c,
            Some(id),
            "orders",
            0,
            txn_batch(pid, epoch, 0, &["x"])
        )
        .await,
        INVALID_TXN_STATE
    );
    // Ending a transaction that never started is an invalid transition.
    assert_eq!(
        end_txn(&mut c, 1, id, pid, epoch, true).await,
        INVALID_TXN_STATE
    );

    // Transaction 1, committed; transaction 2, aborted; both over three partitions.
    let mut seq = [0i32; 3];
    for (round, commit) in [(1, true), (2, false)] {
        assert_eq!(
            add_partitions(&mut c, 1, id, pid, epoch, "orders", &[0, 1, 2]).await,
            vec![NONE; 3]
        );
        for p in 0..3 {
            let values: Vec<String> = (0..4).map(|i| format!("t{round}-p{p}-{i}")).collect();
            let refs: Vec<&str> = values.iter().map(|v| v.as_str()).collect();
            let batch = txn_batch(pid, epoch, seq[p as usize], &refs);
            seq[p as usize] += 4;
            assert_eq!(
                produce_txn(&mut c, Some(id), "orders", p, batch).await,
                NONE
            );
        }
        // While open, read_committed readers stop at the transaction's first offset.
        let open = fetch_values(&mut c, "orders", 0, true).await;
        assert!(open.last_stable_offset < open.high_watermark);
        assert!(
            open.values
                .iter()
                .all(|v| !v.starts_with(&format!("t{round}")))
        );
        let described = describe(&mut c, id).await;
        assert_eq!(described.transaction_state.as_str(), "Ongoing");
        assert_eq!(
            described
                .topics
                .iter()
                .map(|t| t.partitions.len())
                .sum::<usize>(),
            3
        );
        assert_eq!(end_txn(&mut c, 1, id, pid, epoch, commit).await, NONE);
        // A retried EndTxn is answered as the first one was, or CONCURRENT while markers go out.
        let again = end_txn(&mut c, 1, id, pid, epoch, commit).await;
        assert!(again == NONE || again == CONCURRENT_TRANSACTIONS, "{again}");
        describe_until(
            &mut c,
            id,
            if commit {
                "CompleteCommit"
            } else {
                "CompleteAbort"
            },
        )
        .await;
    }
    for p in 0..3 {
        let committed = wait_stable(&mut c, "orders", p).await;
        let expected: Vec<String> = (0..4).map(|i| format!("t1-p{p}-{i}")).collect();
        assert_eq!(committed.values, expected, "read_committed, partition {p}");
        assert_eq!(
            committed.aborted,
            vec![(pid, 5)],
            "the aborted transaction's first offset"
        );
        let all = fetch_values(&mut c, "orders", p, false).await;
        assert_eq!(
            all.values.len(),
            8,
            "read_uncommitted sees both transactions"
        );
        // 4 + marker + 4 + marker.
        assert_eq!(all.high_watermark, 10);
    }
    // ListOffsets with read_committed answers the last stable offset.
    let mut lp = list_offsets_request::ListOffsetsPartition::default();
    lp.partition_index = 0;
    lp.timestamp = -1;
    let mut lt = list_offsets_request::ListOffsetsTopic::default();
    lt.name = topic_name("orders");
    lt.partitions.push(lp);
    let mut lr = ListOffsetsRequest::default();
    lr.replica_id = BrokerId(-1);
    lr.isolation_level = 1;
    lr.topics.push(lt);
    assert_eq!(c.send(5, lr).await.topics[0].partitions[0].offset, 10);

    // A second producer with the same id: the epoch is bumped and the first one is fenced,
    // with the error each version knows.
    let (pid2, epoch2) = init_pid_retrying(&mut c, id, 60_000).await;
    assert_eq!((pid2, epoch2), (pid, epoch + 1));
    assert_eq!(
        add_partitions(&mut c, 1, id, pid, epoch, "orders", &[0]).await,
        vec![INVALID_PRODUCER_EPOCH]
    );
    assert_eq!(
        add_partitions(&mut c, 3, id, pid, epoch, "orders", &[0]).await,
        vec![PRODUCER_FENCED]
    );
    assert_eq!(
        end_txn(&mut c, 1, id, pid, epoch, true).await,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        end_txn(&mut c, 3, id, pid, epoch, true).await,
        PRODUCER_FENCED
    );
    // The new producer adds partition 0; the zombie's batch is refused there too.
    assert_eq!(
        add_partitions(&mut c, 3, id, pid2, epoch2, "orders", &[0]).await,
        vec![NONE]
    );
    assert_eq!(
        produce_txn(
            &mut c,
            Some(id),
            "orders",
            0,
            txn_batch(pid, epoch, 8, &["zombie"])
        )
        .await,
        INVALID_PRODUCER_EPOCH
    );
    // An open transaction is aborted by the next InitProducerId (the client retries while it
    // is aborted), which bumps the epoch twice.
    assert_eq!(
        produce_txn(
            &mut c,
            Some(id),
            "orders",
            0,
            txn_batch(pid2, epoch2, 0, &["open"])
        )
        .await,
        NONE
    );
    let (_, epoch3) = init_pid_retrying(&mut c, id, 60_000).await;
    assert_eq!(epoch3, epoch2 + 2);
    let after = wait_stable(&mut c, "orders", 0).await;
    assert!(!after.values.contains(&"open".to_string()));

    let mut lr = ListTransactionsRequest::default();
    lr.state_filters.push(s("Empty"));
    lr.state_filters.push(s("NoSuchState"));
    {
        let r = c.send(1, lr).await;
        assert_eq!(r.unknown_state_filters, vec![s("NoSuchState")]);
        assert_eq!(r.transaction_states.len(), 1);
        assert_eq!(r.transaction_states[0].transactional_id.0.as_str(), id);
    }
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = common::wire::start_broker(
        tmp.path(),
        &[
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.num.partitions=2",
            "transaction.abort.timed.out.transaction.cleanup.interval.ms=100",
        ],
    )
    .await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "slow", 1).await, NONE);
    let id = "slow-writer";
    assert_eq!(find_txn_coordinator(&mut c, id).await, (NONE, 0));
    let (pid, epoch) = init_pid_retrying(&mut c, id, 500).await;
    assert_eq!(
        add_partitions(&mut c, 3, id, pid, epoch, "slow", &[0]).await,
        vec![NONE]
    );
    assert_eq!(
        produce_txn(
            &mut c,
            Some(id),
            "slow",
            0,
            txn_batch(pid, epoch, 0, &["late"])
        )
        .await,
        NONE
    );
    let aborted = describe_until(&mut c, id, "CompleteAbort").await;
    assert_eq!(
        aborted.producer_epoch,
        epoch + 1,
        "the abort fenced the producer"
    );
    let f = wait_stable(&mut c, "slow", 0).await;
    assert!(f.values.is_empty());
    assert_eq!(f.aborted, vec![(pid, 0)]);
    assert_eq!(
        end_txn(&mut c, 3, id, pid, epoch, true).await,
        PRODUCER_FENCED
    );
    broker.shutdown().await.unwrap();
}

/// Kafka 2.4.1 wrote `txn` (commit, abort, commit) and `__transaction_state-16`; served here,
/// both read as Kafka served them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_241_transactional_fixture_is_served_as_kafka_served_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("broker");
    common::kafka_single_broker_dir(&dir);
    let broker = BrokerProcess::start(&dir, &["broker.id=1"]);
    let mut c = Conn::connect(broker.port).await;

    // MANIFEST.md: 30 data records, the middle ten aborted; LSO 33; one aborted transaction
    // (producer 1 from offset 11).
    let committed = wait_stable(&mut c, "txn", 0).await;
    assert_eq!(committed.last_stable_offset, 33);
    assert_eq!(committed.aborted, vec![(1, 11)]);
    let expected: Vec<String> = (0..10)
        .map(|i| format!("txn0-commit-value-{i:02}"))
        .chain((0..10).map(|i| format!("txn2-commit-value-{i:02}")))
        .collect();
    assert_eq!(committed.values, expected);
    let all = fetch_values(&mut c, "txn", 0, false).await;
    assert_eq!(all.values.len(), 30);
    assert!(all.values.contains(&"txn1-abort-value-00".to_string()));

    // `fixture-txn` lives in __transaction_state-16, whose last record says CompleteCommit.
    assert_eq!(find_txn_coordinator(&mut c, "fixture-txn").await, (NONE, 1));
    let d = describe_until(&mut c, "fixture-txn", "CompleteCommit").await;
    assert_eq!(
        (d.producer_id.0, d.producer_epoch, d.transaction_timeout_ms),
        (1, 0, 60000)
    );
    // The same transactional id continues with producer 1, one epoch up.
    assert_eq!(
        init_pid_retrying(&mut c, "fixture-txn", 60000).await,
        (1, 1)
    );
    drop(broker);
}

async fn offset_fetch(c: &mut Conn, group: &str, topic: &str, require_stable: bool) -> (i16, i64) {
    let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = topic_name(topic);
    t.partition_indexes = vec![0];
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(s(group));
    r.topics = Some(vec![t]);
    r.require_stable = require_stable;
    let r = c.send(7, r).await;
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

async fn txn_offset_commit(
    c: &mut Conn,
    id: &str,
    group: &str,
    pid: i64,
    epoch: i16,
    topic: &str,
    offset: i64,
) -> i16 {
    let mut p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    p.committed_leader_epoch = -1;
    let mut t = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
    t.name = topic_name(topic);
    t.partitions.push(p);
    let mut r = TxnOffsetCommitRequest::default();
    r.transactional_id = tid(id);
    r.group_id = GroupId(s(group));
    r.producer_id = ProducerId(pid);
    r.producer_epoch = epoch;
    r.generation_id = -1;
    r.topics.push(t);
    c.send(3, r).await.topics[0].partitions[0].error_code
}

async fn add_offsets(c: &mut Conn, id: &str, pid: i64, epoch: i16, group: &str) -> i16 {
    let mut r = AddOffsetsToTxnRequest::default();
    r.transactional_id = tid(id);
    r.producer_id = ProducerId(pid);
    r.producer_epoch = epoch;
    r.group_id = GroupId(s(group));
    c.send(3, r).await.error_code
}

/// Until OffsetFetch with `require_stable` answers without UNSTABLE_OFFSET_COMMIT.
async fn stable_offset(c: &mut Conn, group: &str, topic: &str) -> i64 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (err, offset) = offset_fetch(c, group, topic, true).await;
        if err == NONE {
            return offset;
        }
        assert_eq!(
            err, 88,
            "UNSTABLE_OFFSET_COMMIT while the transaction is open"
        );
        assert!(Instant::now() < deadline, "the offset never became stable");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_offsets_take_effect_with_the_commit_marker_also_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let config = [
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.num.partitions=3",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=3",
    ];
    let broker = common::wire::start_broker(tmp.path(), &config).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "source", 1).await, NONE);
    common::wire::wait_for_group_coordinator(&mut c).await;
    let (id, group) = ("offsets-writer", "offsets-group");
    assert_eq!(find_txn_coordinator(&mut c, id).await, (NONE, 0));
    let (pid, epoch) = init_pid_retrying(&mut c, id, 60_000).await;

    for (offset, commit) in [(42, true), (50, false)] {
        assert_eq!(add_offsets(&mut c, id, pid, epoch, group).await, NONE);
        assert_eq!(
            txn_offset_commit(&mut c, id, group, pid, epoch, "source", offset).await,
            NONE
        );
        // Pending: read_committed consumers (require_stable) are told to wait, others see
        // the offset committed before.
        assert_eq!(offset_fetch(&mut c, group, "source", true).await.0, 88);
        let before = if commit { -1 } else { 42 };
        assert_eq!(
            offset_fetch(&mut c, group, "source", false).await,
            (NONE, before)
        );
        assert_eq!(end_txn(&mut c, 3, id, pid, epoch, commit).await, NONE);
        assert_eq!(stable_offset(&mut c, group, "source").await, 42);
        describe_until(
            &mut c,
            id,
            if commit {
                "CompleteCommit"
            } else {
                "CompleteAbort"
            },
        )
        .await;
    }
    broker.shutdown().await.unwrap();

    // Loaded back from __consumer_offsets: the committed transaction's offset, not the
    // aborted one's.
    let broker = common::wire::start_broker(tmp.path(), &config).await;
    let mut c = Conn::connect(broker.port).await;
    common::wire::wait_for_group_coordinator(&mut c).await;
    assert_eq!(stable_offset(&mut c, group, "source").await, 42);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_transactional_ids_expire_and_stay_gone_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let config = [
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.num.partitions=2",
        "transactional.id.expiration.ms=300",
        "transaction.remove.expired.transaction.cleanup.interval.ms=100",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=50",
    ];
    let broker = common::wire::start_broker(tmp.path(), &config).await;
    let mut c = Conn::connect(broker.port).await;
    let id = "short-lived";
    assert_eq!(find_txn_coordinator(&mut c, id).await, (NONE, 0));
    let (pid, _) = init_pid_retrying(&mut c, id, 60_000).await;
    assert_eq!(
        describe(&mut c, id).await.transaction_state.as_str(),
        "Empty"
    );
    let deadline = Instant::now() + DEADLINE;
    while describe(&mut c, id).await.error_code != 105 {
        assert!(Instant::now() < deadline, "{id} never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    broker.shutdown().await.unwrap();

    // The tombstone keeps it gone when the partition is loaded again.
    let broker = common::wire::start_broker(tmp.path(), &config).await;
    let mut c = Conn::connect(broker.port).await;
    let deadline = Instant::now() + DEADLINE;
    let code = loop {
        let code = describe(&mut c, id).await.error_code;
        if code != 14 && code != 16 {
            break code;
        }
        assert!(Instant::now() < deadline, "coordinator never loaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(code, 105, "TRANSACTIONAL_ID_NOT_FOUND");
    let (new_pid, epoch) = init_pid_retrying(&mut c, id, 60_000).await;
    assert_ne!(new_pid, pid, "a forgotten id starts with a new producer id");
    assert_eq!(epoch, 0);
    broker.shutdown().await.unwrap();
}

/// A coordinator that stopped after writing PrepareCommit (before the markers) leaves the
/// transaction to the next one: loading `__transaction_state` it finds the prepared
/// transaction, writes the markers and completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_transaction_found_at_load_is_completed() {
    let tmp = tempfile::tempdir().unwrap();
    let config = [
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.num.partitions=1",
    ];
    let broker = common::wire::start_broker(tmp.path(), &config).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "prepared", 1).await, NONE);
    let id = "prepared-writer";
    assert_eq!(find_txn_coordinator(&mut c, id).await, (NONE, 0));
    let (pid, epoch) = init_pid_retrying(&mut c, id, 60_000).await;
    assert_eq!(
        add_partitions(&mut c, 3, id, pid, epoch, "prepared", &[0]).await,
        vec![NONE]
    );
    assert_eq!(
        produce_txn(
            &mut c,
            Some(id),
            "prepared",
            0,
            txn_batch(pid, epoch, 0, &["a", "b"])
        )
        .await,
        NONE
    );
    assert!(
        fetch_values(&mut c, "prepared", 0, true)
            .await
            .values
            .is_empty()
    );
    broker.shutdown().await.unwrap();

    // What the coordinator would have written before the markers, in Kafka's format.
    let state_dir = tmp.path().join("__transaction_state-0");
    let mut log = common::open_log(&state_dir, Default::default(), true);
    let now = odradek::log::segment::now_ms();
    let value = odradek::txn::records::TxnValue {
        producer_id: pid,
        producer_epoch: epoch,
        timeout_ms: 60_000,
        state: odradek::txn::records::TxnState::PrepareCommit,
        partitions: [("prepared".to_string(), 0)].into_iter().collect(),
        last_update_timestamp: now,
        start_timestamp: now,
    };
    let batch = BatchBuilder {
        records: vec![NewRecord {
            timestamp: now,
            key: Some(odradek::txn::records::key(id)),
            value: Some(odradek::txn::records::value(&value)),
            headers: Vec::new(),
        }],
        ..BatchBuilder::default()
    }
    .build()
    .unwrap();
    log.append_as_leader(&Bytes::from(batch), 0).unwrap();
    log.close().unwrap();

    let broker = common::wire::start_broker(tmp.path(), &config).await;
    let mut c = Conn::connect(broker.port).await;
    let d = describe_until(&mut c, id, "CompleteCommit").await;
    assert_eq!((d.producer_id.0, d.producer_epoch), (pid, epoch));
    let f = wait_stable(&mut c, "prepared", 0).await;
    assert_eq!(f.values, vec!["a".to_string(), "b".to_string()]);
    broker.shutdown().await.unwrap();
}
