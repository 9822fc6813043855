//! Checking a server's certificate chain without its name, for
//! `ssl.endpoint.identification.algorithm` set empty.

use super::*;

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
pub(super) struct ChainOnlyVerifier {
    pub(super) roots: Arc<RootCertStore>,
    pub(super) algorithms: WebPkiSupportedAlgorithms,
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
