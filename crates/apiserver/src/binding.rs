//! The `pods/binding` subresource (and the older `bindings` collection):
//! how a scheduler assigns a pod to a node.
//!
//! A `v1 Binding` names the pod (`metadata.name`) and the node
//! (`target.name`). Binding sets the pod's `spec.nodeName` — which no
//! ordinary update may change — and marks its `PodScheduled` condition
//! True, in one compare-and-swap on the pod, as kube-apiserver's
//! `BindingREST` does. The write goes to the store directly: the pod's
//! update strategy (which keeps the status and forbids spec changes) is
//! exactly what binding exists to bypass.

use serde_json::{Map, Value, json};
use svcnet_api::resources::{self, ResourceInfo};

use crate::cacher::Cacher;
use crate::error::{ApiError, FieldCause, Result};
use crate::object::{self, meta_mut, meta_str};
use crate::registry::{Registry, WriteOptions};

/// How many times a binding is retried after losing a race with another
/// writer of the pod (a kubelet status update, a label change...).
const MAX_RETRIES: usize = 16;

/// What a Binding asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct Binding {
    /// The pod to bind.
    pub pod: String,
    /// The node to bind it to.
    pub node: String,
    /// Preconditions on the pod, from the Binding's metadata.
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    /// Annotations copied onto the pod.
    pub annotations: Map<String, Value>,
}

impl Binding {
    /// Reads and validates a Binding body posted to namespace `ns`, for the
    /// pod named in the URL (`pods/{name}/binding`) or, when `url_name` is
    /// `None` (`bindings`), in the body.
    pub fn parse(body: &Value, ns: &str, url_name: Option<&str>) -> Result<Binding> {
        if !body.is_object() {
            return Err(ApiError::BadRequest("the body of the request is not a JSON object".into()));
        }
        let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
        if !kind.is_empty() && kind != "Binding" {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({kind}) does not match the expected kind (Binding)"
            )));
        }
        let api_version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if !api_version.is_empty() && api_version != "v1" {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({api_version}) does not match the expected API version (v1)"
            )));
        }
        let body_ns = meta_str(body, "namespace");
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
        let name = meta_str(body, "name");
        let pod = match url_name {
            // kube-apiserver's BindingREST refuses a body naming another pod.
            Some(url) if !name.is_empty() && name != url => {
                return Err(ApiError::BadRequest("name in URL does not match name in Binding object".into()));
            }
            Some(url) => url.to_string(),
            None if name.is_empty() => {
                return Err(ApiError::invalid(
                    "",
                    "Binding",
                    "",
                    vec![FieldCause::required("metadata.name", "name or generateName is required")],
                ));
            }
            None => name.to_string(),
        };
        let target = body.get("target").cloned().unwrap_or(Value::Null);
        let target_kind = target.get("kind").and_then(Value::as_str).unwrap_or("");
        let node = target.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let mut causes = Vec::new();
        if !target_kind.is_empty() && target_kind != "Node" {
            causes.push(FieldCause::not_supported("target.kind", &json!(target_kind), &["Node", "<empty>"]));
        }
        if node.is_empty() {
            causes.push(FieldCause::required("target.name", ""));
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid("", "Binding", &pod, causes));
        }
        let non_empty = |field: &str| Some(meta_str(body, field)).filter(|s| !s.is_empty()).map(str::to_string);
        Ok(Binding {
            uid: non_empty("uid"),
            resource_version: non_empty("resourceVersion"),
            annotations: object::meta(body)
                .and_then(|m| m.get("annotations"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            pod,
            node,
        })
    }
}

/// Why a pod cannot be bound, worded as kube-apiserver words it after
/// `Operation cannot be fulfilled on pods/binding "NAME": `.
fn refusal(pod: &Value) -> Option<String> {
    let name = meta_str(pod, "name");
    if !meta_str(pod, "deletionTimestamp").is_empty() {
        return Some(format!("pod {name} is being deleted, cannot be assigned to a host"));
    }
    let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
    if !node.is_empty() {
        return Some(format!("pod {name} is already assigned to node {node:?}"));
    }
    None
}

/// The pod with `binding` applied: `spec.nodeName`, the Binding's
/// annotations, and a `PodScheduled` condition that is True.
pub fn bound_pod(mut pod: Value, binding: &Binding, now: &str) -> Value {
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("nodeName".into(), json!(binding.node));
    } else if let Some(map) = pod.as_object_mut() {
        map.insert("spec".into(), json!({ "nodeName": binding.node }));
    }
    if !binding.annotations.is_empty()
        && let Some(meta) = meta_mut(&mut pod)
    {
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = json!({});
        }
        if let Some(map) = annotations.as_object_mut() {
            map.extend(binding.annotations.clone());
        }
    }
    set_scheduled_true(&mut pod, now);
    pod
}

/// Sets (or adds) the `PodScheduled` condition to True; its transition
/// time moves only if it was not True already.
fn set_scheduled_true(pod: &mut Value, now: &str) {
    let Some(map) = pod.as_object_mut() else { return };
    let status = map.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    let conditions = &mut status["conditions"];
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let Some(list) = conditions.as_array_mut() else { return };
    let existing = list.iter().position(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled"));
    let since = existing
        .map(|i| &list[i])
        .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now));
    let condition =
        json!({ "type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": since });
    match existing {
        Some(i) => list[i] = condition,
        None => list.push(condition),
    }
}

fn pods() -> &'static ResourceInfo {
    // Pods are always served.
    resources::by_plural("", "pods").expect("pods are a served resource")
}

fn conflict(pod: &str, detail: String) -> ApiError {
    ApiError::Conflict { group: String::new(), kind: "pods/binding".into(), name: pod.into(), detail }
}

/// Binds a pod to a node: `POST .../pods/{name}/binding` or
/// `POST .../bindings`. Answers with the Success Status kube-apiserver
/// sends (code 201).
pub async fn create(
    registry: &Registry,
    ns: &str,
    url_name: Option<&str>,
    body: &Value,
    opts: &WriteOptions,
) -> Result<Value> {
    let binding = Binding::parse(body, ns, url_name)?;
    let resource = pods();
    for _ in 0..MAX_RETRIES {
        let current = registry.get(resource, Some(ns), &binding.pod).await?;
        let pod = current.value();
        if let Some(uid) = &binding.uid {
            let actual = meta_str(&pod, "uid");
            if uid != actual {
                return Err(ApiError::Conflict {
                    group: String::new(),
                    kind: "pods".into(),
                    name: binding.pod.clone(),
                    detail: format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
                });
            }
        }
        if let Some(rv) = &binding.resource_version
            && *rv != current.rv.to_string()
        {
            return Err(ApiError::conflict_modified("", "pods", &binding.pod));
        }
        if let Some(detail) = refusal(&pod) {
            return Err(conflict(&binding.pod, detail));
        }
        let mut next = bound_pod(pod, &binding, &object::now_rfc3339());
        if opts.dry_run {
            return Ok(success());
        }
        // The store's revision is the resourceVersion; it is not stored.
        if let Some(meta) = meta_mut(&mut next) {
            meta.remove("resourceVersion");
        }
        let bytes = serde_json::to_vec(&next).map_err(|e| ApiError::Internal(format!("encoding object: {e}")))?;
        let key = Cacher::key(resource, Some(ns), &binding.pod);
        match registry.store.update(&key, bytes.into(), current.rv).await {
            Ok(_) => return Ok(success()),
            Err(svcnet_store::Error::Conflict { .. }) => continue,
            Err(svcnet_store::Error::NotFound(_)) => return Err(ApiError::not_found("", "pods", &binding.pod)),
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict_modified("", "pods", &binding.pod))
}

/// The Status kube-apiserver answers a successful binding with.
pub fn success() -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::allocation::Ranges;

    fn binding(name: &str, node: &str) -> Value {
        json!({ "kind": "Binding", "apiVersion": "v1", "metadata": { "name": name },
            "target": { "kind": "Node", "name": node } })
    }

    fn pod(name: &str) -> Value {
        json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": name },
            "spec": { "containers": [{ "name": "c", "image": "nginx" }] } })
    }

    async fn registry(dir: &std::path::Path) -> (Registry, Arc<svcnet_store::EmbeddedStore>) {
        let store =
            svcnet_store::EmbeddedStore::open(&dir.join("store"), Default::default()).await.expect("store opens");
        let registry = Registry::new(store.clone(), Ranges::default()).await.expect("registry");
        crate::bootstrap::ensure(&registry, 6443).await.expect("bootstrap");
        (registry, store)
    }

    #[test]
    fn a_binding_names_its_pod_in_the_url_or_the_body() {
        let b = Binding::parse(&binding("web", "node-1"), "default", Some("web")).expect("valid");
        assert_eq!((b.pod.as_str(), b.node.as_str()), ("web", "node-1"));
        let b = Binding::parse(&binding("web", "node-1"), "default", None).expect("valid");
        assert_eq!(b.pod, "web");
        let unnamed = json!({ "target": { "name": "node-1" } });
        assert_eq!(Binding::parse(&unnamed, "default", Some("web")).expect("valid").pod, "web");
        let e = Binding::parse(&binding("other", "node-1"), "default", Some("web")).expect_err("mismatch");
        assert_eq!(e.code(), 400);
        let e = Binding::parse(&unnamed, "default", None).expect_err("no name");
        assert_eq!(e.code(), 422);
    }

    #[test]
    fn a_binding_without_a_target_name_is_invalid_naming_the_field() {
        let e = Binding::parse(
            &json!({ "metadata": { "name": "web" }, "target": { "kind": "Node" } }),
            "default",
            Some("web"),
        )
        .expect_err("invalid");
        assert_eq!(e.code(), 422);
        assert_eq!(e.message(), "Binding \"web\" is invalid: target.name: Required value");
        assert_eq!(e.status()["details"]["causes"][0]["field"], "target.name");
        let e = Binding::parse(&json!({ "target": { "kind": "Pod", "name": "x" } }), "default", Some("web"))
            .expect_err("invalid");
        assert!(e.message().contains("target.kind: Unsupported value: \"Pod\""), "{}", e.message());
    }

    #[test]
    fn binding_sets_the_node_and_a_true_scheduled_condition() {
        let mut p = pod("web");
        p["status"] = json!({ "phase": "Pending", "conditions": [
            { "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available",
              "lastTransitionTime": "2024-01-01T00:00:00Z" }] });
        let b = Binding::parse(&binding("web", "node-1"), "default", Some("web")).expect("valid");
        let bound = bound_pod(p, &b, "2025-01-01T00:00:00Z");
        assert_eq!(bound["spec"]["nodeName"], "node-1");
        assert_eq!(
            bound["status"]["conditions"],
            json!([{ "type": "PodScheduled", "status": "True", "lastProbeTime": null,
                     "lastTransitionTime": "2025-01-01T00:00:00Z" }])
        );
    }

    #[tokio::test]
    async fn binding_a_pod_is_atomic_and_refuses_a_second_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (registry, store) = registry(dir.path()).await;
        let pods = pods();
        let opts = WriteOptions::default();
        registry.create(pods, Some("default"), pod("web"), &opts).await.expect("pod is created");

        let status = create(&registry, "default", Some("web"), &binding("web", "node-1"), &opts).await.expect("bound");
        assert_eq!(status, success());
        let stored = registry.get(pods, Some("default"), "web").await.expect("pod").value();
        assert_eq!(stored["spec"]["nodeName"], "node-1");
        assert_eq!(stored["status"]["conditions"][0]["type"], "PodScheduled");
        assert_eq!(stored["status"]["conditions"][0]["status"], "True");
        assert!(stored["status"]["conditions"][0]["lastTransitionTime"].is_string());
        assert_eq!(stored["status"]["phase"], "Pending", "the rest of the status is kept");

        let e = create(&registry, "default", None, &binding("web", "node-2"), &opts).await.expect_err("already bound");
        assert_eq!(e.code(), 409);
        assert_eq!(
            e.message(),
            "Operation cannot be fulfilled on pods/binding \"web\": pod web is already assigned to node \"node-1\""
        );

        let e =
            create(&registry, "default", Some("gone"), &binding("gone", "node-1"), &opts).await.expect_err("missing");
        assert_eq!(e.code(), 404);
        assert_eq!(e.message(), "pods \"gone\" not found");
        store.close().await.expect("store closes");
    }

    #[tokio::test]
    async fn a_pod_being_deleted_cannot_be_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (registry, store) = registry(dir.path()).await;
        let pods = pods();
        let opts = WriteOptions::default();
        let mut p = pod("held");
        p["metadata"]["finalizers"] = json!(["example.com/hold"]);
        registry.create(pods, Some("default"), p, &opts).await.expect("pod is created");
        registry.delete(pods, Some("default"), "held", &Default::default()).await.expect("deletion starts");
        let e =
            create(&registry, "default", Some("held"), &binding("held", "node-1"), &opts).await.expect_err("deleting");
        assert_eq!(e.code(), 409);
        assert_eq!(
            e.message(),
            "Operation cannot be fulfilled on pods/binding \"held\": pod held is being deleted, cannot be assigned to a host"
        );
        store.close().await.expect("store closes");
    }

    #[tokio::test]
    async fn an_ordinary_update_cannot_change_the_node_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (registry, store) = registry(dir.path()).await;
        let pods = pods();
        let opts = WriteOptions::default();
        registry.create(pods, Some("default"), pod("web"), &opts).await.expect("pod is created");
        create(&registry, "default", Some("web"), &binding("web", "node-1"), &opts).await.expect("bound");
        let mut moved = registry.get(pods, Some("default"), "web").await.expect("pod").value();
        moved["spec"]["nodeName"] = json!("node-2");
        let e = registry.update(pods, Some("default"), "web", None, moved, &opts).await.expect_err("forbidden");
        assert_eq!(e.code(), 422);
        assert!(
            e.message().contains("spec: Forbidden: pod updates may not change fields other than"),
            "{}",
            e.message()
        );
        store.close().await.expect("store closes");
    }
}
