//! The Deployment's status and conditions (`progress.go`,
//! `calculateStatus` in `sync.go`, the condition helpers of
//! `deployment_util.go`).
//!
//! Condition timing follows kube: setting a condition with the same status
//! and reason keeps it untouched; a new reason with the same status keeps
//! lastTransitionTime; Progressing/ReplicaSetUpdated refreshes
//! lastUpdateTime every time progress is seen, and the progress deadline is
//! measured from that lastUpdateTime.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};

use super::rollout::Pass;
use super::util::{NANOS_PER_SECOND, nanos, omit_zero, omit_zero64, wire_time};

pub(crate) const AVAILABLE: &str = "Available";
pub(crate) const PROGRESSING: &str = "Progressing";
pub(crate) const REPLICA_FAILURE: &str = "ReplicaFailure";

pub(crate) const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
pub(crate) const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
pub(crate) const NEW_RS_CREATED_REASON: &str = "NewReplicaSetCreated";
pub(crate) const FOUND_NEW_RS_REASON: &str = "FoundNewReplicaSet";
pub(crate) const RS_UPDATED_REASON: &str = "ReplicaSetUpdated";
pub(crate) const NEW_RS_AVAILABLE_REASON: &str = "NewReplicaSetAvailable";
pub(crate) const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";
pub(crate) const PAUSED_REASON: &str = "DeploymentPaused";
pub(crate) const RESUMED_REASON: &str = "DeploymentResumed";

pub(crate) fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_update_time: Some(wire_time(now)),
        last_transition_time: Some(wire_time(now)),
    }
}

pub(crate) fn get_condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status.conditions.iter().flatten().find(|c| c.type_ == type_)
}

/// `SetDeploymentCondition`: unchanged if status and reason are the same;
/// otherwise replaced (moved to the end), keeping lastTransitionTime when
/// only the reason changed.
pub(crate) fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(current) = get_condition(status, &cond.type_) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &cond.type_);
    status.conditions.get_or_insert_with(Vec::new).push(cond);
}

pub(crate) fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conds) = status.conditions.as_mut() {
        conds.retain(|c| c.type_ != type_);
        if conds.is_empty() {
            status.conditions = None;
        }
    }
}

fn get(v: Option<i32>) -> i32 {
    v.unwrap_or(0)
}

/// `DeploymentComplete`: every replica updated and available, and the
/// latest generation observed.
pub(crate) fn deployment_complete(replicas: i32, generation: i64, status: &DeploymentStatus) -> bool {
    get(status.updated_replicas) == replicas
        && get(status.replicas) == replicas
        && get(status.available_replicas) == replicas
        && status.observed_generation.unwrap_or(0) >= generation
}

/// `DeploymentProgressing`: more updated, ready or available replicas than
/// before, or fewer old ones.
fn deployment_progressing(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let old_old = get(old.replicas) - get(old.updated_replicas);
    let new_old = get(new.replicas) - get(new.updated_replicas);
    get(new.updated_replicas) > get(old.updated_replicas)
        || new_old < old_old
        || get(new.ready_replicas) > get(old.ready_replicas)
        || get(new.available_replicas) > get(old.available_replicas)
}

impl Pass<'_> {
    /// `calculateStatus`: counts from the ReplicaSets' statuses, the
    /// Available condition, everything else carried over.
    pub(crate) fn calculate_status(&self, all: &[usize], new: Option<usize>) -> DeploymentStatus {
        let sum = |idx: &mut dyn Iterator<Item = usize>, f: &dyn Fn(usize) -> i32| idx.map(f).sum::<i32>();
        let available = sum(&mut all.iter().copied(), &|i| self.rs_available(i));
        let total = sum(&mut all.iter().copied(), &|i| self.rs_replicas(i));
        let unavailable = (total - available).max(0);
        let mut status = DeploymentStatus {
            observed_generation: omit_zero64(self.generation),
            replicas: omit_zero(sum(&mut all.iter().copied(), &|i| self.rs_status_replicas(i))),
            updated_replicas: omit_zero(sum(&mut new.into_iter(), &|i| self.rs_status_replicas(i))),
            ready_replicas: omit_zero(sum(&mut all.iter().copied(), &|i| self.rs_ready(i))),
            available_replicas: omit_zero(available),
            unavailable_replicas: omit_zero(unavailable),
            collision_count: self.status.collision_count,
            conditions: self.status.conditions.clone(),
            terminating_replicas: None,
        };
        let cond = if available >= self.replicas - self.max_unavailable() {
            new_condition(
                AVAILABLE,
                "True",
                MINIMUM_REPLICAS_AVAILABLE,
                "Deployment has minimum availability.".into(),
                self.now,
            )
        } else {
            new_condition(
                AVAILABLE,
                "False",
                MINIMUM_REPLICAS_UNAVAILABLE,
                "Deployment does not have minimum availability.".into(),
                self.now,
            )
        };
        set_condition(&mut status, cond);
        status
    }

    /// `syncDeploymentStatus`: the plain status, no progress estimate.
    pub(crate) fn sync_status(&mut self, all: &[usize], new: Option<usize>) {
        self.final_status = Some(self.calculate_status(all, new));
    }

    /// `syncRolloutStatus`: the status plus the Progressing and
    /// ReplicaFailure conditions, and when to look again for a stuck
    /// rollout.
    pub(crate) fn sync_rollout_status(&mut self, all: &[usize], new: Option<usize>) {
        let mut status = self.calculate_status(all, new);
        if !self.has_progress_deadline() {
            remove_condition(&mut status, PROGRESSING);
        }
        let current = get_condition(&self.status, PROGRESSING).cloned();
        let complete_before = get(status.replicas) == get(status.updated_replicas)
            && current.as_ref().is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE_REASON));
        let subject = match new {
            Some(i) => format!("ReplicaSet \"{}\"", self.rs_name(i)),
            None => format!("Deployment \"{}\"", self.name),
        };
        if self.has_progress_deadline() && !complete_before {
            if deployment_complete(self.replicas, self.generation, &status) {
                let msg = format!("{subject} has successfully progressed.");
                set_condition(&mut status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE_REASON, msg, self.now));
            } else if deployment_progressing(&self.status, &status) {
                let msg = format!("{subject} is progressing.");
                let mut cond = new_condition(PROGRESSING, "True", RS_UPDATED_REASON, msg, self.now);
                // Progress refreshes lastUpdateTime even with an unchanged
                // reason, which SetDeploymentCondition would not do.
                if let Some(current) = &current {
                    if current.status == "True" {
                        cond.last_transition_time = current.last_transition_time.clone();
                    }
                    remove_condition(&mut status, PROGRESSING);
                }
                set_condition(&mut status, cond);
            } else if self.timed_out(&status) {
                let msg = format!("{subject} has timed out progressing.");
                set_condition(&mut status, new_condition(PROGRESSING, "False", TIMED_OUT_REASON, msg, self.now));
            }
        }

        match self.replica_failure(new) {
            Some(cond) => set_condition(&mut status, cond),
            None => remove_condition(&mut status, REPLICA_FAILURE),
        }

        self.requeue_after = self.requeue_for_progress_check(&status);
        self.final_status = Some(status);
    }

    /// `DeploymentTimedOut`: no progress recorded for progressDeadlineSeconds.
    fn timed_out(&self, status: &DeploymentStatus) -> bool {
        let Some(cond) = get_condition(status, PROGRESSING) else { return false };
        match cond.reason.as_deref() {
            Some(NEW_RS_AVAILABLE_REASON) => false,
            Some(TIMED_OUT_REASON) => true,
            _ => match &cond.last_update_time {
                Some(from) => nanos(from.0) + self.deadline_nanos() < nanos(self.now),
                // A zero time plus the deadline is long past.
                None => true,
            },
        }
    }

    fn deadline_nanos(&self) -> i128 {
        i128::from(self.progress_deadline_seconds.unwrap_or(0)) * NANOS_PER_SECOND
    }

    /// `requeueStuckDeployment`: when the deadline would pass if nothing
    /// happens before.
    fn requeue_for_progress_check(&self, new_status: &DeploymentStatus) -> Option<Duration> {
        let current = get_condition(&self.status, PROGRESSING)?;
        if !self.has_progress_deadline()
            || deployment_complete(self.replicas, self.generation, new_status)
            || current.reason.as_deref() == Some(TIMED_OUT_REASON)
        {
            return None;
        }
        let from = current.last_update_time.as_ref().map(|t| nanos(t.0)).unwrap_or(0);
        let after = from + self.deadline_nanos() - nanos(self.now);
        if after < NANOS_PER_SECOND {
            return Some(Duration::ZERO);
        }
        // One more second against clock skew, as kube does.
        let after = u64::try_from(after + NANOS_PER_SECOND).unwrap_or(u64::MAX);
        Some(Duration::from_nanos(after))
    }

    /// `getReplicaFailures`: the new ReplicaSet's ReplicaFailure condition,
    /// else the first old one's.
    fn replica_failure(&self, new: Option<usize>) -> Option<DeploymentCondition> {
        let order = new.into_iter().chain(self.all_indices().into_iter().filter(|i| Some(*i) != new));
        for i in order {
            let rs = &self.rss[i].cur;
            for c in rs.status.iter().flat_map(|s| s.conditions.iter().flatten()) {
                if c.type_ == REPLICA_FAILURE {
                    return Some(DeploymentCondition {
                        type_: REPLICA_FAILURE.to_string(),
                        status: c.status.clone(),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                        last_update_time: c.last_transition_time.clone(),
                        last_transition_time: c.last_transition_time.clone(),
                    });
                }
            }
        }
        None
    }

    /// `checkPausedConditions`: Progressing/Unknown while paused and right
    /// after resuming, so the time spent paused does not count against
    /// the progress deadline.
    pub(crate) fn check_paused_conditions(&mut self) {
        if !self.has_progress_deadline() {
            return;
        }
        let cond = get_condition(&self.status, PROGRESSING);
        if cond.is_some_and(|c| c.reason.as_deref() == Some(TIMED_OUT_REASON)) {
            return;
        }
        let paused_cond = cond.is_some_and(|c| c.reason.as_deref() == Some(PAUSED_REASON));
        if self.paused && !paused_cond {
            let c = new_condition(PROGRESSING, "Unknown", PAUSED_REASON, "Deployment is paused".into(), self.now);
            set_condition(&mut self.status, c);
        } else if !self.paused && paused_cond {
            let c = new_condition(PROGRESSING, "Unknown", RESUMED_REASON, "Deployment is resumed".into(), self.now);
            set_condition(&mut self.status, c);
        }
    }
}
