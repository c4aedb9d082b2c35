//! managedFields bookkeeping of creates, updates and patches through the
//! public API, in the shapes kube-apiserver writes them.

use serde_json::{Value, json};
use svcnet_api::managed::{apply, track_update};

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
const SERVICE: &str = "io.k8s.api.core.v1.Service";
const T0: &str = "2025-03-01T10:00:00Z";
const T1: &str = "2025-03-01T11:00:00Z";
const T2: &str = "2025-03-01T12:00:00Z";

/// A Deployment as `kubectl create deployment web --image=nginx` stores it
/// after defaulting.
fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "nginx", "image": "nginx", "imagePullPolicy": "Always"}],
                    "restartPolicy": "Always",
                },
            },
        },
    })
}

fn service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP"}], "type": "ClusterIP"},
    })
}

fn entries(object: &Value) -> Vec<Value> {
    object["metadata"]["managedFields"].as_array().cloned().unwrap_or_default()
}

fn entry(object: &Value, manager: &str) -> Value {
    entries(object).into_iter().find(|e| e["manager"] == manager).unwrap_or(Value::Null)
}

#[test]
fn a_created_deployment_is_owned_like_kubectl_create_leaves_it() {
    let mut created = deployment();
    track_update(None, &mut created, "kubectl-create", None, DEPLOYMENT, T0);
    assert_eq!(
        entry(&created, "kubectl-create")["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}},
                "f:template": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {
                        "f:containers": {
                            "k:{\"name\":\"nginx\"}": {
                                ".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {},
                            },
                        },
                        "f:restartPolicy": {},
                    },
                },
            },
        })
    );
}

#[test]
fn an_update_merges_into_the_managers_entry_and_takes_the_field_from_others() {
    let mut created = deployment();
    track_update(None, &mut created, "kubectl-create", None, DEPLOYMENT, T0);
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(3);
    track_update(Some(&created), &mut scaled, "kubectl-scale", None, DEPLOYMENT, T1);
    assert_eq!(entry(&scaled, "kubectl-scale")["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    assert!(entry(&scaled, "kubectl-create")["fieldsV1"]["f:spec"].get("f:replicas").is_none());

    let mut again = scaled.clone();
    again["spec"]["replicas"] = json!(5);
    again["spec"]["paused"] = json!(true);
    track_update(Some(&scaled), &mut again, "kubectl-scale", None, DEPLOYMENT, T2);
    let scale = entry(&again, "kubectl-scale");
    assert_eq!(scale["fieldsV1"], json!({"f:spec": {"f:paused": {}, "f:replicas": {}}}));
    assert_eq!(scale["time"], T2);
    assert_eq!(entries(&again).len(), 2);
}

#[test]
fn removed_fields_leave_every_managers_set() {
    let mut created = service();
    track_update(None, &mut created, "kubectl-create", None, SERVICE, T0);
    let mut removed = created.clone();
    removed["spec"].as_object_mut().map(|s| s.remove("type"));
    track_update(Some(&created), &mut removed, "kubectl-edit", None, SERVICE, T1);
    assert!(entry(&removed, "kubectl-create")["fieldsV1"]["f:spec"].get("f:type").is_none());
    assert!(entry(&removed, "kubectl-edit").is_null(), "removing takes nothing");
}

#[test]
fn entries_list_appliers_first_then_updaters_oldest_first() {
    let config =
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"type": "ClusterIP"}});
    let mut created = service();
    track_update(None, &mut created, "zeta", None, SERVICE, T1);
    let mut labelled = created.clone();
    labelled["metadata"]["labels"] = json!({"a": "b"});
    track_update(Some(&created), &mut labelled, "alpha", None, SERVICE, T2);
    let applied = apply(Some(&labelled), &config, "ops", false, SERVICE, T2).expect("applied");
    let order: Vec<String> = entries(&applied)
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["operation"].as_str().unwrap_or(""),
                e["manager"].as_str().unwrap_or(""),
                e["time"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(order, [format!("Apply ops {T2}"), format!("Update zeta {T1}"), format!("Update alpha {T2}")]);
}

#[test]
fn a_client_may_rewrite_managed_fields_on_the_main_resource_but_not_through_status() {
    let mut created = service();
    track_update(None, &mut created, "kubectl-create", None, SERVICE, T0);
    let rewritten_entry = json!({
        "manager": "someone", "operation": "Update", "apiVersion": "v1", "time": T0,
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:type": {}}},
    });
    let mut rewritten = created.clone();
    rewritten["metadata"]["managedFields"] = json!([rewritten_entry]);
    track_update(Some(&created), &mut rewritten, "kubectl-edit", None, SERVICE, T1);
    assert_eq!(rewritten["metadata"]["managedFields"], json!([rewritten_entry]));

    let mut through_status = created.clone();
    through_status["metadata"]["managedFields"] = json!([rewritten_entry]);
    track_update(Some(&created), &mut through_status, "kubectl-edit", Some("status"), SERVICE, T1);
    assert_eq!(through_status["metadata"]["managedFields"], created["metadata"]["managedFields"]);
}

#[test]
fn more_than_ten_updaters_fold_the_oldest_into_ancient_changes() {
    let mut object = service();
    track_update(None, &mut object, "creator", None, SERVICE, "2025-01-01T00:00:00Z");
    for i in 0..12 {
        let mut next = object.clone();
        let mut labels = object["metadata"]["labels"].as_object().cloned().unwrap_or_default();
        labels.insert(format!("l{i}"), json!("x"));
        next["metadata"]["labels"] = Value::Object(labels);
        track_update(
            Some(&object),
            &mut next,
            &format!("m{i:02}"),
            None,
            SERVICE,
            &format!("2025-01-01T00:00:{:02}Z", i + 1),
        );
        object = next;
    }
    let names: Vec<String> = entries(&object).iter().filter_map(|e| e["manager"].as_str().map(String::from)).collect();
    assert_eq!(names.len(), 10);
    assert_eq!(names[0], "ancient-changes");
    assert_eq!(names[9], "m11");
}
