//! Reading fields out of decoded JSON objects, treating `null` as absent
//! the way Go's decoding into typed structs does.

use serde_json::Value;

static EMPTY: Vec<Value> = Vec::new();

/// The field, unless absent or `null`.
pub(crate) fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// Whether the field is set (present and not `null`), like a non-nil Go pointer.
pub(crate) fn present(v: &Value, key: &str) -> bool {
    get(v, key).is_some()
}

/// A string field; absent reads as "" like a Go string.
pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    get(v, key).and_then(Value::as_str).unwrap_or("")
}

/// An optional string field (a Go `*string`).
pub(crate) fn opt_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    get(v, key).and_then(Value::as_str)
}

/// A string field that kube's defaulting fills when empty.
pub(crate) fn str_or<'a>(v: &'a Value, key: &str, default: &'a str) -> &'a str {
    match str_of(v, key) {
        "" => default,
        s => s,
    }
}

/// An integer field (a Go `*int32`/`*int64`).
pub(crate) fn int_of(v: &Value, key: &str) -> Option<i64> {
    get(v, key).and_then(Value::as_i64)
}

/// A boolean field (a Go `*bool`).
pub(crate) fn bool_of(v: &Value, key: &str) -> Option<bool> {
    get(v, key).and_then(Value::as_bool)
}

/// An array field; absent reads as empty.
pub(crate) fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    get(v, key).and_then(Value::as_array).map_or(EMPTY.as_slice(), Vec::as_slice)
}

/// A `[]string` field.
pub(crate) fn strings(v: &Value, key: &str) -> Vec<String> {
    list(v, key).iter().map(|s| s.as_str().unwrap_or("").to_string()).collect()
}

/// An object field, or `null` when absent so nested reads stay absent.
pub(crate) fn obj<'a>(v: &'a Value, key: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    get(v, key).unwrap_or(&NULL)
}

/// The map's entries as (key, string value), in document order.
pub(crate) fn string_map(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect()
}
