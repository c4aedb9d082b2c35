//! Decoding the protobuf bodies kubectl 1.32 really sends.
//!
//! `fixtures/protobuf/capture.py` recorded, for each `kubectl create ...`
//! command, the POST body (`<name>.pb`) and the command's
//! `--dry-run=client -o json` output (`<name>.json`): kubectl's own JSON
//! encoding of the object it sent. Decoding the body must give that JSON
//! byte for byte, key order included.

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::Value;
use svcnet_api::protobuf::{CONTENT_TYPE, decode};

fn fixture(file: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protobuf").join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Decodes `<name>.pb` and checks it against `<name>.json`.
fn decodes_to_kubectl_json(name: &str) -> Value {
    let decoded = decode(&fixture(&format!("{name}.pb"))).unwrap_or_else(|e| panic!("{name}: {e}"));
    let expected: Value = serde_json::from_slice(&fixture(&format!("{name}.json"))).expect("fixture JSON");
    assert_eq!(
        serde_json::to_string(&decoded).expect("serializes"),
        serde_json::to_string(&expected).expect("serializes"),
        "{name}"
    );
    decoded
}

#[test]
fn kubectl_sent_every_fixture_as_kubernetes_protobuf() {
    let manifest: Value = serde_json::from_slice(&fixture("manifest.json")).expect("manifest");
    let requests = manifest["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 7);
    for request in requests {
        assert_eq!(request["contentType"], CONTENT_TYPE, "{}", request["command"]);
    }
}

#[test]
fn create_configmap_from_literals_decodes_to_kubectls_json() {
    let cm = decodes_to_kubectl_json("configmap");
    assert_eq!(cm["data"]["greeting"], "hello world");
}

#[test]
fn create_secret_generic_decodes_to_kubectls_json() {
    let secret = decodes_to_kubectl_json("secret-generic");
    assert_eq!(secret["data"]["password"], "czNjcjN0");
}

#[test]
fn create_secret_tls_carries_the_pem_files_as_base64() {
    let secret = decodes_to_kubectl_json("secret-tls");
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(secret["data"]["tls.crt"], b64.encode(fixture("tls.crt")));
    assert_eq!(secret["data"]["tls.key"], b64.encode(fixture("tls.key")));
}

#[test]
fn create_namespace_decodes_to_kubectls_json() {
    let ns = decodes_to_kubectl_json("namespace");
    assert_eq!(ns["metadata"]["name"], "team-a");
}

#[test]
fn create_deployment_decodes_to_kubectls_json() {
    let deployment = decodes_to_kubectl_json("deployment");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"], 8080);
}

#[test]
fn create_service_nodeport_decodes_to_kubectls_json() {
    let service = decodes_to_kubectl_json("service-nodeport");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], 8080);
}

#[test]
fn create_ingress_with_a_tls_rule_decodes_to_kubectls_json() {
    let ingress = decodes_to_kubectl_json("ingress");
    assert_eq!(ingress["spec"]["tls"][0]["secretName"], "my-cert");
}

#[test]
fn a_truncated_real_body_fails_unless_it_ends_between_envelope_fields() {
    let body = fixture("deployment.pb");
    // The envelope is magic, typeMeta (short), raw, contentEncoding "" and
    // contentType "": cutting after typeMeta, raw or contentEncoding leaves
    // valid protobuf; every other cut leaves a field unfinished.
    assert_eq!(&body[4..6], &[0x0a, 0x15]);
    let boundaries = [6 + 0x15, body.len() - 4, body.len() - 2];
    for cut in 0..body.len() {
        let decoded = decode(&body[..cut]);
        assert_eq!(decoded.is_ok(), boundaries.contains(&cut), "{cut}: {decoded:?}");
    }
}
