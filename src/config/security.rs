//! Per-listener security settings: the `ssl.*` and `sasl.*` keys, each of which a listener may
//! override with the prefix `listener.name.<listener>.` (Kafka's `ListenerName.configPrefix`),
//! and the JAAS config of each SASL mechanism, which Kafka reads only with the listener and
//! mechanism prefix `listener.name.<listener>.<mechanism>.sasl.jaas.config`.
//!
//! Everything is read and checked at start-up: a listener whose keystore cannot be used, or
//! whose mechanism has no JAAS entry, stops the broker with an error naming the key, rather than
//! opening a listener that fails every client.

use std::collections::BTreeMap;

use super::ConfigError;
use super::listeners::Listener;
use super::properties::invalid;
use crate::client::SaslCredentials;
use crate::security::SecurityProtocol;
use crate::security::jaas::JaasConfig;
use crate::security::sasl::Mechanism;
use crate::security::tls::TlsSettings;

/// How one listener's connections are secured.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerSecurity {
    pub protocol: SecurityProtocol,
    /// For SSL and SASL_SSL listeners.
    pub tls: Option<TlsSettings>,
    /// For SASL_PLAINTEXT and SASL_SSL listeners.
    pub sasl: Option<SaslSettings>,
}

/// A SASL listener's mechanisms and limits.
#[derive(Debug, Clone, PartialEq)]
pub struct SaslSettings {
    /// `sasl.enabled.mechanisms`, in the order given.
    pub mechanisms: Vec<Mechanism>,
    /// The JAAS config of each enabled mechanism.
    pub jaas: BTreeMap<Mechanism, JaasConfig>,
    /// `connections.max.reauth.ms` (0: sessions never expire), per mechanism as Kafka allows.
    pub max_reauth_ms: BTreeMap<Mechanism, u64>,
    /// `sasl.server.max.receive.size` (524288): the largest frame before authentication.
    pub max_receive_size: usize,
    /// `connection.failed.authentication.delay.ms` (100).
    pub failed_authentication_delay_ms: u64,
}

impl SaslSettings {
    /// PLAIN's users: the `user_<name>` options of the PLAIN JAAS entry.
    pub fn plain_users(&self) -> BTreeMap<String, String> {
        self.jaas
            .get(&Mechanism::Plain)
            .map(JaasConfig::plain_users)
            .unwrap_or_default()
    }
}

/// How this broker connects to other brokers: the inter-broker listener's protocol, its TLS
/// settings, and the SASL mechanism and credentials it logs in with.
#[derive(Debug, Clone, PartialEq)]
pub struct InterBrokerSecurity {
    pub protocol: SecurityProtocol,
    pub tls: Option<TlsSettings>,
    /// `sasl.mechanism.inter.broker.protocol` with the `username` and `password` of its JAAS
    /// entry on the inter-broker listener.
    pub sasl: Option<SaslCredentials>,
}

impl Default for InterBrokerSecurity {
    fn default() -> Self {
        InterBrokerSecurity {
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
        }
    }
}

/// A key's value for a listener: the listener-prefixed key first, then the plain one.
fn lookup<'a>(
    props: &'a BTreeMap<String, String>,
    listener: &str,
    key: &str,
) -> Option<(String, &'a str)> {
    let prefixed = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
    if let Some(v) = props.get(&prefixed) {
        return Some((prefixed, v.trim()));
    }
    props.get(key).map(|v| (key.to_string(), v.trim()))
}

fn number(
    props: &BTreeMap<String, String>,
    listener: &str,
    key: &str,
    default: u64,
) -> Result<u64, ConfigError> {
    match lookup(props, listener, key) {
        None => Ok(default),
        Some((key, v)) => v
            .parse::<i64>()
            .ok()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| invalid(&key, v, "must be a whole number, at least 0")),
    }
}

const SUPPORTED_MECHANISMS: &str = "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512";

/// The security settings of `listener` from the broker's properties.
pub(super) fn listener_security(
    props: &BTreeMap<String, String>,
    listener: &Listener,
) -> Result<ListenerSecurity, ConfigError> {
    let name = listener.name.as_str();
    let tls = if listener.protocol.uses_tls() {
        let sasl_ssl = listener.protocol == SecurityProtocol::SaslSsl;
        let settings = TlsSettings::from_lookup(|key| {
            // On SASL_SSL listeners SASL authenticates the client: a client certificate is
            // asked for only when the listener's own prefixed key says so (Kafka's
            // ChannelBuilders), never because of the broker-wide ssl.client.auth.
            if sasl_ssl && key == "ssl.client.auth" {
                let prefixed = format!("listener.name.{}.{key}", name.to_ascii_lowercase());
                return props.get(&prefixed).map(|v| v.trim().to_string());
            }
            lookup(props, name, key).map(|(_, v)| v.to_string())
        })
        .map_err(|e| {
            invalid(
                &format!("listener.name.{}", name.to_ascii_lowercase()),
                name,
                e.to_string(),
            )
        })?;
        Some(settings)
    } else {
        None
    };
    let sasl = if listener.protocol.uses_sasl() {
        Some(sasl_settings(props, name)?)
    } else {
        None
    };
    Ok(ListenerSecurity {
        protocol: listener.protocol,
        tls,
        sasl,
    })
}

fn sasl_settings(
    props: &BTreeMap<String, String>,
    listener: &str,
) -> Result<SaslSettings, ConfigError> {
    // Kafka's default is GSSAPI, which odradek does not implement: a SASL listener must name
    // its mechanisms.
    let (key, value) = lookup(props, listener, "sasl.enabled.mechanisms")
        .unwrap_or_else(|| ("sasl.enabled.mechanisms".into(), "GSSAPI"));
    let mut mechanisms = Vec::new();
    for m in super::properties::csv(value) {
        let mechanism = Mechanism::from_name(m).ok_or_else(|| {
            invalid(
                &key,
                value,
                format!(
                    "SASL mechanism {m} is not supported; odradek supports {SUPPORTED_MECHANISMS}"
                ),
            )
        })?;
        if !mechanisms.contains(&mechanism) {
            mechanisms.push(mechanism);
        }
    }
    if mechanisms.is_empty() {
        return Err(invalid(
            &key,
            value,
            "a SASL listener needs at least one mechanism",
        ));
    }
    let lower = listener.to_ascii_lowercase();
    let mut jaas = BTreeMap::new();
    let mut max_reauth_ms = BTreeMap::new();
    for &m in &mechanisms {
        let mech = m.name().to_ascii_lowercase();
        let jaas_key = format!("listener.name.{lower}.{mech}.sasl.jaas.config");
        let text = props.get(&jaas_key).ok_or_else(|| {
            invalid(
                &jaas_key,
                "",
                format!(
                    "listener {listener} enables {m} but has no JAAS config for it (a bare \
                     sasl.jaas.config is ignored by brokers, as in Kafka)"
                ),
            )
        })?;
        let parsed = JaasConfig::parse(text).map_err(|e| invalid(&jaas_key, "(hidden)", e))?;
        jaas.insert(m, parsed);
        let reauth_key = format!("{mech}.connections.max.reauth.ms");
        let reauth = match lookup(props, listener, &reauth_key) {
            Some(_) => number(props, listener, &reauth_key, 0)?,
            None => number(props, listener, "connections.max.reauth.ms", 0)?,
        };
        max_reauth_ms.insert(m, reauth);
    }
    Ok(SaslSettings {
        mechanisms,
        jaas,
        max_reauth_ms,
        max_receive_size: usize::try_from(number(
            props,
            listener,
            "sasl.server.max.receive.size",
            524_288,
        )?)
        .unwrap_or(usize::MAX),
        failed_authentication_delay_ms: number(
            props,
            listener,
            "connection.failed.authentication.delay.ms",
            100,
        )?,
    })
}

/// How this broker reaches the others: the security of the inter-broker listener, and the
/// mechanism and credentials of `sasl.mechanism.inter.broker.protocol` on it.
pub(super) fn inter_broker_security(
    props: &BTreeMap<String, String>,
    listener: &Listener,
    security: &ListenerSecurity,
) -> Result<InterBrokerSecurity, ConfigError> {
    let sasl = match &security.sasl {
        None => None,
        Some(sasl) => {
            const KEY: &str = "sasl.mechanism.inter.broker.protocol";
            let value = props.get(KEY).map_or("GSSAPI", |v| v.trim());
            let mechanism = Mechanism::from_name(value)
                .filter(|m| sasl.mechanisms.contains(m))
                .ok_or_else(|| {
                    invalid(
                        KEY,
                        value,
                        format!(
                            "must be one of the inter-broker listener {}'s sasl.enabled.mechanisms",
                            listener.name
                        ),
                    )
                })?;
            let jaas_key = format!(
                "listener.name.{}.{}.sasl.jaas.config",
                listener.name.to_ascii_lowercase(),
                mechanism.name().to_ascii_lowercase()
            );
            let jaas = sasl.jaas.get(&mechanism);
            let (Some(username), Some(password)) = (
                jaas.and_then(JaasConfig::username),
                jaas.and_then(JaasConfig::password),
            ) else {
                return Err(invalid(
                    &jaas_key,
                    "(hidden)",
                    "the inter-broker mechanism's JAAS config needs username and password: \
                     the credentials this broker logs in to other brokers with",
                ));
            };
            Some(SaslCredentials {
                mechanism,
                username: username.to_string(),
                password: password.to_string(),
                // Brokers log in to each other as users, never with a token.
                token_auth: false,
            })
        }
    };
    Ok(InterBrokerSecurity {
        protocol: security.protocol,
        tls: security.tls.clone(),
        sasl,
    })
}

impl InterBrokerSecurity {
    /// What this broker's connections to other brokers use. Read again for each connection,
    /// so that renewed certificate files are picked up without a restart.
    pub fn client_security(&self) -> Result<crate::client::Security, String> {
        let tls = match &self.tls {
            Some(settings) => Some(settings.client_config().map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(crate::client::Security {
            tls,
            sasl: self.sasl.clone(),
        })
    }

    /// Opens a connection to another broker on the inter-broker listener: TLS and SASL as
    /// this broker's config says.
    pub async fn connect(
        &self,
        addr: &str,
        client: &crate::client::ClientId,
    ) -> crate::client::Result<crate::client::Connection> {
        let security =
            self.client_security()
                .map_err(|reason| crate::client::ClientError::Protocol {
                    addr: addr.to_string(),
                    reason: format!("inter-broker TLS settings: {reason}"),
                })?;
        crate::client::Connection::open_secured(addr, client, &security).await
    }
}

/// The security of a Kafka client's properties (a tool's `--command-config` file, as Kafka's
/// tools take it): `security.protocol`, the `ssl.*` keys, `sasl.mechanism` and the
/// `username`/`password` of `sasl.jaas.config`.
pub fn client_security(
    props: &BTreeMap<String, String>,
) -> Result<crate::client::Security, ConfigError> {
    let get = |key: &str| props.get(key).map(|v| v.trim());
    let protocol = match get("security.protocol") {
        None => SecurityProtocol::Plaintext,
        Some(v) => SecurityProtocol::from_name(v).ok_or_else(|| {
            invalid(
                "security.protocol",
                v,
                "expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
            )
        })?,
    };
    let tls = if protocol.uses_tls() {
        let settings = TlsSettings::from_lookup(|key| get(key).map(String::from))
            .map_err(|e| invalid("ssl", protocol.name(), e.to_string()))?;
        Some(
            settings
                .client_config()
                .map_err(|e| invalid("ssl", protocol.name(), e.to_string()))?,
        )
    } else {
        None
    };
    let sasl = if protocol.uses_sasl() {
        // Kafka clients default to GSSAPI, which odradek does not speak.
        let value = get("sasl.mechanism").unwrap_or("GSSAPI");
        let mechanism = Mechanism::from_name(value).ok_or_else(|| {
            invalid(
                "sasl.mechanism",
                value,
                format!("odradek's tools support {SUPPORTED_MECHANISMS}"),
            )
        })?;
        let jaas = get("sasl.jaas.config")
            .ok_or_else(|| invalid("sasl.jaas.config", "", "SASL needs a username and password"))
            .and_then(|t| {
                JaasConfig::parse(t).map_err(|e| invalid("sasl.jaas.config", "(hidden)", e))
            })?;
        let (Some(username), Some(password)) = (jaas.username(), jaas.password()) else {
            return Err(invalid(
                "sasl.jaas.config",
                "(hidden)",
                "needs username=\"...\" and password=\"...\"",
            ));
        };
        Some(SaslCredentials {
            mechanism,
            username: username.to_string(),
            password: password.to_string(),
            // Java's ScramLoginModule option for delegation tokens.
            token_auth: jaas
                .option("tokenauth")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    } else {
        None
    };
    Ok(crate::client::Security { tls, sasl })
}

/// Delegation tokens (KIP-48): `delegation.token.*`. Without a secret key the token APIs answer
/// DELEGATION_TOKEN_AUTH_DISABLED and no token logs in, as in Kafka.
#[derive(Clone, PartialEq)]
pub struct DelegationTokenConfig {
    /// `delegation.token.secret.key`, else the deprecated `delegation.token.master.key`: the
    /// key every broker signs token ids with (all brokers must share it). None or empty:
    /// tokens are disabled.
    pub secret_key: Option<String>,
    /// `delegation.token.max.lifetime.ms` (7 days): no renewal goes past this from creation.
    pub max_lifetime_ms: i64,
    /// `delegation.token.expiry.time.ms` (1 day): a token's life without renewal, and the
    /// default renewal period.
    pub expiry_time_ms: i64,
    /// `delegation.token.expiry.check.interval.ms` (1 hour): how often expired tokens are
    /// removed.
    pub expiry_check_interval_ms: u64,
}

impl DelegationTokenConfig {
    pub const DEFAULT_MAX_LIFETIME_MS: i64 = 7 * 24 * 3_600_000;
    pub const DEFAULT_EXPIRY_TIME_MS: i64 = 24 * 3_600_000;
    pub const DEFAULT_EXPIRY_CHECK_INTERVAL_MS: u64 = 3_600_000;

    /// Kafka's `tokenAuthEnabled`: a non-empty secret key.
    pub fn enabled(&self) -> bool {
        self.secret_key.as_ref().is_some_and(|k| !k.is_empty())
    }
}

impl Default for DelegationTokenConfig {
    fn default() -> Self {
        DelegationTokenConfig {
            secret_key: None,
            max_lifetime_ms: Self::DEFAULT_MAX_LIFETIME_MS,
            expiry_time_ms: Self::DEFAULT_EXPIRY_TIME_MS,
            expiry_check_interval_ms: Self::DEFAULT_EXPIRY_CHECK_INTERVAL_MS,
        }
    }
}

// Hand-written: the derived form would print the secret key, with which anyone can forge a
// token's password.
impl std::fmt::Debug for DelegationTokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegationTokenConfig")
            .field("enabled", &self.enabled())
            .field("max_lifetime_ms", &self.max_lifetime_ms)
            .field("expiry_time_ms", &self.expiry_time_ms)
            .field("expiry_check_interval_ms", &self.expiry_check_interval_ms)
            .finish()
    }
}
