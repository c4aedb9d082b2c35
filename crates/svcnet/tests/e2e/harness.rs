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
    cache: tempfile::TempDir,
}

impl Cluster {
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir)
    }

    /// Starts (or restarts) svcnet on an existing data directory.
    pub fn start_in(dir: tempfile::TempDir) -> Cluster {
        let mut child = Command::new(env!("CARGO_BIN_EXE_svcnet"))
            .args(["up", "--api-port", "0", "--data-dir"])
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
        let addr = loop {
            let line = lines.next().expect("svcnet exited before it was ready").expect("read stdout");
            if let Some(rest) = line.strip_prefix("svcnet cluster DNS on 127.0.0.1:") {
                dns_port = rest.split_whitespace().next().and_then(|p| p.parse().ok()).unwrap_or(0);
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
        Cluster { child: Some(child), dir, addr, dns_port, cache: tempfile::tempdir().expect("tempdir") }
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
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Parses JSON output of kubectl.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
