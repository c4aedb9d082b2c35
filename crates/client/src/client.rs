//! [`Client`]: a handle on one API server, cheap to clone, that sends
//! authenticated JSON requests over the shared [`Transport`] and turns
//! refusals into [`Error::Api`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use crate::config::{Auth, Config, ConfigError};
use crate::error::{ApiError, Error, Result};
use crate::transport::{Lease, RequestParts, Transport};

/// How long a token read from a file is used before the file is read again.
const TOKEN_FILE_REFRESH: Duration = Duration::from_secs(60);

/// A connection to one API server. Clones share the connection; each clone
/// may carry its own user agent and field manager.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    user_agent: HeaderValue,
    field_manager: Arc<str>,
}

struct Inner {
    transport: Transport,
    auth: Authenticator,
    namespace: String,
    request_timeout: Duration,
}

enum Authenticator {
    None,
    Header(HeaderValue),
    TokenFile { path: PathBuf, cached: Mutex<Option<(Instant, HeaderValue)>> },
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("user_agent", &self.user_agent)
            .field("namespace", &self.inner.namespace)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `config`. No connection is made until the first request.
    pub fn new(config: Config) -> Result<Client> {
        let user_agent = HeaderValue::from_str(&config.user_agent)
            .map_err(|_| ConfigError::InvalidHeader(config.user_agent.clone()))?;
        let auth = match &config.auth {
            Auth::None => Authenticator::None,
            Auth::Token(token) => Authenticator::Header(bearer(token)?),
            Auth::Basic { username, password } => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
                Authenticator::Header(secret_header(&format!("Basic {encoded}"))?)
            }
            Auth::TokenFile(path) => Authenticator::TokenFile { path: path.clone(), cached: Mutex::new(None) },
        };
        Ok(Client {
            field_manager: manager_from_user_agent(&config.user_agent).into(),
            user_agent,
            inner: Arc::new(Inner {
                transport: Transport::new(&config)?,
                auth,
                namespace: config.namespace,
                request_timeout: config.request_timeout,
            }),
        })
    }

    /// A client from the environment, as kubectl finds it ([`Config::infer`]).
    pub fn try_default() -> Result<Client> {
        Client::new(Config::infer()?)
    }

    /// This client, sending `user_agent` (e.g. `svcnet-controller-manager/0.1.0`)
    /// and using its name as field manager, over the same connection.
    pub fn with_user_agent(&self, user_agent: &str) -> Result<Client> {
        let header = HeaderValue::from_str(user_agent).map_err(|_| ConfigError::InvalidHeader(user_agent.into()))?;
        Ok(Client {
            inner: self.inner.clone(),
            user_agent: header,
            field_manager: manager_from_user_agent(user_agent).into(),
        })
    }

    /// This client, recording its writes under `manager` in managedFields.
    pub fn with_field_manager(&self, manager: &str) -> Client {
        Client { field_manager: manager.into(), ..self.clone() }
    }

    /// The namespace of the configuration's context (or the pod's).
    pub fn default_namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The field manager writes are recorded under unless a call names one.
    pub fn field_manager(&self) -> &str {
        &self.field_manager
    }

    /// Sends a request to any path (e.g. `/version`) and decodes the JSON
    /// answer. `body` is a content type and the bytes to send.
    pub async fn request_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<T> {
        let bytes = self.request(method, path_and_query.to_string(), body).await?;
        decode(&bytes, path_and_query)
    }

    /// Sends a request and returns the body of a successful answer.
    pub(crate) async fn request(
        &self,
        method: Method,
        path_and_query: String,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Bytes> {
        Ok(self.request_with_code(method, path_and_query, body).await?.1)
    }

    /// [`Client::request`], with the success code (e.g. 200 or 202).
    pub(crate) async fn request_with_code(
        &self,
        method: Method,
        path_and_query: String,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<(u16, Bytes)> {
        let parts = self.parts(method, path_and_query, body)?;
        let timeout = self.inner.request_timeout;
        let exchange = async {
            let (resp, lease) = self.inner.transport.send(&parts).await?;
            let status = resp.status();
            let bytes = resp.into_body().collect().await?.to_bytes();
            self.inner.transport.release(lease);
            if status.is_success() { Ok((status.as_u16(), bytes)) } else { Err(refusal(status.as_u16(), &bytes)) }
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| Error::Timeout(timeout))?
    }

    /// Sends a GET whose answer streams (a watch) and returns the body once
    /// the server has answered with a success status.
    pub(crate) async fn stream(&self, path_and_query: String) -> Result<(Incoming, Lease)> {
        let parts = self.parts(Method::GET, path_and_query, None)?;
        let timeout = self.inner.request_timeout;
        let exchange = async {
            let (resp, lease) = self.inner.transport.send(&parts).await?;
            let status = resp.status();
            if status.is_success() {
                return Ok((resp.into_body(), lease));
            }
            let bytes = resp.into_body().collect().await?.to_bytes();
            Err(refusal(status.as_u16(), &bytes))
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| Error::Timeout(timeout))?
    }

    pub(crate) fn release(&self, lease: Lease) {
        self.inner.transport.release(lease);
    }

    fn parts(
        &self,
        method: Method,
        path_and_query: String,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<RequestParts> {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, self.user_agent.clone());
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(auth) = self.inner.auth.header() {
            headers.insert(AUTHORIZATION, auth);
        }
        let body = match body {
            Some((content_type, bytes)) => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                bytes
            }
            None => Bytes::new(),
        };
        Ok(RequestParts { method, path_and_query, headers, body })
    }
}

impl Authenticator {
    fn header(&self) -> Option<HeaderValue> {
        match self {
            Authenticator::None => None,
            Authenticator::Header(h) => Some(h.clone()),
            Authenticator::TokenFile { path, cached } => {
                let mut cached = cached.lock().unwrap_or_else(|p| p.into_inner());
                let fresh = cached.as_ref().is_some_and(|(at, _)| at.elapsed() < TOKEN_FILE_REFRESH);
                if !fresh {
                    match std::fs::read_to_string(path).map(|t| bearer(t.trim())) {
                        Ok(Ok(h)) => *cached = Some((Instant::now(), h)),
                        // Keep using the previous token: the kubelet
                        // replaces the file atomically, so a failed read is
                        // transient, and the server says so if it is stale.
                        Ok(Err(e)) => {
                            tracing::warn!(path = %path.display(), error = %e, "token file holds an invalid token")
                        }
                        Err(e) => tracing::warn!(path = %path.display(), error = %e, "reading the token file failed"),
                    }
                }
                cached.as_ref().map(|(_, h)| h.clone())
            }
        }
    }
}

fn bearer(token: &str) -> Result<HeaderValue, ConfigError> {
    secret_header(&format!("Bearer {token}"))
}

fn secret_header(value: &str) -> Result<HeaderValue, ConfigError> {
    let mut h = HeaderValue::from_str(value).map_err(|_| ConfigError::InvalidHeader("<credentials>".into()))?;
    h.set_sensitive(true);
    Ok(h)
}

/// `svcnet-controller-manager/0.1.0 (linux)` manages fields as
/// `svcnet-controller-manager`, as kube-apiserver would name it.
fn manager_from_user_agent(user_agent: &str) -> String {
    let name = user_agent.split('/').next().unwrap_or(user_agent).trim();
    let name = if name.is_empty() { "svcnet" } else { name };
    name.chars().take(128).collect()
}

fn refusal(code: u16, body: &[u8]) -> Error {
    let e = Box::new(ApiError::from_response(code, body));
    if code == 410 { Error::Gone(e) } else { Error::Api(e) }
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Decode { what: what.to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_manager_is_the_user_agent_name() {
        assert_eq!(manager_from_user_agent("svcnet-controller-manager/0.1.0"), "svcnet-controller-manager");
        assert_eq!(manager_from_user_agent("kubectl"), "kubectl");
        assert_eq!(manager_from_user_agent("/x"), "svcnet");
    }

    #[test]
    fn a_token_file_is_read_when_requests_are_made() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "abc\n").expect("write token");
        let auth = Authenticator::TokenFile { path, cached: Mutex::new(None) };
        assert_eq!(auth.header().as_ref().and_then(|h| h.to_str().ok()), Some("Bearer abc"));
    }
}
