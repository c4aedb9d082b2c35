//! Message tables of `k8s.io/api/discovery/v1`: EndpointSlice.
//!
//! Field numbers and Go field shapes come from the struct tags in
//! `k8s.io/api/discovery/v1/types.go`, in Go struct order.

use super::core::OBJECT_REFERENCE;
use super::message::*;
use super::meta::OBJECT_META;

pub(super) static ENDPOINT_SLICE: Message = Message::new("discovery.v1.EndpointSlice", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (4, "addressType", always(STRING)),
    (2, "endpoints", list_or_null(msg(&ENDPOINT))),
    (3, "ports", list_or_null(msg(&ENDPOINT_PORT))),
]);

pub(super) static ENDPOINT: Message = Message::new("discovery.v1.Endpoint", &[
    (1, "addresses", list_or_null(STRING)),
    (2, "conditions", value(msg(&ENDPOINT_CONDITIONS))),
    (3, "hostname", ptr(STRING)),
    (4, "targetRef", ptr(msg(&OBJECT_REFERENCE))),
    (5, "deprecatedTopology", map(STRING)),
    (6, "nodeName", ptr(STRING)),
    (7, "zone", ptr(STRING)),
    (8, "hints", ptr(msg(&ENDPOINT_HINTS))),
]);

pub(super) static ENDPOINT_CONDITIONS: Message = Message::new("discovery.v1.EndpointConditions", &[
    (1, "ready", ptr(BOOL)),
    (2, "serving", ptr(BOOL)),
    (3, "terminating", ptr(BOOL)),
]);

pub(super) static ENDPOINT_HINTS: Message = Message::new("discovery.v1.EndpointHints", &[
    (1, "forZones", list(msg(&FOR_ZONE))),
    (2, "forNodes", list(msg(&FOR_NODE))),
]);

pub(super) static FOR_ZONE: Message = Message::new("discovery.v1.ForZone", &[
    (1, "name", always(STRING)),
]);

pub(super) static FOR_NODE: Message = Message::new("discovery.v1.ForNode", &[
    (1, "name", always(STRING)),
]);

pub(super) static ENDPOINT_PORT: Message = Message::new("discovery.v1.EndpointPort", &[
    (1, "name", ptr(STRING)),
    (2, "protocol", ptr(STRING)),
    (3, "port", ptr(INT32)),
    (4, "appProtocol", ptr(STRING)),
]);
