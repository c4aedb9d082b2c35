//! The Pod printer: READY, the STATUS kubectl users read (`Init:1/2`,
//! `CrashLoopBackOff`, `Completed`, `Terminating`...), RESTARTS with the time
//! of the last restart, and the wide columns.
//!
//! The order of checks is Go's `printPod` and matters: init containers are
//! looked at first and stop at the first one still running, the regular
//! containers are scanned last-to-first so the first container's reason wins,
//! and deletion overrides everything.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::value::{age, arr, int, present, s, since, time};

/// Set by the node lifecycle controller on pods of an unreachable node.
const NODE_UNREACHABLE_REASON: &str = "NodeLost";

fn is_restartable_init_container(init_containers: &[Value], name: &str) -> bool {
    init_containers.iter().any(|c| s(&c["name"]) == name && s(&c["restartPolicy"]) == "Always")
}

fn condition_true(status: &Value, kind: &str) -> bool {
    arr(&status["conditions"]).iter().any(|c| s(&c["type"]) == kind && s(&c["status"]) == "True")
}

/// The first `Initialized` condition decides, as in Go.
fn initialized(status: &Value) -> bool {
    arr(&status["conditions"])
        .iter()
        .find(|c| s(&c["type"]) == "Initialized")
        .is_some_and(|c| s(&c["status"]) == "True")
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// When a container last stopped, from its previous termination.
fn last_finished(container_status: &Value) -> Option<Timestamp> {
    time(&container_status["lastState"]["terminated"]["finishedAt"])
}

/// `Signal:9` / `ExitCode:1` for a termination without a reason.
fn exit_reason(terminated: &Value) -> String {
    let signal = int(&terminated["signal"]);
    if signal != 0 { format!("Signal:{signal}") } else { format!("ExitCode:{}", int(&terminated["exitCode"])) }
}

/// The cells of one pod row, plus the row conditions Go attaches to
/// finished pods (`Completed` rows are what `kubectl get` dims).
pub(super) fn pod(pod: &Value, now: Timestamp) -> (Vec<Value>, Option<Value>) {
    let spec = &pod["spec"];
    let status = &pod["status"];
    let init_containers = arr(&spec["initContainers"]);
    let phase = s(&status["phase"]);

    // Sidecars (restartable init containers) count as containers.
    let total =
        arr(&spec["containers"]).len() + init_containers.iter().filter(|c| s(&c["restartPolicy"]) == "Always").count();
    let mut ready = 0;

    let mut reason = match s(&status["reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if arr(&status["conditions"])
        .iter()
        .any(|c| s(&c["type"]) == "PodScheduled" && s(&c["reason"]) == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let mut restarts = 0;
    let mut last_restart = None;
    let mut sidecar_restarts = 0;
    let mut last_sidecar_restart = None;
    let mut initializing = false;
    for (i, c) in arr(&status["initContainerStatuses"]).iter().enumerate() {
        restarts += int(&c["restartCount"]);
        last_restart = later(last_restart, last_finished(c));
        let sidecar = is_restartable_init_container(init_containers, s(&c["name"]));
        if sidecar {
            sidecar_restarts += int(&c["restartCount"]);
            last_sidecar_restart = later(last_sidecar_restart, last_finished(c));
        }
        let terminated = &c["state"]["terminated"];
        let waiting = &c["state"]["waiting"];
        if present(terminated) && int(&terminated["exitCode"]) == 0 {
            continue;
        }
        if sidecar && c["started"].as_bool() == Some(true) {
            if c["ready"].as_bool() == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = if present(terminated) {
            match s(&terminated["reason"]) {
                "" => format!("Init:{}", exit_reason(terminated)),
                r => format!("Init:{r}"),
            }
        } else if present(waiting) && !s(&waiting["reason"]).is_empty() && s(&waiting["reason"]) != "PodInitializing" {
            format!("Init:{}", s(&waiting["reason"]))
        } else {
            format!("Init:{i}/{}", init_containers.len())
        };
        initializing = true;
        break;
    }

    if !initializing || initialized(status) {
        // Regular containers only count sidecar restarts from the init phase.
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for c in arr(&status["containerStatuses"]).iter().rev() {
            restarts += int(&c["restartCount"]);
            last_restart = later(last_restart, last_finished(c));
            let waiting = &c["state"]["waiting"];
            let terminated = &c["state"]["terminated"];
            if present(waiting) && !s(&waiting["reason"]).is_empty() {
                reason = s(&waiting["reason"]).to_string();
            } else if present(terminated) && !s(&terminated["reason"]).is_empty() {
                reason = s(&terminated["reason"]).to_string();
            } else if present(terminated) {
                reason = exit_reason(terminated);
            } else if c["ready"].as_bool() == Some(true) && present(&c["state"]["running"]) {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose main container completed but a sidecar still runs.
        if reason == "Completed" && has_running {
            reason = if condition_true(status, "Ready") { "Running" } else { "NotReady" }.to_string();
        }
    }

    if present(&pod["metadata"]["deletionTimestamp"]) {
        if s(&status["reason"]) == NODE_UNREACHABLE_REASON {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    let or_none = |v: &str| if v.is_empty() { "<none>".to_string() } else { v.to_string() };
    // Go reads status.podIPs; conversion fills it from podIP for old objects.
    let pod_ip = arr(&status["podIPs"]).first().map(|p| s(&p["ip"])).unwrap_or_else(|| s(&status["podIP"]));
    let gates = arr(&spec["readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let passed = gates
            .iter()
            .filter(|g| {
                arr(&status["conditions"])
                    .iter()
                    .find(|c| c["type"] == g["conditionType"])
                    .is_some_and(|c| s(&c["status"]) == "True")
            })
            .count();
        format!("{passed}/{}", gates.len())
    };

    let cells = vec![
        json!(s(&pod["metadata"]["name"])),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        json!(age(pod, now)),
        json!(or_none(pod_ip)),
        json!(or_none(s(&spec["nodeName"]))),
        json!(or_none(s(&status["nominatedNodeName"]))),
        json!(readiness_gates),
    ];
    let conditions = match phase {
        "Succeeded" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."
        }])),
        "Failed" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."
        }])),
        _ => None,
    };
    (cells, conditions)
}
