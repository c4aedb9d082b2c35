//! Strategic merge patch, applied the way kube-apiserver applies it
//! (k8s.io/apimachinery `strategicpatch.StrategicMergeMapPatch`, with
//! parallel lists merged and unmatched nulls ignored).
//!
//! The shape of the walk, for readers of the Go original: `merge_map`
//! first honours `$patch` in the map, then `$retainKeys`, then every
//! `$setElementOrder/<list>` together with its list, then the remaining keys
//! one by one: `null` deletes, a key the original lacks is copied (directives
//! and nulls stripped), two maps merge recursively, two lists go through
//! `merge_slice` when the field's strategy is "merge" and are replaced
//! otherwise, anything else is replaced.
//!
//! Merged lists are ordered as Go orders them: items named by the patch
//! follow the patch's order (or `$setElementOrder`'s), server-only items
//! keep their relative order and are interleaved by their original
//! positions, so an item the patch adds lands before the server's items.
//! Keys are processed in document order (Go's map order is random, and the
//! outcome does not depend on it).

use serde_json::{Map, Value};

use super::{Directive, PatchError, gofmt};
use crate::schema::{PatchMeta, SchemaKind, SchemaNode, Schemas, go_quote};

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE: &str = "delete";
const REPLACE: &str = "replace";
const MERGE: &str = "merge";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

const GO_MAP: &str = "map[string]interface {}";
const GO_SLICE: &str = "[]interface {}";

/// The schema a value is merged against. `None` stands for a Go type with
/// no fields to look up (the `uint8` elements of a `[]byte`).
type Schema = Option<SchemaNode<'static>>;
type Object = Map<String, Value>;

/// Applies a strategic merge patch to `original`, an object of the kind
/// `definition` names ("io.k8s.api.apps.v1.Deployment").
pub fn strategic_merge_patch(original: &Value, patch: &Value, definition: &str) -> Result<Value, PatchError> {
    let schema =
        Schemas::get().definition(definition).ok_or_else(|| PatchError::UnknownDefinition(definition.to_string()))?;
    // kube-apiserver decodes the patch into a map[string]interface{} first.
    let patch = match patch {
        Value::Object(patch) => patch.clone(),
        Value::Null => Object::new(),
        other => {
            return Err(PatchError::Malformed(format!(
                "json: cannot unmarshal {} into Go value of type {GO_MAP}",
                json_kind(other)
            )));
        }
    };
    let original = match original {
        Value::Object(original) => original.clone(),
        _ => Object::new(),
    };
    merge_map(original, patch, Some(schema)).map(Value::Object)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn failed(message: impl Into<String>) -> PatchError {
    PatchError::MergeFailed(message.into())
}

fn no_merge_key(map: &Object, key: &str) -> PatchError {
    failed(format!("map: {} does not contain declared merge key: {key}", gofmt::v_map(map)))
}

fn bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    failed(format!("expected a {expected}, but received a {}", gofmt::type_name(actual)))
}

fn bad_patch_type(directive: &Value, map: &Object) -> PatchError {
    failed(format!("unknown patch type: {} in map: {}", gofmt::s(directive), gofmt::s_map(map)))
}

/// The Go dynamic type of a decoded JSON value; values of different types
/// never merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoType {
    Nil,
    Bool,
    Int64,
    Float64,
    String,
    Slice,
    Map,
}

fn go_type(value: &Value) -> GoType {
    match value {
        Value::Null => GoType::Nil,
        Value::Bool(_) => GoType::Bool,
        Value::Number(n) if n.as_i64().is_some() => GoType::Int64,
        Value::Number(_) => GoType::Float64,
        Value::String(_) => GoType::String,
        Value::Array(_) => GoType::Slice,
        Value::Object(_) => GoType::Map,
    }
}

fn merge_map(mut original: Object, mut patch: Object, schema: Schema) -> Result<Object, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        return match directive.as_str() {
            // The patch stands in for the map, nested directives and all.
            Some(REPLACE) => {
                patch.shift_remove(DIRECTIVE_MARKER);
                Ok(patch)
            }
            Some(DELETE) => Ok(Object::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(&mut original, &mut patch, schema)?;

    for (key, value) in patch {
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            (extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)?, true)
        } else {
            (key, false)
        };
        if value.is_null() {
            original.shift_remove(&key);
            continue;
        }
        let same_type = original.get(&key).map(|current| go_type(current) == go_type(&value));
        if same_type != Some(true) {
            if !is_delete_list {
                let mut value = value;
                discard_nulls(&mut value);
                match remove_directives(value) {
                    Some(value) => original.insert(key, value),
                    None => original.shift_remove(&key),
                };
            }
            continue;
        }
        let current = original.get_mut(&key).map(std::mem::take).unwrap_or(Value::Null);
        let merged = match (current, value) {
            (Value::Object(current), Value::Object(value)) => {
                let (field, _) = lookup_field(schema, &key)?;
                Value::Object(merge_map(current, value, field)?)
            }
            (Value::Array(current), Value::Array(value)) => {
                let (items, meta) = lookup_list(schema, &key)?;
                Value::Array(merge_list_field(current, value, items, meta, is_delete_list)?)
            }
            // Scalars of the same type: the patch's value wins.
            (_, value) => value,
        };
        original.insert(key, merged);
    }
    Ok(original)
}

/// The schema and patch metadata of `key` in a struct or map schema
/// (Go's `LookupPatchMetadataForStruct`).
fn lookup_field(schema: Schema, key: &str) -> Result<(Schema, PatchMeta), PatchError> {
    let Some(node) = schema else {
        return Err(failed("merging an object in json but data type is not map or struct, instead is: uint8"));
    };
    let unknown_field = |node: SchemaNode<'static>| {
        failed(format!(
            "unable to find api field in struct {} for the json field {}",
            node.go_struct_name(),
            go_quote(key)
        ))
    };
    match node.kind() {
        SchemaKind::Object if node.is_map() => Ok((node.additional_properties(), PatchMeta::NONE)),
        SchemaKind::Object => match node.property(key) {
            Some(field) => Ok((Some(field), field.patch_meta())),
            None => Err(unknown_field(node)),
        },
        // Go structs with custom JSON forms (RawExtension, FieldsV1, Time...).
        SchemaKind::Any | SchemaKind::IntOrString | SchemaKind::Quantity | SchemaKind::Time => Err(unknown_field(node)),
        other => Err(failed(format!(
            "merging an object in json but data type is not map or struct, instead is: {}",
            go_kind(other, node.format())
        ))),
    }
}

/// The item schema and patch metadata of the list field `key`
/// (Go's `LookupPatchMetadataForSlice`).
fn lookup_list(schema: Schema, key: &str) -> Result<(Schema, PatchMeta), PatchError> {
    let (field, meta) = lookup_field(schema, key)?;
    match field.map(|f| (f.kind(), f)) {
        Some((SchemaKind::Array, field)) => Ok((field.items(), meta)),
        Some((SchemaKind::Bytes, _)) => Ok((None, meta)),
        _ => {
            // Go names the kind of the enclosing type here.
            let parent = if schema.is_some_and(|s| s.is_map()) { "map" } else { "struct" };
            Err(failed(format!("expected slice or array type, but got: {parent}")))
        }
    }
}

/// `reflect.Kind` names of primitive schema kinds.
fn go_kind(kind: SchemaKind, format: Option<&str>) -> &'static str {
    match kind {
        SchemaKind::String => "string",
        SchemaKind::Boolean => "bool",
        SchemaKind::Number => "float64",
        SchemaKind::Integer if format == Some("int32") => "int32",
        SchemaKind::Integer => "int64",
        SchemaKind::Array | SchemaKind::Bytes => "slice",
        _ => "struct",
    }
}

/// `$deleteFromPrimitiveList/finalizers` -> `finalizers`.
fn extract_key(key: &str, prefix: &str) -> Result<String, PatchError> {
    match key.split_once('/') {
        Some((head, rest)) if head == prefix => Ok(rest.to_string()),
        _ => Err(match prefix {
            DELETE_FROM_PRIMITIVE_LIST => PatchError::BadDirective(Directive::DeleteFromPrimitiveList),
            SET_ELEMENT_ORDER => PatchError::BadDirective(Directive::SetElementOrder),
            _ => failed(format!("fail to find unknown prefix {} in {key}", go_quote(prefix))),
        }),
    }
}

/// `$retainKeys`: drops the original's keys not listed; every key the
/// patch sets must be listed.
fn apply_retain_keys(original: &mut Object, patch: &mut Object) -> Result<(), PatchError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else { return Ok(()) };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadDirective(Directive::RetainKeys));
    };
    let retained = |key: &str| retain.iter().any(|r| r.as_str() == Some(key));
    for (key, value) in patch.iter() {
        let directive = key.starts_with(DELETE_FROM_PRIMITIVE_LIST) || key.starts_with(SET_ELEMENT_ORDER);
        if !value.is_null() && !directive && !retained(key) {
            return Err(PatchError::BadDirective(Directive::RetainKeys));
        }
    }
    original.retain(|key, _| retained(key));
    Ok(())
}

/// Processes every `$setElementOrder/<list>` with its list, removing both
/// from the patch.
fn merge_ordered_lists(original: &mut Object, patch: &mut Object, schema: Schema) -> Result<(), PatchError> {
    let directives: Vec<String> = patch.keys().filter(|k| k.starts_with(SET_ELEMENT_ORDER)).cloned().collect();
    for directive in directives {
        let Some(order) = patch.shift_remove(&directive) else { continue };
        let Value::Array(order) = order else { return Err(bad_arg_type(GO_SLICE, &order)) };
        let key = extract_key(&directive, SET_ELEMENT_ORDER)?;
        let as_list = |value: Option<&Value>| match value {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items.clone())),
            Some(other) => Err(bad_arg_type(GO_SLICE, other)),
        };
        let original_list = as_list(original.get(&key))?;
        let patch_list = as_list(patch.get(&key))?;
        let (items, meta) = lookup_list(schema, &key)?;
        let merge_key = meta.merge_key.unwrap_or("");
        validate_order(patch_list.as_deref().unwrap_or_default(), &order, merge_key)?;

        let merged = match (&original_list, &patch_list) {
            (Some(current), None) => current.clone(),
            (None, Some(added)) => added.iter().cloned().filter_map(remove_directives).collect(),
            (Some(current), Some(added)) => merge_list_field(current.clone(), added.clone(), items, meta, false)?,
            (None, None) => continue,
        };
        let (named, server_only) = partition(merged, &order, merge_key)?;
        let current = original_list.unwrap_or_default();
        let element = element_type(&[current.as_slice(), patch_list.as_deref().unwrap_or_default()])?;
        let ordered = normalize_order(named, server_only, &order, &current, merge_key, element)?;
        original.insert(key.clone(), Value::Array(ordered));
        patch.shift_remove(&key);
    }
    Ok(())
}

/// Checks that the patch list names its items in `$setElementOrder`'s order.
fn validate_order(patch_list: &[Value], order: &[Value], merge_key: &str) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let kept = if merge_key.is_empty() { patch_list.to_vec() } else { split_deletions(patch_list.to_vec())?.0 };
    let (mut p, mut o) = (0, 0);
    while p < kept.len() && o < order.len() {
        if kept[p].as_object().is_some_and(|m| m.contains_key(DIRECTIVE_MARKER)) {
            p += 1;
            continue;
        }
        if merge_key_equal(&kept[p], &order[o], merge_key)? {
            p += 1;
        }
        o += 1;
    }
    if p < kept.len() && o >= order.len() {
        return Err(failed(format!(
            "the order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}",
            gofmt::v_list(patch_list),
            gofmt::v_list(order)
        )));
    }
    Ok(())
}

fn merge_key_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool, PatchError> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let key_of = |value: &Value| {
        let map = value.as_object().ok_or_else(|| bad_arg_type(GO_MAP, value))?;
        map.get(merge_key).cloned().ok_or_else(|| no_merge_key(map, merge_key))
    };
    Ok(key_of(left)? == key_of(right)?)
}

/// Go's `mergeSliceHandler`: merge when the field says so (or for a
/// `$deleteFromPrimitiveList`), replace otherwise.
fn merge_list_field(
    original: Vec<Value>,
    patch: Vec<Value>,
    items: Schema,
    meta: PatchMeta,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if meta.merge || is_delete_list {
        merge_list(original, patch, items, meta.merge_key.unwrap_or(""), is_delete_list)
    } else {
        Ok(patch)
    }
}

fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    items: Schema,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let element = element_type(&[original.as_slice(), patch.as_slice()])?;
    let (original, patch, merged) = if element != GoType::Map {
        if is_delete_list {
            return Ok(original.into_iter().filter(|v| !patch.contains(v)).collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for value in original.iter().chain(&patch) {
            if !merged.contains(value) {
                merged.push(value.clone());
            }
        }
        (original, patch, merged)
    } else {
        if merge_key.is_empty() {
            return Err(failed("cannot merge lists without merge key for struct"));
        }
        let (original, patch) = apply_item_directives(original, patch, merge_key)?;
        let merged = merge_items(original.clone(), &patch, merge_key, items)?;
        (original, patch, merged)
    };
    let (named, server_only) = partition(merged, &patch, merge_key)?;
    normalize_order(named, server_only, &patch, &original, merge_key, element)
}

/// `$patch: delete|replace` items of a list of maps; returns the original
/// (or, for replace, the patch items) and the remaining patch items.
fn apply_item_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(map) = item.as_object() else { return Err(bad_arg_type(GO_MAP, &item)) };
        let Some(directive) = map.get(DIRECTIVE_MARKER) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some(DELETE) => {
                let value = map.get(merge_key).ok_or_else(|| no_merge_key(map, merge_key))?;
                while let Some(index) = find_by_key(&original, merge_key, value)? {
                    original.remove(index);
                }
            }
            // Keep going: other directive items are dropped either way.
            Some(REPLACE) => replace = true,
            Some(MERGE) => return Err(failed("merging lists cannot yet be specified in the patch")),
            _ => return Err(bad_patch_type(directive, map)),
        }
    }
    Ok(if replace { (plain, Vec::new()) } else { (original, plain) })
}

/// Merges each patch item into the original item with the same merge key
/// value, appending the others.
fn merge_items(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    items: Schema,
) -> Result<Vec<Value>, PatchError> {
    for item in patch {
        let Some(map) = item.as_object() else { return Err(bad_arg_type(GO_MAP, item)) };
        let value = map.get(merge_key).ok_or_else(|| no_merge_key(map, merge_key))?;
        match find_by_key(&original, merge_key, value)? {
            Some(index) => {
                let current = match std::mem::take(&mut original[index]) {
                    Value::Object(current) => current,
                    _ => Object::new(),
                };
                original[index] = Value::Object(merge_map(current, map.clone(), items)?);
            }
            None => original.push(item.clone()),
        }
    }
    Ok(original)
}

fn find_by_key(list: &[Value], merge_key: &str, value: &Value) -> Result<Option<usize>, PatchError> {
    for (index, item) in list.iter().enumerate() {
        let Some(map) = item.as_object() else {
            return Err(failed(format!("value for key {index} is not a map")));
        };
        if map.get(merge_key) == Some(value) {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// Splits merged items into those named by `by` and the server-only rest.
fn partition(merged: Vec<Value>, by: &[Value], merge_key: &str) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let (mut named, mut server_only) = (Vec::new(), Vec::new());
    for item in merged {
        let present = if merge_key.is_empty() {
            by.contains(&item)
        } else {
            let map = item.as_object().ok_or_else(|| bad_arg_type(GO_MAP, &item))?;
            let value = map.get(merge_key).ok_or_else(|| no_merge_key(map, merge_key))?;
            find_by_key(by, merge_key, value)?.is_some()
        };
        if present { named.push(item) } else { server_only.push(item) }
    }
    Ok((named, server_only))
}

/// The common Go type of the items of some lists.
fn element_type(lists: &[&[Value]]) -> Result<GoType, PatchError> {
    let mut element = None;
    for item in lists.iter().flat_map(|l| l.iter()) {
        let this = go_type(item);
        match element {
            None if this == GoType::Slice => return Err(PatchError::ListOfLists),
            None => element = Some(this),
            Some(previous) if previous != this => {
                let lists: Vec<String> = lists.iter().map(|l| gofmt::v_list(l)).collect();
                return Err(failed(format!("list element types are not identical: [{}]", lists.join(" "))));
            }
            Some(_) => {}
        }
    }
    element.ok_or_else(|| failed("no elements in any of the given slices"))
}

/// Sorts the patch-named items by `patch_order` and the server-only items
/// by `server_order`, then interleaves them (Go's `normalizeElementOrder`).
fn normalize_order(
    named: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    element: GoType,
) -> Result<Vec<Value>, PatchError> {
    let named = sort_by_order(named, patch_order, merge_key, element)?;
    let server_only = sort_by_order(server_only, server_order, merge_key, element)?;
    Ok(interleave(server_only, named, server_order, merge_key, element))
}

/// Position of `value` in `list`: by merge key value for maps (a missing
/// key matches a missing key, as Go's nil == nil), by value otherwise.
fn position(list: &[Value], value: &Value, merge_key: &str, element: GoType) -> Option<usize> {
    fn key_of<'v>(value: &'v Value, merge_key: &str) -> Option<&'v Value> {
        value.as_object().and_then(|m| m.get(merge_key))
    }
    if element == GoType::Map {
        list.iter().position(|item| key_of(item, merge_key) == key_of(value, merge_key))
    } else {
        list.iter().position(|item| item == value)
    }
}

fn sort_by_order(
    list: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    element: GoType,
) -> Result<Vec<Value>, PatchError> {
    let (mut list, deletions) = if element == GoType::Map {
        for item in list.iter().chain(order) {
            let map = item.as_object().ok_or_else(|| bad_arg_type(GO_MAP, item))?;
            if !map.contains_key(merge_key) {
                return Err(no_merge_key(map, merge_key));
            }
        }
        split_deletions(list)?
    } else {
        (list, Vec::new())
    };
    // Go sorts with sort.SliceStable and a "less" that is true whenever an
    // item is not in `order`; this insertion sort is what Go runs for short
    // lists and agrees with it whenever every item is found.
    let less =
        |a: &Value, b: &Value| match (position(order, a, merge_key, element), position(order, b, merge_key, element)) {
            (Some(i), Some(j)) => i < j,
            _ => true,
        };
    for i in 1..list.len() {
        let mut j = i;
        while j > 0 && less(&list[j], &list[j - 1]) {
            list.swap(j, j - 1);
            j -= 1;
        }
    }
    list.extend(deletions);
    Ok(list)
}

/// Items with `$patch: delete` moved after the others.
fn split_deletions(list: Vec<Value>) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let (mut kept, mut deletions) = (Vec::new(), Vec::new());
    for item in list {
        let map = item.as_object().ok_or_else(|| bad_arg_type(GO_MAP, &item))?;
        if map.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some(DELETE) {
            deletions.push(item);
        } else {
            kept.push(item);
        }
    }
    Ok((kept, deletions))
}

/// Go's `mergeSortedSlice`: takes a server-only item first only when both
/// items are in `server_order` and it comes earlier there.
fn interleave(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    element: GoType,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut left, mut right) = (left.into_iter().peekable(), right.into_iter().peekable());
    while let (Some(l), Some(r)) = (left.peek(), right.peek()) {
        let earlier =
            match (position(server_order, l, merge_key, element), position(server_order, r, merge_key, element)) {
                (Some(i), Some(j)) => i < j,
                _ => false,
            };
        let next = if earlier { left.next() } else { right.next() };
        out.extend(next);
    }
    out.extend(left);
    out.extend(right);
    out
}

/// A copy of a value the original lacks: items and maps carrying `$patch`
/// are dropped (`None` when the value itself is one).
fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) if map.contains_key(DIRECTIVE_MARKER) => None,
        Value::Object(map) => {
            Some(Value::Object(map.into_iter().filter_map(|(k, v)| Some((k, remove_directives(v)?))).collect()))
        }
        Value::Array(items) => Some(Value::Array(items.into_iter().filter_map(remove_directives).collect())),
        other => Some(other),
    }
}

/// Nulls in maps are dropped; a patch cannot delete what does not exist.
fn discard_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(discard_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
    const POD: &str = "io.k8s.api.core.v1.Pod";
    const SERVICE: &str = "io.k8s.api.core.v1.Service";

    fn smp(original: Value, patch: Value, definition: &str) -> Value {
        strategic_merge_patch(&original, &patch, definition).unwrap_or_else(|e| panic!("{patch}: {e}"))
    }

    fn smp_err(original: Value, patch: Value, definition: &str) -> String {
        strategic_merge_patch(&original, &patch, definition).expect_err("patch should fail").to_string()
    }

    /// The Deployment of "Update API Objects in Place Using kubectl patch".
    fn patch_demo() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "patch-demo"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {
                        "containers": [{"name": "patch-demo-ctr", "image": "nginx"}],
                        "tolerations": [{"effect": "NoSchedule", "key": "dedicated", "value": "test-team"}],
                    },
                },
            },
        })
    }

    fn pod_spec(deployment: &Value) -> &Value {
        &deployment["spec"]["template"]["spec"]
    }

    #[test]
    fn docs_example_adds_a_container_by_name_before_the_existing_one() {
        let patch =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]}}}});
        let patched = smp(patch_demo(), patch, DEPLOYMENT);
        assert_eq!(
            pod_spec(&patched)["containers"],
            json!([{"name": "patch-demo-ctr-2", "image": "redis"}, {"name": "patch-demo-ctr", "image": "nginx"}])
        );
        assert_eq!(patched["spec"]["replicas"], 2);
    }

    #[test]
    fn docs_example_replaces_tolerations_which_have_no_strategy() {
        let patch = json!({"spec": {"template": {"spec": {"tolerations": [{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]}}}});
        let patched = smp(patch_demo(), patch, DEPLOYMENT);
        assert_eq!(
            pod_spec(&patched)["tolerations"],
            json!([{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}])
        );
        assert_eq!(pod_spec(&patched)["containers"][0]["name"], "patch-demo-ctr");
    }

    #[test]
    fn docs_example_retain_keys_clears_the_rolling_update_of_a_recreate_strategy() {
        let mut original = patch_demo();
        original["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "30%"}});
        let plain = smp(original.clone(), json!({"spec": {"strategy": {"type": "Recreate"}}}), DEPLOYMENT);
        assert_eq!(plain["spec"]["strategy"], json!({"type": "Recreate", "rollingUpdate": {"maxSurge": "30%"}}));
        let retained =
            smp(original, json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}), DEPLOYMENT);
        assert_eq!(retained["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn containers_merge_by_name_and_fields_merge_inside() {
        let original = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"},
        ]}});
        let patch =
            json!({"spec": {"containers": [{"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]}]}});
        assert_eq!(
            smp(original, patch, POD)["spec"]["containers"],
            json!([
                {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]},
                {"name": "b", "image": "b:1"},
            ])
        );
    }

    #[test]
    fn patch_replace_in_a_list_replaces_the_whole_list() {
        let original = json!({"spec": {"containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]}});
        let patch = json!({"spec": {"containers": [{"name": "c", "image": "c"}, {"$patch": "replace"}]}});
        assert_eq!(smp(original, patch, POD)["spec"]["containers"], json!([{"name": "c", "image": "c"}]));
    }

    #[test]
    fn patch_replace_in_a_map_replaces_the_map() {
        let original = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let patch = json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}});
        assert_eq!(smp(original, patch, POD)["metadata"]["labels"], json!({"c": "3"}));
    }

    #[test]
    fn patch_delete_removes_a_list_item_by_merge_key_and_empties_a_map() {
        let original = json!({"spec": {"containers": [{"name": "a"}, {"name": "log-tailer"}]}, "metadata": {"labels": {"a": "1"}}});
        let patch = json!({
            "spec": {"containers": [{"name": "log-tailer", "$patch": "delete"}]},
            "metadata": {"labels": {"$patch": "delete"}},
        });
        let patched = smp(original, patch, POD);
        assert_eq!(patched["spec"]["containers"], json!([{"name": "a"}]));
        assert_eq!(patched["metadata"]["labels"], json!({}));
    }

    #[test]
    fn null_deletes_a_key_and_unmatched_nulls_are_dropped() {
        let original = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let patch = json!({"metadata": {"labels": {"a": null, "z": null}, "annotations": {"x": "1", "y": null}}});
        let patched = smp(original, patch, POD);
        assert_eq!(patched["metadata"], json!({"labels": {"b": "2"}, "annotations": {"x": "1"}}));
    }

    #[test]
    fn primitive_merge_lists_union_and_delete_from_primitive_list_removes() {
        let original = json!({"metadata": {"finalizers": ["a", "b"]}});
        let union = smp(original.clone(), json!({"metadata": {"finalizers": ["c", "a"]}}), POD);
        assert_eq!(union["metadata"]["finalizers"], json!(["c", "a", "b"]));
        let removed = smp(original, json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}), POD);
        assert_eq!(removed["metadata"]["finalizers"], json!(["a"]));
    }

    #[test]
    fn set_element_order_orders_the_merged_list() {
        let original = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "new"}],
        }});
        assert_eq!(
            smp(original, patch, POD)["spec"]["containers"],
            json!([{"name": "c"}, {"name": "a", "image": "new"}, {"name": "b"}])
        );
    }

    #[test]
    fn set_element_order_keeps_server_only_items_at_their_relative_place() {
        let original = json!({"metadata": {"finalizers": ["a", "x", "b"]}});
        let patch = json!({"metadata": {"$setElementOrder/finalizers": ["b", "a"]}});
        assert_eq!(smp(original, patch, POD)["metadata"]["finalizers"], json!(["x", "b", "a"]));
    }

    #[test]
    fn service_ports_merge_by_port() {
        let original = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}});
        let patch = json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}});
        assert_eq!(
            smp(original, patch, SERVICE)["spec"]["ports"],
            json!([{"port": 80, "name": "http"}, {"port": 443, "name": "https", "targetPort": 8443}])
        );
    }

    #[test]
    fn root_patch_replace_stands_in_for_the_object() {
        let patched = smp(
            json!({"metadata": {"name": "a"}, "spec": {}}),
            json!({"$patch": "replace", "metadata": {"name": "b"}}),
            POD,
        );
        assert_eq!(patched, json!({"metadata": {"name": "b"}}));
    }

    #[test]
    fn errors_read_like_kube_apiservers() {
        let original = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(
            smp_err(original.clone(), json!({"spec": {"containers": [{"image": "x"}]}}), POD),
            "map: map[image:x] does not contain declared merge key: name"
        );
        assert_eq!(
            smp_err(original.clone(), json!({"spec": {"containers": [{"$patch": "merge"}]}}), POD),
            "merging lists cannot yet be specified in the patch"
        );
        assert_eq!(
            smp_err(original.clone(), json!({"spec": {"$patch": "foo"}}), POD),
            "unknown patch type: foo in map: map[$patch:foo]"
        );
        assert_eq!(
            smp_err(original.clone(), json!({"spec": {"$retainKeys": ["hostname"], "subdomain": "x"}}), POD),
            "invalid patch format of retainKeys"
        );
        assert_eq!(
            smp_err(
                json!({"metadata": {"finalizers": ["a"]}}),
                json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
                POD
            ),
            "invalid patch format of primitive list"
        );
        assert_eq!(
            smp_err(json!({"spec": {"foo": {"a": 1}}}), json!({"spec": {"foo": {"b": 2}}}), POD),
            "unable to find api field in struct PodSpec for the json field \"foo\""
        );
        assert_eq!(
            smp_err(json!({"metadata": {"finalizers": [["a"]]}}), json!({"metadata": {"finalizers": [["b"]]}}), POD),
            "lists of lists are not supported"
        );
        assert_eq!(
            strategic_merge_patch(&original, &json!([1]), POD),
            Err(PatchError::Malformed(
                "json: cannot unmarshal array into Go value of type map[string]interface {}".into()
            ))
        );
    }

    #[test]
    fn new_fields_are_copied_without_directives() {
        let patch = json!({"spec": {"containers": [{"name": "a"}], "volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "$patch": "delete"}]}});
        let patched = smp(json!({}), patch, POD);
        assert_eq!(patched["spec"]["volumes"], json!([{"name": "v", "emptyDir": {}}]));
    }

    #[test]
    fn scalars_and_mismatched_types_are_replaced() {
        let original = json!({"spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}}});
        let patch = json!({"spec": {"replicas": 3, "selector": "oops"}});
        assert_eq!(smp(original, patch, DEPLOYMENT)["spec"], json!({"replicas": 3, "selector": "oops"}));
    }
}
