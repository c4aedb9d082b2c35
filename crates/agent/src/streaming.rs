//! The agent's HTTP server, shaped like the kubelet's: the API server
//! proxies `kubectl logs` and `kubectl exec` here.
//!
//! - `GET /containerLogs/{namespace}/{pod}/{container}`: the container's
//!   log as plain text ([`logs`]).
//! - `GET|POST /exec/{namespace}/{pod}/{container}?command=..`: a WebSocket
//!   speaking `v5.channel.k8s.io` / `v4.channel.k8s.io` ([`exec`]), with the
//!   process started in the container's namespaces ([`process`]).
//! - `GET|POST /attach/{namespace}/{pod}/{container}`: the container's
//!   output from now on, over the same WebSocket protocols ([`attach`]).
//! - `GET|POST /portForward/{namespace}/{pod}`: SPDY/3.1 streams, upgraded
//!   to directly or tunnelled in a WebSocket ([`portforward`], [`spdy`]),
//!   each pair one connection to `localhost:<port>` in the pod.
//!
//! Start at [`serve`]. Every failure before a stream starts is a
//! `metav1.Status` with the [`AccessError`]'s code.

mod attach;
mod exec;
mod logs;
mod portforward;
mod process;
mod query;
mod spdy;
mod sys;

pub use process::PtyMaster;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::access::{AccessError, PodAccess};

use logs::LogOptions;
use query::{ExecOptions, Query};

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// Serves the streaming API on `listener` until the task is dropped. With
/// a `token`, every request must carry `Authorization: Bearer <token>`.
pub async fn serve(listener: TcpListener, access: Arc<dyn PodAccess>, token: Option<String>) {
    let server = Arc::new(Server { access, token });
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _peer)) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "agent streaming server: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let server = server.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(server.handle(req).await) }
            });
            let conn =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "agent streaming connection ended with an error");
            }
        });
    }
}

struct Server {
    access: Arc<dyn PodAccess>,
    token: Option<String>,
}

/// What a request path names.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Logs { namespace: String, pod: String, container: String },
    Exec { namespace: String, pod: String, container: String },
    Attach { namespace: String, pod: String, container: String },
    PortForward { namespace: String, pod: String },
}

fn route(path: &str) -> Option<Route> {
    let parts: Vec<String> = path.trim_end_matches('/').split('/').skip(1).map(query::decode).collect();
    if let [kind, namespace, pod] = parts.as_slice() {
        return (kind == "portForward" && !namespace.is_empty() && !pod.is_empty())
            .then(|| Route::PortForward { namespace: namespace.clone(), pod: pod.clone() });
    }
    let [kind, namespace, pod, container] = parts.as_slice() else {
        return None;
    };
    if namespace.is_empty() || pod.is_empty() || container.is_empty() {
        return None;
    }
    let (namespace, pod, container) = (namespace.clone(), pod.clone(), container.clone());
    match kind.as_str() {
        "containerLogs" => Some(Route::Logs { namespace, pod, container }),
        "exec" => Some(Route::Exec { namespace, pod, container }),
        "attach" => Some(Route::Attach { namespace, pod, container }),
        _ => None,
    }
}

impl Server {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        if !self.authorized(&req) {
            return status_response(401, "Unauthorized", "Unauthorized");
        }
        let query = Query::parse(req.uri().query());
        match (route(req.uri().path()), req.method()) {
            (Some(Route::Logs { namespace, pod, container }), &Method::GET) => {
                self.logs(&namespace, &pod, &container, &query).await.unwrap_or_else(|e| error_response(&e))
            }
            (Some(Route::Exec { namespace, pod, container }), &Method::GET | &Method::POST) => {
                self.exec(req, &namespace, &pod, &container, &query).unwrap_or_else(|e| error_response(&e))
            }
            (Some(Route::Attach { namespace, pod, container }), &Method::GET | &Method::POST) => {
                self.attach(req, &namespace, &pod, &container).unwrap_or_else(|e| error_response(&e))
            }
            (Some(Route::PortForward { namespace, pod }), &Method::GET | &Method::POST) => {
                self.port_forward(req, &namespace, &pod).unwrap_or_else(|e| error_response(&e))
            }
            (Some(_), _) => status_response(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            ),
            (None, _) => status_response(404, "NotFound", "the server could not find the requested resource"),
        }
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let Some(token) = &self.token else { return true };
        let Some(sent) = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        match sent.strip_prefix("Bearer ") {
            Some(sent) => constant_time_eq(sent.trim().as_bytes(), token.as_bytes()),
            None => false,
        }
    }

    async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        query: &Query,
    ) -> Result<Response<Body>, AccessError> {
        let options = LogOptions::parse(query, jiff::Timestamp::now())?;
        let log = self.access.log(namespace, pod, Some(container), options.previous)?;
        let file = logs::open(&log, &options).await?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(logs::stream(file, log.finished, options, tx));
        let mut resp = Response::new(ChannelBody::boxed(rx));
        resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Ok(resp)
    }

    fn exec(
        &self,
        mut req: Request<Incoming>,
        namespace: &str,
        pod: &str,
        container: &str,
        query: &Query,
    ) -> Result<Response<Body>, AccessError> {
        let options = ExecOptions::parse(query)?;
        // The container first: a client that falls back to SPDY after a
        // failed WebSocket attempt (kubectl does) then sees why it failed.
        let target = self.access.container(namespace, pod, Some(container))?;
        let handshake = exec::Handshake::from_request(&req)?;
        let on_upgrade = hyper::upgrade::on(&mut req);
        let resp = handshake.response();
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => exec::run(TokioIo::new(upgraded), handshake.protocol, target, options).await,
                Err(e) => tracing::debug!(error = %e, "exec: the WebSocket upgrade failed"),
            }
        });
        Ok(resp)
    }
}

impl Server {
    fn attach(
        &self,
        mut req: Request<Incoming>,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<Response<Body>, AccessError> {
        // Only a running container can be attached to (the kubelet's rule);
        // kubectl then falls back to the log.
        let running = self.access.container(namespace, pod, Some(container))?;
        let log = self.access.log(namespace, pod, Some(container), false)?;
        let handshake = exec::Handshake::from_request(&req)?;
        let on_upgrade = hyper::upgrade::on(&mut req);
        let resp = handshake.response();
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => attach::run(TokioIo::new(upgraded), log, running.stdin).await,
                Err(e) => tracing::debug!(error = %e, "attach: the WebSocket upgrade failed"),
            }
        });
        Ok(resp)
    }

    fn port_forward(
        &self,
        mut req: Request<Incoming>,
        namespace: &str,
        pod: &str,
    ) -> Result<Response<Body>, AccessError> {
        // Any running container of the pod: they share its network namespace.
        let container = self.access.container(namespace, pod, None)?;
        let handshake = portforward::Handshake::from_request(&req)?;
        let target = portforward::Target {
            pod: format!("{namespace}/{pod}"),
            netns: std::path::PathBuf::from(format!("/proc/{}/ns/net", container.pid)),
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let resp = handshake.response();
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => portforward::run(TokioIo::new(upgraded), handshake, target).await,
                Err(e) => tracing::debug!(error = %e, "port-forward: the upgrade failed"),
            }
        });
        Ok(resp)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A `metav1.Status` failure body, as the kubelet answers.
fn status_response(code: u16, reason: &str, message: &str) -> Response<Body> {
    let status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    let mut resp = Response::new(full(serde_json::to_vec(&status).unwrap_or_default()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error_response(e: &AccessError) -> Response<Body> {
    let reason = match e.code {
        400 => "BadRequest",
        401 => "Unauthorized",
        404 => "NotFound",
        _ => "InternalError",
    };
    status_response(e.code, reason, &e.message)
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// A response body fed from a channel; it ends when the sender is dropped.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    fn boxed(rx: mpsc::Receiver<Bytes>) -> Body {
        ChannelBody { rx }.boxed_unsync()
    }
}

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_namespace_pod_and_container() {
        assert_eq!(
            route("/containerLogs/default/web-1/main"),
            Some(Route::Logs { namespace: "default".into(), pod: "web-1".into(), container: "main".into() })
        );
        assert_eq!(
            route("/exec/kube-system/dns/c%2Dd"),
            Some(Route::Exec { namespace: "kube-system".into(), pod: "dns".into(), container: "c-d".into() })
        );
        assert_eq!(
            route("/portForward/default/web"),
            Some(Route::PortForward { namespace: "default".into(), pod: "web".into() })
        );
        assert_eq!(route("/portForward/default/"), None);
        assert_eq!(route("/exec/default/web"), None);
        assert_eq!(route("/exec/default//main"), None);
        assert_eq!(
            route("/attach/default/web/main"),
            Some(Route::Attach { namespace: "default".into(), pod: "web".into(), container: "main".into() })
        );
    }

    #[test]
    fn bearer_tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secre"));
    }
}
