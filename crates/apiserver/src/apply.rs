//! Server-side apply (`PATCH` with `application/apply-patch+yaml`): the
//! field-ownership merge itself is `svcnet_api::managed::apply`; this is
//! its plumbing into the registry — create when missing, retry on races,
//! conflicts as 409 with a cause per field.

use serde_json::{Value, json};
use svcnet_api::managed::{self, ApplyError};
use svcnet_api::resources::ResourceInfo;

use crate::error::{ApiError, Result};
use crate::object::{self, meta_str};
use crate::registry::{Registry, WriteOptions, Written};
use crate::request::Query;

/// Maps an apply failure onto the status kube-apiserver gives it.
fn apply_error(resource: &ResourceInfo, name: &str, e: ApplyError) -> ApiError {
    match &e {
        ApplyError::Conflicts(_) => ApiError::ApplyConflict {
            group: resource.group.into(),
            kind: resource.plural.into(),
            name: name.into(),
            message: e.to_string(),
            causes: e.causes().into_iter().map(|c| (c.reason, c.message, c.field)).collect(),
        },
        ApplyError::InvalidObjectType(_) | ApplyError::ManagedFieldsNotNil | ApplyError::NotAnObject(_) => {
            ApiError::BadRequest(e.to_string())
        }
        ApplyError::InvalidConfiguration { .. }
        | ApplyError::InvalidManagedFields(_)
        | ApplyError::UnknownDefinition(_) => ApiError::Internal(e.to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn apply(
    registry: &Registry,
    resource: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    sub: Option<&str>,
    patch: Value,
    opts: &WriteOptions,
    query: &Query,
) -> Result<(Written, bool)> {
    let Some(manager) = query.get("fieldManager").filter(|m| !m.is_empty()) else {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![crate::FieldCause::required("fieldManager", "is required for apply patch")],
        ));
    };
    if !patch.is_object() {
        let kind = match patch {
            Value::Array(_) => "array",
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            _ => "null",
        };
        return Err(apply_error(resource, name, ApplyError::NotAnObject(kind)));
    }
    let body_name = meta_str(&patch, "name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let force = query.flag("force");
    let opts = WriteOptions { manager: manager.to_string(), track_managed_fields: false, ..opts.clone() };
    let now = object::now_rfc3339();
    match registry.get(resource, ns, name).await {
        Err(ApiError::NotFound { .. }) if sub.is_none() => {
            let mut created = managed::apply(None, &patch, manager, force, resource.definition, &now)
                .map_err(|e| apply_error(resource, name, e))?;
            if let Some(meta) = object::meta_mut(&mut created) {
                meta.insert("name".into(), json!(name));
            }
            match registry.create(resource, ns, created, &opts).await {
                Ok(w) => return Ok((w, true)),
                // Someone created it meanwhile: apply to theirs.
                Err(ApiError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    let w = registry
        .patch(resource, ns, name, sub, &opts, |live| {
            let mut next =
                managed::apply_to_subresource(Some(live), &patch, manager, sub, force, resource.definition, &now)
                    .map_err(|e| apply_error(resource, name, e))?;
            // An applied resourceVersion is a precondition; otherwise the
            // live one stands.
            let wanted = meta_str(&patch, "resourceVersion").to_string();
            let rv = if wanted.is_empty() { meta_str(live, "resourceVersion").to_string() } else { wanted };
            if let Some(meta) = object::meta_mut(&mut next) {
                meta.insert("resourceVersion".into(), json!(rv));
            }
            Ok(next)
        })
        .await?;
    Ok((w, false))
}
