//! Settings checks, store loading, and real handshakes (tokio-rustls over an in-memory duplex)
//! with certificates made here by rcgen. Tests that need `openssl` or `keytool` (interop with
//! files those tools write) say so and return when the tool is missing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::suites::{SUITE_NAMES, suite_by_name};
use super::*;
use crate::security::KafkaPrincipal;
use crate::security::principal::{distinguished_name, ssl_principal};

// ---------------------------------------------------------------------------------------------
// Test PKI
// ---------------------------------------------------------------------------------------------

struct Pem {
    cert: String,
    key: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

struct Pki {
    ca: Pem,
    /// For `localhost` and 127.0.0.1, signed by `ca`.
    server: Pem,
    /// `CN=writer,OU=eng,O=acme,C=US`, signed by `ca`.
    writer: Pem,
    /// A CA nobody trusts, and a client and a server certificate it signed.
    rogue_ca: Pem,
    rogue_client: Pem,
    rogue_server: Pem,
}

fn ca(name: &str) -> (Pem, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let pem = Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    };
    (pem, Issuer::new(params, key))
}

fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    names: &[&str],
    dn: &[(DnType, &str)],
    eku: ExtendedKeyUsagePurpose,
) -> Pem {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    for (ty, value) in dn {
        params.distinguished_name.push(ty.clone(), *value);
    }
    params.extended_key_usages = vec![eku];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let (ca_pem, issuer) = ca("odradek test CA");
        let server = leaf(
            &issuer,
            &["localhost", "127.0.0.1"],
            &[(DnType::CommonName, "localhost")],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let writer = leaf(
            &issuer,
            &[],
            &[
                (DnType::CountryName, "US"),
                (DnType::OrganizationName, "acme"),
                (DnType::OrganizationalUnitName, "eng"),
                (DnType::CommonName, "writer"),
            ],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let (rogue_ca, rogue_issuer) = ca("rogue CA");
        let rogue_client = leaf(
            &rogue_issuer,
            &[],
            &[(DnType::CommonName, "intruder")],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let rogue_server = leaf(
            &rogue_issuer,
            &["localhost"],
            &[(DnType::CommonName, "localhost")],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        Pki {
            ca: ca_pem,
            server,
            writer,
            rogue_ca,
            rogue_client,
            rogue_server,
        }
    })
}

/// A temporary directory for store files.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }
    fn write(&self, name: &str, content: impl AsRef<[u8]>) -> String {
        let path = self.0.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

/// A PEM key store file (key + chain), as Kafka's `ssl.keystore.type=PEM` reads it.
fn pem_keystore(dir: &Dir, name: &str, pem: &Pem) -> String {
    dir.write(
        name,
        format!("{}{}{}", pem.key, pem.cert, pki().ca.cert).as_bytes(),
    )
}

fn settings(pairs: &[(&str, &str)]) -> Result<TlsSettings, TlsError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TlsSettings::from_lookup(|key| map.get(key).cloned())
}

/// A listener with the server certificate from a PEM file, and `extra` settings.
fn server_cfg(dir: &Dir, extra: &[(&str, &str)]) -> Result<Arc<ServerConfig>, TlsError> {
    let ks = pem_keystore(dir, "server.pem", &pki().server);
    let mut pairs = vec![
        (SSL_KEYSTORE_TYPE, "PEM"),
        (SSL_KEYSTORE_LOCATION, ks.as_str()),
    ];
    pairs.extend_from_slice(extra);
    settings(&pairs)?.server_config()
}

/// A client trusting the test CA (inline PEM), with `extra` settings.
fn client_cfg(extra: &[(&str, &str)]) -> Result<Arc<ClientConfig>, TlsError> {
    let mut pairs = vec![
        (SSL_TRUSTSTORE_TYPE, "PEM"),
        (SSL_TRUSTSTORE_CERTIFICATES, pki().ca.cert.as_str()),
    ];
    pairs.extend_from_slice(extra);
    settings(&pairs)?.client_config()
}

fn client_with_cert(pem: &Pem, extra: &[(&str, &str)]) -> Result<Arc<ClientConfig>, TlsError> {
    let mut pairs = vec![
        (SSL_KEYSTORE_TYPE, "PEM"),
        (SSL_KEYSTORE_KEY, pem.key.as_str()),
        (SSL_KEYSTORE_CERTIFICATE_CHAIN, pem.cert.as_str()),
    ];
    pairs.extend_from_slice(extra);
    client_cfg(&pairs)
}

/// What the server saw of a successful handshake.
#[derive(Debug)]
struct Accepted {
    peer_certs: Option<Vec<CertificateDer<'static>>>,
    version: Option<rustls::ProtocolVersion>,
    suite: Option<rustls::CipherSuite>,
    alpn: Option<Vec<u8>>,
}

/// A handshake plus one exchange each way, so that a client whose certificate the server
/// rejects after the client finished (TLS 1.3) fails too. Returns the server's and the
/// client's outcome.
async fn handshake(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    name: &str,
) -> (Result<Accepted, String>, Result<(), String>) {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let name = ServerName::try_from(name.to_string()).unwrap();
    let server_side = async move {
        let mut tls = tokio_rustls::TlsAcceptor::from(server)
            .accept(server_io)
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let conn = tls.get_ref().1;
        Ok(Accepted {
            peer_certs: conn.peer_certificates().map(|c| c.to_vec()),
            version: conn.protocol_version(),
            suite: conn.negotiated_cipher_suite().map(|s| s.suite()),
            alpn: conn.alpn_protocol().map(|a| a.to_vec()),
        })
    };
    let client_side = async move {
        let mut tls = tokio_rustls::TlsConnector::from(client)
            .connect(name, client_io)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        if &buf != b"pong" {
            return Err("wrong answer".to_string());
        }
        Ok(())
    };
    let both = async { tokio::join!(server_side, client_side) };
    tokio::time::timeout(Duration::from_secs(10), both)
        .await
        .expect("handshake hung")
}

fn config_key(e: &TlsError) -> &'static str {
    match e {
        TlsError::Config { key, .. }
        | TlsError::Read { key, .. }
        | TlsError::Content { key, .. } => key,
        TlsError::Jks { location_key, .. } => location_key,
        TlsError::Rustls { .. } => "",
    }
}

/// `cmd args...`, or `false` (with a note why the caller skips) when the tool is missing or
/// fails.
fn run(cmd: &str, args: &[&str]) -> bool {
    match Command::new(cmd).args(args).output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            eprintln!(
                "skipping: `{cmd} {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            false
        }
        Err(e) => {
            eprintln!("skipping: `{cmd}` is not available here ({e})");
            false
        }
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Handshakes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn server_authentication_only() {
    let dir = Dir::new();
    let (server, client) = handshake(
        server_cfg(&dir, &[]).unwrap(),
        client_cfg(&[]).unwrap(),
        "localhost",
    )
    .await;
    let accepted = server.unwrap();
    client.unwrap();
    assert!(accepted.peer_certs.is_none());
    assert_eq!(accepted.alpn, None, "Kafka negotiates no ALPN");
    assert_eq!(accepted.version, Some(rustls::ProtocolVersion::TLSv1_3));
}

#[tokio::test]
async fn an_ip_address_is_checked_against_the_ip_san() {
    let dir = Dir::new();
    let (server, client) = handshake(
        server_cfg(&dir, &[]).unwrap(),
        client_cfg(&[]).unwrap(),
        "127.0.0.1",
    )
    .await;
    server.unwrap();
    client.unwrap();
}

#[tokio::test]
async fn inline_pem_key_store_and_trust_store() {
    let p = pki();
    let chain = format!("{}{}", p.server.cert, p.ca.cert);
    let server = settings(&[
        (SSL_KEYSTORE_TYPE, "PEM"),
        (SSL_KEYSTORE_KEY, p.server.key.as_str()),
        (SSL_KEYSTORE_CERTIFICATE_CHAIN, chain.as_str()),
    ])
    .unwrap()
    .server_config()
    .unwrap();
    let (server, client) = handshake(server, client_cfg(&[]).unwrap(), "localhost").await;
    server.unwrap();
    client.unwrap();
}

#[tokio::test]
async fn client_auth_required_with_a_trusted_certificate() {
    let dir = Dir::new();
    let ca = pki().ca.cert.as_str();
    let server = server_cfg(
        &dir,
        &[
            (SSL_CLIENT_AUTH, "required"),
            (SSL_TRUSTSTORE_TYPE, "PEM"),
            (SSL_TRUSTSTORE_CERTIFICATES, ca),
        ],
    )
    .unwrap();
    let client = client_with_cert(&pki().writer, &[]).unwrap();
    let (server, client) = handshake(server, client, "localhost").await;
    client.unwrap();
    let peer = server
        .unwrap()
        .peer_certs
        .expect("the server sees the client certificate");
    assert_eq!(peer[0].as_ref(), pki().writer.cert_der.as_slice());
    assert_eq!(
        distinguished_name(&peer[0]).as_deref(),
        Ok("CN=writer,OU=eng,O=acme,C=US")
    );
    let mapper = settings(&[(
        SSL_PRINCIPAL_MAPPING_RULES,
        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),C=(.*?)$/$1@$3/L,DEFAULT",
    )])
    .unwrap()
    .principal_mapper()
    .unwrap();
    assert_eq!(
        ssl_principal(Some(&peer), &mapper),
        Ok(KafkaPrincipal::user("writer@acme"))
    );
}

#[tokio::test]
async fn client_auth_required_refuses_a_certificate_from_an_untrusted_ca() {
    let dir = Dir::new();
    let ca = pki().ca.cert.as_str();
    let server = server_cfg(
        &dir,
        &[
            (SSL_CLIENT_AUTH, "required"),
            (SSL_TRUSTSTORE_TYPE, "PEM"),
            (SSL_TRUSTSTORE_CERTIFICATES, ca),
        ],
    )
    .unwrap();
    let client = client_with_cert(&pki().rogue_client, &[]).unwrap();
    let (server, client) = handshake(server, client, "localhost").await;
    let err = server.unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(client.is_err());

    // Trusting its CA as well (a trust store with two certificates) lets it in.
    let both = format!("{}{}", pki().ca.cert, pki().rogue_ca.cert);
    let server = server_cfg(
        &dir,
        &[
            (SSL_CLIENT_AUTH, "required"),
            (SSL_TRUSTSTORE_TYPE, "PEM"),
            (SSL_TRUSTSTORE_CERTIFICATES, both.as_str()),
        ],
    )
    .unwrap();
    let client = client_with_cert(&pki().rogue_client, &[]).unwrap();
    let (server, client) = handshake(server, client, "localhost").await;
    client.unwrap();
    let peer = server.unwrap().peer_certs.unwrap();
    assert_eq!(distinguished_name(&peer[0]).as_deref(), Ok("CN=intruder"));
}

#[tokio::test]
async fn client_auth_required_refuses_a_client_without_certificate() {
    let dir = Dir::new();
    let ca = pki().ca.cert.as_str();
    let server = server_cfg(
        &dir,
        &[
            (SSL_CLIENT_AUTH, "required"),
            (SSL_TRUSTSTORE_TYPE, "PEM"),
            (SSL_TRUSTSTORE_CERTIFICATES, ca),
        ],
    )
    .unwrap();
    let (server, client) = handshake(server, client_cfg(&[]).unwrap(), "localhost").await;
    assert!(server.is_err());
    assert!(client.is_err());
}

#[tokio::test]
async fn client_auth_requested_accepts_a_client_without_certificate() {
    let dir = Dir::new();
    let ca = pki().ca.cert.as_str();
    let server_config = server_cfg(
        &dir,
        &[
            (SSL_CLIENT_AUTH, "requested"),
            (SSL_TRUSTSTORE_TYPE, "PEM"),
            (SSL_TRUSTSTORE_CERTIFICATES, ca),
        ],
    )
    .unwrap();
    let (server, client) =
        handshake(server_config.clone(), client_cfg(&[]).unwrap(), "localhost").await;
    client.unwrap();
    let accepted = server.unwrap();
    assert!(accepted.peer_certs.is_none());
    assert_eq!(
        ssl_principal(accepted.peer_certs.as_deref(), &PrincipalMapper::default()),
        Ok(KafkaPrincipal::anonymous())
    );
    // A certificate that is sent must still verify, as with Java's "want" mode.
    let rogue = client_with_cert(&pki().rogue_client, &[]).unwrap();
    let (server, _) = handshake(server_config, rogue, "localhost").await;
    assert!(server.is_err());
}

#[tokio::test]
async fn the_server_name_is_checked_unless_endpoint_identification_is_off() {
    let dir = Dir::new();
    let server_config = server_cfg(&dir, &[]).unwrap();
    let (_, client) = handshake(
        server_config.clone(),
        client_cfg(&[]).unwrap(),
        "broker.example",
    )
    .await;
    let err = client.unwrap_err();
    assert!(err.contains("not valid for name"), "{err}");

    let lax = client_cfg(&[(SSL_ENDPOINT_IDENTIFICATION_ALGORITHM, "")]).unwrap();
    let (server, client) = handshake(server_config, lax.clone(), "broker.example").await;
    server.unwrap();
    client.unwrap();

    // Without the name check the chain is still verified.
    let rogue_server = settings(&[
        (SSL_KEYSTORE_TYPE, "PEM"),
        (SSL_KEYSTORE_KEY, pki().rogue_server.key.as_str()),
        (
            SSL_KEYSTORE_CERTIFICATE_CHAIN,
            pki().rogue_server.cert.as_str(),
        ),
    ])
    .unwrap()
    .server_config()
    .unwrap();
    let (_, client) = handshake(rogue_server, lax, "localhost").await;
    let err = client.unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn protocols_and_cipher_suites_are_honoured() {
    let dir = Dir::new();
    let server_config = server_cfg(
        &dir,
        &[
            (SSL_ENABLED_PROTOCOLS, "TLSv1.2"),
            (
                SSL_CIPHER_SUITES,
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, SSL_RSA_WITH_3DES_EDE_CBC_SHA",
            ),
        ],
    )
    .unwrap();
    let (server, client) =
        handshake(server_config.clone(), client_cfg(&[]).unwrap(), "localhost").await;
    client.unwrap();
    let accepted = server.unwrap();
    assert_eq!(accepted.version, Some(rustls::ProtocolVersion::TLSv1_2));
    assert_eq!(
        accepted.suite,
        Some(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
    );
    // A TLS 1.3-only client cannot talk to it.
    let tls13 = client_cfg(&[(SSL_ENABLED_PROTOCOLS, "TLSv1.3")]).unwrap();
    let (server, client) = handshake(server_config, tls13, "localhost").await;
    assert!(server.is_err());
    assert!(client.is_err());
}

#[tokio::test]
async fn a_client_certificate_from_a_pkcs12_key_store_written_here() {
    let p = pki();
    let dir = Dir::new();
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "writer",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
            b"writer-key".to_vec(),
            p12_keystore::PrivateKey::from_der(&p.writer.key_der).unwrap(),
            [
                p12_keystore::Certificate::from_der(&p.writer.cert_der).unwrap(),
                p12_keystore::Certificate::from_der(&p.ca.cert_der).unwrap(),
            ],
        )),
    );
    let ks = dir.write("writer.p12", store.writer("ks-secret").write().unwrap());
    let mut trust = p12_keystore::KeyStore::new();
    trust.add_entry(
        "ca",
        p12_keystore::KeyStoreEntry::Certificate(
            p12_keystore::Certificate::from_der(&p.ca.cert_der).unwrap(),
        ),
    );
    let ts = dir.write("trust.p12", trust.writer("ts-secret").write().unwrap());

    let server_config = server_cfg(
        &dir,
        &[
            (SSL_CLIENT_AUTH, "required"),
            (SSL_TRUSTSTORE_TYPE, "PKCS12"),
            (SSL_TRUSTSTORE_LOCATION, ts.as_str()),
            (SSL_TRUSTSTORE_PASSWORD, "ts-secret"),
        ],
    )
    .unwrap();
    // Kafka's default type JKS reads a PKCS12 file, as Java's keystore.type.compat does.
    let client_settings = settings(&[
        (SSL_KEYSTORE_LOCATION, ks.as_str()),
        (SSL_KEYSTORE_PASSWORD, "ks-secret"),
        (SSL_KEY_PASSWORD, "ks-secret"),
        (SSL_TRUSTSTORE_TYPE, "PEM"),
        (SSL_TRUSTSTORE_CERTIFICATES, p.ca.cert.as_str()),
    ])
    .unwrap();
    assert_eq!(client_settings.keystore_type, StoreType::Jks);
    let (server, client) = handshake(
        server_config,
        client_settings.client_config().unwrap(),
        "localhost",
    )
    .await;
    client.unwrap();
    let peer = server.unwrap().peer_certs.unwrap();
    assert_eq!(peer[0].as_ref(), p.writer.cert_der.as_slice());

    // The wrong store password names the key and the file.
    let err = settings(&[
        (SSL_KEYSTORE_TYPE, "PKCS12"),
        (SSL_KEYSTORE_LOCATION, ks.as_str()),
        (SSL_KEYSTORE_PASSWORD, "nope"),
    ])
    .unwrap()
    .server_config()
    .unwrap_err();
    let text = err.to_string();
    assert_eq!(config_key(&err), SSL_KEYSTORE_LOCATION);
    assert!(
        text.contains("wrong password") && text.contains("writer.p12"),
        "{text}"
    );
    // So does a trust store without its password.
    let err = settings(&[
        (SSL_TRUSTSTORE_TYPE, "PKCS12"),
        (SSL_TRUSTSTORE_LOCATION, ts.as_str()),
    ])
    .unwrap()
    .client_config()
    .unwrap_err();
    assert!(err.to_string().contains(SSL_TRUSTSTORE_PASSWORD), "{err}");
}

#[tokio::test]
async fn pkcs12_stores_written_by_openssl() {
    let p = pki();
    let dir = Dir::new();
    let chain = dir.write("chain.pem", format!("{}{}", p.server.cert, p.ca.cert));
    let key = dir.write("key.pem", &p.server.key);
    let ca = dir.write("ca.pem", &p.ca.cert);
    let ks = dir.path("ks.p12");
    let ts = dir.path("ts.p12");
    if !run(
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-in",
            &chain,
            "-inkey",
            &key,
            "-passout",
            "pass:secret",
            "-out",
            s(&ks),
        ],
    ) || !run(
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-nokeys",
            "-in",
            &ca,
            "-passout",
            "pass:secret",
            "-out",
            s(&ts),
        ],
    ) {
        return;
    }
    let server_config = settings(&[
        (SSL_KEYSTORE_TYPE, "PKCS12"),
        (SSL_KEYSTORE_LOCATION, s(&ks)),
        (SSL_KEYSTORE_PASSWORD, "secret"),
    ])
    .unwrap()
    .server_config()
    .unwrap();
    // A trust store without Java's trusted attribute (openssl -nokeys): all its certificates.
    let client_config = settings(&[
        (SSL_TRUSTSTORE_TYPE, "PKCS12"),
        (SSL_TRUSTSTORE_LOCATION, s(&ts)),
        (SSL_TRUSTSTORE_PASSWORD, "secret"),
    ])
    .unwrap()
    .client_config()
    .unwrap();
    let (server, client) = handshake(server_config, client_config, "localhost").await;
    server.unwrap();
    client.unwrap();

    // The legacy RC2/3DES encryption of older tools (needs OpenSSL's legacy provider).
    let legacy = dir.path("legacy.p12");
    if run(
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-legacy",
            "-in",
            &chain,
            "-inkey",
            &key,
            "-passout",
            "pass:secret",
            "-out",
            s(&legacy),
        ],
    ) {
        settings(&[
            (SSL_KEYSTORE_TYPE, "PKCS12"),
            (SSL_KEYSTORE_LOCATION, s(&legacy)),
            (SSL_KEYSTORE_PASSWORD, "secret"),
        ])
        .unwrap()
        .server_config()
        .unwrap();
    }
}

#[tokio::test]
async fn stores_written_by_keytool() {
    let p = pki();
    let dir = Dir::new();
    let chain = dir.write("chain.pem", format!("{}{}", p.server.cert, p.ca.cert));
    let key = dir.write("key.pem", &p.server.key);
    let ca = dir.write("ca.pem", &p.ca.cert);
    let openssl_ks = dir.path("openssl.p12");
    let java_ks = dir.path("java.p12");
    let java_ts = dir.path("java-trust.p12");
    let jks = dir.path("server.jks");
    if !run(
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-in",
            &chain,
            "-inkey",
            &key,
            "-passout",
            "pass:secret",
            "-out",
            s(&openssl_ks),
        ],
    ) {
        return;
    }
    // keytool rewrites the key store as Java writes PKCS12, makes a trust store with Java's
    // trusted-certificate attribute, and a real JKS file.
    if !run(
        "keytool",
        &[
            "-importkeystore",
            "-noprompt",
            "-srckeystore",
            s(&openssl_ks),
            "-srcstoretype",
            "PKCS12",
            "-srcstorepass",
            "secret",
            "-destkeystore",
            s(&java_ks),
            "-deststoretype",
            "PKCS12",
            "-deststorepass",
            "secret",
        ],
    ) || !run(
        "keytool",
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            "ca",
            "-file",
            &ca,
            "-keystore",
            s(&java_ts),
            "-storetype",
            "PKCS12",
            "-storepass",
            "changeit",
        ],
    ) || !run(
        "keytool",
        &[
            "-importkeystore",
            "-noprompt",
            "-srckeystore",
            s(&openssl_ks),
            "-srcstoretype",
            "PKCS12",
            "-srcstorepass",
            "secret",
            "-destkeystore",
            s(&jks),
            "-deststoretype",
            "JKS",
            "-deststorepass",
            "secret",
        ],
    ) {
        return;
    }
    let server_config = settings(&[
        (SSL_KEYSTORE_TYPE, "PKCS12"),
        (SSL_KEYSTORE_LOCATION, s(&java_ks)),
        (SSL_KEYSTORE_PASSWORD, "secret"),
    ])
    .unwrap()
    .server_config()
    .unwrap();
    let client_config = settings(&[
        (SSL_TRUSTSTORE_TYPE, "PKCS12"),
        (SSL_TRUSTSTORE_LOCATION, s(&java_ts)),
        (SSL_TRUSTSTORE_PASSWORD, "changeit"),
    ])
    .unwrap()
    .client_config()
    .unwrap();
    let (server, client) = handshake(server_config, client_config, "localhost").await;
    server.unwrap();
    client.unwrap();

    let err = settings(&[
        (SSL_KEYSTORE_LOCATION, s(&jks)),
        (SSL_KEYSTORE_PASSWORD, "secret"),
    ])
    .unwrap()
    .server_config()
    .unwrap_err();
    assert!(matches!(err, TlsError::Jks { format: "JKS", .. }), "{err}");
}

#[tokio::test]
async fn an_encrypted_pkcs8_key_is_decrypted_with_the_key_password() {
    use base64::Engine;
    let p = pki();
    let dir = Dir::new();
    let params = pkcs8::pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(
        2048,
        b"0123456789abcdef",
        [7; 16],
    )
    .unwrap();
    let encrypted = pkcs8::PrivateKeyInfoRef::try_from(p.server.key_der.as_slice())
        .unwrap()
        .encrypt_with_params(params, "key-secret")
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(encrypted.as_bytes());
    let mut key_pem = String::from("-----BEGIN ENCRYPTED PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        key_pem.push_str(std::str::from_utf8(line).unwrap());
        key_pem.push('\n');
    }
    key_pem.push_str("-----END ENCRYPTED PRIVATE KEY-----\n");
    let file = dir.write("server.pem", format!("{key_pem}{}", p.server.cert));

    let with = |password: Option<&str>| {
        let mut pairs = vec![
            (SSL_KEYSTORE_TYPE, "PEM"),
            (SSL_KEYSTORE_LOCATION, file.as_str()),
        ];
        if let Some(password) = password {
            pairs.push((SSL_KEY_PASSWORD, password));
        }
        settings(&pairs).unwrap().server_config()
    };
    let (server, client) = handshake(
        with(Some("key-secret")).unwrap(),
        client_cfg(&[]).unwrap(),
        "localhost",
    )
    .await;
    server.unwrap();
    client.unwrap();

    let err = with(Some("wrong")).unwrap_err();
    assert!(err.to_string().contains("cannot decrypt"), "{err}");
    let err = with(None).unwrap_err();
    assert_eq!(config_key(&err), SSL_KEY_PASSWORD, "{err}");
    assert!(err.to_string().contains("encrypted"), "{err}");

    // Inline, too.
    let inline = settings(&[
        (SSL_KEYSTORE_TYPE, "PEM"),
        (SSL_KEYSTORE_KEY, key_pem.as_str()),
        (SSL_KEYSTORE_CERTIFICATE_CHAIN, p.server.cert.as_str()),
        (SSL_KEY_PASSWORD, "key-secret"),
    ])
    .unwrap();
    inline.server_config().unwrap();

    // A key encrypted by openssl (PBES2, AES-256-CBC, HMAC-SHA256).
    let plain = dir.write("plain.pem", &p.server.key);
    let by_openssl = dir.path("openssl-key.pem");
    if run(
        "openssl",
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            &plain,
            "-passout",
            "pass:ossl",
            "-out",
            s(&by_openssl),
        ],
    ) {
        let key = std::fs::read_to_string(&by_openssl).unwrap();
        settings(&[
            (SSL_KEYSTORE_TYPE, "PEM"),
            (SSL_KEYSTORE_KEY, key.as_str()),
            (SSL_KEYSTORE_CERTIFICATE_CHAIN, p.server.cert.as_str()),
            (SSL_KEY_PASSWORD, "ossl"),
        ])
        .unwrap()
        .server_config()
        .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Settings and their errors
// ---------------------------------------------------------------------------------------------

#[test]
fn defaults_are_kafkas() {
    let s = settings(&[]).unwrap();
    assert_eq!(s.keystore_type, StoreType::Jks);
    assert_eq!(s.truststore_type, StoreType::Jks);
    assert_eq!(s.client_auth, ClientAuth::None);
    assert_eq!(s.enabled_protocols, ["TLSv1.2", "TLSv1.3"]);
    assert!(s.cipher_suites.is_empty());
    assert_eq!(
        s.endpoint_identification_algorithm.as_deref(),
        Some("https")
    );
    assert_eq!(s.principal_mapping_rules, "DEFAULT");
    let s = settings(&[
        (SSL_ENDPOINT_IDENTIFICATION_ALGORITHM, ""),
        (SSL_CLIENT_AUTH, " Requested "),
        (SSL_ENABLED_PROTOCOLS, " TLSv1.3 , TLSv1.2 "),
    ])
    .unwrap();
    assert_eq!(s.endpoint_identification_algorithm, None);
    assert_eq!(s.client_auth, ClientAuth::Requested);
    assert_eq!(s.enabled_protocols, ["TLSv1.3", "TLSv1.2"]);
}

#[test]
fn kafkas_combination_rules() {
    let p = pki();
    let key = p.server.key.as_str();
    let chain = p.server.cert.as_str();
    let ca = p.ca.cert.as_str();
    let cases: &[(&[(&str, &str)], &str)] = &[
        // An inline key needs type PEM (the default JKS is not), a chain, no location, no
        // store password.
        (
            &[
                (SSL_KEYSTORE_KEY, key),
                (SSL_KEYSTORE_CERTIFICATE_CHAIN, chain),
            ],
            SSL_KEYSTORE_KEY,
        ),
        (
            &[(SSL_KEYSTORE_TYPE, "PEM"), (SSL_KEYSTORE_KEY, key)],
            SSL_KEYSTORE_KEY,
        ),
        (
            &[
                (SSL_KEYSTORE_TYPE, "PEM"),
                (SSL_KEYSTORE_KEY, key),
                (SSL_KEYSTORE_CERTIFICATE_CHAIN, chain),
                (SSL_KEYSTORE_LOCATION, "/x.pem"),
            ],
            SSL_KEYSTORE_KEY,
        ),
        (
            &[
                (SSL_KEYSTORE_TYPE, "PEM"),
                (SSL_KEYSTORE_KEY, key),
                (SSL_KEYSTORE_CERTIFICATE_CHAIN, chain),
                (SSL_KEYSTORE_PASSWORD, "p"),
            ],
            SSL_KEYSTORE_PASSWORD,
        ),
        (
            &[
                (SSL_KEYSTORE_TYPE, "PEM"),
                (SSL_KEYSTORE_CERTIFICATE_CHAIN, chain),
            ],
            SSL_KEYSTORE_CERTIFICATE_CHAIN,
        ),
        // A PEM key store file takes no store password; a binary one needs one.
        (
            &[
                (SSL_KEYSTORE_TYPE, "PEM"),
                (SSL_KEYSTORE_LOCATION, "/x.pem"),
                (SSL_KEYSTORE_PASSWORD, "p"),
            ],
            SSL_KEYSTORE_PASSWORD,
        ),
        (&[(SSL_KEYSTORE_PASSWORD, "p")], SSL_KEYSTORE_PASSWORD),
        (
            &[
                (SSL_KEYSTORE_TYPE, "PKCS12"),
                (SSL_KEYSTORE_LOCATION, "/x.p12"),
            ],
            SSL_KEYSTORE_PASSWORD,
        ),
        // Inline trusted certificates need type PEM, no location, no password.
        (
            &[(SSL_TRUSTSTORE_CERTIFICATES, ca)],
            SSL_TRUSTSTORE_CERTIFICATES,
        ),
        (
            &[
                (SSL_TRUSTSTORE_TYPE, "PEM"),
                (SSL_TRUSTSTORE_CERTIFICATES, ca),
                (SSL_TRUSTSTORE_LOCATION, "/t.pem"),
            ],
            SSL_TRUSTSTORE_CERTIFICATES,
        ),
        (
            &[
                (SSL_TRUSTSTORE_TYPE, "PEM"),
                (SSL_TRUSTSTORE_CERTIFICATES, ca),
                (SSL_TRUSTSTORE_PASSWORD, "p"),
            ],
            SSL_TRUSTSTORE_PASSWORD,
        ),
        (
            &[
                (SSL_TRUSTSTORE_TYPE, "PEM"),
                (SSL_TRUSTSTORE_LOCATION, "/t.pem"),
                (SSL_TRUSTSTORE_PASSWORD, "p"),
            ],
            SSL_TRUSTSTORE_PASSWORD,
        ),
        (&[(SSL_TRUSTSTORE_PASSWORD, "p")], SSL_TRUSTSTORE_PASSWORD),
        // Values.
        (&[(SSL_KEYSTORE_TYPE, "BCFKS")], SSL_KEYSTORE_TYPE),
        (&[(SSL_TRUSTSTORE_TYPE, "JCEKS")], SSL_TRUSTSTORE_TYPE),
        (&[(SSL_CLIENT_AUTH, "sometimes")], SSL_CLIENT_AUTH),
        (
            &[(SSL_ENDPOINT_IDENTIFICATION_ALGORITHM, "dns")],
            SSL_ENDPOINT_IDENTIFICATION_ALGORITHM,
        ),
        (
            &[(SSL_PRINCIPAL_MAPPING_RULES, "RULE:broken")],
            SSL_PRINCIPAL_MAPPING_RULES,
        ),
        (
            &[(SSL_ENABLED_PROTOCOLS, "TLSv1,TLSv1.1")],
            SSL_ENABLED_PROTOCOLS,
        ),
        (&[(SSL_ENABLED_PROTOCOLS, "TLSv1.4")], SSL_ENABLED_PROTOCOLS),
        (
            &[(SSL_CIPHER_SUITES, "TLS_RSA_WITH_AES_128_CBC_SHA")],
            SSL_CIPHER_SUITES,
        ),
        // Only TLS 1.3 suites, only TLS 1.2 enabled.
        (
            &[
                (SSL_CIPHER_SUITES, "TLS_AES_128_GCM_SHA256"),
                (SSL_ENABLED_PROTOCOLS, "TLSv1.2"),
            ],
            SSL_CIPHER_SUITES,
        ),
    ];
    for (pairs, key) in cases {
        let err = settings(pairs).unwrap_err();
        assert_eq!(config_key(&err), *key, "{pairs:?}: {err}");
        assert!(err.to_string().starts_with(key), "{err}");
    }
    // Refused protocols beside a supported one are only warned about.
    let s = settings(&[(SSL_ENABLED_PROTOCOLS, "TLSv1.1,TLSv1.2")]).unwrap();
    assert_eq!(s.protocol_versions(true).unwrap().len(), 1);
}

#[test]
fn what_a_configuration_needs() {
    let dir = Dir::new();
    // A listener without a key.
    let err = settings(&[]).unwrap().server_config().unwrap_err();
    assert_eq!(config_key(&err), SSL_KEYSTORE_LOCATION, "{err}");
    // Client authentication without a trust store.
    let err = server_cfg(&dir, &[(SSL_CLIENT_AUTH, "required")]).unwrap_err();
    assert_eq!(config_key(&err), SSL_CLIENT_AUTH, "{err}");
    let err = server_cfg(&dir, &[(SSL_CLIENT_AUTH, "requested")]).unwrap_err();
    assert_eq!(config_key(&err), SSL_CLIENT_AUTH, "{err}");
    // Outgoing connections without trusted certificates.
    let err = settings(&[]).unwrap().client_config().unwrap_err();
    assert_eq!(config_key(&err), SSL_TRUSTSTORE_LOCATION, "{err}");
    // A key that does not belong to the certificate.
    let p = pki();
    let err = settings(&[
        (SSL_KEYSTORE_TYPE, "PEM"),
        (SSL_KEYSTORE_KEY, p.writer.key.as_str()),
        (SSL_KEYSTORE_CERTIFICATE_CHAIN, p.server.cert.as_str()),
    ])
    .unwrap()
    .server_config()
    .unwrap_err();
    assert!(matches!(err, TlsError::Rustls { .. }), "{err}");
    assert!(err.to_string().contains(SSL_KEYSTORE_KEY), "{err}");
}

#[test]
fn jks_stores_are_refused_with_the_conversion_command() {
    let dir = Dir::new();
    let mut jks = vec![0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2];
    jks.extend_from_slice(&[0u8; 64]);
    let path = dir.write("broker.jks", &jks);
    let err = settings(&[
        (SSL_KEYSTORE_LOCATION, path.as_str()),
        (SSL_KEYSTORE_PASSWORD, "secret"),
    ])
    .unwrap()
    .server_config()
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("ssl.keystore.type=JKS is not supported"),
        "{text}"
    );
    assert!(
        text.contains("keytool -importkeystore") && text.contains(&path),
        "{text}"
    );
    assert!(text.contains("-deststoretype PKCS12"), "{text}");

    let err = settings(&[(SSL_TRUSTSTORE_LOCATION, path.as_str())])
        .unwrap()
        .client_config()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ssl.truststore.type=JKS is not supported"),
        "{err}"
    );
    assert_eq!(config_key(&err), SSL_TRUSTSTORE_LOCATION);

    let jceks = dir.write("broker.jceks", [0xce, 0xce, 0xce, 0xce, 0, 0, 0, 2]);
    let err = settings(&[(SSL_TRUSTSTORE_LOCATION, jceks.as_str())])
        .unwrap()
        .client_config()
        .unwrap_err();
    assert!(
        matches!(
            err,
            TlsError::Jks {
                format: "JCEKS",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn unreadable_and_garbage_files_are_clear_errors() {
    let dir = Dir::new();
    let missing = dir.path("missing.pem");
    let err = settings(&[
        (SSL_KEYSTORE_TYPE, "PEM"),
        (SSL_KEYSTORE_LOCATION, s(&missing)),
    ])
    .unwrap()
    .server_config()
    .unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("ssl.keystore.location: cannot read")
            && err.to_string().contains("missing.pem"),
        "{err}"
    );

    let garbage = dir.write(
        "garbage",
        b"\x00\x01 not a store at all \xff\xfe".repeat(10),
    );
    let text_file = dir.write("text.pem", "just some text\n");
    let truncated = dir.write(
        "truncated.pem",
        &pki().server.cert[..pki().server.cert.len() / 2],
    );
    let bad_base64 = dir.write(
        "bad.pem",
        "-----BEGIN CERTIFICATE-----\n!!!notbase64!!!\n-----END CERTIFICATE-----\n",
    );
    let empty = dir.write("empty", "");
    let cert_only = dir.write("cert-only.pem", &pki().server.cert);
    let two_keys = dir.write(
        "two-keys.pem",
        format!(
            "{}{}{}",
            pki().server.key,
            pki().writer.key,
            pki().server.cert
        ),
    );
    let ca_as_key_store = pki().ca.cert.clone();
    let key_stores: &[(&str, &[(&str, &str)])] = &[
        (
            "garbage PKCS12",
            &[
                (SSL_KEYSTORE_TYPE, "PKCS12"),
                (SSL_KEYSTORE_LOCATION, &garbage),
                (SSL_KEYSTORE_PASSWORD, "x"),
            ],
        ),
        (
            "empty PKCS12",
            &[
                (SSL_KEYSTORE_TYPE, "PKCS12"),
                (SSL_KEYSTORE_LOCATION, &empty),
                (SSL_KEYSTORE_PASSWORD, "x"),
            ],
        ),
        (
            "garbage PEM",
            &[
                (SSL_KEYSTORE_TYPE, "PEM"),
                (SSL_KEYSTORE_LOCATION, &garbage),
            ],
        ),
        (
            "text PEM",
            &[
                (SSL_KEYSTORE_TYPE, "PEM"),
                (SSL_KEYSTORE_LOCATION, &text_file),
            ],
        ),
        (
            "truncated PEM",
            &[
                (SSL_KEYSTORE_TYPE, "PEM"),
                (SSL_KEYSTORE_LOCATION, &truncated),
            ],
        ),
        (
            "bad base64",
            &[
                (SSL_KEYSTORE_TYPE, "PEM"),
                (SSL_KEYSTORE_LOCATION, &bad_base64),
            ],
        ),
        (
            "no key",
            &[
                (SSL_KEYSTORE_TYPE, "PEM"),
                (SSL_KEYSTORE_LOCATION, &cert_only),
            ],
        ),
        (
            "two keys",
            &[
                (SSL_KEYSTORE_TYPE, "PEM"),
                (SSL_KEYSTORE_LOCATION, &two_keys),
            ],
        ),
        (
            "PEM under PKCS12",
            &[
                (SSL_KEYSTORE_TYPE, "PKCS12"),
                (SSL_KEYSTORE_LOCATION, &cert_only),
                (SSL_KEYSTORE_PASSWORD, "x"),
            ],
        ),
        (
            "PEM under default JKS",
            &[
                (SSL_KEYSTORE_LOCATION, &cert_only),
                (SSL_KEYSTORE_PASSWORD, "x"),
            ],
        ),
        (
            "inline garbage",
            &[
                (SSL_KEYSTORE_TYPE, "PEM"),
                (SSL_KEYSTORE_KEY, "garbage"),
                (SSL_KEYSTORE_CERTIFICATE_CHAIN, "garbage"),
            ],
        ),
        (
            "inline key is a cert",
            &[
                (SSL_KEYSTORE_TYPE, "PEM"),
                (SSL_KEYSTORE_KEY, &ca_as_key_store),
                (SSL_KEYSTORE_CERTIFICATE_CHAIN, &ca_as_key_store),
            ],
        ),
    ];
    for (case, pairs) in key_stores {
        let err = settings(pairs).unwrap().server_config().unwrap_err();
        let key = config_key(&err);
        assert!(key.starts_with("ssl.keystore."), "{case}: {err}");
        if let Some((_, path)) = pairs.iter().find(|(k, _)| *k == SSL_KEYSTORE_LOCATION) {
            assert!(err.to_string().contains(path), "{case}: {err}");
        }
    }
    let err = settings(&[
        (SSL_KEYSTORE_LOCATION, &cert_only),
        (SSL_KEYSTORE_PASSWORD, "x"),
    ])
    .unwrap()
    .server_config()
    .unwrap_err();
    assert!(
        err.to_string().contains("set ssl.keystore.type=PEM"),
        "{err}"
    );

    let trust_stores: &[(&str, &[(&str, &str)])] = &[
        (
            "garbage PKCS12",
            &[
                (SSL_TRUSTSTORE_TYPE, "PKCS12"),
                (SSL_TRUSTSTORE_LOCATION, &garbage),
            ],
        ),
        (
            "garbage PEM",
            &[
                (SSL_TRUSTSTORE_TYPE, "PEM"),
                (SSL_TRUSTSTORE_LOCATION, &garbage),
            ],
        ),
        (
            "empty PEM",
            &[
                (SSL_TRUSTSTORE_TYPE, "PEM"),
                (SSL_TRUSTSTORE_LOCATION, &empty),
            ],
        ),
        (
            "missing",
            &[
                (SSL_TRUSTSTORE_TYPE, "PEM"),
                (SSL_TRUSTSTORE_LOCATION, s(&missing)),
            ],
        ),
        (
            "inline garbage",
            &[
                (SSL_TRUSTSTORE_TYPE, "PEM"),
                (SSL_TRUSTSTORE_CERTIFICATES, "garbage"),
            ],
        ),
    ];
    for (case, pairs) in trust_stores {
        let err = settings(pairs).unwrap().client_config().unwrap_err();
        assert!(
            config_key(&err).starts_with("ssl.truststore."),
            "{case}: {err}"
        );
        // A listener loads its trust store too, even without client authentication.
        assert!(server_cfg(&dir, pairs).is_err(), "{case}");
    }
}

#[test]
fn pem_key_password_rules_follow_kafka() {
    let p = pki();
    let err = settings(&[
        (SSL_KEYSTORE_TYPE, "PEM"),
        (SSL_KEYSTORE_KEY, p.server.key.as_str()),
        (SSL_KEYSTORE_CERTIFICATE_CHAIN, p.server.cert.as_str()),
        (SSL_KEY_PASSWORD, "unused"),
    ])
    .unwrap()
    .server_config()
    .unwrap_err();
    assert_eq!(config_key(&err), SSL_KEY_PASSWORD, "{err}");
    assert!(err.to_string().contains("not encrypted"), "{err}");
}

#[test]
fn every_suite_of_the_provider_has_its_iana_name() {
    let named: Vec<_> = SUITE_NAMES
        .iter()
        .map(|n| suite_by_name(n).expect(n).suite())
        .collect();
    for suite in rustls::crypto::ring::ALL_CIPHER_SUITES {
        assert!(
            named.contains(&suite.suite()),
            "{:?} has no name",
            suite.suite()
        );
    }
    assert_eq!(named.len(), rustls::crypto::ring::ALL_CIPHER_SUITES.len());
    // Java's names are upper case; lower case is accepted too.
    assert!(suite_by_name("tls_aes_128_gcm_sha256").is_some());
}

#[test]
fn secrets_are_not_printed() {
    let p = pki();
    let s = settings(&[
        (SSL_KEYSTORE_TYPE, "PEM"),
        (SSL_KEYSTORE_KEY, p.server.key.as_str()),
        (SSL_KEYSTORE_CERTIFICATE_CHAIN, p.server.cert.as_str()),
        (SSL_KEY_PASSWORD, "hunter2"),
        (SSL_TRUSTSTORE_LOCATION, "/t.p12"),
        (SSL_TRUSTSTORE_PASSWORD, "swordfish"),
    ])
    .unwrap();
    let printed = format!("{s:?}");
    assert!(
        !printed.contains("hunter2") && !printed.contains("swordfish"),
        "{printed}"
    );
    assert!(!printed.contains("PRIVATE KEY"), "{printed}");
    assert!(printed.contains("/t.p12"), "{printed}");
}
