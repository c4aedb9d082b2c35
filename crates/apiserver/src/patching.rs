//! PATCH: the four patch types kube-apiserver accepts, chosen by
//! Content-Type, applied to the current object (or to its Scale).

use bytes::Bytes;
use serde_json::Value;
use svcnet_api::patch::PatchError;
use svcnet_api::resources::ResourceInfo;

use crate::error::{ApiError, Result};
use crate::handler::parse_document;
use crate::registry::{Registry, WriteOptions, Written};
use crate::request::Query;
use crate::{apply, scale};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    fn from_content_type(ct: &str) -> Result<PatchType> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchType::Apply),
            other => Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
            ))),
        }
    }
}

/// Applies a non-apply patch of `kind` to `target`.
fn apply_patch(kind: PatchType, target: &Value, patch: &Value, definition: &str) -> Result<Value> {
    match kind {
        PatchType::Json => svcnet_api::patch::json_patch(target, patch).map_err(patch_error),
        PatchType::Merge => Ok(svcnet_api::patch::json_merge_patch(target, patch)),
        PatchType::Strategic => {
            svcnet_api::patch::strategic_merge_patch(target, patch, definition).map_err(patch_error)
        }
        PatchType::Apply => Err(ApiError::Internal("apply patches are not applied here".into())),
    }
}

/// The status kube-apiserver gives each kind of patch failure.
fn patch_error(e: PatchError) -> ApiError {
    match e {
        PatchError::Malformed(_) | PatchError::BadDirective(_) => ApiError::BadRequest(e.to_string()),
        PatchError::JsonPatchFailed(_) | PatchError::ListOfLists => ApiError::InvalidPatch(e.to_string()),
        PatchError::MergeFailed(_) | PatchError::UnknownDefinition(_) => ApiError::Internal(e.to_string()),
    }
}

/// Serves PATCH. Returns the written object and whether it was created
/// (server-side apply creates missing objects).
#[allow(clippy::too_many_arguments)]
pub async fn patch(
    registry: &Registry,
    resource: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    sub: Option<&str>,
    content_type: &str,
    body: &Bytes,
    opts: &WriteOptions,
    query: &Query,
) -> Result<(Written, bool)> {
    let kind = PatchType::from_content_type(content_type)?;
    let patch = if kind == PatchType::Json {
        serde_json::from_slice::<Value>(body).map_err(|e| ApiError::BadRequest(format!("invalid JSON Patch: {e}")))?
    } else {
        parse_document(body, content_type)?
    };
    if kind == PatchType::Apply {
        return apply::apply(registry, resource, ns, name, sub, patch, opts, query).await;
    }
    if kind != PatchType::Json && !patch.is_object() {
        return Err(ApiError::BadRequest(format!("Invalid JSON Patch: the patch is not a JSON object: {patch}")));
    }
    if sub == Some("scale") {
        let current = registry.get(resource, ns, name).await?;
        let scale_now = scale::from_object(resource, &current.value())?;
        let next = apply_patch(kind, &scale_now, &patch, "io.k8s.api.autoscaling.v1.Scale")?;
        let n = scale::replicas(resource, name, &next)?;
        let precondition = next.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(str::to_string);
        return scale::write_replicas(registry, resource, ns, name, n, precondition, opts).await.map(|w| (w, false));
    }
    let w = registry
        .patch(resource, ns, name, sub, opts, |current| apply_patch(kind, current, &patch, resource.definition))
        .await?;
    Ok((w, false))
}
