//! The pod scenario (`svcnet-bench --kubeconfig K --pods N`): how long the
//! cluster takes from a pod's create request to the pod being Ready, for N
//! pods created at once.
//!
//! A watch on the run's own label (`bench=<run>`) is opened first, at the
//! resourceVersion of an (empty) list, so no event can be missed. Then
//! `--clients` tasks share the N creates, so that many requests are in
//! flight at any time. For every pod the watch notes when it first saw the
//! pod bound to a node, with an address, and Ready=True; each is measured
//! from the instant just before that pod's create request was sent.
//! Finally the pods are deleted and the run waits (bounded) until they are
//! gone, unless `--keep` leaves them for the caller (who deletes them later
//! with `--delete-only --run <run>`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use svcnet_client::{Api, Client, Config, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use tokio::sync::Notify;

use super::{BoxError, pct};

#[derive(Parser, Debug)]
#[command(name = "svcnet-bench", about = "Pod create-to-Ready latency for pods created at once")]
pub struct PodArgs {
    /// kubeconfig of the API server.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Pods to create at once.
    #[arg(long, default_value_t = 0)]
    pods: usize,
    /// `svcnet/echoserver` (serves HTTP on containerPort 8080) or `sleep`
    /// (runs `sleep 3600`).
    #[arg(long, default_value = "svcnet/echoserver")]
    image: String,
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Concurrent client tasks sharing the creates (and deletes).
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Bind the pods to these nodes round-robin (spec.nodeName), bypassing
    /// the scheduler; comma-separated.
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<String>,
    /// Value of the `bench` label of this run's pods (default: random).
    #[arg(long)]
    run: Option<String>,
    /// Leave the pods running when they are all Ready.
    #[arg(long)]
    keep: bool,
    /// Only delete the pods labelled `bench=<run>` and wait until gone.
    #[arg(long, requires = "run")]
    delete_only: bool,
    /// Process ids whose child processes are the pods' containers (the
    /// agents, or `svcnet up`): each child's start time (from /proc, 10 ms
    /// resolution) is matched to its pod by the HOSTNAME in its
    /// environment, to split create-to-Ready at the container's start.
    #[arg(long, value_delimiter = ',')]
    containers_of: Vec<u32>,
    /// Longest wait, in seconds, for all pods to be Ready and, separately,
    /// for all of them to be gone after the delete.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

/// Whether `argv` asks for this scenario (`--pods`, not the endpoints
/// scenario's `--pods-per-service`, or `--delete-only`).
pub fn wanted(argv: &[String]) -> bool {
    argv.iter().any(|a| a == "--pods" || a.starts_with("--pods=") || a == "--delete-only")
}

/// When the watch first saw each milestone of a pod.
#[derive(Default, Clone, Copy)]
struct Seen {
    bound: Option<Instant>,
    addressed: Option<Instant>,
    ready: Option<Instant>,
}

#[derive(Default)]
struct Progress {
    seen: HashMap<String, Seen>,
    ready: usize,
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_object(name: &str, label: &str, image: &str, node: Option<&str>) -> Result<Pod, BoxError> {
    let container = if image == "sleep" {
        json!({ "name": "sleep", "image": "busybox:1.36", "command": ["sleep", "3600"] })
    } else {
        json!({ "name": "echo", "image": image, "ports": [{ "containerPort": 8080, "protocol": "TCP" }] })
    };
    let mut spec = json!({ "containers": [container], "terminationGracePeriodSeconds": 5 });
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "labels": { "bench": label } },
        "spec": spec,
    });
    Ok(serde_json::from_value(pod)?)
}

fn random_run() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("pods-{:x}{:05x}", std::process::id() & 0xfff, nanos & 0xfffff)
}

/// Follows the run's pods from `rv`, noting milestones; re-watches from the
/// last seen resourceVersion if the stream ends.
async fn follow(api: Api<Pod>, selector: String, mut rv: String, progress: Arc<Mutex<Progress>>, changed: Arc<Notify>) {
    let params = WatchParams::default().labels(&selector).timeout(3600);
    for _attempt in 0..100 {
        let mut stream = match api.watch(&params, &rv).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("watch failed: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        while let Some(event) = stream.next().await {
            let now = Instant::now();
            let pod = match event {
                Ok(WatchEvent::Added(p) | WatchEvent::Modified(p) | WatchEvent::Deleted(p)) => p,
                Ok(WatchEvent::Bookmark { resource_version }) => {
                    rv = resource_version;
                    continue;
                }
                Ok(WatchEvent::Error(e)) => {
                    eprintln!("watch error event: {e}");
                    continue;
                }
                Err(e) => {
                    eprintln!("watch ended: {e}");
                    break;
                }
            };
            if let Some(v) = &pod.metadata.resource_version {
                rv = v.clone();
            }
            let Some(name) = pod.metadata.name.clone() else { continue };
            let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
            let addressed = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).is_some_and(|ip| !ip.is_empty());
            let ready = is_ready(&pod);
            let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
            let seen = p.seen.entry(name).or_default();
            if bound && seen.bound.is_none() {
                seen.bound = Some(now);
            }
            if addressed && seen.addressed.is_none() {
                seen.addressed = Some(now);
            }
            let newly_ready = ready && seen.ready.is_none();
            if newly_ready {
                seen.ready = Some(now);
                p.ready += 1;
            }
            drop(p);
            if newly_ready {
                changed.notify_one();
            }
        }
    }
}

/// Deletes the pods matching `selector` with `clients` tasks and waits
/// until none is left (at most `timeout`). Returns the time taken and how
/// many were left.
async fn delete_all(
    api: &Api<Pod>,
    selector: &str,
    clients: usize,
    timeout: Duration,
) -> Result<(Duration, usize), BoxError> {
    let start = Instant::now();
    let names: Vec<String> = api
        .list(&ListParams::default().labels(selector))
        .await?
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    let names = Arc::new(names);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let (api, names, next) = (api.clone(), names.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(name) = names.get(i) else { break };
                if let Err(e) = api.delete(name, &DeleteParams::default()).await {
                    if !e.is_not_found() {
                        eprintln!("deleting pod {name}: {e}");
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let deadline = start + timeout;
    loop {
        let left = api.list(&ListParams::default().labels(selector)).await?.items.len();
        if left == 0 || Instant::now() >= deadline {
            return Ok((start.elapsed(), left));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Seconds since boot, from /proc/uptime (10 ms resolution; the clock of
/// processes' start times in /proc/PID/stat).
fn uptime() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()
}

/// Start times (seconds since boot) of the children of `parents`, by the
/// HOSTNAME in their environment (the pod's name, which the agent sets).
fn container_starts(parents: &[u32]) -> HashMap<String, f64> {
    // USER_HZ, the unit of /proc/PID/stat times, is 100 on every Linux
    // architecture svcnet runs on.
    const USER_HZ: f64 = 100.0;
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let path = entry.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else { continue };
        // Fields after "pid (comm) ": state is the 1st, ppid the 2nd,
        // starttime the 20th.
        let Some((_, rest)) = stat.rsplit_once(") ") else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(ppid), Some(start)) =
            (fields.get(1).and_then(|f| f.parse::<u32>().ok()), fields.get(19).and_then(|f| f.parse::<u64>().ok()))
        else {
            continue;
        };
        if !parents.contains(&ppid) {
            continue;
        }
        let Ok(environ) = std::fs::read(path.join("environ")) else { continue };
        let host = environ.split(|b| *b == 0).find_map(|kv| kv.strip_prefix(b"HOSTNAME="));
        if let Some(host) = host {
            out.insert(String::from_utf8_lossy(host).into_owned(), start as f64 / USER_HZ);
        }
    }
    out
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn row(what: &str, mut lat: Vec<Duration>) -> String {
    lat.sort();
    let max = lat.last().copied().unwrap_or_default();
    format!(
        "| {what} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        max.as_secs_f64() * 1000.0
    )
}

/// Prints why the pods that never became Ready are not (phase, reasons).
async fn explain_stragglers(api: &Api<Pod>, selector: &str) {
    let Ok(list) = api.list(&ListParams::default().labels(selector)).await else { return };
    let mut why: HashMap<String, usize> = HashMap::new();
    for p in list.items.iter().filter(|p| !is_ready(p)) {
        let status = p.status.as_ref();
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("-");
        let node = p.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("unbound");
        let reason = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.status != "True"))
            .map(|c| {
                format!("{} {}: {}", c.type_, c.reason.as_deref().unwrap_or(""), c.message.as_deref().unwrap_or(""))
            })
            .unwrap_or_default();
        *why.entry(format!("{phase} on {node} ({reason})")).or_default() += 1;
    }
    for (w, n) in why {
        eprintln!("not Ready: {n} pod(s): {w}");
    }
}

pub async fn main(argv: Vec<String>) -> Result<(), BoxError> {
    let args = PodArgs::parse_from(argv);
    let config = Config::from_kubeconfig(&args.kubeconfig)?;
    let client = Client::new(config.clone())?.with_user_agent("svcnet-bench/pods")?;
    let api: Api<Pod> = Api::namespaced(client, &args.namespace);
    let run = args.run.clone().unwrap_or_else(random_run);
    let selector = format!("bench={run}");
    let timeout = Duration::from_secs(args.timeout);

    if args.delete_only {
        let (took, left) = delete_all(&api, &selector, args.clients, timeout).await?;
        println!("| pods labelled {selector} deleted and gone | {:.1} s ({left} left) |", took.as_secs_f64());
        return Ok(());
    }

    // The watch gets its own connection, so its events do not queue behind
    // the creates.
    let watch_api: Api<Pod> =
        Api::namespaced(Client::new(config)?.with_user_agent("svcnet-bench/pods-watch")?, &args.namespace);
    let existing = watch_api.list(&ListParams::default().labels(&selector)).await?;
    if !existing.items.is_empty() {
        return Err(format!("{} pods already carry label {selector}", existing.items.len()).into());
    }
    let progress = Arc::new(Mutex::new(Progress::default()));
    let changed = Arc::new(Notify::new());
    let watcher = tokio::spawn(follow(
        watch_api,
        selector.clone(),
        existing.resource_version().to_string(),
        progress.clone(),
        changed.clone(),
    ));

    let starts: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let begin = Instant::now();
    let begin_uptime = uptime();
    let mut tasks = Vec::new();
    for _ in 0..args.clients.max(1) {
        let (api, starts, next, errors) = (api.clone(), starts.clone(), next.clone(), errors.clone());
        let (n, image, run, nodes) = (args.pods, args.image.clone(), run.clone(), args.nodes.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let name = format!("{run}-{i}");
                let node = (!nodes.is_empty()).then(|| nodes[i % nodes.len()].as_str());
                let pod = match pod_object(&name, &run, &image, node) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("building pod {name}: {e}");
                        errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                starts.lock().unwrap_or_else(|e| e.into_inner()).insert(name.clone(), Instant::now());
                if let Err(e) = api.create(&PostParams::default(), &pod).await {
                    eprintln!("creating pod {name}: {e}");
                    errors.fetch_add(1, Ordering::Relaxed);
                    starts.lock().unwrap_or_else(|e| e.into_inner()).remove(&name);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let created_in = begin.elapsed();
    let created = args.pods - errors.load(Ordering::Relaxed);

    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = changed.notified();
        if progress.lock().unwrap_or_else(|e| e.into_inner()).ready >= created {
            break;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            break;
        }
    }
    let seen: HashMap<String, Seen> = progress.lock().unwrap_or_else(|e| e.into_inner()).seen.clone();
    let starts = starts.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (mut bound, mut addressed, mut ready) = (Vec::new(), Vec::new(), Vec::new());
    let mut last_ready = None::<Instant>;
    for (name, start) in &starts {
        let Some(s) = seen.get(name) else { continue };
        let since = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(*start));
        bound.extend(since(s.bound));
        addressed.extend(since(s.addressed));
        ready.extend(since(s.ready));
        if let Some(r) = s.ready {
            last_ready = Some(last_ready.map_or(r, |l| l.max(r)));
        }
    }
    let not_ready = created - ready.len();
    // Container process starts, as offsets from `begin` on the boot clock.
    let mut started = Vec::new();
    let mut start_to_ready = Vec::new();
    if !args.containers_of.is_empty() {
        let procs = container_starts(&args.containers_of);
        for (name, start) in &starts {
            let (Some(at), Some(b)) = (procs.get(name), begin_uptime) else { continue };
            let after_begin = Duration::from_secs_f64((at - b).max(0.0));
            let create_offset = start.duration_since(begin);
            started.push(after_begin.saturating_sub(create_offset));
            if let Some(r) = seen.get(name).and_then(|s| s.ready) {
                start_to_ready.push(r.duration_since(begin).saturating_sub(after_begin));
            }
        }
    }
    let how = if args.nodes.is_empty() { "scheduler" } else { "nodeName set by the client" };
    println!("Pods: {} x `{}`, {} client tasks, placed by the {how}.", args.pods, args.image, args.clients);
    println!();
    println!("| from create request to | pods | p50 ms | p90 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- | --- |");
    println!("{}", row("bound to a node (watch sees spec.nodeName)", bound));
    if !args.containers_of.is_empty() {
        println!("{}", row("container process started (/proc start time, ±20 ms)", started));
    }
    println!("{}", row("pod IP in status (sandbox up)", addressed));
    println!("{}", row("**Ready=True**", ready));
    if !args.containers_of.is_empty() {
        println!("{}", row("(container process started → watch sees Ready=True)", start_to_ready));
    }
    println!();
    println!("| measure | value |");
    println!("| --- | --- |");
    println!("| all {} creates answered | {} (errors: {}) |", args.pods, ms(created_in), args.pods - created);
    match last_ready {
        Some(l) if not_ready == 0 => {
            println!("| all {created} pods Ready (first create to last Ready) | {} |", ms(l.duration_since(begin)))
        }
        _ => println!("| all {created} pods Ready | not within {} s: {not_ready} not Ready |", args.timeout),
    }
    if not_ready > 0 {
        explain_stragglers(&api, &selector).await;
    }
    watcher.abort();
    let _ = watcher.await;

    if args.keep {
        println!("| pods left running | label {selector} |");
        return Ok(());
    }
    let (took, left) = delete_all(&api, &selector, args.clients, timeout).await?;
    if left == 0 {
        println!("| all {created} pods deleted and gone | {} |", ms(took));
    } else {
        println!("| pods deleted | not all gone within {} s: {left} left |", args.timeout);
    }
    Ok(())
}
