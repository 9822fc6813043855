//! GroupMetadataManager's gauges: groups in all and per state, and committed offsets held,
//! counted at scrape time.

use std::sync::Arc;

use prometheus::proto::MetricFamily;

use super::{GroupCoordinator, GroupState};
use crate::metrics::{Family, Scraped};

/// Each gauge with the state it counts (None: every group).
const GROUP_GAUGES: [(Option<GroupState>, Family); 6] = [
    (
        None,
        Family::gauge(
            "kafka_coordinator_group_groupmetadatamanager_numgroups",
            "Consumer groups this broker coordinates (GroupMetadataManager NumGroups).",
        ),
    ),
    (
        Some(GroupState::Stable),
        Family::gauge(
            "kafka_coordinator_group_groupmetadatamanager_numgroupsstable",
            "Groups in state Stable (NumGroupsStable).",
        ),
    ),
    (
        Some(GroupState::PreparingRebalance),
        Family::gauge(
            "kafka_coordinator_group_groupmetadatamanager_numgroupspreparingrebalance",
            "Groups in state PreparingRebalance (NumGroupsPreparingRebalance).",
        ),
    ),
    (
        Some(GroupState::CompletingRebalance),
        Family::gauge(
            "kafka_coordinator_group_groupmetadatamanager_numgroupscompletingrebalance",
            "Groups in state CompletingRebalance (NumGroupsCompletingRebalance).",
        ),
    ),
    (
        Some(GroupState::Empty),
        Family::gauge(
            "kafka_coordinator_group_groupmetadatamanager_numgroupsempty",
            "Groups in state Empty (NumGroupsEmpty).",
        ),
    ),
    (
        Some(GroupState::Dead),
        Family::gauge(
            "kafka_coordinator_group_groupmetadatamanager_numgroupsdead",
            "Groups in state Dead (NumGroupsDead).",
        ),
    ),
];

const NUM_OFFSETS: Family = Family::gauge(
    "kafka_coordinator_group_groupmetadatamanager_numoffsets",
    "Committed offsets held for all groups (GroupMetadataManager NumOffsets).",
);

static FAMILIES: [Family; 7] = [
    GROUP_GAUGES[0].1,
    GROUP_GAUGES[1].1,
    GROUP_GAUGES[2].1,
    GROUP_GAUGES[3].1,
    GROUP_GAUGES[4].1,
    GROUP_GAUGES[5].1,
    NUM_OFFSETS,
];

impl GroupCoordinator {
    /// Reports this coordinator's groups on `/metrics` for as long as it runs.
    pub fn register_metrics(self: &Arc<Self>) {
        crate::metrics::global().watch(&FAMILIES, self);
    }
}

impl Scraped for GroupCoordinator {
    fn scrape(&self) -> Vec<MetricFamily> {
        let (states, offsets) = self.census();
        let mut out: Vec<MetricFamily> = GROUP_GAUGES
            .iter()
            .map(|(state, family)| {
                let n: usize = match state {
                    None => states.values().sum(),
                    Some(s) => states.get(s).copied().unwrap_or(0),
                };
                family.value(n as f64)
            })
            .collect();
        out.push(NUM_OFFSETS.value(offsets as f64));
        out
    }
}
