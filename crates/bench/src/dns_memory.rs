//! The DNS memory scenario (`svcnet-bench --dns-memory ...`, behind
//! `bench/dns-memory.sh`): how much a cluster DNS process grows per
//! Service and per Pod it knows.
//!
//! The DNS servers are separate `svcnet dns` processes (named by
//! `--dns-process LABEL=PID=UDPADDR`) following the API server at
//! `--addr`. This tool creates, in steps up to each count of `--steps`,
//! Services that each select one Pod, and (`--with-pods`) that Pod, marked Ready
//! with an address through the status subresource as a kubelet would; the
//! controllers then write one EndpointSlice per Service. After each step it
//! waits until every DNS process answers for the newest objects and its
//! RSS has stopped moving, and prints each process's RSS and its growth
//! since the start, per Service and per object (Services + Pods).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http::Method;
use serde_json::json;

use super::{BoxError, Client, MakeRequest, dns_answers, dns_query, rss_mib, run_phase, tls};

#[derive(Parser, Debug)]
#[command(name = "svcnet-bench", about = "Cluster DNS memory per Service and per Pod")]
pub struct MemArgs {
    /// Selects this scenario.
    #[arg(long)]
    dns_memory: bool,
    /// host:port of the API server.
    #[arg(long)]
    addr: String,
    /// svcnet data dir holding pki/ (ca.crt, admin.crt, admin.key).
    #[arg(long)]
    pki: PathBuf,
    /// A DNS process to measure: `LABEL=PID=UDPADDR` (repeatable).
    #[arg(long = "dns-process", value_parser = parse_process)]
    processes: Vec<Process>,
    /// Service counts at which to measure, e.g. `10000,20000`.
    #[arg(long, value_delimiter = ',', default_value = "10000,20000")]
    steps: Vec<usize>,
    /// Also create one Ready Pod per Service (its endpoint).
    #[arg(long)]
    with_pods: bool,
    #[arg(long, default_value = "dns-mem")]
    namespace: String,
    /// Connections sharing the creates.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Longest wait, in seconds, for the DNS processes after a step.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

#[derive(Clone, Debug)]
struct Process {
    label: String,
    pid: u32,
    udp: SocketAddr,
}

fn parse_process(s: &str) -> Result<Process, String> {
    let mut parts = s.splitn(3, '=');
    let (Some(label), Some(pid), Some(udp)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{s:?} is not LABEL=PID=UDPADDR"));
    };
    Ok(Process {
        label: label.to_string(),
        pid: pid.parse().map_err(|e| format!("pid {pid:?}: {e}"))?,
        udp: udp.parse().map_err(|e| format!("address {udp:?}: {e}"))?,
    })
}

/// Whether `argv` asks for this scenario.
pub fn wanted(argv: &[String]) -> bool {
    argv.iter().any(|a| a == "--dns-memory")
}

fn pod_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 200 + (i / 65536) as u8, ((i / 256) % 256) as u8, (i % 256) as u8)
}

/// Sends one A query and says whether the answer is NOERROR with `ip`
/// (any answer at all when `ip` is `None`).
async fn answers(sock: &tokio::net::UdpSocket, name: &str, ip: Option<Ipv4Addr>) -> bool {
    let query = dns_query(0x4d45, name);
    let mut buf = vec![0u8; 4096];
    if sock.send(&query).await.is_err() {
        return false;
    }
    match tokio::time::timeout(Duration::from_millis(200), sock.recv(&mut buf)).await {
        Ok(Ok(n)) => match ip {
            Some(ip) => dns_answers(&buf[..n], ip),
            None => n > 12 && buf[3] & 0x0f == 0 && u16::from_be_bytes([buf[6], buf[7]]) > 0,
        },
        _ => false,
    }
}

/// Waits until every process answers for each name and then until its RSS
/// has not moved by more than 64 KiB for three seconds; returns the RSS
/// (MiB) of each.
async fn settle(args: &MemArgs, names: &[(String, Option<Ipv4Addr>)]) -> Result<Vec<f64>, BoxError> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    for p in &args.processes {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        sock.connect(p.udp).await?;
        for (name, ip) in names {
            while !answers(&sock, name, *ip).await {
                if Instant::now() > deadline {
                    return Err(format!("{} never answered {name}", p.label).into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let mut out = Vec::new();
    for p in &args.processes {
        let mut last = rss_mib(p.pid).ok_or("the DNS process is gone")?;
        let mut still = 0;
        while still < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = rss_mib(p.pid).ok_or("the DNS process is gone")?;
            still = if (now - last).abs() * 1024.0 <= 64.0 { still + 1 } else { 0 };
            last = now;
        }
        out.push(last);
    }
    Ok(out)
}

/// After a timeout: what the API server holds for the newest Service
/// (its EndpointSlice's endpoints, its Pod's status), to tell a slice that
/// was never written from one the DNS servers missed.
async fn diagnose(c: &mut Client, ns: &str, last: usize) {
    let slices = format!(
        "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dm{last}"
    );
    let pod = format!("/api/v1/namespaces/{ns}/pods/p{last}");
    for path in [slices, pod] {
        let req = c.request(Method::GET, "https", &path, "application/json", Bytes::new());
        match c.call(req).await {
            Ok((code, body)) => {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let shown = match v.get("items") {
                    Some(items) => json!(items.as_array().map(|a| {
                        a.iter()
                            .map(|s| {
                                json!({
                                    "name": s["metadata"]["name"], "endpoints": s["endpoints"]
                                })
                            })
                            .collect::<Vec<_>>()
                    })),
                    None => json!({ "status": v.get("status") }),
                };
                eprintln!("GET {path}: {code} {shown}");
            }
            Err(e) => eprintln!("GET {path}: {e}"),
        }
    }
}

pub async fn main(argv: Vec<String>) -> Result<(), BoxError> {
    let args = MemArgs::parse_from(argv);
    let tls = tls(&args.pki)?;
    let mut conns = Vec::new();
    for _ in 0..args.clients.max(1) {
        conns.push(Client::connect(&args.addr, tls.clone()).await?);
    }
    let ns = args.namespace.clone();
    let mut c = conns[0].clone();
    let body = Bytes::from(json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } }).to_string());
    c.call(c.request(Method::POST, "https", "/api/v1/namespaces", "application/json", body)).await?;
    let base = settle(&args, &[("kubernetes.default.svc.cluster.local".to_string(), None)]).await?;
    println!("| DNS process | Services | Pods | RSS | growth | per Service | per object (Services + Pods) |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (p, rss) in args.processes.iter().zip(&base) {
        println!("| {} | 0 | 0 | {rss:.1} MiB | | | |", p.label);
    }
    let mut done = 0;
    for &target in &args.steps {
        if target <= done {
            continue;
        }
        let (from, count) = (done, target - done);
        let ns2 = ns.clone();
        let services: MakeRequest = Arc::new(move |c: &Client, i: usize| {
            let i = from + i;
            let body = json!({ "apiVersion": "v1", "kind": "Service",
                "metadata": { "name": format!("m{i}") },
                "spec": { "selector": { "app": format!("m{i}") }, "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] } });
            let path = format!("/api/v1/namespaces/{ns2}/services");
            (c.request(Method::POST, "https", &path, "application/json", Bytes::from(body.to_string())), 201)
        });
        let phase = run_phase("services", &conns, count, services).await;
        if phase.errors > 0 {
            return Err(format!("{} Service creates failed", phase.errors).into());
        }
        let mut names = vec![(format!("m{}.{ns}.svc.cluster.local", target - 1), None)];
        if args.with_pods {
            let ns2 = ns.clone();
            let pods: MakeRequest = Arc::new(move |c: &Client, i: usize| {
                let i = from + i;
                let body = json!({ "apiVersion": "v1", "kind": "Pod",
                    "metadata": { "name": format!("p{i}"), "labels": { "app": format!("m{i}") } },
                    "spec": { "containers": [{ "name": "c", "image": "svcnet/echoserver" }] } });
                let path = format!("/api/v1/namespaces/{ns2}/pods");
                (c.request(Method::POST, "https", &path, "application/json", Bytes::from(body.to_string())), 201)
            });
            let phase = run_phase("pods", &conns, count, pods).await;
            if phase.errors > 0 {
                return Err(format!("{} Pod creates failed", phase.errors).into());
            }
            let ns2 = ns.clone();
            let ready: MakeRequest = Arc::new(move |c: &Client, i: usize| {
                let i = from + i;
                let ip = pod_ip(i).to_string();
                let body = json!({ "status": { "phase": "Running", "podIP": ip, "podIPs": [{ "ip": ip }],
                    "conditions": [{ "type": "Ready", "status": "True" }] } });
                let path = format!("/api/v1/namespaces/{ns2}/pods/p{i}/status");
                (
                    c.request(
                        Method::PATCH,
                        "https",
                        &path,
                        "application/merge-patch+json",
                        Bytes::from(body.to_string()),
                    ),
                    200,
                )
            });
            let phase = run_phase("ready", &conns, count, ready).await;
            if phase.errors > 0 {
                return Err(format!("{} Pod status patches failed", phase.errors).into());
            }
            // The last Pod's endpoint name (its slice arrived); the pod name
            // itself is answered by every `pods` mode but `disabled`.
            let last = target - 1;
            let dashed = pod_ip(last).to_string().replace('.', "-");
            names.push((format!("{dashed}.m{last}.{ns}.svc.cluster.local"), Some(pod_ip(last))));
        }
        let rss = match settle(&args, &names).await {
            Ok(rss) => rss,
            Err(e) => {
                diagnose(&mut conns[0].clone(), &ns, target - 1).await;
                return Err(e);
            }
        };
        let pods = if args.with_pods { target } else { 0 };
        for ((p, rss), base) in args.processes.iter().zip(&rss).zip(&base) {
            let grown = (rss - base) * 1024.0 * 1024.0;
            println!(
                "| {} | {target} | {pods} | {rss:.1} MiB | {:.1} MiB | {:.2} KiB | {:.2} KiB |",
                p.label,
                rss - base,
                grown / target as f64 / 1024.0,
                grown / (target + pods) as f64 / 1024.0,
            );
        }
        done = target;
    }
    Ok(())
}
