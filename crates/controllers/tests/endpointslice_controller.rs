//! The EndpointSlice controller's reconcile logic: slice contents for the
//! seeds' setups, then packing and churn across successive syncs, which the
//! tests simulate by feeding the written slices back as the existing ones.

mod endpoints_fixtures;

use endpoints_fixtures::*;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{EndpointConditions, EndpointSlice};
use serde_json::json;
use svcnet_controllers::endpoints::LAST_CHANGE_TRIGGER_TIME_ANNOTATION;
use svcnet_controllers::endpointslice::*;

fn zones(node: &str) -> Option<String> {
    match node {
        "node1" => Some("zone-a".into()),
        "node2" => Some("zone-b".into()),
        _ => None,
    }
}

fn reconcile(service: &Service, pods: &[Pod], existing: &[EndpointSlice]) -> SliceChanges {
    let existing: Vec<&EndpointSlice> = existing.iter().collect();
    reconcile_slices(service, &refs(pods), zones, &existing, DEFAULT_MAX_ENDPOINTS_PER_SLICE)
}

/// Runs a first sync and returns the slices as stored.
fn first_sync(service: &Service, pods: &[Pod]) -> Vec<EndpointSlice> {
    let changes = reconcile(service, pods, &[]);
    assert!(changes.update.is_empty() && changes.delete.is_empty());
    stored(&changes.create, 0)
}

fn label<'a>(slice: &'a EndpointSlice, key: &str) -> Option<&'a str> {
    slice.metadata.labels.as_ref().and_then(|l| l.get(key)).map(String::as_str)
}

#[test]
fn seed_three_nginx_pods_become_one_slice_with_three_ready_endpoints() {
    let changes = reconcile(&service_clusterip(), &seed_pods(), &[]);
    assert_eq!((changes.create.len(), changes.update.len(), changes.delete.len()), (1, 0, 0));
    let slice = &changes.create[0];

    assert_eq!(slice.metadata.generate_name.as_deref(), Some("service-clusterip-"));
    assert_eq!(slice.metadata.name, None);
    assert_eq!(slice.metadata.namespace.as_deref(), Some("dev"));
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(label(slice, SERVICE_NAME_LABEL), Some("service-clusterip"));
    assert_eq!(label(slice, MANAGED_BY_LABEL), Some("endpointslice-controller.k8s.io"));
    assert_eq!(label(slice, "service.kubernetes.io/headless"), None);
    let owner = &slice.metadata.owner_references.as_deref().unwrap_or_default()[0];
    assert_eq!(
        (owner.api_version.as_str(), owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("v1", "Service", "service-clusterip", "svc-uid-1")
    );
    assert_eq!((owner.controller, owner.block_owner_deletion), (Some(true), Some(true)));

    let ports = slice.ports.as_deref().unwrap_or_default();
    assert_eq!(ports.len(), 1);
    assert_eq!(
        (ports[0].name.as_deref(), ports[0].port, ports[0].protocol.as_deref()),
        (Some(""), Some(80), Some("TCP"))
    );

    assert_eq!(slice_addresses(slice), ["10.244.1.39", "10.244.1.40", "10.244.2.33"]);
    let first = &slice.endpoints[0];
    assert_eq!(
        first.conditions,
        Some(EndpointConditions { ready: Some(true), serving: Some(true), terminating: Some(false) })
    );
    assert_eq!(first.node_name.as_deref(), Some("node1"));
    assert_eq!(first.zone.as_deref(), Some("zone-a"));
    assert_eq!(first.hostname, None);
    let target = first.target_ref.as_ref().expect("pod endpoints point at their pod");
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert_eq!(target.name.as_deref(), Some("pc-deployment-66cb59b984-wnncx"));
    assert_eq!(target.uid.as_deref(), Some("uid-pc-deployment-66cb59b984-wnncx"));
}

#[test]
fn endpoint_conditions_follow_readiness_termination_and_publish_not_ready() {
    // (pod, publishNotReadyAddresses, expected ready, serving, terminating)
    let base = || pod("p").ip("10.0.0.1").node("node1");
    let cases = [
        ("ready", base().build(), false, (true, true, false)),
        ("not ready", base().not_ready().build(), false, (false, false, false)),
        ("terminating and still ready", base().terminating().build(), false, (false, true, true)),
        ("terminating, not ready", base().terminating().not_ready().build(), false, (false, false, true)),
        ("not ready, published", base().not_ready().build(), true, (true, false, false)),
        ("terminating, published", base().terminating().build(), true, (true, true, true)),
    ];
    for (what, pod, publish, (ready, serving, terminating)) in cases {
        let mut svc = service_clusterip();
        if let Some(spec) = svc.spec.as_mut() {
            spec.publish_not_ready_addresses = Some(publish);
        }
        let changes = reconcile(&svc, std::slice::from_ref(&pod), &[]);
        let endpoints = &changes.create[0].endpoints;
        assert_eq!(endpoints.len(), 1, "{what}: terminating pods stay in slices");
        assert_eq!(
            endpoints[0].conditions,
            Some(EndpointConditions { ready: Some(ready), serving: Some(serving), terminating: Some(terminating) }),
            "{what}"
        );
    }
}

#[test]
fn terminal_pods_and_pods_without_ips_get_no_endpoint() {
    let pods = [
        pod("done").ip("10.0.0.1").phase("Succeeded").build(),
        pod("crashed").ip("10.0.0.2").phase("Failed").build(),
        pod("pending").build(),
    ];
    let changes = reconcile(&service_clusterip(), &pods, &[]);
    // Only the placeholder: no pods, one empty slice.
    assert_eq!(changes.create.len(), 1);
    assert!(changes.create[0].endpoints.is_empty());
}

#[test]
fn two_hundred_fifty_pods_fill_three_slices_of_at_most_a_hundred() {
    let changes = reconcile(&service_clusterip(), &many_pods(250), &[]);
    let sizes: Vec<usize> = changes.create.iter().map(|s| s.endpoints.len()).collect();
    assert_eq!(sizes, [100, 100, 50]);
    let mut all: Vec<&str> = changes.create.iter().flat_map(slice_addresses).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 250, "every pod exactly once");
}

#[test]
fn unchanged_input_gives_no_changes() {
    for (what, svc, pods) in [
        ("seeds", service_clusterip(), seed_pods()),
        ("250 pods", service_clusterip(), many_pods(250)),
        ("headless", service_headliness(), seed_pods()),
        ("no pods", service_clusterip(), Vec::new()),
    ] {
        let slices = first_sync(&svc, &pods);
        let again = reconcile(&svc, &pods, &slices);
        assert!(again.is_empty(), "{what}: {again:?}");
    }
}

#[test]
fn equal_input_gives_equal_output_whatever_the_order() {
    let svc = service_clusterip();
    let mut pods = many_pods(250);
    let forward = reconcile(&svc, &pods, &[]);
    pods.reverse();
    assert_eq!(reconcile(&svc, &pods, &[]), forward);
}

#[test]
fn one_removed_pod_updates_exactly_one_slice() {
    let svc = service_clusterip();
    let mut pods = many_pods(250);
    let slices = first_sync(&svc, &pods);
    let gone = pods.remove(120);
    let gone_ip = gone.status.and_then(|s| s.pod_ip).unwrap_or_default();

    let changes = reconcile(&svc, &pods, &slices);
    assert_eq!((changes.create.len(), changes.update.len(), changes.delete.len()), (0, 1, 0));
    let updated = &changes.update[0];
    let before = slices.iter().find(|s| s.metadata.name == updated.metadata.name).expect("an existing slice");
    assert!(slice_addresses(before).contains(&gone_ip.as_str()));
    assert!(!slice_addresses(updated).contains(&gone_ip.as_str()));
    assert_eq!(updated.endpoints.len(), before.endpoints.len() - 1);
    assert_eq!(updated.metadata.resource_version.as_deref(), Some("1"), "updates carry the version read");
}

#[test]
fn a_changed_pod_updates_its_endpoint_in_place() {
    let svc = service_clusterip();
    let mut pods = many_pods(150);
    let slices = first_sync(&svc, &pods);
    pods[3] = pod("web-0003").ip("10.244.0.4").node("node0").not_ready().build();

    let changes = reconcile(&svc, &pods, &slices);
    assert_eq!((changes.create.len(), changes.update.len(), changes.delete.len()), (0, 1, 0));
    let endpoint = changes.update[0].endpoints.iter().find(|e| e.addresses == ["10.244.0.4"]).expect("still there");
    assert_eq!(endpoint.conditions.as_ref().and_then(|c| c.ready), Some(false));
}

#[test]
fn new_pods_go_into_a_slice_with_room_before_a_new_one_is_created() {
    let svc = service_clusterip();
    let pods = many_pods(150); // slices of 100 and 50
    let slices = first_sync(&svc, &pods);
    let more: Vec<Pod> = pods
        .iter()
        .cloned()
        .chain((0..10).map(|i| pod(&format!("extra-{i}")).ip(&format!("10.245.0.{}", i + 1)).node("node1").build()))
        .collect();

    let changes = reconcile(&svc, &more, &slices);
    assert_eq!((changes.create.len(), changes.update.len(), changes.delete.len()), (0, 1, 0));
    assert_eq!(changes.update[0].endpoints.len(), 60);
}

#[test]
fn new_pods_top_up_a_slice_that_is_written_anyway() {
    let svc = service_clusterip();
    let mut pods = many_pods(150);
    let slices = first_sync(&svc, &pods);
    // One pod of the full slice leaves and two arrive: the slice that is
    // updated anyway takes them, up to its capacity.
    pods.remove(0);
    pods.push(pod("extra-1").ip("10.245.0.1").build());
    pods.push(pod("extra-2").ip("10.245.0.2").build());

    let changes = reconcile(&svc, &pods, &slices);
    assert_eq!((changes.create.len(), changes.update.len(), changes.delete.len()), (0, 2, 0));
    let total: usize = changes.update.iter().map(|s| s.endpoints.len()).sum();
    assert_eq!(total, 151);
}

#[test]
fn successive_syncs_converge_to_no_changes() {
    let svc = service_clusterip();
    let mut pods = many_pods(230);
    let mut slices = first_sync(&svc, &pods);
    pods.drain(10..40);
    pods.extend(many_pods(300).into_iter().skip(250));
    let mut next_index = slices.len();
    for round in 0..3 {
        let changes = reconcile(&svc, &pods, &slices);
        if changes.is_empty() {
            let total: usize = slices.iter().map(|s| s.endpoints.len()).sum();
            assert_eq!(total, pods.len());
            assert!(slices.iter().all(|s| s.endpoints.len() <= DEFAULT_MAX_ENDPOINTS_PER_SLICE));
            return;
        }
        assert!(round < 2, "still changing after {round} rounds: {changes:?}");
        apply_updates(&mut slices, &changes.update);
        let deleted: Vec<_> = changes.delete.iter().map(|s| s.metadata.name.clone()).collect();
        slices.retain(|s| !deleted.contains(&s.metadata.name));
        slices.extend(stored(&changes.create, next_index));
        next_index += changes.create.len();
    }
}

#[test]
fn removing_every_pod_leaves_one_placeholder_slice() {
    let svc = service_clusterip();
    let slices = first_sync(&svc, &many_pods(150));
    let changes = reconcile(&svc, &[], &slices);
    // One slice is recycled into the placeholder, the other deleted.
    assert_eq!((changes.create.len(), changes.update.len(), changes.delete.len()), (0, 1, 1));
    assert!(changes.update[0].endpoints.is_empty());
    assert_eq!(changes.update[0].ports.as_deref().map(<[_]>::len), Some(0));
}

#[test]
fn a_dual_stack_service_gets_slices_per_family() {
    let svc = service(json!({
        "metadata": {"name": "dual", "namespace": "dev", "uid": "dual-uid"},
        "spec": {"selector": {"app": "nginx-pod"}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00::10"],
                 "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]}
    }));
    let pods = [
        pod("a").ips(&["10.244.1.5", "fd00:244:1::5"]).node("node1").build(),
        pod("b").ips(&["10.244.2.6", "FD00:244:2:0::6"]).node("node2").build(),
    ];
    let changes = reconcile(&svc, &pods, &[]);
    let mut by_family: Vec<(&str, Vec<&str>)> =
        changes.create.iter().map(|s| (s.address_type.as_str(), slice_addresses(s))).collect();
    by_family.sort();
    assert_eq!(
        by_family,
        [("IPv4", vec!["10.244.1.5", "10.244.2.6"]), ("IPv6", vec!["fd00:244:1::5", "fd00:244:2::6"])],
        "IPv6 addresses are written in canonical form"
    );
}

#[test]
fn slices_of_a_family_the_service_no_longer_has_are_deleted() {
    let svc = service_clusterip();
    let pods = seed_pods();
    let mut slices = first_sync(&svc, &pods);
    let mut v6 = slices[0].clone();
    v6.metadata.name = Some("service-clusterip-v6".into());
    v6.address_type = "IPv6".into();
    slices.push(v6);
    let changes = reconcile(&svc, &pods, &slices);
    assert!(changes.create.is_empty() && changes.update.is_empty());
    let deleted: Vec<_> = changes.delete.iter().map(|s| s.metadata.name.as_deref()).collect();
    assert_eq!(deleted, [Some("service-clusterip-v6")]);
}

#[test]
fn pods_resolving_a_named_port_differently_land_in_different_slices() {
    let svc = service(json!({
        "metadata": {"name": "web", "namespace": "dev", "uid": "web-uid"},
        "spec": {"selector": {"app": "nginx-pod"}, "clusterIP": "10.96.0.50",
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
    }));
    let pods = [
        pod("a").ip("10.0.0.1").container_ports(&[("http", 8080, "TCP")]).build(),
        pod("b").ip("10.0.0.2").container_ports(&[("http", 9090, "TCP")]).build(),
        pod("c").ip("10.0.0.3").container_ports(&[("http", 8080, "TCP")]).build(),
        pod("d").ip("10.0.0.4").container_ports(&[("other", 8080, "TCP")]).build(),
    ];
    let changes = reconcile(&svc, &pods, &[]);
    let mut slices: Vec<(Vec<(Option<&str>, Option<i32>)>, Vec<&str>)> = changes
        .create
        .iter()
        .map(|s| (s.ports.iter().flatten().map(|p| (p.name.as_deref(), p.port)).collect(), slice_addresses(s)))
        .collect();
    slices.sort();
    assert_eq!(
        slices,
        [
            (vec![], vec!["10.0.0.4"]),
            (vec![(Some("http"), Some(8080))], vec!["10.0.0.1", "10.0.0.3"]),
            (vec![(Some("http"), Some(9090))], vec!["10.0.0.2"]),
        ],
        "a pod resolving no port still gets an endpoint, in a slice without ports"
    );
}

#[test]
fn a_changed_target_port_recycles_the_old_slice_instead_of_delete_and_create() {
    let svc = service_clusterip();
    let pods = seed_pods();
    let slices = first_sync(&svc, &pods);
    let mut moved = svc.clone();
    if let Some(port) = moved.spec.as_mut().and_then(|s| s.ports.as_mut()).and_then(|p| p.first_mut()) {
        port.target_port = Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080));
    }
    let changes = reconcile(&moved, &pods, &slices);
    assert_eq!((changes.create.len(), changes.update.len(), changes.delete.len()), (0, 1, 0));
    let updated = &changes.update[0];
    assert_eq!(updated.metadata.name, slices[0].metadata.name);
    assert_eq!(updated.metadata.resource_version.as_deref(), Some("1"));
    assert_eq!(updated.ports.as_deref().unwrap_or_default()[0].port, Some(8080));
}

#[test]
fn headless_slices_carry_the_headless_label_and_hostnames() {
    let pods = [pod("web-0").ip("10.0.0.1").hostname("web-0", "service-headliness").build()];
    let changes = reconcile(&service_headliness(), &pods, &[]);
    let slice = &changes.create[0];
    assert_eq!(label(slice, "service.kubernetes.io/headless"), Some(""));
    assert_eq!(slice.endpoints[0].hostname.as_deref(), Some("web-0"));
}

#[test]
fn service_labels_are_copied_and_a_label_change_updates_every_slice() {
    let mut svc = service_clusterip();
    svc.metadata.labels =
        Some([("team".to_owned(), "web".to_owned()), (SERVICE_NAME_LABEL.to_owned(), "spoofed".to_owned())].into());
    let pods = many_pods(150);
    let slices = first_sync(&svc, &pods);
    assert_eq!(label(&slices[0], "team"), Some("web"));
    assert_eq!(
        label(&slices[0], SERVICE_NAME_LABEL),
        Some("service-clusterip"),
        "reserved labels are the controller's"
    );

    svc.metadata.labels = Some([("team".to_owned(), "platform".to_owned())].into());
    let changes = reconcile(&svc, &pods, &slices);
    assert_eq!((changes.create.len(), changes.update.len(), changes.delete.len()), (0, 2, 0));
    assert!(changes.update.iter().all(|s| label(s, "team") == Some("platform")));
}

#[test]
fn slices_of_a_previous_service_with_the_same_name_are_replaced() {
    let svc = service_clusterip();
    let pods = seed_pods();
    let old = first_sync(&svc, &pods);
    let mut recreated = svc.clone();
    recreated.metadata.uid = Some("svc-uid-new".into());
    let changes = reconcile(&recreated, &pods, &old);
    // The old slice is not ours to take over: the garbage collector's.
    assert_eq!((changes.create.len(), changes.update.len(), changes.delete.len()), (1, 0, 1));
    let owner = &changes.create[0].metadata.owner_references.as_deref().unwrap_or_default()[0];
    assert_eq!(owner.uid, "svc-uid-new");
}

#[test]
fn slices_of_other_controllers_or_services_and_slices_being_deleted_are_ignored() {
    let svc = service_clusterip();
    let pods = seed_pods();
    let slices = first_sync(&svc, &pods);
    let mut foreign = slices[0].clone();
    foreign.metadata.name = Some("hand-made".into());
    if let Some(labels) = foreign.metadata.labels.as_mut() {
        labels.insert(MANAGED_BY_LABEL.into(), "someone-else".into());
    }
    let mut other_service = slices[0].clone();
    other_service.metadata.name = Some("other-abcde".into());
    if let Some(labels) = other_service.metadata.labels.as_mut() {
        labels.insert(SERVICE_NAME_LABEL.into(), "other".into());
    }
    let mut dying = slices[0].clone();
    dying.metadata.name = Some("service-clusterip-dying".into());
    dying.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts("2024-05-01T12:00:00Z")));
    let all = [slices.clone(), vec![foreign, other_service, dying]].concat();
    assert!(reconcile(&svc, &pods, &all).is_empty());
}

#[test]
fn selector_less_and_external_name_services_get_no_slices() {
    let selector_less = service(json!({
        "metadata": {"name": "my-service", "namespace": "dev"},
        "spec": {"clusterIP": "10.96.0.8", "ports": [{"port": 80, "targetPort": 9376}]}
    }));
    let external = service(json!({
        "metadata": {"name": "db", "namespace": "dev"},
        "spec": {"type": "ExternalName", "externalName": "my.database.example.com"}
    }));
    for svc in [selector_less, external] {
        assert!(reconcile(&svc, &seed_pods(), &[]).is_empty());
    }
}

#[test]
fn a_service_being_deleted_gets_no_new_slices() {
    let mut svc = service_clusterip();
    svc.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts("2024-05-01T12:00:00Z")));
    assert!(reconcile(&svc, &seed_pods(), &[]).create.is_empty());
}

#[test]
fn the_trigger_time_is_stamped_on_written_slices_only() {
    let svc = service_clusterip();
    let changes = reconcile(&svc, &seed_pods(), &[]).with_trigger_time(Some(ts("2024-05-01T10:00:05.25Z")));
    let annotations = changes.create[0].metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get(LAST_CHANGE_TRIGGER_TIME_ANNOTATION).map(String::as_str),
        Some("2024-05-01T10:00:05.25Z")
    );

    let cleared = changes.with_trigger_time(None);
    assert_eq!(cleared.create[0].metadata.annotations, None);
}

#[test]
fn a_small_max_per_slice_is_respected() {
    let svc = service_clusterip();
    let pods = many_pods(7);
    let changes = reconcile_slices(&svc, &refs(&pods), zones, &[], 3);
    let sizes: Vec<usize> = changes.create.iter().map(|s| s.endpoints.len()).collect();
    assert_eq!(sizes, [3, 3, 1]);
}

#[test]
fn prefer_close_hints_each_endpoint_for_its_own_zone_and_turning_it_off_clears_them() {
    let hints = |slices: &[EndpointSlice]| -> Vec<Option<String>> {
        slices[0]
            .endpoints
            .iter()
            .map(|e| {
                e.hints
                    .as_ref()
                    .and_then(|h| h.for_zones.as_ref())
                    .map(|z| z.iter().map(|z| z.name.as_str()).collect::<Vec<_>>().join(","))
            })
            .collect()
    };
    let mut svc = service_clusterip();
    let slices = first_sync(&svc, &seed_pods());
    assert_eq!(hints(&slices), [None, None, None], "no hints without trafficDistribution");

    svc.spec.as_mut().unwrap().traffic_distribution = Some("PreferClose".into());
    let changes = reconcile(&svc, &seed_pods(), &slices);
    assert_eq!((changes.create.len(), changes.update.len(), changes.delete.len()), (0, 1, 0));
    let slices = stored(&changes.update, 1);
    // The seed's pods: two on node1 (zone-a), one on node2 (zone-b).
    assert_eq!(hints(&slices), [Some("zone-a".into()), Some("zone-a".into()), Some("zone-b".into())]);
    assert!(reconcile(&svc, &seed_pods(), &slices).update.is_empty(), "hints are stable");

    // A pod on a node without a zone gets no hint.
    let mut pods = seed_pods();
    pods.push(pod("web-x").ip("10.244.3.9").node("node3").build());
    let changes = reconcile(&svc, &pods, &slices);
    let endpoint = changes.update[0].endpoints.iter().find(|e| e.addresses == ["10.244.3.9"]).unwrap();
    assert_eq!(endpoint.hints, None);

    svc.spec.as_mut().unwrap().traffic_distribution = None;
    let changes = reconcile(&svc, &seed_pods(), &slices);
    assert_eq!(hints(&stored(&changes.update, 2)), [None, None, None]);
}
