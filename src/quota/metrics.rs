//! The quota metrics, as Kafka's quota sensors report them through JMX (`Produce`, `Fetch`,
//! `Request` and `ControllerMutation` byte-rate, throttle-time and request-time per user and
//! client id), rendered for Prometheus at every scrape.

use prometheus::proto::{MetricFamily, MetricType};

use super::*;
use crate::metrics::{Family, Scraped};

impl Quotas {
    /// Reports the quota metrics at every Prometheus scrape for as long as `self` lives.
    pub fn register_metrics(self: &std::sync::Arc<Self>) {
        crate::metrics::global().watch(&FAMILIES, self);
    }
}

const LABELS: &[&str] = &["user", "client_id"];

const fn labelled(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        help,
        labels: LABELS,
        kind: MetricType::GAUGE,
        additive: true,
    }
}

/// `kafka.server:type=Produce|Fetch|Request,user=..,client-id=..` as the JMX exporter renders
/// them (lowercased, attribute last).
static FAMILIES: [Family; 9] = [
    labelled(
        "kafka_server_produce_byte_rate",
        "Produce bytes per second per quota sensor (Produce byte-rate).",
    ),
    labelled(
        "kafka_server_produce_throttle_time",
        "Average produce throttle time in ms (Produce throttle-time).",
    ),
    labelled(
        "kafka_server_fetch_byte_rate",
        "Fetch bytes per second per quota sensor (Fetch byte-rate).",
    ),
    labelled(
        "kafka_server_fetch_throttle_time",
        "Average fetch throttle time in ms (Fetch throttle-time).",
    ),
    labelled(
        "kafka_server_request_request_time",
        "Request handling time in percent of one thread (Request request-time).",
    ),
    labelled(
        "kafka_server_request_throttle_time",
        "Average request-quota throttle time in ms (Request throttle-time).",
    ),
    labelled(
        "kafka_server_controllermutation_tokens",
        "Tokens left in the controller mutation bucket at its last use (ControllerMutation tokens).",
    ),
    labelled(
        "kafka_server_controllermutation_throttle_time",
        "Average controller mutation throttle time in ms (ControllerMutation throttle-time).",
    ),
    Family::gauge(
        "kafka_server_request_exempt_request_time",
        "Time of requests exempt from the request quota, in percent (Request exempt-request-time).",
    ),
];

impl Scraped for Quotas {
    fn scrape(&self) -> Vec<MetricFamily> {
        let now = self.now_ms();
        self.expire_sensors(now);
        let window = self.settings.window;
        let mut points: [Vec<(Vec<String>, f64)>; 8] = Default::default();
        {
            let mut sensors = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
            for ((t, (user, client)), sensor) in sensors.iter_mut() {
                let base = match t {
                    QuotaType::Produce => 0,
                    QuotaType::Fetch => 2,
                    QuotaType::Request => 4,
                    QuotaType::ControllerMutation => continue,
                };
                let labels = vec![user.clone(), client.clone()];
                points[base].push((labels.clone(), sensor.usage.rate(window, now)));
                points[base + 1].push((labels, sensor.throttle.avg(window, now)));
            }
        }
        {
            let window = self.settings.controller_window;
            let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
            for ((user, client), bucket) in buckets.iter_mut() {
                let labels = vec![user.clone(), client.clone()];
                points[6].push((labels.clone(), bucket.tokens));
                points[7].push((labels, bucket.throttle.avg(window, now)));
            }
        }
        let mut out: Vec<MetricFamily> = FAMILIES
            .iter()
            .zip(points)
            .map(|(f, p)| f.samples(p))
            .collect();
        let exempt = self
            .exempt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .rate(window, now);
        out.push(FAMILIES[8].value(exempt));
        out
    }
}
