//! Listeners the proxy keeps besides its data plane:
//!
//! - health check node ports: for each Service with
//!   externalTrafficPolicy Local, an HTTP server inside the node's
//!   namespace on `healthCheckNodePort` answering `/healthz` with the
//!   number of local endpoints (200 with some, 503 with none), so a load
//!   balancer only sends traffic to nodes that have endpoints — as
//!   kube-proxy does;
//! - host node ports (sandbox only): `127.0.0.1:<nodePort>` in the host's
//!   namespace, forwarded to the node's own address and node port inside
//!   its namespace, so `curl 127.0.0.1:30080` from the host reaches the
//!   Service without any route into the sandbox.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use svcnet_netns::NetnsSockets;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::model::Snapshot;

struct HealthServer {
    local: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

/// The health check servers of a node, one per Local Service.
#[derive(Default)]
pub struct HealthChecks {
    servers: BTreeMap<u16, (String, HealthServer)>,
}

impl HealthChecks {
    /// Opens, updates and closes servers to match the snapshot.
    pub async fn sync(&mut self, snap: &Snapshot, sockets: &NetnsSockets) {
        let mut wanted: BTreeMap<u16, (String, String, usize)> = BTreeMap::new();
        for s in &snap.services {
            if let Some(port) = s.health_check_node_port {
                let entry = wanted.entry(port).or_insert((s.namespace.clone(), s.name.clone(), 0));
                entry.2 = entry.2.max(s.external_endpoints().iter().filter(|e| e.local).count());
            }
        }
        self.servers.retain(|port, (owner, server)| {
            let keep = wanted.get(port).is_some_and(|(ns, name, _)| *owner == format!("{ns}/{name}"));
            if !keep {
                server.task.abort();
            }
            keep
        });
        for (port, (ns, name, count)) in wanted {
            if let Some((_, server)) = self.servers.get(&port) {
                server.local.store(count, Ordering::Relaxed);
                continue;
            }
            let listener = match sockets.tcp_listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(port, service = %format!("{ns}/{name}"), error = %e, "health check node port unavailable");
                    continue;
                }
            };
            let local = Arc::new(AtomicUsize::new(count));
            let task = tokio::spawn(serve_health(listener, ns.clone(), name.clone(), local.clone()));
            self.servers.insert(port, (format!("{ns}/{name}"), HealthServer { local, task }));
        }
    }
}

impl Drop for HealthChecks {
    fn drop(&mut self) {
        for (_, s) in self.servers.values() {
            s.task.abort();
        }
    }
}

async fn serve_health(listener: tokio::net::TcpListener, ns: String, name: String, local: Arc<AtomicUsize>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else { continue };
        let (ns, name, local) = (ns.clone(), name.clone(), local.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            // Any request gets the answer; read what arrives first.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), conn.read(&mut buf)).await;
            let n = local.load(Ordering::Relaxed);
            let body = serde_json::json!({
                "service": { "namespace": ns, "name": name },
                "localEndpoints": n,
                "serviceProxyHealthy": true,
            })
            .to_string();
            let status = if n > 0 { "200 OK" } else { "503 Service Unavailable" };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

/// Forwarders from the host's 127.0.0.1 to a node's node ports.
pub struct HostNodePorts {
    node_ip: Ipv4Addr,
    forwarders: BTreeMap<u16, JoinHandle<()>>,
}

impl HostNodePorts {
    pub fn new(node_ip: Ipv4Addr) -> Self {
        HostNodePorts { node_ip, forwarders: BTreeMap::new() }
    }

    /// One forwarder per TCP node port in the snapshot.
    pub async fn sync(&mut self, snap: &Snapshot, sockets: &NetnsSockets) {
        let wanted: std::collections::BTreeSet<u16> = snap
            .services
            .iter()
            .filter(|s| s.protocol == crate::model::Protocol::Tcp)
            .filter_map(|s| s.node_port)
            .collect();
        self.forwarders.retain(|port, task| {
            let keep = wanted.contains(port);
            if !keep {
                task.abort();
            }
            keep
        });
        for port in wanted {
            if self.forwarders.contains_key(&port) {
                continue;
            }
            let listener = match tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(port, error = %e, "cannot forward node port from 127.0.0.1");
                    continue;
                }
            };
            let target = SocketAddr::from((self.node_ip, port));
            self.forwarders.insert(port, tokio::spawn(forward(listener, target, sockets.clone())));
        }
    }
}

impl Drop for HostNodePorts {
    fn drop(&mut self) {
        for t in self.forwarders.values() {
            t.abort();
        }
    }
}

async fn forward(listener: tokio::net::TcpListener, target: SocketAddr, sockets: NetnsSockets) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else { continue };
        let sockets = sockets.clone();
        tokio::spawn(async move {
            let Ok(socket) = sockets.tcp_socket(false).await else { return };
            let Ok(mut outbound) = socket.connect(target).await else {
                // Refuse the way the node port does: reset.
                let _ = inbound.set_zero_linger();
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        });
    }
}

/// Relays TCP connections accepted inside a namespace (a node's address)
/// to an address in the host's namespace (the API server on 127.0.0.1), so
/// pods reach host services through a Service without a route to the host.
pub fn relay_to_host(listener: tokio::net::TcpListener, target: SocketAddr) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                    let _ = inbound.set_zero_linger();
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    })
}
