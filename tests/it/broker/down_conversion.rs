//! Fetch v0-3 (Kafka 2.4-3.9 still serve them): stored magic-2 batches reach old consumers as
//! magic 0 (v0-1) or magic 1 (v2-3) message sets, offsets, keys, values and (magic 1)
//! timestamps intact, compressed batches as one wrapper with the same codec.

use crate::common;

use bytes::Bytes;
use common::wire::{Conn, STORES, create_topic_with, fetch_request, produce, start_broker_on};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use odradek::log::batch::entry_size;
use odradek::log::compression;
use odradek::log::records::{BatchBuilder, NewRecord};

/// One top-level legacy message as a consumer of that format reads it.
#[derive(Debug, PartialEq)]
struct Message {
    offset: i64,
    magic: i8,
    timestamp: Option<i64>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    /// A compressed wrapper's messages (offsets as written inside it).
    inner: Vec<Message>,
}

/// Parses a legacy message set as an old consumer does: the trailing partial entry (the
/// overflow padding Kafka's lazy down-conversion sends) is ignored; CRCs are checked.
fn parse(set: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(size) = entry_size(&set[pos..]) {
        let end = pos + size as usize;
        if size < 26 || end > set.len() {
            break;
        }
        let m = &set[pos + 12..end];
        let offset = i64::from_be_bytes(set[pos..pos + 8].try_into().unwrap());
        let crc = u32::from_be_bytes(m[..4].try_into().unwrap());
        assert_eq!(
            crc32fast::hash(&m[4..]),
            crc,
            "CRC of the message at {offset}"
        );
        let magic = m[4] as i8;
        let codec = (m[5] & 7) as i16;
        let mut p = 6;
        let timestamp = (magic == 1).then(|| {
            p += 8;
            i64::from_be_bytes(m[6..14].try_into().unwrap())
        });
        let mut field = || {
            let len = i32::from_be_bytes(m[p..p + 4].try_into().unwrap());
            p += 4;
            (len >= 0).then(|| {
                p += len as usize;
                m[p - len as usize..p].to_vec()
            })
        };
        let key = field();
        let value = field();
        let inner = if codec == 0 {
            Vec::new()
        } else {
            let plain = compression::decompress(codec, value.as_deref().unwrap(), 1 << 24).unwrap();
            parse(&plain)
        };
        out.push(Message {
            offset,
            magic,
            timestamp,
            key,
            value: if codec == 0 { value } else { None },
            inner,
        });
        pos = end;
    }
    out
}

fn batch(codec: i16, first: i64, n: i64) -> Bytes {
    let b = BatchBuilder {
        codec,
        records: (first..first + n)
            .map(|i| NewRecord {
                timestamp: 1_700_000_000_000 + i,
                key: (i != 1).then(|| format!("key-{i}").into_bytes()),
                value: Some(format!("value-{i}").into_bytes()),
                headers: vec![(b"h".to_vec(), Some(b"lost in v0-3".to_vec()))],
            })
            .collect(),
        ..BatchBuilder::default()
    };
    Bytes::from(b.build().unwrap())
}

async fn fetch_v(
    c: &mut Conn,
    version: i16,
    topic: &str,
    offset: i64,
    max_bytes: i32,
) -> fetch_response::PartitionData {
    let mut r = fetch_request(topic, 0, offset, 100);
    r.max_bytes = max_bytes;
    c.send(version, r)
        .await
        .responses
        .remove(0)
        .partitions
        .remove(0)
}

fn plain(offset: i64, magic: i8, i: i64) -> Message {
    Message {
        offset,
        magic,
        timestamp: (magic == 1).then_some(1_700_000_000_000 + i),
        key: (i != 1).then(|| format!("key-{i}").into_bytes()),
        value: Some(format!("value-{i}").into_bytes()),
        inner: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_v0_to_v3_down_convert_stored_batches() {
    for store in STORES {
        let tmp = tempfile::tempdir().unwrap();
        let Some((broker, _zk)) = start_broker_on(store, tmp.path(), &[]).await else {
            return;
        };
        let mut c = Conn::connect(broker.port).await;
        let topic = format!("old-consumers-{store:?}");
        create_topic_with(&mut c, &topic, &[]).await;
        // Offsets 0-2 uncompressed, 3-4 gzip, 5-6 lz4.
        for b in [batch(0, 0, 3), batch(1, 3, 2), batch(3, 5, 2)] {
            assert_eq!(produce(&mut c, &topic, 0, b).await.error_code, 0);
        }

        // v0: magic 0, no timestamps; a wrapper at its last offset, inner offsets absolute.
        let v0 = fetch_v(&mut c, 0, &topic, 0, 0).await;
        assert_eq!(v0.error_code, 0, "{store:?}");
        assert_eq!(v0.high_watermark, 7);
        let got = parse(v0.records.as_deref().unwrap());
        assert_eq!(got.len(), 5, "{got:?}");
        for i in 0..3 {
            assert_eq!(got[i as usize], plain(i, 0, i));
        }
        assert_eq!((got[3].offset, got[3].magic), (4, 0));
        assert_eq!(got[3].inner, vec![plain(3, 0, 3), plain(4, 0, 4)]);
        assert_eq!(got[4].offset, 6);
        assert_eq!(got[4].inner, vec![plain(5, 0, 5), plain(6, 0, 6)]);

        // v2 from offset 1: magic 1 with the records' timestamps; offset 0 (uncompressed, below
        // the fetch offset) is left out; wrapper inner offsets are relative.
        let v2 = fetch_v(&mut c, 2, &topic, 1, 0).await;
        assert_eq!(v2.error_code, 0);
        let got = parse(v2.records.as_deref().unwrap());
        assert_eq!(got[0], plain(1, 1, 1));
        assert_eq!(got[1], plain(2, 1, 2));
        assert_eq!((got[2].offset, got[2].magic), (4, 1));
        assert_eq!(
            got[2].timestamp,
            Some(1_700_000_000_004),
            "the wrapper's is the max"
        );
        assert_eq!(got[2].inner, vec![plain(0, 1, 3), plain(1, 1, 4)]);

        // v3: max_bytes 1 still answers the first batch whole (KIP-74).
        let v3 = fetch_v(&mut c, 3, &topic, 3, 1).await;
        assert_eq!(v3.error_code, 0);
        let got = parse(v3.records.as_deref().unwrap());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].offset, 4);

        // Newer versions keep the stored batches.
        let v4 = fetch_v(&mut c, 4, &topic, 0, 1 << 20).await;
        assert_eq!(v4.records.as_deref().unwrap()[16], 2, "magic 2 as stored");

        let metrics = odradek::metrics::global().render();
        let line = format!(
            "kafka_server_brokertopicmetrics_fetchmessageconversions_total{{topic=\"{topic}\"}} "
        );
        let count: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line} in metrics"));
        assert_eq!(
            count,
            7 + 6 + 2,
            "records converted by the three old fetches"
        );

        // A topic that disables down-conversion refuses old consumers only.
        let strict = format!("strict-{store:?}");
        create_topic_with(
            &mut c,
            &strict,
            &[("message.downconversion.enable", "false")],
        )
        .await;
        assert_eq!(
            produce(&mut c, &strict, 0, batch(0, 0, 1)).await.error_code,
            0
        );
        let refused = fetch_v(&mut c, 3, &strict, 0, 1 << 20).await;
        assert_eq!(refused.error_code, ResponseError::UnsupportedVersion.code());
        assert_eq!(fetch_v(&mut c, 4, &strict, 0, 1 << 20).await.error_code, 0);

        // zstd cannot be down-converted (Kafka: UNSUPPORTED_COMPRESSION_TYPE).
        let z = format!("zstd-{store:?}");
        create_topic_with(&mut c, &z, &[]).await;
        assert_eq!(produce(&mut c, &z, 0, batch(4, 0, 2)).await.error_code, 0);
        let refused = fetch_v(&mut c, 1, &z, 0, 0).await;
        assert_eq!(
            refused.error_code,
            ResponseError::UnsupportedCompressionType.code()
        );
        broker.shutdown().await.unwrap();
    }
}
