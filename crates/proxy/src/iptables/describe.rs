//! What `describe` reports: one virtual service per service address
//! (cluster IP, each external and load balancer IP, the node port on each
//! node address), read like `ipvsadm -Ln`.

use std::net::Ipv4Addr;

use crate::model::{Affinity, Endpoint, ServicePort};
use crate::{RealServer, VirtualService};

use super::conntrack::Counts;
use super::render::Targets;

/// The virtual services of `services`, with connection counts from
/// `counts`. Addresses whose traffic has nowhere to go are listed without
/// endpoints.
pub fn virtual_services<'a>(
    services: impl IntoIterator<Item = &'a ServicePort>,
    node_ips: &[Ipv4Addr],
    counts: &Counts,
) -> Vec<VirtualService> {
    let mut out = Vec::new();
    for sp in services {
        let targets = Targets::of(sp);
        let flags = match sp.affinity {
            Affinity::ClientIp { timeout_seconds } => format!("persistent {timeout_seconds}"),
            Affinity::None => String::new(),
        };
        let entry = |ip: Ipv4Addr, port: u16, eps: &[&Endpoint]| VirtualService {
            service: sp.id(),
            protocol: sp.protocol.as_str().to_string(),
            address: format!("{ip}:{port}"),
            scheduler: "random".to_string(),
            flags: flags.clone(),
            endpoints: eps
                .iter()
                .map(|e| {
                    let (active, inactive) = counts.get(sp.protocol, ip, port, e.ip, e.port);
                    RealServer { address: format!("{}:{}", e.ip, e.port), weight: 1, active, inactive }
                })
                .collect(),
        };
        out.push(entry(sp.cluster_ip, sp.port, targets.internal()));
        for ip in sp.external_ips.iter().chain(&sp.load_balancer_ips) {
            out.push(entry(*ip, sp.port, targets.external()));
        }
        if let Some(np) = sp.node_port {
            for ip in node_ips {
                out.push(entry(*ip, np, targets.external()));
            }
        }
    }
    out
}
