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

    // -----------------------------------------------------------------------------------------
    // Protocols and cipher suites
    // -----------------------------------------------------------------------------------------

    /// `ssl.enabled.protocols` as rustls versions. rustls has no TLS 1.1 or older: those names
    /// are ignored with a warning (when `warn`), or refused if nothing else is left.
    fn protocol_versions(
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
    fn crypto_provider(&self, warn: bool) -> Result<CryptoProvider, TlsError> {
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

    // -----------------------------------------------------------------------------------------
    // Stores
    // -----------------------------------------------------------------------------------------

    /// The key and chain, or `None` when no key store is configured.
    fn load_keystore(&self) -> Result<Option<KeyMaterial>, TlsError> {
        if let Some(key_pem) = &self.keystore_key {
            let chain_pem = self.keystore_certificate_chain.as_deref().unwrap_or("");
            return pem_key_material(
                PemOrigin::Inline,
                chain_pem.as_bytes(),
                key_pem.as_bytes(),
                self.key_password.as_deref(),
            )
            .map(Some);
        }
        let Some(path) = &self.keystore_location else {
            return Ok(None);
        };
        let data = read_file(SSL_KEYSTORE_LOCATION, path)?;
        if self.keystore_type == StoreType::Pem {
            return pem_key_material(
                PemOrigin::File(path),
                &data,
                &data,
                self.key_password.as_deref(),
            )
            .map(Some);
        }
        self.sniff_binary_store(&data, SSL_KEYSTORE_TYPE, SSL_KEYSTORE_LOCATION, path)?;
        // Checked: a file key store has a password.
        let store_password = self.keystore_password.as_deref().unwrap_or("");
        pkcs12_key_material(path, &data, store_password, self.key_password.as_deref()).map(Some)
    }

    /// The trusted certificates as a root store, or `None` when no trust store is configured.
    fn load_truststore(&self) -> Result<Option<RootCertStore>, TlsError> {
        let (certs, key, origin) = if let Some(pem) = &self.truststore_certificates {
            let certs =
                pem_certificates(SSL_TRUSTSTORE_CERTIFICATES, "inline PEM", pem.as_bytes())?;
            (certs, SSL_TRUSTSTORE_CERTIFICATES, "inline PEM".to_string())
        } else if let Some(path) = &self.truststore_location {
            let data = read_file(SSL_TRUSTSTORE_LOCATION, path)?;
            let origin = format!("file {}", path.display());
            let certs = if self.truststore_type == StoreType::Pem {
                pem_certificates(SSL_TRUSTSTORE_LOCATION, &origin, &data)?
            } else {
                self.sniff_binary_store(&data, SSL_TRUSTSTORE_TYPE, SSL_TRUSTSTORE_LOCATION, path)?;
                pkcs12_trusted(path, &data, self.truststore_password.as_deref())?
            };
            (certs, SSL_TRUSTSTORE_LOCATION, origin)
        } else {
            return Ok(None);
        };
        let mut roots = RootCertStore::empty();
        for (i, cert) in certs.into_iter().enumerate() {
            roots.add(cert).map_err(|e| TlsError::Content {
                key,
                origin: origin.clone(),
                message: format!("certificate {} cannot be a trust anchor: {e}", i + 1),
            })?;
        }
        Ok(Some(roots))
    }

    /// For a JKS- or PKCS12-typed store: refuses JKS/JCEKS files (with the conversion command)
    /// and PEM files (with the type to set); anything else is left to the PKCS12 reader.
    fn sniff_binary_store(
        &self,
        data: &[u8],
        type_key: &'static str,
        location_key: &'static str,
        path: &Path,
    ) -> Result<(), TlsError> {
        let format = match data.get(..4) {
            Some([0xfe, 0xed, 0xfe, 0xed]) => Some("JKS"),
            Some([0xce, 0xce, 0xce, 0xce]) => Some("JCEKS"),
            _ => None,
        };
        if let Some(format) = format {
            return Err(TlsError::Jks {
                type_key,
                location_key,
                path: path.to_path_buf(),
                format,
            });
        }
        if looks_like_pem(data) {
            let current = if type_key == SSL_KEYSTORE_TYPE {
                self.keystore_type
            } else {
                self.truststore_type
            };
            return Err(TlsError::Content {
                key: location_key,
                origin: format!("file {}", path.display()),
                message: format!(
                    "this is a PEM file but {type_key} is {current}: set {type_key}=PEM"
                ),
            });
        }
        Ok(())
    }
}

fn versions_text(versions: &[&'static SupportedProtocolVersion]) -> String {
    versions
        .iter()
        .map(|v| format!("{:?}", v.version))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The names [`suite_by_name`] knows (every suite of rustls' ring provider), for messages.
const SUITE_NAMES: &[&str] = &[
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
fn suite_by_name(name: &str) -> Option<SupportedCipherSuite> {
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

// ---------------------------------------------------------------------------------------------
// Reading key material
// ---------------------------------------------------------------------------------------------

/// A private key with its certificate chain (end-entity first), and where they came from.
struct KeyMaterial {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    origin: String,
}

fn read_file(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })
}

fn looks_like_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

#[derive(Clone, Copy)]
enum PemOrigin<'a> {
    /// `ssl.keystore.key` + `ssl.keystore.certificate.chain`.
    Inline,
    /// `ssl.keystore.location` with type PEM.
    File(&'a Path),
}

impl PemOrigin<'_> {
    fn text(self) -> String {
        match self {
            PemOrigin::Inline => "inline PEM".into(),
            PemOrigin::File(path) => format!("file {}", path.display()),
        }
    }
    fn chain_key(self) -> &'static str {
        match self {
            PemOrigin::Inline => SSL_KEYSTORE_CERTIFICATE_CHAIN,
            PemOrigin::File(_) => SSL_KEYSTORE_LOCATION,
        }
    }
    fn key_key(self) -> &'static str {
        match self {
            PemOrigin::Inline => SSL_KEYSTORE_KEY,
            PemOrigin::File(_) => SSL_KEYSTORE_LOCATION,
        }
    }
}

/// Every `CERTIFICATE` block of a PEM text (at least one).
fn pem_certificates(
    key: &'static str,
    origin: &str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let content = |message: String| TlsError::Content {
        key,
        origin: origin.to_string(),
        message,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(format!("malformed PEM: {e}")))?;
    if certs.is_empty() {
        let hint = if pem.first() == Some(&0x30) {
            " (it looks like DER, perhaps PKCS12: check the store type)"
        } else {
            ""
        };
        return Err(content(format!("no CERTIFICATE block found{hint}")));
    }
    Ok(certs)
}

/// Kafka's PEM key store: the chain from `chain_pem`, exactly one private key from `key_pem`
/// (the same text for a PEM file), encrypted if and only if `ssl.key.password` is set.
fn pem_key_material(
    origin: PemOrigin<'_>,
    chain_pem: &[u8],
    key_pem: &[u8],
    key_password: Option<&str>,
) -> Result<KeyMaterial, TlsError> {
    let chain = pem_certificates(origin.chain_key(), &origin.text(), chain_pem)?;
    let content = |message: String| TlsError::Content {
        key: origin.key_key(),
        origin: origin.text(),
        message,
    };
    let mut plain: Vec<PrivateKeyDer<'static>> = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(key_pem) {
        let (kind, der) = section.map_err(|e| content(format!("malformed PEM: {e}")))?;
        match kind {
            SectionKind::PrivateKey => plain.push(PrivatePkcs8KeyDer::from(der).into()),
            SectionKind::RsaPrivateKey => plain.push(PrivatePkcs1KeyDer::from(der).into()),
            SectionKind::EcPrivateKey => plain.push(PrivateSec1KeyDer::from(der).into()),
            _ => {}
        }
    }
    let mut encrypted = encrypted_key_blocks(key_pem).map_err(content)?;
    let found = plain.len() + encrypted.len();
    if found == 0 {
        return Err(content(
            "no private key found (a PRIVATE KEY or ENCRYPTED PRIVATE KEY block)".into(),
        ));
    }
    if found > 1 {
        return Err(content(format!("expected one private key, found {found}")));
    }
    // Exactly one key was found: plain or encrypted.
    let key = match key_password {
        None => match plain.pop() {
            Some(key) => key,
            None => {
                return Err(config_error(
                    SSL_KEY_PASSWORD,
                    format!(
                        "the private key in the {} is encrypted but no key password is set",
                        origin.text()
                    ),
                ));
            }
        },
        Some(password) => match encrypted.pop() {
            Some(der) => decrypt_pkcs8(&der, password).map_err(content)?,
            None => {
                // Kafka reads the key as encrypted whenever a key password is set, and fails.
                return Err(config_error(
                    SSL_KEY_PASSWORD,
                    format!(
                        "is set but the private key in the {} is not encrypted: remove \
                         {SSL_KEY_PASSWORD} or store the key as an ENCRYPTED PRIVATE KEY",
                        origin.text()
                    ),
                ));
            }
        },
    };
    Ok(KeyMaterial {
        chain,
        key,
        origin: format!("{} ({})", origin.key_key(), origin.text()),
    })
}

/// The DER of each `ENCRYPTED PRIVATE KEY` block (rustls' PEM reader skips that label).
/// Header lines (`Name: value`) inside a block are skipped, as Kafka's parser does.
fn encrypted_key_blocks(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine;
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let text = String::from_utf8_lossy(pem);
    let mut blocks = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match &mut body {
            None if line == BEGIN => body = Some(String::new()),
            None => {}
            Some(b) if line == END => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b.as_bytes())
                    .map_err(|e| format!("malformed ENCRYPTED PRIVATE KEY block: {e}"))?;
                blocks.push(der);
                body = None;
            }
            Some(_) if line.contains(':') => {}
            Some(b) => b.push_str(line),
        }
    }
    if body.is_some() {
        return Err(format!(
            "unterminated ENCRYPTED PRIVATE KEY block (no `{END}`)"
        ));
    }
    Ok(blocks)
}

/// Decrypts a PKCS#8 `EncryptedPrivateKeyInfo` with `ssl.key.password`.
fn decrypt_pkcs8(der: &[u8], password: &str) -> Result<PrivateKeyDer<'static>, String> {
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der)
        .map_err(|e| format!("malformed ENCRYPTED PRIVATE KEY: {e}"))?;
    let doc = info.decrypt(password).map_err(|e| {
        format!(
            "cannot decrypt the private key with {SSL_KEY_PASSWORD} ({e}): a wrong password, or a \
             scheme other than PBES2 with AES or 3DES (re-encrypt with `openssl pkcs8 -topk8 -v2 aes-256-cbc`)"
        )
    })?;
    Ok(PrivatePkcs8KeyDer::from(doc.as_bytes().to_vec()).into())
}

fn pkcs12_error(e: p12_keystore::error::Error) -> String {
    match e {
        p12_keystore::error::Error::MacError(_) => {
            "wrong password (the file's integrity check failed)".into()
        }
        e => format!("not a readable PKCS12 file: {e}"),
    }
}

/// The first key entry of a PKCS12 key store, with its chain.
fn pkcs12_key_material(
    path: &Path,
    data: &[u8],
    store_password: &str,
    key_password: Option<&str>,
) -> Result<KeyMaterial, TlsError> {
    let origin = format!("file {}", path.display());
    let content = |message: String| TlsError::Content {
        key: SSL_KEYSTORE_LOCATION,
        origin: origin.clone(),
        message,
    };
    let store = p12_keystore::KeyStore::from_pkcs12(
        data,
        store_password,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .map_err(|e| {
        let mut message = pkcs12_error(e);
        if key_password.is_some_and(|k| k != store_password) {
            message.push_str(&format!(
                "; note that {SSL_KEY_PASSWORD} differs from {SSL_KEYSTORE_PASSWORD}, and a PKCS12 \
                 key store is read with the store password only"
            ));
        }
        content(message)
    })?;
    let chains: Vec<_> = store
        .entries()
        .filter_map(|(alias, entry)| match entry {
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => Some((alias, chain)),
            _ => None,
        })
        .collect();
    let Some((alias, chain)) = chains.first() else {
        return Err(content(
            "no private key with a matching certificate in the key store".into(),
        ));
    };
    if chains.len() > 1 {
        tracing::warn!(
            "{SSL_KEYSTORE_LOCATION} {}: {} key entries, using `{alias}`",
            path.display(),
            chains.len()
        );
    }
    if chain.certs().is_empty() {
        return Err(content(format!("key entry `{alias}` has no certificate")));
    }
    Ok(KeyMaterial {
        chain: chain
            .certs()
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect(),
        key: PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()).into(),
        origin: format!("{SSL_KEYSTORE_LOCATION} ({origin})"),
    })
}

/// The trust anchors of a PKCS12 trust store, as Java's trust manager takes them: certificates
/// marked trusted (Java's trusted-key-usage attribute, which keytool writes) and the
/// end-entity certificate of each key entry. A file with neither (what `openssl pkcs12
/// -export -nokeys` writes without `-jdktrust`, which Java cannot use at all) contributes all
/// its certificates.
fn pkcs12_trusted(
    path: &Path,
    data: &[u8],
    password: Option<&str>,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let content = |message: String| TlsError::Content {
        key: SSL_TRUSTSTORE_LOCATION,
        origin: format!("file {}", path.display()),
        message,
    };
    let archive =
        p12_keystore::Pkcs12Archive::from_pkcs12(data, password.unwrap_or("")).map_err(|e| {
            let mut message = pkcs12_error(e);
            if password.is_none() {
                message.push_str(&format!(" (is {SSL_TRUSTSTORE_PASSWORD} missing?)"));
            }
            content(message)
        })?;
    let key_ids: Vec<&[u8]> = archive
        .keys
        .iter()
        .filter_map(|k| k.local_key_id.as_ref().map(|id| id.as_ref()))
        .collect();
    let mut trusted: Vec<CertificateDer<'static>> = archive
        .certs
        .iter()
        .filter(|c| {
            c.trusted
                || c.local_key_id
                    .as_deref()
                    .is_some_and(|id| key_ids.contains(&id))
        })
        .map(|c| CertificateDer::from(c.cert.as_der().to_vec()))
        .collect();
    if trusted.is_empty() && archive.keys.is_empty() {
        trusted = archive
            .certs
            .iter()
            .map(|c| CertificateDer::from(c.cert.as_der().to_vec()))
            .collect();
    }
    if trusted.is_empty() {
        return Err(content("no trusted certificate in the trust store".into()));
    }
    Ok(trusted)
}

// ---------------------------------------------------------------------------------------------
// Server certificate verification without the name check
// ---------------------------------------------------------------------------------------------

/// With `ssl.endpoint.identification.algorithm` empty Kafka checks that the server's chain
/// leads to a trusted certificate but not that it was issued for the host connected to.
/// rustls' own verifier always checks the name, hence this verifier (rustls' `danger` API):
/// the chain is verified exactly as rustls does, through its public webpki helper, and
/// handshake signatures through the provider's algorithms; only the name check is left out,
/// because the operator asked for that. No revocation checking, as rustls' default verifier
/// without CRLs.
#[derive(Debug)]
struct ChainOnlyVerifier {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
