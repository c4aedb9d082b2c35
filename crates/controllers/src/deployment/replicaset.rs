//! The ReplicaSet controller's decisions (`pkg/controller/replicaset`):
//! which pods a ReplicaSet claims, how many it creates or deletes, which
//! ones it deletes first, and the status it reports.
//!
//! Differences from kube-controller-manager, all because this is one pure
//! pass over a snapshot rather than a loop with API calls:
//! - No expectations: the runtime must not re-run a ReplicaSet before the
//!   pods it created or deleted show up in its snapshot, or it will create
//!   or delete twice (kube tracks this with `ControllerExpectations`).
//! - No slow-start batches (1, 2, 4, ...): kube uses them to stop early when
//!   creates fail; here every create is returned at once (still capped at
//!   [`BURST_REPLICAS`]) and the runtime may batch them.
//! - The "related pods on the same node" rank only counts this
//!   ReplicaSet's own pods; kube also counts pods of sibling ReplicaSets
//!   of the same Deployment.
//! - Ties in the deletion ranking are broken by name, so the victims are
//!   deterministic (Go's `sort.Sort` is not stable).

use std::cmp::Ordering;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::Error;
use super::util::{
    Selector, being_deleted, controller_of, is_pod_active, is_pod_available, is_pod_ready, name, namespace, nanos,
    new_controller_ref, omit_zero, omit_zero64, pod_phase, pod_ready_since, uid, wire_time,
};

/// At most this many pods are created or deleted in one pass
/// (kube-controller-manager's `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;

/// The annotation a user sets to say which pods to delete first
/// (lower cost first; `PodDeletionCost`, on by default since 1.22).
pub const POD_DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";

/// A pod the controller acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    /// The pod's UID, for a precondition on the write.
    pub uid: Option<String>,
}

impl PodRef {
    pub fn of(pod: &Pod) -> Self {
        Self {
            namespace: namespace(&pod.metadata).to_string(),
            name: name(&pod.metadata).to_string(),
            uid: pod.metadata.uid.clone(),
        }
    }
}

/// What one pass of the ReplicaSet controller wants written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplicaSetActions {
    /// Pods to create (with `generateName`, so the API server names them).
    pub create_pods: Vec<Pod>,
    /// Pods to delete, most expendable first.
    pub delete_pods: Vec<PodRef>,
    /// Orphans to adopt: add [`replicaset_controller_ref`] to their
    /// ownerReferences (kube patches with a UID precondition).
    pub adopt: Vec<PodRef>,
    /// Owned pods whose labels no longer match: remove the ownerReference
    /// whose uid is the ReplicaSet's.
    pub release: Vec<PodRef>,
    /// The new status, if it differs from the current one. It describes the
    /// pods as they are now, before the creates and deletes above.
    pub status: Option<ReplicaSetStatus>,
    /// Run again after this long even if nothing changes (pods becoming
    /// available once minReadySeconds have passed).
    pub requeue_after: Option<Duration>,
}

impl ReplicaSetActions {
    /// Nothing to write (a requeue is not a write).
    pub fn is_empty(&self) -> bool {
        self.create_pods.is_empty()
            && self.delete_pods.is_empty()
            && self.adopt.is_empty()
            && self.release.is_empty()
            && self.status.is_none()
    }
}

/// The ownerReference a ReplicaSet puts on its pods.
pub fn replicaset_controller_ref(rs: &ReplicaSet) -> OwnerReference {
    new_controller_ref(&rs.metadata, "apps/v1", "ReplicaSet")
}

/// One pass of the ReplicaSet controller over `pods` (every pod in the
/// ReplicaSet's namespace; pods of other namespaces are ignored).
pub fn reconcile_replicaset(rs: &ReplicaSet, pods: &[&Pod], now: Timestamp) -> Result<ReplicaSetActions, Error> {
    let rs_name = name(&rs.metadata);
    let spec = rs.spec.as_ref().ok_or_else(|| Error::MissingSpec { kind: "ReplicaSet", name: rs_name.to_string() })?;
    let selector = Selector::parse(&spec.selector)?;
    let rs_uid = uid(&rs.metadata);
    let ns = namespace(&rs.metadata);
    let rs_deleting = being_deleted(&rs.metadata);
    let replicas = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);

    let mut actions = ReplicaSetActions::default();

    // Claim (ClaimPods over FilterActivePods): keep matching owned pods,
    // adopt matching orphans, release owned pods that stopped matching.
    let mut owned: Vec<&Pod> = Vec::new();
    for pod in pods.iter().copied().filter(|p| namespace(&p.metadata) == ns && is_pod_active(p)) {
        let matches = selector.matches(pod.metadata.labels.as_ref());
        match controller_of(&pod.metadata) {
            Some(owner) if owner.uid == rs_uid => {
                if matches {
                    owned.push(pod);
                } else if !rs_deleting {
                    actions.release.push(PodRef::of(pod));
                }
            }
            Some(_) => {}
            None => {
                if matches && !rs_deleting {
                    actions.adopt.push(PodRef::of(pod));
                    owned.push(pod);
                }
            }
        }
    }

    if !rs_deleting {
        if owned.len() < replicas {
            let template = spec
                .template
                .as_ref()
                .ok_or_else(|| Error::MissingSpec { kind: "ReplicaSet template", name: rs_name.to_string() })?;
            let count = (replicas - owned.len()).min(BURST_REPLICAS);
            let pod = pod_from_template(rs, template);
            actions.create_pods = vec![pod; count];
        } else if owned.len() > replicas {
            let count = (owned.len() - replicas).min(BURST_REPLICAS);
            let ranked = rank_pods_for_deletion(&owned, &owned, now);
            actions.delete_pods = ranked.into_iter().take(count).map(PodRef::of).collect();
        }
    }

    let status = calculate_status(rs, &owned, now);
    let current = rs.status.clone().unwrap_or_default();
    if status != current {
        actions.status = Some(status.clone());
    }

    // Pods that are ready but not yet available become available with time
    // alone; nothing else would trigger the next pass.
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    if min_ready > 0
        && status.ready_replicas.unwrap_or(0) == spec.replicas.unwrap_or(1)
        && status.available_replicas.unwrap_or(0) != spec.replicas.unwrap_or(1)
    {
        actions.requeue_after = Some(Duration::from_secs(min_ready.unsigned_abs().into()));
    }
    Ok(actions)
}

/// `controller.GetPodFromTemplate`: the template's labels, annotations,
/// finalizers and spec, named `<rs-name>-<random>` by the API server.
fn pod_from_template(rs: &ReplicaSet, template: &k8s_openapi::api::core::v1::PodTemplateSpec) -> Pod {
    let tmeta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", name(&rs.metadata))),
            namespace: rs.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![replicaset_controller_ref(rs)]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// `calculateStatus` over the claimed active pods.
fn calculate_status(rs: &ReplicaSet, owned: &[&Pod], now: Timestamp) -> ReplicaSetStatus {
    let spec = rs.spec.as_ref();
    let template_labels =
        spec.and_then(|s| s.template.as_ref()).and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.as_ref());
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let mut fully_labeled = 0;
    let mut ready = 0;
    let mut available = 0;
    for pod in owned {
        let labels = pod.metadata.labels.as_ref();
        if template_labels.into_iter().flatten().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v)) {
            fully_labeled += 1;
        }
        if is_pod_ready(pod) {
            ready += 1;
            if is_pod_available(pod, min_ready, now) {
                available += 1;
            }
        }
    }
    let mut status = rs.status.clone().unwrap_or_default();
    // A pass that gets this far had no error, so a recorded failure is
    // cleared (the runtime adds it back with `replica_failure_status`).
    if let Some(conds) = status.conditions.as_mut() {
        conds.retain(|c| c.type_ != "ReplicaFailure");
    }
    if status.conditions.as_ref().is_some_and(Vec::is_empty) {
        status.conditions = None;
    }
    status.replicas = i32::try_from(owned.len()).unwrap_or(i32::MAX);
    status.fully_labeled_replicas = omit_zero(fully_labeled);
    status.ready_replicas = omit_zero(ready);
    status.available_replicas = omit_zero(available);
    status.observed_generation = omit_zero64(rs.metadata.generation.unwrap_or(0));
    status
}

/// The status to write when applying a pass's creates or deletes failed:
/// `status` with a `ReplicaFailure` condition (reason `FailedCreate` or
/// `FailedDelete`), unless one is already recorded.
pub fn replica_failure_status(
    status: &ReplicaSetStatus,
    failed_create: bool,
    message: &str,
    now: Timestamp,
) -> ReplicaSetStatus {
    let mut status = status.clone();
    let conds = status.conditions.get_or_insert_with(Vec::new);
    if !conds.iter().any(|c| c.type_ == "ReplicaFailure") {
        conds.push(ReplicaSetCondition {
            type_: "ReplicaFailure".to_string(),
            status: "True".to_string(),
            reason: Some(if failed_create { "FailedCreate" } else { "FailedDelete" }.to_string()),
            message: Some(message.to_string()),
            last_transition_time: Some(wire_time(now)),
        });
    }
    status
}

/// `pods` ordered most expendable first, as `ActivePodsWithRanks` sorts
/// them (with LogarithmicScaleDown and PodDeletionCost, both on by default):
/// 1. unscheduled before scheduled;
/// 2. Pending before Unknown before Running;
/// 3. not ready before ready;
/// 4. lower `controller.kubernetes.io/pod-deletion-cost` first;
/// 5. more pods of `related` on the same node first;
/// 6. both ready: ready for less time first (log2 buckets of the time since
///    ready; within a bucket, lower UID first);
/// 7. more container restarts first;
/// 8. newer first (log2 buckets of age; within a bucket, lower UID first).
///
/// Remaining ties go by name.
pub fn rank_pods_for_deletion<'a>(pods: &[&'a Pod], related: &[&Pod], now: Timestamp) -> Vec<&'a Pod> {
    let mut on_node: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for p in related.iter().filter(|p| is_pod_active(p)) {
        *on_node.entry(node_name(p)).or_default() += 1;
    }
    let mut ranked: Vec<(&Pod, usize)> =
        pods.iter().map(|p| (*p, on_node.get(node_name(p)).copied().unwrap_or(0))).collect();
    ranked.sort_by(|a, b| compare_for_deletion(a, b, now).then_with(|| name(&a.0.metadata).cmp(name(&b.0.metadata))));
    ranked.into_iter().map(|(p, _)| p).collect()
}

fn node_name(pod: &Pod) -> &str {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or_default()
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match pod_phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST_ANNOTATION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
}

/// `Less` of ActivePodsWithRanks as an Ordering: `Less` means "delete
/// `a` before `b`".
fn compare_for_deletion(a: &(&Pod, usize), b: &(&Pod, usize), now: Timestamp) -> Ordering {
    let (pa, ra) = *a;
    let (pb, rb) = *b;
    let (na, nb) = (node_name(pa), node_name(pb));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() { Ordering::Less } else { Ordering::Greater };
    }
    let by_phase = phase_ordinal(pa).cmp(&phase_ordinal(pb));
    if by_phase != Ordering::Equal {
        return by_phase;
    }
    let (ready_a, ready_b) = (is_pod_ready(pa), is_pod_ready(pb));
    if ready_a != ready_b {
        return if ready_a { Ordering::Greater } else { Ordering::Less };
    }
    let by_cost = deletion_cost(pa).cmp(&deletion_cost(pb));
    if by_cost != Ordering::Equal {
        return by_cost;
    }
    if ra != rb {
        return rb.cmp(&ra);
    }
    if ready_a && ready_b {
        let (ta, tb) = (pod_ready_since(pa), pod_ready_since(pb));
        if ta != tb {
            return compare_times(ta, tb, pa, pb, now);
        }
    }
    let by_restarts = max_restarts(pb).cmp(&max_restarts(pa));
    if by_restarts != Ordering::Equal {
        return by_restarts;
    }
    let (ca, cb) =
        (pa.metadata.creation_timestamp.as_ref().map(|t| t.0), pb.metadata.creation_timestamp.as_ref().map(|t| t.0));
    if ca != cb {
        return compare_times(ca, cb, pa, pb, now);
    }
    Ordering::Equal
}

/// Later (younger) first, a missing time before any; with both present,
/// compared by the log2 of their age so pods of similar age count as equal
/// and are spread by UID instead (LogarithmicScaleDown).
fn compare_times(ta: Option<Timestamp>, tb: Option<Timestamp>, pa: &Pod, pb: &Pod, now: Timestamp) -> Ordering {
    match (ta, tb) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(ta), Some(tb)) => {
            let bucket = |t: Timestamp| {
                let age = nanos(now) - nanos(t);
                if age > 0 { (age as f64).log2() as i64 } else { -1 }
            };
            match bucket(ta).cmp(&bucket(tb)) {
                Ordering::Equal => uid(&pa.metadata).cmp(uid(&pb.metadata)),
                other => other,
            }
        }
    }
}
