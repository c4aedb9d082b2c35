//! Network namespaces, bridges and veth pairs.
//!
//! Every namespace is made and deleted in-process, as `ip netns add` and
//! `ip netns delete` do it (`namespace.rs`). The fabric's and nodes' links
//! and routes, set up once per node, are configured with iproute2 (`ip -n
//! NS -batch`); a pod's, set up by the hundred, over rtnetlink
//! (`netlink.rs`), so creating and deleting a pod starts no process. Either way iproute2 sees the same
//! result: `ip netns list`, `ip -n` and `ip netns exec` work on pods.
//!
//! Nothing here touches the host's own network namespace: every interface
//! is created inside a namespace (`ip -n NS link add ... peer ... netns
//! OTHER`, or its netlink equivalent on a socket opened inside NS), so a
//! namespace's deletion takes its interfaces with it.
//!
//! The sandbox's layout, for nodes `1..=N`:
//!
//! ```text
//!   <prefix>-net            br0 ── n1 ─┐  ── n2 ─┐          (the node network)
//!   <prefix>-node1    eth0 172.18.0.2 ◄─┘  cni0 10.244.1.1/24 ── vethXXXX ─► pod eth0
//!   <prefix>-node2    eth0 172.18.0.3 ◄────┘ cni0 10.244.2.1/24 ...
//! ```
//!
//! Each node routes the other nodes' pod CIDRs through their node address;
//! no namespace has a default route, so nothing leaves the sandbox.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::namespace;
use crate::netlink::Rtnl;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("running `{command}`: {source}")]
    Spawn { command: String, source: std::io::Error },
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    /// Making, entering or removing a named namespace.
    #[error("network namespace {name}: {step}: {source}")]
    Namespace { name: String, step: &'static str, source: std::io::Error },
    /// A netlink request (`op` says which, and in which namespace) the
    /// kernel refused, with its errno.
    #[error("netlink: {op}: {source}")]
    Netlink { op: String, source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, NetError>;

/// Where `ip netns` keeps its namespaces and per-namespace `/etc` files.
pub const NETNS_RUN_DIR: &str = "/run/netns";
pub const NETNS_ETC_DIR: &str = "/etc/netns";

pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

/// The directory whose files `ip netns exec NAME` (and svcnet's containers)
/// see over `/etc`.
pub fn netns_etc(name: &str) -> PathBuf {
    Path::new(NETNS_ETC_DIR).join(name)
}

/// Where [`write_etc_files`] keeps a namespace's `/etc` files: a memory
/// file system (see [`write_etc_files`]).
pub const ETC_FILES_DIR: &str = "/run/svcnet/netns";

/// The directory holding namespace `name`'s `/etc` files, which
/// `/etc/netns/NAME` links to.
pub fn etc_files_dir(name: &str) -> PathBuf {
    Path::new(ETC_FILES_DIR).join(name)
}

/// Writes namespace `name`'s `/etc` files (`resolv.conf`, `hosts`, ...) and
/// returns the directory holding them. They live in [`ETC_FILES_DIR`], on a
/// tmpfs (`/run`'s, or one mounted at `/run/svcnet` where `/run` is on a
/// disk), and `/etc/netns/NAME` is a symbolic link to them, so `ip netns
/// exec NAME` sees them over `/etc` as it sees its own: the files of
/// hundreds of pods made and removed in a burst cost no disk inodes but
/// the link. Blocking; [`delete_netns`] removes both.
pub fn write_etc_files(name: &str, files: &[(&str, &str)]) -> Result<PathBuf> {
    let failed = |step: &'static str| move |source| NetError::Namespace { name: name.into(), step, source };
    namespace::check_name(name)?;
    prepare_etc_files().map_err(failed("preparing /run/svcnet"))?;
    let dir = etc_files_dir(name);
    std::fs::create_dir_all(&dir).map_err(failed("creating its /etc files' directory"))?;
    for (file, content) in files {
        std::fs::write(dir.join(file), content).map_err(failed("writing its /etc files"))?;
    }
    let link = netns_etc(name);
    std::fs::create_dir_all(NETNS_ETC_DIR).map_err(failed("creating /etc/netns"))?;
    // What an earlier run, or a crashed one, left under the name goes.
    match std::fs::symlink_metadata(&link) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&link),
        Ok(_) => std::fs::remove_file(&link),
        Err(_) => Ok(()),
    }
    .map_err(failed("removing an old /etc/netns entry"))?;
    std::os::unix::fs::symlink(&dir, &link).map_err(failed("linking /etc/netns to its files"))?;
    Ok(dir)
}

/// Makes sure [`ETC_FILES_DIR`] exists, on a tmpfs (what
/// [`write_etc_files`] does first). Blocking.
pub fn prepare_etc_files() -> std::io::Result<()> {
    namespace::prepare_files_dir()
}

fn remove_etc_files(name: &str) {
    let _ = std::fs::remove_dir_all(netns_etc(name));
    let _ = std::fs::remove_dir_all(etc_files_dir(name));
}

async fn run(args: &[&str], stdin: Option<&str>) -> Result<String> {
    let command = format!("ip {}", args.join(" "));
    let mut cmd = Command::new("ip");
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().map_err(|source| NetError::Spawn { command: command.clone(), source })?;
    if let Some(input) = stdin {
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(input.as_bytes())
                .await
                .map_err(|source| NetError::Spawn { command: command.clone(), source })?;
        }
    }
    let out = child.wait_with_output().await.map_err(|source| NetError::Spawn { command: command.clone(), source })?;
    if !out.status.success() {
        return Err(NetError::Failed { command, stderr: String::from_utf8_lossy(&out.stderr).trim().to_string() });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip` commands (one per line, without the leading `ip`) inside
/// namespace `ns` in a single process.
async fn batch(ns: &str, lines: &[String]) -> Result<()> {
    let mut script = lines.join("\n");
    script.push('\n');
    run(&["-n", ns, "-batch", "-"], Some(&script)).await.map(drop)
}

/// `ip netns add NAME`, in-process.
pub async fn add_netns(name: &str) -> Result<()> {
    namespace::in_new_netns(name, || Ok(())).await
}

/// Deletes a namespace (and with it every interface inside, and the peers
/// of its veths) and its `/etc/netns` files, as `ip netns delete` does,
/// in-process. Missing is fine.
pub async fn delete_netns(name: &str) -> Result<()> {
    let owned = name.to_string();
    // umount2 and unlink block (briefly): not on an async thread.
    tokio::task::spawn_blocking(move || {
        let removed = namespace::remove(&owned);
        remove_etc_files(&owned);
        removed
    })
    .await
    .unwrap_or_else(|e| {
        Err(NetError::Namespace { name: name.into(), step: "deleting", source: std::io::Error::other(e) })
    })
}

/// Every namespace whose name starts with `prefix` (what `ip netns list`
/// lists: the entries of `/run/netns`).
pub async fn list_netns(prefix: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut dir = match tokio::fs::read_dir(NETNS_RUN_DIR).await {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(source) => return Err(NetError::Namespace { name: prefix.into(), step: "listing /run/netns", source }),
    };
    while let Some(entry) = dir.next_entry().await.map_err(|source| NetError::Namespace {
        name: prefix.into(),
        step: "listing /run/netns",
        source,
    })? {
        if let Some(name) = entry.file_name().to_str() {
            if name.starts_with(prefix) {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Removes every namespace a previous run under `prefix` left behind, and
/// `/etc` files under the prefix left without their namespace. Goes on
/// past a namespace it cannot delete, and reports the first such error.
pub async fn cleanup(prefix: &str) -> Result<usize> {
    let names = list_netns(prefix).await?;
    let mut first_error = None;
    for n in &names {
        if let Err(e) = delete_netns(n).await {
            first_error.get_or_insert(e);
        }
    }
    let owned = prefix.to_string();
    let _ = tokio::task::spawn_blocking(move || {
        for dir in [NETNS_ETC_DIR, ETC_FILES_DIR] {
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            for entry in entries.flatten() {
                if let Some(name) = entry.file_name().to_str().filter(|n| n.starts_with(&owned)) {
                    if !netns_path(name).exists() {
                        remove_etc_files(name);
                    }
                }
            }
        }
    })
    .await;
    first_error.map_or(Ok(names.len()), Err)
}

/// The node network: a namespace holding one bridge every node plugs into.
pub async fn create_fabric(name: &str) -> Result<()> {
    add_netns(name).await?;
    batch(name, &["link set lo up".into(), "link add br0 type bridge".into(), "link set br0 up".into()]).await
}

/// One node's network, as laid out in the module docs.
#[derive(Debug, Clone)]
pub struct NodeNet {
    /// The node's namespace.
    pub netns: String,
    /// Interface index on the fabric (its name there is `n<index>`).
    pub index: u32,
    pub node_ip: Ipv4Addr,
    pub node_prefix_len: u8,
    /// The bridge address: the pods' gateway (first address of the pod CIDR).
    pub gateway: Ipv4Addr,
    pub pod_prefix_len: u8,
    /// Other nodes' pod CIDRs and node addresses.
    pub peers: Vec<(String, Ipv4Addr)>,
}

pub const NODE_BRIDGE: &str = "cni0";

/// Creates a node namespace plugged into `fabric` (when given): its node
/// address on eth0, the pod bridge, forwarding, and routes to the peers'
/// pod CIDRs. Its interfaces other than `lo`, the pods' bridge ports among
/// them, have no IPv6 (see [`wire_pod`]).
pub async fn create_node(fabric: Option<&str>, node: &NodeNet) -> Result<()> {
    let name = node.netns.clone();
    namespace::in_new_netns(&node.netns, move || {
        set_sysctl(&name, "ipv4/ip_forward", "1")?;
        ipv4_only(&name)
    })
    .await?;
    let mut lines = vec!["link set lo up".to_string()];
    lines.push(format!("link add {NODE_BRIDGE} type bridge"));
    lines.push(format!("addr add {}/{} dev {NODE_BRIDGE}", node.gateway, node.pod_prefix_len));
    lines.push(format!("link set {NODE_BRIDGE} up"));
    batch(&node.netns, &lines).await?;
    if let Some(fabric) = fabric {
        let port = format!("n{}", node.index);
        batch(
            fabric,
            &[
                format!("link add {port} type veth peer name eth0 netns {}", node.netns),
                format!("link set {port} master br0 up"),
            ],
        )
        .await?;
        let mut lines = vec![
            format!("addr add {}/{} dev eth0", node.node_ip, node.node_prefix_len),
            "link set eth0 up".to_string(),
        ];
        for (cidr, via) in &node.peers {
            lines.push(format!("route add {cidr} via {via}"));
        }
        batch(&node.netns, &lines).await?;
    }
    Ok(())
}

/// Writes `/proc/sys/net/KEY` of the calling thread's network namespace.
fn set_sysctl(netns: &str, key: &str, value: &str) -> Result<()> {
    std::fs::write(Path::new("/proc/sys/net").join(key), value).map_err(|source| NetError::Namespace {
        name: netns.into(),
        step: "writing a sysctl",
        source,
    })
}

/// Interfaces made in (or moved into) the calling thread's namespace from
/// now on get no IPv6: the cluster's pod and service networks are IPv4,
/// and an interface with IPv6 sends router solicitations, duplicate
/// address probes and multicast reports as it comes up, which a node's
/// kernel would otherwise work through for every pod in a burst. `lo`,
/// already there, keeps `::1`. A kernel without IPv6 has nothing to turn
/// off.
fn ipv4_only(netns: &str) -> Result<()> {
    match set_sysctl(netns, "ipv6/conf/default/disable_ipv6", "1") {
        Err(NetError::Namespace { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// One pod's network.
#[derive(Debug, Clone)]
pub struct PodNet {
    pub netns: String,
    /// The node-side end of the veth, on the node's bridge.
    pub host_veth: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
}

/// Creates the pod's namespace, its veth pair (eth0 inside, `host_veth` on
/// the node's bridge, hairpin on), its address and default route via the
/// bridge: what `ip netns add` and the `ip` commands
///
/// ```text
/// ip netns exec POD sysctl -w net.ipv6.conf.default.disable_ipv6=1
/// ip -n NODE link add VETH type veth peer name eth0 netns POD
/// ip -n NODE link set VETH master cni0 up
/// ip -n NODE link set VETH type bridge_slave hairpin on
/// ip -n POD link set lo up
/// ip -n POD addr add IP/LEN dev eth0
/// ip -n POD link set eth0 up
/// ip -n POD route add default via GATEWAY
/// ```
///
/// would do, without starting a process. On failure nothing is left behind.
pub async fn create_pod(node_netns: &str, pod: &PodNet) -> Result<()> {
    let node = node_netns.to_string();
    let owned = pod.clone();
    namespace::in_new_netns(&pod.netns, move || wire_pod(&node, &owned)).await
}

/// Runs on the thread that just made the pod's namespace (and is inside it).
/// The pod's eth0 is IPv4 only, as is its peer on the node's bridge when
/// [`create_node`] made the node's namespace (its default); `lo` keeps
/// `::1`, so programs that listen on `[::]` or ask for `localhost` over
/// IPv6 work as in any pod.
fn wire_pod(node: &str, pod: &PodNet) -> Result<()> {
    ipv4_only(&pod.netns)?;
    // Each socket talks to the namespace its thread was in when opened.
    let mut inside = Rtnl::open(&pod.netns)?;
    let pod_ns = namespace::open(&pod.netns)?;
    namespace::enter(node)?;
    let mut outside = Rtnl::open(node)?;
    let bridge = outside.link_index(NODE_BRIDGE)?;
    outside.add_veth(&pod.host_veth, "eth0", pod_ns.as_fd(), &pod.netns)?;
    let wired = (|| {
        outside.link_up(&pod.host_veth, Some(bridge))?;
        // A pod reaching itself through a Service comes back out of the
        // port it went in by (the kubelet's hairpin-veth).
        outside.hairpin_on(&pod.host_veth)?;
        inside.link_up("lo", None)?;
        let eth0 = inside.link_index("eth0")?;
        inside.add_addr(eth0, "eth0", pod.ip, pod.prefix_len)?;
        inside.link_up("eth0", None)?;
        inside.add_default_route(pod.gateway)
    })();
    if wired.is_err() {
        // The namespace goes too, but the kernel frees it (and the veth
        // with it) asynchronously: a retry must not find the name taken.
        let _ = outside.del_link(&pod.host_veth);
    }
    wired
}
