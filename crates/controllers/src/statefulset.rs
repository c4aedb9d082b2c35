//! The StatefulSet controller's decisions, as a pure function over a
//! snapshot (sans-IO), after pkg/controller/statefulset
//! (`stateful_set_control.go`): pods with stable names `<set>-<ordinal>`
//! and stable DNS names (`hostname` = pod name, `subdomain` = the set's
//! governing Service), created in order and only after the ones before
//! them are Running and Ready (`OrderedReady`), or all at once
//! (`Parallel`); removed from the highest ordinal down; rolling updates
//! from the highest ordinal down to the partition, one pod at a time;
//! each template kept as a ControllerRevision (`kubectl rollout history`
//! and `undo` read them).
//!
//! Differences from Kubernetes:
//! - revision names hash the template with [`pod_template_hash`] (FNV over
//!   canonical JSON), as the Deployment controller here does;
//! - `volumeClaimTemplates` add `persistentVolumeClaim` volumes to the
//!   pods, but no PersistentVolumeClaims are made: svcnet serves no
//!   storage;
//! - `maxUnavailable` (alpha) is not implemented: updates go one pod at a
//!   time;
//! - orphaned pods that match the selector are not adopted.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::json;

use crate::deployment::{PodRef, pod_template_hash};

/// The label naming the ControllerRevision a pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// The label holding the pod's own name (for a Service per pod).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// What one pass decided.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StatefulSetActions {
    /// Revisions to create, before any pod made from them.
    pub create_revisions: Vec<ControllerRevision>,
    /// Existing revisions whose `revision` number is to be raised (a
    /// rollback to a template the set had before).
    pub renumber_revisions: Vec<(String, i64)>,
    pub create_pods: Vec<Pod>,
    pub delete_pods: Vec<PodRef>,
    /// Old revisions beyond `revisionHistoryLimit`.
    pub delete_revisions: Vec<String>,
    /// The new status, when it differs from the current one.
    pub status: Option<StatefulSetStatus>,
}

fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// The set's controller reference, for its pods and revisions.
pub fn statefulset_controller_ref(sts: &StatefulSet) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "StatefulSet".into(),
        name: name(&sts.metadata).to_string(),
        uid: sts.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The ordinal in a pod's name `<set>-<ordinal>`, if it is one of the set's.
pub fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    let rest = pod.strip_prefix(set)?.strip_prefix('-')?;
    if rest.is_empty() || (rest.len() > 1 && rest.starts_with('0')) {
        return None;
    }
    rest.parse().ok()
}

pub(crate) fn is_running_and_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn is_failed(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
}

fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn revision_of(pod: &Pod) -> &str {
    pod.metadata.labels.as_ref().and_then(|l| l.get(REVISION_LABEL)).map(String::as_str).unwrap_or_default()
}

/// The revision's data: kube's patch that puts its template back.
pub(crate) fn revision_data(template: &PodTemplateSpec) -> serde_json::Value {
    let mut t = serde_json::to_value(template).unwrap_or_default();
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({ "spec": { "template": t } })
}

/// The template a revision holds.
fn revision_template(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.pointer("/spec/template")?.clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

/// The pod for `ordinal`, made from `template` of revision `revision`.
fn new_pod(sts: &StatefulSet, template: &PodTemplateSpec, revision: &str, ordinal: i32) -> Pod {
    let set = name(&sts.metadata);
    let pod_name = format!("{set}-{ordinal}");
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    labels.insert(REVISION_LABEL.into(), revision.into());
    labels.insert(POD_NAME_LABEL.into(), pod_name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    let spec = sts.spec.as_ref();
    let mut pod_spec = template.spec.clone().unwrap_or_default();
    pod_spec.hostname = Some(pod_name.clone());
    let service = spec.and_then(|s| s.service_name.clone()).unwrap_or_default();
    if !service.is_empty() {
        pod_spec.subdomain = Some(service);
    }
    for claim in spec.and_then(|s| s.volume_claim_templates.as_ref()).into_iter().flatten() {
        let claim_name = name(&claim.metadata).to_string();
        let volumes = pod_spec.volumes.get_or_insert_with(Vec::new);
        if !volumes.iter().any(|v| v.name == claim_name) {
            volumes.push(Volume {
                name: claim_name.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: format!("{claim_name}-{pod_name}"),
                    read_only: None,
                }),
                ..Volume::default()
            });
        }
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(pod_name),
            namespace: sts.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![statefulset_controller_ref(sts)]),
            ..ObjectMeta::default()
        },
        spec: Some(pod_spec),
        status: None,
    }
}

/// One `updateStatefulSet` pass. `pods` are the set's own (controlled by
/// it), `revisions` its ControllerRevisions.
pub fn reconcile_statefulset(
    sts: &StatefulSet,
    pods: &[&Pod],
    revisions: &[&ControllerRevision],
    _now: Timestamp,
) -> StatefulSetActions {
    let mut actions = StatefulSetActions::default();
    let Some(spec) = sts.spec.as_ref() else { return actions };
    let set = name(&sts.metadata);
    let namespace = sts.metadata.namespace.clone();
    let status = sts.status.clone().unwrap_or_default();

    // The update revision: the current template's, made if new.
    let collision = status.collision_count.unwrap_or(0);
    let update_name = format!("{set}-{}", pod_template_hash(&spec.template, Some(collision)));
    let max_revision = revisions.iter().map(|r| r.revision).max().unwrap_or(0);
    match revisions.iter().find(|r| name(&r.metadata) == update_name) {
        Some(r) if r.revision < max_revision => {
            actions.renumber_revisions.push((update_name.clone(), max_revision + 1))
        }
        Some(_) => {}
        None => actions.create_revisions.push(ControllerRevision {
            metadata: ObjectMeta {
                name: Some(update_name.clone()),
                namespace: namespace.clone(),
                labels: spec.template.metadata.as_ref().and_then(|m| m.labels.clone()),
                owner_references: Some(vec![statefulset_controller_ref(sts)]),
                ..ObjectMeta::default()
            },
            data: Some(RawExtension(revision_data(&spec.template))),
            revision: max_revision + 1,
        }),
    }
    // The current revision: the one every pod had before this update.
    let current_name = status
        .current_revision
        .clone()
        .filter(|c| revisions.iter().any(|r| name(&r.metadata) == c))
        .unwrap_or_else(|| update_name.clone());
    let current_template = revisions
        .iter()
        .find(|r| name(&r.metadata) == current_name)
        .and_then(|r| revision_template(r))
        .unwrap_or_else(|| spec.template.clone());

    let replicas = spec.replicas.unwrap_or(1).max(0);
    let start = spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0).max(0);
    let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
    let strategy = spec.update_strategy.as_ref();
    let rolling = strategy.and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate") == "RollingUpdate";
    let partition = strategy.and_then(|s| s.rolling_update.as_ref()).and_then(|r| r.partition).unwrap_or(0).max(0);

    // Pods by ordinal: in range, and condemned (beyond it, highest first).
    let mut in_range: BTreeMap<i32, &Pod> = BTreeMap::new();
    let mut condemned: Vec<(i32, &Pod)> = Vec::new();
    for pod in pods {
        let Some(ord) = ordinal_of(set, name(&pod.metadata)) else { continue };
        if ord >= start && ord < start + replicas {
            in_range.insert(ord, pod);
        } else {
            condemned.push((ord, pod));
        }
    }
    condemned.sort_by_key(|c| std::cmp::Reverse(c.0));

    // Replace failed pods, create missing ones, in ordinal order.
    let mut blocked = false;
    for ord in start..start + replicas {
        match in_range.get(&ord) {
            Some(pod) if is_failed(pod) && !terminating(pod) => {
                actions.delete_pods.push(PodRef::of(pod));
                if !parallel {
                    blocked = true;
                    break;
                }
            }
            Some(pod) => {
                if !parallel && (terminating(pod) || !is_running_and_ready(pod)) {
                    blocked = true;
                    break;
                }
            }
            None => {
                let from_current = rolling && ord < start + partition && current_name != update_name;
                let (template, revision) =
                    if from_current { (&current_template, &current_name) } else { (&spec.template, &update_name) };
                actions.create_pods.push(new_pod(sts, template, revision, ord));
                if !parallel {
                    blocked = true;
                    break;
                }
            }
        }
    }

    // Scale down, highest ordinal first; in order, one at a time once the
    // rest are Running and Ready.
    if !blocked {
        for (_, pod) in &condemned {
            if terminating(pod) {
                if parallel {
                    continue;
                }
                blocked = true;
                break;
            }
            actions.delete_pods.push(PodRef::of(pod));
            if !parallel {
                blocked = true;
                break;
            }
        }
    }

    // Rolling update: from the highest ordinal down to the partition, one
    // pod at a time, each only when every pod is Running and Ready.
    let all_ready = in_range.len() as i32 == replicas
        && in_range.values().all(|p| is_running_and_ready(p) && !terminating(p))
        && condemned.is_empty();
    if rolling && !blocked && all_ready {
        for ord in (start + partition..start + replicas).rev() {
            if let Some(pod) = in_range.get(&ord) {
                if revision_of(pod) != update_name {
                    actions.delete_pods.push(PodRef::of(pod));
                    break;
                }
            }
        }
    }

    // History: keep revisionHistoryLimit revisions besides the live ones.
    let limit = spec.revision_history_limit.unwrap_or(10).max(0) as usize;
    let live: Vec<&str> =
        pods.iter().map(|p| revision_of(p)).chain([current_name.as_str(), update_name.as_str()]).collect();
    let mut history: Vec<&&ControllerRevision> =
        revisions.iter().filter(|r| !live.contains(&name(&r.metadata))).collect();
    history.sort_by_key(|r| r.revision);
    if history.len() > limit {
        let extra = history.len() - limit;
        actions.delete_revisions = history[..extra].iter().map(|r| name(&r.metadata).to_string()).collect();
    }

    // Status, counted over the pods that are not going away.
    let mut next = StatefulSetStatus {
        observed_generation: sts.metadata.generation,
        collision_count: Some(collision),
        update_revision: Some(update_name.clone()),
        current_revision: Some(current_name.clone()),
        conditions: status.conditions.clone(),
        ..StatefulSetStatus::default()
    };
    let mut replicas_now = 0;
    let (mut ready, mut current, mut updated) = (0, 0, 0);
    for pod in pods.iter().filter(|p| !terminating(p)) {
        replicas_now += 1;
        if is_running_and_ready(pod) {
            ready += 1;
        }
        if revision_of(pod) == current_name {
            current += 1;
        }
        if revision_of(pod) == update_name {
            updated += 1;
        }
    }
    next.replicas = replicas_now;
    next.ready_replicas = Some(ready);
    next.available_replicas = Some(ready);
    next.current_replicas = Some(current);
    next.updated_replicas = Some(updated);
    // The rollout is complete once every pod runs the update revision.
    if updated == replicas && replicas_now == replicas && ready == replicas {
        next.current_revision = Some(update_name);
        next.current_replicas = Some(updated);
    }
    if sts.status.as_ref() != Some(&next) {
        actions.status = Some(next);
    }
    actions
}

#[cfg(test)]
mod tests;
