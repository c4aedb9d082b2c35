//! Table tests of the filters, the failure message and spreading.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, Node, NodeAffinity, NodeCondition, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, NodeSpec, NodeStatus, Pod, PodSpec, PodStatus, ResourceRequirements, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect()
}

/// A Ready node with 4 cpus, 8Gi of memory and room for 110 pods.
fn node(name: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(map(&[("kubernetes.io/hostname", name)])),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            allocatable: Some(quantities(&[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")])),
            capacity: Some(quantities(&[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")])),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

fn pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta { name: Some(name.into()), namespace: Some("default".into()), ..Default::default() },
        spec: Some(PodSpec {
            containers: vec![Container { name: "c".into(), image: Some("nginx".into()), ..Default::default() }],
            ..Default::default()
        }),
        status: Some(PodStatus { phase: Some("Pending".into()), ..Default::default() }),
    }
}

fn on(mut p: Pod, node: &str) -> Pod {
    p.spec.get_or_insert_with(Default::default).node_name = Some(node.into());
    p
}

fn owned_by(mut p: Pod, uid: &str) -> Pod {
    p.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: format!("rs-{uid}"),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    p
}

fn requesting(mut p: Pod, cpu: &str, memory: &str) -> Pod {
    let spec = p.spec.get_or_insert_with(Default::default);
    spec.containers[0].resources = Some(ResourceRequirements {
        requests: Some(quantities(&[("cpu", cpu), ("memory", memory)])),
        ..Default::default()
    });
    p
}

fn with_host_port(mut p: Pod, port: i32, ip: Option<&str>, protocol: Option<&str>) -> Pod {
    let spec = p.spec.get_or_insert_with(Default::default);
    spec.containers[0].ports = Some(vec![ContainerPort {
        container_port: 80,
        host_port: Some(port),
        host_ip: ip.map(str::to_string),
        protocol: protocol.map(str::to_string),
        ..Default::default()
    }]);
    p
}

fn tolerating(mut p: Pod, key: Option<&str>, operator: &str, value: Option<&str>, effect: Option<&str>) -> Pod {
    let spec = p.spec.get_or_insert_with(Default::default);
    spec.tolerations.get_or_insert_with(Vec::new).push(Toleration {
        key: key.map(str::to_string),
        operator: Some(operator.into()),
        value: value.map(str::to_string),
        effect: effect.map(str::to_string),
        toleration_seconds: None,
    });
    p
}

fn tainted(mut n: Node, key: &str, value: Option<&str>, effect: &str) -> Node {
    n.spec.get_or_insert_with(Default::default).taints.get_or_insert_with(Vec::new).push(Taint {
        key: key.into(),
        value: value.map(str::to_string),
        effect: effect.into(),
        time_added: None,
    });
    n
}

fn labelled(mut n: Node, pairs: &[(&str, &str)]) -> Node {
    n.metadata.labels.get_or_insert_with(BTreeMap::new).extend(map(pairs));
    n
}

fn requiring(mut p: Pod, terms: Vec<NodeSelectorTerm>) -> Pod {
    p.spec.get_or_insert_with(Default::default).affinity = Some(Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector { node_selector_terms: terms }),
            ..Default::default()
        }),
        ..Default::default()
    });
    p
}

fn expr(key: &str, operator: &str, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.into(),
        operator: operator.into(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
    }
}

fn term(expressions: Vec<NodeSelectorRequirement>, fields: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: (!expressions.is_empty()).then_some(expressions),
        match_fields: (!fields.is_empty()).then_some(fields),
    }
}

/// Where `p` goes among `nodes` with `bound` already placed.
fn place(p: &Pod, nodes: &[Node], bound: &[Pod]) -> Result<String, String> {
    Snapshot::new(nodes, bound).schedule(p).map_err(|e| e.to_string())
}

#[test]
fn only_unbound_live_pods_for_the_default_scheduler_are_scheduled() {
    let mut other_scheduler = pod("a");
    other_scheduler.spec.get_or_insert_with(Default::default).scheduler_name = Some("custom".into());
    let mut named_default = pod("b");
    named_default.spec.get_or_insert_with(Default::default).scheduler_name = Some(DEFAULT_SCHEDULER_NAME.into());
    let mut deleting = pod("c");
    deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    let mut done = pod("d");
    done.status = Some(PodStatus { phase: Some("Succeeded".into()), ..Default::default() });
    let mut gated = pod("e");
    gated.spec.get_or_insert_with(Default::default).scheduling_gates =
        Some(vec![k8s_openapi::api::core::v1::PodSchedulingGate { name: "example.com/wait".into() }]);
    let cases = [
        (pod("p"), true),
        (named_default, true),
        (gated, false),
        (on(pod("p"), "n1"), false),
        (other_scheduler, false),
        (deleting, false),
        (done, false),
    ];
    for (p, want) in cases {
        assert_eq!(wants_scheduling(&p), want, "{:?}", p.metadata.name);
    }
}

#[test]
fn each_filter_rules_a_node_out_with_kubes_reason() {
    let full = |n: Node| {
        let mut n = n;
        n.status.get_or_insert_with(Default::default).allocatable =
            Some(quantities(&[("cpu", "4"), ("memory", "8Gi"), ("pods", "1")]));
        n
    };
    let not_ready = |status: &str| {
        let mut n = node("n1");
        n.status.get_or_insert_with(Default::default).conditions =
            Some(vec![NodeCondition { type_: "Ready".into(), status: status.into(), ..Default::default() }]);
        n
    };
    let mut cordoned = node("n1");
    cordoned.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
    let cases: Vec<(&str, Pod, Node, Vec<Pod>, &str)> = vec![
        ("cordoned", pod("p"), cordoned.clone(), vec![], "0/1 nodes are available: 1 node(s) were unschedulable."),
        (
            "not ready",
            pod("p"),
            not_ready("False"),
            vec![],
            "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }.",
        ),
        (
            "unreachable",
            pod("p"),
            not_ready("Unknown"),
            vec![],
            "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }.",
        ),
        (
            "tainted",
            pod("p"),
            tainted(node("n1"), "dedicated", Some("gpu"), "NoSchedule"),
            vec![],
            "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}.",
        ),
        (
            "no execute",
            pod("p"),
            tainted(node("n1"), "evict", None, "NoExecute"),
            vec![],
            "0/1 nodes are available: 1 node(s) had untolerated taint {evict: }.",
        ),
        (
            "node selector",
            {
                let mut p = pod("p");
                p.spec.get_or_insert_with(Default::default).node_selector = Some(map(&[("disk", "ssd")]));
                p
            },
            labelled(node("n1"), &[("disk", "hdd")]),
            vec![],
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
        ),
        (
            "affinity",
            requiring(pod("p"), vec![term(vec![expr("zone", "In", &["a"])], vec![])]),
            labelled(node("n1"), &[("zone", "b")]),
            vec![],
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
        ),
        (
            "host port",
            with_host_port(pod("p"), 8080, None, None),
            node("n1"),
            vec![on(with_host_port(pod("q"), 8080, None, None), "n1")],
            "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.",
        ),
        (
            "pod count",
            pod("p"),
            full(node("n1")),
            vec![on(pod("q"), "n1")],
            "0/1 nodes are available: 1 Too many pods.",
        ),
        (
            "cpu",
            requesting(pod("p"), "3", "1Gi"),
            node("n1"),
            vec![on(requesting(pod("q"), "1500m", "1Gi"), "n1")],
            "0/1 nodes are available: 1 Insufficient cpu.",
        ),
        (
            "memory",
            requesting(pod("p"), "1", "5Gi"),
            node("n1"),
            vec![on(requesting(pod("q"), "1", "4Gi"), "n1")],
            "0/1 nodes are available: 1 Insufficient memory.",
        ),
        (
            "cpu and memory",
            requesting(pod("p"), "3", "5Gi"),
            node("n1"),
            vec![on(requesting(pod("q"), "2", "4Gi"), "n1")],
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.",
        ),
    ];
    for (what, p, n, bound, message) in cases {
        assert_eq!(place(&p, std::slice::from_ref(&n), &bound), Err(message.to_string()), "{what}");
    }
}

#[test]
fn the_first_failing_filter_is_the_only_reason_a_node_gives() {
    let mut n = tainted(node("n1"), "dedicated", Some("gpu"), "NoSchedule");
    n.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
    assert_eq!(place(&pod("p"), &[n], &[]), Err("0/1 nodes are available: 1 node(s) were unschedulable.".into()));
}

#[test]
fn tolerations_match_taints_by_key_value_and_effect() {
    let gpu = tainted(node("n1"), "dedicated", Some("gpu"), "NoSchedule");
    let cases = [
        (tolerating(pod("p"), Some("dedicated"), "Equal", Some("gpu"), Some("NoSchedule")), true),
        (tolerating(pod("p"), Some("dedicated"), "Equal", Some("gpu"), None), true),
        (tolerating(pod("p"), Some("dedicated"), "Exists", None, None), true),
        (tolerating(pod("p"), None, "Exists", None, None), true),
        (tolerating(pod("p"), Some("dedicated"), "Equal", Some("cpu"), None), false),
        (tolerating(pod("p"), Some("dedicated"), "Exists", None, Some("NoExecute")), false),
        (tolerating(pod("p"), Some("other"), "Exists", None, None), false),
    ];
    for (i, (p, fits)) in cases.into_iter().enumerate() {
        assert_eq!(place(&p, std::slice::from_ref(&gpu), &[]).is_ok(), fits, "case {i}");
    }
    // PreferNoSchedule taints never rule a node out.
    assert!(place(&pod("p"), &[tainted(node("n1"), "soft", None, "PreferNoSchedule")], &[]).is_ok());
    // Cordoned and NotReady nodes take pods tolerating their taints.
    let mut cordoned = node("n1");
    cordoned.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
    let p = tolerating(pod("p"), Some(TAINT_UNSCHEDULABLE), "Exists", None, Some("NoSchedule"));
    assert_eq!(place(&p, &[cordoned], &[]), Ok("n1".into()));
    let mut not_ready = node("n1");
    not_ready.status.get_or_insert_with(Default::default).conditions = None;
    let p = tolerating(pod("p"), Some(TAINT_NOT_READY), "Exists", None, None);
    assert_eq!(place(&p, &[not_ready], &[]), Ok("n1".into()));
}

#[test]
fn required_node_affinity_supports_every_operator_and_metadata_name() {
    let n = labelled(node("n1"), &[("zone", "a"), ("cores", "8")]);
    let cases = [
        (vec![term(vec![expr("zone", "In", &["a", "b"])], vec![])], true),
        (vec![term(vec![expr("zone", "In", &["b"])], vec![])], false),
        (vec![term(vec![expr("zone", "NotIn", &["b"])], vec![])], true),
        (vec![term(vec![expr("rack", "NotIn", &["b"])], vec![])], true),
        (vec![term(vec![expr("zone", "NotIn", &["a"])], vec![])], false),
        (vec![term(vec![expr("zone", "Exists", &[])], vec![])], true),
        (vec![term(vec![expr("rack", "Exists", &[])], vec![])], false),
        (vec![term(vec![expr("rack", "DoesNotExist", &[])], vec![])], true),
        (vec![term(vec![expr("zone", "DoesNotExist", &[])], vec![])], false),
        (vec![term(vec![expr("cores", "Gt", &["4"])], vec![])], true),
        (vec![term(vec![expr("cores", "Gt", &["8"])], vec![])], false),
        (vec![term(vec![expr("cores", "Lt", &["16"])], vec![])], true),
        (vec![term(vec![expr("zone", "Lt", &["16"])], vec![])], false),
        (vec![term(vec![expr("rack", "Gt", &["1"])], vec![])], false),
        (vec![term(vec![], vec![expr("metadata.name", "In", &["n1"])])], true),
        (vec![term(vec![], vec![expr("metadata.name", "NotIn", &["n1"])])], false),
        (vec![term(vec![], vec![expr("metadata.labels", "In", &["n1"])])], false),
        // Expressions within a term all hold; any one term will do.
        (vec![term(vec![expr("zone", "In", &["a"]), expr("cores", "Gt", &["10"])], vec![])], false),
        (vec![term(vec![expr("zone", "In", &["b"])], vec![]), term(vec![expr("zone", "In", &["a"])], vec![])], true),
        // An empty term matches nothing.
        (vec![term(vec![], vec![])], false),
    ];
    for (i, (terms, fits)) in cases.into_iter().enumerate() {
        let p = requiring(pod("p"), terms);
        assert_eq!(place(&p, std::slice::from_ref(&n), &[]).is_ok(), fits, "case {i}");
    }
    // nodeSelector and affinity must both match.
    let mut p = requiring(pod("p"), vec![term(vec![expr("zone", "In", &["a"])], vec![])]);
    p.spec.get_or_insert_with(Default::default).node_selector = Some(map(&[("zone", "b")]));
    assert!(place(&p, std::slice::from_ref(&n), &[]).is_err());
}

#[test]
fn host_ports_conflict_on_the_same_protocol_and_address() {
    let bound = [on(with_host_port(pod("q"), 80, Some("10.0.0.1"), Some("TCP")), "n1")];
    let cases = [
        (with_host_port(pod("p"), 80, Some("10.0.0.1"), None), false),
        (with_host_port(pod("p"), 80, None, None), false),
        (with_host_port(pod("p"), 80, Some("0.0.0.0"), Some("TCP")), false),
        (with_host_port(pod("p"), 80, Some("10.0.0.2"), None), true),
        (with_host_port(pod("p"), 80, None, Some("UDP")), true),
        (with_host_port(pod("p"), 81, None, None), true),
        (with_host_port(pod("p"), 0, None, None), true),
    ];
    for (i, (p, fits)) in cases.into_iter().enumerate() {
        assert_eq!(place(&p, &[node("n1")], &bound).is_ok(), fits, "case {i}");
    }
}

#[test]
fn requests_count_init_containers_sidecars_limits_and_overhead() {
    let mut p = requesting(pod("p"), "500m", "1Gi");
    let spec = p.spec.as_mut().expect("spec");
    let init = |cpu: &str, always: bool| Container {
        name: "i".into(),
        restart_policy: always.then(|| "Always".into()),
        resources: Some(ResourceRequirements { requests: Some(quantities(&[("cpu", cpu)])), ..Default::default() }),
        ..Default::default()
    };
    spec.init_containers = Some(vec![init("100m", true), init("2", false)]);
    spec.overhead = Some(quantities(&[("cpu", "10m")]));
    spec.containers.push(Container {
        name: "limited".into(),
        resources: Some(ResourceRequirements {
            limits: Some(quantities(&[("memory", "512Mi")])),
            ..Default::default()
        }),
        ..Default::default()
    });
    let r = pod_requests(&p);
    // The init container with the sidecar before it (2.1) beats the
    // sidecar with the containers (0.6); then the overhead.
    assert_eq!(r.milli_cpu, 2110);
    assert_eq!(r.memory, (1024 + 512) * 1024 * 1024);
}

#[test]
fn failure_messages_count_and_sort_reasons_across_nodes() {
    let mut cordoned = node("b");
    cordoned.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
    let mut p = pod("p");
    p.spec.get_or_insert_with(Default::default).node_selector = Some(map(&[("disk", "ssd")]));
    let nodes = [node("a"), cordoned, node("c")];
    assert_eq!(
        place(&p, &nodes, &[]),
        Err("0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match Pod's node affinity/selector."
            .into())
    );
    let nodes = [node("a"), {
        let mut n = node("b");
        n.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
        labelled(n, &[("disk", "ssd")])
    }];
    assert_eq!(
        place(&p, &nodes, &[]),
        Err("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) were unschedulable.".into())
    );
    assert_eq!(place(&p, &[], &[]), Err("no nodes available to schedule pods".into()));
}

#[test]
fn pods_of_one_controller_spread_across_nodes() {
    let nodes = [node("n1"), node("n2"), node("n3")];
    let mut snapshot = Snapshot::new(&nodes, &[]);
    let mut placed = BTreeMap::<String, usize>::new();
    for i in 0..9 {
        let p = owned_by(pod(&format!("web-{i}")), "rs-1");
        let node = snapshot.schedule(&p).expect("fits");
        snapshot.assume(&p, &node);
        *placed.entry(node).or_default() += 1;
    }
    assert_eq!(placed, BTreeMap::from([("n1".into(), 3), ("n2".into(), 3), ("n3".into(), 3)]));
}

#[test]
fn spreading_prefers_fewer_of_the_same_owner_over_fewer_pods() {
    let nodes = [node("n1"), node("n2")];
    // n1 has two unrelated pods; n2 has one of this pod's siblings.
    let bound = [on(pod("x"), "n1"), on(pod("y"), "n1"), on(owned_by(pod("web-0"), "rs-1"), "n2")];
    assert_eq!(place(&owned_by(pod("web-1"), "rs-1"), &nodes, &bound), Ok("n1".into()));
    // A pod without an owner spreads from pods with its labels.
    let mut labelled_pod = pod("a");
    labelled_pod.metadata.labels = Some(map(&[("app", "a")]));
    let bound = [on(pod("x"), "n1"), on(pod("y"), "n1"), on(labelled_pod.clone(), "n2")];
    assert_eq!(place(&labelled_pod, &nodes, &bound), Ok("n1".into()));
    // Otherwise the node with fewer pods wins, then the lighter one, then
    // the first name.
    let bound = [on(pod("x"), "n1")];
    assert_eq!(place(&pod("p"), &nodes, &bound), Ok("n2".into()));
    let bound = [on(requesting(pod("x"), "1", "1Gi"), "n1"), on(requesting(pod("y"), "2", "1Gi"), "n2")];
    assert_eq!(place(&pod("p"), &nodes, &bound), Ok("n1".into()));
    assert_eq!(place(&pod("p"), &nodes, &[]), Ok("n1".into()));
}

#[test]
fn finished_pods_and_pods_on_unknown_nodes_take_no_room() {
    let mut n = node("n1");
    n.status.get_or_insert_with(Default::default).allocatable =
        Some(quantities(&[("cpu", "1"), ("memory", "1Gi"), ("pods", "1")]));
    let mut done = on(requesting(pod("done"), "1", "1Gi"), "n1");
    done.status = Some(PodStatus { phase: Some("Failed".into()), ..Default::default() });
    let elsewhere = on(pod("elsewhere"), "gone");
    assert_eq!(place(&requesting(pod("p"), "1", "1Gi"), &[n], &[done, elsewhere]), Ok("n1".into()));
}

#[test]
fn allocatable_falls_back_to_capacity() {
    let mut n = node("n1");
    n.status.get_or_insert_with(Default::default).allocatable = None;
    assert_eq!(place(&requesting(pod("p"), "1", "1Gi"), &[n], &[]), Ok("n1".into()));
}
