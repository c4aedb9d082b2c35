//! Services in the API server: defaulting, validation with kube-apiserver's
//! messages, and cluster IP / NodePort allocation that never hands out the
//! same value twice, across restarts and concurrent creates.

use crate::harness::{Cluster, json};

fn svc(name: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: {name}\n  ports:\n  - port: 80\n{extra_spec}"
    )
}

#[test]
fn the_kubernetes_service_sits_at_the_first_address_of_the_range() {
    let c = Cluster::start();
    let s = json(&c.ok(&["get", "svc", "kubernetes", "-o", "json"]));
    assert_eq!(s["spec"]["clusterIP"], "10.96.0.1");
    assert_eq!(s["spec"]["ports"][0]["port"], 443);
    assert_eq!(s["metadata"]["labels"]["component"], "apiserver");
}

#[test]
fn services_are_defaulted_like_kubernetes() {
    let c = Cluster::start();
    c.apply(&svc("web", ""));
    let s = json(&c.ok(&["get", "svc", "web", "-o", "json"]));
    let spec = &s["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["ports"][0]["protocol"], "TCP");
    assert_eq!(spec["ports"][0]["targetPort"], 80);
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["ipFamilies"], serde_json::json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    let ip = spec["clusterIP"].as_str().expect("clusterIP").to_string();
    assert_eq!(spec["clusterIPs"], serde_json::json!([ip]));
    assert!(ip.starts_with("10.") && ip != "10.96.0.1", "{ip}");

    c.apply(&svc("sticky", "  sessionAffinity: ClientIP\n"));
    let s = json(&c.ok(&["get", "svc", "sticky", "-o", "json"]));
    assert_eq!(s["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"], 10800);

    c.apply(&svc("np", "  type: NodePort\n"));
    let s = json(&c.ok(&["get", "svc", "np", "-o", "json"]));
    assert_eq!(s["spec"]["externalTrafficPolicy"], "Cluster");
    let node_port = s["spec"]["ports"][0]["nodePort"].as_i64().expect("nodePort");
    assert!((30000..=32767).contains(&node_port), "{node_port}");
}

#[test]
fn a_requested_cluster_ip_or_node_port_is_honoured_once() {
    let c = Cluster::start();
    c.apply(
        &svc("a", "  clusterIP: 10.101.150.150\n  type: NodePort\n")
            .replace("  - port: 80\n", "  - port: 80\n    nodePort: 32001\n"),
    );
    let s = json(&c.ok(&["get", "svc", "a", "-o", "json"]));
    assert_eq!(s["spec"]["clusterIP"], "10.101.150.150");
    assert_eq!(s["spec"]["ports"][0]["nodePort"], 32001);
    let err = c.fails(&["apply", "-f", "-"], Some(&svc("b", "  clusterIP: 10.101.150.150\n")));
    assert!(
        err.contains("spec.clusterIPs: Invalid value: []string{\"10.101.150.150\"}: failed to allocate IP 10.101.150.150: provided IP is already allocated"),
        "{err}"
    );
    let err = c.fails(&["create", "service", "nodeport", "c", "--tcp=80:80", "--node-port=32001"], None);
    assert!(err.contains("spec.ports[0].nodePort: Invalid value: 32001: provided port is already allocated"), "{err}");
    // Deleting releases both.
    c.ok(&["delete", "svc", "a"]);
    c.apply(&svc("b", "  clusterIP: 10.101.150.150\n"));
    c.ok(&["create", "service", "nodeport", "c", "--tcp=80:80", "--node-port=32001"]);
}

#[test]
fn allocations_survive_a_restart() {
    let c = Cluster::start();
    c.apply(&svc("a", "  clusterIP: 10.97.97.97\n"));
    let c = Cluster::start_in(c.kill9());
    let err = c.fails(&["apply", "-f", "-"], Some(&svc("b", "  clusterIP: 10.97.97.97\n")));
    assert!(err.contains("provided IP is already allocated"), "{err}");
}

#[test]
fn concurrent_creates_never_share_a_cluster_ip() {
    let c = Cluster::start();
    // Eight kubectl processes race for the same address: exactly one wins.
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let manifest = svc(&format!("race-{i}"), "  clusterIP: 10.98.0.42\n");
            let kubeconfig = c.kubeconfig();
            std::thread::spawn(move || {
                let mut child = std::process::Command::new(crate::harness::KUBECTL)
                    .arg("--kubeconfig")
                    .arg(kubeconfig)
                    .args(["create", "-f", "-"])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("kubectl");
                use std::io::Write as _;
                child.stdin.take().expect("stdin").write_all(manifest.as_bytes()).expect("write");
                child.wait().expect("wait").success()
            })
        })
        .collect();
    let wins = handles.into_iter().filter_map(|h| h.join().ok()).filter(|ok| *ok).count();
    assert_eq!(wins, 1);
    let ips = c.ok(&["get", "svc", "-o", "jsonpath={.items[*].spec.clusterIP}"]);
    assert_eq!(ips.split_whitespace().filter(|ip| *ip == "10.98.0.42").count(), 1, "{ips}");
}

#[test]
fn changing_type_releases_node_ports_and_external_name_holds_no_ip() {
    let c = Cluster::start();
    c.apply(&svc("np", "  type: NodePort\n").replace("  - port: 80\n", "  - port: 80\n    nodePort: 30999\n"));
    // Back to ClusterIP with kubectl apply: the node port goes away...
    c.apply(&svc("np", "  type: ClusterIP\n"));
    let s = json(&c.ok(&["get", "svc", "np", "-o", "json"]));
    assert!(s["spec"]["ports"][0].get("nodePort").is_none(), "{s}");
    // ...and is free for someone else.
    c.ok(&["create", "service", "nodeport", "other", "--tcp=80:80", "--node-port=30999"]);

    c.apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: ext\nspec:\n  type: ExternalName\n  externalName: www.baidu.com\n");
    let s = json(&c.ok(&["get", "svc", "ext", "-o", "json"]));
    assert!(s["spec"].get("clusterIP").is_none(), "{s}");
    let out = c.ok(&["get", "svc", "ext"]);
    assert!(out.contains("www.baidu.com"), "{out}");

    c.apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: headless\nspec:\n  clusterIP: None\n  selector:\n    app: x\n");
    let out = c.ok(&["get", "svc", "headless", "-o", "jsonpath={.spec.clusterIP}"]);
    assert_eq!(out, "None");
}

#[test]
fn invalid_services_are_refused_with_kubernetes_messages() {
    let c = Cluster::start();
    let cases: &[(&str, &str)] = &[
        (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: noports\nspec:\n  selector:\n    app: x\n",
            "spec.ports: Required value",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: two\nspec:\n  ports:\n  - port: 80\n  - port: 81\n",
            "spec.ports[0].name: Required value",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: bigport\nspec:\n  ports:\n  - port: 70000\n",
            "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: lbnone\nspec:\n  type: LoadBalancer\n  clusterIP: None\n  ports:\n  - port: 80\n",
            "may not be set to 'None' for LoadBalancer services",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: outside\nspec:\n  clusterIP: 192.168.0.10\n  ports:\n  - port: 80\n",
            "failed to allocate IP 192.168.0.10",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: cipnp\nspec:\n  ports:\n  - port: 80\n    nodePort: 30001\n",
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: loopback\nspec:\n  externalIPs: [127.0.0.1]\n  ports:\n  - port: 80\n",
            "spec.externalIPs[0]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: affinity\nspec:\n  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 90000\n  ports:\n  - port: 80\n",
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 90000: must be greater than 0 and less than 86400",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: Bad\nspec:\n  ports:\n  - port: 80\n",
            "metadata.name: Invalid value: \"Bad\": a DNS-1035 label",
        ),
    ];
    for (manifest, want) in cases {
        let err = c.fails(&["apply", "-f", "-"], Some(manifest));
        assert!(err.contains(want), "want {want:?} in:\n{err}");
    }
    // A cluster IP cannot change once set.
    c.apply(&svc("fixed", "  clusterIP: 10.99.0.5\n"));
    let err = c.fails(&["apply", "-f", "-"], Some(&svc("fixed", "  clusterIP: 10.99.0.6\n")));
    assert!(
        err.contains("spec.clusterIPs[0]: Invalid value: []string{\"10.99.0.6\"}: may not change once set"),
        "{err}"
    );
    // Endpoints refuse special addresses.
    let err = c.fails(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: e\nsubsets:\n- addresses:\n  - ip: 169.254.1.1\n  ports:\n  - port: 80\n"),
    );
    assert!(
        err.contains("subsets[0].addresses[0].ip: Invalid value: \"169.254.1.1\": may not be in the link-local range"),
        "{err}"
    );
}
