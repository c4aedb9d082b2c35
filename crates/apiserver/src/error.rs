//! API errors and their one mapping onto the wire: a `metav1.Status`.
//!
//! Every failure a handler can produce is an [`ApiError`]; [`ApiError::status`]
//! is the only place that decides the HTTP code, `reason` and message, so
//! clients (kubectl, client-go, the Python client) see exactly what
//! kube-apiserver would have sent.

use serde_json::{Value, json};

/// One field-level cause of a 422 Invalid, as in `metav1.StatusCause`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldCause {
    /// "FieldValueInvalid", "FieldValueRequired", "FieldValueNotSupported",
    /// "FieldValueDuplicate", "FieldValueForbidden", "FieldValueTooLong"...
    pub reason: &'static str,
    /// The error without the field, e.g. `Invalid value: "A": ...`, as
    /// kube-apiserver puts it in a cause (`field.Error.ErrorBody`).
    pub message: String,
    /// The field path, e.g. "spec.ports[0].port".
    pub field: String,
}

/// A value as Go's `%#v`-ish rendering in field errors shows it: strings
/// quoted, lists of strings as `[]string{"a"}`, numbers and booleans bare.
pub fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let inner: Vec<String> = items.iter().filter_map(Value::as_str).map(|s| format!("{s:?}")).collect();
            format!("[]string{{{}}}", inner.join(", "))
        }
        other => other.to_string(),
    }
}

impl FieldCause {
    /// `Invalid value: <value>: detail`, as field.Invalid renders it.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: impl AsRef<str>) -> Self {
        Self {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {}: {}", go_value(value), detail.as_ref()),
            field: field.into(),
        }
    }

    pub fn required(field: impl Into<String>, detail: impl AsRef<str>) -> Self {
        let detail = detail.as_ref();
        let message =
            if detail.is_empty() { "Required value".to_string() } else { format!("Required value: {detail}") };
        Self { reason: "FieldValueRequired", message, field: field.into() }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl AsRef<str>) -> Self {
        Self { reason: "FieldValueForbidden", message: format!("Forbidden: {}", detail.as_ref()), field: field.into() }
    }

    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        Self {
            reason: "FieldValueDuplicate",
            message: format!("Duplicate value: {}", go_value(value)),
            field: field.into(),
        }
    }

    pub fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        Self {
            reason: "FieldValueNotSupported",
            message: format!("Unsupported value: {}: supported values: {}", go_value(value), list.join(", ")),
            field: field.into(),
        }
    }

    /// `field: body`, as the Status message lists each cause.
    pub fn full(&self) -> String {
        if self.field.is_empty() { self.message.clone() } else { format!("{}: {}", self.field, self.message) }
    }
}

/// Everything that can go wrong while serving an API request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Unauthorized")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{kind} {name:?} not found")]
    NotFound { group: String, kind: String, name: String },
    #[error("the server could not find the requested resource")]
    NoRoute,
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { group: String, kind: String, name: String },
    #[error("Operation cannot be fulfilled on {kind} {name:?}: {detail}")]
    Conflict { group: String, kind: String, name: String, detail: String },
    /// Server-side apply found fields owned by other managers.
    #[error("{message}")]
    ApplyConflict {
        group: String,
        kind: String,
        name: String,
        message: String,
        /// (reason, message, field) per conflicting field.
        causes: Vec<(&'static str, String, String)>,
    },
    #[error("{0}")]
    Expired(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{kind} {name:?} is invalid")]
    Invalid { group: String, kind: String, name: String, causes: Vec<FieldCause> },
    /// A patch that parsed but could not be applied (422, as
    /// kube-apiserver answers failed JSON patches).
    #[error("the server rejected our request due to an error in our request")]
    InvalidPatch(String),
    #[error("Request entity too large: limit is {limit}")]
    TooLarge { limit: usize },
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// The HTTP status code kube-apiserver uses for this error.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound { .. } | ApiError::NoRoute => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::NotAcceptable(_) => 406,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => 409,
            ApiError::Expired(_) | ApiError::Gone(_) => 410,
            ApiError::TooLarge { .. } => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Invalid { .. } | ApiError::InvalidPatch(_) => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::Internal(_) => 500,
            ApiError::Unavailable(_) => 503,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::NotFound { .. } | ApiError::NoRoute => "NotFound",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Expired(_) => "Expired",
            ApiError::Gone(_) => "Gone",
            ApiError::TooLarge { .. } => "RequestEntityTooLarge",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Invalid { .. } | ApiError::InvalidPatch(_) => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Internal(_) => "InternalError",
            ApiError::Unavailable(_) => "ServiceUnavailable",
        }
    }

    /// The `metav1.Status` body for this error.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            ApiError::NotFound { group, kind, name }
            | ApiError::AlreadyExists { group, kind, name }
            | ApiError::Conflict { group, kind, name, .. } => {
                let mut d = json!({ "name": name, "kind": kind });
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            ApiError::Invalid { group, kind, name, causes } => {
                let mut d = json!({ "name": name, "kind": kind });
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                d["causes"] = causes
                    .iter()
                    .map(|c| json!({ "reason": c.reason, "message": c.message, "field": c.field }))
                    .collect();
                Some(d)
            }
            ApiError::InvalidPatch(cause) => Some(json!({ "causes": [{ "message": cause }] })),
            ApiError::ApplyConflict { group, kind, name, causes, .. } => {
                let mut d = json!({ "name": name, "kind": kind });
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                d["causes"] = causes
                    .iter()
                    .map(|(reason, message, field)| json!({ "reason": reason, "message": message, "field": field }))
                    .collect();
                Some(d)
            }
            // kube's `NewNotFound(GroupResource{}, "")`: empty details,
            // which clients (kubectl debug) read without a nil check.
            ApiError::NoRoute => Some(json!({})),
            _ => None,
        };
        if let Some(d) = details {
            status["details"] = d;
        }
        status
    }

    /// The human message, worded as kube-apiserver words it.
    pub fn message(&self) -> String {
        match self {
            ApiError::NotFound { group, kind, name } => format!("{} {name:?} not found", qualified(kind, group)),
            ApiError::AlreadyExists { group, kind, name } => {
                format!("{} {name:?} already exists", qualified(kind, group))
            }
            ApiError::Conflict { group, kind, name, detail } => {
                format!("Operation cannot be fulfilled on {} {name:?}: {detail}", qualified(kind, group))
            }
            ApiError::Invalid { group, kind, name, causes } => {
                let list: Vec<String> = causes.iter().map(FieldCause::full).collect();
                let head = format!("{} {name:?} is invalid", qualified_kind(kind, group));
                if list.len() == 1 { format!("{head}: {}", list[0]) } else { format!("{head}: [{}]", list.join(", ")) }
            }
            other => other.to_string(),
        }
    }

    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        ApiError::NotFound { group: group.into(), kind: resource.into(), name: name.into() }
    }

    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<FieldCause>) -> Self {
        ApiError::Invalid { group: group.into(), kind: kind.into(), name: name.into(), causes }
    }

    pub fn conflict_modified(group: &str, resource: &str, name: &str) -> Self {
        ApiError::Conflict {
            group: group.into(),
            kind: resource.into(),
            name: name.into(),
            detail: "the object has been modified; please apply your changes to the latest version and try again"
                .into(),
        }
    }
}

/// "services" or "deployments.apps": how kube-apiserver names a resource in
/// NotFound/AlreadyExists/Conflict messages (the `kind` there is a resource).
fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") }
}

/// "Service" or "Deployment.apps": how Invalid messages name the kind.
fn qualified_kind(kind: &str, group: &str) -> String {
    qualified(kind, group)
}

impl From<svcnet_store::Error> for ApiError {
    fn from(e: svcnet_store::Error) -> Self {
        match e {
            svcnet_store::Error::Compacted { requested, compacted } => {
                ApiError::Expired(format!("too old resource version: {requested} ({compacted})"))
            }
            other => ApiError::Internal(format!("storage error: {other}")),
        }
    }
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_the_group_qualified_resource() {
        let e = ApiError::not_found("apps", "deployments", "web");
        assert_eq!(e.message(), "deployments.apps \"web\" not found");
        let s = e.status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["details"]["group"], "apps");
    }

    #[test]
    fn invalid_lists_every_cause_like_kube_apiserver() {
        let e = ApiError::invalid(
            "",
            "Service",
            "x",
            vec![
                FieldCause::required("spec.ports", ""),
                FieldCause::invalid("metadata.name", &json!("A"), "must be lowercase"),
            ],
        );
        assert_eq!(
            e.message(),
            "Service \"x\" is invalid: [spec.ports: Required value, metadata.name: Invalid value: \"A\": must be lowercase]"
        );
        assert_eq!(e.status()["details"]["causes"][1]["field"], "metadata.name");
        assert_eq!(e.code(), 422);
    }
}
