//! A Fetch response encoded around its record bytes instead of with them: everything but the
//! records is encoded here, and each partition whose records are in a segment file leaves a
//! gap that the connection fills from the file (`sendfile` on plaintext connections), so the
//! records are never copied into the encoded response (Kafka's `FetchResponse` written as a
//! `MultiRecordsSend` of header bytes and `FileRecords`).
//!
//! The bytes are exactly what kafka-protocol's `FetchResponse::encode` writes with the records
//! in place (the tests compare them at every version); only the parts around the records
//! field are written by hand, every other field by kafka-protocol's own encoders.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::FetchResponse;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::protocol::Encodable;

use crate::log::FileRegion;

/// A Fetch response whose records are, partition by partition, in the response or in a file.
#[derive(Debug, Default)]
pub struct FetchAnswer {
    /// Partitions whose records are in a file carry empty records here.
    pub response: FetchResponse,
    /// One per partition of `response`, in the order they are encoded (topic by topic): where
    /// the partition's records are when they are in a file.
    pub regions: Vec<Option<FileRegion>>,
}

impl From<FetchResponse> for FetchAnswer {
    fn from(response: FetchResponse) -> FetchAnswer {
        FetchAnswer {
            response,
            regions: Vec::new(),
        }
    }
}

impl FetchAnswer {
    /// Whether any records are to be sent from a file.
    pub fn has_regions(&self) -> bool {
        self.regions.iter().any(Option::is_some)
    }

    /// The encoded size of the response with its records, as a client receives it.
    pub fn size(&self, version: i16) -> Result<usize, String> {
        // From v12 a longer record set may also take more bytes to give its length.
        let regions: usize = self
            .regions
            .iter()
            .flatten()
            .map(|r| {
                let wider = if version >= 12 {
                    varint_len(r.len as u64 + 1) - 1
                } else {
                    0
                };
                r.len + wider
            })
            .sum();
        let size = self
            .response
            .compute_size(version)
            .map_err(|e| e.to_string())?;
        Ok(size + regions)
    }
}

/// Appends `response` at `version` to `out`, leaving out the records of the partitions that
/// have a region in `regions` (aligned as [`FetchAnswer::regions`]); returns those regions
/// with the position in `out` where each one's bytes belong.
pub fn encode(
    out: &mut BytesMut,
    response: &FetchResponse,
    regions: &[Option<FileRegion>],
    version: i16,
) -> Result<Vec<(usize, FileRegion)>, String> {
    let mut gaps = Vec::new();
    let mut regions = regions.iter();
    // Each level is encoded by kafka-protocol without its array of children and the children
    // written into the place of the empty array: the fields before the array are fixed (the
    // top level's) or the topic's key, the empty array is one length field.
    let mut shell = FetchResponse::default();
    shell.throttle_time_ms = response.throttle_time_ms;
    shell.error_code = response.error_code;
    shell.session_id = response.session_id;
    shell.node_endpoints = response.node_endpoints.clone();
    shell.unknown_tagged_fields = response.unknown_tagged_fields.clone();
    let head = match version {
        0 => 0,
        1..=6 => 4,
        _ => 10,
    };
    let tmp = encoded(&shell, version)?;
    out.put_slice(&tmp[..head]);
    length(out, response.responses.len(), version)?;
    for topic in &response.responses {
        encode_topic(out, topic, &mut regions, &mut gaps, version)?;
    }
    out.put_slice(&tmp[head + empty_len(version)..]);
    Ok(gaps)
}

fn encode_topic<'a>(
    out: &mut BytesMut,
    topic: &FetchableTopicResponse,
    regions: &mut impl Iterator<Item = &'a Option<FileRegion>>,
    gaps: &mut Vec<(usize, FileRegion)>,
    version: i16,
) -> Result<(), String> {
    let mut shell = FetchableTopicResponse::default();
    shell.topic = topic.topic.clone();
    shell.topic_id = topic.topic_id;
    shell.unknown_tagged_fields = topic.unknown_tagged_fields.clone();
    // The topic's id (v13+), or its name as a compact (v12) or int16-length string.
    let name = topic.topic.len();
    let key = if version >= 13 {
        16
    } else if version >= 12 {
        varint_len(name as u64 + 1) + name
    } else {
        2 + name
    };
    let tmp = encoded(&shell, version)?;
    out.put_slice(&tmp[..key]);
    length(out, topic.partitions.len(), version)?;
    for pd in &topic.partitions {
        match regions.next() {
            Some(Some(region)) => encode_partition(out, pd, region, gaps, version)?,
            _ => pd.encode(out, version).map_err(|e| e.to_string())?,
        }
    }
    out.put_slice(&tmp[key + empty_len(version)..]);
    Ok(())
}

/// A partition whose records are `region`: its fields up to the records (kafka-protocol's
/// encoding of it with empty records, cut there), the records' length, a gap, the rest.
fn encode_partition(
    out: &mut BytesMut,
    pd: &PartitionData,
    region: &FileRegion,
    gaps: &mut Vec<(usize, FileRegion)>,
    version: i16,
) -> Result<(), String> {
    // Where the records field starts: the first byte at which the partition's encodings with
    // no records and with empty records differ (-1 or 0 as an int32, 0 or 1 as a varint).
    let mut empty = pd.clone();
    empty.records = Some(bytes::Bytes::new());
    let tmp = encoded(&empty, version)?;
    empty.records = None;
    let absent = encoded(&empty, version)?;
    let before = tmp
        .iter()
        .zip(absent.iter())
        .position(|(a, b)| a != b)
        .ok_or("no records field")?;
    out.put_slice(&tmp[..before]);
    length(out, region.len, version)?;
    gaps.push((out.len(), region.clone()));
    out.put_slice(&tmp[before + empty_len(version)..]);
    Ok(())
}

fn encoded<T: Encodable>(value: &T, version: i16) -> Result<BytesMut, String> {
    let mut tmp = BytesMut::new();
    value.encode(&mut tmp, version).map_err(|e| e.to_string())?;
    Ok(tmp)
}

/// The length of an empty array or empty bytes: a compact length from v12, an int32 before.
fn empty_len(version: i16) -> usize {
    if version >= 12 { 1 } else { 4 }
}

/// An array's element count or the records' byte count: compact (unsigned varint of n + 1)
/// from v12, int32 before.
fn length(out: &mut BytesMut, n: usize, version: i16) -> Result<(), String> {
    if version >= 12 {
        let mut v = n as u64 + 1;
        if v > u32::MAX as u64 {
            return Err(format!("a length of {n}"));
        }
        while v >= 0x80 {
            out.put_u8((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.put_u8(v as u8);
    } else {
        out.put_i32(i32::try_from(n).map_err(|_| format!("a length of {n}"))?);
    }
    Ok(())
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, EpochEndOffset, LeaderIdAndEpoch, NodeEndpoint, SnapshotId,
    };
    use kafka_protocol::messages::{BrokerId, ProducerId, TopicName};
    use std::io::Write;
    use std::sync::Arc;

    /// Fills the gaps with the regions' bytes: what the connection sends.
    fn assemble(head: &[u8], gaps: &[(usize, FileRegion)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        for (pos, region) in gaps {
            out.extend_from_slice(&head[at..*pos]);
            out.extend_from_slice(&region.read().unwrap());
            at = *pos;
        }
        out.extend_from_slice(&head[at..]);
        out
    }

    /// A response with several topics and partitions, covering every field that versions
    /// add: aborted transactions (empty, some, none), a preferred read replica, a diverging
    /// epoch, a current leader, a snapshot id and node endpoints, with empty, absent and
    /// non-empty records. Fields a version lacks are left at their defaults there.
    fn response(version: i16, records: &[Bytes]) -> FetchResponse {
        let mut r = FetchResponse::default();
        if version >= 1 {
            r.throttle_time_ms = 17;
        }
        if version >= 7 {
            r.error_code = 0;
            r.session_id = 12345;
        }
        if version >= 16 {
            let mut n = NodeEndpoint::default();
            n.node_id = BrokerId(2);
            n.host = "127.0.0.1".into();
            n.port = 9092;
            n.rack = Some("r1".into());
            r.node_endpoints = vec![n];
        }
        let mut k = 0;
        for t in 0..3 {
            let mut topic = FetchableTopicResponse::default();
            if version >= 13 {
                topic.topic_id = uuid::Uuid::from_u128(0xabc0 + t as u128);
            } else {
                topic.topic = TopicName(format!("topic-{t}").into());
            }
            for p in 0..3 {
                let mut pd = PartitionData::default();
                pd.partition_index = p;
                pd.error_code = if p == 2 { 6 } else { 0 };
                pd.high_watermark = 1000 + p as i64;
                if version >= 4 {
                    pd.last_stable_offset = 900;
                    pd.aborted_transactions = match p {
                        0 => Some(Vec::new()),
                        1 => Some(
                            (0..3)
                                .map(|i| {
                                    let mut a = AbortedTransaction::default();
                                    a.producer_id = ProducerId(7 + i);
                                    a.first_offset = 40 * i;
                                    a
                                })
                                .collect(),
                        ),
                        _ => None,
                    };
                }
                if version >= 5 {
                    pd.log_start_offset = 5;
                }
                if version >= 11 && t == 1 {
                    pd.preferred_read_replica = BrokerId(3);
                }
                if version >= 12 && p == 1 {
                    let mut d = EpochEndOffset::default();
                    d.epoch = 4;
                    d.end_offset = 77;
                    pd.diverging_epoch = d;
                    let mut l = LeaderIdAndEpoch::default();
                    l.leader_id = BrokerId(1);
                    l.leader_epoch = 9;
                    pd.current_leader = l;
                }
                if version >= 12 && p == 2 && t == 2 {
                    let mut s = SnapshotId::default();
                    s.end_offset = 10;
                    s.epoch = 2;
                    pd.snapshot_id = s;
                }
                pd.records = if t == 2 && p == 0 {
                    None
                } else {
                    Some(records[k % records.len()].clone())
                };
                k += 1;
                topic.partitions.push(pd);
            }
            r.responses.push(topic);
        }
        r
    }

    #[test]
    fn matches_kafka_protocol_at_every_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.log");
        let mut f = std::fs::File::create(&path).unwrap();
        // A file of distinct bytes; each record set is a different range of it.
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        f.write_all(&data).unwrap();
        drop(f);
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        let ranges = [
            (0usize, 0usize),
            (10, 300),
            (1000, 12_000),
            (17, 1),
            (400, 5),
        ];
        let records: Vec<Bytes> = ranges
            .iter()
            .map(|(p, l)| Bytes::copy_from_slice(&data[*p..p + l]))
            .collect();
        for version in 0..=17i16 {
            let full = response(version, &records);
            let mut expected = BytesMut::new();
            full.encode(&mut expected, version).unwrap();
            // Every partition with non-empty records sent from the file, the rest in memory;
            // then every other one only, so that both kinds sit side by side.
            for every in [1, 2] {
                let mut stripped = full.clone();
                let mut regions = Vec::new();
                let mut k = 0;
                for topic in &mut stripped.responses {
                    for pd in &mut topic.partitions {
                        let i = k;
                        k += 1;
                        let range = ranges[i % ranges.len()];
                        let from_file = pd.records.is_some() && i % every == 0;
                        regions.push(from_file.then(|| {
                            pd.records = Some(Bytes::new());
                            FileRegion {
                                file: file.clone(),
                                position: range.0 as u64,
                                len: range.1,
                            }
                        }));
                    }
                }
                let answer = FetchAnswer {
                    response: stripped,
                    regions,
                };
                let mut head = BytesMut::new();
                head.put_slice(b"prefix");
                let gaps = encode(&mut head, &answer.response, &answer.regions, version).unwrap();
                assert!(!gaps.is_empty(), "v{version}");
                let sent = assemble(&head, &gaps);
                assert_eq!(&sent[..6], b"prefix");
                assert_eq!(
                    &sent[6..],
                    &expected[..],
                    "v{version}, every {every} partition from the file"
                );
                assert_eq!(answer.size(version).unwrap(), expected.len(), "v{version}");
            }
        }
    }
}
