//! [`DnsServer`]: the I/O around [`handle`]. UDP runs on plain OS threads,
//! one per worker, each blocking on its own `SO_REUSEPORT` socket (the
//! kernel spreads clients over them): no executor between the packet and
//! the answer. TCP, forwarding and the metrics endpoint run on tokio.
//!
//! The zone is a [`Compiled`] view behind a lock that workers touch only
//! when its generation counter moves; [`DnsServer::publish`] swaps in a new
//! one, which every worker picks up with its next packet.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::answer::Response;
use crate::compiled::Compiled;
use crate::config::DnsConfig;
use crate::forward::Forwarder;
use crate::handler::{Outcome, Served, Transport, handle, write_response};
use crate::metrics::{Metrics, Via};
use crate::view::ZoneView;
use crate::wire::Rcode;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("binding {addr} failed")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("starting a UDP worker thread failed")]
    Thread(#[source] std::io::Error),
}

/// The compiled view workers answer from.
pub(crate) struct Current {
    slot: RwLock<Arc<Compiled>>,
    generation: AtomicU64,
}

impl Current {
    pub(crate) fn load(&self) -> Arc<Compiled> {
        // The lock only guards an Arc swap: a poisoned lock is still sound.
        self.slot.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn store(&self, compiled: Arc<Compiled>) {
        *self.slot.write().unwrap_or_else(|p| p.into_inner()) = compiled;
        self.generation.fetch_add(1, Relaxed);
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }
}

pub(crate) struct Shared {
    pub current: Current,
    pub forwarder: Arc<Forwarder>,
    pub metrics: Arc<Metrics>,
    pub max_udp: u16,
    pub recursion: bool,
}

impl Shared {
    /// Compiles `view` and makes it the one answered from.
    pub fn publish(&self, view: Arc<ZoneView>) {
        let started = Instant::now();
        let compiled = Compiled::new(view, self.recursion);
        self.metrics.view_build.observe(started.elapsed());
        self.install(Arc::new(compiled));
    }

    /// Makes an already compiled view the one answered from: readers
    /// switch with their next query.
    pub fn install(&self, compiled: Arc<Compiled>) {
        self.metrics.view_names.store(compiled.view.len() as u64, Relaxed);
        self.metrics.view_serial.store(compiled.view.serial().into(), Relaxed);
        self.current.store(compiled);
    }

    pub fn view(&self) -> Arc<ZoneView> {
        self.current.load().view.clone()
    }
}

/// A running DNS server. Dropping it without [`DnsServer::shutdown`] leaves
/// the UDP threads to notice within a quarter second.
pub struct DnsServer {
    pub(crate) shared: Arc<Shared>,
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    stop: Arc<AtomicBool>,
    shutdown: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    pub(crate) tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Serves a fixed view: for tests, benchmarks, and a zone without an API
/// server.
pub async fn serve_static(config: &DnsConfig, view: ZoneView) -> Result<DnsServer, ServeError> {
    DnsServer::bind(config, view).await
}

/// How often a blocked UDP worker wakes up to see whether to stop.
const STOP_POLL: Duration = Duration::from_millis(250);

impl DnsServer {
    /// Binds the listeners and starts answering from `view`. Must be
    /// called inside a tokio runtime.
    pub async fn bind(config: &DnsConfig, view: ZoneView) -> Result<DnsServer, ServeError> {
        let zone = config.zone_config()?;
        let workers = config.workers();
        let (sockets, tcp) = bind_listeners(config.listen, workers)?;
        let udp_addr = sockets[0].local_addr().map_err(|source| ServeError::Bind { addr: config.listen, source })?;
        let tcp_addr = tcp.local_addr().map_err(|source| ServeError::Bind { addr: config.listen, source })?;
        // CoreDNS's label: `dns://:53` for every address, else `dns://ip:port`.
        let server_label = if config.listen.ip().is_unspecified() {
            format!("dns://:{}", udp_addr.port())
        } else {
            format!("dns://{}", udp_addr)
        };
        let metrics = Arc::new(Metrics::new(server_label, zone.zone.to_string(), workers));
        let upstreams: Vec<SocketAddr> = config
            .resolved_upstreams()
            .into_iter()
            .filter(|&u| {
                // Forwarding to ourselves would loop until the forward
                // limit; CoreDNS's `loop` plugin guards the same way.
                let me = u.port() == udp_addr.port()
                    && (u.ip() == udp_addr.ip() || (udp_addr.ip().is_unspecified() && u.ip().is_loopback()));
                if me {
                    tracing::warn!(upstream = %u, "ignoring an upstream that is this server");
                }
                !me
            })
            .collect();
        let recursion = !upstreams.is_empty();
        let forwarder = Arc::new(Forwarder::new(config, upstreams, metrics.clone()));
        let initial = Arc::new(Compiled::new(Arc::new(view), recursion));
        let shared = Arc::new(Shared {
            current: Current { slot: RwLock::new(initial), generation: AtomicU64::new(0) },
            forwarder,
            metrics,
            max_udp: config.max_udp_payload.max(512),
            recursion,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let runtime = tokio::runtime::Handle::current();
        let mut threads = Vec::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            let (shared, stop, runtime) = (shared.clone(), stop.clone(), runtime.clone());
            let thread = std::thread::Builder::new()
                .name(format!("dns-udp-{i}"))
                .spawn(move || {
                    crate::udp::Worker { socket: Arc::new(socket), shared, index: i, runtime, stop }.run();
                })
                .map_err(ServeError::Thread)?;
            threads.push(thread);
        }
        let mut tasks = vec![tokio::spawn(tcp_accept(tcp, shared.clone(), config.clone(), shutdown_rx.clone()))];
        let mut metrics_addr = None;
        if let Some(addr) = config.metrics {
            let listener = TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
            metrics_addr = listener.local_addr().ok();
            tasks.push(tokio::spawn(crate::http::serve(listener, shared.clone(), shutdown_rx)));
        }
        tracing::info!(udp = %udp_addr, tcp = %tcp_addr, workers, zone = %zone.zone, "DNS server listening");
        Ok(DnsServer { shared, udp_addr, tcp_addr, metrics_addr, stop, shutdown, threads, tasks })
    }

    /// Answers on more sockets too, bound by the caller: the sandbox binds
    /// them inside each node's network namespace, so pods reach the server
    /// through the kube-dns Service as they reach CoreDNS.
    pub fn listen_also(
        &mut self,
        udp: std::net::UdpSocket,
        tcp: TcpListener,
        config: &DnsConfig,
    ) -> std::io::Result<()> {
        udp.set_nonblocking(false)?;
        udp.set_read_timeout(Some(STOP_POLL))?;
        let index = self.threads.len();
        let (shared, stop, runtime) = (self.shared.clone(), self.stop.clone(), tokio::runtime::Handle::current());
        let thread = std::thread::Builder::new().name(format!("dns-udp-{index}")).spawn(move || {
            crate::udp::Worker { socket: Arc::new(udp), shared, index, runtime, stop }.run();
        })?;
        self.threads.push(thread);
        let rx = self.shutdown.subscribe();
        self.tasks.push(tokio::spawn(tcp_accept(tcp, self.shared.clone(), config.clone(), rx)));
        Ok(())
    }

    /// Swaps in a new view; queries after this returns are answered
    /// from it.
    pub fn publish(&self, view: ZoneView) {
        self.shared.publish(Arc::new(view));
    }

    /// The view being served.
    pub fn view(&self) -> Arc<ZoneView> {
        self.shared.view()
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// Stops every listener and waits for the UDP threads.
    pub async fn shutdown(mut self) {
        self.stop.store(true, Relaxed);
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// One UDP socket per worker on the same port, and a TCP listener on it
/// too. With port 0 the first UDP socket picks the port; if TCP cannot
/// have it, another is tried.
fn bind_listeners(addr: SocketAddr, workers: usize) -> Result<(Vec<std::net::UdpSocket>, TcpListener), ServeError> {
    let bind_err = |addr, source| ServeError::Bind { addr, source };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let first = bind_udp(addr).map_err(|e| bind_err(addr, e))?;
        let port = first.local_addr().map_err(|e| bind_err(addr, e))?.port();
        let at = SocketAddr::new(addr.ip(), port);
        let tcp = match std::net::TcpListener::bind(at) {
            Ok(l) => l,
            Err(e) if addr.port() == 0 && attempts < 20 => {
                tracing::debug!(%at, error = %e, "TCP port taken; picking another");
                continue;
            }
            Err(e) => return Err(bind_err(at, e)),
        };
        tcp.set_nonblocking(true).map_err(|e| bind_err(at, e))?;
        let tcp = TcpListener::from_std(tcp).map_err(|e| bind_err(at, e))?;
        let mut sockets = vec![first];
        for _ in 1..workers {
            sockets.push(bind_udp(at).map_err(|e| bind_err(at, e))?);
        }
        return Ok((sockets, tcp));
    }
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    // Bursts queue in the kernel rather than being dropped (best effort:
    // the kernel caps it at net.core.rmem_max).
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    socket.set_read_timeout(Some(STOP_POLL))?;
    Ok(socket.into())
}

fn family(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none())
}

async fn tcp_accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    config: DnsConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let connections = Arc::new(Semaphore::new(config.max_tcp_connections.max(1)));
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = until_shutdown(&mut shutdown) => return,
        };
        // Over the limit the connection is closed at once: clients retry.
        let Ok(permit) = connections.clone().try_acquire_owned() else { continue };
        let shared = shared.clone();
        let idle = config.tcp_idle_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = tcp_connection(stream, peer, &shared, idle).await {
                tracing::trace!(%peer, error = %e, "TCP connection ended");
            }
        });
    }
}

/// Answers length-prefixed queries on one connection, in order, until the
/// client closes it or stays idle too long.
async fn tcp_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    idle: Duration,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let via = Via { tcp: true, ipv6: family(peer.ip()) };
    let mut msg = Vec::new();
    let mut out = Vec::with_capacity(4096);
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(idle, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        msg.resize(u16::from_be_bytes(len) as usize, 0);
        match tokio::time::timeout(idle, stream.read_exact(&mut msg)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        let started = Instant::now();
        let compiled = shared.current.load();
        let served = match handle(&compiled, &msg, Transport::Tcp, shared.max_udp, &mut out) {
            Outcome::Reply(served) => served,
            Outcome::Drop => {
                shared.metrics.shared_shard().dropped();
                continue;
            }
            Outcome::Forward(job) => match shared.forwarder.try_start() {
                Some(_permit) => shared.forwarder.complete(&job, &mut out).await,
                None => {
                    write_response(&mut out, &job.echo(), &Response::error(Rcode::REFUSED));
                    Served { qtype: job.qtype, rcode: Rcode::REFUSED, local: false }
                }
            },
        };
        let mut framed = Vec::with_capacity(out.len() + 2);
        framed.extend_from_slice(&(out.len().min(65535) as u16).to_be_bytes());
        framed.extend_from_slice(&out[..out.len().min(65535)]);
        stream.write_all(&framed).await?;
        shared.metrics.shared_shard().record(served, via, started.elapsed());
    }
}

/// Resolves once shutdown is signalled (or the server is gone).
pub(crate) async fn until_shutdown(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it at once.
    let _ = shutdown.wait_for(|s| *s).await.is_ok();
}
