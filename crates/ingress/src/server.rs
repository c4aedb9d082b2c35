//! The serving side: accept loops over the HTTP and HTTPS listeners,
//! one task per client connection (HTTP/1.1 with upgrades, h2c with prior
//! knowledge on plain listeners, h2 or HTTP/1.1 by ALPN on TLS), the
//! `/metrics` and `/healthz` listener, table publishing, and an orderly
//! shutdown. [`serve_static`] runs all of it from a fixed table, without
//! an API server.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::error::Error;
use crate::metrics::Metrics;
use crate::pool::{Body, Connector, Pools};
use crate::proxy::{ConnInfo, boxed, handle};
use crate::table::{RouteTable, TableCell};
use crate::tls::{TableResolver, default_certificate, server_config};

/// Sockets to serve on: plain HTTP and HTTPS. Bind them yourself (any
/// address, port 0 for a free one) and hand them over.
#[derive(Debug, Default)]
pub struct Listeners {
    pub http: Vec<TcpListener>,
    pub https: Vec<TcpListener>,
}

/// A TLS handshake that takes longer than this is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every connection task shares.
pub(crate) struct Shared {
    pub(crate) table: Arc<TableCell>,
    pub(crate) pools: Pools,
    pub(crate) metrics: Metrics,
    pub(crate) synced: AtomicBool,
    tls: TlsAcceptor,
    builder: auto::Builder<TokioExecutor>,
    /// true: stop accepting, finish connections gracefully.
    pub(crate) shutdown: watch::Sender<bool>,
    /// HTTP/1.1 goes through our own codec (`h1.rs`) rather than hyper;
    /// `SVCNET_INGRESS_H1=hyper` turns it off (for comparisons).
    fast_h1: bool,
    /// true: the grace period is over; drop whatever is left.
    pub(crate) force: watch::Sender<bool>,
    active: AtomicUsize,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("pools", &self.pools).field("active", &self.active).finish_non_exhaustive()
    }
}

/// Counts a connection (or an upgraded stream) as active until dropped.
pub(crate) struct Active(Arc<Shared>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
        self.0.metrics.connections.fetch_sub(1, Relaxed);
    }
}

impl Shared {
    /// Swaps in a new table; forgets the pools of endpoints it dropped.
    pub(crate) fn publish(&self, table: RouteTable) {
        let keep: HashSet<_> =
            table.upstreams().iter().flat_map(|u| u.endpoints.iter().map(move |e| (e.addr, u.protocol))).collect();
        self.table.store(Arc::new(table));
        self.pools.retain(&keep);
        self.metrics.reloaded();
    }

    pub(crate) fn track(self: &Arc<Self>) -> Active {
        self.active.fetch_add(1, Relaxed);
        self.metrics.connections.fetch_add(1, Relaxed);
        Active(self.clone())
    }
}

/// The proxy serving one table at a time. Publish another with
/// [`IngressServer::publish`]; open connections are never disturbed.
#[derive(Debug)]
pub struct IngressServer {
    pub(crate) shared: Arc<Shared>,
    accept: Mutex<Vec<JoinHandle<()>>>,
    addrs: Mutex<(Vec<SocketAddr>, Vec<SocketAddr>)>,
    metrics_addr: Option<SocketAddr>,
    metrics_task: Option<JoinHandle<()>>,
}

/// Serves `table` on `listeners` until shut down, with no API server:
/// for tests, benchmarks, and as the serving half of the controller.
/// `metrics` binds the `/metrics` and `/healthz` listener. The server
/// counts as synced (healthy) at once.
pub async fn serve_static(
    table: RouteTable,
    listeners: Listeners,
    connector: Arc<dyn Connector>,
    metrics: Option<SocketAddr>,
) -> Result<IngressServer, Error> {
    let server = IngressServer::start(table, listeners, connector, metrics).await?;
    server.shared.synced.store(true, Relaxed);
    server.shared.metrics.reloaded();
    Ok(server)
}

impl IngressServer {
    pub(crate) async fn start(
        table: RouteTable,
        listeners: Listeners,
        connector: Arc<dyn Connector>,
        metrics: Option<SocketAddr>,
    ) -> Result<IngressServer, Error> {
        let cell = Arc::new(TableCell::new(table));
        let default = Arc::new(default_certificate()?);
        let tls = server_config(Arc::new(TableResolver { table: cell.clone(), default }))?;
        let shared = Arc::new(Shared {
            table: cell,
            pools: Pools::new(connector),
            metrics: Metrics::default(),
            synced: AtomicBool::new(false),
            tls: TlsAcceptor::from(tls),
            builder: connection_builder(),
            fast_h1: std::env::var("SVCNET_INGRESS_H1").map_or(true, |v| v != "hyper"),
            shutdown: watch::channel(false).0,
            force: watch::channel(false).0,
            active: AtomicUsize::new(0),
        });
        let (metrics_addr, metrics_task) = match metrics {
            Some(addr) => {
                let listener = TcpListener::bind(addr).await.map_err(|source| Error::MetricsBind { addr, source })?;
                let bound = listener.local_addr().map_err(|source| Error::MetricsBind { addr, source })?;
                (Some(bound), Some(tokio::spawn(serve_metrics(listener, shared.clone()))))
            }
            None => (None, None),
        };
        let server =
            IngressServer { shared, accept: Mutex::default(), addrs: Mutex::default(), metrics_addr, metrics_task };
        server.add_listeners(listeners);
        Ok(server)
    }

    /// Serves on more sockets too.
    pub fn add_listeners(&self, listeners: Listeners) {
        let mut tasks = self.accept.lock().unwrap_or_else(|p| p.into_inner());
        let mut addrs = self.addrs.lock().unwrap_or_else(|p| p.into_inner());
        for (list, tls) in [(listeners.http, false), (listeners.https, true)] {
            for l in list {
                if let Ok(a) = l.local_addr() {
                    if tls { addrs.1.push(a) } else { addrs.0.push(a) }
                }
                tasks.push(tokio::spawn(accept_loop(l, tls, self.shared.clone())));
            }
        }
    }

    /// Swaps in a new table: the next request (and TLS handshake) uses it.
    pub fn publish(&self, table: RouteTable) {
        self.shared.publish(table);
    }

    /// The table being served.
    pub fn table(&self) -> Arc<RouteTable> {
        self.shared.table.load()
    }

    /// Where `/metrics` and `/healthz` are served, if anywhere.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The plain HTTP listeners' addresses.
    pub fn http_addrs(&self) -> Vec<SocketAddr> {
        self.addrs.lock().unwrap_or_else(|p| p.into_inner()).0.clone()
    }

    /// The HTTPS listeners' addresses.
    pub fn https_addrs(&self) -> Vec<SocketAddr> {
        self.addrs.lock().unwrap_or_else(|p| p.into_inner()).1.clone()
    }

    /// The metrics in Prometheus text format (what `/metrics` serves).
    pub fn render_metrics(&self) -> String {
        self.shared.metrics.render()
    }

    /// Stops accepting, lets open connections finish their requests (idle
    /// keep-alive connections are closed) for up to `grace`, then drops
    /// whatever is left.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shared.shutdown.send(true);
        for t in self.accept.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            t.abort();
        }
        if let Some(t) = &self.metrics_task {
            t.abort();
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.shared.active.load(Relaxed) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.shared.force.send(true);
    }
}

impl Drop for IngressServer {
    fn drop(&mut self) {
        for t in self.accept.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            t.abort();
        }
        if let Some(t) = &self.metrics_task {
            t.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, tls: bool, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    // `X-Forwarded-Port`: the listener's port, whatever address a
    // connection came to.
    let port = http::HeaderValue::from(listener.local_addr().map_or(0, |a| a.port()));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let info = ConnInfo::on_port(peer, port.clone(), tls);
                tokio::spawn(connection(stream, info, shared.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: pause, not spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// How long a client may take to send its request headers (hyper's
/// `header_read_timeout`; also the first bytes on a plain connection).
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The connection builder every client connection starts from (cloned;
/// the TLS and plain paths pick HTTP/1.1 or HTTP/2 themselves).
fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    builder
}

async fn connection(stream: TcpStream, info: ConnInfo, shared: Arc<Shared>) {
    let _active = shared.track();
    let _ = stream.set_nodelay(true);
    let builder = shared.builder.clone();
    if info.tls {
        let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, Box::pin(shared.tls.accept(stream))).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(peer = %info.peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => return,
        };
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        if h2 {
            Box::pin(drive(&builder.http2_only(), TokioIo::new(tls), info, shared.clone())).await;
        } else if shared.fast_h1 {
            fast(tls, bytes::BytesMut::new(), info, &shared).await;
        } else {
            Box::pin(drive(&builder.http1_only(), TokioIo::new(tls), info, shared.clone())).await;
        }
    } else {
        // h2c with prior knowledge or HTTP/1.1, told apart by the first
        // bytes. Read here (as much as is there) and handed to hyper,
        // rather than hyper-util's 24-byte peek, which costs every new
        // connection a second read.
        // A connection that has sent nothing yet is idle: shutdown closes it.
        let mut shutdown = shared.shutdown.subscribe();
        let head = tokio::select! {
            r = tokio::time::timeout(HEADER_READ_TIMEOUT, read_head(&stream)) => match r {
                Ok(Ok(head)) if !head.is_empty() => head,
                _ => return,
            },
            _ = shutdown.wait_for(|s| *s) => return,
        };
        if head.starts_with(H2_PREFACE) {
            let io = TokioIo::new(Prefixed { head: head.to_vec(), pos: 0, io: stream });
            Box::pin(drive(&builder.http2_only(), io, info, shared.clone())).await;
        } else if shared.fast_h1 {
            fast(stream, head, info, &shared).await;
        } else {
            let io = TokioIo::new(Prefixed { head: head.to_vec(), pos: 0, io: stream });
            Box::pin(drive(&builder.http1_only(), io, info, shared.clone())).await;
        }
    }
}

/// HTTP/1.1 on our own codec (`h1.rs`); what it hands off goes on with
/// hyper, the bytes already read first.
async fn fast<S>(io: S, buffered: bytes::BytesMut, info: ConnInfo, shared: &Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut force = shared.force.subscribe();
    let outcome = tokio::select! {
        o = crate::h1::serve(io, buffered, &info, shared) => o,
        _ = force.wait_for(|f| *f) => return,
    };
    if let crate::h1::Outcome::HandOff(io, buffered) = outcome {
        let io = TokioIo::new(Prefixed { head: buffered.to_vec(), pos: 0, io });
        Box::pin(drive(&shared.builder.clone().http1_only(), io, info, shared.clone())).await;
    }
}

/// What an HTTP/2 client with prior knowledge sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The first bytes of a plain connection: what one read returns, or more
/// while they could still be the start of the HTTP/2 preface. Empty: the
/// client closed.
async fn read_head(stream: &TcpStream) -> std::io::Result<bytes::BytesMut> {
    let mut buf = bytes::BytesMut::with_capacity(8192);
    loop {
        stream.readable().await?;
        match stream.try_read_buf(&mut buf) {
            Ok(0) => return Ok(buf),
            Ok(_) if buf.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(&buf) => {}
            Ok(_) => return Ok(buf),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// A stream whose first bytes were already read: they are read again
/// first.
struct Prefixed<T> {
    head: Vec<u8>,
    pos: usize,
    io: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.head.len() {
            let n = (this.head.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.head[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.head.len() {
                this.head = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

async fn drive<I>(builder: &auto::Builder<TokioExecutor>, io: I, info: ConnInfo, shared: Arc<Shared>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let peer = info.peer;
    let svc_shared = shared.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let (shared, info) = (svc_shared.clone(), info.clone());
        async move { Ok::<_, Infallible>(handle(shared, info, req).await) }
    });
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let mut shutdown = shared.shutdown.subscribe();
    let mut force = shared.force.subscribe();
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "client connection ended");
            }
            return;
        }
        _ = shutdown.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
    }
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = force.wait_for(|f| *f) => {}
    }
}

/// `/metrics` (Prometheus text) and `/healthz` (200 once the first
/// configuration is served, 503 before).
async fn serve_metrics(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(metrics_response(&shared, req.uri().path())) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn metrics_response(shared: &Shared, path: &str) -> Response<Body> {
    let (status, body) = match path {
        "/metrics" => (StatusCode::OK, shared.metrics.render()),
        "/healthz" | "/readyz" | "/health" if shared.synced.load(Relaxed) => (StatusCode::OK, "ok\n".to_string()),
        "/healthz" | "/readyz" | "/health" => {
            (StatusCode::SERVICE_UNAVAILABLE, "not ready: the first configuration is not loaded yet\n".to_string())
        }
        _ => (StatusCode::NOT_FOUND, "404 Not Found\n".to_string()),
    };
    let mut resp = Response::new(boxed(Full::new(Bytes::from(body))));
    *resp.status_mut() = status;
    resp
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use http_body_util::{BodyExt as _, Empty};

    use super::*;
    use crate::config::IngressConfig;
    use crate::pool::DirectConnector;
    use crate::testkit::{IngressBuilder, service, slice};

    /// A backend answering `ok` to everything, counting its connections.
    async fn counting_backend() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let conns = Arc::new(AtomicUsize::new(0));
        let counted = conns.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Relaxed);
                let service = service_fn(|_req: Request<Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        (addr, conns)
    }

    #[tokio::test]
    async fn a_backend_connection_goes_back_to_the_pool_after_bodies_empty_or_not() {
        let (backend, conns) = counting_backend().await;
        let services = vec![service("default", "a", &[("http", 80, i32::from(backend.port()))])];
        let slices = vec![slice("default", "a", "a-1", &[("127.0.0.1", true)], &[("http", backend.port())])];
        let ingresses = vec![IngressBuilder::new("default", "web").path(None, "/", "Prefix", "a", "80").build()];
        let (table, _) = crate::table::build_table(&ingresses, &[], &services, &slices, &[], &IngressConfig::default());
        let listeners =
            Listeners { http: vec![TcpListener::bind("127.0.0.1:0").await.expect("bind")], https: Vec::new() };
        let server = serve_static(table, listeners, Arc::new(DirectConnector), None).await.expect("serve");
        let addr = server.http_addrs()[0];
        // HEAD answers have no body for hyper to poll: the connection goes
        // back as the (empty) response body is dropped. GETs: as their
        // body ends. One client connection per request, closed after it.
        for method in [http::Method::HEAD, http::Method::GET, http::Method::HEAD, http::Method::GET] {
            let stream = TcpStream::connect(addr).await.expect("connect");
            let (mut client, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            let req = Request::builder().method(method.clone()).uri("/").header("host", "x").body(Empty::new());
            let resp = client.send_request(req.expect("request")).await.expect("response");
            assert_eq!(resp.status(), StatusCode::OK);
            let body = resp.into_body().collect().await.expect("body").to_bytes();
            assert_eq!(&body[..], if method == http::Method::HEAD { &b""[..] } else { &b"ok"[..] });
        }
        assert_eq!(conns.load(Relaxed), 1, "four requests, one backend connection");
        server.shutdown(Duration::from_secs(1)).await;
    }
}
