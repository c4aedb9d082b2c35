//! The Swagger 2.0 document of /openapi/v2, shaped like kube-apiserver's:
//! every route from [`super::routes`], parameters shared through
//! `#/parameters/` as kube-openapi does, and the reachable definitions.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::routes::{self, Operation, Param, PathItem};
use super::schemas::{self, V2_PREFIX};
use super::{PatchMeta, hash, security_definition};
use crate::resources::RESOURCES;

/// Builds the whole /openapi/v2 document.
pub(crate) fn document(definitions: &Map<String, Value>, patch_meta: PatchMeta<'_>) -> Value {
    let canonical = schemas::canonical(definitions, patch_meta);
    let items = routes::path_items(RESOURCES);
    let mut shared = SharedParams::default();
    let mut paths = Map::new();
    for item in &items {
        paths.insert(item.path.clone(), path_item(item, &mut shared));
    }
    let mut roots = BTreeSet::new();
    schemas::refs_in(&Value::Object(paths.clone()), &mut roots);
    for p in shared.by_name.values() {
        schemas::refs_in(p, &mut roots);
    }
    let mut doc = json!({
        "definitions": schemas::reachable(&canonical, roots),
        "info": { "title": "Kubernetes", "version": super::KUBERNETES_VERSION },
        "parameters": shared.by_name.into_iter().collect::<Map<String, Value>>(),
        "paths": paths,
        "security": [{ "BearerToken": [] }],
        "securityDefinitions": { "BearerToken": security_definition() },
        "swagger": "2.0",
    });
    schemas::sort_keys(&mut doc);
    doc
}

/// The parameters of the document, named `<name>-<hash>` after their
/// content the way kube-openapi's builder shares them. The hash is of our
/// own serialization, so names differ from kube-apiserver's; clients only
/// follow the references.
#[derive(Default)]
struct SharedParams {
    by_name: BTreeMap<String, Value>,
    names_by_json: BTreeMap<String, String>,
}

impl SharedParams {
    fn reference(&mut self, param: Value) -> Value {
        let key = param.to_string();
        let name = match self.names_by_json.get(&key) {
            Some(name) => name.clone(),
            None => {
                let digest = hash::sha512(key.as_bytes());
                let base = param.get("name").and_then(Value::as_str).unwrap_or("param").to_string();
                let mut name = format!("{base}-{}", base64::engine::general_purpose::URL_SAFE.encode(&digest[..6]));
                // Six bytes of SHA-512 collide with negligible odds; stay
                // correct if they ever do.
                let mut i = 1;
                while self.by_name.contains_key(&name) {
                    name = format!("{base}-{i}");
                    i += 1;
                }
                self.by_name.insert(name.clone(), param);
                self.names_by_json.insert(key, name.clone());
                name
            }
        };
        json!({ "$ref": format!("#/parameters/{name}") })
    }
}

fn param(p: &Param) -> Value {
    let mut v = Map::new();
    if !p.description.is_empty() {
        v.insert("description".into(), json!(p.description));
    }
    v.insert("in".into(), json!(p.location.as_str()));
    v.insert("name".into(), json!(p.name));
    if p.required {
        v.insert("required".into(), json!(true));
    }
    match &p.schema {
        Some(schema) => {
            v.insert("schema".into(), json!({ "$ref": format!("{V2_PREFIX}{schema}") }));
        }
        None => {
            v.insert("type".into(), json!(p.ty));
            // kube-openapi sets uniqueItems on every scalar parameter; kept
            // so the documents compare equal in shape.
            v.insert("uniqueItems".into(), json!(true));
        }
    }
    Value::Object(v)
}

fn path_item(item: &PathItem, shared: &mut SharedParams) -> Value {
    let mut v = Map::new();
    for op in &item.operations {
        v.insert(op.method.as_str().into(), operation(op, shared));
    }
    if !item.params.is_empty() {
        let params = item.params.iter().map(|p| shared.reference(param(p))).collect();
        v.insert("parameters".into(), Value::Array(params));
    }
    Value::Object(v)
}

fn operation(op: &Operation, shared: &mut SharedParams) -> Value {
    let mut responses = Map::new();
    for r in &op.responses {
        let mut resp = json!({ "description": r.description });
        if let Some(schema) = &r.schema {
            resp["schema"] = json!({ "$ref": format!("{V2_PREFIX}{schema}") });
        }
        responses.insert(r.code.to_string(), resp);
    }
    let mut v = json!({
        "consumes": op.consumes,
        "description": op.description,
        "operationId": op.id,
        "produces": op.produces,
        "responses": responses,
        "schemes": ["https"],
        "tags": [op.tag],
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": { "group": op.gvk.group, "kind": op.gvk.kind, "version": op.gvk.version },
    });
    if !op.params.is_empty() {
        v["parameters"] = Value::Array(op.params.iter().map(|p| shared.reference(param(p))).collect());
    }
    v
}
