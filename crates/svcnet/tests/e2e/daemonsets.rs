//! DaemonSets: one pod per node, placed by the scheduler through a node
//! affinity, updated node by node, collected with the set; with
//! `externalTrafficPolicy: Local`, every node's NodePort answers from its
//! own pod.

use crate::assert_eventually;
use crate::harness::{Cluster, json};

const ECHO: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: echo}
spec:
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: echo
        image: svcnet/echoserver:1
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
"#;

fn pods(c: &Cluster) -> Vec<serde_json::Value> {
    json(&c.ok(&["get", "pods", "-l", "app=echo", "-o", "json"]))["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_daemonset_runs_one_pod_per_node_and_rolls_node_by_node() {
    let c = Cluster::with_nodes(2);
    c.apply(ECHO);
    let status = c.ok(&["rollout", "status", "daemonset/echo", "--timeout=90s"]);
    assert!(status.contains(r#"daemon set "echo" successfully rolled out"#), "{status}");
    let running = pods(&c);
    let mut nodes: Vec<String> =
        running.iter().filter_map(|p| p["spec"]["nodeName"].as_str().map(String::from)).collect();
    nodes.sort();
    assert_eq!(nodes, ["node1", "node2"]);
    for p in &running {
        let node = p["spec"]["nodeName"].as_str().unwrap();
        let term = &p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchFields"][0];
        assert_eq!((term["key"].as_str(), term["values"][0].as_str()), (Some("metadata.name"), Some(node)), "{p}");
        assert!(
            p["spec"]["tolerations"].as_array().unwrap().iter().any(|t| t["key"] == "node.kubernetes.io/unreachable")
        );
    }
    let row = c.ok(&["get", "daemonset", "echo", "--no-headers"]);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[1..6], ["2", "2", "2", "2", "2"], "{row}");

    // Local traffic policy: the host's NodePort reaches node1's own pod.
    let node_port = c.ok(&["get", "svc", "echo", "-o", "jsonpath={.spec.ports[0].nodePort}"]);
    let on_node1 = running.iter().find(|p| p["spec"]["nodeName"] == "node1").unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eventually!(
        30,
        std::process::Command::new("curl")
            .args(["-s", "-m", "2", &format!("http://127.0.0.1:{node_port}/")])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).starts_with(&on_node1)),
        "NodePort {node_port} did not answer from {on_node1}"
    );

    // A new image, node by node.
    c.ok(&["set", "image", "daemonset/echo", "echo=svcnet/echoserver:2"]);
    c.ok(&["rollout", "status", "daemonset/echo", "--timeout=120s"]);
    let updated = pods(&c);
    assert_eq!(updated.len(), 2);
    assert!(updated.iter().all(|p| p["spec"]["containers"][0]["image"] == "svcnet/echoserver:2"));
    assert!(updated.iter().all(|p| p["metadata"]["labels"]["pod-template-generation"] == "2"));
    assert_eq!(
        c.ok(&["rollout", "history", "daemonset/echo"]).lines().filter(|l| l.starts_with(['1', '2'])).count(),
        2
    );

    // A node selector nobody matches empties it; deleting it leaves nothing.
    c.ok(&[
        "patch",
        "daemonset",
        "echo",
        "--type=merge",
        "-p",
        r#"{"spec":{"template":{"spec":{"nodeSelector":{"disk":"ssd"}}}}}"#,
    ]);
    assert_eventually!(60, pods(&c).is_empty(), "{:?}", pods(&c).len());
    c.ok(&["label", "node", "node2", "disk=ssd"]);
    assert_eventually!(
        60,
        pods(&c).iter().map(|p| p["spec"]["nodeName"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>()
            == ["node2"],
        "{:?}",
        pods(&c)
    );
    c.ok(&["delete", "daemonset", "echo"]);
    assert_eventually!(60, pods(&c).is_empty(), "pods left");
    assert_eventually!(30, c.ok(&["get", "controllerrevisions", "-o", "name"]).trim().is_empty(), "revisions left");
}

#[test]
fn daemonset_mistakes_get_kubes_messages() {
    let c = Cluster::start();
    let bad = ECHO.replace("  selector: {matchLabels: {app: echo}}\n  template:", "  selector: {matchLabels: {app: echo}}\n  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 0}}\n  template:");
    let err = c.fails(&["apply", "-f", "-"], Some(&bad));
    assert!(
        err.contains(
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"
        ),
        "{err}"
    );
    let bad = ECHO.replace(
        "selector: {matchLabels: {app: echo}}\n  template:",
        "selector: {matchLabels: {app: other}}\n  template:",
    );
    let err = c.fails(&["apply", "-f", "-"], Some(&bad));
    assert!(err.contains("spec.template.metadata.labels: Invalid value"), "{err}");
    assert!(err.contains("`selector` does not match template `labels`"), "{err}");
}
