//! The nftables table that brings service traffic to the proxy's
//! listeners, as pure text: the fixed skeleton (chains and typed maps and
//! sets) and the elements, diffed against what was applied last so a sync
//! sends one `nft -f` transaction touching only changed elements.
//!
//! ```text
//! table ip svcnet-userspace
//!   map service-ports   daddr . proto . dport -> proxy port   (cluster, external and LB IPs)
//!   map nodeport-ports          proto . dport -> proxy port   (fib daddr type local)
//!   set no-endpoint-services / no-endpoint-nodeports          -> rejected (TCP reset, ICMP port unreachable)
//!   set proxy-ports     proto . port of every listener        -> only reachable through a redirect
//! ```
//!
//! Services without endpoints are kept out of the redirect maps and
//! rejected in the filter hooks, so a client is refused at once instead of
//! being accepted by the proxy and then reset.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::model::Protocol;

pub const TABLE: &str = "svcnet-userspace";

/// The sets and maps of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Set {
    ServicePorts,
    NodePortPorts,
    NoEndpointServices,
    NoEndpointNodePorts,
    ProxyPorts,
}

impl Set {
    pub fn name(self) -> &'static str {
        match self {
            Set::ServicePorts => "service-ports",
            Set::NodePortPorts => "nodeport-ports",
            Set::NoEndpointServices => "no-endpoint-services",
            Set::NoEndpointNodePorts => "no-endpoint-nodeports",
            Set::ProxyPorts => "proxy-ports",
        }
    }
}

/// An element's key as nft spells it (`10.96.0.10 . tcp . 80`).
pub(crate) type Key = String;

/// An element's data: the proxy port for maps, and the comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Value {
    pub proxy_port: Option<u16>,
    pub comment: String,
}

/// Every element of the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Elements {
    map: BTreeMap<(Set, Key), Value>,
}

impl Elements {
    fn insert(&mut self, set: Set, key: Key, proxy_port: Option<u16>, id: &str) {
        // Two services claiming the same address and port: the first (by
        // id) keeps it, as nft would refuse the duplicate.
        self.map.entry((set, key)).or_insert_with(|| Value { proxy_port, comment: comment(id) });
    }

    /// Redirects `ip:port` to `proxy_port`, or rejects it when there is no
    /// proxy port (no endpoints).
    pub fn address(&mut self, ip: Ipv4Addr, proto: Protocol, port: u16, proxy_port: Option<u16>, id: &str) {
        let key = format!("{ip} . {} . {port}", proto.as_str());
        match proxy_port {
            Some(p) => self.insert(Set::ServicePorts, key, Some(p), id),
            None => self.insert(Set::NoEndpointServices, key, None, id),
        }
    }

    /// The same for a node port on every local address.
    pub fn node_port(&mut self, proto: Protocol, port: u16, proxy_port: Option<u16>, id: &str) {
        let key = format!("{} . {port}", proto.as_str());
        match proxy_port {
            Some(p) => self.insert(Set::NodePortPorts, key, Some(p), id),
            None => self.insert(Set::NoEndpointNodePorts, key, None, id),
        }
    }

    /// A listener's port, reachable only through a redirect.
    pub fn proxy_port(&mut self, proto: Protocol, port: u16, id: &str) {
        self.insert(Set::ProxyPorts, format!("{} . {port}", proto.as_str()), None, id);
    }

    #[cfg(test)]
    pub fn get(&self, set: Set, key: &str) -> Option<&Value> {
        self.map.get(&(set, key.to_string()))
    }
}

/// nft comments are at most 128 bytes and must not hold a quote.
fn comment(id: &str) -> String {
    let mut c: String = id.chars().filter(|c| *c != '"' && *c != '\\').collect();
    while c.len() > 127 {
        c.pop();
    }
    c
}

fn element(key: &str, v: &Value) -> String {
    match v.proxy_port {
        Some(p) => format!("{key} comment \"{}\" : {p}", v.comment),
        None => format!("{key} comment \"{}\"", v.comment),
    }
}

/// Appends `verb element ... { a, b }` per set, for the given elements.
fn commands<'a>(out: &mut String, verb: &str, items: impl Iterator<Item = (&'a (Set, Key), Option<&'a Value>)>) {
    let mut by_set: BTreeMap<Set, Vec<String>> = BTreeMap::new();
    for ((set, key), value) in items {
        by_set.entry(*set).or_default().push(match value {
            Some(v) => element(key, v),
            None => key.clone(),
        });
    }
    for (set, items) in by_set {
        let _ = writeln!(out, "{verb} element ip {TABLE} {} {{ {} }}", set.name(), items.join(", "));
    }
}

/// The table without elements; only changes of the service CIDR change it.
///
/// With `prerouting_reject` (Linux 6.x allows `reject` in prerouting) the
/// refusals happen before routing, so they work on nodes without a route
/// for the service CIDR (the sandbox's nodes have no default route);
/// older kernels get them in the input and forward hooks, as kube-proxy.
pub(crate) fn skeleton(service_cidr: Option<&str>, prerouting_reject: bool) -> String {
    let mut s = format!(
        "table ip {TABLE} {{
  map service-ports {{ type ipv4_addr . inet_proto . inet_service : inet_service; }}
  map nodeport-ports {{ type inet_proto . inet_service : inet_service; }}
  set no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service; }}
  set no-endpoint-nodeports {{ type inet_proto . inet_service; }}
  set proxy-ports {{ type inet_proto . inet_service; }}
  chain services {{
    meta l4proto tcp redirect to : ip daddr . meta l4proto . th dport map @service-ports
    meta l4proto udp redirect to : ip daddr . meta l4proto . th dport map @service-ports
    fib daddr type local meta l4proto tcp redirect to : meta l4proto . th dport map @nodeport-ports
    fib daddr type local meta l4proto udp redirect to : meta l4proto . th dport map @nodeport-ports
  }}
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    jump services
  }}
  chain output {{
    type nat hook output priority -100; policy accept;
    jump services
  }}
  chain reject-no-endpoints {{
    ip daddr . meta l4proto . th dport @no-endpoint-services meta l4proto tcp reject with tcp reset
    ip daddr . meta l4proto . th dport @no-endpoint-services reject
    fib daddr type local meta l4proto . th dport @no-endpoint-nodeports meta l4proto tcp reject with tcp reset
    fib daddr type local meta l4proto . th dport @no-endpoint-nodeports reject
  }}
  chain guard-proxy-ports {{
    meta l4proto . th dport @proxy-ports ct status dnat accept
    meta l4proto . th dport @proxy-ports meta l4proto tcp reject with tcp reset
    meta l4proto . th dport @proxy-ports reject
  }}
  chain filter-input {{
    type filter hook input priority -110; policy accept;
    ct state new jump guard-proxy-ports
  }}
  chain filter-output {{
    type filter hook output priority -110; policy accept;
    ct state new jump reject-no-endpoints
  }}
"
    );
    // Before the redirects (priority -110): addresses without endpoints are
    // in no redirect map, so their packets still carry them.
    let early = if prerouting_reject {
        "  chain filter-prerouting {\n    type filter hook prerouting priority -110; policy accept;\n    \
         ct state new jump reject-no-endpoints\n  }\n"
    } else {
        "  chain filter-input-endpoints {\n    type filter hook input priority -120; policy accept;\n    \
         ct state new jump reject-no-endpoints\n  }\n  chain filter-forward {\n    type filter hook forward \
         priority -110; policy accept;\n    ct state new jump reject-no-endpoints\n  }\n"
    };
    s.push_str(early);
    if let Some(cidr) = service_cidr {
        // After the redirects (priority -90): anything still addressed to
        // the service CIDR is no service port, and is refused.
        let late_hook = if prerouting_reject { "prerouting" } else { "forward" };
        let _ = write!(
            s,
            "  chain reject-service-cidr {{
    ip daddr {cidr} meta l4proto tcp reject with tcp reset
    ip daddr {cidr} reject
  }}
  chain filter-{late_hook}-post-dnat {{
    type filter hook {late_hook} priority -90; policy accept;
    ct state new jump reject-service-cidr
  }}
  chain filter-output-post-dnat {{
    type filter hook output priority -90; policy accept;
    ct state new jump reject-service-cidr
  }}
"
        );
    }
    s.push_str("}\n");
    s
}

/// What was last applied to the node.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// None before the first sync and after a failure: the next sync
    /// replaces the whole table.
    state: Option<(String, Elements)>,
}

impl Applied {
    /// The `nft -f` script that takes the node from what was applied to
    /// `skeleton` with `elements`, or None when nothing changes.
    pub fn script(&self, skeleton: &str, elements: &Elements) -> Option<String> {
        let mut out = String::new();
        match &self.state {
            Some((sk, old)) if sk == skeleton => {
                let stale = old.map.iter().filter(|(k, v)| elements.map.get(*k) != Some(*v)).map(|(k, _)| (k, None));
                commands(&mut out, "delete", stale);
                let fresh = elements.map.iter().filter(|(k, v)| old.map.get(*k) != Some(*v)).map(|(k, v)| (k, Some(v)));
                commands(&mut out, "add", fresh);
                if out.is_empty() {
                    return None;
                }
            }
            _ => {
                // Create-then-delete so the delete never fails, then the
                // whole table, all in one transaction.
                let _ = writeln!(out, "table ip {TABLE}\ndelete table ip {TABLE}");
                out.push_str(skeleton);
                commands(&mut out, "add", elements.map.iter().map(|(k, v)| (k, Some(v))));
            }
        }
        Some(out)
    }

    pub fn set(&mut self, skeleton: String, elements: Elements) {
        self.state = Some((skeleton, elements));
    }

    pub fn invalidate(&mut self) {
        self.state = None;
    }
}

/// Deletes the table (created first so the delete cannot fail).
pub(crate) fn delete_script() -> String {
    format!("table ip {TABLE}\ndelete table ip {TABLE}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);

    fn sample() -> Elements {
        let mut e = Elements::default();
        e.address(VIP, Protocol::Tcp, 80, Some(40001), "default/web:http");
        e.node_port(Protocol::Tcp, 30080, Some(40002), "default/web:http");
        e.address(Ipv4Addr::new(10, 96, 0, 11), Protocol::Udp, 53, None, "kube-system/dns:dns");
        e.proxy_port(Protocol::Tcp, 40001, "default/web:http");
        e.proxy_port(Protocol::Tcp, 40002, "default/web:http");
        e
    }

    #[test]
    fn first_sync_replaces_the_whole_table_in_one_transaction() {
        let sk = skeleton(Some("10.96.0.0/12"), true);
        let script = Applied::default().script(&sk, &sample()).unwrap_or_default();
        assert!(script.starts_with("table ip svcnet-userspace\ndelete table ip svcnet-userspace\ntable ip"));
        for line in [
            "add element ip svcnet-userspace service-ports { 10.96.0.10 . tcp . 80 comment \"default/web:http\" : 40001 }",
            "add element ip svcnet-userspace nodeport-ports { tcp . 30080 comment \"default/web:http\" : 40002 }",
            "add element ip svcnet-userspace no-endpoint-services { 10.96.0.11 . udp . 53 comment \"kube-system/dns:dns\" }",
            "add element ip svcnet-userspace proxy-ports { tcp . 40001 comment \"default/web:http\", tcp . 40002 comment \"default/web:http\" }",
            "ip daddr 10.96.0.0/12 reject",
        ] {
            assert!(script.contains(line), "missing {line:?} in\n{script}");
        }
    }

    #[test]
    fn later_syncs_change_only_changed_elements() {
        let sk = skeleton(None, true);
        let mut applied = Applied::default();
        applied.set(sk.clone(), sample());
        assert_eq!(applied.script(&sk, &sample()), None, "nothing changed, nothing to run");

        // The DNS service got endpoints; the web node port went away.
        let mut next = Elements::default();
        next.address(VIP, Protocol::Tcp, 80, Some(40001), "default/web:http");
        next.address(Ipv4Addr::new(10, 96, 0, 11), Protocol::Udp, 53, Some(40003), "kube-system/dns:dns");
        next.proxy_port(Protocol::Tcp, 40001, "default/web:http");
        next.proxy_port(Protocol::Udp, 40003, "kube-system/dns:dns");
        let script = applied.script(&sk, &next).unwrap_or_default();
        assert_eq!(
            script,
            "delete element ip svcnet-userspace nodeport-ports { tcp . 30080 }\n\
             delete element ip svcnet-userspace no-endpoint-services { 10.96.0.11 . udp . 53 }\n\
             delete element ip svcnet-userspace proxy-ports { tcp . 40002 }\n\
             add element ip svcnet-userspace service-ports { 10.96.0.11 . udp . 53 comment \"kube-system/dns:dns\" : 40003 }\n\
             add element ip svcnet-userspace proxy-ports { udp . 40003 comment \"kube-system/dns:dns\" }\n"
        );
    }

    #[test]
    fn a_changed_service_cidr_or_a_failure_rebuilds_the_table() {
        let mut applied = Applied::default();
        applied.set(skeleton(None, true), sample());
        let rebuilt = applied.script(&skeleton(Some("10.96.0.0/12"), true), &sample()).unwrap_or_default();
        assert!(rebuilt.starts_with("table ip svcnet-userspace\ndelete table"));
        applied.invalidate();
        let rebuilt = applied.script(&skeleton(None, true), &sample()).unwrap_or_default();
        assert!(rebuilt.contains("delete table ip svcnet-userspace\n"));
    }

    #[test]
    fn duplicate_addresses_keep_the_first_claim_and_comments_are_sanitized() {
        let mut e = Elements::default();
        e.address(VIP, Protocol::Tcp, 80, Some(1), "a/x");
        e.address(VIP, Protocol::Tcp, 80, Some(2), "b/\"y\"");
        e.address(VIP, Protocol::Tcp, 81, Some(3), "b/\"y\"");
        assert_eq!(e.get(Set::ServicePorts, "10.96.0.10 . tcp . 80").and_then(|v| v.proxy_port), Some(1));
        assert_eq!(e.get(Set::ServicePorts, "10.96.0.10 . tcp . 81").map(|v| v.comment.as_str()), Some("b/y"));
        assert_eq!(comment(&"x".repeat(300)).len(), 127);
    }
}
