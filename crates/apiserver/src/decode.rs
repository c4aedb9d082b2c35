//! Request-body checks against the kind's OpenAPI schema: kube-apiserver's
//! strict decoding, with its messages.

use serde_json::Value;
use svcnet_api::resources::ResourceInfo;
use svcnet_api::schema::{DecodeError, check_object};

use crate::error::{ApiError, Result};
use crate::registry::FieldValidation;

/// Returns warnings for the client, or the error that rejects the body.
/// Type errors always reject; unknown fields reject under Strict, warn
/// under Warn and pass silently under Ignore.
pub fn check(resource: &ResourceInfo, obj: &Value, validation: FieldValidation) -> Result<Vec<String>> {
    match check_object(resource.definition, obj, validation == FieldValidation::Strict) {
        Ok(warnings) if validation == FieldValidation::Warn => Ok(warnings),
        Ok(_) => Ok(Vec::new()),
        Err(DecodeError::UnknownDefinition(d)) => Err(ApiError::Internal(format!("no schema for {d}"))),
        Err(e) => Err(ApiError::BadRequest(e.message())),
    }
}
