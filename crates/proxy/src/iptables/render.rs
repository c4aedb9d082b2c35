//! Snapshot to ruleset, as a pure function: kube-proxy's iptables layout.
//!
//! ```text
//! nat PREROUTING, OUTPUT ─► KUBE-SERVICES ─┬─ cluster IP:port ─────────► KUBE-SVC-h (or KUBE-SVL-h, internalTrafficPolicy Local)
//!                                          ├─ external/LB IP:port ─────► KUBE-EXT-h
//!                                          └─ (last) dst-type LOCAL ───► KUBE-NODEPORTS ─ node port ─► KUBE-EXT-h
//! KUBE-EXT-h  Cluster: mark for masquerade ─► KUBE-SVC-h
//!             Local:   pods ─► KUBE-SVC-h; node itself: masquerade ─► KUBE-SVC-h; others ─► KUBE-SVL-h
//! KUBE-SVC-h / KUBE-SVL-h: [affinity: recent --rcheck per endpoint] then
//!             statistic random 1/n, 1/(n-1), ... ─► KUBE-SEP-e
//! KUBE-SEP-e: from the endpoint itself (hairpin): mark; [affinity: recent --set]; DNAT
//! nat POSTROUTING ─► KUBE-POSTROUTING: masquerade what is marked 0x4000
//!
//! filter FORWARD, OUTPUT (new) ─► KUBE-SERVICES: no endpoints → REJECT; no local
//!             endpoints → DROP; anything else to the service CIDR not DNATed → DROP
//! filter INPUT, FORWARD (new) ─► KUBE-EXTERNAL-SERVICES: the same for external
//!             IPs, load balancer IPs and node ports
//! filter FORWARD ─► KUBE-FORWARD: drop INVALID, accept marked and established
//!
//! loadBalancerSourceRanges (kube-proxy's KUBE-FW / KUBE-PROXY-FIREWALL):
//! nat KUBE-SERVICES ─ LB IP:port ─► KUBE-FW-h ─ allowed source ─► KUBE-EXT-h;
//!             other sources fall through un-DNATed, and filter KUBE-SERVICES
//!             and KUBE-EXTERNAL-SERVICES drop what is still addressed to the
//!             LB IP:port
//! ```
//!
//! A service without endpoints is refused with a TCP reset (TCP) or an
//! ICMP port unreachable (UDP, SCTP): both are "connection refused" to the
//! client, and the reset saves the client's ICMP handling. kube-proxy uses
//! ICMP port unreachable for every protocol.
//!
//! Every rule carries a comment, and is written the way `iptables-save`
//! prints it back (option order, `--set-xmark`, probabilities), so a save
//! reads like the golden files and can be compared with them line by line.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::model::{Affinity, Endpoint, Protocol, ServicePort, Snapshot};

use super::hash::hash16;
use super::ruleset::{Chain, DISPATCH, Fragment, Ruleset, Table, key_of};

pub const KUBE_SERVICES: &str = "KUBE-SERVICES";
pub const KUBE_NODEPORTS: &str = "KUBE-NODEPORTS";
pub const KUBE_POSTROUTING: &str = "KUBE-POSTROUTING";
pub const KUBE_MARK_MASQ: &str = "KUBE-MARK-MASQ";
pub const KUBE_EXTERNAL_SERVICES: &str = "KUBE-EXTERNAL-SERVICES";
pub const KUBE_FORWARD: &str = "KUBE-FORWARD";

/// The packet mark asking KUBE-POSTROUTING to masquerade.
pub const MASQ_MARK: &str = "0x4000";

/// The chains of one service port, named after `namespace/name:port` and
/// the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceChains {
    /// Every usable endpoint (the Cluster traffic policy).
    pub svc: String,
    /// Local endpoints only (the Local traffic policies).
    pub svl: String,
    /// Node ports, external IPs and load balancer IPs.
    pub ext: String,
    /// Load balancer IPs with loadBalancerSourceRanges: allowed sources
    /// on to `ext`.
    pub fw: String,
}

impl ServiceChains {
    pub fn of(sp: &ServicePort) -> ServiceChains {
        let hash = hash16(&format!("{}{}", sp.id(), sp.protocol.as_str()));
        ServiceChains {
            svc: format!("KUBE-SVC-{hash}"),
            svl: format!("KUBE-SVL-{hash}"),
            ext: format!("KUBE-EXT-{hash}"),
            fw: format!("KUBE-FW-{hash}"),
        }
    }
}

/// `KUBE-SEP-<hash>`: one endpoint of one service port.
pub fn endpoint_chain(sp: &ServicePort, ep: &Endpoint) -> String {
    format!("KUBE-SEP-{}", hash16(&format!("{}{}{}:{}", sp.id(), sp.protocol.as_str(), ep.ip, ep.port)))
}

/// Where a service port's traffic may go.
#[derive(Debug, Clone)]
pub struct Targets<'a> {
    /// Usable endpoints anywhere: ready ones, or, when none is ready,
    /// serving terminating ones.
    pub all: Vec<&'a Endpoint>,
    /// The same choice among this node's endpoints.
    pub local: Vec<&'a Endpoint>,
    internal_local: bool,
    external_local: bool,
}

impl<'a> Targets<'a> {
    /// The same selection as [`ServicePort::cluster_endpoints`] and
    /// [`ServicePort::external_endpoints`], but both policy sets at once:
    /// a Local external policy still sends pods to every endpoint.
    pub fn of(sp: &'a ServicePort) -> Targets<'a> {
        Targets {
            all: usable(sp.endpoints.iter()),
            local: usable(sp.endpoints.iter().filter(|e| e.local)),
            internal_local: sp.internal_local,
            external_local: sp.external_local,
        }
    }

    /// Endpoints for the cluster IP.
    pub fn internal(&self) -> &[&'a Endpoint] {
        if self.internal_local { &self.local } else { &self.all }
    }

    /// Endpoints for node ports, external IPs and load balancer IPs.
    pub fn external(&self) -> &[&'a Endpoint] {
        if self.external_local { &self.local } else { &self.all }
    }
}

fn usable<'a>(eps: impl Iterator<Item = &'a Endpoint> + Clone) -> Vec<&'a Endpoint> {
    let ready: Vec<&Endpoint> = eps.clone().filter(|e| e.ready).collect();
    if !ready.is_empty() {
        return ready;
    }
    eps.filter(|e| e.serving && e.terminating).collect()
}

/// The `iptables-restore` input that programs `snap` on a node with no
/// svcnet rules yet (nat and filter; no jumps from the built-in chains).
pub fn render(snap: &Snapshot) -> String {
    build(snap).full_text()
}

/// The ruleset for `snap`.
pub fn build(snap: &Snapshot) -> Ruleset {
    rebuild(snap, None)
}

/// The ruleset for `snap`, reusing `prev`'s fragments of the service ports
/// that did not change (so a sync at 10,000 services renders one).
pub fn rebuild(snap: &Snapshot, prev: Option<&Ruleset>) -> Ruleset {
    let reusable: HashMap<_, &Arc<Fragment>> = prev
        .map(|p| {
            p.services.iter().filter(|f| f.cluster_cidr == snap.cluster_cidr).map(|f| (key_of(&f.source), f)).collect()
        })
        .unwrap_or_default();
    let mut rs = Ruleset::default();
    let (mut nat, mut filter) = (Table::default(), Table::default());
    for chain in [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ] {
        nat.declare(chain);
    }
    for chain in [KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD] {
        filter.declare(chain);
    }
    nat.add(
        KUBE_POSTROUTING,
        format_args!(
            "-m comment --comment \"not marked for masquerade\" -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN"
        ),
    );
    // Clear the mark (`--xor-mark`, as iptables-save spells it), so a
    // packet that loops back is not masqueraded twice.
    nat.add(
        KUBE_POSTROUTING,
        format_args!("-m comment --comment \"clear the masquerade mark\" -j MARK --set-xmark {MASQ_MARK}/0x0"),
    );
    nat.add(
        KUBE_POSTROUTING,
        format_args!("-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully"),
    );
    // `--or-mark`, as iptables-save spells it.
    nat.add(
        KUBE_MARK_MASQ,
        format_args!("-m comment --comment \"mark for masquerade\" -j MARK --set-xmark {MASQ_MARK}/{MASQ_MARK}"),
    );
    filter.add(
        KUBE_FORWARD,
        format_args!(
            "-m conntrack --ctstate INVALID -m comment --comment \"drop packets conntrack considers invalid\" -j DROP"
        ),
    );
    filter.add(
        KUBE_FORWARD,
        format_args!(
            "-m comment --comment \"kubernetes forwarding rules\" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT"
        ),
    );
    filter.add(
        KUBE_FORWARD,
        format_args!(
            "-m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
        ),
    );

    for sp in &snap.services {
        let fragment = match reusable.get(&key_of(sp)) {
            Some(f) if f.source == *sp => Arc::clone(f),
            _ => Arc::new(fragment(sp, &snap.cluster_cidr)),
        };
        for ((table, chain), lines) in DISPATCH.iter().zip(&fragment.dispatch) {
            if !lines.is_empty() {
                let target = if *table == "nat" { &mut nat } else { &mut filter };
                target.push_rules(chain, lines);
            }
        }
        rs.services.push(fragment);
    }

    // Node ports answer on the node's own addresses, but not on loopback:
    // DNAT from 127.0.0.1 needs route_localnet, which svcnet leaves off.
    nat.add(
        KUBE_SERVICES,
        format_args!(
            "! -d 127.0.0.0/8 -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j {KUBE_NODEPORTS}"
        ),
    );
    if !snap.service_cidr.is_empty() {
        filter.add(
            KUBE_SERVICES,
            format_args!(
                "-d {} -m comment --comment \"drop new connections to unallocated service IPs\" -m conntrack ! --ctstate DNAT -j DROP",
                snap.service_cidr
            ),
        );
    }
    rs.nat = nat;
    rs.filter = filter;
    rs
}

/// Renders one service port: its own chains, and its lines in the
/// dispatch chains.
fn fragment(sp: &ServicePort, cluster_cidr: &str) -> Fragment {
    let (mut nat, mut filter) = (Table::default(), Table::default());
    service(sp, cluster_cidr, &mut nat, &mut filter);
    let mut dispatch: [String; 4] = Default::default();
    let mut chains = Vec::new();
    let mut rule_count = 0;
    for c in nat.chains() {
        match DISPATCH.iter().position(|d| *d == ("nat", c.name.as_str())) {
            Some(i) => dispatch[i] = c.rules.clone(),
            None => {
                rule_count += c.rules.matches('\n').count();
                chains.push(Chain { name: c.name.clone(), rules: c.rules.clone() });
            }
        }
    }
    for c in filter.chains() {
        if let Some(i) = DISPATCH.iter().position(|d| *d == ("filter", c.name.as_str())) {
            dispatch[i] = c.rules.clone();
        }
    }
    Fragment { source: sp.clone(), cluster_cidr: cluster_cidr.to_string(), dispatch, chains, rule_count }
}

/// Comment text, without anything that would end the quoted string.
fn comment(text: &str) -> String {
    text.replace(['"', '\\', '\n'], "")
}

fn reject_with(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp-reset",
        Protocol::Udp | Protocol::Sctp => "icmp-port-unreachable",
    }
}

/// `-d IP/32 -p P -m comment --comment "C" -m P --dport PORT`, in the order
/// `iptables-save` prints it.
fn dest(ip: Ipv4Addr, p: &str, port: u16, comment: &str) -> String {
    format!("-d {ip}/32 -p {p} -m comment --comment \"{comment}\" -m {p} --dport {port}")
}

fn service(sp: &ServicePort, cluster_cidr: &str, nat: &mut Table, filter: &mut Table) {
    let id = comment(&sp.id());
    let p = sp.protocol.as_str();
    let chains = ServiceChains::of(sp);
    let targets = Targets::of(sp);
    let external = sp.is_external();

    let need_svc = !targets.all.is_empty() && (!sp.internal_local || external);
    let need_svl = !targets.local.is_empty() && (sp.internal_local || (external && sp.external_local));
    let need_ext = external && !targets.all.is_empty();
    let internal_chain = if sp.internal_local { &chains.svl } else { &chains.svc };

    // The cluster IP.
    if !targets.internal().is_empty() {
        let d = dest(sp.cluster_ip, p, sp.port, &format!("{id} cluster IP"));
        nat.add(KUBE_SERVICES, format_args!("{d} -j {internal_chain}"));
    } else {
        let (why, verdict) = refusal(&targets, sp.internal_local, sp.protocol);
        let d = dest(sp.cluster_ip, p, sp.port, &format!("{id} {why}"));
        filter.add(KUBE_SERVICES, format_args!("{d} -j {verdict}"));
    }

    // loadBalancerSourceRanges, as kube-proxy: only while there are
    // endpoints (without, the LB IPs are refused as usual).
    let firewall = need_ext && sp.has_source_ranges();
    if firewall {
        for cidr in &sp.load_balancer_source_ranges {
            nat.add(
                &chains.fw,
                format_args!("-s {cidr} -m comment --comment \"{id} loadbalancer IP\" -j {}", chains.ext),
            );
        }
        nat.add(
            &chains.fw,
            format_args!("-m comment --comment \"other traffic to {id} will be dropped by the filter table\""),
        );
        for ip in &sp.load_balancer_ips {
            let d = dest(*ip, p, sp.port, &format!("{id} traffic not accepted by {}", chains.fw));
            filter.add(KUBE_SERVICES, format_args!("{d} -j DROP"));
            filter.add(KUBE_EXTERNAL_SERVICES, format_args!("{d} -j DROP"));
        }
    }

    // External IPs and load balancer IPs.
    let outside = sp.external_ips.iter().map(|ip| (ip, "external IP", &chains.ext)).chain(
        sp.load_balancer_ips.iter().map(|ip| (ip, "loadbalancer IP", if firewall { &chains.fw } else { &chains.ext })),
    );
    for (ip, kind, target) in outside {
        if need_ext {
            let d = dest(*ip, p, sp.port, &format!("{id} {kind}"));
            nat.add(KUBE_SERVICES, format_args!("{d} -j {target}"));
        }
        if targets.external().is_empty() {
            let (why, verdict) = refusal(&targets, sp.external_local, sp.protocol);
            let d = dest(*ip, p, sp.port, &format!("{id} {why}"));
            filter.add(KUBE_EXTERNAL_SERVICES, format_args!("{d} -j {verdict}"));
        }
    }

    // The node port.
    if let Some(np) = sp.node_port {
        if need_ext {
            nat.add(
                KUBE_NODEPORTS,
                format_args!("-p {p} -m comment --comment \"{id}\" -m {p} --dport {np} -j {}", chains.ext),
            );
        }
        if targets.external().is_empty() {
            let (why, verdict) = refusal(&targets, sp.external_local, sp.protocol);
            filter.add(
                KUBE_EXTERNAL_SERVICES,
                format_args!(
                    "-p {p} -m comment --comment \"{id} {why}\" -m addrtype --dst-type LOCAL -m {p} --dport {np} -j {verdict}"
                ),
            );
        }
    }

    // Traffic from outside the pod network to the cluster IP leaves with
    // the node's address, so replies come back through this node.
    let masq_outsiders = |table: &mut Table, chain: &str| {
        if !cluster_cidr.is_empty() {
            let d = dest(sp.cluster_ip, p, sp.port, &format!("{id} cluster IP"));
            table.add(chain, format_args!("! -s {cluster_cidr} {d} -j {KUBE_MARK_MASQ}"));
        }
    };
    if need_svc {
        nat.declare(&chains.svc);
        if !sp.internal_local {
            masq_outsiders(nat, &chains.svc);
        }
        balance(nat, &chains.svc, sp, &id, &targets.all);
    }
    if need_svl {
        nat.declare(&chains.svl);
        if sp.internal_local {
            masq_outsiders(nat, &chains.svl);
        }
        balance(nat, &chains.svl, sp, &id, &targets.local);
    }
    if need_ext {
        let ext = &chains.ext;
        if !sp.external_local {
            nat.add(
                ext,
                format_args!(
                    "-m comment --comment \"masquerade traffic for {id} external destinations\" -j {KUBE_MARK_MASQ}"
                ),
            );
            nat.add(ext, format_args!("-m comment --comment \"{id} to every endpoint\" -j {}", chains.svc));
        } else {
            // Local policy: only this node's endpoints, with the client's
            // address kept. Pods and the node itself may use any endpoint.
            if !cluster_cidr.is_empty() {
                nat.add(
                    ext,
                    format_args!(
                        "-s {cluster_cidr} -m comment --comment \"pod traffic for {id} external destinations\" -j {}",
                        chains.svc
                    ),
                );
            }
            nat.add(
                ext,
                format_args!(
                    "-m comment --comment \"masquerade LOCAL traffic for {id} external destinations\" -m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}"
                ),
            );
            nat.add(
                ext,
                format_args!(
                    "-m comment --comment \"route LOCAL traffic for {id} external destinations\" -m addrtype --src-type LOCAL -j {}",
                    chains.svc
                ),
            );
            if !targets.local.is_empty() {
                nat.add(ext, format_args!("-m comment --comment \"{id} to local endpoints\" -j {}", chains.svl));
            }
        }
    }

    // One chain per endpoint, shared by KUBE-SVC and KUBE-SVL.
    let mut seps: Vec<&Endpoint> = Vec::new();
    if need_svc {
        seps.extend(targets.all.iter().copied());
    }
    if need_svl {
        for ep in &targets.local {
            if !seps.iter().any(|e| e.ip == ep.ip && e.port == ep.port) {
                seps.push(ep);
            }
        }
    }
    for ep in seps {
        let sep = endpoint_chain(sp, ep);
        nat.add(&sep, format_args!("-s {}/32 -m comment --comment \"{id}\" -j {KUBE_MARK_MASQ}", ep.ip));
        let mut spec = format!("-p {p} -m comment --comment \"{id}\"");
        if let Affinity::ClientIp { .. } = sp.affinity {
            let _ = write!(spec, " -m recent --set --name {sep} --mask 255.255.255.255 --rsource");
        }
        nat.add(&sep, format_args!("{spec} -j DNAT --to-destination {}:{}", ep.ip, ep.port));
    }
}

/// Why traffic that has nowhere to go is refused, and how: no endpoints
/// at all is a REJECT (fast failure); endpoints only on other nodes under
/// a Local policy is a DROP, as kube-proxy does.
fn refusal(targets: &Targets<'_>, local_policy: bool, protocol: Protocol) -> (&'static str, String) {
    if local_policy && !targets.all.is_empty() {
        ("has no local endpoints", "DROP".to_string())
    } else {
        ("has no endpoints", format!("REJECT --reject-with {}", reject_with(protocol)))
    }
}

/// The endpoint choice in a KUBE-SVC or KUBE-SVL chain: sticky clients
/// first (ClientIP affinity), then a uniform random pick: the i-th of n
/// rules matches with probability 1/(n-i), the last always.
fn balance(nat: &mut Table, chain: &str, sp: &ServicePort, id: &str, eps: &[&Endpoint]) {
    if let Affinity::ClientIp { timeout_seconds } = sp.affinity {
        for ep in eps {
            let sep = endpoint_chain(sp, ep);
            nat.add(
                chain,
                format_args!(
                    "-m comment --comment \"{id} -> {}:{}\" -m recent --rcheck --seconds {timeout_seconds} --reap --name {sep} --mask 255.255.255.255 --rsource -j {sep}",
                    ep.ip, ep.port
                ),
            );
        }
    }
    let n = eps.len();
    for (i, ep) in eps.iter().enumerate() {
        let sep = endpoint_chain(sp, ep);
        if i + 1 < n {
            let probability = probability(n - i);
            nat.add(
                chain,
                format_args!(
                    "-m comment --comment \"{id} -> {}:{}\" -m statistic --mode random --probability {probability} -j {sep}",
                    ep.ip, ep.port
                ),
            );
        } else {
            nat.add(chain, format_args!("-m comment --comment \"{id} -> {}:{}\" -j {sep}", ep.ip, ep.port));
        }
    }
}

/// 1/`n` as the statistic match keeps it (a fraction of 2^31) and
/// iptables-save prints it, so rendered rules read exactly as saved ones.
fn probability(n: usize) -> String {
    const SCALE: f64 = 2_147_483_648.0;
    format!("{:.11}", (SCALE / n as f64).round() / SCALE)
}
