//! Authentication and authorization over real HTTPS.

use crate::harness::{Cluster, json};

#[test]
fn requests_without_a_client_certificate_get_a_401_status() {
    let c = Cluster::start();
    let (code, body) = c.curl(false, &[&c.url("/api/v1/namespaces")]);
    assert_eq!(code, 401, "{body}");
    let status = json(&body);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Unauthorized");
    assert_eq!(status["code"], 401);
    // Health and version stay open, as kube-apiserver's public-info role.
    assert_eq!(c.curl(false, &[&c.url("/healthz")]).0, 200);
    assert_eq!(c.curl(false, &[&c.url("/livez")]), (200, "ok".to_string()));
}

#[test]
fn the_admin_certificate_is_authorized_and_others_are_forbidden() {
    let c = Cluster::start();
    let (code, body) = c.curl(true, &[&c.url("/api/v1/namespaces/default")]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["metadata"]["name"], "default");

    // A certificate signed by the cluster CA for a user outside
    // system:masters authenticates but may not read services.
    let pki = svcnet_apiserver::pki::Pki::load_or_create(&c.dir.path().join("pki"), &[]).expect("pki");
    let (cert, key) = pki.issue_client("jane", Some("developers")).expect("issue");
    std::fs::write(c.dir.path().join("jane.crt"), cert).expect("write");
    std::fs::write(c.dir.path().join("jane.key"), key).expect("write");
    let jane_crt = c.dir.path().join("jane.crt");
    let jane_key = c.dir.path().join("jane.key");
    let (code, body) = c.curl(
        false,
        &[
            "--cert",
            jane_crt.to_str().expect("path"),
            "--key",
            jane_key.to_str().expect("path"),
            &c.url("/api/v1/namespaces/default/services"),
        ],
    );
    assert_eq!(code, 403, "{body}");
    let status = json(&body);
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(
        status["message"],
        "services is forbidden: User \"jane\" cannot list resource \"services\" in API group \"\" in the namespace \"default\""
    );
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let c = Cluster::start();
    let other = tempfile::tempdir().expect("tempdir");
    let pki = svcnet_apiserver::pki::Pki::load_or_create(other.path(), &[]).expect("pki");
    std::fs::write(other.path().join("x.crt"), &pki.admin_cert).expect("write");
    std::fs::write(other.path().join("x.key"), &pki.admin_key).expect("write");
    let (code, _) = c.curl(
        false,
        &[
            "--cert",
            other.path().join("x.crt").to_str().expect("path"),
            "--key",
            other.path().join("x.key").to_str().expect("path"),
            &c.url("/api/v1/namespaces"),
        ],
    );
    // rustls rejects the chain during the handshake: no HTTP status at all.
    assert_ne!(code, 200);
}
