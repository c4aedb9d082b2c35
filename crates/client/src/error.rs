//! The client's error type, and [`ApiError`]: a failed API call as the
//! server described it in a `metav1.Status`.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

use crate::config::ConfigError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a request (or watch) can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("client configuration is invalid")]
    Config(#[from] ConfigError),
    #[error("connecting to {addr} failed")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS handshake with {addr} failed")]
    Tls {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP exchange with the API server failed")]
    Http(#[from] hyper::Error),
    #[error("building the HTTP request failed")]
    Request(#[from] http::Error),
    #[error("no answer from the API server within {0:?}")]
    Timeout(Duration),
    /// The server refused the request; its `Status` says why.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// The requested resourceVersion is no longer in the server's history
    /// (410 Gone / Expired, as an HTTP status or as a watch ERROR event):
    /// the caller must list again.
    #[error("resource version is too old: {0}")]
    Gone(Box<ApiError>),
    #[error("decoding {what} from the API server failed")]
    Decode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("encoding the request body failed")]
    Encode(#[source] serde_json::Error),
    /// A per-object call on an `Api::all` of a namespaced kind.
    #[error("{kind} is namespaced: use Api::namespaced for calls on a single object")]
    NamespaceRequired { kind: &'static str },
    #[error("the object has no metadata.name")]
    MissingName,
    #[error("a watch event is longer than {limit} bytes")]
    EventTooLarge { limit: usize },
}

impl Error {
    /// The server's `Status`, when the server refused the request.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) | Error::Gone(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status code the server answered with, if it refused the request.
    pub fn code(&self) -> Option<u16> {
        self.api_error().map(ApiError::code)
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// An optimistic-concurrency conflict (a stale resourceVersion), not a
    /// name collision on create (see [`Error::is_already_exists`]).
    pub fn is_conflict(&self) -> bool {
        self.api_error().is_some_and(|e| e.code() == 409 && e.reason() != "AlreadyExists")
    }

    pub fn is_already_exists(&self) -> bool {
        self.api_error().is_some_and(|e| e.code() == 409 && e.reason() == "AlreadyExists")
    }

    /// The resourceVersion asked for has expired: list again.
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::Gone(_)) || self.code() == Some(410)
    }

    pub fn is_unauthorized(&self) -> bool {
        self.code() == Some(401)
    }

    pub fn is_forbidden(&self) -> bool {
        self.code() == Some(403)
    }

    pub fn is_invalid(&self) -> bool {
        self.code() == Some(422)
    }
}

/// A refusal from the API server, with the `metav1.Status` it sent (or one
/// made up from the HTTP status when the body was not a `Status`).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: Status,
}

impl ApiError {
    /// Decodes an error response. Anything that is not a `Status` (a proxy's
    /// HTML page, plain text) becomes one carrying the HTTP code and the
    /// start of the body as its message.
    pub fn from_response(http_code: u16, body: &[u8]) -> ApiError {
        let decoded = serde_json::from_slice::<Status>(body)
            .ok()
            .filter(|s| s.code.is_some() || s.reason.is_some() || s.message.is_some());
        let status = decoded.unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body[..body.len().min(1024)]).trim().to_string();
            Status {
                status: Some("Failure".into()),
                message: Some(if text.is_empty() { format!("HTTP {http_code}") } else { text }),
                ..Status::default()
            }
        });
        ApiError::from_status(status, http_code)
    }

    /// Wraps a `Status`, filling in code and reason from `http_code` where
    /// the server left them out.
    pub fn from_status(mut status: Status, http_code: u16) -> ApiError {
        if status.code.is_none_or(|c| c == 0) {
            status.code = Some(i32::from(http_code));
        }
        let error = ApiError { status };
        if error.reason().is_empty() {
            let reason = default_reason(error.code());
            return ApiError { status: Status { reason: Some(reason.into()), ..error.status } };
        }
        error
    }

    pub fn code(&self) -> u16 {
        self.status.code.and_then(|c| u16::try_from(c).ok()).unwrap_or(500)
    }

    pub fn reason(&self) -> &str {
        self.status.reason.as_deref().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.status.message.as_deref().unwrap_or("")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code(), self.reason(), self.message())
    }
}

/// The `StatusReason` kube-apiserver uses for a bare HTTP code.
fn default_reason(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Gone",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_body_is_decoded_with_its_reason_and_message() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"configmaps \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"configmaps"},"code":404}"#;
        let e = ApiError::from_response(404, body);
        assert_eq!(e.code(), 404);
        assert_eq!(e.reason(), "NotFound");
        assert_eq!(e.message(), "configmaps \"x\" not found");
        assert!(Error::Api(Box::new(e)).is_not_found());
    }

    #[test]
    fn a_non_status_body_becomes_a_status_with_the_http_code() {
        let e = ApiError::from_response(503, b"<html>upstream down</html>");
        assert_eq!(e.code(), 503);
        assert_eq!(e.reason(), "ServiceUnavailable");
        assert_eq!(e.message(), "<html>upstream down</html>");
    }

    #[test]
    fn already_exists_is_not_a_conflict() {
        let exists = Error::Api(Box::new(ApiError::from_response(
            409,
            br#"{"kind":"Status","reason":"AlreadyExists","code":409}"#,
        )));
        let conflict =
            Error::Api(Box::new(ApiError::from_response(409, br#"{"kind":"Status","reason":"Conflict","code":409}"#)));
        assert!(exists.is_already_exists() && !exists.is_conflict());
        assert!(conflict.is_conflict() && !conflict.is_already_exists());
    }

    #[test]
    fn expired_and_gone_are_both_gone() {
        let expired =
            Error::Api(Box::new(ApiError::from_response(410, br#"{"kind":"Status","reason":"Expired","code":410}"#)));
        assert!(expired.is_gone());
        assert!(Error::Gone(Box::new(ApiError::from_response(410, b""))).is_gone());
    }
}
