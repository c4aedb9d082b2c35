//! The Deployment and ReplicaSet controllers' decisions, as pure functions
//! over typed snapshots (sans-IO): given the objects a controller would read
//! from its informers and the current time, they return the writes it would
//! make. The runtime that feeds them from watches and applies their output
//! comes separately.
//!
//! Start at [`reconcile_deployment`] (pkg/controller/deployment: `sync.go`,
//! `rolling.go`, `recreate.go`, `progress.go`) and [`reconcile_replicaset`]
//! (pkg/controller/replicaset). [`rollout_status`] is `kubectl rollout
//! status`'s verdict on a Deployment.
//!
//! Each pass mirrors one `syncDeployment`: kube makes its writes one after
//! another inside a sync, each seeing the previous ones' results; here they
//! are made on working copies and returned together, so applying a pass's
//! actions gives the state kube would reach at the end of its sync.
//! Differences from Kubernetes:
//! - the pod-template-hash is FNV-32a over canonical JSON, not over a
//!   go-spew dump (see [`pod_template_hash`]): same shape and alphabet,
//!   different values;
//! - a pass that would update a ReplicaSet's annotations also finishes the
//!   rest of the sync (kube returns after that update and finishes on the
//!   next sync);
//! - rollbacks through the deprecated `deprecated.deployment.rollback.to`
//!   annotation are not implemented (`kubectl rollout undo` edits the
//!   template instead, which is handled);
//! - template equality is structural equality of the templates' JSON with
//!   the hash label ignored and nulls, empty lists and empty objects
//!   counting as absent (kube's semantic equality treats nil and empty
//!   slices and maps alike, but not a nil and an empty struct, and it also
//!   equates quantities written differently, `1000m` and `1`); this relies
//!   on the API server defaulting Deployment and ReplicaSet pod templates
//!   identically, as kube-apiserver does;
//! - fields a defaulted Deployment always has (replicas, strategy,
//!   revisionHistoryLimit, progressDeadlineSeconds) get the API defaults if
//!   missing, instead of crashing or meaning "none".

mod hash;
mod progress;
mod replicaset;
mod rollout;
mod util;

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;

pub use hash::{pod_template_hash, safe_encode_string};
pub use replicaset::{
    BURST_REPLICAS, POD_DELETION_COST_ANNOTATION, PodRef, ReplicaSetActions, rank_pods_for_deletion,
    reconcile_replicaset, replica_failure_status, replicaset_controller_ref,
};

/// The label the Deployment controller adds to its ReplicaSets' selector,
/// template and labels.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// The rollout revision, on the Deployment and on each of its ReplicaSets.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions a ReplicaSet had (when a rollback reused it).
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// The Deployment's replicas + maxSurge when the ReplicaSet was last scaled.
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// `kubectl ... --record`'s annotation, copied to ReplicaSets like every
/// other Deployment annotation.
pub const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";

/// Why a pass could not decide anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid label selector: {0}")]
    InvalidSelector(String),
    #[error("invalid int-or-percent value {0:?}: want an integer or a percentage such as \"25%\"")]
    InvalidIntOrPercent(String),
    #[error("{kind} {name:?} has no spec")]
    MissingSpec { kind: &'static str, name: String },
    #[error("deployment strategy type {0:?} isn't supported")]
    UnsupportedStrategy(String),
}

/// What one pass of the Deployment controller wants written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentActions {
    /// Orphan ReplicaSets matching the selector: add the Deployment as
    /// their controller (ownerReference from [`deployment_controller_ref`]).
    pub adopt_rs: Vec<String>,
    /// Owned ReplicaSets that no longer match: drop the ownerReference.
    pub release_rs: Vec<String>,
    /// The new ReplicaSet to create (named `<deployment>-<hash>`). If the
    /// name is taken by a ReplicaSet the snapshot did not show, re-run the
    /// pass on a fresh snapshot.
    pub create_rs: Option<ReplicaSet>,
    /// `(ReplicaSet name, new spec.replicas)`, for every existing
    /// ReplicaSet whose size changes.
    pub scale: Vec<(String, i32)>,
    /// Existing ReplicaSets whose annotations or minReadySeconds change,
    /// as the full desired object (including any new size from `scale`),
    /// to be written with a PUT.
    pub update_rs: Vec<ReplicaSet>,
    /// ReplicaSets to delete (history beyond revisionHistoryLimit).
    pub delete_rs: Vec<String>,
    /// A new value for the Deployment's `deployment.kubernetes.io/revision`
    /// annotation (kube writes it with the status).
    pub set_revision: Option<String>,
    /// The Deployment's status after this pass.
    pub status: DeploymentStatus,
    /// Whether `status` differs from the Deployment's current status.
    pub status_changed: bool,
    /// Run again after this long even if nothing changes (to notice a
    /// rollout exceeding its progress deadline).
    pub requeue_after: Option<Duration>,
}

impl DeploymentActions {
    /// Nothing to write (a requeue is not a write).
    pub fn is_empty(&self) -> bool {
        self.adopt_rs.is_empty()
            && self.release_rs.is_empty()
            && self.create_rs.is_none()
            && self.scale.is_empty()
            && self.update_rs.is_empty()
            && self.delete_rs.is_empty()
            && self.set_revision.is_none()
            && !self.status_changed
    }
}

/// The ownerReference a Deployment puts on its ReplicaSets.
pub fn deployment_controller_ref(d: &Deployment) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
    util::new_controller_ref(&d.metadata, "apps/v1", "Deployment")
}

/// One pass of the Deployment controller. `replicasets` and `pods` are
/// every ReplicaSet and pod in the Deployment's namespace (others are
/// ignored); the pass claims the ones that are its own.
pub fn reconcile_deployment(
    d: &Deployment,
    replicasets: &[&ReplicaSet],
    pods: &[&Pod],
    now: Timestamp,
) -> Result<DeploymentActions, Error> {
    rollout::reconcile(d, replicasets, pods, now)
}

/// `kubectl rollout status`'s view of a Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutStatus {
    /// The controller has not observed the latest spec yet.
    WaitingForObservation,
    /// Progressing reports ProgressDeadlineExceeded.
    DeadlineExceeded,
    /// Fewer updated replicas than desired.
    UpdatingReplicas { updated: i32, desired: i32 },
    /// Old replicas still exist.
    OldReplicasPendingTermination { old: i32 },
    /// Updated replicas are not all available yet.
    WaitingForAvailability { available: i32, updated: i32 },
    /// Done.
    Complete,
}

impl std::fmt::Display for RolloutStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WaitingForObservation => write!(f, "Waiting for deployment spec update to be observed..."),
            Self::DeadlineExceeded => write!(f, "deployment exceeded its progress deadline"),
            Self::UpdatingReplicas { updated, desired } => {
                write!(f, "{updated} out of {desired} new replicas have been updated...")
            }
            Self::OldReplicasPendingTermination { old } => write!(f, "{old} old replicas are pending termination..."),
            Self::WaitingForAvailability { available, updated } => {
                write!(f, "{available} of {updated} updated replicas are available...")
            }
            Self::Complete => write!(f, "successfully rolled out"),
        }
    }
}

/// `kubectl rollout status`'s verdict (`DeploymentStatusViewer.Status`).
pub fn rollout_status(d: &Deployment) -> RolloutStatus {
    let status = d.status.clone().unwrap_or_default();
    if d.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return RolloutStatus::WaitingForObservation;
    }
    let timed_out = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some(progress::TIMED_OUT_REASON));
    if timed_out {
        return RolloutStatus::DeadlineExceeded;
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if let Some(desired) = d.spec.as_ref().and_then(|s| s.replicas) {
        if updated < desired {
            return RolloutStatus::UpdatingReplicas { updated, desired };
        }
    }
    if replicas > updated {
        return RolloutStatus::OldReplicasPendingTermination { old: replicas - updated };
    }
    if available < updated {
        return RolloutStatus::WaitingForAvailability { available, updated };
    }
    RolloutStatus::Complete
}

/// Whether `kubectl rollout status` would report success.
pub fn rollout_complete(d: &Deployment) -> bool {
    rollout_status(d) == RolloutStatus::Complete
}
