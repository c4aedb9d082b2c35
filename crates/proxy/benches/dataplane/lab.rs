//! The bench's mini node: a node namespace with the pod bridge `cni0`
//! (10.244.1.1/24) and pod namespaces on it, as the kernel tests build
//! them, plus the bookkeeping that removes everything the bench created —
//! on success, on error, on a panic and on SIGINT/SIGTERM/SIGHUP.
//!
//! Every namespace is named `svbench-<pid>-<tag>-*` and registered before
//! it is created; every process the bench starts is registered with its
//! `Child`, so it is stopped by its own pid and never by name.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use svcnet_netns::NetnsSockets;
use svcnet_netns::ip::{self, NodeNet, PodNet};
use svcnet_proxy::NodeEnv;

use crate::BoxError;

pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 2);
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 1);
pub const POD_CIDR: &str = "10.244.1.0/24";
/// Wide enough for the 100,000 made-up endpoints of the 10k-service runs
/// (10.248.0.0 upwards) to count as pod addresses.
pub const CLUSTER_CIDR: &str = "10.240.0.0/12";
pub const SERVICE_CIDR: &str = "10.96.0.0/12";

struct Registry {
    netns: Vec<String>,
    procs: Vec<(u64, Child, Duration)>,
    next: u64,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { netns: Vec::new(), procs: Vec::new(), next: 0 });

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stops every registered process (SIGTERM, then SIGKILL after its grace
/// time) and deletes every registered namespace. Idempotent.
pub fn cleanup_all() {
    let (procs, netns) = {
        let mut r = registry();
        (std::mem::take(&mut r.procs), std::mem::take(&mut r.netns))
    };
    for (_, child, grace) in procs.into_iter().rev() {
        stop_child(child, grace);
    }
    for name in netns.iter().rev() {
        delete_netns(name);
    }
}

/// Any panic, on any thread: the default report, then the same clean-up,
/// then exit (a panicking tokio task would otherwise leave main waiting).
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        cleanup_all();
        std::process::exit(101);
    }));
}

/// Resolves when SIGINT, SIGTERM or SIGHUP arrives; its name.
pub async fn signalled() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
    else {
        // Without handlers the default action (exit) applies; the drop
        // guards still cover errors and panics.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    }
}

fn stop_child(mut child: Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    // Not reaped yet, so the pid is still this child's.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn delete_netns(name: &str) {
    let _ = Command::new("ip").args(["netns", "delete", name]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    let _ = std::fs::remove_dir_all(ip::netns_etc(name));
}

/// A process the bench started; stopped (by its pid) when dropped.
pub struct Proc {
    id: u64,
    pub pid: u32,
}

impl Proc {
    /// Starts `cmd`, registered; `grace` is how long it gets between
    /// SIGTERM and SIGKILL when stopped.
    pub fn spawn(mut cmd: Command, grace: Duration) -> Result<Proc, BoxError> {
        let mut r = registry();
        let child = cmd.spawn().map_err(|e| format!("starting {cmd:?}: {e}"))?;
        let pid = child.id();
        r.next += 1;
        let id = r.next;
        r.procs.push((id, child, grace));
        Ok(Proc { id, pid })
    }

    /// Starts `argv` inside namespace `netns` (`ip netns exec` execs it, so
    /// the pid is the program's), its stdout and stderr to the given
    /// files (or nowhere).
    pub fn spawn_in(
        netns: &str,
        argv: &[&str],
        stdout: Option<&Path>,
        stderr: Option<&Path>,
    ) -> Result<Proc, BoxError> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns]).args(argv).stdin(Stdio::null());
        cmd.stdout(match stdout {
            Some(p) => Stdio::from(std::fs::File::create(p)?),
            None => Stdio::null(),
        });
        cmd.stderr(match stderr {
            Some(p) => Stdio::from(std::fs::File::create(p)?),
            None => Stdio::null(),
        });
        Proc::spawn(cmd, Duration::from_secs(2))
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&self) -> Option<ExitStatus> {
        let mut r = registry();
        let (_, child, _) = r.procs.iter_mut().find(|(id, _, _)| *id == self.id)?;
        child.try_wait().ok().flatten()
    }

    /// Waits up to `limit` for it to exit; an error (and the process
    /// stopped) when it does not.
    pub async fn wait(self, limit: Duration) -> Result<ExitStatus, BoxError> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_wait() {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(format!("process {} still running after {limit:?}; stopped", self.pid).into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// CPU time (user + system) it has used so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&self.pid.to_string())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let entry = {
            let mut r = registry();
            r.procs.iter().position(|(id, _, _)| *id == self.id).map(|i| r.procs.remove(i))
        };
        if let Some((_, child, grace)) = entry {
            stop_child(child, grace);
        }
    }
}

/// CPU time (user + system) of `/proc/<pid>` (or `self`), in seconds.
pub fn cpu_seconds(pid: &str) -> f64 {
    cpu_fields(pid, &[11, 12])
}

/// CPU time of this process's children that it has reaped (`nft`,
/// `iptables-restore`, ...), in seconds.
pub fn children_cpu_seconds() -> f64 {
    cpu_fields("self", &[13, 14])
}

fn cpu_fields(pid: &str, fields: &[usize]) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name (which may hold spaces), fields start at state.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let all: Vec<&str> = rest.split_whitespace().collect();
    // USER_HZ is 100 on Linux.
    fields.iter().filter_map(|i| all.get(*i)?.parse::<f64>().ok()).sum::<f64>() / 100.0
}

/// CPU seconds the whole machine has spent busy (every CPU, everything
/// but idle and iowait) since boot, from `/proc/stat`.
pub fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else { return 0.0 };
    let v: Vec<f64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice,
    // already counted in user and nice].
    let busy: f64 = v.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, x)| x).sum();
    busy / 100.0
}

/// `VmRSS` / `VmHWM` of this process, in KiB.
pub fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Hands the allocator's free pages back to the kernel (glibc's
/// `malloc_trim`), so that RSS afterwards shows live memory rather than
/// what the allocator keeps after a burst.
#[allow(unsafe_code)]
pub fn trim_heap() {
    // SAFETY: malloc_trim only releases memory the allocator holds free;
    // it takes no pointer and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Namespaces created for one lab, deleted (in reverse) when dropped.
struct Namespaces(Vec<String>);

impl Namespaces {
    /// Registers `name` (before it exists, so a half-made one goes too).
    fn add(&mut self, name: &str) {
        registry().netns.push(name.to_string());
        self.0.push(name.to_string());
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        {
            let mut r = registry();
            r.netns.retain(|n| !self.0.contains(n));
        }
        for name in self.0.iter().rev() {
            delete_netns(name);
        }
    }
}

pub struct Pod {
    pub netns: String,
    pub sockets: NetnsSockets,
}

/// One node with pods on its bridge; the namespaces go when it is dropped.
pub struct Lab {
    pub env: NodeEnv,
    pub pods: Vec<Pod>,
    // Last, so everything using the namespaces goes first.
    _ns: Namespaces,
}

fn ip_cmd(args: &[&str]) -> Result<(), BoxError> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        return Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    Ok(())
}

impl Lab {
    /// A node `svbench-<pid>-<tag>-node` (with an `eth0` holding the node
    /// address) and the named pods at the given addresses.
    pub async fn new(tag: &str, pods: &[(&str, Ipv4Addr)]) -> Result<Lab, BoxError> {
        let prefix = format!("svbench-{}-{tag}", std::process::id());
        let mut ns = Namespaces(Vec::new());
        let node = format!("{prefix}-node");
        ns.add(&node);
        let net = NodeNet {
            netns: node.clone(),
            index: 1,
            node_ip: NODE_IP,
            node_prefix_len: 24,
            gateway: GATEWAY,
            pod_prefix_len: 24,
            peers: vec![],
        };
        ip::create_node(None, &net).await?;
        // No `dummy` module here: a veth pair with both ends in the node.
        ip_cmd(&["-n", &node, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer"])?;
        ip_cmd(&["-n", &node, "addr", "add", &format!("{NODE_IP}/24"), "dev", "eth0"])?;
        ip_cmd(&["-n", &node, "link", "set", "eth0-peer", "up"])?;
        ip_cmd(&["-n", &node, "link", "set", "eth0", "up"])?;
        let mut made = Vec::new();
        for (i, (name, addr)) in pods.iter().enumerate() {
            let netns = format!("{prefix}-{name}");
            ns.add(&netns);
            let pod = PodNet {
                netns: netns.clone(),
                host_veth: format!("vb{i}"),
                ip: *addr,
                prefix_len: 24,
                gateway: GATEWAY,
            };
            ip::create_pod(&node, &pod).await?;
            // Sequential short connections leave TIME_WAITs; give the
            // client every port.
            let out = Command::new("ip")
                .args(["netns", "exec", &netns, "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"])
                .output()?;
            if !out.status.success() {
                return Err(format!("sysctl in {netns}: {}", String::from_utf8_lossy(&out.stderr).trim()).into());
            }
            made.push(Pod { netns: netns.clone(), sockets: NetnsSockets::enter(&ip::netns_path(&netns))? });
        }
        let env = NodeEnv {
            node_name: "node1".into(),
            netns: node.clone(),
            sockets: NetnsSockets::enter(&ip::netns_path(&node))?,
            node_ips: vec![NODE_IP],
            pod_cidr: POD_CIDR.into(),
            bridge: "cni0".into(),
            cluster_cidr: CLUSTER_CIDR.into(),
            service_cidr: SERVICE_CIDR.into(),
        };
        Ok(Lab { env, pods: made, _ns: ns })
    }

    pub fn pod(&self, i: usize) -> &Pod {
        &self.pods[i]
    }
}

/// An echo server in `pod` on each of `ports`: reads what arrives and
/// writes it back, until the client closes. It runs on its own thread
/// (with its own single-threaded runtime), made from the pod's namespace
/// thread so that it lives in the pod's namespace too; it ends with the
/// process.
pub async fn echo_server(pod: &Pod, ports: &[u16]) -> Result<(), BoxError> {
    let ports = ports.to_vec();
    pod.sockets
        .run(move || -> std::io::Result<()> {
            let mut listeners = Vec::new();
            for port in ports {
                let l = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))?;
                l.set_nonblocking(true)?;
                listeners.push(l);
            }
            std::thread::Builder::new().name("echo".into()).spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                rt.block_on(async move {
                    for l in listeners {
                        let Ok(l) = tokio::net::TcpListener::from_std(l) else { continue };
                        tokio::spawn(async move {
                            while let Ok((s, _)) = l.accept().await {
                                tokio::spawn(echo(s));
                            }
                        });
                    }
                    std::future::pending::<()>().await
                });
            })?;
            Ok(())
        })
        .await??;
    Ok(())
}

async fn echo(mut s: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = s.set_nodelay(true);
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                if s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            _ => return,
        }
    }
}
