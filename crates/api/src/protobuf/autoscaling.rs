//! Message tables of `k8s.io/api/autoscaling/v1`: the Scale subresource.
//!
//! Field numbers and Go field shapes come from the struct tags in
//! `k8s.io/api/autoscaling/v1/types.go`, in Go struct order.

use super::message::*;
use super::meta::OBJECT_META;

pub(super) static SCALE: Message = Message::new("autoscaling.v1.Scale", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "spec", value(msg(&SCALE_SPEC))),
    (3, "status", value(msg(&SCALE_STATUS))),
]);

pub(super) static SCALE_SPEC: Message = Message::new("autoscaling.v1.ScaleSpec", &[
    (1, "replicas", value(INT32)),
]);

pub(super) static SCALE_STATUS: Message = Message::new("autoscaling.v1.ScaleStatus", &[
    (1, "replicas", always(INT32)),
    (2, "selector", value(STRING)),
]);
