//! The records Kafka's `TransactionStateManager` writes to `__transaction_state`: key
//! (version 0, transactional id) and value (version 0: producer id and epoch, timeout, state,
//! partitions, timestamps), in the classic encoding, so that Kafka's tools decode ours and a
//! Kafka-written log loads here. A null value is a tombstone (an expired transactional id).

use std::collections::BTreeSet;

use crate::group::records::{Fields, Reader, RecordError, put_str};

type Result<T> = std::result::Result<T, RecordError>;

/// Kafka's `TransactionState`, with its ids as written in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

impl TxnState {
    pub fn from_id(id: i8) -> Option<TxnState> {
        use TxnState::*;
        Some(match id {
            0 => Empty,
            1 => Ongoing,
            2 => PrepareCommit,
            3 => PrepareAbort,
            4 => CompleteCommit,
            5 => CompleteAbort,
            6 => Dead,
            7 => PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions use (Kafka's `stateName`).
    pub fn name(self) -> &'static str {
        use TxnState::*;
        match self {
            Empty => "Empty",
            Ongoing => "Ongoing",
            PrepareCommit => "PrepareCommit",
            PrepareAbort => "PrepareAbort",
            CompleteCommit => "CompleteCommit",
            CompleteAbort => "CompleteAbort",
            Dead => "Dead",
            PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

/// One transactional id's state as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub last_update_timestamp: i64,
    pub start_timestamp: i64,
}

pub fn key(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.extend_from_slice(&0i16.to_be_bytes());
    put_str(&mut out, transactional_id);
    out
}

/// The transactional id of a key; `None` for a key version Kafka would skip as unknown.
pub fn decode_key(key: &[u8]) -> Result<Option<String>> {
    let mut r = Reader::new(key);
    match r.i16()? {
        0 => Ok(Some(r.str()?)),
        _ => Ok(None),
    }
}

pub fn value(v: &TxnValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&v.producer_id.to_be_bytes());
    out.extend_from_slice(&v.producer_epoch.to_be_bytes());
    out.extend_from_slice(&v.timeout_ms.to_be_bytes());
    out.push(v.state as u8);
    if v.state == TxnState::Empty {
        // Kafka writes a null partition list for Empty, an (often empty) array otherwise.
        out.extend_from_slice(&(-1i32).to_be_bytes());
    } else {
        let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
        for (topic, partition) in &v.partitions {
            match topics.last_mut() {
                Some((t, ps)) if *t == topic.as_str() => ps.push(*partition),
                _ => topics.push((topic, vec![*partition])),
            }
        }
        out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for (topic, partitions) in topics {
            put_str(&mut out, topic);
            out.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
            for p in partitions {
                out.extend_from_slice(&p.to_be_bytes());
            }
        }
    }
    out.extend_from_slice(&v.last_update_timestamp.to_be_bytes());
    out.extend_from_slice(&v.start_timestamp.to_be_bytes());
    out
}

/// Decodes a value of version 0 (what Kafka's ZooKeeper-mode coordinators write) or 1 (the
/// flexible version newer coordinators write with `transaction.version` 2: compact strings and
/// arrays, tagged fields, none of which this broker needs, after each struct).
pub fn decode_value(value: &[u8]) -> Result<TxnValue> {
    let mut r = Reader::new(value);
    let version = r.i16()?;
    if !(0..=1).contains(&version) {
        return Err(RecordError(format!(
            "__transaction_state value version {version}"
        )));
    }
    let mut f = Fields {
        r: &mut r,
        flexible: version >= 1,
    };
    let producer_id = f.r.i64()?;
    let producer_epoch = f.r.i16()?;
    let timeout_ms = f.r.i32()?;
    let state_id = f.r.i8()?;
    let state = TxnState::from_id(state_id)
        .ok_or_else(|| RecordError(format!("unknown transaction state {state_id}")))?;
    let mut partitions = BTreeSet::new();
    for _ in 0..f.array_len()? {
        let topic = f.str()?;
        for _ in 0..f.array_len()? {
            partitions.insert((topic.clone(), f.r.i32()?));
        }
        f.end_struct()?;
    }
    let last_update_timestamp = f.r.i64()?;
    let start_timestamp = f.r.i64()?;
    f.end_struct()?;
    if state == TxnState::Empty {
        partitions.clear();
    }
    Ok(TxnValue {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_timestamp,
        start_timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 1 (flexible) as a newer coordinator writes it: compact strings and arrays, and
    /// tagged fields (here unknown ones) after each struct.
    #[test]
    fn flexible_v1_values_are_read() {
        let mut v = vec![0, 1];
        v.extend_from_slice(&5i64.to_be_bytes());
        v.extend_from_slice(&2i16.to_be_bytes());
        v.extend_from_slice(&60000i32.to_be_bytes());
        v.push(TxnState::Ongoing as u8);
        v.push(3); // two topics
        v.extend_from_slice(&[2, b'a']);
        v.push(3); // two partitions
        v.extend_from_slice(&0i32.to_be_bytes());
        v.extend_from_slice(&4i32.to_be_bytes());
        v.push(0); // the topic's tagged fields
        v.extend_from_slice(&[3, b'b', b'c']);
        v.push(1); // no partitions
        v.extend_from_slice(&[1, 9, 1, 0xff]); // one unknown tagged field
        v.extend_from_slice(&77i64.to_be_bytes());
        v.extend_from_slice(&70i64.to_be_bytes());
        // ClientTransactionVersion and friends as tagged fields: skipped.
        v.extend_from_slice(&[2, 0, 2, 0, 2, 1, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
        let expected = TxnValue {
            producer_id: 5,
            producer_epoch: 2,
            timeout_ms: 60000,
            state: TxnState::Ongoing,
            partitions: [("a".to_string(), 0), ("a".to_string(), 4)].into(),
            last_update_timestamp: 77,
            start_timestamp: 70,
        };
        assert_eq!(decode_value(&v).unwrap(), expected);
        assert!(decode_value(&v[..v.len() - 3]).is_err());

        // Empty, with a null partition list.
        let mut e = vec![0, 1];
        e.extend_from_slice(&5i64.to_be_bytes());
        e.extend_from_slice(&3i16.to_be_bytes());
        e.extend_from_slice(&60000i32.to_be_bytes());
        e.push(TxnState::Empty as u8);
        e.push(0); // null
        e.extend_from_slice(&78i64.to_be_bytes());
        e.extend_from_slice(&(-1i64).to_be_bytes());
        e.push(0);
        let empty = decode_value(&e).unwrap();
        assert_eq!((empty.state, empty.producer_epoch), (TxnState::Empty, 3));
        assert!(empty.partitions.is_empty());
        let mut v2 = e.clone();
        v2[1] = 2;
        assert!(decode_value(&v2).is_err());
    }

    #[test]
    fn sizes_match_kafka_records() {
        // expected-dump-transaction-state-16.txt: keysize 15, valuesize 37 (no partitions)
        // and 50 (partitions txn-0).
        assert_eq!(key("fixture-txn").len(), 15);
        let mut v = TxnValue {
            producer_id: 1,
            producer_epoch: 0,
            timeout_ms: 60000,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            last_update_timestamp: 1,
            start_timestamp: -1,
        };
        assert_eq!(value(&v).len(), 37);
        v.state = TxnState::Ongoing;
        v.partitions.insert(("txn".into(), 0));
        let bytes = value(&v);
        assert_eq!(bytes.len(), 50);
        assert_eq!(decode_value(&bytes).unwrap(), v);
        assert_eq!(
            decode_key(&key("fixture-txn")).unwrap().as_deref(),
            Some("fixture-txn")
        );
    }
}
