//! One `syncDeployment` pass: claiming ReplicaSets, finding the new one and
//! syncing revisions (`sync.go`), proportional scaling (`scale`), the
//! RollingUpdate (`rolling.go`) and Recreate (`recreate.go`) strategies and
//! history cleanup.
//!
//! Kube's writes become edits of working copies (`Wrs::cur`) next to the
//! snapshot they came from (`Wrs::orig`); the actions are the differences
//! at the end of the pass.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::progress::{
    FOUND_NEW_RS_REASON, NEW_RS_CREATED_REASON, PROGRESSING, deployment_complete, get_condition, new_condition,
    set_condition,
};
use super::util::{Selector, being_deleted, controller_of, name, namespace, new_controller_ref, scaled_value, uid};
use super::{
    DESIRED_REPLICAS_ANNOTATION, DeploymentActions, Error, MAX_REPLICAS_ANNOTATION, POD_TEMPLATE_HASH_LABEL,
    REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION, pod_template_hash,
};

/// Annotations that are the controller's own and never copied from the
/// Deployment to its ReplicaSets.
const ANNOTATIONS_TO_SKIP: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    "deprecated.deployment.rollback.to",
];

/// Longest revision-history annotation kube keeps.
const MAX_REV_HISTORY_LENGTH_IN_CHARS: usize = 2000;

#[derive(Debug, Clone)]
enum Strategy {
    Recreate,
    RollingUpdate { max_surge: IntOrString, max_unavailable: IntOrString },
}

/// A ReplicaSet as the snapshot had it and as this pass leaves it.
#[derive(Debug, Clone)]
pub(crate) struct Wrs {
    orig: Option<ReplicaSet>,
    pub(crate) cur: ReplicaSet,
}

/// Returned by a step that ends the pass early, as kube's sync returns an
/// error after a hash collision.
struct Stop;

pub(crate) struct Pass<'a> {
    d: &'a Deployment,
    pub(crate) name: String,
    pub(crate) replicas: i32,
    pub(crate) generation: i64,
    pub(crate) paused: bool,
    pub(crate) progress_deadline_seconds: Option<i32>,
    pub(crate) now: Timestamp,
    strategy: Strategy,
    min_ready_seconds: i32,
    revision_history_limit: Option<i32>,
    template: PodTemplateSpec,
    selector: LabelSelector,
    /// All ReplicaSets of the namespace, to detect name collisions.
    namespace_rs_names: Vec<String>,
    /// The Deployment's status as kube's `d.Status` evolves during a sync.
    pub(crate) status: DeploymentStatus,
    /// The Deployment's revision annotation as this pass leaves it.
    revision: Option<String>,
    /// Owned ReplicaSets, oldest first.
    pub(crate) rss: Vec<Wrs>,
    /// Pods matching the selector, grouped by the owned ReplicaSet (index
    /// into `rss`) that controls them.
    pods_by_rs: BTreeMap<usize, Vec<&'a Pod>>,
    delete_rs: Vec<String>,
    pub(crate) final_status: Option<DeploymentStatus>,
    pub(crate) requeue_after: Option<std::time::Duration>,
}

pub(crate) fn reconcile(
    d: &Deployment,
    replicasets: &[&ReplicaSet],
    pods: &[&Pod],
    now: Timestamp,
) -> Result<DeploymentActions, Error> {
    let d_name = name(&d.metadata).to_string();
    let spec = d.spec.as_ref().ok_or_else(|| Error::MissingSpec { kind: "Deployment", name: d_name.clone() })?;
    let ns = namespace(&d.metadata);
    let selector = Selector::parse(&spec.selector)?;
    let current_status = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);

    // A Deployment selecting everything would fight every other controller.
    if selector.is_everything() {
        let mut status = current_status.clone();
        if status.observed_generation.unwrap_or(0) < generation {
            status.observed_generation = Some(generation);
        }
        return Ok(DeploymentActions {
            status_changed: status != current_status,
            status,
            ..DeploymentActions::default()
        });
    }

    let strategy = match spec.strategy.as_ref().and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate") {
        "Recreate" => Strategy::Recreate,
        "RollingUpdate" => {
            let ru = spec.strategy.as_ref().and_then(|s| s.rolling_update.clone()).unwrap_or_default();
            let pct = || IntOrString::String("25%".into());
            Strategy::RollingUpdate {
                max_surge: ru.max_surge.unwrap_or_else(pct),
                max_unavailable: ru.max_unavailable.unwrap_or_else(pct),
            }
        }
        other => return Err(Error::UnsupportedStrategy(other.to_string())),
    };

    let in_ns: Vec<&ReplicaSet> = replicasets.iter().copied().filter(|rs| namespace(&rs.metadata) == ns).collect();
    let mut actions = DeploymentActions::default();

    // Claim (ClaimReplicaSets): matching owned ones stay, orphans that match
    // are adopted, owned ones that stopped matching are released.
    let d_uid = uid(&d.metadata);
    let d_deleting = being_deleted(&d.metadata);
    let mut owned: Vec<ReplicaSet> = Vec::new();
    for rs in &in_ns {
        let matches = selector.matches(rs.metadata.labels.as_ref());
        match controller_of(&rs.metadata) {
            Some(owner) if owner.uid == d_uid => {
                if matches {
                    owned.push((*rs).clone());
                } else if !d_deleting {
                    actions.release_rs.push(name(&rs.metadata).to_string());
                }
            }
            Some(_) => {}
            None => {
                if matches && !d_deleting && !being_deleted(&rs.metadata) {
                    actions.adopt_rs.push(name(&rs.metadata).to_string());
                    let mut rs = (*rs).clone();
                    rs.metadata.owner_references.get_or_insert_with(Vec::new).push(new_controller_ref(
                        &d.metadata,
                        "apps/v1",
                        "Deployment",
                    ));
                    owned.push(rs);
                }
            }
        }
    }
    owned.sort_by(by_creation);

    let mut pods_by_rs: BTreeMap<usize, Vec<&Pod>> = BTreeMap::new();
    for pod in pods.iter().copied() {
        if namespace(&pod.metadata) != ns || !selector.matches(pod.metadata.labels.as_ref()) {
            continue;
        }
        if let Some(owner) = controller_of(&pod.metadata) {
            if let Some(i) = owned.iter().position(|rs| uid(&rs.metadata) == owner.uid) {
                pods_by_rs.entry(i).or_default().push(pod);
            }
        }
    }

    let mut pass = Pass {
        d,
        name: d_name,
        replicas: spec.replicas.unwrap_or(1),
        generation,
        paused: spec.paused.unwrap_or(false),
        progress_deadline_seconds: Some(spec.progress_deadline_seconds.unwrap_or(600)),
        now,
        strategy,
        min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
        revision_history_limit: Some(spec.revision_history_limit.unwrap_or(10)),
        template: spec.template.clone(),
        selector: spec.selector.clone(),
        namespace_rs_names: in_ns.iter().map(|rs| name(&rs.metadata).to_string()).collect(),
        status: current_status.clone(),
        revision: d.metadata.annotations.as_ref().and_then(|a| a.get(REVISION_ANNOTATION)).cloned(),
        rss: owned.into_iter().map(|rs| Wrs { orig: Some(rs.clone()), cur: rs }).collect(),
        pods_by_rs,
        delete_rs: Vec::new(),
        final_status: None,
        requeue_after: None,
    };
    pass.run()?;

    for w in &pass.rss {
        match &w.orig {
            None => actions.create_rs = Some(w.cur.clone()),
            Some(orig) => {
                let size = rs_spec_replicas(&w.cur);
                if rs_spec_replicas(orig) != size {
                    actions.scale.push((name(&w.cur.metadata).to_string(), size));
                }
                let min_ready = |rs: &ReplicaSet| rs.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
                if orig.metadata.annotations != w.cur.metadata.annotations || min_ready(orig) != min_ready(&w.cur) {
                    actions.update_rs.push(w.cur.clone());
                }
            }
        }
    }
    actions.delete_rs = pass.delete_rs;
    let current_revision = d.metadata.annotations.as_ref().and_then(|a| a.get(REVISION_ANNOTATION));
    if pass.revision.as_ref() != current_revision {
        actions.set_revision = pass.revision.clone();
    }
    let status = pass.final_status.take().unwrap_or_else(|| pass.status.clone());
    actions.status_changed = status != current_status;
    actions.status = status;
    actions.requeue_after = pass.requeue_after;
    Ok(actions)
}

fn creation_nanos(meta: &ObjectMeta) -> i128 {
    meta.creation_timestamp.as_ref().map(|t| t.0.as_nanosecond()).unwrap_or(i128::MIN)
}

/// `ReplicaSetsByCreationTimestamp`: older first, then by name.
fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> std::cmp::Ordering {
    creation_nanos(&a.metadata).cmp(&creation_nanos(&b.metadata)).then_with(|| name(&a.metadata).cmp(name(&b.metadata)))
}

fn rs_spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn revision_of(rs: &ReplicaSet) -> Option<i64> {
    match rs.metadata.annotations.as_ref().and_then(|a| a.get(REVISION_ANNOTATION)) {
        None => Some(0),
        Some(v) => v.parse().ok(),
    }
}

fn annotation_i32(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

/// A template as compared by `EqualIgnoreHash`: JSON without the hash
/// label, with empty lists and maps and nulls dropped (Go's semantic
/// equality counts nil and empty as equal).
fn comparable_template(t: &PodTemplateSpec) -> Value {
    let mut t = t.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    let mut v = serde_json::to_value(&t).unwrap_or(Value::Null);
    prune_empty(&mut v);
    v
}

fn prune_empty(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for child in map.values_mut() {
                prune_empty(child);
            }
            map.retain(|_, child| match child {
                Value::Null => false,
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                _ => true,
            });
        }
        Value::Array(items) => items.iter_mut().for_each(prune_empty),
        _ => {}
    }
}

impl<'a> Pass<'a> {
    fn run(&mut self) -> Result<(), Error> {
        if being_deleted(&self.d.metadata) {
            let (new, olds) = self.get_all_and_sync_revision(false).unwrap_or((None, Vec::new()));
            let all = with_new(&olds, new);
            self.sync_status(&all, new);
            return Ok(());
        }
        self.check_paused_conditions();
        if self.paused {
            return self.sync();
        }
        if self.is_scaling_event() {
            return self.sync();
        }
        match self.strategy {
            Strategy::Recreate => self.rollout_recreate(),
            Strategy::RollingUpdate { .. } => self.rollout_rolling(),
        }
    }

    // --- accessors -------------------------------------------------------

    pub(crate) fn rs_name(&self, i: usize) -> &str {
        name(&self.rss[i].cur.metadata)
    }

    pub(crate) fn rs_replicas(&self, i: usize) -> i32 {
        rs_spec_replicas(&self.rss[i].cur)
    }

    fn rs_status(&self, i: usize) -> Option<&k8s_openapi::api::apps::v1::ReplicaSetStatus> {
        self.rss[i].cur.status.as_ref()
    }

    pub(crate) fn rs_status_replicas(&self, i: usize) -> i32 {
        self.rs_status(i).map(|s| s.replicas).unwrap_or(0)
    }

    pub(crate) fn rs_available(&self, i: usize) -> i32 {
        self.rs_status(i).and_then(|s| s.available_replicas).unwrap_or(0)
    }

    pub(crate) fn rs_ready(&self, i: usize) -> i32 {
        self.rs_status(i).and_then(|s| s.ready_replicas).unwrap_or(0)
    }

    pub(crate) fn all_indices(&self) -> Vec<usize> {
        (0..self.rss.len()).collect()
    }

    fn active(&self, idx: &[usize]) -> Vec<usize> {
        idx.iter().copied().filter(|i| self.rs_replicas(*i) > 0).collect()
    }

    fn replica_sum(&self, idx: &[usize]) -> i32 {
        idx.iter().map(|i| self.rs_replicas(*i)).sum()
    }

    fn is_rolling(&self) -> bool {
        matches!(self.strategy, Strategy::RollingUpdate { .. })
    }

    pub(crate) fn has_progress_deadline(&self) -> bool {
        self.progress_deadline_seconds.is_some_and(|s| s != i32::MAX)
    }

    /// `ResolveFenceposts`: surge rounds up, unavailability down, and both
    /// zero means one may be unavailable.
    fn fenceposts(&self) -> (i32, i32) {
        match &self.strategy {
            Strategy::Recreate => (0, 0),
            Strategy::RollingUpdate { max_surge, max_unavailable } => {
                // Validated in `check_strategy` before any use.
                let surge = scaled_value(max_surge, self.replicas, true).unwrap_or(0);
                let unavailable = scaled_value(max_unavailable, self.replicas, false).unwrap_or(0);
                if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) }
            }
        }
    }

    fn check_strategy(&self) -> Result<(), Error> {
        if let Strategy::RollingUpdate { max_surge, max_unavailable } = &self.strategy {
            scaled_value(max_surge, self.replicas, true)?;
            scaled_value(max_unavailable, self.replicas, false)?;
        }
        Ok(())
    }

    fn max_surge(&self) -> i32 {
        self.fenceposts().0
    }

    pub(crate) fn max_unavailable(&self) -> i32 {
        if !self.is_rolling() || self.replicas == 0 {
            return 0;
        }
        self.fenceposts().1.min(self.replicas)
    }

    // --- finding and syncing ReplicaSets ---------------------------------

    fn find_new(&self) -> Option<usize> {
        let want = comparable_template(&self.template);
        (0..self.rss.len()).find(|&i| {
            self.rss[i]
                .cur
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| comparable_template(t) == want)
        })
    }

    /// `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created if
    /// asked and missing) with its revision and annotations synced, and the
    /// old ones.
    fn get_all_and_sync_revision(&mut self, create: bool) -> Result<(Option<usize>, Vec<usize>), Stop> {
        let existing = self.find_new();
        let olds: Vec<usize> = (0..self.rss.len()).filter(|i| Some(*i) != existing).collect();
        let max_old = olds.iter().filter_map(|i| revision_of(&self.rss[*i].cur)).max().unwrap_or(0);
        let new_revision = max_old + 1;

        if let Some(i) = existing {
            let d_annotations = self.d.metadata.annotations.clone();
            let min_ready = self.min_ready_seconds;
            let rs = &mut self.rss[i].cur;
            set_new_rs_annotations(d_annotations.as_ref(), rs, new_revision, None);
            if let Some(spec) = rs.spec.as_mut() {
                if spec.min_ready_seconds.unwrap_or(0) != min_ready {
                    spec.min_ready_seconds = Some(min_ready);
                }
            }
            self.revision = rs.metadata.annotations.as_ref().and_then(|a| a.get(REVISION_ANNOTATION)).cloned();
            if self.has_progress_deadline() && get_condition(&self.status, PROGRESSING).is_none() {
                let msg = format!("Found new replica set \"{}\"", self.rs_name(i));
                set_condition(&mut self.status, new_condition(PROGRESSING, "True", FOUND_NEW_RS_REASON, msg, self.now));
            }
            return Ok((Some(i), olds));
        }
        if !create {
            return Ok((None, olds));
        }

        let hash = pod_template_hash(&self.template, self.status.collision_count);
        let rs_name = format!("{}-{hash}", self.name);
        if self.namespace_rs_names.contains(&rs_name) {
            // Another ReplicaSet has the name but not our template: bump
            // collisionCount so the next pass hashes differently.
            *self.status.collision_count.get_or_insert(0) += 1;
            self.requeue_after = Some(std::time::Duration::ZERO);
            return Err(Stop);
        }
        let mut template = self.template.clone();
        let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
        meta.labels.get_or_insert_with(BTreeMap::new).insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        let labels = meta.labels.clone();
        let mut selector = self.selector.clone();
        selector.match_labels.get_or_insert_with(BTreeMap::new).insert(POD_TEMPLATE_HASH_LABEL.into(), hash);
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(rs_name.clone()),
                namespace: self.d.metadata.namespace.clone(),
                owner_references: Some(vec![new_controller_ref(&self.d.metadata, "apps/v1", "Deployment")]),
                labels,
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(self.min_ready_seconds),
                selector,
                template: Some(template),
            }),
            status: None,
        };
        self.rss.push(Wrs { orig: None, cur: rs });
        let i = self.rss.len() - 1;
        let all = with_new(&olds, Some(i));
        let replicas = self.new_rs_new_replicas(&all, i);
        let max_replicas = self.replicas + self.max_surge();
        let d_annotations = self.d.metadata.annotations.clone();
        let rs = &mut self.rss[i].cur;
        if let Some(spec) = rs.spec.as_mut() {
            spec.replicas = Some(replicas);
        }
        set_new_rs_annotations(d_annotations.as_ref(), rs, new_revision, Some((self.replicas, max_replicas)));
        self.revision = Some(new_revision.to_string());
        if self.has_progress_deadline() {
            let msg = format!("Created new replica set \"{rs_name}\"");
            set_condition(&mut self.status, new_condition(PROGRESSING, "True", NEW_RS_CREATED_REASON, msg, self.now));
        }
        Ok((Some(i), olds))
    }

    /// `NewRSNewReplicas`: how big the new ReplicaSet may be now.
    fn new_rs_new_replicas(&self, all: &[usize], new: usize) -> i32 {
        match &self.strategy {
            Strategy::Recreate => self.replicas,
            Strategy::RollingUpdate { max_surge, .. } => {
                let surge = scaled_value(max_surge, self.replicas, true).unwrap_or(0);
                let current = self.replica_sum(all);
                let max_total = self.replicas + surge;
                let new_replicas = self.rs_replicas(new);
                if current >= max_total {
                    return new_replicas;
                }
                new_replicas + (max_total - current).min(self.replicas - new_replicas)
            }
        }
    }

    // --- scaling ----------------------------------------------------------

    /// `scaleReplicaSet`: the new size plus up-to-date desired/max
    /// annotations.
    fn scale_rs(&mut self, i: usize, size: i32) {
        let desired = self.replicas;
        let max = self.replicas + self.max_surge();
        let rs = &mut self.rss[i].cur;
        if let Some(spec) = rs.spec.as_mut() {
            spec.replicas = Some(size);
        }
        set_replicas_annotations(rs, desired, max);
    }

    /// `scaleReplicaSetAndRecordEvent`: only if the size changes.
    fn scale_if_needed(&mut self, i: usize, size: i32) -> bool {
        if self.rs_replicas(i) == size {
            return false;
        }
        self.scale_rs(i, size);
        true
    }

    /// `isScalingEvent`: an active ReplicaSet was sized for a different
    /// replica count than the Deployment now asks for.
    fn is_scaling_event(&mut self) -> bool {
        let Ok((new, olds)) = self.get_all_and_sync_revision(false) else { return false };
        let all = with_new(&olds, new);
        self.active(&all).into_iter().any(|i| {
            annotation_i32(&self.rss[i].cur, DESIRED_REPLICAS_ANNOTATION)
                .is_some_and(|desired| desired != self.replicas)
        })
    }

    /// `FindActiveOrLatest`: the only active ReplicaSet, or with none active
    /// the new one or else the newest old one.
    fn find_active_or_latest(&self, new: Option<usize>, olds: &[usize]) -> Option<usize> {
        if new.is_none() && olds.is_empty() {
            return None;
        }
        let mut newest_first = olds.to_vec();
        newest_first.sort_by(|a, b| by_creation(&self.rss[*b].cur, &self.rss[*a].cur));
        let active = self.active(&with_new(&newest_first, new));
        match active.len() {
            0 => new.or(newest_first.first().copied()),
            1 => Some(active[0]),
            _ => None,
        }
    }

    /// `IsSaturated`: the new ReplicaSet is fully sized and available.
    fn is_saturated(&self, new: Option<usize>) -> bool {
        let Some(i) = new else { return false };
        let desired = annotation_i32(&self.rss[i].cur, DESIRED_REPLICAS_ANNOTATION);
        self.rs_replicas(i) == self.replicas && desired == Some(self.replicas) && self.rs_available(i) == self.replicas
    }

    /// `scale`: resizing a Deployment spreads the change over its active
    /// ReplicaSets in proportion to their size (bigger first), so a rollout
    /// in progress neither speeds up nor loses availability.
    fn scale(&mut self, new: Option<usize>, olds: &[usize]) {
        if let Some(i) = self.find_active_or_latest(new, olds) {
            if self.rs_replicas(i) != self.replicas {
                self.scale_if_needed(i, self.replicas);
            }
            return;
        }
        if self.is_saturated(new) {
            for old in self.active(olds) {
                self.scale_if_needed(old, 0);
            }
            return;
        }
        if !self.is_rolling() {
            return;
        }
        let mut all = self.active(&with_new(olds, new));
        let all_replicas = self.replica_sum(&all);
        let allowed = if self.replicas > 0 { self.replicas + self.max_surge() } else { 0 };
        let to_add = allowed - all_replicas;
        if to_add != 0 {
            all.sort_by(|&a, &b| {
                let by_size = self.rs_replicas(b).cmp(&self.rs_replicas(a));
                let (ra, rb) = (&self.rss[a].cur, &self.rss[b].cur);
                // Same size: newer first when growing, older first when shrinking.
                by_size.then_with(|| if to_add > 0 { by_creation(rb, ra) } else { by_creation(ra, rb) })
            });
        }
        let mut added = 0;
        let mut sizes: Vec<i32> = Vec::with_capacity(all.len());
        for &i in &all {
            if to_add != 0 {
                let p = self.proportion(i, to_add, added);
                sizes.push(self.rs_replicas(i) + p);
                added += p;
            } else {
                sizes.push(self.rs_replicas(i));
            }
        }
        for (k, &i) in all.iter().enumerate() {
            if k == 0 && to_add != 0 {
                // The leftover from rounding goes to the biggest one.
                sizes[0] = (sizes[0] + to_add - added).max(0);
            }
            self.scale_rs(i, sizes[k]);
        }
    }

    /// `GetProportion`.
    fn proportion(&self, i: usize, to_add: i32, added: i32) -> i32 {
        let size = self.rs_replicas(i);
        if size == 0 || to_add == 0 || to_add == added {
            return 0;
        }
        let fraction = self.fraction(i);
        let allowed = to_add - added;
        if to_add > 0 { fraction.min(allowed) } else { fraction.max(allowed) }
    }

    /// `getReplicaSetFraction`: the ReplicaSet's share of the new size,
    /// relative to the size it was last given (max-replicas annotation).
    fn fraction(&self, i: usize) -> i32 {
        let size = self.rs_replicas(i);
        if self.replicas == 0 {
            return -size;
        }
        let deployment_replicas = i64::from(self.replicas + self.max_surge());
        let annotated = annotation_i32(&self.rss[i].cur, MAX_REPLICAS_ANNOTATION)
            .unwrap_or_else(|| self.status.replicas.unwrap_or(0));
        if annotated <= 0 {
            return 0;
        }
        let new_size = (i64::from(size) * deployment_replicas) as f64 / f64::from(annotated);
        (new_size + 0.5).floor() as i32 - size
    }

    // --- strategies ---------------------------------------------------------

    /// `sync`: scaling and (paused) cleanup, no rollout progress.
    fn sync(&mut self) -> Result<(), Error> {
        self.check_strategy()?;
        let (new, olds) = match self.get_all_and_sync_revision(false) {
            Ok(x) => x,
            Err(Stop) => return Ok(()),
        };
        self.scale(new, &olds);
        if self.paused {
            self.cleanup(&olds);
        }
        let all = with_new(&olds, new);
        self.sync_status(&all, new);
        Ok(())
    }

    fn rollout_rolling(&mut self) -> Result<(), Error> {
        self.check_strategy()?;
        let Ok((new, olds)) = self.get_all_and_sync_revision(true) else { return Ok(()) };
        let Some(new) = new else { return Ok(()) };
        let all = with_new(&olds, Some(new));

        if self.reconcile_new_rs(&all, new) {
            self.sync_rollout_status(&all, Some(new));
            return Ok(());
        }
        let active_olds = self.active(&olds);
        if self.reconcile_old_rss(&active_olds, new) {
            self.sync_rollout_status(&all, Some(new));
            return Ok(());
        }
        if deployment_complete(self.replicas, self.generation, &self.status) {
            self.cleanup(&olds);
        }
        self.sync_rollout_status(&all, Some(new));
        Ok(())
    }

    /// `reconcileNewReplicaSet`: grow the new ReplicaSet within maxSurge
    /// (or shrink it if it is bigger than the Deployment).
    fn reconcile_new_rs(&mut self, all: &[usize], new: usize) -> bool {
        let size = self.rs_replicas(new);
        if size == self.replicas {
            return false;
        }
        if size > self.replicas {
            return self.scale_if_needed(new, self.replicas);
        }
        let target = self.new_rs_new_replicas(all, new);
        self.scale_if_needed(new, target)
    }

    /// `reconcileOldReplicaSets`: shrink old ReplicaSets as far as the
    /// unavailability budget allows, unhealthy replicas first.
    fn reconcile_old_rss(&mut self, active_olds: &[usize], new: usize) -> bool {
        if self.replica_sum(active_olds) == 0 {
            return false;
        }
        let all = with_new(active_olds, Some(new));
        let all_pods = self.replica_sum(&all);
        let min_available = self.replicas - self.max_unavailable();
        let new_unavailable = self.rs_replicas(new) - self.rs_available(new);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        let mut olds = active_olds.to_vec();
        olds.sort_by(|a, b| by_creation(&self.rss[*a].cur, &self.rss[*b].cur));
        let Some(cleaned) = self.cleanup_unhealthy(&olds, max_scaled_down) else { return false };
        let scaled = self.scale_down_olds_for_rolling(&olds, new);
        cleaned + scaled > 0
    }

    /// `cleanupUnhealthyReplicas`: unavailable old replicas cost nothing to
    /// remove. `None` where kube's sanity check fails (a ReplicaSet
    /// reporting more available replicas than it has).
    fn cleanup_unhealthy(&mut self, olds: &[usize], max_cleanup: i32) -> Option<i32> {
        let mut total = 0;
        for &i in olds {
            if total >= max_cleanup {
                break;
            }
            let size = self.rs_replicas(i);
            let available = self.rs_available(i);
            if size == 0 || size == available {
                continue;
            }
            let count = (max_cleanup - total).min(size - available);
            if count < 0 {
                return None;
            }
            self.scale_if_needed(i, size - count);
            total += count;
        }
        Some(total)
    }

    /// `scaleDownOldReplicaSetsForRollingUpdate`: shrink the oldest first,
    /// keeping at least replicas - maxUnavailable available.
    fn scale_down_olds_for_rolling(&mut self, olds: &[usize], new: usize) -> i32 {
        let min_available = self.replicas - self.max_unavailable();
        let available: i32 = with_new(olds, Some(new)).iter().map(|i| self.rs_available(*i)).sum();
        if available <= min_available {
            return 0;
        }
        let budget = available - min_available;
        let mut total = 0;
        for &i in olds {
            if total >= budget {
                break;
            }
            let size = self.rs_replicas(i);
            if size == 0 {
                continue;
            }
            let count = size.min(budget - total);
            self.scale_if_needed(i, size - count);
            total += count;
        }
        total
    }

    fn rollout_recreate(&mut self) -> Result<(), Error> {
        let Ok((mut new, mut olds)) = self.get_all_and_sync_revision(false) else { return Ok(()) };
        let mut all = with_new(&olds, new);

        let mut scaled_down = false;
        for i in self.active(&olds) {
            scaled_down |= self.scale_if_needed(i, 0);
        }
        if scaled_down {
            self.sync_rollout_status(&all, new);
            return Ok(());
        }
        if self.old_pods_running(new, &olds) {
            self.sync_rollout_status(&all, new);
            return Ok(());
        }
        if new.is_none() {
            let Ok((n, o)) = self.get_all_and_sync_revision(true) else { return Ok(()) };
            new = n;
            olds = o;
            all = with_new(&olds, new);
        }
        if let Some(i) = new {
            self.scale_if_needed(i, self.replicas);
        }
        if deployment_complete(self.replicas, self.generation, &self.status) {
            self.cleanup(&olds);
        }
        self.sync_rollout_status(&all, new);
        Ok(())
    }

    /// `oldPodsRunning`: old ReplicaSets report pods, or any pod of theirs
    /// is not terminal (pods being deleted count: Recreate waits for them).
    fn old_pods_running(&self, new: Option<usize>, olds: &[usize]) -> bool {
        if olds.iter().map(|i| self.rs_status_replicas(*i)).sum::<i32>() > 0 {
            return true;
        }
        self.pods_by_rs.iter().filter(|(i, _)| Some(**i) != new).flat_map(|(_, pods)| pods.iter()).any(|p| {
            let phase = super::util::pod_phase(p);
            phase != "Failed" && phase != "Succeeded"
        })
    }

    /// `cleanupDeployment`: delete the oldest old ReplicaSets beyond
    /// revisionHistoryLimit, if they are scaled to zero and settled.
    fn cleanup(&mut self, olds: &[usize]) {
        let Some(limit) = self.revision_history_limit.filter(|l| *l != i32::MAX) else { return };
        // Decided on the snapshot: a ReplicaSet scaled down in this pass
        // is not settled yet.
        let mut cleanable: Vec<&ReplicaSet> =
            olds.iter().filter_map(|i| self.rss[*i].orig.as_ref()).filter(|rs| !being_deleted(&rs.metadata)).collect();
        let diff = i64::try_from(cleanable.len()).unwrap_or(i64::MAX) - i64::from(limit);
        if diff <= 0 {
            return;
        }
        cleanable.sort_by(|a, b| {
            revision_of(a).unwrap_or(0).cmp(&revision_of(b).unwrap_or(0)).then_with(|| by_creation(a, b))
        });
        for rs in cleanable.into_iter().take(usize::try_from(diff).unwrap_or(0)) {
            let status = rs.status.clone().unwrap_or_default();
            let settled = status.replicas == 0
                && rs_spec_replicas(rs) == 0
                && rs.metadata.generation.unwrap_or(0) <= status.observed_generation.unwrap_or(0);
            if settled {
                self.delete_rs.push(name(&rs.metadata).to_string());
            }
        }
    }
}

fn with_new(olds: &[usize], new: Option<usize>) -> Vec<usize> {
    olds.iter().copied().chain(new).collect()
}

/// `SetNewReplicaSetAnnotations`: copy the Deployment's annotations, raise
/// the revision (remembering the previous one), and for a ReplicaSet being
/// created set the desired/max replicas.
fn set_new_rs_annotations(
    d_annotations: Option<&BTreeMap<String, String>>,
    rs: &mut ReplicaSet,
    new_revision: i64,
    replicas: Option<(i32, i32)>,
) {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in d_annotations.into_iter().flatten() {
        if !ANNOTATIONS_TO_SKIP.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    let old = annotations.get(REVISION_ANNOTATION).cloned();
    let old_int = match old.as_deref() {
        None | Some("") => 0,
        Some(v) => match v.parse::<i64>() {
            Ok(n) => n,
            // kube leaves a ReplicaSet with a garbled revision alone.
            Err(_) => return,
        },
    };
    if old_int < new_revision {
        annotations.insert(REVISION_ANNOTATION.into(), new_revision.to_string());
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = annotations.get(REVISION_HISTORY_ANNOTATION).cloned().unwrap_or_default();
            if history.is_empty() {
                annotations.insert(REVISION_HISTORY_ANNOTATION.into(), old);
            } else {
                let mut parts: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REV_HISTORY_LENGTH_IN_CHARS && start < parts.len() {
                    total -= parts[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REV_HISTORY_LENGTH_IN_CHARS {
                    parts = parts.split_off(start);
                    parts.push(&old);
                    let joined = parts.join(",");
                    annotations.insert(REVISION_HISTORY_ANNOTATION.into(), joined);
                }
            }
        }
    }
    if let Some((desired, max)) = replicas {
        set_replicas_annotations(rs, desired, max);
    }
}

fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(DESIRED_REPLICAS_ANNOTATION.into(), desired.to_string());
    annotations.insert(MAX_REPLICAS_ANNOTATION.into(), max.to_string());
}
