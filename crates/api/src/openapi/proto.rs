//! Encodes a Swagger 2.0 JSON document as gnostic's `openapi.v2.Document`
//! protobuf message, the form kubectl downloads from /openapi/v2 with
//! `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`.
//!
//! Start at [`encode_document`]. Field numbers are those of gnostic's
//! `openapiv2/OpenAPIv2.proto`; each `fn` below encodes the message of the
//! same name. The mapping from JSON mirrors gnostic's own compiler: JSON
//! object keys keep their order, `x-` keys become `NamedAny` vendor
//! extensions whose `Any.yaml` holds the value, maps become repeated
//! `Named*` pairs, and oneofs are chosen the way gnostic chooses them
//! (`$ref` → `JsonReference`, `in: body` → `BodyParameter`, ...).
//! Proto3 scalars equal to their default are omitted, as any proto3
//! encoder would; submessages are always written, so an empty schema
//! (`{}`) stays present.

use serde_json::{Map, Value};

/// A protobuf wire-format writer for one message.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, LEN);
        self.varint(bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
    }

    /// A string field; empty strings are the proto3 default and omitted.
    fn string(&mut self, field: u32, value: Option<&Value>) {
        if let Some(Value::String(s)) = value {
            if !s.is_empty() {
                self.bytes(field, s.as_bytes());
            }
        }
    }

    fn strings(&mut self, field: u32, value: Option<&Value>) {
        match value {
            Some(Value::Array(items)) => {
                for item in items {
                    if let Value::String(s) = item {
                        // Repeated strings keep empty elements: they are
                        // values, not absent fields.
                        self.bytes(field, s.as_bytes());
                    }
                }
            }
            // A lone string where an array belongs (`type: "object"`).
            Some(Value::String(s)) => self.bytes(field, s.as_bytes()),
            _ => {}
        }
    }

    fn bool(&mut self, field: u32, value: Option<&Value>) {
        if let Some(Value::Bool(true)) = value {
            self.key(field, VARINT);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, value: Option<&Value>) {
        if let Some(n) = value.and_then(Value::as_i64) {
            if n != 0 {
                self.key(field, VARINT);
                // Negative int64s are ten-byte two's complement varints.
                self.varint(n as u64);
            }
        }
    }

    fn double(&mut self, field: u32, value: Option<&Value>) {
        if let Some(n) = value.and_then(Value::as_f64) {
            if n != 0.0 {
                self.key(field, FIXED64);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
        }
    }

    /// A submessage, always written (presence matters for messages).
    fn message(&mut self, field: u32, encode: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::default();
        encode(&mut inner);
        self.bytes(field, &inner.buf);
    }

    /// An optional object-valued submessage.
    fn object(&mut self, field: u32, value: Option<&Value>, encode: impl FnOnce(&mut Writer, &Map<String, Value>)) {
        if let Some(Value::Object(map)) = value {
            self.message(field, |w| encode(w, map));
        }
    }

    /// `Any { yaml = 2 }` holding `value`. JSON is valid YAML (flow
    /// style, with every string quoted), and quoting everything sidesteps
    /// YAML 1.1 surprises such as an unquoted `no` decoding to false.
    fn any(&mut self, field: u32, value: &Value) {
        self.message(field, |w| w.bytes(2, value.to_string().as_bytes()));
    }

    fn optional_any(&mut self, field: u32, value: Option<&Value>) {
        if let Some(v) = value {
            self.any(field, v);
        }
    }

    fn anys(&mut self, field: u32, value: Option<&Value>) {
        if let Some(Value::Array(items)) = value {
            for item in items {
                self.any(field, item);
            }
        }
    }

    /// `repeated NamedAny vendor_extension`: every `x-` key, in order.
    fn vendor_extensions(&mut self, field: u32, map: &Map<String, Value>) {
        for (name, value) in map.iter().filter(|(k, _)| k.starts_with("x-")) {
            self.message(field, |w| {
                w.bytes(1, name.as_bytes());
                w.any(2, value);
            });
        }
    }

    /// A JSON object as `repeated Named<T>` pairs (name = 1, value = 2),
    /// skipping `x-` keys, which gnostic reads as extensions instead.
    fn named(&mut self, field: u32, map: &Map<String, Value>, encode: impl Fn(&mut Writer, &Value)) {
        for (name, value) in map.iter().filter(|(k, _)| !k.starts_with("x-")) {
            self.message(field, |w| {
                w.bytes(1, name.as_bytes());
                w.message(2, |w| encode(w, value));
            });
        }
    }
}

/// Encodes a Swagger 2.0 document as `openapi.v2.Document`.
pub(crate) fn encode_document(doc: &Value) -> Vec<u8> {
    let mut w = Writer::default();
    if let Value::Object(d) = doc {
        document(&mut w, d);
    }
    w.buf
}

fn document(w: &mut Writer, d: &Map<String, Value>) {
    w.string(1, d.get("swagger"));
    w.object(2, d.get("info"), info);
    w.string(3, d.get("host"));
    w.string(4, d.get("basePath"));
    w.strings(5, d.get("schemes"));
    w.strings(6, d.get("consumes"));
    w.strings(7, d.get("produces"));
    w.object(8, d.get("paths"), paths);
    w.object(9, d.get("definitions"), |w, m| w.named(1, m, schema_value));
    w.object(10, d.get("parameters"), |w, m| w.named(1, m, parameter_value));
    w.object(11, d.get("responses"), |w, m| w.named(1, m, response_value));
    if let Some(Value::Array(reqs)) = d.get("security") {
        for req in reqs {
            w.object(12, Some(req), security_requirement);
        }
    }
    w.object(13, d.get("securityDefinitions"), |w, m| w.named(1, m, security_definitions_item));
    if let Some(Value::Array(tags)) = d.get("tags") {
        for t in tags {
            w.object(14, Some(t), tag);
        }
    }
    w.object(15, d.get("externalDocs"), external_docs);
    w.vendor_extensions(16, d);
}

fn info(w: &mut Writer, m: &Map<String, Value>) {
    w.string(1, m.get("title"));
    w.string(2, m.get("version"));
    w.string(3, m.get("description"));
    w.string(4, m.get("termsOfService"));
    w.object(5, m.get("contact"), |w, c| {
        w.string(1, c.get("name"));
        w.string(2, c.get("url"));
        w.string(3, c.get("email"));
        w.vendor_extensions(4, c);
    });
    w.object(6, m.get("license"), |w, l| {
        w.string(1, l.get("name"));
        w.string(2, l.get("url"));
        w.vendor_extensions(3, l);
    });
    w.vendor_extensions(7, m);
}

fn external_docs(w: &mut Writer, m: &Map<String, Value>) {
    w.string(1, m.get("description"));
    w.string(2, m.get("url"));
    w.vendor_extensions(3, m);
}

fn tag(w: &mut Writer, m: &Map<String, Value>) {
    w.string(1, m.get("name"));
    w.string(2, m.get("description"));
    w.object(3, m.get("externalDocs"), external_docs);
    w.vendor_extensions(4, m);
}

fn paths(w: &mut Writer, m: &Map<String, Value>) {
    w.vendor_extensions(1, m);
    w.named(2, m, |w, v| {
        if let Value::Object(item) = v {
            path_item(w, item);
        }
    });
}

fn path_item(w: &mut Writer, m: &Map<String, Value>) {
    w.string(1, m.get("$ref"));
    for (field, method) in
        [(2, "get"), (3, "put"), (4, "post"), (5, "delete"), (6, "options"), (7, "head"), (8, "patch")]
    {
        w.object(field, m.get(method), operation);
    }
    parameters_items(w, 9, m.get("parameters"));
    w.vendor_extensions(10, m);
}

fn operation(w: &mut Writer, m: &Map<String, Value>) {
    w.strings(1, m.get("tags"));
    w.string(2, m.get("summary"));
    w.string(3, m.get("description"));
    w.object(4, m.get("externalDocs"), external_docs);
    w.string(5, m.get("operationId"));
    w.strings(6, m.get("produces"));
    w.strings(7, m.get("consumes"));
    parameters_items(w, 8, m.get("parameters"));
    w.object(9, m.get("responses"), |w, r| {
        w.named(1, r, response_value);
        w.vendor_extensions(2, r);
    });
    w.strings(10, m.get("schemes"));
    w.bool(11, m.get("deprecated"));
    if let Some(Value::Array(reqs)) = m.get("security") {
        for req in reqs {
            w.object(12, Some(req), security_requirement);
        }
    }
    w.vendor_extensions(13, m);
}

/// `repeated ParametersItem`: oneof parameter = 1 | json_reference = 2.
fn parameters_items(w: &mut Writer, field: u32, value: Option<&Value>) {
    let Some(Value::Array(params)) = value else {
        return;
    };
    for p in params {
        let Value::Object(p) = p else { continue };
        w.message(field, |w| {
            if p.contains_key("$ref") {
                w.message(2, |w| json_reference(w, p));
            } else {
                w.message(1, |w| parameter(w, p));
            }
        });
    }
}

fn json_reference(w: &mut Writer, m: &Map<String, Value>) {
    w.string(1, m.get("$ref"));
    w.string(2, m.get("description"));
}

fn parameter_value(w: &mut Writer, v: &Value) {
    if let Value::Object(p) = v {
        parameter(w, p);
    }
}

/// `Parameter`: oneof body_parameter = 1 | non_body_parameter = 2, the
/// latter itself a oneof over header = 1, formData = 2, query = 3, path = 4.
fn parameter(w: &mut Writer, m: &Map<String, Value>) {
    let location = m.get("in").and_then(Value::as_str).unwrap_or_default();
    if location == "body" {
        w.message(1, |w| {
            w.string(1, m.get("description"));
            w.string(2, m.get("name"));
            w.string(3, m.get("in"));
            w.bool(4, m.get("required"));
            w.object(5, m.get("schema"), schema);
            w.vendor_extensions(6, m);
        });
        return;
    }
    let (sub_field, has_allow_empty) = match location {
        "header" => (1, false),
        "formData" => (2, true),
        "path" => (4, false),
        _ => (3, true),
    };
    w.message(2, |w| {
        w.message(sub_field, |w| {
            w.bool(1, m.get("required"));
            w.string(2, m.get("in"));
            w.string(3, m.get("description"));
            w.string(4, m.get("name"));
            // Query and formData parameters have allowEmptyValue at 5,
            // which pushes every later field of theirs up by one.
            let first = if has_allow_empty {
                w.bool(5, m.get("allowEmptyValue"));
                6
            } else {
                5
            };
            simple_schema(w, first, m);
        });
    });
}

/// The run of fields shared by non-body parameters, headers and
/// primitive items, starting at `first` (type) and ending with
/// vendor_extension; only their starting number differs between messages.
fn simple_schema(w: &mut Writer, first: u32, m: &Map<String, Value>) {
    w.string(first, m.get("type"));
    w.string(first + 1, m.get("format"));
    w.object(first + 2, m.get("items"), |w, items| simple_schema(w, 1, items));
    w.string(first + 3, m.get("collectionFormat"));
    w.optional_any(first + 4, m.get("default"));
    w.double(first + 5, m.get("maximum"));
    w.bool(first + 6, m.get("exclusiveMaximum"));
    w.double(first + 7, m.get("minimum"));
    w.bool(first + 8, m.get("exclusiveMinimum"));
    w.int64(first + 9, m.get("maxLength"));
    w.int64(first + 10, m.get("minLength"));
    w.string(first + 11, m.get("pattern"));
    w.int64(first + 12, m.get("maxItems"));
    w.int64(first + 13, m.get("minItems"));
    w.bool(first + 14, m.get("uniqueItems"));
    w.anys(first + 15, m.get("enum"));
    w.double(first + 16, m.get("multipleOf"));
    w.vendor_extensions(first + 17, m);
}

/// `ResponseValue`: oneof response = 1 | json_reference = 2.
fn response_value(w: &mut Writer, v: &Value) {
    let Value::Object(m) = v else { return };
    if m.contains_key("$ref") {
        w.message(2, |w| json_reference(w, m));
    } else {
        w.message(1, |w| response(w, m));
    }
}

fn response(w: &mut Writer, m: &Map<String, Value>) {
    w.string(1, m.get("description"));
    // SchemaItem: oneof schema = 1 | file_schema = 2.
    w.object(2, m.get("schema"), |w, s| {
        if s.get("type").and_then(Value::as_str) == Some("file") {
            w.message(2, |w| file_schema(w, s));
        } else {
            w.message(1, |w| schema(w, s));
        }
    });
    w.object(3, m.get("headers"), |w, headers| {
        w.named(1, headers, |w, h| {
            if let Value::Object(h) = h {
                // Header: the simple-schema run from 1, then
                // description = 18 and vendor_extension = 19.
                let mut without_ext = h.clone();
                without_ext.retain(|k, _| !k.starts_with("x-"));
                simple_schema(w, 1, &without_ext);
                w.string(18, h.get("description"));
                w.vendor_extensions(19, h);
            }
        });
    });
    w.object(4, m.get("examples"), |w, ex| {
        for (name, value) in ex {
            w.message(1, |w| {
                w.bytes(1, name.as_bytes());
                w.any(2, value);
            });
        }
    });
    w.vendor_extensions(5, m);
}

fn file_schema(w: &mut Writer, m: &Map<String, Value>) {
    w.string(1, m.get("format"));
    w.string(2, m.get("title"));
    w.string(3, m.get("description"));
    w.optional_any(4, m.get("default"));
    w.strings(5, m.get("required"));
    w.string(6, m.get("type"));
    w.bool(7, m.get("readOnly"));
    w.object(8, m.get("externalDocs"), external_docs);
    w.optional_any(9, m.get("example"));
    w.vendor_extensions(10, m);
}

fn schema_value(w: &mut Writer, v: &Value) {
    if let Value::Object(m) = v {
        schema(w, m);
    }
}

fn schema(w: &mut Writer, m: &Map<String, Value>) {
    w.string(1, m.get("$ref"));
    w.string(2, m.get("format"));
    w.string(3, m.get("title"));
    w.string(4, m.get("description"));
    w.optional_any(5, m.get("default"));
    w.double(6, m.get("multipleOf"));
    w.double(7, m.get("maximum"));
    w.bool(8, m.get("exclusiveMaximum"));
    w.double(9, m.get("minimum"));
    w.bool(10, m.get("exclusiveMinimum"));
    w.int64(11, m.get("maxLength"));
    w.int64(12, m.get("minLength"));
    w.string(13, m.get("pattern"));
    w.int64(14, m.get("maxItems"));
    w.int64(15, m.get("minItems"));
    w.bool(16, m.get("uniqueItems"));
    w.int64(17, m.get("maxProperties"));
    w.int64(18, m.get("minProperties"));
    w.strings(19, m.get("required"));
    w.anys(20, m.get("enum"));
    // AdditionalPropertiesItem: oneof schema = 1 | boolean = 2. A oneof
    // member is written even when false: its presence is the value.
    match m.get("additionalProperties") {
        Some(Value::Object(s)) => w.message(21, |w| w.message(1, |w| schema(w, s))),
        Some(Value::Bool(b)) => w.message(21, |w| {
            w.key(2, VARINT);
            w.varint(u64::from(*b));
        }),
        _ => {}
    }
    // TypeItem { repeated string value = 1 }.
    if let Some(t) = m.get("type") {
        w.message(22, |w| w.strings(1, Some(t)));
    }
    // ItemsItem { repeated Schema schema = 1 }: one schema or a tuple.
    match m.get("items") {
        Some(Value::Object(s)) => w.message(23, |w| w.message(1, |w| schema(w, s))),
        Some(Value::Array(tuple)) => w.message(23, |w| {
            for s in tuple {
                w.object(1, Some(s), schema);
            }
        }),
        _ => {}
    }
    if let Some(Value::Array(all_of)) = m.get("allOf") {
        for s in all_of {
            w.object(24, Some(s), schema);
        }
    }
    w.object(25, m.get("properties"), |w, props| w.named(1, props, schema_value));
    w.string(26, m.get("discriminator"));
    w.bool(27, m.get("readOnly"));
    w.object(28, m.get("xml"), |w, x| {
        w.string(1, x.get("name"));
        w.string(2, x.get("namespace"));
        w.string(3, x.get("prefix"));
        w.bool(4, x.get("attribute"));
        w.bool(5, x.get("wrapped"));
        w.vendor_extensions(6, x);
    });
    w.object(29, m.get("externalDocs"), external_docs);
    w.optional_any(30, m.get("example"));
    w.vendor_extensions(31, m);
}

/// `SecurityRequirement { repeated NamedStringArray additional_properties }`.
fn security_requirement(w: &mut Writer, m: &Map<String, Value>) {
    for (name, scopes) in m {
        w.message(1, |w| {
            w.bytes(1, name.as_bytes());
            w.message(2, |w| w.strings(1, Some(scopes)));
        });
    }
}

/// `SecurityDefinitionsItem`: a oneof chosen by `type` (and `flow`).
fn security_definitions_item(w: &mut Writer, v: &Value) {
    let Value::Object(m) = v else { return };
    let scopes = |w: &mut Writer| {
        w.object(3, m.get("scopes"), |w, s| {
            for (name, value) in s {
                w.message(1, |w| {
                    w.bytes(1, name.as_bytes());
                    w.string(2, Some(value));
                });
            }
        })
    };
    match (m.get("type").and_then(Value::as_str), m.get("flow").and_then(Value::as_str)) {
        (Some("basic"), _) => w.message(1, |w| {
            w.string(1, m.get("type"));
            w.string(2, m.get("description"));
            w.vendor_extensions(3, m);
        }),
        (Some("apiKey"), _) => w.message(2, |w| {
            w.string(1, m.get("type"));
            w.string(2, m.get("name"));
            w.string(3, m.get("in"));
            w.string(4, m.get("description"));
            w.vendor_extensions(5, m);
        }),
        (Some("oauth2"), Some("implicit")) => w.message(3, |w| {
            w.string(1, m.get("type"));
            w.string(2, m.get("flow"));
            scopes(w);
            w.string(4, m.get("authorizationUrl"));
            w.string(5, m.get("description"));
            w.vendor_extensions(6, m);
        }),
        (Some("oauth2"), Some(flow @ ("password" | "application"))) => {
            w.message(if flow == "password" { 4 } else { 5 }, |w| {
                w.string(1, m.get("type"));
                w.string(2, m.get("flow"));
                scopes(w);
                w.string(4, m.get("tokenUrl"));
                w.string(5, m.get("description"));
                w.vendor_extensions(6, m);
            })
        }
        (Some("oauth2"), Some("accessCode")) => w.message(6, |w| {
            w.string(1, m.get("type"));
            w.string(2, m.get("flow"));
            scopes(w);
            w.string(4, m.get("authorizationUrl"));
            w.string(5, m.get("tokenUrl"));
            w.string(6, m.get("description"));
            w.vendor_extensions(7, m);
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn varints_and_keys_use_the_protobuf_wire_format() {
        let mut w = Writer::default();
        w.varint(300);
        assert_eq!(w.buf, [0xAC, 0x02]);
        let mut w = Writer::default();
        w.string(1, Some(&json!("2.0")));
        assert_eq!(w.buf, [0x0A, 3, b'2', b'.', b'0']);
        let mut w = Writer::default();
        w.int64(11, Some(&json!(-1)));
        assert_eq!(w.buf.len(), 1 + 10, "negative int64 is a ten-byte varint");
    }

    #[test]
    fn false_additional_properties_is_still_encoded() {
        let mut w = Writer::default();
        schema(&mut w, json!({ "additionalProperties": false }).as_object().unwrap_or(&Map::new()));
        // field 21, LEN, 2 bytes: { field 2 varint 0 }
        assert_eq!(w.buf, [0xAA, 0x01, 2, 0x10, 0]);
    }
}
