//! The controllers inside `svcnet up`: Deployments make ReplicaSets and
//! Pods, Services get Endpoints and EndpointSlices as pods become Ready,
//! and deleting an owner removes what it owned. Pods are marked Running
//! and Ready through the status subresource, as a node agent would.

use crate::assert_eventually;
use crate::harness::{Cluster, json};

/// Pod names of a Deployment's pods.
fn pods(c: &Cluster, selector: &str) -> Vec<String> {
    c.ok(&["get", "pods", "-l", selector, "-o", "jsonpath={.items[*].metadata.name}"])
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Marks a pod Running and Ready with `ip`, as the kubelet reports it.
fn make_ready(c: &Cluster, pod: &str, ip: &str) {
    let status = format!(
        r#"{{"status":{{"phase":"Running","podIP":"{ip}","podIPs":[{{"ip":"{ip}"}}],"hostIP":"172.18.0.2","conditions":[{{"type":"Ready","status":"True","lastTransitionTime":"2026-01-01T00:00:00Z"}}]}}}}"#
    );
    c.ok(&["patch", "pod", pod, "--subresource=status", "--type=merge", "-p", &status]);
}

#[test]
fn a_deployment_becomes_ready_and_its_service_gets_endpoints() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "web", "--image=svcnet/echoserver:1.0", "--replicas=3", "--port=8080"]);
    c.ok(&["expose", "deployment", "web", "--port=80", "--target-port=8080"]);
    assert_eventually!(10, pods(&c, "app=web").len() == 3, "three pods: {:?}", pods(&c, "app=web"));
    let names = pods(&c, "app=web");
    for (i, pod) in names.iter().enumerate() {
        make_ready(&c, pod, &format!("10.244.1.{}", 10 + i));
    }
    assert_eventually!(
        10,
        c.ok(&["get", "endpoints", "web", "-o", "jsonpath={.subsets[0].addresses[*].ip}"]).split_whitespace().count()
            == 3,
        "endpoints: {}",
        c.ok(&["get", "endpoints", "web", "-o", "yaml"])
    );
    let ep = json(&c.ok(&["get", "endpoints", "web", "-o", "json"]));
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8080);
    assert_eq!(ep["subsets"][0]["addresses"][0]["targetRef"]["kind"], "Pod");
    let slices = json(&c.ok(&["get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", "json"]));
    let endpoints = slices["items"][0]["endpoints"].as_array().map(Vec::len);
    assert_eq!(endpoints, Some(3), "{slices}");
    assert_eq!(slices["items"][0]["endpoints"][0]["conditions"]["ready"], true);
    assert_eventually!(
        10,
        c.ok(&["get", "deploy", "web", "-o", "jsonpath={.status.readyReplicas}"]) == "3",
        "deployment not ready"
    );
    let out = c.ok(&["rollout", "status", "deployment/web", "--timeout=10s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let described = c.ok(&["describe", "deploy", "web"]);
    assert!(described.contains("ScalingReplicaSet"), "{described}");

    // A pod that stops being ready moves to notReadyAddresses.
    c.ok(&[
        "patch",
        "pod",
        &names[0],
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"False"}]}}"#,
    ]);
    assert_eventually!(
        10,
        c.ok(&["get", "endpoints", "web", "-o", "jsonpath={.subsets[0].notReadyAddresses[*].ip}"]).trim()
            == "10.244.1.10",
        "not-ready address missing: {}",
        c.ok(&["get", "endpoints", "web", "-o", "yaml"])
    );
}

#[test]
fn scaling_a_deployment_adds_and_removes_pods() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "web", "--image=svcnet/echoserver:1.0", "--replicas=2"]);
    assert_eventually!(10, pods(&c, "app=web").len() == 2, "two pods");
    c.ok(&["scale", "deployment", "web", "--replicas=5"]);
    assert_eventually!(10, pods(&c, "app=web").len() == 5, "five pods: {:?}", pods(&c, "app=web"));
    c.ok(&["scale", "deployment", "web", "--replicas=1"]);
    assert_eventually!(10, pods(&c, "app=web").len() == 1, "one pod: {:?}", pods(&c, "app=web"));
    let rs = c.ok(&["get", "rs", "-l", "app=web", "-o", "jsonpath={.items[*].spec.replicas}"]);
    assert_eq!(rs.trim(), "1");
}

#[test]
fn a_template_change_rolls_out_a_new_replicaset_and_keeps_history() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "web", "--image=svcnet/echoserver:1.0", "--replicas=2"]);
    assert_eventually!(10, pods(&c, "app=web").len() == 2, "two pods");
    for (i, p) in pods(&c, "app=web").iter().enumerate() {
        make_ready(&c, p, &format!("10.244.2.{}", 10 + i));
    }
    c.ok(&["set", "image", "deployment/web", "echoserver=svcnet/echoserver:2.0"]);
    // New pods appear under a second ReplicaSet; mark them ready as they come.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut ip = 20;
    loop {
        let d = json(&c.ok(&["get", "deploy", "web", "-o", "json"]));
        let updated = d["status"]["updatedReplicas"].as_i64().unwrap_or(0);
        let available = d["status"]["availableReplicas"].as_i64().unwrap_or(0);
        let replicas = d["status"]["replicas"].as_i64().unwrap_or(0);
        if updated == 2 && available == 2 && replicas == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "rollout did not finish: {}", d["status"]);
        let all = json(&c.ok(&["get", "pods", "-l", "app=web", "-o", "json"]));
        for p in all["items"].as_array().into_iter().flatten() {
            if p["status"]["podIP"].is_null() && p["metadata"]["deletionTimestamp"].is_null() {
                let name = p["metadata"]["name"].as_str().unwrap_or_default().to_string();
                make_ready(&c, &name, &format!("10.244.2.{ip}"));
                ip += 1;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let rs = json(&c.ok(&["get", "rs", "-l", "app=web", "-o", "json"]));
    let sizes: Vec<(String, i64)> = rs["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_string(),
                r["spec"]["replicas"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert!(sizes.contains(&("svcnet/echoserver:2.0".to_string(), 2)), "{sizes:?}");
    assert!(sizes.contains(&("svcnet/echoserver:1.0".to_string(), 0)), "old ReplicaSet kept as history: {sizes:?}");
    let history = c.ok(&["rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
}

#[test]
fn deleting_a_deployment_removes_its_replicasets_and_pods() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "web", "--image=svcnet/echoserver:1.0", "--replicas=2"]);
    assert_eventually!(10, pods(&c, "app=web").len() == 2, "two pods");
    c.ok(&["delete", "deployment", "web"]);
    assert_eventually!(
        15,
        c.ok(&["get", "rs,pods", "-l", "app=web", "-o", "name"]).trim().is_empty(),
        "dependents left: {}",
        c.ok(&["get", "rs,pods", "-l", "app=web", "-o", "name"])
    );
}

#[test]
fn foreground_deletion_waits_for_dependents_and_orphaning_keeps_them() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "fg", "--image=svcnet/echoserver:1.0", "--replicas=1"]);
    c.ok(&["create", "deployment", "orphan", "--image=svcnet/echoserver:1.0", "--replicas=1"]);
    assert_eventually!(10, pods(&c, "app=fg").len() == 1 && pods(&c, "app=orphan").len() == 1, "pods");
    c.ok(&["delete", "deployment", "fg", "--cascade=foreground", "--timeout=20s"]);
    assert!(c.ok(&["get", "rs", "-l", "app=fg", "-o", "name"]).trim().is_empty());
    c.ok(&["delete", "deployment", "orphan", "--cascade=orphan"]);
    assert_eventually!(10, c.kubectl_fails_quietly(&["get", "deployment", "orphan"]), "deployment still there");
    // The ReplicaSet stays, without an owner.
    let rs = json(&c.ok(&["get", "rs", "-l", "app=orphan", "-o", "json"]));
    assert_eq!(rs["items"].as_array().map(Vec::len), Some(1), "{rs}");
    assert!(rs["items"][0]["metadata"]["ownerReferences"].as_array().is_none_or(Vec::is_empty), "{rs}");
}

#[test]
fn selector_less_services_keep_hand_written_endpoints_and_get_mirrored_slices() {
    let c = Cluster::start();
    c.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: my-service\nspec:\n  ports:\n  - protocol: TCP\n    port: 80\n    targetPort: 9376\n---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: my-service\nsubsets:\n- addresses:\n  - ip: 1.2.3.4\n  ports:\n  - port: 9376\n",
    );
    assert_eventually!(
        10,
        !c.ok(&["get", "endpointslices", "-l", "kubernetes.io/service-name=my-service", "-o", "name"])
            .trim()
            .is_empty(),
        "no mirrored slice"
    );
    let slices = json(&c.ok(&["get", "endpointslices", "-l", "kubernetes.io/service-name=my-service", "-o", "json"]));
    assert_eq!(slices["items"][0]["endpoints"][0]["addresses"][0], "1.2.3.4");
    assert_eq!(
        slices["items"][0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslicemirroring-controller.k8s.io"
    );
    let ep = c.ok(&["get", "ep", "my-service"]);
    assert!(ep.contains("1.2.3.4:9376"), "{ep}");
}
