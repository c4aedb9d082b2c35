//! Serving the OpenAPI documents, generated once on first use.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use http::{Response, StatusCode};

use crate::body::Body;
use crate::handler::bytes_response;

struct Docs {
    v2_json: Bytes,
    v2_proto: Bytes,
    v3_root: Bytes,
    /// "api/v1", "apis/apps/v1", ... to their documents.
    v3: HashMap<String, Bytes>,
}

/// The OpenAPI documents of the served resources.
#[derive(Default)]
pub struct OpenApi {
    docs: OnceLock<Docs>,
}

impl OpenApi {
    fn docs(&self) -> &Docs {
        self.docs.get_or_init(build)
    }

    pub fn v2(&self, protobuf: bool) -> Response<Body> {
        let docs = self.docs();
        if protobuf {
            bytes_response(StatusCode::OK, docs.v2_proto.clone(), svcnet_api::openapi::V2_PROTOBUF_CONTENT_TYPE)
        } else {
            bytes_response(StatusCode::OK, docs.v2_json.clone(), "application/json")
        }
    }

    pub fn v3_root(&self) -> Response<Body> {
        bytes_response(StatusCode::OK, self.docs().v3_root.clone(), "application/json")
    }

    pub fn v3(&self, path: &str) -> Option<Response<Body>> {
        let doc = self.docs().v3.get(path)?;
        Some(bytes_response(StatusCode::OK, doc.clone(), "application/json"))
    }
}

fn build() -> Docs {
    use svcnet_api::openapi as oa;
    use svcnet_api::resources::GROUPS;
    // The schema registry already carries the patch strategies as
    // x-kubernetes-patch-* extensions, so no extra lookup is needed.
    let definitions = svcnet_api::schema::Schemas::get().definitions();
    let v2 = oa::v2_document(definitions, &oa::no_patch_meta);
    let v2_json = Bytes::from(serde_json::to_vec(&v2).unwrap_or_default());
    let v2_proto = Bytes::from(oa::v2_protobuf(&v2));
    let mut v3 = HashMap::new();
    let mut hashes = Vec::new();
    for (group, version) in GROUPS {
        let Some(doc) = oa::v3_group_version(group, version, definitions, &oa::no_patch_meta) else { continue };
        let bytes = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
        let path = oa::v3_path(group, version);
        hashes.push((path.clone(), oa::content_hash(&bytes)));
        v3.insert(path, bytes);
    }
    let pairs: Vec<(&str, &str)> = hashes.iter().map(|(p, h)| (p.as_str(), h.as_str())).collect();
    let v3_root = Bytes::from(serde_json::to_vec(&oa::v3_root(&pairs)).unwrap_or_default());
    Docs { v2_json, v2_proto, v3_root, v3 }
}
