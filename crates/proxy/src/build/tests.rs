use serde_json::json;

use super::*;

fn svc(v: serde_json::Value) -> Arc<Service> {
    Arc::new(serde_json::from_value(v).unwrap())
}

fn slice(v: serde_json::Value) -> Arc<EndpointSlice> {
    Arc::new(serde_json::from_value(v).unwrap())
}

fn node() -> NodeFacts {
    NodeFacts {
        node_name: "node1".into(),
        zone: None,
        node_ips: vec!["172.18.0.2".parse().unwrap()],
        cluster_cidr: "10.244.0.0/16".into(),
        service_cidr: "10.96.0.0/12".into(),
    }
}

fn ep(ip: &str, node: &str, ready: bool, serving: bool, terminating: bool) -> serde_json::Value {
    json!({"addresses": [ip], "nodeName": node, "conditions": {"ready": ready, "serving": serving, "terminating": terminating}})
}

#[test]
fn named_target_ports_resolve_per_endpoint_across_slices() {
    // Two pods expose the port named "http" on different numbers, so the
    // controller put them in two slices.
    let services = [svc(json!({
        "metadata": {"name": "web", "namespace": "dev"},
        "spec": {"clusterIP": "10.96.0.20", "ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "dns", "port": 53, "protocol": "UDP"}
        ]}
    }))];
    let slices = [
        slice(
            json!({"metadata": {"name": "web-a", "namespace": "dev", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 5353, "protocol": "UDP"}],
            "endpoints": [ep("10.244.1.5", "node1", true, true, false)]}),
        ),
        slice(
            json!({"metadata": {"name": "web-b", "namespace": "dev", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 9090, "protocol": "TCP"}],
            "endpoints": [ep("10.244.2.7", "node2", true, true, false)]}),
        ),
        // Another namespace's Service of the same name is not ours.
        slice(
            json!({"metadata": {"name": "web-x", "namespace": "prod", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 1, "protocol": "TCP"}],
            "endpoints": [ep("10.244.9.9", "node1", true, true, false)]}),
        ),
    ];
    let snap = snapshot(&services, &slices, &node());
    assert_eq!(snap.services.len(), 2);
    let dns = &snap.services[0];
    assert_eq!((dns.id().as_str(), dns.protocol, dns.port), ("dev/web:dns", Protocol::Udp, 53));
    assert_eq!(
        dns.endpoints.iter().map(|e| (e.ip.to_string(), e.port)).collect::<Vec<_>>(),
        [("10.244.1.5".to_string(), 5353)]
    );
    let http = &snap.services[1];
    let got: Vec<(String, u16, bool)> = http.endpoints.iter().map(|e| (e.ip.to_string(), e.port, e.local)).collect();
    assert_eq!(got, [("10.244.1.5".into(), 8080, true), ("10.244.2.7".into(), 9090, false)]);
}

#[test]
fn headless_and_external_name_services_program_nothing() {
    let services = [
        svc(
            json!({"metadata": {"name": "h", "namespace": "d"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
        ),
        svc(
            json!({"metadata": {"name": "x", "namespace": "d"}, "spec": {"type": "ExternalName", "externalName": "example.com"}}),
        ),
    ];
    assert!(snapshot(&services, &[], &node()).services.is_empty());
}

#[test]
fn service_types_and_options_carry_over() {
    let services = [svc(json!({
        "metadata": {"name": "lb", "namespace": "d"},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.30", "externalIPs": ["80.11.12.10"],
                 "sessionAffinity": "ClientIP", "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000,
                 "internalTrafficPolicy": "Local",
                 "ports": [{"port": 80, "nodePort": 30080}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.168.200.1"}]}}
    }))];
    let s = &snapshot(&services, &[], &node()).services[0];
    assert_eq!(s.node_port, Some(30080));
    assert_eq!(s.external_ips, ["80.11.12.10".parse::<Ipv4Addr>().unwrap()]);
    assert_eq!(s.load_balancer_ips, ["192.168.200.1".parse::<Ipv4Addr>().unwrap()]);
    assert_eq!(s.affinity, Affinity::ClientIp { timeout_seconds: DEFAULT_AFFINITY_TIMEOUT });
    assert!(s.external_local && s.internal_local);
    assert_eq!(s.health_check_node_port, Some(32000));
    assert!(s.is_external());

    // A ClusterIP Service keeps no node port even if one is written, and
    // Local external policy means nothing without an external address.
    let services = [svc(json!({
        "metadata": {"name": "c", "namespace": "d"},
        "spec": {"clusterIP": "10.96.0.31", "externalTrafficPolicy": "Local",
                 "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10}},
                 "ports": [{"port": 80, "nodePort": 30081}]}
    }))];
    let s = &snapshot(&services, &[], &node()).services[0];
    assert_eq!(s.node_port, None);
    assert!(!s.external_local && !s.is_external());
    assert_eq!(s.affinity, Affinity::ClientIp { timeout_seconds: 10 });
}

#[test]
fn terminating_endpoints_serve_only_when_nothing_is_ready_and_policies_filter_by_node() {
    let services = [svc(json!({
        "metadata": {"name": "w", "namespace": "d"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.40", "externalTrafficPolicy": "Local", "ports": [{"port": 80, "nodePort": 30090}]}
    }))];
    let mk = |eps: Vec<serde_json::Value>| {
        [slice(json!({"metadata": {"name": "w-1", "namespace": "d", "labels": {"kubernetes.io/service-name": "w"}},
            "addressType": "IPv4", "ports": [{"port": 8080, "protocol": "TCP"}], "endpoints": eps}))]
    };
    let ips = |v: Vec<&Endpoint>| v.iter().map(|e| e.ip.to_string()).collect::<Vec<_>>();

    let slices = mk(vec![
        ep("10.244.1.2", "node1", true, true, false),
        ep("10.244.2.2", "node2", true, true, false),
        ep("10.244.1.3", "node1", false, true, true),
    ]);
    let s = &snapshot(&services, &slices, &node()).services[0];
    assert_eq!(ips(s.cluster_endpoints()), ["10.244.1.2", "10.244.2.2"]);
    assert_eq!(ips(s.external_endpoints()), ["10.244.1.2"]);

    // Only terminating ones left: the serving ones carry the traffic.
    let slices = mk(vec![ep("10.244.1.3", "node1", false, true, true), ep("10.244.2.3", "node2", false, false, true)]);
    let s = &snapshot(&services, &slices, &node()).services[0];
    assert_eq!(ips(s.cluster_endpoints()), ["10.244.1.3"]);

    // Not ready and not terminating: nothing.
    let slices = mk(vec![ep("10.244.1.4", "node1", false, false, false)]);
    let s = &snapshot(&services, &slices, &node()).services[0];
    assert!(s.cluster_endpoints().is_empty());
}

#[test]
fn an_endpoint_in_two_slices_counts_once_with_its_best_state() {
    let services = [svc(
        json!({"metadata": {"name": "w", "namespace": "d"}, "spec": {"clusterIP": "10.96.0.50", "ports": [{"port": 80}]}}),
    )];
    let mk = |name: &str, ready: bool| {
        slice(json!({"metadata": {"name": name, "namespace": "d", "labels": {"kubernetes.io/service-name": "w"}},
            "addressType": "IPv4", "ports": [{"port": 80, "protocol": "TCP"}], "endpoints": [ep("10.244.1.2", "node1", ready, ready, false)]}))
    };
    let s = &snapshot(&services, &[mk("a", false), mk("b", true)], &node()).services[0];
    assert_eq!(s.endpoints.len(), 1);
    assert!(s.endpoints[0].ready);
}

#[test]
fn load_balancer_source_ranges_are_parsed_sorted_and_ipv4_only() {
    let lb = |kind: &str| {
        svc(json!({
            "metadata": {"name": "lb", "namespace": "dev"},
            "spec": {"type": kind, "clusterIP": "10.96.0.31",
                "loadBalancerSourceRanges": ["203.0.113.0/25", " 10.0.0.7/8 ", "2001:db8::/64", "10.0.0.0/8", "nonsense", "1.2.3.4"],
                "ports": [{"port": 443, "nodePort": 30443}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.9"}]}}
        }))
    };
    let snap = snapshot(&[lb("LoadBalancer")], &[], &node());
    let ranges: Vec<String> = snap.services[0].load_balancer_source_ranges.iter().map(|c| c.to_string()).collect();
    assert_eq!(ranges, ["10.0.0.0/8", "203.0.113.0/25"]);
    assert!(snap.services[0].has_source_ranges());
    assert!(snap.services[0].source_allowed("10.9.9.9".parse().unwrap()));
    assert!(!snap.services[0].source_allowed("172.18.0.3".parse().unwrap()));
    // Only a LoadBalancer Service's ranges count (validation forbids others).
    let snap = snapshot(&[lb("NodePort")], &[], &node());
    assert!(snap.services[0].load_balancer_source_ranges.is_empty());
}

#[test]
fn zone_hints_narrow_endpoints_to_the_nodes_zone_only_when_all_ready_ones_have_them() {
    let services = [svc(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 80}]}
    }))];
    let hinted = |ip: &str, node: &str, zone: Option<&str>| {
        let mut e = ep(ip, node, true, true, false);
        if let Some(z) = zone {
            e["hints"] = json!({"forZones": [{"name": z}]});
        }
        e
    };
    let ips = |endpoints: [serde_json::Value; 3], zone: Option<&str>| -> Vec<String> {
        let slices = [slice(json!({
            "metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints,
        }))];
        let node = NodeFacts { zone: zone.map(String::from), ..node() };
        snapshot(&services, &slices, &node).services[0].endpoints.iter().map(|e| e.ip.to_string()).collect()
    };
    let all = ["10.244.1.2", "10.244.2.2", "10.244.3.2"];
    let hinted_all = || {
        [
            hinted("10.244.1.2", "node4", Some("a")),
            hinted("10.244.2.2", "node2", Some("b")),
            hinted("10.244.3.2", "node3", Some("a")),
        ]
    };
    // In zone a: the endpoints hinted for a.
    assert_eq!(ips(hinted_all(), Some("a")), ["10.244.1.2", "10.244.3.2"]);
    assert_eq!(ips(hinted_all(), Some("b")), ["10.244.2.2"]);
    // No endpoint for the node's zone, a node without a zone, or one ready
    // endpoint without a hint: everything, as kube-proxy falls back.
    assert_eq!(ips(hinted_all(), Some("c")), all);
    assert_eq!(ips(hinted_all(), None), all);
    let one_unhinted = [
        hinted("10.244.1.2", "node4", Some("a")),
        hinted("10.244.2.2", "node2", None),
        hinted("10.244.3.2", "node3", Some("a")),
    ];
    assert_eq!(ips(one_unhinted, Some("a")), all);
    // A local endpoint hinted for another zone is kept (the Local
    // policies take local endpoints whatever their hints).
    let mut odd = hinted_all();
    odd[0] = hinted("10.244.1.2", "node1", Some("a"));
    assert_eq!(ips(odd, Some("b")), ["10.244.1.2", "10.244.2.2"]);
    // An unready endpoint without a hint does not turn topology off.
    let mut unready = hinted_all();
    unready[1] = ep("10.244.2.2", "node2", false, false, false);
    assert_eq!(ips(unready, Some("a")), ["10.244.1.2", "10.244.3.2"]);
}
