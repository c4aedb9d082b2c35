//! The pod runtime: for every pod bound to this node, a sandbox (network
//! namespace, veth, address, `/etc` files) and a supervisor per container
//! that starts its process, runs its probes, restarts it by the pod's
//! restartPolicy with the kubelet's back-off, and stops it gracefully.
//! Status goes back to the API server whenever what it would say changes.

pub mod probe;
pub mod spec;
pub mod state;

mod container;
mod logs;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use svcnet_client::events::{self, EventType, Recorder, reference};
use svcnet_client::{Api, Client, DeleteParams, Patch, PatchParams, Preconditions};
use tokio::sync::{Notify, watch};

use crate::access::{AccessError, ContainerRef, LogRef, PodAccess};
use crate::ipam::Ipam;
use crate::net;
use crate::sys::NetnsSockets;
use state::{ContainerState, PodState};

/// How the runtime places pods on its node.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub node_name: String,
    /// The node's network namespace, and the prefix of pod namespaces.
    pub node_netns: String,
    pub netns_prefix: String,
    pub node_ip: Ipv4Addr,
    pub facts: spec::ClusterFacts,
    /// Where logs and host-network pods' files go.
    pub state_dir: PathBuf,
    /// This binary, which runs built-in images.
    pub svcnet_exe: PathBuf,
}

pub(crate) struct Inner {
    pub cfg: RuntimeConfig,
    pub client: Client,
    pub sockets: NetnsSockets,
    /// The kubelet's Events, written in the background one at a time.
    pub recorder: Recorder,
    ipam: Mutex<Ipam>,
    hostports: tokio::sync::Mutex<crate::hostport::HostPorts>,
    pods: Mutex<HashMap<String, Arc<PodRun>>>,
    host_resolv: String,
    /// How the built-in echoserver image runs: [`spec::echoserver_argv`].
    pub echoserver: Vec<String>,
    /// Sandboxes being built at once: see [`SANDBOX_BUILDS`].
    sandbox_builds: tokio::sync::Semaphore,
    /// Set by [`Runtime::shutdown`]: pods stopped then keep their logs.
    shutting_down: std::sync::atomic::AtomicBool,
}

/// How many sandboxes an agent builds at once. A burst of pods then
/// finishes first come, first served, instead of all of them sharing the
/// CPU and finishing late together; the rest wait their turn (in order).
/// Building one is mostly kernel work (a namespace, a veth, a few files),
/// a few milliseconds of CPU, so a handful in flight keeps both cores busy.
const SANDBOX_BUILDS: usize = 4;

/// How long a new pod's first status report waits for the pod to settle
/// (its containers started, or something failed): a pod that starts within
/// this reports once, Running with its IP, instead of Pending first and
/// Running right after. In a burst that is one write fewer per pod for the
/// API server and one watch event fewer for every watcher; a pod that takes
/// longer still shows ContainerCreating after this.
const FIRST_REPORT_WITHIN: Duration = Duration::from_secs(1);

/// One pod this agent runs.
pub(crate) struct PodRun {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub spec: watch::Sender<Arc<Pod>>,
    pub state: Mutex<PodState>,
    pub io: Mutex<Vec<container::ContainerIo>>,
    /// Status worth reporting changed.
    pub changed: Notify,
    /// `Some(grace)` once the pod is to stop.
    pub stop: watch::Sender<Option<u64>>,
    pub netns: Mutex<String>,
}

impl PodRun {
    pub fn touch(&self) {
        self.changed.notify_one();
    }

    pub fn pod(&self) -> Arc<Pod> {
        self.spec.borrow().clone()
    }

    /// Records an Event about the pod, as the kubelet does, optionally
    /// about one of its containers (`spec.containers{NAME}`).
    pub fn event(&self, inner: &Inner, container: Option<&str>, warning: bool, reason: &str, message: String) {
        let pod = self.pod();
        let mut object = reference("Pod", "v1", &pod.metadata);
        let ephemeral = |c: &str| {
            pod.spec
                .as_ref()
                .and_then(|s| s.ephemeral_containers.as_ref())
                .is_some_and(|l| l.iter().any(|e| e.name == c))
        };
        object.field_path = container.map(|c| {
            if ephemeral(c) { format!("spec.ephemeralContainers{{{c}}}") } else { format!("spec.containers{{{c}}}") }
        });
        let kind = if warning { EventType::Warning } else { EventType::Normal };
        inner.recorder.record(object, kind, reason, message);
    }

    pub fn with_container<T>(&self, i: usize, f: impl FnOnce(&mut ContainerState) -> T) -> T {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let t = f(&mut s.containers[i]);
        drop(s);
        self.touch();
        t
    }
}

/// The pod runtime of one node.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Runtime {
    pub fn new(cfg: RuntimeConfig, client: Client, sockets: NetnsSockets, ipam: Ipam) -> Runtime {
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        // The logs of an earlier run of this agent: their processes are
        // gone, and pods run again number their attempts from 0. Without
        // this, the logs of pods deleted while the agent was down would
        // stay forever.
        let _ = std::fs::remove_dir_all(cfg.state_dir.join("logs"));
        let echoserver = spec::echoserver_argv(&cfg.svcnet_exe);
        Runtime {
            inner: Arc::new(Inner {
                cfg,
                recorder: Recorder::new(client.clone(), "kubelet"),
                client,
                sockets,
                ipam: Mutex::new(ipam),
                hostports: tokio::sync::Mutex::new(crate::hostport::HostPorts::default()),
                pods: Mutex::new(HashMap::new()),
                host_resolv,
                echoserver,
                sandbox_builds: tokio::sync::Semaphore::new(SANDBOX_BUILDS),
                shutting_down: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Brings a pod bound to this node in line with its object: starts it,
    /// passes on spec changes, or begins its graceful stop.
    pub fn sync(&self, pod: Arc<Pod>) {
        let uid = spec::uid(&pod).to_string();
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let existing = lock(&self.inner.pods).get(&uid).cloned();
        match existing {
            Some(run) => {
                let grace = pod.metadata.deletion_grace_period_seconds;
                run.spec.send_replace(pod);
                if deleting {
                    let grace = grace.unwrap_or(30).max(0) as u64;
                    run.stop.send_if_modified(|s| match s {
                        Some(g) if *g <= grace => false,
                        _ => {
                            *s = Some(grace);
                            true
                        }
                    });
                }
            }
            None => {
                let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
                if deleting {
                    // Never started here (or started by an agent before a
                    // restart, whose processes are gone): finish the delete.
                    let inner = self.inner.clone();
                    tokio::spawn(async move { finish_delete(&inner, &pod).await });
                    return;
                }
                if phase == "Succeeded" || phase == "Failed" {
                    return;
                }
                self.start(pod);
            }
        }
    }

    /// A pod whose object is gone: stop it at once.
    pub fn forget(&self, uid: &str) {
        if let Some(run) = lock(&self.inner.pods).get(uid).cloned() {
            run.stop.send_replace(Some(0));
        }
    }

    /// Uids of the pods this runtime runs.
    pub fn running(&self) -> Vec<String> {
        lock(&self.inner.pods).keys().cloned().collect()
    }

    pub fn pod_count(&self) -> usize {
        lock(&self.inner.pods).len()
    }

    fn start(&self, pod: Arc<Pod>) {
        let s = spec::spec(&pod);
        let containers =
            s.containers.iter().map(|c| ContainerState::new(&c.name, c.image.as_deref().unwrap_or(""))).collect();
        let io = s.containers.iter().map(|_| container::ContainerIo::default()).collect();
        let state = PodState {
            sandbox_ready: false,
            sandbox_error: None,
            pod_ip: None,
            host_ip: self.inner.cfg.node_ip,
            start_time: jiff::Timestamp::now(),
            containers,
            restart_policy: s.restart_policy.clone().unwrap_or_else(|| "Always".into()),
        };
        let run = Arc::new(PodRun {
            uid: spec::uid(&pod).to_string(),
            namespace: spec::namespace(&pod).to_string(),
            name: spec::name(&pod).to_string(),
            spec: watch::Sender::new(pod),
            state: Mutex::new(state),
            io: Mutex::new(io),
            changed: Notify::new(),
            stop: watch::Sender::new(None),
            netns: Mutex::new(String::new()),
        });
        lock(&self.inner.pods).insert(run.uid.clone(), run.clone());
        let inner = self.inner.clone();
        let starting = events::hold();
        tokio::spawn(async move {
            let writer = tokio::spawn(status_writer(inner.clone(), run.clone(), starting));
            run_pod(&inner, &run).await;
            writer.abort();
            lock(&inner.pods).remove(&run.uid);
        });
    }

    /// Stops every pod now (SIGKILL after no grace), for shutdown.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutting_down.store(true, std::sync::atomic::Ordering::Relaxed);
        let runs: Vec<Arc<PodRun>> = lock(&self.inner.pods).values().cloned().collect();
        for r in &runs {
            r.stop.send_replace(Some(grace.as_secs()));
        }
        let deadline = tokio::time::Instant::now() + grace + Duration::from_secs(5);
        while self.pod_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn find(&self, namespace: &str, pod: &str) -> Result<Arc<PodRun>, AccessError> {
        lock(&self.inner.pods).values().find(|r| r.namespace == namespace && r.name == pod).cloned().ok_or_else(|| {
            AccessError::not_found(format!("pod {pod:?} in namespace {namespace:?} is not running on this node"))
        })
    }
}

fn pick_container(run: &PodRun, container: Option<&str>) -> Result<usize, AccessError> {
    let state = lock(&run.state);
    match container {
        None => (!state.containers.is_empty())
            .then_some(0)
            .ok_or_else(|| AccessError::bad_request(format!("pod {} has no containers", run.name))),
        Some(c) => state
            .containers
            .iter()
            .position(|s| s.name == c)
            .ok_or_else(|| AccessError::bad_request(format!("container {c} is not valid for pod {}", run.name))),
    }
}

impl PodAccess for Runtime {
    fn container(&self, namespace: &str, pod: &str, container: Option<&str>) -> Result<ContainerRef, AccessError> {
        let run = self.find(namespace, pod)?;
        let i = pick_container(&run, container)?;
        let state = lock(&run.state);
        let c = &state.containers[i];
        let pid = match (&c.phase, c.pid) {
            (state::ContainerPhase::Running { .. }, Some(pid)) => pid,
            _ => return Err(AccessError::bad_request(format!("container not found ({:?})", c.name))),
        };
        let io = lock(&run.io);
        Ok(ContainerRef {
            container: c.name.clone(),
            pid,
            env: io[i].env.clone(),
            working_dir: io[i].working_dir.clone(),
            stdin: io[i].stdin.clone(),
        })
    }

    fn log(&self, namespace: &str, pod: &str, container: Option<&str>, previous: bool) -> Result<LogRef, AccessError> {
        let run = self.find(namespace, pod)?;
        let i = pick_container(&run, container)?;
        let name = lock(&run.state).containers[i].name.clone();
        let io = lock(&run.io);
        let attempts = &io[i].attempts;
        let pick = if previous { attempts.len().checked_sub(2) } else { attempts.len().checked_sub(1) };
        match pick.map(|a| &attempts[a]) {
            Some(a) => Ok(LogRef {
                container: name,
                path: a.path.clone(),
                finished: a.finished.subscribe(),
                live: Some(a.live.clone()),
            }),
            None if previous => Err(AccessError::bad_request(format!(
                "previous terminated container {name:?} in pod {pod:?} not found"
            ))),
            None => {
                let reason = match &lock(&run.state).containers[i].phase {
                    state::ContainerPhase::Waiting { reason, .. } => reason.clone(),
                    _ => "ContainerCreating".into(),
                };
                Err(AccessError::bad_request(format!(
                    "container {name:?} in pod {pod:?} is waiting to start: {reason}"
                )))
            }
        }
    }
}

/// Whether a new pod's status is worth a first report: its sandbox failed,
/// or no container is still being created.
fn settled(s: &PodState) -> bool {
    s.sandbox_error.is_some()
        || s.containers.iter().all(
            |c| !matches!(&c.phase, state::ContainerPhase::Waiting { reason, .. } if reason == "ContainerCreating"),
        )
}

/// Sends the pod's status whenever it changes, one write at a time; the
/// first once the pod settled or [`FIRST_REPORT_WITHIN`] passed. Until
/// that first write, `starting` holds the kubelet's Events back.
async fn status_writer(inner: Arc<Inner>, run: Arc<PodRun>, starting: events::Hold) {
    let mut starting = Some(starting);
    let api: Api<Pod> = Api::namespaced(inner.client.clone(), &run.namespace);
    let mut last = serde_json::Value::Null;
    let first_by = tokio::time::Instant::now() + FIRST_REPORT_WITHIN;
    loop {
        run.changed.notified().await;
        if last.is_null() && !settled(&lock(&run.state)) {
            tokio::select! {
                // Look again at the next change.
                _ = run.changed.notified() => { run.touch(); continue; }
                _ = tokio::time::sleep_until(first_by) => {}
            }
        }
        // Let a burst of changes (a container starting and its probe
        // passing) go out as one write.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let pod = run.pod();
        let status = {
            let s = lock(&run.state);
            state::pod_status(&pod, &s, jiff::Timestamp::now())
        };
        if status == last {
            continue;
        }
        let patch = json!({ "metadata": { "uid": run.uid }, "status": status });
        match api.patch_status(&run.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {
                last = status;
                drop(starting.take());
            }
            Err(e) if e.is_not_found() => return,
            Err(e) => {
                tracing::warn!(pod = %run.name, error = %e, "writing pod status failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                run.touch();
            }
        }
    }
}

/// Deletes the pod object once its containers are gone (the kubelet's
/// final `gracePeriodSeconds=0` delete), if it is being deleted.
async fn finish_delete(inner: &Inner, pod: &Pod) {
    let api: Api<Pod> = Api::namespaced(inner.client.clone(), spec::namespace(pod));
    let params = DeleteParams::default()
        .grace_period(0)
        .preconditions(Preconditions { uid: Some(spec::uid(pod).to_string()), resource_version: None });
    if let Err(e) = api.delete(spec::name(pod), &params).await {
        if !e.is_not_found() && !e.is_conflict() {
            tracing::warn!(pod = spec::name(pod), error = %e, "final delete of pod failed");
        }
    }
}

fn pod_netns_name(prefix: &str, pod: &Pod) -> String {
    let ns = spec::namespace(pod);
    let name = spec::name(pod);
    let uid: String = spec::uid(pod).chars().filter(char::is_ascii_hexdigit).take(8).collect();
    format!("{prefix}-{}-{}-{uid}", &ns[..ns.len().min(32)], &name[..name.len().min(48)])
}

fn veth_name(pod: &Pod) -> String {
    let uid: String = spec::uid(pod).chars().filter(char::is_ascii_hexdigit).take(11).collect();
    format!("veth{uid}")
}

/// Sets up the sandbox; returns the pod's address and namespace.
async fn sandbox(
    inner: &Inner,
    run: &PodRun,
    pod: &Pod,
) -> Result<(Ipv4Addr, String, Vec<(PathBuf, PathBuf)>), String> {
    let s = spec::spec(pod);
    let host_network = s.host_network.unwrap_or(false);
    let facts = &inner.cfg.facts;
    let (ip, netns) = if host_network {
        (inner.cfg.node_ip, inner.cfg.node_netns.clone())
    } else {
        let netns = pod_netns_name(&inner.cfg.netns_prefix, pod);
        let wanted = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).and_then(|ip| ip.parse::<Ipv4Addr>().ok());
        let (ip, gateway, len) = {
            let mut ipam = lock(&inner.ipam);
            let ip = match wanted {
                Some(w) if ipam.reserve(w) => w,
                _ => ipam.allocate().ok_or_else(|| format!("no free address in pod CIDR {}", ipam.cidr()))?,
            };
            (ip, ipam.gateway(), ipam.cidr().prefix_len)
        };
        let pn = net::PodNet { netns: netns.clone(), host_veth: veth_name(pod), ip, prefix_len: len, gateway };
        // Never closed, so acquiring cannot fail.
        let _turn = inner.sandbox_builds.acquire().await;
        if let Err(e) = net::create_pod(&inner.cfg.node_netns, &pn).await {
            lock(&inner.ipam).release(ip);
            return Err(format!("setting up the pod network: {e}"));
        }
        (ip, netns)
    };
    *lock(&run.netns) = netns.clone();
    let files = [
        ("resolv.conf", spec::resolv_conf(pod, facts, &inner.host_resolv)),
        ("hosts", spec::hosts_file(pod, ip, facts)),
        ("hostname", format!("{}\n", spec::hostname(pod))),
    ];
    // A pod of its own namespace has its files where `ip netns exec` finds
    // them; one on the node's network keeps them in the agent's directory.
    let etc_dir = host_network.then(|| inner.cfg.state_dir.join("pods").join(&run.uid).join("etc"));
    let netns_name = netns.clone();
    // One trip to the blocking pool for the directory and all three files.
    let binds = tokio::task::spawn_blocking(move || -> Result<Vec<(PathBuf, PathBuf)>, String> {
        let dir = match etc_dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
                for (file, content) in &files {
                    let path = dir.join(file);
                    std::fs::write(&path, content).map_err(|e| format!("writing {}: {e}", path.display()))?;
                }
                dir
            }
            None => {
                let files: Vec<(&str, &str)> = files.iter().map(|(f, c)| (*f, c.as_str())).collect();
                net::write_etc_files(&netns_name, &files).map_err(|e| e.to_string())?
            }
        };
        Ok(files
            .iter()
            .map(|(file, _)| (dir.join(file), PathBuf::from("/etc").join(file)))
            .filter(|(_, target)| target.exists())
            .collect())
    })
    .await
    .map_err(|e| format!("writing the pod's /etc files: {e}"))??;
    Ok((ip, netns, binds))
}

/// Maps (or with `None`, unmaps) a pod's host ports on the node.
async fn map_host_ports(inner: &Inner, run: &PodRun, pod: &Pod, ip: Option<Ipv4Addr>) {
    let maps = ip.map(|ip| crate::hostport::mappings(pod, ip)).unwrap_or_default();
    let mut hp = inner.hostports.lock().await;
    if hp.set(&run.uid, maps) {
        let cidr = lock(&inner.ipam).cidr().to_string();
        if let Err(e) = hp.apply(&inner.cfg.node_netns, &cidr).await {
            tracing::warn!(pod = %run.name, error = %e, "programming host ports failed");
            run.event(inner, None, true, "FailedHostPort", e);
        }
    }
}

async fn teardown(inner: &Inner, run: &PodRun, pod: &Pod) {
    map_host_ports(inner, run, pod, None).await;
    let netns = lock(&run.netns).clone();
    let host_network = spec::spec(pod).host_network.unwrap_or(false);
    if !host_network && !netns.is_empty() {
        if let Err(e) = net::delete_netns(&netns).await {
            tracing::warn!(pod = %run.name, error = %e, "removing the pod's network namespace failed");
        }
    }
    if let Some(ip) = lock(&run.state).pod_ip {
        if !host_network {
            lock(&inner.ipam).release(ip);
        }
    }
    let _ = tokio::fs::remove_dir_all(inner.cfg.state_dir.join("pods").join(&run.uid)).await;
    // A pod that goes takes its logs along, as the kubelet removes a
    // deleted pod's log directory; when the agent stops, they stay.
    if !inner.shutting_down.load(std::sync::atomic::Ordering::Relaxed) {
        let logs: Vec<PathBuf> = lock(&run.io).iter().flat_map(|c| c.attempts.iter().map(|a| a.path.clone())).collect();
        for path in logs {
            let _ = tokio::fs::remove_file(path).await;
        }
    }
}

async fn run_pod(inner: &Arc<Inner>, run: &Arc<PodRun>) {
    let mut stop = run.stop.subscribe();
    run.touch();
    // The sandbox, retried with back-off until it works or the pod goes.
    let mut backoff = Duration::from_millis(500);
    let placement = loop {
        let pod = run.pod();
        match sandbox(inner, run, &pod).await {
            Ok((ip, netns, binds)) => {
                {
                    let mut s = lock(&run.state);
                    s.sandbox_ready = true;
                    s.sandbox_error = None;
                    s.pod_ip = Some(ip);
                }
                map_host_ports(inner, run, &pod, Some(ip)).await;
                run.touch();
                break Some(crate::sys::Placement {
                    netns: net::netns_path(&netns),
                    binds,
                    hostname: spec::hostname(&pod),
                });
            }
            Err(e) => {
                tracing::warn!(pod = %run.name, error = %e, "pod sandbox failed");
                run.event(inner, None, true, "FailedCreatePodSandBox", format!("Failed to create pod sandbox: {e}"));
                lock(&run.state).sandbox_error = Some(e);
                run.touch();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(Option::is_some) => break None,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    };
    if let Some(placement) = placement {
        let count = lock(&run.state).containers.len();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..count {
            set.spawn(container::supervise(inner.clone(), run.clone(), i, placement.clone()));
        }
        // Ephemeral containers (`kubectl debug`) join the running pod as
        // its spec gains them.
        let mut specs = run.spec.subscribe();
        specs.mark_changed();
        loop {
            tokio::select! {
                done = set.join_next() => if done.is_none() { break },
                Ok(()) = specs.changed() => {
                    for i in add_ephemeral_containers(run) {
                        set.spawn(container::supervise(inner.clone(), run.clone(), i, placement.clone()));
                    }
                }
            }
        }
    }
    // Every container has stopped for good; wait for the pod to be deleted
    // (a completed pod keeps its object and status).
    let _ = stop.wait_for(Option::is_some).await;
    let pod = run.pod();
    teardown(inner, run, &pod).await;
    // Make sure the final container states are written before the delete.
    let final_status = {
        let s = lock(&run.state);
        state::pod_status(&pod, &s, jiff::Timestamp::now())
    };
    let api: Api<Pod> = Api::namespaced(inner.client.clone(), &run.namespace);
    let _ = api
        .patch_status(
            &run.name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "metadata": { "uid": run.uid }, "status": final_status })),
        )
        .await;
    if pod.metadata.deletion_timestamp.is_some() {
        finish_delete(inner, &pod).await;
    }
}

/// Takes on the ephemeral containers the pod's spec has and the runtime
/// does not, returning their indexes. One that the pod's status already
/// shows as terminated (run before this agent started) is not run again.
fn add_ephemeral_containers(run: &PodRun) -> Vec<usize> {
    let pod = run.pod();
    let Some(list) = pod.spec.as_ref().and_then(|s| s.ephemeral_containers.as_ref()) else { return Vec::new() };
    let ran_before = |name: &str| {
        pod.status.as_ref().and_then(|s| s.ephemeral_container_statuses.as_ref()).is_some_and(|l| {
            l.iter().any(|c| c.name == name && c.state.as_ref().is_some_and(|s| s.terminated.is_some()))
        })
    };
    let mut added = Vec::new();
    let mut state = lock(&run.state);
    let mut io = lock(&run.io);
    for e in list {
        if state.containers.iter().any(|c| c.name == e.name) || ran_before(&e.name) {
            continue;
        }
        added.push(state.containers.len());
        state.containers.push(ContainerState::ephemeral(&e.name, e.image.as_deref().unwrap_or("")));
        io.push(container::ContainerIo::default());
    }
    drop((state, io));
    if !added.is_empty() {
        run.touch();
    }
    added
}

/// The pod's address as the probes reach it.
pub(crate) fn pod_ip(run: &PodRun) -> IpAddr {
    IpAddr::V4(lock(&run.state).pod_ip.unwrap_or(Ipv4Addr::UNSPECIFIED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_state(phases: &[state::ContainerPhase]) -> PodState {
        PodState {
            sandbox_ready: true,
            sandbox_error: None,
            pod_ip: None,
            host_ip: Ipv4Addr::new(172, 18, 0, 2),
            start_time: jiff::Timestamp::now(),
            containers: phases
                .iter()
                .map(|p| ContainerState { phase: p.clone(), ..ContainerState::new("c", "svcnet/echoserver") })
                .collect(),
            restart_policy: "Always".into(),
        }
    }

    #[test]
    fn a_pod_settles_once_no_container_is_being_created_or_its_sandbox_failed() {
        let creating = state::ContainerPhase::Waiting { reason: "ContainerCreating".into(), message: None };
        let running = state::ContainerPhase::Running { started_at: jiff::Timestamp::now() };
        let pull_error = state::ContainerPhase::Waiting { reason: "ErrImagePull".into(), message: None };
        assert!(!settled(&pod_state(std::slice::from_ref(&creating))));
        assert!(!settled(&pod_state(&[running.clone(), creating.clone()])), "one container still being created");
        assert!(settled(&pod_state(&[running.clone(), running])));
        assert!(settled(&pod_state(&[pull_error])), "waiting for another reason is worth reporting");
        let mut failed = pod_state(&[creating]);
        failed.sandbox_error = Some("no free address".into());
        assert!(settled(&failed));
    }
}
