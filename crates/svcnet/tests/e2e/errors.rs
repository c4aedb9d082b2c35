//! Bad input gets a Kubernetes Status naming the problem, and nothing is
//! half-written.

use crate::harness::{Cluster, json};

#[test]
fn unknown_fields_are_refused_under_kubectls_default_strict_validation() {
    let c = Cluster::start();
    let err = c.fails(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  bogus: 1\n  ports:\n  - port: 80\n    nope: 2\n"),
    );
    assert!(err.contains("unknown field \"spec.bogus\""), "{err}");
    assert!(err.contains("unknown field \"spec.ports[0].nope\""), "{err}");
    c.fails(&["get", "svc", "x"], None);
    // With validation off the same manifest goes through, fields dropped.
    c.ok_with(
        crate::harness::KUBECTL,
        &["apply", "--validate=false", "-f", "-"],
        Some("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  bogus: 1\n  ports:\n  - port: 80\n"),
    );
}

#[test]
fn wrong_types_are_a_bad_request_naming_the_field() {
    let c = Cluster::start();
    let (code, body) = c.curl(
        true,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"},"spec":{"ports":[{"port":"abc"}]}}"#,
            &c.url("/api/v1/namespaces/default/services"),
        ],
    );
    assert_eq!(code, 400, "{body}");
    let s = json(&body);
    assert_eq!(s["reason"], "BadRequest");
    assert!(s["message"].as_str().is_some_and(|m| m.contains("spec.ports.port")), "{body}");
}

#[test]
fn malformed_documents_and_unknown_kinds_are_rejected() {
    let c = Cluster::start();
    let err = c.fails(&["apply", "-f", "-"], Some("apiVersion: v1\nkind: Service\nmetadata: [unclosed\n"));
    assert!(err.to_lowercase().contains("yaml"), "{err}");
    let err = c.fails(&["apply", "-f", "-"], Some("apiVersion: v9\nkind: Gizmo\nmetadata:\n  name: x\n"));
    assert!(err.contains("Gizmo"), "{err}");
    let (code, body) = c.curl(
        true,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            "{not json",
            &c.url("/api/v1/namespaces/default/configmaps"),
        ],
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(json(&body)["kind"], "Status");
}

#[test]
fn invalid_names_get_422_with_a_cause_per_field() {
    let c = Cluster::start();
    let (code, body) = c.curl(
        true,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_Valid","labels":{"-bad":"x"}}}"#,
            &c.url("/api/v1/namespaces/default/configmaps"),
        ],
    );
    assert_eq!(code, 422, "{body}");
    let s = json(&body);
    assert_eq!(s["reason"], "Invalid");
    let fields: Vec<&str> =
        s["details"]["causes"].as_array().expect("causes").iter().filter_map(|c| c["field"].as_str()).collect();
    assert!(fields.contains(&"metadata.name") && fields.contains(&"metadata.labels"), "{body}");
    let err = c.fails(&["create", "namespace", "Bad_Name"], None);
    assert!(err.contains("Invalid value: \"Bad_Name\""), "{err}");
}

#[test]
fn objects_in_a_missing_namespace_are_not_found() {
    let c = Cluster::start();
    let err = c.fails(&["-n", "nowhere", "create", "configmap", "x", "--from-literal=a=b"], None);
    assert!(err.contains("namespaces \"nowhere\" not found"), "{err}");
}

#[test]
fn bodies_over_three_mebibytes_get_413() {
    let c = Cluster::start();
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"x":"{}"}}}}"#,
        "a".repeat(3 * 1024 * 1024 + 10)
    );
    let path = c.dir.path().join("big.json");
    std::fs::write(&path, big).expect("write");
    let data = format!("@{}", path.display());
    let (code, body) = c.curl(
        true,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &data,
            &c.url("/api/v1/namespaces/default/configmaps"),
        ],
    );
    assert_eq!(code, 413, "{body}");
    assert_eq!(json(&body)["reason"], "RequestEntityTooLarge");
    c.fails(&["get", "configmap", "big"], None);
}

#[test]
fn stale_resource_versions_conflict_with_409() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "cm", "--from-literal=a=b"]);
    let cm = json(&c.ok(&["get", "configmap", "cm", "-o", "json"]));
    let stale = cm.to_string();
    c.ok(&["label", "configmap", "cm", "x=y"]);
    let (code, body) = c.curl(
        true,
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "--data",
            &stale,
            &c.url("/api/v1/namespaces/default/configmaps/cm"),
        ],
    );
    assert_eq!(code, 409, "{body}");
    let s = json(&body);
    assert_eq!(s["reason"], "Conflict");
    assert!(s["message"].as_str().is_some_and(|m| m.contains("the object has been modified")), "{body}");
}

#[test]
fn invalid_selectors_and_patches_are_bad_requests() {
    let c = Cluster::start();
    let (code, body) = c.curl(true, &[&c.url("/api/v1/namespaces/default/services?labelSelector=a%20in%20(")]);
    assert_eq!(code, 400, "{body}");
    let (code, body) = c.curl(true, &[&c.url("/api/v1/pods?fieldSelector=spec.bogus%3Dx")]);
    assert_eq!(code, 400, "{body}");
    c.ok(&["create", "configmap", "cm", "--from-literal=a=b"]);
    let (code, body) = c.curl(
        true,
        &[
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/json-patch+json",
            "--data",
            r#"[{"op":"frobnicate","path":"/x"}]"#,
            &c.url("/api/v1/namespaces/default/configmaps/cm"),
        ],
    );
    // kube-apiserver answers a JSON patch it cannot apply with 422.
    assert_eq!(code, 422, "{body}");
    let s = json(&body);
    assert_eq!(s["kind"], "Status");
    assert!(s["details"]["causes"][0]["message"].as_str().is_some_and(|m| m.contains("frobnicate")), "{body}");
}

#[test]
fn generate_name_and_server_dry_run_behave_as_in_kubernetes() {
    let c = Cluster::start();
    let (code, body) = c.curl(
        true,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"job-"}}"#,
            &c.url("/api/v1/namespaces/default/configmaps"),
        ],
    );
    assert_eq!(code, 201, "{body}");
    let name = json(&body)["metadata"]["name"].as_str().expect("name").to_string();
    assert!(name.starts_with("job-") && name.len() == 9, "{name}");
    c.ok(&["get", "configmap", &name]);

    // --dry-run=server validates and answers but stores nothing.
    let out = c.ok_with(
        crate::harness::KUBECTL,
        &["apply", "--dry-run=server", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dry\ndata:\n  a: b\n"),
    );
    assert!(out.contains("(server dry run)"), "{out}");
    c.fails(&["get", "configmap", "dry"], None);
}
