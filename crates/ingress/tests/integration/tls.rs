//! TLS: certificates by SNI from Secrets, verified with a real rustls
//! client against the test's CA; the default certificate for other names;
//! HTTP→HTTPS redirects; h2 by ALPN.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use svcnet_ingress::DEFAULT_CERT_CN;
use svcnet_ingress::testkit::{IngressBuilder, tls_secret};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::harness::{World, backend, get, proxy, read_reply};

/// A CA and a leaf for `hosts` signed by it (PEM).
pub struct Pki {
    pub ca_der: CertificateDer<'static>,
    pub leaf_pem: String,
    pub key_pem: String,
}

pub fn pki(hosts: &[&str]) -> Pki {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "svcnet test CA");
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf_params =
        rcgen::CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>()).expect("leaf params");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf");
    Pki { ca_der: ca.der().clone(), leaf_pem: leaf.pem(), key_pem: leaf_key.serialize_pem() }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client trusting only `ca`.
pub fn client(ca: &CertificateDer<'static>, alpn: &[&[u8]]) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).expect("CA");
    let mut c = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    c
}

/// Accepts any certificate: for looking at the default one.
#[derive(Debug)]
struct AcceptAnything;

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}

pub async fn tls_connect(addr: SocketAddr, sni: &str, config: ClientConfig) -> std::io::Result<TlsStream<TcpStream>> {
    let stream = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_string()).expect("server name");
    TlsConnector::from(Arc::new(config)).connect(name, stream).await
}

/// The certificate the server presents for `sni`.
pub async fn presented(addr: SocketAddr, sni: &str) -> Vec<u8> {
    let mut c = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnything))
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tls = tls_connect(addr, sni, c).await.expect("handshake");
    tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec()).expect("a certificate")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn secure_world() -> (World, Pki, crate::harness::Backend) {
    let a = backend("a").await;
    let pki = pki(&["secure.example.com", "*.wild.example.com"]);
    let mut w = World::default();
    w.service("default", "a", &[&a]);
    w.secrets.push(tls_secret("default", "secure-tls", &pki.leaf_pem, &pki.key_pem));
    w.ingresses.push(
        IngressBuilder::new("default", "secure")
            .tls(&["secure.example.com", "*.wild.example.com"], "secure-tls")
            .path(Some("secure.example.com"), "/", "Prefix", "a", "80")
            .path(Some("x.wild.example.com"), "/", "Prefix", "a", "80")
            .path(Some("plain.example.com"), "/", "Prefix", "a", "80")
            .build(),
    );
    (w, pki, a)
}

#[tokio::test]
async fn the_secret_certificate_is_served_by_sni_and_verifies_against_its_ca() {
    let (w, pki, _a) = secure_world().await;
    let p = proxy(w.table()).await;
    for host in ["secure.example.com", "x.wild.example.com"] {
        let tls = tls_connect(p.https, host, client(&pki.ca_der, &[b"http/1.1"])).await.expect("verified handshake");
        let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.expect("http");
        tokio::spawn(conn);
        let r = s.send_request(crate::harness::request(host, "/hello", &[])).await.expect("response");
        let r = read_reply(r).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header_seen("x-forwarded-proto"), Some("https"));
        assert_eq!(r.header_seen("x-forwarded-port"), Some(p.https.port().to_string().as_str()));
        assert_eq!(r.line("host"), Some(host));
    }
    // Other names get the default certificate, which the CA did not sign.
    assert!(tls_connect(p.https, "unknown.example.org", client(&pki.ca_der, &[])).await.is_err());
    let default = presented(p.https, "unknown.example.org").await;
    assert!(contains(&default, DEFAULT_CERT_CN.as_bytes()), "the default certificate names itself");
    assert!(contains(&presented(p.https, "deep.x.wild.example.com").await, DEFAULT_CERT_CN.as_bytes()));
}

#[tokio::test]
async fn plain_http_to_a_tls_host_is_redirected_with_308() {
    let (w, _pki, _a) = secure_world().await;
    let p = proxy(w.table()).await;
    let r = get(p.http, "secure.example.com", "/path?q=1", &[]).await;
    assert_eq!(r.status, 308);
    assert_eq!(r.headers.get("location").and_then(|l| l.to_str().ok()), Some("https://secure.example.com/path?q=1"));
    // A host without TLS is served over plain HTTP.
    let r = get(p.http, "plain.example.com", "/", &[]).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn h2_is_negotiated_by_alpn_and_the_backend_gets_http_1_1() {
    let (w, pki, _a) = secure_world().await;
    let p = proxy(w.table()).await;
    let tls =
        tls_connect(p.https, "secure.example.com", client(&pki.ca_der, &[b"h2", b"http/1.1"])).await.expect("tls");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut s, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.expect("h2 handshake");
    tokio::spawn(conn);
    for i in 0..3 {
        let req = Request::get(format!("https://secure.example.com/h2/{i}")).body(Empty::<Bytes>::new()).expect("req");
        let r = read_reply(s.send_request(req).await.expect("response")).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.line("version"), Some("HTTP/1.1"));
        assert_eq!(r.line("host"), Some("secure.example.com"));
        assert_eq!(r.line("uri"), Some(format!("/h2/{i}").as_str()));
    }
}

#[tokio::test]
async fn a_secret_change_swaps_the_certificate_for_new_handshakes() {
    let (mut w, _old, _a) = secure_world().await;
    let p = proxy(w.table()).await;
    let new = pki(&["secure.example.com"]);
    w.secrets = vec![tls_secret("default", "secure-tls", &new.leaf_pem, &new.key_pem)];
    p.server.publish(w.table());
    let tls = tls_connect(p.https, "secure.example.com", client(&new.ca_der, &[])).await;
    assert!(tls.is_ok(), "the new certificate verifies: {tls:?}");
}
