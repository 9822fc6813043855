//! Replica assignment for new topics and partitions, as Kafka's `AdminUtils` does it.
//!
//! Without racks, partitions start on a random broker and follow round robin, and each
//! partition's followers are shifted by an amount that grows every full turn, so that losing one
//! broker spreads its leaders' load over all the others. When every broker has a rack, the same
//! round robin runs over a list that alternates racks, and followers skip racks that already
//! hold a replica of the partition until every rack has one, so that losing a rack loses no
//! partition while the replication factor allows it.

use std::collections::{BTreeMap, BTreeSet};

/// Some brokers have a rack and others not: Kafka refuses to guess (`AdminOperationException`,
/// "Not all brokers have rack information").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not all brokers have rack information (brokers without broker.rack: {without:?})")]
pub struct IncompleteRacks {
    pub without: Vec<i32>,
}

/// Replica lists for partitions `first_partition..first_partition + count` over `brokers`
/// (id and `broker.rack`, any order). `start` and `shift` are Kafka's random `startIndex` and
/// `nextReplicaShift`; `None` picks them at random. Rack-aware as soon as one broker has a rack,
/// which then requires all of them to have one.
pub fn assign_replicas(
    brokers: &[(i32, Option<&str>)],
    count: i32,
    replication_factor: usize,
    first_partition: i32,
    start: Option<usize>,
    shift: Option<usize>,
) -> Result<BTreeMap<i32, Vec<i32>>, IncompleteRacks> {
    let mut racks: BTreeMap<i32, &str> = BTreeMap::new();
    let mut without = Vec::new();
    for (id, rack) in brokers {
        match rack {
            Some(r) => {
                racks.insert(*id, r);
            }
            None => without.push(*id),
        }
    }
    if racks.is_empty() {
        let ids: Vec<i32> = brokers.iter().map(|(id, _)| *id).collect();
        return Ok(assign_rack_unaware(
            &ids,
            count,
            replication_factor,
            first_partition,
            start,
            shift,
        ));
    }
    if !without.is_empty() {
        without.sort_unstable();
        without.dedup();
        return Err(IncompleteRacks { without });
    }
    Ok(assign_rack_aware(
        &racks,
        count,
        replication_factor,
        first_partition,
        start,
        shift,
    ))
}

fn assign_rack_unaware(
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

/// Kafka's `assignReplicasToBrokersRackAware`, over `racks` (broker id to rack).
fn assign_rack_aware(
    racks: &BTreeMap<i32, &str>,
    count: i32,
    replication_factor: usize,
    first_partition: i32,
    start: Option<usize>,
    shift: Option<usize>,
) -> BTreeMap<i32, Vec<i32>> {
    let arranged = rack_alternated(racks);
    let n = arranged.len();
    let num_racks = racks.values().collect::<BTreeSet<_>>().len();
    let mut out = BTreeMap::new();
    if n == 0 || replication_factor == 0 || replication_factor > n {
        return out;
    }
    let start = start.unwrap_or_else(|| random_below(n));
    let mut shift = shift.unwrap_or_else(|| random_below(n));
    let first_index = first_partition.max(0) as usize;
    for (i, p) in (0..count.max(0)).zip(first_index..) {
        if p > 0 && p.is_multiple_of(n) {
            shift += 1;
        }
        let first = (p + start) % n;
        let leader = arranged[first];
        let mut replicas = vec![leader];
        let mut racks_used = BTreeSet::from([racks[&leader]]);
        let mut k = 0;
        for _ in 1..replication_factor {
            // Successive k visit every broker but the leader within n - 1 steps, and one of
            // them is always acceptable (replication_factor <= n), so this scan always adds one.
            let give_up = k + n;
            while k < give_up {
                let broker = arranged[replica_index(first, shift * num_racks, k, n)];
                k += 1;
                let rack = racks[&broker];
                // A rack that already has a replica waits until every rack has one; a broker
                // that has one waits until every broker has one.
                if (!racks_used.contains(rack) || racks_used.len() == num_racks)
                    && (!replicas.contains(&broker) || replicas.len() == n)
                {
                    replicas.push(broker);
                    racks_used.insert(rack);
                    break;
                }
            }
        }
        out.insert(first_partition + i, replicas);
    }
    out
}

/// Brokers taken from each rack in turn (racks in name order, brokers by id within a rack):
/// `rack1: 0, 1, 2; rack2: 3, 4; rack3: 6` gives `0, 3, 6, 1, 4, 2`.
fn rack_alternated(racks: &BTreeMap<i32, &str>) -> Vec<i32> {
    let mut by_rack: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    // `racks` iterates in id order, so each rack's list comes out sorted.
    for (id, rack) in racks {
        by_rack.entry(rack).or_default().push(*id);
    }
    let longest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|round| {
            by_rack
                .values()
                .filter_map(move |ids| ids.get(round).copied())
        })
        .collect()
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

    fn no_racks(ids: &[i32]) -> Vec<(i32, Option<&'static str>)> {
        ids.iter().map(|id| (*id, None)).collect()
    }

    fn with_racks(racks: &[(i32, &'static str)]) -> Vec<(i32, Option<&'static str>)> {
        racks.iter().map(|(id, r)| (*id, Some(*r))).collect()
    }

    fn lists(a: &BTreeMap<i32, Vec<i32>>) -> Vec<Vec<i32>> {
        a.values().cloned().collect()
    }

    /// Kafka's `AdminUtils` javadoc example: 5 brokers, 10 partitions, 3 replicas, start 0,
    /// shift 0 gives these lists.
    #[test]
    fn matches_kafkas_documented_layout() {
        let a = assign_replicas(&no_racks(&[4, 2, 0, 3, 1]), 10, 3, 0, Some(0), Some(0)).unwrap();
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
        assert_eq!(lists(&a), expected);
    }

    #[test]
    fn every_broker_leads_evenly_and_replicas_are_distinct() {
        let a = assign_replicas(&no_racks(&[1, 2, 3]), 6, 2, 0, None, None).unwrap();
        let mut leaders = BTreeMap::new();
        for r in a.values() {
            assert_eq!(r.len(), 2);
            assert_ne!(r[0], r[1]);
            *leaders.entry(r[0]).or_insert(0) += 1;
        }
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
        assert!(
            assign_replicas(&no_racks(&[1]), 1, 2, 0, None, None)
                .unwrap()
                .is_empty()
        );
    }

    /// Kafka's `AdminUtils` javadoc example: racks 0 -> rack1, 1 -> rack3, 2 -> rack3,
    /// 3 -> rack2, 4 -> rack2, 5 -> rack1 alternate as 0, 3, 1, 5, 4, 2; with start 0 and
    /// shift 0 the first six partitions walk that list, and the seventh starts a new turn with
    /// the followers shifted by one turn times the number of racks: 0, 4, 2.
    #[test]
    fn rack_aware_matches_kafkas_documented_layout() {
        let racks = [
            (0, "rack1"),
            (1, "rack3"),
            (2, "rack3"),
            (3, "rack2"),
            (4, "rack2"),
            (5, "rack1"),
        ];
        let map: BTreeMap<i32, &str> = racks.iter().copied().collect();
        assert_eq!(rack_alternated(&map), vec![0, 3, 1, 5, 4, 2]);
        let without_5: BTreeMap<i32, &str> = racks[..5].iter().copied().collect();
        assert_eq!(rack_alternated(&without_5), vec![0, 3, 1, 4, 2]);
        let a = assign_replicas(&with_racks(&racks), 7, 3, 0, Some(0), Some(0)).unwrap();
        let expected: Vec<Vec<i32>> = vec![
            vec![0, 3, 1],
            vec![3, 1, 5],
            vec![1, 5, 4],
            vec![5, 4, 2],
            vec![4, 2, 0],
            vec![2, 0, 3],
            vec![0, 4, 2],
        ];
        assert_eq!(lists(&a), expected);
    }

    /// Two brokers in rack a, one in b, worked through by hand: the list is 1, 3, 2; a
    /// follower in the leader's rack is skipped while rack b has no replica (partitions 2
    /// and 5, whose first candidate is broker 1).
    #[test]
    fn uneven_racks_still_put_each_partition_in_both() {
        let brokers = with_racks(&[(2, "a"), (3, "b"), (1, "a")]);
        let a = assign_replicas(&brokers, 6, 2, 0, Some(0), Some(0)).unwrap();
        let expected: Vec<Vec<i32>> = vec![
            vec![1, 3],
            vec![3, 2],
            vec![2, 3],
            vec![1, 3],
            vec![3, 2],
            vec![2, 3],
        ];
        assert_eq!(lists(&a), expected);
    }

    /// Any start and shift: each partition's replicas are distinct and in distinct racks while
    /// the replication factor does not exceed the racks, cover every rack when it does, and
    /// leaders are spread evenly when the partitions fill whole turns.
    #[test]
    fn rack_aware_spreads_replicas_over_racks_and_leaders_over_brokers() {
        let racks = [
            (0, "rack1"),
            (1, "rack2"),
            (2, "rack2"),
            (3, "rack3"),
            (4, "rack3"),
            (5, "rack1"),
        ];
        let rack_of: BTreeMap<i32, &str> = racks.iter().copied().collect();
        for rf in 1..=4 {
            for start in 0..6 {
                for shift in 0..6 {
                    let a =
                        assign_replicas(&with_racks(&racks), 12, rf, 0, Some(start), Some(shift))
                            .unwrap();
                    assert_eq!(a.len(), 12);
                    let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
                    for replicas in a.values() {
                        assert_eq!(replicas.len(), rf);
                        let distinct: BTreeSet<i32> = replicas.iter().copied().collect();
                        assert_eq!(distinct.len(), rf, "{replicas:?}");
                        let in_racks: BTreeSet<&str> =
                            replicas.iter().map(|b| rack_of[b]).collect();
                        assert_eq!(in_racks.len(), rf.min(3), "{replicas:?}");
                        *leaders.entry(replicas[0]).or_default() += 1;
                    }
                    assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2; 6]);
                }
            }
        }
    }

    /// Added partitions continue the turn where the existing ones stopped: growing a topic
    /// from 4 to 7 partitions gives the lists creating it with 7 would have.
    #[test]
    fn rack_aware_expansion_continues_the_round_robin() {
        let brokers = with_racks(&[(6, "r1"), (7, "r2"), (8, "r2"), (9, "r3"), (10, "r1")]);
        let whole = assign_replicas(&brokers, 7, 2, 0, Some(1), Some(1)).unwrap();
        let added = assign_replicas(&brokers, 3, 2, 4, Some(1), Some(1)).unwrap();
        let tail: BTreeMap<i32, Vec<i32>> = whole.into_iter().filter(|(p, _)| *p >= 4).collect();
        assert_eq!(added, tail);
    }

    #[test]
    fn some_brokers_without_a_rack_is_an_error() {
        let brokers = vec![(1, Some("a")), (3, None), (2, Some("b")), (0, None)];
        assert_eq!(
            assign_replicas(&brokers, 3, 1, 0, None, None),
            Err(IncompleteRacks {
                without: vec![0, 3]
            })
        );
    }
}
