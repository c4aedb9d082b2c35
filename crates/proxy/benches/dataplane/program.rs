//! The kernel modes at scale:
//!
//! - `program`: 10,000 Services × 10 endpoints programmed from scratch into
//!   an empty node; then one endpoint changed, one service added and
//!   removed, a sync without changes, a restart (a new plane replacing
//!   the table a previous run left) and the cleanup; the process's RSS
//!   before and after building and syncing the snapshot.
//! - `first-packet`: with N services programmed, time from a new
//!   connection's `connect()` to the echo of its first byte, through the
//!   VIPs of the first, middle and last service (in snapshot order), and
//!   directly to the pod for reference, interleaved.
//!
//! Each (mode, size) runs in a fresh child process (this binary with
//! `--mode M --json`), so its memory figures are its own; the parent
//! prints the table.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use svcnet_proxy::Mode;

use crate::client::connections;
use crate::connect::{BACKEND_IP, CLIENT_IP};
use crate::lab::{self, Lab, Proc, echo_server, rss_kib};
use crate::plane::{Plane, big, endpoint, fake_ip, parse_modes};
use crate::stats::{mib, mib_signed, ms, ms_f, percentile, us};
use crate::{Args, BoxError};

/// Longest a child may run.
const CHILD_LIMIT: Duration = Duration::from_secs(600);

/// Runs this binary again with `args`; the JSON object it prints last.
async fn child(args: Vec<String>) -> Result<Value, BoxError> {
    let exe = std::env::current_exe()?;
    let out = tempfile::Builder::new().prefix("svbench-child-").tempfile()?;
    let mut cmd = Command::new(exe);
    cmd.args(&args).stdin(Stdio::null()).stdout(Stdio::from(out.reopen()?)).stderr(Stdio::inherit());
    // Its own clean-up (namespaces) needs a moment after SIGTERM.
    let proc = Proc::spawn(cmd, Duration::from_secs(20))?;
    let status = proc.wait(CHILD_LIMIT).await?;
    let text = std::fs::read_to_string(out.path())?;
    if !status.success() {
        return Err(format!("`dataplane {}` failed ({status})", args.join(" ")).into());
    }
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    Ok(serde_json::from_str(last).map_err(|e| format!("`dataplane {}` printed no result: {e}", args.join(" ")))?)
}

fn secs(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

fn kib(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

// ---------------------------------------------------------------- program

pub async fn run_program(args: &Args) -> Result<(), BoxError> {
    let services = args.num("services", 10_000)?.clamp(1, 50_000);
    let per = args.num("endpoints", 10)?.clamp(1, 100);
    let changes = args.num("changes", 30)?.clamp(1, 500);
    if args.flag("json") {
        let mode = Mode::parse(&args.str("mode", "nftables"))?;
        let v = program_one(mode, services, per, changes).await?;
        println!("{v}");
        return Ok(());
    }
    let modes = parse_modes(&args.str("modes", "nftables,iptables"))?;
    let mut results = Vec::new();
    for mode in &modes {
        eprintln!("program: {} × {per} in {} (child process)", thousands_i(services), mode.name());
        let v = child(vec![
            "program".into(),
            "--json".into(),
            "--mode".into(),
            mode.name().into(),
            "--services".into(),
            services.to_string(),
            "--endpoints".into(),
            per.to_string(),
            "--changes".into(),
            changes.to_string(),
        ])
        .await?;
        results.push((mode.name(), v));
    }
    print_program(services, per, changes, &results);
    Ok(())
}

fn thousands_i(n: usize) -> String {
    crate::stats::thousands(n as f64)
}

async fn program_one(mode: Mode, services: usize, per: usize, changes: usize) -> Result<Value, BoxError> {
    let lab = Lab::new("prog", &[]).await?;
    let rss_start = rss_kib("VmRSS:");
    let t = Instant::now();
    let mut snap = big(services, per);
    let build = t.elapsed();
    let rss_snapshot = rss_kib("VmRSS:");

    let mut plane = Plane::new(mode, &lab.env);
    let (cpu0, kids0) = (lab::cpu_seconds("self"), lab::children_cpu_seconds());
    let scratch = plane.sync(&snap).await?;
    let (cpu1, kids1) = (lab::cpu_seconds("self"), lab::children_cpu_seconds());
    let rss_synced = rss_kib("VmRSS:");
    let hwm_synced = rss_kib("VmHWM:");
    eprintln!("  {}: from scratch {scratch:.2?}", mode.name());

    // One endpoint of one service replaced, a different service each time.
    let mut one_endpoint = Vec::new();
    let fresh = services * per;
    let started = Instant::now();
    for c in 0..changes {
        if started.elapsed() > Duration::from_secs(240) {
            break;
        }
        let k = (c * 7919 + 13) % services;
        let s = &mut snap.services[k];
        s.endpoints[0] = endpoint(fake_ip(fresh + c), 8080);
        s.endpoints.sort_by_key(|e| (e.ip, e.port));
        one_endpoint.push(plane.sync(&snap).await?);
    }
    // One service added, then removed again.
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    let extra = {
        let eps = (0..per).map(|e| endpoint(fake_ip(fresh + changes + e), 8080)).collect();
        crate::plane::service("ns-extra", "svc-extra", crate::plane::big_vip(services + 1), 80, eps)
    };
    let started = Instant::now();
    for _ in 0..changes.div_ceil(3) {
        if started.elapsed() > Duration::from_secs(240) {
            break;
        }
        let at = snap.services.partition_point(|s| s.id() < extra.id());
        snap.services.insert(at, extra.clone());
        added.push(plane.sync(&snap).await?);
        snap.services.remove(at);
        removed.push(plane.sync(&snap).await?);
    }
    let mut unchanged = Vec::new();
    for _ in 0..5 {
        unchanged.push(plane.sync(&snap).await?);
    }
    let rss_after_changes = rss_kib("VmRSS:");

    // A restart: a new plane finds the table a previous run left.
    drop(plane);
    let mut restarted = Plane::new(mode, &lab.env);
    let restart = restarted.sync(&snap).await?;
    let cleanup = restarted.cleanup().await?;
    drop(lab);

    let stat = |v: &[Duration]| json!({"median": percentile(v, 50.0).as_secs_f64(), "p99": percentile(v, 99.0).as_secs_f64(), "max": percentile(v, 100.0).as_secs_f64(), "n": v.len()});
    Ok(json!({
        "mode": mode.name(),
        "services": services,
        "endpoints": per,
        "build": build.as_secs_f64(),
        "scratch": scratch.as_secs_f64(),
        "scratch_cpu_self": cpu1 - cpu0,
        "scratch_cpu_children": kids1 - kids0,
        "one_endpoint": stat(&one_endpoint),
        "add_service": stat(&added),
        "remove_service": stat(&removed),
        "unchanged": stat(&unchanged),
        "restart": restart.as_secs_f64(),
        "cleanup": cleanup.as_secs_f64(),
        "rss_start": rss_start,
        "rss_snapshot": rss_snapshot,
        "rss_synced": rss_synced,
        "hwm_synced": hwm_synced,
        "rss_after_changes": rss_after_changes,
    }))
}

fn print_program(services: usize, per: usize, changes: usize, results: &[(&str, Value)]) {
    let n = thousands_i(services);
    let head: Vec<&str> = results.iter().map(|(m, _)| *m).collect();
    println!();
    println!("{n} ClusterIP Services × {per} endpoints, programmed into an empty node namespace; each mode in a fresh process:");
    println!();
    println!("| measure | {} | target |", head.join(" | "));
    println!("| --- |{} --- |", " --- |".repeat(head.len()));
    let row = |label: &str, target: &str, f: &dyn Fn(&Value) -> String| {
        let cells: Vec<String> = results.iter().map(|(_, v)| f(v)).collect();
        println!("| {label} | {} | {target} |", cells.join(" | "));
    };
    let dist = |v: &Value, key: &str| {
        let d = &v[key];
        format!(
            "{} / {} / {}",
            ms_f(d["median"].as_f64().unwrap_or(f64::NAN)),
            ms_f(d["p99"].as_f64().unwrap_or(f64::NAN)),
            ms_f(d["max"].as_f64().unwrap_or(f64::NAN))
        )
    };
    row(&format!("**program {n} × {per} from scratch** (wall)"), "< 1 s (nftables)", &|v| {
        format!("**{}**", ms_f(secs(v, "scratch")))
    });
    row("  CPU for it: proxy process / its children (nft, iptables-restore)", "", &|v| {
        format!("{:.2} s / {:.2} s", secs(v, "scratch_cpu_self"), secs(v, "scratch_cpu_children"))
    });
    row(
        &format!("**one endpoint changed** at {n}, median / p99 / max of {changes}"),
        "< 10 ms (kube-proxy nftables: 141 ms)",
        &|v| dist(v, "one_endpoint"),
    );
    row("one service added, median / p99 / max", "", &|v| dist(v, "add_service"));
    row("one service removed, median / p99 / max", "", &|v| dist(v, "remove_service"));
    row("sync without changes, median / p99 / max", "", &|v| dist(v, "unchanged"));
    row("restart: a new proxy replaces the table it finds", "", &|v| ms_f(secs(v, "restart")));
    row("cleanup (remove everything)", "", &|v| ms_f(secs(v, "cleanup")));
    row("building the snapshot (not the plane's work)", "", &|v| ms_f(secs(v, "build")));
    row("RSS: start / snapshot built / synced", "", &|v| {
        format!("{} / {} / {}", mib(kib(v, "rss_start")), mib(kib(v, "rss_snapshot")), mib(kib(v, "rss_synced")))
    });
    row(&format!("**RSS with {n} Services synced** (absolute)"), "< 100 MiB (kube-proxy: 260 MiB)", &|v| {
        format!("**{}**", mib(kib(v, "rss_synced")))
    });
    row("  growth: snapshot + plane state (of which the snapshot)", "", &|v| {
        let start = kib(v, "rss_start") as i64;
        format!(
            "{} ({})",
            mib_signed(kib(v, "rss_synced") as i64 - start),
            mib_signed(kib(v, "rss_snapshot") as i64 - start)
        )
    });
    row("  peak RSS during the from-scratch sync (VmHWM)", "", &|v| mib(kib(v, "hwm_synced")));
    row("  RSS after the changes", "", &|v| mib(kib(v, "rss_after_changes")));
}

// ----------------------------------------------------------- first packet

const PROBE_PORTS: std::ops::Range<u16> = 8080..8090;

pub async fn run_first_packet(args: &Args) -> Result<(), BoxError> {
    let probes = args.num("probes", 300)?.clamp(10, 5000);
    if args.flag("json") {
        let mode = Mode::parse(&args.str("mode", "nftables"))?;
        let services = args.num("services", 100)?.clamp(3, 50_000);
        let v = first_packet_one(mode, services, probes).await?;
        println!("{v}");
        return Ok(());
    }
    let sizes = args.list("services", "100,10000")?;
    let modes = parse_modes(&args.str("modes", "nftables,iptables"))?;
    let mut results = Vec::new();
    for mode in &modes {
        for size in &sizes {
            eprintln!("first-packet: {} with {} services (child process)", mode.name(), thousands_i(*size));
            let v = child(vec![
                "first-packet".into(),
                "--json".into(),
                "--mode".into(),
                mode.name().into(),
                "--services".into(),
                size.to_string(),
                "--probes".into(),
                probes.to_string(),
            ])
            .await?;
            results.push(v);
        }
    }
    println!();
    println!(
        "Time from connect() to the echo of a first byte on a new connection, {probes} connections per target, \
         interleaved (direct, first, middle, last service in snapshot order); each service probed has 10 \
         endpoints (the backend pod on 10 ports), the others 10 made-up ones. µs, p50 / p99:"
    );
    println!();
    println!(
        "| mode | Services | sync | direct to pod | first Service | middle Service | last Service | middle p50 vs fewest Services | errors |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for v in &results {
        let base = results
            .iter()
            .filter(|b| b["mode"] == v["mode"])
            .min_by_key(|b| b["services"].as_u64().unwrap_or(0))
            .map(|b| b["targets"][2]["p50"].as_f64().unwrap_or(f64::NAN))
            .unwrap_or(f64::NAN);
        let t = |i: usize| {
            let x = &v["targets"][i];
            format!(
                "{} / {}",
                us(Duration::from_secs_f64(x["p50"].as_f64().unwrap_or(0.0))),
                us(Duration::from_secs_f64(x["p99"].as_f64().unwrap_or(0.0)))
            )
        };
        let errors: u64 = (0..4).map(|i| v["targets"][i]["errors"].as_u64().unwrap_or(0)).sum();
        println!(
            "| {} | {} | {} | {} | {} | **{}** | {} | {} | {} |",
            v["mode"].as_str().unwrap_or(""),
            thousands_i(v["services"].as_u64().unwrap_or(0) as usize),
            ms_f(secs(v, "sync")),
            t(0),
            t(1),
            t(2),
            t(3),
            crate::stats::ratio(v["targets"][2]["p50"].as_f64().unwrap_or(f64::NAN), base),
            errors
        );
    }
    for v in &results {
        if let Some(e) = v["first_error"].as_str() {
            println!("\n{} at {}: first error: {e}", v["mode"].as_str().unwrap_or(""), v["services"]);
        }
    }
    Ok(())
}

async fn first_packet_one(mode: Mode, services: usize, probes: usize) -> Result<Value, BoxError> {
    let lab = Lab::new("fp", &[("backend", BACKEND_IP), ("client", CLIENT_IP)]).await?;
    let ports: Vec<u16> = PROBE_PORTS.collect();
    echo_server(lab.pod(0), &ports).await?;
    let mut snap = big(services, 10);
    let picks = [0, services / 2, services - 1];
    for &i in &picks {
        snap.services[i].endpoints = ports.iter().map(|p| endpoint(BACKEND_IP, *p)).collect();
    }
    let mut plane = Plane::new(mode, &lab.env);
    let sync = plane.sync(&snap).await?;
    eprintln!("  {} at {services}: synced in {}", mode.name(), ms(sync));
    let mut targets = vec![SocketAddr::from((BACKEND_IP, PROBE_PORTS.start))];
    targets.extend(picks.iter().map(|&i| SocketAddr::from((snap.services[i].cluster_ip, 80))));

    let warm = connections(lab.pod(1), targets.clone(), 10, 1, Duration::from_secs(30)).await?;
    if let Some(e) = &warm.first_error {
        return Err(format!("{} at {services}: warm-up failed: {e}", mode.name()).into());
    }
    let run = connections(lab.pod(1), targets.clone(), probes, 1, Duration::from_secs(120)).await?;
    let per: Vec<Value> = (0..targets.len())
        .map(|i| {
            json!({
                "target": targets[i].to_string(),
                "n": run.reply[i].len(),
                "p50": percentile(&run.reply[i], 50.0).as_secs_f64(),
                "p90": percentile(&run.reply[i], 90.0).as_secs_f64(),
                "p99": percentile(&run.reply[i], 99.0).as_secs_f64(),
                "connect_p50": percentile(&run.connect[i], 50.0).as_secs_f64(),
                "errors": run.errors[i],
            })
        })
        .collect();
    plane.cleanup().await?;
    Ok(json!({
        "mode": mode.name(),
        "services": services,
        "sync": sync.as_secs_f64(),
        "targets": per,
        "first_error": run.first_error,
    }))
}
