//! The OpenAPI documents kube-apiserver serves, built for svcnet's
//! resources: /openapi/v2 as Swagger 2.0 JSON and as gnostic protobuf, and
//! /openapi/v3 as a root plus one OpenAPI 3.0 document per group version.
//!
//! Everything here is a pure function of the schema definitions (see
//! [`crate::schema`]) and the resource registry ([`crate::resources`]);
//! the server serializes the results once and serves the bytes.
//!
//! Where to start:
//! - [`v2_document`] / [`v3_group_version`] build the documents; both walk
//!   the same route model (`routes`) and canonical definitions (`schemas`).
//! - [`v2_protobuf`] encodes the v2 document for kubectl (`proto`).
//! - [`v3_root`] and [`content_hash`] give the `?hash=` URLs.
//!
//! Two client behaviours shape these documents (see the tests in
//! `tests/openapi_documents.rs`): kubectl asks the server to validate
//! fields only if the PATCH operation tagged with the object's
//! `x-kubernetes-group-version-kind` lists a `fieldValidation` query
//! parameter, and `kubectl explain` finds a kind's schema by that same
//! extension and follows `$ref`s from there.

use serde_json::{Map, Value, json};

mod hash;
mod proto;
mod routes;
mod schemas;
mod v2;
mod v3;

/// Looks up the strategic-merge-patch strategy of a field: called with a
/// definition name ("io.k8s.api.core.v1.ServiceSpec") and a property name
/// ("ports"), it returns the patch strategy ("merge", "retainKeys", ...) and
/// the merge key if any ("port"). They are published as
/// `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key`.
pub type PatchMeta<'a> = &'a dyn Fn(&str, &str) -> Option<(&'static str, Option<&'static str>)>;

/// A [`PatchMeta`] that knows no patch strategies.
pub fn no_patch_meta(_definition: &str, _field: &str) -> Option<(&'static str, Option<&'static str>)> {
    None
}

/// The Kubernetes version the documents' `info.version` claims, the API
/// level of the k8s-openapi types they are built from.
pub const KUBERNETES_VERSION: &str = "v1.33.0";

/// The media type kubectl puts in `Accept` when it asks /openapi/v2 for
/// [`v2_protobuf`]. kube-apiserver also accepts
/// [`V2_PROTOBUF_CONTENT_TYPE`] there.
pub const V2_PROTOBUF_ACCEPT: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The `Content-Type` to answer [`V2_PROTOBUF_ACCEPT`] with. '@' is not a
/// valid MIME token character, so kube-apiserver answers with this dotted
/// spelling; echoing the '@' form makes kubectl fail with "mime: unexpected
/// content after media subtype".
pub const V2_PROTOBUF_CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The Swagger 2.0 document of /openapi/v2.
///
/// `definitions` are JSON Schemas keyed by Kubernetes definition name
/// ("io.k8s.api.core.v1.Service"), as a schemars generator produces them
/// over k8s-openapi types; refs may use any prefix ending in the name.
/// Missing API machinery definitions (ListMeta, DeleteOptions, Status,
/// WatchEvent, Patch, Scale) are generated here; list kinds are
/// synthesised. Only definitions reachable from the paths are included.
pub fn v2_document(definitions: &Map<String, Value>, patch_meta: PatchMeta<'_>) -> Value {
    v2::document(definitions, patch_meta)
}

/// `doc` (from [`v2_document`]) encoded as gnostic's `openapi.v2.Document`
/// protobuf message.
pub fn v2_protobuf(doc: &Value) -> Vec<u8> {
    proto::encode_document(doc)
}

/// The OpenAPI 3.0 document of /openapi/v3/api/v1 or
/// /openapi/v3/apis/<group>/<version>, or `None` for a group version svcnet
/// doesn't serve. Arguments as for [`v2_document`].
pub fn v3_group_version(
    group: &str,
    version: &str,
    definitions: &Map<String, Value>,
    patch_meta: PatchMeta<'_>,
) -> Option<Value> {
    v3::group_version(group, version, definitions, patch_meta)
}

/// The key of a group version in the /openapi/v3 root and the tail of its
/// document's URL: "api/v1", "apis/apps/v1".
pub fn v3_path(group: &str, version: &str) -> String {
    v3::path_key(group, version)
}

/// The /openapi/v3 root document, from (path key as from [`v3_path`],
/// [`content_hash`] of that document's served bytes) pairs:
/// `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}}}`.
pub fn v3_root(hashes: &[(&str, &str)]) -> Value {
    v3::root(hashes)
}

/// The uppercase hex SHA-512 of `bytes`, as kube-openapi names document
/// versions in `?hash=` URLs and ETags.
pub fn content_hash(bytes: &[u8]) -> String {
    hash::content_hash(bytes)
}

/// The bearer token scheme kube-apiserver declares in both document
/// versions (Swagger 2.0 `securityDefinitions` and OpenAPI 3.0
/// `securitySchemes` happen to share this shape).
fn security_definition() -> Value {
    json!({
        "description": "Bearer Token authentication",
        "in": "header",
        "name": "authorization",
        "type": "apiKey",
    })
}
