//! The Endpoints controller's reconcile logic, scenario by scenario: the
//! seeds' setups first, then the rules of `syncService` one at a time.

mod endpoints_fixtures;

use endpoints_fixtures::*;
use k8s_openapi::api::core::v1::{Endpoints, ObjectReference};
use serde_json::json;
use svcnet_controllers::endpoints::*;

fn desired(service: &k8s_openapi::api::core::v1::Service, pods: &[k8s_openapi::api::core::v1::Pod]) -> Endpoints {
    desired_endpoints(service, &refs(pods), None, None).expect("the service is managed")
}

#[test]
fn seed_three_nginx_pods_behind_service_clusterip_form_one_subset_with_three_addresses() {
    let endpoints = desired(&service_clusterip(), &seed_pods());

    assert_eq!(describe_endpoints(&endpoints), "10.244.1.39:80,10.244.1.40:80,10.244.2.33:80");
    assert_eq!(endpoints.metadata.name.as_deref(), Some("service-clusterip"));
    assert_eq!(endpoints.metadata.namespace.as_deref(), Some("dev"));
    let subsets = endpoints.subsets.as_deref().unwrap_or_default();
    assert_eq!(subsets.len(), 1);
    let port = &subsets[0].ports.as_deref().unwrap_or_default()[0];
    assert_eq!((port.name.as_deref(), port.port, port.protocol.as_deref()), (None, 80, Some("TCP")));
    let first = &subsets[0].addresses.as_deref().unwrap_or_default()[0];
    assert_eq!(first.node_name.as_deref(), Some("node1"));
    assert_eq!(first.hostname, None);
    assert_eq!(
        first.target_ref,
        Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some("dev".into()),
            name: Some("pc-deployment-66cb59b984-wnncx".into()),
            uid: Some("uid-pc-deployment-66cb59b984-wnncx".into()),
            ..Default::default()
        })
    );
    // The service has no labels and a cluster IP: no labels at all.
    assert_eq!(endpoints.metadata.labels, None);
    assert_eq!(endpoints.metadata.annotations, None);
}

#[test]
fn seed_headless_service_lists_the_same_addresses_and_carries_the_headless_label() {
    let endpoints = desired(&service_headliness(), &seed_pods());
    assert_eq!(describe_endpoints(&endpoints), "10.244.1.39:80,10.244.1.40:80,10.244.2.33:80");
    let labels = endpoints.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get(HEADLESS_LABEL).map(String::as_str), Some(""));
}

#[test]
fn seed_multi_port_service_with_named_ports_lists_both_ports_per_pod() {
    // The seeds' `my-service`: http 80→9376 and https 443→9377.
    let svc = service(json!({
        "metadata": {"name": "my-service", "namespace": "dev", "uid": "u"},
        "spec": {
            "selector": {"app": "nginx-pod"},
            "clusterIP": "10.96.100.1",
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 9376},
                {"name": "https", "protocol": "TCP", "port": 443, "targetPort": 9377}
            ]
        }
    }));
    let endpoints = desired(&svc, &seed_pods());
    let subsets = endpoints.subsets.as_deref().unwrap_or_default();
    assert_eq!(subsets.len(), 1, "both ports are served by the same pods");
    let ports: Vec<(Option<&str>, i32)> =
        subsets[0].ports.iter().flatten().map(|p| (p.name.as_deref(), p.port)).collect();
    assert_eq!(ports, [(Some("http"), 9376), (Some("https"), 9377)]);
    assert_eq!(
        describe_endpoints(&endpoints),
        "10.244.1.39:9376,10.244.1.40:9376,10.244.2.33:9376,10.244.1.39:9377,10.244.1.40:9377,10.244.2.33:9377"
    );
}

fn named_port_service(ports: serde_json::Value) -> k8s_openapi::api::core::v1::Service {
    service(json!({
        "metadata": {"name": "web", "namespace": "dev", "uid": "u"},
        "spec": {"selector": {"app": "nginx-pod"}, "clusterIP": "10.96.0.50", "ports": ports}
    }))
}

#[test]
fn named_target_port_resolves_per_pod_to_each_pods_container_port() {
    let svc = named_port_service(json!([{"name": "web", "port": 80, "targetPort": "http"}]));
    let pods = [
        pod("a").ip("10.244.1.10").node("node1").container_ports(&[("http", 8080, "TCP")]).build(),
        pod("b").ip("10.244.1.11").node("node1").container_ports(&[("http", 9090, "TCP")]).build(),
    ];
    let endpoints = desired(&svc, &pods);
    let subsets = endpoints.subsets.as_deref().unwrap_or_default();
    assert_eq!(subsets.len(), 2, "different resolved ports, different subsets");
    assert_eq!(describe_endpoints(&endpoints), "10.244.1.10:8080,10.244.1.11:9090");
    for subset in subsets {
        assert_eq!(subset.ports.as_deref().unwrap_or_default()[0].name.as_deref(), Some("web"));
    }
}

#[test]
fn named_target_port_resolution_table() {
    // (service port protocol, target port, container ports, expected)
    let cases: &[(&str, serde_json::Value, &[(&str, i32, &str)], Option<i32>)] = &[
        ("TCP", json!(8000), &[], Some(8000)),
        ("TCP", json!("http"), &[("http", 8080, "TCP")], Some(8080)),
        ("TCP", json!("http"), &[("metrics", 9100, "TCP"), ("http", 8081, "TCP")], Some(8081)),
        ("TCP", json!("dns"), &[("dns", 53, "UDP")], None),
        ("UDP", json!("dns"), &[("dns", 53, "TCP"), ("dns", 5353, "UDP")], Some(5353)),
        ("TCP", json!("missing"), &[("http", 8080, "TCP")], None),
    ];
    for (protocol, target, container_ports, expected) in cases {
        let svc = named_port_service(json!([{"port": 80, "protocol": protocol, "targetPort": target}]));
        let service_port = &svc.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default()[0];
        let pod = pod("p").ip("10.0.0.1").container_ports(container_ports).build();
        assert_eq!(resolve_target_port(service_port, &pod), *expected, "{protocol} {target} {container_ports:?}");
    }
}

#[test]
fn an_unset_target_port_means_the_service_port() {
    let svc = named_port_service(json!([{"port": 8443}]));
    let service_port = &svc.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default()[0];
    assert_eq!(resolve_target_port(service_port, &pod("p").build()), Some(8443));
}

#[test]
fn a_pod_missing_a_named_port_is_left_out_of_that_port_only() {
    let svc = named_port_service(json!([
        {"name": "http", "port": 80, "targetPort": 80},
        {"name": "metrics", "port": 9100, "targetPort": "metrics"}
    ]));
    let pods = [
        pod("a").ip("10.0.0.1").container_ports(&[("web", 80, "TCP"), ("metrics", 9100, "TCP")]).build(),
        pod("b").ip("10.0.0.2").container_ports(&[("web", 80, "TCP")]).build(),
    ];
    let endpoints = desired(&svc, &pods);
    let subsets = endpoints.subsets.as_deref().unwrap_or_default();
    // http is served by a and b, metrics by a alone.
    assert_eq!(subsets.len(), 2);
    assert_eq!(describe_endpoints(&endpoints), "10.0.0.1:80,10.0.0.2:80,10.0.0.1:9100");
}

#[test]
fn a_not_ready_pod_goes_to_not_ready_addresses() {
    let mut pods = seed_pods();
    pods[1] = pod("pc-deployment-66cb59b984-vx8vx").ip("10.244.2.33").node("node2").not_ready().build();
    let endpoints = desired(&service_clusterip(), &pods);
    assert_eq!(describe_endpoints(&endpoints), "10.244.1.39:80,10.244.1.40:80");
    assert_eq!(describe_not_ready(&endpoints), "10.244.2.33:80");
    assert_eq!(endpoints.subsets.map(|s| s.len()), Some(1), "one subset holds both lists");
}

#[test]
fn which_pods_appear_and_where() {
    // (pod, publishNotReadyAddresses, expected ready list, expected not-ready list)
    let base = || pod("p").node("node1");
    let cases = [
        ("ready", base().ip("10.0.0.1").build(), false, "10.0.0.1:80", ""),
        ("not ready", base().ip("10.0.0.1").not_ready().build(), false, "", "10.0.0.1:80"),
        ("no IP yet", base().build(), false, "", ""),
        ("succeeded", base().ip("10.0.0.1").phase("Succeeded").build(), false, "", ""),
        ("failed", base().ip("10.0.0.1").phase("Failed").build(), true, "", ""),
        ("terminating", base().ip("10.0.0.1").terminating().build(), false, "", ""),
        ("not ready, published", base().ip("10.0.0.1").not_ready().build(), true, "10.0.0.1:80", ""),
        ("terminating, published", base().ip("10.0.0.1").terminating().not_ready().build(), true, "10.0.0.1:80", ""),
        ("other namespace", base().ip("10.0.0.1").namespace("prod").build(), false, "", ""),
        ("other labels", base().ip("10.0.0.1").labels(&[("app", "other")]).build(), false, "", ""),
    ];
    for (what, pod, publish, ready, not_ready) in cases {
        let mut svc = service_clusterip();
        if let Some(spec) = svc.spec.as_mut() {
            spec.publish_not_ready_addresses = Some(publish);
        }
        let endpoints = desired(&svc, std::slice::from_ref(&pod));
        assert_eq!(describe_endpoints(&endpoints), ready, "{what}: ready");
        assert_eq!(describe_not_ready(&endpoints), not_ready, "{what}: not ready");
    }
}

#[test]
fn an_empty_selector_selects_every_pod_in_the_namespace() {
    let svc = service(json!({
        "metadata": {"name": "all", "namespace": "dev"},
        "spec": {"selector": {}, "clusterIP": "10.96.0.9", "ports": [{"port": 80}]}
    }));
    let pods = [
        pod("a").ip("10.0.0.1").labels(&[("app", "x")]).build(),
        pod("b").ip("10.0.0.2").labels(&[]).build(),
        pod("c").ip("10.0.0.3").namespace("prod").build(),
    ];
    assert_eq!(describe_endpoints(&desired(&svc, &pods)), "10.0.0.1:80,10.0.0.2:80");
}

#[test]
fn headless_service_pods_with_matching_subdomain_get_their_hostname() {
    let pods = [
        pod("web-0").ip("10.0.0.1").hostname("web-0", "service-headliness").build(),
        pod("web-1").ip("10.0.0.2").hostname("web-1", "elsewhere").build(),
        pod("web-2").ip("10.0.0.3").namespace("dev").build(),
    ];
    let endpoints = desired(&service_headliness(), &pods);
    let addresses = endpoints.subsets.unwrap_or_default().remove(0).addresses.unwrap_or_default();
    let hostnames: Vec<(&str, Option<&str>)> =
        addresses.iter().map(|a| (a.ip.as_str(), a.hostname.as_deref())).collect();
    assert_eq!(hostnames, [("10.0.0.1", Some("web-0")), ("10.0.0.2", None), ("10.0.0.3", None)]);
}

#[test]
fn a_headless_service_without_ports_lists_bare_addresses() {
    let svc = service(json!({
        "metadata": {"name": "bare", "namespace": "dev"},
        "spec": {"selector": {"app": "nginx-pod"}, "clusterIP": "None"}
    }));
    let endpoints = desired(&svc, &seed_pods());
    assert_eq!(describe_endpoints(&endpoints), "10.244.1.39,10.244.1.40,10.244.2.33");
    assert_eq!(endpoints.subsets.unwrap_or_default()[0].ports, None);
}

#[test]
fn a_service_with_a_cluster_ip_and_no_ports_gets_no_addresses() {
    let svc = service(json!({
        "metadata": {"name": "portless", "namespace": "dev"},
        "spec": {"selector": {"app": "nginx-pod"}, "clusterIP": "10.96.0.7"}
    }));
    assert_eq!(desired(&svc, &seed_pods()).subsets, None);
}

#[test]
fn selector_less_and_external_name_services_are_left_alone() {
    let selector_less = service(json!({
        "metadata": {"name": "my-service", "namespace": "dev"},
        "spec": {"clusterIP": "10.96.0.8", "ports": [{"protocol": "TCP", "port": 80, "targetPort": 9376}]}
    }));
    let external = service(json!({
        "metadata": {"name": "my-service", "namespace": "prod"},
        "spec": {"type": "ExternalName", "externalName": "my.database.example.com", "selector": {"app": "x"}}
    }));
    let hand_written = endpoints(json!({
        "metadata": {"name": "my-service", "namespace": "dev", "resourceVersion": "7"},
        "subsets": [{"addresses": [{"ip": "1.2.3.4"}], "ports": [{"port": 9376}]}]
    }));
    let pods = seed_pods();
    for svc in [&selector_less, &external] {
        assert_eq!(desired_endpoints(svc, &refs(&pods), Some(&hand_written), None), None);
        assert_eq!(reconcile_endpoints(svc, &refs(&pods), Some(&hand_written), None), None);
    }
}

#[test]
fn more_than_a_thousand_pods_are_truncated_with_the_over_capacity_annotation() {
    let pods = many_pods(1001);
    let endpoints = desired(&service_clusterip(), &pods);
    let total: usize = endpoints.subsets.iter().flatten().map(|s| s.addresses.as_ref().map_or(0, Vec::len)).sum();
    assert_eq!(total, MAX_ENDPOINTS_CAPACITY);
    let annotations = endpoints.metadata.annotations.unwrap_or_default();
    assert_eq!(annotations.get(OVER_CAPACITY_ANNOTATION).map(String::as_str), Some(OVER_CAPACITY_TRUNCATED));
}

#[test]
fn truncation_keeps_ready_addresses_before_not_ready_ones() {
    let mut pods = many_pods(1000);
    pods.extend((0..5).map(|i| pod(&format!("slow-{i}")).ip(&format!("10.250.0.{}", i + 1)).not_ready().build()));
    let endpoints = desired(&service_clusterip(), &pods);
    let count = |f: fn(&k8s_openapi::api::core::v1::EndpointSubset) -> usize| -> usize {
        endpoints.subsets.iter().flatten().map(f).sum()
    };
    assert_eq!(count(|s| s.addresses.as_ref().map_or(0, Vec::len)), 1000);
    assert_eq!(count(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len)), 0);
    assert!(endpoints.metadata.annotations.unwrap_or_default().contains_key(OVER_CAPACITY_ANNOTATION));
}

#[test]
fn exactly_a_thousand_pods_are_not_truncated() {
    let endpoints = desired(&service_clusterip(), &many_pods(1000));
    assert_eq!(endpoints.metadata.annotations, None);
}

/// What the API server would hand back after storing `endpoints`.
fn as_stored(mut endpoints: Endpoints, version: &str) -> Endpoints {
    endpoints.metadata.resource_version = Some(version.into());
    endpoints.metadata.uid = Some("ep-uid".into());
    endpoints
}

#[test]
fn the_first_sync_creates_and_an_unchanged_one_writes_nothing() {
    let svc = service_clusterip();
    let pods = seed_pods();
    let Some(EndpointsWrite::Create(created)) =
        reconcile_endpoints(&svc, &refs(&pods), None, Some(ts("2024-05-01T10:00:00Z")))
    else {
        panic!("the first sync creates the Endpoints");
    };
    let annotations = created.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations.get(LAST_CHANGE_TRIGGER_TIME_ANNOTATION).map(String::as_str), Some("2024-05-01T10:00:00Z"));

    let current = as_stored(created, "10");
    assert_eq!(reconcile_endpoints(&svc, &refs(&pods), Some(&current), None), None);
    // A new trigger time alone is no reason to write.
    assert_eq!(reconcile_endpoints(&svc, &refs(&pods), Some(&current), Some(ts("2024-05-02T00:00:00Z"))), None);
}

#[test]
fn pod_order_does_not_change_the_result() {
    let svc = service_clusterip();
    let mut pods = seed_pods();
    let forward = desired(&svc, &pods);
    pods.reverse();
    assert_eq!(desired(&svc, &pods), forward);
}

#[test]
fn a_removed_pod_updates_the_existing_object_in_place() {
    let svc = service_clusterip();
    let pods = seed_pods();
    let current = as_stored(desired(&svc, &pods), "10");
    let Some(EndpointsWrite::Update(updated)) = reconcile_endpoints(&svc, &refs(&pods[..2]), Some(&current), None)
    else {
        panic!("losing a pod is an update");
    };
    assert_eq!(describe_endpoints(&updated), "10.244.1.40:80,10.244.2.33:80");
    assert_eq!(updated.metadata.resource_version.as_deref(), Some("10"), "for compare-and-swap");
    assert_eq!(updated.metadata.uid.as_deref(), Some("ep-uid"));
}

#[test]
fn endpoints_equal_ignores_target_resource_versions_and_metadata_noise() {
    let svc = service_clusterip();
    let a = desired(&svc, &seed_pods());
    let mut b = as_stored(a.clone(), "99");
    for subset in b.subsets.iter_mut().flatten() {
        for address in subset.addresses.iter_mut().flatten() {
            if let Some(target) = address.target_ref.as_mut() {
                target.resource_version = Some("12345".into());
            }
        }
    }
    b.metadata.annotations =
        Some([(LAST_CHANGE_TRIGGER_TIME_ANNOTATION.to_owned(), "2020-01-01T00:00:00Z".to_owned())].into());
    assert!(endpoints_equal(&a, &b));

    let mut relabelled = b.clone();
    relabelled.metadata.labels = Some([("team".to_owned(), "web".to_owned())].into());
    assert!(!endpoints_equal(&a, &relabelled));

    let mut flagged = b;
    flagged.metadata.annotations = Some([(OVER_CAPACITY_ANNOTATION.to_owned(), "truncated".to_owned())].into());
    assert!(!endpoints_equal(&a, &flagged));
}

#[test]
fn labels_follow_the_service_and_foreign_annotations_are_kept() {
    let mut svc = service_clusterip();
    svc.metadata.labels = Some([("app".to_owned(), "nginx".to_owned())].into());
    let existing = endpoints(json!({
        "metadata": {
            "name": "service-clusterip", "namespace": "dev", "resourceVersion": "3",
            "labels": {"stale": "yes"},
            "annotations": {"example.com/note": "keep me", "endpoints.kubernetes.io/over-capacity": "truncated"}
        }
    }));
    let Some(EndpointsWrite::Update(updated)) = reconcile_endpoints(&svc, &refs(&seed_pods()), Some(&existing), None)
    else {
        panic!("stale labels and subsets need an update");
    };
    assert_eq!(updated.metadata.labels, Some([("app".to_owned(), "nginx".to_owned())].into()));
    assert_eq!(updated.metadata.annotations, Some([("example.com/note".to_owned(), "keep me".to_owned())].into()));
}

#[test]
fn a_dual_stack_service_lists_its_primary_family_only() {
    let svc = service(json!({
        "metadata": {"name": "dual", "namespace": "dev"},
        "spec": {"selector": {"app": "nginx-pod"}, "clusterIP": "fd00::10", "clusterIPs": ["fd00::10", "10.96.0.10"],
                 "ipFamilies": ["IPv6", "IPv4"], "ports": [{"port": 80}]}
    }));
    let pods = [
        pod("a").ips(&["10.244.1.5", "fd00:244:1::5"]).build(),
        pod("b").ip("10.244.1.6").build(), // single-stack: no IPv6, left out
    ];
    assert_eq!(describe_endpoints(&desired(&svc, &pods)), "fd00:244:1::5:80");
}
