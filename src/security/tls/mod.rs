//! Kafka's `ssl.*` settings, read into [`TlsSettings`] and turned into rustls configurations.
//!
//! The rules follow Kafka 3.9's `DefaultSslEngineFactory`, so a broker configuration written
//! for Kafka means the same here, or is refused at startup with a message that names the key:
//!
//! - Key material comes from a PKCS12 file (`ssl.keystore.password`; the key password falls
//!   back to it), a PEM file holding key and chain (`ssl.keystore.type=PEM`, no store
//!   password), or inline PEM (`ssl.keystore.key` + `ssl.keystore.certificate.chain`, type PEM,
//!   no location and no store password). A PEM key is PKCS#8; `ssl.key.password` decrypts an
//!   `ENCRYPTED PRIVATE KEY` (PBES2: PBKDF2 with AES or 3DES, through RustCrypto's `pkcs8`) and
//!   must be unset for a plain one, as in Kafka. Unlike Kafka, PKCS#1 (`RSA PRIVATE KEY`) and
//!   SEC1 (`EC PRIVATE KEY`) blocks are accepted too.
//! - Trusted certificates come from a PKCS12 file (password optional), a PEM file, or inline PEM
//!   (`ssl.truststore.certificates`).
//! - JKS is not supported (no well-kept Rust crate reads it). As in Java (whose
//!   `keystore.type.compat` lets the JKS and PKCS12 types read each other's files) the file is
//!   recognised by its content: a PKCS12 file works under the default type JKS, a JKS or JCEKS
//!   file is refused with the `keytool` command that converts it, a PEM file under a non-PEM
//!   type is refused with a hint to set the type.
//! - PKCS12 files are read with `p12-keystore`: it verifies the MAC, decrypts both the modern
//!   PBES2/AES files (Java 17+, OpenSSL 3) and the legacy RC2/3DES ones (older Java,
//!   `openssl -legacy`), exposes Java's trusted-certificate attribute, and can write PKCS12,
//!   which the tests use. RustCrypto's `pkcs12` only models the ASN.1 (p12-keystore builds on
//!   it). Limitation: one password decrypts the whole file, so a PKCS12 key protected by a
//!   different password than the store is refused (keytool and openssl never write such files).
//! - rustls 0.23 with the ring provider, installed per configuration (never the process-wide
//!   default). TLSv1.2 and TLSv1.3 only; older protocol names are ignored with a warning, or
//!   refused if nothing else is enabled. Cipher suites by their IANA names (as Java names them);
//!   names rustls lacks are ignored with a warning. No ALPN, as Kafka.
//!
//! Which settings apply to which listener (the `listener.name.<l>.` prefix, and Kafka's rule
//! that `ssl.client.auth` on a SASL_SSL listener counts only when listener-prefixed) is the
//! caller's business: [`TlsSettings::from_lookup`] reads plain key names through the lookup it
//! is given.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
    ServerName, UnixTime,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme,
    SupportedCipherSuite, SupportedProtocolVersion,
};

use super::principal::PrincipalMapper;
use verifier::ChainOnlyVerifier;

pub const SSL_PROTOCOL: &str = "ssl.protocol";
pub const SSL_ENABLED_PROTOCOLS: &str = "ssl.enabled.protocols";
pub const SSL_CIPHER_SUITES: &str = "ssl.cipher.suites";
pub const SSL_KEYSTORE_TYPE: &str = "ssl.keystore.type";
pub const SSL_KEYSTORE_LOCATION: &str = "ssl.keystore.location";
pub const SSL_KEYSTORE_PASSWORD: &str = "ssl.keystore.password";
pub const SSL_KEY_PASSWORD: &str = "ssl.key.password";
pub const SSL_KEYSTORE_KEY: &str = "ssl.keystore.key";
pub const SSL_KEYSTORE_CERTIFICATE_CHAIN: &str = "ssl.keystore.certificate.chain";
pub const SSL_TRUSTSTORE_TYPE: &str = "ssl.truststore.type";
pub const SSL_TRUSTSTORE_LOCATION: &str = "ssl.truststore.location";
pub const SSL_TRUSTSTORE_PASSWORD: &str = "ssl.truststore.password";
pub const SSL_TRUSTSTORE_CERTIFICATES: &str = "ssl.truststore.certificates";
pub const SSL_CLIENT_AUTH: &str = "ssl.client.auth";
pub const SSL_ENDPOINT_IDENTIFICATION_ALGORITHM: &str = "ssl.endpoint.identification.algorithm";
pub const SSL_PRINCIPAL_MAPPING_RULES: &str = "ssl.principal.mapping.rules";

/// Every key [`TlsSettings::from_lookup`] reads.
pub const KEYS: &[&str] = &[
    SSL_PROTOCOL,
    SSL_ENABLED_PROTOCOLS,
    SSL_CIPHER_SUITES,
    SSL_KEYSTORE_TYPE,
    SSL_KEYSTORE_LOCATION,
    SSL_KEYSTORE_PASSWORD,
    SSL_KEY_PASSWORD,
    SSL_KEYSTORE_KEY,
    SSL_KEYSTORE_CERTIFICATE_CHAIN,
    SSL_TRUSTSTORE_TYPE,
    SSL_TRUSTSTORE_LOCATION,
    SSL_TRUSTSTORE_PASSWORD,
    SSL_TRUSTSTORE_CERTIFICATES,
    SSL_CLIENT_AUTH,
    SSL_ENDPOINT_IDENTIFICATION_ALGORITHM,
    SSL_PRINCIPAL_MAPPING_RULES,
];

/// Why TLS settings cannot be used. Every message names the Kafka key (and the file) at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A value, or a combination of values, that Kafka refuses too or odradek cannot honour.
    #[error("{key}: {message}")]
    Config { key: &'static str, message: String },
    /// A JKS or JCEKS file: no Rust crate worth depending on reads them.
    #[error(
        "{type_key}=JKS is not supported: {location_key} {path} is a {format} file; convert it with \
         `keytool -importkeystore -srckeystore {path} -srcstoretype {format} -destkeystore {path}.p12 \
         -deststoretype PKCS12` and set {type_key}=PKCS12 and {location_key}={path}.p12",
        path = path.display()
    )]
    Jks {
        type_key: &'static str,
        location_key: &'static str,
        path: PathBuf,
        /// `JKS` or `JCEKS`.
        format: &'static str,
    },
    /// A file that cannot be read.
    #[error("{key}: cannot read {path}: {source}", path = path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file or an inline PEM value whose content is unusable.
    #[error("{key}: {origin}: {message}")]
    Content {
        key: &'static str,
        /// `file <path>` or `inline PEM`.
        origin: String,
        message: String,
    },
    /// rustls refused the assembled configuration.
    #[error("{context}: {source}")]
    Rustls {
        context: String,
        #[source]
        source: rustls::Error,
    },
}

fn config_error(key: &'static str, message: impl Into<String>) -> TlsError {
    TlsError::Config {
        key,
        message: message.into(),
    }
}

/// The format of a key store or trust store (`ssl.keystore.type`, `ssl.truststore.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// Kafka's default. Only a PKCS12 file can be read under it (see the module docs).
    Jks,
    Pkcs12,
    Pem,
}

impl StoreType {
    fn parse(key: &'static str, value: &str) -> Result<StoreType, TlsError> {
        // Java's KeyStore.getInstance ignores case; Kafka compares "PEM" exactly, but a
        // lower-case `pem` cannot mean anything else.
        match value.to_ascii_uppercase().as_str() {
            "JKS" => Ok(StoreType::Jks),
            "PKCS12" => Ok(StoreType::Pkcs12),
            "PEM" => Ok(StoreType::Pem),
            "JCEKS" => Err(config_error(
                key,
                "JCEKS is not supported: convert the store with `keytool -importkeystore \
                 -srcstoretype JCEKS -deststoretype PKCS12 ...` and use type PKCS12",
            )),
            _ => Err(config_error(
                key,
                format!("unsupported store type `{value}`: use PKCS12 or PEM"),
            )),
        }
    }
}

impl fmt::Display for StoreType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreType::Jks => "JKS",
            StoreType::Pkcs12 => "PKCS12",
            StoreType::Pem => "PEM",
        })
    }
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No certificate is asked for.
    #[default]
    None,
    /// A certificate is asked for; a client may send none (it is then `User:ANONYMOUS`), but
    /// one it sends must verify.
    Requested,
    /// A verified certificate is required.
    Required,
}

/// The TLS settings of one listener (server side) or of the broker's own connections to other
/// brokers (client side), as plain data. Build it with [`TlsSettings::from_lookup`]; the
/// configurations come from [`server_config`](Self::server_config) and
/// [`client_config`](Self::client_config).
#[derive(Clone, PartialEq)]
pub struct TlsSettings {
    pub keystore_type: StoreType,
    pub keystore_location: Option<PathBuf>,
    pub keystore_password: Option<String>,
    pub key_password: Option<String>,
    /// Inline PEM: the certificate chain, end-entity first.
    pub keystore_certificate_chain: Option<String>,
    /// Inline PEM: the PKCS#8 private key.
    pub keystore_key: Option<String>,
    pub truststore_type: StoreType,
    pub truststore_location: Option<PathBuf>,
    pub truststore_password: Option<String>,
    /// Inline PEM: the trusted certificates.
    pub truststore_certificates: Option<String>,
    pub client_auth: ClientAuth,
    /// `ssl.enabled.protocols`, as written (`TLSv1.2,TLSv1.3` by default; empty means both).
    pub enabled_protocols: Vec<String>,
    /// `ssl.cipher.suites`, IANA names; empty means rustls' defaults.
    pub cipher_suites: Vec<String>,
    /// `https` (the default) checks the server's name on outgoing connections; `None` (the key
    /// set to the empty string) does not.
    pub endpoint_identification_algorithm: Option<String>,
    pub principal_mapping_rules: String,
    /// `ssl.protocol` (default `TLSv1.3`). Kafka passes it to `SSLContext.getInstance`, where,
    /// with `ssl.enabled.protocols` always set, it chooses nothing; kept for completeness.
    pub protocol: String,
}

impl Default for TlsSettings {
    /// Kafka's defaults: nothing configured.
    fn default() -> Self {
        TlsSettings {
            keystore_type: StoreType::Jks,
            keystore_location: None,
            keystore_password: None,
            key_password: None,
            keystore_certificate_chain: None,
            keystore_key: None,
            truststore_type: StoreType::Jks,
            truststore_location: None,
            truststore_password: None,
            truststore_certificates: None,
            client_auth: ClientAuth::None,
            enabled_protocols: vec!["TLSv1.2".into(), "TLSv1.3".into()],
            cipher_suites: Vec::new(),
            endpoint_identification_algorithm: Some("https".into()),
            principal_mapping_rules: "DEFAULT".into(),
            protocol: "TLSv1.3".into(),
        }
    }
}

/// Passwords and the inline private key are not printed.
impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "[hidden]");
        f.debug_struct("TlsSettings")
            .field("keystore_type", &self.keystore_type)
            .field("keystore_location", &self.keystore_location)
            .field("keystore_password", &hidden(&self.keystore_password))
            .field("key_password", &hidden(&self.key_password))
            .field(
                "keystore_certificate_chain",
                &self.keystore_certificate_chain.as_ref().map(|_| "[PEM]"),
            )
            .field("keystore_key", &hidden(&self.keystore_key))
            .field("truststore_type", &self.truststore_type)
            .field("truststore_location", &self.truststore_location)
            .field("truststore_password", &hidden(&self.truststore_password))
            .field(
                "truststore_certificates",
                &self.truststore_certificates.as_ref().map(|_| "[PEM]"),
            )
            .field("client_auth", &self.client_auth)
            .field("enabled_protocols", &self.enabled_protocols)
            .field("cipher_suites", &self.cipher_suites)
            .field(
                "endpoint_identification_algorithm",
                &self.endpoint_identification_algorithm,
            )
            .field("principal_mapping_rules", &self.principal_mapping_rules)
            .field("protocol", &self.protocol)
            .finish()
    }
}

/// Kafka's LIST parsing: comma-separated, whitespace around items dropped. Empty items are
/// skipped here (Java would fail on them later).
fn parse_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl TlsSettings {
    /// Reads the `ssl.*` keys through `get`, which returns a key's value with the listener
    /// prefix already applied (or `None` when the key is not set), and checks them as Kafka
    /// does. Values are trimmed, as Kafka's config parser trims them. No file is read here:
    /// [`server_config`](Self::server_config) and [`client_config`](Self::client_config) load
    /// and check the stores.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<TlsSettings, TlsError> {
        let get = |key: &str| get(key).map(|v| v.trim().to_string());
        let mut s = TlsSettings::default();
        if let Some(v) = get(SSL_KEYSTORE_TYPE) {
            s.keystore_type = StoreType::parse(SSL_KEYSTORE_TYPE, &v)?;
        }
        if let Some(v) = get(SSL_TRUSTSTORE_TYPE) {
            s.truststore_type = StoreType::parse(SSL_TRUSTSTORE_TYPE, &v)?;
        }
        s.keystore_location = get(SSL_KEYSTORE_LOCATION).map(PathBuf::from);
        s.keystore_password = get(SSL_KEYSTORE_PASSWORD);
        s.key_password = get(SSL_KEY_PASSWORD);
        s.keystore_certificate_chain = get(SSL_KEYSTORE_CERTIFICATE_CHAIN);
        s.keystore_key = get(SSL_KEYSTORE_KEY);
        s.truststore_location = get(SSL_TRUSTSTORE_LOCATION).map(PathBuf::from);
        s.truststore_password = get(SSL_TRUSTSTORE_PASSWORD);
        s.truststore_certificates = get(SSL_TRUSTSTORE_CERTIFICATES);
        if let Some(v) = get(SSL_CLIENT_AUTH) {
            s.client_auth = match v.to_ascii_lowercase().as_str() {
                "none" => ClientAuth::None,
                "requested" => ClientAuth::Requested,
                "required" => ClientAuth::Required,
                // Kafka's config validator refuses other values too.
                _ => {
                    return Err(config_error(
                        SSL_CLIENT_AUTH,
                        format!("`{v}` is not one of none, requested, required"),
                    ));
                }
            };
        }
        if let Some(v) = get(SSL_ENABLED_PROTOCOLS) {
            s.enabled_protocols = parse_list(&v);
        }
        if let Some(v) = get(SSL_CIPHER_SUITES) {
            s.cipher_suites = parse_list(&v);
        }
        if let Some(v) = get(SSL_ENDPOINT_IDENTIFICATION_ALGORITHM) {
            s.endpoint_identification_algorithm = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = get(SSL_PRINCIPAL_MAPPING_RULES) {
            s.principal_mapping_rules = v;
        }
        if let Some(v) = get(SSL_PROTOCOL) {
            s.protocol = v;
        }
        s.check()?;
        Ok(s)
    }

    /// Every check that needs no file: Kafka's combination rules, the protocol and cipher
    /// names, the endpoint identification algorithm and the mapping rules.
    pub fn check(&self) -> Result<(), TlsError> {
        self.check_keystore()?;
        self.check_truststore()?;
        self.protocol_versions(false)?;
        self.crypto_provider(false)?;
        if let Some(alg) = &self.endpoint_identification_algorithm
            && !alg.eq_ignore_ascii_case("https")
            && !alg.eq_ignore_ascii_case("ldaps")
        {
            // Java fails every handshake with an unknown algorithm; fail at startup instead.
            return Err(config_error(
                SSL_ENDPOINT_IDENTIFICATION_ALGORITHM,
                format!("unknown algorithm `{alg}`: use https, or the empty string for none"),
            ));
        }
        self.principal_mapper()?;
        Ok(())
    }

    /// Kafka's `createKeystore` rules, in its order.
    fn check_keystore(&self) -> Result<(), TlsError> {
        let pem = self.keystore_type == StoreType::Pem;
        if self.keystore_key.is_some() {
            if !pem {
                return Err(config_error(
                    SSL_KEYSTORE_KEY,
                    format!(
                        "an inline private key needs {SSL_KEYSTORE_TYPE}=PEM, but the type is {}",
                        self.keystore_type
                    ),
                ));
            }
            if self.keystore_certificate_chain.is_none() {
                return Err(config_error(
                    SSL_KEYSTORE_KEY,
                    format!("the private key is set but {SSL_KEYSTORE_CERTIFICATE_CHAIN} is not"),
                ));
            }
            if self.keystore_location.is_some() {
                return Err(config_error(
                    SSL_KEYSTORE_KEY,
                    format!("set either {SSL_KEYSTORE_LOCATION} or the inline PEM key, not both"),
                ));
            }
            if self.keystore_password.is_some() {
                return Err(config_error(
                    SSL_KEYSTORE_PASSWORD,
                    format!(
                        "cannot be used with an inline PEM key: only {SSL_KEY_PASSWORD} (which \
                         decrypts an encrypted key) may be set"
                    ),
                ));
            }
        } else if self.keystore_certificate_chain.is_some() {
            return Err(config_error(
                SSL_KEYSTORE_CERTIFICATE_CHAIN,
                format!("the certificate chain is set but {SSL_KEYSTORE_KEY} is not"),
            ));
        } else if pem && self.keystore_location.is_some() {
            if self.keystore_password.is_some() {
                return Err(config_error(
                    SSL_KEYSTORE_PASSWORD,
                    format!(
                        "cannot be used with {SSL_KEYSTORE_TYPE}=PEM: only {SSL_KEY_PASSWORD} \
                         (which decrypts an encrypted key) may be set"
                    ),
                ));
            }
        } else if self.keystore_location.is_none() && self.keystore_password.is_some() {
            return Err(config_error(
                SSL_KEYSTORE_PASSWORD,
                format!("the key store password is set but {SSL_KEYSTORE_LOCATION} is not"),
            ));
        } else if self.keystore_location.is_some() && self.keystore_password.is_none() {
            return Err(config_error(
                SSL_KEYSTORE_PASSWORD,
                format!("{SSL_KEYSTORE_LOCATION} is set but the key store password is not"),
            ));
        }
        Ok(())
    }

    /// Kafka's `createTruststore` rules, in its order.
    fn check_truststore(&self) -> Result<(), TlsError> {
        let pem = self.truststore_type == StoreType::Pem;
        if self.truststore_certificates.is_some() {
            if !pem {
                return Err(config_error(
                    SSL_TRUSTSTORE_CERTIFICATES,
                    format!(
                        "inline trusted certificates need {SSL_TRUSTSTORE_TYPE}=PEM, but the type is {}",
                        self.truststore_type
                    ),
                ));
            }
            if self.truststore_location.is_some() {
                return Err(config_error(
                    SSL_TRUSTSTORE_CERTIFICATES,
                    format!(
                        "set either {SSL_TRUSTSTORE_LOCATION} or the inline certificates, not both"
                    ),
                ));
            }
            if self.truststore_password.is_some() {
                return Err(config_error(
                    SSL_TRUSTSTORE_PASSWORD,
                    "cannot be used with PEM trusted certificates",
                ));
            }
        } else if pem && self.truststore_location.is_some() {
            if self.truststore_password.is_some() {
                return Err(config_error(
                    SSL_TRUSTSTORE_PASSWORD,
                    format!("cannot be used with {SSL_TRUSTSTORE_TYPE}=PEM"),
                ));
            }
        } else if self.truststore_location.is_none() && self.truststore_password.is_some() {
            return Err(config_error(
                SSL_TRUSTSTORE_PASSWORD,
                format!("the trust store password is set but {SSL_TRUSTSTORE_LOCATION} is not"),
            ));
        }
        Ok(())
    }

    /// The parsed `ssl.principal.mapping.rules`.
    pub fn principal_mapper(&self) -> Result<PrincipalMapper, TlsError> {
        PrincipalMapper::parse(&self.principal_mapping_rules)
            .map_err(|e| config_error(SSL_PRINCIPAL_MAPPING_RULES, e))
    }

    /// The rustls configuration of an SSL or SASL_SSL listener: the key store's key and chain,
    /// client certificates as `ssl.client.auth` says, verified against the trust store.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        self.check()?;
        let provider = Arc::new(self.crypto_provider(true)?);
        let versions = self.protocol_versions(true)?;
        let key = self.load_keystore()?.ok_or_else(|| {
            config_error(
                SSL_KEYSTORE_LOCATION,
                format!(
                    "a TLS listener needs a key and certificate: set {SSL_KEYSTORE_LOCATION} \
                     (or {SSL_KEYSTORE_KEY} and {SSL_KEYSTORE_CERTIFICATE_CHAIN} with type PEM)"
                ),
            )
        })?;
        // Loaded even when unused, as Kafka does, so that a broken trust store fails startup
        // rather than the first time client authentication is switched on.
        let roots = self.load_truststore()?;
        let verifier = match self.client_auth {
            ClientAuth::None => WebPkiClientVerifier::no_client_auth(),
            auth => {
                let roots = roots.ok_or_else(|| {
                    config_error(
                        SSL_CLIENT_AUTH,
                        format!(
                            "client certificates cannot be verified without a trust store: set \
                             {SSL_TRUSTSTORE_LOCATION} or {SSL_TRUSTSTORE_CERTIFICATES}"
                        ),
                    )
                })?;
                let builder =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let builder = if auth == ClientAuth::Requested {
                    builder.allow_unauthenticated()
                } else {
                    builder
                };
                builder.build().map_err(|e| {
                    config_error(
                        SSL_TRUSTSTORE_LOCATION,
                        format!("cannot verify client certificates with this trust store: {e}"),
                    )
                })?
            }
        };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|source| TlsError::Rustls {
                context: format!("{SSL_ENABLED_PROTOCOLS} / {SSL_CIPHER_SUITES}"),
                source,
            })?
            .with_client_cert_verifier(verifier)
            .with_single_cert(key.chain, key.key)
            .map_err(|source| TlsError::Rustls {
                context: format!("the key and certificate chain of {}", key.origin),
                source,
            })?;
        // Kafka negotiates no application protocol.
        config.alpn_protocols = Vec::new();
        Ok(Arc::new(config))
    }

    /// The rustls configuration of the broker's own connections to other brokers: the trust
    /// store's certificates as roots, the key store's certificate (if any) for client
    /// authentication, and the server's name checked unless
    /// `ssl.endpoint.identification.algorithm` is empty.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        self.check()?;
        let provider = Arc::new(self.crypto_provider(true)?);
        let versions = self.protocol_versions(true)?;
        // Java falls back to the JVM's bundled public CAs; there is no such bundle here, and
        // brokers trust a private CA in practice, so say what is missing.
        let roots = self.load_truststore()?.ok_or_else(|| {
            config_error(
                SSL_TRUSTSTORE_LOCATION,
                format!(
                    "outgoing TLS connections need trusted certificates: set \
                     {SSL_TRUSTSTORE_LOCATION} or {SSL_TRUSTSTORE_CERTIFICATES}"
                ),
            )
        })?;
        let roots = Arc::new(roots);
        let key = self.load_keystore()?;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|source| TlsError::Rustls {
                context: format!("{SSL_ENABLED_PROTOCOLS} / {SSL_CIPHER_SUITES}"),
                source,
            })?;
        let builder = if self.endpoint_identification_algorithm.is_some() {
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| {
                    config_error(
                        SSL_TRUSTSTORE_LOCATION,
                        format!("cannot verify server certificates with this trust store: {e}"),
                    )
                })?;
            builder.with_webpki_verifier(verifier)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier {
                    roots,
                    algorithms: provider.signature_verification_algorithms,
                }))
        };
        let mut config = match key {
            Some(key) => builder
                .with_client_auth_cert(key.chain, key.key)
                .map_err(|source| TlsError::Rustls {
                    context: format!("the key and certificate chain of {}", key.origin),
                    source,
                })?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = Vec::new();
        Ok(Arc::new(config))
    }
}

mod stores;
mod suites;
mod verifier;

#[cfg(test)]
mod tests;
