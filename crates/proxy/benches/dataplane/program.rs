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
//! `program` runs each mode in a fresh child process (this binary with
//! `--mode M --json`), so its memory figures are its own; the parent
//! prints the table. `first-packet` builds one node per (mode, size), all
//! at once, and interleaves the probes among them.

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
    let (cpu2, kids2) = (lab::cpu_seconds("self"), lab::children_cpu_seconds());
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
    let (cpu3, kids3) = (lab::cpu_seconds("self"), lab::children_cpu_seconds());
    let per_change = |a: f64, b: f64| (b - a) / one_endpoint.len().max(1) as f64;
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
    lab::trim_heap();
    let rss_trimmed = rss_kib("VmRSS:");

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
        "one_endpoint_cpu_self": per_change(cpu2, cpu3),
        "one_endpoint_cpu_children": per_change(kids2, kids3),
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
        "rss_trimmed": rss_trimmed,
    }))
}

fn print_program(services: usize, per: usize, changes: usize, results: &[(&str, Value)]) {
    let n = thousands_i(services);
    let head: Vec<&str> = results.iter().map(|(m, _)| *m).collect();
    println!();
    println!(
        "{n} ClusterIP Services × {per} endpoints, programmed into an empty node namespace; each mode in a fresh process:"
    );
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
    row("  CPU per endpoint change: proxy process / its children", "", &|v| {
        format!("{} / {}", ms_f(secs(v, "one_endpoint_cpu_self")), ms_f(secs(v, "one_endpoint_cpu_children")))
    });
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
    row("  RSS after the changes; after handing free heap pages back (malloc_trim)", "", &|v| {
        format!("{}; {}", mib(kib(v, "rss_after_changes")), mib(kib(v, "rss_trimmed")))
    });
}

// ----------------------------------------------------------- first packet

const PROBE_PORTS: std::ops::Range<u16> = 8080..8090;

/// One node programmed with `services` services by one mode.
struct Setup {
    mode: Mode,
    services: usize,
    sync: Duration,
    lab: Lab,
    targets: Vec<SocketAddr>,
    reply: Vec<Vec<Duration>>,
    errors: Vec<usize>,
    first_error: Option<String>,
    // Kept until the end (dropped with the lab's namespace).
    _plane: Plane,
}

/// Every (mode, size) gets its own node at the same time, and the probes
/// go round them in small interleaved batches, so that all are measured
/// under the same load on the machine.
pub async fn run_first_packet(args: &Args) -> Result<(), BoxError> {
    let probes = args.num("probes", 500)?.clamp(10, 5000);
    let sizes = args.list("services", "100,10000")?;
    let modes = parse_modes(&args.str("modes", "nftables,iptables"))?;
    let ports: Vec<u16> = PROBE_PORTS.collect();
    let mut setups = Vec::new();
    for mode in &modes {
        for &services in &sizes {
            let services = services.clamp(3, 50_000);
            let tag = format!("fp{}-{}-{services}", setups.len(), mode.name());
            let lab = Lab::new(&tag, &[("backend", BACKEND_IP), ("client", CLIENT_IP)]).await?;
            echo_server(lab.pod(0), &ports).await?;
            let mut snap = big(services, 10);
            let picks = [0, services / 2, services - 1];
            for &i in &picks {
                snap.services[i].endpoints = ports.iter().map(|p| endpoint(BACKEND_IP, *p)).collect();
            }
            let mut plane = Plane::new(*mode, &lab.env);
            let sync = plane.sync(&snap).await?;
            eprintln!("first-packet: {} with {} services: synced in {}", mode.name(), thousands_i(services), ms(sync));
            let mut targets = vec![SocketAddr::from((BACKEND_IP, PROBE_PORTS.start))];
            targets.extend(picks.iter().map(|&i| SocketAddr::from((snap.services[i].cluster_ip, 80))));
            drop(snap);
            let warm = connections(lab.pod(1), targets.clone(), 10, 1, Duration::from_secs(30)).await?;
            if let Some(e) = &warm.first_error {
                return Err(format!("{} at {services}: warm-up failed: {e}", mode.name()).into());
            }
            setups.push(Setup {
                mode: *mode,
                services,
                sync,
                lab,
                reply: vec![Vec::new(); targets.len()],
                errors: vec![0; targets.len()],
                targets,
                first_error: None,
                _plane: plane,
            });
        }
    }
    const BATCH: usize = 10;
    let started = Instant::now();
    for b in 0..probes.div_ceil(BATCH) {
        if started.elapsed() > Duration::from_secs(300) {
            eprintln!("first-packet: stopping after 300 s");
            break;
        }
        let n = setups.len();
        for k in 0..n {
            let s = &mut setups[(k + b) % n];
            let run = connections(s.lab.pod(1), s.targets.clone(), BATCH, 1, Duration::from_secs(30)).await?;
            for (i, r) in run.reply.into_iter().enumerate() {
                s.reply[i].extend(r);
                s.errors[i] += run.errors[i];
            }
            if s.first_error.is_none() {
                s.first_error = run.first_error;
            }
        }
    }

    println!();
    println!(
        "Time from connect() to the echo of a first byte on a new connection, {probes} connections per target; \
         every node below exists at once and the probes go round them in interleaved batches (direct, first, \
         middle, last service in snapshot order). Each service probed has 10 endpoints (the backend pod on 10 \
         ports), the others 10 made-up ones. µs, p50 / p99:"
    );
    println!();
    println!(
        "| mode | Services | sync | direct to pod | first Service | middle Service | last Service | p50 vs fewest Services: direct, first, middle, last | errors |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let p50 = |s: &Setup, i: usize| percentile(&s.reply[i], 50.0).as_secs_f64();
    for s in &setups {
        let base =
            setups.iter().filter(|b| b.mode == s.mode).min_by_key(|b| b.services).map(|b| (0..4).map(|i| p50(b, i)));
        let growth: Vec<String> = match base {
            Some(base) => base.enumerate().map(|(i, b)| crate::stats::ratio(p50(s, i), b)).collect(),
            None => vec![],
        };
        let t = |i: usize| format!("{} / {}", us(percentile(&s.reply[i], 50.0)), us(percentile(&s.reply[i], 99.0)));
        println!(
            "| {} | {} | {} | {} | {} | **{}** | {} | {} | {} |",
            s.mode.name(),
            thousands_i(s.services),
            ms(s.sync),
            t(0),
            t(1),
            t(2),
            t(3),
            growth.join(", "),
            s.errors.iter().sum::<usize>()
        );
    }
    for s in &setups {
        if let Some(e) = &s.first_error {
            println!("\n{} at {}: first error: {e}", s.mode.name(), s.services);
        }
    }
    Ok(())
}
