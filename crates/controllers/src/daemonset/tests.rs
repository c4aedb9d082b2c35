use serde_json::json;

use super::*;

fn ds(extra: serde_json::Value) -> DaemonSet {
    let mut v = json!({
        "metadata": { "name": "agent", "namespace": "default", "uid": "u-agent", "generation": 1 },
        "spec": {
            "selector": { "matchLabels": { "app": "agent" } },
            "template": {
                "metadata": { "labels": { "app": "agent" } },
                "spec": { "containers": [{ "name": "agent", "image": "svcnet/echoserver:1" }] }
            }
        }
    });
    if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(v).unwrap()
}

fn node(name: &str, labels: serde_json::Value, ready: bool) -> Node {
    serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels },
        "status": { "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }] }
    }))
    .unwrap()
}

/// The pod the controller would make for `node`, bound there, Ready or not.
fn pod(set: &DaemonSet, node: &str, n: u32, ready: bool) -> Pod {
    let hash = pod_template_hash(&set.spec.as_ref().unwrap().template, Some(0));
    let mut p = new_pod(set, &set.spec.as_ref().unwrap().template, &hash, node);
    p.metadata.name = Some(format!("agent-{node}-{n}"));
    p.metadata.uid = Some(format!("uid-{node}-{n}"));
    p.spec.as_mut().unwrap().node_name = Some(node.into());
    p.status = Some(
        serde_json::from_value(json!({
            "phase": "Running",
            "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }]
        }))
        .unwrap(),
    );
    p
}

fn pass(set: &DaemonSet, nodes: &[Node], pods: &[Pod]) -> DaemonSetActions {
    let nodes: Vec<&Node> = nodes.iter().collect();
    let pods: Vec<&Pod> = pods.iter().collect();
    reconcile_daemonset(set, &nodes, &pods, &[], Timestamp::UNIX_EPOCH)
}

fn targets(actions: &DaemonSetActions) -> Vec<String> {
    actions.create_pods.iter().filter_map(node_of).collect()
}

fn deleted(actions: &DaemonSetActions) -> Vec<String> {
    actions.delete_pods.iter().map(|p| p.name.clone()).collect()
}

#[test]
fn one_pod_per_matching_node_pinned_by_affinity_with_daemon_tolerations() {
    let set = ds(json!({ "template": {
        "metadata": { "labels": { "app": "agent" } },
        "spec": { "nodeSelector": { "zone": "a" }, "containers": [{ "name": "agent", "image": "x" }] }
    } }));
    let nodes = [
        node("n1", json!({ "zone": "a" }), true),
        node("n2", json!({ "zone": "b" }), true),
        node("n3", json!({ "zone": "a" }), false),
    ];
    let actions = pass(&set, &nodes, &[]);
    // n3 is not Ready: no new daemon pod there (kube's daemon tolerations
    // cover the NoExecute taint, not the NoSchedule one).
    assert_eq!(targets(&actions), ["n1"]);
    let spec = actions.create_pods[0].spec.as_ref().unwrap();
    assert!(spec.node_name.is_none(), "the scheduler binds it");
    let tolerations = spec.tolerations.as_ref().unwrap();
    assert!(tolerations.iter().any(|t| t.key.as_deref() == Some("node.kubernetes.io/not-ready")));
    let labels = actions.create_pods[0].metadata.labels.as_ref().unwrap();
    assert_eq!(labels[TEMPLATE_GENERATION_LABEL], "1");
    assert!(!labels[REVISION_LABEL].is_empty());
    assert_eq!(actions.create_revisions.len(), 1);
    let status = actions.status.unwrap();
    assert_eq!((status.desired_number_scheduled, status.current_number_scheduled), (1, 0));
    // A pod already on the NotReady node stays.
    let there = pod(&set, "n3", 1, false);
    let actions = pass(&set, &nodes, &[there]);
    assert!(deleted(&actions).is_empty());
    assert_eq!(actions.status.unwrap().desired_number_scheduled, 2);
    // One on a node whose labels no longer match goes.
    let wrong = pod(&set, "n2", 1, true);
    assert_eq!(deleted(&pass(&set, &nodes, &[wrong])), ["agent-n2-1"]);
}

#[test]
fn extra_misplaced_and_failed_pods_go() {
    let set = ds(json!({}));
    let nodes = [node("n1", json!({}), true)];
    let mut failed_pod = pod(&set, "n1", 3, false);
    failed_pod.status.as_mut().unwrap().phase = Some("Failed".into());
    // Two on n1 (the older stays), one on a node that is gone.
    let mut older = pod(&set, "n1", 1, true);
    older.metadata.creation_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::UNIX_EPOCH));
    let mut newer = pod(&set, "n1", 2, true);
    newer.metadata.creation_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::from_second(10).unwrap()));
    let gone = pod(&set, "n9", 1, true);
    let actions = pass(&set, &nodes, &[older, newer, gone]);
    assert_eq!(deleted(&actions), ["agent-n1-2", "agent-n9-1"]);
    assert!(actions.create_pods.is_empty());
    let actions = pass(&set, &nodes, &[failed_pod]);
    assert_eq!(deleted(&actions), ["agent-n1-3"]);
    assert!(actions.create_pods.is_empty(), "replaced on the next pass");
}

#[test]
fn a_rolling_update_replaces_within_max_unavailable() {
    let old = ds(json!({}));
    let nodes = [node("n1", json!({}), true), node("n2", json!({}), true), node("n3", json!({}), true)];
    let pods = [pod(&old, "n1", 1, true), pod(&old, "n2", 1, true), pod(&old, "n3", 1, false)];
    let mut new = old.clone();
    new.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0].image = Some("svcnet/echoserver:2".into());
    // n3's pod is already unavailable, which uses up the default budget of
    // one: it goes, the ready ones wait.
    assert_eq!(deleted(&pass(&new, &nodes, &pods)), ["agent-n3-1"]);
    let all_ready = [pod(&old, "n1", 1, true), pod(&old, "n2", 1, true), pod(&old, "n3", 1, true)];
    assert_eq!(deleted(&pass(&new, &nodes, &all_ready)).len(), 1);
    let mut wider = new.clone();
    wider.spec.as_mut().unwrap().update_strategy = Some(
        serde_json::from_value(json!({ "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": "100%" } }))
            .unwrap(),
    );
    assert_eq!(deleted(&pass(&wider, &nodes, &all_ready)).len(), 3);
    let mut on_delete = new.clone();
    on_delete.spec.as_mut().unwrap().update_strategy =
        Some(serde_json::from_value(json!({ "type": "OnDelete" })).unwrap());
    assert!(deleted(&pass(&on_delete, &nodes, &all_ready)).is_empty());
    // Updated everywhere: the status says so.
    let done = [pod(&new, "n1", 2, true), pod(&new, "n2", 2, true), pod(&new, "n3", 2, true)];
    let status = pass(&new, &nodes, &done).status.unwrap();
    assert_eq!(
        (
            status.desired_number_scheduled,
            status.updated_number_scheduled,
            status.number_available,
            status.number_ready
        ),
        (3, Some(3), Some(3), 3)
    );
}
