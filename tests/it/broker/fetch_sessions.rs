//! Incremental fetch sessions (KIP-227) over the wire: a full fetch with epoch 0 opens a
//! session; fetches with the next epochs answer only partitions with news; forgotten
//! partitions leave the session; wrong epochs and unknown sessions are refused; epoch -1 closes.

use crate::common;

use std::time::{Duration, Instant};

use common::client_batch;
use common::wire::{Conn, create_topic, produce, start_broker as start, topic_name};
use kafka_protocol::messages::*;

const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
const FETCH_SESSION_TOPIC_ID_ERROR: i16 = 106;

/// A topic named by name (before v13) or by id (v13+).
#[derive(Clone, Copy)]
enum Topic<'a> {
    Name(&'a str),
    Id(uuid::Uuid),
}

fn partition(p: i32, offset: i64) -> fetch_request::FetchPartition {
    let mut fp = fetch_request::FetchPartition::default();
    fp.partition = p;
    fp.fetch_offset = offset;
    fp.partition_max_bytes = 1 << 20;
    fp
}

/// A fetch of `parts` (partition, offset) of `topic`, forgetting `forget`, in session
/// `session_id` at `epoch`.
fn session_fetch(
    session_id: i32,
    epoch: i32,
    topic: Topic,
    parts: &[(i32, i64)],
    forget: &[i32],
    max_wait_ms: i32,
) -> FetchRequest {
    let mut r = FetchRequest::default();
    r.replica_id = BrokerId(-1);
    r.max_wait_ms = max_wait_ms;
    r.min_bytes = 1;
    r.max_bytes = 50 << 20;
    r.session_id = session_id;
    r.session_epoch = epoch;
    if !parts.is_empty() {
        let mut t = fetch_request::FetchTopic::default();
        match topic {
            Topic::Name(n) => t.topic = topic_name(n),
            Topic::Id(id) => t.topic_id = id,
        }
        t.partitions = parts.iter().map(|&(p, o)| partition(p, o)).collect();
        r.topics.push(t);
    }
    if !forget.is_empty() {
        let mut f = fetch_request::ForgottenTopic::default();
        match topic {
            Topic::Name(n) => f.topic = topic_name(n),
            Topic::Id(id) => f.topic_id = id,
        }
        f.partitions = forget.to_vec();
        r.forgotten_topics_data.push(f);
    }
    r
}

async fn call(c: &mut Conn, version: i16, r: FetchRequest) -> FetchResponse {
    match c.call(ApiKey::Fetch, version, RequestKind::Fetch(r)).await {
        ResponseKind::Fetch(resp) => resp,
        other => panic!("{other:?}"),
    }
}

/// (partition, high watermark, record bytes) for every partition answered.
fn answered(resp: &FetchResponse) -> Vec<(i32, i64, usize)> {
    resp.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            assert_eq!(p.error_code, 0, "partition {}", p.partition_index);
            (
                p.partition_index,
                p.high_watermark,
                p.records.as_ref().map_or(0, |r| r.len()),
            )
        })
        .collect()
}

async fn topic_id(c: &mut Conn, topic: &str) -> uuid::Uuid {
    let m = common::wire::metadata_request(Some(&[topic]), true);
    match c.call(ApiKey::Metadata, 12, RequestKind::Metadata(m)).await {
        ResponseKind::Metadata(r) => r.topics[0].topic_id,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_fetches_answer_only_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "s", 2).await, 0);
    let t = Topic::Name("s");
    let batch = client_batch(0, 3, 10, 1, 0);
    assert_eq!(produce(&mut c, "s", 0, batch.clone()).await.error_code, 0);

    // Epoch 0: a full fetch, answered in full, opens a session.
    let full = call(
        &mut c,
        12,
        session_fetch(0, 0, t, &[(0, 0), (1, 0)], &[], 500),
    )
    .await;
    assert_eq!(full.error_code, 0);
    let id = full.session_id;
    assert_ne!(id, 0, "a full fetch with epoch 0 gets a session");
    assert_eq!(answered(&full), vec![(0, 3, batch.len()), (1, 0, 0)]);

    // Epoch 1: the consumer moves on in partition 0; nothing is new, so nothing is answered,
    // after waiting max_wait_ms as any fetch that finds too little does.
    let started = Instant::now();
    let none = call(&mut c, 12, session_fetch(id, 1, t, &[(0, 3)], &[], 400)).await;
    let waited = started.elapsed();
    assert_eq!((none.error_code, none.session_id), (0, id));
    assert!(answered(&none).is_empty(), "{none:?}");
    assert!(
        waited >= Duration::from_millis(390),
        "returned after {waited:?}"
    );

    // Epoch 2 names no partition: the session remembers both, and only the one produced to
    // comes back, with its records.
    let more = client_batch(0, 2, 10, 1, 0);
    assert_eq!(produce(&mut c, "s", 1, more.clone()).await.error_code, 0);
    let one = call(&mut c, 12, session_fetch(id, 2, t, &[], &[], 5000)).await;
    assert_eq!(one.session_id, id);
    assert_eq!(answered(&one), vec![(1, 2, more.len())]);

    // Epoch 3 forgets partition 0: its new records are not answered.
    assert_eq!(produce(&mut c, "s", 0, batch.clone()).await.error_code, 0);
    let forgot = call(&mut c, 12, session_fetch(id, 3, t, &[(1, 2)], &[0], 300)).await;
    assert_eq!((forgot.error_code, forgot.session_id), (0, id));
    assert!(answered(&forgot).is_empty(), "{forgot:?}");
    // Named again (epoch 4), it is back in the session and answered from the given offset.
    let back = call(&mut c, 12, session_fetch(id, 4, t, &[(0, 3)], &[], 5000)).await;
    assert_eq!(answered(&back), vec![(0, 6, batch.len())]);

    // A repeated epoch is refused, and so is a session that does not exist.
    let stale = call(&mut c, 12, session_fetch(id, 4, t, &[], &[], 0)).await;
    assert_eq!(stale.error_code, INVALID_FETCH_SESSION_EPOCH);
    assert!(stale.responses.is_empty());
    let unknown = call(&mut c, 12, session_fetch(id ^ 1, 1, t, &[], &[], 0)).await;
    assert_eq!(unknown.error_code, FETCH_SESSION_ID_NOT_FOUND);
    assert_eq!(unknown.session_id, 0);
    assert!(unknown.responses.is_empty());
    // The refusals did not disturb the session: epoch 5 still works.
    let ok = call(&mut c, 12, session_fetch(id, 5, t, &[], &[], 0)).await;
    assert_eq!((ok.error_code, ok.session_id), (0, id));

    // Epoch -1 closes it: the fetch is answered in full without a session, and the session
    // is gone.
    let closed = call(&mut c, 12, session_fetch(id, -1, t, &[(1, 0)], &[], 0)).await;
    assert_eq!((closed.error_code, closed.session_id), (0, 0));
    assert_eq!(answered(&closed), vec![(1, 2, more.len())]);
    let gone = call(&mut c, 12, session_fetch(id, 6, t, &[], &[], 0)).await;
    assert_eq!(gone.error_code, FETCH_SESSION_ID_NOT_FOUND);

    // Before v7 there are no sessions.
    let old = call(&mut c, 6, session_fetch(0, 0, t, &[(1, 0)], &[], 0)).await;
    assert_eq!(old.session_id, 0);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_by_topic_id_from_v13() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "ids", 2).await, 0);
    let uuid = topic_id(&mut c, "ids").await;
    assert!(!uuid.is_nil());
    let t = Topic::Id(uuid);

    let full = call(
        &mut c,
        13,
        session_fetch(0, 0, t, &[(0, 0), (1, 0)], &[], 0),
    )
    .await;
    let id = full.session_id;
    assert_ne!(id, 0);
    assert_eq!(full.responses.len(), 1);
    assert_eq!(full.responses[0].topic_id, uuid);

    // Forgetting by topic id, then producing to the forgotten partition and the kept one:
    // only the kept one is answered, echoing the topic id.
    let forgot = call(&mut c, 13, session_fetch(id, 1, t, &[], &[0], 0)).await;
    assert!(answered(&forgot).is_empty(), "{forgot:?}");
    let batch = client_batch(0, 4, 10, 1, 0);
    assert_eq!(produce(&mut c, "ids", 0, batch.clone()).await.error_code, 0);
    assert_eq!(produce(&mut c, "ids", 1, batch.clone()).await.error_code, 0);
    let one = call(&mut c, 13, session_fetch(id, 2, t, &[], &[], 5000)).await;
    assert_eq!(answered(&one), vec![(1, 4, batch.len())]);
    assert_eq!(one.responses[0].topic_id, uuid);

    // A session made with topic ids cannot be continued by a version that names topics.
    let by_name = call(
        &mut c,
        12,
        session_fetch(id, 3, Topic::Name("ids"), &[], &[], 0),
    )
    .await;
    assert_eq!(by_name.error_code, FETCH_SESSION_TOPIC_ID_ERROR);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cache_slots_means_sessionless_fetches() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &["max.incremental.fetch.session.cache.slots=0"]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "n", 1).await, 0);
    let full = call(
        &mut c,
        12,
        session_fetch(0, 0, Topic::Name("n"), &[(0, 0)], &[], 0),
    )
    .await;
    assert_eq!((full.error_code, full.session_id), (0, 0));
    assert_eq!(answered(&full), vec![(0, 0, 0)]);
    broker.shutdown().await.unwrap();
}
