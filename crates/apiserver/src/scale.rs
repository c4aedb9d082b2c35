//! The `/scale` subresource: an autoscaling/v1 Scale view of a workload's
//! replicas, as `kubectl scale` and autoscalers use it.

use serde_json::{Value, json};
use svcnet_api::resources::ResourceInfo;

use crate::error::{ApiError, FieldCause, Result};
use crate::registry::{Registry, WriteOptions, Written};

/// The Scale of a Deployment or ReplicaSet.
pub fn from_object(resource: &ResourceInfo, obj: &Value) -> Result<Value> {
    if !resource.has_scale {
        return Err(ApiError::NoRoute);
    }
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut scale_meta = json!({});
    for field in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = meta.get(field) {
            scale_meta[field] = v.clone();
        }
    }
    let selector = obj.pointer("/spec/selector").map(selector_string).unwrap_or_default();
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": { "replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1) },
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    }))
}

/// A label selector object rendered as `a=b,c in (d)`.
fn selector_string(sel: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e.get("operator").and_then(Value::as_str).unwrap_or_default() {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

/// Reads spec.replicas out of a Scale, validated as kube-apiserver does.
pub fn replicas(resource: &ResourceInfo, name: &str, scale: &Value) -> Result<i64> {
    let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            vec![FieldCause::invalid("spec.replicas", &json!(replicas), "must be greater than or equal to 0")],
        ));
    }
    let _ = resource;
    Ok(replicas)
}

/// PUT on /scale: sets the workload's replicas.
pub async fn update(
    registry: &Registry,
    resource: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    scale: Value,
    opts: &WriteOptions,
) -> Result<Written> {
    let n = replicas(resource, name, &scale)?;
    let precondition = scale.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(str::to_string);
    write_replicas(registry, resource, ns, name, n, precondition, opts).await
}

/// Writes `replicas` into the workload and answers with its new Scale.
pub async fn write_replicas(
    registry: &Registry,
    resource: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    replicas: i64,
    precondition: Option<String>,
    opts: &WriteOptions,
) -> Result<Written> {
    let w = registry
        .patch(resource, ns, name, None, opts, |current| {
            if let Some(rv) = &precondition {
                let actual = current.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or_default();
                if !rv.is_empty() && rv != actual {
                    return Err(ApiError::conflict_modified(resource.group, resource.plural, name));
                }
            }
            let mut next = current.clone();
            next["spec"]["replicas"] = json!(replicas);
            Ok(next)
        })
        .await?;
    Ok(Written { object: from_object(resource, &w.object)?, warnings: w.warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_reports_replicas_and_the_selector_as_a_string() {
        let res = svcnet_api::resources::by_plural("apps", "deployments").expect("deployments");
        let d = json!({
            "metadata": { "name": "web", "namespace": "default", "resourceVersion": "5" },
            "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "web" },
                "matchExpressions": [{ "key": "tier", "operator": "In", "values": ["a", "b"] }] } },
            "status": { "replicas": 2 },
        });
        let s = from_object(res, &d).expect("scale");
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=web,tier in (a,b)");
        assert_eq!(s["metadata"]["resourceVersion"], "5");
    }
}
