//! The userspace proxy against a real kernel: a node namespace on a small
//! node network (`172.18.0.0/24`), its bridge `cni0` (10.244.1.1/24) with
//! backend pods answering with their names, a client pod, and a host
//! outside the cluster on the node network.
//!
//! Every test builds its own namespaces, named `svus-<pid>-<n>-*`, and
//! deletes exactly those when it ends, passed or failed. The tests need
//! root, `ip` and `nft`; without them they are skipped.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use svcnet_netns::NetnsSockets;
use svcnet_netns::ip::{self, NodeNet, PodNet};
use svcnet_proxy::model::{Affinity, Endpoint, Protocol, ServicePort, Snapshot};
use svcnet_proxy::userspace::{Balance, Config, UserspaceProxy};
use svcnet_proxy::{DataPlane, NodeEnv, VirtualService};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinHandle;

const NODE_IP: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 2);
const OUTSIDE_IP: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 3);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const PORT: u16 = 80;
const NODE_PORT: u16 = 30080;
const BACKEND_PORT: u16 = 8080;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Retries a condition (which may `.await`) for up to 5 s.
macro_rules! assert_eventually {
    ($cond:expr, $($msg:tt)+) => {{
        let mut ok = false;
        for _ in 0..100 {
            if $cond {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ok, $($msg)+);
    }};
}

/// The namespaces a test created, deleted on drop (in reverse order).
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in self.0.iter().rev() {
            let _ = std::process::Command::new("ip").args(["netns", "delete", name]).output();
            let _ = std::fs::remove_dir_all(ip::netns_etc(name));
        }
    }
}

struct Pod {
    name: String,
    /// The pod's namespace (empty for the outside host).
    netns: String,
    ip: Ipv4Addr,
    sockets: NetnsSockets,
}

struct Cluster {
    env: NodeEnv,
    backends: Vec<Pod>,
    client: Pod,
    /// A host on the node network, outside the cluster.
    outside: Pod,
    servers: Vec<JoinHandle<()>>,
    // Last, so the namespaces go after everything using them.
    _ns: Namespaces,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for s in &self.servers {
            s.abort();
        }
    }
}

fn kernel_tests_possible() -> bool {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let tools = ["ip", "nft"].iter().all(|t| {
        std::process::Command::new(t).arg("-V").output().is_ok_and(|o| o.status.success())
            || std::process::Command::new(t).arg("--version").output().is_ok_and(|o| o.status.success())
    });
    if !(root && tools) {
        eprintln!("skipping: the userspace proxy's kernel tests need root, ip and nft");
    }
    root && tools
}

/// A node with `backends` backend pods (ep1, ep2, ...: 10.244.1.11, .12,
/// ...), a client pod (10.244.1.100) and an outside host; None when the
/// tests cannot run here.
async fn cluster(backends: usize) -> Option<Cluster> {
    if !kernel_tests_possible() {
        return None;
    }
    let prefix = format!("svus-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    let mut ns = Namespaces(Vec::new());
    let fabric = format!("{prefix}-net");
    ns.0.push(fabric.clone());
    ip::create_fabric(&fabric).await.expect("node network");
    let node = format!("{prefix}-node");
    ns.0.push(node.clone());
    let node_net = |netns: &str, index, node_ip, third| NodeNet {
        netns: netns.to_string(),
        index,
        node_ip,
        node_prefix_len: 24,
        gateway: Ipv4Addr::new(10, 244, third, 1),
        pod_prefix_len: 24,
        peers: vec![],
    };
    ip::create_node(Some(&fabric), &node_net(&node, 1, NODE_IP, 1)).await.expect("node namespace");
    let outside = format!("{prefix}-out");
    ns.0.push(outside.clone());
    ip::create_node(Some(&fabric), &node_net(&outside, 2, OUTSIDE_IP, 2)).await.expect("outside host");

    let mut pods = Vec::new();
    for (i, name) in (0..backends).map(|i| format!("ep{}", i + 1)).chain(["client".to_string()]).enumerate() {
        let netns = format!("{prefix}-{name}");
        ns.0.push(netns.clone());
        let ip =
            if name == "client" { Ipv4Addr::new(10, 244, 1, 100) } else { Ipv4Addr::new(10, 244, 1, 11 + i as u8) };
        let pod =
            PodNet { netns: netns.clone(), host_veth: format!("veth-{name}"), ip, prefix_len: 24, gateway: GATEWAY };
        ip::create_pod(&node, &pod).await.expect("pod namespace");
        pods.push(Pod {
            name,
            netns: netns.clone(),
            ip,
            sockets: NetnsSockets::enter(&ip::netns_path(&netns)).expect("pod sockets"),
        });
    }
    let client = pods.pop().expect("the client pod is last");
    let env = NodeEnv {
        node_name: "node1".into(),
        netns: node.clone(),
        sockets: NetnsSockets::enter(&ip::netns_path(&node)).expect("node sockets"),
        node_ips: vec![NODE_IP],
        pod_cidr: "10.244.1.0/24".into(),
        bridge: "cni0".into(),
        cluster_cidr: "10.244.0.0/16".into(),
        service_cidr: "10.96.0.0/12".into(),
    };
    let outside = Pod {
        name: "outside".into(),
        netns: outside.clone(),
        ip: OUTSIDE_IP,
        sockets: NetnsSockets::enter(&ip::netns_path(&outside)).expect("outside sockets"),
    };
    let mut cluster = Cluster { env, backends: pods, client, outside, servers: Vec::new(), _ns: ns };
    for i in 0..cluster.backends.len() {
        let tcp = serve_tcp(&cluster.backends[i]).await;
        let udp = serve_udp(&cluster.backends[i]).await;
        cluster.servers.extend([tcp, udp]);
    }
    Some(cluster)
}

impl Cluster {
    /// Stops backend `i`'s servers (its TCP port then refuses).
    async fn stop_backend(&mut self, i: usize) {
        for h in self.servers.drain(2 * i..2 * i + 2).collect::<Vec<_>>() {
            h.abort();
            let _ = h.await;
        }
    }

    fn nft_table(&self) -> Option<String> {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.env.netns, "nft", "list", "table", "ip", "svcnet-userspace"])
            .output()
            .ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// On port 8080: says its name and a newline, then echoes until EOF.
async fn serve_tcp(pod: &Pod) -> JoinHandle<()> {
    let listener =
        pod.sockets.tcp_listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, BACKEND_PORT))).await.expect("backend listens");
    let name = pod.name.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let name = name.clone();
            tokio::spawn(async move {
                let _ = s.write_all(format!("{name}\n").as_bytes()).await;
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    })
}

/// On UDP port 8080: answers every datagram with its name.
async fn serve_udp(pod: &Pod) -> JoinHandle<()> {
    let socket =
        pod.sockets.udp_bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, BACKEND_PORT))).await.expect("backend binds");
    let name = pod.name.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((_, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(name.as_bytes(), from).await;
        }
    })
}

async fn connect(from: &Pod, to: SocketAddrV4) -> io::Result<TcpStream> {
    let socket = from.sockets.tcp_socket(false).await?;
    tokio::time::timeout(Duration::from_secs(5), socket.connect(to.into()))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// The first line the server sends: its name.
async fn hello(stream: &mut TcpStream) -> io::Result<String> {
    let mut line = Vec::new();
    loop {
        let b = tokio::time::timeout(Duration::from_secs(5), stream.read_u8())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no hello"))??;
        if b == b'\n' {
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
        line.push(b);
    }
}

/// Connects, reads the server's name, and closes.
async fn ask(from: &Pod, to: SocketAddrV4) -> String {
    let mut s = connect(from, to).await.unwrap_or_else(|e| panic!("connecting to {to}: {e}"));
    hello(&mut s).await.unwrap_or_else(|e| panic!("reading from {to}: {e}"))
}

/// One datagram from a new socket (a new UDP session); the answer.
async fn ask_udp(from: &Pod, to: SocketAddrV4) -> io::Result<String> {
    let socket = from.sockets.udp_bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).await?;
    // Connected: only a reply from `to` itself is received, so the proxy's
    // reply must be un-redirected to the service address.
    socket.connect(to).await?;
    udp_exchange(&socket).await
}

async fn udp_exchange(socket: &UdpSocket) -> io::Result<String> {
    socket.send(b"hi").await?;
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no UDP answer"))??;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn endpoint(pod: &Pod, local: bool) -> Endpoint {
    Endpoint {
        ip: pod.ip,
        port: BACKEND_PORT,
        node: Some("node1".into()),
        ready: true,
        serving: true,
        terminating: false,
        local,
    }
}

fn service(name: &str, vip: Ipv4Addr, protocol: Protocol, endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        namespace: "default".into(),
        name: name.into(),
        port_name: String::new(),
        protocol,
        cluster_ip: vip,
        port: PORT,
        node_port: None,
        external_ips: vec![],
        load_balancer_ips: vec![],
        load_balancer_source_ranges: Vec::new(),
        affinity: Affinity::None,
        external_local: false,
        internal_local: false,
        health_check_node_port: None,
        endpoints,
    }
}

fn web(pods: &[Pod]) -> ServicePort {
    service("web", VIP, Protocol::Tcp, pods.iter().map(|p| endpoint(p, true)).collect())
}

fn snapshot(mut services: Vec<ServicePort>) -> Snapshot {
    services.sort_by_key(|s| s.id());
    Snapshot {
        node_name: "node1".into(),
        node_ips: vec![NODE_IP],
        cluster_cidr: "10.244.0.0/16".into(),
        service_cidr: "10.96.0.0/12".into(),
        services,
    }
}

fn vip() -> SocketAddrV4 {
    SocketAddrV4::new(VIP, PORT)
}

/// The entry of `address` in `describe()`.
async fn entry(proxy: &UserspaceProxy, address: &str) -> Option<VirtualService> {
    proxy.describe().await.into_iter().find(|v| v.address == address)
}

/// Open connections (active and half-closed) to `endpoint` through the
/// cluster IP.
async fn open_to(proxy: &UserspaceProxy, endpoint: Ipv4Addr) -> u64 {
    let endpoint = SocketAddrV4::new(endpoint, BACKEND_PORT).to_string();
    entry(proxy, &vip().to_string())
        .await
        .map(|v| v.endpoints.iter().filter(|e| e.address == endpoint).map(|e| e.active + e.inactive).sum())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_reaches_every_endpoint_in_order() {
    let Some(c) = cluster(3).await else { return };
    let mut proxy = UserspaceProxy::new(c.env.clone(), Balance::RoundRobin);
    proxy.sync(&snapshot(vec![web(&c.backends)])).await.unwrap();

    let mut names = Vec::new();
    for _ in 0..6 {
        names.push(ask(&c.client, vip()).await);
    }
    assert_eq!(names, ["ep1", "ep2", "ep3", "ep1", "ep2", "ep3"]);

    let described = proxy.describe().await;
    assert_eq!(described.len(), 1);
    let v = &described[0];
    assert_eq!((v.service.as_str(), v.protocol.as_str(), v.address.as_str()), ("default/web", "tcp", "10.96.0.10:80"));
    assert_eq!((v.scheduler.as_str(), v.flags.as_str()), ("rr", ""));
    let addresses: Vec<&str> = v.endpoints.iter().map(|e| e.address.as_str()).collect();
    assert_eq!(addresses, ["10.244.1.11:8080", "10.244.1.12:8080", "10.244.1.13:8080"]);
    assert!(v.endpoints.iter().all(|e| e.weight == 1));

    let table = c.nft_table().unwrap_or_default();
    assert!(table.contains("10.96.0.10 . tcp . 80 comment \"default/web\""), "{table}");
    proxy.cleanup().await.unwrap();
    assert!(c.nft_table().is_none(), "cleanup removes the table");
    assert!(connect(&c.client, vip()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_ports_are_reachable_only_through_a_redirect() {
    let Some(c) = cluster(1).await else { return };
    let mut proxy = UserspaceProxy::new(c.env.clone(), Balance::RoundRobin);
    proxy.sync(&snapshot(vec![web(&c.backends)])).await.unwrap();
    assert_eq!(ask(&c.client, vip()).await, "ep1");
    let port = proxy.proxy_port("default/web", Protocol::Tcp, false).unwrap();
    for addr in [GATEWAY, NODE_IP] {
        let direct = connect(&c.client, SocketAddrV4::new(addr, port)).await;
        assert_eq!(direct.err().map(|e| e.kind()), Some(io::ErrorKind::ConnectionRefused), "{addr}:{port}");
    }
    let outside = connect(&c.outside, SocketAddrV4::new(NODE_IP, port)).await;
    assert_eq!(outside.err().map(|e| e.kind()), Some(io::ErrorKind::ConnectionRefused));
    proxy.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_connections_sends_new_connections_to_the_least_loaded_endpoint() {
    let Some(c) = cluster(3).await else { return };
    let mut proxy = UserspaceProxy::new(c.env.clone(), Balance::LeastConnections);
    proxy.sync(&snapshot(vec![web(&c.backends)])).await.unwrap();

    // Three held connections: one on each endpoint.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect(&c.client, vip()).await.unwrap();
        let name = hello(&mut s).await.unwrap();
        held.push((name, s));
    }
    let mut names: Vec<&str> = held.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(names, ["ep1", "ep2", "ep3"]);
    assert_eq!(entry(&proxy, "10.96.0.10:80").await.map(|v| v.scheduler), Some("lc".to_string()));

    // Close the one on ep2: it becomes the least loaded.
    let i = held.iter().position(|(n, _)| n == "ep2").unwrap();
    drop(held.remove(i));
    let ep2 = c.backends[1].ip;
    assert_eventually!(open_to(&proxy, ep2).await == 0, "the closed connection is no longer counted");
    for _ in 0..2 {
        let mut s = connect(&c.client, vip()).await.unwrap();
        assert_eq!(hello(&mut s).await.unwrap(), "ep2");
        held.push(("ep2".into(), s));
    }
    assert_eq!(open_to(&proxy, ep2).await, 2);
    assert_eq!(open_to(&proxy, c.backends[0].ip).await, 1);
    // Now ep1 and ep3 have 1, ep2 has 2: never ep2.
    for _ in 0..2 {
        let mut s = connect(&c.client, vip()).await.unwrap();
        let name = hello(&mut s).await.unwrap();
        assert_ne!(name, "ep2");
        held.push((name, s));
    }
    drop(held);
    proxy.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ip_affinity_sticks_and_expires() {
    let Some(c) = cluster(3).await else { return };
    let mut proxy = UserspaceProxy::new(c.env.clone(), Balance::RoundRobin);
    let mut svc = web(&c.backends);
    svc.affinity = Affinity::ClientIp { timeout_seconds: 2 };
    proxy.sync(&snapshot(vec![svc])).await.unwrap();
    assert_eq!(entry(&proxy, "10.96.0.10:80").await.map(|v| v.flags), Some("persistent 2".to_string()));

    let first = ask(&c.client, vip()).await;
    for _ in 0..4 {
        assert_eq!(ask(&c.client, vip()).await, first, "sticks while the client comes back");
    }
    // Gone longer than the timeout: balanced again, then sticky again.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let second = ask(&c.client, vip()).await;
    assert_ne!(second, first, "expired: round-robin moved on");
    for _ in 0..3 {
        assert_eq!(ask(&c.client, vip()).await, second);
    }
    proxy.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_is_skipped_by_the_retry() {
    let Some(mut c) = cluster(3).await else { return };
    let mut proxy = UserspaceProxy::new(c.env.clone(), Balance::RoundRobin);
    proxy.sync(&snapshot(vec![web(&c.backends)])).await.unwrap();
    c.stop_backend(1).await;
    for _ in 0..6 {
        let name = ask(&c.client, vip()).await;
        assert!(name == "ep1" || name == "ep3", "got {name}");
    }
    assert_eq!(open_to(&proxy, c.backends[1].ip).await, 0, "failed attempts are not counted");

    // Every endpoint dead: the accepted connection is reset.
    c.stop_backend(0).await;
    c.stop_backend(0).await;
    // The proxy accepts, finds no endpoint and resets: the reset can reach
    // the client before its connect has even been reported (ECONNRESET from
    // connect) or after (the read fails). Either way no one answers.
    match connect(&c.client, vip()).await {
        Ok(mut s) => assert!(hello(&mut s).await.is_err(), "an answer with every endpoint dead"),
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
    }
    proxy.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_endpoints_is_refused_at_once() {
    let Some(c) = cluster(1).await else { return };
    let mut proxy = UserspaceProxy::new(c.env.clone(), Balance::RoundRobin);
    let dns = Ipv4Addr::new(10, 96, 0, 11);
    let mut empty = service("empty", VIP, Protocol::Tcp, vec![]);
    empty.node_port = Some(NODE_PORT);
    proxy.sync(&snapshot(vec![empty, service("dns", dns, Protocol::Udp, vec![])])).await.unwrap();

    let refused = |r: io::Result<TcpStream>| r.err().map(|e| e.kind()) == Some(io::ErrorKind::ConnectionRefused);
    assert!(refused(connect(&c.client, vip()).await), "TCP to a VIP without endpoints is reset");
    assert!(refused(connect(&c.client, SocketAddrV4::new(NODE_IP, NODE_PORT)).await), "and so is its node port");
    assert!(refused(connect(&c.outside, SocketAddrV4::new(NODE_IP, NODE_PORT)).await), "from outside too");
    let udp = ask_udp(&c.client, SocketAddrV4::new(dns, PORT)).await;
    assert_eq!(udp.err().map(|e| e.kind()), Some(io::ErrorKind::ConnectionRefused), "UDP gets port unreachable");
    // An address of the service CIDR that is no service port.
    let nothing = connect(&c.client, SocketAddrV4::new(Ipv4Addr::new(10, 96, 0, 99), PORT)).await;
    assert!(refused(nothing));
    let table = c.nft_table().unwrap_or_default();
    assert!(table.contains("10.96.0.10 . tcp . 80 comment \"default/empty\""), "{table}");

    // Endpoints arrive: the same addresses now answer.
    let mut empty = service("empty", VIP, Protocol::Tcp, vec![endpoint(&c.backends[0], true)]);
    empty.node_port = Some(NODE_PORT);
    let dns_svc = service("dns", dns, Protocol::Udp, vec![endpoint(&c.backends[0], true)]);
    proxy.sync(&snapshot(vec![empty, dns_svc])).await.unwrap();
    assert_eq!(ask(&c.client, vip()).await, "ep1");
    assert_eq!(ask(&c.outside, SocketAddrV4::new(NODE_IP, NODE_PORT)).await, "ep1");
    assert_eq!(ask_udp(&c.client, SocketAddrV4::new(dns, PORT)).await.unwrap(), "ep1");
    proxy.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_sessions_are_balanced_and_answered_from_the_service_address() {
    let Some(c) = cluster(3).await else { return };
    let mut proxy = UserspaceProxy::new(c.env.clone(), Balance::RoundRobin);
    let svc = service("dns", VIP, Protocol::Udp, c.backends.iter().map(|p| endpoint(p, true)).collect());
    proxy.sync(&snapshot(vec![svc])).await.unwrap();

    let mut sockets = Vec::new();
    let mut names = Vec::new();
    for _ in 0..3 {
        let s = c.client.sockets.udp_bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).await.unwrap();
        s.connect(vip()).await.unwrap();
        names.push(udp_exchange(&s).await.unwrap());
        sockets.push(s);
    }
    assert_eq!(names, ["ep1", "ep2", "ep3"]);
    // A session keeps its endpoint.
    for (s, name) in sockets.iter().zip(&names) {
        assert_eq!(&udp_exchange(s).await.unwrap(), name);
    }
    let v = entry(&proxy, "10.96.0.10:80").await.unwrap();
    assert_eq!(v.protocol, "udp");
    assert!(v.endpoints.iter().all(|e| e.active == 1), "{v:?}");
    proxy.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_sessions_idle_out_and_dead_endpoints_are_left() {
    let Some(mut c) = cluster(2).await else { return };
    let config = Config { udp_idle_timeout: Duration::from_millis(300), ..Config::default() };
    let mut proxy = UserspaceProxy::with_config(c.env.clone(), config);
    let svc = service("dns", VIP, Protocol::Udp, c.backends.iter().map(|p| endpoint(p, true)).collect());
    proxy.sync(&snapshot(vec![svc])).await.unwrap();

    let s = c.client.sockets.udp_bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).await.unwrap();
    s.connect(vip()).await.unwrap();
    assert_eq!(udp_exchange(&s).await.unwrap(), "ep1");
    assert_eventually!(open_to(&proxy, c.backends[0].ip).await == 0, "the idle session ends");
    // Same client address, new session: round-robin moves on.
    assert_eq!(udp_exchange(&s).await.unwrap(), "ep2");

    // ep2 stops: its refusal ends the session, and a retry lands on ep1.
    c.stop_backend(1).await;
    let mut answer = None;
    for _ in 0..5 {
        if let Ok(a) = udp_exchange(&s).await {
            answer = Some(a);
            break;
        }
    }
    assert_eq!(answer.as_deref(), Some("ep1"));
    proxy.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ports_answer_on_the_node_ip_with_the_external_traffic_policy() {
    let Some(c) = cluster(2).await else { return };
    let mut proxy = UserspaceProxy::new(c.env.clone(), Balance::RoundRobin);
    // ep1 is on this node, ep2 (as far as the snapshot says) elsewhere.
    let mut svc =
        service("web", VIP, Protocol::Tcp, vec![endpoint(&c.backends[0], true), endpoint(&c.backends[1], false)]);
    svc.node_port = Some(NODE_PORT);
    svc.external_local = true;
    proxy.sync(&snapshot(vec![svc.clone()])).await.unwrap();
    let node_port = SocketAddrV4::new(NODE_IP, NODE_PORT);

    // From outside the cluster: local endpoints only.
    for _ in 0..4 {
        assert_eq!(ask(&c.outside, node_port).await, "ep1");
    }
    // From a pod: every endpoint (kube-proxy's short-circuit).
    let mut names = Vec::new();
    for _ in 0..4 {
        names.push(ask(&c.client, node_port).await);
    }
    names.sort();
    assert_eq!(names, ["ep1", "ep1", "ep2", "ep2"]);
    // Also on the bridge address.
    ask(&c.client, SocketAddrV4::new(GATEWAY, NODE_PORT)).await;
    let v = entry(&proxy, "172.18.0.2:30080").await.unwrap();
    assert_eq!(v.endpoints.len(), 1, "outsiders' endpoints: {v:?}");

    // externalTrafficPolicy Cluster: outsiders reach both.
    svc.external_local = false;
    proxy.sync(&snapshot(vec![svc])).await.unwrap();
    let mut names = Vec::new();
    for _ in 0..4 {
        names.push(ask(&c.outside, node_port).await);
    }
    names.sort();
    assert_eq!(names, ["ep1", "ep1", "ep2", "ep2"]);
    proxy.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_source_ranges_admit_only_their_sources_to_the_lb_ip() {
    let Some(c) = cluster(2).await else { return };
    let lb_ip = Ipv4Addr::new(198, 51, 100, 7);
    let out = std::process::Command::new("ip")
        .args(["-n", &c.outside.netns, "route", "add", &lb_ip.to_string(), "via", &NODE_IP.to_string()])
        .output()
        .expect("ip route");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut proxy = UserspaceProxy::new(c.env.clone(), Balance::RoundRobin);
    let mut services = Vec::new();
    for protocol in [Protocol::Tcp, Protocol::Udp] {
        let mut svc = service("web", VIP, protocol, c.backends.iter().map(|p| endpoint(p, true)).collect());
        svc.node_port = Some(NODE_PORT);
        svc.load_balancer_ips = vec![lb_ip];
        svc.load_balancer_source_ranges = vec![format!("{}/32", c.client.ip).parse().expect("a CIDR")];
        services.push(svc);
    }
    proxy.sync(&snapshot(services)).await.unwrap();
    let to_lb = SocketAddrV4::new(lb_ip, PORT);
    assert!(ask(&c.client, to_lb).await.starts_with("ep"), "an allowed pod reaches the LB IP");
    assert!(ask_udp(&c.client, to_lb).await.expect("an allowed pod, UDP").starts_with("ep"));
    for from in [&c.backends[1], &c.outside] {
        // Accepted by the listener, then reset before any endpoint is used.
        let refused = match connect(from, to_lb).await {
            Ok(mut s) => hello(&mut s).await.is_err(),
            Err(_) => true,
        };
        assert!(refused, "{} is outside the ranges", from.name);
    }
    assert!(ask_udp(&c.backends[1], to_lb).await.is_err(), "UDP from outside the ranges is dropped");
    // Node ports and the cluster IP are not filtered.
    assert!(ask(&c.outside, SocketAddrV4::new(NODE_IP, NODE_PORT)).await.starts_with("ep"));
    assert!(ask(&c.backends[1], SocketAddrV4::new(VIP, PORT)).await.starts_with("ep"));
    proxy.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_survives_a_sync_that_removes_its_endpoint() {
    let Some(c) = cluster(3).await else { return };
    let mut proxy = UserspaceProxy::new(c.env.clone(), Balance::RoundRobin);
    proxy.sync(&snapshot(vec![web(&c.backends)])).await.unwrap();
    let port = proxy.proxy_port("default/web", Protocol::Tcp, false);

    let mut held = connect(&c.client, vip()).await.unwrap();
    assert_eq!(hello(&mut held).await.unwrap(), "ep1");
    // ep1 leaves.
    proxy.sync(&snapshot(vec![web(&c.backends[1..])])).await.unwrap();
    assert_eq!(proxy.proxy_port("default/web", Protocol::Tcp, false), port, "same listener");
    for _ in 0..4 {
        assert_ne!(ask(&c.client, vip()).await, "ep1");
    }
    let v = entry(&proxy, "10.96.0.10:80").await.unwrap();
    let draining = v.endpoints.iter().find(|e| e.address == "10.244.1.11:8080").unwrap();
    assert_eq!((draining.weight, draining.active), (0, 1), "{v:?}");
    // The held connection still works both ways, and half-closes cleanly.
    held.write_all(b"still here\n").await.unwrap();
    held.shutdown().await.unwrap();
    let mut rest = String::new();
    held.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "still here\n");
    drop(held);
    assert_eventually!(open_to(&proxy, c.backends[0].ip).await == 0, "the drained connection ends");
    proxy.sync(&snapshot(vec![web(&c.backends[1..])])).await.unwrap();
    let v = entry(&proxy, "10.96.0.10:80").await.unwrap();
    assert_eq!(v.endpoints.len(), 2, "a drained endpoint is forgotten: {v:?}");

    // The whole service goes: new connections are refused, open ones go on.
    let mut held = connect(&c.client, vip()).await.unwrap();
    hello(&mut held).await.unwrap();
    proxy.sync(&snapshot(vec![])).await.unwrap();
    let refused = connect(&c.client, vip()).await;
    assert_eq!(refused.err().map(|e| e.kind()), Some(io::ErrorKind::ConnectionRefused));
    assert!(!c.nft_table().unwrap_or_default().contains("default/web"), "no rule is left for it");
    held.write_all(b"bye\n").await.unwrap();
    held.shutdown().await.unwrap();
    let mut rest = String::new();
    held.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "bye\n");
    proxy.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_service_port_cuts_its_connections_after_the_drain_timeout() {
    let Some(c) = cluster(1).await else { return };
    let config = Config { drain_timeout: Duration::from_millis(200), ..Config::default() };
    let mut proxy = UserspaceProxy::with_config(c.env.clone(), config);
    proxy.sync(&snapshot(vec![web(&c.backends)])).await.unwrap();
    let mut held = connect(&c.client, vip()).await.unwrap();
    hello(&mut held).await.unwrap();
    proxy.sync(&snapshot(vec![])).await.unwrap();
    // The proxy resets it once the drain timeout passes.
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), held.read(&mut buf)).await;
    assert!(matches!(read, Ok(Err(_)) | Ok(Ok(0))), "{read:?}");
    proxy.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_transfers_are_intact_through_splice() {
    let Some(c) = cluster(1).await else { return };
    let mut proxy = UserspaceProxy::new(c.env.clone(), Balance::RoundRobin);
    proxy.sync(&snapshot(vec![web(&c.backends)])).await.unwrap();

    const SIZE: usize = 8 << 20;
    let data: Vec<u8> = (0..SIZE).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut s = connect(&c.client, vip()).await.unwrap();
    assert_eq!(hello(&mut s).await.unwrap(), "ep1");
    let (mut r, mut w) = s.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut echoed = Vec::with_capacity(SIZE);
    tokio::time::timeout(Duration::from_secs(60), r.read_to_end(&mut echoed)).await.unwrap().unwrap();
    writer.await.unwrap();
    assert_eq!(echoed.len(), SIZE);
    assert!(echoed == data, "echoed bytes differ");
    let traffic = proxy.traffic();
    assert!(traffic.spliced_bytes > SIZE as u64, "bulk data went through splice: {traffic:?}");
    proxy.cleanup().await.unwrap();
}

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` inside namespace `netns`.
fn spawn_in(netns: &str, cmd: &[&str]) -> Child {
    let child = std::process::Command::new("ip")
        .args(["netns", "exec", netns])
        .args(cmd)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawning in a namespace");
    Child(child)
}

/// `iperf3 -c` from the client pod for 3 s; the received rate in Gbit/s.
async fn iperf(client: &Pod, to: SocketAddrV4, extra: &[&str]) -> f64 {
    let (netns, host, port) = (client.netns.clone(), to.ip().to_string(), to.port().to_string());
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("ip")
            .args(["netns", "exec", &netns, "iperf3", "-c", &host, "-p", &port, "-t", "3", "-J"])
            .args(&extra)
            .output()
    })
    .await
    .expect("iperf3 thread")
    .expect("iperf3 runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    json["end"]["sum_received"]["bits_per_second"].as_f64().unwrap_or(0.0) / 1e9
}

/// CPU time (user + system) of process `pid` so far, in seconds.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start at state (3).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12].iter().filter_map(|i| fields.get(*i)?.parse::<f64>().ok()).sum();
    ticks / 100.0
}

fn have(tool: &str) -> bool {
    std::process::Command::new(tool).arg("-v").output().is_ok()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Not a test: iperf3 through the proxy against the direct pod-to-pod path
/// and HAProxy (TCP mode, defaults) in the node namespace; prints the
/// medians of interleaved runs and the proxies' CPU time per GB. Run with
/// `cargo test --release -p svcnet-proxy --test userspace throughput -- --ignored --nocapture`
/// (`STREAMS="1 4"`: the iperf3 parallel stream counts to try).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: needs iperf3 (and haproxy), takes about two minutes"]
async fn throughput_compared_with_direct_and_haproxy() {
    if !have("iperf3") {
        eprintln!("skipping: no iperf3");
        return;
    }
    let Some(c) = cluster(1).await else { return };
    let ep = &c.backends[0];
    let _server = spawn_in(&ep.netns, &["iperf3", "-s", "-p", "5201"]);
    let mut svc = service("iperf", VIP, Protocol::Tcp, vec![Endpoint { port: 5201, ..endpoint(ep, true) }]);
    svc.port = 5201;
    let mut proxy = UserspaceProxy::new(c.env.clone(), Balance::RoundRobin);
    proxy.sync(&snapshot(vec![svc])).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let haproxy = have("haproxy").then(|| {
        let cfg = dir.path().join("haproxy.cfg");
        let text = format!(
            "global\n  maxconn 1000\ndefaults\n  mode tcp\n  timeout connect 1s\n  timeout client 60s\n  \
             timeout server 60s\nlisten iperf\n  bind {GATEWAY}:15201\n  server ep1 {}:5201\n",
            ep.ip
        );
        std::fs::write(&cfg, text).unwrap();
        spawn_in(&c.env.netns, &["haproxy", "-db", "-f", cfg.to_str().unwrap()])
    });
    let haproxy_pid = haproxy.as_ref().map(|h| h.0.id().to_string());
    tokio::time::sleep(Duration::from_millis(500)).await;

    let streams_list = std::env::var("STREAMS").unwrap_or_else(|_| "1 4".into());
    for streams in streams_list.split_whitespace() {
        let p = ["-P", streams];
        let (mut direct, mut proxied, mut reverse, mut ha) = (vec![], vec![], vec![], vec![]);
        let (mut proxy_cpu, mut ha_cpu) = (vec![], vec![]);
        for _ in 0..3 {
            direct.push(iperf(&c.client, SocketAddrV4::new(ep.ip, 5201), &p).await);
            let before = cpu_seconds("self");
            let rate = iperf(&c.client, SocketAddrV4::new(VIP, 5201), &p).await;
            proxy_cpu.push((cpu_seconds("self") - before) / (rate * 3.0 / 8.0));
            proxied.push(rate);
            reverse.push(iperf(&c.client, SocketAddrV4::new(VIP, 5201), &["-P", streams, "-R"]).await);
            if let Some(pid) = &haproxy_pid {
                let before = cpu_seconds(pid);
                let rate = iperf(&c.client, SocketAddrV4::new(GATEWAY, 15201), &p).await;
                ha_cpu.push((cpu_seconds(pid) - before) / (rate * 3.0 / 8.0));
                ha.push(rate);
            }
        }
        let (direct, proxied, reverse, ha) = (median(direct), median(proxied), median(reverse), median(ha));
        eprintln!(
            "streams {streams}: direct {direct:.1} Gbit/s, userspace proxy {proxied:.1} (reverse {reverse:.1}), \
             haproxy {ha:.1}; proxy/direct {:.2}, proxy/haproxy {:.2}; CPU s/GB: proxy {:.3}, haproxy {:.3}",
            proxied / direct,
            proxied / ha,
            median(proxy_cpu),
            median(ha_cpu),
        );
    }
    eprintln!("{:?}", proxy.traffic());
    drop(haproxy);
    proxy.cleanup().await.unwrap();
}
