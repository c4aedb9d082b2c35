//! Message tables of `k8s.io/apimachinery/pkg/apis/meta/v1`.
//!
//! Field numbers and Go field shapes come from the struct tags in
//! apimachinery's `pkg/apis/meta/v1/types.go` (the source of its
//! `generated.proto`). `Time`, `MicroTime`, `Duration` and `FieldsV1` have
//! hand-written JSON forms and are decoded as [`Ty`] built-ins instead.

use super::message::*;

pub(super) static LIST_META: Message = Message::new("meta.v1.ListMeta", &[
    (1, "selfLink", value(STRING)),
    (2, "resourceVersion", value(STRING)),
    (3, "continue", value(STRING)),
    (4, "remainingItemCount", ptr(INT64)),
]);

pub(super) static OBJECT_META: Message = Message::new("meta.v1.ObjectMeta", &[
    (1, "name", value(STRING)),
    (2, "generateName", value(STRING)),
    (3, "namespace", value(STRING)),
    (4, "selfLink", value(STRING)),
    (5, "uid", value(STRING)),
    (6, "resourceVersion", value(STRING)),
    (7, "generation", value(INT64)),
    (8, "creationTimestamp", value(TIME)),
    (9, "deletionTimestamp", ptr(TIME)),
    (10, "deletionGracePeriodSeconds", ptr(INT64)),
    (11, "labels", map(STRING)),
    (12, "annotations", map(STRING)),
    (13, "ownerReferences", list(msg(&OWNER_REFERENCE))),
    (14, "finalizers", list(STRING)),
    (17, "managedFields", list(msg(&MANAGED_FIELDS_ENTRY))),
]);

pub(super) static OWNER_REFERENCE: Message = Message::new("meta.v1.OwnerReference", &[
    (5, "apiVersion", always(STRING)),
    (1, "kind", always(STRING)),
    (3, "name", always(STRING)),
    (4, "uid", always(STRING)),
    (6, "controller", ptr(BOOL)),
    (7, "blockOwnerDeletion", ptr(BOOL)),
]);

pub(super) static DELETE_OPTIONS: Message = Message::new("meta.v1.DeleteOptions", &[
    (1, "gracePeriodSeconds", ptr(INT64)),
    (2, "preconditions", ptr(msg(&PRECONDITIONS))),
    (3, "orphanDependents", ptr(BOOL)),
    (4, "propagationPolicy", ptr(STRING)),
    (5, "dryRun", list(STRING)),
    (6, "ignoreStoreReadErrorWithClusterBreakingPotential", ptr(BOOL)),
]);

pub(super) static PRECONDITIONS: Message = Message::new("meta.v1.Preconditions", &[
    (1, "uid", ptr(STRING)),
    (2, "resourceVersion", ptr(STRING)),
]);

pub(super) static STATUS: Message = Message::new("meta.v1.Status", &[
    (1, "metadata", value(msg(&LIST_META))),
    (2, "status", value(STRING)),
    (3, "message", value(STRING)),
    (4, "reason", value(STRING)),
    (5, "details", ptr(msg(&STATUS_DETAILS))),
    (6, "code", value(INT32)),
]);

pub(super) static STATUS_DETAILS: Message = Message::new("meta.v1.StatusDetails", &[
    (1, "name", value(STRING)),
    (2, "group", value(STRING)),
    (3, "kind", value(STRING)),
    (6, "uid", value(STRING)),
    (4, "causes", list(msg(&STATUS_CAUSE))),
    (5, "retryAfterSeconds", value(INT32)),
]);

pub(super) static STATUS_CAUSE: Message = Message::new("meta.v1.StatusCause", &[
    (1, "reason", value(STRING)),
    (2, "message", value(STRING)),
    (3, "field", value(STRING)),
]);

pub(super) static LABEL_SELECTOR: Message = Message::new("meta.v1.LabelSelector", &[
    (1, "matchLabels", map(STRING)),
    (2, "matchExpressions", list(msg(&LABEL_SELECTOR_REQUIREMENT))),
]);

pub(super) static LABEL_SELECTOR_REQUIREMENT: Message = Message::new("meta.v1.LabelSelectorRequirement", &[
    (1, "key", always(STRING)),
    (2, "operator", always(STRING)),
    (3, "values", list(STRING)),
]);

pub(super) static MANAGED_FIELDS_ENTRY: Message = Message::new("meta.v1.ManagedFieldsEntry", &[
    (1, "manager", value(STRING)),
    (2, "operation", value(STRING)),
    (3, "apiVersion", value(STRING)),
    (4, "time", ptr(TIME)),
    (6, "fieldsType", value(STRING)),
    (7, "fieldsV1", ptr(FIELDS_V1)),
    (8, "subresource", value(STRING)),
]);

pub(super) static CONDITION: Message = Message::new("meta.v1.Condition", &[
    (1, "type", always(STRING)),
    (2, "status", always(STRING)),
    (3, "observedGeneration", value(INT64)),
    (4, "lastTransitionTime", always(TIME)),
    (5, "reason", always(STRING)),
    (6, "message", always(STRING)),
]);

pub(super) static WATCH_EVENT: Message = Message::new("meta.v1.WatchEvent", &[
    (1, "type", always(STRING)),
    (2, "object", always(RAW_EXTENSION)),
]);
