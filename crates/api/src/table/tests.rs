//! Table tests over realistic objects, checked against what kube-apiserver
//! 1.33 prints for the same objects.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::*;

fn now() -> Timestamp {
    "2024-05-01T12:00:00Z".parse().expect("valid timestamp")
}

/// `now` minus a duration, in the RFC 3339 form the API stores.
fn ago(d: SignedDuration) -> String {
    (now() - d).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

fn cells(kind: &str, object: &Value) -> Vec<Value> {
    let cells = row_cells(kind, object, now());
    assert_eq!(cells.len(), columns(kind).len(), "{kind}: one cell per column");
    cells
}

fn service(spec: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(mins(90))},
        "spec": spec,
    })
}

#[test]
fn human_duration_switches_units_at_kubernetes_boundaries() {
    let s = SignedDuration::from_secs;
    let h = SignedDuration::from_hours;
    let d = |days: i64| SignedDuration::from_hours(days * 24);
    for (dur, want) in [
        (s(-3), "<invalid>"),
        (s(-2), "<invalid>"),
        (SignedDuration::from_millis(-1500), "0s"),
        (s(0), "0s"),
        (s(5), "5s"),
        (s(119), "119s"),
        (s(120), "2m"),
        (s(123), "2m3s"),
        (s(9 * 60 + 59), "9m59s"),
        (mins(10), "10m"),
        (mins(179), "179m"),
        (mins(180), "3h"),
        (mins(185), "3h5m"),
        (mins(7 * 60 + 59), "7h59m"),
        (h(8), "8h"),
        (h(47), "47h"),
        (h(48), "2d"),
        (h(51), "2d3h"),
        (h(7 * 24 + 23), "7d23h"),
        (d(8), "8d"),
        (d(45), "45d"),
        (d(729), "729d"),
        (d(730), "2y"),
        (d(740), "2y10d"),
        (d(365 * 8), "8y"),
        (d(3000), "8y"),
    ] {
        assert_eq!(human_duration(dur), want, "{dur:?}");
    }
}

#[test]
fn nodeport_service_prints_node_ports_and_protocols() {
    let svc = service(json!({
        "type": "NodePort", "clusterIP": "10.96.12.34", "clusterIPs": ["10.96.12.34"],
        "selector": {"tier": "frontend", "app": "web"},
        "ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
        ]
    }));
    assert_eq!(
        cells("Service", &svc),
        vec![
            json!("web"),
            json!("NodePort"),
            json!("10.96.12.34"),
            json!("<none>"),
            json!("80:30080/TCP,443/TCP"),
            json!("90m"),
            json!("app=web,tier=frontend"),
        ]
    );
}

#[test]
fn headless_service_prints_cluster_ip_none() {
    let svc = service(json!({
        "type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
        "ports": [{"port": 5432, "protocol": "TCP"}]
    }));
    let c = cells("Service", &svc);
    assert_eq!(c[2], json!("None"));
    assert_eq!(c[3], json!("<none>"));
    assert_eq!(c[4], json!("5432/TCP"));
    assert_eq!(c[6], json!("<none>"), "no selector");
}

#[test]
fn loadbalancer_service_without_ingress_prints_pending() {
    let svc = service(json!({
        "type": "LoadBalancer", "clusterIPs": ["10.96.0.50"],
        "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]
    }));
    assert_eq!(cells("Service", &svc)[3], json!("<pending>"));
}

#[test]
fn loadbalancer_service_lists_ingress_points_then_external_ips() {
    let mut svc = service(json!({
        "type": "LoadBalancer", "clusterIPs": ["10.96.0.50"], "externalIPs": ["198.51.100.7"],
        "ports": [{"port": 80, "nodePort": 31000}]
    }));
    svc["status"] = json!({"loadBalancer": {"ingress": [
        {"ip": "203.0.113.20"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.10"}
    ]}});
    let c = cells("Service", &svc);
    assert_eq!(c[3], json!("203.0.113.10,203.0.113.20,lb.example.com,198.51.100.7"));
    assert_eq!(c[4], json!("80:31000/TCP"), "protocol defaults to TCP");
}

#[test]
fn externalname_service_prints_its_external_name() {
    let svc = service(json!({"type": "ExternalName", "externalName": "db.example.com"}));
    assert_eq!(
        cells("Service", &svc)[1..5],
        [json!("ExternalName"), json!("<none>"), json!("db.example.com"), json!("<none>")]
    );
}

#[test]
fn service_without_type_or_cluster_ips_uses_api_defaults() {
    let svc = service(json!({"clusterIP": "10.96.0.1", "ports": [{"port": 53, "protocol": "UDP"}]}));
    assert_eq!(
        cells("Service", &svc)[1..5],
        [json!("ClusterIP"), json!("10.96.0.1"), json!("<none>"), json!("53/UDP")]
    );
}

fn endpoints(ips: &[&str]) -> Value {
    let addresses: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    json!({
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(mins(5))},
        "subsets": [{"addresses": addresses, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]
    })
}

#[test]
fn endpoints_print_ip_port_pairs() {
    let ep = endpoints(&["10.244.1.39", "10.244.1.40", "10.244.2.33"]);
    assert_eq!(
        cells("Endpoints", &ep),
        vec![json!("web"), json!("10.244.1.39:80,10.244.1.40:80,10.244.2.33:80"), json!("5m")]
    );
}

#[test]
fn more_than_three_endpoints_are_summarized_with_a_count() {
    let ep = endpoints(&["10.244.1.39", "10.244.1.40", "10.244.2.33", "10.244.2.34"]);
    assert_eq!(cells("Endpoints", &ep)[1], json!("10.244.1.39:80,10.244.1.40:80,10.244.2.33:80 + 1 more..."));
}

#[test]
fn endpoints_without_subsets_print_none_and_ipv6_gets_brackets() {
    let empty = json!({"metadata": {"name": "web"}});
    assert_eq!(cells("Endpoints", &empty)[1..], [json!("<none>"), json!("<unknown>")]);
    let v6 = endpoints(&["fd00:10:244::5"]);
    assert_eq!(cells("Endpoints", &v6)[1], json!("[fd00:10:244::5]:80"));
    let headless =
        json!({"metadata": {"name": "h"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}]});
    assert_eq!(cells("Endpoints", &headless)[1], json!("10.0.0.1,10.0.0.2"));
}

#[test]
fn endpointslices_print_ports_and_addresses() {
    let slice = json!({
        "metadata": {"name": "web-abc12", "creationTimestamp": ago(mins(3))},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "all"}],
        "endpoints": [
            {"addresses": ["10.244.1.39"]}, {"addresses": ["10.244.1.40"]},
            {"addresses": ["10.244.2.33"]}, {"addresses": ["10.244.2.34"]}
        ]
    });
    assert_eq!(
        cells("EndpointSlice", &slice),
        vec![
            json!("web-abc12"),
            json!("IPv4"),
            json!("80,all"),
            json!("10.244.1.39,10.244.1.40,10.244.2.33 + 1 more..."),
            json!("3m")
        ]
    );
    let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv6", "endpoints": []});
    assert_eq!(cells("EndpointSlice", &empty)[2..4], [json!("<unset>"), json!("<unset>")]);
}

#[test]
fn deployments_print_ready_over_desired() {
    let d = json!({
        "metadata": {"name": "web", "creationTimestamp": ago(SignedDuration::from_hours(26))},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.27"}, {"name": "sidecar", "image": "busybox"}
            ]}}
        },
        "status": {"replicas": 3, "readyReplicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
    });
    assert_eq!(
        cells("Deployment", &d),
        vec![
            json!("web"),
            json!("3/3"),
            json!(3),
            json!(3),
            json!("26h"),
            json!("nginx,sidecar"),
            json!("nginx:1.27,busybox"),
            json!("app=web")
        ]
    );
    let fresh = json!({"metadata": {"name": "new"}, "spec": {"template": {"spec": {"containers": []}}}});
    assert_eq!(cells("Deployment", &fresh)[1..4], [json!("0/1"), json!(0), json!(0)]);
}

#[test]
fn replicasets_print_counts_and_their_selector() {
    let rs = json!({
        "metadata": {"name": "web-7d4b9c8f5", "creationTimestamp": ago(mins(42))},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d4b9c8f5"}},
            "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}
        },
        "status": {"replicas": 2, "readyReplicas": 1}
    });
    assert_eq!(
        cells("ReplicaSet", &rs),
        vec![
            json!("web-7d4b9c8f5"),
            json!(2),
            json!(2),
            json!(1),
            json!("42m"),
            json!("nginx"),
            json!("nginx:1.27"),
            json!("app=web,pod-template-hash=7d4b9c8f5")
        ]
    );
}

fn pod(status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web-7d4b9c8f5-x2x7k", "namespace": "default",
            "labels": {"app": "web"}, "creationTimestamp": ago(mins(20))
        },
        "spec": {"nodeName": "worker-1", "containers": [{"name": "nginx", "image": "nginx:1.27"}]},
        "status": status,
    })
}

fn running(restarts: i64) -> Value {
    json!({
        "name": "nginx", "ready": true, "restartCount": restarts,
        "state": {"running": {"startedAt": ago(mins(5))}},
        "lastState": if restarts > 0 {
            json!({"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(mins(5))}})
        } else {
            json!({})
        }
    })
}

#[test]
fn running_pod_prints_ready_status_and_wide_columns() {
    let p = pod(json!({
        "phase": "Running", "podIP": "10.244.1.39", "podIPs": [{"ip": "10.244.1.39"}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [running(0)]
    }));
    assert_eq!(
        cells("Pod", &p),
        vec![
            json!("web-7d4b9c8f5-x2x7k"),
            json!("1/1"),
            json!("Running"),
            json!("0"),
            json!("20m"),
            json!("10.244.1.39"),
            json!("worker-1"),
            json!("<none>"),
            json!("<none>")
        ]
    );
}

#[test]
fn restarted_pod_prints_when_it_last_restarted() {
    let p = pod(json!({"phase": "Running", "containerStatuses": [running(3)]}));
    assert_eq!(cells("Pod", &p)[3], json!("3 (5m ago)"));
}

#[test]
fn crashing_container_reports_its_waiting_reason() {
    let p = pod(json!({
        "phase": "Running",
        "containerStatuses": [{
            "name": "nginx", "ready": false, "restartCount": 5,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(mins(2))}}
        }]
    }));
    assert_eq!(cells("Pod", &p)[1..4], [json!("0/1"), json!("CrashLoopBackOff"), json!("5 (2m ago)")]);
}

#[test]
fn pod_waiting_on_init_containers_prints_init_progress() {
    let mut p = pod(json!({
        "phase": "Pending",
        "initContainerStatuses": [
            {"name": "migrate", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "warm", "ready": false, "restartCount": 0, "state": {"running": {}}}
        ],
        "containerStatuses": [{"name": "nginx", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]
    }));
    p["spec"]["initContainers"] = json!([{"name": "migrate"}, {"name": "warm"}]);
    assert_eq!(cells("Pod", &p)[1..3], [json!("0/1"), json!("Init:1/2")]);

    p["status"]["initContainerStatuses"][1]["state"] = json!({"waiting": {"reason": "CrashLoopBackOff"}});
    assert_eq!(cells("Pod", &p)[2], json!("Init:CrashLoopBackOff"));

    p["status"]["initContainerStatuses"][1]["state"] = json!({"terminated": {"exitCode": 2}});
    assert_eq!(cells("Pod", &p)[2], json!("Init:ExitCode:2"));
}

#[test]
fn sidecar_init_containers_count_towards_ready() {
    let mut p = pod(json!({
        "phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
        "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 1, "state": {"running": {}}}],
        "containerStatuses": [running(0)]
    }));
    p["spec"]["initContainers"] = json!([{"name": "proxy", "restartPolicy": "Always"}]);
    assert_eq!(cells("Pod", &p)[1..4], [json!("2/2"), json!("Running"), json!("1")]);
}

#[test]
fn completed_pod_prints_completed_and_marks_the_row() {
    let p = pod(json!({
        "phase": "Succeeded",
        "containerStatuses": [{"name": "job", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]
    }));
    assert_eq!(cells("Pod", &p)[1..3], [json!("0/1"), json!("Completed")]);
    let t = table("Pod", &[&p], now(), IncludeObject::None, "", None);
    assert_eq!(
        t["rows"][0]["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
    );
}

#[test]
fn deleted_pods_print_terminating_or_unknown_on_lost_nodes() {
    let mut p = pod(json!({"phase": "Running", "containerStatuses": [running(0)]}));
    p["metadata"]["deletionTimestamp"] = json!(ago(mins(1)));
    assert_eq!(cells("Pod", &p)[2], json!("Terminating"));
    p["status"]["reason"] = json!("NodeLost");
    assert_eq!(cells("Pod", &p)[2], json!("Unknown"));
}

#[test]
fn pods_show_evictions_gates_and_readiness_gates() {
    let mut p = pod(json!({"phase": "Failed", "reason": "Evicted"}));
    assert_eq!(cells("Pod", &p)[2], json!("Evicted"));
    p = pod(
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
    );
    assert_eq!(cells("Pod", &p)[2], json!("SchedulingGated"));
    p["spec"]["readinessGates"] = json!([{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]);
    p["status"]["conditions"] = json!([{"type": "example.com/lb", "status": "True"}]);
    assert_eq!(cells("Pod", &p)[8], json!("1/2"));
}

#[test]
fn nodes_print_readiness_roles_and_system_info() {
    let node = json!({
        "metadata": {
            "name": "cp-1", "creationTimestamp": ago(SignedDuration::from_hours(24 * 3 + 4)),
            "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master", "kubernetes.io/hostname": "cp-1"}
        },
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname", "address": "cp-1"}],
            "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12 (bookworm)", "containerRuntimeVersion": "containerd://2.1.1"}
        }
    });
    assert_eq!(
        cells("Node", &node),
        vec![
            json!("cp-1"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,master"),
            json!("3d4h"),
            json!("v1.33.1"),
            json!("172.18.0.2"),
            json!("<none>"),
            json!("Debian GNU/Linux 12 (bookworm)"),
            json!("<unknown>"),
            json!("containerd://2.1.1")
        ]
    );
    let bare = json!({"metadata": {"name": "n"}});
    assert_eq!(cells("Node", &bare)[1..3], [json!("Unknown"), json!("<none>")]);
}

#[test]
fn events_print_object_source_and_counts() {
    let ev = json!({
        "metadata": {"name": "web.17c8a3b2", "namespace": "default"},
        "involvedObject": {"kind": "Deployment", "name": "web", "fieldPath": "spec.containers{nginx}"},
        "reason": "ScalingReplicaSet", "message": "Scaled up replica set web-7d4b9c8f5 to 3\n",
        "source": {"component": "deployment-controller"},
        "firstTimestamp": ago(mins(30)), "lastTimestamp": ago(mins(2)), "count": 4, "type": "Normal"
    });
    assert_eq!(
        cells("Event", &ev),
        vec![
            json!("2m"),
            json!("Normal"),
            json!("ScalingReplicaSet"),
            json!("deployment/web"),
            json!("spec.containers{nginx}"),
            json!("deployment-controller"),
            json!("Scaled up replica set web-7d4b9c8f5 to 3"),
            json!("30m"),
            json!(4),
            json!("web.17c8a3b2")
        ]
    );
    let new_style = json!({
        "metadata": {"name": "e2"},
        "involvedObject": {"kind": "Node"},
        "eventTime": "2024-05-01T11:59:30.000000Z",
        "reportingComponent": "kubelet", "reportingInstance": "worker-1",
        "series": {"count": 7, "lastObservedTime": "2024-05-01T11:59:50.000000Z"},
        "type": "Warning"
    });
    let c = cells("Event", &new_style);
    assert_eq!(c[0], json!("10s"));
    assert_eq!(c[3], json!("node"));
    assert_eq!(c[5], json!("kubelet, worker-1"));
    assert_eq!(c[7], json!("30s"));
    assert_eq!(c[8], json!(7));
}

#[test]
fn secrets_and_configmaps_count_their_keys_as_integers() {
    let secret =
        json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
    assert_eq!(cells("Secret", &secret)[1..3], [json!("kubernetes.io/tls"), json!(2)]);
    let cm = json!({"metadata": {"name": "cfg"}, "data": {"a": "1"}, "binaryData": {"b": "AA=="}});
    assert_eq!(cells("ConfigMap", &cm)[1], json!(2));
    let ns =
        json!({"metadata": {"name": "kube-system", "creationTimestamp": ago(mins(3))}, "status": {"phase": "Active"}});
    assert_eq!(cells("Namespace", &ns), vec![json!("kube-system"), json!("Active"), json!("3m")]);
}

#[test]
fn ingresses_print_class_hosts_address_and_ports() {
    let ing = json!({
        "metadata": {"name": "web", "creationTimestamp": ago(mins(12))},
        "spec": {
            "ingressClassName": "svcnet",
            "tls": [{"hosts": ["a.example.com"], "secretName": "tls"}],
            "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}, {}, {"host": "c.example.com"}, {"host": "d.example.com"}]
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "172.18.0.10"}]}}
    });
    assert_eq!(
        cells("Ingress", &ing),
        vec![
            json!("web"),
            json!("svcnet"),
            json!("a.example.com,b.example.com,c.example.com + 2 more..."),
            json!("172.18.0.10"),
            json!("80, 443"),
            json!("12m")
        ]
    );
    let bare = json!({"metadata": {"name": "catch-all"}, "spec": {"defaultBackend": {}}});
    assert_eq!(cells("Ingress", &bare)[1..5], [json!("<none>"), json!("*"), json!(""), json!("80")]);
}

#[test]
fn ingress_classes_print_controller_and_parameters() {
    let ic = json!({
        "metadata": {"name": "svcnet"},
        "spec": {"controller": "svcnet.dev/ingress", "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}
    });
    assert_eq!(
        cells("IngressClass", &ic)[1..3],
        [json!("svcnet.dev/ingress"), json!("IngressParameters.k8s.example.com/external-lb")]
    );
    let plain = json!({"metadata": {"name": "x"}, "spec": {"controller": "c"}});
    assert_eq!(cells("IngressClass", &plain)[2], json!("<none>"));
}

#[test]
fn unknown_kinds_get_name_and_created_at() {
    let obj = json!({"metadata": {"name": "thing", "creationTimestamp": "2024-04-30T08:15:00Z"}});
    assert_eq!(
        columns("Widget").iter().map(|c| (c.name, c.type_)).collect::<Vec<_>>(),
        [("Name", "string"), ("Created At", "date")]
    );
    assert_eq!(row_cells("Widget", &obj, now()), vec![json!("thing"), json!("2024-04-30T08:15:00Z")]);
    assert_eq!(row_cells("Widget", &json!({}), now())[1], json!("0001-01-01T00:00:00Z"));
}

#[test]
fn column_definitions_serialize_like_metav1() {
    let defs = serde_json::to_value(columns("Service")).expect("serializes");
    assert_eq!(defs[0]["name"], "Name");
    assert_eq!(defs[0]["format"], "name");
    assert_eq!(
        defs[2],
        json!({
            "name": "Cluster-IP", "type": "string", "format": "",
            "description": SERVICE_CLUSTER_IP_DESCRIPTION, "priority": 0
        })
    );
    assert_eq!(defs[6]["priority"], 1);
    let names: Vec<&str> = columns("Pod").iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]
    );
    let names: Vec<&str> = columns("Event").iter().filter(|c| c.priority == 0).map(|c| c.name).collect();
    assert_eq!(names, ["Last Seen", "Type", "Reason", "Object", "Message"]);
}

const SERVICE_CLUSTER_IP_DESCRIPTION: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";

#[test]
fn tables_carry_partial_object_metadata_by_default() {
    let svc =
        service(json!({"type": "ClusterIP", "clusterIPs": ["10.96.0.10"], "ports": [{"port": 53, "protocol": "UDP"}]}));
    let t = table("Service", &[&svc], now(), IncludeObject::Metadata, "12345", Some("next-page"));
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"], json!({"resourceVersion": "12345", "continue": "next-page"}));
    assert_eq!(t["columnDefinitions"].as_array().map(Vec::len), Some(7));
    assert_eq!(
        t["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": svc["metadata"]})
    );
    assert!(t["rows"][0].get("conditions").is_none());
}

#[test]
fn tables_can_include_whole_objects_or_none() {
    let cm = json!({"metadata": {"name": "cfg", "namespace": "default"}, "data": {}});
    let t = table("ConfigMap", &[&cm], now(), IncludeObject::Object, "", None);
    let obj = &t["rows"][0]["object"];
    assert_eq!(obj["kind"], "ConfigMap");
    assert_eq!(obj["apiVersion"], "v1");
    assert_eq!(obj["metadata"]["name"], "cfg");
    assert_eq!(t["metadata"], json!({}));

    let t = table("ConfigMap", &[&cm], now(), IncludeObject::None, "", None);
    assert_eq!(t["rows"][0], json!({"cells": ["cfg", 0, "<unknown>"], "object": null}));

    let t = table_with(
        "ConfigMap",
        &[],
        now(),
        &TableOptions { no_headers: true, remaining_item_count: Some(4), ..Default::default() },
    );
    assert_eq!(t["columnDefinitions"], Value::Null);
    assert_eq!(t["rows"], json!([]));
    assert_eq!(t["metadata"], json!({"remainingItemCount": 4}));
}

#[test]
fn include_object_query_values_parse_like_kube_apiserver() {
    assert_eq!(IncludeObject::from_query(None), Ok(IncludeObject::Metadata));
    assert_eq!(IncludeObject::from_query(Some("")), Ok(IncludeObject::Metadata));
    assert_eq!(IncludeObject::from_query(Some("Object")), Ok(IncludeObject::Object));
    assert_eq!(IncludeObject::from_query(Some("None")), Ok(IncludeObject::None));
    assert_eq!(
        IncludeObject::from_query(Some("all")).map_err(|e| e.to_string()),
        Err("unrecognized includeObject value: \"all\"".to_string())
    );
}

#[test]
fn every_served_kind_has_a_printer_with_one_cell_per_column() {
    for r in resources::RESOURCES {
        assert_ne!(columns(r.kind).len(), 2, "{} falls back to the generic table", r.kind);
        let cells = row_cells(r.kind, &json!({"metadata": {"name": "x"}}), now());
        assert_eq!(cells.len(), columns(r.kind).len(), "{}", r.kind);
    }
}
