//! Checks of the tables against the Kubernetes 1.33 OpenAPI schemas
//! (k8s-openapi), and of the built-in types' JSON forms.
//!
//! The schema check is what keeps the hand-written tables honest: every
//! field of every reachable message must exist in the schema with a
//! matching type (int32 vs int64 included), every schema field must have a
//! table entry, and every field the schema requires must be one Go writes
//! even when unset (a required field has no `omitempty`).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::message::{Field, Message, Presence, Shape, Ty};
use super::{KINDS, META_KINDS, Writer, decode, encode_unknown, root};
use crate::resources::RESOURCES;
use crate::schema::{SchemaKind, SchemaNode, Schemas};

/// Messages Go only ever inlines into another struct; they have no schema
/// of their own.
const INLINE_ONLY: &[&str] = &[
    "core.v1.VolumeSource",
    "core.v1.ProbeHandler",
    "core.v1.EphemeralContainerCommon",
    "networking.v1.IngressRuleValue",
];

/// Fields the schema requires although their Go tag has `omitempty` (so Go
/// leaves them out when zero, and so does the decoder): `name` of
/// `LocalObjectReference`, which k8s-openapi makes required because it has
/// a default (""), and the structs that inline it.
const REQUIRED_BUT_OMITEMPTY: &[&str] = &[
    "core.v1.LocalObjectReference.name",
    "core.v1.ConfigMapVolumeSource.name",
    "core.v1.SecretProjection.name",
    "core.v1.ConfigMapProjection.name",
    "core.v1.ConfigMapEnvSource.name",
    "core.v1.SecretEnvSource.name",
    "core.v1.ConfigMapKeySelector.name",
    "core.v1.SecretKeySelector.name",
];

fn definition_name(message: &Message) -> String {
    match message.name.strip_prefix("meta.") {
        Some(rest) => format!("io.k8s.apimachinery.pkg.apis.meta.{rest}"),
        None => format!("io.k8s.api.{}", message.name),
    }
}

fn flattened(fields: &'static [Field]) -> Vec<Field> {
    let mut out = Vec::new();
    for &field in fields {
        match field.2 {
            Shape::Inline(inner) => out.extend(flattened(inner.fields)),
            _ => out.push(field),
        }
    }
    out
}

fn element(shape: Shape) -> Option<Ty> {
    match shape {
        Shape::One(_, ty) | Shape::List(ty) | Shape::ListOrNull(ty) | Shape::Map(ty) => Some(ty),
        Shape::Inline(_) => None,
    }
}

fn matches(ty: Ty, node: &SchemaNode<'_>) -> bool {
    let kind = node.kind();
    match ty {
        Ty::String => kind == SchemaKind::String,
        Ty::Bytes => kind == SchemaKind::Bytes,
        Ty::Int32 => kind == SchemaKind::Integer && node.format() == Some("int32"),
        Ty::Int64 => kind == SchemaKind::Integer && node.format() == Some("int64"),
        Ty::Bool => kind == SchemaKind::Boolean,
        Ty::Double => kind == SchemaKind::Number,
        Ty::Duration => kind == SchemaKind::String,
        Ty::Time => node.definition_name() == Some("io.k8s.apimachinery.pkg.apis.meta.v1.Time"),
        Ty::MicroTime => node.definition_name() == Some("io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"),
        Ty::IntOrString => kind == SchemaKind::IntOrString,
        Ty::Quantity => kind == SchemaKind::Quantity,
        Ty::RawExtension | Ty::FieldsV1 => kind == SchemaKind::Any,
        Ty::Message(m) => node.definition_name() == Some(definition_name(m).as_str()),
    }
}

fn shape_matches(shape: Shape, node: &SchemaNode<'_>) -> bool {
    match shape {
        Shape::One(_, ty) => matches(ty, node),
        Shape::List(ty) | Shape::ListOrNull(ty) => {
            node.kind() == SchemaKind::Array && node.items().is_some_and(|i| matches(ty, &i))
        }
        Shape::Map(ty) => node.is_map() && node.additional_properties().is_some_and(|v| matches(ty, &v)),
        Shape::Inline(_) => false,
    }
}

/// Whether Go writes the field even when it is unset.
fn always_written(shape: Shape) -> bool {
    match shape {
        Shape::One(Presence::Always | Presence::PtrOrNull, _) | Shape::ListOrNull(_) => true,
        Shape::One(Presence::Value, ty) => {
            !matches!(ty, Ty::String | Ty::Int32 | Ty::Int64 | Ty::Bool | Ty::Bytes | Ty::Double)
        }
        _ => false,
    }
}

fn check(message: &'static Message, is_root: bool, seen: &mut BTreeSet<&'static str>, problems: &mut Vec<String>) {
    if !seen.insert(message.name) {
        return;
    }
    for &(_, _, shape) in message.fields {
        match shape {
            Shape::Inline(inner) => check(inner, false, seen, problems),
            _ => {
                if let Some(Ty::Message(inner)) = element(shape) {
                    check(inner, false, seen, problems);
                }
            }
        }
    }
    let Some(definition) = Schemas::get().definition(&definition_name(message)) else {
        if !INLINE_ONLY.contains(&message.name) {
            problems.push(format!("{}: no schema {}", message.name, definition_name(message)));
        }
        return;
    };
    let fields = flattened(message.fields);
    for &(number, json, shape) in &fields {
        match definition.property(json) {
            None => problems.push(format!("{}: {json} (#{number}) is not in the schema", message.name)),
            Some(node) if !shape_matches(shape, &node) => problems.push(format!(
                "{}: {json} (#{number}) is {shape:?} in the table but {:?} {:?} {:?} in the schema",
                message.name,
                node.kind(),
                node.format(),
                node.definition_name()
            )),
            Some(_) => {}
        }
    }
    for (name, _) in definition.properties() {
        // TypeMeta is never in protobuf: at the root the envelope carries
        // it, and an embedded object (a StatefulSet's PersistentVolumeClaim
        // templates) has none on the wire.
        let embedded_kind = message.name == "core.v1.PersistentVolumeClaim";
        let type_meta = (is_root || embedded_kind) && (name == "apiVersion" || name == "kind");
        if !type_meta && !fields.iter().any(|f| f.1 == name) {
            problems.push(format!("{}: schema field {name} has no table entry", message.name));
        }
    }
    for name in definition.required() {
        let qualified = format!("{}.{name}", message.name);
        match fields.iter().find(|f| f.1 == name) {
            Some(&(_, _, shape)) if !always_written(shape) && !REQUIRED_BUT_OMITEMPTY.contains(&qualified.as_str()) => {
                problems.push(format!("{qualified} is required in the schema but {shape:?} in the table"));
            }
            _ => {}
        }
    }
}

#[test]
fn every_table_matches_the_kubernetes_1_33_schema() {
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for (_, _, message) in KINDS {
        check(message, true, &mut seen, &mut problems);
    }
    for (_, message) in META_KINDS {
        check(message, true, &mut seen, &mut problems);
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn every_served_resource_and_its_list_has_a_table() {
    for r in RESOURCES {
        assert!(root(&r.api_version(), r.kind).is_some(), "{}", r.kind);
        assert!(root(&r.api_version(), r.list_kind).is_some(), "{}", r.list_kind);
    }
}

/// Decodes `raw` as a core/v1 Event, the kind with a Time, a MicroTime
/// and an int32 to exercise.
fn event(raw: Writer) -> Value {
    decode(&encode_unknown("v1", "Event", &raw.finish())).expect("decodes")
}

#[test]
fn time_is_rfc3339_seconds_and_micro_time_keeps_microseconds() {
    let decoded = event(
        Writer::new()
            .message(6, |t| t.int64(1, 1_704_067_200).int32(2, 999_999_999))
            .message(10, |t| t.int64(1, 1_704_067_200).int32(2, 123_456_789)),
    );
    assert_eq!(decoded["firstTimestamp"], "2024-01-01T00:00:00Z");
    assert_eq!(decoded["eventTime"], "2024-01-01T00:00:00.123456Z");
}

#[test]
fn unset_times_are_null_and_the_epoch_is_not_unset() {
    let decoded = event(Writer::new().bytes(6, &[]).message(7, |t| t.int64(1, 0)));
    assert_eq!(decoded["firstTimestamp"], Value::Null);
    assert_eq!(decoded["lastTimestamp"], "1970-01-01T00:00:00Z");
    assert_eq!(decoded["eventTime"], Value::Null);
}

#[test]
fn negative_int32_varints_decode_as_negative_numbers() {
    let decoded = event(Writer::new().int32(8, -5));
    assert_eq!(decoded["count"], -5);
}

#[test]
fn go_durations_are_formatted_like_time_duration_string() {
    use super::decode::go_duration;
    let cases: &[(i64, &str)] = &[
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (1_500_000, "1.5ms"),
        (1_000_000_000, "1s"),
        (90_500_000_000, "1m30.5s"),
        (3_600_000_000_000, "1h0m0s"),
        (-120_000_000_000, "-2m0s"),
        (i64::MIN, "-2562047h47m16.854775808s"),
    ];
    for &(nanos, expected) in cases {
        assert_eq!(go_duration(nanos), expected, "{nanos}");
    }
}

#[test]
fn int_or_string_becomes_a_number_or_a_string() {
    let service = |target: Writer| {
        let target = target.finish();
        let raw = Writer::new().message(2, |spec| spec.message(1, |port| port.int32(3, 80).bytes(4, &target))).finish();
        decode(&encode_unknown("v1", "Service", &raw)).expect("decodes")["spec"]["ports"][0]["targetPort"].clone()
    };
    assert_eq!(service(Writer::new().int64(1, 0).int32(2, 8080)), json!(8080));
    assert_eq!(service(Writer::new().int64(1, 1).string(3, "http")), json!("http"));
    assert_eq!(service(Writer::new()), json!(0));
    let bad = Writer::new().int64(1, 7).finish();
    let raw = Writer::new().message(2, |spec| spec.message(1, |port| port.bytes(4, &bad))).finish();
    let err = decode(&encode_unknown("v1", "Service", &raw)).expect_err("type 7 is invalid");
    assert_eq!(
        err.to_string(),
        "malformed protobuf at Service.spec.ports[0].targetPort: IntOrString type 7 is neither 0 (int) nor 1 (string)"
    );
}
