//! ReplicaManager's and the log's gauges, read from the hosted partitions at scrape time.

use std::sync::Arc;

use prometheus::proto::MetricFamily;

use super::ReplicaManager;
use crate::metrics::{Family, Scraped};

const PARTITIONS: Family = Family::gauge(
    "kafka_server_replicamanager_partitioncount",
    "Partitions hosted on this broker (ReplicaManager PartitionCount).",
);
const LEADERS: Family = Family::gauge(
    "kafka_server_replicamanager_leadercount",
    "Partitions this broker leads (ReplicaManager LeaderCount).",
);
const UNDER_REPLICATED: Family = Family::gauge(
    "kafka_server_replicamanager_underreplicatedpartitions",
    "Led partitions whose ISR is smaller than their replica set.",
);
const OFFLINE: Family = Family::gauge(
    "kafka_controller_kafkacontroller_offlinepartitionscount",
    "Partitions without a leader (KafkaController OfflinePartitionsCount).",
);
const ACTIVE_CONTROLLER: Family = Family {
    additive: false,
    ..Family::gauge(
        "kafka_controller_kafkacontroller_activecontrollercount",
        "1 on the active controller (KafkaController ActiveControllerCount).",
    )
};
const ISR_SHRINKS: Family = Family::gauge(
    "kafka_server_replicamanager_isrshrinks_total",
    "ISR shrinks (ReplicaManager IsrShrinksPerSec).",
);
const ISR_EXPANDS: Family = Family::gauge(
    "kafka_server_replicamanager_isrexpands_total",
    "ISR expansions (ReplicaManager IsrExpandsPerSec).",
);
const PARTITION_LABELS: &[&str] = &["topic", "partition"];
const LOG_SIZE: Family = Family {
    labels: PARTITION_LABELS,
    ..Family::gauge(
        "kafka_log_log_size",
        "Bytes in a partition's log (Log Size).",
    )
};
const LOG_END: Family = Family {
    labels: PARTITION_LABELS,
    ..Family::gauge(
        "kafka_log_log_logendoffset",
        "A partition's log end offset (Log LogEndOffset).",
    )
};
const LOG_START: Family = Family {
    labels: PARTITION_LABELS,
    ..Family::gauge(
        "kafka_log_log_logstartoffset",
        "A partition's log start offset (Log LogStartOffset).",
    )
};

static FAMILIES: [Family; 10] = [
    PARTITIONS,
    LEADERS,
    UNDER_REPLICATED,
    OFFLINE,
    ACTIVE_CONTROLLER,
    ISR_SHRINKS,
    ISR_EXPANDS,
    LOG_SIZE,
    LOG_END,
    LOG_START,
];

impl ReplicaManager {
    /// Reports this broker's partitions on `/metrics` for as long as it runs.
    pub fn register_metrics(self: &Arc<Self>) {
        crate::metrics::global().watch(&FAMILIES, self);
    }
}

impl Scraped for ReplicaManager {
    fn scrape(&self) -> Vec<MetricFamily> {
        let hosted = self.hosted();
        let n = hosted.len() as f64;
        let mut out = vec![
            PARTITIONS.value(n),
            LEADERS.value(n),
            UNDER_REPLICATED.value(0.0),
            OFFLINE.value(0.0),
            ACTIVE_CONTROLLER.value(1.0),
            ISR_SHRINKS.value(0.0),
            ISR_EXPANDS.value(0.0),
        ];
        let (mut size, mut end, mut start) = (Vec::new(), Vec::new(), Vec::new());
        for p in hosted {
            let labels = vec![p.topic.clone(), p.partition.to_string()];
            // A scrape must not wait behind a long append; a busy log is reported next time.
            if let Some(log) = p.log.try_lock() {
                size.push((labels.clone(), log.size_bytes() as f64));
                end.push((labels.clone(), log.log_end_offset() as f64));
                start.push((labels, log.log_start_offset() as f64));
            }
        }
        out.extend([
            LOG_SIZE.samples(size),
            LOG_END.samples(end),
            LOG_START.samples(start),
        ]);
        out
    }
}
