//! The nftables data plane against a real kernel: a node namespace on a
//! small node network (`172.18.0.0/24`), its bridge `cni0` (10.244.1.1/24)
//! with backend pods answering with their name and the address they see,
//! a client pod, and a host outside the cluster on the node network.
//!
//! Every test builds its own namespaces, named `svnft-<pid>-<n>-*`, and
//! deletes exactly those when it ends, passed or failed. The tests need
//! root, `ip`, `nft` and `conntrack`; without them they are skipped.
//!
//! `bench_10k_services` (ignored) measures programming 10,000 Services:
//! `cargo test --release -p svcnet-proxy --test nft -- --ignored --nocapture bench`.

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use svcnet_netns::NetnsSockets;
use svcnet_netns::ip::{self, NodeNet, PodNet};
use svcnet_proxy::model::{Affinity, Endpoint, Protocol, ServicePort, Snapshot};
use svcnet_proxy::nft::{Facts, NftProxy, Ruleset, SyncKind};
use svcnet_proxy::{DataPlane, NodeEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinHandle;

const NODE_IP: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 2);
const OUTSIDE_IP: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 3);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 100);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const LB_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
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
    ip: Ipv4Addr,
    sockets: NetnsSockets,
}

struct Cluster {
    env: NodeEnv,
    backends: Vec<Pod>,
    client: Pod,
    /// A host on the node network, outside the cluster, routing the
    /// service CIDR and LB IPs through the node.
    outside: Pod,
    /// The node itself (its own sockets).
    node: Pod,
    servers: Vec<JoinHandle<()>>,
    prefix: String,
    // Last, so the namespaces go after everything using them.
    ns: Namespaces,
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
    let tools = [("ip", "-V"), ("nft", "--version"), ("conntrack", "--version")]
        .iter()
        .all(|(t, v)| std::process::Command::new(t).arg(v).output().is_ok_and(|o| o.status.success()));
    if !(root && tools) {
        eprintln!("skipping: the nftables kernel tests need root, ip, nft and conntrack");
    }
    root && tools
}

fn sh(netns: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["netns", "exec", netns];
    all.extend_from_slice(args);
    std::process::Command::new("ip").args(&all).output().unwrap_or_else(|e| panic!("ip {all:?}: {e}"))
}

/// A node with `backends` backend pods (ep1, ep2, ...: 10.244.1.11, .12,
/// ...), a client pod (10.244.1.100) and an outside host; None when the
/// tests cannot run here.
async fn cluster(backends: usize) -> Option<Cluster> {
    if !kernel_tests_possible() {
        return None;
    }
    let prefix = format!("svnft-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
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
    // A host, not a node: its bridge sits outside the cluster's pod CIDR.
    ip::create_node(Some(&fabric), &node_net(&outside, 2, OUTSIDE_IP, 250)).await.expect("outside host");
    for route in [format!("10.96.0.0/12 via {NODE_IP}"), format!("{LB_IP} via {NODE_IP}")] {
        let mut args = vec!["-n", outside.as_str(), "route", "add"];
        args.extend(route.split(' '));
        let out = std::process::Command::new("ip").args(&args).output().expect("ip route");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    let mut pods = Vec::new();
    for (i, name) in (0..backends).map(|i| format!("ep{}", i + 1)).chain(["client".to_string()]).enumerate() {
        let netns = format!("{prefix}-{name}");
        ns.0.push(netns.clone());
        let ip = if name == "client" { CLIENT_IP } else { Ipv4Addr::new(10, 244, 1, 11 + i as u8) };
        let pod =
            PodNet { netns: netns.clone(), host_veth: format!("veth-{name}"), ip, prefix_len: 24, gateway: GATEWAY };
        ip::create_pod(&node, &pod).await.expect("pod namespace");
        // As the CNI bridge plugin's hairpinMode: a pod reaching itself
        // through a service is bridged back out of its own port.
        let out = std::process::Command::new("ip")
            .args(["-n", &node, "link", "set", &pod.host_veth, "type", "bridge_slave", "hairpin", "on"])
            .output()
            .expect("ip link");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        pods.push(Pod { name, ip, sockets: NetnsSockets::enter(&ip::netns_path(&netns)).expect("pod sockets") });
    }
    let client = pods.pop().expect("the client pod is last");
    let node_sockets = NetnsSockets::enter(&ip::netns_path(&node)).expect("node sockets");
    let env = NodeEnv {
        node_name: "node1".into(),
        netns: node.clone(),
        sockets: node_sockets.clone(),
        node_ips: vec![NODE_IP],
        pod_cidr: "10.244.1.0/24".into(),
        bridge: "cni0".into(),
        cluster_cidr: "10.244.0.0/16".into(),
        service_cidr: "10.96.0.0/12".into(),
    };
    let outside = Pod {
        name: "outside".into(),
        ip: OUTSIDE_IP,
        sockets: NetnsSockets::enter(&ip::netns_path(&outside)).expect("outside sockets"),
    };
    let node_pod = Pod { name: "node".into(), ip: NODE_IP, sockets: node_sockets };
    let mut cluster = Cluster { env, backends: pods, client, outside, node: node_pod, servers: Vec::new(), prefix, ns };
    for i in 0..cluster.backends.len() {
        let tcp = serve_tcp(&cluster.backends[i]).await;
        let udp = serve_udp(&cluster.backends[i]).await;
        cluster.servers.extend([tcp, udp]);
    }
    Some(cluster)
}

impl Cluster {
    fn nft(&self, args: &[&str]) -> String {
        let mut all = vec!["nft"];
        all.extend_from_slice(args);
        let out = sh(&self.env.netns, &all);
        assert!(out.status.success(), "nft {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A bare namespace (no interfaces), for loading tables side by side.
    async fn scratch(&mut self, name: &str) -> String {
        let netns = format!("{}-{name}", self.prefix);
        ip::add_netns(&netns).await.expect("scratch namespace");
        self.ns.0.push(netns.clone());
        netns
    }
}

/// On port 8080: says "<name> <peer address>\n", then echoes until EOF.
async fn serve_tcp(pod: &Pod) -> JoinHandle<()> {
    let listener =
        pod.sockets.tcp_listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, BACKEND_PORT))).await.expect("backend listens");
    let name = pod.name.clone();
    tokio::spawn(async move {
        while let Ok((mut s, peer)) = listener.accept().await {
            let name = name.clone();
            tokio::spawn(async move {
                let _ = s.write_all(format!("{name} {}\n", peer.ip()).as_bytes()).await;
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    })
}

/// On UDP port 8080: answers every datagram with "<name> <peer address>".
async fn serve_udp(pod: &Pod) -> JoinHandle<()> {
    let socket =
        pod.sockets.udp_bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, BACKEND_PORT))).await.expect("backend binds");
    let name = pod.name.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((_, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(format!("{name} {}", from.ip()).as_bytes(), from).await;
        }
    })
}

async fn connect_within(from: &Pod, to: SocketAddrV4, limit: Duration) -> io::Result<TcpStream> {
    let socket = from.sockets.tcp_socket(false).await?;
    tokio::time::timeout(limit, socket.connect(to.into()))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// The first line the server sends: "<name> <peer>".
async fn hello(stream: &mut TcpStream) -> io::Result<(String, Ipv4Addr)> {
    let mut line = Vec::new();
    loop {
        let b = tokio::time::timeout(Duration::from_secs(5), stream.read_u8())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no hello"))??;
        if b == b'\n' {
            break;
        }
        line.push(b);
    }
    parse_hello(&String::from_utf8_lossy(&line))
}

fn parse_hello(s: &str) -> io::Result<(String, Ipv4Addr)> {
    let (name, peer) = s.split_once(' ').ok_or_else(|| io::Error::other(format!("bad hello {s:?}")))?;
    Ok((name.to_string(), peer.parse().map_err(|_| io::Error::other(format!("bad hello {s:?}")))?))
}

/// Connects, reads who answered and whom it saw, and closes.
async fn ask(from: &Pod, to: SocketAddrV4) -> (String, Ipv4Addr) {
    let mut s = connect_within(from, to, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("connecting from {} to {to}: {e}", from.name));
    hello(&mut s).await.unwrap_or_else(|e| panic!("reading from {to}: {e}"))
}

/// Who answers `n` connections.
async fn answers(from: &Pod, to: SocketAddrV4, n: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        seen.insert(ask(from, to).await.0);
    }
    seen
}

async fn udp_exchange(socket: &UdpSocket) -> io::Result<(String, Ipv4Addr)> {
    socket.send(b"hi").await?;
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no UDP answer"))??;
    parse_hello(&String::from_utf8_lossy(&buf[..n]))
}

fn endpoint(pod: &Pod, local: bool) -> Endpoint {
    Endpoint {
        ip: pod.ip,
        port: BACKEND_PORT,
        node: Some(if local { "node1" } else { "node2" }.into()),
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

fn names(pods: &[Pod]) -> BTreeSet<String> {
    pods.iter().map(|p| p.name.clone()).collect()
}

async fn synced(c: &Cluster, snap: &Snapshot) -> NftProxy {
    let mut proxy = NftProxy::new(c.env.clone());
    proxy.sync(snap).await.unwrap_or_else(|e| panic!("sync: {e}"));
    proxy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_is_reached_through_the_cluster_ip_with_the_clients_address() {
    let Some(c) = cluster(3).await else { return };
    let proxy = synced(&c, &snapshot(vec![web(&c.backends)])).await;
    assert_eq!(proxy.last_sync(), Some(SyncKind::Create { netlink: true }), "a new table's slots come over netlink");
    let mut seen = BTreeSet::new();
    for _ in 0..60 {
        let (name, peer) = ask(&c.client, vip()).await;
        assert_eq!(peer, CLIENT_IP, "a pod's traffic to a cluster IP keeps its address");
        seen.insert(name);
        if seen.len() == 3 {
            break;
        }
    }
    assert_eq!(seen, names(&c.backends), "random balancing reaches every endpoint");
    // From the node itself (output hook), with a route to the VIP.
    sh(&c.env.netns, &["ip", "route", "add", "10.96.0.0/12", "dev", "cni0"]);
    assert!(names(&c.backends).contains(&ask(&c.node, vip()).await.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_endpoints_refuses_at_once_and_unknown_addresses_are_dropped() {
    let Some(c) = cluster(1).await else { return };
    let mut empty = service("empty", VIP, Protocol::Tcp, vec![]);
    empty.node_port = Some(NODE_PORT);
    let other = service("web", Ipv4Addr::new(10, 96, 0, 11), Protocol::Tcp, vec![endpoint(&c.backends[0], true)]);
    let _proxy = synced(&c, &snapshot(vec![empty, other])).await;
    for to in [vip(), SocketAddrV4::new(NODE_IP, NODE_PORT), SocketAddrV4::new(Ipv4Addr::new(10, 96, 0, 11), 81)] {
        let started = Instant::now();
        let err = connect_within(&c.client, to, Duration::from_secs(5)).await.err();
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::ConnectionRefused), "{to} refuses");
        assert!(started.elapsed() < Duration::from_secs(2), "{to} refused at once, not timed out");
    }
    let unallocated = SocketAddrV4::new(Ipv4Addr::new(10, 96, 0, 99), PORT);
    let err = connect_within(&c.client, unallocated, Duration::from_millis(1500)).await.err();
    assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::TimedOut), "an unallocated cluster IP is dropped");
    // UDP without endpoints: an ICMP port unreachable.
    let mut dns = service("dns", Ipv4Addr::new(10, 96, 0, 53), Protocol::Udp, vec![]);
    dns.port = 53;
    let _proxy = synced(&c, &snapshot(vec![dns])).await;
    let s = c.client.sockets.udp_bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).await.expect("bind");
    s.connect(SocketAddrV4::new(Ipv4Addr::new(10, 96, 0, 53), 53)).await.expect("connect");
    let err = udp_exchange(&s).await.err();
    assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::ConnectionRefused));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ip_affinity_sticks_and_expires() {
    let Some(c) = cluster(3).await else { return };
    let mut sticky = web(&c.backends);
    sticky.affinity = Affinity::ClientIp { timeout_seconds: 2 };
    let proxy = synced(&c, &snapshot(vec![sticky])).await;
    let first = answers(&c.client, vip(), 15).await;
    assert_eq!(first.len(), 1, "every connection goes to one endpoint: {first:?}");
    let table = c.nft(&["list", "table", "ip", "svcnet"]);
    assert!(table.contains(&format!("elements = {{ {CLIENT_IP} expires")), "{table}");
    let vs = proxy.describe().await;
    assert!(vs.iter().any(|v| v.address == vip().to_string() && v.flags == "persistent 2"), "{vs:?}");
    // Silent for longer than the timeout: the client is forgotten.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let table = c.nft(&["list", "table", "ip", "svcnet"]);
    assert!(!table.contains(&CLIENT_IP.to_string()), "the affinity expired:\n{table}");
    let again = answers(&c.client, vip(), 10).await;
    assert_eq!(again.len(), 1, "and it sticks to the new choice: {again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_is_balanced_and_stale_flows_follow_endpoint_changes() {
    let Some(c) = cluster(2).await else { return };
    let mut dns = service("dns", VIP, Protocol::Udp, c.backends.iter().map(|p| endpoint(p, true)).collect());
    let mut proxy = synced(&c, &snapshot(vec![dns.clone()])).await;
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        let s = c.client.sockets.udp_bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).await.expect("bind");
        s.connect(vip()).await.expect("connect");
        let (name, peer) = udp_exchange(&s).await.expect("UDP answer");
        assert_eq!(peer, CLIENT_IP);
        seen.insert(name);
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen, names(&c.backends));
    // One long-lived flow; its endpoint leaves the service.
    let s = c.client.sockets.udp_bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).await.expect("bind");
    s.connect(vip()).await.expect("connect");
    let (first, _) = udp_exchange(&s).await.expect("UDP answer");
    let staying: Vec<Endpoint> =
        dns.endpoints.iter().filter(|e| e.ip != c.backends[first_index(&first)].ip).cloned().collect();
    dns.endpoints = staying;
    proxy.sync(&snapshot(vec![dns.clone()])).await.expect("sync");
    let (now, _) = udp_exchange(&s).await.expect("UDP answer after the change");
    assert_ne!(now, first, "the flow's conntrack entry was deleted with its endpoint");
    // From no endpoint to one: the flow created meanwhile is deleted too.
    dns.endpoints.clear();
    proxy.sync(&snapshot(vec![dns.clone()])).await.expect("sync");
    assert!(udp_exchange(&s).await.is_err());
    dns.endpoints = vec![endpoint(&c.backends[0], true)];
    proxy.sync(&snapshot(vec![dns])).await.expect("sync");
    assert_eventually!(udp_exchange(&s).await.is_ok_and(|(n, _)| n == "ep1"), "the flow reaches the new endpoint");
}

fn first_index(name: &str) -> usize {
    name.trim_start_matches("ep").parse::<usize>().map(|n| n - 1).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ports_answer_on_the_node_ip_and_masquerade_with_the_cluster_policy() {
    let Some(c) = cluster(2).await else { return };
    let mut np = web(&c.backends);
    np.node_port = Some(NODE_PORT);
    let _proxy = synced(&c, &snapshot(vec![np])).await;
    let to = SocketAddrV4::new(NODE_IP, NODE_PORT);
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        let (name, peer) = ask(&c.outside, to).await;
        assert_eq!(peer, GATEWAY, "outside traffic to a Cluster-policy node port is masqueraded");
        seen.insert(name);
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen, names(&c.backends));
    let (_, peer) = ask(&c.client, to).await;
    assert_eq!(peer, GATEWAY, "a pod's traffic to a node port too");
    // From the node itself (output hook).
    let (name, _) = ask(&c.node, to).await;
    assert!(names(&c.backends).contains(&name));
    // The node port is not reachable on localhost (nor required to be).
    let err = connect_within(&c.node, SocketAddrV4::new(Ipv4Addr::LOCALHOST, NODE_PORT), Duration::from_secs(1)).await;
    assert!(err.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_traffic_policy_local_keeps_the_client_address_and_short_circuits_pods() {
    let Some(c) = cluster(3).await else { return };
    let mut local = web(&c.backends);
    // ep3 runs on another node (as far as the snapshot says).
    local.endpoints[2].local = false;
    local.endpoints[2].node = Some("node2".into());
    local.node_port = Some(NODE_PORT);
    local.load_balancer_ips = vec![LB_IP];
    local.external_local = true;
    let _proxy = synced(&c, &snapshot(vec![local])).await;
    for to in [SocketAddrV4::new(NODE_IP, NODE_PORT), SocketAddrV4::new(LB_IP, PORT)] {
        let mut seen = BTreeSet::new();
        for _ in 0..30 {
            let (name, peer) = ask(&c.outside, to).await;
            assert_eq!(peer, OUTSIDE_IP, "{to}: Local policy keeps the client's address");
            seen.insert(name);
        }
        assert_eq!(seen, BTreeSet::from(["ep1".to_string(), "ep2".to_string()]), "{to}: local endpoints only");
    }
    // Pods are short-circuited to every (cluster) endpoint, unmasqueraded.
    let mut seen = BTreeSet::new();
    for _ in 0..60 {
        let (name, peer) = ask(&c.client, SocketAddrV4::new(LB_IP, PORT)).await;
        assert_eq!(peer, CLIENT_IP);
        seen.insert(name);
        if seen.len() == 3 {
            break;
        }
    }
    assert_eq!(seen, names(&c.backends));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_source_ranges_admit_only_their_sources_to_the_lb_ip() {
    let Some(c) = cluster(2).await else { return };
    let mut lb = web(&c.backends);
    lb.node_port = Some(NODE_PORT);
    lb.load_balancer_ips = vec![LB_IP];
    lb.load_balancer_source_ranges = vec![format!("{CLIENT_IP}/32").parse().expect("a CIDR")];
    let _proxy = synced(&c, &snapshot(vec![lb])).await;
    let to_lb = SocketAddrV4::new(LB_IP, PORT);
    let (name, peer) = ask(&c.client, to_lb).await;
    assert!(names(&c.backends).contains(&name));
    assert_eq!(peer, GATEWAY, "an allowed pod reaches the LB IP (masqueraded, Cluster policy)");
    for (who, from) in [("a pod outside the ranges", &c.backends[1]), ("a host outside the ranges", &c.outside)] {
        let err = connect_within(from, to_lb, Duration::from_millis(1500)).await.err();
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::TimedOut), "{who}: dropped at the LB IP");
    }
    // Node ports and the cluster IP are not filtered.
    let (name, _) = ask(&c.outside, SocketAddrV4::new(NODE_IP, NODE_PORT)).await;
    assert!(names(&c.backends).contains(&name));
    let (name, _) = ask(&c.backends[1], vip()).await;
    assert!(names(&c.backends).contains(&name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_traffic_policy_local_without_local_endpoints_drops_outside_traffic() {
    let Some(c) = cluster(1).await else { return };
    let mut remote = web(&c.backends);
    remote.endpoints[0].local = false;
    remote.node_port = Some(NODE_PORT);
    remote.external_local = true;
    let _proxy = synced(&c, &snapshot(vec![remote])).await;
    let to = SocketAddrV4::new(NODE_IP, NODE_PORT);
    let err = connect_within(&c.outside, to, Duration::from_millis(1500)).await.err();
    assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::TimedOut), "dropped, so a load balancer tries another node");
    assert_eq!(ask(&c.client, to).await, ("ep1".to_string(), CLIENT_IP), "pods still reach the cluster endpoints");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_traffic_policy_local_sends_cluster_ip_traffic_to_local_endpoints_only() {
    let Some(c) = cluster(2).await else { return };
    let mut itp = web(&c.backends);
    itp.endpoints[1].local = false;
    itp.internal_local = true;
    let _proxy = synced(&c, &snapshot(vec![itp])).await;
    assert_eq!(answers(&c.client, vip(), 20).await, BTreeSet::from(["ep1".to_string()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ip_traffic_from_outside_the_cluster_is_masqueraded() {
    let Some(c) = cluster(1).await else { return };
    let mut ext = web(&c.backends);
    ext.external_ips = vec![LB_IP];
    let _proxy = synced(&c, &snapshot(vec![ext])).await;
    assert_eq!(ask(&c.outside, vip()).await, ("ep1".to_string(), GATEWAY));
    assert_eq!(ask(&c.outside, SocketAddrV4::new(LB_IP, PORT)).await, ("ep1".to_string(), GATEWAY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_reaches_itself_through_its_service() {
    let Some(c) = cluster(2).await else { return };
    let only_ep1 = service("self", VIP, Protocol::Tcp, vec![endpoint(&c.backends[0], true)]);
    let _proxy = synced(&c, &snapshot(vec![only_ep1])).await;
    // Hairpin: masqueraded, or the reply would skip the un-DNAT.
    assert_eq!(ask(&c.backends[0], vip()).await, ("ep1".to_string(), GATEWAY));
    // Another pod keeps its address.
    assert_eq!(ask(&c.backends[1], vip()).await, ("ep1".to_string(), c.backends[1].ip));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_established_connection_survives_an_agent_restart() {
    let Some(c) = cluster(2).await else { return };
    let snap = snapshot(vec![web(&c.backends)]);
    let proxy = synced(&c, &snap).await;
    let mut conn = connect_within(&c.client, vip(), Duration::from_secs(5)).await.expect("connect");
    let (name, _) = hello(&mut conn).await.expect("hello");
    drop(proxy);
    // A new agent: it finds the table and replaces it in one transaction.
    let mut restarted = NftProxy::new(c.env.clone());
    restarted.sync(&snap).await.expect("resync");
    assert_eq!(restarted.last_sync(), Some(SyncKind::Replace));
    let table = c.nft(&["list", "table", "ip", "svcnet"]);
    assert_eq!(table.matches("chain lb-tcp-2 {").count(), 1, "{table}");
    // ... even with a different snapshot: the connection's endpoint stays.
    let mut other = web(&c.backends);
    other.endpoints.retain(|e| e.ip != c.backends[first_index(&name)].ip);
    let mut again = NftProxy::new(c.env.clone());
    again.sync(&snapshot(vec![other])).await.expect("resync");
    conn.write_all(b"still there\n").await.expect("write");
    let mut buf = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut buf)).await.expect("echo in time").expect("echo");
    assert_eq!(&buf, b"still there\n");
    assert_ne!(ask(&c.client, vip()).await.0, name, "new connections follow the new table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_lists_every_address_with_its_connections() {
    let Some(c) = cluster(2).await else { return };
    let mut np = web(&c.backends);
    np.node_port = Some(NODE_PORT);
    np.external_ips = vec![LB_IP];
    let proxy = synced(&c, &snapshot(vec![np])).await;
    let mut conn = connect_within(&c.client, vip(), Duration::from_secs(5)).await.expect("connect");
    let (name, _) = hello(&mut conn).await.expect("hello");
    let list = proxy.describe().await;
    let addresses: Vec<&str> = list.iter().map(|v| v.address.as_str()).collect();
    assert_eq!(addresses, vec!["10.96.0.10:80", "198.51.100.7:80", "172.18.0.2:30080"]);
    let ip = c.backends[first_index(&name)].ip;
    let endpoint = list[0].endpoints.iter().find(|e| e.address == format!("{ip}:{BACKEND_PORT}")).expect("listed");
    assert_eq!((endpoint.active, endpoint.weight), (1, 1), "{list:?}");
    assert_eq!(list[0].scheduler, "random");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sctp_service_ports_are_programmed() {
    let Some(c) = cluster(1).await else { return };
    let mut sctp = web(&c.backends);
    sctp.protocol = Protocol::Sctp;
    sctp.affinity = Affinity::ClientIp { timeout_seconds: 60 };
    let tcp = service("tcp", Ipv4Addr::new(10, 96, 0, 11), Protocol::Tcp, vec![endpoint(&c.backends[0], true)]);
    let proxy = synced(&c, &snapshot(vec![sctp, tcp])).await;
    let table = c.nft(&["list", "table", "ip", "svcnet"]);
    // Either programmed, or (kernels without SCTP NAT) skipped alone.
    if table.contains("sctp") {
        assert!(table.contains("10.96.0.10 . sctp . 80"), "{table}");
    } else {
        eprintln!("this kernel refused SCTP; it was skipped");
    }
    assert!(proxy.describe().await.iter().any(|v| v.address == "10.96.0.11:80"));
    assert_eq!(ask(&c.client, SocketAddrV4::new(Ipv4Addr::new(10, 96, 0, 11), PORT)).await.0, "ep1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_the_table() {
    let Some(c) = cluster(1).await else { return };
    let mut proxy = synced(&c, &snapshot(vec![web(&c.backends)])).await;
    proxy.cleanup().await.expect("cleanup");
    let out = sh(&c.env.netns, &["nft", "list", "tables"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("svcnet"));
    proxy.cleanup().await.expect("twice is fine");
    proxy.sync(&snapshot(vec![web(&c.backends)])).await.expect("and a sync brings it back");
    assert_eq!(ask(&c.client, vip()).await.0, "ep1");
}

/// `nft list table` with what may differ between equal tables put in
/// order: objects sorted by kind and name, set elements sorted.
fn normalize(listing: &str) -> Vec<String> {
    // nft 1.0.6 prints the port of a map key as `tcp dport` or `th dport`
    // depending on its cache; the kernel holds the same bytes.
    let listing = listing.replace("tcp dport . numgen", "th dport . numgen");
    let mut blocks: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in listing.lines() {
        if line.starts_with("\t}") {
            if let Some(b) = current.take() {
                blocks.push(b);
            }
            continue;
        }
        if line.starts_with("\tchain ") || line.starts_with("\tset ") || line.starts_with("\tmap ") {
            current = Some(String::new());
        }
        if let Some(b) = current.as_mut() {
            b.push_str(line.trim());
            b.push(if line.trim_end().ends_with(',') { ' ' } else { '\n' });
        }
    }
    let mut out: Vec<String> = blocks
        .into_iter()
        .map(|b| {
            let Some(start) = b.find("elements = { ") else { return b };
            let rest = &b[start + 13..];
            let end = rest.find(" }").unwrap_or(rest.len());
            let mut elems: Vec<&str> = rest[..end].split(", ").collect();
            elems.sort_unstable();
            format!("{}elements = {{ {} }}{}", &b[..start], elems.join(", "), &rest[end..].trim_start_matches(" }"))
        })
        .collect();
    out.sort();
    out
}

/// `n` is a multiple of `k` (the workspace's MSRV predates
/// `is_multiple_of`).
#[allow(clippy::manual_is_multiple_of)]
fn every(n: usize, k: usize) -> bool {
    n % k == 0
}

/// A dozen services whose every feature varies with `step`.
fn service_mix(step: usize, pods: &[Ipv4Addr]) -> Snapshot {
    let mut services = Vec::new();
    for i in 0..12 {
        if every(i + step, 5) {
            continue;
        }
        let n = (i * 7 + step * 3) % (pods.len() + 1);
        let eps: Vec<Endpoint> = (0..n)
            .map(|k| Endpoint {
                ip: pods[(i + k + step) % pods.len()],
                port: 8080 + (k as u16 % 2),
                node: None,
                ready: !every(k + step, 4),
                serving: true,
                terminating: every(k + step, 4),
                local: every(k, 2),
            })
            .collect();
        let mut s = service(&format!("s{i}"), Ipv4Addr::new(10, 96, 1, i as u8), Protocol::Tcp, eps);
        s.endpoints.sort_by_key(|e| (e.ip, e.port));
        s.endpoints.dedup_by_key(|e| (e.ip, e.port));
        if every(i + step, 3) {
            s.protocol = Protocol::Udp;
        }
        if i % 4 == 1 {
            s.node_port = Some(30000 + i as u16);
        }
        if (i + step) % 4 == 2 {
            s.load_balancer_ips = vec![Ipv4Addr::new(198, 51, 100, (i % 3) as u8 + 1)];
            s.external_local = every(step, 2);
        }
        if (i * step) % 6 == 3 {
            s.affinity = Affinity::ClientIp { timeout_seconds: 10 + (step as u32 % 2) * 10 };
        }
        s.internal_local = every(i + step, 7);
        services.push(s);
    }
    snapshot(services)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_syncs_leave_the_table_a_fresh_load_makes() {
    let Some(mut c) = cluster(0).await else { return };
    let fresh_ns = c.scratch("fresh").await;
    let pods: Vec<Ipv4Addr> = (2..8).map(|i| Ipv4Addr::new(10, 244, 1, i)).collect();
    let mut proxy = NftProxy::new(c.env.clone());
    let mut kinds = Vec::new();
    for step in 0..16 {
        let mut snap = service_mix(step / 2, &pods);
        if step % 2 == 1 {
            // An endpoint moves: elements only, a netlink batch.
            if let Some(e) = snap.services.iter_mut().flat_map(|s| s.endpoints.iter_mut()).nth(step) {
                e.port += 100;
            }
        }
        proxy.sync(&snap).await.unwrap_or_else(|e| panic!("step {step}: {e}"));
        kinds.push(proxy.last_sync());
        let text = svcnet_proxy::nft::render(&snap, &Facts::of(&snap, None));
        let _ = sh(&fresh_ns, &["nft", "delete", "table", "ip", "svcnet"]);
        let mut child = std::process::Command::new("ip")
            .args(["netns", "exec", &fresh_ns, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("nft");
        {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
        }
        let out = child.wait_with_output().expect("nft");
        assert!(out.status.success(), "step {step}: {}", String::from_utf8_lossy(&out.stderr));
        let listed = |netns: &str| {
            normalize(&String::from_utf8_lossy(&sh(netns, &["nft", "list", "table", "ip", "svcnet"]).stdout))
        };
        let (incremental, fresh) = (listed(&c.env.netns), listed(&fresh_ns));
        if incremental != fresh {
            let only_inc: Vec<_> = incremental.iter().filter(|b| !fresh.contains(b)).collect();
            let only_fresh: Vec<_> = fresh.iter().filter(|b| !incremental.contains(b)).collect();
            panic!(
                "step {step}: the incrementally synced table differs:\nonly incremental: {only_inc:#?}\nonly fresh: {only_fresh:#?}"
            );
        }
    }
    assert_eq!(kinds[0], Some(SyncKind::Create { netlink: true }));
    assert!(kinds.contains(&Some(SyncKind::Delta { netlink: true })), "{kinds:?}");
    assert!(kinds.contains(&Some(SyncKind::Delta { netlink: false })), "{kinds:?}");
}

/// 10,000 service ports × 10 endpoints, with a node port on every tenth.
fn big(n: usize, endpoints: usize, salt: u32) -> Snapshot {
    let services = (0..n)
        .map(|i| {
            let eps = (0..endpoints)
                .map(|k| {
                    let x = (i * endpoints + k) as u32;
                    Endpoint {
                        ip: Ipv4Addr::from(0x0af4_0000 + (x % 60_000) + 2),
                        port: 8080,
                        node: None,
                        ready: true,
                        serving: true,
                        terminating: false,
                        local: false,
                    }
                })
                .collect();
            let mut s = service(&format!("svc-{i:05}"), Ipv4Addr::from(0x0a60_0000 + i as u32 + 1), Protocol::Tcp, eps);
            s.namespace = format!("ns-{}", i % 100);
            if i % 10 == 0 {
                s.node_port = Some(30000 + (i / 10) as u16 % 2768);
            }
            if i == 0 {
                s.endpoints[0].port = 8080 + (salt % 1000) as u16;
            }
            s
        })
        .collect();
    snapshot(services)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run in release mode with --ignored --nocapture"]
async fn bench_10k_services() {
    let Some(c) = cluster(0).await else { return };
    let t = Instant::now();
    let snap = big(10_000, 10, 0);
    let built = t.elapsed();
    let mut r = Ruleset::new(Facts::of(&snap, None));
    let t = Instant::now();
    r.update(&snap);
    let text = r.render_full();
    eprintln!("render: {:?} for {} bytes (building the snapshot: {built:?})", t.elapsed(), text.len());

    let mut proxy = NftProxy::new(c.env.clone());
    let t = Instant::now();
    proxy.sync(&snap).await.expect("sync");
    eprintln!("from scratch: 10,000 services × 10 endpoints in {:?} ({:?})", t.elapsed(), proxy.last_sync());

    let mut times = Vec::new();
    for salt in 1..=20 {
        let snap = big(10_000, 10, salt);
        let t = Instant::now();
        proxy.sync(&snap).await.expect("sync");
        times.push(t.elapsed());
        assert_eq!(proxy.last_sync(), Some(SyncKind::Delta { netlink: true }));
    }
    times.sort();
    eprintln!(
        "one endpoint changed at 10,000 services: median {:?}, min {:?}, max {:?}",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
    // A service scaling to an endpoint count no other has: a new shared
    // chain, whose rule binds the 100,000-element slot map.
    let mut grown = big(10_000, 10, 21);
    let extra = Endpoint { ip: Ipv4Addr::new(10, 244, 250, 1), ..grown.services[5].endpoints[0].clone() };
    grown.services[5].endpoints.push(extra);
    let t = Instant::now();
    proxy.sync(&grown).await.expect("sync");
    eprintln!(
        "one service to 11 endpoints (a new lb chain) at 10,000 services: {:?} ({:?})",
        t.elapsed(),
        proxy.last_sync()
    );
    let t = Instant::now();
    proxy.sync(&big(10_000, 10, 21)).await.expect("sync");
    eprintln!("and back (the chain deleted): {:?}", t.elapsed());

    let mut r2 = Ruleset::new(Facts::of(&snap, None));
    r2.update(&big(10_000, 10, 1));
    let mut times = Vec::new();
    for salt in 2..12 {
        let next = big(10_000, 10, salt);
        let t = Instant::now();
        let u = r2.update(&next);
        times.push((t.elapsed(), u.transaction.len()));
    }
    times.sort();
    eprintln!("the renderer's share of one change: median {:?} ({} bytes of transaction)", times[5].0, times[5].1);

    let t = Instant::now();
    let mut restarted = NftProxy::new(c.env.clone());
    restarted.sync(&big(10_000, 10, 3)).await.expect("sync");
    eprintln!("agent restart (replace the 10,000-service table in one transaction): {:?}", t.elapsed());
}
