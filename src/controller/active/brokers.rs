//! Live brokers: reading `/brokers/ids`, and what the controller does when brokers join or
//! fail (Kafka's `onBrokerStartup` and `onBrokerFailure`): new leaders for what the failed ones
//! led, shrunk ISRs, metadata to everyone. Separate because broker membership is its own
//! event source.

use std::collections::BTreeMap;

use super::{ActiveController, Decision, LiveBroker, NO_LEADER, PartitionState, Stop, Tp};
use crate::metadata::znodes::{self, BrokerZnode};
use crate::security::SecurityProtocol;

impl ActiveController {
    pub(super) async fn read_brokers(&self) -> Result<BTreeMap<i32, LiveBroker>, Stop> {
        let mut out = BTreeMap::new();
        for child in self
            .store
            .children(znodes::BROKER_IDS)
            .await?
            .unwrap_or_default()
        {
            let Ok(id) = child.parse::<i32>() else {
                continue;
            };
            let path = znodes::broker_path(id);
            self.store.watch_node(&path).await?;
            let Some((Some(data), stat)) = self.store.get(&path).await? else {
                continue;
            };
            let z: BrokerZnode = match znodes::decode(&path, &data) {
                Ok(z) => z,
                Err(e) => {
                    tracing::error!(broker = id, error = %e, "ignoring unreadable broker registration");
                    continue;
                }
            };
            out.insert(id, live_broker(&z, stat.czxid));
        }
        Ok(out)
    }

    pub(super) async fn on_broker_change(&mut self) -> Result<(), Stop> {
        let now = self.read_brokers().await?;
        let mut dead: Vec<i32> = Vec::new();
        let mut new: Vec<i32> = Vec::new();
        for (id, b) in &self.brokers {
            match now.get(id) {
                None => dead.push(*id),
                // Re-registered before we saw it go: a failure and a start-up (Kafka's bounce).
                Some(n) if n.epoch != b.epoch => {
                    dead.push(*id);
                    new.push(*id);
                }
                Some(_) => {}
            }
        }
        for id in now.keys() {
            if !self.brokers.contains_key(id) {
                new.push(*id);
            }
        }
        if dead.is_empty() && new.is_empty() {
            return Ok(());
        }
        tracing::info!(?new, ?dead, "brokers changed");
        let started = std::time::Instant::now();
        for id in &dead {
            self.channels.remove(*id);
            self.brokers.remove(id);
            self.shutting_down.remove(id);
        }
        if !dead.is_empty() {
            self.on_brokers_failed(&dead).await?;
            tracing::info!(
                ?dead,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "failed brokers' partitions changed"
            );
        }
        for id in &new {
            if let Some(b) = now.get(id) {
                if let Some(addr) = broker_address(b, &self.config.inter_broker_listener) {
                    self.channels.add(*id, addr);
                }
                self.brokers.insert(*id, b.clone());
            }
        }
        if !new.is_empty() {
            let live: Vec<i32> = self.brokers.keys().copied().collect();
            let theirs: Vec<Tp> = self
                .states
                .keys()
                .filter(|tp| {
                    self.replicas(tp)
                        .is_some_and(|r| r.iter().any(|b| new.contains(b)))
                })
                .cloned()
                .collect();
            for id in &new {
                self.send_leader_and_isr(&theirs, Some(*id));
            }
            // Every broker learns the new member; the new ones learn everything.
            self.send_update_metadata(None, &live);
            let all = self.all_partitions();
            self.bring_online(all).await?;
            self.retry_deletions().await?;
            // Reassignments waiting for a replica on a returning broker carry on.
            let waiting: Vec<Tp> = self
                .reassigning()
                .into_iter()
                .filter(|tp| {
                    self.replicas(tp)
                        .is_some_and(|r| r.iter().any(|b| new.contains(b)))
                })
                .collect();
            for tp in waiting {
                self.continue_reassignment(&tp).await?;
            }
        }
        Ok(())
    }

    /// Kafka's OfflineReplica transition for every replica on the failed brokers: out of the
    /// ISR (the last member stays, so a later clean election knows who has the data), leader
    /// -1 if it led, leader epoch bumped; then the offline partitions elect again.
    pub(super) async fn on_brokers_failed(&mut self, dead: &[i32]) -> Result<(), Stop> {
        let touches_dead =
            |s: &PartitionState| dead.contains(&s.leader) || s.isr.iter().any(|r| dead.contains(r));
        let affected: Vec<Tp> = self
            .states
            .iter()
            .filter(|(tp, s)| {
                touches_dead(s)
                    || self
                        .replicas(tp)
                        .is_some_and(|r| r.iter().any(|b| dead.contains(b)))
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        // A leader's own ISR expansion reaches the controller seconds later (the notifications
        // linger): a dead replica missing from the cached ISR may be in the znode's.
        let unsure: Vec<Tp> = affected
            .iter()
            .filter(|tp| self.states.get(*tp).is_some_and(|s| !touches_dead(s)))
            .cloned()
            .collect();
        self.refresh_states(&unsure).await?;
        self.take_replicas_offline(affected, |_, b| dead.contains(&b))
            .await
    }

    /// The OfflineReplica transition for the replicas `offline` names (a partition and a
    /// broker): dead brokers' replicas, or those in a broker's failed log directory. As in
    /// Kafka's `onReplicasBecomeOffline`, partitions that can elect a new leader go first and
    /// are announced before the others (those left leaderless, and ISRs that only shrink): with
    /// thousands of partitions on a failed broker, clients of the partitions that can move
    /// should not wait for every other state write.
    pub(super) async fn take_replicas_offline(
        &mut self,
        affected: Vec<Tp>,
        offline: impl Fn(&Tp, i32) -> bool,
    ) -> Result<(), Stop> {
        let (elected, rest) = self
            .offline_pass(affected, &offline, |s, d| {
                d.leader >= 0 && d.leader != s.leader
            })
            .await?;
        self.announce(&elected);
        let (changed, _) = self.offline_pass(rest, &offline, |_, _| true).await?;
        if elected.is_empty() && changed.is_empty() {
            // Kafka's `onReplicasBecomeOffline`: with no partition changed, an UpdateMetadata
            // without partitions still tells the brokers (and so their clients) who is gone.
            let live: Vec<i32> = self.brokers.keys().copied().collect();
            self.send_update_metadata(Some(&[]), &live);
        }
        self.announce(&changed);
        Ok(())
    }

    /// Decides and writes the OfflineReplica transition of those `affected` partitions whose
    /// decision `now` accepts (given the state before); returns the partitions changed and
    /// those left for later.
    async fn offline_pass(
        &mut self,
        affected: Vec<Tp>,
        offline: &impl Fn(&Tp, i32) -> bool,
        now: impl Fn(&PartitionState, &Decision) -> bool,
    ) -> Result<(Vec<Tp>, Vec<Tp>), Stop> {
        let touches_dead = |tp: &Tp, s: &PartitionState| {
            offline(tp, s.leader) || s.isr.iter().any(|r| offline(tp, *r))
        };
        let mut changed = Vec::new();
        let mut later = Vec::new();
        let mut pending = affected;
        // A leader may change the ISR meanwhile (its own conditional write): a write that lost
        // is decided again on the state as it is then.
        for _attempt in 0..5 {
            let mut decisions = Vec::new();
            for tp in std::mem::take(&mut pending) {
                let Some(s) = self.states.get(&tp).cloned() else {
                    continue;
                };
                if !touches_dead(&tp, &s) {
                    continue;
                }
                let replicas = self.replicas(&tp).unwrap_or_default();
                let survivors: Vec<i32> = s
                    .isr
                    .iter()
                    .copied()
                    .filter(|r| !offline(&tp, *r))
                    .collect();
                let (leader, isr) = if offline(&tp, s.leader) {
                    let candidate = PartitionState {
                        isr: survivors.clone(),
                        ..s.clone()
                    };
                    match self.elect(&tp, &replicas, &candidate, false).await? {
                        Some(decided) => decided,
                        None if survivors.is_empty() => (NO_LEADER, s.isr.clone()),
                        None => (NO_LEADER, survivors),
                    }
                } else if survivors.is_empty() {
                    continue;
                } else {
                    (s.leader, survivors)
                };
                if leader == s.leader && isr == s.isr {
                    // Already recorded as offline (by an earlier controller).
                    continue;
                }
                let d = Decision {
                    tp,
                    leader,
                    leader_epoch: s.leader_epoch + 1,
                    isr,
                };
                if now(&s, &d) {
                    decisions.push(d);
                } else {
                    later.push(d.tp);
                }
            }
            if decisions.is_empty() {
                break;
            }
            let won = self.write_states(&decisions).await?;
            for (d, won) in decisions.into_iter().zip(won) {
                if won {
                    tracing::info!(
                        topic = d.tp.0,
                        partition = d.tp.1,
                        leader = d.leader,
                        "partition changed after broker failure"
                    );
                    changed.push(d.tp);
                } else {
                    pending.push(d.tp);
                }
            }
        }
        Ok((changed, later))
    }
}

pub(super) fn live_broker(z: &BrokerZnode, epoch: i64) -> LiveBroker {
    let mut endpoints: Vec<(String, String, u16, String)> = z
        .endpoints
        .iter()
        .filter_map(|e| {
            let (listener, rest) = e.split_once("://")?;
            let (host, port) = rest.rsplit_once(':')?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let protocol = z
                .listener_security_protocol_map
                .get(listener)
                .cloned()
                .unwrap_or_else(|| listener.to_string());
            Some((
                listener.to_string(),
                host.to_string(),
                port.parse().ok()?,
                protocol,
            ))
        })
        .collect();
    // Registrations of version 1 have only host and port, PLAINTEXT implied.
    if endpoints.is_empty()
        && let (Some(host), Ok(port)) = (&z.host, u16::try_from(z.port))
    {
        endpoints.push(("PLAINTEXT".into(), host.clone(), port, "PLAINTEXT".into()));
    }
    LiveBroker {
        epoch,
        rack: z.rack.clone(),
        endpoints,
    }
}

/// Where the controller reaches a broker: its endpoint on the inter-broker listener (every
/// broker of a cluster names that listener alike, as Kafka requires).
pub(super) fn broker_address(b: &LiveBroker, listener: &str) -> Option<String> {
    let (_, host, port, _) = b.endpoints.iter().find(|e| e.0 == listener)?;
    let host = if host.is_empty() {
        "localhost"
    } else {
        host.as_str()
    };
    Some(crate::client::address(host, *port))
}

/// The wire id of a registered endpoint's protocol; an unknown name (a newer Kafka's) is sent
/// as PLAINTEXT's, which receivers then fail to reach rather than misread.
pub(super) fn security_protocol_id(name: &str) -> i16 {
    SecurityProtocol::from_name(name).map_or(0, SecurityProtocol::id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (listener name, host, port, security protocol name)
    type Endpoint = (String, String, u16, String);

    /// What the controller makes of a registration: its endpoints and rack.
    fn read(json: &str) -> (Vec<Endpoint>, Option<String>) {
        let z: BrokerZnode = znodes::decode("/brokers/ids/1", json.as_bytes())
            .unwrap_or_else(|e| panic!("{json}: {e}"));
        let b = live_broker(&z, 7);
        (b.endpoints, b.rack)
    }

    fn endpoint(
        listener: &str,
        host: &str,
        port: u16,
        protocol: &str,
    ) -> (String, String, u16, String) {
        (listener.into(), host.into(), port, protocol.into())
    }

    /// Every registration version Kafka 2.4-3.9 write, whatever their IBP (2 below 0.10.0-IV1, 4
    /// up to 2.6, 5 with features from 2.7: empty in Kafka 2.7-3.2, Kafka's supported features
    /// after), and version 1, is read with its endpoints, protocols and rack.
    #[test]
    fn registrations_of_every_version_kafka_writes_are_read() {
        // Kafka 2.4.1, as in tests/fixtures/kafka-2.4.1-single.
        assert_eq!(
            read(
                r#"{"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},"endpoints":["PLAINTEXT://127.0.0.1:19092"],"jmx_port":-1,"host":"127.0.0.1","timestamp":"1700000000000","port":19092,"version":4}"#
            ),
            (
                vec![endpoint("PLAINTEXT", "127.0.0.1", 19092, "PLAINTEXT")],
                None
            )
        );
        // Kafka 2.7-2.8 at IBP 2.7+: no PLAINTEXT listener, so host null and port -1.
        assert_eq!(
            read(
                r#"{"features":{},"listener_security_protocol_map":{"INTERNAL":"SSL","EXTERNAL":"SASL_PLAINTEXT"},"endpoints":["INTERNAL://b1:9093","EXTERNAL://[::1]:9094"],"jmx_port":9999,"host":null,"timestamp":"1700000000000","port":-1,"version":5,"rack":"r1"}"#
            ),
            (
                vec![
                    endpoint("INTERNAL", "b1", 9093, "SSL"),
                    endpoint("EXTERNAL", "::1", 9094, "SASL_PLAINTEXT")
                ],
                Some("r1".into())
            )
        );
        // Kafka 3.9 at IBP 3.9: its supported features.
        assert_eq!(
            read(
                r#"{"features":{"metadata.version":{"max_version":21,"min_version":1},"kraft.version":{"max_version":1,"min_version":0}},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},"endpoints":["PLAINTEXT://h:9092"],"jmx_port":-1,"host":"h","timestamp":"1700000000000","port":9092,"version":5}"#
            ),
            (vec![endpoint("PLAINTEXT", "h", 9092, "PLAINTEXT")], None)
        );
        // Below IBP 0.10.0-IV1: version 2, endpoints without a protocol map (names are protocols).
        assert_eq!(
            read(
                r#"{"version":2,"host":"h","port":9092,"jmx_port":-1,"timestamp":"1","endpoints":["PLAINTEXT://h:9092","SSL://h:9093"]}"#
            ),
            (
                vec![
                    endpoint("PLAINTEXT", "h", 9092, "PLAINTEXT"),
                    endpoint("SSL", "h", 9093, "SSL")
                ],
                None
            )
        );
        // Version 1: host and port only.
        assert_eq!(
            read(r#"{"version":1,"host":"h","port":9092,"jmx_port":-1,"timestamp":"1"}"#),
            (vec![endpoint("PLAINTEXT", "h", 9092, "PLAINTEXT")], None)
        );
    }
}
