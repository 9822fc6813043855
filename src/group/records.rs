//! The keys and values Kafka's `GroupMetadataManager` writes to `__consumer_offsets`: classic
//! (non-flexible) protocol encoding, each starting with an int16 schema version. The key version
//! says what the record is: 0/1 an offset commit, 2 group metadata.
//!
//! Values are written at the versions a Kafka 3.9 broker in ZooKeeper mode writes (offset v3,
//! group v3). Version 4 of both values is the first flexible one (compact strings and bytes,
//! tagged fields): newer Kafka coordinators write it, so it is read too.

/// Why a record could not be decoded (a truncated field, an unknown version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("__consumer_offsets record: {0}")]
pub struct RecordError(pub String);

type Result<T> = std::result::Result<T, RecordError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
    /// A key version this broker does not know; Kafka skips such records too.
    Unknown(i16),
}

/// An offset commit value (v0-v4 read; v3 written, as Kafka 2.1+ does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// v1 only: when the commit carried an explicit retention time.
    pub expire_timestamp: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// A group metadata value (v0-v4 read; v3 written, as Kafka 2.3+ does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<MemberValue>,
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + group.len() + topic.len());
    out.extend_from_slice(&1i16.to_be_bytes());
    put_str(&mut out, group);
    put_str(&mut out, topic);
    out.extend_from_slice(&partition.to_be_bytes());
    out
}

pub fn group_key(group: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + group.len());
    out.extend_from_slice(&2i16.to_be_bytes());
    put_str(&mut out, group);
    out
}

/// Version 3, or version 1 (no leader epoch, with the expire timestamp) for a commit that set
/// its own retention, as Kafka writes them.
pub fn offset_value(v: &OffsetValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(26 + v.metadata.len());
    match v.expire_timestamp {
        Some(expire) => {
            out.extend_from_slice(&1i16.to_be_bytes());
            out.extend_from_slice(&v.offset.to_be_bytes());
            put_str(&mut out, &v.metadata);
            out.extend_from_slice(&v.commit_timestamp.to_be_bytes());
            out.extend_from_slice(&expire.to_be_bytes());
        }
        None => {
            out.extend_from_slice(&3i16.to_be_bytes());
            out.extend_from_slice(&v.offset.to_be_bytes());
            out.extend_from_slice(&v.leader_epoch.to_be_bytes());
            put_str(&mut out, &v.metadata);
            out.extend_from_slice(&v.commit_timestamp.to_be_bytes());
        }
    }
    out
}

pub fn group_value(v: &GroupValue) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&3i16.to_be_bytes());
    put_str(&mut out, &v.protocol_type);
    out.extend_from_slice(&v.generation.to_be_bytes());
    put_opt_str(&mut out, v.protocol.as_deref());
    put_opt_str(&mut out, v.leader.as_deref());
    out.extend_from_slice(&v.current_state_timestamp.to_be_bytes());
    out.extend_from_slice(&(v.members.len() as i32).to_be_bytes());
    for m in &v.members {
        put_str(&mut out, &m.member_id);
        put_opt_str(&mut out, m.group_instance_id.as_deref());
        put_str(&mut out, &m.client_id);
        put_str(&mut out, &m.client_host);
        // Kafka's order: rebalance timeout before session timeout.
        out.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
        out.extend_from_slice(&m.session_timeout_ms.to_be_bytes());
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out
}

/// A cursor over a record's bytes where every read is bounds-checked (also used for
/// `__transaction_state` records, which use the same classic encoding).
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub(crate) fn i8(&mut self) -> Result<i8> {
        Ok(self.take(1)?[0] as i8)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| RecordError(format!("truncated at byte {}", self.pos)))?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }
    pub(crate) fn i16(&mut self) -> Result<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn i32(&mut self) -> Result<i32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(i32::from_be_bytes(a))
    }
    pub(crate) fn i64(&mut self) -> Result<i64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(a))
    }
    pub(crate) fn opt_str(&mut self) -> Result<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let b = self.take(len as usize)?;
        String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| RecordError("string is not UTF-8".into()))
    }
    pub(crate) fn str(&mut self) -> Result<String> {
        self.opt_str()?
            .ok_or_else(|| RecordError("null where a string is required".into()))
    }
    fn bytes(&mut self) -> Result<Vec<u8>> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(Vec::new());
        }
        Ok(self.take(len as usize)?.to_vec())
    }
    fn uvarint(&mut self) -> Result<u32> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let b = self.take(1)?[0];
            value |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError("varint longer than 5 bytes".into()))
    }
    /// Flexible versions: length + 1 as an unsigned varint, 0 meaning null.
    fn compact_len(&mut self) -> Result<Option<usize>> {
        Ok(match self.uvarint()? {
            0 => None,
            n => Some(n as usize - 1),
        })
    }
    fn compact_opt_str(&mut self) -> Result<Option<String>> {
        let Some(len) = self.compact_len()? else {
            return Ok(None);
        };
        String::from_utf8(self.take(len)?.to_vec())
            .map(Some)
            .map_err(|_| RecordError("string is not UTF-8".into()))
    }
    fn compact_bytes(&mut self) -> Result<Vec<u8>> {
        match self.compact_len()? {
            None => Ok(Vec::new()),
            Some(len) => Ok(self.take(len)?.to_vec()),
        }
    }
    /// Tagged fields: none of these records defines one, so all are skipped.
    fn skip_tagged_fields(&mut self) -> Result<()> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }
}

/// The string and bytes encodings of one schema version: classic before the first flexible
/// version, compact (varint lengths) from it (also for `__transaction_state` values, flexible
/// from version 1).
pub(crate) struct Fields<'a, 'b> {
    pub(crate) r: &'b mut Reader<'a>,
    pub(crate) flexible: bool,
}

impl Fields<'_, '_> {
    fn opt_str(&mut self) -> Result<Option<String>> {
        if self.flexible {
            self.r.compact_opt_str()
        } else {
            self.r.opt_str()
        }
    }
    pub(crate) fn str(&mut self) -> Result<String> {
        self.opt_str()?
            .ok_or_else(|| RecordError("null where a string is required".into()))
    }
    fn bytes(&mut self) -> Result<Vec<u8>> {
        if self.flexible {
            self.r.compact_bytes()
        } else {
            self.r.bytes()
        }
    }
    /// An array's length; a null array reads as empty.
    pub(crate) fn array_len(&mut self) -> Result<usize> {
        if self.flexible {
            Ok(self.r.compact_len()?.unwrap_or(0))
        } else {
            Ok(self.r.i32()?.max(0) as usize)
        }
    }
    pub(crate) fn end_struct(&mut self) -> Result<()> {
        if self.flexible {
            self.r.skip_tagged_fields()?;
        }
        Ok(())
    }
}

pub fn decode_key(key: &[u8]) -> Result<RecordKey> {
    let mut r = Reader { buf: key, pos: 0 };
    let version = r.i16()?;
    Ok(match version {
        0 | 1 => RecordKey::Offset {
            group: r.str()?,
            topic: r.str()?,
            partition: r.i32()?,
        },
        2 => RecordKey::Group { group: r.str()? },
        v => RecordKey::Unknown(v),
    })
}

pub fn decode_offset_value(value: &[u8]) -> Result<OffsetValue> {
    let mut r = Reader { buf: value, pos: 0 };
    let version = r.i16()?;
    if !(0..=4).contains(&version) {
        return Err(RecordError(format!(
            "offset commit value version {version}"
        )));
    }
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let mut f = Fields {
        r: &mut r,
        flexible: version >= 4,
    };
    let metadata = f.str()?;
    let commit_timestamp = f.r.i64()?;
    let expire_timestamp = if version == 1 { Some(f.r.i64()?) } else { None };
    f.end_struct()?;
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
        expire_timestamp,
    })
}

pub fn decode_group_value(value: &[u8]) -> Result<GroupValue> {
    let mut r = Reader { buf: value, pos: 0 };
    let version = r.i16()?;
    if !(0..=4).contains(&version) {
        return Err(RecordError(format!(
            "group metadata value version {version}"
        )));
    }
    let mut f = Fields {
        r: &mut r,
        flexible: version >= 4,
    };
    let protocol_type = f.str()?;
    let generation = f.r.i32()?;
    let protocol = f.opt_str()?;
    let leader = f.opt_str()?;
    let current_state_timestamp = if version >= 2 { f.r.i64()? } else { -1 };
    let count = f.array_len()?;
    let mut members = Vec::new();
    for _ in 0..count {
        let member_id = f.str()?;
        let group_instance_id = if version >= 3 { f.opt_str()? } else { None };
        let client_id = f.str()?;
        let client_host = f.str()?;
        let rebalance_timeout_ms = if version >= 1 { Some(f.r.i32()?) } else { None };
        let session_timeout_ms = f.r.i32()?;
        let subscription = f.bytes()?;
        let assignment = f.bytes()?;
        f.end_struct()?;
        members.push(MemberValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            // v0 had no rebalance timeout: Kafka uses the session timeout.
            rebalance_timeout_ms: rebalance_timeout_ms.unwrap_or(session_timeout_ms),
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    f.end_struct()?;
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

/// The topics a consumer subscribes to, from its JoinGroup metadata for protocol type
/// "consumer". Read with the version 0 layout (version, topics, user data), which every later
/// version extends, as Kafka's coordinator does, so it does not depend on newer fields.
pub fn subscribed_topics(metadata: &[u8]) -> Result<Vec<String>> {
    let mut r = Reader {
        buf: metadata,
        pos: 0,
    };
    let version = r.i16()?;
    if version < 0 {
        return Err(RecordError(format!("consumer protocol version {version}")));
    }
    let count = r.i32()?;
    if count < 0 {
        return Err(RecordError("null topic list".into()));
    }
    let mut topics = Vec::new();
    for _ in 0..count {
        topics.push(r.str()?);
    }
    // User data must be there too (nullable bytes) for the subscription to be well formed.
    r.bytes()?;
    Ok(topics)
}

/// Java's `String.hashCode`: over UTF-16 code units, wrapping int32.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The `__consumer_offsets` partition a group lives in: Kafka's `Utils.abs(hashCode) % n`.
/// `Utils.abs` is `Math.abs` except that `Integer.MIN_VALUE` maps to 0 (where `Math.abs` would
/// stay negative). It is not a sign-bit mask (`Utils.toPositive`, the producer partitioner's):
/// "my-group" would land in partition 36 instead of Kafka's 12.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let h = java_string_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_for_matches_kafka_vectors() {
        assert_eq!(java_string_hash("my-group"), -1906497762);
        assert_eq!(partition_for("my-group", 50), 12);
        assert_eq!(partition_for("test-group", 50), 12);
        assert_eq!(partition_for("console-consumer-12345", 50), 6);
        assert_eq!(java_string_hash("groupé"), -1237460406);
        assert_eq!(partition_for("groupé", 50), 6);
        assert_eq!(java_string_hash("😀"), 1772899);
        assert_eq!(partition_for("😀", 50), 49);
        assert_eq!(partition_for("", 50), 0);
        // "polygenelubricants" hashes to Integer.MIN_VALUE; Utils.abs makes it 0.
        assert_eq!(
            partition_for("my-group", 50),
            12,
            "Math.abs, not a sign mask"
        );
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
    }

    #[test]
    fn values_round_trip() {
        let o = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 1000,
            expire_timestamp: None,
        };
        assert_eq!(decode_offset_value(&offset_value(&o)).unwrap(), o);
        // With its own retention: version 1, which has no leader epoch.
        let v1 = OffsetValue {
            leader_epoch: -1,
            expire_timestamp: Some(2000),
            ..o.clone()
        };
        assert_eq!(offset_value(&v1)[..2], [0, 1]);
        assert_eq!(decode_offset_value(&offset_value(&v1)).unwrap(), v1);
        let g = GroupValue {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("a-1".into()),
            current_state_timestamp: 55,
            members: vec![MemberValue {
                member_id: "a-1".into(),
                group_instance_id: None,
                client_id: "a".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300000,
                session_timeout_ms: 10000,
                subscription: vec![1, 2],
                assignment: vec![3],
            }],
        };
        assert_eq!(decode_group_value(&group_value(&g)).unwrap(), g);
        assert_eq!(
            decode_key(&offset_key("g", "t", 4)).unwrap(),
            RecordKey::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 4
            }
        );
        assert_eq!(
            decode_key(&group_key("g")).unwrap(),
            RecordKey::Group { group: "g".into() }
        );
        assert!(decode_offset_value(&[0, 3, 1]).is_err());
    }

    /// Every classic value version, laid out field by field from Kafka's schemas
    /// (`OffsetCommitValue.json`, `GroupMetadataValue.json`): what coordinators of Kafka 2.4 to
    /// 3.9 write, by IBP (offsets v1 with an expire timestamp or below IBP 2.1, v2 at 2.1-IV0,
    /// v3 from 2.1-IV1; groups v1 below 2.1, v2 below 2.3, v3 from 2.3), all load here.
    #[test]
    fn every_classic_value_version_is_read() {
        for version in 0..=3i16 {
            let mut o = version.to_be_bytes().to_vec();
            o.extend_from_slice(&42i64.to_be_bytes());
            if version >= 3 {
                o.extend_from_slice(&7i32.to_be_bytes());
            }
            put_str(&mut o, "meta");
            o.extend_from_slice(&1000i64.to_be_bytes());
            if version == 1 {
                o.extend_from_slice(&2000i64.to_be_bytes());
            }
            assert_eq!(
                decode_offset_value(&o).unwrap(),
                OffsetValue {
                    offset: 42,
                    leader_epoch: if version >= 3 { 7 } else { -1 },
                    metadata: "meta".into(),
                    commit_timestamp: 1000,
                    expire_timestamp: (version == 1).then_some(2000),
                },
                "offset commit value v{version}"
            );
            assert!(decode_offset_value(&o[..o.len() - 1]).is_err());

            let mut g = version.to_be_bytes().to_vec();
            put_str(&mut g, "consumer");
            g.extend_from_slice(&3i32.to_be_bytes());
            put_str(&mut g, "range");
            put_str(&mut g, "m-1");
            if version >= 2 {
                g.extend_from_slice(&55i64.to_be_bytes());
            }
            g.extend_from_slice(&1i32.to_be_bytes());
            put_str(&mut g, "m-1");
            if version >= 3 {
                put_str(&mut g, "static-1");
            }
            put_str(&mut g, "c");
            put_str(&mut g, "/127.0.0.1");
            if version >= 1 {
                g.extend_from_slice(&300i32.to_be_bytes());
            }
            g.extend_from_slice(&100i32.to_be_bytes());
            put_bytes(&mut g, &[1, 2]);
            put_bytes(&mut g, &[3]);
            assert_eq!(
                decode_group_value(&g).unwrap(),
                GroupValue {
                    protocol_type: "consumer".into(),
                    generation: 3,
                    protocol: Some("range".into()),
                    leader: Some("m-1".into()),
                    current_state_timestamp: if version >= 2 { 55 } else { -1 },
                    members: vec![MemberValue {
                        member_id: "m-1".into(),
                        group_instance_id: (version >= 3).then(|| "static-1".into()),
                        client_id: "c".into(),
                        client_host: "/127.0.0.1".into(),
                        // v0 has none: the session timeout stands in, as in Kafka.
                        rebalance_timeout_ms: if version >= 1 { 300 } else { 100 },
                        session_timeout_ms: 100,
                        subscription: vec![1, 2],
                        assignment: vec![3],
                    }],
                },
                "group metadata value v{version}"
            );
            assert!(decode_group_value(&g[..g.len() - 1]).is_err());
        }
    }

    /// Version 4 (flexible) as Kafka 3.x+ coordinators write it: compact strings and bytes,
    /// an empty tagged-field section after each struct (one with an unknown tag here).
    #[test]
    fn flexible_v4_values_are_read() {
        let compact = |out: &mut Vec<u8>, b: &[u8]| {
            out.push(b.len() as u8 + 1);
            out.extend_from_slice(b);
        };
        let mut o = vec![0, 4];
        o.extend_from_slice(&42i64.to_be_bytes());
        o.extend_from_slice(&7i32.to_be_bytes());
        compact(&mut o, b"meta");
        o.extend_from_slice(&1000i64.to_be_bytes());
        // One tagged field (tag 5, two bytes) that this broker does not know.
        o.extend_from_slice(&[1, 5, 2, 0xaa, 0xbb]);
        assert_eq!(
            decode_offset_value(&o).unwrap(),
            OffsetValue {
                offset: 42,
                leader_epoch: 7,
                metadata: "meta".into(),
                commit_timestamp: 1000,
                expire_timestamp: None,
            }
        );
        assert!(decode_offset_value(&o[..o.len() - 1]).is_err());

        let mut g = vec![0, 4];
        compact(&mut g, b"consumer");
        g.extend_from_slice(&3i32.to_be_bytes());
        compact(&mut g, b"range");
        g.push(0); // null leader
        g.extend_from_slice(&55i64.to_be_bytes());
        g.push(2); // one member
        compact(&mut g, b"m-1");
        g.push(0); // no group instance id
        compact(&mut g, b"c");
        compact(&mut g, b"/127.0.0.1");
        g.extend_from_slice(&300i32.to_be_bytes());
        g.extend_from_slice(&100i32.to_be_bytes());
        compact(&mut g, &[1, 2]);
        compact(&mut g, &[3]);
        g.push(0); // member's tagged fields
        g.push(0); // value's tagged fields
        assert_eq!(
            decode_group_value(&g).unwrap(),
            GroupValue {
                protocol_type: "consumer".into(),
                generation: 3,
                protocol: Some("range".into()),
                leader: None,
                current_state_timestamp: 55,
                members: vec![MemberValue {
                    member_id: "m-1".into(),
                    group_instance_id: None,
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300,
                    session_timeout_ms: 100,
                    subscription: vec![1, 2],
                    assignment: vec![3],
                }],
            }
        );
        assert!(decode_group_value(&g[..g.len() - 2]).is_err());
    }

    #[test]
    fn consumer_subscriptions_are_read_at_any_version() {
        // Version 1 (topics, user data, owned partitions): the v0 prefix is enough.
        let mut m = vec![0, 1, 0, 0, 0, 2];
        put_str(&mut m, "a");
        put_str(&mut m, "bb");
        m.extend_from_slice(&(-1i32).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(subscribed_topics(&m).unwrap(), vec!["a", "bb"]);
        assert!(subscribed_topics(b"sub").is_err());
        assert!(subscribed_topics(&m[..8]).is_err());
    }
}
