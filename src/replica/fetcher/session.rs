//! The follower's side of a KIP-227 fetch session (Kafka's `FetchSessionHandler`) and the
//! Fetch request built from it: which partitions a request names, which it forgets, and the
//! session id and epoch it carries. Separate from the fetch loop (`fetcher.rs`) because it is
//! pure bookkeeping over what was last sent, testable without a leader.

use std::collections::{HashMap, HashSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic, ReplicaState,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::FetcherConfig;
use crate::protocol::fetch_metadata::{NO_SESSION, next_epoch};
use crate::replica::TopicPartition;

/// Where a follower's log stands, for its next fetch.
pub(super) struct Position {
    pub(super) fetch_offset: i64,
    pub(super) log_start_offset: i64,
    pub(super) last_fetched_epoch: i32,
}

/// What the leader's fetch session holds for one partition: when any of it changes, the
/// partition is named again (Kafka's `FetchRequest.PartitionData` equality).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SentState {
    fetch_offset: i64,
    log_start_offset: i64,
    last_fetched_epoch: i32,
    current_leader_epoch: i32,
    max_bytes: i32,
}

/// The follower's side of a fetch session with one leader (Kafka's `FetchSessionHandler`).
pub(super) struct FetchSession {
    /// `NO_SESSION` until the leader creates one.
    pub(super) id: i32,
    /// The epoch of the next request: 0 is a full fetch asking for a new session (and closing
    /// `id`, if any).
    pub(super) epoch: i32,
    /// The partitions the leader's session holds, as last sent.
    sent: HashMap<TopicPartition, SentState>,
}

/// What one request asks: the partitions to name, and those the session should drop.
pub(super) struct SessionRequest {
    send: Vec<usize>,
    forget: Vec<TopicPartition>,
}

impl FetchSession {
    pub(super) fn new() -> Self {
        FetchSession {
            id: NO_SESSION,
            epoch: 0,
            sent: HashMap::new(),
        }
    }

    /// Kafka's `FetchSessionHandler.Builder.build`: a full fetch names every partition; an
    /// incremental one those added or changed since the last request, and forgets those no
    /// longer fetched (removed, or backing off after an error).
    pub(super) fn build(&mut self, next: &[(TopicPartition, SentState)]) -> SessionRequest {
        if self.epoch == 0 {
            self.sent = next.iter().cloned().collect();
            return SessionRequest {
                send: (0..next.len()).collect(),
                forget: Vec::new(),
            };
        }
        let mut send = Vec::new();
        let mut wanted: HashSet<&TopicPartition> = HashSet::with_capacity(next.len());
        for (i, (tp, state)) in next.iter().enumerate() {
            wanted.insert(tp);
            if self.sent.get(tp) != Some(state) {
                self.sent.insert(tp.clone(), *state);
                send.push(i);
            }
        }
        let forget: Vec<TopicPartition> = self
            .sent
            .keys()
            .filter(|tp| !wanted.contains(tp))
            .cloned()
            .collect();
        for tp in &forget {
            self.sent.remove(tp);
        }
        SessionRequest { send, forget }
    }

    /// Kafka's `handleResponse` for an answer without a top-level error: a session id of 0
    /// means the leader keeps none (no free slot, or a leader without sessions), so the next
    /// request is full again.
    pub(super) fn answered(&mut self, full: bool, session_id: i32) {
        if session_id == NO_SESSION {
            self.id = NO_SESSION;
            self.epoch = 0;
        } else if full {
            self.id = session_id;
            self.epoch = 1;
        } else {
            self.epoch = next_epoch(self.epoch);
        }
    }

    /// A refused fetch or a failed connection: the leader's session state is unknown, so the
    /// next request is full, closing the old session (unless the leader no longer knows it).
    pub(super) fn reset(&mut self, error: i16) {
        if error == ResponseError::FetchSessionIdNotFound.code() {
            self.id = NO_SESSION;
        }
        self.epoch = 0;
    }
}

/// The follower's fetch in its newest shape (`client::fit` reshapes it for the version sent).
pub(super) fn fetch_request<P>(
    me: i32,
    config: &FetcherConfig,
    session: &mut FetchSession,
    ready: &[(TopicPartition, P, i32)],
    positions: &[Position],
    ids: &HashMap<String, uuid::Uuid>,
) -> FetchRequest {
    let id_of = |topic: &str| ids.get(topic).copied().unwrap_or_else(uuid::Uuid::nil);
    let next: Vec<(TopicPartition, SentState)> = ready
        .iter()
        .zip(positions)
        .map(|((tp, _, epoch), pos)| {
            let state = SentState {
                fetch_offset: pos.fetch_offset,
                log_start_offset: pos.log_start_offset,
                last_fetched_epoch: pos.last_fetched_epoch,
                current_leader_epoch: *epoch,
                max_bytes: config.partition_max_bytes,
            };
            (tp.clone(), state)
        })
        .collect();
    let asked = session.build(&next);
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (tp, state) in asked.send.iter().map(|&i| &next[i]) {
        let mut fp = FetchPartition::default();
        fp.partition = tp.1;
        fp.current_leader_epoch = state.current_leader_epoch;
        fp.fetch_offset = state.fetch_offset;
        fp.last_fetched_epoch = state.last_fetched_epoch;
        fp.log_start_offset = state.log_start_offset;
        fp.partition_max_bytes = state.max_bytes;
        match topics.iter_mut().find(|t| t.topic.0.as_str() == tp.0) {
            Some(t) => t.partitions.push(fp),
            None => {
                let mut t = FetchTopic::default();
                t.topic = TopicName(StrBytes::from_string(tp.0.clone()));
                t.topic_id = id_of(&tp.0);
                t.partitions.push(fp);
                topics.push(t);
            }
        }
    }
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(me);
    let mut state = ReplicaState::default();
    state.replica_id = BrokerId(me);
    state.replica_epoch = -1;
    req.replica_state = state;
    req.max_wait_ms = config.max_wait_ms;
    req.min_bytes = config.min_bytes;
    req.max_bytes = config.max_bytes;
    req.isolation_level = 0;
    req.session_id = session.id;
    req.session_epoch = session.epoch;
    req.topics = topics;
    for (topic, partition) in asked.forget {
        match req
            .forgotten_topics_data
            .iter_mut()
            .find(|t| t.topic.0.as_str() == topic)
        {
            Some(t) => t.partitions.push(partition),
            None => {
                let mut t = ForgottenTopic::default();
                t.topic_id = id_of(&topic);
                t.topic = TopicName(StrBytes::from_string(topic));
                t.partitions.push(partition);
                req.forgotten_topics_data.push(t);
            }
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiKey;

    fn state(fetch_offset: i64) -> SentState {
        SentState {
            fetch_offset,
            log_start_offset: 0,
            last_fetched_epoch: 0,
            current_leader_epoch: 0,
            max_bytes: 1 << 20,
        }
    }

    fn tp(p: i32) -> TopicPartition {
        ("t".to_string(), p)
    }

    fn forgotten(r: &SessionRequest) -> Vec<i32> {
        let mut out: Vec<i32> = r.forget.iter().map(|tp| tp.1).collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn after_a_full_fetch_only_changes_and_removals_are_sent() {
        let mut s = FetchSession::new();
        let all = [(tp(0), state(5)), (tp(1), state(7)), (tp(2), state(9))];
        assert_eq!(s.build(&all).send, vec![0, 1, 2]);
        s.answered(true, 42);
        assert_eq!((s.id, s.epoch), (42, 1));

        // Nothing changed: an empty incremental fetch.
        let r = s.build(&all);
        assert!(r.send.is_empty() && r.forget.is_empty());
        s.answered(false, 42);
        assert_eq!(s.epoch, 2);

        // Partition 1 advanced, partition 2 backs off (not fetched), partition 3 is new.
        let mut changed = state(8);
        changed.current_leader_epoch = 3;
        let next = [(tp(0), state(5)), (tp(1), changed), (tp(3), state(0))];
        let r = s.build(&next);
        assert_eq!(r.send, vec![1, 2]);
        assert_eq!(forgotten(&r), vec![2]);
        s.answered(false, 42);

        // Partition 2 back: named again, though its state is what was sent before.
        let next = [(tp(0), state(5)), (tp(1), changed), (tp(2), state(9))];
        let r = s.build(&next);
        assert_eq!(r.send, vec![2]);
        assert_eq!(forgotten(&r), vec![3]);
    }

    #[test]
    fn errors_and_sessionless_leaders_mean_full_fetches() {
        let mut s = FetchSession::new();
        let all = [(tp(0), state(5)), (tp(1), state(7))];
        s.build(&all);
        s.answered(true, 42);
        s.build(&all);
        s.answered(false, 42);
        // INVALID_FETCH_SESSION_EPOCH: close the session and ask for a new one.
        s.reset(ResponseError::InvalidFetchSessionEpoch.code());
        assert_eq!((s.id, s.epoch), (42, 0));
        assert_eq!(s.build(&all).send, vec![0, 1]);
        // FETCH_SESSION_ID_NOT_FOUND: the leader has no such session to close.
        s.reset(ResponseError::FetchSessionIdNotFound.code());
        assert_eq!((s.id, s.epoch), (0, 0));
        // A leader keeping no session: every fetch stays full.
        s.build(&all);
        s.answered(true, 0);
        assert_eq!((s.id, s.epoch), (0, 0));
        assert_eq!(s.build(&all).send, vec![0, 1]);
    }

    /// Every Fetch version a leader of Kafka 2.4 to 3.9 may answer at most (v4 is odradek's
    /// lowest) encodes the follower's request and carries what that version can: Kafka 2.4's
    /// leaders stop at v11, which has no `last_fetched_epoch`.
    #[test]
    fn the_followers_fetch_encodes_at_every_version() {
        use kafka_protocol::messages::{RequestHeader, RequestKind};
        use kafka_protocol::protocol::Decodable;

        let config = FetcherConfig::default();
        let id = uuid::Uuid::from_u128(0x1234);
        let ids = HashMap::from([("t".to_string(), id)]);
        let mut session = FetchSession::new();
        let mut first = FetchSession::new();
        let full = fetch_request(
            7,
            &config,
            &mut first,
            &[(tp(0), (), 3), (tp(1), (), 3)],
            &[
                Position {
                    fetch_offset: 42,
                    log_start_offset: 5,
                    last_fetched_epoch: 2,
                },
                Position {
                    fetch_offset: 9,
                    log_start_offset: 0,
                    last_fetched_epoch: 3,
                },
            ],
            &ids,
        );
        // An incremental one, forgetting partition 1.
        session.build(&[(tp(0), state(42)), (tp(1), state(9))]);
        session.answered(true, 11);
        let incremental = fetch_request(
            7,
            &config,
            &mut session,
            &[(tp(0), (), 3)],
            &[Position {
                fetch_offset: 43,
                log_start_offset: 5,
                last_fetched_epoch: 2,
            }],
            &ids,
        );
        assert_eq!(incremental.forgotten_topics_data.len(), 1);
        for version in 4..=17 {
            for built in [&full, &incremental] {
                let mut request = RequestKind::Fetch(built.clone());
                crate::client::fit(ApiKey::Fetch, version, &mut request);
                let mut frame = crate::protocol::frame::encode_request(
                    ApiKey::Fetch,
                    version,
                    1,
                    None,
                    &request,
                )
                .unwrap_or_else(|e| panic!("Fetch v{version} does not encode: {e}"));
                let mut body = frame.split_off(4).freeze();
                RequestHeader::decode(&mut body, ApiKey::Fetch.request_header_version(version))
                    .expect("header");
                let sent = FetchRequest::decode(&mut body, version).expect("body");
                let replica = if version >= 15 {
                    sent.replica_state.replica_id.0
                } else {
                    sent.replica_id.0
                };
                assert_eq!(replica, 7, "v{version} names the follower");
                if version >= 13 {
                    assert_eq!(sent.topics[0].topic_id, id, "v{version} names topics by id");
                } else {
                    assert_eq!(sent.topics[0].topic.0.as_str(), "t");
                }
                let p = &sent.topics[0].partitions[0];
                assert_eq!(p.fetch_offset, built.topics[0].partitions[0].fetch_offset);
                assert_eq!(p.log_start_offset, if version >= 5 { 5 } else { -1 });
                assert_eq!(p.current_leader_epoch, if version >= 9 { 3 } else { -1 });
                assert_eq!(p.last_fetched_epoch, if version >= 12 { 2 } else { -1 });
                if version >= 7 {
                    assert_eq!(sent.session_id, built.session_id);
                    assert_eq!(
                        sent.forgotten_topics_data.len(),
                        built.forgotten_topics_data.len()
                    );
                    if version >= 13 && !sent.forgotten_topics_data.is_empty() {
                        assert_eq!(sent.forgotten_topics_data[0].topic_id, id);
                    }
                }
            }
        }
    }

    #[test]
    fn session_epochs_wrap_to_one() {
        let mut s = FetchSession::new();
        s.build(&[(tp(0), state(0))]);
        s.answered(true, 7);
        s.epoch = i32::MAX;
        s.answered(false, 7);
        assert_eq!(s.epoch, 1);
    }
}
