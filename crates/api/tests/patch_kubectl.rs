//! Patches as kubectl sends them, applied through the public API and the
//! results decoded strictly, as the API server will.

use serde_json::{Value, json};
use svcnet_api::patch::{PatchError, json_merge_patch, json_patch, strategic_merge_patch};
use svcnet_api::schema::check_object;

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
const SERVICE: &str = "io.k8s.api.core.v1.Service";

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["example.com/a", "example.com/b"]},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                        {"name": "sidecar", "image": "envoy"},
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
    })
}

#[test]
fn a_kubectl_apply_patch_with_order_and_deletion_directives_applies() {
    // The shape `kubectl apply` computes when a port and an env var change.
    let patch = json!({
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/b"]},
        "spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
            "template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                "containers": [{
                    "$setElementOrder/env": [{"name": "A"}],
                    "$setElementOrder/ports": [{"containerPort": 8080}],
                    "name": "web",
                    "image": "nginx:1.27",
                    "env": [{"$patch": "delete", "name": "B"}],
                    "ports": [{"containerPort": 8080}, {"$patch": "delete", "containerPort": 80}],
                }],
            }},
        },
    });
    let patched = strategic_merge_patch(&deployment(), &patch, DEPLOYMENT).expect("patch applies");
    assert_eq!(patched["metadata"]["finalizers"], json!(["example.com/a"]));
    assert_eq!(patched["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(
        patched["spec"]["template"]["spec"]["containers"],
        json!([
            {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 8080}], "env": [{"name": "A", "value": "1"}]},
            {"name": "sidecar", "image": "envoy"},
        ])
    );
    assert_eq!(check_object(DEPLOYMENT, &patched, true), Ok(vec![]));
}

#[test]
fn a_volume_source_change_with_retain_keys_drops_the_old_source() {
    let patch = json!({"spec": {"template": {"spec": {"volumes": [
        {"$retainKeys": ["configMap", "name"], "name": "data", "configMap": {"name": "cfg"}},
    ]}}}});
    let patched = strategic_merge_patch(&deployment(), &patch, DEPLOYMENT).expect("patch applies");
    assert_eq!(patched["spec"]["template"]["spec"]["volumes"], json!([{"name": "data", "configMap": {"name": "cfg"}}]));
}

#[test]
fn kubectl_scale_style_merge_patch_touches_only_replicas() {
    let patched = json_merge_patch(&deployment(), &json!({"spec": {"replicas": 5}}));
    let mut expected = deployment();
    expected["spec"]["replicas"] = json!(5);
    assert_eq!(patched, expected);
}

#[test]
fn a_json_patch_on_a_service_then_decodes() {
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}});
    let patch = json!([
        {"op": "add", "path": "/spec/ports/-", "value": {"name": "https", "port": 443}},
        {"op": "replace", "path": "/spec/selector/app", "value": "web2"},
        {"op": "add", "path": "/metadata/labels", "value": {"tier": "front"}},
    ]);
    let patched = json_patch(&service, &patch).expect("patch applies");
    assert_eq!(patched["spec"]["ports"][1], json!({"name": "https", "port": 443}));
    assert_eq!(check_object(SERVICE, &patched, true), Ok(vec![]));
}

#[test]
fn a_json_patch_that_adds_a_bad_port_type_is_caught_by_decoding() {
    let service = json!({"spec": {"ports": [{"port": 80}]}});
    let patched = json_patch(&service, &json!([{"op": "replace", "path": "/spec/ports/0/port", "value": "eighty"}]))
        .expect("patch applies");
    assert_eq!(
        check_object(SERVICE, &patched, true).expect_err("bad type").message(),
        "Service in version \"v1\" cannot be handled as a Service: json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32"
    );
}

#[test]
fn patch_errors_carry_kube_apiserver_messages() {
    assert_eq!(
        json_patch(&deployment(), &json!([{"op": "remove", "path": "/spec/foo"}])),
        Err(PatchError::JsonPatchFailed(
            "error in remove for path: '/spec/foo': Unable to remove nonexistent key: foo: missing value".into()
        ))
    );
    assert_eq!(
        strategic_merge_patch(&deployment(), &json!({"spec": {"strategy": {"$retainKeys": "type"}}}), DEPLOYMENT)
            .map_err(|e| e.to_string()),
        Err("invalid patch format of retainKeys".into())
    );
}
