//! One container's life: start its process in the pod, pump its output
//! into log files, run its probes, restart it by the restart policy with
//! the kubelet's crash back-off (immediately the first time, then 10 s
//! doubling to 5 min, reset after 10 min of running), and stop it with
//! SIGTERM, the grace period, then SIGKILL.

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use nix::sys::signal::Signal;
use tokio::io::AsyncWrite;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;
use tokio::sync::{broadcast, mpsc, watch};

use super::probe::{self, Outcome};
use super::spec::{self, PodFacts};
use super::state::{ContainerPhase, Terminated};
use super::{Inner, PodRun, logs};
use crate::streaming::PtyMaster;
use crate::sys::{self, Placement};

const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const BACKOFF_RESET: Duration = Duration::from_secs(600);

/// A log file of one attempt.
pub struct Attempt {
    pub path: PathBuf,
    pub finished: watch::Sender<bool>,
    /// Its output as read, for attaches.
    pub live: broadcast::Sender<bytes::Bytes>,
}

/// How many reads of output an attach may fall behind by before it
/// misses some (the log file still has them).
const LIVE_BACKLOG: usize = 256;

/// What exec and logs need about a container.
#[derive(Default)]
pub struct ContainerIo {
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    pub attempts: Vec<Attempt>,
    /// The running attempt's stdin, for attach.
    pub stdin: Option<crate::access::StdinRef>,
}

/// The spec of the runtime's container `i`: one of the pod's containers,
/// or (past them) an ephemeral container, found by name.
fn container_spec(run: &PodRun, i: usize) -> Container {
    let pod = run.pod();
    let Some(spec) = pod.spec.as_ref() else { return Container::default() };
    let (name, ephemeral) = {
        let s = run.state.lock().unwrap_or_else(|e| e.into_inner());
        (s.containers[i].name.clone(), s.containers[i].ephemeral)
    };
    if !ephemeral {
        return spec.containers.get(i).cloned().unwrap_or_default();
    }
    spec.ephemeral_containers
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| serde_json::to_value(e).and_then(serde_json::from_value).ok())
        .unwrap_or_default()
}

fn stopping(run: &PodRun) -> Option<u64> {
    *run.stop.borrow()
}

/// Why an attempt ended early.
enum Kill {
    /// The liveness or startup probe failed.
    Unhealthy,
    /// The pod is stopping.
    Stop(u64),
}

/// The log file of a container's attempt: `NS_POD_UID_CONTAINER_N.log`,
/// all in one directory. The kubelet's layout (a directory per pod and per
/// container) would cost every pod two directories: on ext4, allocating a
/// directory's inode is the slowest of a pod's file system steps, and all
/// the slower after many pods came and went.
pub(crate) fn log_file_name(run: &PodRun, container: &str, attempt: usize) -> String {
    format!("{}_{}_{}_{container}_{attempt}.log", run.namespace, run.name, run.uid)
}

pub async fn supervise(inner: Arc<Inner>, run: Arc<PodRun>, i: usize, placement: Placement) {
    let mut stop = run.stop.subscribe();
    let mut backoff = Duration::ZERO;
    loop {
        if stopping(&run).is_some() {
            break;
        }
        let c = container_spec(&run, i);
        let pod = run.pod();
        let launch = match spec::launch(&c, i, &inner.echoserver) {
            Ok(l) => l,
            Err(w) => {
                let image = c.image.clone().unwrap_or_default();
                run.event(
                    &inner,
                    Some(&c.name),
                    true,
                    "Failed",
                    format!("Failed to pull image {image:?}: {}", w.message),
                );
                run.event(&inner, Some(&c.name), true, "Failed", format!("Error: {}", w.reason));
                run.with_container(i, |s| {
                    s.phase = ContainerPhase::Waiting { reason: w.reason, message: Some(w.message) }
                });
                let _ = stop.wait_for(Option::is_some).await;
                break;
            }
        };
        let ip = run.state.lock().unwrap_or_else(|e| e.into_inner()).pod_ip.unwrap_or(inner.cfg.node_ip);
        let facts = PodFacts { pod: &pod, pod_ip: ip, host_ip: inner.cfg.node_ip, node_name: &inner.cfg.node_name };
        let mut env = spec::environment(&c, &facts, &placement.hostname);
        env.extend(launch.env.clone());
        let tty = c.tty.unwrap_or(false);
        if tty && !env.iter().any(|(k, _)| k == "TERM") {
            // What container runtimes give a container with a terminal.
            env.push(("TERM".into(), "xterm".into()));
        }
        let argv = spec::expand_argv(&launch.argv, &env);
        let working_dir = c.working_dir.clone().filter(|w| !w.is_empty()).map(PathBuf::from);

        let attempt_no = run.io.lock().unwrap_or_else(|e| e.into_inner())[i].attempts.len();
        let log_dir = inner.cfg.state_dir.join("logs");
        let log_path = log_dir.join(log_file_name(&run, &c.name, attempt_no));
        // Off the async workers: creating files can take the kernel a
        // while (ext4 looks long for a free inode after much churn).
        let file = {
            let path = log_path.clone();
            tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&log_dir).and_then(|_| std::fs::File::create(&path))
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
        };
        let (finished_tx, _) = watch::channel(false);
        let (live, _) = broadcast::channel(LIVE_BACKLOG);
        {
            let mut io = run.io.lock().unwrap_or_else(|e| e.into_inner());
            io[i].env = env.clone();
            io[i].working_dir = working_dir.clone();
            io[i].attempts.push(Attempt { path: log_path.clone(), finished: finished_tx.clone(), live: live.clone() });
        }
        let uid8: String = run.uid.chars().filter(char::is_ascii_hexdigit).take(12).collect();
        let container_id = format!("svcnet://{uid8}-{}-{attempt_no}", c.name);
        let started_at = jiff::Timestamp::now();

        let spawned = match file {
            Err(e) => Err(format!("creating the log file {}: {e}", log_path.display())),
            Ok(file) => spawn(&argv, &env, working_dir.as_deref(), c.stdin.unwrap_or(false), tty, &placement)
                .map(|child| (child, file)),
        };
        let (mut child, file) = match spawned {
            Ok(ok) => ok,
            Err(message) => {
                run.event(&inner, Some(&c.name), true, "Failed", format!("Error: {message}"));
                finished_tx.send_replace(true);
                let t = Terminated {
                    exit_code: 128,
                    signal: None,
                    reason: "StartError".into(),
                    message: Some(message),
                    started_at: None,
                    finished_at: jiff::Timestamp::now(),
                    container_id: container_id.clone(),
                };
                if !after_exit(&inner, &run, i, t, &mut backoff, Duration::ZERO, &mut stop).await {
                    break;
                }
                continue;
            }
        };
        let pid = child.pid;
        let image = c.image.clone().unwrap_or_default();
        if attempt_no == 0 {
            run.event(
                &inner,
                Some(&c.name),
                false,
                "Pulled",
                format!("Container image {image:?} already present on machine"),
            );
        }
        run.event(&inner, Some(&c.name), false, "Created", format!("Created container: {}", c.name));
        run.event(&inner, Some(&c.name), false, "Started", format!("Started container {}", c.name));
        run.with_container(i, |s| {
            s.phase = ContainerPhase::Running { started_at };
            s.pid = Some(pid);
            s.container_id = container_id.clone();
            s.started = c.startup_probe.is_none();
            s.ready = c.readiness_probe.is_none() && c.startup_probe.is_none();
        });
        let stdin: Option<Box<dyn AsyncWrite + Send + Unpin>> = match (&child.terminal, child.stdin.take()) {
            (Some(t), _) if c.stdin.unwrap_or(false) => Some(Box::new(t.clone())),
            (_, Some(pipe)) => Some(Box::new(pipe)),
            _ => None,
        };
        if let Some(stdin) = stdin {
            let mut io = run.io.lock().unwrap_or_else(|e| e.into_inner());
            io[i].stdin = Some(crate::access::StdinRef {
                pipe: Arc::new(tokio::sync::Mutex::new(Some(stdin))),
                once: c.stdin_once.unwrap_or(false),
                terminal: child.terminal.clone(),
            });
        }
        let file = Arc::new(Mutex::new(file));
        // A terminal's output is the container's stdout, as a runtime logs it.
        let pumps = [
            child.stdout.take().map(|o| tokio::spawn(logs::pump(o, "stdout", file.clone(), live.clone()))),
            child.stderr.take().map(|e| tokio::spawn(logs::pump(e, "stderr", file.clone(), live.clone()))),
            child.terminal.take().map(|t| tokio::spawn(logs::pump(t, "stdout", file.clone(), live.clone()))),
        ];
        let (kill_tx, mut kill_rx) = mpsc::channel::<()>(1);
        let probes = tokio::spawn(probe_loop(inner.clone(), run.clone(), i, c.clone(), pid, env.clone(), kill_tx));

        let kill = tokio::select! {
            status = child.wait() => Err(status),
            Some(()) = kill_rx.recv() => Ok(Kill::Unhealthy),
            grace = stop.wait_for(Option::is_some) => Ok(Kill::Stop(grace.ok().and_then(|g| *g).unwrap_or(0))),
        };
        let status = match kill {
            Err(status) => status,
            Ok(Kill::Unhealthy) => {
                run.event(
                    &inner,
                    Some(&c.name),
                    false,
                    "Killing",
                    format!("Container {} failed liveness probe, will be restarted", c.name),
                );
                terminate(&mut child, pid, grace_of(&run)).await
            }
            Ok(Kill::Stop(grace)) => {
                run.event(&inner, Some(&c.name), false, "Killing", format!("Stopping container {}", c.name));
                terminate(&mut child, pid, Duration::from_secs(grace)).await
            }
        };
        probes.abort();
        run.io.lock().unwrap_or_else(|e| e.into_inner())[i].stdin = None;
        for p in pumps.into_iter().flatten() {
            let _ = p.await;
        }
        finished_tx.send_replace(true);
        let (exit_code, signal) = match &status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(code), _) => (code, None),
                (None, Some(sig)) => (128 + sig, Some(sig)),
                _ => (255, None),
            },
            Err(_) => (255, None),
        };
        let t = Terminated {
            exit_code,
            signal,
            reason: if exit_code == 0 { "Completed".into() } else { "Error".into() },
            message: None,
            started_at: Some(started_at),
            finished_at: jiff::Timestamp::now(),
            container_id,
        };
        let ran = Duration::try_from(jiff::Timestamp::now().duration_since(started_at)).unwrap_or_default();
        if !after_exit(&inner, &run, i, t, &mut backoff, ran, &mut stop).await {
            break;
        }
    }
    run.with_container(i, |s| {
        s.done = true;
        s.ready = false;
        s.pid = None;
    });
}

/// Records an exit and waits out the back-off. False when the container
/// is not to run again.
async fn after_exit(
    inner: &Inner,
    run: &PodRun,
    i: usize,
    t: Terminated,
    backoff: &mut Duration,
    ran: Duration,
    stop: &mut watch::Receiver<Option<u64>>,
) -> bool {
    let (policy, ephemeral) = {
        let s = run.state.lock().unwrap_or_else(|e| e.into_inner());
        (s.restart_policy.clone(), s.containers[i].ephemeral)
    };
    // Ephemeral containers are never restarted.
    let restart = stopping(run).is_none()
        && !ephemeral
        && match policy.as_str() {
            "Never" => false,
            "OnFailure" => t.exit_code != 0,
            _ => true,
        };
    if !restart {
        run.with_container(i, |s| {
            s.phase = ContainerPhase::Terminated(t);
            s.pid = None;
            s.ready = false;
            s.done = true;
        });
        return false;
    }
    if ran >= BACKOFF_RESET {
        *backoff = Duration::ZERO;
    }
    let wait = *backoff;
    *backoff = if wait.is_zero() { BACKOFF_START } else { (wait * 2).min(BACKOFF_MAX) };
    let pod_desc = format!("{}_{}({})", run.name, run.namespace, run.uid);
    run.with_container(i, |s| {
        s.last = Some(t.clone());
        s.restart_count += 1;
        s.pid = None;
        s.ready = false;
        s.started = false;
        s.phase = if wait.is_zero() {
            ContainerPhase::Waiting { reason: "ContainerCreating".into(), message: None }
        } else {
            ContainerPhase::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(format!(
                    "back-off {}s restarting failed container={} pod={pod_desc}",
                    wait.as_secs(),
                    s.name
                )),
            }
        };
    });
    if !wait.is_zero() {
        let name = run.state.lock().unwrap_or_else(|e| e.into_inner()).containers[i].name.clone();
        run.event(
            inner,
            Some(&name),
            true,
            "BackOff",
            format!("Back-off restarting failed container {name} in pod {pod_desc}"),
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(Option::is_some) => return false,
        }
    }
    true
}

fn grace_of(run: &PodRun) -> Duration {
    let pod = run.pod();
    let secs = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30).max(0);
    Duration::from_secs(secs as u64)
}

/// A running container process: its pidfd (readable once it ends) and
/// its output pipes.
struct Process {
    pid: u32,
    /// Taken only by `drop`.
    pidfd: Option<AsyncFd<OwnedFd>>,
    status: Option<ExitStatus>,
    stdout: Option<pipe::Receiver>,
    stderr: Option<pipe::Receiver>,
    stdin: Option<pipe::Sender>,
    /// A container with `tty: true`: its terminal, input and output both.
    terminal: Option<PtyMaster>,
}

impl Process {
    /// Waits for the process to end and reaps it. Cancel-safe.
    async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.status {
                return Ok(status);
            }
            let Some(pidfd) = &self.pidfd else { unreachable!("the pidfd is only taken by drop") };
            let mut ready = pidfd.readable().await?;
            match sys::reap(pidfd.get_ref())? {
                Some(status) => self.status = Some(status),
                None => ready.clear_ready(),
            }
        }
    }

    /// SIGKILL to the process itself (not yet reaped, so its pid is still
    /// its own).
    fn start_kill(&self) {
        if self.status.is_none() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Dropped unreaped (its supervisor aborted): reap it now if it has
        // ended, or once it does, since nothing else in the agent waits
        // for its children.
        if let Some(pidfd) = self.pidfd.take()
            && self.status.is_none()
            && matches!(sys::reap(pidfd.get_ref()), Ok(None))
        {
            reap_detached(pidfd);
        }
    }
}

/// Reaps a still-running process once it ends, from a task of the current
/// runtime, or from a thread of its own when there is none or the task is
/// dropped unfinished (the runtime shutting down).
fn reap_detached(pidfd: AsyncFd<OwnedFd>) {
    struct Orphan(Option<AsyncFd<OwnedFd>>);
    impl Drop for Orphan {
        fn drop(&mut self) {
            if let Some(pidfd) = self.0.take() {
                let pidfd = pidfd.into_inner();
                let _ = std::thread::Builder::new().name("reaper".into()).spawn(move || sys::reap_blocking(&pidfd));
            }
        }
    }
    let mut orphan = Orphan(Some(pidfd));
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    runtime.spawn(async move {
        while let Some(pidfd) = &orphan.0 {
            let Ok(mut ready) = pidfd.readable().await else { return };
            if let Ok(None) = sys::reap(pidfd.get_ref()) {
                ready.clear_ready();
            } else {
                drop(ready);
                orphan.0 = None;
            }
        }
    });
}

fn spawn(
    argv: &[String],
    env: &[(String, String)],
    working_dir: Option<&std::path::Path>,
    stdin: bool,
    tty: bool,
    placement: &Placement,
) -> Result<Process, String> {
    let program = argv.first().ok_or("no command")?;
    // Look the program up in the container's PATH, as the runtime does.
    let path = env.iter().rev().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str()).unwrap_or("/usr/bin:/bin");
    let resolved = if program.contains('/') {
        Some(PathBuf::from(program))
    } else {
        path.split(':').map(|d| PathBuf::from(d).join(program)).find(|p| p.is_file())
    };
    let Some(resolved) = resolved.filter(|p| p.exists()) else {
        return Err(if program.contains('/') {
            format!("exec: {program:?}: stat {program}: no such file or directory")
        } else {
            format!("exec: {program:?}: executable file not found in $PATH")
        });
    };
    // A later variable of the same name wins, and the environment is in
    // name order, as `Command::envs` makes it.
    let vars: Vec<(String, String)> =
        env.iter().cloned().collect::<std::collections::BTreeMap<_, _>>().into_iter().collect();
    let exec = sys::Exec {
        program: &resolved,
        argv,
        env: &vars,
        dir: working_dir.unwrap_or(std::path::Path::new("/")),
        stdin,
        tty,
    };
    let child = sys::spawn_in_pod(&exec, placement).map_err(|e| format!("starting {program:?}: {e}"))?;
    let receiver = |fd: Option<OwnedFd>| fd.and_then(|fd| pipe::Receiver::from_owned_fd(fd).ok());
    let pidfd = sys::watch_exit(child.pidfd).map_err(|e| format!("watching {program:?}: {e}"))?;
    let terminal = match child.terminal {
        Some(fd) => Some(PtyMaster::new(fd).map_err(|e| format!("the terminal of {program:?}: {e}"))?),
        None => None,
    };
    Ok(Process {
        pid: child.pid,
        pidfd: Some(pidfd),
        status: None,
        stdout: receiver(child.stdout),
        stderr: receiver(child.stderr),
        stdin: child.stdin.and_then(|fd| pipe::Sender::from_owned_fd(fd).ok()),
        terminal,
    })
}

/// SIGTERM to the container's process group, SIGKILL after `grace`.
async fn terminate(child: &mut Process, pid: u32, grace: Duration) -> std::io::Result<ExitStatus> {
    if pid != 0 {
        sys::kill_group(pid, Signal::SIGTERM);
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            if pid != 0 {
                sys::kill_group(pid, Signal::SIGKILL);
            }
            child.start_kill();
            child.wait().await
        }
    }
}

/// Runs the startup probe until it passes, then liveness and readiness
/// side by side. A failing startup or liveness probe asks the supervisor
/// (through `kill`) to restart the container.
async fn probe_loop(
    inner: Arc<Inner>,
    run: Arc<PodRun>,
    i: usize,
    c: Container,
    pid: u32,
    env: Vec<(String, String)>,
    kill: mpsc::Sender<()>,
) {
    let target = |run: &PodRun| super::pod_ip(run);
    if let Some(p) = &c.startup_probe {
        let ip = target(&run);
        let t = probe::Target { sockets: &inner.sockets, pod_ip: ip, container: &c, pid, env: &env };
        let report =
            |m: &str| run.event(&inner, Some(&c.name), true, "Unhealthy", format!("Startup probe failed: {m}"));
        if !until_verdict(p, &t, true, report).await {
            tracing::info!(pod = %run.name, container = %c.name, "startup probe failed; restarting");
            let _ = kill.send(()).await;
            return;
        }
        run.with_container(i, |s| {
            s.started = true;
            s.ready = c.readiness_probe.is_none();
        });
    }
    let liveness = async {
        let Some(p) = &c.liveness_probe else { return std::future::pending::<()>().await };
        let ip = target(&run);
        let t = probe::Target { sockets: &inner.sockets, pod_ip: ip, container: &c, pid, env: &env };
        let report =
            |m: &str| run.event(&inner, Some(&c.name), true, "Unhealthy", format!("Liveness probe failed: {m}"));
        if !until_verdict(p, &t, false, report).await {
            tracing::info!(pod = %run.name, container = %c.name, "liveness probe failed; restarting");
            let _ = kill.send(()).await;
        }
        std::future::pending::<()>().await
    };
    let readiness = async {
        let Some(p) = &c.readiness_probe else { return std::future::pending::<()>().await };
        let ip = target(&run);
        let t = probe::Target { sockets: &inner.sockets, pod_ip: ip, container: &c, pid, env: &env };
        readiness_loop(&inner, &run, i, p, &t).await
    };
    tokio::join!(liveness, readiness);
}

/// Probes on the probe's schedule. With `until_success`, returns true on
/// the first success (startup); otherwise returns false once
/// failureThreshold consecutive failures are seen (liveness).
async fn until_verdict(p: &Probe, t: &probe::Target<'_>, until_success: bool, on_failure: impl Fn(&str)) -> bool {
    let timing = probe::timing(p);
    tokio::time::sleep(timing.initial_delay).await;
    let mut failures = 0;
    loop {
        match probe::run(p, t).await {
            Outcome::Success => {
                failures = 0;
                if until_success {
                    return true;
                }
            }
            Outcome::Failure(msg) => {
                failures += 1;
                tracing::debug!(failures, %msg, "probe failed");
                on_failure(&msg);
                if failures >= timing.failure_threshold {
                    return false;
                }
            }
        }
        tokio::time::sleep(timing.period).await;
    }
}

async fn readiness_loop(inner: &Inner, run: &PodRun, i: usize, p: &Probe, t: &probe::Target<'_>) {
    let timing = probe::timing(p);
    tokio::time::sleep(timing.initial_delay).await;
    let (mut successes, mut failures) = (0u32, 0u32);
    loop {
        let started = run.state.lock().unwrap_or_else(|e| e.into_inner()).containers[i].started;
        if started {
            match probe::run(p, t).await {
                Outcome::Success => {
                    successes += 1;
                    failures = 0;
                    if successes >= timing.success_threshold {
                        set_ready(run, i, true);
                    }
                }
                Outcome::Failure(msg) => {
                    failures += 1;
                    successes = 0;
                    tracing::debug!(pod = %run.name, %msg, "readiness probe failed");
                    run.event(
                        inner,
                        Some(&t.container.name),
                        true,
                        "Unhealthy",
                        format!("Readiness probe failed: {msg}"),
                    );
                    if failures >= timing.failure_threshold {
                        set_ready(run, i, false);
                    }
                }
            }
        }
        tokio::time::sleep(timing.period).await;
    }
}

fn set_ready(run: &PodRun, i: usize, ready: bool) {
    let changed = {
        let mut s = run.state.lock().unwrap_or_else(|e| e.into_inner());
        let c = &mut s.containers[i];
        let changed = c.ready != ready;
        c.ready = ready;
        changed
    };
    if changed {
        run.touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts `sleep 0.3` as a container is started, or `None` (with a
    /// message) when not root.
    fn short_lived() -> Option<Process> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: starting a process in a pod needs root");
            return None;
        }
        let placement =
            Placement { netns: "/proc/self/ns/net".into(), binds: Vec::new(), hostname: "reap-test".into() };
        let argv = ["sleep".to_string(), "0.3".into()];
        let env = [("PATH".to_string(), "/usr/bin:/bin".to_string())];
        Some(spawn(&argv, &env, None, false, false, &placement).expect("spawns"))
    }

    /// The process's state letter, or `None` once it is gone (reaped).
    fn state(pid: u32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next())
    }

    #[tokio::test]
    async fn a_process_dropped_while_running_is_reaped_by_a_task() {
        let Some(process) = short_lived() else { return };
        let pid = process.pid;
        assert!(matches!(state(pid), Some(s) if s != 'Z'), "still running when dropped");
        drop(process);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while state(pid).is_some() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(state(pid), None, "pid {pid} is left unreaped");
    }

    #[test]
    fn a_process_dropped_outside_a_runtime_is_reaped_by_a_thread() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let Some(process) = ({
            let _entered = runtime.enter();
            short_lived()
        }) else {
            return;
        };
        let pid = process.pid;
        assert!(matches!(state(pid), Some(s) if s != 'Z'), "still running when dropped");
        drop(process);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while state(pid).is_some() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(state(pid), None, "pid {pid} is left unreaped");
    }
}
