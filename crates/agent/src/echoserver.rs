//! The built-in `svcnet/echoserver` image: the backend every Service and
//! Ingress test and benchmark talks to.
//!
//! A container whose image is `svcnet/echoserver` (any tag) runs
//! `svcnet echoserver`, which calls [`run`] with an [`EchoConfig`] read from
//! the environment the agent gives the container ([`EchoConfig::from_env`]):
//!
//! | variable | meaning |
//! | --- | --- |
//! | `SVCNET_POD_NAME`, `SVCNET_POD_NAMESPACE`, `SVCNET_NODE_NAME`, `SVCNET_POD_IP` | echoed back in every answer (unset reads as empty) |
//! | `SVCNET_ECHO_TCP_PORTS` | comma-separated TCP ports answering HTTP, e.g. `8080,9090` |
//! | `SVCNET_ECHO_UDP_PORTS` | comma-separated UDP ports answering datagrams |
//!
//! With neither port list set, the image serves HTTP on TCP 8080, like
//! `registry.k8s.io/echoserver`. Every port listens on `0.0.0.0`, and on
//! `[::]` where the pod has IPv6.
//!
//! # HTTP (every TCP port)
//!
//! HTTP/1.1 with keep-alive, and HTTP/2 over cleartext with prior knowledge
//! (`curl --http2-prior-knowledge`), on the same port. Every request, whatever
//! its method and path, gets `200 OK`; a request body is read and thrown away.
//!
//! By default the answer is `text/plain; charset=utf-8` and its first line is
//! the pod's name and IP, so `curl -s http://svc/ | head -1` tells which pod
//! answered:
//!
//! ```text
//! web-5d8f7-abcde 10.244.1.5
//! namespace: default
//! node: node-1
//! client: 10.244.0.1:51234
//! request: GET /hello?x=1 HTTP/1.1
//! host: web.default.svc
//! body bytes: 0
//! headers:
//!   accept: */*
//!   host: web.default.svc
//!   user-agent: curl/8.5.0
//! ```
//!
//! `client` is the peer address as the pod's socket sees it: after a
//! Service's DNAT it is the real client, after an Ingress it is the proxy.
//!
//! A request whose `Accept` header mentions `application/json` gets one JSON
//! object instead:
//!
//! ```json
//! {"pod":"web-5d8f7-abcde","namespace":"default","node":"node-1","podIP":"10.244.1.5",
//!  "method":"GET","path":"/hello?x=1","host":"web.default.svc","protocol":"HTTP/1.1",
//!  "client":"10.244.0.1:51234","clientIP":"10.244.0.1","bodyBytes":0,
//!  "headers":{"accept":"application/json","host":"web.default.svc"}}
//! ```
//!
//! `host` is the `Host` header, or HTTP/2's `:authority`; `headers` maps each
//! lowercase header name to its value, repeated headers joined with `", "`.
//!
//! Query parameters steer the answer, for tests:
//!
//! | parameter | effect |
//! | --- | --- |
//! | `status=503` | answer with that status code (200–599) instead of 200 |
//! | `delay_ms=250` | wait that long before answering (at most 30000) |
//!
//! A value that is not a number in range gets `400 Bad Request`.
//!
//! # WebSocket (every TCP port)
//!
//! An HTTP/1.1 `GET` with `Upgrade: websocket` is upgraded, and every message
//! is sent back unchanged (text as text, binary as binary) until the client
//! closes; pings are answered with pongs. If the client offers subprotocols,
//! the first one is accepted. Query parameters are ignored on upgrades.
//!
//! # UDP (every UDP port)
//!
//! Each datagram is answered, to its source, with the pod's name and a
//! newline: `echo hi | nc -u -w1 10.244.1.5 5353` prints `web-5d8f7-abcde`.
//!
//! Start at [`run`]; tests hand already-bound sockets to [`serve`].

mod handler;
mod render;
mod websocket;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The TCP port served when the configuration names no port at all.
pub const DEFAULT_TCP_PORT: u16 = 8080;

/// What one echoserver container serves, and the pod identity it echoes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EchoConfig {
    pub pod: String,
    pub namespace: String,
    pub node: String,
    pub pod_ip: String,
    pub tcp_ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
}

impl EchoConfig {
    /// Reads the configuration from the container's environment (see the
    /// module documentation). Unset identity variables read as empty; a port
    /// that is not a number in 1–65535 is an error naming its variable.
    pub fn from_env() -> Result<EchoConfig, String> {
        Self::from_lookup(|name| match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
        })
    }

    fn from_lookup(lookup: impl Fn(&str) -> Result<Option<String>, String>) -> Result<EchoConfig, String> {
        let text = |name: &str| lookup(name).map(Option::unwrap_or_default);
        let ports = |name: &str| lookup(name).and_then(|value| parse_ports(name, value.as_deref().unwrap_or("")));
        let mut cfg = EchoConfig {
            pod: text("SVCNET_POD_NAME")?,
            namespace: text("SVCNET_POD_NAMESPACE")?,
            node: text("SVCNET_NODE_NAME")?,
            pod_ip: text("SVCNET_POD_IP")?,
            tcp_ports: ports("SVCNET_ECHO_TCP_PORTS")?,
            udp_ports: ports("SVCNET_ECHO_UDP_PORTS")?,
        };
        cfg.tcp_ports = cfg.effective_tcp_ports();
        Ok(cfg)
    }

    /// The TCP ports to serve: the configured ones, or [`DEFAULT_TCP_PORT`]
    /// when no port of either protocol is configured.
    fn effective_tcp_ports(&self) -> Vec<u16> {
        if self.tcp_ports.is_empty() && self.udp_ports.is_empty() {
            vec![DEFAULT_TCP_PORT]
        } else {
            self.tcp_ports.clone()
        }
    }
}

/// Parses `8080, 9090,` into ports, skipping empty entries and repeats (a
/// repeated port would otherwise fail to bind against itself).
fn parse_ports(var: &str, value: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
        let port = match entry.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(format!("{var}: {entry:?} is not a port (1-65535)")),
        };
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    Ok(ports)
}

/// Binds every configured port on all addresses and serves them until the
/// process is killed. A port that cannot be bound is an error naming it.
pub async fn run(cfg: EchoConfig) -> io::Result<()> {
    let cfg = EchoConfig { tcp_ports: cfg.effective_tcp_ports(), ..cfg };
    let (tcp, udp) = bind_all(&cfg, Ipv4Addr::UNSPECIFIED, true).await?;
    tracing::info!(pod = %cfg.pod, tcp = ?cfg.tcp_ports, udp = ?cfg.udp_ports, "echoserver listening");
    serve(cfg, tcp, udp).await
}

/// Binds the configured ports on `v4`, and also on `[::]` when `dual` is set.
async fn bind_all(cfg: &EchoConfig, v4: Ipv4Addr, dual: bool) -> io::Result<(Vec<TcpListener>, Vec<UdpSocket>)> {
    let mut tcp = Vec::new();
    for &port in &cfg.tcp_ports {
        let v6 = if dual { TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)).await.ok() } else { None };
        let v4 = TcpListener::bind((v4, port)).await;
        tcp.extend(pick_binds(v6, v4).map_err(|e| bind_error(e, "TCP", port))?);
    }
    let mut udp = Vec::new();
    for &port in &cfg.udp_ports {
        let v6 = if dual { UdpSocket::bind((Ipv6Addr::UNSPECIFIED, port)).await.ok() } else { None };
        let v4 = UdpSocket::bind((v4, port)).await;
        udp.extend(pick_binds(v6, v4).map_err(|e| bind_error(e, "UDP", port))?);
    }
    Ok((tcp, udp))
}

/// The sockets to serve for one port, given its optional `[::]` socket and
/// the result of binding IPv4. `[::]` is bound first: on Linux it is
/// dual-stack by default (`net.ipv6.bindv6only=0`), and then the IPv4 bind
/// fails with "address in use" because `[::]` already covers IPv4. Where
/// `[::]` is IPv6-only, or IPv6 is absent, the IPv4 socket is needed.
fn pick_binds<S>(v6: Option<S>, v4: io::Result<S>) -> io::Result<Vec<S>> {
    match (v6, v4) {
        (v6, Ok(v4)) => Ok(v6.into_iter().chain([v4]).collect()),
        (Some(v6), Err(e)) if e.kind() == io::ErrorKind::AddrInUse => Ok(vec![v6]),
        (_, Err(e)) => Err(e),
    }
}

fn bind_error(e: io::Error, protocol: &str, port: u16) -> io::Error {
    io::Error::new(e.kind(), format!("echoserver: cannot bind {protocol} port {port}: {e}"))
}

/// Serves already-bound sockets: HTTP and WebSocket on every TCP listener,
/// datagram replies on every UDP socket. Runs until the process is killed;
/// dropping the future stops every listener and connection it started.
pub async fn serve(cfg: EchoConfig, tcp: Vec<TcpListener>, udp: Vec<UdpSocket>) -> io::Result<()> {
    // Never sent on: its receivers see the channel close when `serve` is
    // dropped, which ends upgraded WebSockets and HTTP/2 streams, tasks that
    // live outside the join sets below.
    let (_shutdown, shutdown) = watch::channel(());
    let udp_reply = Bytes::from(format!("{}\n", cfg.pod));
    let state = Arc::new(handler::State::new(cfg, shutdown.clone()));
    let mut builder = auto::Builder::new(handler::Executor::new(shutdown));
    // Keep-alive without an idle timeout: load balancers and proxies pool
    // connections to backends, and closing one under them is a spurious 502.
    builder.http1().keep_alive(true);
    let builder = Arc::new(builder);

    let mut tasks = JoinSet::new();
    for listener in tcp {
        tasks.spawn(accept_loop(listener, builder.clone(), state.clone()));
    }
    for socket in udp {
        tasks.spawn(answer_datagrams(socket, udp_reply.clone()));
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    builder: Arc<auto::Builder<handler::Executor>>,
    state: Arc<handler::State>,
) {
    // Connections live in this set so that they end with the listener.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, builder.clone(), state.clone()));
                }
                Err(e) => {
                    // Out of file descriptors or memory, or a connection reset
                    // before it was accepted: none is fatal, but retrying at
                    // once would spin.
                    tracing::warn!(error = %e, "echoserver: accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    builder: Arc<auto::Builder<handler::Executor>>,
    state: Arc<handler::State>,
) {
    // Small answers to small requests: do not wait to coalesce segments.
    let _ = stream.set_nodelay(true);
    // A `[::]` socket sees IPv4 clients as `::ffff:a.b.c.d`; echo `a.b.c.d`.
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    let service = hyper::service::service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(handler::answer(request, peer, &state).await) }
    });
    if let Err(e) = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).await {
        tracing::debug!(%peer, error = %e, "echoserver: connection ended with an error");
    }
}

async fn answer_datagrams(socket: UdpSocket, reply: Bytes) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((_, source)) => {
                // A `[::]` socket replies to an IPv4 client at `::ffff:a.b.c.d`,
                // the form it received from, so `source` is used as it is.
                if let Err(e) = socket.send_to(&reply, source).await {
                    tracing::debug!(%source, error = %e, "echoserver: UDP reply failed");
                }
            }
            Err(e) => {
                // E.g. an ICMP error queued for an earlier reply; the next
                // datagram is unaffected.
                tracing::debug!(error = %e, "echoserver: UDP receive failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Result<Option<String>, String> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| Ok(vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn config_reads_identity_and_port_lists() {
        let cfg = EchoConfig::from_lookup(lookup(&[
            ("SVCNET_POD_NAME", "web-1"),
            ("SVCNET_POD_NAMESPACE", "default"),
            ("SVCNET_NODE_NAME", "node-a"),
            ("SVCNET_POD_IP", "10.244.1.5"),
            ("SVCNET_ECHO_TCP_PORTS", " 80, 8443,,80 "),
            ("SVCNET_ECHO_UDP_PORTS", "53"),
        ]))
        .expect("valid config");
        assert_eq!(
            cfg,
            EchoConfig {
                pod: "web-1".into(),
                namespace: "default".into(),
                node: "node-a".into(),
                pod_ip: "10.244.1.5".into(),
                tcp_ports: vec![80, 8443],
                udp_ports: vec![53],
            }
        );
    }

    #[test]
    fn config_without_ports_serves_tcp_8080() {
        let cfg = EchoConfig::from_lookup(lookup(&[("SVCNET_ECHO_TCP_PORTS", " ")])).expect("valid config");
        assert_eq!(cfg.tcp_ports, vec![DEFAULT_TCP_PORT]);
        assert!(cfg.udp_ports.is_empty());
        assert_eq!(cfg.pod, "");
    }

    #[test]
    fn config_with_only_udp_ports_serves_no_tcp() {
        let cfg = EchoConfig::from_lookup(lookup(&[("SVCNET_ECHO_UDP_PORTS", "5353")])).expect("valid config");
        assert!(cfg.tcp_ports.is_empty());
        assert_eq!(cfg.udp_ports, vec![5353]);
    }

    #[test]
    fn bad_port_is_an_error_naming_its_variable() {
        for bad in ["http", "0", "65536", "-1", "80;81"] {
            let err = EchoConfig::from_lookup(lookup(&[("SVCNET_ECHO_UDP_PORTS", bad)])).expect_err(bad);
            assert!(err.contains("SVCNET_ECHO_UDP_PORTS"), "{err}");
        }
        let err = EchoConfig::from_lookup(lookup(&[("SVCNET_ECHO_TCP_PORTS", "80,x")])).expect_err("x");
        assert!(err.contains("SVCNET_ECHO_TCP_PORTS") && err.contains("\"x\""), "{err}");
    }

    #[test]
    fn ipv4_bind_is_skipped_only_when_a_dual_stack_socket_holds_the_port() {
        let in_use = || Err(io::Error::from(io::ErrorKind::AddrInUse));
        assert_eq!(pick_binds(Some(6), in_use()).expect("dual-stack"), vec![6]);
        assert_eq!(pick_binds(Some(6), Ok(4)).expect("both"), vec![6, 4]);
        assert_eq!(pick_binds(None, Ok(4)).expect("v4 only"), vec![4]);
        assert!(pick_binds::<u8>(None, in_use()).is_err());
        let denied = Err(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(pick_binds(Some(6), denied).is_err());
    }

    #[tokio::test]
    async fn port_already_in_use_is_an_error_naming_the_port() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = taken.local_addr().expect("addr").port();
        let cfg = EchoConfig { tcp_ports: vec![port], ..EchoConfig::default() };
        let err = bind_all(&cfg, Ipv4Addr::LOCALHOST, false).await.expect_err("port is taken");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains(&format!("TCP port {port}")), "{err}");

        let taken = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let port = taken.local_addr().expect("addr").port();
        let cfg = EchoConfig { udp_ports: vec![port], ..EchoConfig::default() };
        let err = bind_all(&cfg, Ipv4Addr::LOCALHOST, false).await.expect_err("port is taken");
        assert!(err.to_string().contains(&format!("UDP port {port}")), "{err}");
    }
}
