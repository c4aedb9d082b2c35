//! What one service port contributes to the table: map elements (binary,
//! `nft/elem.rs`), and the few chains and sets that cannot be shared
//! (ClientIP affinity, externalTrafficPolicy Local, loadBalancerSourceRanges).
//! Pure, but for the shared balancing chains, made once per ruleset
//! ([`Shared`]).
//!
//! Plain service ports own no chain: their addresses point into shared
//! `lb-<proto>-N` chains that pick slot `numgen random mod N` of the
//! address in the `endpoints-<proto>` map, so the kernel holds one element
//! per endpoint and one rule per distinct endpoint count, however many
//! Services there are.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::sync::Arc;

use super::elem::{Key, Value};
use super::table::{Chain, Decl, DeclKind, Map};
use super::{Facts, MASQ_MARK};
use crate::model::{Affinity, Endpoint, Protocol, ServicePort};

/// Everything one service port adds to the table. Elements carry no
/// comment: the verdict maps' comment is the owner's id, written when
/// rendered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fragment {
    pub chains: Vec<Arc<Chain>>,
    /// Sets and maps: ClientIP affinity sets, the slot maps in use.
    pub decls: Vec<Arc<Decl>>,
    pub elems: Vec<(Map, Key, Value)>,
}

impl Fragment {
    fn elem(&mut self, map: Map, key: Key, value: Value) {
        self.elems.push((map, key, value));
    }

    fn chain(&mut self, chain: Arc<Chain>) {
        if !self.chains.iter().any(|c| c.name == chain.name) {
            self.chains.push(chain);
        }
    }

    fn decl(&mut self, decl: Arc<Decl>) {
        if !self.decls.iter().any(|d| d.name == decl.name) {
            self.decls.push(decl);
        }
    }
}

/// The objects thousands of service ports share, made once: the
/// balancing chains with their slot maps' declarations, and the name of
/// the reject chain. Each service port's fragment holds pointers to them.
#[derive(Debug)]
pub struct Shared {
    lbs: HashMap<(Lb, Protocol, usize, bool), LbObjects>,
    reject: Arc<str>,
}

impl Default for Shared {
    fn default() -> Shared {
        Shared { lbs: HashMap::new(), reject: Arc::from("reject-chain") }
    }
}

#[derive(Debug)]
struct LbObjects {
    /// The chain a service address goes to.
    entry: Arc<str>,
    chains: Vec<Arc<Chain>>,
    decl: Arc<Decl>,
}

/// The shared balancing chains, one per (family, protocol, endpoint
/// count): each picks a slot of the packet's address in its family's map
/// for that protocol (one map per protocol, so that the DNAT rule's port
/// is the protocol's own: nft 1.0.6 can neither re-read a `th dport` map
/// value nor keep a `tcp dport` one from matching TCP only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lb {
    /// Cluster IPs (cluster endpoints), external and LB IPs (external
    /// endpoints), keyed by the packet's address and port.
    Address,
    /// Node ports, keyed by port.
    NodePort,
    /// Pods and the node itself reaching an external address of an
    /// externalTrafficPolicy Local service: cluster endpoints.
    InternalAddress,
    InternalNodePort,
}

impl Lb {
    fn prefix(self) -> &'static str {
        match self {
            Lb::Address => "lb",
            Lb::NodePort => "nodeport-lb",
            Lb::InternalAddress => "internal-lb",
            Lb::InternalNodePort => "nodeport-internal-lb",
        }
    }

    /// The slot map's name prefix (`endpoints-tcp`, ...).
    pub fn map_prefix(self) -> &'static str {
        match self {
            Lb::Address => "endpoints",
            Lb::NodePort => "nodeport-endpoints",
            Lb::InternalAddress => "internal-endpoints",
            Lb::InternalNodePort => "nodeport-internal-endpoints",
        }
    }

    fn key_expr(self, p: Protocol) -> String {
        let p = p.as_str();
        match self {
            Lb::Address | Lb::InternalAddress => format!("ip daddr . {p} dport"),
            Lb::NodePort | Lb::InternalNodePort => format!("{p} dport"),
        }
    }

    /// The slot map's declaration.
    fn decl(self, p: Protocol) -> Decl {
        let what = match self {
            Lb::Address => "slot N of an address",
            Lb::NodePort => "slot N of a node port",
            Lb::InternalAddress => "slot N of an address, from inside (Local)",
            Lb::InternalNodePort => "slot N of a node port, from inside (Local)",
        };
        Decl {
            name: Map::Slots(self, p).name().into(),
            kind: DeclKind::Map,
            body: format!(
                "typeof {} . numgen random mod 1 : ip daddr . {} dport; comment \"{what}\";",
                self.key_expr(p),
                p.as_str()
            ),
        }
    }

    /// The chain balancing over `n` slots (`masq`: marking the packet for
    /// masquerade first), and the objects it needs.
    fn objects(self, p: Protocol, n: usize, masq: bool) -> LbObjects {
        let plain: Arc<str> = format!("{}-{}-{n}", self.prefix(), p.as_str()).into();
        let mut chains = vec![Arc::new(Chain {
            name: plain.clone(),
            comment: None,
            rules: vec![format!(
                "dnat ip addr . port to {} . numgen random mod {n} map @{}",
                self.key_expr(p),
                Map::Slots(self, p).name()
            )],
        })];
        let decl = Arc::new(self.decl(p));
        if !masq {
            return LbObjects { entry: plain, chains, decl };
        }
        let name: Arc<str> = format!("{plain}-masq").into();
        chains.push(Arc::new(Chain {
            name: name.clone(),
            comment: None,
            rules: vec![format!("{} goto {plain}", mark_rule())],
        }));
        LbObjects { entry: name, chains, decl }
    }
}

pub fn mark_rule() -> String {
    format!("meta mark set meta mark | {MASQ_MARK:#010x}")
}

/// A name component safe in an nft identifier (`[a-zA-Z0-9_.-]`).
fn ident(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}

/// Text safe inside an nft comment (at most 128 bytes, no quotes).
pub fn comment_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(super::elem::COMMENT_MAX));
    super::elem::push_comment(&mut out, s);
    out
}

/// `namespace/name/proto[/port]`, the service port in chain and set names.
pub fn chain_id(svc: &ServicePort) -> String {
    let mut id = format!("{}/{}/{}", ident(&svc.namespace), ident(&svc.name), svc.protocol.as_str());
    if !svc.port_name.is_empty() {
        id.push('/');
        id.push_str(&ident(&svc.port_name));
    }
    id
}

fn endpoint_suffix(e: &Endpoint) -> String {
    format!("{}/{}", e.ip, e.port)
}

/// True when some endpoint can serve (ready, or serving while terminating).
pub fn has_usable_endpoints(svc: &ServicePort) -> bool {
    svc.endpoints.iter().any(|e| e.ready || (e.serving && e.terminating))
}

/// The external and load balancer IPs, without duplicates (nor the
/// cluster IP).
pub fn external_addresses(svc: &ServicePort) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = Vec::new();
    for ip in svc.external_ips.iter().chain(&svc.load_balancer_ips) {
        if *ip != svc.cluster_ip && !ip.is_unspecified() && !out.contains(ip) {
            out.push(*ip);
        }
    }
    out
}

pub fn has_cluster_ip(svc: &ServicePort) -> bool {
    !svc.cluster_ip.is_unspecified()
}

fn same_endpoints(a: &[&Endpoint], b: &[&Endpoint]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.ip == y.ip && x.port == y.port)
}

/// The fragment of one service port.
pub fn fragment(svc: &ServicePort, facts: &Facts, shared: &mut Shared) -> Fragment {
    // Room for the usual case: the cluster IP, its address, a slot and a
    // hairpin element per endpoint.
    let mut f = Fragment { elems: Vec::with_capacity(4 + 2 * svc.endpoints.len()), ..Fragment::default() };
    let id = comment_text(&svc.id());
    let cluster = svc.cluster_endpoints();
    let external = svc.external_endpoints();
    let externals = external_addresses(svc);
    let cluster_ip = has_cluster_ip(svc).then_some(svc.cluster_ip);
    let p = svc.protocol;
    // Without a usable endpoint anywhere the service rejects; with some,
    // but none for this traffic's policy (Local), it drops, as kube-proxy.
    let no_endpoints = if has_usable_endpoints(svc) { Value::Drop } else { Value::Goto(shared.reject.clone()) };

    if let Some(ip) = cluster_ip {
        f.elem(Map::ClusterIps, Key::ip(ip), Value::None);
        if cluster.is_empty() {
            f.elem(Map::NoEndpointServices, Key::address(ip, p, svc.port), no_endpoints.clone());
        }
    }
    if external.is_empty() {
        for ip in &externals {
            f.elem(Map::NoEndpointServices, Key::address(*ip, p, svc.port), no_endpoints.clone());
        }
        if let Some(np) = svc.node_port {
            f.elem(Map::NoEndpointNodeports, Key::node_port(p, np), no_endpoints.clone());
        }
    }
    let mut hairpin: Vec<Ipv4Addr> = Vec::new();
    for e in cluster.iter().chain(&external) {
        if e.local && !hairpin.contains(&e.ip) {
            hairpin.push(e.ip);
            f.elem(Map::Hairpin, Key::pair(e.ip, e.ip), Value::None);
        }
    }

    if svc.has_source_ranges() {
        firewall(&mut f, svc, &id);
    }

    let ctx = Ctx { svc, facts, id: &id, cluster_ip, externals: &externals, cluster: &cluster, external: &external };
    match svc.affinity {
        Affinity::None => plain(&mut f, shared, &ctx),
        Affinity::ClientIp { timeout_seconds } => affinity(&mut f, &ctx, timeout_seconds.max(1)),
    }
    f
}

/// loadBalancerSourceRanges: the LB IPs go to a chain of the Service's
/// own (only Services with ranges have one), checked before any DNAT,
/// returning for allowed sources and dropping the others. One rule per
/// range rather than kube-proxy's `ip saddr != { … } drop`: no anonymous
/// set to bind (`nft.rs`), and a handful of ranges is the usual case.
fn firewall(f: &mut Fragment, svc: &ServicePort, id: &str) {
    let mut rules: Vec<String> =
        svc.load_balancer_source_ranges.iter().map(|c| format!("ip saddr {c} return")).collect();
    rules.push("drop".into());
    let name: Arc<str> = format!("firewall-{}", chain_id(svc)).into();
    f.chain(Arc::new(Chain { name: name.clone(), comment: Some(format!("{id} loadBalancerSourceRanges")), rules }));
    let mut seen: Vec<Ipv4Addr> = Vec::new();
    for ip in &svc.load_balancer_ips {
        if *ip == svc.cluster_ip || ip.is_unspecified() || seen.contains(ip) {
            continue;
        }
        seen.push(*ip);
        f.elem(Map::FirewallIps, Key::address(*ip, svc.protocol, svc.port), Value::Goto(name.clone()));
    }
}

/// What the balancing part of a fragment is made from.
struct Ctx<'a> {
    svc: &'a ServicePort,
    facts: &'a Facts,
    /// The id, as a comment.
    id: &'a str,
    cluster_ip: Option<Ipv4Addr>,
    externals: &'a [Ipv4Addr],
    cluster: &'a [&'a Endpoint],
    external: &'a [&'a Endpoint],
}

/// The slots of an address (`ip . port . N`) or node port (`port . N`).
#[derive(Clone, Copy)]
enum SlotsOf {
    Address(Ipv4Addr, u16),
    NodePort(u16),
}

fn slots(f: &mut Fragment, map: Map, of: SlotsOf, eps: &[&Endpoint]) {
    for (i, e) in eps.iter().enumerate() {
        let key = match of {
            SlotsOf::Address(ip, port) => Key::address_slot(ip, port, i as u32),
            SlotsOf::NodePort(port) => Key::port_slot(port, i as u32),
        };
        f.elem(map, key, Value::Target(e.ip, e.port));
    }
}

/// The shared balancing chain over `n` slots (and what it needs), made
/// once per ruleset; returns its name, to go to.
fn lb(f: &mut Fragment, shared: &mut Shared, kind: Lb, p: Protocol, n: usize, masq: bool) -> Arc<str> {
    let o = shared.lbs.entry((kind, p, n, masq)).or_insert_with(|| kind.objects(p, n, masq));
    f.decl(o.decl.clone());
    for c in &o.chains {
        f.chain(c.clone());
    }
    o.entry.clone()
}

fn plain(f: &mut Fragment, shared: &mut Shared, ctx: &Ctx<'_>) {
    let Ctx { svc, facts, id, cluster_ip, externals, cluster, external } = *ctx;
    let p = svc.protocol;
    if let (Some(ip), false) = (cluster_ip, cluster.is_empty()) {
        let chain = lb(f, shared, Lb::Address, p, cluster.len(), false);
        f.elem(Map::ServiceIps, Key::address(ip, p, svc.port), Value::Goto(chain));
        slots(f, Map::Slots(Lb::Address, p), SlotsOf::Address(ip, svc.port), cluster);
    }
    if !svc.external_local {
        if external.is_empty() {
            return;
        }
        if !externals.is_empty() {
            let chain = lb(f, shared, Lb::Address, p, external.len(), true);
            for ip in externals {
                f.elem(Map::ServiceIps, Key::address(*ip, p, svc.port), Value::Goto(chain.clone()));
                slots(f, Map::Slots(Lb::Address, p), SlotsOf::Address(*ip, svc.port), external);
            }
        }
        if let Some(np) = svc.node_port {
            let chain = lb(f, shared, Lb::NodePort, p, external.len(), true);
            f.elem(Map::ServiceNodeports, Key::node_port(p, np), Value::Goto(chain));
            slots(f, Map::Slots(Lb::NodePort, p), SlotsOf::NodePort(np), external);
        }
        return;
    }
    // externalTrafficPolicy Local: outside clients reach local endpoints
    // with their own address; pods of the cluster and the node itself
    // (masqueraded) are short-circuited to the cluster endpoints.
    if cluster.is_empty() && external.is_empty() {
        return;
    }
    let cid = chain_id(svc);
    let families = [
        (!externals.is_empty(), format!("external-{cid}"), Lb::InternalAddress, Lb::Address),
        (svc.node_port.is_some(), format!("nodeport-{cid}"), Lb::InternalNodePort, Lb::NodePort),
    ];
    for (used, name, internal_lb, external_lb) in families {
        if !used {
            continue;
        }
        let mut rules = Vec::new();
        if !cluster.is_empty() {
            let internal = lb(f, shared, internal_lb, p, cluster.len(), false);
            if let Some(cidr) = facts.cluster_cidr {
                rules.push(format!("ip saddr {cidr} goto {internal} comment \"pods: cluster endpoints\""));
            }
            let internal_masq = lb(f, shared, internal_lb, p, cluster.len(), true);
            rules.push(format!("fib saddr type local goto {internal_masq} comment \"the node: cluster endpoints\""));
        }
        if !external.is_empty() {
            let local = lb(f, shared, external_lb, p, external.len(), false);
            rules.push(format!("goto {local}"));
        }
        let name: Arc<str> = name.into();
        f.chain(Arc::new(Chain {
            name: name.clone(),
            comment: Some(format!("{id} externalTrafficPolicy Local")),
            rules,
        }));
        if external_lb == Lb::Address {
            for ip in externals {
                f.elem(Map::ServiceIps, Key::address(*ip, p, svc.port), Value::Goto(name.clone()));
                let of = SlotsOf::Address(*ip, svc.port);
                slots(f, Map::Slots(Lb::InternalAddress, p), of, cluster);
                slots(f, Map::Slots(Lb::Address, p), of, external);
            }
        } else if let Some(np) = svc.node_port {
            f.elem(Map::ServiceNodeports, Key::node_port(p, np), Value::Goto(name));
            slots(f, Map::Slots(Lb::InternalNodePort, p), SlotsOf::NodePort(np), cluster);
            slots(f, Map::Slots(Lb::NodePort, p), SlotsOf::NodePort(np), external);
        }
    }
}

/// ClientIP affinity: a chain and a dynamic set per endpoint, as in
/// kube-proxy; the endpoint chain records the client, the service chain
/// sends a recorded client back to its endpoint before balancing.
fn affinity(f: &mut Fragment, ctx: &Ctx<'_>, timeout: u32) {
    let Ctx { svc, facts, id, cluster_ip, externals, cluster, external } = *ctx;
    let p = svc.protocol;
    let cid = chain_id(svc);
    let proto = p.as_str();
    let what = format!("{id} ClientIP affinity");
    let mut seen: Vec<(Ipv4Addr, u16)> = Vec::new();
    for e in cluster.iter().chain(external) {
        if seen.contains(&(e.ip, e.port)) {
            continue;
        }
        seen.push((e.ip, e.port));
        let suffix = endpoint_suffix(e);
        let set = format!("affinity-{cid}__{suffix}");
        f.decl(Arc::new(Decl {
            name: set.as_str().into(),
            kind: DeclKind::Set,
            body: format!("type ipv4_addr; flags dynamic,timeout; timeout {timeout}s;"),
        }));
        f.chain(Arc::new(Chain {
            name: format!("endpoint-{cid}__{suffix}").into(),
            comment: Some(what.clone()),
            rules: vec![
                format!("update @{set} {{ ip saddr }}"),
                format!("meta l4proto {proto} dnat to {}:{}", e.ip, e.port),
            ],
        }));
    }
    let balance = |eps: &[&Endpoint]| -> Vec<String> {
        let mut rules: Vec<String> = eps
            .iter()
            .map(|e| {
                let suffix = endpoint_suffix(e);
                format!("ip saddr @affinity-{cid}__{suffix} goto endpoint-{cid}__{suffix}")
            })
            .collect();
        let mut vmap = String::new();
        for (i, e) in eps.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(vmap, "{sep}{i} : goto endpoint-{cid}__{}", endpoint_suffix(e));
        }
        rules.push(format!("numgen random mod {} vmap {{ {vmap} }}", eps.len()));
        rules
    };
    let service: Arc<str> = format!("service-{cid}").into();
    if !cluster.is_empty() {
        f.chain(Arc::new(Chain { name: service.clone(), comment: Some(what.clone()), rules: balance(cluster) }));
        if let Some(ip) = cluster_ip {
            f.elem(Map::ServiceIps, Key::address(ip, p, svc.port), Value::Goto(service.clone()));
        }
    }
    let needed = svc.is_external()
        && if svc.external_local { !cluster.is_empty() || !external.is_empty() } else { !external.is_empty() };
    if !needed {
        return;
    }
    let mut rules = Vec::new();
    if svc.external_local {
        if !cluster.is_empty() {
            if let Some(cidr) = facts.cluster_cidr {
                rules.push(format!("ip saddr {cidr} goto {service} comment \"pods: cluster endpoints\""));
            }
            rules.push(format!(
                "fib saddr type local {} goto {service} comment \"the node: cluster endpoints\"",
                mark_rule()
            ));
        }
        if !external.is_empty() {
            rules.extend(balance(external));
        }
    } else {
        rules.push(mark_rule());
        if same_endpoints(cluster, external) {
            rules.push(format!("goto {service}"));
        } else {
            rules.extend(balance(external));
        }
    }
    let name: Arc<str> = format!("external-{cid}").into();
    f.chain(Arc::new(Chain { name: name.clone(), comment: Some(what), rules }));
    for ip in externals {
        f.elem(Map::ServiceIps, Key::address(*ip, p, svc.port), Value::Goto(name.clone()));
    }
    if let Some(np) = svc.node_port {
        f.elem(Map::ServiceNodeports, Key::node_port(p, np), Value::Goto(name));
    }
}
