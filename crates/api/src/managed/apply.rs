//! Server-side apply: merging an applied configuration into the live
//! object, with conflicts, pruning and ownership, as kube-apiserver's field
//! manager does it.

use serde_json::{Value, json};

use super::entries::{Entry, Managed};
use super::fieldpath::{FieldSet, values_equal, write_go_json};
use super::typed::{compare, drop_null_fields, fill_value_structs, merge, prune, to_field_set, validate};
use super::update::record_update;
use super::{
    ApplyError, BEFORE_FIRST_APPLY, Conflict, KUBECTL, Kind, LAST_APPLIED, Operation, UNKNOWN_MANAGER,
    managed_fields_of, set_managed_fields, stripped_fields, without_managed_fields,
};

/// Applies the configuration `applied` for `manager` to `live` (`None`
/// creates the object from it) and returns the resulting object with its
/// managedFields. `definition` names the kind ("io.k8s.api.core.v1.Service");
/// `now` is the RFC 3339 time recorded for the changes.
///
/// - Fields set in `applied` are set: maps and structs merge, associative
///   lists merge item by item (keyed items, set values), atomic lists,
///   maps and structs are replaced.
/// - A field another manager owns (through Apply or Update) whose value the
///   apply changes is a conflict, reported as [`ApplyError::Conflicts`]
///   unless `force`, which moves the field to `manager`. Setting a field to
///   the value it has shares its ownership instead.
/// - What `manager` applied last time and no longer applies is removed,
///   unless another manager owns it; list items and map entries go with
///   everything inside them.
/// - `manager`'s Apply entry becomes exactly the fields of `applied`
///   (less the untracked ones); empty entries disappear.
/// - `status` in a configuration applied to the main resource is ignored.
///
/// As in Kubernetes, the manager "kubectl" may take over fields that
/// client-side apply recorded in the last-applied annotation without
/// conflicts, and keeps that annotation up to date; an object without
/// managedFields is first attributed to "before-first-apply".
///
/// Known differences from kube-apiserver: the object is not defaulted or
/// validated here (the API server does that before storing it); entries
/// gain their `time` when the object changes, and a new entry of an apply
/// that changes nothing gets `now` too, where Kubernetes leaves it without
/// a time; the `status` subresource is told apart only by ignoring `spec`.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    definition: &str,
    now: &str,
) -> Result<Value, ApplyError> {
    apply_to_subresource(live, applied, manager, None, force, definition, now)
}

/// [`apply`] through a subresource (`Some("status")` for
/// `kubectl apply --server-side --subresource=status`): the entry is
/// recorded with that subresource and only `status` is applied.
pub fn apply_to_subresource(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    subresource: Option<&str>,
    force: bool,
    definition: &str,
    now: &str,
) -> Result<Value, ApplyError> {
    let kind = Kind::new(definition, applied).ok_or_else(|| ApplyError::UnknownDefinition(definition.to_string()))?;
    let subresource = subresource.unwrap_or("");
    check_configuration(&kind, applied)?;
    let mut managed = Managed::decode(live.and_then(managed_fields_of)).map_err(ApplyError::InvalidManagedFields)?;
    let live_object = live.map_or_else(|| json!({}), without_managed_fields);
    if managed.is_empty() && live.is_some() {
        managed = record_update(&kind, json!({}), &live_object, managed, BEFORE_FIRST_APPLY, subresource, now);
    }
    let manager_id = if manager.is_empty() { UNKNOWN_MANAGER } else { manager };
    let request = Request { kind: &kind, live: &live_object, applied, manager: manager_id, subresource, now };
    let (mut object, managed) = match request.apply(managed.clone(), force) {
        Err(ApplyError::Conflicts(conflicts)) if manager == KUBECTL => {
            // Fields client-side apply set, with the values it set, are
            // taken over from their owners rather than conflicting.
            let Some(allowed) = allowed_by_last_applied(&kind, &live_object) else {
                return Err(ApplyError::Conflicts(conflicts));
            };
            let remaining: Vec<Conflict> = conflicts.into_iter().filter(|c| !allowed.has(&c.path.0)).collect();
            if !remaining.is_empty() {
                return Err(ApplyError::Conflicts(remaining));
            }
            request.apply(managed, true)?
        }
        outcome => outcome?,
    };
    if manager == KUBECTL {
        update_last_applied(&mut object, applied);
    }
    drop_null_fields(&mut object, kind.ty);
    set_managed_fields(&mut object, managed.encode());
    Ok(object)
}

/// The checks kube-apiserver makes of an applied configuration before
/// merging it.
fn check_configuration(kind: &Kind, applied: &Value) -> Result<(), ApplyError> {
    let Value::Object(config) = applied else {
        return Err(ApplyError::NotAnObject(json_type(applied)));
    };
    let text = |field: &str| config.get(field).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind_name) = (text("apiVersion"), text("kind"));
    if api_version != kind.api_version || kind_name != kind.kind {
        return Err(ApplyError::InvalidObjectType(group_version_kind(api_version, kind_name)));
    }
    if managed_fields_of(applied).is_some_and(|f| !f.is_null()) {
        return Err(ApplyError::ManagedFieldsNotNil);
    }
    let errors = validate(applied, kind.ty);
    if errors.is_empty() {
        return Ok(());
    }
    let metadata = |field: &str| applied.pointer(&format!("/metadata/{field}")).and_then(Value::as_str).unwrap_or("");
    let object =
        format!("{}/{}; {}", metadata("namespace"), metadata("name"), group_version_kind(api_version, kind_name));
    let errors = match errors.as_slice() {
        [one] => one.clone(),
        many => format!("errors:\n  {}", many.join("\n  ")),
    };
    Err(ApplyError::InvalidConfiguration { object, errors })
}

/// Go's `GroupVersionKind.String()`: "apps/v1, Kind=Deployment",
/// "/v1, Kind=Service".
fn group_version_kind(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    format!("{group}/{version}, Kind={kind}")
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// One apply, before the last-applied handling around it.
struct Request<'r> {
    kind: &'r Kind,
    /// The live object without managedFields (`{}` on create).
    live: &'r Value,
    applied: &'r Value,
    manager: &'r str,
    subresource: &'r str,
    now: &'r str,
}

impl Request<'_> {
    fn apply(&self, mut managed: Managed, force: bool) -> Result<(Value, Managed), ApplyError> {
        let ty = self.kind.ty;
        let ignored = self.kind.ignored(self.subresource);
        let mut merged = merge(Some(self.live), Some(&self.effective_configuration()), ty).unwrap_or_else(|| json!({}));

        let entry = Entry::new(self.manager, Operation::Apply, &self.kind.api_version, self.subresource);
        let id = entry.identifier();
        let last = managed.remove(&id);
        let set = to_field_set(self.applied, ty).recursive_difference(&ignored);
        let time = last.as_ref().and_then(|e| e.time.clone());
        managed.insert(Entry { set, time, ..entry });
        if let Some(last) = last.filter(|e| !e.set.is_empty()) {
            prune(&mut merged, ty, &last.set, &managed.union());
        }

        let (mut before, mut after) = (self.live.clone(), merged.clone());
        fill_value_structs(&mut before, ty);
        fill_value_structs(&mut after, ty);
        let comparison = compare(Some(&before), Some(&after), ty).exclude(&ignored);
        let changed = comparison.changed();
        let mut conflicts = Vec::new();
        for (_, entry) in managed.iter().filter(|(other, _)| **other != id) {
            let clash = entry.set.intersection(&changed);
            conflicts.extend(clash.paths().into_iter().map(|path| Conflict::new(entry, path)));
        }
        if !force && !conflicts.is_empty() {
            return Err(ApplyError::Conflicts(conflicts));
        }
        for (other, entry) in managed.iter_mut() {
            if *other != id {
                entry.set = entry.set.difference(&changed).difference(&comparison.removed);
            }
        }
        if let Some(mine) = managed.get_mut(&id) {
            mine.set = mine.set.difference(&stripped_fields());
        }
        managed.drop_empty();

        let changed_object = !values_equal(self.live, &merged);
        if let Some(mine) = managed.get_mut(&id) {
            if changed_object || mine.time.is_none() {
                mine.time = Some(self.now.to_string());
            }
        }
        let object = if changed_object { merged } else { self.live.clone() };
        Ok((object, managed))
    }

    /// The part of the configuration that takes effect: not `status` on
    /// the main resource (the API server keeps the live status), only
    /// `status` on the status subresource.
    fn effective_configuration(&self) -> Value {
        let mut config = self.applied.clone();
        if let Value::Object(map) = &mut config {
            match self.subresource {
                "" => {
                    map.remove("status");
                }
                "status" => map.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "status")),
                _ => {}
            }
        }
        config
    }
}

/// The fields of the last-applied annotation that still hold the values it
/// recorded: "kubectl" may take these over without conflicts when it
/// switches an object from client-side to server-side apply.
fn allowed_by_last_applied(kind: &Kind, live: &Value) -> Option<FieldSet> {
    let text = live.get("metadata")?.get("annotations")?.get(LAST_APPLIED)?.as_str()?;
    let last: Value = serde_json::from_str(text).ok()?;
    if last.get("apiVersion").and_then(Value::as_str) != Some(kind.api_version.as_str()) {
        return None;
    }
    if !validate(&last, kind.ty).is_empty() {
        return None;
    }
    let mut live = live.clone();
    fill_value_structs(&mut live, kind.ty);
    let comparison = compare(Some(&last), Some(&live), kind.ty);
    let set = to_field_set(&last, kind.ty);
    Some(set.difference(&comparison.modified).difference(&comparison.added).difference(&comparison.removed))
}

/// Rewrites an existing last-applied annotation to the configuration just
/// applied (without the annotation), as kubectl would write it: JSON with
/// sorted keys and a final newline.
fn update_last_applied(object: &mut Value, applied: &Value) {
    let has_annotation = object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !has_annotation {
        return;
    }
    let mut config = applied.clone();
    if let Some(Value::Object(annotations)) = config.pointer_mut("/metadata/annotations") {
        annotations.remove(LAST_APPLIED);
    }
    let mut text = String::new();
    write_go_json(&mut text, &config);
    text.push('\n');
    if let Some(Value::Object(annotations)) = object.pointer_mut("/metadata/annotations") {
        annotations.insert(LAST_APPLIED.into(), Value::String(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "io.k8s.api.core.v1.Service";
    const NOW: &str = "2025-01-01T00:00:00Z";

    fn config() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        })
    }

    #[test]
    fn the_configuration_must_be_of_the_resource_kind_without_managed_fields() {
        let mut wrong = config();
        wrong["apiVersion"] = json!("apps/v1");
        assert_eq!(
            apply(None, &wrong, "m", false, SERVICE, NOW),
            Err(ApplyError::InvalidObjectType("apps/v1, Kind=Service".into()))
        );
        let mut carrying = config();
        carrying["metadata"]["managedFields"] = json!([]);
        assert_eq!(apply(None, &carrying, "m", false, SERVICE, NOW), Err(ApplyError::ManagedFieldsNotNil));
        assert_eq!(apply(None, &json!([1]), "m", false, SERVICE, NOW), Err(ApplyError::NotAnObject("array")));
    }

    #[test]
    fn invalid_configurations_are_reported_like_kube() {
        let mut invalid = config();
        invalid["metadata"]["namespace"] = json!("default");
        invalid["spec"]["readOnly"] = json!(true);
        let error = apply(None, &invalid, "m", false, SERVICE, NOW).expect_err("invalid");
        assert_eq!(
            error.to_string(),
            "failed to create typed patch object (default/web; /v1, Kind=Service): .spec.readOnly: field not declared in schema"
        );
    }

    #[test]
    fn an_apply_that_changes_nothing_returns_the_live_object() {
        let created = apply(None, &config(), "m", false, SERVICE, NOW).expect("created");
        let again = apply(Some(&created), &config(), "m", false, SERVICE, "2026-01-01T00:00:00Z").expect("applied");
        assert_eq!(again, created);
    }

    #[test]
    fn kubectl_takes_over_what_client_side_apply_set_without_conflicts() {
        let mut last_applied = config();
        last_applied["spec"]["type"] = json!("ClusterIP");
        let mut live = last_applied.clone();
        let mut text = String::new();
        write_go_json(&mut text, &last_applied);
        live["metadata"]["annotations"] = json!({LAST_APPLIED: text});
        let mut created = live.clone();
        crate::managed::track_update(None, &mut created, "kubectl-client-side-apply", None, SERVICE, NOW);

        let mut changed = config();
        changed["spec"]["selector"] = json!({"app": "web2"});
        let error = apply(Some(&created), &changed, "other", false, SERVICE, NOW).expect_err("conflicts");
        assert!(error.to_string().contains(r#"conflict with "kubectl-client-side-apply" using v1: .spec.selector"#));
        let mut relabelled = config();
        relabelled["metadata"]["labels"]["tier"] = json!("back");
        let applied = apply(Some(&created), &relabelled, KUBECTL, false, SERVICE, NOW).expect("taken over");
        assert_eq!(applied["metadata"]["labels"]["tier"], "back");
        let annotation = applied["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap_or("");
        assert!(
            annotation.ends_with("}\n") && annotation.contains(r#""tier":"back""#) && !annotation.contains("ClusterIP")
        );
        let entries = applied["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
        let client_side =
            entries.iter().find(|e| e["manager"] == "kubectl-client-side-apply").cloned().unwrap_or_default();
        assert!(client_side["fieldsV1"]["f:metadata"]["f:labels"].get("f:tier").is_none());
    }
}
