//! Conntrack around a sync: which UDP flows must go when a service's
//! endpoints change, and the connection counts `describe` reports.
//!
//! A UDP "connection" lives in conntrack for as long as the client keeps
//! sending (30 s after the last packet, 120 s once it has seen replies),
//! and its NAT was chosen when it began, so without a flush a client
//! keeps talking to an endpoint that left the service. TCP needs nothing:
//! a gone endpoint's connections fail on their own.
//!
//! - An endpoint leaves a UDP service port: delete the flows it answered
//!   (`-D -p udp --reply-src IP --reply-port-src PORT`), whichever service
//!   address they were sent to. Flows to the remaining endpoints stay (kube
//!   deletes them per service IP, which also reshuffles healthy clients).
//! - A UDP service address gains its first endpoint: delete flows to it
//!   that were not DNATed (`-D -p udp --orig-dst IP --orig-port-dst PORT`,
//!   or `--orig-port-dst NODEPORT` for node ports), as they would bypass the
//!   new rules.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use crate::model::{Protocol, ServicePort};

use super::render::Targets;

/// The `conntrack` arguments (after the program name) that remove stale
/// UDP flows when the service ports `prev` become `next`, without
/// duplicates, in a stable order.
pub fn udp_flushes(prev: &[&ServicePort], next: &[&ServicePort]) -> Vec<Vec<String>> {
    let key = |sp: &ServicePort| (sp.id(), sp.protocol);
    let prev: Vec<&ServicePort> = prev.iter().copied().filter(|s| s.protocol == Protocol::Udp).collect();
    let next: Vec<&ServicePort> = next.iter().copied().filter(|s| s.protocol == Protocol::Udp).collect();
    let prev_by: HashMap<_, &ServicePort> = prev.iter().map(|s| (key(s), *s)).collect();
    let next_by: HashMap<_, &ServicePort> = next.iter().map(|s| (key(s), *s)).collect();

    let mut out: Vec<Vec<String>> = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |args: Vec<String>| {
        if seen.insert(args.clone()) {
            out.push(args);
        }
    };

    // Endpoints that left.
    for sp in &prev {
        if next_by.get(&key(sp)).is_some_and(|n| n == sp) {
            continue;
        }
        let before = in_use(sp);
        let after = next_by.get(&key(sp)).map(|n| in_use(n)).unwrap_or_default();
        for (ip, port) in before.iter().filter(|e| !after.contains(e)) {
            push(args(&["--reply-src", &ip.to_string(), "--reply-port-src", &port.to_string()]));
        }
    }

    // Addresses that gained their first endpoint.
    for sp in &next {
        let now = Targets::of(sp);
        let old = prev_by.get(&key(sp)).map(|p| Targets::of(p));
        let had_internal = old.as_ref().is_some_and(|t| !t.internal().is_empty());
        let had_external = old.as_ref().is_some_and(|t| !t.external().is_empty());
        if !now.internal().is_empty() && !had_internal {
            push(args(&["--orig-dst", &sp.cluster_ip.to_string(), "--orig-port-dst", &sp.port.to_string()]));
        }
        if !now.external().is_empty() && !had_external {
            for ip in sp.external_ips.iter().chain(&sp.load_balancer_ips) {
                push(args(&["--orig-dst", &ip.to_string(), "--orig-port-dst", &sp.port.to_string()]));
            }
            if let Some(np) = sp.node_port {
                push(args(&["--orig-port-dst", &np.to_string()]));
            }
        }
    }
    out
}

fn args(filter: &[&str]) -> Vec<String> {
    ["-D", "-p", "udp"].iter().chain(filter).map(|s| s.to_string()).collect()
}

/// Every endpoint some address of the service port sends to.
fn in_use(sp: &ServicePort) -> Vec<(Ipv4Addr, u16)> {
    let t = Targets::of(sp);
    let mut eps: Vec<(Ipv4Addr, u16)> = t.internal().iter().map(|e| (e.ip, e.port)).collect();
    if sp.is_external() {
        for e in t.external() {
            if !eps.contains(&(e.ip, e.port)) {
                eps.push((e.ip, e.port));
            }
        }
    }
    eps
}

/// Connections per (protocol, original destination, endpoint), as ipvsadm
/// counts them: established TCP is active, everything else inactive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    by_flow: HashMap<FlowKey, (u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FlowKey {
    protocol: Protocol,
    dst: Ipv4Addr,
    dport: u16,
    endpoint: Ipv4Addr,
    endpoint_port: u16,
}

impl Counts {
    /// Parses `conntrack -L` output (one flow per line: `tcp 6 86399
    /// ESTABLISHED src=.. dst=.. sport=.. dport=.. src=.. dst=.. sport=..
    /// dport=.. [ASSURED] ...`); lines it does not understand are skipped.
    pub fn parse(text: &str) -> Counts {
        let mut by_flow: HashMap<FlowKey, (u64, u64)> = HashMap::new();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let Some(protocol) = words.next().and_then(Protocol::parse) else { continue };
            let mut state = None;
            let (mut srcs, mut dsts, mut sports, mut dports) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for w in words {
                if let Some((k, v)) = w.split_once('=') {
                    match k {
                        "src" => srcs.push(v),
                        "dst" => dsts.push(v),
                        "sport" => sports.push(v),
                        "dport" => dports.push(v),
                        _ => {}
                    }
                } else if state.is_none() && srcs.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                    state = Some(w);
                }
            }
            // [original src, reply src], [original dst, ..], ...
            let (Some(dst), Some(dport), Some(endpoint), Some(endpoint_port)) = (
                dsts.first().and_then(|v| v.parse().ok()),
                dports.first().and_then(|v| v.parse().ok()),
                srcs.get(1).and_then(|v| v.parse().ok()),
                sports.get(1).and_then(|v| v.parse().ok()),
            ) else {
                continue;
            };
            let entry = by_flow.entry(FlowKey { protocol, dst, dport, endpoint, endpoint_port }).or_default();
            if protocol == Protocol::Tcp && state == Some("ESTABLISHED") {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
        Counts { by_flow }
    }

    /// (active, inactive) connections to `dst:dport` served by `endpoint`.
    pub fn get(
        &self,
        protocol: Protocol,
        dst: Ipv4Addr,
        dport: u16,
        endpoint: Ipv4Addr,
        endpoint_port: u16,
    ) -> (u64, u64) {
        self.by_flow.get(&FlowKey { protocol, dst, dport, endpoint, endpoint_port }).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Affinity, Endpoint};

    fn ep(ip: &str, port: u16) -> Endpoint {
        Endpoint {
            ip: ip.parse().unwrap(),
            port,
            node: None,
            ready: true,
            serving: true,
            terminating: false,
            local: true,
        }
    }

    fn dns(eps: Vec<Endpoint>) -> ServicePort {
        ServicePort {
            namespace: "kube-system".into(),
            name: "dns".into(),
            port_name: "dns".into(),
            protocol: Protocol::Udp,
            cluster_ip: "10.96.0.10".parse().unwrap(),
            port: 53,
            node_port: None,
            external_ips: vec![],
            load_balancer_ips: vec![],
            load_balancer_source_ranges: Vec::new(),
            affinity: Affinity::None,
            external_local: false,
            internal_local: false,
            health_check_node_port: None,
            endpoints: eps,
        }
    }

    fn flushes(prev: &[ServicePort], next: &[ServicePort]) -> Vec<Vec<String>> {
        udp_flushes(&prev.iter().collect::<Vec<_>>(), &next.iter().collect::<Vec<_>>())
    }

    fn strs(v: &[Vec<String>]) -> Vec<String> {
        v.iter().map(|a| a.join(" ")).collect()
    }

    #[test]
    fn a_udp_endpoint_that_leaves_has_its_flows_deleted() {
        let before = [dns(vec![ep("10.244.1.2", 53), ep("10.244.1.3", 53)])];
        let after = [dns(vec![ep("10.244.1.3", 53)])];
        assert_eq!(strs(&flushes(&before, &after)), ["-D -p udp --reply-src 10.244.1.2 --reply-port-src 53"]);
        assert!(flushes(&after, &after).is_empty());
    }

    #[test]
    fn a_udp_service_gaining_its_first_endpoint_drops_undnatted_flows() {
        let mut empty = dns(vec![]);
        empty.node_port = Some(30053);
        let mut served = empty.clone();
        served.endpoints = vec![ep("10.244.1.2", 53)];
        assert_eq!(
            strs(&flushes(&[empty], &[served.clone()])),
            ["-D -p udp --orig-dst 10.96.0.10 --orig-port-dst 53", "-D -p udp --orig-port-dst 30053"]
        );
        // A deleted service: its endpoints' flows go.
        assert_eq!(strs(&flushes(&[served], &[])), ["-D -p udp --reply-src 10.244.1.2 --reply-port-src 53"]);
    }

    #[test]
    fn tcp_services_need_no_flush() {
        let mut web = dns(vec![ep("10.244.1.2", 80)]);
        web.protocol = Protocol::Tcp;
        assert!(flushes(&[web], &[]).is_empty());
    }

    #[test]
    fn conntrack_listings_count_active_and_inactive_connections() {
        let text = "\
tcp      6 431999 ESTABLISHED src=10.244.1.20 dst=10.96.0.10 sport=41234 dport=80 src=10.244.1.2 dst=10.244.1.20 sport=8080 dport=41234 [ASSURED] mark=0 use=1
tcp      6 119 TIME_WAIT src=10.244.1.20 dst=10.96.0.10 sport=41236 dport=80 src=10.244.1.2 dst=10.244.1.20 sport=8080 dport=41236 [ASSURED] mark=0 use=1
udp      17 29 src=10.244.1.20 dst=10.96.0.10 sport=5353 dport=53 src=10.244.1.3 dst=10.244.1.20 sport=53 dport=5353 mark=0 use=1
garbage
";
        let c = Counts::parse(text);
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(c.get(Protocol::Tcp, ip("10.96.0.10"), 80, ip("10.244.1.2"), 8080), (1, 1));
        assert_eq!(c.get(Protocol::Udp, ip("10.96.0.10"), 53, ip("10.244.1.3"), 53), (0, 1));
        assert_eq!(c.get(Protocol::Udp, ip("10.96.0.10"), 53, ip("10.244.1.2"), 53), (0, 0));
    }
}
