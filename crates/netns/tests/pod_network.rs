//! Pod networks made in-process (namespace, veth, bridge port, address,
//! route over netlink) against a real kernel, checked with iproute2: `ip
//! netns list` sees them, `ip -j` shows the same links, addresses and
//! routes as a pod made with the `ip` commands svcnet used before, and
//! `ip netns exec … ping` reaches across.
//!
//! Every test makes its own namespaces, named `svcnet-nltest-<pid>-<n>-*`,
//! and deletes exactly those when it ends, passed or failed. Needs root
//! and `ip`; skipped otherwise. Addresses are 10.x, only inside those
//! namespaces.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use svcnet_netns::NetnsSockets;
use svcnet_netns::ip::{self, NodeNet, PodNet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Retries a condition for up to 5 s.
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

fn can_run() -> bool {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let ip = Command::new("ip").arg("-V").output().is_ok_and(|o| o.status.success());
    if !(root && ip) {
        eprintln!("skipping: the pod network tests need root and iproute2 (`ip`)");
    }
    root && ip
}

/// One test's namespaces: their names, and their deletion on drop (with
/// `ip netns delete`, whatever made them).
struct Lab {
    prefix: String,
    /// Short, for interface names (at most 15 bytes).
    tag: String,
}

impl Lab {
    fn new() -> Lab {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        Lab { prefix: format!("svcnet-nltest-{pid}-{n}-"), tag: format!("{}{n}", pid % 100_000) }
    }

    fn ns(&self, what: &str) -> String {
        format!("{}{what}", self.prefix)
    }

    fn veth(&self, what: &str) -> String {
        format!("vt{}{what}", self.tag)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(ip::NETNS_RUN_DIR) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&self.prefix) {
                let _ = Command::new("ip").args(["netns", "delete", &name]).output();
                let _ = std::fs::remove_dir_all(ip::netns_etc(&name));
            }
        }
        for dir in [ip::NETNS_ETC_DIR, ip::ETC_FILES_DIR] {
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&self.prefix) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap_or_else(|e| panic!("{args:?} printed no JSON: {e}"))
}

fn netns_list() -> Vec<String> {
    ok(&["ip", "netns", "list"]).lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect()
}

/// A node namespace with its bridge cni0 at `gateway`/24 (no fabric).
async fn node(lab: &Lab, gateway: Ipv4Addr) -> String {
    let netns = lab.ns("node");
    let net = NodeNet {
        netns: netns.clone(),
        index: 1,
        node_ip: Ipv4Addr::new(10, 255, 0, 2),
        node_prefix_len: 24,
        gateway,
        pod_prefix_len: 24,
        peers: Vec::new(),
    };
    ip::create_node(None, &net).await.expect("node namespace");
    netns
}

fn pod(lab: &Lab, what: &str, ip: Ipv4Addr, gateway: Ipv4Addr) -> PodNet {
    PodNet { netns: lab.ns(what), host_veth: lab.veth(what), ip, prefix_len: 24, gateway }
}

/// A pod made as svcnet made them before, with `ip` commands.
fn pod_with_iproute2(node: &str, pod: &PodNet) {
    ok(&["ip", "netns", "add", &pod.netns]);
    ok(&["ip", "netns", "exec", &pod.netns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    let node_script = format!(
        "link add {v} type veth peer name eth0 netns {ns}\nlink set {v} master cni0 up\nlink set {v} type bridge_slave hairpin on\n",
        v = pod.host_veth,
        ns = pod.netns
    );
    let pod_script = format!(
        "link set lo up\naddr add {}/{} dev eth0\nlink set eth0 up\nroute add default via {}\n",
        pod.ip, pod.prefix_len, pod.gateway
    );
    for (ns, script) in [(node, node_script), (&pod.netns, pod_script)] {
        let path = std::env::temp_dir().join(format!("{ns}.ip"));
        std::fs::write(&path, script).expect("writing an ip batch");
        ok(&["ip", "-n", ns, "-batch", &path.to_string_lossy()]);
        let _ = std::fs::remove_file(path);
    }
}

/// Drops what differs between any two links or pods by nature (indexes,
/// MACs and the link-local addresses made of them, bridge port numbers,
/// timers) and names the pod's own addresses `IP`, `NET` and `GW`.
fn normalize(v: &mut Value, pod: &PodNet) {
    let net = Ipv4Addr::from(u32::from(pod.ip) & (!0u32 << (32 - pod.prefix_len)));
    match v {
        Value::Object(map) => {
            for key in [
                "ifindex",
                "address",
                "link_index",
                // The peer namespace's id as seen from here: numbered in
                // order of first use.
                "link_netnsid",
                // IPv6 duplicate address detection, which is timing.
                "tentative",
                "ifname",
                "id",
                "no",
                "designated_port",
                "hold_timer",
                "message_age_timer",
                "forward_delay_timer",
                "gso_max_size",
                "gro_max_size",
                "tso_max_size",
                "parentbus",
                "parentdev",
            ] {
                map.remove(key);
            }
            for value in map.values_mut() {
                normalize(value, pod);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| normalize(i, pod)),
        Value::String(s) if s.starts_with("fe80::") && !s.contains('/') => *s = "LINK-LOCAL".into(),
        Value::String(s) => {
            *s = s
                .replace(&format!("{net}/{}", pod.prefix_len), "NET")
                .replace(&pod.ip.to_string(), "IP")
                .replace(&pod.gateway.to_string(), "GW")
                .replace(&pod.host_veth, "VETH");
        }
        _ => {}
    }
}

/// What iproute2 shows of a pod's network: its links, addresses and
/// routes inside, and its veth on the node.
fn observed(node: &str, pod: &PodNet) -> Value {
    let mut v = serde_json::json!({
        "links": json(&["ip", "-n", &pod.netns, "-j", "-d", "link", "show"]),
        "addresses": json(&["ip", "-n", &pod.netns, "-j", "addr", "show"]),
        "routes": json(&["ip", "-n", &pod.netns, "-j", "-d", "route", "show", "table", "all"]),
        "host_veth": json(&["ip", "-n", node, "-j", "-d", "link", "show", "dev", &pod.host_veth]),
    });
    normalize(&mut v, pod);
    v
}

#[tokio::test]
async fn a_pod_network_made_over_netlink_is_the_one_iproute2_made_and_reaches_its_neighbours() {
    if !can_run() {
        return;
    }
    let lab = Lab::new();
    let gateway = Ipv4Addr::new(10, 251, 1, 1);
    let node = node(&lab, gateway).await;
    let reference = pod(&lab, "ref", Ipv4Addr::new(10, 251, 1, 10), gateway);
    pod_with_iproute2(&node, &reference);
    let a = pod(&lab, "a", Ipv4Addr::new(10, 251, 1, 11), gateway);
    let b = pod(&lab, "b", Ipv4Addr::new(10, 251, 1, 12), gateway);
    ip::create_pod(&node, &a).await.expect("pod a");
    ip::create_pod(&node, &b).await.expect("pod b");

    let listed = netns_list();
    for ns in [&node, &a.netns, &b.netns] {
        assert!(listed.contains(ns), "`ip netns list` shows {ns}: {listed:?}");
    }

    // Exactly what the `ip` commands made.
    let want = observed(&node, &reference);
    for p in [&a, &b] {
        assert_eq!(
            observed(&node, p),
            want,
            "pod {} differs from the one made with iproute2 (left: netlink, right: ip)",
            p.netns
        );
    }

    // And spelled out, in case both are wrong the same way.
    let veth = &json(&["ip", "-n", &node, "-j", "-d", "link", "show", "dev", &a.host_veth])[0];
    assert_eq!(veth["master"], "cni0");
    assert_eq!(veth["operstate"], "UP");
    assert!(veth["flags"].as_array().is_some_and(|f| f.contains(&"UP".into())), "{veth}");
    assert_eq!(veth["linkinfo"]["info_kind"], "veth");
    assert_eq!(veth["linkinfo"]["info_slave_kind"], "bridge");
    assert_eq!(veth["linkinfo"]["info_slave_data"]["hairpin"], true);
    let eth0 = &json(&["ip", "-n", &a.netns, "-j", "addr", "show", "dev", "eth0"])[0];
    assert_eq!(eth0["operstate"], "UP");
    let addrs: Vec<(String, u64, String)> = eth0["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .filter(|i| i["family"] == "inet")
        .map(|i| {
            (
                i["local"].as_str().unwrap_or_default().to_string(),
                i["prefixlen"].as_u64().unwrap_or_default(),
                i["scope"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(addrs, [("10.251.1.11".to_string(), 24, "global".to_string())]);
    let lo = &json(&["ip", "-n", &a.netns, "-j", "link", "show", "dev", "lo"])[0];
    assert!(lo["flags"].as_array().is_some_and(|f| f.contains(&"UP".into())), "lo is up: {lo}");
    // IPv4 only on the wire, on both ends of the veth; `::1` stays.
    let families = |ns: &str, dev: &str| -> Vec<String> {
        json(&["ip", "-n", ns, "-j", "addr", "show", "dev", dev])[0]["addr_info"]
            .as_array()
            .expect("addr_info")
            .iter()
            .map(|i| {
                format!("{} {}", i["family"].as_str().unwrap_or_default(), i["local"].as_str().unwrap_or_default())
            })
            .collect()
    };
    assert_eq!(families(&a.netns, "eth0"), ["inet 10.251.1.11"]);
    assert_eq!(families(&node, &a.host_veth), Vec::<String>::new());
    assert_eq!(families(&a.netns, "lo"), ["inet 127.0.0.1", "inet6 ::1"]);
    let routes = json(&["ip", "-n", &a.netns, "-j", "-d", "route", "show", "default"]);
    let default = &routes[0];
    assert_eq!(
        (&default["dst"], &default["gateway"], &default["dev"], &default["protocol"]),
        (&"default".into(), &"10.251.1.1".into(), &"eth0".into(), &"boot".into()),
        "{routes}"
    );

    // Across the bridge, to the gateway, and from the iproute2-made pod.
    if run(&["ping", "-V"]).status.success() {
        for (from, to) in [(&a.netns, "10.251.1.12"), (&b.netns, "10.251.1.1"), (&reference.netns, "10.251.1.11")] {
            ok(&["ip", "netns", "exec", from, "ping", "-c", "1", "-W", "2", to]);
        }
    } else {
        eprintln!("no `ping` here: checked with TCP only");
    }
    // TCP from a to b, from sockets opened inside the namespaces.
    let in_b = NetnsSockets::enter(&ip::netns_path(&b.netns)).expect("b's sockets");
    let listener = in_b.tcp_listen(SocketAddr::from((b.ip, 8080))).await.expect("listen in b");
    let server = tokio::spawn(async move {
        let (mut conn, peer) = listener.accept().await.expect("accept");
        conn.write_all(peer.ip().to_string().as_bytes()).await.expect("write");
    });
    let in_a = NetnsSockets::enter(&ip::netns_path(&a.netns)).expect("a's sockets");
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        in_a.tcp_socket(false).await.expect("socket in a").connect(SocketAddr::from((b.ip, 8080))),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    let mut seen = String::new();
    conn.read_to_string(&mut seen).await.expect("read");
    assert_eq!(seen, "10.251.1.11", "b sees a's own address");
    server.await.expect("server");
    // Sockets and threads inside a namespace keep it alive.
    drop((conn, in_a, in_b));

    // Deletion: the name goes at once, the veth with the namespace (freed
    // by the kernel in the background).
    ip::delete_netns(&a.netns).await.expect("delete a");
    assert!(!netns_list().contains(&a.netns), "`ip netns list` no longer shows {}", a.netns);
    assert!(!ip::netns_path(&a.netns).exists());
    assert_eventually!(
        !run(&["ip", "-n", &node, "link", "show", "dev", &a.host_veth]).status.success(),
        "{} leaves the node with its pod",
        a.host_veth
    );
    ip::delete_netns(&a.netns).await.expect("deleting a missing namespace is fine");
    assert!(ip::list_netns(&lab.prefix).await.expect("list").contains(&b.netns));
}

#[tokio::test]
async fn a_node_without_its_bridge_fails_the_pod_with_the_step_and_errno_and_leaves_nothing() {
    if !can_run() {
        return;
    }
    let lab = Lab::new();
    let node = lab.ns("bare");
    ip::add_netns(&node).await.expect("node namespace");
    assert!(netns_list().contains(&node), "`ip netns list` shows a namespace made in-process");
    let gateway = Ipv4Addr::new(10, 251, 2, 1);
    let p = pod(&lab, "a", Ipv4Addr::new(10, 251, 2, 11), gateway);
    let e = ip::create_pod(&node, &p).await.expect_err("no cni0").to_string();
    assert!(e.contains("looking up cni0") && e.contains("No such device"), "{e}");
    assert!(!ip::netns_path(&p.netns).exists(), "the pod's namespace is gone again");
    assert!(!netns_list().contains(&p.netns));

    let missing = pod(&lab, "b", Ipv4Addr::new(10, 251, 2, 12), gateway);
    let e = ip::create_pod(&lab.ns("nowhere"), &missing).await.expect_err("no node").to_string();
    assert!(e.contains("nowhere") && e.contains("No such file"), "{e}");
    assert!(!ip::netns_path(&missing.netns).exists());
}

#[tokio::test]
async fn names_in_use_are_refused_without_harming_their_owner() {
    if !can_run() {
        return;
    }
    let lab = Lab::new();
    let gateway = Ipv4Addr::new(10, 251, 3, 1);
    let node = node(&lab, gateway).await;
    let a = pod(&lab, "a", Ipv4Addr::new(10, 251, 3, 11), gateway);
    ip::create_pod(&node, &a).await.expect("pod a");

    // The namespace name taken.
    let same_ns = PodNet { host_veth: lab.veth("x"), ..a.clone() };
    let e = ip::create_pod(&node, &same_ns).await.expect_err("namespace exists").to_string();
    assert!(e.contains("File exists"), "{e}");
    // The veth name taken: the new namespace goes, a's veth stays.
    let same_veth = PodNet { netns: lab.ns("c"), ..a.clone() };
    let e = ip::create_pod(&node, &same_veth).await.expect_err("veth exists").to_string();
    assert!(e.contains(&format!("adding veth {}", a.host_veth)) && e.contains("File exists"), "{e}");
    assert!(!ip::netns_path(&same_veth.netns).exists());

    let veth = &json(&["ip", "-n", &node, "-j", "link", "show", "dev", &a.host_veth])[0];
    assert_eq!(veth["master"], "cni0", "a's veth is still on the bridge");
    let eth0 = json(&["ip", "-n", &a.netns, "-j", "addr", "show", "dev", "eth0"]);
    assert_eq!(eth0[0]["addr_info"][0]["local"], "10.251.3.11", "a keeps its address");
    if run(&["ping", "-V"]).status.success() {
        ok(&["ip", "netns", "exec", &a.netns, "ping", "-c", "1", "-W", "2", "10.251.3.1"]);
    }
}

#[tokio::test]
async fn a_namespaces_etc_files_are_what_ip_netns_exec_shows_and_go_with_it() {
    if !can_run() {
        return;
    }
    let lab = Lab::new();
    let name = lab.ns("files");
    ip::add_netns(&name).await.expect("namespace");
    let resolv = "nameserver 10.96.0.10\nsearch default.svc.cluster.local\n";
    let dir = ip::write_etc_files(&name, &[("resolv.conf", resolv), ("hostname", "files\n")]).expect("files");
    assert_eq!(dir, ip::etc_files_dir(&name));
    let fs = nix::sys::statfs::statfs(&dir).expect("statfs");
    assert_eq!(fs.filesystem_type(), nix::sys::statfs::TMPFS_MAGIC, "kept on a tmpfs");
    let link = std::fs::read_link(ip::netns_etc(&name)).expect("/etc/netns/NAME is a link");
    assert_eq!(link, dir);
    assert_eq!(ok(&["ip", "netns", "exec", &name, "cat", "/etc/resolv.conf"]), resolv);

    // Written again (a pod retried under the same name): replaced, also
    // over a directory an older svcnet left there.
    ip::write_etc_files(&name, &[("resolv.conf", "nameserver 10.96.0.11\n")]).expect("again");
    assert_eq!(ok(&["ip", "netns", "exec", &name, "cat", "/etc/resolv.conf"]), "nameserver 10.96.0.11\n");
    let old = lab.ns("old");
    std::fs::create_dir_all(ip::netns_etc(&old)).expect("an old directory");
    std::fs::write(ip::netns_etc(&old).join("hosts"), "old").expect("an old file");
    ip::write_etc_files(&old, &[("hosts", "new")]).expect("over the old directory");
    assert_eq!(std::fs::read_to_string(ip::netns_etc(&old).join("hosts")).expect("read"), "new");

    ip::delete_netns(&name).await.expect("delete");
    assert!(!ip::netns_etc(&name).exists() && std::fs::symlink_metadata(ip::netns_etc(&name)).is_err());
    assert!(!dir.exists());
    // Files whose namespace is gone (a crash between the two) go with the
    // next cleanup of their prefix, and only those.
    let removed = ip::cleanup(&lab.ns("ol")).await.expect("cleanup");
    assert_eq!(removed, 0, "no namespace under that prefix");
    assert!(std::fs::symlink_metadata(ip::netns_etc(&old)).is_err() && !ip::etc_files_dir(&old).exists());
}
