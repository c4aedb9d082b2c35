//! `field.Error` from apimachinery: the error kinds, the paths they point at,
//! and the exact text `Error()` renders, as kube-apiserver 1.33 prints it.
//!
//! Go 1.33 renders the bad value by its Go type: a pointer is dereferenced
//! (`nil` becomes `"null"`), `int32`/`int64`/`bool` print bare, a `string`
//! prints `%q`-quoted and anything else prints `%#v` (`[]string{"a"}`,
//! `map[string]string{"k":"v"}`, `core.ServicePort{...}`). A [`FieldError`]
//! keeps the value as JSON for machines and, where the Go type is a struct,
//! the `%#v` text kube-apiserver would print.

use std::fmt;

use serde_json::Value;

use crate::selector::validation::go_quote;

/// What is wrong with a field; mirrors apimachinery's `field.ErrorType`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `FieldValueInvalid`: malformed or out of range.
    Invalid,
    /// `FieldValueRequired`: missing.
    Required,
    /// `FieldValueForbidden`: well-formed but not allowed here.
    Forbidden,
    /// `FieldValueDuplicate`: must be unique.
    Duplicate,
    /// `FieldValueNotSupported`: not one of an enumeration.
    NotSupported { supported: Vec<String> },
    /// `FieldValueTooLong`: longer than `max` bytes.
    TooLong { max: usize },
    /// `FieldValueTooMany`: a list with too many items.
    TooMany,
    /// `FieldValueNotFound`: refers to something that does not exist.
    NotFound,
    /// `InternalError`: not the user's fault.
    Internal,
}

impl ErrorKind {
    /// The `StatusCause.reason` kube-apiserver puts in the 422 `Status`.
    pub fn reason(&self) -> &'static str {
        match self {
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::Duplicate => "FieldValueDuplicate",
            ErrorKind::NotSupported { .. } => "FieldValueNotSupported",
            ErrorKind::TooLong { .. } => "FieldValueTooLong",
            ErrorKind::TooMany => "FieldValueTooMany",
            ErrorKind::NotFound => "FieldValueNotFound",
            ErrorKind::Internal => "InternalError",
        }
    }

    /// `ErrorType.String()`.
    fn label(&self) -> &'static str {
        match self {
            ErrorKind::Invalid => "Invalid value",
            ErrorKind::Required => "Required value",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::Duplicate => "Duplicate value",
            ErrorKind::NotSupported { .. } => "Unsupported value",
            ErrorKind::TooLong { .. } => "Too long",
            ErrorKind::TooMany => "Too many",
            ErrorKind::NotFound => "Not found",
            ErrorKind::Internal => "Internal error",
        }
    }

    /// Kinds whose rendering includes the bad value.
    fn shows_value(&self) -> bool {
        !matches!(self, ErrorKind::Required | ErrorKind::Forbidden | ErrorKind::TooLong { .. } | ErrorKind::Internal)
    }
}

/// One field-level validation problem, as `field.Error`.
///
/// `Display` (and [`FieldError::message`]) is the exact `Error()` text, e.g.
/// `spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct FieldError {
    pub kind: ErrorKind,
    /// The field path as Go prints it: `spec.ports[0].port`, `data[tls.crt]`.
    pub field: String,
    /// The offending value, when the kind shows one; `None` for Required,
    /// Forbidden, TooLong and Internal.
    pub value: Option<Value>,
    pub detail: String,
    /// The Go `%#v` text of `value` when its Go type is not a string, a
    /// number, `[]string` or `map[string]string` (e.g. `core.ServicePort{...}`).
    go_value: Option<String>,
}

impl FieldError {
    fn new(kind: ErrorKind, field: impl Into<String>, value: Option<Value>, detail: impl Into<String>) -> Self {
        FieldError { kind, field: field.into(), value, detail: detail.into(), go_value: None }
    }

    /// `field.Invalid`.
    pub fn invalid(field: impl Into<String>, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, field, Some(value.into()), detail)
    }

    /// `field.Required`.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Required, field, None, detail)
    }

    /// `field.Forbidden`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, field, None, detail)
    }

    /// `field.Duplicate`.
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(ErrorKind::Duplicate, field, Some(value.into()), "")
    }

    /// `field.NotFound`.
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(ErrorKind::NotFound, field, Some(value.into()), "")
    }

    /// `field.NotSupported`; `supported` in the order kube lists them
    /// (sorted where kube uses `sets.List`).
    pub fn not_supported(field: impl Into<String>, value: impl Into<Value>, supported: &[&str]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        let supported = supported.iter().map(|s| s.to_string()).collect();
        Self::new(ErrorKind::NotSupported { supported }, field, Some(value.into()), detail)
    }

    /// `field.TooLong` with a byte limit.
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        Self::new(ErrorKind::TooLong { max }, field, None, format!("may not be more than {max} {unit}"))
    }

    /// `field.TooMany`.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        Self::new(ErrorKind::TooMany, field, Some(Value::from(actual)), format!("must have at most {max} {unit}"))
    }

    /// `field.InternalError`.
    pub fn internal(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, field, None, detail)
    }

    /// Sets the Go `%#v` rendering of the value, for Go types that are not
    /// strings, numbers, `[]string` or `map[string]string`.
    pub(crate) fn go(mut self, rendered: impl Into<String>) -> Self {
        self.go_value = Some(rendered.into());
        self
    }

    /// The `StatusCause.reason`, e.g. `FieldValueInvalid`.
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// `ErrorBody()`: the message without the field path, which is what
    /// `StatusCause.message` carries.
    pub fn body(&self) -> String {
        let mut s = self.kind.label().to_string();
        if self.kind.shows_value() {
            if let Some(rendered) = self.go_value.clone().or_else(|| self.value.as_ref().map(render_value)) {
                s.push_str(": ");
                s.push_str(&rendered);
            }
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    /// `Error()`: `<field>: <body>`.
    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.body())
    }
}

/// Renders a JSON value the way Go 1.33 prints the equivalent Go value.
fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        // A nil pointer: apimachinery substitutes the string "null".
        Value::Null => go_quote("null"),
        Value::Array(items) if items.iter().all(Value::is_string) => go_strings(items.iter().filter_map(Value::as_str)),
        Value::Object(map) if map.values().all(Value::is_string) => {
            go_string_map(map.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v))))
        }
        other => other.to_string(),
    }
}

/// `%#v` of a non-nil `[]string`.
pub(crate) fn go_strings<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items.into_iter().map(go_quote).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// `%#v` of a `[]string` that is nil when empty (as after JSON decoding of
/// an absent list).
pub(crate) fn go_strings_or_nil(items: &[String]) -> String {
    if items.is_empty() { "[]string(nil)".to_string() } else { go_strings(items.iter().map(String::as_str)) }
}

/// `%#v` of a non-nil `map[string]string`; Go prints keys sorted.
pub(crate) fn go_string_map<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut entries: Vec<(&str, &str)> = entries.into_iter().collect();
    entries.sort();
    let parts: Vec<String> = entries.iter().map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v))).collect();
    format!("map[string]string{{{}}}", parts.join(", "))
}

/// `%#v` of a `map[string]string` read from an optional JSON object: nil
/// when absent.
pub(crate) fn go_labels(map: Option<&Value>) -> String {
    match map.and_then(Value::as_object) {
        None => "map[string]string(nil)".to_string(),
        Some(m) => go_string_map(m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))),
    }
}

/// `%#v` of an `intstr.IntOrString` read from JSON.
pub(crate) fn go_int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => format!("intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}", go_quote(s)),
        other => format!("intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}", other.as_i64().unwrap_or(0)),
    }
}

/// A field path under construction, printed as `field.Path.String()` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Path(String);

impl Path {
    pub(crate) fn root(name: &str) -> Path {
        Path(name.to_string())
    }

    pub(crate) fn child(&self, name: &str) -> Path {
        if self.0.is_empty() { Path(name.to_string()) } else { Path(format!("{}.{name}", self.0)) }
    }

    pub(crate) fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }

    pub(crate) fn key(&self, k: &str) -> Path {
        Path(format!("{}[{k}]", self.0))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&Path> for String {
    fn from(p: &Path) -> String {
        p.0.clone()
    }
}

impl From<Path> for String {
    fn from(p: Path) -> String {
        p.0
    }
}

/// The 422 `Status.message` kube-apiserver sends for a list of field errors
/// (`errors.NewInvalid`): `Service "web" is invalid: <one error>` or
/// `... is invalid: [<e1>, <e2>]`, with duplicate messages dropped.
///
/// `qualified_kind` is `GroupKind.String()`: `Service`, `Deployment.apps`,
/// `Ingress.networking.k8s.io`; see [`qualified_kind`].
pub fn invalid_message(qualified_kind: &str, name: &str, errors: &[FieldError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        let m = e.message();
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    let head = format!("{qualified_kind} {} is invalid", go_quote(name));
    match seen.len() {
        0 => head,
        1 => format!("{head}: {}", seen[0]),
        _ => format!("{head}: [{}]", seen.join(", ")),
    }
}

/// `schema.GroupKind.String()`: the kind alone for the core group, else
/// `Kind.group`.
pub fn qualified_kind(group: &str, kind: &str) -> String {
    if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_without_values_render_only_their_label_and_detail() {
        assert_eq!(FieldError::required("spec.ports", "").message(), "spec.ports: Required value");
        assert_eq!(FieldError::forbidden("spec.x", "may not be set").message(), "spec.x: Forbidden: may not be set");
        assert_eq!(
            FieldError::too_long("data", 1048576).message(),
            "data: Too long: may not be more than 1048576 bytes"
        );
        assert_eq!(FieldError::too_long("", 1048576).message(), ": Too long: may not be more than 1048576 bytes");
    }

    #[test]
    fn values_render_by_their_go_type() {
        assert_eq!(FieldError::invalid("a", 0, "d").message(), "a: Invalid value: 0: d");
        assert_eq!(FieldError::invalid("a", "x\"y", "d").message(), r#"a: Invalid value: "x\"y": d"#);
        assert_eq!(FieldError::invalid("a", Value::Null, "d").message(), r#"a: Invalid value: "null": d"#);
        assert_eq!(
            FieldError::invalid("a", json!(["1", "2"]), "d").message(),
            r#"a: Invalid value: []string{"1", "2"}: d"#
        );
        assert_eq!(
            FieldError::invalid("a", json!({"b": "2", "a": "1"}), "d").message(),
            r#"a: Invalid value: map[string]string{"a":"1", "b":"2"}: d"#
        );
        assert_eq!(FieldError::too_many("e", 1001, 1000).message(), "e: Too many: 1001: must have at most 1000 items");
        assert_eq!(
            FieldError::not_supported("spec.type", "Foo", &["A", "B"]).message(),
            r#"spec.type: Unsupported value: "Foo": supported values: "A", "B""#
        );
    }

    #[test]
    fn invalid_message_aggregates_like_errors_new_invalid() {
        let a = FieldError::required("spec.ports", "");
        let b = FieldError::duplicate("spec.ports[1].name", "http");
        assert_eq!(
            invalid_message("Service", "web", &[a.clone()]),
            r#"Service "web" is invalid: spec.ports: Required value"#
        );
        assert_eq!(
            invalid_message(&qualified_kind("apps", "Deployment"), "d", &[a.clone(), b, a]),
            r#"Deployment.apps "d" is invalid: [spec.ports: Required value, spec.ports[1].name: Duplicate value: "http"]"#
        );
    }
}
