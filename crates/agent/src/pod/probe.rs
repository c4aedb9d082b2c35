//! Container probes, as the kubelet runs them: `httpGet` and `tcpSocket`
//! connect to the pod's address from the node's network namespace (where
//! the kubelet lives), `exec` runs a command inside the container.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::sys::{self, NetnsSockets};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure(String),
}

/// Where a probe runs.
pub struct Target<'a> {
    pub sockets: &'a NetnsSockets,
    pub pod_ip: IpAddr,
    pub container: &'a Container,
    /// The container's main process, whose namespaces an exec probe joins.
    pub pid: u32,
    pub env: &'a [(String, String)],
}

/// Probe timing with the API defaults filled in.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

pub fn timing(p: &Probe) -> Timing {
    let secs = |v: Option<i32>, d: i32| Duration::from_secs(v.unwrap_or(d).max(0) as u64);
    Timing {
        initial_delay: secs(p.initial_delay_seconds, 0),
        period: secs(p.period_seconds, 10).max(Duration::from_secs(1)),
        timeout: secs(p.timeout_seconds, 1).max(Duration::from_secs(1)),
        success_threshold: p.success_threshold.unwrap_or(1).max(1) as u32,
        failure_threshold: p.failure_threshold.unwrap_or(3).max(1) as u32,
    }
}

fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => {
            u16::try_from(*n).ok().filter(|p| *p > 0).ok_or_else(|| format!("invalid port number: {n}"))
        }
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<u16>() {
                return Ok(n);
            }
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("couldn't find port: {name} in {}", container.name))
        }
    }
}

/// Runs one probe once.
pub async fn run(probe: &Probe, target: &Target<'_>) -> Outcome {
    let timeout = timing(probe).timeout;
    let attempt = async {
        if let Some(h) = &probe.http_get {
            http_get(h, target, timeout).await
        } else if let Some(t) = &probe.tcp_socket {
            let port = resolve_port(&t.port, target.container)?;
            let host = t.host.as_deref().and_then(|h| h.parse().ok()).unwrap_or(target.pod_ip);
            connect(target, SocketAddr::new(host, port)).await.map(drop)
        } else if let Some(e) = &probe.exec {
            exec(e.command.as_deref().unwrap_or(&[]), target).await
        } else if probe.grpc.is_some() {
            Err("gRPC probes are not supported by svcnet".to_string())
        } else {
            Err("probe has no handler".to_string())
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(())) => Outcome::Success,
        Ok(Err(e)) => Outcome::Failure(e),
        Err(_) => Outcome::Failure(format!("probe timed out after {}s", timeout.as_secs())),
    }
}

async fn connect(target: &Target<'_>, addr: SocketAddr) -> Result<tokio::net::TcpStream, String> {
    let socket = target.sockets.tcp_socket(addr.is_ipv6()).await.map_err(|e| e.to_string())?;
    socket.connect(addr).await.map_err(|e| format!("dial tcp {addr}: connect: {}", describe(&e)))
}

fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}

async fn http_get(
    h: &k8s_openapi::api::core::v1::HTTPGetAction,
    target: &Target<'_>,
    _timeout: Duration,
) -> Result<(), String> {
    if h.scheme.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("HTTPS")) {
        return Err("HTTPS probes are not supported by svcnet".into());
    }
    let port = resolve_port(&h.port, target.container)?;
    let host = h.host.as_deref().and_then(|h| h.parse().ok()).unwrap_or(target.pod_ip);
    let addr = SocketAddr::new(host, port);
    let path = h.path.as_deref().filter(|p| !p.is_empty()).unwrap_or("/");
    let url = format!("http://{addr}{path}");
    let mut stream = connect(target, addr).await.map_err(|e| format!("Get \"{url}\": {e}"))?;
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    let mut has_host = false;
    let mut has_agent = false;
    let mut has_accept = false;
    for header in h.http_headers.iter().flatten() {
        let lower = header.name.to_ascii_lowercase();
        has_host |= lower == "host";
        has_agent |= lower == "user-agent";
        has_accept |= lower == "accept";
        req.push_str(&format!("{}: {}\r\n", header.name, header.value));
    }
    if !has_host {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    if !has_agent {
        req.push_str("User-Agent: kube-probe/1.33\r\n");
    }
    if !has_accept {
        req.push_str("Accept: */*\r\n");
    }
    req.push_str("Connection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.map_err(|e| format!("Get \"{url}\": {e}"))?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).await.map_err(|e| format!("Get \"{url}\": {e}"))?;
        if n == 0 {
            return Err(format!("Get \"{url}\": EOF"));
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 8192 {
            break;
        }
    }
    let line = String::from_utf8_lossy(&head);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("Get \"{url}\": malformed HTTP response"))?;
    if (200..400).contains(&code) { Ok(()) } else { Err(format!("HTTP probe failed with statuscode: {code}")) }
}

async fn exec(command: &[String], target: &Target<'_>) -> Result<(), String> {
    let Some((program, args)) = command.split_first() else {
        return Err("exec probe has no command".into());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(target.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    sys::join(&mut cmd, target.pid).map_err(|e| format!("joining the container: {e}"))?;
    let out = cmd.output().await.map_err(|e| format!("exec: {program:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let code = out.status.code().map(|c| c.to_string()).unwrap_or_else(|| "signal".into());
    Err(format!("command {:?} exited with {code}: {}", command.join(" "), text.trim()))
}
