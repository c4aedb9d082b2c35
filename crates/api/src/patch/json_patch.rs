//! JSON patch (RFC 6902) as evanphx/json-patch v4 applies it inside
//! kube-apiserver, including the behaviours clients can observe:
//!
//! - `replace` of a missing object member adds it, and `copy` from a
//!   missing member copies `null` (the library only checks array bounds);
//! - negative array indices count from the end;
//! - a path is split on `/` with its first segment dropped, so a path
//!   without a leading `/` still addresses the root's members;
//! - `test` with a `null` (or absent) value passes for a missing member;
//! - error texts, down to the one that quotes the key rather than the path.

use serde_json::{Map, Value};

use super::PatchError;

/// Applies an RFC 6902 patch document (a JSON array of operations).
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let operations = decode(patch)?;
    let mut doc = match target {
        Value::Object(_) | Value::Array(_) => target.clone(),
        other => {
            return Err(failed(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.partialDoc",
                json_kind(other)
            )));
        }
    };
    for operation in operations {
        apply(&mut doc, operation)?;
    }
    Ok(doc)
}

/// `jsonpatch.DecodePatch`: an array whose elements are objects (or null).
fn decode(patch: &Value) -> Result<Vec<Option<&Map<String, Value>>>, PatchError> {
    let items = match patch {
        Value::Array(items) => items,
        Value::Null => return Ok(Vec::new()),
        other => {
            return Err(PatchError::Malformed(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                json_kind(other)
            )));
        }
    };
    items
        .iter()
        .map(|item| match item {
            Value::Object(operation) => Ok(Some(operation)),
            Value::Null => Ok(None),
            other => Err(PatchError::Malformed(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                json_kind(other)
            ))),
        })
        .collect()
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

fn failed(message: String) -> PatchError {
    PatchError::JsonPatchFailed(message)
}

const MISSING: &str = "missing value";
const INVALID_INDEX: &str = "invalid index referenced";

/// The string-valued member `op`/`path`/`from` of an operation, as the
/// library reads it: absent or null is "missing", non-strings fail to decode.
fn member<'a>(operation: Option<&'a Map<String, Value>>, name: &str) -> Result<&'a str, String> {
    match operation.and_then(|o| o.get(name)) {
        None | Some(Value::Null) => Err(match name {
            "from" => format!("operation, missing from field: {MISSING}"),
            _ => format!("operation missing {name} field: {MISSING}"),
        }),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("json: cannot unmarshal {} into Go value of type string", json_kind(other))),
    }
}

fn apply(doc: &mut Value, operation: Option<&Map<String, Value>>) -> Result<(), PatchError> {
    let kind = member(operation, "op").unwrap_or("unknown");
    // A present "value" may be null; an absent one is also added as null.
    let value = operation.and_then(|o| o.get("value"));
    match kind {
        "add" => {
            let path = member(operation, "path")
                .map_err(|_| failed(format!("add operation failed to decode path: {MISSING}")))?;
            let (container, key) = find(doc, path).ok_or_else(|| {
                failed(format!("add operation does not apply: doc is missing path: \"{path}\": {MISSING}"))
            })?;
            add(container, &key, value.cloned().unwrap_or(Value::Null))
                .map_err(|e| failed(format!("error in add for path: '{path}': {e}")))
        }
        "remove" => {
            let path = member(operation, "path")
                .map_err(|_| failed(format!("remove operation failed to decode path: {MISSING}")))?;
            let (container, key) = find(doc, path).ok_or_else(|| {
                failed(format!("remove operation does not apply: doc is missing path: \"{path}\": {MISSING}"))
            })?;
            remove(container, &key).map(drop).map_err(|e| failed(format!("error in remove for path: '{path}': {e}")))
        }
        "replace" => {
            let path = member(operation, "path")
                .map_err(|e| failed(format!("replace operation failed to decode path: {e}")))?;
            if path.is_empty() {
                return match value {
                    Some(v @ (Value::Object(_) | Value::Array(_))) => {
                        *doc = v.clone();
                        Ok(())
                    }
                    // The library wraps a nil error here, which Go prints so.
                    _ => Err(failed("replace operation value must be object or array: %!w(<nil>)".into())),
                };
            }
            let (container, key) = find(doc, path).ok_or_else(|| {
                failed(format!("replace operation does not apply: doc is missing path: {path}: {MISSING}"))
            })?;
            get(container, &key).map_err(|_| {
                failed(format!("replace operation does not apply: doc is missing key: {path}: {MISSING}"))
            })?;
            set(container, &key, value.cloned().unwrap_or(Value::Null))
                .map_err(|e| failed(format!("error in remove for path: '{path}': {e}")))
        }
        "move" => {
            let from =
                member(operation, "from").map_err(|e| failed(format!("move operation failed to decode from: {e}")))?;
            let (container, key) = find(doc, from).ok_or_else(|| {
                failed(format!("move operation does not apply: doc is missing from path: {from}: {MISSING}"))
            })?;
            get(container, &key).map_err(|e| failed(format!("error in move for path: '{key}': {e}")))?;
            let moved = remove(container, &key).map_err(|e| failed(format!("error in move for path: '{key}': {e}")))?;
            let path =
                member(operation, "path").map_err(|e| failed(format!("move operation failed to decode path: {e}")))?;
            let (container, key) = find(doc, path).ok_or_else(|| {
                failed(format!("move operation does not apply: doc is missing destination path: {path}: {MISSING}"))
            })?;
            add(container, &key, moved).map_err(|e| failed(format!("error in move for path: '{path}': {e}")))
        }
        "test" => {
            let path =
                member(operation, "path").map_err(|e| failed(format!("test operation failed to decode path: {e}")))?;
            let test_failed = || failed(format!("testing value {path} failed: test failed"));
            if path.is_empty() {
                return if value == Some(doc) { Ok(()) } else { Err(test_failed()) };
            }
            let (container, key) = find(doc, path)
                .ok_or_else(|| failed(format!("test operation does not apply: is missing path: {path}: {MISSING}")))?;
            let current = get(container, &key).map_err(|e| failed(format!("error in test for path: '{path}': {e}")))?;
            match (current.filter(|c| !c.is_null()), value.filter(|v| !v.is_null())) {
                (None, None) => Ok(()),
                (Some(current), Some(value)) if current == value => Ok(()),
                _ => Err(test_failed()),
            }
        }
        "copy" => {
            let from =
                member(operation, "from").map_err(|e| failed(format!("copy operation failed to decode from: {e}")))?;
            let (container, key) = find(doc, from).ok_or_else(|| {
                failed(format!("copy operation does not apply: doc is missing from path: {from}: {MISSING}"))
            })?;
            let copied = get(container, &key)
                .map_err(|e| failed(format!("error in copy for from: '{from}': {e}")))?
                .cloned()
                .unwrap_or(Value::Null);
            let path = member(operation, "path")
                .map_err(|_| failed(format!("copy operation failed to decode path: {MISSING}")))?;
            let (container, key) = find(doc, path).ok_or_else(|| {
                failed(format!("copy operation does not apply: doc is missing destination path: {path}: {MISSING}"))
            })?;
            add(container, &key, copied).map_err(|e| failed(format!("error while adding value during copy: {e}")))
        }
        other => Err(failed(format!("Unexpected kind: {other}"))),
    }
}

/// RFC 6901 unescaping: `~1` is `/`, `~0` is `~`.
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The container holding the last segment of `path`, and that segment.
/// Intermediate segments must lead to objects or arrays.
fn find<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let mut segments: Vec<&str> = path.split('/').collect();
    if segments.len() < 2 {
        return None;
    }
    let key = unescape(segments.pop()?);
    let mut current = doc;
    for segment in &segments[1..] {
        let next = match current {
            Value::Object(map) => map.get_mut(&unescape(segment)),
            Value::Array(items) => {
                let index = array_index(&unescape(segment), items.len()).ok()?;
                items.get_mut(index)
            }
            _ => None,
        }?;
        if !(next.is_object() || next.is_array()) {
            return None;
        }
        current = next;
    }
    Some((current, key))
}

/// Go's `strconv.Atoi`, with its error text.
fn atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {}: invalid syntax", crate::schema::go_quote(s)));
    }
    s.parse::<i64>().map_err(|_| format!("strconv.Atoi: parsing {}: value out of range", crate::schema::go_quote(s)))
}

fn invalid_index(index: i64) -> String {
    format!("Unable to access invalid index: {index}: {INVALID_INDEX}")
}

/// An existing element's index; negative indices count from the end.
fn array_index(key: &str, len: usize) -> Result<usize, String> {
    let index = atoi(key)?;
    let len = len as i64;
    let resolved = if index < 0 {
        if index < -len {
            return Err(invalid_index(index));
        }
        index + len
    } else {
        index
    };
    if resolved >= len {
        return Err(invalid_index(index));
    }
    Ok(resolved as usize)
}

fn get<'a>(container: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    match container {
        Value::Object(map) => Ok(map.get(key)),
        Value::Array(items) => Ok(Some(&items[array_index(key, items.len())?])),
        _ => Ok(None),
    }
}

fn set(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(map) => {
            map.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = array_index(key, items.len())?;
            items[index] = value;
            Ok(())
        }
        _ => Ok(()),
    }
}

fn add(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(map) => {
            map.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(items) => {
            if key == "-" {
                items.push(value);
                return Ok(());
            }
            let index = atoi(key).map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            let size = items.len() as i64 + 1;
            if index >= size || index < -size {
                return Err(invalid_index(index));
            }
            let at = if index < 0 { index + size } else { index };
            items.insert(at as usize, value);
            Ok(())
        }
        _ => Ok(()),
    }
}

fn remove(container: &mut Value, key: &str) -> Result<Value, String> {
    match container {
        Value::Object(map) => {
            map.shift_remove(key).ok_or_else(|| format!("Unable to remove nonexistent key: {key}: {MISSING}"))
        }
        Value::Array(items) => {
            let index = array_index(key, items.len())?;
            Ok(items.remove(index))
        }
        _ => Ok(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply_ok(doc: Value, patch: Value) -> Value {
        json_patch(&doc, &patch).unwrap_or_else(|e| panic!("{patch}: {e}"))
    }

    fn apply_err(doc: Value, patch: Value) -> String {
        json_patch(&doc, &patch).expect_err("patch should fail").to_string()
    }

    #[test]
    fn rfc6902_a1_adds_an_object_member() {
        assert_eq!(
            apply_ok(json!({"foo": "bar"}), json!([{"op": "add", "path": "/baz", "value": "qux"}])),
            json!({"baz": "qux", "foo": "bar"})
        );
    }

    #[test]
    fn rfc6902_a2_adds_an_array_element() {
        assert_eq!(
            apply_ok(json!({"foo": ["bar", "baz"]}), json!([{"op": "add", "path": "/foo/1", "value": "qux"}])),
            json!({"foo": ["bar", "qux", "baz"]})
        );
    }

    #[test]
    fn rfc6902_a3_and_a4_remove_members_and_elements() {
        assert_eq!(
            apply_ok(json!({"baz": "qux", "foo": "bar"}), json!([{"op": "remove", "path": "/baz"}])),
            json!({"foo": "bar"})
        );
        assert_eq!(
            apply_ok(json!({"foo": ["bar", "qux", "baz"]}), json!([{"op": "remove", "path": "/foo/1"}])),
            json!({"foo": ["bar", "baz"]})
        );
    }

    #[test]
    fn rfc6902_a5_replaces_a_value() {
        assert_eq!(
            apply_ok(json!({"baz": "qux", "foo": "bar"}), json!([{"op": "replace", "path": "/baz", "value": "boo"}])),
            json!({"baz": "boo", "foo": "bar"})
        );
    }

    #[test]
    fn rfc6902_a6_and_a7_move_values() {
        assert_eq!(
            apply_ok(
                json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
                json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}])
            ),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})
        );
        assert_eq!(
            apply_ok(
                json!({"foo": ["all", "grass", "cows", "eat"]}),
                json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}])
            ),
            json!({"foo": ["all", "cows", "eat", "grass"]})
        );
    }

    #[test]
    fn rfc6902_a8_and_a9_test_values() {
        let doc = json!({"baz": "qux", "foo": ["a", 2, "c"]});
        let patch =
            json!([{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}]);
        assert_eq!(apply_ok(doc.clone(), patch), doc);
        assert_eq!(
            apply_err(json!({"baz": "qux"}), json!([{"op": "test", "path": "/baz", "value": "bar"}])),
            "testing value /baz failed: test failed"
        );
    }

    #[test]
    fn rfc6902_a10_and_a11_add_nested_members_ignoring_unknown_members() {
        assert_eq!(
            apply_ok(json!({"foo": "bar"}), json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}])),
            json!({"foo": "bar", "child": {"grandchild": {}}})
        );
        assert_eq!(
            apply_ok(json!({"foo": "bar"}), json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}])),
            json!({"foo": "bar", "baz": "qux"})
        );
    }

    #[test]
    fn rfc6902_a12_adding_to_a_missing_parent_fails_like_kube_apiserver() {
        assert_eq!(
            apply_err(json!({"foo": "bar"}), json!([{"op": "add", "path": "/baz/bat", "value": "qux"}])),
            "add operation does not apply: doc is missing path: \"/baz/bat\": missing value"
        );
    }

    #[test]
    fn rfc6902_a14_and_a15_unescape_pointers_and_compare_strictly() {
        let doc = json!({"/": 9, "~1": 10});
        assert_eq!(apply_ok(doc.clone(), json!([{"op": "test", "path": "/~01", "value": 10}])), doc);
        assert_eq!(
            apply_err(doc, json!([{"op": "test", "path": "/~01", "value": "10"}])),
            "testing value /~01 failed: test failed"
        );
    }

    #[test]
    fn rfc6902_a16_appends_an_array_with_dash() {
        assert_eq!(
            apply_ok(json!({"foo": ["bar"]}), json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}])),
            json!({"foo": ["bar", ["abc", "def"]]})
        );
    }

    #[test]
    fn removing_a_missing_member_names_the_key() {
        assert_eq!(
            apply_err(json!({"spec": {}}), json!([{"op": "remove", "path": "/spec/foo"}])),
            "error in remove for path: '/spec/foo': Unable to remove nonexistent key: foo: missing value"
        );
        assert_eq!(
            apply_err(json!({}), json!([{"op": "remove", "path": "/spec/foo"}])),
            "remove operation does not apply: doc is missing path: \"/spec/foo\": missing value"
        );
    }

    #[test]
    fn array_indices_are_bounds_checked() {
        let doc = json!({"a": [1, 2]});
        assert_eq!(
            apply_err(doc.clone(), json!([{"op": "add", "path": "/a/3", "value": 0}])),
            "error in add for path: '/a/3': Unable to access invalid index: 3: invalid index referenced"
        );
        assert_eq!(apply_ok(doc.clone(), json!([{"op": "add", "path": "/a/2", "value": 3}])), json!({"a": [1, 2, 3]}));
        assert_eq!(
            apply_err(doc.clone(), json!([{"op": "replace", "path": "/a/2", "value": 0}])),
            "replace operation does not apply: doc is missing key: /a/2: missing value"
        );
        assert_eq!(
            apply_err(doc.clone(), json!([{"op": "remove", "path": "/a/x"}])),
            "error in remove for path: '/a/x': strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            apply_err(doc.clone(), json!([{"op": "add", "path": "/a/x", "value": 0}])),
            "error in add for path: '/a/x': value was not a proper array index: 'x': strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(apply_ok(doc, json!([{"op": "remove", "path": "/a/-1"}])), json!({"a": [1]}));
    }

    #[test]
    fn replace_of_a_missing_member_adds_it_as_kube_apiserver_does() {
        assert_eq!(
            apply_ok(json!({"spec": {}}), json!([{"op": "replace", "path": "/spec/replicas", "value": 3}])),
            json!({"spec": {"replicas": 3}})
        );
        assert_eq!(
            apply_err(json!({}), json!([{"op": "replace", "path": "/spec/replicas", "value": 3}])),
            "replace operation does not apply: doc is missing path: /spec/replicas: missing value"
        );
    }

    #[test]
    fn the_whole_document_can_be_replaced_and_tested() {
        assert_eq!(
            apply_ok(json!({"a": 1}), json!([{"op": "replace", "path": "", "value": {"b": 2}}])),
            json!({"b": 2})
        );
        assert_eq!(
            apply_err(json!({"a": 1}), json!([{"op": "replace", "path": "", "value": 5}])),
            "replace operation value must be object or array: %!w(<nil>)"
        );
        assert_eq!(apply_ok(json!({"a": 1}), json!([{"op": "test", "path": "", "value": {"a": 1}}])), json!({"a": 1}));
    }

    #[test]
    fn move_and_copy_report_missing_sources() {
        assert_eq!(
            apply_err(json!({"a": {}}), json!([{"op": "move", "from": "/a/b", "path": "/c"}])),
            "error in move for path: 'b': Unable to remove nonexistent key: b: missing value"
        );
        assert_eq!(
            apply_err(json!({}), json!([{"op": "copy", "from": "/x/y", "path": "/c"}])),
            "copy operation does not apply: doc is missing from path: /x/y: missing value"
        );
        assert_eq!(
            apply_ok(json!({"a": {"b": [1]}}), json!([{"op": "copy", "from": "/a/b", "path": "/a/c"}])),
            json!({"a": {"b": [1], "c": [1]}})
        );
    }

    #[test]
    fn malformed_operations_and_documents_are_rejected() {
        assert_eq!(apply_err(json!({}), json!([{"path": "/a"}])), "Unexpected kind: unknown");
        assert_eq!(
            apply_err(json!({}), json!([{"op": "add", "value": 1}])),
            "add operation failed to decode path: missing value"
        );
        assert_eq!(
            apply_err(json!({}), json!([{"op": "move", "path": "/a"}])),
            "move operation failed to decode from: operation, missing from field: missing value"
        );
        assert_eq!(
            json_patch(&json!({}), &json!({"op": "add"})),
            Err(PatchError::Malformed("json: cannot unmarshal object into Go value of type jsonpatch.Patch".into()))
        );
        assert_eq!(
            json_patch(&json!({}), &json!(["add"])),
            Err(PatchError::Malformed(
                "json: cannot unmarshal string into Go value of type jsonpatch.Operation".into()
            ))
        );
    }

    #[test]
    fn testing_a_missing_member_against_null_passes() {
        let doc = json!({"a": 1});
        assert_eq!(apply_ok(doc.clone(), json!([{"op": "test", "path": "/b", "value": null}])), doc);
        assert_eq!(
            apply_err(doc, json!([{"op": "test", "path": "/b", "value": 1}])),
            "testing value /b failed: test failed"
        );
    }

    #[test]
    fn operations_apply_in_order_and_fail_atomically() {
        let doc = json!({"metadata": {"labels": {"a": "1"}}});
        let patch = json!([
            {"op": "add", "path": "/metadata/labels/b", "value": "2"},
            {"op": "remove", "path": "/metadata/labels/zzz"},
        ]);
        assert!(json_patch(&doc, &patch).is_err());
        assert_eq!(doc, json!({"metadata": {"labels": {"a": "1"}}}));
    }
}
