//! Replica assignment for new topics and partitions, as Kafka's `AdminUtils` does it when no
//! broker has a rack: partitions start on a random broker and follow round robin, and each
//! partition's followers are shifted by an amount that grows every full turn, so that losing one
//! broker spreads its leaders' load over all the others.

use std::collections::BTreeMap;

/// Replica lists for partitions `first_partition..first_partition + count` over `brokers`
/// (any order; sorted here as Kafka sorts them). `start` and `shift` are Kafka's random
/// `startIndex` and `nextReplicaShift`; `None` picks them at random.
pub fn assign_replicas(
    brokers: &[i32],
    count: i32,
    replication_factor: usize,
    first_partition: i32,
    start: Option<usize>,
    shift: Option<usize>,
) -> BTreeMap<i32, Vec<i32>> {
    let mut sorted = brokers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let n = sorted.len();
    let mut out = BTreeMap::new();
    if n == 0 || replication_factor == 0 || replication_factor > n {
        return out;
    }
    let start = start.unwrap_or_else(|| random_below(n));
    let mut shift = shift.unwrap_or_else(|| random_below(n));
    // For added partitions Kafka starts the round robin where the existing partitions left it.
    let first_index = first_partition.max(0) as usize;
    for (i, p) in (0..count.max(0)).zip(first_index..) {
        if p > 0 && p.is_multiple_of(n) {
            shift += 1;
        }
        let first = (p + start) % n;
        let mut replicas = vec![sorted[first]];
        for j in 0..replication_factor - 1 {
            replicas.push(sorted[replica_index(first, shift, j, n)]);
        }
        out.insert(first_partition + i, replicas);
    }
    out
}

fn replica_index(first: usize, shift: usize, j: usize, n: usize) -> usize {
    let step = 1 + (shift + j) % (n - 1);
    (first + step) % n
}

fn random_below(n: usize) -> usize {
    (uuid::Uuid::new_v4().as_u128() % n as u128) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's `AdminUtils` javadoc example: 5 brokers, 10 partitions, 3 replicas, start 0,
    /// shift 0 gives these lists.
    #[test]
    fn matches_kafkas_documented_layout() {
        let a = assign_replicas(&[4, 2, 0, 3, 1], 10, 3, 0, Some(0), Some(0));
        let expected: Vec<Vec<i32>> = vec![
            vec![0, 1, 2],
            vec![1, 2, 3],
            vec![2, 3, 4],
            vec![3, 4, 0],
            vec![4, 0, 1],
            vec![0, 2, 3],
            vec![1, 3, 4],
            vec![2, 4, 0],
            vec![3, 0, 1],
            vec![4, 1, 2],
        ];
        assert_eq!(a.values().cloned().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn every_broker_leads_evenly_and_replicas_are_distinct() {
        let a = assign_replicas(&[1, 2, 3], 6, 2, 0, None, None);
        let mut leaders = BTreeMap::new();
        for r in a.values() {
            assert_eq!(r.len(), 2);
            assert_ne!(r[0], r[1]);
            *leaders.entry(r[0]).or_insert(0) += 1;
        }
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
        assert!(assign_replicas(&[1], 1, 2, 0, None, None).is_empty());
    }
}
