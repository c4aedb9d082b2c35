//! Services and EndpointSlices to a [`Snapshot`], as a pure function: what
//! kube-proxy's service and endpoint change trackers work out, in one pass.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::model::{Affinity, Cidr, Endpoint, Protocol, ServicePort, Snapshot};

/// The label an EndpointSlice names its Service with.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// kube's default ClientIP affinity timeout (3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT: u32 = 10_800;

/// The node a snapshot is for.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    pub node_name: String,
    /// The node's `topology.kubernetes.io/zone` label, for topology-aware
    /// routing (EndpointSlice zone hints).
    pub zone: Option<String>,
    pub node_ips: Vec<Ipv4Addr>,
    pub cluster_cidr: String,
    pub service_cidr: String,
}

type SliceIndex<'a> = HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>;

fn index_slices(slices: &[Arc<EndpointSlice>]) -> SliceIndex<'_> {
    let mut index: SliceIndex<'_> = HashMap::new();
    for s in slices {
        if s.address_type != "IPv4" {
            continue;
        }
        let Some(service) = s.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)) else { continue };
        let ns = s.metadata.namespace.as_deref().unwrap_or("default");
        index.entry((ns, service.as_str())).or_default().push(s);
    }
    index
}

/// The snapshot for a node.
pub fn snapshot(services: &[Arc<Service>], slices: &[Arc<EndpointSlice>], node: &NodeFacts) -> Snapshot {
    let index = index_slices(slices);
    let mut ports = Vec::new();
    for svc in services {
        let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
        let name = svc.metadata.name.as_deref().unwrap_or("");
        let slices = index.get(&(ns, name)).map(Vec::as_slice).unwrap_or(&[]);
        service_ports(svc, slices, node, &mut ports);
    }
    ports.sort_by(|a, b| {
        (&a.namespace, &a.name, &a.port_name, a.protocol).cmp(&(&b.namespace, &b.name, &b.port_name, b.protocol))
    });
    Snapshot {
        node_name: node.node_name.clone(),
        node_ips: node.node_ips.clone(),
        cluster_cidr: node.cluster_cidr.clone(),
        service_cidr: node.service_cidr.clone(),
        services: ports,
    }
}

fn service_ports(svc: &Service, slices: &[&EndpointSlice], node: &NodeFacts, out: &mut Vec<ServicePort>) {
    let Some(spec) = &svc.spec else { return };
    let kind = spec.type_.as_deref().unwrap_or("ClusterIP");
    if kind == "ExternalName" {
        return;
    }
    // Headless Services (and ones without an IPv4 cluster IP) are DNS only.
    let Some(cluster_ip) = spec.cluster_ip.as_deref().and_then(|ip| ip.parse::<Ipv4Addr>().ok()) else { return };
    let exposes_node_ports = kind == "NodePort" || kind == "LoadBalancer";
    let external_ips: Vec<Ipv4Addr> = spec
        .external_ips
        .iter()
        .flatten()
        .filter_map(|ip| ip.parse().ok())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let load_balancer_ips: Vec<Ipv4Addr> = if kind == "LoadBalancer" {
        svc.status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.as_deref().and_then(|ip| ip.parse().ok()))
            .collect()
    } else {
        Vec::new()
    };
    // Validation rejects malformed ranges; IPv6 ones (and anything that
    // slipped through) are left out, as kube-proxy keeps only the CIDRs
    // of the service's IP family.
    let load_balancer_source_ranges: Vec<Cidr> = if kind == "LoadBalancer" {
        spec.load_balancer_source_ranges
            .iter()
            .flatten()
            .filter(|r| !r.contains(':'))
            .filter_map(|r| r.trim().parse::<Cidr>().ok().filter(|_| r.contains('/')))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    } else {
        Vec::new()
    };
    let affinity = if spec.session_affinity.as_deref() == Some("ClientIP") {
        let timeout = spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_AFFINITY_TIMEOUT);
        Affinity::ClientIp { timeout_seconds: timeout }
    } else {
        Affinity::None
    };
    let external = exposes_node_ports || !external_ips.is_empty();
    let external_local = external && spec.external_traffic_policy.as_deref() == Some("Local");
    let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    let health_check_node_port = if external_local && exposes_node_ports {
        spec.health_check_node_port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0)
    } else {
        None
    };
    for p in spec.ports.iter().flatten() {
        let Some(protocol) = Protocol::parse(p.protocol.as_deref().unwrap_or("TCP")) else { continue };
        let Ok(port) = u16::try_from(p.port) else { continue };
        let port_name = p.name.clone().unwrap_or_default();
        let node_port =
            if exposes_node_ports { p.node_port.and_then(|n| u16::try_from(n).ok()).filter(|n| *n > 0) } else { None };
        out.push(ServicePort {
            namespace: svc.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            name: svc.metadata.name.clone().unwrap_or_default(),
            endpoints: endpoints(slices, &port_name, protocol, node),
            port_name,
            protocol,
            cluster_ip,
            port,
            node_port,
            external_ips: external_ips.clone(),
            load_balancer_ips: load_balancer_ips.clone(),
            load_balancer_source_ranges: load_balancer_source_ranges.clone(),
            affinity,
            external_local,
            internal_local,
            health_check_node_port,
        });
    }
}

/// The endpoints the slices give a service port, by port name and
/// protocol, deduplicated across slices (an endpoint moving between slices
/// may briefly appear in two) with the most available state winning, then
/// narrowed to this node's zone when the zone hints allow it.
fn endpoints(slices: &[&EndpointSlice], port_name: &str, protocol: Protocol, node: &NodeFacts) -> Vec<Endpoint> {
    // Each endpoint with the zones it is hinted for (None: no hint).
    let mut found: BTreeMap<(Ipv4Addr, u16), (Endpoint, Option<Vec<String>>)> = BTreeMap::new();
    for s in slices {
        let port = s.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == port_name
                && Protocol::parse(p.protocol.as_deref().unwrap_or("TCP")) == Some(protocol)
        });
        let Some(port) = port.and_then(|p| p.port).and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0) else {
            continue;
        };
        for e in &s.endpoints {
            let Some(ip) = e.addresses.first().and_then(|a| a.parse::<Ipv4Addr>().ok()) else { continue };
            let c = e.conditions.as_ref();
            let ready = c.and_then(|c| c.ready).unwrap_or(true);
            let serving = c.and_then(|c| c.serving).unwrap_or(ready);
            let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
            let ep = Endpoint {
                ip,
                port,
                local: e.node_name.as_deref() == Some(node.node_name.as_str()),
                node: e.node_name.clone(),
                ready,
                serving,
                terminating,
            };
            let hints = e.hints.as_ref().and_then(|h| h.for_zones.as_ref()).filter(|z| !z.is_empty());
            let hints = hints.map(|z| z.iter().map(|z| z.name.clone()).collect());
            let rank = |e: &Endpoint| (e.ready, e.serving, !e.terminating);
            match found.get(&(ip, port)) {
                Some((prev, _)) if rank(prev) >= rank(&ep) => {}
                _ => {
                    found.insert((ip, port), (ep, hints));
                }
            }
        }
    }
    let found: Vec<(Endpoint, Option<Vec<String>>)> = found.into_values().collect();
    let in_zone = |hints: &Option<Vec<String>>, zone: &str| hints.as_ref().is_some_and(|z| z.iter().any(|z| z == zone));
    // kube-proxy's canUseTopology: the node has a zone, every ready
    // endpoint carries a zone hint, and one of them is hinted for this
    // zone; then only endpoints hinted for it are used. Local endpoints
    // stay whatever their hints, as kube-proxy takes the Local policies'
    // endpoints without looking at hints. (With svcnet's own hints a local
    // endpoint is always hinted for the node's zone anyway.)
    let zone = node.zone.as_deref().filter(|z| !z.is_empty());
    let use_topology = zone.is_some_and(|zone| {
        let ready = || found.iter().filter(|(e, _)| e.ready);
        ready().all(|(_, h)| h.is_some()) && ready().any(|(_, h)| in_zone(h, zone))
    });
    found
        .into_iter()
        .filter(|(e, hints)| !use_topology || e.local || zone.is_some_and(|zone| in_zone(hints, zone)))
        .map(|(e, _)| e)
        .collect()
}

#[cfg(test)]
mod tests;
