//! Server-side apply through the public API, scenario by scenario, as
//! kubectl and controllers drive it against one Service or Deployment.

use serde_json::{Value, json};
use svcnet_api::managed::fieldpath::FieldSet;
use svcnet_api::managed::{ApplyError, apply, track_update};

const SERVICE: &str = "io.k8s.api.core.v1.Service";
const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
const T0: &str = "2025-03-01T10:00:00Z";
const T1: &str = "2025-03-01T11:00:00Z";
const T2: &str = "2025-03-01T12:00:00Z";

fn service(ports: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": ports},
    })
}

fn http() -> Value {
    json!({"port": 80, "targetPort": 8080})
}

/// The managedFields entry of `manager`.
fn entry<'a>(object: &'a Value, manager: &str) -> &'a Value {
    object["metadata"]["managedFields"]
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["manager"] == manager))
        .unwrap_or_else(|| panic!("no entry for {manager} in {object}"))
}

fn managers(object: &Value) -> Vec<String> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("{}/{}", e["manager"].as_str().unwrap_or(""), e["operation"].as_str().unwrap_or("")))
        .collect()
}

fn conflicts(result: Result<Value, ApplyError>) -> ApplyError {
    match result {
        Err(error @ ApplyError::Conflicts(_)) => error,
        other => panic!("expected conflicts, got {other:?}"),
    }
}

#[test]
fn apply_creates_the_object_and_records_exactly_the_applied_fields() {
    let created = apply(None, &service(json!([http()])), "ci", false, SERVICE, T0).expect("created");
    assert_eq!(created["spec"]["ports"], json!([http()]));
    assert_eq!(
        created["metadata"]["managedFields"],
        json!([{
            "manager": "ci",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:tier": {}}},
                "f:spec": {
                    "f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:targetPort": {}}},
                    "f:selector": {},
                },
            },
        }])
    );
}

#[test]
fn reapplying_without_a_field_removes_it_from_the_object() {
    let created = apply(None, &service(json!([http()])), "ci", false, SERVICE, T0).expect("created");
    let mut config = service(json!([http()]));
    config["metadata"].as_object_mut().map(|m| m.remove("labels"));
    let applied = apply(Some(&created), &config, "ci", false, SERVICE, T1).expect("applied");
    assert!(applied["metadata"].get("labels").is_none(), "{applied}");
    assert!(entry(&applied, "ci")["fieldsV1"]["f:metadata"].is_null());
    assert_eq!(entry(&applied, "ci")["time"], T1);
}

#[test]
fn reapplying_by_the_same_manager_never_conflicts() {
    let created = apply(None, &service(json!([http()])), "ci", false, SERVICE, T0).expect("created");
    let mut config = service(json!([{"port": 80, "targetPort": 9090}]));
    config["spec"]["selector"] = json!({"app": "web2"});
    let applied = apply(Some(&created), &config, "ci", false, SERVICE, T1).expect("no conflict with itself");
    assert_eq!(applied["spec"]["selector"], json!({"app": "web2"}));
    assert_eq!(applied["spec"]["ports"][0]["targetPort"], 9090);
}

#[test]
fn a_second_applier_changing_an_owned_field_conflicts_with_kubes_message() {
    let created = apply(None, &service(json!([http()])), "ci", false, SERVICE, T0).expect("created");
    let mut config = service(json!([http()]));
    config["spec"]["selector"] = json!({"app": "other"});
    let error = conflicts(apply(Some(&created), &config, "ops", false, SERVICE, T1));
    assert_eq!(error.to_string(), r#"Apply failed with 1 conflict: conflict with "ci": .spec.selector"#);
    let causes = error.causes();
    assert_eq!(causes.len(), 1);
    assert_eq!((causes[0].reason, causes[0].message.as_str()), ("FieldManagerConflict", r#"conflict with "ci""#));
    assert_eq!(causes[0].field, ".spec.selector");
}

#[test]
fn forcing_moves_the_conflicting_field_to_the_forcing_manager() {
    let created = apply(None, &service(json!([http()])), "ci", false, SERVICE, T0).expect("created");
    let config = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "other"}},
    });
    let forced = apply(Some(&created), &config, "ops", true, SERVICE, T1).expect("forced");
    assert_eq!(forced["spec"]["selector"], json!({"app": "other"}));
    assert_eq!(entry(&forced, "ops")["fieldsV1"], json!({"f:spec": {"f:selector": {}}}));
    assert!(entry(&forced, "ci")["fieldsV1"]["f:spec"].get("f:selector").is_none());
    // The port ci still owns is untouched.
    assert!(entry(&forced, "ci")["fieldsV1"]["f:spec"]["f:ports"].is_object());
}

#[test]
fn applying_the_value_a_field_already_has_shares_its_ownership() {
    let created = apply(None, &service(json!([http()])), "ci", false, SERVICE, T0).expect("created");
    let config = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}}});
    let shared = apply(Some(&created), &config, "ops", false, SERVICE, T1).expect("same value");
    assert_eq!(entry(&shared, "ops")["fieldsV1"], json!({"f:spec": {"f:selector": {}}}));
    assert_eq!(entry(&shared, "ci")["fieldsV1"]["f:spec"]["f:selector"], json!({}));
    // Changing it now conflicts for either of them.
    let mut changed = service(json!([http()]));
    changed["spec"]["selector"] = json!({"app": "x"});
    let error = conflicts(apply(Some(&shared), &changed, "ci", false, SERVICE, T2));
    assert_eq!(error.to_string(), r#"Apply failed with 1 conflict: conflict with "ops": .spec.selector"#);
}

#[test]
fn two_appliers_keep_their_own_ports_and_dropping_one_removes_only_it() {
    let created = apply(None, &service(json!([http()])), "ci", false, SERVICE, T0).expect("created");
    let metrics = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 9100, "protocol": "TCP", "name": "metrics"}]},
    });
    let both = apply(Some(&created), &metrics, "monitoring", false, SERVICE, T1).expect("second port");
    let ports: Vec<&Value> = both["spec"]["ports"].as_array().into_iter().flatten().map(|p| &p["port"]).collect();
    assert_eq!(ports, [&json!(80), &json!(9100)]);
    assert!(
        entry(&both, "monitoring")["fieldsV1"]["f:spec"]["f:ports"]["k:{\"port\":9100,\"protocol\":\"TCP\"}"]
            .is_object()
    );

    // ci stops applying port 80 (it applies a new one instead): only 80 goes.
    let moved = apply(Some(&both), &service(json!([{"port": 443}])), "ci", false, SERVICE, T2).expect("reapplied");
    let ports: Vec<&Value> = moved["spec"]["ports"].as_array().into_iter().flatten().map(|p| &p["port"]).collect();
    assert_eq!(ports, [&json!(9100), &json!(443)]);
    let ci = &entry(&moved, "ci")["fieldsV1"]["f:spec"]["f:ports"];
    assert!(
        ci.get("k:{\"port\":80,\"protocol\":\"TCP\"}").is_none()
            && ci.get("k:{\"port\":443,\"protocol\":\"TCP\"}").is_some()
    );

    // monitoring drops its port: the list keeps ci's.
    let mut none = metrics.clone();
    none["spec"]["ports"] = json!([]);
    none["spec"]["type"] = json!("ClusterIP");
    let dropped = apply(Some(&moved), &none, "monitoring", false, SERVICE, T2).expect("dropped");
    assert_eq!(dropped["spec"]["ports"], json!([{"port": 443}]));
}

#[test]
fn a_field_nobody_else_owns_is_removed_even_when_another_manager_set_a_sibling() {
    let created = apply(None, &service(json!([http()])), "ci", false, SERVICE, T0).expect("created");
    let mut labelled = created.clone();
    labelled["metadata"]["labels"]["team"] = json!("net");
    track_update(Some(&created), &mut labelled, "kubectl-label", None, SERVICE, T1);
    let mut config = service(json!([http()]));
    config["metadata"].as_object_mut().map(|m| m.remove("labels"));
    let applied = apply(Some(&labelled), &config, "ci", false, SERVICE, T2).expect("applied");
    assert_eq!(applied["metadata"]["labels"], json!({"team": "net"}));
}

#[test]
fn an_edit_takes_over_an_applied_field_and_the_applier_then_conflicts() {
    let created = apply(None, &service(json!([http()])), "ci", false, SERVICE, T0).expect("created");
    let mut edited = created.clone();
    edited["spec"]["ports"][0]["targetPort"] = json!(9090);
    track_update(Some(&created), &mut edited, "kubectl-edit", None, SERVICE, T1);
    assert_eq!(
        entry(&edited, "kubectl-edit")["fieldsV1"],
        json!({"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {"f:targetPort": {}}}}})
    );
    let ci = &entry(&edited, "ci")["fieldsV1"]["f:spec"]["f:ports"]["k:{\"port\":80,\"protocol\":\"TCP\"}"];
    assert!(ci.get("f:targetPort").is_none() && ci.get("f:port").is_some());
    assert_eq!(managers(&edited), ["ci/Apply", "kubectl-edit/Update"]);

    // Re-applying the old value now conflicts with the editor.
    let error = conflicts(apply(Some(&edited), &service(json!([http()])), "ci", false, SERVICE, T2));
    assert_eq!(
        error.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .spec.ports[port=80,protocol="TCP"].targetPort"#
    );
    assert_eq!(error.causes()[0].message, r#"conflict with "kubectl-edit" using v1"#);
}

#[test]
fn several_conflicts_are_listed_per_manager() {
    let created = apply(None, &service(json!([http()])), "ci", false, SERVICE, T0).expect("created");
    let mut config = service(json!([{"port": 80, "targetPort": 1}]));
    config["spec"]["selector"] = json!({"app": "x"});
    let error = conflicts(apply(Some(&created), &config, "ops", false, SERVICE, T1));
    assert_eq!(
        error.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"ci\":\n- .spec.selector\n- .spec.ports[port=80,protocol=\"TCP\"].targetPort"
    );
    assert_eq!(error.causes().len(), 2);
}

#[test]
fn keys_with_two_fields_encode_sorted_and_set_items_by_value() {
    let mut config = service(json!([{"protocol": "UDP", "port": 53}]));
    config["metadata"]["finalizers"] = json!(["example.com/x"]);
    let created = apply(None, &config, "ci", false, SERVICE, T0).expect("created");
    let fields = &entry(&created, "ci")["fieldsV1"];
    assert!(fields["f:spec"]["f:ports"]["k:{\"port\":53,\"protocol\":\"UDP\"}"].is_object(), "{fields}");
    assert_eq!(fields["f:metadata"]["f:finalizers"], json!({"v:\"example.com/x\"": {}}));
}

#[test]
fn fields_v1_round_trips_through_its_json() {
    let created = apply(None, &service(json!([http(), {"port": 53, "protocol": "UDP"}])), "ci", false, SERVICE, T0)
        .expect("created");
    let fields = entry(&created, "ci")["fieldsV1"].clone();
    let set = FieldSet::from_fields_v1(&fields).expect("parses");
    assert_eq!(set.to_fields_v1(), fields);
    let text = serde_json::to_string(&fields).expect("serializes");
    let reparsed: Value = serde_json::from_str(&text).expect("parses");
    assert_eq!(FieldSet::from_fields_v1(&reparsed).expect("parses"), set);
    let printed: Vec<String> = set.paths().iter().map(ToString::to_string).collect();
    assert!(printed.contains(&r#".spec.ports[port=53,protocol="UDP"].protocol"#.to_string()), "{printed:?}");
}

#[test]
fn an_object_without_managed_fields_is_first_attributed_to_before_first_apply() {
    let mut live = service(json!([http()]));
    live["spec"]["type"] = json!("NodePort");
    let mut config = service(json!([http()]));
    config["spec"]["type"] = json!("ClusterIP");
    let error = conflicts(apply(Some(&live), &config, "ci", false, SERVICE, T1));
    assert_eq!(
        error.to_string(),
        r#"Apply failed with 1 conflict: conflict with "before-first-apply" using v1: .spec.type"#
    );
    let applied = apply(Some(&live), &service(json!([http()])), "ci", false, SERVICE, T1).expect("same values");
    assert_eq!(managers(&applied), ["ci/Apply", "before-first-apply/Update"]);
}

#[test]
fn status_in_a_configuration_for_the_main_resource_is_ignored() {
    let mut config = service(json!([http()]));
    config["status"] = json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}});
    let created = apply(None, &config, "ci", false, SERVICE, T0).expect("created");
    assert!(created.get("status").is_none());
    assert!(entry(&created, "ci")["fieldsV1"].get("f:status").is_none());
}

#[test]
fn deployment_containers_merge_by_name_and_their_ports_by_port_and_protocol() {
    let config = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]},
            },
        },
    });
    let created = apply(None, &config, "ci", false, DEPLOYMENT, T0).expect("created");
    let fields = &entry(&created, "ci")["fieldsV1"]["f:spec"];
    assert_eq!(fields["f:selector"], json!({}), "label selectors are atomic");
    let container = &fields["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
    assert_eq!(
        container,
        &json!({".": {}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}})
    );

    // A sidecar injected by a controller survives the next apply.
    let mut injected = created.clone();
    if let Some(c) = injected["spec"]["template"]["spec"]["containers"].as_array_mut() {
        c.push(json!({"name": "proxy", "image": "envoy"}))
    }
    track_update(Some(&created), &mut injected, "injector", None, DEPLOYMENT, T1);
    let mut bumped = config.clone();
    bumped["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    let applied = apply(Some(&injected), &bumped, "ci", false, DEPLOYMENT, T2).expect("applied");
    let containers = &applied["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], "nginx:1.27");
    assert_eq!(containers[1]["name"], "proxy");
}

#[test]
fn set_lists_union_across_appliers_and_atomic_lists_are_replaced_whole() {
    let mut config = service(json!([http()]));
    config["metadata"]["finalizers"] = json!(["example.com/a"]);
    config["spec"]["externalIPs"] = json!(["10.0.0.1", "10.0.0.2"]);
    let created = apply(None, &config, "ci", false, SERVICE, T0).expect("created");
    assert_eq!(entry(&created, "ci")["fieldsV1"]["f:spec"]["f:externalIPs"], json!({}));

    let other = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "finalizers": ["example.com/b"]},
    });
    let both = apply(Some(&created), &other, "cleanup", false, SERVICE, T1).expect("union");
    assert_eq!(both["metadata"]["finalizers"], json!(["example.com/a", "example.com/b"]));

    // ci drops its finalizer and one external IP: its finalizer goes, the
    // other stays, and the atomic list is replaced by what ci applies.
    let mut next = service(json!([http()]));
    next["spec"]["externalIPs"] = json!(["10.0.0.2"]);
    let applied = apply(Some(&both), &next, "ci", false, SERVICE, T2).expect("applied");
    assert_eq!(applied["metadata"]["finalizers"], json!(["example.com/b"]));
    assert_eq!(applied["spec"]["externalIPs"], json!(["10.0.0.2"]));
}
