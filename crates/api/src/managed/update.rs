//! Ownership changes of non-apply writes (create, update, patch), as
//! kube-apiserver's `FieldManager.UpdateNoErrors` records them.

use serde_json::{Value, json};

use super::entries::{Entry, MAX_UPDATE_MANAGERS, Managed};
use super::typed::{compare, fill_value_structs};
use super::{Kind, Operation, UNKNOWN_MANAGER, managed_fields_of, set_managed_fields, stripped_fields};

/// Records in `new.metadata.managedFields` what a non-apply write by
/// `manager` changed from `old` (`None` for a create).
///
/// Fields of `new` added or changed relative to `old` become owned by
/// `manager` with operation "Update" (merged into its existing entry for
/// the same apiVersion and subresource, whose `time` becomes `now`) and
/// leave every other entry; fields `new` no longer has leave every entry;
/// entries left empty are dropped. A write that changes nothing leaves the
/// entries as they were. `subresource` is `Some("status")` for writes to
/// `/status`.
///
/// The managedFields `new` carries are what the client sent: as in
/// Kubernetes, on the main resource they replace the live entries when
/// they decode and are not empty (a client may edit them), `[]` (or `[{}]`)
/// clears them, and absent, empty or undecodable ones keep the live
/// entries. Writes to a subresource always keep the live entries. An
/// existing object without entries stays untracked until its next apply.
/// Should recording fail (an unknown definition), `new` keeps `old`'s
/// managedFields.
///
/// Known differences from kube-apiserver: which fields a write ignores is
/// `status` (main resource) or `spec` (`status` subresource) for every
/// kind, where Kubernetes takes them from each kind's strategy (some also
/// reset labels or owner references); entries of other apiVersions are
/// read as if they were of the served one (one version is served per
/// kind, so there is nothing to convert).
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    definition: &str,
    now: &str,
) {
    if !track(old, new, manager, subresource.unwrap_or(""), definition, now) {
        set_managed_fields(new, old.and_then(managed_fields_of).cloned());
    }
}

fn track(old: Option<&Value>, new: &mut Value, manager: &str, subresource: &str, definition: &str, now: &str) -> bool {
    let Some(kind) = Kind::new(definition, new) else { return false };
    let live_fields = old.and_then(managed_fields_of);
    let sent = managed_fields_of(new);
    let managed = if !subresource.is_empty() {
        Managed::decode(live_fields).unwrap_or_default()
    } else if is_reset(sent) {
        Managed::default()
    } else {
        match Managed::decode(sent) {
            Ok(managed) if !managed.is_empty() => managed,
            _ => Managed::decode(live_fields).unwrap_or_default(),
        }
    };
    set_managed_fields(new, None);
    if managed.is_empty() && old.is_some() {
        return true;
    }
    let old = old.map_or_else(|| json!({}), |old| comparable(old, kind.ignored_field(subresource)));
    let managed = record_update(&kind, old, new, managed, manager, subresource, now);
    set_managed_fields(new, managed.encode());
    true
}

/// A copy of `object` to compare, without `metadata.managedFields` and
/// without the top-level field `skip`.
fn comparable(object: &Value, skip: Option<&str>) -> Value {
    let Value::Object(map) = object else { return object.clone() };
    let copy = map.iter().filter(|(key, _)| Some(key.as_str()) != skip).map(|(key, value)| {
        let value = match value {
            Value::Object(meta) if key == "metadata" => Value::Object(
                meta.iter().filter(|(k, _)| *k != "managedFields").map(|(k, v)| (k.clone(), v.clone())).collect(),
            ),
            other => other.clone(),
        };
        (key.clone(), value)
    });
    Value::Object(copy.collect())
}

/// managedFields `[]` or `[{}]`: the client asks to clear them.
fn is_reset(fields: Option<&Value>) -> bool {
    let zero = |v: &Value| match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    };
    match fields {
        Some(Value::Array(items)) => match items.as_slice() {
            [] => true,
            [Value::Object(entry)] => entry.values().all(zero),
            _ => false,
        },
        _ => false,
    }
}

/// The entries after `manager` wrote `new` over `old` (neither carrying
/// managedFields). `old` is taken to be filled in place, saving a copy.
pub(crate) fn record_update(
    kind: &Kind,
    old: Value,
    new: &Value,
    mut managed: Managed,
    manager: &str,
    subresource: &str,
    now: &str,
) -> Managed {
    // The field this write does not own (all of `spec` on a status write)
    // is left out of both sides rather than filled, compared, and then
    // dropped from the comparison: the result is the same.
    let skip = kind.ignored_field(subresource);
    let (mut before, mut after) = (old, comparable(new, skip));
    if let (Some(field), Value::Object(map)) = (skip, &mut before) {
        map.remove(field);
    }
    fill_value_structs(&mut before, kind.ty);
    fill_value_structs(&mut after, kind.ty);
    let comparison = compare(Some(&before), Some(&after), kind.ty).exclude(&kind.ignored(subresource));
    let changed = comparison.changed();
    for (_, entry) in managed.iter_mut() {
        entry.set = entry.set.difference(&changed).difference(&comparison.removed);
    }
    managed.drop_empty();
    let taken = changed.difference(&stripped_fields());
    if !taken.is_empty() {
        let manager = if manager.is_empty() { UNKNOWN_MANAGER } else { manager };
        let entry = Entry::new(manager, Operation::Update, &kind.api_version, subresource);
        match managed.get_mut(&entry.identifier()) {
            Some(existing) => {
                existing.set = existing.set.union(&taken);
                existing.time = Some(now.to_string());
            }
            None => managed.insert(Entry { set: taken, time: Some(now.to_string()), ..entry }),
        }
    }
    managed.cap_updaters(MAX_UPDATE_MANAGERS);
    managed
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "io.k8s.api.core.v1.Service";
    const NOW: &str = "2025-01-01T00:00:00Z";

    fn service() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]},
        })
    }

    #[test]
    fn a_create_records_everything_but_identity_fields_like_kubectl_create() {
        let mut created = service();
        track_update(None, &mut created, "kubectl-create", None, SERVICE, NOW);
        assert_eq!(
            created["metadata"]["managedFields"],
            json!([{
                "manager": "kubectl-create",
                "operation": "Update",
                "apiVersion": "v1",
                "time": NOW,
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {
                        "f:ports": {
                            ".": {},
                            "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}},
                        },
                        "f:selector": {},
                    },
                },
            }])
        );
    }

    #[test]
    fn an_update_that_changes_nothing_keeps_the_entries_and_their_time() {
        let mut created = service();
        track_update(None, &mut created, "kubectl-create", None, SERVICE, NOW);
        let mut updated = created.clone();
        track_update(Some(&created), &mut updated, "kubectl-edit", None, SERVICE, "2026-01-01T00:00:00Z");
        assert_eq!(updated["metadata"]["managedFields"], created["metadata"]["managedFields"]);
    }

    #[test]
    fn status_changes_on_the_main_resource_are_not_owned() {
        let mut created = service();
        track_update(None, &mut created, "kubectl-create", None, SERVICE, NOW);
        let mut updated = created.clone();
        updated["status"] = json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}});
        track_update(Some(&created), &mut updated, "controller", None, SERVICE, NOW);
        assert_eq!(updated["metadata"]["managedFields"], created["metadata"]["managedFields"]);
        let mut status = created.clone();
        status["status"] = json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}});
        track_update(Some(&created), &mut status, "controller", Some("status"), SERVICE, NOW);
        let entries = status["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
        assert_eq!(entries.len(), 2);
        let controller = entries.iter().find(|e| e["manager"] == "controller").cloned().unwrap_or_default();
        assert_eq!(controller["subresource"], "status");
        assert_eq!(controller["fieldsV1"], json!({"f:status": {"f:loadBalancer": {"f:ingress": {}}}}));
    }

    #[test]
    fn sending_an_empty_list_clears_managed_fields_until_the_next_apply() {
        let mut created = service();
        track_update(None, &mut created, "kubectl-create", None, SERVICE, NOW);
        let mut cleared = created.clone();
        cleared["metadata"]["managedFields"] = json!([]);
        cleared["metadata"]["labels"]["x"] = json!("y");
        track_update(Some(&created), &mut cleared, "kubectl-edit", None, SERVICE, NOW);
        assert!(managed_fields_of(&cleared).is_none());
        let mut again = cleared.clone();
        again["spec"]["type"] = json!("NodePort");
        track_update(Some(&cleared), &mut again, "kubectl-edit", None, SERVICE, NOW);
        assert!(managed_fields_of(&again).is_none());
    }

    #[test]
    fn an_unknown_definition_keeps_the_live_entries() {
        let mut created = service();
        track_update(None, &mut created, "kubectl-create", None, SERVICE, NOW);
        let mut updated = created.clone();
        updated["metadata"]["managedFields"] = json!([]);
        track_update(Some(&created), &mut updated, "x", None, "io.example.Nope", NOW);
        assert_eq!(updated["metadata"]["managedFields"], created["metadata"]["managedFields"]);
    }
}
