//! Decoding a JSON object against a definition as kube-apiserver's JSON
//! serializer does (sigs.k8s.io/json, case-sensitive, strict mode), so the
//! API server can reject and warn with Kubernetes' exact messages.
//!
//! Go's decoder walks the document in order. A value that does not fit its
//! Go type is skipped and the first such error is kept; custom
//! `UnmarshalJSON`s (IntOrString, Quantity, Time) abort the decode at once;
//! unknown fields are collected (deduplicated, at most 100) and only
//! reported when nothing else failed. This module keeps those rules.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{SchemaKind, SchemaNode, Schemas, go};

/// Why an object cannot be decoded as its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A value does not fit its Go type, e.g. a string where an int32 goes.
    #[error("{kind} in version \"{version}\" cannot be handled as a {kind}: {reason}")]
    Invalid { kind: String, version: String, reason: String },
    /// Unknown fields, under strict field validation.
    #[error("{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}", .errors.join(", "))]
    Strict { kind: String, version: String, errors: Vec<String> },
    /// `apiVersion`/`kind` cannot be read at all (the body is not an object,
    /// or they are not strings); `summary` is the start of the body.
    #[error(
        "the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; json parse error: {reason} ({summary})"
    )]
    Unrecognized { kind: String, reason: String, summary: String },
    /// The caller named a definition the registry does not hold.
    #[error("no schema is registered for {0}")]
    UnknownDefinition(String),
}

impl DecodeError {
    /// The full message kube-apiserver puts in the `Status`.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The strict-decoding errors (`unknown field "spec.foo"`), for callers
    /// that word the surrounding message themselves (PATCH, apply).
    pub fn strict_errors(&self) -> &[String] {
        match self {
            DecodeError::Strict { errors, .. } => errors,
            _ => &[],
        }
    }
}

/// Decodes `value` as the kind `definition` names.
///
/// Returns the unknown-field warnings (`unknown field "spec.foo"`) when
/// `strict` is false; when it is true they are a [`DecodeError::Strict`].
/// Type mismatches are always errors. Duplicate keys cannot be seen after
/// serde has parsed the body, so they are not reported.
pub fn check_object(definition: &str, value: &Value, strict: bool) -> Result<Vec<String>, DecodeError> {
    let root =
        Schemas::get().definition(definition).ok_or_else(|| DecodeError::UnknownDefinition(definition.to_string()))?;
    let kind = go::short_name(definition).to_string();
    let version = definition.rsplit('.').nth(1).unwrap_or_default().to_string();

    if let Err(reason) = find_kind(value) {
        return Err(DecodeError::Unrecognized { kind, reason, summary: summarize(value) });
    }
    let mut decoder = Decoder::default();
    let fatal = decoder.walk(root, value).err();
    if let Some(reason) = fatal.or(decoder.saved) {
        return Err(DecodeError::Invalid { kind, version, reason });
    }
    if strict && !decoder.strict.is_empty() {
        return Err(DecodeError::Strict { kind, version, errors: decoder.strict });
    }
    Ok(decoder.strict)
}

/// kube-apiserver first reads only `apiVersion` and `kind`, with the
/// standard (case-insensitive) Go decoder, into an anonymous struct.
fn find_kind(value: &Value) -> Result<(), String> {
    const FIND_KIND: &str =
        r#"struct { APIVersion string "json:\"apiVersion,omitempty\""; Kind string "json:\"kind,omitempty\"" }"#;
    let object = match value {
        Value::Object(object) => object,
        Value::Null => return Ok(()),
        other => return Err(format!("json: cannot unmarshal {} into Go value of type {FIND_KIND}", json_kind(other))),
    };
    for (key, value) in object {
        let field = ["apiVersion", "kind"].into_iter().find(|f| f.eq_ignore_ascii_case(key));
        if let Some(field) = field {
            if !value.is_string() && !value.is_null() {
                return Err(format!(
                    "json: cannot unmarshal {} into Go struct field .{field} of type string",
                    json_kind(value)
                ));
            }
        }
    }
    Ok(())
}

/// kube-apiserver's `summarizeData(body, 30)`, over the compact encoding.
fn summarize(value: &Value) -> String {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let head = &body[..body.len().min(30)];
    let ellipsis = if body.len() > 30 { " ..." } else { "" };
    if body.first() == Some(&b'{') {
        format!("{}{ellipsis}", String::from_utf8_lossy(head))
    } else {
        let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}{ellipsis}")
    }
}

/// How Go's decoder names a JSON value in "cannot unmarshal X".
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

/// An error that stops decoding at once (a custom `UnmarshalJSON` failed).
type Fatal = String;

#[derive(Default)]
struct Decoder {
    /// Go's errorContext: the innermost struct type and the field path,
    /// without list indices or map keys.
    struct_name: &'static str,
    fields: Vec<String>,
    /// The path used in strict errors: "spec.ports[0].name".
    strict_path: String,
    /// The first type mismatch.
    saved: Option<String>,
    strict: Vec<String>,
    seen: HashSet<String>,
}

impl Decoder {
    fn type_error(&self, what: &str, go_type: &str) -> String {
        if self.struct_name.is_empty() && self.fields.is_empty() {
            format!("json: cannot unmarshal {what} into Go value of type {go_type}")
        } else {
            format!(
                "json: cannot unmarshal {what} into Go struct field {}.{} of type {go_type}",
                self.struct_name,
                self.fields.join(".")
            )
        }
    }

    fn save(&mut self, error: String) {
        self.saved.get_or_insert(error);
    }

    fn mismatch(&mut self, value: &Value, go_type: &str) {
        let error = self.type_error(json_kind(value), go_type);
        self.save(error);
    }

    fn unknown_field(&mut self, key: &str) {
        // sigs.k8s.io/json keeps at most 100, deduplicated.
        if self.strict.len() >= 100 {
            return;
        }
        let path = if self.strict_path.is_empty() { key.to_string() } else { format!("{}.{key}", self.strict_path) };
        let error = format!("unknown field {}", go::quote(&path));
        if self.seen.insert(error.clone()) {
            self.strict.push(error);
        }
    }

    fn push_key(&mut self, key: &str) -> usize {
        let len = self.strict_path.len();
        if !self.strict_path.is_empty() {
            self.strict_path.push('.');
        }
        self.strict_path.push_str(key);
        len
    }

    fn walk(&mut self, node: SchemaNode<'static>, value: &Value) -> Result<(), Fatal> {
        // null decodes into anything, leaving it zero.
        if value.is_null() {
            return Ok(());
        }
        match node.kind() {
            SchemaKind::Any => {}
            SchemaKind::Object if node.is_map() => match (value, node.additional_properties()) {
                (Value::Object(map), Some(element)) => {
                    for (key, item) in map {
                        let len = self.push_key(key);
                        let result = self.walk(element, item);
                        self.strict_path.truncate(len);
                        result?;
                    }
                }
                (Value::Object(_), None) => {}
                (other, _) => self.mismatch(other, &node.go_type()),
            },
            SchemaKind::Object => match value {
                Value::Object(map) => self.walk_struct(node, map)?,
                other => self.mismatch(other, &node.go_type()),
            },
            SchemaKind::Array => match (value, node.items()) {
                (Value::Array(items), Some(element)) => {
                    for (index, item) in items.iter().enumerate() {
                        let len = self.strict_path.len();
                        self.strict_path.push_str(&format!("[{index}]"));
                        let result = self.walk(element, item);
                        self.strict_path.truncate(len);
                        result?;
                    }
                }
                (Value::Array(_), None) => {}
                (other, _) => self.mismatch(other, &node.go_type()),
            },
            SchemaKind::Bytes => self.bytes(value),
            SchemaKind::String => {
                if !value.is_string() {
                    self.mismatch(value, &node.go_type());
                }
            }
            SchemaKind::Boolean => {
                if !value.is_boolean() {
                    self.mismatch(value, &node.go_type());
                }
            }
            SchemaKind::Number => {
                if !value.is_number() {
                    self.mismatch(value, &node.go_type());
                }
            }
            SchemaKind::Integer => match value {
                Value::Number(n) => {
                    if !fits(n, node.format()) {
                        let error = self.type_error(&format!("number {n}"), &node.go_type());
                        self.save(error);
                    }
                }
                other => self.mismatch(other, &node.go_type()),
            },
            // IntOrString.UnmarshalJSON hands non-strings to json.Unmarshal
            // into an int32; the error surfaces with the field's context.
            SchemaKind::IntOrString => match value {
                Value::String(_) => {}
                Value::Number(n) if fits(n, Some("int32")) => {}
                Value::Number(n) => return Err(self.type_error(&format!("number {n}"), "int32")),
                other => return Err(self.type_error(json_kind(other), "int32")),
            },
            // Quantity.UnmarshalJSON parses the raw text, quotes stripped.
            SchemaKind::Quantity => {
                let text = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                go::check_quantity(&text).map_err(str::to_string)?;
            }
            // metav1.Time/MicroTime unmarshal a string, then time.Parse it.
            SchemaKind::Time => match value {
                Value::String(s) => go::check_time(s, node.is_micro_time())?,
                other => return Err(self.type_error(json_kind(other), "string")),
            },
        }
        Ok(())
    }

    fn walk_struct(&mut self, node: SchemaNode<'static>, object: &Map<String, Value>) -> Result<(), Fatal> {
        let definition = node.definition_name().unwrap_or_default();
        for (key, value) in object {
            let Some(field) = node.property(key) else {
                self.unknown_field(key);
                continue;
            };
            let (outer_struct, depth) = (self.struct_name, self.fields.len());
            if let Some(embedded) = go::embedded_struct(definition, key) {
                self.fields.push(embedded.to_string());
            }
            self.fields.push(key.clone());
            self.struct_name = node.go_struct_name();
            let len = self.push_key(key);
            let result = self.walk(field, value);
            self.strict_path.truncate(len);
            self.fields.truncate(depth);
            self.struct_name = outer_struct;
            result?;
        }
        Ok(())
    }

    /// `[]byte`: a base64 string, or (Go allows it) an array of uint8.
    fn bytes(&mut self, value: &Value) {
        match value {
            Value::String(s) => {
                if let Err(at) = go::check_base64(s) {
                    self.save(format!("illegal base64 data at input byte {at}"));
                }
            }
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Null => {}
                        Value::Number(n) if n.as_u64().is_some_and(|b| b <= 255) => {}
                        Value::Number(n) => {
                            let error = self.type_error(&format!("number {n}"), "uint8");
                            self.save(error);
                        }
                        other => self.mismatch(other, "uint8"),
                    }
                }
            }
            other => self.mismatch(other, "[]uint8"),
        }
    }
}

/// Whether a JSON number is an integer literal that fits the Go type.
fn fits(n: &serde_json::Number, format: Option<&str>) -> bool {
    match (format, n.as_i64()) {
        (Some("int32"), Some(i)) => i32::try_from(i).is_ok(),
        (_, Some(_)) => true,
        (_, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SERVICE: &str = "io.k8s.api.core.v1.Service";

    fn service(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": spec})
    }

    fn reason(definition: &str, value: Value) -> String {
        match check_object(definition, &value, true) {
            Err(DecodeError::Invalid { reason, .. }) => reason,
            other => panic!("expected a decode error, got {other:?}"),
        }
    }

    #[test]
    fn a_well_formed_service_decodes_without_warnings() {
        let value = service(json!({
            "type": "ClusterIP",
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        }));
        assert_eq!(check_object(SERVICE, &value, true), Ok(vec![]));
    }

    #[test]
    fn a_string_port_is_reported_with_the_go_struct_field_path() {
        let error = check_object(SERVICE, &service(json!({"ports": [{"port": "abc"}]})), false).unwrap_err();
        assert_eq!(
            error.message(),
            "Service in version \"v1\" cannot be handled as a Service: json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32"
        );
    }

    #[test]
    fn unknown_fields_are_errors_when_strict_and_warnings_otherwise() {
        let value = service(json!({"ports": [{"port": 80, "bogus": 1}], "foo": true}));
        let error = check_object(SERVICE, &value, true).unwrap_err();
        assert_eq!(
            error.message(),
            "Service in version \"v1\" cannot be handled as a Service: strict decoding error: unknown field \"spec.ports[0].bogus\", unknown field \"spec.foo\""
        );
        assert_eq!(
            check_object(SERVICE, &value, false),
            Ok(vec!["unknown field \"spec.ports[0].bogus\"".to_string(), "unknown field \"spec.foo\"".to_string()])
        );
    }

    #[test]
    fn unknown_fields_in_metadata_and_at_the_top_are_reported() {
        let value =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "lables": {}}, "dta": {}});
        assert_eq!(
            check_object("io.k8s.api.core.v1.ConfigMap", &value, false),
            Ok(vec!["unknown field \"metadata.lables\"".to_string(), "unknown field \"dta\"".to_string()])
        );
    }

    #[test]
    fn field_names_are_case_sensitive() {
        let warnings = check_object(SERVICE, &service(json!({"Ports": []})), false);
        assert_eq!(warnings, Ok(vec!["unknown field \"spec.Ports\"".to_string()]));
    }

    #[test]
    fn a_type_error_wins_over_unknown_fields() {
        let value = service(json!({"foo": 1, "clusterIP": 5}));
        assert_eq!(
            reason(SERVICE, value),
            "json: cannot unmarshal number into Go struct field ServiceSpec.spec.clusterIP of type string"
        );
    }

    #[test]
    fn named_go_types_appear_in_messages() {
        assert_eq!(
            reason(SERVICE, service(json!({"ports": [{"port": 80, "protocol": 6}]}))),
            "json: cannot unmarshal number into Go struct field ServicePort.spec.ports.protocol of type v1.Protocol"
        );
        assert_eq!(
            reason(SERVICE, service(json!({"type": ["ClusterIP"]}))),
            "json: cannot unmarshal array into Go struct field ServiceSpec.spec.type of type v1.ServiceType"
        );
    }

    #[test]
    fn structs_lists_and_maps_name_their_go_types() {
        assert_eq!(
            reason(SERVICE, service(json!([]))),
            "json: cannot unmarshal array into Go struct field Service.spec of type v1.ServiceSpec"
        );
        assert_eq!(
            reason(SERVICE, service(json!({"ports": {"port": 80}}))),
            "json: cannot unmarshal object into Go struct field ServiceSpec.spec.ports of type []v1.ServicePort"
        );
        assert_eq!(
            reason(SERVICE, service(json!({"selector": "app=web"}))),
            "json: cannot unmarshal string into Go struct field ServiceSpec.spec.selector of type map[string]string"
        );
        assert_eq!(
            reason(SERVICE, json!({"metadata": {"labels": {"a": 1}}})),
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"
        );
    }

    #[test]
    fn integers_that_do_not_fit_quote_the_number() {
        assert_eq!(
            reason(SERVICE, service(json!({"ports": [{"port": 3000000000u64}]}))),
            "json: cannot unmarshal number 3000000000 into Go struct field ServicePort.spec.ports.port of type int32"
        );
        assert_eq!(
            reason(SERVICE, service(json!({"ports": [{"port": 1.5}]}))),
            "json: cannot unmarshal number 1.5 into Go struct field ServicePort.spec.ports.port of type int32"
        );
    }

    #[test]
    fn int_or_string_rejects_booleans_as_int32() {
        assert_eq!(
            reason(SERVICE, service(json!({"ports": [{"port": 80, "targetPort": true}]}))),
            "json: cannot unmarshal bool into Go struct field ServicePort.spec.ports.targetPort of type int32"
        );
    }

    #[test]
    fn custom_unmarshalers_abort_before_later_errors() {
        // The quantity is decoded after the earlier type error but its
        // failure replaces it, as an error returned from UnmarshalJSON does.
        let pod =
            json!({"spec": {"hostname": 1, "containers": [{"name": "a", "resources": {"limits": {"cpu": "lots"}}}]}});
        assert_eq!(
            reason("io.k8s.api.core.v1.Pod", pod),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        let bad_time = json!({"metadata": {"creationTimestamp": "yesterday"}});
        assert_eq!(
            reason("io.k8s.api.core.v1.Pod", bad_time),
            r#"parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006""#
        );
    }

    #[test]
    fn secret_data_must_be_base64() {
        let secret = json!({"data": {"password": "not base64!"}});
        assert_eq!(reason("io.k8s.api.core.v1.Secret", secret), "illegal base64 data at input byte 3");
        let ok = json!({"data": {"password": "c2VjcmV0"}, "stringData": {"x": "plain"}});
        assert_eq!(check_object("io.k8s.api.core.v1.Secret", &ok, true), Ok(vec![]));
    }

    #[test]
    fn inlined_go_structs_appear_in_the_field_path() {
        let pod = json!({"spec": {"containers": [], "volumes": [{"name": "v", "hostPath": {"path": 1}}]}});
        assert_eq!(
            reason("io.k8s.api.core.v1.Pod", pod),
            "json: cannot unmarshal number into Go struct field HostPathVolumeSource.spec.volumes.VolumeSource.hostPath.path of type string"
        );
    }

    #[test]
    fn unreadable_api_version_makes_the_object_unrecognized() {
        let error = check_object(SERVICE, &json!({"apiVersion": 1, "kind": "Service"}), true).unwrap_err();
        assert_eq!(
            error.message(),
            "the object provided is unrecognized (must be of type Service): couldn't get version/kind; json parse error: json: cannot unmarshal number into Go struct field .apiVersion of type string ({\"apiVersion\":1,\"kind\":\"Servic ...)"
        );
        let error = check_object(SERVICE, &json!([1]), true).unwrap_err();
        assert!(error.message().contains("cannot unmarshal array into Go value of type struct { APIVersion string"));
        assert!(error.message().ends_with("(5b315d)"), "{}", error.message());
    }

    #[test]
    fn nulls_decode_into_anything() {
        let value = service(json!({"ports": null, "selector": null, "clusterIP": null}));
        assert_eq!(check_object(SERVICE, &value, true), Ok(vec![]));
    }

    #[test]
    fn raw_extensions_and_managed_fields_accept_anything() {
        let value = json!({"metadata": {"managedFields": [{"fieldsV1": {"f:spec": {"f:ports": {}}}}]}});
        assert_eq!(check_object(SERVICE, &value, true), Ok(vec![]));
    }

    #[test]
    fn unknown_definitions_are_reported() {
        assert!(matches!(check_object("io.k8s.nope", &json!({}), true), Err(DecodeError::UnknownDefinition(_))));
    }
}
