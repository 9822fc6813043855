//! Client quotas, as Kafka's `ClientQuotaManager` and `ClientRequestQuotaManager` keep them:
//! quota values per entity (`/config/users/<u>`, `/config/clients/<c>`,
//! `/config/users/<u>/clients/<c>` and their `<default>`s), resolved for a connection's user and
//! client id with Kafka's eight levels of precedence, usage measured per sensor in Kafka's
//! windows (`rate`), and the throttle time a violation earns.
//!
//! A leaf: the API layer records into it, the config-change listener fills it, and the
//! connection mutes itself for the time it returns; none of them is known here.

pub mod entity;
mod metrics;
pub mod rate;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Instant;

pub use entity::{Entity, Name};
use rate::{Sampled, Window};

use crate::security::sanitize::sanitize;

pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";

/// Sensors idle this long are dropped (Kafka's `InactiveSensorExpirationTimeSeconds`).
const SENSOR_EXPIRY_MS: u64 = 3600 * 1000;

/// The kinds of client quota, each resolved and measured on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaType {
    Produce,
    Fetch,
    Request,
    /// Stored and described; not enforced by odradek (see `Quotas::record`).
    ControllerMutation,
}

impl QuotaType {
    pub const ALL: [QuotaType; 4] = [
        QuotaType::Produce,
        QuotaType::Fetch,
        QuotaType::Request,
        QuotaType::ControllerMutation,
    ];

    /// The config key its value is stored under.
    pub fn key(self) -> &'static str {
        match self {
            QuotaType::Produce => PRODUCER_BYTE_RATE,
            QuotaType::Fetch => CONSUMER_BYTE_RATE,
            QuotaType::Request => REQUEST_PERCENTAGE,
            QuotaType::ControllerMutation => CONTROLLER_MUTATION_RATE,
        }
    }

    pub fn from_key(key: &str) -> Option<QuotaType> {
        QuotaType::ALL.into_iter().find(|t| t.key() == key)
    }

    /// Byte rates are Java longs; the others doubles (`QuotaConfigs`).
    pub fn is_integral(self) -> bool {
        matches!(self, QuotaType::Produce | QuotaType::Fetch)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Parses a stored quota value as Kafka's `QuotaConfigHandler` does (`toLong` for byte rates,
/// `toDouble` for the others).
pub fn parse_value(t: QuotaType, text: &str) -> Option<f64> {
    if t.is_integral() {
        text.trim().parse::<i64>().ok().map(|v| v as f64)
    } else {
        text.trim().parse::<f64>().ok()
    }
}

/// Broker settings of the quota managers. Read from the broker's properties by the config
/// layer, whose definition table also gives `QuotaSettings::default()`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaSettings {
    pub window: Window,
    /// `controller.quota.window.num` / `controller.quota.window.size.seconds`: the token
    /// bucket of controller mutations holds `samples * size` seconds of its rate.
    pub controller_window: Window,
    /// `quota.producer.default` / `quota.consumer.default`: Kafka 2.x's static client-id quota,
    /// the last resort below `clients/<default>`.
    pub producer_default: Option<f64>,
    pub consumer_default: Option<f64>,
}

/// Who a request is from, as quotas see it.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    /// The principal's name (`alice`, `ANONYMOUS`), not sanitized.
    pub user: &'a str,
    pub client_id: &'a str,
}

/// Kafka's `TokenBucket`: refills at the quota's rate up to `burst` tokens. Kafka's first
/// refill counts from the epoch, so a new bucket starts full; here it is made full.
struct Bucket {
    tokens: f64,
    last_ms: u64,
    throttle: Sampled,
}

impl Bucket {
    fn refill(&mut self, rate: f64, burst: f64, now: u64) {
        let elapsed = now.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + rate * elapsed).min(burst);
        self.last_ms = now;
    }
}

/// Sensor tags `(user, client-id)`: the user sanitized, "" for a level not used.
pub type Tags = (String, String);

/// Which entity shapes have been seen since start-up (`QuotaTypes` of `ClientQuotaManager`).
const CLIENT_KIND: u8 = 1;
const USER_KIND: u8 = 2;
const USER_CLIENT_KIND: u8 = 4;

#[derive(Default)]
struct Table {
    /// Per quota type: the entities with a value of that type.
    quotas: [HashMap<Entity, f64>; 4],
    /// Per quota type: the entity shapes processed so far; 0 = quotas off, nothing recorded.
    kinds: [u8; 4],
    statics: [Option<f64>; 4],
}

impl Table {
    /// `DefaultQuotaCallback.quotaMetricTags`: the tags of the sensor a client's usage goes to.
    /// While only one shape of entity has been seen the tags are that shape's; otherwise those
    /// of the first of the eight levels that has a quota.
    fn tags(&self, t: QuotaType, user: &str, client: &str) -> Tags {
        let (u, c) = (user.to_string(), client.to_string());
        match self.kinds[t.index()] {
            0 | CLIENT_KIND => (String::new(), c),
            USER_KIND => (u, String::new()),
            USER_CLIENT_KIND => (u, c),
            _ => {
                let has = |user: Option<Name>, client: Option<Name>| {
                    self.quotas[t.index()].contains_key(&Entity { user, client })
                };
                let named = |s: &str| Some(Name::Named(s.to_string()));
                let default = || Some(Name::Default);
                if has(named(user), named(client)) || has(named(user), default()) {
                    (u, c)
                } else if has(named(user), None) {
                    (u, String::new())
                } else if has(default(), named(client)) || has(default(), default()) {
                    (u, c)
                } else if has(default(), None) {
                    (u, String::new())
                } else {
                    (String::new(), c)
                }
            }
        }
    }

    /// `DefaultQuotaCallback.quotaLimit`: the bound for a sensor's tags, None = unlimited.
    fn bound(&self, t: QuotaType, tags: &Tags) -> Option<f64> {
        let (user, client) = (tags.0.as_str(), tags.1.as_str());
        let map = &self.quotas[t.index()];
        let get =
            |user: Option<Name>, client: Option<Name>| map.get(&Entity { user, client }).copied();
        let named = |s: &str| Some(Name::Named(s.to_string()));
        let default = || Some(Name::Default);
        if !user.is_empty() && !client.is_empty() {
            get(named(user), named(client))
                .or_else(|| get(named(user), default()))
                .or_else(|| get(default(), named(client)))
                .or_else(|| get(default(), default()))
        } else if !user.is_empty() {
            get(named(user), None).or_else(|| get(default(), None))
        } else if !client.is_empty() {
            get(None, named(client))
                .or_else(|| get(None, default()))
                .or(self.statics[t.index()])
        } else {
            None
        }
    }
}

#[derive(Default)]
struct Sensor {
    usage: Sampled,
    throttle: Sampled,
}

/// Every client quota of this broker: the configured values and the measured usage.
pub struct Quotas {
    settings: QuotaSettings,
    epoch: Instant,
    table: RwLock<Table>,
    sensors: Mutex<HashMap<(QuotaType, Tags), Sensor>>,
    /// Time of requests exempt from the request quota (`exempt-request-time`).
    exempt: Mutex<Sampled>,
    /// When idle sensors were last dropped (ms since `epoch`).
    last_expiry: AtomicU64,
    /// Controller mutation token buckets.
    buckets: Mutex<HashMap<Tags, Bucket>>,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas::new(QuotaSettings::default())
    }
}

impl Quotas {
    pub fn new(settings: QuotaSettings) -> Quotas {
        let mut table = Table::default();
        for (t, value) in [
            (QuotaType::Produce, settings.producer_default),
            (QuotaType::Fetch, settings.consumer_default),
        ] {
            if let Some(v) = value {
                table.statics[t.index()] = Some(v);
                table.kinds[t.index()] |= CLIENT_KIND;
            }
        }
        Quotas {
            settings,
            epoch: Instant::now(),
            table: RwLock::new(table),
            sensors: Mutex::new(HashMap::new()),
            exempt: Mutex::new(Sampled::default()),
            last_expiry: AtomicU64::new(0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn window(&self) -> Window {
        self.settings.window
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Applies an entity's stored config (`QuotaConfigHandler`): each quota type takes the
    /// entity's value or loses it. Processing any entity, even one without quota keys, turns
    /// quotas on for its shape, as in Kafka. A value that does not parse leaves the entity's
    /// quotas as they were (Kafka's handler fails on it as well).
    pub fn apply_entity(&self, entity: &Entity, config: &BTreeMap<String, String>) {
        let mut values = [None; 4];
        for t in QuotaType::ALL {
            if let Some(text) = config.get(t.key()) {
                match parse_value(t, text) {
                    Some(v) => values[t.index()] = Some(v),
                    None => {
                        tracing::warn!(?entity, key = t.key(), value = %text, "invalid stored quota; entity not updated");
                        return;
                    }
                }
            }
        }
        let kind = match (&entity.user, &entity.client) {
            (Some(_), Some(_)) => USER_CLIENT_KIND,
            (Some(_), None) => USER_KIND,
            (None, Some(_)) => CLIENT_KIND,
            (None, None) => return,
        };
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        for t in QuotaType::ALL {
            table.kinds[t.index()] |= kind;
            match values[t.index()] {
                Some(v) => {
                    if table.quotas[t.index()].insert(entity.clone(), v) != Some(v) {
                        tracing::info!(?entity, key = t.key(), value = v, "quota set");
                    }
                }
                None => {
                    if table.quotas[t.index()].remove(entity).is_some() {
                        tracing::info!(?entity, key = t.key(), "quota removed");
                    }
                }
            }
        }
    }

    /// The entities holding a quota of some type, with their values (a full reload drops the
    /// entities no longer stored).
    pub fn entities(&self) -> Vec<Entity> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<Entity> = table
            .quotas
            .iter()
            .flat_map(|m| m.keys().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The sensor tags and the bound that apply to `who` for quota type `t`; None when quotas
    /// of that type are off (nothing has been configured since start-up).
    fn resolve(&self, t: QuotaType, who: Who<'_>) -> Option<(Tags, Option<f64>)> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        if table.kinds[t.index()] == 0 {
            return None;
        }
        let tags = table.tags(t, &sanitize(who.user), who.client_id);
        let bound = table.bound(t, &tags);
        Some((tags, bound))
    }

    /// Whether usage of type `t` is measured at all: only once some quota entity has been
    /// configured since start-up, as in Kafka.
    pub fn enabled(&self, t: QuotaType) -> bool {
        self.table.read().unwrap_or_else(|p| p.into_inner()).kinds[t.index()] != 0
    }

    /// Whether any usage is measured: until then requests need no accounting at all.
    pub fn any_enabled(&self) -> bool {
        self.table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .kinds
            .iter()
            .any(|k| *k != 0)
    }

    /// The quota that applies to `who` for `t`, if any (tests, Describe of effective quotas).
    pub fn bound(&self, t: QuotaType, who: Who<'_>) -> Option<f64> {
        self.resolve(t, who).and_then(|(_, b)| b)
    }

    /// Records `value` against `who`'s quota of type `t` and returns the throttle time in ms
    /// that the usage now earns (0 within quota). The request quota's throttle is at most one
    /// window (`ClientRequestQuotaManager`). Controller mutations are not measured.
    pub fn record(&self, t: QuotaType, who: Who<'_>, value: f64) -> u64 {
        self.record_at(t, who, value, self.now_ms())
    }

    fn record_at(&self, t: QuotaType, who: Who<'_>, value: f64, now: u64) -> u64 {
        if t == QuotaType::ControllerMutation {
            return 0;
        }
        let Some((tags, bound)) = self.resolve(t, who) else {
            return 0;
        };
        let window = self.settings.window;
        // Once a minute, so that sensors of clients long gone do not pile up between scrapes.
        let last = self.last_expiry.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 60_000
            && self
                .last_expiry
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.expire_sensors(now);
        }
        let mut sensors = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
        let sensor = sensors.entry((t, tags)).or_default();
        sensor.usage.record(window, value, now);
        let Some(bound) = bound else {
            return 0;
        };
        let observed = sensor.usage.rate(window, now);
        if observed <= bound {
            return 0;
        }
        let window_ms = sensor.usage.window_ms(window, now);
        let ms = rate::throttle_ms(observed, bound, window_ms);
        if t == QuotaType::Request {
            ms.min(window.size_ms)
        } else {
            ms
        }
    }

    /// Records `partitions` created or deleted by `who` against its controller mutation quota
    /// (KIP-599, `ControllerMutationQuotaManager`). Strict (CreateTopics v6+, DeleteTopics v5+,
    /// CreatePartitions v3+): refused with `Err(throttle ms)` when the bucket is already empty,
    /// else recorded even if that empties it, without throttle. Permissive (older versions):
    /// always recorded, `Ok(throttle ms)` once the bucket is empty.
    pub fn record_mutations(
        &self,
        who: Who<'_>,
        partitions: f64,
        strict: bool,
    ) -> Result<u64, u64> {
        self.record_mutations_at(who, partitions, strict, self.now_ms())
    }

    fn record_mutations_at(
        &self,
        who: Who<'_>,
        partitions: f64,
        strict: bool,
        now: u64,
    ) -> Result<u64, u64> {
        let Some((tags, Some(rate))) = self.resolve(QuotaType::ControllerMutation, who) else {
            return Ok(0);
        };
        let window = self.settings.controller_window;
        let burst = window.samples as f64 * window.size_ms as f64 / 1000.0 * rate;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(tags).or_insert_with(|| Bucket {
            tokens: burst,
            last_ms: now,
            throttle: Sampled::default(),
        });
        bucket.refill(rate, burst, now);
        let throttle_ms = |tokens: f64| {
            if rate > 0.0 {
                (-tokens / rate * 1000.0).round().max(0.0) as u64
            } else {
                window.size_ms
            }
        };
        if strict && bucket.tokens < 0.0 {
            let ms = throttle_ms(bucket.tokens);
            bucket.throttle.record(window, ms as f64, now);
            return Err(ms);
        }
        bucket.tokens -= partitions;
        if !strict && bucket.tokens < 0.0 {
            let ms = throttle_ms(bucket.tokens);
            bucket.throttle.record(window, ms as f64, now);
            return Ok(ms);
        }
        Ok(0)
    }

    /// Takes back a recorded value: a fetch answered empty because of its throttle did not send
    /// the bytes it was measured with (`unrecordQuotaSensor`).
    pub fn unrecord(&self, t: QuotaType, who: Who<'_>, value: f64) {
        let Some((tags, _)) = self.resolve(t, who) else {
            return;
        };
        let now = self.now_ms();
        let mut sensors = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sensor) = sensors.get_mut(&(t, tags)) {
            sensor.usage.record(self.settings.window, -value, now);
        }
    }

    /// Notes a throttle applied to `who` (the `throttle-time` metric averages them).
    pub fn throttled(&self, t: QuotaType, who: Who<'_>, ms: u64) {
        if ms == 0 {
            return;
        }
        let Some((tags, _)) = self.resolve(t, who) else {
            return;
        };
        let now = self.now_ms();
        let mut sensors = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
        sensors
            .entry((t, tags))
            .or_default()
            .throttle
            .record(self.settings.window, ms as f64, now);
    }

    /// Time of a request exempt from the request quota (broker-to-broker), kept apart.
    pub fn record_exempt(&self, percent: f64) {
        if self.table.read().unwrap_or_else(|p| p.into_inner()).kinds[QuotaType::Request.index()]
            == 0
        {
            return;
        }
        let now = self.now_ms();
        self.exempt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(self.settings.window, percent, now);
    }

    /// `maxValueInQuotaWindow`: the most a client may take within the quota's window, which
    /// caps what one fetch returns, so a consumer is never handed more than it may have.
    pub fn max_value_in_window(&self, t: QuotaType, who: Who<'_>) -> Option<f64> {
        let bound = self.bound(t, who)?;
        let window = self.settings.window;
        Some(bound * window.samples.saturating_sub(1) as f64 * window.size_ms as f64 / 1000.0)
    }

    /// Drops the sensors idle for an hour.
    fn expire_sensors(&self, now: u64) {
        let mut sensors = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
        sensors.retain(|_, s| {
            let last = s
                .usage
                .last_event_ms()
                .max(s.throttle.last_event_ms())
                .unwrap_or(now);
            now.saturating_sub(last) < SENSOR_EXPIRY_MS
        });
        drop(sensors);
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, b| now.saturating_sub(b.last_ms) < SENSOR_EXPIRY_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(user: Option<&str>, client: Option<&str>) -> Entity {
        let name = |s: &str| {
            if s == "<default>" {
                Name::Default
            } else {
                Name::Named(s.to_string())
            }
        };
        Entity {
            user: user.map(name),
            client: client.map(name),
        }
    }

    fn set(q: &Quotas, user: Option<&str>, client: Option<&str>, rate: i64) {
        let mut c = BTreeMap::new();
        c.insert(PRODUCER_BYTE_RATE.to_string(), rate.to_string());
        q.apply_entity(&entity(user, client), &c);
    }

    fn clear(q: &Quotas, user: Option<&str>, client: Option<&str>) {
        q.apply_entity(&entity(user, client), &BTreeMap::new());
    }

    /// All eight levels set at once; removing them one by one, from the most specific, uncovers
    /// the next in Kafka's order.
    #[test]
    fn the_eight_levels_resolve_in_kafkas_order() {
        let q = Quotas::default();
        // (user, client id, value, sensor tags)
        type Level<'a> = (Option<&'a str>, Option<&'a str>, i64, (&'a str, &'a str));
        let levels: [Level; 8] = [
            (Some("alice"), Some("app"), 1, ("alice", "app")),
            (Some("alice"), Some("<default>"), 2, ("alice", "app")),
            (Some("alice"), None, 3, ("alice", "")),
            (Some("<default>"), Some("app"), 4, ("alice", "app")),
            (Some("<default>"), Some("<default>"), 5, ("alice", "app")),
            (Some("<default>"), None, 6, ("alice", "")),
            (None, Some("app"), 7, ("", "app")),
            (None, Some("<default>"), 8, ("", "app")),
        ];
        for (u, c, v, _) in levels {
            set(&q, u, c, v);
        }
        let who = Who {
            user: "alice",
            client_id: "app",
        };
        for (u, c, v, tags) in levels {
            let (got_tags, bound) = q.resolve(QuotaType::Produce, who).unwrap();
            assert_eq!(bound, Some(v as f64), "level {v}");
            assert_eq!(
                got_tags,
                (tags.0.to_string(), tags.1.to_string()),
                "level {v}"
            );
            clear(&q, u, c);
        }
        assert_eq!(q.bound(QuotaType::Produce, who), None);
        // Other users and clients only see the defaults.
        set(&q, Some("<default>"), None, 6);
        set(&q, Some("alice"), None, 3);
        assert_eq!(
            q.bound(
                QuotaType::Produce,
                Who {
                    user: "bob",
                    client_id: "x"
                }
            ),
            Some(6.0)
        );
        // Each quota type is resolved by itself.
        assert_eq!(q.bound(QuotaType::Fetch, who), None);
    }

    #[test]
    fn one_shape_of_entity_fixes_the_tags() {
        let q = Quotas::default();
        set(&q, None, Some("app"), 100);
        let (tags, bound) = q
            .resolve(
                QuotaType::Produce,
                Who {
                    user: "a b",
                    client_id: "app",
                },
            )
            .unwrap();
        assert_eq!(tags, (String::new(), "app".to_string()));
        assert_eq!(bound, Some(100.0));
        let q = Quotas::default();
        set(&q, Some("a b"), None, 100);
        let (tags, _) = q
            .resolve(
                QuotaType::Produce,
                Who {
                    user: "a b",
                    client_id: "app",
                },
            )
            .unwrap();
        // The user in tags is sanitized, as in Kafka's sensor names.
        assert_eq!(tags, ("a%20b".to_string(), String::new()));
    }

    #[test]
    fn nothing_is_recorded_until_a_quota_entity_is_seen() {
        let q = Quotas::default();
        let who = Who {
            user: "u",
            client_id: "c",
        };
        assert_eq!(q.record_at(QuotaType::Produce, who, 1e12, 0), 0);
        assert!(q.sensors.lock().unwrap().is_empty());
        // Even an entity without quota keys (SCRAM credentials only) turns recording on.
        q.apply_entity(&entity(Some("u"), None), &BTreeMap::new());
        assert_eq!(q.record_at(QuotaType::Produce, who, 1e12, 0), 0);
        assert_eq!(q.sensors.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_violation_earns_kafkas_throttle_time() {
        let q = Quotas::default();
        set(&q, None, Some("c"), 1000);
        let who = Who {
            user: "u",
            client_id: "c",
        };
        // 10 000 bytes in a 10 s window: 1000/s, within the quota.
        assert_eq!(q.record_at(QuotaType::Produce, who, 10_000.0, 0), 0);
        // 20 000 bytes: 2000/s, twice the quota: 10 s of silence brings it back.
        assert_eq!(q.record_at(QuotaType::Produce, who, 10_000.0, 0), 10_000);
    }

    #[test]
    fn request_throttle_is_capped_at_one_window() {
        let q = Quotas::default();
        let mut c = BTreeMap::new();
        c.insert(REQUEST_PERCENTAGE.to_string(), "1.0".to_string());
        q.apply_entity(&entity(None, Some("<default>")), &c);
        let who = Who {
            user: "u",
            client_id: "c",
        };
        assert_eq!(q.record_at(QuotaType::Request, who, 500.0, 0), 1000);
    }

    #[test]
    fn static_default_is_the_last_resort_for_client_ids() {
        let q = Quotas::new(QuotaSettings {
            producer_default: Some(50.0),
            ..Default::default()
        });
        let who = Who {
            user: "u",
            client_id: "c",
        };
        assert_eq!(q.bound(QuotaType::Produce, who), Some(50.0));
        assert_eq!(q.bound(QuotaType::Fetch, who), None);
        set(&q, None, Some("<default>"), 70);
        assert_eq!(q.bound(QuotaType::Produce, who), Some(70.0));
    }

    #[test]
    fn controller_mutations_spend_a_token_bucket() {
        let q = Quotas::default();
        let mut c = BTreeMap::new();
        c.insert(CONTROLLER_MUTATION_RATE.to_string(), "2.0".to_string());
        q.apply_entity(&entity(None, Some("c")), &c);
        let who = Who {
            user: "u",
            client_id: "c",
        };
        // A new bucket is full: 11 windows of 1 s at 2/s = 22 partitions.
        assert_eq!(q.record_mutations_at(who, 20.0, true, 100_000), Ok(0));
        // Strict: the topic that empties it goes through without throttle ...
        assert_eq!(q.record_mutations_at(who, 6.0, true, 100_000), Ok(0));
        // ... the next is refused while the bucket is negative (-4 tokens: 2 s at 2/s).
        assert_eq!(q.record_mutations_at(who, 1.0, true, 100_000), Err(2000));
        assert_eq!(q.record_mutations_at(who, 1.0, true, 101_000), Err(1000));
        // Permissive: recorded anyway, throttled by what is missing.
        assert_eq!(q.record_mutations_at(who, 4.0, false, 101_000), Ok(3000));
        // Refilled after 3 s.
        assert_eq!(q.record_mutations_at(who, 1.0, true, 104_000), Ok(0));
        // Other clients are not limited.
        let other = Who {
            user: "u",
            client_id: "d",
        };
        assert_eq!(q.record_mutations_at(other, 1000.0, false, 104_000), Ok(0));
    }

    #[test]
    fn sensors_idle_for_an_hour_are_dropped() {
        let q = Quotas::default();
        set(&q, None, Some("c"), 1000);
        let who = |c| Who {
            user: "u",
            client_id: c,
        };
        q.record_at(QuotaType::Produce, who("a"), 1.0, 0);
        q.record_at(QuotaType::Produce, who("b"), 1.0, 3_000_000);
        q.record_at(QuotaType::Produce, who("b"), 1.0, 3_700_000);
        let left: Vec<String> = q
            .sensors
            .lock()
            .unwrap()
            .keys()
            .map(|(_, (_, c))| c.clone())
            .collect();
        assert_eq!(left, vec!["b".to_string()]);
    }

    #[test]
    fn a_bad_stored_value_changes_nothing() {
        let q = Quotas::default();
        set(&q, None, Some("c"), 10);
        let mut c = BTreeMap::new();
        c.insert(PRODUCER_BYTE_RATE.to_string(), "fast".to_string());
        q.apply_entity(&entity(None, Some("c")), &c);
        let who = Who {
            user: "u",
            client_id: "c",
        };
        assert_eq!(q.bound(QuotaType::Produce, who), Some(10.0));
    }
}
