//! The proxy's loop: Services and EndpointSlices from reflectors; on any
//! change, one snapshot and one sync of the data plane (changes that arrive
//! during a sync are picked up together by the next one); the health check
//! and host node port listeners follow the same snapshot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use svcnet_client::{Api, Client, Reflector, ReflectorConfig, Store};
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinHandle;

use crate::listeners::{HealthChecks, HostNodePorts};
use crate::metrics::Metrics;
use crate::{DataPlane, NodeEnv, NodeFacts, VirtualService};

/// Which data plane programs the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Nftables,
    Iptables,
    /// The userspace proxy, round-robin or least-connections.
    Userspace(crate::userspace::Balance),
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Nftables => "nftables",
            Mode::Iptables => "iptables",
            Mode::Userspace(_) => "userspace",
        }
    }

    /// `nftables`, `iptables`, `userspace` (round-robin) or
    /// `userspace-lc` (least connections).
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s {
            "nftables" => Ok(Mode::Nftables),
            "iptables" => Ok(Mode::Iptables),
            "userspace" | "userspace-rr" => Ok(Mode::Userspace(crate::userspace::Balance::RoundRobin)),
            "userspace-lc" => Ok(Mode::Userspace(crate::userspace::Balance::LeastConnections)),
            other => Err(format!("{other:?} is not a proxy mode (nftables, iptables, userspace, userspace-lc)")),
        }
    }
}

#[derive(Clone)]
pub struct ProxyConfig {
    pub env: NodeEnv,
    pub mode: Mode,
    /// Forward `127.0.0.1:<nodePort>` on the host to this node (one node
    /// of a sandbox does this).
    pub host_node_ports: bool,
    /// Where `/metrics`, `/healthz` and `/proxy` (what is programmed, as
    /// JSON) are served; port 0 picks one.
    pub metrics: Option<SocketAddr>,
    /// Told what a kube-proxy would log: the first sync, failed syncs and
    /// the recovery from them (the agent keeps it as the pod's log).
    pub log: Option<LogSink>,
}

/// Where a proxy's log lines go.
pub type LogSink = Arc<dyn Fn(String) + Send + Sync>;

type Describe =
    Box<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<VirtualService>> + Send>> + Send + Sync>;

/// A running proxy.
pub struct Proxy {
    tasks: Vec<JoinHandle<()>>,
    metrics_addr: Option<SocketAddr>,
    stop: Arc<Notify>,
    done: Arc<Notify>,
    stopped: Arc<std::sync::atomic::AtomicBool>,
}

struct Shared {
    metrics: Metrics,
    describe: Mutex<Option<Describe>>,
}

impl Proxy {
    pub async fn start(client: Client, cfg: ProxyConfig) -> std::io::Result<Proxy> {
        let shared = Arc::new(Shared { metrics: Metrics::new(cfg.mode.name()), describe: Mutex::new(None) });
        let mut tasks = Vec::new();
        let metrics_addr = match cfg.metrics {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr).await?;
                let addr = listener.local_addr()?;
                tasks.push(tokio::spawn(serve_http(listener, shared.clone())));
                Some(addr)
            }
            None => None,
        };
        let services = Reflector::new(Api::<Service>::all(client.clone()), ReflectorConfig::default());
        let slices = Reflector::new(Api::<EndpointSlice>::all(client.clone()), ReflectorConfig::default());
        // The node's own object, for its zone label (topology hints).
        let nodes = Reflector::new(
            Api::<Node>::all(client.clone()),
            ReflectorConfig::default().fields(&format!("metadata.name={}", cfg.env.node_name)),
        );
        let changed = Arc::new(Notify::new());
        let (svc_store, slice_store, node_store) = (services.store(), slices.store(), nodes.store());
        for mut sub in [Either::A(services.subscribe()), Either::B(slices.subscribe())] {
            let changed = changed.clone();
            let shared = shared.clone();
            tasks.push(tokio::spawn(async move {
                while sub.recv().await {
                    shared.metrics.queued();
                    changed.notify_one();
                }
            }));
        }
        // The Node changes every heartbeat; only its zone matters here.
        let mut node_sub = nodes.subscribe();
        let (node_changed, node_seen) = (changed.clone(), node_store.clone());
        tasks.push(tokio::spawn(async move {
            let mut last: Option<Option<String>> = None;
            while node_sub.recv().await.is_some() {
                let zone = node_zone(&node_seen);
                if last.as_ref() != Some(&zone) {
                    last = Some(zone);
                    node_changed.notify_one();
                }
            }
        }));
        tasks.push(tokio::spawn(services.run()));
        tasks.push(tokio::spawn(slices.run()));
        tasks.push(tokio::spawn(nodes.run()));
        let stop = Arc::new(Notify::new());
        let done = Arc::new(Notify::new());
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let run = Runner {
            cfg: cfg.clone(),
            shared: shared.clone(),
            services: svc_store,
            slices: slice_store,
            nodes: node_store,
            changed,
        };
        let (stop2, done2, stopped2) = (stop.clone(), done.clone(), stopped.clone());
        tasks.push(tokio::spawn(async move {
            match cfg.mode {
                Mode::Nftables => run.run(crate::nft::NftProxy::new(cfg.env.clone()), stop2).await,
                Mode::Iptables => run.run(crate::iptables::IptablesProxy::new(cfg.env.clone()), stop2).await,
                Mode::Userspace(b) => run.run(crate::userspace::UserspaceProxy::new(cfg.env.clone(), b), stop2).await,
            }
            stopped2.store(true, std::sync::atomic::Ordering::SeqCst);
            done2.notify_waiters();
        }));
        Ok(Proxy { tasks, metrics_addr, stop, done, stopped })
    }

    /// Where `/metrics`, `/healthz` and `/proxy` are served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Stops watching and removes what the data plane programmed; the
    /// metrics address is released when this returns.
    pub async fn shutdown(self) {
        let done = self.done.notified();
        self.stop.notify_one();
        if !self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
        }
        // Wait for the aborted tasks to be dropped, so the metrics port is
        // free again when this returns (a restarted proxy binds it anew).
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

/// The node's zone label, from the store of its own Node object.
fn node_zone(nodes: &Store<Node>) -> Option<String> {
    nodes.state().first().and_then(|n| {
        n.metadata.labels.as_ref().and_then(|l| l.get(crate::ZONE_LABEL)).filter(|z| !z.is_empty()).cloned()
    })
}

/// The two subscriptions, with one way to wait on either.
enum Either {
    A(svcnet_client::Subscription<Service>),
    B(svcnet_client::Subscription<EndpointSlice>),
}

impl Either {
    /// True for every notification; false once the reflector is gone.
    async fn recv(&mut self) -> bool {
        match self {
            Either::A(s) => s.recv().await.is_some(),
            Either::B(s) => s.recv().await.is_some(),
        }
    }
}

struct Runner {
    cfg: ProxyConfig,
    shared: Arc<Shared>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    nodes: Store<Node>,
    changed: Arc<Notify>,
}

fn is_synced<K>(s: &Store<K>) -> bool {
    s.is_synced()
}

impl Runner {
    async fn run<D: DataPlane + Sync>(self, plane: D, stop: Arc<Notify>) {
        let plane = Arc::new(Mutex::new(plane));
        {
            let p = plane.clone();
            *self.shared.describe.lock().await = Some(Box::new(move || {
                let p = p.clone();
                Box::pin(async move { p.lock().await.describe().await })
            }));
        }
        let mut facts = NodeFacts {
            node_name: self.cfg.env.node_name.clone(),
            zone: None,
            node_ips: self.cfg.env.node_ips.clone(),
            // Which sources count as this node's own pods: the node's pod
            // CIDR (kube-proxy's `--detect-local-mode=NodeCIDR`). With the
            // whole cluster CIDR, a pod on another node reaching this
            // node's address for an externalTrafficPolicy=Local Service
            // would be sent, unmasqueraded, to an endpoint on its own node,
            // whose reply then bypasses this node's conntrack.
            cluster_cidr: if self.cfg.env.pod_cidr.is_empty() {
                self.cfg.env.cluster_cidr.clone()
            } else {
                self.cfg.env.pod_cidr.clone()
            },
            service_cidr: self.cfg.env.service_cidr.clone(),
        };
        let mut health = HealthChecks::default();
        let mut host_ports = self.cfg.host_node_ports.then(|| HostNodePorts::new(self.cfg.env.node_ips[0]));
        let mut backoff = Duration::from_millis(100);
        let log = |line: String| {
            if let Some(sink) = &self.cfg.log {
                sink(line);
            }
        };
        log(format!("Using {} proxier on node {}", self.cfg.mode.name(), self.cfg.env.node_name));
        // Whether the first sync, or the one after failures, is still to be logged.
        let mut report_next_success = true;
        if let Err(e) = crate::iptables::ensure_service_route(&self.cfg.env).await {
            tracing::warn!(error = %e, "routing the service CIDR inside the node failed");
        }
        loop {
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = stop.notified() => break,
            }
            if !(is_synced(&self.services) && is_synced(&self.slices) && is_synced(&self.nodes)) {
                continue;
            }
            facts.zone = node_zone(&self.nodes);
            let seen = jiff::Timestamp::now();
            let snap = crate::snapshot(&self.services.state(), &self.slices.state(), &facts);
            let started = Instant::now();
            let result = plane.lock().await.sync(&snap).await;
            let took = started.elapsed();
            let endpoints = snap.services.iter().map(|s| s.endpoints.len()).sum();
            self.shared.metrics.synced(took, result.is_ok(), &[seen], snap.services.len(), endpoints);
            match result {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    tracing::debug!(services = snap.services.len(), ?took, "proxy rules synced");
                    if std::mem::take(&mut report_next_success) {
                        log(format!(
                            "Synced proxy rules: {} service ports, {endpoints} endpoints, in {:.1} ms",
                            snap.services.len(),
                            took.as_secs_f64() * 1e3
                        ));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "syncing proxy rules failed; retrying");
                    log(format!("Syncing proxy rules failed, retrying in {backoff:?}: {e}"));
                    report_next_success = true;
                    let changed = self.changed.clone();
                    let wait = backoff;
                    tokio::spawn(async move {
                        tokio::time::sleep(wait).await;
                        changed.notify_one();
                    });
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
            health.sync(&snap, &self.cfg.env.sockets).await;
            if let Some(h) = host_ports.as_mut() {
                h.sync(&snap, &self.cfg.env.sockets).await;
            }
        }
        if let Err(e) = plane.lock().await.cleanup().await {
            tracing::warn!(error = %e, "removing proxy rules failed");
        }
    }
}

async fn serve_http(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut conn, _)) = listener.accept().await else { continue };
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await else { return };
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (status, ctype, body) = match path.as_str() {
                "/metrics" => ("200 OK", "text/plain; version=0.0.4", shared.metrics.render()),
                "/healthz" | "/livez" => {
                    let (ok, body) = shared.metrics.healthz(Duration::from_secs(60));
                    (if ok { "200 OK" } else { "503 Service Unavailable" }, "application/json", body)
                }
                "/proxy" => {
                    let d = shared.describe.lock().await;
                    let list = match d.as_ref() {
                        Some(f) => f().await,
                        None => Vec::new(),
                    };
                    ("200 OK", "application/json", serde_json::to_string(&list).unwrap_or_default())
                }
                _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
        });
    }
}
