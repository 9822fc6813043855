//! The principal of a TLS client certificate, as Kafka's `DefaultKafkaPrincipalBuilder` makes it.
//!
//! Kafka takes the subject of the verified peer certificate as Java's
//! `X500Principal.getName()` renders it (RFC 2253), passes that string through
//! `ssl.principal.mapping.rules` and calls the result `User:<name>`. ACLs and quotas are keyed
//! on that string, so both halves must match Java byte for byte:
//!
//! - [`distinguished_name`] renders a subject as OpenJDK 17 does (checked against
//!   `X500Principal.getName()` of OpenJDK 17.0.15 for every case in the tests). The certificate
//!   is parsed with `x509-parser` (already in the tree through `p12-keystore`, and it hands out
//!   the subject's exact DER); the Name itself is walked here, because Java's `#hex` form needs
//!   the original DER bytes of each attribute value, tag and length included.
//! - [`PrincipalMapper`] is Kafka's `SslPrincipalMapper`: the same rule grammar, whole-DN
//!   matching, Java's `Matcher.replaceAll` semantics for the replacement (`$n`, `${name}`,
//!   `\` escapes, empty matches) and Kafka's pre-pass that turns references to groups the regex
//!   does not have into literal text.
//!
//! The rendering is `dn.rs`, the mapper `mapper.rs`; this file builds the principal from them.
//!
//! Known differences from Java, all in corners no real DN or rule reaches:
//! - Rules are compiled by the `regex` crate: no look-around or back-references (a rule using
//!   them is refused at parse time), and `\w`, `\d`, `\s`, `\b` are Unicode-aware where Java's
//!   are ASCII-only.
//! - OpenJDK 22+ decodes BMPString/T61String values with their own charsets; 17 (what Kafka 3.9
//!   is mostly run on) decodes every string type as UTF-8, and so does this module.
//! - OID arcs wider than 128 bits are refused (Java prints them).

mod dn;
mod mapper;

use rustls::pki_types::CertificateDer;

pub use mapper::PrincipalMapper;

use super::KafkaPrincipal;

/// The subject DN of a DER certificate, rendered as Java's `X500Principal.getName()`.
pub fn distinguished_name(cert_der: &[u8]) -> Result<String, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| format!("cannot parse the peer certificate: {e}"))?;
    dn::render_name(cert.subject().as_raw())
}

/// `User:ANONYMOUS` without a verified peer certificate, else `User:<mapped subject DN>`.
///
/// `peer_certs` is what rustls reports after the handshake (`peer_certificates()`): the peer's
/// end-entity certificate first. rustls only reports certificates it verified, so their
/// presence is the "verified peer" Kafka asks `SSLSession.getPeerPrincipal()` for.
pub fn ssl_principal(
    peer_certs: Option<&[CertificateDer<'_>]>,
    mapper: &PrincipalMapper,
) -> Result<KafkaPrincipal, String> {
    let Some(end_entity) = peer_certs.and_then(|certs| certs.first()) else {
        return Ok(KafkaPrincipal::anonymous());
    };
    let dn = distinguished_name(end_entity)?;
    mapper.map(&dn).map(KafkaPrincipal::user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(dn: &[(rcgen::DnType, &str)]) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (ty, value) in dn {
            params.distinguished_name.push(ty.clone(), *value);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn distinguished_name_of_a_certificate() {
        use rcgen::DnType;
        let der = certificate(&[
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "acme"),
            (DnType::OrganizationalUnitName, "eng"),
            (DnType::CommonName, "writer"),
        ]);
        assert_eq!(
            distinguished_name(&der).as_deref(),
            Ok("CN=writer,OU=eng,O=acme,C=US")
        );
    }

    #[test]
    fn principal_of_a_peer() {
        use rcgen::DnType;
        let der = CertificateDer::from(certificate(&[
            (DnType::OrganizationName, "acme"),
            (DnType::CommonName, "writer"),
        ]));
        let default = PrincipalMapper::default();
        assert_eq!(
            ssl_principal(None, &default),
            Ok(KafkaPrincipal::anonymous())
        );
        assert_eq!(
            ssl_principal(Some(&[]), &default),
            Ok(KafkaPrincipal::anonymous())
        );
        let certs = [der];
        assert_eq!(
            ssl_principal(Some(&certs), &default),
            Ok(KafkaPrincipal::user("CN=writer,O=acme"))
        );
        let mapper = PrincipalMapper::parse("RULE:^CN=(.*?),O=(.*)$/$1@$2/U").unwrap();
        assert_eq!(
            ssl_principal(Some(&certs), &mapper).map(|p| p.to_string()),
            Ok("User:WRITER@ACME".to_string())
        );
        // No rule applies: the principal cannot be built and the connection must fail.
        let mapper = PrincipalMapper::parse("RULE:^CN=reader,.*$/r/").unwrap();
        let err = ssl_principal(Some(&certs), &mapper).unwrap_err();
        assert!(err.contains("CN=writer,O=acme"), "{err}");
    }

    #[test]
    fn garbage_certificates_are_errors_not_panics() {
        assert!(distinguished_name(b"").is_err());
        assert!(distinguished_name(b"not a certificate").is_err());
        let certs = [CertificateDer::from(b"\x30\x03\x02\x01\x01".to_vec())];
        assert!(ssl_principal(Some(&certs), &PrincipalMapper::default()).is_err());
    }
}
