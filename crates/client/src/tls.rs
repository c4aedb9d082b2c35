//! The rustls client configuration a [`Config`] asks for: trusted roots,
//! client certificate, ALPN, and (only when asked) no verification at all.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::{Config, ConfigError};

/// Where Debian/Ubuntu and Fedora/RHEL keep the system CA bundle, for
/// servers configured without a CA of their own.
const SYSTEM_BUNDLES: [&str; 3] =
    ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

pub(crate) fn client_config(config: &Config) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        rustls::ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = if config.insecure_skip_tls_verify {
        tracing::warn!(server = %config.server, "TLS verification of the API server is disabled (insecure-skip-tls-verify)");
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        builder.with_root_certificates(roots(config)?)
    };
    let mut tls = match &config.identity {
        Some(identity) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&identity.cert_pem)
                .collect::<Result<_, _>>()
                .map_err(|source| ConfigError::Pem { what: "the client certificate", source })?;
            if chain.is_empty() {
                return Err(ConfigError::NoCertificates("the client certificate"));
            }
            let key = PrivateKeyDer::from_pem_slice(&identity.key_pem)
                .map_err(|source| ConfigError::Pem { what: "the client key", source })?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols =
        if config.http2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    Ok(Arc::new(tls))
}

fn roots(config: &Config) -> Result<rustls::RootCertStore, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots.add(cert.map_err(|source| ConfigError::Pem { what: "the certificate authority", source })?)?;
            }
            if roots.is_empty() {
                return Err(ConfigError::NoCertificates("the certificate authority"));
            }
        }
        None => {
            for path in SYSTEM_BUNDLES {
                let Ok(pem) = std::fs::read(path) else { continue };
                // A bundle may carry certificates rustls cannot use; skip
                // them rather than refuse every server.
                let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
                let (_added, _ignored) = roots.add_parsable_certificates(certs);
                break;
            }
            if roots.is_empty() {
                return Err(ConfigError::NoCertificates("the system CA bundle"));
            }
        }
    }
    Ok(roots)
}

/// The TLS name the server certificate must carry: `tls-server-name`, else
/// the host of the server URL (an IP address matches an IP SAN).
pub(crate) fn server_name(config: &Config) -> Result<ServerName<'static>, ConfigError> {
    let host = match &config.tls_server_name {
        Some(name) => name.clone(),
        None => crate::transport::bare_host(&config.server).to_string(),
    };
    ServerName::try_from(host.clone()).map_err(|_| ConfigError::ServerName(host))
}

/// `insecure-skip-tls-verify`: any certificate is accepted, but handshake
/// signatures are still checked so the session is at least well-formed.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
