//! `ssl.enabled.protocols` and `ssl.cipher.suites` as rustls protocol versions and cipher
//! suites of the ring provider.

use super::*;

impl TlsSettings {
    // -----------------------------------------------------------------------------------------
    // Protocols and cipher suites
    // -----------------------------------------------------------------------------------------

    /// `ssl.enabled.protocols` as rustls versions. rustls has no TLS 1.1 or older: those names
    /// are ignored with a warning (when `warn`), or refused if nothing else is left.
    pub(super) fn protocol_versions(
        &self,
        warn: bool,
    ) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
        if self.enabled_protocols.is_empty() {
            // Kafka leaves the engine's defaults: TLS 1.2 and 1.3.
            return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
        }
        let mut versions: Vec<&'static SupportedProtocolVersion> = Vec::new();
        let mut refused = Vec::new();
        for name in &self.enabled_protocols {
            let version = match name.to_ascii_lowercase().as_str() {
                "tlsv1.3" => &rustls::version::TLS13,
                "tlsv1.2" => &rustls::version::TLS12,
                "tlsv1.1" | "tlsv1" | "sslv3" | "sslv2hello" => {
                    refused.push(name.as_str());
                    continue;
                }
                _ => {
                    return Err(config_error(
                        SSL_ENABLED_PROTOCOLS,
                        format!("unknown protocol `{name}`: use TLSv1.2 and/or TLSv1.3"),
                    ));
                }
            };
            if !versions.iter().any(|v| v.version == version.version) {
                versions.push(version);
            }
        }
        if versions.is_empty() {
            return Err(config_error(
                SSL_ENABLED_PROTOCOLS,
                format!(
                    "{} not supported (rustls implements only TLSv1.2 and TLSv1.3)",
                    refused.join(", ")
                ),
            ));
        }
        if warn && !refused.is_empty() {
            tracing::warn!(
                "{SSL_ENABLED_PROTOCOLS}: ignoring {} (rustls implements only TLSv1.2 and TLSv1.3)",
                refused.join(", ")
            );
        }
        Ok(versions)
    }

    /// The ring provider, its cipher suites narrowed to `ssl.cipher.suites` (in that order,
    /// which is the order of preference) when it is set.
    pub(super) fn crypto_provider(&self, warn: bool) -> Result<CryptoProvider, TlsError> {
        // ring, not aws-lc-rs, to keep the C build light (the project's choice); rustls 0.23.48
        // deprecates it for lacking post-quantum key exchange, which Kafka's JVM clients (Java 17
        // and 21) do not offer anyway.
        #[allow(deprecated)]
        let mut provider = rustls::crypto::ring::default_provider();
        if self.cipher_suites.is_empty() {
            return Ok(provider);
        }
        let versions = self.protocol_versions(false)?;
        let mut suites: Vec<SupportedCipherSuite> = Vec::new();
        let mut unknown = Vec::new();
        for name in &self.cipher_suites {
            match suite_by_name(name) {
                Some(suite) if !suites.iter().any(|s| s.suite() == suite.suite()) => {
                    suites.push(suite)
                }
                Some(_) => {}
                None => unknown.push(name.as_str()),
            }
        }
        let usable = suites
            .iter()
            .any(|s| versions.iter().any(|v| v.version == s.version().version));
        if !usable {
            return Err(config_error(
                SSL_CIPHER_SUITES,
                format!(
                    "no suite rustls implements for {} is listed; it has {}",
                    versions_text(&versions),
                    SUITE_NAMES.join(", ")
                ),
            ));
        }
        if warn {
            if !unknown.is_empty() {
                tracing::warn!(
                    "{SSL_CIPHER_SUITES}: ignoring {} (not implemented by rustls)",
                    unknown.join(", ")
                );
            }
            for v in &versions {
                if !suites.iter().any(|s| s.version().version == v.version) {
                    tracing::warn!(
                        "{SSL_CIPHER_SUITES}: no suite for {:?} is listed, so it cannot be negotiated",
                        v.version
                    );
                }
            }
        }
        provider.cipher_suites = suites;
        Ok(provider)
    }
}

pub(super) fn versions_text(versions: &[&'static SupportedProtocolVersion]) -> String {
    versions
        .iter()
        .map(|v| format!("{:?}", v.version))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The names [`suite_by_name`] knows (every suite of rustls' ring provider), for messages.
pub(super) const SUITE_NAMES: &[&str] = &[
    "TLS_AES_256_GCM_SHA384",
    "TLS_AES_128_GCM_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// The ring provider's suites by their IANA (and Java) names.
pub(super) fn suite_by_name(name: &str) -> Option<SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite as cs;
    Some(match name.to_ascii_uppercase().as_str() {
        "TLS_AES_256_GCM_SHA384" => cs::TLS13_AES_256_GCM_SHA384,
        "TLS_AES_128_GCM_SHA256" => cs::TLS13_AES_128_GCM_SHA256,
        "TLS_CHACHA20_POLY1305_SHA256" => cs::TLS13_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        _ => return None,
    })
}
