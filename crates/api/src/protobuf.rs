//! Decoding of Kubernetes protobuf request bodies into JSON objects.
//!
//! kubectl's typed clients (`kubectl create configmap`, `create secret`,
//! `create deployment`, ...) send `application/vnd.kubernetes.protobuf`.
//! [`decode`] turns such a body into the JSON object Kubernetes' own JSON
//! encoding of the same Go object would be, so the rest of the server only
//! ever sees JSON.
//!
//! The envelope is the 4 magic bytes `k8s\0` and a `runtime.Unknown`
//! message (typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2,
//! contentEncoding = 3, contentType = 4) whose `raw` is the object's own
//! message. Objects are decoded by tables, one per message type, that give
//! each field's number, JSON name and Go shape (`message.rs` explains the
//! model; `meta.rs`, `core.rs`, `apps.rs`, `networking.rs`, `discovery.rs`
//! and `autoscaling.rs` hold the tables, `decode.rs` walks them).
//!
//! The JSON follows Go, not proto3 conventions: every non-pointer field
//! Go writes to the wire is decoded as Go would hold it, so zero scalars
//! with `omitempty` disappear, `creationTimestamp` of an unset time is
//! `null`, unset structs are `{}`, and pointer fields keep explicit zeros
//! (`replicas: 0`).
//!
//! [`Writer`] and [`encode_unknown`] build protobuf inputs for tests.

// The tables keep one message per call and one field per line.
#[rustfmt::skip]
mod apps;
#[rustfmt::skip]
mod autoscaling;
#[rustfmt::skip]
mod core;
mod decode;
#[rustfmt::skip]
mod discovery;
mod message;
#[rustfmt::skip]
mod meta;
#[rustfmt::skip]
mod networking;
mod wire;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use message::{Field, Message, list_or_null, msg, value};
use wire::{Reader, WireValue};

pub use wire::Writer;

/// The first four bytes of every Kubernetes protobuf object.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    /// The bytes are not valid protobuf for the message they claim to be;
    /// `at` is the JSON path of the offending field ("Deployment.spec.
    /// template.spec.containers[0].ports"), or "envelope".
    #[error("malformed protobuf at {at}: {reason}")]
    Malformed { at: String, reason: Malformation },
    /// The envelope names a kind svcnet has no message table for.
    #[error("cannot decode {kind} of {api_version} from protobuf")]
    UnsupportedKind { api_version: String, kind: String },
    /// The envelope declares a content encoding or type other than plain
    /// protobuf (Kubernetes itself never sets them).
    #[error("unsupported protobuf envelope: contentEncoding {content_encoding:?}, contentType {content_type:?}")]
    UnsupportedEnvelope { content_encoding: String, content_type: String },
}

/// What exactly is wrong with malformed input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformation {
    #[error("the body does not start with the k8s\\0 magic bytes")]
    MissingMagic,
    #[error("the input ends inside a field")]
    Truncated,
    #[error("a varint is longer than ten bytes")]
    VarintOverflow,
    #[error("invalid field number {0}")]
    FieldNumber(u64),
    #[error("unsupported wire type {0}")]
    WireType(u8),
    #[error("wire type {found} where wire type {expected} belongs")]
    WireTypeMismatch { found: u8, expected: u8 },
    #[error("IntOrString type {0} is neither 0 (int) nor 1 (string)")]
    IntOrStringType(i64),
    #[error("a timestamp of {0} seconds is outside the years 0 to 9999")]
    TimeOutOfRange(i64),
    #[error("a double is NaN or infinite, which JSON cannot hold")]
    NonFiniteDouble,
    #[error("a quantity is the empty string")]
    EmptyQuantity,
    #[error("an embedded object is neither JSON nor Kubernetes protobuf")]
    RawExtension,
    #[error("fieldsV1 is not JSON")]
    FieldsV1,
    #[error("objects nest more than {} deep", decode::MAX_DEPTH)]
    TooDeep,
}

impl ProtobufError {
    fn malformed(reason: Malformation) -> ProtobufError {
        ProtobufError::Malformed { at: String::new(), reason }
    }

    /// Prefixes the path of a malformed field with its parent's segment.
    fn within(mut self, segment: &str) -> ProtobufError {
        if let ProtobufError::Malformed { at, .. } = &mut self {
            if !segment.is_empty() {
                *at = if at.is_empty() {
                    segment.to_owned()
                } else if at.starts_with('[') {
                    format!("{segment}{at}")
                } else {
                    format!("{segment}.{at}")
                };
            }
        }
        self
    }
}

/// Decodes a Kubernetes protobuf body (`k8s\0` + `runtime.Unknown`) into
/// the JSON object Kubernetes' JSON encoding of it would be, `kind` and
/// `apiVersion` first.
///
/// Every served kind (see [`crate::resources`]) and its list kind are
/// supported, as are `autoscaling/v1` Scale and the meta kinds
/// DeleteOptions, Status and WatchEvent in any `v1` group version.
pub fn decode(bytes: &[u8]) -> Result<Value, ProtobufError> {
    decode_at_depth(bytes, 0)
}

/// Wraps an encoded object in the Kubernetes protobuf envelope, the way Go
/// clients do (content encoding and type written, empty).
pub fn encode_unknown(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let unknown = Writer::new()
        .message(1, |type_meta| type_meta.string(1, api_version).string(2, kind))
        .bytes(2, raw)
        .string(3, "")
        .string(4, "")
        .finish();
    [&MAGIC[..], &unknown].concat()
}

/// The kinds with a table, by apiVersion and kind.
static KINDS: &[(&str, &str, &Message)] = &[
    ("v1", "Namespace", &core::NAMESPACE),
    ("v1", "Node", &core::NODE),
    ("v1", "Pod", &core::POD),
    ("v1", "Service", &core::SERVICE),
    ("v1", "Endpoints", &core::ENDPOINTS),
    ("v1", "Secret", &core::SECRET),
    ("v1", "ConfigMap", &core::CONFIG_MAP),
    ("v1", "Event", &core::EVENT),
    ("discovery.k8s.io/v1", "EndpointSlice", &discovery::ENDPOINT_SLICE),
    ("apps/v1", "Deployment", &apps::DEPLOYMENT),
    ("apps/v1", "ReplicaSet", &apps::REPLICA_SET),
    ("apps/v1", "StatefulSet", &apps::STATEFUL_SET),
    ("apps/v1", "DaemonSet", &apps::DAEMON_SET),
    ("apps/v1", "ControllerRevision", &apps::CONTROLLER_REVISION),
    ("networking.k8s.io/v1", "Ingress", &networking::INGRESS),
    ("networking.k8s.io/v1", "IngressClass", &networking::INGRESS_CLASS),
    ("autoscaling/v1", "Scale", &autoscaling::SCALE),
];

/// meta.k8s.io kinds, which every group version serves.
static META_KINDS: &[(&str, &Message)] =
    &[("DeleteOptions", &meta::DELETE_OPTIONS), ("Status", &meta::STATUS), ("WatchEvent", &meta::WATCH_EVENT)];

/// What `raw` holds for an apiVersion and kind.
enum Root {
    Object(&'static Message),
    /// `FooList`: ListMeta = 1, items = 2, as every Kubernetes list.
    List(&'static Message),
}

fn root(api_version: &str, kind: &str) -> Option<Root> {
    let find = |kind: &str| KINDS.iter().find(|(v, k, _)| *v == api_version && *k == kind).map(|(_, _, m)| *m);
    if let Some(message) = find(kind) {
        return Some(Root::Object(message));
    }
    if let Some(message) = kind.strip_suffix("List").and_then(find) {
        return Some(Root::List(message));
    }
    let v1 = api_version == "v1" || api_version.ends_with("/v1");
    META_KINDS.iter().find(|(k, _)| v1 && *k == kind).map(|(_, m)| Root::Object(m))
}

fn decode_at_depth(bytes: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    let envelope = Envelope::parse(bytes).map_err(|e| e.within("envelope"))?;
    let list_fields: [Field; 2];
    let fields: &[Field] = match root(&envelope.api_version, &envelope.kind) {
        Some(Root::Object(message)) => message.fields,
        Some(Root::List(item)) => {
            list_fields = [(1, "metadata", value(msg(&meta::LIST_META))), (2, "items", list_or_null(msg(item)))];
            &list_fields
        }
        None => {
            return Err(ProtobufError::UnsupportedKind { api_version: envelope.api_version, kind: envelope.kind });
        }
    };
    // TypeMeta is embedded first in every kind, kind before apiVersion,
    // both `omitempty`.
    let mut object = Map::new();
    if !envelope.kind.is_empty() {
        object.insert("kind".into(), Value::String(envelope.kind.clone()));
    }
    if !envelope.api_version.is_empty() {
        object.insert("apiVersion".into(), Value::String(envelope.api_version.clone()));
    }
    let fields = decode::object(fields, envelope.raw, depth).map_err(|e| e.within(&envelope.kind))?;
    object.extend(fields);
    Ok(Value::Object(object))
}

/// `runtime.Unknown` after the magic bytes.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
}

impl<'a> Envelope<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Envelope<'a>, ProtobufError> {
        let body = bytes.strip_prefix(&MAGIC).ok_or(ProtobufError::malformed(Malformation::MissingMagic))?;
        let mut envelope = Envelope { api_version: String::new(), kind: String::new(), raw: &[] };
        let (mut content_encoding, mut content_type) = (String::new(), String::new());
        let mut reader = Reader::new(body);
        while let Some((number, value)) = reader.next_field().map_err(ProtobufError::malformed)? {
            let WireValue::Len(bytes) = value else {
                // Every field of Unknown is length-delimited; others are
                // unknown fields of a wrong type, which Go rejects too.
                return Err(ProtobufError::malformed(Malformation::WireTypeMismatch {
                    found: value.wire_type(),
                    expected: 2,
                }));
            };
            let text = || String::from_utf8_lossy(bytes).into_owned();
            match number {
                1 => {
                    let mut type_meta = Reader::new(bytes);
                    while let Some((n, v)) = type_meta.next_field().map_err(ProtobufError::malformed)? {
                        match (n, v) {
                            (1, WireValue::Len(s)) => envelope.api_version = String::from_utf8_lossy(s).into_owned(),
                            (2, WireValue::Len(s)) => envelope.kind = String::from_utf8_lossy(s).into_owned(),
                            (1 | 2, other) => {
                                return Err(ProtobufError::malformed(Malformation::WireTypeMismatch {
                                    found: other.wire_type(),
                                    expected: 2,
                                })
                                .within("typeMeta"));
                            }
                            _ => {}
                        }
                    }
                }
                2 => envelope.raw = bytes,
                3 => content_encoding = text(),
                4 => content_type = text(),
                _ => {}
            }
        }
        if !content_encoding.is_empty() || !(content_type.is_empty() || content_type == CONTENT_TYPE) {
            return Err(ProtobufError::UnsupportedEnvelope { content_encoding, content_type });
        }
        Ok(envelope)
    }
}
