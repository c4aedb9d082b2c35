//! What the agent knows about a pod's containers, and the pod status it
//! reports from that (a pure function, so the phase and condition rules are
//! tested without processes).

use std::net::Ipv4Addr;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
    pub container_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerPhase {
    Waiting { reason: String, message: Option<String> },
    Running { started_at: Timestamp },
    Terminated(Terminated),
}

#[derive(Debug, Clone)]
pub struct ContainerState {
    pub name: String,
    pub image: String,
    pub phase: ContainerPhase,
    pub last: Option<Terminated>,
    pub restart_count: u32,
    /// The startup probe passed (or there is none) for the running attempt.
    pub started: bool,
    /// The readiness probe's verdict for the running attempt.
    pub ready: bool,
    pub container_id: String,
    /// Host pid of the running attempt (its process group leader).
    pub pid: Option<u32>,
    /// The container will not run again (restart policy says so).
    pub done: bool,
    /// One of `spec.ephemeralContainers` (`kubectl debug`): never
    /// restarted, no part of the pod's phase or readiness, reported in
    /// `ephemeralContainerStatuses`.
    pub ephemeral: bool,
}

impl ContainerState {
    pub fn new(name: &str, image: &str) -> Self {
        ContainerState {
            name: name.into(),
            image: image.into(),
            phase: ContainerPhase::Waiting { reason: "ContainerCreating".into(), message: None },
            last: None,
            restart_count: 0,
            started: false,
            ready: false,
            container_id: String::new(),
            pid: None,
            done: false,
            ephemeral: false,
        }
    }

    /// The state of a newly added ephemeral container.
    pub fn ephemeral(name: &str, image: &str) -> Self {
        ContainerState { ephemeral: true, ..ContainerState::new(name, image) }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.phase, ContainerPhase::Running { .. })
    }
}

/// The pod as the agent runs it.
#[derive(Debug, Clone)]
pub struct PodState {
    /// The sandbox (namespace, veth, address) is up.
    pub sandbox_ready: bool,
    pub sandbox_error: Option<String>,
    pub pod_ip: Option<Ipv4Addr>,
    pub host_ip: Ipv4Addr,
    pub start_time: Timestamp,
    pub containers: Vec<ContainerState>,
    pub restart_policy: String,
}

fn ts(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn terminated_json(t: &Terminated) -> Value {
    let mut v = json!({
        "exitCode": t.exit_code,
        "reason": t.reason,
        "finishedAt": ts(t.finished_at),
        "containerID": t.container_id,
    });
    if let Some(s) = t.signal {
        v["signal"] = json!(s);
    }
    if let Some(m) = &t.message {
        v["message"] = json!(m);
    }
    if let Some(s) = t.started_at {
        v["startedAt"] = json!(ts(s));
    }
    v
}

fn phase_json(p: &ContainerPhase) -> Value {
    match p {
        ContainerPhase::Waiting { reason, message } => {
            let mut w = json!({ "reason": reason });
            if let Some(m) = message {
                w["message"] = json!(m);
            }
            json!({ "waiting": w })
        }
        ContainerPhase::Running { started_at } => json!({ "running": { "startedAt": ts(*started_at) } }),
        ContainerPhase::Terminated(t) => json!({ "terminated": terminated_json(t) }),
    }
}

/// The pod phase, by the kubelet's rules: Pending until every container
/// has run at least once; Running while any runs or will restart;
/// Succeeded/Failed once all have stopped for good.
pub fn pod_phase(state: &PodState) -> &'static str {
    if !state.sandbox_ready {
        return "Pending";
    }
    let mut pending = false;
    let mut running = false;
    let mut failed = false;
    for c in state.containers.iter().filter(|c| !c.ephemeral) {
        match &c.phase {
            ContainerPhase::Running { .. } => running = true,
            ContainerPhase::Waiting { .. } => {
                if c.last.is_some() {
                    running = true;
                } else {
                    pending = true;
                }
            }
            ContainerPhase::Terminated(t) => {
                if !c.done {
                    running = true;
                } else if t.exit_code != 0 {
                    failed = true;
                }
            }
        }
    }
    if pending {
        "Pending"
    } else if running {
        "Running"
    } else if failed {
        "Failed"
    } else {
        "Succeeded"
    }
}

fn condition(
    kind: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    previous: &[Value],
    now: &str,
) -> Value {
    let status = if ok { "True" } else { "False" };
    let since = previous
        .iter()
        .find(|c| c["type"] == kind && c["status"] == status)
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or(now);
    let mut c = json!({ "type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": since });
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

/// The pod's `status`, from what the agent knows, keeping transition times
/// of conditions whose status did not change (and the scheduler's
/// PodScheduled condition).
pub fn pod_status(pod: &Pod, state: &PodState, now: Timestamp) -> Value {
    let now_s = ts(now);
    let previous: Vec<Value> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| cs.iter().filter_map(|c| serde_json::to_value(c).ok()).collect())
        .unwrap_or_default();
    let phase = pod_phase(state);
    let regular = || state.containers.iter().filter(|c| !c.ephemeral);
    let not_ready: Vec<&str> = regular().filter(|c| !(c.ready && c.is_running())).map(|c| c.name.as_str()).collect();
    let all_ready = not_ready.is_empty() && regular().next().is_some() && phase == "Running";
    let unready_msg =
        (!not_ready.is_empty()).then(|| format!("containers with unready status: [{}]", not_ready.join(" ")));
    let unready_reason = (!not_ready.is_empty()).then_some("ContainersNotReady");
    // A pod that has finished is not ready, whatever its containers did.
    let (ready_reason, ready_msg) = match phase {
        "Succeeded" | "Failed" => (Some("PodCompleted"), None),
        _ => (unready_reason, unready_msg.clone()),
    };
    let mut conditions = vec![
        condition("PodReadyToStartContainers", state.sandbox_ready, None, None, &previous, &now_s),
        condition("Initialized", true, None, None, &previous, &now_s),
        condition(
            "Ready",
            all_ready,
            if all_ready { None } else { ready_reason },
            if all_ready { None } else { ready_msg.clone() },
            &previous,
            &now_s,
        ),
        condition(
            "ContainersReady",
            all_ready,
            if all_ready { None } else { ready_reason },
            if all_ready { None } else { ready_msg },
            &previous,
            &now_s,
        ),
    ];
    if let Some(scheduled) = previous.iter().find(|c| c["type"] == "PodScheduled") {
        conditions.push(scheduled.clone());
    } else {
        conditions.push(condition("PodScheduled", true, None, None, &previous, &now_s));
    }
    let status_of = |c: &ContainerState| {
        let mut s = json!({
            "name": c.name,
            "image": c.image,
            "imageID": "",
            "ready": !c.ephemeral && c.ready && c.is_running(),
            "started": c.started && c.is_running(),
            "restartCount": c.restart_count,
            "state": phase_json(&c.phase),
            "lastState": c.last.as_ref().map(|t| json!({ "terminated": terminated_json(t) })).unwrap_or_else(|| json!({})),
        });
        if !c.container_id.is_empty() {
            s["containerID"] = json!(c.container_id);
        }
        s
    };
    let statuses: Vec<Value> = regular().map(status_of).collect();
    let ephemeral: Vec<Value> = state.containers.iter().filter(|c| c.ephemeral).map(status_of).collect();
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": state.host_ip.to_string(),
        "hostIPs": [{ "ip": state.host_ip.to_string() }],
        "startTime": ts(state.start_time),
        "containerStatuses": statuses,
        "qosClass": qos_class(pod),
    });
    if !ephemeral.is_empty() {
        status["ephemeralContainerStatuses"] = json!(ephemeral);
    }
    match state.pod_ip {
        Some(ip) => {
            status["podIP"] = json!(ip.to_string());
            status["podIPs"] = json!([{ "ip": ip.to_string() }]);
        }
        None => {
            status["podIP"] = Value::Null;
            status["podIPs"] = Value::Null;
        }
    }
    if let Some(e) = &state.sandbox_error {
        status["message"] = json!(e);
        status["reason"] = json!("SandboxCreationFailed");
    } else {
        status["message"] = Value::Null;
        status["reason"] = Value::Null;
    }
    status
}

/// Guaranteed when every container's requests equal its limits for cpu and
/// memory, BestEffort when nothing is requested or limited, else Burstable.
pub fn qos_class(pod: &Pod) -> &'static str {
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or(&[]);
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in containers {
        let r = c.resources.as_ref();
        let requests = r.and_then(|r| r.requests.clone()).unwrap_or_default();
        let limits = r.and_then(|r| r.limits.clone()).unwrap_or_default();
        if !requests.is_empty() || !limits.is_empty() {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let limit = limits.get(res);
            let request = requests.get(res).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
