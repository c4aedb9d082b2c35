//! Message tables of `k8s.io/api/networking/v1`: Ingress and IngressClass.
//!
//! Field numbers and Go field shapes come from the struct tags in
//! `k8s.io/api/networking/v1/types.go`, in Go struct order.

use super::core::TYPED_LOCAL_OBJECT_REFERENCE;
use super::message::*;
use super::meta::OBJECT_META;

pub(super) static INGRESS: Message = Message::new("networking.v1.Ingress", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "spec", value(msg(&INGRESS_SPEC))),
    (3, "status", value(msg(&INGRESS_STATUS))),
]);

pub(super) static INGRESS_SPEC: Message = Message::new("networking.v1.IngressSpec", &[
    (4, "ingressClassName", ptr(STRING)),
    (1, "defaultBackend", ptr(msg(&INGRESS_BACKEND))),
    (2, "tls", list(msg(&INGRESS_TLS))),
    (3, "rules", list(msg(&INGRESS_RULE))),
]);

pub(super) static INGRESS_TLS: Message = Message::new("networking.v1.IngressTLS", &[
    (1, "hosts", list(STRING)),
    (2, "secretName", value(STRING)),
]);

pub(super) static INGRESS_STATUS: Message = Message::new("networking.v1.IngressStatus", &[
    (1, "loadBalancer", value(msg(&INGRESS_LOAD_BALANCER_STATUS))),
]);

pub(super) static INGRESS_LOAD_BALANCER_STATUS: Message =
    Message::new("networking.v1.IngressLoadBalancerStatus", &[
        (1, "ingress", list(msg(&INGRESS_LOAD_BALANCER_INGRESS))),
    ]);

pub(super) static INGRESS_LOAD_BALANCER_INGRESS: Message =
    Message::new("networking.v1.IngressLoadBalancerIngress", &[
        (1, "ip", value(STRING)),
        (2, "hostname", value(STRING)),
        (4, "ports", list(msg(&INGRESS_PORT_STATUS))),
    ]);

pub(super) static INGRESS_PORT_STATUS: Message = Message::new("networking.v1.IngressPortStatus", &[
    (1, "port", always(INT32)),
    (2, "protocol", always(STRING)),
    (3, "error", ptr(STRING)),
]);

pub(super) static INGRESS_RULE: Message = Message::new("networking.v1.IngressRule", &[
    (1, "host", value(STRING)),
    (2, "", inline(&INGRESS_RULE_VALUE)),
]);

pub(super) static INGRESS_RULE_VALUE: Message = Message::new("networking.v1.IngressRuleValue", &[
    (1, "http", ptr(msg(&HTTP_INGRESS_RULE_VALUE))),
]);

pub(super) static HTTP_INGRESS_RULE_VALUE: Message = Message::new("networking.v1.HTTPIngressRuleValue", &[
    (1, "paths", list_or_null(msg(&HTTP_INGRESS_PATH))),
]);

pub(super) static HTTP_INGRESS_PATH: Message = Message::new("networking.v1.HTTPIngressPath", &[
    (1, "path", value(STRING)),
    (3, "pathType", ptr_or_null(STRING)),
    (2, "backend", value(msg(&INGRESS_BACKEND))),
]);

pub(super) static INGRESS_BACKEND: Message = Message::new("networking.v1.IngressBackend", &[
    (4, "service", ptr(msg(&INGRESS_SERVICE_BACKEND))),
    (3, "resource", ptr(msg(&TYPED_LOCAL_OBJECT_REFERENCE))),
]);

pub(super) static INGRESS_SERVICE_BACKEND: Message = Message::new("networking.v1.IngressServiceBackend", &[
    (1, "name", always(STRING)),
    (2, "port", value(msg(&SERVICE_BACKEND_PORT))),
]);

pub(super) static SERVICE_BACKEND_PORT: Message = Message::new("networking.v1.ServiceBackendPort", &[
    (1, "name", value(STRING)),
    (2, "number", value(INT32)),
]);

pub(super) static INGRESS_CLASS: Message = Message::new("networking.v1.IngressClass", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "spec", value(msg(&INGRESS_CLASS_SPEC))),
]);

pub(super) static INGRESS_CLASS_SPEC: Message = Message::new("networking.v1.IngressClassSpec", &[
    (1, "controller", value(STRING)),
    (2, "parameters", ptr(msg(&INGRESS_CLASS_PARAMETERS_REFERENCE))),
]);

pub(super) static INGRESS_CLASS_PARAMETERS_REFERENCE: Message =
    Message::new("networking.v1.IngressClassParametersReference", &[
        (1, "apiGroup", ptr(STRING)),
        (2, "kind", always(STRING)),
        (3, "name", always(STRING)),
        (4, "scope", ptr_or_null(STRING)),
        (5, "namespace", ptr(STRING)),
    ]);
