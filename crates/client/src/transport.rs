//! The connection to the API server.
//!
//! One HTTP/2 connection carries every request of every clone of a
//! [`Client`](crate::Client), watches included, as client-go does. It is
//! opened on first use and reopened on the next request after it breaks
//! (server restart, network error), so callers never manage connections.
//! If the server does not pick `h2` in ALPN (or the URL is `http://`),
//! requests fall back to HTTP/1.1 over a small pool of connections, one per
//! request in flight.

use std::sync::Mutex as SyncMutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::{Config, ConfigError};
use crate::error::{Error, Result};

type Body = Full<Bytes>;

/// Idle HTTP/1.1 connections kept for reuse.
const MAX_IDLE_HTTP1: usize = 8;

/// A request as the client layer describes it; the transport adds the
/// URI form and `Host` its protocol needs, so a request can be replayed on
/// a new connection.
pub(crate) struct RequestParts {
    pub method: Method,
    /// Path and query below the server URL, starting with `/`.
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Keeps an HTTP/1.1 connection busy until its response body is consumed.
pub(crate) enum Lease {
    Shared,
    Http1(http1::SendRequest<Body>),
}

enum Checkout {
    Http2 {
        generation: u64,
        sender: http2::SendRequest<Body>,
    },
    /// `pooled`: an idle connection the server may have closed meanwhile.
    Http1 {
        sender: http1::SendRequest<Body>,
        pooled: bool,
    },
}

enum Connection {
    Http2(http2::SendRequest<Body>),
    Http1(http1::SendRequest<Body>),
}

struct Slot {
    current: Option<(u64, http2::SendRequest<Body>)>,
    generations: u64,
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

pub(crate) struct Transport {
    scheme: Scheme,
    authority: Authority,
    /// Path prefix of the server URL (e.g. behind a proxy), without a
    /// trailing slash.
    base_path: String,
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    connect_timeout: Duration,
    /// The shared HTTP/2 connection. An async mutex so that concurrent
    /// requests after a break wait for one reconnect instead of racing.
    slot: tokio::sync::Mutex<Slot>,
    http1_only: AtomicBool,
    idle_http1: SyncMutex<Vec<http1::SendRequest<Body>>>,
}

/// The host of a URI without IPv6 brackets.
pub(crate) fn bare_host(uri: &Uri) -> &str {
    let host = uri.host().unwrap_or("");
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

impl Transport {
    pub(crate) fn new(config: &Config) -> Result<Transport, ConfigError> {
        let https = config.server.scheme() == Some(&Scheme::HTTPS);
        let invalid = || ConfigError::UnsupportedServer(config.server.to_string());
        let authority = config.server.authority().cloned().ok_or_else(invalid)?;
        let port = config.server.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            Some((TlsConnector::from(crate::tls::client_config(config)?), crate::tls::server_name(config)?))
        } else {
            None
        };
        Ok(Transport {
            scheme: if https { Scheme::HTTPS } else { Scheme::HTTP },
            authority,
            base_path: config.server.path().trim_end_matches('/').to_string(),
            host: bare_host(&config.server).to_string(),
            port,
            tls,
            connect_timeout: config.connect_timeout,
            slot: tokio::sync::Mutex::new(Slot { current: None, generations: 0 }),
            http1_only: AtomicBool::new(!https || !config.http2),
            idle_http1: SyncMutex::new(Vec::new()),
        })
    }

    /// Sends a request, on a fresh connection if the shared one is broken.
    /// A request that never reached the server, or an idempotent one, is
    /// retried once on a new connection.
    pub(crate) async fn send(&self, req: &RequestParts) -> Result<(Response<Incoming>, Lease)> {
        let idempotent = matches!(req.method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE);
        let mut retried = false;
        loop {
            let error = match self.checkout().await? {
                Checkout::Http2 { generation, mut sender } => {
                    if let Err(e) = sender.ready().await {
                        self.invalidate(generation).await;
                        if retried {
                            return Err(Error::Http(e));
                        }
                        retried = true;
                        continue;
                    }
                    match sender.try_send_request(self.build(req, true)?).await {
                        Ok(resp) => return Ok((resp, Lease::Shared)),
                        Err(mut e) => {
                            let unsent = e.take_message().is_some();
                            if sender.is_closed() {
                                self.invalidate(generation).await;
                            }
                            (unsent, e.into_error())
                        }
                    }
                }
                Checkout::Http1 { mut sender, pooled } => {
                    if let Err(e) = sender.ready().await {
                        // A stale idle connection costs no retry: the pool
                        // is finite and fresh connections are bounded below.
                        if pooled {
                            continue;
                        }
                        if retried {
                            return Err(Error::Http(e));
                        }
                        retried = true;
                        continue;
                    }
                    match sender.try_send_request(self.build(req, false)?).await {
                        Ok(resp) => return Ok((resp, Lease::Http1(sender))),
                        Err(mut e) => (e.take_message().is_some(), e.into_error()),
                    }
                }
            };
            let (unsent, error) = error;
            if retried || !(unsent || idempotent) {
                return Err(Error::Http(error));
            }
            tracing::debug!(error = %error, "request failed on a broken connection; retrying on a new one");
            retried = true;
        }
    }

    /// Returns an HTTP/1.1 connection to the pool once its response has
    /// been read to the end.
    pub(crate) fn release(&self, lease: Lease) {
        if let Lease::Http1(sender) = lease {
            if sender.is_closed() {
                return;
            }
            let mut idle = self.idle_http1.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE_HTTP1 {
                idle.push(sender);
            }
        }
    }

    async fn checkout(&self) -> Result<Checkout> {
        if self.http1_only.load(Ordering::Relaxed) {
            let pooled = {
                let mut idle = self.idle_http1.lock().unwrap_or_else(|p| p.into_inner());
                idle.retain(|s| !s.is_closed());
                idle.pop()
            };
            if let Some(sender) = pooled {
                return Ok(Checkout::Http1 { sender, pooled: true });
            }
            return match self.connect().await? {
                Connection::Http1(sender) => Ok(Checkout::Http1 { sender, pooled: false }),
                // The server offers h2 now (e.g. it was replaced): share it.
                Connection::Http2(sender) => {
                    self.http1_only.store(false, Ordering::Relaxed);
                    let mut slot = self.slot.lock().await;
                    slot.generations += 1;
                    let generation = slot.generations;
                    slot.current = Some((generation, sender.clone()));
                    Ok(Checkout::Http2 { generation, sender })
                }
            };
        }
        let mut slot = self.slot.lock().await;
        if let Some((generation, sender)) = &slot.current {
            if !sender.is_closed() {
                return Ok(Checkout::Http2 { generation: *generation, sender: sender.clone() });
            }
        }
        slot.current = None;
        match self.connect().await? {
            Connection::Http2(sender) => {
                slot.generations += 1;
                let generation = slot.generations;
                slot.current = Some((generation, sender.clone()));
                Ok(Checkout::Http2 { generation, sender })
            }
            Connection::Http1(sender) => {
                tracing::debug!(server = %self.authority, "the API server does not speak HTTP/2; using HTTP/1.1");
                self.http1_only.store(true, Ordering::Relaxed);
                Ok(Checkout::Http1 { sender, pooled: false })
            }
        }
    }

    /// Forgets the shared connection if it is still the one that failed.
    async fn invalidate(&self, generation: u64) {
        let mut slot = self.slot.lock().await;
        if slot.current.as_ref().is_some_and(|(g, _)| *g == generation) {
            slot.current = None;
        }
    }

    async fn connect(&self) -> Result<Connection> {
        let addr = format!("{}:{}", self.host, self.port);
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let tcp = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => return Err(Error::Connect { addr, source }),
            Err(_) => return Err(Error::Timeout(self.connect_timeout)),
        };
        // Requests are small and latency matters more than packet count.
        let _ = tcp.set_nodelay(true);
        let (io, h2): (Box<dyn Io>, bool) = match &self.tls {
            Some((connector, name)) => {
                let handshake = connector.connect(name.clone(), tcp);
                let tls = match tokio::time::timeout(self.connect_timeout, handshake).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(source)) => return Err(Error::Tls { addr, source }),
                    Err(_) => return Err(Error::Timeout(self.connect_timeout)),
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                (Box::new(tls), h2)
            }
            None => (Box::new(tcp), false),
        };
        let io = TokioIo::new(io);
        if h2 {
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                // Pings find a dead peer under a long-lived watch, where
                // TCP alone may not notice for many minutes.
                .keep_alive_interval(Duration::from_secs(30))
                .keep_alive_timeout(Duration::from_secs(20))
                .handshake(io)
                .await?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "HTTP/2 connection to the API server ended");
                }
            });
            Ok(Connection::Http2(sender))
        } else {
            let (sender, conn) = http1::handshake(io).await?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "HTTP/1.1 connection to the API server ended");
                }
            });
            Ok(Connection::Http1(sender))
        }
    }

    fn build(&self, req: &RequestParts, h2: bool) -> Result<Request<Body>> {
        let path = format!("{}{}", self.base_path, req.path_and_query);
        let mut builder = Request::builder().method(req.method.clone());
        if h2 {
            let uri = Uri::builder()
                .scheme(self.scheme.clone())
                .authority(self.authority.clone())
                .path_and_query(path)
                .build()?;
            builder = builder.uri(uri).version(Version::HTTP_2);
        } else {
            builder = builder.uri(path).header(http::header::HOST, self.authority.as_str());
        }
        if let Some(headers) = builder.headers_mut() {
            headers.extend(req.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Ok(builder.body(Full::new(req.body.clone()))?)
    }
}
