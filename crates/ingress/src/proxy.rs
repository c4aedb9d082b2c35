//! One request, start to end: look the route up in the current table,
//! answer 404/308/503 ourselves when that is the answer, else pick an
//! endpoint, rewrite the headers (hop-by-hop out, `X-Forwarded-*` in) and
//! forward, trying the next endpoint when a connect fails.
//!
//! Errors map to the wire here and only here: no route → 404, no ready
//! endpoint → 503, every connect failed or the backend broke the exchange
//! → 502, the backend too slow → 504.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;

use crate::annotations::BackendProtocol;
use crate::balance;
use crate::paths::request_host;
use crate::pool::{Body, BoxError, Conn, ConnectError, InFlight};
use crate::server::Shared;
use crate::table::Route;

/// The client connection a request came on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnInfo {
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) tls: bool,
}

/// At most this many endpoints are tried for one request.
const MAX_ATTEMPTS: usize = 3;

/// Headers that describe one hop and are never forwarded (RFC 9110 7.6.1,
/// plus the non-standard ones proxies also drop).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

pub(crate) fn boxed<B>(body: B) -> Body
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(boxed(Full::new(Bytes::from(body))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// Answers one request (never fails: every error is a response).
pub(crate) async fn handle(shared: Arc<Shared>, conn: ConnInfo, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let version = req.version();
    let authority = authority_of(&req);
    let host = authority.as_deref().map(request_host).unwrap_or_default();
    let table = shared.table.load();
    let route = table.lookup(&host, req.uri().path()).cloned();
    drop(table);
    let mut resp = match &route {
        None => text(
            StatusCode::NOT_FOUND,
            format!(
                "404 Not Found: no Ingress rule matches host {:?} and path {:?}, and there is no default backend\n",
                host,
                req.uri().path()
            ),
        ),
        Some(route) if route.ssl_redirect && !conn.tls => redirect(&host, &req),
        Some(route) => forward(&shared, conn, route, authority, req).await,
    };
    // The client's protocol, whatever the backend spoke.
    *resp.version_mut() = version;
    shared.metrics.route(route.as_deref()).observe(resp.status().as_u16(), started.elapsed());
    resp
}

/// The authority the client asked for: `:authority` (HTTP/2) or `Host`.
fn authority_of<B>(req: &Request<B>) -> Option<String> {
    req.uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string))
}

/// 308 to the same URL over HTTPS (permanent, method and body kept).
fn redirect<B>(host: &str, req: &Request<B>) -> Response<Body> {
    let pq = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = format!("https://{host}{pq}");
    let mut resp = text(StatusCode::PERMANENT_REDIRECT, format!("308 Permanent Redirect: {location}\n"));
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Whether a request may be sent again after it failed on a connection
/// that was already open: idempotent methods with no body (so nothing the
/// backend could have acted on is lost).
fn replayable<B: hyper::body::Body>(req: &Request<B>) -> bool {
    matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE)
        && req.body().is_end_stream()
}

fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && connection_tokens(req.headers()).iter().any(|t| t.eq_ignore_ascii_case("upgrade"))
}

fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Removes the hop-by-hop headers, including those `Connection` names.
/// `TE: trailers` survives: gRPC needs it end to end.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in connection_tokens(headers) {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            if name != header::TE {
                headers.remove(name);
            }
        }
    }
    let trailers_te = headers.get_all(header::TE).iter().any(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
    if trailers_te {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Adds what the backend should know about the client.
fn add_forwarded(headers: &mut HeaderMap, conn: ConnInfo, authority: Option<&str>) {
    let ip = conn.peer.ip().to_canonical().to_string();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.trim().is_empty() => format!("{prior}, {ip}"),
        _ => ip.clone(),
    };
    let has_id = headers.contains_key("x-request-id");
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set("x-forwarded-for", &xff);
    set("x-real-ip", &ip);
    set("x-forwarded-proto", if conn.tls { "https" } else { "http" });
    set("x-forwarded-port", &conn.local.port().to_string());
    if let Some(a) = authority {
        set("x-forwarded-host", a);
    }
    if !has_id {
        set("x-request-id", &request_id());
    }
}

fn request_id() -> String {
    let n: u128 = rand::random();
    format!("{n:032x}")
}

/// The value of cookie `name` in the request, if any.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// Sends the request to an endpoint of the route's upstream.
async fn forward(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    route: &Arc<Route>,
    authority: Option<String>,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let upstream = &route.upstream;
    if upstream.endpoints.is_empty() {
        let why = upstream.unavailable.as_deref().unwrap_or("no ready endpoints");
        return text(StatusCode::SERVICE_UNAVAILABLE, format!("503 Service Unavailable: {why}\n"));
    }
    let settings = &route.settings;
    let upgrade = is_upgrade(&req);
    let upgrade_value = req.headers().get(header::UPGRADE).cloned();
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    // Headers for the backend: the original Host and path, one hop's
    // headers replaced by ours.
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    add_forwarded(&mut parts.headers, conn, authority.as_deref());
    let pq = parts.uri.path_and_query().map_or("/", |pq| pq.as_str()).to_string();
    match upstream.protocol {
        BackendProtocol::Http1 => {
            parts.version = Version::HTTP_11;
            parts.uri = pq.parse().unwrap_or_else(|_| Uri::from_static("/"));
            if let Some(a) = authority.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
                parts.headers.insert(header::HOST, a);
            }
        }
        BackendProtocol::H2c => {
            parts.version = Version::HTTP_2;
            let host = authority.as_deref().unwrap_or("localhost");
            parts.uri = format!("http://{host}{pq}").parse().unwrap_or_else(|_| Uri::from_static("/"));
            parts.headers.remove(header::HOST);
        }
    }
    if let (true, Some(v)) = (upgrade, upgrade_value) {
        parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, v);
    }

    // The affinity cookie's endpoint first, while it is ready.
    let mut sticky = None;
    let mut set_cookie = None;
    if let Some(aff) = &settings.affinity {
        sticky = cookie(&parts.headers, &aff.cookie_name).and_then(|c| balance::by_cookie(upstream, c));
    }

    let req = Request::from_parts(parts, boxed(body));
    let replay = replayable(&req).then(|| Replay::of(&req));
    let mut pending = Some(req);
    let mut tried: Vec<usize> = Vec::new();
    let mut last_error = String::new();
    let mut timed_out = false;
    let mut attempts = MAX_ATTEMPTS.min(upstream.endpoints.len());
    // One extra go for a request that met a stale pooled connection.
    let mut stale_retry = true;
    while attempts > 0 {
        attempts -= 1;
        let choice = match sticky.take() {
            Some(i) => Some(i),
            None => balance::pick(upstream, settings.balance, &shared.pools, &tried),
        };
        let Some(i) = choice else { break };
        tried.push(i);
        let endpoint = &upstream.endpoints[i];
        if let Some(aff) = &settings.affinity {
            let current = pending.as_ref().and_then(|r| cookie(r.headers(), &aff.cookie_name)).map(str::to_string);
            set_cookie = (current.as_deref() != Some(endpoint.cookie.as_str())).then(|| {
                let mut c = format!("{}={}; Path=/; HttpOnly", aff.cookie_name, endpoint.cookie);
                if let Some(age) = aff.max_age {
                    c.push_str(&format!("; Max-Age={age}"));
                }
                c
            });
        }
        let pool = shared.pools.endpoint(endpoint.addr, upstream.protocol);
        let Some(req) = pending.take() else { break };
        // Upgrades get a connection of their own, which they take over.
        let checkout = if client_upgrade.is_some() {
            shared
                .pools
                .connect_h1(endpoint.addr, settings.connect_timeout)
                .await
                .map(|sender| Conn::H1 { sender, reused: false })
        } else {
            shared.pools.checkout(&pool, settings.connect_timeout).await
        };
        let conn_up = match checkout {
            Ok(c) => c,
            Err(e) => {
                // Nothing was sent: any request may go to the next endpoint.
                shared.metrics.service(upstream).connect_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(error = %e, service = %upstream.service, "upstream connect failed; trying the next endpoint");
                timed_out = matches!(e, ConnectError::Timeout(_));
                last_error = e.to_string();
                pending = Some(req);
                continue;
            }
        };
        let inflight = InFlight::new(pool.clone());
        let req = with_send_timeout(req, settings.send_timeout);
        let reused = matches!(conn_up, Conn::H1 { reused: true, .. });
        let sent = match conn_up {
            Conn::H1 { mut sender, .. } => {
                let fut = sender.send_request(req);
                let result = tokio::time::timeout(settings.read_timeout, fut).await;
                if matches!(result, Ok(Ok(_))) && client_upgrade.is_none() {
                    pool.give_back(sender);
                }
                result
            }
            Conn::H2(mut sender) => tokio::time::timeout(settings.read_timeout, sender.send_request(req)).await,
        };
        match sent {
            Ok(Ok(mut resp)) => {
                if let Some(c) = set_cookie.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
                    resp.headers_mut().append(header::SET_COOKIE, c);
                }
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                    if let Some(client) = client_upgrade {
                        return switch_protocols(shared, client, resp);
                    }
                }
                strip_hop_by_hop(resp.headers_mut());
                let (parts, body) = resp.into_parts();
                let body = TimedBody::new(boxed(body), settings.read_timeout, Some(inflight));
                return Response::from_parts(parts, boxed(body));
            }
            Ok(Err(e)) => {
                last_error = format!("{e}");
                // Idempotent and bodiless: safe to send again. A pooled
                // connection the backend closed meanwhile never got the
                // request, so the same endpoint may have it on a fresh
                // connection; otherwise the next endpoint tries.
                let Some(again) = replay.as_ref().map(Replay::request) else { break };
                pending = Some(again);
                if reused && stale_retry && (e.is_canceled() || e.is_incomplete_message()) {
                    stale_retry = false;
                    attempts += 1;
                    tried.pop();
                    sticky = Some(i);
                }
                continue;
            }
            Err(_) => {
                return text(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "504 Gateway Timeout: service {}/{} did not answer within {:?}\n",
                        upstream.namespace, upstream.service, settings.read_timeout
                    ),
                );
            }
        }
    }
    let (status, what) = if timed_out {
        (StatusCode::GATEWAY_TIMEOUT, "504 Gateway Timeout")
    } else {
        (StatusCode::BAD_GATEWAY, "502 Bad Gateway")
    };
    text(status, format!("{what}: service {}/{}: {last_error}\n", upstream.namespace, upstream.service))
}

/// What it takes to send a bodiless request again.
struct Replay {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Replay {
    fn of<B>(req: &Request<B>) -> Replay {
        Replay {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
        }
    }

    fn request(&self) -> Request<Body> {
        let mut again = Request::new(boxed(Empty::<Bytes>::new()));
        *again.method_mut() = self.method.clone();
        *again.uri_mut() = self.uri.clone();
        *again.version_mut() = self.version;
        *again.headers_mut() = self.headers.clone();
        again
    }
}

/// The request with its body wrapped so that a body that stalls for
/// `timeout` between two chunks fails the exchange.
fn with_send_timeout<B>(req: Request<B>, timeout: Duration) -> Request<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    if body.is_end_stream() {
        return Request::from_parts(parts, boxed(body));
    }
    Request::from_parts(parts, boxed(TimedBody::new(boxed(body), timeout, None)))
}

/// A 101 from the backend: hand both upgraded connections to a copy task
/// and pass the 101 (with its `Upgrade` headers) to the client.
fn switch_protocols(
    shared: &Arc<Shared>,
    client: hyper::upgrade::OnUpgrade,
    mut resp: Response<Incoming>,
) -> Response<Body> {
    let backend = hyper::upgrade::on(&mut resp);
    let guard = shared.track();
    let mut force = shared.force.subscribe();
    tokio::spawn(async move {
        let _guard = guard;
        let (client, backend) = match tokio::try_join!(client, backend) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let (mut client, mut backend) = (TokioIo::new(client), TokioIo::new(backend));
        tokio::select! {
            r = tokio::io::copy_bidirectional(&mut client, &mut backend) => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "upgraded connection ended");
                }
            }
            _ = force.wait_for(|f| *f) => {}
        }
    });
    let (parts, _) = resp.into_parts();
    Response::from_parts(parts, boxed(Empty::<Bytes>::new()))
}

/// A body that fails when no frame arrives for `timeout` (nginx's
/// read/send timeouts are between two reads or writes, not totals), and
/// that holds the endpoint's in-flight count until it ends.
struct TimedBody {
    inner: Body,
    timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    _inflight: Option<InFlight>,
}

impl TimedBody {
    fn new(inner: Body, timeout: Duration, inflight: Option<InFlight>) -> TimedBody {
        TimedBody { inner, timeout, sleep: Box::pin(tokio::time::sleep(timeout)), _inflight: inflight }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no data for {0:?}")]
struct IdleTimeout(Duration);

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + this.timeout;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(frame)
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(IdleTimeout(this.timeout))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_te_trailers_stays() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, X-Secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["te", "x-kept"]);
    }

    #[test]
    fn forwarded_headers_append_and_request_ids_pass_through() {
        let conn = ConnInfo {
            peer: "127.0.0.9:5555".parse().expect("addr"),
            local: "127.0.0.1:8443".parse().expect("addr"),
            tls: true,
        };
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert("x-request-id", HeaderValue::from_static("abc"));
        add_forwarded(&mut h, conn, Some("Foo.example.com:8443"));
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.9");
        assert_eq!(h["x-real-ip"], "127.0.0.9");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-port"], "8443");
        assert_eq!(h["x-forwarded-host"], "Foo.example.com:8443");
        assert_eq!(h["x-request-id"], "abc");
        let mut h = HeaderMap::new();
        add_forwarded(&mut h, conn, None);
        assert_eq!(h["x-request-id"].len(), 32);
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; INGRESSCOOKIE=\"abc\"; b=2"));
        assert_eq!(cookie(&h, "INGRESSCOOKIE"), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
