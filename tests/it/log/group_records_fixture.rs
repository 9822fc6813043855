//! Kafka 2.4.1's own `__consumer_offsets` records (the fixture's `__consumer_offsets-1`) read
//! by the group coordinator's record decoder.

use crate::common;

use odradek::config::LogConfig;
use odradek::group::records::{self, RecordKey};

/// Kafka 2.4.1 wrote these records for `fixture-group` (MANIFEST.md): our decoder must read
/// exactly the offsets the Java consumer committed, and the group's last metadata record.
#[test]
fn kafka_241_consumer_offsets_decode() {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_tree(
        &common::kafka_single().join("logdir/__consumer_offsets-1"),
        &tmp.path().join("__consumer_offsets-1"),
    );
    let log = common::open_log(
        &tmp.path().join("__consumer_offsets-1"),
        LogConfig::default(),
        true,
    );
    let mut offsets = std::collections::BTreeMap::new();
    let mut last_group = None;
    for r in common::read_all(&log) {
        let key = records::decode_key(r.key.as_deref().unwrap()).unwrap();
        match key {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => {
                assert_eq!(group, "fixture-group");
                let v = records::decode_offset_value(r.value.as_deref().unwrap()).unwrap();
                offsets.insert((topic, partition), (v.offset, v.metadata));
            }
            RecordKey::Group { group } => {
                assert_eq!(group, "fixture-group");
                last_group =
                    Some(records::decode_group_value(r.value.as_deref().unwrap()).unwrap());
            }
            RecordKey::Unknown(v) => panic!("unknown key version {v}"),
        }
    }
    let want: std::collections::BTreeMap<_, _> = [
        (("plain".to_string(), 0), (101, String::new())),
        (("plain".to_string(), 1), (60, "partial".to_string())),
        (("plain".to_string(), 2), (101, String::new())),
    ]
    .into_iter()
    .collect();
    assert_eq!(offsets, want);
    let g = last_group.unwrap();
    assert_eq!((g.protocol_type.as_str(), g.generation), ("consumer", 2));
    assert_eq!((g.protocol, g.leader, g.members.len()), (None, None, 0));
    // The group lives in partition 1 of 50, as Kafka computed.
    assert_eq!(records::partition_for("fixture-group", 50), 1);
}
