//! The DaemonSet controller's decisions, as a pure function over a
//! snapshot (sans-IO), after pkg/controller/daemon: one pod per node that
//! should run it (the template's node selector and required affinity
//! match, its taints are tolerated), placed by the scheduler through a
//! required node affinity on the node's name, with the tolerations kube
//! adds to daemon pods; extra and misplaced pods removed; failed pods
//! replaced; rolling updates within `maxUnavailable`; each template kept
//! as a ControllerRevision.
//!
//! Differences from Kubernetes: `maxSurge` (a new pod beside the old one)
//! is not implemented (rolling updates delete first, within
//! `maxUnavailable`); revision names hash the template with
//! [`pod_template_hash`]; orphaned pods are not adopted.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::deployment::{PodRef, pod_template_hash};
use crate::statefulset::{REVISION_LABEL, is_running_and_ready, revision_data};

/// The label with the DaemonSet's generation a pod was made at.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// What one pass decided.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DaemonSetActions {
    pub create_revisions: Vec<ControllerRevision>,
    pub renumber_revisions: Vec<(String, i64)>,
    pub create_pods: Vec<Pod>,
    pub delete_pods: Vec<PodRef>,
    pub delete_revisions: Vec<String>,
    pub status: Option<DaemonSetStatus>,
}

fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// The set's controller reference, for its pods and revisions.
pub fn daemonset_controller_ref(ds: &DaemonSet) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "DaemonSet".into(),
        name: name(&ds.metadata).to_string(),
        uid: ds.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The tolerations kube adds to every daemon pod (`AddOrUpdateDaemonPodTolerations`).
fn daemon_tolerations() -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Toleration::default()
    };
    vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
}

/// The pod for `node`, from `template` of revision `hash`.
fn new_pod(ds: &DaemonSet, template: &k8s_openapi::api::core::v1::PodTemplateSpec, hash: &str, node: &str) -> Pod {
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    labels.insert(REVISION_LABEL.into(), hash.into());
    labels.insert(TEMPLATE_GENERATION_LABEL.into(), ds.metadata.generation.unwrap_or(1).to_string());
    let mut spec = template.spec.clone().unwrap_or_default();
    // Pinned to its node by a required affinity on the node's name, which
    // replaces any required terms of its own (kube's
    // `ReplaceDaemonSetPodNodeNameNodeAffinity`).
    let term = NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![node.to_string()]),
        }]),
        match_expressions: None,
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let node_affinity = affinity.node_affinity.get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution =
        Some(NodeSelector { node_selector_terms: vec![term] });
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for t in daemon_tolerations() {
        if !tolerations.iter().any(|x| x.key == t.key && x.effect == t.effect) {
            tolerations.push(t);
        }
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", name(&ds.metadata))),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![daemonset_controller_ref(ds)]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The node a daemon pod is for: where it is bound, or the node its
/// required affinity names.
pub fn pod_node(pod: &Pod) -> Option<String> {
    node_of(pod)
}

fn node_of(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.clone().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name")
        .and_then(|r| r.values.as_ref()?.first().cloned())
}

fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn failed(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
}

fn hash_of(pod: &Pod) -> &str {
    pod.metadata.labels.as_ref().and_then(|l| l.get(REVISION_LABEL)).map(String::as_str).unwrap_or_default()
}

/// `maxUnavailable` as a number of nodes out of `desired` (a percentage
/// rounds up; at least 1 when `maxSurge` is 0, as validation requires).
fn max_unavailable(ds: &DaemonSet, desired: usize) -> usize {
    let ru = ds.spec.as_ref().and_then(|s| s.update_strategy.as_ref()).and_then(|u| u.rolling_update.as_ref());
    let n = match ru.and_then(|r| r.max_unavailable.as_ref()) {
        None => 1,
        Some(IntOrString::Int(n)) => (*n).max(0) as usize,
        Some(IntOrString::String(s)) => {
            let pct: usize = s.trim_end_matches('%').parse().unwrap_or(0);
            (pct * desired).div_ceil(100)
        }
    };
    n.max(1)
}

/// One `syncDaemonSet` pass over the nodes, the set's own pods and its
/// revisions.
pub fn reconcile_daemonset(
    ds: &DaemonSet,
    nodes: &[&Node],
    pods: &[&Pod],
    revisions: &[&ControllerRevision],
    _now: Timestamp,
) -> DaemonSetActions {
    let mut actions = DaemonSetActions::default();
    let Some(spec) = ds.spec.as_ref() else { return actions };
    let set = name(&ds.metadata);
    let status = ds.status.clone().unwrap_or_default();
    let collision = status.collision_count.unwrap_or(0);
    let hash = pod_template_hash(&spec.template, Some(collision));
    let revision_name = format!("{set}-{hash}");
    let max_revision = revisions.iter().map(|r| r.revision).max().unwrap_or(0);
    match revisions.iter().find(|r| name(&r.metadata) == revision_name) {
        Some(r) if r.revision < max_revision => {
            actions.renumber_revisions.push((revision_name.clone(), max_revision + 1))
        }
        Some(_) => {}
        None => actions.create_revisions.push(ControllerRevision {
            metadata: ObjectMeta {
                name: Some(revision_name.clone()),
                namespace: ds.metadata.namespace.clone(),
                labels: spec.template.metadata.as_ref().and_then(|m| m.labels.clone()),
                owner_references: Some(vec![daemonset_controller_ref(ds)]),
                ..ObjectMeta::default()
            },
            data: Some(RawExtension(revision_data(&spec.template))),
            revision: max_revision + 1,
        }),
    }

    // Pods by node.
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for pod in pods {
        if let Some(node) = node_of(pod) {
            by_node.entry(node).or_default().push(pod);
        }
    }
    // The template as a daemon pod, with its own affinity rather than the
    // pin to one node: what "should this node run it" is asked about.
    let mut probe = new_pod(ds, &spec.template, &hash, "");
    if let Some(s) = probe.spec.as_mut() {
        s.affinity = spec.template.spec.as_ref().and_then(|t| t.affinity.clone());
    }
    let mut desired: i32 = 0;
    let (mut current, mut ready, mut updated, mut available, mut misscheduled) = (0, 0, 0, 0, 0);
    let mut old_pods: Vec<(&Pod, bool)> = Vec::new();
    let mut unavailable: usize = 0;
    let node_names: Vec<&str> = nodes.iter().map(|n| name(&n.metadata)).collect();
    for node in nodes {
        let node_name = name(&node.metadata);
        let should_run = crate::scheduler::daemon_pod_fits(node, &probe);
        let mut here: Vec<&Pod> = by_node.get(node_name).cloned().unwrap_or_default();
        here.retain(|p| !terminating(p));
        if !should_run {
            if crate::scheduler::daemon_pod_may_stay(node, &probe) {
                // Kept, and counted, but not replaced if it goes.
                if !here.is_empty() {
                    desired += 1;
                    current += 1;
                    let ready_here = here.iter().any(|p| is_running_and_ready(p));
                    if ready_here {
                        ready += 1;
                        available += 1;
                    }
                    if here.iter().any(|p| hash_of(p) == hash) {
                        updated += 1;
                    }
                }
                continue;
            }
            if !here.is_empty() {
                misscheduled += 1;
            }
            actions.delete_pods.extend(here.iter().map(|p| PodRef::of(p)));
            continue;
        }
        desired += 1;
        // Failed pods go (a new one comes next pass).
        let (failed_here, mut live): (Vec<&Pod>, Vec<&Pod>) = here.into_iter().partition(|p| failed(p));
        actions.delete_pods.extend(failed_here.iter().map(|p| PodRef::of(p)));
        if live.is_empty() {
            let waiting = by_node.get(node_name).is_some_and(|ps| ps.iter().any(|p| terminating(p)));
            if !waiting && failed_here.is_empty() {
                actions.create_pods.push(new_pod(ds, &spec.template, &hash, node_name));
            }
            unavailable += 1;
            continue;
        }
        // One pod per node: the oldest stays.
        live.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
                .then(name(&a.metadata).cmp(name(&b.metadata)))
        });
        actions.delete_pods.extend(live[1..].iter().map(|p| PodRef::of(p)));
        let pod = live[0];
        current += 1;
        let is_ready = is_running_and_ready(pod);
        if is_ready {
            ready += 1;
            available += 1;
        } else {
            unavailable += 1;
        }
        if hash_of(pod) == hash {
            updated += 1;
        } else {
            old_pods.push((pod, is_ready));
        }
    }
    // Pods on nodes that are gone.
    for (node, here) in &by_node {
        if !node_names.contains(&node.as_str()) {
            actions.delete_pods.extend(here.iter().filter(|p| !terminating(p)).map(|p| PodRef::of(p)));
        }
    }

    // Rolling update: old pods go, unready ones first, while no more than
    // maxUnavailable nodes are without a ready pod.
    let rolling =
        spec.update_strategy.as_ref().and_then(|u| u.type_.as_deref()).unwrap_or("RollingUpdate") == "RollingUpdate";
    if rolling {
        let budget = max_unavailable(ds, desired.max(0) as usize);
        old_pods.sort_by_key(|(p, is_ready)| (*is_ready, name(&p.metadata).to_string()));
        let mut unavailable_now = unavailable;
        for (pod, is_ready) in old_pods {
            if !is_ready {
                // Already unavailable: replacing it costs nothing more.
                actions.delete_pods.push(PodRef::of(pod));
            } else if unavailable_now < budget {
                actions.delete_pods.push(PodRef::of(pod));
                unavailable_now += 1;
            }
        }
    }

    // History.
    let limit = spec.revision_history_limit.unwrap_or(10).max(0) as usize;
    let live_hashes: Vec<&str> = pods.iter().map(|p| hash_of(p)).collect();
    let mut history: Vec<&&ControllerRevision> = revisions
        .iter()
        .filter(|r| {
            let n = name(&r.metadata);
            n != revision_name && !live_hashes.iter().any(|h| !h.is_empty() && n == format!("{set}-{h}"))
        })
        .collect();
    history.sort_by_key(|r| r.revision);
    if history.len() > limit {
        let extra = history.len() - limit;
        actions.delete_revisions = history[..extra].iter().map(|r| name(&r.metadata).to_string()).collect();
    }

    let next = DaemonSetStatus {
        observed_generation: ds.metadata.generation,
        desired_number_scheduled: desired,
        current_number_scheduled: current,
        number_misscheduled: misscheduled,
        number_ready: ready,
        updated_number_scheduled: Some(updated),
        number_available: Some(available),
        number_unavailable: Some(desired - available),
        collision_count: Some(collision),
        conditions: status.conditions.clone(),
    };
    if ds.status.as_ref() != Some(&next) {
        actions.status = Some(next);
    }
    actions
}

#[cfg(test)]
mod tests;
