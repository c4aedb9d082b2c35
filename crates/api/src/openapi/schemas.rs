//! Turns the schemars definitions of the served kinds into the definitions
//! kube-apiserver publishes: Swagger 2.0 schemas with kube's vendor
//! extensions, plus the list kinds and API machinery types the routes need.
//!
//! Start at [`canonical`]; [`to_v3`] then rewrites one canonical schema into
//! the OpenAPI 3.0 dialect, and [`reachable`] picks what a document needs.

use std::collections::{BTreeSet, VecDeque};

use serde_json::{Map, Value, json};

use super::PatchMeta;
use super::routes::{self, DELETE_OPTIONS, SCALE, STATUS, WATCH_EVENT};
use crate::resources::RESOURCES;

const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub(crate) const V2_PREFIX: &str = "#/definitions/";
pub(crate) const V3_PREFIX: &str = "#/components/schemas/";

/// Keywords a Swagger 2.0 Schema Object may carry besides `x-` extensions.
/// Anything else (JSON Schema 2019+ keywords, OpenAPI 3 `nullable`,
/// `oneOf`) would make gnostic reject the whole document.
const V2_KEYWORDS: &[&str] = &[
    "$ref",
    "format",
    "title",
    "description",
    "default",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
    "required",
    "enum",
    "additionalProperties",
    "type",
    "items",
    "allOf",
    "properties",
    "discriminator",
    "readOnly",
    "xml",
    "externalDocs",
    "example",
];

/// The definition name a `$ref` points at, whatever prefix the generator
/// used ("#/definitions/", "#/$defs/", "#/components/schemas/").
pub(crate) fn ref_name(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

/// The canonical (Swagger 2.0, kube-flavoured) definitions: the input
/// normalised, completed with the list kinds and API machinery types, and
/// annotated with `x-kubernetes-group-version-kind` and the patch strategy
/// extensions.
pub(crate) fn canonical(input: &Map<String, Value>, patch_meta: PatchMeta<'_>) -> Map<String, Value> {
    let mut defs = Map::new();
    for (name, schema) in input.iter().chain(machinery().iter()) {
        if !defs.contains_key(name) {
            defs.insert(name.clone(), to_v2(schema));
        }
    }
    // kube-openapi renders these two from Go marshalers, not structs:
    // IntOrString as a formatted string, Quantity as a plain string.
    if let Some(Value::Object(s)) = defs.get_mut(INT_OR_STRING) {
        s.remove("x-kubernetes-int-or-string");
        s.insert("type".into(), json!("string"));
        s.insert("format".into(), json!("int-or-string"));
    }
    if let Some(Value::Object(s)) = defs.get_mut(QUANTITY) {
        s.remove("x-kubernetes-int-or-string");
        s.remove("format");
        s.insert("type".into(), json!("string"));
    }
    for r in RESOURCES {
        let list = routes::list_definition(r);
        if !defs.contains_key(&list) {
            let schema = list_schema(&defs, r.definition, r.kind, r.plural);
            defs.insert(list.clone(), schema);
        }
        if let Some(Value::Object(kind)) = defs.get_mut(r.definition) {
            // k8s-openapi marks metadata required because the Rust field is
            // not an Option; kube-apiserver does not, and clients that
            // validate against the schema would reject metadata-less items.
            if let Some(Value::Array(required)) = kind.get_mut("required") {
                required.retain(|f| f != "metadata");
                if required.is_empty() {
                    kind.remove("required");
                }
            }
        }
        set_gvk(&mut defs, r.definition, vec![gvk(r.group, r.version, r.kind)]);
        set_gvk(&mut defs, &list, vec![gvk(r.group, r.version, r.list_kind)]);
    }
    // DeleteOptions and WatchEvent are registered in every group version.
    let every = |kind: &str| routes::group_versions().map(|(g, v)| gvk(g, v, kind)).collect::<Vec<_>>();
    set_gvk(&mut defs, DELETE_OPTIONS, every("DeleteOptions"));
    set_gvk(&mut defs, WATCH_EVENT, every("WatchEvent"));
    set_gvk(&mut defs, STATUS, vec![gvk("", "v1", "Status")]);
    set_gvk(&mut defs, SCALE, vec![gvk("autoscaling", "v1", "Scale")]);

    for (name, schema) in defs.iter_mut() {
        let Some(Value::Object(props)) = schema.get_mut("properties") else {
            continue;
        };
        for (field, prop) in props.iter_mut() {
            let (Some((strategy, key)), Value::Object(prop)) = (patch_meta(name, field), prop) else {
                continue;
            };
            prop.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
            if let Some(key) = key {
                prop.insert("x-kubernetes-patch-merge-key".into(), json!(key));
            }
        }
    }
    defs
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

fn set_gvk(defs: &mut Map<String, Value>, name: &str, gvks: Vec<Value>) {
    if let Some(Value::Object(s)) = defs.get_mut(name) {
        s.insert("x-kubernetes-group-version-kind".into(), Value::Array(gvks));
    }
}

/// The definitions the served kinds do not reach on their own but the
/// routes do (list metadata, delete options, status, watch events, patch
/// bodies, scale), generated from k8s-openapi like the rest.
fn machinery() -> Map<String, Value> {
    use k8s_openapi::api::autoscaling::v1 as autoscaling;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
    let mut generator = schemars::generate::SchemaSettings::draft07().into_generator();
    generator.subschema_for::<meta::ListMeta>();
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::Status>();
    // WatchEvent's schema does not depend on its payload type.
    generator.subschema_for::<meta::WatchEvent<meta::Status>>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<autoscaling::Scale>();
    generator.take_definitions(false)
}

/// The schema of `<Kind>List`, which k8s-openapi models as the generic
/// `List<T>` without a schema of its own.
fn list_schema(defs: &Map<String, Value>, item: &str, kind: &str, plural: &str) -> Value {
    // Reuse the item kind's apiVersion/kind descriptions rather than
    // repeating kube's boilerplate here.
    let prop = |field: &str| {
        defs.get(item)
            .and_then(|s| s.pointer(&format!("/properties/{field}")))
            .cloned()
            .unwrap_or_else(|| json!({ "type": "string" }))
    };
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "properties": {
            "apiVersion": prop("apiVersion"),
            "items": {
                "description": format!("List of {plural}."),
                "items": { "$ref": format!("{V2_PREFIX}{item}") },
                "type": "array",
            },
            "kind": prop("kind"),
            "metadata": {
                "$ref": format!("{V2_PREFIX}{LIST_META}"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
        "required": ["items"],
        "type": "object",
    })
}

/// Rewrites one generated JSON Schema into the Swagger 2.0 subset, the way
/// kube-openapi would have emitted it: refs with description siblings
/// instead of single-element `allOf`, one type per schema, no keywords
/// Swagger 2.0 lacks.
pub(crate) fn to_v2(schema: &Value) -> Value {
    let Value::Object(input) = schema else {
        // `true`/`false` schemas: "anything" is the closest Swagger 2.0 has.
        return json!({});
    };
    let mut s = input.clone();

    // schemars moves `$ref` siblings into `allOf: [{$ref}]`; Swagger 2.0
    // tools (and kubectl's proto models) only follow a plain `$ref`.
    if !s.contains_key("$ref") {
        if let Some(Value::Array(all_of)) = s.get("allOf") {
            if let [Value::Object(only)] = all_of.as_slice() {
                if only.len() == 1 && only.contains_key("$ref") {
                    let only = only.clone();
                    s.remove("allOf");
                    s.extend(only);
                }
            }
        }
    }
    // Option<T> in some generators: anyOf/oneOf [T, null]. Keep T.
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = s.remove(key) {
            let mut alts: Vec<Value> = alts.into_iter().filter(|a| a.get("type") != Some(&json!("null"))).collect();
            if alts.len() == 1 {
                if let Value::Object(only) = alts.remove(0) {
                    for (k, v) in only {
                        s.entry(k).or_insert(v);
                    }
                }
            }
        }
    }
    if let Some(Value::Array(types)) = s.get("type") {
        let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        match types.as_slice() {
            [one] => {
                let one = one.clone();
                s.insert("type".into(), one);
            }
            _ => {
                s.remove("type");
            }
        }
    }
    if let Some(c) = s.remove("const") {
        s.insert("enum".into(), Value::Array(vec![c]));
    }
    if s.get("x-kubernetes-int-or-string") == Some(&json!(true)) && !s.contains_key("type") && !s.contains_key("$ref") {
        s.insert("type".into(), json!("string"));
        s.insert("format".into(), json!("int-or-string"));
    }
    if let Some(Value::String(r)) = s.get("$ref") {
        let r = format!("{V2_PREFIX}{}", ref_name(r));
        s.insert("$ref".into(), Value::String(r));
    }
    s.retain(|k, _| k.starts_with("x-") || V2_KEYWORDS.contains(&k.as_str()));

    if let Some(Value::Object(props)) = s.get_mut("properties") {
        for prop in props.values_mut() {
            *prop = to_v2(prop);
        }
    }
    if let Some(items) = s.get_mut("items") {
        let converted = match &*items {
            // Tuple-style items: Swagger 2.0 has a single item schema.
            Value::Array(tuple) => tuple.first().map(to_v2).unwrap_or_else(|| json!({})),
            other => to_v2(other),
        };
        *items = converted;
    }
    if let Some(additional) = s.get_mut("additionalProperties") {
        if additional.is_object() {
            *additional = to_v2(additional);
        }
    }
    if let Some(Value::Array(all_of)) = s.get_mut("allOf") {
        for part in all_of.iter_mut() {
            *part = to_v2(part);
        }
    }
    Value::Object(s)
}

/// Rewrites a canonical schema into OpenAPI 3.0 as kube-openapi's v3
/// builder emits it: refs into components, `$ref` siblings wrapped in
/// `allOf` (OpenAPI 3.0 ignores siblings of `$ref`), and the v3-only
/// `oneOf` forms of IntOrString and Quantity.
pub(crate) fn to_v3(name: Option<&str>, schema: &Value) -> Value {
    let Value::Object(input) = schema else {
        return schema.clone();
    };
    let mut s = input.clone();
    match name {
        Some(INT_OR_STRING) => {
            s.remove("type");
            s.insert("oneOf".into(), json!([{ "type": "integer" }, { "type": "string" }]));
        }
        Some(QUANTITY) => {
            s.remove("type");
            s.insert("oneOf".into(), json!([{ "type": "string" }, { "type": "number" }]));
        }
        _ => {}
    }
    if let Some(Value::String(r)) = s.remove("$ref") {
        let reference = json!({ "$ref": format!("{V3_PREFIX}{}", ref_name(&r)) });
        if s.is_empty() {
            return reference;
        }
        s.insert("allOf".into(), Value::Array(vec![reference]));
    }
    if let Some(Value::Object(props)) = s.get_mut("properties") {
        for prop in props.values_mut() {
            *prop = to_v3(None, prop);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = s.get_mut(key) {
            if sub.is_object() {
                *sub = to_v3(None, sub);
            }
        }
    }
    if let Some(Value::Array(all_of)) = s.get_mut("allOf") {
        for part in all_of.iter_mut() {
            *part = to_v3(None, part);
        }
    }
    Value::Object(s)
}

/// Every `$ref` target named anywhere in `value`.
pub(crate) fn refs_in(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        out.insert(ref_name(r).to_string());
                    }
                    _ => refs_in(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs_in(v, out)),
        _ => {}
    }
}

/// The definitions reachable from `roots` through `$ref`s, in name order.
/// Names without a definition are skipped; the document tests catch them.
pub(crate) fn reachable(defs: &Map<String, Value>, roots: BTreeSet<String>) -> Map<String, Value> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<String> = roots.into_iter().collect();
    while let Some(name) = queue.pop_front() {
        if seen.contains(&name) {
            continue;
        }
        let Some(schema) = defs.get(&name) else {
            continue;
        };
        let mut next = BTreeSet::new();
        refs_in(schema, &mut next);
        queue.extend(next.into_iter().filter(|n| !seen.contains(n)));
        seen.insert(name);
    }
    seen.into_iter().filter_map(|n| defs.get(&n).cloned().map(|s| (n, s))).collect()
}

/// Sorts every object's keys, recursively. kube-apiserver's documents come
/// out of Go's encoding/json with sorted keys; matching that makes our
/// bytes (and hashes) independent of construction order.
pub(crate) fn sort_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, mut v) in entries {
                sort_keys(&mut v);
                map.insert(k, v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ref_all_of_becomes_a_ref_with_its_description() {
        let s = json!({ "description": "d", "allOf": [{ "$ref": "#/$defs/io.k8s.X" }] });
        assert_eq!(to_v2(&s), json!({ "description": "d", "$ref": "#/definitions/io.k8s.X" }));
    }

    #[test]
    fn nullable_types_collapse_to_one_type() {
        let s = json!({ "type": ["string", "null"], "nullable": true });
        assert_eq!(to_v2(&s), json!({ "type": "string" }));
        let s = json!({ "anyOf": [{ "$ref": "#/definitions/io.k8s.X" }, { "type": "null" }], "description": "d" });
        assert_eq!(to_v2(&s), json!({ "description": "d", "$ref": "#/definitions/io.k8s.X" }));
    }

    #[test]
    fn v3_wraps_refs_with_siblings_in_all_of() {
        let s = json!({ "description": "d", "$ref": "#/definitions/io.k8s.X" });
        assert_eq!(
            to_v3(None, &s),
            json!({ "description": "d", "allOf": [{ "$ref": "#/components/schemas/io.k8s.X" }] })
        );
        let s = json!({ "items": { "$ref": "#/definitions/io.k8s.X" }, "type": "array" });
        assert_eq!(to_v3(None, &s), json!({ "items": { "$ref": "#/components/schemas/io.k8s.X" }, "type": "array" }));
    }

    #[test]
    fn int_or_string_is_a_formatted_string_in_v2_and_one_of_in_v3() {
        let mut input = Map::new();
        input.insert(INT_OR_STRING.into(), json!({ "description": "d", "x-kubernetes-int-or-string": true }));
        let defs = canonical(&input, &|_, _| None);
        assert_eq!(defs[INT_OR_STRING], json!({ "description": "d", "type": "string", "format": "int-or-string" }));
        assert_eq!(
            to_v3(Some(INT_OR_STRING), &defs[INT_OR_STRING]),
            json!({ "description": "d", "format": "int-or-string", "oneOf": [{ "type": "integer" }, { "type": "string" }] })
        );
    }

    #[test]
    fn machinery_the_routes_need_is_generated_when_missing() {
        let defs = canonical(&Map::new(), &|_, _| None);
        for name in [DELETE_OPTIONS, STATUS, WATCH_EVENT, SCALE, LIST_META, super::routes::PATCH] {
            assert!(defs.contains_key(name), "{name}");
        }
        assert_eq!(defs["io.k8s.apimachinery.pkg.runtime.RawExtension"]["type"], "object");
    }
}
