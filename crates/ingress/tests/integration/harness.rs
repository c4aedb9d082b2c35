//! Backends, the proxy and clients, all on 127.0.0.1 with free ports.
//!
//! A backend is a small hyper server (HTTP/1.1 and h2c) that answers with
//! what it saw, one `key=value` per line (`backend`, `version`, `method`,
//! `host`, `uri`, then `header:<name>=<value>`, then `body`), that waits
//! N ms first for paths `/sleep/N`, and that accepts an `Upgrade: echo`
//! by echoing bytes back.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use svcnet_ingress::testkit::{service, slice};
use svcnet_ingress::{DirectConnector, IngressConfig, IngressServer, Listeners, RouteTable, build_table, serve_static};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Retries `$cond` (which may `.await`) every 50 ms until it holds or `$secs`
/// seconds pass, then fails with the message.
#[macro_export]
macro_rules! eventually {
    ($secs:expr, $cond:expr, $($msg:tt)+) => {{
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs($secs);
        loop {
            if $cond {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                panic!($($msg)+);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }};
}

/// Logs go to the test's output when `SVCNET_LOG` asks for them.
pub fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("SVCNET_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}

pub struct Backend {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }
}

/// A backend named `name` on a free loopback port.
pub async fn backend(name: &str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a backend");
    let addr = listener.local_addr().expect("backend address");
    let hits = Arc::new(AtomicUsize::new(0));
    let (n, h) = (name.to_string(), hits.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (n, h) = (n.clone(), h.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (n, h) = (n.clone(), h.clone());
                    async move { Ok::<_, Infallible>(answer(&n, &h, req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Backend { addr, hits, task }
}

async fn answer(name: &str, hits: &AtomicUsize, mut req: Request<Incoming>) -> Response<Full<Bytes>> {
    hits.fetch_add(1, Ordering::Relaxed);
    if req.headers().get("upgrade").is_some_and(|u| u == "echo") {
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = upgrade.await {
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 4096];
                loop {
                    match io.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if io.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        });
        let mut resp = Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        resp.headers_mut().insert("connection", "upgrade".parse().expect("value"));
        resp.headers_mut().insert("upgrade", "echo".parse().expect("value"));
        return resp;
    }
    if let Some(ms) = req.uri().path().strip_prefix("/sleep/").and_then(|ms| ms.parse::<u64>().ok()) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let mut out = format!("backend={name}\nversion={:?}\nmethod={}\n", req.version(), req.method());
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    out.push_str(&format!("host={host}\nuri={}\n", req.uri().path_and_query().map_or("/", |p| p.as_str())));
    for (k, v) in req.headers() {
        out.push_str(&format!("header:{k}={}\n", v.to_str().unwrap_or("?")));
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    out.push_str(&format!("body={}\n", String::from_utf8_lossy(&body)));
    Response::new(Full::new(Bytes::from(out)))
}

/// What a client got back.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    /// A `key=value` line of a backend's answer.
    pub fn line(&self, key: &str) -> Option<&str> {
        self.body.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }

    pub fn header_seen(&self, name: &str) -> Option<&str> {
        self.line(&format!("header:{name}"))
    }

    pub fn backend(&self) -> &str {
        self.line("backend").unwrap_or("-")
    }
}

pub async fn read_reply(resp: Response<Incoming>) -> Reply {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    Reply { status: parts.status, headers: parts.headers, body: String::from_utf8_lossy(&body).into_owned() }
}

/// An HTTP/1.1 client connection (kept alive across requests).
pub async fn h1(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect to the proxy");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn.with_upgrades());
    sender
}

pub fn request(host: &str, path: &str, headers: &[(&str, &str)]) -> Request<Empty<Bytes>> {
    let mut b = Request::get(path).header("host", host);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Empty::new()).expect("request")
}

/// One POST with `body` on a new connection.
pub async fn post(addr: SocketAddr, host: &str, path: &str, body: &str) -> Reply {
    let stream = TcpStream::connect(addr).await.expect("connect to the proxy");
    let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let req = Request::post(path).header("host", host).body(Full::new(Bytes::from(body.to_string()))).expect("request");
    read_reply(s.send_request(req).await.expect("a response")).await
}

/// One GET on a new connection.
pub async fn get(addr: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut s = h1(addr).await;
    let resp = s.send_request(request(host, path, headers)).await.expect("a response");
    read_reply(resp).await
}

/// One slice per backend (they share 127.0.0.1, so each has its own
/// port): Service port "http".
pub fn slices_for(ns: &str, service: &str, backends: &[&Backend]) -> Vec<EndpointSlice> {
    backends
        .iter()
        .enumerate()
        .map(|(i, b)| slice(ns, service, &format!("{service}-{i}"), &[("127.0.0.1", true)], &[("http", b.addr.port())]))
        .collect()
}

/// A Service `name` with port 80 named "http" (target port per slice).
pub fn http_service(ns: &str, name: &str) -> Service {
    service(ns, name, &[("http", 80, 8080)])
}

/// The objects a table is built from.
#[derive(Clone, Default)]
pub struct World {
    pub ingresses: Vec<Ingress>,
    pub services: Vec<Service>,
    pub slices: Vec<EndpointSlice>,
    pub secrets: Vec<Secret>,
}

impl World {
    /// Adds Service `name` served by `backends`.
    pub fn service(&mut self, ns: &str, name: &str, backends: &[&Backend]) -> &mut Self {
        self.services.push(http_service(ns, name));
        self.slices.extend(slices_for(ns, name, backends));
        self
    }

    pub fn table(&self) -> RouteTable {
        let (table, _problems) =
            build_table(&self.ingresses, &[], &self.services, &self.slices, &self.secrets, &IngressConfig::default());
        table
    }
}

pub struct Proxy {
    pub server: IngressServer,
    pub http: SocketAddr,
    pub https: SocketAddr,
}

/// The proxy serving `table` on free loopback ports (HTTP, HTTPS, metrics).
pub async fn proxy(table: RouteTable) -> Proxy {
    init_logging();
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let https = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (h, s) = (http.local_addr().expect("addr"), https.local_addr().expect("addr"));
    let server = serve_static(
        table,
        Listeners { http: vec![http], https: vec![https] },
        Arc::new(DirectConnector),
        Some("127.0.0.1:0".parse().expect("addr")),
    )
    .await
    .expect("the proxy starts");
    Proxy { server, http: h, https: s }
}

/// A free port nobody listens on (bound, then closed).
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    addr
}

/// The metrics text.
pub async fn scrape(proxy: &Proxy, path: &str) -> Reply {
    get(proxy.server.metrics_addr().expect("metrics listener"), "metrics", path, &[]).await
}

/// Reads one request head from a raw test backend's connection and gives
/// its Content-Length (0 without one); `None` when the connection ends
/// first.
pub async fn read_head(stream: &mut tokio::io::BufReader<TcpStream>) -> Option<usize> {
    use tokio::io::AsyncBufReadExt as _;
    let mut length = 0;
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            return Some(length);
        }
    }
}
