//! Per-kind rules applied on every write, as kube-apiserver's registry
//! strategies apply them: what create resets, what an update of the main
//! resource or of `/status` may change, and kind-specific validation.
//!
//! The generic rules live here; kinds with their own semantics (Services,
//! Pods, ...) override them through [`Strategy`].

use serde_json::{Value, json};
use svcnet_api::resources::ResourceInfo;

use svcnet_api::validation::{Context, FieldError};

use crate::error::FieldCause;

/// Validation errors as Status causes.
pub fn causes(errors: Vec<FieldError>) -> Vec<FieldCause> {
    errors.into_iter().map(|e| FieldCause { reason: e.reason(), message: e.body(), field: e.field.clone() }).collect()
}
use crate::object;

/// Hooks a kind may override. Defaults implement the generic behaviour.
pub trait Strategy: Send + Sync {
    /// Called on create after metadata is filled in: reset fields a client
    /// cannot set and apply defaults.
    fn prepare_for_create(&self, resource: &ResourceInfo, obj: &mut Value) {
        if resource.has_status
            && !keeps_status_on_create(resource)
            && let Some(map) = obj.as_object_mut()
        {
            map.remove("status");
        }
        if resource.plural == "namespaces" {
            obj["spec"]["finalizers"] = json!(["kubernetes"]);
            obj["status"] = json!({ "phase": "Active" });
        }
        if resource.plural == "pods" && obj.get("status").is_none() {
            obj["status"] = json!({ "phase": "Pending", "qosClass": "BestEffort" });
        }
        if resource.plural == "services" {
            svcnet_api::validation::prepare_service_create(obj);
        }
    }

    /// Called on an update of the main resource: by default the status is
    /// kept from the old object, as only `/status` may change it.
    fn prepare_for_update(&self, resource: &ResourceInfo, new: &mut Value, old: &Value) {
        if resource.has_status {
            copy_field(new, old, "status");
        }
        if resource.plural == "namespaces" {
            // spec.finalizers changes only through /finalize.
            copy_field(new, old, "spec");
        }
        if resource.plural == "services" {
            svcnet_api::validation::prepare_service_update(new, old);
        }
        if resource.plural == "pods" {
            // Ephemeral containers change only through /ephemeralcontainers.
            keep_ephemeral_containers(new, old);
        }
    }

    /// Called on an update of `pods/{name}/ephemeralcontainers`: only
    /// spec.ephemeralContainers is taken from the request (kube's
    /// `dropNonEphemeralContainerUpdates`).
    fn prepare_for_ephemeral_containers_update(&self, new: &mut Value, old: &Value) {
        let mut merged = old.clone();
        keep_ephemeral_containers(&mut merged, new);
        if let (Some(rv), Some(meta)) =
            (new.pointer("/metadata/resourceVersion").cloned(), object::meta_mut(&mut merged))
        {
            meta.insert("resourceVersion".into(), rv);
        }
        *new = merged;
    }

    /// Called on an update of `/status`: everything but the status is kept.
    fn prepare_for_status_update(&self, _resource: &ResourceInfo, new: &mut Value, old: &Value) {
        let status = new.get("status").cloned();
        let mut merged = old.clone();
        if let Some(map) = merged.as_object_mut() {
            match status {
                Some(s) => map.insert("status".into(), s),
                None => map.remove("status"),
            };
        }
        // resourceVersion from the request still guards the write.
        if let (Some(rv), Some(meta)) =
            (new.pointer("/metadata/resourceVersion").cloned(), object::meta_mut(&mut merged))
        {
            meta.insert("resourceVersion".into(), rv);
        }
        *new = merged;
    }

    /// Kind-specific validation of a new object (kube-apiserver's rules,
    /// from `svcnet_api::validation`).
    fn validate(&self, resource: &ResourceInfo, obj: &Value, ctx: &Context) -> Vec<FieldCause> {
        causes(svcnet_api::validation::validate(resource.kind, obj, ctx))
    }

    /// Kind-specific validation of an update.
    fn validate_update(&self, resource: &ResourceInfo, new: &Value, old: &Value, ctx: &Context) -> Vec<FieldCause> {
        causes(svcnet_api::validation::validate_update(resource.kind, new, old, ctx))
    }
}

/// Nodes register with their status, and pods may be created with one
/// (kubelet mirror pods, tests standing in for a kubelet); every other kind
/// starts with an empty status, which only `/status` writes fill.
fn keeps_status_on_create(resource: &ResourceInfo) -> bool {
    matches!(resource.plural, "nodes" | "pods")
}

/// Sets `into`'s spec.ephemeralContainers to `from`'s.
fn keep_ephemeral_containers(into: &mut Value, from: &Value) {
    let list = from.pointer("/spec/ephemeralContainers").cloned();
    let Some(spec) = into.get_mut("spec").and_then(Value::as_object_mut) else { return };
    match list {
        Some(l) => spec.insert("ephemeralContainers".into(), l),
        None => spec.remove("ephemeralContainers"),
    };
}

fn copy_field(new: &mut Value, old: &Value, field: &str) {
    let Some(map) = new.as_object_mut() else { return };
    match old.get(field) {
        Some(v) => map.insert(field.into(), v.clone()),
        None => map.remove(field),
    };
}

/// The generic strategy.
pub struct Generic;
impl Strategy for Generic {}

/// Whether writes to this resource bump `metadata.generation` when the
/// spec changes (controllers compare it with status.observedGeneration).
pub fn tracks_generation(resource: &ResourceInfo) -> bool {
    matches!(
        resource.plural,
        "deployments" | "replicasets" | "statefulsets" | "daemonsets" | "ingresses" | "ingressclasses" | "pods"
    )
}

/// How an object's name must look, per kind.
pub fn name_errors(resource: &ResourceInfo, name: &str) -> Vec<String> {
    match resource.plural {
        "namespaces" => object::dns1123_label_errors(name),
        "services" => object::dns1035_label_errors(name),
        "events" => object::path_segment_errors(name),
        _ => object::dns1123_subdomain_errors(name),
    }
}

/// The strategy for a resource.
pub fn for_resource(_resource: &ResourceInfo) -> &'static dyn Strategy {
    &Generic
}
