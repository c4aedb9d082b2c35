//! Conntrack around the table: deleting stale UDP flows when endpoints
//! change (a UDP "connection" never ends while the client keeps sending,
//! so without this it keeps going to a dead endpoint, or keeps bypassing a
//! service that gained endpoints), and counting flows for `describe`.
//! Planning and parsing are pure; `NftProxy` runs the commands.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use super::service::{external_addresses, has_cluster_ip};
use crate::model::{Affinity, Endpoint, Protocol, ServicePort};
use crate::{RealServer, VirtualService};

/// `conntrack` arguments (after `conntrack`), one deletion each.
pub type Deletion = Vec<String>;

/// The UDP flows to delete once the table moved on: `changes` are the
/// UDP service ports that changed, as (before, after); `in_use` lists the
/// endpoints every UDP service port uses now (asked only when an endpoint
/// left one):
///
/// - a service address whose endpoints went from none to some: its flows
///   were created while it rejected or before it existed, and would keep
///   missing the new endpoints (`--orig-dst VIP --orig-port-dst PORT`;
///   for a node port, every flow to that port);
/// - an endpoint no UDP service port uses any more: flows DNATed to it
///   (`--reply-src IP --reply-port-src PORT`: after DNAT the endpoint is
///   the reply's source, whatever address the client used).
pub fn udp_deletions(
    changes: &[(Option<&ServicePort>, Option<&ServicePort>)],
    in_use: impl FnOnce() -> HashSet<(Ipv4Addr, u16)>,
) -> Vec<Deletion> {
    let mut out: Vec<Deletion> = Vec::new();
    let mut left: HashSet<(Ipv4Addr, u16)> = HashSet::new();
    for (before, after) in changes {
        let now = after.map(using).unwrap_or_default();
        if let Some(b) = before {
            left.extend(using(b).difference(&now));
        }
        let Some(svc) = after.filter(|s| s.protocol == Protocol::Udp) else { continue };
        let gained =
            |now: Vec<&Endpoint>, then: Option<Vec<&Endpoint>>| !now.is_empty() && then.is_none_or(|t| t.is_empty());
        if has_cluster_ip(svc) && gained(svc.cluster_endpoints(), before.map(|b| b.cluster_endpoints())) {
            out.push(orig(svc.cluster_ip, svc.port));
        }
        if gained(svc.external_endpoints(), before.map(|b| b.external_endpoints())) {
            for ip in external_addresses(svc) {
                out.push(orig(ip, svc.port));
            }
            if let Some(np) = svc.node_port {
                out.push(args(&["-p", "udp", "--orig-port-dst", &np.to_string()]));
            }
        }
    }
    if left.is_empty() {
        return out;
    }
    let in_use = in_use();
    let mut gone: Vec<(Ipv4Addr, u16)> = left.into_iter().filter(|ep| !in_use.contains(ep)).collect();
    gone.sort();
    for (ip, port) in gone {
        out.push(args(&["-p", "udp", "--reply-src", &ip.to_string(), "--reply-port-src", &port.to_string()]));
    }
    out
}

/// The endpoints a UDP service port sends to (none for another protocol).
pub fn using(svc: &ServicePort) -> HashSet<(Ipv4Addr, u16)> {
    if svc.protocol != Protocol::Udp {
        return HashSet::new();
    }
    svc.cluster_endpoints().into_iter().chain(svc.external_endpoints()).map(|e| (e.ip, e.port)).collect()
}

fn orig(ip: Ipv4Addr, port: u16) -> Deletion {
    args(&["-p", "udp", "--orig-dst", &ip.to_string(), "--orig-port-dst", &port.to_string()])
}

fn args(a: &[&str]) -> Deletion {
    let mut v = vec!["-D".to_string()];
    v.extend(a.iter().map(|s| s.to_string()));
    v
}

/// True when a `conntrack -D` outcome is fine: deleting nothing exits 1
/// with "0 flow entries have been deleted".
pub fn deletion_ok(success: bool, stderr: &str) -> bool {
    success || stderr.contains("0 flow entries")
}

/// One flow of `conntrack -L`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub protocol: String,
    pub established: bool,
    pub orig_dst: Ipv4Addr,
    pub orig_dport: u16,
    pub reply_src: Ipv4Addr,
    pub reply_sport: u16,
}

/// Reads `conntrack -L` lines (`tcp 6 431999 ESTABLISHED src=… dst=…
/// sport=… dport=… src=… dst=… sport=… dport=… [ASSURED] …`).
pub fn parse_flows(text: &str) -> Vec<Flow> {
    text.lines().filter_map(parse_flow).collect()
}

fn parse_flow(line: &str) -> Option<Flow> {
    let mut words = line.split_whitespace();
    let protocol = words.next()?.to_string();
    let mut established = false;
    let (mut dst, mut dport, mut src, mut sport) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for w in words {
        match w.split_once('=') {
            Some(("dst", v)) => dst.push(v),
            Some(("dport", v)) => dport.push(v),
            Some(("src", v)) => src.push(v),
            Some(("sport", v)) => sport.push(v),
            None if w == "ESTABLISHED" => established = true,
            _ => {}
        }
    }
    Some(Flow {
        protocol,
        established,
        orig_dst: dst.first()?.parse().ok()?,
        orig_dport: dport.first()?.parse().ok()?,
        reply_src: src.get(1)?.parse().ok()?,
        reply_sport: sport.get(1)?.parse().ok()?,
    })
}

/// What is programmed, one entry per service address (node ports once
/// per node address), with flow counts: established TCP/SCTP flows are
/// active, every other flow inactive, as `ipvsadm` counts.
pub fn describe<'a>(
    services: impl IntoIterator<Item = &'a ServicePort>,
    node_ips: &[Ipv4Addr],
    flows: &[Flow],
) -> Vec<VirtualService> {
    let mut counts: HashMap<(&str, Ipv4Addr, u16, Ipv4Addr, u16), (u64, u64)> = HashMap::new();
    for f in flows {
        let c = counts.entry((f.protocol.as_str(), f.orig_dst, f.orig_dport, f.reply_src, f.reply_sport)).or_default();
        if f.established {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }
    let mut out = Vec::new();
    for svc in services {
        let proto = svc.protocol.as_str();
        let flags = match svc.affinity {
            Affinity::ClientIp { timeout_seconds } => format!("persistent {timeout_seconds}"),
            Affinity::None => String::new(),
        };
        let entry = |ip: Ipv4Addr, port: u16, eps: &[&Endpoint]| VirtualService {
            service: svc.id(),
            protocol: proto.to_string(),
            address: format!("{ip}:{port}"),
            scheduler: "random".to_string(),
            flags: flags.clone(),
            endpoints: eps
                .iter()
                .map(|e| {
                    let (active, inactive) = counts.get(&(proto, ip, port, e.ip, e.port)).copied().unwrap_or_default();
                    RealServer { address: format!("{}:{}", e.ip, e.port), weight: 1, active, inactive }
                })
                .collect(),
        };
        if has_cluster_ip(svc) {
            out.push(entry(svc.cluster_ip, svc.port, &svc.cluster_endpoints()));
        }
        let external = svc.external_endpoints();
        for ip in external_addresses(svc) {
            out.push(entry(ip, svc.port, &external));
        }
        if let Some(np) = svc.node_port {
            for ip in node_ips {
                out.push(entry(*ip, np, &external));
            }
        }
    }
    out
}
