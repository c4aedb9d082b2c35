//! The OpenAPI 3.0 documents of /openapi/v3: the root that lists one URL
//! per group version, and each group version's document.
//!
//! Parameters stay inline on every operation. kubectl's field validation
//! probe (QueryParamVerifierV3) only resolves parameter references spelled
//! "#/parameters/...", which is not a valid OpenAPI 3 location, so a
//! `#/components/parameters/` reference would make kubectl believe the
//! server lacks `fieldValidation` and fall back to client-side validation.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::routes::{self, In, Operation, Param, PathItem};
use super::schemas::{self, V3_PREFIX};
use super::{PatchMeta, security_definition};
use crate::resources::GROUPS;

/// Builds the document of one group version, or `None` if it isn't served.
pub(crate) fn group_version(
    group: &str,
    version: &str,
    definitions: &Map<String, Value>,
    patch_meta: PatchMeta<'_>,
) -> Option<Value> {
    if !GROUPS.iter().any(|(g, v)| *g == group && *v == version) {
        return None;
    }
    let items = routes::path_items(routes::resources_of(group, version));
    let mut paths = Map::new();
    for item in &items {
        paths.insert(item.path.clone(), path_item(item));
    }
    let mut roots = BTreeSet::new();
    schemas::refs_in(&Value::Object(paths.clone()), &mut roots);
    let canonical = schemas::canonical(definitions, patch_meta);
    let components: Map<String, Value> = schemas::reachable(&canonical, roots)
        .into_iter()
        .map(|(name, schema)| {
            let v3 = schemas::to_v3(Some(&name), &schema);
            (name, v3)
        })
        .collect();
    let mut doc = json!({
        "components": {
            "schemas": components,
            "securitySchemes": { "BearerToken": security_definition() },
        },
        "info": { "title": "Kubernetes", "version": super::KUBERNETES_VERSION },
        "openapi": "3.0.0",
        "paths": paths,
        "security": [{ "BearerToken": [] }],
    });
    schemas::sort_keys(&mut doc);
    Some(doc)
}

/// "api/v1" for the core group, "apis/<group>/<version>" otherwise: the
/// keys of the root document and the tail of each document's URL.
pub(crate) fn path_key(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// The /openapi/v3 root, from (path key, content hash) pairs.
pub(crate) fn root(hashes: &[(&str, &str)]) -> Value {
    let paths: Map<String, Value> = hashes
        .iter()
        .map(|(key, hash)| {
            ((*key).to_string(), json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}") }))
        })
        .collect();
    let mut doc = json!({ "paths": paths });
    schemas::sort_keys(&mut doc);
    doc
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("{V3_PREFIX}{name}") })
}

fn param(p: &Param) -> Value {
    let mut v = json!({
        "in": p.location.as_str(),
        "name": p.name,
        "schema": { "type": p.ty, "uniqueItems": true },
    });
    if !p.description.is_empty() {
        v["description"] = json!(p.description);
    }
    if p.required {
        v["required"] = json!(true);
    }
    v
}

fn path_item(item: &PathItem) -> Value {
    let mut v = Map::new();
    for op in &item.operations {
        v.insert(op.method.as_str().into(), operation(op));
    }
    if !item.params.is_empty() {
        v.insert("parameters".into(), item.params.iter().map(param).collect());
    }
    Value::Object(v)
}

fn operation(op: &Operation) -> Value {
    let mut responses = Map::new();
    for r in &op.responses {
        let mut resp = json!({ "description": r.description });
        if let Some(schema) = &r.schema {
            let content: Map<String, Value> = op
                .produces
                .iter()
                .map(|media| ((*media).to_string(), json!({ "schema": reference(schema) })))
                .collect();
            resp["content"] = Value::Object(content);
        }
        responses.insert(r.code.to_string(), resp);
    }
    let mut v = json!({
        "description": op.description,
        "operationId": op.id,
        "responses": responses,
        "tags": [op.tag],
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": { "group": op.gvk.group, "kind": op.gvk.kind, "version": op.gvk.version },
    });
    let params: Vec<Value> = op.params.iter().filter(|p| p.location != In::Body).map(param).collect();
    if !params.is_empty() {
        v["parameters"] = Value::Array(params);
    }
    if let Some(body) = op.params.iter().find(|p| p.location == In::Body) {
        if let Some(schema) = &body.schema {
            let content: Map<String, Value> = op
                .consumes
                .iter()
                .map(|media| ((*media).to_string(), json!({ "schema": reference(schema) })))
                .collect();
            let mut request = json!({ "content": content });
            if body.required {
                request["required"] = json!(true);
            }
            v["requestBody"] = request;
        }
    }
    v
}
