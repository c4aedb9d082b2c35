//! Message tables of `k8s.io/api/apps/v1`: Deployment, ReplicaSet,
//! StatefulSet and ControllerRevision.
//!
//! Field numbers and Go field shapes come from the struct tags in
//! `k8s.io/api/apps/v1/types.go`, in Go struct order.

use super::core::{PERSISTENT_VOLUME_CLAIM, POD_TEMPLATE_SPEC};
use super::message::*;
use super::meta::{LABEL_SELECTOR, OBJECT_META};

pub(super) static DEPLOYMENT: Message = Message::new("apps.v1.Deployment", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "spec", value(msg(&DEPLOYMENT_SPEC))),
    (3, "status", value(msg(&DEPLOYMENT_STATUS))),
]);

pub(super) static DEPLOYMENT_SPEC: Message = Message::new("apps.v1.DeploymentSpec", &[
    (1, "replicas", ptr(INT32)),
    (2, "selector", ptr_or_null(msg(&LABEL_SELECTOR))),
    (3, "template", value(msg(&POD_TEMPLATE_SPEC))),
    (4, "strategy", value(msg(&DEPLOYMENT_STRATEGY))),
    (5, "minReadySeconds", value(INT32)),
    (6, "revisionHistoryLimit", ptr(INT32)),
    (7, "paused", value(BOOL)),
    (9, "progressDeadlineSeconds", ptr(INT32)),
]);

pub(super) static DEPLOYMENT_STRATEGY: Message = Message::new("apps.v1.DeploymentStrategy", &[
    (1, "type", value(STRING)),
    (2, "rollingUpdate", ptr(msg(&ROLLING_UPDATE_DEPLOYMENT))),
]);

pub(super) static ROLLING_UPDATE_DEPLOYMENT: Message = Message::new("apps.v1.RollingUpdateDeployment", &[
    (1, "maxUnavailable", ptr(INT_OR_STRING)),
    (2, "maxSurge", ptr(INT_OR_STRING)),
]);

pub(super) static DEPLOYMENT_STATUS: Message = Message::new("apps.v1.DeploymentStatus", &[
    (1, "observedGeneration", value(INT64)),
    (2, "replicas", value(INT32)),
    (3, "updatedReplicas", value(INT32)),
    (7, "readyReplicas", value(INT32)),
    (4, "availableReplicas", value(INT32)),
    (5, "unavailableReplicas", value(INT32)),
    (9, "terminatingReplicas", ptr(INT32)),
    (6, "conditions", list(msg(&DEPLOYMENT_CONDITION))),
    (8, "collisionCount", ptr(INT32)),
]);

pub(super) static DEPLOYMENT_CONDITION: Message = Message::new("apps.v1.DeploymentCondition", &[
    (1, "type", always(STRING)),
    (2, "status", always(STRING)),
    (6, "lastUpdateTime", value(TIME)),
    (7, "lastTransitionTime", value(TIME)),
    (4, "reason", value(STRING)),
    (5, "message", value(STRING)),
]);

pub(super) static REPLICA_SET: Message = Message::new("apps.v1.ReplicaSet", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "spec", value(msg(&REPLICA_SET_SPEC))),
    (3, "status", value(msg(&REPLICA_SET_STATUS))),
]);

pub(super) static REPLICA_SET_SPEC: Message = Message::new("apps.v1.ReplicaSetSpec", &[
    (1, "replicas", ptr(INT32)),
    (4, "minReadySeconds", value(INT32)),
    (2, "selector", ptr_or_null(msg(&LABEL_SELECTOR))),
    (3, "template", value(msg(&POD_TEMPLATE_SPEC))),
]);

pub(super) static REPLICA_SET_STATUS: Message = Message::new("apps.v1.ReplicaSetStatus", &[
    (1, "replicas", always(INT32)),
    (2, "fullyLabeledReplicas", value(INT32)),
    (4, "readyReplicas", value(INT32)),
    (5, "availableReplicas", value(INT32)),
    (7, "terminatingReplicas", ptr(INT32)),
    (3, "observedGeneration", value(INT64)),
    (6, "conditions", list(msg(&REPLICA_SET_CONDITION))),
]);

pub(super) static REPLICA_SET_CONDITION: Message = Message::new("apps.v1.ReplicaSetCondition", &[
    (1, "type", always(STRING)),
    (2, "status", always(STRING)),
    (3, "lastTransitionTime", value(TIME)),
    (4, "reason", value(STRING)),
    (5, "message", value(STRING)),
]);

pub(super) static STATEFUL_SET: Message = Message::new("apps.v1.StatefulSet", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "spec", value(msg(&STATEFUL_SET_SPEC))),
    (3, "status", value(msg(&STATEFUL_SET_STATUS))),
]);

pub(super) static STATEFUL_SET_SPEC: Message = Message::new("apps.v1.StatefulSetSpec", &[
    (1, "replicas", ptr(INT32)),
    (2, "selector", ptr_or_null(msg(&LABEL_SELECTOR))),
    (3, "template", value(msg(&POD_TEMPLATE_SPEC))),
    (4, "volumeClaimTemplates", list(msg(&PERSISTENT_VOLUME_CLAIM))),
    (5, "serviceName", value(STRING)),
    (6, "podManagementPolicy", value(STRING)),
    (7, "updateStrategy", value(msg(&STATEFUL_SET_UPDATE_STRATEGY))),
    (8, "revisionHistoryLimit", ptr(INT32)),
    (9, "minReadySeconds", value(INT32)),
    (10, "persistentVolumeClaimRetentionPolicy", ptr(msg(&STATEFUL_SET_PVC_RETENTION_POLICY))),
    (11, "ordinals", ptr(msg(&STATEFUL_SET_ORDINALS))),
]);

pub(super) static STATEFUL_SET_UPDATE_STRATEGY: Message = Message::new("apps.v1.StatefulSetUpdateStrategy", &[
    (1, "type", value(STRING)),
    (2, "rollingUpdate", ptr(msg(&ROLLING_UPDATE_STATEFUL_SET_STRATEGY))),
]);

pub(super) static ROLLING_UPDATE_STATEFUL_SET_STRATEGY: Message =
    Message::new("apps.v1.RollingUpdateStatefulSetStrategy", &[
        (1, "partition", ptr(INT32)),
        (2, "maxUnavailable", ptr(INT_OR_STRING)),
    ]);

pub(super) static STATEFUL_SET_PVC_RETENTION_POLICY: Message =
    Message::new("apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicy", &[
        (1, "whenDeleted", value(STRING)),
        (2, "whenScaled", value(STRING)),
    ]);

pub(super) static STATEFUL_SET_ORDINALS: Message =
    Message::new("apps.v1.StatefulSetOrdinals", &[(1, "start", always(INT32))]);

pub(super) static STATEFUL_SET_STATUS: Message = Message::new("apps.v1.StatefulSetStatus", &[
    (1, "observedGeneration", value(INT64)),
    (2, "replicas", always(INT32)),
    (3, "readyReplicas", value(INT32)),
    (4, "currentReplicas", value(INT32)),
    (5, "updatedReplicas", value(INT32)),
    (6, "currentRevision", value(STRING)),
    (7, "updateRevision", value(STRING)),
    (9, "collisionCount", ptr(INT32)),
    (10, "conditions", list(msg(&STATEFUL_SET_CONDITION))),
    (11, "availableReplicas", always(INT32)),
]);

pub(super) static STATEFUL_SET_CONDITION: Message = Message::new("apps.v1.StatefulSetCondition", &[
    (1, "type", always(STRING)),
    (2, "status", always(STRING)),
    (3, "lastTransitionTime", value(TIME)),
    (4, "reason", value(STRING)),
    (5, "message", value(STRING)),
]);

pub(super) static CONTROLLER_REVISION: Message = Message::new("apps.v1.ControllerRevision", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "data", value(RAW_EXTENSION)),
    (3, "revision", always(INT64)),
]);

pub(super) static DAEMON_SET: Message = Message::new("apps.v1.DaemonSet", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "spec", value(msg(&DAEMON_SET_SPEC))),
    (3, "status", value(msg(&DAEMON_SET_STATUS))),
]);

pub(super) static DAEMON_SET_SPEC: Message = Message::new("apps.v1.DaemonSetSpec", &[
    (1, "selector", ptr_or_null(msg(&LABEL_SELECTOR))),
    (2, "template", value(msg(&POD_TEMPLATE_SPEC))),
    (3, "updateStrategy", value(msg(&DAEMON_SET_UPDATE_STRATEGY))),
    (4, "minReadySeconds", value(INT32)),
    (6, "revisionHistoryLimit", ptr(INT32)),
]);

pub(super) static DAEMON_SET_UPDATE_STRATEGY: Message = Message::new("apps.v1.DaemonSetUpdateStrategy", &[
    (1, "type", value(STRING)),
    (2, "rollingUpdate", ptr(msg(&ROLLING_UPDATE_DAEMON_SET))),
]);

pub(super) static ROLLING_UPDATE_DAEMON_SET: Message = Message::new("apps.v1.RollingUpdateDaemonSet", &[
    (1, "maxUnavailable", ptr(INT_OR_STRING)),
    (2, "maxSurge", ptr(INT_OR_STRING)),
]);

pub(super) static DAEMON_SET_STATUS: Message = Message::new("apps.v1.DaemonSetStatus", &[
    (1, "currentNumberScheduled", always(INT32)),
    (2, "numberMisscheduled", always(INT32)),
    (3, "desiredNumberScheduled", always(INT32)),
    (4, "numberReady", always(INT32)),
    (5, "observedGeneration", value(INT64)),
    (6, "updatedNumberScheduled", value(INT32)),
    (7, "numberAvailable", value(INT32)),
    (8, "numberUnavailable", value(INT32)),
    (9, "collisionCount", ptr(INT32)),
    (10, "conditions", list(msg(&DAEMON_SET_CONDITION))),
]);

pub(super) static DAEMON_SET_CONDITION: Message = Message::new("apps.v1.DaemonSetCondition", &[
    (1, "type", always(STRING)),
    (2, "status", always(STRING)),
    (3, "lastTransitionTime", value(TIME)),
    (4, "reason", value(STRING)),
    (5, "message", value(STRING)),
]);
