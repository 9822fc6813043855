//! Certificates made by the tests: a CA, a broker certificate for `localhost` and 127.0.0.1, a
//! client certificate with a distinguished name, and a second CA nobody trusts with a client
//! certificate of its own. Written as PEM files, which every client here reads.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// One certificate and its key, as PEM text and as the files they were written to.
pub struct Pem {
    pub cert: String,
    pub key: String,
    pub cert_file: PathBuf,
    /// Certificate and key in one file (PEM keystore file, librdkafka's and Python's form).
    pub both_file: PathBuf,
}

pub struct Pki {
    pub ca: Pem,
    pub broker: Pem,
    /// Signed by `ca`, subject `CN=writer,OU=eng,O=acme,C=US`.
    pub client: Pem,
    /// A CA that no broker trusts, and a client certificate it signed.
    pub rogue_ca: Pem,
    pub rogue_client: Pem,
}

fn write(dir: &Path, name: &str, cert: String, key: String) -> Pem {
    let cert_file = dir.join(format!("{name}.crt"));
    let both_file = dir.join(format!("{name}.pem"));
    std::fs::write(&cert_file, &cert).unwrap();
    std::fs::write(&both_file, format!("{key}{cert}")).unwrap();
    Pem {
        cert,
        key,
        cert_file,
        both_file,
    }
}

fn new_ca(dir: &Path, name: &str) -> (Pem, Issuer<'static, KeyPair>) {
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
    let pem = write(dir, name, cert.pem(), key.serialize_pem());
    (pem, Issuer::new(params, key))
}

fn leaf(
    dir: &Path,
    file: &str,
    issuer: &Issuer<'static, KeyPair>,
    names: &[&str],
    dn: &[(DnType, &str)],
    usage: ExtendedKeyUsagePurpose,
) -> Pem {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    for (ty, value) in dn {
        params.distinguished_name.push(ty.clone(), *value);
    }
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    write(dir, file, cert.pem(), key.serialize_pem())
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let (ca_pem, ca) = new_ca(dir, "odradek-test-ca");
        let (rogue_pem, rogue) = new_ca(dir, "rogue-ca");
        // rcgen writes the DN in the order pushed; Java prints it most specific first, so the
        // country goes in first.
        let client_dn = [
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "acme"),
            (DnType::OrganizationalUnitName, "eng"),
            (DnType::CommonName, "writer"),
        ];
        Pki {
            broker: leaf(
                dir,
                "broker",
                &ca,
                &["localhost", "127.0.0.1"],
                &[(DnType::CommonName, "broker")],
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            client: leaf(
                dir,
                "client",
                &ca,
                &[],
                &client_dn,
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
            rogue_client: leaf(
                dir,
                "rogue-client",
                &rogue,
                &[],
                &client_dn,
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
            ca: ca_pem,
            rogue_ca: rogue_pem,
        }
    }

    /// Broker overrides for a PEM keystore and truststore on `listener` (lower case).
    pub fn broker_tls(&self, listener: &str) -> Vec<String> {
        let p = format!("listener.name.{listener}.");
        vec![
            format!("{p}ssl.keystore.type=PEM"),
            format!(
                "{p}ssl.keystore.location={}",
                self.broker.both_file.display()
            ),
            format!("{p}ssl.truststore.type=PEM"),
            format!("{p}ssl.truststore.location={}", self.ca.cert_file.display()),
        ]
    }
}
