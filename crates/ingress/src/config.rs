//! [`IngressConfig`]: the controller's settings, with safe defaults.

use std::net::{IpAddr, SocketAddr};

/// The controller's settings.
///
/// | field | default | meaning |
/// | --- | --- | --- |
/// | `class_name` | `svcnet` | the class we serve when an Ingress names it (by `ingressClassName` or the legacy annotation) and no IngressClass of that name says otherwise |
/// | `controller_name` | `svcnet.io/ingress-controller` | the IngressClass `spec.controller` we answer for |
/// | `status_addresses` | none | written to each served Ingress's `status.loadBalancer.ingress[].ip` |
/// | `metrics` | none | `/metrics` and `/healthz` listener |
/// | `watch_ingress_without_class` | `true` | serve Ingresses without any class when no default IngressClass exists |
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressConfig {
    pub class_name: String,
    pub controller_name: String,
    pub status_addresses: Vec<IpAddr>,
    pub metrics: Option<SocketAddr>,
    pub watch_ingress_without_class: bool,
}

pub const DEFAULT_CLASS_NAME: &str = "svcnet";
pub const DEFAULT_CONTROLLER_NAME: &str = "svcnet.io/ingress-controller";

impl Default for IngressConfig {
    fn default() -> Self {
        IngressConfig {
            class_name: DEFAULT_CLASS_NAME.to_string(),
            controller_name: DEFAULT_CONTROLLER_NAME.to_string(),
            status_addresses: Vec::new(),
            metrics: None,
            watch_ingress_without_class: true,
        }
    }
}
