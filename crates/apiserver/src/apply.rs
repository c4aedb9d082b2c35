//! Server-side apply (`application/apply-patch+yaml`).

use serde_json::Value;
use svcnet_api::resources::ResourceInfo;

use crate::error::{ApiError, Result};
use crate::registry::{Registry, WriteOptions, Written};
use crate::request::Query;

#[allow(clippy::too_many_arguments)]
pub async fn apply(
    _registry: &Registry,
    _resource: &'static ResourceInfo,
    _ns: Option<&str>,
    _name: &str,
    _sub: Option<&str>,
    _patch: Value,
    _opts: &WriteOptions,
    _query: &Query,
) -> Result<(Written, bool)> {
    Err(ApiError::UnsupportedMediaType("server-side apply is not implemented yet".into()))
}
