//! The request path in detail: bodies streamed both ways (not buffered),
//! large bodies, gRPC trailers through an h2c backend, HTTP/2 clients to
//! HTTP/1.1 backends, `Expect: 100-continue`, HEAD on a kept-alive
//! connection, pooled connections (reused only after their body is read,
//! a stale one retried once), and the send/read timeouts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use svcnet_ingress::testkit::{IngressBuilder, h2c, slice};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::harness::{Proxy, World, backend, h1, http_service, proxy, read_head, read_reply, request, scrape};

/// A body fed through a channel (`http_body_util`'s needs a feature we do
/// not build): dropping the sender ends it.
struct Channel<D>(tokio::sync::mpsc::Receiver<Frame<D>>);

struct Sender(tokio::sync::mpsc::Sender<Frame<Bytes>>);

impl Channel<Bytes> {
    fn new(buffer: usize) -> (Sender, Channel<Bytes>) {
        let (tx, rx) = tokio::sync::mpsc::channel(buffer);
        (Sender(tx), Channel(rx))
    }
}

impl Sender {
    async fn send_data(&mut self, data: Bytes) -> Result<(), ()> {
        self.0.send(Frame::data(data)).await.map_err(|_| ())
    }

    async fn send_trailers(&mut self, trailers: HeaderMap) -> Result<(), ()> {
        self.0.send(Frame::trailers(trailers)).await.map_err(|_| ())
    }
}

impl hyper::body::Body for Channel<Bytes> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|f| f.map(Ok))
    }
}

/// A backend for the streaming cases, on a free loopback port.
///
/// - `GET /stream`: sends `first`, then `second` once `release` is
///   notified.
/// - `GET /endless`: a chunk every 20 ms until the reader goes away.
/// - `POST /upload`: notifies `got_first` on the first body chunk, answers
///   `bytes=N` once the body ends.
/// - anything else (h2c): answers `reply` with the trailers `grpc-status:
///   0` and `x-echo` (the request's `x-client-trailer` trailer).
struct Special {
    addr: SocketAddr,
    conns: Arc<AtomicUsize>,
    got_first: Arc<Notify>,
    release: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Special {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Out = BoxBody<Bytes, Infallible>;

async fn special() -> Special {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (conns, got_first, release) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (c, g, r) = (conns.clone(), got_first.clone(), release.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            c.fetch_add(1, Ordering::SeqCst);
            let (g, r) = (g.clone(), r.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (g, r) = (g.clone(), r.clone());
                    async move { Ok::<_, Infallible>(special_answer(req, g, r).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Special { addr, conns, got_first, release, task }
}

async fn special_answer(req: Request<Incoming>, got_first: Arc<Notify>, release: Arc<Notify>) -> Response<Out> {
    match req.uri().path() {
        "/stream" => {
            let (mut tx, body) = Channel::<Bytes>::new(1);
            tokio::spawn(async move {
                let _ = tx.send_data(Bytes::from_static(b"first")).await;
                release.notified().await;
                let _ = tx.send_data(Bytes::from_static(b"second")).await;
            });
            Response::new(body.boxed())
        }
        "/endless" => {
            let (mut tx, body) = Channel::<Bytes>::new(1);
            tokio::spawn(async move {
                while tx.send_data(Bytes::from_static(b"chunk\n")).await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
            Response::new(body.boxed())
        }
        "/upload" => {
            let mut body = req.into_body();
            let mut n = 0;
            let mut first = true;
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                if let Some(d) = frame.data_ref() {
                    n += d.len();
                    if first {
                        first = false;
                        got_first.notify_one();
                    }
                }
            }
            Response::new(Full::new(Bytes::from(format!("bytes={n}"))).boxed())
        }
        _ => {
            let version = format!("{:?}", req.version());
            let te = req.headers().get("te").cloned();
            let collected = req.into_body().collect().await.expect("request body");
            let echo = collected
                .trailers()
                .and_then(|t| t.get("x-client-trailer"))
                .cloned()
                .unwrap_or_else(|| HeaderValue::from_static("none"));
            let (mut tx, body) = Channel::<Bytes>::new(2);
            tokio::spawn(async move {
                let _ = tx.send_data(Bytes::from(format!("reply {version} te={te:?}"))).await;
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from_static("0"));
                trailers.insert("x-echo", echo);
                let _ = tx.send_trailers(trailers).await;
            });
            let mut resp = Response::new(body.boxed());
            resp.headers_mut().insert("content-type", HeaderValue::from_static("application/grpc"));
            resp
        }
    }
}

/// The proxy with `special.example.com` → the special backend (HTTP/1.1)
/// and `grpc.example.com` → the same backend over h2c.
async fn special_proxy(s: &Special, annotations: &[(&str, &str)]) -> Proxy {
    let mut w = World::default();
    w.services.push(http_service("default", "special"));
    w.slices.push(slice("default", "special", "special-1", &[("127.0.0.1", true)], &[("http", s.addr.port())]));
    w.services.push(h2c(http_service("default", "grpc")));
    w.slices.push(slice("default", "grpc", "grpc-1", &[("127.0.0.1", true)], &[("http", s.addr.port())]));
    let mut ing = IngressBuilder::new("default", "special");
    for (k, v) in annotations {
        ing = ing.annotation(k, v);
    }
    w.ingresses.push(
        ing.path(Some("special.example.com"), "/", "Prefix", "special", "80")
            .path(Some("grpc.example.com"), "/", "Prefix", "grpc", "80")
            .build(),
    );
    proxy(w.table()).await
}

/// An h2c (prior knowledge) client connection to `addr`.
async fn h2c_client<B>(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<B>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (s, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.expect("h2c handshake");
    tokio::spawn(conn);
    s
}

#[tokio::test]
async fn grpc_trailers_pass_both_ways_through_an_h2c_backend() {
    let s = special().await;
    let p = special_proxy(&s, &[]).await;
    let mut client = h2c_client::<Channel<Bytes>>(p.http).await;
    let (mut tx, body) = Channel::<Bytes>::new(2);
    let req = Request::post("http://grpc.example.com/pkg.Greeter/SayHello")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .expect("request");
    let sending = tokio::spawn(async move {
        tx.send_data(Bytes::from_static(b"\0\0\0\0\x05hello")).await.expect("data");
        let mut trailers = HeaderMap::new();
        trailers.insert("x-client-trailer", HeaderValue::from_static("from-client"));
        tx.send_trailers(trailers).await.expect("trailers");
    });
    let resp = tokio::time::timeout(Duration::from_secs(5), client.send_request(req))
        .await
        .expect("in time")
        .expect("a response");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/grpc");
    let collected = resp.into_body().collect().await.expect("body");
    let trailers = collected.trailers().cloned().expect("response trailers reach the client");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["x-echo"], "from-client", "request trailers reach the backend");
    let body = String::from_utf8_lossy(&collected.to_bytes()).into_owned();
    assert_eq!(body, "reply HTTP/2.0 te=Some(\"trailers\")");
    sending.await.expect("sender");
}

#[tokio::test]
async fn an_http2_client_reaches_an_http1_backend_with_host_path_and_one_cookie_header() {
    let a = backend("a").await;
    let mut w = World::default();
    w.service("default", "a", &[&a]);
    w.ingresses
        .push(IngressBuilder::new("default", "web").path(Some("foo.example.com"), "/", "Prefix", "a", "80").build());
    let p = proxy(w.table()).await;
    let mut client = h2c_client::<Empty<Bytes>>(p.http).await;
    let req = Request::get("http://foo.example.com:8080/x/y?z=1")
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .header("x-forwarded-for", "10.1.1.1")
        .body(Empty::new())
        .expect("request");
    let r = read_reply(client.send_request(req).await.expect("response")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.line("version"), Some("HTTP/1.1"));
    assert_eq!(r.line("host"), Some("foo.example.com:8080"), "the :authority becomes Host");
    assert_eq!(r.line("uri"), Some("/x/y?z=1"));
    let cookies: Vec<&str> = r.body.lines().filter(|l| l.starts_with("header:cookie=")).collect();
    assert_eq!(cookies, ["header:cookie=a=1; b=2"]);
    assert_eq!(r.header_seen("x-forwarded-for"), Some("10.1.1.1, 127.0.0.1"));
    assert_eq!(r.header_seen("x-forwarded-port"), Some(p.http.port().to_string().as_str()));
}

#[tokio::test]
async fn a_response_is_streamed_to_the_client_as_the_backend_sends_it() {
    let s = special().await;
    let p = special_proxy(&s, &[]).await;
    let mut client = h1(p.http).await;
    let resp = client.send_request(request("special.example.com", "/stream", &[])).await.expect("response");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    // The backend holds `second` back until we have seen `first`: a proxy
    // that buffered the whole response would never show it.
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the first chunk arrives before the response ends")
        .expect("a frame")
        .expect("data");
    assert_eq!(first.data_ref().map(|d| &d[..]), Some(&b"first"[..]));
    s.release.notify_one();
    let rest = body.collect().await.expect("the rest").to_bytes();
    assert_eq!(&rest[..], b"second");
}

#[tokio::test]
async fn a_request_body_is_streamed_to_the_backend_as_the_client_sends_it() {
    let s = special().await;
    let p = special_proxy(&s, &[]).await;
    let stream = TcpStream::connect(p.http).await.expect("connect");
    let (mut client, conn) =
        hyper::client::conn::http1::handshake::<_, Channel<Bytes>>(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let (mut tx, body) = Channel::<Bytes>::new(1);
    let req = Request::post("/upload").header("host", "special.example.com").body(body).expect("request");
    let resp = tokio::spawn(client.send_request(req));
    tx.send_data(Bytes::from_static(b"0123456789")).await.expect("first chunk");
    // The rest is sent only once the backend has the first chunk.
    tokio::time::timeout(Duration::from_secs(5), s.got_first.notified())
        .await
        .expect("the first chunk reaches the backend before the body ends");
    tx.send_data(Bytes::from_static(b"abcdef")).await.expect("second chunk");
    drop(tx);
    let r = read_reply(resp.await.expect("task").expect("response")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "bytes=16");
}

#[tokio::test]
async fn large_bodies_go_through_whole_both_ways() {
    let s = special().await;
    let p = special_proxy(&s, &[]).await;
    // 16 MiB up.
    let stream = TcpStream::connect(p.http).await.expect("connect");
    let (mut client, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let big = Bytes::from(vec![b'x'; 16 << 20]);
    let req = Request::post("/upload").header("host", "special.example.com").body(Full::new(big)).expect("request");
    let r = read_reply(client.send_request(req).await.expect("response")).await;
    assert_eq!(r.body, format!("bytes={}", 16 << 20));
    // Many chunks down, twice.
    let mut client = h1(p.http).await;
    for _ in 0..2 {
        let resp = client.send_request(request("special.example.com", "/endless", &[])).await.expect("response");
        let mut body = resp.into_body();
        let mut got = 0;
        while got < 20 {
            let f = body.frame().await.expect("a frame").expect("data");
            got += f.data_ref().map_or(0, |d| d.iter().filter(|b| **b == b'\n').count());
        }
        // Abandoning the endless body closes this client connection (the
        // response never ends); a new one for the next round.
        drop(body);
        client = h1(p.http).await;
    }
}

#[tokio::test]
async fn a_pooled_connection_is_reused_only_once_its_response_body_was_read() {
    let s = special().await;
    let p = special_proxy(&s, &[]).await;
    for _ in 0..5 {
        let r = crate::harness::get(p.http, "special.example.com", "/upload", &[]).await;
        assert_eq!(r.body, "bytes=0");
    }
    assert_eq!(s.conns.load(Ordering::SeqCst), 1, "five requests, one backend connection");
    // A response abandoned half way: its backend connection cannot carry
    // another request and must not go back to the pool.
    let mut client = h1(p.http).await;
    let resp = client.send_request(request("special.example.com", "/endless", &[])).await.expect("response");
    let mut body = resp.into_body();
    body.frame().await.expect("a frame").expect("data");
    drop((body, client));
    for _ in 0..3 {
        let r = crate::harness::get(p.http, "special.example.com", "/upload", &[]).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body, "bytes=0");
    }
    assert!(s.conns.load(Ordering::SeqCst) >= 2, "the abandoned connection was not reused");
    crate::eventually!(
        5,
        scrape(&p, "/metrics").await.body.contains("svcnet_ingress_connections_active 0\n"),
        "client connections still counted after the clients left"
    );
}

/// A backend that answers the first request of each connection and, on
/// the second, reads it and closes the connection without an answer — as
/// a backend closing an idle keep-alive connection just as the proxy
/// reuses it does. Counts connections and requests read.
async fn closing_backend() -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (conns, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, r) = (conns.clone(), requests.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            c.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                for n in 0.. {
                    let Some(length) = read_head(&mut stream).await else { return };
                    let mut body = vec![0u8; length];
                    if stream.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    r.fetch_add(1, Ordering::SeqCst);
                    if n > 0 {
                        return;
                    }
                    // Slow enough that concurrent requests open
                    // connections of their own.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let _ = stream.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
                }
            });
        }
    });
    (addr, conns, requests, task)
}

#[tokio::test]
async fn a_stale_pooled_connection_is_retried_once_for_an_idempotent_request_only() {
    let (addr, conns, requests, task) = closing_backend().await;
    let mut w = World::default();
    w.services.push(http_service("default", "flaky"));
    w.slices.push(slice("default", "flaky", "flaky-1", &[("127.0.0.1", true)], &[("http", addr.port())]));
    w.ingresses.push(IngressBuilder::new("default", "flaky").path(None, "/", "Prefix", "flaky", "80").build());
    let p = proxy(w.table()).await;
    // Two pooled connections, both of which the backend will drop.
    let (r1, r2) = tokio::join!(crate::harness::get(p.http, "x", "/", &[]), crate::harness::get(p.http, "x", "/", &[]));
    assert_eq!((r1.status, r2.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(conns.load(Ordering::SeqCst), 2);
    // The pooled connection is dropped by the backend after reading the
    // request: the GET goes again on a *new* connection, not on the other
    // pooled one, which would fail the same way.
    let r = crate::harness::get(p.http, "x", "/", &[]).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ok"), "{r:?}");
    assert_eq!(conns.load(Ordering::SeqCst), 3);
    assert_eq!(requests.load(Ordering::SeqCst), 4);
    let resets = || async {
        scrape(&p, "/metrics")
            .await
            .body
            .lines()
            .find_map(|l| {
                l.strip_prefix(
                    "svcnet_ingress_upstream_errors_total{namespace=\"default\",service=\"flaky\",reason=\"reset\"} ",
                )
                .map(str::to_string)
            })
            .expect("a reset counter")
    };
    // The stale connection retried is not an upstream failure ...
    assert_eq!(resets().await, "0");
    // A POST the backend may have acted on is not sent twice.
    let r = crate::harness::post(p.http, "x", "/", "payload").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{r:?}");
    assert_eq!(requests.load(Ordering::SeqCst), 5, "the POST was sent once");
    // ... the exchange broken after a connect, answered 502, is.
    assert_eq!(resets().await, "1");
    task.abort();
}

#[tokio::test]
async fn expect_100_continue_gets_a_100_before_the_body_is_sent() {
    let a = backend("a").await;
    let mut w = World::default();
    w.service("default", "a", &[&a]);
    w.ingresses.push(IngressBuilder::new("default", "web").path(None, "/", "Prefix", "a", "80").build());
    let p = proxy(w.table()).await;
    let mut s = TcpStream::connect(p.http).await.expect("connect");
    s.write_all(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .await
        .expect("write");
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line))
        .await
        .expect("a 100 Continue before the body")
        .expect("read");
    assert!(line.starts_with("HTTP/1.1 100"), "{line}");
    let mut blank = String::new();
    reader.read_line(&mut blank).await.expect("read");
    reader.get_mut().write_all(b"hello").await.expect("body");
    let mut head = String::new();
    loop {
        let mut l = String::new();
        reader.read_line(&mut l).await.expect("read");
        if l == "\r\n" {
            break;
        }
        head.push_str(&l);
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().expect("number")))
        .expect("content-length");
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await.expect("body");
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("body=hello"), "{body}");
}

#[tokio::test]
async fn head_answers_leave_the_kept_alive_connection_usable() {
    let a = backend("a").await;
    let mut w = World::default();
    w.service("default", "a", &[&a]);
    w.ingresses.push(IngressBuilder::new("default", "web").path(None, "/", "Prefix", "a", "80").build());
    let p = proxy(w.table()).await;
    let mut client = h1(p.http).await;
    for i in 0..3 {
        let head = Request::head(format!("/h/{i}")).header("host", "x").body(Empty::new()).expect("request");
        let r = read_reply(client.send_request(head).await.expect("response")).await;
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty(), "{r:?}");
        let r = read_reply(client.send_request(request("x", &format!("/g/{i}"), &[])).await.expect("response")).await;
        assert_eq!(r.line("uri"), Some(format!("/g/{i}").as_str()));
    }
    assert_eq!(a.hits(), 6);
}

#[tokio::test]
async fn an_upload_slower_than_the_read_timeout_is_not_cut_short() {
    let s = special().await;
    let p = special_proxy(&s, &[("svcnet.io/proxy-read-timeout", "1"), ("svcnet.io/proxy-send-timeout", "3")]).await;
    let stream = TcpStream::connect(p.http).await.expect("connect");
    let (mut client, conn) =
        hyper::client::conn::http1::handshake::<_, Channel<Bytes>>(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let (mut tx, body) = Channel::<Bytes>::new(1);
    let req = Request::post("/upload").header("host", "special.example.com").body(body).expect("request");
    let resp = tokio::spawn(client.send_request(req));
    // 2 s of upload, a chunk every 250 ms: longer than the read timeout.
    for _ in 0..8 {
        tx.send_data(Bytes::from_static(b"0123456789")).await.expect("chunk");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(tx);
    let r = read_reply(resp.await.expect("task").expect("response")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "bytes=80");
}

#[tokio::test]
async fn a_client_that_stops_sending_its_body_gets_a_408_after_the_send_timeout() {
    let s = special().await;
    let p = special_proxy(&s, &[("svcnet.io/proxy-send-timeout", "1")]).await;
    let mut stream = TcpStream::connect(p.http).await.expect("connect");
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: special.example.com\r\nContent-Length: 100\r\n\r\nonly part")
        .await
        .expect("write");
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer within the send timeout and some")
        .expect("read");
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
}
