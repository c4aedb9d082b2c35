//! TCP throughput with iperf3: server in the backend pod, client in the
//! client pod, through (a) nothing — the direct pod-to-pod path over the
//! bridge, (b) the userspace proxy's VIP, (c) HAProxy in TCP mode in the
//! node namespace (the proxy's position: client pod → node → backend),
//! with its defaults and with `option splice-auto`, and, for reference,
//! (d) the nftables and iptables VIPs. Interleaved rounds; medians.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use svcnet_proxy::Mode;

use crate::connect::{BACKEND_IP, CLIENT_IP};
use crate::lab::{self, GATEWAY, Lab, Proc};
use crate::plane::{Plane, parse_modes, single};
use crate::stats::{median_f, ratio};
use crate::{Args, BoxError};

const IPERF_PORT: u16 = 5201;
/// HAProxy's defaults on this port, `option splice-auto` on the next.
const HAPROXY_PORT: u16 = 15201;

#[derive(Clone, Copy, PartialEq)]
enum Via {
    Direct,
    /// With `option splice-auto` or not.
    Haproxy {
        splice: bool,
    },
    Plane(Mode),
}

struct Path {
    via: Via,
    label: String,
    addr: SocketAddr,
    gbps: Vec<f64>,
    /// CPU seconds of the forwarding process per GB received.
    cpu_per_gb: Vec<f64>,
    /// CPU seconds of the whole machine per GB received.
    machine_per_gb: Vec<f64>,
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-v").output().is_ok()
}

pub async fn run(args: &Args) -> Result<(), BoxError> {
    let seconds = args.num("seconds", 5)?.clamp(1, 60);
    let rounds = args.num("rounds", 5)?.clamp(1, 10);
    let streams = args.num("streams", 1)?.clamp(1, 16);
    let modes = parse_modes(&args.str("modes", "userspace,nftables,iptables"))?;
    if !have("iperf3") {
        return Err("throughput needs iperf3 (apt-get install iperf3)".into());
    }
    let lab = Lab::new("tput", &[("backend", BACKEND_IP), ("client", CLIENT_IP)]).await?;
    let work = tempfile::Builder::new().prefix("svbench-tput-").tempdir()?;
    let _server = Proc::spawn_in(
        &lab.pod(0).netns,
        &["iperf3", "-s", "-p", &IPERF_PORT.to_string()],
        None,
        Some(&work.path().join("iperf3-server.err")),
    )?;
    let backend = SocketAddr::from((BACKEND_IP, IPERF_PORT));

    let haproxy = if have("haproxy") {
        let cfg = work.path().join("haproxy.cfg");
        std::fs::write(
            &cfg,
            format!(
                "global\n  maxconn 1000\ndefaults\n  mode tcp\n  timeout connect 1s\n  timeout client 60s\n  \
                 timeout server 60s\nlisten iperf\n  bind {GATEWAY}:{HAPROXY_PORT}\n  server backend {backend}\n\
                 listen iperf-splice\n  bind {GATEWAY}:{}\n  option splice-auto\n  server backend {backend}\n",
                HAPROXY_PORT + 1
            ),
        )?;
        let cfg = cfg.to_string_lossy().into_owned();
        Some(Proc::spawn_in(
            &lab.env.netns,
            &["haproxy", "-db", "-f", &cfg],
            None,
            Some(&work.path().join("haproxy.err")),
        )?)
    } else {
        eprintln!("throughput: no haproxy; its row is left out");
        None
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Some(h) = &haproxy {
        if h.try_wait().is_some() {
            let err = std::fs::read_to_string(work.path().join("haproxy.err")).unwrap_or_default();
            return Err(format!("haproxy exited: {err}").into());
        }
    }

    let version = Command::new("haproxy")
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.split_whitespace().nth(2).map(|v| format!(" {}", v.split('-').next().unwrap_or(v)))
        })
        .unwrap_or_default();
    let mut paths = vec![Path::new(Via::Direct, "direct (pod IP)".into(), backend)];
    for (i, mode) in modes.iter().enumerate() {
        let vip = SocketAddr::from((Ipv4Addr::new(10, 96, 0, 20 + i as u8), IPERF_PORT));
        paths.push(Path::new(Via::Plane(*mode), format!("{} (Service VIP)", mode.name()), vip));
        if i == 0 && haproxy.is_some() {
            for (splice, port, how) in [(false, HAPROXY_PORT, "defaults"), (true, HAPROXY_PORT + 1, "splice-auto")] {
                paths.push(Path::new(
                    Via::Haproxy { splice },
                    format!("HAProxy{version}, TCP mode, {how}, in the node"),
                    SocketAddr::from((GATEWAY, port)),
                ));
            }
        }
    }

    eprintln!("throughput: iperf3 -t {seconds} -P {streams}, {rounds} rounds");
    for round in 0..rounds {
        for p in paths.iter_mut() {
            let mut plane = None;
            if let Via::Plane(mode) = p.via {
                let mut pl = Plane::new(mode, &lab.env);
                pl.sync(&single("iperf", p.addr, &[backend])).await?;
                plane = Some(pl);
            }
            let cpu_before = match p.via {
                Via::Haproxy { .. } => haproxy.as_ref().map(Proc::cpu_seconds).unwrap_or(0.0),
                _ => lab::cpu_seconds("self"),
            };
            let busy_before = lab::machine_busy_seconds();
            let (gbps, bytes) = iperf(&lab.pod(1).netns, p.addr, seconds, streams, work.path(), round).await?;
            let cpu = match p.via {
                Via::Haproxy { .. } => haproxy.as_ref().map(Proc::cpu_seconds).unwrap_or(0.0),
                _ => lab::cpu_seconds("self"),
            } - cpu_before;
            let busy = lab::machine_busy_seconds() - busy_before;
            p.gbps.push(gbps);
            if bytes > 0.0 {
                p.machine_per_gb.push(busy / (bytes / 1e9));
            }
            if matches!(p.via, Via::Haproxy { .. } | Via::Plane(Mode::Userspace(_))) && bytes > 0.0 {
                p.cpu_per_gb.push(cpu / (bytes / 1e9));
            }
            eprintln!("  round {}: {:<36} {gbps:6.2} Gbit/s", round + 1, p.label);
            if let Some(mut pl) = plane {
                pl.cleanup().await?;
            }
        }
    }

    let direct = median_f(&paths[0].gbps);
    let ha = paths.iter().find(|p| p.via == Via::Haproxy { splice: false }).map(|p| median_f(&p.gbps));
    println!();
    println!(
        "iperf3, {streams} stream(s), {seconds} s per run, {rounds} interleaved rounds; client pod → path → backend pod on one node:"
    );
    println!();
    println!(
        "| path | Gbit/s (median) | runs | vs direct | vs HAProxy (defaults) | forwarder CPU s per GB | machine CPU s per GB |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for p in &paths {
        let g = median_f(&p.gbps);
        let runs: Vec<String> = p.gbps.iter().map(|v| format!("{v:.1}")).collect();
        println!(
            "| {} | **{g:.2}** | {} | {} | {} | {} | {:.2} |",
            p.label,
            runs.join(" / "),
            ratio(g, direct),
            ha.map(|h| ratio(g, h)).unwrap_or_else(|| "–".into()),
            if p.cpu_per_gb.is_empty() { "–".into() } else { format!("{:.3}", median_f(&p.cpu_per_gb)) },
            median_f(&p.machine_per_gb),
        );
    }
    Ok(())
}

impl Path {
    fn new(via: Via, label: String, addr: SocketAddr) -> Path {
        Path { via, label, addr, gbps: Vec::new(), cpu_per_gb: Vec::new(), machine_per_gb: Vec::new() }
    }
}

/// One iperf3 client run from `netns`: received Gbit/s and bytes.
async fn iperf(
    netns: &str,
    to: SocketAddr,
    seconds: usize,
    streams: usize,
    dir: &std::path::Path,
    round: usize,
) -> Result<(f64, f64), BoxError> {
    let out = dir.join(format!("iperf3-{}-{}-{round}.json", to.ip(), to.port()));
    let (host, port, t, p) = (to.ip().to_string(), to.port().to_string(), seconds.to_string(), streams.to_string());
    let mut last_err = String::new();
    // A retry covers the server not being up yet on the first run.
    for _attempt in 0..2 {
        let proc =
            Proc::spawn_in(netns, &["iperf3", "-c", &host, "-p", &port, "-t", &t, "-P", &p, "-J"], Some(&out), None)?;
        let status = proc.wait(Duration::from_secs(seconds as u64 + 20)).await?;
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let bps = json["end"]["sum_received"]["bits_per_second"].as_f64().unwrap_or(0.0);
        let bytes = json["end"]["sum_received"]["bytes"].as_f64().unwrap_or(0.0);
        if status.success() && bps > 0.0 {
            return Ok((bps / 1e9, bytes));
        }
        last_err = json["error"].as_str().unwrap_or("no result").to_string();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("iperf3 to {to}: {last_err}").into())
}
