//! The EndpointSlice mirroring controller: hand-written Endpoints of
//! selector-less Services become EndpointSlices, starting with the seeds'
//! `my-service` (1.2.3.4:9376).

mod endpoints_fixtures;

use endpoints_fixtures::*;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::{EndpointConditions, EndpointSlice};
use serde_json::json;
use svcnet_controllers::endpointslice::*;

/// The seeds' selector-less `my-service`: port 80 to 9376.
fn my_service() -> Service {
    service(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "my-service", "namespace": "default", "uid": "svc-uid"},
        "spec": {"clusterIP": "10.96.12.34", "ports": [{"protocol": "TCP", "port": 80, "targetPort": 9376}]}
    }))
}

/// The seeds' hand-written Endpoints for `my-service`.
fn my_service_endpoints() -> Endpoints {
    endpoints(json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "my-service", "namespace": "default", "uid": "ep-uid", "resourceVersion": "5"},
        "subsets": [{"addresses": [{"ip": "1.2.3.4"}], "ports": [{"port": 9376, "protocol": "TCP"}]}]
    }))
}

fn mirror(endpoints: &Endpoints, service: Option<&Service>, existing: &[EndpointSlice]) -> SliceChanges {
    let existing: Vec<&EndpointSlice> = existing.iter().collect();
    mirror_endpoints(endpoints, service, &existing, DEFAULT_MIRRORING_MAX_ENDPOINTS_PER_SUBSET)
}

fn label<'a>(slice: &'a EndpointSlice, key: &str) -> Option<&'a str> {
    slice.metadata.labels.as_ref().and_then(|l| l.get(key)).map(String::as_str)
}

#[test]
fn seed_my_service_endpoints_are_mirrored_into_one_slice() {
    let changes = mirror(&my_service_endpoints(), Some(&my_service()), &[]);
    assert_eq!((changes.create.len(), changes.update.len(), changes.delete.len()), (1, 0, 0));
    let slice = &changes.create[0];

    assert_eq!(slice.metadata.generate_name.as_deref(), Some("my-service-"));
    assert_eq!(slice.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(label(slice, SERVICE_NAME_LABEL), Some("my-service"));
    assert_eq!(label(slice, MANAGED_BY_LABEL), Some("endpointslicemirroring-controller.k8s.io"));
    let owner = &slice.metadata.owner_references.as_deref().unwrap_or_default()[0];
    assert_eq!(
        (owner.api_version.as_str(), owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("v1", "Endpoints", "my-service", "ep-uid"),
        "mirrored slices are owned by the Endpoints, not the Service"
    );
    assert_eq!((owner.controller, owner.block_owner_deletion), (Some(true), Some(true)));

    let ports = slice.ports.as_deref().unwrap_or_default();
    assert_eq!(ports.len(), 1);
    assert_eq!(
        (ports[0].name.as_deref(), ports[0].port, ports[0].protocol.as_deref()),
        (Some(""), Some(9376), Some("TCP"))
    );
    assert_eq!(slice_addresses(slice), ["1.2.3.4"]);
    assert_eq!(slice.endpoints[0].conditions, Some(EndpointConditions { ready: Some(true), ..Default::default() }));
}

#[test]
fn mirrored_endpoints_that_did_not_change_give_no_changes() {
    let endpoints = my_service_endpoints();
    let slices = stored(&mirror(&endpoints, Some(&my_service()), &[]).create, 0);
    assert!(mirror(&endpoints, Some(&my_service()), &slices).is_empty());
}

#[test]
fn a_changed_address_updates_the_mirrored_slice_in_place() {
    let svc = my_service();
    let slices = stored(&mirror(&my_service_endpoints(), Some(&svc), &[]).create, 0);
    let moved = endpoints(json!({
        "metadata": {"name": "my-service", "namespace": "default", "uid": "ep-uid"},
        "subsets": [{"addresses": [{"ip": "1.2.3.5"}], "ports": [{"port": 9376, "protocol": "TCP"}]}]
    }));
    let changes = mirror(&moved, Some(&svc), &slices);
    assert_eq!((changes.create.len(), changes.update.len(), changes.delete.len()), (0, 1, 0));
    assert_eq!(changes.update[0].metadata.name, slices[0].metadata.name);
    assert_eq!(changes.update[0].metadata.resource_version.as_deref(), Some("1"));
    assert_eq!(slice_addresses(&changes.update[0]), ["1.2.3.5"]);
}

#[test]
fn endpoints_that_must_not_be_mirrored_lose_their_mirrored_slices() {
    let svc = my_service();
    let slices = stored(&mirror(&my_service_endpoints(), Some(&svc), &[]).create, 0);

    let mut skip = my_service_endpoints();
    skip.metadata.labels = Some([(SKIP_MIRROR_LABEL.to_owned(), "true".to_owned())].into());
    let mut leader_lock = my_service_endpoints();
    leader_lock.metadata.annotations =
        Some([("control-plane.alpha.kubernetes.io/leader".to_owned(), "{}".to_owned())].into());
    let mut with_selector = my_service();
    if let Some(spec) = with_selector.spec.as_mut() {
        spec.selector = Some([("app".to_owned(), "MyApp".to_owned())].into());
    }

    let cases: [(&str, Endpoints, Option<&Service>); 4] = [
        ("skip-mirror label", skip, Some(&svc)),
        ("leader election lock", leader_lock, Some(&svc)),
        ("service has a selector", my_service_endpoints(), Some(&with_selector)),
        ("no service", my_service_endpoints(), None),
    ];
    for (what, endpoints, service) in cases {
        let changes = mirror(&endpoints, service, &slices);
        assert!(changes.create.is_empty() && changes.update.is_empty(), "{what}");
        assert_eq!(changes.delete, slices, "{what}");
        assert!(mirror(&endpoints, service, &[]).is_empty(), "{what}: nothing to create");
    }
}

#[test]
fn a_skip_mirror_label_other_than_true_does_not_skip() {
    let mut endpoints = my_service_endpoints();
    endpoints.metadata.labels = Some([(SKIP_MIRROR_LABEL.to_owned(), "false".to_owned())].into());
    assert_eq!(mirror(&endpoints, Some(&my_service()), &[]).create.len(), 1);
}

#[test]
fn not_ready_addresses_are_mirrored_as_not_ready() {
    let endpoints = endpoints(json!({
        "metadata": {"name": "my-service", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "1.2.3.4", "nodeName": "node1", "hostname": "db-0"}],
                     "notReadyAddresses": [{"ip": "1.2.3.5"}],
                     "ports": [{"name": "db", "port": 5432}]}]
    }));
    let changes = mirror(&endpoints, Some(&my_service()), &[]);
    let slice = &changes.create[0];
    let summary: Vec<(&str, Option<bool>, Option<&str>, Option<&str>)> = slice
        .endpoints
        .iter()
        .map(|e| {
            (
                e.addresses[0].as_str(),
                e.conditions.as_ref().and_then(|c| c.ready),
                e.node_name.as_deref(),
                e.hostname.as_deref(),
            )
        })
        .collect();
    assert_eq!(summary, [("1.2.3.4", Some(true), Some("node1"), Some("db-0")), ("1.2.3.5", Some(false), None, None)]);
    assert_eq!(slice.ports.as_deref().unwrap_or_default()[0].name.as_deref(), Some("db"));
}

#[test]
fn each_family_and_port_set_gets_its_own_slice_and_invalid_ips_are_skipped() {
    let endpoints = endpoints(json!({
        "metadata": {"name": "my-service", "namespace": "default"},
        "subsets": [
            {"addresses": [{"ip": "1.2.3.4"}, {"ip": "2001:db8::1"}, {"ip": "not-an-ip"}], "ports": [{"port": 9376}]},
            {"addresses": [{"ip": "1.2.3.9"}], "ports": [{"name": "admin", "port": 9000}]},
            {"addresses": [{"ip": "1.2.3.5"}], "ports": [{"port": 9376}]}
        ]
    }));
    let changes = mirror(&endpoints, Some(&my_service()), &[]);
    let mut slices: Vec<(&str, Option<i32>, Vec<&str>)> = changes
        .create
        .iter()
        .map(|s| (s.address_type.as_str(), s.ports.as_deref().unwrap_or_default()[0].port, slice_addresses(s)))
        .collect();
    slices.sort();
    assert_eq!(
        slices,
        [
            ("IPv4", Some(9000), vec!["1.2.3.9"]),
            ("IPv4", Some(9376), vec!["1.2.3.4", "1.2.3.5"]),
            ("IPv6", Some(9376), vec!["2001:db8::1"]),
        ]
    );
}

#[test]
fn at_most_max_per_subset_addresses_are_mirrored_ready_first() {
    let endpoints = endpoints(json!({
        "metadata": {"name": "my-service", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                     "notReadyAddresses": [{"ip": "10.0.0.3"}],
                     "ports": [{"port": 80}]}]
    }));
    let changes = mirror_endpoints(&endpoints, Some(&my_service()), &[], 2);
    assert_eq!(slice_addresses(&changes.create[0]), ["10.0.0.1", "10.0.0.2"]);
    // And a capped mirror is stable, not rewritten on every sync.
    let slices = stored(&changes.create, 0);
    let again = mirror_endpoints(&endpoints, Some(&my_service()), &slices.iter().collect::<Vec<_>>(), 2);
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn labels_and_annotations_are_mirrored_and_their_changes_update_the_slice() {
    let svc = my_service();
    let mut endpoints = my_service_endpoints();
    endpoints.metadata.labels = Some([("team".to_owned(), "db".to_owned())].into());
    endpoints.metadata.annotations = Some(
        [
            ("example.com/owner".to_owned(), "dba".to_owned()),
            ("endpoints.kubernetes.io/last-change-trigger-time".to_owned(), "2024-05-01T10:00:00Z".to_owned()),
            ("kubectl.kubernetes.io/last-applied-configuration".to_owned(), "{}".to_owned()),
        ]
        .into(),
    );
    let created = mirror(&endpoints, Some(&svc), &[]).create;
    assert_eq!(label(&created[0], "team"), Some("db"));
    assert_eq!(
        created[0].metadata.annotations,
        Some([("example.com/owner".to_owned(), "dba".to_owned())].into()),
        "the trigger time and kubectl's last-applied configuration are not copied"
    );

    let slices = stored(&created, 0);
    endpoints.metadata.labels = Some([("team".to_owned(), "platform".to_owned())].into());
    let changes = mirror(&endpoints, Some(&svc), &slices);
    assert_eq!((changes.create.len(), changes.update.len(), changes.delete.len()), (0, 1, 0));
    assert_eq!(label(&changes.update[0], "team"), Some("platform"));
}

#[test]
fn emptied_endpoints_delete_their_mirrored_slices() {
    let svc = my_service();
    let slices = stored(&mirror(&my_service_endpoints(), Some(&svc), &[]).create, 0);
    let empty = endpoints(json!({"metadata": {"name": "my-service", "namespace": "default"}}));
    let changes = mirror(&empty, Some(&svc), &slices);
    assert_eq!(changes.delete, slices);
    assert!(changes.create.is_empty() && changes.update.is_empty());
}

#[test]
fn a_changed_port_recycles_the_mirrored_slice() {
    let svc = my_service();
    let slices = stored(&mirror(&my_service_endpoints(), Some(&svc), &[]).create, 0);
    let moved = endpoints(json!({
        "metadata": {"name": "my-service", "namespace": "default", "uid": "ep-uid"},
        "subsets": [{"addresses": [{"ip": "1.2.3.4"}], "ports": [{"port": 9377}]}]
    }));
    let changes = mirror(&moved, Some(&svc), &slices);
    assert_eq!((changes.create.len(), changes.update.len(), changes.delete.len()), (0, 1, 0));
    assert_eq!(changes.update[0].metadata.name, slices[0].metadata.name);
    assert_eq!(changes.update[0].ports.as_deref().unwrap_or_default()[0].port, Some(9377));
}

#[test]
fn slices_managed_by_the_endpointslice_controller_are_not_touched() {
    let svc = my_service();
    let mut foreign = stored(&mirror(&my_service_endpoints(), Some(&svc), &[]).create, 0);
    if let Some(labels) = foreign[0].metadata.labels.as_mut() {
        labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    }
    let changes = mirror(&my_service_endpoints(), None, &foreign);
    assert!(changes.is_empty());
}
