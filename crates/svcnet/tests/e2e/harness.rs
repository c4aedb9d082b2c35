//! A real svcnet process per test, driven by the real kubectl and curl.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// kubectl binaries the suite runs against: the default and the oldest and
/// newest supported versions.
pub const KUBECTL: &str = "/usr/bin/kubectl";
pub const KUBECTL_127: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.27";
pub const KUBECTL_133: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";

/// Retries `$cond` until it holds or `$secs` seconds pass, then fails with
/// the last value it saw.
#[macro_export]
macro_rules! assert_eventually {
    ($secs:expr, $cond:expr, $($msg:tt)+) => {{
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs($secs);
        loop {
            if $cond {
                break;
            }
            if std::time::Instant::now() > deadline {
                panic!($($msg)+);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }};
}

/// A running `svcnet up` (API server and controllers) with its own data
/// directory.
pub struct Cluster {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub addr: String,
    /// Port of the cluster DNS on 127.0.0.1.
    pub dns_port: u16,
    /// Ports of the Ingress controller on 127.0.0.1 (HTTP, HTTPS).
    pub http_port: u16,
    pub https_port: u16,
    cache: tempfile::TempDir,
    /// Prefix of the network namespaces of the sandbox's nodes and pods.
    pub netns_prefix: Option<String>,
    nodes: u32,
}

impl Cluster {
    /// The control plane alone (`--nodes 0`): API server, controllers, DNS.
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir)
    }

    /// A sandbox cluster with `nodes` nodes running pods for real.
    pub fn with_nodes(nodes: u32) -> Cluster {
        Self::launch_in(tempfile::tempdir().expect("tempdir"), nodes)
    }

    /// Starts (or restarts) svcnet on an existing data directory.
    pub fn start_in(dir: tempfile::TempDir) -> Cluster {
        Self::launch_in(dir, 0)
    }

    /// A sandbox cluster whose nodes run the given proxy mode.
    pub fn with_proxy(nodes: u32, mode: &str) -> Cluster {
        Self::launch_with(tempfile::tempdir().expect("tempdir"), nodes, &["--proxy-mode", mode])
    }

    /// Starts (or restarts) svcnet with `nodes` nodes on a data directory.
    pub fn launch_in(dir: tempfile::TempDir, nodes: u32) -> Cluster {
        Self::launch_with(dir, nodes, &[])
    }

    fn launch_with(dir: tempfile::TempDir, nodes: u32, extra: &[&str]) -> Cluster {
        let mut child = Command::new(env!("CARGO_BIN_EXE_svcnet"))
            .args(["up", "--api-port", "0", "--http-port", "0", "--https-port", "0", "--nodes", &nodes.to_string()])
            .args(extra)
            .arg("--data-dir")
            .arg(dir.path())
            .env("SVCNET_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn svcnet");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut dns_port = 0;
        let (mut http_port, mut https_port) = (0, 0);
        let mut netns_prefix = None;
        let addr = loop {
            let line = lines.next().expect("svcnet exited before it was ready").expect("read stdout");
            if let Some(rest) = line.strip_prefix("svcnet cluster DNS on 127.0.0.1:") {
                dns_port = rest.split_whitespace().next().and_then(|p| p.parse().ok()).unwrap_or(0);
            }
            if let Some(rest) = line.strip_prefix("svcnet ingress on http://127.0.0.1:") {
                let port = |s: &str| s.split(|c: char| !c.is_ascii_digit()).next().and_then(|p| p.parse().ok());
                http_port = port(rest).unwrap_or(0);
                https_port = rest.split_once("https://127.0.0.1:").and_then(|(_, r)| port(r)).unwrap_or(0);
            }
            if let Some(i) = line.find("(network namespaces ") {
                let rest = &line[i + "(network namespaces ".len()..];
                netns_prefix = rest.split("-*").next().map(str::to_string);
            }
            if line.contains("ready") {
                let start = line.find("https://").expect("address in ready line") + 8;
                let end = line[start..].find(' ').map_or(line.len(), |e| start + e);
                break line[start..end].to_string();
            }
            assert!(Instant::now() < deadline, "svcnet did not become ready");
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Cluster {
            child: Some(child),
            dir,
            addr,
            dns_port,
            http_port,
            https_port,
            cache: tempfile::tempdir().expect("tempdir"),
            netns_prefix,
            nodes,
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    pub fn pki(&self, file: &str) -> PathBuf {
        self.dir.path().join("pki").join(file)
    }

    /// Runs a kubectl binary against this cluster.
    pub fn kubectl_with(&self, bin: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(bin);
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.cache.path().join(bin.replace('/', "_")));
        cmd.args(args).stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kubectl");
        if let Some(input) = stdin {
            child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl and returns stdout, failing the test on a non-zero exit.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with(KUBECTL, args, None)
    }

    pub fn ok_with(&self, bin: &str, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_with(bin, args, stdin);
        assert!(
            out.status.success(),
            "{bin} {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Applies a manifest from stdin with `kubectl apply -f -`.
    pub fn apply(&self, manifest: &str) -> String {
        self.ok_with(KUBECTL, &["apply", "-f", "-"], Some(manifest))
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_with(KUBECTL, args, stdin);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `dig @127.0.0.1 -p <dns port> <args>`, returning stdout.
    pub fn dig(&self, args: &[&str]) -> String {
        let out = Command::new("dig")
            .arg("@127.0.0.1")
            .arg("-p")
            .arg(self.dns_port.to_string())
            .args(["+time=2", "+tries=2"])
            .args(args)
            .output()
            .expect("dig");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether kubectl fails (for polling until something is gone).
    pub fn kubectl_fails_quietly(&self, args: &[&str]) -> bool {
        !self.kubectl_with(KUBECTL, args, None).status.success()
    }

    /// curl against the API server; returns (HTTP status, body).
    pub fn curl(&self, with_client_cert: bool, args: &[&str]) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}", "--cacert"]).arg(self.pki("ca.crt"));
        if with_client_cert {
            cmd.arg("--cert").arg(self.pki("admin.crt")).arg("--key").arg(self.pki("admin.key"));
        }
        let out = cmd.args(args).output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// Stops svcnet with SIGKILL (no clean shutdown) and returns its data
    /// directory for a restart.
    pub fn kill9(mut self) -> tempfile::TempDir {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // What it left behind is for the next `up` on this directory to find.
        self.netns_prefix = None;
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"))
    }

    /// Stops svcnet with SIGTERM and waits for it to exit; returns its
    /// exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.nodes == 0 {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            return;
        }
        // With nodes, stop it cleanly so it removes its namespaces and
        // processes; then remove whatever is left, even if it crashed.
        self.terminate();
        if let Some(prefix) = &self.netns_prefix {
            for ns in netns_with_prefix(prefix) {
                let _ = Command::new("ip").args(["netns", "delete", &ns]).status();
            }
        }
    }
}

/// Network namespaces whose names start with `prefix-`.
pub fn netns_with_prefix(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .map(str::to_string)
        .collect()
}

/// Parses JSON output of kubectl.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
