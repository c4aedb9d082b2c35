//! What the Endpoints and EndpointSlice controllers read from a Pod and a
//! Service: readiness, whether a pod belongs in endpoints at all, the pod
//! port a service port resolves to, addresses by IP family.
//!
//! These follow `k8s.io/endpointslice/util` (`ShouldPodBeInEndpoints`,
//! `ShouldSetHostname`, `IsPodReady`) and `podutil.FindPort`; both
//! controllers share them so they cannot disagree about a pod.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `service.kubernetes.io/headless`, set (empty) on the Endpoints and
/// EndpointSlices of services without a cluster IP.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// The protocol the API server defaults service and container ports to.
const DEFAULT_PROTOCOL: &str = "TCP";

/// An IP family, as `spec.ipFamilies` names it and EndpointSlices'
/// `addressType` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IpFamily {
    /// `IPv4`
    V4,
    /// `IPv6`
    V6,
}

impl IpFamily {
    /// The family's name in `spec.ipFamilies` and `addressType`.
    pub fn as_str(self) -> &'static str {
        match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        }
    }

    /// Parses `IPv4` / `IPv6`; anything else (including the deprecated
    /// `FQDN` address type) is not an IP family.
    pub fn parse(name: &str) -> Option<IpFamily> {
        match name {
            "IPv4" => Some(IpFamily::V4),
            "IPv6" => Some(IpFamily::V6),
            _ => None,
        }
    }

    /// The family of a textual IP, or `None` when it is not an IP.
    pub fn of_ip(ip: &str) -> Option<IpFamily> {
        parse_ip(ip).map(|ip| match ip {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        })
    }
}

/// Parses an IP the way Kubernetes' `ParseIPSloppy` does for the cases that
/// matter here: plain IPv4 and IPv6 text, IPv4-mapped IPv6 counted as IPv4
/// (Go's `To4` does that too).
pub(crate) fn parse_ip(ip: &str) -> Option<IpAddr> {
    let parsed: IpAddr = ip.trim().parse().ok()?;
    Some(match parsed {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    })
}

/// True when the pod's `Ready` condition is `True` (`podutil.IsPodReady`).
pub fn pod_is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|ready| ready.status == "True")
}

/// True when the pod has finished for good: phase `Succeeded` or `Failed`.
/// Distinct from terminating (`deletionTimestamp` set), which a pod is while
/// it shuts down.
pub fn pod_is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// True when the pod is being deleted (`metadata.deletionTimestamp` set).
pub fn pod_is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The pod's IPs: `status.podIPs`, or `status.podIP` alone when the list is
/// empty (objects written by clients that only know the singular field).
pub fn pod_ips(pod: &Pod) -> Vec<&str> {
    let Some(status) = pod.status.as_ref() else { return Vec::new() };
    let listed: Vec<&str> =
        status.pod_ips.iter().flatten().map(|ip| ip.ip.as_str()).filter(|ip| !ip.is_empty()).collect();
    if !listed.is_empty() {
        return listed;
    }
    status.pod_ip.as_deref().filter(|ip| !ip.is_empty()).into_iter().collect()
}

/// Whether a pod may appear in a Service's Endpoints or EndpointSlices at
/// all (`ShouldPodBeInEndpoints`): not terminal, has an IP, and is not
/// terminating unless `include_terminating`.
///
/// The Endpoints controller passes `publishNotReadyAddresses` as
/// `include_terminating`; the EndpointSlice controller always passes `true`
/// and reports termination through endpoint conditions instead.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if pod_is_terminal(pod) || pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || !pod_is_terminating(pod)
}

/// Whether an endpoint for this pod carries a hostname (`ShouldSetHostname`):
/// the pod sets `spec.hostname` and its `spec.subdomain` names this service
/// in the pod's namespace. Kubernetes does not require the service to be
/// headless for this; DNS only serves the name for headless ones.
pub fn should_set_hostname(pod: &Pod, service: &Service) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return false };
    let hostname = spec.hostname.as_deref().unwrap_or_default();
    !hostname.is_empty()
        && spec.subdomain.as_deref().unwrap_or_default() == service.metadata.name.as_deref().unwrap_or_default()
        && pod.metadata.namespace == service.metadata.namespace
}

/// A service port's protocol, defaulted as the API server does.
pub(crate) fn service_port_protocol(port: &ServicePort) -> &str {
    port.protocol.as_deref().filter(|p| !p.is_empty()).unwrap_or(DEFAULT_PROTOCOL)
}

/// The pod port a service port sends traffic to (`podutil.FindPort`).
///
/// A numeric `targetPort` is used as is; an unset (or zero / empty)
/// `targetPort` means the service port itself, as API defaulting would have
/// made it. A named `targetPort` is looked up among the pod's containers'
/// ports by name *and* protocol, then among sidecars (init containers with
/// `restartPolicy: Always`); `None` when no container declares it, and the
/// controllers then leave the pod out of that service port.
pub fn resolve_target_port(service_port: &ServicePort, pod: &Pod) -> Option<i32> {
    let name = match service_port.target_port.as_ref() {
        None | Some(IntOrString::Int(0)) => return Some(service_port.port),
        Some(IntOrString::String(name)) if name.is_empty() => return Some(service_port.port),
        Some(IntOrString::Int(port)) => return Some(*port),
        Some(IntOrString::String(name)) => name,
    };
    let protocol = service_port_protocol(service_port);
    let spec = pod.spec.as_ref()?;
    let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| {
            p.name.as_deref() == Some(name.as_str())
                && p.protocol.as_deref().filter(|p| !p.is_empty()).unwrap_or(DEFAULT_PROTOCOL) == protocol
        })
        .map(|p| p.container_port)
}

/// True when the service has a cluster IP (`helper.IsServiceIPSet`): set and
/// not `None`. Services without one are headless.
pub fn service_has_cluster_ip(service: &Service) -> bool {
    let ip = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()).unwrap_or_default();
    !ip.is_empty() && ip != "None"
}

/// True when the service is headless (no cluster IP; `clusterIP: None`).
pub fn service_is_headless(service: &Service) -> bool {
    !service_has_cluster_ip(service)
}

/// True when the selector-driven controllers manage this service's
/// endpoints: it has a selector (an empty one selects every pod in the
/// namespace; an absent one means "endpoints are written by hand") and is
/// not of type `ExternalName` (kubernetes/kubernetes#105986).
pub fn service_is_managed(service: &Service) -> bool {
    let Some(spec) = service.spec.as_ref() else { return false };
    spec.selector.is_some() && spec.type_.as_deref() != Some("ExternalName")
}

/// Whether the service's selector selects the pod: same namespace, and every
/// `key: value` of the selector among the pod's labels. A service without a
/// selector selects nothing.
pub fn service_selects(service: &Service, pod: &Pod) -> bool {
    let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else { return false };
    if pod.metadata.namespace != service.metadata.namespace {
        return false;
    }
    let labels = pod.metadata.labels.as_ref();
    selector.iter().all(|(key, value)| labels.and_then(|l| l.get(key)) == Some(value))
}
