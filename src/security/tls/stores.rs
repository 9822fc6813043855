//! Reading key stores and trust stores: PEM files and text, PKCS12 files, and recognising
//! a JKS file by its content to refuse it with the command that converts it.

use super::*;

impl TlsSettings {
    // -----------------------------------------------------------------------------------------
    // Stores
    // -----------------------------------------------------------------------------------------

    /// The key and chain, or `None` when no key store is configured.
    pub(super) fn load_keystore(&self) -> Result<Option<KeyMaterial>, TlsError> {
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
    pub(super) fn load_truststore(&self) -> Result<Option<RootCertStore>, TlsError> {
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
    pub(super) fn sniff_binary_store(
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

// ---------------------------------------------------------------------------------------------
// Reading key material
// ---------------------------------------------------------------------------------------------

/// A private key with its certificate chain (end-entity first), and where they came from.
pub(super) struct KeyMaterial {
    pub(super) chain: Vec<CertificateDer<'static>>,
    pub(super) key: PrivateKeyDer<'static>,
    pub(super) origin: String,
}

pub(super) fn read_file(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })
}

pub(super) fn looks_like_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

#[derive(Clone, Copy)]
pub(super) enum PemOrigin<'a> {
    /// `ssl.keystore.key` + `ssl.keystore.certificate.chain`.
    Inline,
    /// `ssl.keystore.location` with type PEM.
    File(&'a Path),
}

impl PemOrigin<'_> {
    pub(super) fn text(self) -> String {
        match self {
            PemOrigin::Inline => "inline PEM".into(),
            PemOrigin::File(path) => format!("file {}", path.display()),
        }
    }
    pub(super) fn chain_key(self) -> &'static str {
        match self {
            PemOrigin::Inline => SSL_KEYSTORE_CERTIFICATE_CHAIN,
            PemOrigin::File(_) => SSL_KEYSTORE_LOCATION,
        }
    }
    pub(super) fn key_key(self) -> &'static str {
        match self {
            PemOrigin::Inline => SSL_KEYSTORE_KEY,
            PemOrigin::File(_) => SSL_KEYSTORE_LOCATION,
        }
    }
}

/// Every `CERTIFICATE` block of a PEM text (at least one).
pub(super) fn pem_certificates(
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
pub(super) fn pem_key_material(
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
pub(super) fn encrypted_key_blocks(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
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
pub(super) fn decrypt_pkcs8(der: &[u8], password: &str) -> Result<PrivateKeyDer<'static>, String> {
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

pub(super) fn pkcs12_error(e: p12_keystore::error::Error) -> String {
    match e {
        p12_keystore::error::Error::MacError(_) => {
            "wrong password (the file's integrity check failed)".into()
        }
        e => format!("not a readable PKCS12 file: {e}"),
    }
}

/// The first key entry of a PKCS12 key store, with its chain.
pub(super) fn pkcs12_key_material(
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
pub(super) fn pkcs12_trusted(
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
