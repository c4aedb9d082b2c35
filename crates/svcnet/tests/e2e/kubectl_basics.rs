//! kubectl's first contact: version, discovery, built-in namespaces,
//! api-resources and explain, with every supported kubectl version.

use crate::harness::{Cluster, KUBECTL, KUBECTL_127, KUBECTL_133, json};

#[test]
fn built_in_namespaces_exist_from_the_start_for_every_kubectl_version() {
    let c = Cluster::start();
    for bin in [KUBECTL, KUBECTL_127, KUBECTL_133] {
        let out = c.ok_with(bin, &["get", "namespaces"], None);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("NAME") && lines[0].contains("STATUS") && lines[0].contains("AGE"), "{out}");
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            assert!(lines.iter().any(|l| l.starts_with(ns) && l.contains("Active")), "{bin}: {ns} missing in\n{out}");
        }
    }
}

#[test]
fn kubectl_version_reports_the_server() {
    let c = Cluster::start();
    let out = json(&c.ok(&["version", "-o", "json"]));
    assert_eq!(out["serverVersion"]["major"], "1");
    assert!(out["serverVersion"]["gitVersion"].as_str().is_some_and(|v| v.contains("svcnet")));
}

#[test]
fn api_resources_lists_short_names_and_namespacing() {
    let c = Cluster::start();
    let out = c.ok(&["api-resources"]);
    let row = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing in\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("services"), ["services", "svc", "v1", "true", "Service"]);
    assert_eq!(row("endpoints"), ["endpoints", "ep", "v1", "true", "Endpoints"]);
    assert_eq!(row("deployments"), ["deployments", "deploy", "apps/v1", "true", "Deployment"]);
    assert_eq!(row("ingresses"), ["ingresses", "ing", "networking.k8s.io/v1", "true", "Ingress"]);
    assert_eq!(row("nodes"), ["nodes", "no", "v1", "false", "Node"]);
    assert_eq!(row("endpointslices"), ["endpointslices", "discovery.k8s.io/v1", "true", "EndpointSlice"]);
}

#[test]
fn kubectl_explain_reads_field_documentation_from_openapi() {
    let c = Cluster::start();
    let out = c.ok(&["explain", "service.spec.ports"]);
    assert!(out.contains("KIND:") && out.contains("Service"), "{out}");
    assert!(out.contains("targetPort"), "{out}");
    let out = c.ok_with(KUBECTL_127, &["explain", "deployment.spec.replicas"], None);
    assert!(out.contains("replicas"), "{out}");
}

#[test]
fn get_all_shows_the_kubernetes_category() {
    let c = Cluster::start();
    c.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n  ports:\n  - port: 80\n    targetPort: 8080\n",
    );
    let out = c.ok(&["get", "all"]);
    assert!(out.contains("service/web"), "{out}");
}
