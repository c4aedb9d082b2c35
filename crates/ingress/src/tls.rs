//! TLS termination: certificates from `kubernetes.io/tls` Secrets chosen
//! by SNI from the current route table ([`TableResolver`]), a generated
//! self-signed default certificate for every other name, TLS 1.2 and 1.3
//! only, ALPN `h2` and `http/1.1`. Because the resolver reads the table
//! per handshake, a Secret change takes effect on the next handshake
//! without touching open connections.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::table::TableCell;

/// The default certificate's subject, as ingress-nginx names its own.
pub const DEFAULT_CERT_CN: &str = "svcnet Ingress Controller Fake Certificate";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.crt holds no PEM certificate")]
    NoCertificate,
    #[error("tls.crt is not valid PEM: {0}")]
    CertificatePem(rustls::pki_types::pem::Error),
    #[error("tls.key holds no usable PEM private key: {0}")]
    KeyPem(rustls::pki_types::pem::Error),
    #[error("the private key is not supported: {0}")]
    Key(#[source] rustls::Error),
    #[error("tls.key does not match tls.crt")]
    KeyMismatch,
    #[error("generating the default certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("building the TLS configuration failed: {0}")]
    Config(#[source] rustls::Error),
}

/// A certificate chain and key from a Secret's `tls.crt` and `tls.key`.
pub fn certified_key_from_pem(crt: &[u8], key: &[u8]) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(crt).collect::<Result<_, _>>().map_err(TlsError::CertificatePem)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(TlsError::KeyPem)?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(TlsError::Key)?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        // `Inconsistent*` means the key is not the certificate's; other
        // errors mean rustls could not tell, which we accept.
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch),
        _ => Ok(certified),
    }
}

/// A fresh self-signed certificate for names no Secret covers.
pub fn default_certificate() -> Result<CertifiedKey, TlsError> {
    let mut params = rcgen::CertificateParams::new(vec!["ingress.local".to_string()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, DEFAULT_CERT_CN);
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "svcnet");
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    certified_key_from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
}

/// Picks the certificate per handshake: the current table's for the SNI
/// name, else the default one (also without SNI).
#[derive(Debug)]
pub(crate) struct TableResolver {
    pub(crate) table: Arc<TableCell>,
    pub(crate) default: Arc<CertifiedKey>,
}

impl ResolvesServerCert for TableResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello.server_name().and_then(|name| self.table.load().certificate(name));
        Some(chosen.unwrap_or_else(|| self.default.clone()))
    }
}

/// The server configuration: TLS 1.2/1.3 with ring, ALPN h2 then
/// http/1.1, certificates from `resolver`.
///
/// Cipher suites in our order, not the client's: AES-128-GCM with SHA-256
/// first. OpenSSL clients (curl, wrk, nginx upstreams) list AES-256-GCM
/// with SHA-384 first, and ring's SHA-384 has no hardware path here
/// (SHA-256 has SHA-NI), which made the key schedule of every handshake
/// cost ~10% of a new connection's CPU. AES-128 is also the cheaper
/// record cipher; ChaCha20 stays last (slower with AES-NI; a client
/// without AES hardware lists it first, and gets it only if it offers
/// nothing else, as with nginx's defaults).
pub(crate) fn server_config(resolver: Arc<dyn ResolvesServerCert>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    use rustls::crypto::ring::cipher_suite as cs;
    let provider = rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..rustls::crypto::ring::default_provider()
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ignore_client_order = true;
    // One TLS 1.3 ticket per full handshake instead of two: a client
    // resumes with one, and each costs a key derivation, a cache entry
    // and a record.
    config.send_tls13_tickets = 1;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_certificate_parses_and_matches_its_key() {
        let k = default_certificate().expect("generated");
        assert_eq!(k.cert.len(), 1);
    }

    #[test]
    fn our_suite_order_wins_and_keeps_every_ring_suite() {
        #[derive(Debug)]
        struct Fixed(Arc<CertifiedKey>);
        impl ResolvesServerCert for Fixed {
            fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
                Some(self.0.clone())
            }
        }
        let k = Arc::new(default_certificate().expect("generated"));
        let config = server_config(Arc::new(Fixed(k))).expect("config");
        assert!(config.ignore_client_order);
        let ours = &config.crypto_provider().cipher_suites;
        assert_eq!(ours[0].suite(), rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
        assert_eq!(ours.len(), rustls::crypto::ring::default_provider().cipher_suites.len());
    }

    #[test]
    fn a_key_from_another_certificate_is_refused() {
        let a = rcgen::generate_simple_self_signed(vec!["a.example".to_string()]).expect("a");
        let b = rcgen::generate_simple_self_signed(vec!["b.example".to_string()]).expect("b");
        let got = certified_key_from_pem(a.cert.pem().as_bytes(), b.signing_key.serialize_pem().as_bytes());
        assert!(matches!(got, Err(TlsError::KeyMismatch)), "{got:?}");
        assert!(certified_key_from_pem(b"nonsense", b"nonsense").is_err());
    }
}
