//! Printers for apps/v1: Deployment, ReplicaSet, StatefulSet, DaemonSet
//! and ControllerRevision.
//!
//! Both default a missing `spec.replicas` to 1, as API defaulting does before
//! the Go printer ever sees the object.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::value::{age, container_cells, format_labels, int, s};
use crate::selector::LabelSelector;

fn desired_replicas(obj: &Value) -> i64 {
    obj["spec"]["replicas"].as_i64().unwrap_or(1)
}

pub(super) fn deployment(d: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(&d["spec"]["template"]["spec"]);
    // Go prints selector.String() here: "" for a missing or empty selector,
    // "<invalid>" when it does not convert.
    let selector = match LabelSelector::from_label_selector_json(&d["spec"]["selector"]) {
        Ok(sel) => sel.to_string(),
        Err(_) => "<invalid>".to_string(),
    };
    vec![
        json!(s(&d["metadata"]["name"])),
        json!(format!("{}/{}", int(&d["status"]["readyReplicas"]), desired_replicas(d))),
        json!(int(&d["status"]["updatedReplicas"])),
        json!(int(&d["status"]["availableReplicas"])),
        json!(age(d, now)),
        json!(names),
        json!(images),
        json!(selector),
    ]
}

pub(super) fn replica_set(rs: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(&rs["spec"]["template"]["spec"]);
    // metav1.FormatLabelSelector: "<none>" when empty, "<error>" when invalid.
    let selector = match LabelSelector::from_label_selector_json(&rs["spec"]["selector"]) {
        Ok(sel) => match sel.to_string() {
            s if s.is_empty() => "<none>".to_string(),
            s => s,
        },
        Err(_) => "<error>".to_string(),
    };
    vec![
        json!(s(&rs["metadata"]["name"])),
        json!(desired_replicas(rs)),
        json!(int(&rs["status"]["replicas"])),
        json!(int(&rs["status"]["readyReplicas"])),
        json!(age(rs, now)),
        json!(names),
        json!(images),
        json!(selector),
    ]
}

pub(super) fn stateful_set(sts: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(&sts["spec"]["template"]["spec"]);
    vec![
        json!(s(&sts["metadata"]["name"])),
        json!(format!("{}/{}", int(&sts["status"]["readyReplicas"]), desired_replicas(sts))),
        json!(age(sts, now)),
        json!(names),
        json!(images),
    ]
}

/// CONTROLLER is `kind.group/name` of the controlling owner ("<none>"
/// without one).
pub(super) fn controller_revision(cr: &Value, now: Timestamp) -> Vec<Value> {
    let owner = cr["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|refs| refs.iter().find(|r| r["controller"] == true))
        .map(|r| {
            let group = s(&r["apiVersion"]).split_once('/').map(|(g, _)| g.to_string()).unwrap_or_default();
            let kind = s(&r["kind"]).to_lowercase();
            let kind = if group.is_empty() { kind } else { format!("{kind}.{group}") };
            format!("{kind}/{}", s(&r["name"]))
        })
        .unwrap_or_else(|| "<none>".to_string());
    vec![json!(s(&cr["metadata"]["name"])), json!(owner), json!(int(&cr["revision"])), json!(age(cr, now))]
}

pub(super) fn daemon_set(ds: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(&ds["spec"]["template"]["spec"]);
    let selector = match LabelSelector::from_label_selector_json(&ds["spec"]["selector"]) {
        Ok(sel) => match sel.to_string() {
            s if s.is_empty() => "<none>".to_string(),
            s => s,
        },
        Err(_) => "<error>".to_string(),
    };
    let status = &ds["status"];
    vec![
        json!(s(&ds["metadata"]["name"])),
        json!(int(&status["desiredNumberScheduled"])),
        json!(int(&status["currentNumberScheduled"])),
        json!(int(&status["numberReady"])),
        json!(int(&status["updatedNumberScheduled"])),
        json!(int(&status["numberAvailable"])),
        json!(format_labels(&ds["spec"]["template"]["spec"]["nodeSelector"])),
        json!(age(ds, now)),
        json!(names),
        json!(images),
        json!(selector),
    ]
}
