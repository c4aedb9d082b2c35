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
//!   Service without any route into the sandbox. TCP connections are
//!   relayed as they are; UDP datagrams go through one socket inside the
//!   node per host client (its session, ended after 30 s without traffic
//!   either way), which carries the node port's replies back to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use svcnet_netns::NetnsSockets;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::model::{Protocol, Snapshot};

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

/// Forwarders from the host's 127.0.0.1 to a node's node ports, TCP and
/// UDP (a node port number may serve both protocols).
pub struct HostNodePorts {
    node_ip: Ipv4Addr,
    forwarders: BTreeMap<(Protocol, u16), JoinHandle<()>>,
    udp_idle: Duration,
}

/// How long a UDP client's session lives without a datagram either way.
const UDP_IDLE: Duration = Duration::from_secs(30);

/// At most this many UDP clients per node port at once; datagrams of
/// further clients are dropped until a session idles out.
const UDP_MAX_SESSIONS: usize = 1024;

impl HostNodePorts {
    pub fn new(node_ip: Ipv4Addr) -> Self {
        HostNodePorts { node_ip, forwarders: BTreeMap::new(), udp_idle: UDP_IDLE }
    }

    /// The idle timeout of UDP client sessions (30 s by default).
    #[cfg(test)]
    fn with_udp_idle(mut self, idle: Duration) -> Self {
        self.udp_idle = idle;
        self
    }

    /// One forwarder per TCP and per UDP node port in the snapshot.
    pub async fn sync(&mut self, snap: &Snapshot, sockets: &NetnsSockets) {
        let wanted: BTreeSet<(Protocol, u16)> = snap
            .services
            .iter()
            .filter(|s| matches!(s.protocol, Protocol::Tcp | Protocol::Udp))
            .filter_map(|s| s.node_port.map(|p| (s.protocol, p)))
            .collect();
        self.forwarders.retain(|key, task| {
            let keep = wanted.contains(key);
            if !keep {
                // Aborting drops the listener and, with it, every UDP
                // session's socket.
                task.abort();
            }
            keep
        });
        for (protocol, port) in wanted {
            if self.forwarders.contains_key(&(protocol, port)) {
                continue;
            }
            let target = SocketAddr::from((self.node_ip, port));
            let task = match protocol {
                Protocol::Tcp => match tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
                    Ok(l) => tokio::spawn(forward(l, target, sockets.clone())),
                    Err(e) => {
                        tracing::warn!(port, error = %e, "cannot forward TCP node port from 127.0.0.1");
                        continue;
                    }
                },
                _ => match UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).await {
                    Ok(s) => tokio::spawn(forward_udp(s, target, sockets.clone(), self.udp_idle)),
                    Err(e) => {
                        tracing::warn!(port, error = %e, "cannot forward UDP node port from 127.0.0.1");
                        continue;
                    }
                },
            };
            self.forwarders.insert((protocol, port), task);
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

/// Large enough for any datagram.
const DATAGRAM: usize = 65536;

/// One host client's session: a socket in the node's namespace connected
/// to the node port, and when either side last sent.
struct UdpSession {
    upstream: UdpSocket,
    last: std::sync::Mutex<Instant>,
}

impl UdpSession {
    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Relays the datagrams of each client of `127.0.0.1:<nodePort>` through
/// its own socket in the node's namespace to `target`, and the replies
/// back to that client. Sessions live in a [`JoinSet`] owned by this task,
/// so aborting it closes every session's socket too.
async fn forward_udp(listener: UdpSocket, target: SocketAddr, sockets: NetnsSockets, idle: Duration) {
    let listener = Arc::new(listener);
    let mut sessions: HashMap<SocketAddr, Arc<UdpSession>> = HashMap::new();
    let mut tasks: JoinSet<SocketAddr> = JoinSet::new();
    let mut owners: HashMap<tokio::task::Id, SocketAddr> = HashMap::new();
    let mut buf = vec![0u8; DATAGRAM];
    loop {
        let (n, client) = tokio::select! {
            r = listener.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(%target, error = %e, "host UDP node port: receive failed");
                    continue;
                }
            },
            Some(done) = tasks.join_next_with_id() => {
                let id = match &done {
                    Ok((id, _)) => *id,
                    Err(e) => e.id(),
                };
                if let Some(client) = owners.remove(&id) {
                    sessions.remove(&client);
                }
                continue;
            }
        };
        let session = match sessions.get(&client) {
            Some(s) => s.clone(),
            None => {
                if sessions.len() >= UDP_MAX_SESSIONS {
                    tracing::warn!(%target, "host UDP node port: too many sessions, dropping");
                    continue;
                }
                let upstream = match sockets.udp_bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(%target, error = %e, "host UDP node port: socket in the node failed");
                        continue;
                    }
                };
                if let Err(e) = upstream.connect(target).await {
                    tracing::warn!(%target, error = %e, "host UDP node port: connect failed");
                    continue;
                }
                let session = Arc::new(UdpSession { upstream, last: std::sync::Mutex::new(Instant::now()) });
                sessions.insert(client, session.clone());
                let handle = tasks.spawn(udp_replies(session.clone(), listener.clone(), client, idle));
                owners.insert(handle.id(), client);
                session
            }
        };
        session.touch();
        // A datagram that cannot leave within a second is dropped, as a
        // full link would drop it, without holding up other clients long.
        match tokio::time::timeout(Duration::from_secs(1), session.upstream.send(&buf[..n])).await {
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => tracing::debug!(%target, %client, error = %e, "host UDP node port: send failed"),
        }
    }
}

/// Carries the node port's replies back to `client` until the session
/// idles out or its socket fails (the node refused: ICMP port unreachable).
async fn udp_replies(
    session: Arc<UdpSession>,
    listener: Arc<UdpSocket>,
    client: SocketAddr,
    idle: Duration,
) -> SocketAddr {
    let mut buf = vec![0u8; DATAGRAM];
    loop {
        let expires = session.last() + idle;
        if expires <= Instant::now() {
            break;
        }
        let n = tokio::select! {
            r = session.upstream.recv(&mut buf) => match r {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(%client, error = %e, "host UDP node port: session ended");
                    break;
                }
            },
            () = tokio::time::sleep_until(expires) => continue,
        };
        session.touch();
        if let Err(e) = listener.send_to(&buf[..n], client).await {
            tracing::debug!(%client, error = %e, "host UDP node port: reply failed");
        }
    }
    client
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Affinity, ServicePort};

    fn udp_node_port(port: u16) -> Snapshot {
        Snapshot {
            node_name: "node1".into(),
            services: vec![ServicePort {
                namespace: "default".into(),
                name: "dns".into(),
                port_name: String::new(),
                protocol: Protocol::Udp,
                cluster_ip: Ipv4Addr::new(10, 96, 0, 53),
                port: 53,
                node_port: Some(port),
                external_ips: vec![],
                load_balancer_ips: vec![],
                load_balancer_source_ranges: vec![],
                affinity: Affinity::None,
                external_local: false,
                internal_local: false,
                health_check_node_port: None,
                endpoints: vec![],
            }],
            ..Snapshot::default()
        }
    }

    async fn ask(client: &UdpSocket, port: u16, what: &str) -> Option<String> {
        client.send_to(what.as_bytes(), (Ipv4Addr::LOCALHOST, port)).await.ok()?;
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(2), client.recv(&mut buf)).await.ok()?.ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// The "node" is 127.0.0.2 in this very namespace: the forwarder's
    /// 127.0.0.1:<port> and the node port 127.0.0.2:<port> do not clash.
    #[tokio::test]
    async fn udp_node_ports_are_relayed_per_client_and_closed_with_the_service() {
        let Ok(sockets) = NetnsSockets::enter(std::path::Path::new("/proc/self/ns/net")) else {
            eprintln!("skipped: cannot enter a network namespace");
            return;
        };
        let node = Ipv4Addr::new(127, 0, 0, 2);
        let port = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        // The node port answers with what it got and whom from.
        let backend = UdpSocket::bind((node, port)).await.unwrap();
        let echo = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = backend.recv_from(&mut buf).await {
                let answer = format!("{} from {from}", String::from_utf8_lossy(&buf[..n]));
                let _ = backend.send_to(answer.as_bytes(), from).await;
            }
        });
        let mut host = HostNodePorts::new(node).with_udp_idle(Duration::from_millis(400));
        host.sync(&udp_node_port(port), &sockets).await;

        let (a, b) = (UdpSocket::bind("127.0.0.1:0").await.unwrap(), UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let first = ask(&a, port, "a1").await.expect("no answer through 127.0.0.1");
        assert!(first.starts_with("a1 from "), "{first}");
        let upstream = |answer: &str| answer.rsplit(' ').next().unwrap().to_string();
        // One session per client, kept while it talks.
        let again = ask(&a, port, "a2").await.unwrap();
        assert_eq!(upstream(&again), upstream(&first), "a client's datagrams share its session");
        let other = ask(&b, port, "b1").await.unwrap();
        assert!(other.starts_with("b1 "), "{other}");
        assert_ne!(upstream(&other), upstream(&first), "each client has its own session");
        // An idle session expires; the next datagram opens another.
        tokio::time::sleep(Duration::from_millis(900)).await;
        let later = ask(&a, port, "a3").await.unwrap();
        assert_ne!(upstream(&later), upstream(&first), "the idle session was not closed");

        // The node port goes: the host socket is closed.
        host.sync(&Snapshot::default(), &sockets).await;
        let mut freed = false;
        for _ in 0..50 {
            if std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                freed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(freed, "127.0.0.1:{port} still bound after the node port went");
        echo.abort();
    }
}
