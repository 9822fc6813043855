//! KIP-392's replica selection: which replica a consumer on Fetch v11+ should read from, as
//! Kafka's `ReplicaManager.findPreferredReadReplica` and its `ReplicaSelector`s decide on the
//! leader. The leader answers a consumer sent elsewhere with `preferred_read_replica` and no
//! records; followers serve consumers up to their high watermark.

use crate::config::ReplicaSelector;

/// One replica as a selector sees it (Kafka's `ReplicaView`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView {
    pub id: i32,
    pub rack: Option<String>,
    pub log_end_offset: i64,
    /// Milliseconds since the replica was last caught up with the leader (0 for the leader).
    pub since_caught_up_ms: i64,
}

/// The follower a consumer in `client_rack` is sent to, or `None` to read from the leader.
/// `followers` are the candidates Kafka offers the selector: in the ISR, holding the fetch
/// offset, reachable on the client's listener.
///
/// Kafka's `RackAwareReplicaSelector`: without a client rack, or when no replica is in it, or
/// when the leader is, the leader; else the most caught-up replica of that rack (highest log
/// end offset, then the most recently caught up).
pub fn select(
    selector: ReplicaSelector,
    client_rack: &str,
    leader: &ReplicaView,
    followers: &[ReplicaView],
) -> Option<i32> {
    match selector {
        ReplicaSelector::None | ReplicaSelector::Leader => None,
        ReplicaSelector::RackAware => {
            if client_rack.is_empty() || leader.rack.as_deref() == Some(client_rack) {
                return None;
            }
            followers
                .iter()
                .filter(|r| r.rack.as_deref() == Some(client_rack) && r.id != leader.id)
                .max_by(|a, b| {
                    a.log_end_offset
                        .cmp(&b.log_end_offset)
                        .then(b.since_caught_up_ms.cmp(&a.since_caught_up_ms))
                })
                .map(|r| r.id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: i32, rack: &str, leo: i64, since: i64) -> ReplicaView {
        ReplicaView {
            id,
            rack: (!rack.is_empty()).then(|| rack.to_string()),
            log_end_offset: leo,
            since_caught_up_ms: since,
        }
    }

    #[test]
    fn rack_aware_picks_the_most_caught_up_replica_of_the_clients_rack() {
        let rack_aware = ReplicaSelector::RackAware;
        let leader = view(1, "a", 100, 0);
        let followers = [
            view(2, "b", 100, 0),
            view(3, "c", 90, 0),
            view(4, "c", 100, 500),
            view(5, "c", 100, 20),
        ];
        assert_eq!(select(rack_aware, "c", &leader, &followers), Some(5));
        assert_eq!(select(rack_aware, "b", &leader, &followers), Some(2));
        assert_eq!(
            select(rack_aware, "a", &leader, &followers),
            None,
            "the leader's rack"
        );
        assert_eq!(
            select(rack_aware, "z", &leader, &followers),
            None,
            "no replica there"
        );
        assert_eq!(
            select(rack_aware, "", &leader, &followers),
            None,
            "no client rack"
        );
        assert_eq!(
            select(ReplicaSelector::Leader, "c", &leader, &followers),
            None
        );
        assert_eq!(
            select(ReplicaSelector::None, "c", &leader, &followers),
            None
        );
    }
}
