//! The HTTP/1.1 fast path (`h1.rs`) byte for byte: raw clients and raw
//! backends, so that framing is what is tested, not what hyper makes of
//! it. Pipelining, chunked bodies both ways, responses delimited by the
//! backend closing, requests refused for ambiguous framing, hand-offs to
//! hyper, and the pooled connection a backend closed while it was idle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use svcnet_ingress::testkit::{IngressBuilder, slice};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{World, backend, http_service, proxy, read_head, scrape};

/// A response as a raw client reads it.
#[derive(Debug)]
struct Raw {
    status: u16,
    /// Lower-case names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Trailer lines of a chunked body, as sent.
    trailers: Vec<String>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response (`head`: to a HEAD request) off `r`.
async fn read_response<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R, head: bool) -> Raw {
    let mut line = String::new();
    r.read_line(&mut line).await.expect("status line");
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).await.expect("a header line");
        let l = line.trim_end_matches("\r\n");
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').expect("name: value");
        headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut raw = Raw { status, headers, body: Vec::new(), trailers: Vec::new() };
    if head || status == 204 || status == 304 {
        return raw;
    }
    if raw.header("transfer-encoding") == Some("chunked") {
        loop {
            line.clear();
            r.read_line(&mut line).await.expect("chunk size");
            let size = usize::from_str_radix(line.trim_end(), 16).unwrap_or_else(|_| panic!("chunk size {line:?}"));
            if size == 0 {
                loop {
                    line.clear();
                    r.read_line(&mut line).await.expect("trailer");
                    if line == "\r\n" {
                        return raw;
                    }
                    raw.trailers.push(line.trim_end().to_string());
                }
            }
            let mut data = vec![0; size + 2];
            r.read_exact(&mut data).await.expect("chunk data");
            assert_eq!(&data[size..], b"\r\n", "chunk end");
            raw.body.extend_from_slice(&data[..size]);
        }
    }
    let n: usize = raw.header("content-length").expect("a framing").parse().expect("a length");
    raw.body.resize(n, 0);
    r.read_exact(&mut raw.body).await.expect("body");
    raw
}

/// Whether the peer closes the connection (without sending anything more)
/// within a second.
async fn closes<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> bool {
    let mut byte = [0u8; 1];
    matches!(tokio::time::timeout(Duration::from_secs(1), r.read(&mut byte)).await, Ok(Ok(0) | Err(_)))
}

async fn echo_world() -> (crate::harness::Backend, crate::harness::Proxy) {
    let a = backend("a").await;
    let mut w = World::default();
    w.service("default", "a", &[&a]);
    w.ingresses.push(IngressBuilder::new("default", "web").path(None, "/", "Prefix", "a", "80").build());
    let p = proxy(w.table()).await;
    (a, p)
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let (a, p) = echo_world().await;
    let s = TcpStream::connect(p.http).await.expect("connect");
    let mut s = BufReader::new(s);
    s.get_mut()
        .write_all(
            b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nPOST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcHEAD /three HTTP/1.1\r\nHost: x\r\n\r\nGET /four HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await
        .expect("write");
    let one = read_response(&mut s, false).await;
    assert!(one.text().contains("uri=/one\n"), "{one:?}");
    let two = read_response(&mut s, false).await;
    assert!(two.text().contains("uri=/two\n") && two.text().contains("body=abc\n"), "{two:?}");
    let three = read_response(&mut s, true).await;
    assert_eq!(three.status, 200);
    assert!(three.header("content-length").is_some(), "HEAD keeps the length: {three:?}");
    let four = read_response(&mut s, false).await;
    assert!(four.text().contains("uri=/four\n"), "{four:?}");
    assert!(four.header("date").is_some());
    assert_eq!(a.hits(), 4);
}

#[tokio::test]
async fn a_chunked_request_body_is_streamed_re_framed_and_keeps_its_trailers() {
    let (_a, p) = echo_world().await;
    let s = TcpStream::connect(p.http).await.expect("connect");
    let mut s = BufReader::new(s);
    s.get_mut()
        .write_all(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5;name=v\r\nhel")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.get_mut().write_all(b"lo\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n").await.expect("write");
    let r = read_response(&mut s, false).await;
    let text = r.text();
    assert!(text.contains("body=hello world\n"), "{text}");
    assert!(text.contains("header:transfer-encoding=chunked\n"), "{text}");
    assert!(!text.contains("header:content-length"), "{text}");
    assert!(!text.contains("header:connection"), "hop-by-hop: {text}");
    // The connection is good for another request.
    s.get_mut().write_all(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    assert!(read_response(&mut s, false).await.text().contains("uri=/again\n"));
}

#[tokio::test]
async fn ambiguous_or_malformed_framing_is_refused_with_400_and_a_close() {
    let (a, p) = echo_world().await;
    let cases: [&[u8]; 9] = [
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x3\r\n\r\nabc",
        b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
    ];
    for case in cases {
        let s = TcpStream::connect(p.http).await.expect("connect");
        let mut s = BufReader::new(s);
        s.get_mut().write_all(case).await.expect("write");
        let r = read_response(&mut s, false).await;
        assert_eq!(r.status, 400, "{:?}: {r:?}", String::from_utf8_lossy(case));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(closes(&mut s).await, "closed after {:?}", String::from_utf8_lossy(case));
    }
    assert_eq!(a.hits(), 0, "nothing ambiguous reached the backend");

    // A malformed chunk, found once the head went to the backend: 400 and
    // a close all the same (what the backend got is cut off).
    let s = TcpStream::connect(p.http).await.expect("connect");
    let mut s = BufReader::new(s);
    s.get_mut()
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
        .await
        .expect("write");
    let r = read_response(&mut s, false).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(closes(&mut s).await);
}

/// A backend speaking raw HTTP/1.1: `/chunked` (chunked, with an
/// extension and a trailer), `/eof` (no framing: the body ends when it
/// closes), else a `Content-Length` answer. Counts connections.
async fn raw_backend() -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let conns = Arc::new(AtomicUsize::new(0));
    let c = conns.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let mut first = String::new();
                    if stream.read_line(&mut first).await.unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut line = String::new();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                    }
                    let path = first.split(' ').nth(1).unwrap_or("/").to_string();
                    let s = stream.get_mut();
                    match path.as_str() {
                        "/chunked" => {
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Digest\r\n\r\n4;ext\r\nchun\r\n").await;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            let _ = s.write_all(b"3\r\nked\r\n0\r\nX-Digest: abc\r\n\r\n").await;
                        }
                        "/eof" => {
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil ").await;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            let _ = s.write_all(b"the end").await;
                            return;
                        }
                        _ => {
                            let _ =
                                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Path: p\r\n\r\nlength").await;
                        }
                    }
                }
            });
        }
    });
    (addr, conns, task)
}

fn raw_world(addr: SocketAddr) -> World {
    let mut w = World::default();
    w.services.push(http_service("default", "raw"));
    w.slices.push(slice("default", "raw", "raw-1", &[("127.0.0.1", true)], &[("http", addr.port())]));
    w.ingresses.push(IngressBuilder::new("default", "raw").path(None, "/", "Prefix", "raw", "80").build());
    w
}

#[tokio::test]
async fn chunked_length_and_close_delimited_responses_reach_the_client_intact() {
    let (addr, conns, task) = raw_backend().await;
    let p = proxy(raw_world(addr).table()).await;
    let s = TcpStream::connect(p.http).await.expect("connect");
    let mut s = BufReader::new(s);
    let mut ask = async |path: &str| {
        s.get_mut().write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.expect("write");
        read_response(&mut s, false).await
    };
    let r = ask("/chunked").await;
    assert_eq!((r.text().as_str(), r.trailers.as_slice()), ("chunked", &["X-Digest: abc".to_string()][..]), "{r:?}");
    assert_eq!(r.header("trailer"), None, "hop-by-hop");
    let r = ask("/length").await;
    assert_eq!((r.text().as_str(), r.header("x-path")), ("length", Some("p")), "{r:?}");
    // Ended by the backend closing: chunked to the client, whose
    // connection stays open.
    let r = ask("/eof").await;
    assert_eq!((r.text().as_str(), r.header("transfer-encoding")), ("until the end", Some("chunked")), "{r:?}");
    assert_eq!(r.header("connection"), None);
    let r = ask("/length").await;
    assert_eq!(r.text(), "length");
    // The /chunked and /length connection was reused; /eof's was not.
    assert_eq!(conns.load(Ordering::SeqCst), 2);
    task.abort();
}

#[tokio::test]
async fn a_client_asking_to_close_gets_connection_close_and_the_backend_connection_is_kept() {
    let (addr, conns, task) = raw_backend().await;
    let p = proxy(raw_world(addr).table()).await;
    for _ in 0..3 {
        let s = TcpStream::connect(p.http).await.expect("connect");
        let mut s = BufReader::new(s);
        s.get_mut().write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("write");
        let r = read_response(&mut s, false).await;
        assert_eq!((r.status, r.header("connection")), (200, Some("close")));
        assert!(closes(&mut s).await);
    }
    assert_eq!(conns.load(Ordering::SeqCst), 1);
    task.abort();
}

/// Answers one request per connection with `Content-Length`, then closes
/// the connection 20 ms later while it sits idle in the proxy's pool.
async fn idle_closing_backend() -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let requests = Arc::new(AtomicUsize::new(0));
    let r = requests.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let r = r.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                let Some(length) = read_head(&mut stream).await else { return };
                let mut body = vec![0; length];
                let _ = stream.read_exact(&mut body).await;
                r.fetch_add(1, Ordering::SeqCst);
                let _ = stream.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            });
        }
    });
    (addr, requests, task)
}

#[tokio::test]
async fn a_post_never_goes_on_a_pooled_connection_the_backend_has_closed() {
    let (addr, requests, task) = idle_closing_backend().await;
    let p = proxy(raw_world(addr).table()).await;
    let r = crate::harness::get(p.http, "x", "/", &[]).await;
    assert_eq!(r.status, http::StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The pooled connection is closed by now: the POST is sent once, on a
    // new connection, and succeeds.
    let r = crate::harness::post(p.http, "x", "/", "payload").await;
    assert_eq!((r.status, r.body.as_str()), (http::StatusCode::OK, "ok"), "{r:?}");
    assert_eq!(requests.load(Ordering::SeqCst), 2);
    // And a GET after the same wait: retried on a new connection, not an error.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let r = crate::harness::get(p.http, "x", "/", &[]).await;
    assert_eq!((r.status, r.body.as_str()), (http::StatusCode::OK, "ok"), "{r:?}");
    let metrics = scrape(&p, "/metrics").await.body;
    assert!(!metrics.lines().any(|l| l.contains("reason=\"reset\"") && !l.ends_with(" 0")), "{metrics}");
    task.abort();
}

#[tokio::test]
async fn what_the_fast_path_does_not_cover_still_works_through_hyper() {
    let (a, p) = echo_world().await;
    // HTTP/1.0, then an absolute-form target, on connections of their own.
    let s = TcpStream::connect(p.http).await.expect("connect");
    let mut s = BufReader::new(s);
    s.get_mut().write_all(b"GET /old HTTP/1.0\r\nHost: x\r\n\r\n").await.expect("write");
    let r = read_response(&mut s, false).await;
    assert!(r.text().contains("uri=/old\n"), "{r:?}");
    let s = TcpStream::connect(p.http).await.expect("connect");
    let mut s = BufReader::new(s);
    s.get_mut()
        .write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET http://x/abs?q=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let first = read_response(&mut s, false).await;
    assert!(first.text().contains("uri=/first\n"), "{first:?}");
    let abs = read_response(&mut s, false).await;
    assert!(abs.text().contains("uri=/abs?q=1\n") && abs.text().contains("host=x\n"), "{abs:?}");
    // The rest of the connection is hyper's, pipelined bytes included.
    let after = read_response(&mut s, false).await;
    assert!(after.text().contains("uri=/after\n"), "{after:?}");
    assert_eq!(a.hits(), 4);
}

#[tokio::test]
async fn forwarded_headers_are_rewritten_on_the_fast_path() {
    let (_a, p) = echo_world().await;
    let s = TcpStream::connect(p.http).await.expect("connect");
    let mut s = BufReader::new(s);
    s.get_mut()
        .write_all(
            b"GET /h?x=1 HTTP/1.1\r\nHost: Web.Example:8080\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nConnection: X-Secret\r\nX-Secret: s\r\nKeep-Alive: 5\r\nTE: trailers, gzip\r\nX-Request-ID: rid\r\n\r\n",
        )
        .await
        .expect("write");
    let r = read_response(&mut s, false).await;
    let t = r.text();
    for want in [
        "host=Web.Example:8080\n",
        "uri=/h?x=1\n",
        "header:x-forwarded-for=10.0.0.1, 10.0.0.2, 127.0.0.1\n",
        "header:x-real-ip=127.0.0.1\n",
        "header:x-forwarded-proto=http\n",
        "header:x-forwarded-host=Web.Example:8080\n",
        &format!("header:x-forwarded-port={}\n", p.http.port()),
        "header:te=trailers\n",
        "header:x-request-id=rid\n",
    ] {
        assert!(t.contains(want), "{want:?} in {t}");
    }
    for gone in ["x-secret", "keep-alive", "header:connection"] {
        assert!(!t.contains(gone), "{gone:?} in {t}");
    }
    assert_eq!(t.matches("header:x-forwarded-for=").count(), 1);
}
