//! Listener settings: `listeners`, `advertised.listeners`, `listener.security.protocol.map`
//! and the legacy `host.name`/`port` keys, with the checks Kafka makes on them. Separate
//! because their parsing and cross-checks are a small language of their own.

use std::collections::BTreeMap;
use std::fmt;

use super::properties::{Props, csv, invalid};
use super::{BrokerConfig, ConfigError};
use crate::security::SecurityProtocol;

/// One entry of `listeners` or `advertised.listeners`, written `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The listener name, upper-cased as Kafka normalises it (`PLAINTEXT`, `INTERNAL`, ...).
    pub name: String,
    /// Host name or IP address (IPv6 without brackets). Empty means all interfaces when binding,
    /// and the machine's own host name when advertising, as in Kafka.
    pub host: String,
    /// Port 0 binds an ephemeral port, which Kafka also allows (tests use it).
    pub port: u16,
    /// The listener's protocol, from `listener.security.protocol.map`.
    pub protocol: SecurityProtocol,
}

/// Prints the `NAME://host:port` form Kafka uses in its configs and in `/brokers/ids/<id>`.
impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

/// Where the broker listens when neither `listeners` nor the old `host.name` is set. Kafka binds
/// every interface; we bind loopback so that a broker started without a config file is not
/// reachable from the network by surprise.
pub(super) const DEFAULT_LISTENER_HOST: &str = "127.0.0.1";
/// Kafka's default `listener.security.protocol.map`: each security protocol is a listener name.
const DEFAULT_SECURITY_PROTOCOL_MAP: &str =
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";

fn join_listeners(listeners: &[Listener]) -> String {
    listeners
        .iter()
        .map(Listener::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The characters Kafka's listener pattern allows in a host (names, IPv4, IPv6 with zone).
fn check_host(host: &str) -> Result<(), String> {
    match host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-%._:".contains(*c)))
    {
        Some(c) => Err(format!("host {host:?} contains {c:?}")),
        None => Ok(()),
    }
}

fn parse_listener(entry: &str) -> Result<Listener, String> {
    const FORM: &str = "expected NAME://host:port, e.g. PLAINTEXT://127.0.0.1:9092";
    let (name, address) = entry.split_once("://").ok_or(FORM)?;
    let name = name.trim().to_ascii_uppercase();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!("bad listener name in {entry:?}; {FORM}"));
    }
    let (host, port) = match address.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once("]:"),
        // Without brackets an IPv6 host still works: the port follows the last colon.
        None => address.rsplit_once(':'),
    }
    .ok_or_else(|| format!("no port in {entry:?}; {FORM}"))?;
    check_host(host)?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("port {port:?} is not a number from 0 to 65535"))?;
    Ok(Listener {
        name,
        host: host.to_string(),
        port,
        // Set from listener.security.protocol.map once every listener is read.
        protocol: SecurityProtocol::Plaintext,
    })
}

fn parse_listeners(
    key: &str,
    value: &str,
    distinct_ports: bool,
) -> Result<Vec<Listener>, ConfigError> {
    let mut listeners: Vec<Listener> = Vec::new();
    for entry in csv(value) {
        let l = parse_listener(entry).map_err(|reason| invalid(key, value, reason))?;
        if listeners.iter().any(|o| o.name == l.name) {
            return Err(invalid(
                key,
                value,
                format!("listener name {} appears twice", l.name),
            ));
        }
        // Port 0 means "any free port", so several listeners may ask for it; advertised ports
        // may repeat (different hosts behind NAT), as Kafka allows since 2.6.
        if distinct_ports && l.port != 0 && listeners.iter().any(|o| o.port == l.port) {
            return Err(invalid(
                key,
                value,
                format!("port {} is used by two listeners", l.port),
            ));
        }
        listeners.push(l);
    }
    if listeners.is_empty() {
        return Err(invalid(
            key,
            value,
            "at least one listener is required, e.g. PLAINTEXT://127.0.0.1:9092",
        ));
    }
    Ok(listeners)
}

const PROTOCOLS: &str = "PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL";

/// `listener.security.protocol.map`: listener name to security protocol.
fn parse_protocol_map(value: &str) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    const KEY: &str = "listener.security.protocol.map";
    let mut map = BTreeMap::new();
    for entry in csv(value) {
        let (name, protocol) = entry
            .split_once(':')
            .ok_or_else(|| invalid(KEY, value, format!("{entry:?} is not NAME:PROTOCOL")))?;
        let protocol = SecurityProtocol::from_name(protocol.trim()).ok_or_else(|| {
            invalid(
                KEY,
                value,
                format!("unknown security protocol {protocol}; expected one of {PROTOCOLS}"),
            )
        })?;
        map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    Ok(map)
}

impl BrokerConfig {
    /// `listeners` and `advertised.listeners`, with the checks Kafka makes on them.
    /// Returns the listeners, the advertised listeners and the inter-broker listener's name.
    pub(super) fn listeners(
        p: &Props<'_>,
    ) -> Result<(Vec<Listener>, Vec<Listener>, String), ConfigError> {
        let legacy_host = p.get("host.name");
        let legacy_port = p.num("port", None)?;
        let plaintext = |key: &str, host: &str, port: u16| {
            check_host(host)
                .map(|()| Listener {
                    name: "PLAINTEXT".into(),
                    host: host.to_string(),
                    port,
                    protocol: SecurityProtocol::Plaintext,
                })
                .map_err(|reason| invalid(key, host, reason))
        };

        let mut listeners = match p.get("listeners") {
            Some(v) => parse_listeners("listeners", v, true)?,
            // Kafka 2.4 builds the one listener from the deprecated host.name and port.
            None => vec![plaintext(
                "host.name",
                legacy_host.unwrap_or(DEFAULT_LISTENER_HOST),
                legacy_port,
            )?],
        };
        let advertised_host = p.get("advertised.host.name");
        let advertised_port = p.get("advertised.port");
        let mut advertised = match p.get("advertised.listeners") {
            Some(v) => parse_listeners("advertised.listeners", v, false)?,
            // Kafka 2.4 again: each half of the deprecated pair defaults to host.name / port.
            None if advertised_host.is_some() || advertised_port.is_some() => {
                let port = p.num_or("advertised.port", None, legacy_port)?;
                let host = advertised_host
                    .or(legacy_host)
                    .unwrap_or(DEFAULT_LISTENER_HOST);
                vec![plaintext("advertised.host.name", host, port)?]
            }
            None => listeners.clone(),
        };

        let protocols = parse_protocol_map(
            p.get("listener.security.protocol.map")
                .unwrap_or(DEFAULT_SECURITY_PROTOCOL_MAP),
        )?;
        for (key, list) in [
            ("listeners", &mut listeners),
            ("advertised.listeners", &mut advertised),
        ] {
            let shown = join_listeners(list);
            for l in list.iter_mut() {
                l.protocol = *protocols.get(&l.name).ok_or_else(|| {
                    invalid(
                        key,
                        &shown,
                        format!(
                            "listener.security.protocol.map has no security protocol for listener {}",
                            l.name
                        ),
                    )
                })?;
            }
        }

        let shown = join_listeners(&advertised);
        for a in &advertised {
            if !listeners.iter().any(|l| l.name == a.name) {
                return Err(invalid(
                    "advertised.listeners",
                    &shown,
                    format!("listener {} is not among listeners", a.name),
                ));
            }
            // Kafka refuses this too: clients would be told to connect to "any address".
            if a.host == "0.0.0.0" {
                return Err(invalid(
                    "advertised.listeners",
                    &shown,
                    "0.0.0.0 is not an address clients can reach; advertised.listeners \
                     defaults to listeners, so set it to a routable host",
                ));
            }
        }

        // Other brokers (and the controller) reach this one through the inter-broker listener,
        // so it must be advertised. Kafka makes the same checks; we only validate it here.
        let (key, name) = match (
            p.get("inter.broker.listener.name"),
            p.get("security.inter.broker.protocol"),
        ) {
            (Some(name), Some(_)) => {
                return Err(invalid(
                    "inter.broker.listener.name",
                    name,
                    "set only one of inter.broker.listener.name and security.inter.broker.protocol",
                ));
            }
            (Some(name), None) => ("inter.broker.listener.name", name.to_ascii_uppercase()),
            (None, Some(protocol)) => {
                let known = SecurityProtocol::from_name(protocol).ok_or_else(|| {
                    invalid(
                        "security.inter.broker.protocol",
                        protocol,
                        format!("expected one of {PROTOCOLS}"),
                    )
                })?;
                ("security.inter.broker.protocol", known.name().to_string())
            }
            (None, None) => ("inter.broker.listener.name", "PLAINTEXT".to_string()),
        };
        if !advertised.iter().any(|a| a.name == name) {
            return Err(invalid(
                key,
                &name,
                format!(
                    "brokers reach each other through this listener, so it must be one of advertised.listeners ({shown})"
                ),
            ));
        }
        Ok((listeners, advertised, name))
    }
}
