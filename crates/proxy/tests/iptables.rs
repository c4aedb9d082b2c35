//! The iptables data plane against the kernel: a node namespace with its
//! pod bridge (cni0, 10.244.1.1/24) on a node network (172.18.0.0/24),
//! backend pods answering with their name and the address they saw, a
//! client pod, and an "outside" host on the node network.
//!
//! Every namespace is named `svipt-<pid>-<n>-...`, created by the test and
//! deleted by a guard when it ends, pass or fail. Nothing runs in the
//! host's own namespace.
//!
//! `scale_*` is ignored by default; it measures, and prints, how long
//! programming 10,000 Services takes:
//!
//! ```sh
//! cargo test --release -p svcnet-proxy --test iptables -- --ignored --nocapture scale
//! ```

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use svcnet_netns::NetnsSockets;
use svcnet_netns::ip::{NodeNet, PodNet, create_fabric, create_node, create_pod, netns_path};
use svcnet_proxy::iptables::{IptablesProxy, build};
use svcnet_proxy::model::{Affinity, Endpoint, Protocol, ServicePort, Snapshot};
use svcnet_proxy::{DataPlane, NodeEnv};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UdpSocket;

const NODE_IP: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 2);
const OUTSIDE_IP: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 100);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 20);
const TCP_PORT: u16 = 8080;
const UDP_PORT: u16 = 5353;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Deletes the namespaces it names when dropped (synchronously, so it
/// also runs when a test panics).
struct NetnsGuard(Vec<String>);

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        for name in self.0.iter().rev() {
            let _ = std::process::Command::new("ip").args(["netns", "delete", name]).output();
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{name}"));
        }
    }
}

struct Pod {
    ip: Ipv4Addr,
    sockets: NetnsSockets,
}

/// One node with pods; fields drop in order, the guard last.
struct Lab {
    node: String,
    node_sockets: NetnsSockets,
    backends: Vec<Pod>,
    client: Pod,
    outside: NetnsSockets,
    _guard: NetnsGuard,
}

fn tools_present() -> bool {
    let ok = ["iptables-restore", "iptables-save", "conntrack"].iter().all(|t| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !ok {
        eprintln!("skipping: iptables-restore, iptables-save or conntrack missing");
    }
    ok
}

impl Lab {
    /// A node with `backends` pods serving TCP and UDP, a client pod, and
    /// a host outside the cluster on the node network.
    async fn new(backends: usize) -> Lab {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("svipt-{}-{n}", std::process::id());
        let mut guard = NetnsGuard(Vec::new());
        let fabric = format!("{prefix}-f");
        guard.0.push(fabric.clone());
        create_fabric(&fabric).await.expect("fabric");
        let node = format!("{prefix}-n");
        guard.0.push(node.clone());
        let node_net = NodeNet {
            netns: node.clone(),
            index: 1,
            node_ip: NODE_IP,
            node_prefix_len: 24,
            gateway: GATEWAY,
            pod_prefix_len: 24,
            peers: vec![],
        };
        create_node(Some(&fabric), &node_net).await.expect("node");
        let outside = format!("{prefix}-o");
        guard.0.push(outside.clone());
        let outside_net = NodeNet {
            netns: outside.clone(),
            index: 2,
            node_ip: OUTSIDE_IP,
            node_prefix_len: 24,
            gateway: Ipv4Addr::new(10, 244, 99, 1),
            pod_prefix_len: 24,
            peers: vec![],
        };
        create_node(Some(&fabric), &outside_net).await.expect("outside host");

        let mut pods = Vec::new();
        for i in 0..=backends {
            let (name, ip) = if i < backends {
                (format!("{prefix}-p{i}"), Ipv4Addr::new(10, 244, 1, 11 + i as u8))
            } else {
                (format!("{prefix}-c"), CLIENT_IP)
            };
            guard.0.push(name.clone());
            let host_veth = format!("veth{i}");
            let pod =
                PodNet { netns: name.clone(), host_veth: host_veth.clone(), ip, prefix_len: 24, gateway: GATEWAY };
            create_pod(&node, &pod).await.expect("pod");
            // What kubelet's hairpin-veth mode does: a pod may reach itself
            // through a service, which sends the frame back out its port.
            let out = std::process::Command::new("ip")
                .args(["-n", &node, "link", "set", &host_veth, "type", "bridge_slave", "hairpin", "on"])
                .output()
                .expect("ip");
            assert!(out.status.success(), "hairpin: {}", String::from_utf8_lossy(&out.stderr));
            let sockets = NetnsSockets::enter(&netns_path(&name)).expect("enter pod");
            pods.push(Pod { ip, sockets });
        }
        let client = pods.pop().expect("client pod");
        for (i, pod) in pods.iter().enumerate() {
            serve(&pod.sockets, format!("p{i}")).await;
        }
        let node_sockets = NetnsSockets::enter(&netns_path(&node)).expect("enter node");
        let outside = NetnsSockets::enter(&netns_path(&outside)).expect("enter outside");
        Lab { node, node_sockets, backends: pods, client, outside, _guard: guard }
    }

    fn env(&self) -> NodeEnv {
        NodeEnv {
            node_name: "node1".into(),
            netns: self.node.clone(),
            sockets: self.node_sockets.clone(),
            node_ips: vec![NODE_IP],
            pod_cidr: "10.244.1.0/24".into(),
            bridge: "cni0".into(),
            cluster_cidr: "10.244.0.0/16".into(),
            service_cidr: "10.96.0.0/12".into(),
        }
    }

    fn proxy(&self) -> IptablesProxy {
        IptablesProxy::new(self.env())
    }

    /// Endpoints on the backends `which`, on `port`.
    fn endpoints(&self, which: &[usize], port: u16) -> Vec<Endpoint> {
        which
            .iter()
            .map(|&i| Endpoint {
                ip: self.backends[i].ip,
                port,
                node: Some("node1".into()),
                ready: true,
                serving: true,
                terminating: false,
                local: true,
            })
            .collect()
    }

    fn iptables_save(&self) -> String {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.node, "iptables-save"])
            .output()
            .expect("save");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Answers every TCP connection with "NAME PEER_IP\n", then echoes each
/// line it reads as "NAME LINE"; every UDP datagram with "NAME PEER_IP".
async fn serve(sockets: &NetnsSockets, name: String) {
    let any = |port| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
    let listener = sockets.tcp_listen(any(TCP_PORT)).await.expect("listen");
    let tcp_name = name.clone();
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let name = tcp_name.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                if write.write_all(format!("{name} {}\n", peer.ip()).as_bytes()).await.is_err() {
                    return;
                }
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if write.write_all(format!("{name} {line}\n").as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let udp = sockets.udp_bind(any(UDP_PORT)).await.expect("udp bind");
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((_, peer)) = udp.recv_from(&mut buf).await {
            let _ = udp.send_to(format!("{name} {}", peer.ip()).as_bytes(), peer).await;
        }
    });
}

/// Connects to `to` and returns the server's greeting: (name, peer it saw).
async fn hello(from: &NetnsSockets, to: SocketAddr) -> io::Result<(String, String)> {
    let socket = from.tcp_socket(false).await?;
    let stream = tokio::time::timeout(Duration::from_secs(2), socket.connect(to))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("connect to {to}")))??;
    let mut lines = BufReader::new(stream).lines();
    let line = tokio::time::timeout(Duration::from_secs(2), lines.next_line())
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "greeting"))??
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no greeting"))?;
    let (name, peer) = line.split_once(' ').unwrap_or((&line, ""));
    Ok((name.to_string(), peer.to_string()))
}

async fn ask_udp(socket: &UdpSocket, to: SocketAddr) -> io::Result<String> {
    socket.send_to(b"?", to).await?;
    let mut buf = [0u8; 512];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "udp answer"))??;
    Ok(String::from_utf8_lossy(&buf[..n]).split(' ').next().unwrap_or("").to_string())
}

fn addr(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

fn vip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 96, 0, last)
}

fn service(name: &str, cluster_ip: Ipv4Addr, port: u16, endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        namespace: "default".into(),
        name: name.into(),
        port_name: String::new(),
        protocol: Protocol::Tcp,
        cluster_ip,
        port,
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

/// Connects until every name in `want` answered (at most `tries` times).
async fn reach_all(from: &NetnsSockets, to: SocketAddr, want: &[&str], tries: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..tries {
        let (name, _) = hello(from, to).await.unwrap_or_else(|e| panic!("{to}: {e}"));
        seen.insert(name);
        if want.iter().all(|w| seen.contains(*w)) {
            break;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_rules_read_back_identically_from_iptables_save() {
    if !tools_present() {
        return;
    }
    let lab = Lab::new(2).await;
    let mut proxy = lab.proxy();
    let mut web = service("web", vip(20), 80, lab.endpoints(&[0, 1], TCP_PORT));
    web.node_port = Some(30080);
    web.external_ips = vec![Ipv4Addr::new(192, 0, 2, 7)];
    web.affinity = Affinity::ClientIp { timeout_seconds: 30 };
    web.load_balancer_ips = vec![Ipv4Addr::new(198, 51, 100, 7)];
    web.load_balancer_source_ranges = vec!["203.0.113.0/25".parse().expect("a CIDR")];
    let mut local = service("local", vip(21), 80, lab.endpoints(&[0], TCP_PORT));
    local.node_port = Some(30081);
    local.external_local = true;
    let empty = service("empty", vip(22), 80, vec![]);
    let snap = snapshot(vec![web, local, empty]);
    proxy.sync(&snap).await.expect("sync");
    let saved = lab.iptables_save();
    let saved_lines: BTreeSet<&str> = saved.lines().collect();
    let rules = build(&snap);
    for table in [&rules.nat, &rules.filter] {
        for chain in table.chains() {
            for rule in chain.rules.lines() {
                assert!(saved_lines.contains(rule), "not in iptables-save: {rule}\n\n{saved}");
            }
        }
    }
    for jump in svcnet_proxy::iptables::JUMPS {
        let line = format!("-A {} {}", jump.chain, jump.spec);
        assert!(saved_lines.contains(line.as_str()), "missing jump {line}\n\n{saved}");
    }
    // A second sync with the same snapshot writes nothing.
    proxy.sync(&snap).await.expect("resync");
    assert_eq!(proxy.last_sync().restore_bytes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_ip_reaches_every_endpoint_from_pods_and_the_node() {
    if !tools_present() {
        return;
    }
    let lab = Lab::new(3).await;
    let mut proxy = lab.proxy();
    let snap = snapshot(vec![service("web", vip(20), 80, lab.endpoints(&[0, 1, 2], TCP_PORT))]);
    proxy.sync(&snap).await.expect("sync");

    let to = addr(vip(20), 80);
    let seen = reach_all(&lab.client.sockets, to, &["p0", "p1", "p2"], 200).await;
    assert_eq!(seen, ["p0", "p1", "p2"].map(String::from).into());
    // The endpoint sees the pod's own address: no masquerade inside the cluster.
    let (_, peer) = hello(&lab.client.sockets, to).await.expect("hello");
    assert_eq!(peer, CLIENT_IP.to_string());
    // The node itself (hostNetwork clients) through the service CIDR route.
    let (name, _) = hello(&lab.node_sockets, to).await.expect("from the node");
    assert!(name.starts_with('p'));

    // describe: one address, three endpoints, the open connection counted.
    let socket = lab.client.sockets.tcp_socket(false).await.expect("socket");
    let _open = socket.connect(to).await.expect("connect");
    let vs = proxy.describe().await;
    assert_eq!(vs.len(), 1);
    assert_eq!(
        (vs[0].address.as_str(), vs[0].scheduler.as_str(), vs[0].endpoints.len()),
        ("10.96.0.20:80", "random", 3)
    );
    assert!(vs[0].endpoints.iter().map(|e| e.active).sum::<u64>() >= 1, "{vs:?}");

    // Scale down to one endpoint: only it answers.
    let snap = snapshot(vec![service("web", vip(20), 80, lab.endpoints(&[1], TCP_PORT))]);
    proxy.sync(&snap).await.expect("sync");
    assert!(!proxy.last_sync().full);
    assert_eq!(proxy.last_sync().chains_deleted, 2);
    for _ in 0..10 {
        assert_eq!(hello(&lab.client.sockets, to).await.expect("hello").0, "p1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ip_affinity_sticks_then_expires() {
    if !tools_present() {
        return;
    }
    let lab = Lab::new(3).await;
    let mut proxy = lab.proxy();
    let mut web = service("sticky", vip(30), 80, lab.endpoints(&[0, 1, 2], TCP_PORT));
    web.affinity = Affinity::ClientIp { timeout_seconds: 2 };
    proxy.sync(&snapshot(vec![web])).await.expect("sync");

    let to = addr(vip(30), 80);
    let (first, _) = hello(&lab.client.sockets, to).await.expect("hello");
    for _ in 0..20 {
        assert_eq!(hello(&lab.client.sockets, to).await.expect("hello").0, first, "affinity holds within the timeout");
    }
    assert_eq!(proxy.describe().await[0].flags, "persistent 2");
    // After 2 s of silence the client is free again; a random pick keeps
    // the same endpoint with probability 1/3, so allow a few rounds.
    let mut moved = false;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(2300)).await;
        if hello(&lab.client.sockets, to).await.expect("hello").0 != first {
            moved = true;
            break;
        }
    }
    assert!(moved, "affinity never expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_endpoints_is_refused_fast_and_unallocated_ips_are_dropped() {
    if !tools_present() {
        return;
    }
    let lab = Lab::new(1).await;
    let mut proxy = lab.proxy();
    let mut udp = service("empty-udp", vip(41), 53, vec![]);
    udp.protocol = Protocol::Udp;
    let snap = snapshot(vec![service("empty", vip(40), 80, vec![]), udp.clone()]);
    proxy.sync(&snap).await.expect("sync");

    let started = Instant::now();
    let err = hello(&lab.client.sockets, addr(vip(40), 80)).await.expect_err("no endpoints");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    assert!(started.elapsed() < Duration::from_secs(1), "refused in {:?}", started.elapsed());
    // From the node too.
    let err = hello(&lab.node_sockets, addr(vip(40), 80)).await.expect_err("no endpoints");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");

    // UDP: ICMP port unreachable, which a connected socket sees as refused.
    let socket = lab.client.sockets.udp_bind(addr(Ipv4Addr::UNSPECIFIED, 0)).await.expect("bind");
    socket.connect(addr(vip(41), 53)).await.expect("connect");
    socket.send(b"?").await.expect("send");
    let mut buf = [0u8; 64];
    let err = tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf))
        .await
        .expect("answer in time")
        .expect_err("refused");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");

    // An address in the service CIDR that is no service: dropped, silently.
    let err = hello(&lab.client.sockets, addr(vip(99), 80)).await.expect_err("unallocated");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    // So is a wrong port of a real service IP (only its ports are DNATed).
    let err = hello(&lab.client.sockets, addr(vip(40), 81)).await.expect_err("wrong port");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");

    // An endpoint appears: the REJECT goes, traffic flows.
    let snap = snapshot(vec![service("empty", vip(40), 80, lab.endpoints(&[0], TCP_PORT)), udp]);
    proxy.sync(&snap).await.expect("sync");
    assert_eq!(hello(&lab.client.sockets, addr(vip(40), 80)).await.expect("served").0, "p0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_reaches_endpoints_and_a_removed_endpoints_flows_are_flushed() {
    if !tools_present() {
        return;
    }
    let lab = Lab::new(2).await;
    let mut proxy = lab.proxy();
    let dns = |eps| {
        let mut s = service("dns", vip(53), 53, eps);
        s.protocol = Protocol::Udp;
        s
    };
    proxy.sync(&snapshot(vec![dns(lab.endpoints(&[0, 1], UDP_PORT))])).await.expect("sync");

    // One client socket, one source port: one conntrack flow, one endpoint.
    let socket = lab.client.sockets.udp_bind(addr(Ipv4Addr::UNSPECIFIED, 40_000)).await.expect("bind");
    let to = addr(vip(53), 53);
    let first = ask_udp(&socket, to).await.expect("udp answer");
    for _ in 0..5 {
        assert_eq!(ask_udp(&socket, to).await.expect("udp answer"), first, "a UDP flow keeps its endpoint");
    }
    // Remove that endpoint from the service (its server keeps running): the
    // flow is flushed and the next datagram goes to the other one.
    let keep = if first == "p0" { 1 } else { 0 };
    proxy.sync(&snapshot(vec![dns(lab.endpoints(&[keep], UDP_PORT))])).await.expect("sync");
    assert!(proxy.last_sync().conntrack_flushes >= 1);
    let other = format!("p{keep}");
    for _ in 0..5 {
        assert_eq!(ask_udp(&socket, to).await.expect("udp answer"), other);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_port_answers_on_the_node_ip_from_outside_and_from_pods() {
    if !tools_present() {
        return;
    }
    let lab = Lab::new(2).await;
    let mut proxy = lab.proxy();
    let mut web = service("web", vip(20), 80, lab.endpoints(&[0, 1], TCP_PORT));
    web.node_port = Some(30080);
    proxy.sync(&snapshot(vec![web])).await.expect("sync");

    let to = addr(NODE_IP, 30080);
    let seen = reach_all(&lab.outside, to, &["p0", "p1"], 100).await;
    assert_eq!(seen.len(), 2);
    // Cluster policy: the client is masqueraded to the node's pod-bridge address.
    let (_, peer) = hello(&lab.outside, to).await.expect("hello");
    assert_eq!(peer, GATEWAY.to_string());
    // From a pod, through the node's address.
    assert!(hello(&lab.client.sockets, to).await.expect("from a pod").0.starts_with('p'));
    // describe lists it on the node address.
    let vs = proxy.describe().await;
    assert!(vs.iter().any(|v| v.address == "172.18.0.2:30080" && v.endpoints.len() == 2), "{vs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_traffic_policy_local_preserves_the_client_ip() {
    if !tools_present() {
        return;
    }
    let lab = Lab::new(2).await;
    let mut proxy = lab.proxy();
    let mut local = service("local", vip(20), 80, lab.endpoints(&[0], TCP_PORT));
    local.node_port = Some(30080);
    local.external_ips = vec![NODE_IP];
    local.external_local = true;
    // Endpoints only on "another node" (really p1 here, marked remote).
    let mut remote_eps = lab.endpoints(&[1], TCP_PORT);
    remote_eps[0].local = false;
    remote_eps[0].node = Some("node2".into());
    let mut remote = service("remote", vip(21), 80, remote_eps);
    remote.node_port = Some(30081);
    remote.external_local = true;
    proxy.sync(&snapshot(vec![local, remote])).await.expect("sync");

    for to in [addr(NODE_IP, 30080), addr(NODE_IP, 80)] {
        let (name, peer) = hello(&lab.outside, to).await.expect("hello");
        assert_eq!((name.as_str(), peer.as_str()), ("p0", OUTSIDE_IP.to_string().as_str()), "{to}");
    }
    // No local endpoint: outside traffic is dropped...
    let err = hello(&lab.outside, addr(NODE_IP, 30081)).await.expect_err("dropped");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    // ...but pods still reach the service's endpoints elsewhere.
    assert_eq!(hello(&lab.client.sockets, addr(NODE_IP, 30081)).await.expect("pod").0, "p1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_source_ranges_admit_only_their_sources_to_the_lb_ip() {
    if !tools_present() {
        return;
    }
    let lab = Lab::new(2).await;
    let lb_ip = Ipv4Addr::new(198, 51, 100, 7);
    // The outside host sends the LB IP to the node; the node, as a real
    // one with a default route, would send what it does not DNAT onwards
    // (here back to that host), so the filter table is what stops it.
    for (netns, via) in [(format!("{}-o", lab.node.trim_end_matches("-n")), NODE_IP), (lab.node.clone(), OUTSIDE_IP)] {
        let out = std::process::Command::new("ip")
            .args(["-n", &netns, "route", "add", &lb_ip.to_string(), "via", &via.to_string()])
            .output()
            .expect("ip route");
        assert!(out.status.success(), "route in {netns}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut proxy = lab.proxy();
    let mut web = service("web", vip(20), 80, lab.endpoints(&[0, 1], TCP_PORT));
    web.node_port = Some(30080);
    web.load_balancer_ips = vec![lb_ip];
    web.load_balancer_source_ranges = vec![format!("{CLIENT_IP}/32").parse().expect("a CIDR")];
    proxy.sync(&snapshot(vec![web])).await.expect("sync");

    let to_lb = addr(lb_ip, 80);
    assert!(hello(&lab.client.sockets, to_lb).await.expect("an allowed pod").0.starts_with('p'));
    for (who, from) in
        [("a pod outside the ranges", &lab.backends[1].sockets), ("a host outside the ranges", &lab.outside)]
    {
        let err = hello(from, to_lb).await.expect_err(who);
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{who}: {err}");
    }
    // Node ports and the cluster IP are not filtered.
    assert!(hello(&lab.outside, addr(NODE_IP, 30080)).await.expect("node port").0.starts_with('p'));
    assert!(hello(&lab.backends[1].sockets, addr(vip(20), 80)).await.expect("cluster IP").0.starts_with('p'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_traffic_policy_local_only_uses_this_nodes_endpoints() {
    if !tools_present() {
        return;
    }
    let lab = Lab::new(2).await;
    let mut proxy = lab.proxy();
    let mut eps = lab.endpoints(&[0, 1], TCP_PORT);
    eps[1].local = false;
    let mut web = service("web", vip(20), 80, eps);
    web.internal_local = true;
    proxy.sync(&snapshot(vec![web])).await.expect("sync");
    for _ in 0..20 {
        assert_eq!(hello(&lab.client.sockets, addr(vip(20), 80)).await.expect("hello").0, "p0");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_reaches_itself_through_its_service() {
    if !tools_present() {
        return;
    }
    let lab = Lab::new(1).await;
    let mut proxy = lab.proxy();
    proxy.sync(&snapshot(vec![service("self", vip(50), 80, lab.endpoints(&[0], TCP_PORT))])).await.expect("sync");
    let (name, peer) = hello(&lab.backends[0].sockets, addr(vip(50), 80)).await.expect("hairpin");
    // Masqueraded, so the reply goes back through the node and is un-DNATed.
    assert_eq!((name.as_str(), peer.as_str()), ("p0", GATEWAY.to_string().as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_proxy_reconciles_without_breaking_connections_and_cleanup_removes_everything() {
    if !tools_present() {
        return;
    }
    let lab = Lab::new(2).await;
    let mut first = lab.proxy();
    let web = service("web", vip(20), 80, lab.endpoints(&[0, 1], TCP_PORT));
    let old = service("old", vip(21), 80, lab.endpoints(&[0], TCP_PORT));
    first.sync(&snapshot(vec![web.clone(), old])).await.expect("sync");

    // A long-lived connection through the service.
    let socket = lab.client.sockets.tcp_socket(false).await.expect("socket");
    let stream = socket.connect(addr(vip(20), 80)).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let greeting = lines.next_line().await.expect("read").expect("greeting");
    let server = greeting.split(' ').next().unwrap_or("").to_string();

    // The agent restarts: a new proxy with no memory, a changed world.
    drop(first);
    let mut second = lab.proxy();
    let new = service("new", vip(22), 80, lab.endpoints(&[1], TCP_PORT));
    second.sync(&snapshot(vec![web, new])).await.expect("reconcile");
    assert!(second.last_sync().full);

    write.write_all(b"still there?\n").await.expect("write");
    let echo = tokio::time::timeout(Duration::from_secs(2), lines.next_line()).await.expect("in time").expect("read");
    assert_eq!(echo, Some(format!("{server} still there?")));

    let saved = lab.iptables_save();
    assert!(!saved.contains("default/old"), "stale chains remain:\n{saved}");
    assert_eq!(hello(&lab.client.sockets, addr(vip(22), 80)).await.expect("new service").0, "p1");
    // The built-in jumps were found, not added twice.
    let jumps = saved.lines().filter(|l| l.starts_with("-A PREROUTING") && l.ends_with("-j KUBE-SERVICES")).count();
    assert_eq!(jumps, 1, "{saved}");

    second.cleanup().await.expect("cleanup");
    let saved = lab.iptables_save();
    assert!(!saved.contains("KUBE-"), "left behind:\n{saved}");
    let routes =
        std::process::Command::new("ip").args(["-n", &lab.node, "route", "show", "10.96.0.0/12"]).output().expect("ip");
    assert!(routes.stdout.is_empty(), "route left behind: {}", String::from_utf8_lossy(&routes.stdout));
    // Cleaning up twice is fine.
    second.cleanup().await.expect("cleanup again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_come_and_go_among_many_by_editing_the_dispatch_chain() {
    if !tools_present() {
        return;
    }
    let lab = Lab::new(2).await;
    let mut proxy = lab.proxy();
    let mut services: Vec<ServicePort> = (0..16u8)
        .map(|i| service(&format!("s{i:02}"), vip(100 + i), 80, lab.endpoints(&[usize::from(i % 2)], TCP_PORT)))
        .collect();
    proxy.sync(&snapshot(services.clone())).await.expect("sync");

    services.push(service("late", vip(200), 80, lab.endpoints(&[1], TCP_PORT)));
    proxy.sync(&snapshot(services.clone())).await.expect("add");
    let stats = proxy.last_sync().clone();
    assert_eq!((stats.full, stats.rules_edited, stats.chains_written), (false, 1, 2), "{stats:?}");
    assert_eq!(hello(&lab.client.sockets, addr(vip(200), 80)).await.expect("new service").0, "p1");

    let gone = services.remove(3);
    proxy.sync(&snapshot(services.clone())).await.expect("remove");
    let stats = proxy.last_sync().clone();
    assert_eq!((stats.rules_edited, stats.chains_deleted), (1, 2), "{stats:?}");
    let err = hello(&lab.client.sockets, addr(gone.cluster_ip, 80)).await.expect_err("removed");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");

    // The kernel holds exactly the rendered rules (in another order).
    let saved = lab.iptables_save();
    let kernel: BTreeSet<&str> = saved.lines().filter(|l| l.starts_with("-A KUBE-")).collect();
    let rules = build(&snapshot(services));
    let text = rules.full_text();
    let rendered: BTreeSet<&str> = text.lines().filter(|l| l.starts_with("-A ")).collect();
    assert_eq!(kernel, rendered);
}

/// 10,000 Services × 10 endpoints: from scratch, one endpoint change, one
/// new Service, a restart (reconcile), cleanup. Prints the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --release -- --ignored --nocapture scale"]
async fn scale_ten_thousand_services() {
    if !tools_present() {
        return;
    }
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let node = format!("svipt-{}-{n}-scale", std::process::id());
    let guard = NetnsGuard(vec![node.clone()]);
    let node_net = NodeNet {
        netns: node.clone(),
        index: 1,
        node_ip: NODE_IP,
        node_prefix_len: 24,
        gateway: GATEWAY,
        pod_prefix_len: 24,
        peers: vec![],
    };
    create_node(None, &node_net).await.expect("node");
    let env = NodeEnv {
        node_name: "node1".into(),
        netns: node.clone(),
        sockets: NetnsSockets::enter(&netns_path(&node)).expect("enter"),
        node_ips: vec![NODE_IP],
        pod_cidr: "10.244.1.0/24".into(),
        bridge: "cni0".into(),
        cluster_cidr: "10.244.0.0/16".into(),
        service_cidr: "10.96.0.0/12".into(),
    };
    let services: usize = std::env::var("SCALE_SERVICES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let per: usize = 10;
    let mk = |i: usize| {
        let ip = |k: usize| Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + 1 + k as u32);
        let eps = (0..per)
            .map(|e| {
                let k = i * per + e;
                Endpoint {
                    ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 0, 0)) + 2 + k as u32),
                    port: 8080,
                    node: None,
                    ready: true,
                    serving: true,
                    terminating: false,
                    local: false,
                }
            })
            .collect();
        let mut s = service(&format!("svc-{i}"), ip(i), 80, eps);
        s.namespace = format!("ns-{}", i % 50);
        s
    };
    let mut all: Vec<ServicePort> = (0..services).map(mk).collect();
    let mut proxy = IptablesProxy::new(env.clone());
    let report = |what: &str, p: &IptablesProxy, wall: Duration| {
        let s = p.last_sync();
        println!(
            "{what:<30} wall {:>8.2?}  render {:>8.2?}  apply {:>8.2?}  chains written {:>6} deleted {:>3}  rules edited {:>2}  restore {:>6} KiB",
            wall,
            s.render,
            s.apply,
            s.chains_written,
            s.chains_deleted,
            s.rules_edited,
            s.restore_bytes / 1024
        );
    };
    println!("{services} services x {per} endpoints");

    let t = Instant::now();
    proxy.sync(&snapshot(all.clone())).await.expect("from scratch");
    report("from scratch", &proxy, t.elapsed());

    all[services / 2].endpoints[3].ip = Ipv4Addr::new(10, 250, 0, 1);
    let t = Instant::now();
    proxy.sync(&snapshot(all.clone())).await.expect("one endpoint");
    report("one endpoint changed", &proxy, t.elapsed());

    all.push(mk(services));
    let t = Instant::now();
    proxy.sync(&snapshot(all.clone())).await.expect("one service");
    report("one service added", &proxy, t.elapsed());

    all.remove(0);
    let t = Instant::now();
    proxy.sync(&snapshot(all.clone())).await.expect("one service removed");
    report("one service removed", &proxy, t.elapsed());

    let t = Instant::now();
    proxy.sync(&snapshot(all.clone())).await.expect("no change");
    report("no change", &proxy, t.elapsed());

    let mut restarted = IptablesProxy::new(env);
    let t = Instant::now();
    restarted.sync(&snapshot(all.clone())).await.expect("restart");
    report("restart (save + full rewrite)", &restarted, t.elapsed());

    let t = Instant::now();
    restarted.cleanup().await.expect("cleanup");
    println!("{:<30} wall {:>8.2?}", "cleanup", t.elapsed());
    drop(guard);
}
