//! One request, start to end: look the route up in the current table,
//! answer 404/308/503 ourselves when that is the answer, else pick an
//! endpoint, rewrite the headers (hop-by-hop out, `X-Forwarded-*` in) and
//! forward, trying the next endpoint when a connect fails.
//!
//! Errors map to the wire here and only here: no route → 404, no ready
//! endpoint → 503, every connect failed or the backend broke the exchange
//! → 502, the backend too slow → 504, the client too slow sending its
//! request body → 408.

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;

use crate::annotations::BackendProtocol;
use crate::balance;
use crate::paths::request_host;
use crate::pool::{Body, BoxError, Conn, ConnectError, EndpointPool, InFlight};
use crate::server::Shared;
use crate::table::Route;
use hyper::client::conn::http1;

/// The client connection a request came on, with the header values that
/// describe it computed once per connection rather than per request.
#[derive(Clone, Debug)]
pub(crate) struct ConnInfo {
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
    /// The client's address (`X-Real-IP`, appended to `X-Forwarded-For`).
    pub(crate) ip: HeaderValue,
    /// Our listener's port (`X-Forwarded-Port`).
    pub(crate) port: HeaderValue,
}

impl ConnInfo {
    #[cfg(test)]
    pub(crate) fn new(peer: SocketAddr, local: SocketAddr, tls: bool) -> ConnInfo {
        ConnInfo::on_port(peer, HeaderValue::from(local.port()), tls)
    }

    /// `port`: our listener's port as a header value, made once per
    /// listener (the accepted socket's own address is not asked for: its
    /// port is the listener's).
    pub(crate) fn on_port(peer: SocketAddr, port: HeaderValue, tls: bool) -> ConnInfo {
        let ip = HeaderValue::from_str(&peer.ip().to_canonical().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        ConnInfo { peer, tls, ip, port }
    }
}

/// At most this many endpoints are tried for one request.
pub(crate) const MAX_ATTEMPTS: usize = 3;

/// Headers that describe one hop and are never forwarded (RFC 9110 7.6.1,
/// plus the non-standard ones proxies also drop). `Upgrade` is removed
/// separately (and put back for upgrades).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

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
    // 404 and 308 are answered here; `host` borrows `authority`, which
    // `forward` then takes.
    let (route, early) = {
        let host = authority.as_ref().and_then(|a| a.to_str().ok()).map_or(Cow::Borrowed(""), request_host);
        let route = shared.table.lookup(&host, req.uri().path());
        let early = match &route {
            None => Some(text(
                StatusCode::NOT_FOUND,
                format!(
                    "404 Not Found: no Ingress rule matches host {:?} and path {:?}, and there is no default backend\n",
                    host,
                    req.uri().path()
                ),
            )),
            Some(r) if r.ssl_redirect && !conn.tls => Some(redirect(&host, &req)),
            Some(_) => None,
        };
        (route, early)
    };
    let mut resp = match (early, &route) {
        (Some(resp), _) => resp,
        (None, Some(route)) => forward(&shared, &conn, route, authority, req).await,
        // `early` is always set when there is no route.
        (None, None) => text(StatusCode::NOT_FOUND, "404 Not Found\n".to_string()),
    };
    // The client's protocol, whatever the backend spoke.
    *resp.version_mut() = version;
    shared.metrics.route(route.as_deref()).observe(resp.status().as_u16(), started.elapsed());
    resp
}

/// The authority the client asked for: the request target's authority
/// (HTTP/2 `:authority`, or an absolute-form HTTP/1.1 target, which RFC
/// 9112 3.2.2 says wins over `Host`), else the `Host` header. A header
/// value, so passing it on to the backend copies nothing.
fn authority_of<B>(req: &Request<B>) -> Option<HeaderValue> {
    match req.uri().authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => req.headers().get(header::HOST).cloned(),
    }
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
        && connection_tokens(req.headers()).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

/// The tokens of every `Connection` header (no allocation).
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Whether a `TE` header lists `trailers` (among other codings or not).
fn te_trailers(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.split(';').next().is_some_and(|c| c.trim().eq_ignore_ascii_case("trailers")))
}

/// Removes the hop-by-hop headers, including those `Connection` names, and
/// `Upgrade` (put back by the caller for an upgrade). `TE: trailers`
/// survives (gRPC needs it end to end); other transfer codings in `TE` go.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        // Most requests say only `keep-alive` or `close`; nothing to
        // collect then.
        let named: Vec<HeaderName> = connection_tokens(headers)
            .filter(|t| !t.eq_ignore_ascii_case("keep-alive") && !t.eq_ignore_ascii_case("close"))
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .filter(|n| *n != header::TE)
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    let trailers_te = headers.contains_key(header::TE) && te_trailers(headers);
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
    if trailers_te {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Adds what the backend should know about the client: `X-Forwarded-For`
/// (every earlier value kept, ours appended), `X-Real-IP`,
/// `X-Forwarded-Proto`, `-Port` and `-Host` (ours replace the client's),
/// and an `X-Request-ID` unless the client sent one.
fn add_forwarded(headers: &mut HeaderMap, conn: &ConnInfo, authority: Option<&HeaderValue>) {
    let xff = {
        let mut prior = headers.get_all(&X_FORWARDED_FOR).iter().filter(|v| !v.as_bytes().trim_ascii().is_empty());
        match (prior.next(), prior.next()) {
            (None, _) => conn.ip.clone(),
            (Some(first), second) => {
                let mut joined = Vec::with_capacity(64);
                joined.extend_from_slice(first.as_bytes().trim_ascii());
                for v in second.into_iter().chain(prior) {
                    joined.extend_from_slice(b", ");
                    joined.extend_from_slice(v.as_bytes().trim_ascii());
                }
                joined.extend_from_slice(b", ");
                joined.extend_from_slice(conn.ip.as_bytes());
                HeaderValue::from_maybe_shared(Bytes::from(joined)).unwrap_or_else(|_| conn.ip.clone())
            }
        }
    };
    headers.insert(X_FORWARDED_FOR, xff);
    headers.insert(X_REAL_IP, conn.ip.clone());
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(if conn.tls { "https" } else { "http" }));
    headers.insert(X_FORWARDED_PORT, conn.port.clone());
    match authority {
        Some(a) => headers.insert(X_FORWARDED_HOST, a.clone()),
        None => headers.remove(X_FORWARDED_HOST),
    };
    if !headers.contains_key(X_REQUEST_ID) {
        headers.insert(X_REQUEST_ID, request_id());
    }
}

/// 32 random hex digits (128 bits), without going through `format!`.
pub(crate) fn request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut n: u128 = rand::random();
    let mut out = [0u8; 32];
    for b in out.iter_mut().rev() {
        *b = HEX[(n & 0xf) as usize];
        n >>= 4;
    }
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// HTTP/2 may split `Cookie` into one field per cookie (RFC 9113 8.2.3);
/// an HTTP/1.1 request must carry them as one header, joined by `; `.
fn join_cookies(headers: &mut HeaderMap) {
    let mut all = headers.get_all(header::COOKIE).iter();
    let (Some(first), Some(_)) = (all.next(), all.next()) else { return };
    let mut joined = first.as_bytes().to_vec();
    for v in headers.get_all(header::COOKIE).iter().skip(1) {
        joined.extend_from_slice(b"; ");
        joined.extend_from_slice(v.as_bytes());
    }
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(joined)) {
        headers.insert(header::COOKIE, v);
    }
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

/// The request target for the backend: origin form (path and query) for
/// HTTP/1.1, absolute form for HTTP/2 (hyper sends its authority as
/// `:authority`).
fn target(protocol: BackendProtocol, uri: &Uri, authority: Option<&HeaderValue>) -> Uri {
    let pq = uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut parts = http::uri::Parts::default();
    parts.path_and_query = Some(pq);
    if protocol == BackendProtocol::H2c {
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(
            authority
                .and_then(|a| Authority::try_from(a.as_bytes()).ok())
                .unwrap_or_else(|| Authority::from_static("localhost")),
        );
    }
    Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"))
}

/// Sends the request to an endpoint of the route's upstream.
async fn forward(
    shared: &Arc<Shared>,
    conn: &ConnInfo,
    route: &Arc<Route>,
    authority: Option<HeaderValue>,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let upstream = &route.upstream;
    if upstream.endpoints.is_empty() {
        let why = upstream.unavailable.as_deref().unwrap_or("no ready endpoints");
        return text(StatusCode::SERVICE_UNAVAILABLE, format!("503 Service Unavailable: {why}\n"));
    }
    let settings = &route.settings;
    let upgrade = is_upgrade(&req);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    // An upgrade is an HTTP/1.1 mechanism, whatever the Service speaks.
    let protocol = if upgrade { BackendProtocol::Http1 } else { upstream.protocol };

    // Headers for the backend: the original Host and path, one hop's
    // headers replaced by ours.
    let (mut parts, body) = req.into_parts();
    let upgrade_value = if upgrade { parts.headers.get(header::UPGRADE).cloned() } else { None };
    strip_hop_by_hop(&mut parts.headers);
    add_forwarded(&mut parts.headers, conn, authority.as_ref());
    if protocol == BackendProtocol::Http1 && parts.version == Version::HTTP_2 {
        join_cookies(&mut parts.headers);
    }
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() || protocol == BackendProtocol::H2c {
        parts.uri = target(protocol, &parts.uri, authority.as_ref());
    }
    match protocol {
        BackendProtocol::Http1 => {
            parts.version = Version::HTTP_11;
            if let Some(a) = authority {
                parts.headers.insert(header::HOST, a);
            }
        }
        BackendProtocol::H2c => {
            parts.version = Version::HTTP_2;
            parts.headers.remove(header::HOST);
        }
    }
    if let Some(v) = upgrade_value {
        parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, v);
    }

    // The affinity cookie's endpoint first, while it is ready.
    let mut sticky = None;
    if let Some(aff) = &settings.affinity {
        sticky = cookie(&parts.headers, &aff.cookie_name).and_then(|c| balance::by_cookie(upstream, c));
    }
    // The endpoint the client's cookie already names needs no new cookie.
    let client_cookie = sticky;

    let (req, progress) = watch_body(Request::from_parts(parts, body));
    let replay = replayable(&req).then(|| Replay::of(&req));
    let mut pending = Some(req);
    let mut last_error = String::new();
    let mut timed_out = false;
    // One extra go, on a new connection, for a request that met a pooled
    // connection the backend had closed.
    let mut tries = balance::Tries::new(upstream, sticky);
    let mut fresh = false;
    while let Some(i) = tries.next(upstream, settings.balance, &shared.pools) {
        let endpoint = &upstream.endpoints[i];
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
            shared.pools.checkout(&pool, settings.connect_timeout, std::mem::take(&mut fresh)).await
        };
        let conn_up = match checkout {
            Ok(c) => c,
            Err(e) => {
                // Nothing was sent: any request may go to the next endpoint.
                shared.metrics.service(upstream).connect_errors.fetch_add(1, Relaxed);
                tracing::debug!(error = %e, service = %upstream.service, "upstream connect failed; trying the next endpoint");
                timed_out = matches!(e, ConnectError::Timeout(_));
                last_error = e.to_string();
                pending = Some(req);
                continue;
            }
        };
        let inflight = InFlight::new(pool.clone());
        let reused = conn_up.reused();
        let (send_timeout, read_timeout) = (settings.send_timeout, settings.read_timeout);
        let mut lease = None;
        let sent = match conn_up {
            Conn::H1 { mut sender, .. } => {
                let result =
                    exchange(sender.try_send_request(req), progress.as_deref(), send_timeout, read_timeout).await;
                // Pooled again once the response body has been read to the
                // end (the response body gives it back as it ends); never
                // an upgraded one.
                if matches!(result, Ok(Ok(_))) && client_upgrade.is_none() {
                    lease = Some(sender);
                }
                result
            }
            Conn::H2 { mut sender, .. } => {
                exchange(sender.try_send_request(req), progress.as_deref(), send_timeout, read_timeout).await
            }
        };
        match sent {
            Ok(Ok(mut resp)) => {
                if let Some(aff) = &settings.affinity {
                    if client_cookie != Some(i) {
                        let mut c = format!("{}={}; Path=/; HttpOnly", aff.cookie_name, endpoint.cookie);
                        if let Some(age) = aff.max_age {
                            c.push_str(&format!("; Max-Age={age}"));
                        }
                        if let Ok(v) = HeaderValue::from_str(&c) {
                            resp.headers_mut().append(header::SET_COOKIE, v);
                        }
                    }
                }
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                    if let Some(client) = client_upgrade {
                        return switch_protocols(shared, client, resp);
                    }
                }
                strip_hop_by_hop(resp.headers_mut());
                let (parts, body) = resp.into_parts();
                let body = TimedBody::new(body, read_timeout, Some(inflight), lease.map(|s| (pool, s)));
                return Response::from_parts(parts, boxed(body));
            }
            Ok(Err(mut e)) => {
                last_error = e.error().to_string();
                // Connected, then the exchange broke before the response.
                let service = shared.metrics.service(upstream);
                // Where the connection was one from the pool, a failure
                // before the response is most likely the backend having
                // closed it meanwhile: worth one more go on a new
                // connection to the same endpoint.
                let stale = reused && (e.error().is_canceled() || e.error().is_incomplete_message());
                pending = match e.take_message() {
                    // Never sent: safe to send again, whatever the method.
                    Some(unsent) => Some(unsent),
                    // Sent (maybe in part): again only if idempotent and
                    // bodiless, so nothing the backend acted on is lost.
                    None => match &replay {
                        Some(r) => Some(r.request()),
                        None => {
                            service.resets.fetch_add(1, Relaxed);
                            break;
                        }
                    },
                };
                if stale && tries.again_after_stale(i) {
                    fresh = true;
                } else {
                    // A pooled connection the backend had closed, retried
                    // on a new one, is the pool's business, not a failure.
                    service.resets.fetch_add(1, Relaxed);
                }
                continue;
            }
            Err(Stall::Read) => {
                shared.metrics.service(upstream).timeouts.fetch_add(1, Relaxed);
                return text(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "504 Gateway Timeout: service {}/{} did not answer within {:?}\n",
                        upstream.namespace, upstream.service, read_timeout
                    ),
                );
            }
            Err(Stall::Send { client: true }) => {
                return text(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("408 Request Timeout: no request body data for {send_timeout:?}\n"),
                );
            }
            Err(Stall::Send { client: false }) => {
                shared.metrics.service(upstream).timeouts.fetch_add(1, Relaxed);
                return text(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "504 Gateway Timeout: service {}/{} took no request body data for {:?}\n",
                        upstream.namespace, upstream.service, send_timeout
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

/// Why an exchange with the backend was given up.
#[derive(Debug, PartialEq, Eq)]
enum Stall {
    /// No response headers within the read timeout of the request body
    /// having been sent.
    Read,
    /// The request body made no progress for the send timeout; `client`:
    /// because the client sent nothing (else the backend took nothing).
    Send { client: bool },
}

/// Waits for the response to a request. While the request body is being
/// sent, the send timeout applies to each stretch without progress (the
/// client sending nothing, or the backend taking nothing); once it is all
/// sent — at once for a request without a body — the read timeout runs
/// until the response headers. So a long upload is not cut short by the
/// read timeout, as with nginx's `proxy_send_timeout` and
/// `proxy_read_timeout`.
async fn exchange<F: Future>(
    fut: F,
    progress: Option<&Progress>,
    send_timeout: Duration,
    read_timeout: Duration,
) -> Result<F::Output, Stall> {
    tokio::pin!(fut);
    if let Some(p) = progress {
        loop {
            let seen = p.frames.load(Relaxed);
            tokio::select! {
                biased;
                r = &mut fut => return Ok(r),
                () = p.done.notified() => break,
                () = tokio::time::sleep(send_timeout) => {
                    if p.frames.load(Relaxed) == seen {
                        return Err(Stall::Send { client: p.waiting_on_client.load(Relaxed) });
                    }
                }
            }
        }
    }
    tokio::time::timeout(read_timeout, fut).await.map_err(|_| Stall::Read)
}

/// How far a request body has got, shared between the body (polled by
/// the upstream connection) and the request's future.
#[derive(Debug, Default)]
struct Progress {
    /// Frames passed on so far.
    frames: AtomicU64,
    /// The last poll found the client had sent nothing more yet.
    waiting_on_client: AtomicBool,
    /// The body ended (or was dropped).
    done: Notify,
}

/// The request with its body wrapped to report [`Progress`]; a request
/// without a body is left as it is (and needs no tracking).
fn watch_body(req: Request<Incoming>) -> (Request<Body>, Option<Arc<Progress>>) {
    let (parts, body) = req.into_parts();
    if hyper::body::Body::is_end_stream(&body) {
        return (Request::from_parts(parts, boxed(body)), None);
    }
    let progress = Arc::new(Progress::default());
    let body = WatchedBody { inner: body, progress: progress.clone() };
    (Request::from_parts(parts, boxed(body)), Some(progress))
}

struct WatchedBody<B> {
    inner: B,
    progress: Arc<Progress>,
}

impl<B> hyper::body::Body for WatchedBody<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                this.progress.waiting_on_client.store(true, Relaxed);
                Poll::Pending
            }
            Poll::Ready(Some(Ok(frame))) => {
                this.progress.waiting_on_client.store(false, Relaxed);
                this.progress.frames.fetch_add(1, Relaxed);
                if this.inner.is_end_stream() {
                    this.progress.done.notify_one();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => {
                this.progress.done.notify_one();
                Poll::Ready(other.map(|r| r.map_err(Into::into)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for WatchedBody<B> {
    fn drop(&mut self) {
        // An abandoned body (an early response, an error) is as good as
        // sent: what is left is waiting for the response.
        self.progress.done.notify_one();
    }
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

/// A response body that fails when the backend sends nothing for
/// `timeout` while we wait for it (nginx's `proxy_read_timeout` is between
/// two reads, not a total; time the client takes to read does not count),
/// and that holds the endpoint's in-flight count until it ends. It holds
/// the HTTP/1.1 connection it came on too, and puts it back in its pool
/// when it is dropped having been read to the end (an abandoned body
/// takes its connection with it).
struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    /// Made on the first wait only: many responses never wait.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The timer runs for the current wait.
    armed: bool,
    /// The body has ended.
    done: bool,
    lease: Option<(Arc<EndpointPool>, http1::SendRequest<Body>)>,
    _inflight: Option<InFlight>,
}

impl TimedBody {
    fn new(
        inner: Incoming,
        timeout: Duration,
        inflight: Option<InFlight>,
        lease: Option<(Arc<EndpointPool>, http1::SendRequest<Body>)>,
    ) -> TimedBody {
        TimedBody { inner, timeout, sleep: None, armed: false, done: false, lease, _inflight: inflight }
    }
}

impl Drop for TimedBody {
    fn drop(&mut self) {
        // `is_end_stream`: a body hyper never polls because it knows it is
        // empty (HEAD, 204, 304, `content-length: 0`).
        if let Some((pool, sender)) = self.lease.take() {
            if self.done || hyper::body::Body::is_end_stream(&self.inner) {
                pool.give_back(sender);
            }
        }
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
                this.armed = false;
                match &frame {
                    None => this.done = true,
                    Some(Ok(_)) => this.done = hyper::body::Body::is_end_stream(&this.inner),
                    Some(Err(_)) => this.lease = None,
                }
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                if !this.armed {
                    this.armed = true;
                    let deadline = tokio::time::Instant::now() + this.timeout;
                    match &mut this.sleep {
                        Some(s) => s.as_mut().reset(deadline),
                        None => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                match this.sleep.as_mut().map(|s| s.as_mut().poll(cx)) {
                    Some(Poll::Ready(())) => Poll::Ready(Some(Err(Box::new(IdleTimeout(this.timeout))))),
                    _ => Poll::Pending,
                }
            }
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

    fn conn() -> ConnInfo {
        ConnInfo::new("127.0.0.9:5555".parse().expect("addr"), "127.0.0.1:8443".parse().expect("addr"), true)
    }

    #[test]
    fn forwarded_headers_append_and_request_ids_pass_through() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert("x-request-id", HeaderValue::from_static("abc"));
        h.insert("x-forwarded-port", HeaderValue::from_static("1"));
        add_forwarded(&mut h, &conn(), Some(&HeaderValue::from_static("Foo.example.com:8443")));
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.9");
        assert_eq!(h["x-real-ip"], "127.0.0.9");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-port"], "8443");
        assert_eq!(h.get_all("x-forwarded-port").iter().count(), 1);
        assert_eq!(h["x-forwarded-host"], "Foo.example.com:8443");
        assert_eq!(h["x-request-id"], "abc");
        let mut h = HeaderMap::new();
        add_forwarded(&mut h, &conn(), None);
        assert_eq!(h["x-forwarded-for"], "127.0.0.9");
        let id = h["x-request-id"].to_str().expect("ascii");
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{id}");
        assert_ne!(request_id(), request_id());
    }

    #[test]
    fn every_x_forwarded_for_line_is_kept_in_order() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1, 10.0.0.2"));
        h.append("x-forwarded-for", HeaderValue::from_static(" 10.0.0.3 "));
        h.append("x-forwarded-for", HeaderValue::from_static(""));
        add_forwarded(&mut h, &conn(), None);
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.9");
    }

    #[test]
    fn te_keeps_only_trailers_and_upgrade_and_named_headers_go() {
        let mut h = HeaderMap::new();
        h.append(header::CONNECTION, HeaderValue::from_static("close"));
        h.append(header::CONNECTION, HeaderValue::from_static("x-a,  X-B ,upgrade"));
        h.insert("x-a", HeaderValue::from_static("1"));
        h.insert("x-b", HeaderValue::from_static("1"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::TE, HeaderValue::from_static("gzip;q=0.5, Trailers"));
        h.insert("proxy-authorization", HeaderValue::from_static("secret"));
        strip_hop_by_hop(&mut h);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["te"]);
        assert_eq!(h[header::TE], "trailers");
        let mut h = HeaderMap::new();
        h.insert(header::TE, HeaderValue::from_static("gzip"));
        strip_hop_by_hop(&mut h);
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn http2_cookie_fields_are_joined_for_http1() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1"));
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        h.append(header::COOKIE, HeaderValue::from_static("c=3"));
        join_cookies(&mut h);
        assert_eq!(h.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(h[header::COOKIE], "a=1; b=2; c=3");
        let mut one = HeaderMap::new();
        one.insert(header::COOKIE, HeaderValue::from_static("a=1"));
        join_cookies(&mut one);
        assert_eq!(one[header::COOKIE], "a=1");
    }

    #[test]
    fn the_backend_target_is_origin_form_for_http1_and_absolute_for_h2c() {
        let uri: Uri = "http://Foo.example.com:8080/a/b?x=1".parse().expect("uri");
        let host = HeaderValue::from_static("foo.example.com");
        assert_eq!(target(BackendProtocol::Http1, &uri, Some(&host)), "/a/b?x=1");
        assert_eq!(target(BackendProtocol::H2c, &uri, Some(&host)), "http://foo.example.com/a/b?x=1");
        assert_eq!(target(BackendProtocol::H2c, &"/".parse().expect("uri"), None), "http://localhost/");
    }

    #[tokio::test]
    async fn the_read_timeout_starts_once_the_request_body_is_sent() {
        let send = Duration::from_millis(600);
        let read = Duration::from_millis(300);
        // A body that keeps making progress for longer than the read
        // timeout: no timeout while it is being sent.
        let p = Arc::new(Progress::default());
        let feeder = {
            let p = p.clone();
            async move {
                for _ in 0..5 {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    p.frames.fetch_add(1, Relaxed);
                }
                p.done.notify_one();
            }
        };
        let answer = async {
            tokio::time::sleep(Duration::from_millis(850)).await;
            "response"
        };
        let (got, ()) = tokio::join!(exchange(answer, Some(&p), send, read), feeder);
        assert_eq!(got, Ok("response"));
        // Body sent, then the backend is silent: the read timeout.
        let p = Progress::default();
        p.done.notify_one();
        let got = exchange(std::future::pending::<()>(), Some(&p), send, read).await;
        assert_eq!(got, Err(Stall::Read));
        // A client that stops sending: the send timeout, blamed on it.
        let p = Progress::default();
        p.waiting_on_client.store(true, Relaxed);
        let got = exchange(std::future::pending::<()>(), Some(&p), send, read).await;
        assert_eq!(got, Err(Stall::Send { client: true }));
        // A backend that stops reading.
        let p = Progress::default();
        let got = exchange(std::future::pending::<()>(), Some(&p), send, read).await;
        assert_eq!(got, Err(Stall::Send { client: false }));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; INGRESSCOOKIE=\"abc\"; b=2"));
        assert_eq!(cookie(&h, "INGRESSCOOKIE"), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
