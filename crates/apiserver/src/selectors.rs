//! `labelSelector`, `fieldSelector`, `limit` and `continue` from the query
//! string, turned into the filter lists and watches apply.

use std::sync::Arc;

use svcnet_api::resources::ResourceInfo;
use svcnet_api::selector::{FieldSelector, LabelSelector};

use crate::error::{ApiError, Result};
use crate::registry::ListOptions;
use crate::request::Query;
use crate::watch::Filter;

fn parse(resource: &ResourceInfo, query: &Query) -> Result<(LabelSelector, FieldSelector)> {
    let labels = match query.get("labelSelector") {
        Some(s) if !s.trim().is_empty() => LabelSelector::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))?,
        _ => LabelSelector::everything(),
    };
    let fields = match query.get("fieldSelector") {
        Some(s) if !s.trim().is_empty() => FieldSelector::parse(s)
            .and_then(|f| f.for_resource(resource.plural))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        _ => FieldSelector::everything(),
    };
    Ok((labels, fields))
}

/// The filter of a watch.
pub fn list_filter(resource: &'static ResourceInfo, query: &Query) -> Result<Filter> {
    let (labels, fields) = parse(resource, query)?;
    Ok(Arc::new(move |o| labels.matches(o) && fields.matches(|f| o.field(f))))
}

/// The options of a list.
pub fn list_options(resource: &'static ResourceInfo, query: &Query) -> Result<ListOptions> {
    let (labels, fields) = parse(resource, query)?;
    let filtered = !labels.is_everything() || !fields.is_everything();
    let limit = query.int("limit")?.unwrap_or(0).max(0) as usize;
    Ok(ListOptions {
        filter: Box::new(move |o| labels.matches(o) && fields.matches(|f| o.field(f))),
        filtered,
        limit,
        continue_token: query.get("continue").filter(|c| !c.is_empty()).map(str::to_string),
    })
}
