//! Upstream connections: the [`Connector`] that opens them, and keep-alive
//! pools per endpoint. HTTP/1.1 connections are reused one request at a
//! time (a connection goes back to the pool once its response body has
//! been read); an h2c endpoint shares one multiplexed connection. Pools
//! live outside the route table, keyed by endpoint address, so a table
//! swap keeps every warm connection.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::annotations::BackendProtocol;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type on both sides of the proxy.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// How upstream (backend) connections are opened. Default: plain tokio
/// `TcpStream::connect`. svcnet's sandbox passes one that opens sockets
/// inside a node's network namespace.
pub trait Connector: Send + Sync + 'static {
    fn connect(&self, addr: SocketAddr) -> Pin<Box<dyn Future<Output = std::io::Result<TcpStream>> + Send + '_>>;
}

/// `TcpStream::connect` in the process's own network namespace.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirectConnector;

impl Connector for DirectConnector {
    fn connect(&self, addr: SocketAddr) -> Pin<Box<dyn Future<Output = std::io::Result<TcpStream>> + Send + '_>> {
        Box::pin(TcpStream::connect(addr))
    }
}

/// Why no connection could be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("connecting to {0} timed out")]
    Timeout(SocketAddr),
    #[error("connecting to {addr} failed: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP handshake with {addr} failed: {source}")]
    Handshake {
        addr: SocketAddr,
        #[source]
        source: hyper::Error,
    },
}

/// Idle HTTP/1.1 connections older than this are not reused: backends
/// commonly close idle connections after 60 s or more, and a request on a
/// connection the backend is closing fails.
const MAX_IDLE: Duration = Duration::from_secs(50);
/// Idle connections kept per endpoint.
const MAX_IDLE_PER_ENDPOINT: usize = 128;

/// A connection ready for one request.
pub(crate) enum Conn {
    /// `reused`: taken from the pool (a failure may be the backend having
    /// closed it meanwhile, which is worth a retry).
    H1 {
        sender: http1::SendRequest<Body>,
        reused: bool,
    },
    H2 {
        sender: http2::SendRequest<Body>,
        reused: bool,
    },
}

impl Conn {
    /// Taken from the pool rather than opened for this request.
    pub(crate) fn reused(&self) -> bool {
        match self {
            Conn::H1 { reused, .. } | Conn::H2 { reused, .. } => *reused,
        }
    }
}

/// One endpoint's connections and load.
#[derive(Debug)]
pub(crate) struct EndpointPool {
    pub(crate) addr: SocketAddr,
    protocol: BackendProtocol,
    idle: Mutex<Vec<(Instant, http1::SendRequest<Body>)>>,
    /// Idle HTTP/1.1 connections of the fast path (`h1.rs`), which speaks
    /// HTTP/1.1 on the socket itself.
    idle_raw: Mutex<Vec<(Instant, TcpStream)>>,
    /// The shared h2c connection (a short lock to clone the sender).
    h2: Mutex<Option<http2::SendRequest<Body>>>,
    /// Held while an h2c connection is being opened, so that concurrent
    /// requests wait for one connect instead of each opening their own.
    h2_connect: tokio::sync::Mutex<()>,
    /// Requests in flight (least-request balancing).
    pub(crate) inflight: AtomicUsize,
}

/// Every endpoint's pool.
pub(crate) struct Pools {
    map: RwLock<HashMap<(SocketAddr, BackendProtocol), Arc<EndpointPool>>>,
    connector: Arc<dyn Connector>,
}

impl Pools {
    pub(crate) fn new(connector: Arc<dyn Connector>) -> Pools {
        Pools { map: RwLock::default(), connector }
    }

    /// The pool of an endpoint (created on first use).
    pub(crate) fn endpoint(&self, addr: SocketAddr, protocol: BackendProtocol) -> Arc<EndpointPool> {
        if let Some(p) = self.map.read().unwrap_or_else(|p| p.into_inner()).get(&(addr, protocol)) {
            return p.clone();
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.entry((addr, protocol))
            .or_insert_with(|| {
                Arc::new(EndpointPool {
                    addr,
                    protocol,
                    idle: Mutex::default(),
                    idle_raw: Mutex::default(),
                    h2: Mutex::default(),
                    h2_connect: tokio::sync::Mutex::default(),
                    inflight: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// Drops the pools of endpoints no longer in use (not in `keep` and no
    /// request in flight); their idle connections close.
    pub(crate) fn retain(&self, keep: &HashSet<(SocketAddr, BackendProtocol)>) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, p| keep.contains(k) || p.inflight.load(Relaxed) > 0);
    }

    /// A connection to the endpoint: a pooled one if there is one, else a
    /// new one (within `timeout`). `fresh`: never a pooled one (a retry
    /// after a pooled connection turned out to be closed by the backend).
    pub(crate) async fn checkout(
        &self,
        pool: &Arc<EndpointPool>,
        timeout: Duration,
        fresh: bool,
    ) -> Result<Conn, ConnectError> {
        match pool.protocol {
            BackendProtocol::Http1 => {
                if !fresh {
                    while let Some(mut sender) = pool.take_idle() {
                        // Given back as its response body ended, a
                        // connection may not have noticed yet that it can
                        // take the next request: a moment's wait. One that
                        // closes instead is forgotten.
                        if sender.is_ready() || sender.ready().await.is_ok() {
                            return Ok(Conn::H1 { sender, reused: true });
                        }
                    }
                }
                let sender = self.connect_h1(pool.addr, timeout).await?;
                Ok(Conn::H1 { sender, reused: false })
            }
            BackendProtocol::H2c => {
                if !fresh {
                    if let Some(sender) = pool.shared_h2() {
                        return Ok(Conn::H2 { sender, reused: true });
                    }
                }
                // One connect at a time per endpoint; others wait for it and
                // share the connection.
                let _connecting = pool.h2_connect.lock().await;
                if !fresh {
                    if let Some(sender) = pool.shared_h2() {
                        return Ok(Conn::H2 { sender, reused: true });
                    }
                }
                let stream = self.tcp(pool.addr, timeout).await?;
                let mut builder = http2::Builder::new(TokioExecutor::new());
                builder.timer(TokioTimer::new()).keep_alive_interval(Duration::from_secs(30));
                let (sender, conn) = builder
                    .handshake(TokioIo::new(stream))
                    .await
                    .map_err(|source| ConnectError::Handshake { addr: pool.addr, source })?;
                let addr = pool.addr;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%addr, error = %e, "h2c upstream connection ended");
                    }
                });
                *pool.h2.lock().unwrap_or_else(|p| p.into_inner()) = Some(sender.clone());
                Ok(Conn::H2 { sender, reused: false })
            }
        }
    }

    /// A new HTTP/1.1 connection, not pooled (upgrades take it over).
    pub(crate) async fn connect_h1(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<http1::SendRequest<Body>, ConnectError> {
        let stream = self.tcp(addr, timeout).await?;
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ConnectError::Handshake { addr, source })?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(%addr, error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    pub(crate) async fn tcp(&self, addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ConnectError> {
        let stream = match tokio::time::timeout(timeout, self.connector.connect(addr)).await {
            Err(_) => return Err(ConnectError::Timeout(addr)),
            Ok(Err(source)) => return Err(ConnectError::Io { addr, source }),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

impl EndpointPool {
    fn shared_h2(&self) -> Option<http2::SendRequest<Body>> {
        self.h2.lock().unwrap_or_else(|p| p.into_inner()).as_ref().filter(|s| !s.is_closed()).cloned()
    }

    fn take_idle(&self) -> Option<http1::SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Too old (the oldest are first) or closed: forgotten.
        let now = Instant::now();
        let stale = idle.iter().take_while(|(since, _)| now.duration_since(*since) >= MAX_IDLE).count();
        idle.drain(..stale);
        idle.retain(|(_, sender)| !sender.is_closed());
        // The newest that is ready (the likeliest to still be open), else
        // the newest: one given back a moment ago may not have noticed
        // yet that its response is over, and waiting for it would be a
        // wake-up more, maybe from another worker thread.
        let i = idle.iter().rposition(|(_, sender)| sender.is_ready()).or_else(|| idle.len().checked_sub(1))?;
        Some(idle.remove(i).1)
    }

    /// Puts an HTTP/1.1 connection back, once its response body has been
    /// read to the end (the response body does this as it ends; see
    /// `proxy::TimedBody`). No task and no wait: `checkout` waits, if it
    /// must, for the connection to be ready for the next request, and
    /// forgets it if it closes instead.
    pub(crate) fn give_back(&self, sender: http1::SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_PER_ENDPOINT {
            idle.push((Instant::now(), sender));
        }
    }
}

impl EndpointPool {
    /// The newest idle fast-path connection not older than `MAX_IDLE`.
    pub(crate) fn take_raw(&self) -> Option<TcpStream> {
        let mut idle = self.idle_raw.lock().unwrap_or_else(|p| p.into_inner());
        let (since, _) = idle.first()?;
        let now = Instant::now();
        if now.duration_since(*since) >= MAX_IDLE {
            let stale = idle.iter().take_while(|(since, _)| now.duration_since(*since) >= MAX_IDLE).count();
            idle.drain(..stale);
        }
        idle.pop().map(|(_, s)| s)
    }

    /// Puts a fast-path connection back once its response has been read
    /// to the end.
    pub(crate) fn give_back_raw(&self, stream: TcpStream) {
        let mut idle = self.idle_raw.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_PER_ENDPOINT {
            idle.push((Instant::now(), stream));
        }
    }
}

/// Counts a request in flight at an endpoint until dropped (when the
/// response body ends or is abandoned).
pub(crate) struct InFlight(Arc<EndpointPool>);

impl InFlight {
    pub(crate) fn new(pool: Arc<EndpointPool>) -> InFlight {
        pool.inflight.fetch_add(1, Relaxed);
        InFlight(pool)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Relaxed);
    }
}

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pools").field("endpoints", &self.map.read().map(|m| m.len()).unwrap_or(0)).finish()
    }
}
