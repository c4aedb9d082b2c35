//! From cluster objects to a [`ZoneView`]: the records of the Kubernetes
//! DNS-Based Service Discovery specification (1.1.0), as a pure function.
//!
//! | object | records |
//! | --- | --- |
//! | Service with cluster IPs | `svc.ns.svc.zone` A/AAAA; `_port._proto.svc...` SRV per named port; SRV at `svc...` for every port (CoreDNS); PTR per cluster IP |
//! | headless Service | `svc...` A/AAAA per ready endpoint; `host.svc...` A/AAAA; SRV per endpoint × named port with `host.svc...` targets; PTR per endpoint address |
//! | ExternalName Service | `svc...` CNAME |
//! | ready endpoint of a Service with cluster IPs | `host.svc...` A/AAAA and PTR, as CoreDNS serves them |
//! | Pod (`pods verified`) | `a-b-c-d.ns.pod.zone` A (AAAA for IPv6) |
//! | Namespace | `ns.svc.zone` exists (NODATA, not NXDOMAIN) |
//!
//! `host` is the endpoint's hostname, or its dashed address
//! (`10-1-2-3`, `fd00--1`) as CoreDNS names endpoints without one. An
//! endpoint is ready when its `ready` condition is true or unset (the
//! EndpointSlice API's advice), or whatever it says when the Service
//! publishes not-ready addresses. A headless Service without ready
//! endpoints has no records at all, so its name is NXDOMAIN (spec §2.4.1).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::name::{Name, dashed_ip};
use crate::objects::{DnsEndpointPort, DnsPod, DnsService, DnsServicePort, DnsSlice};
use crate::view::{PodsMode, Sink, ViewBuilder, ZoneConfig, ZoneView};
use crate::wire::{RData, Srv};

/// The objects a view is built from.
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    pub services: Vec<Arc<Service>>,
    pub slices: Vec<Arc<EndpointSlice>>,
    pub pods: Vec<Arc<Pod>>,
    pub namespaces: Vec<Arc<Namespace>>,
}

pub use crate::objects::SERVICE_NAME_LABEL;

/// One endpoint address with the slice ports that apply to it.
struct Endpoint<'a> {
    ip: IpAddr,
    host: String,
    ports: &'a [DnsEndpointPort],
}

/// Builds the view of `cluster` with SOA serial `serial`: the reference
/// the incremental updates of `zone.rs` are tested against.
pub fn build_view(config: &ZoneConfig, cluster: &Cluster, serial: u32) -> ZoneView {
    let mut b = ViewBuilder::new(config.clone());
    for ns in &cluster.namespaces {
        if let Some(name) = ns.metadata.name.as_deref() {
            namespace_records(&mut b, name);
        }
    }
    // Slices by (namespace, service), in the order given.
    let mut slices: BTreeMap<(String, String), Vec<DnsSlice>> = BTreeMap::new();
    for s in &cluster.slices {
        let slice = DnsSlice::from(&**s);
        let ns = s.metadata.namespace.clone().unwrap_or_default();
        let Some(svc) = slice.service.as_deref().map(str::to_string) else { continue };
        slices.entry((ns, svc)).or_default().push(slice);
    }
    for s in &cluster.services {
        let svc = DnsService::from(&**s);
        let (Some(ns), Some(name)) = (s.metadata.namespace.clone(), s.metadata.name.clone()) else {
            continue;
        };
        let mine: Vec<&DnsSlice> = slices.get(&(ns.clone(), name.clone())).into_iter().flatten().collect();
        service_records(&mut b, &ns, &name, &svc, &mine);
    }
    for p in &cluster.pods {
        if let Some(ns) = p.metadata.namespace.as_deref() {
            pod_records(&mut b, ns, &DnsPod::from(&**p));
        }
    }
    b.build(serial)
}

/// A Namespace: its names exist.
pub(crate) fn namespace_records(b: &mut impl Sink, name: &str) {
    b.namespace(name);
}

/// Every record of one Service, from the Service and its EndpointSlices
/// (in the order of their names).
pub(crate) fn service_records(b: &mut impl Sink, ns: &str, name: &str, svc: &DnsService, slices: &[&DnsSlice]) {
    b.namespace(ns);
    let zone = b.config().zone.clone();
    let Ok(base) = zone.prepend_all(&[name.as_bytes(), ns.as_bytes(), b"svc"]) else {
        tracing::debug!(%ns, %name, "service name does not fit in a DNS name");
        return;
    };
    if let Some(target) = svc.external_name.as_deref() {
        match Name::parse(target) {
            Ok(t) if !t.is_root() => b.add(base, RData::Cname(t)),
            _ => tracing::debug!(%ns, %name, %target, "ExternalName is not a valid name"),
        }
        return;
    }
    let endpoints = ready_endpoints(slices, svc.publish_not_ready);
    if svc.is_headless() {
        add_headless(b, &base, &endpoints);
    } else {
        let ips = &svc.cluster_ips;
        if ips.is_empty() {
            // Not allocated yet (or type ExternalName without the
            // type set): nothing to serve.
            return;
        }
        add_cluster_ip(b, &base, ips, &svc.ports);
        add_endpoint_names(b, &base, &endpoints);
    }
}

/// A Pod's `a-b-c-d.<ns>.pod.<zone>` records, with `pods verified` only.
pub(crate) fn pod_records(b: &mut impl Sink, ns: &str, pod: &DnsPod) {
    if b.config().pods != PodsMode::Verified {
        return;
    }
    // A terminating pod is on its way out; CoreDNS ignores it too.
    if pod.terminating {
        return;
    }
    let zone = b.config().zone.clone();
    for &ip in pod.ips.iter() {
        if let Ok(n) = zone.prepend_all(&[dashed_ip(ip).as_bytes(), ns.as_bytes(), b"pod"]) {
            b.add(n, address(ip));
        }
    }
}

fn address(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(v4),
        IpAddr::V6(v6) => RData::Aaaa(v6),
    }
}

/// Ready endpoints of a Service's slices, each address once (an endpoint
/// can sit in two slices while the controller moves it).
fn ready_endpoints<'a>(slices: &[&'a DnsSlice], publish_not_ready: bool) -> Vec<Endpoint<'a>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for slice in slices {
        if !slice.ip {
            continue;
        }
        for ep in slice.endpoints.iter() {
            if !ep.ready && !publish_not_ready {
                continue;
            }
            for &ip in ep.addresses.iter() {
                if !seen.insert(ip) {
                    continue;
                }
                let host = match ep.hostname.as_deref() {
                    Some(h) if !h.is_empty() => h.to_ascii_lowercase(),
                    _ => dashed_ip(ip),
                };
                out.push(Endpoint { ip, host, ports: &slice.ports });
            }
        }
    }
    out
}

/// SRV weights as CoreDNS splits them: 100 shared among the records of
/// one priority.
fn weight(count: usize) -> u16 {
    (100 / count.max(1)).max(1) as u16
}

fn add_cluster_ip(b: &mut impl Sink, base: &Name, ips: &[IpAddr], ports: &[DnsServicePort]) {
    for &ip in ips {
        b.add(base.clone(), address(ip));
        b.add(Name::reverse(ip), RData::Ptr(base.clone()));
    }
    let valid: Vec<_> = ports.iter().filter(|p| (1..=65535).contains(&p.port)).collect();
    for p in &valid {
        let srv = |w| RData::Srv(Srv { priority: 0, weight: w, port: p.port as u16, target: base.clone() });
        b.add(base.clone(), srv(weight(valid.len())));
        if let Some(port_name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            let label = format!("_{}", port_name.to_ascii_lowercase());
            if let Ok(n) = base.prepend_all(&[label.as_bytes(), p.protocol.label().as_bytes()]) {
                b.add(n, srv(100));
            }
        }
    }
}

fn add_headless(b: &mut impl Sink, base: &Name, endpoints: &[Endpoint<'_>]) {
    add_endpoint_names(b, base, endpoints);
    let mut by_port: BTreeMap<Option<Name>, Vec<(u16, Name)>> = BTreeMap::new();
    for ep in endpoints {
        b.add(base.clone(), address(ep.ip));
        let Ok(target) = base.prepend(ep.host.as_bytes()) else { continue };
        for p in ep.ports {
            let Some(port) = p.port.and_then(|p| u16::try_from(p).ok()).filter(|&p| p != 0) else { continue };
            by_port.entry(None).or_default().push((port, target.clone()));
            if let Some(port_name) = p.name.as_deref().filter(|n| !n.is_empty()) {
                let label = format!("_{}", port_name.to_ascii_lowercase());
                if let Ok(n) = base.prepend_all(&[label.as_bytes(), p.protocol.label().as_bytes()]) {
                    by_port.entry(Some(n)).or_default().push((port, target.clone()));
                }
            }
        }
    }
    for (owner, targets) in by_port {
        let mut targets = targets;
        targets.sort();
        targets.dedup();
        let w = weight(targets.len());
        let owner = owner.unwrap_or_else(|| base.clone());
        for (port, target) in targets {
            b.add(owner.clone(), RData::Srv(Srv { priority: 0, weight: w, port, target }));
        }
    }
}

/// `host.svc.ns.svc.zone` and the PTR back to it, for each endpoint.
fn add_endpoint_names(b: &mut impl Sink, base: &Name, endpoints: &[Endpoint<'_>]) {
    for ep in endpoints {
        match base.prepend(ep.host.as_bytes()) {
            Ok(n) => {
                b.add(n.clone(), address(ep.ip));
                b.add(Name::reverse(ep.ip), RData::Ptr(n));
            }
            Err(_) => tracing::debug!(host = %ep.host, %base, "endpoint hostname does not fit in a DNS name"),
        }
    }
}
