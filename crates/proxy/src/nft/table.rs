//! The table `ip svcnet` as data: its fixed skeleton, and the chains, sets
//! and map elements service ports contribute, with the two renderings the
//! data plane applies: the whole table, and the transaction from what was
//! applied last to what is wanted now. Pure.
//!
//! Several service ports may contribute the same object (a shared `lb-N`
//! chain, a hairpin element, two Services claiming one external IP): each
//! object remembers its owners, the first by id wins, and it leaves the
//! kernel only with its last owner.
//!
//! Memory: 10,000 service ports × 10 endpoints make about 120,000
//! elements. Each is held once, in the per-map index, as its binary key
//! and value (`nft/elem.rs`) with its owner; a service port keeps a compact
//! copy of what it was rendered from and the names and keys of what it
//! contributed, so that a change withdraws exactly that. Shared chains
//! and declarations are one allocation each, pointed to by every owner.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::sync::Arc;

use super::elem::{self, Key, Value};
use super::netlink;
use super::service::{self, Fragment, Lb, comment_text, mark_rule};
use super::{Facts, MASQ_MARK, TABLE};
use crate::model::{Affinity, Cidr, Endpoint, Protocol, ServicePort, Snapshot};

/// The table's maps and sets that hold elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Map {
    ServiceIps,
    ServiceNodeports,
    NoEndpointServices,
    NoEndpointNodeports,
    ClusterIps,
    Hairpin,
    /// LB IPs of Services with loadBalancerSourceRanges, to their
    /// `firewall-<svc>` chain.
    FirewallIps,
    /// `endpoints-tcp`, `nodeport-endpoints-udp`, ...: declared while a
    /// balancing chain uses them.
    Slots(Lb, Protocol),
}

impl Map {
    /// The maps every table declares.
    pub const FIXED: [Map; 7] = [
        Map::ServiceIps,
        Map::ServiceNodeports,
        Map::NoEndpointServices,
        Map::NoEndpointNodeports,
        Map::ClusterIps,
        Map::Hairpin,
        Map::FirewallIps,
    ];

    pub fn name(self) -> String {
        match self {
            Map::ServiceIps => "service-ips".into(),
            Map::ServiceNodeports => "service-nodeports".into(),
            Map::NoEndpointServices => "no-endpoint-services".into(),
            Map::NoEndpointNodeports => "no-endpoint-nodeports".into(),
            Map::ClusterIps => "cluster-ips".into(),
            Map::Hairpin => "hairpin".into(),
            Map::FirewallIps => "firewall-ips".into(),
            Map::Slots(lb, p) => format!("{}-{}", lb.map_prefix(), p.as_str()),
        }
    }

    fn is_map(self) -> bool {
        !matches!(self, Map::ClusterIps | Map::Hairpin)
    }

    /// The declaration of a fixed map or set.
    fn decl(self) -> &'static str {
        match self {
            Map::ServiceIps => {
                "type ipv4_addr . inet_proto . inet_service : verdict; comment \"cluster, external and LB IPs\";"
            }
            Map::ServiceNodeports => "type inet_proto . inet_service : verdict; comment \"node ports\";",
            Map::NoEndpointServices => {
                "type ipv4_addr . inet_proto . inet_service : verdict; comment \"addresses without endpoints\";"
            }
            Map::NoEndpointNodeports => {
                "type inet_proto . inet_service : verdict; comment \"node ports without endpoints\";"
            }
            Map::ClusterIps => "type ipv4_addr; comment \"every cluster IP\";",
            Map::Hairpin => "type ipv4_addr . ipv4_addr; comment \"local endpoints reaching themselves\";",
            Map::FirewallIps => {
                "type ipv4_addr . inet_proto . inet_service : verdict; comment \"LB IPs with loadBalancerSourceRanges\";"
            }
            Map::Slots(..) => "",
        }
    }
}

/// A regular chain's name, comment and rules (nft text, one per rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Shared with the elements going to it.
    pub name: Arc<str>,
    pub comment: Option<String>,
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclKind {
    Set,
    Map,
}

impl DeclKind {
    fn keyword(self) -> &'static str {
        match self {
            DeclKind::Set => "set",
            DeclKind::Map => "map",
        }
    }
}

/// A set or map that exists while a service port needs it: a ClientIP
/// affinity set (clients seen by one endpoint), a slot map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decl {
    pub name: Arc<str>,
    pub kind: DeclKind,
    /// What goes between the braces.
    pub body: String,
}

/// The base chains, hooked into netfilter; every other chain hangs off them.
pub const BASE_CHAINS: [&str; 5] =
    ["nat-prerouting", "nat-output", "nat-postrouting", "filter-prerouting", "filter-output"];

/// The fixed chains: `(name, hook line, rules)`.
fn skeleton(facts: &Facts) -> Vec<(&'static str, Option<&'static str>, Vec<String>)> {
    let cluster_ip_masq = match facts.cluster_cidr {
        Some(cidr) => format!(
            "ip daddr @cluster-ips ip saddr != {cidr} {} comment \"cluster IP from outside the cluster\"",
            mark_rule()
        ),
        None => format!("ip daddr @cluster-ips {} comment \"cluster IP (pod CIDR unknown)\"", mark_rule()),
    };
    let mut cluster_ips_check =
        vec!["ip daddr @cluster-ips goto reject-chain comment \"no such port on a cluster IP\"".to_string()];
    if let Some(cidr) = facts.service_cidr {
        cluster_ips_check.push(format!("ip daddr {cidr} drop comment \"unallocated cluster IP\""));
    }
    let checks =
        || vec!["ct state new jump endpoints-check".to_string(), "ct state new jump cluster-ips-check".to_string()];
    vec![
        // Before any DNAT: an LB IP of a Service with
        // loadBalancerSourceRanges goes to its `firewall-<svc>` chain,
        // which returns for allowed sources and drops the rest.
        ("firewall-check", None, vec!["ip daddr . meta l4proto . th dport vmap @firewall-ips".into()]),
        (
            "services",
            None,
            vec![
                "jump firewall-check".into(),
                cluster_ip_masq,
                "ip daddr . meta l4proto . th dport vmap @service-ips".into(),
                "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports".into(),
            ],
        ),
        (
            "nat-prerouting",
            Some("type nat hook prerouting priority dstnat; policy accept;"),
            vec!["jump services".into()],
        ),
        ("nat-output", Some("type nat hook output priority -100; policy accept;"), vec!["jump services".into()]),
        (
            "nat-postrouting",
            Some("type nat hook postrouting priority srcnat; policy accept;"),
            vec![
                "ct status dnat ip saddr . ip daddr @hairpin masquerade fully-random \
                 comment \"hairpin: an endpoint reaching itself through its service\""
                    .into(),
                format!("meta mark & {MASQ_MARK:#010x} == 0 return"),
                format!("meta mark set meta mark ^ {MASQ_MARK:#010x}"),
                "masquerade fully-random".into(),
            ],
        ),
        ("reject-chain", None, vec!["meta l4proto tcp reject with tcp reset".into(), "reject".into()]),
        (
            "endpoints-check",
            None,
            vec![
                "ip daddr . meta l4proto . th dport vmap @no-endpoint-services".into(),
                "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports"
                    .into(),
            ],
        ),
        ("cluster-ips-check", None, cluster_ips_check),
        // After DNAT (dstnat + 10): a packet still addressed to a service
        // found no endpoint. Prerouting rather than forward, so that it is
        // answered even when the node has no route to the service CIDR.
        ("filter-prerouting", Some("type filter hook prerouting priority dstnat + 10; policy accept;"), checks()),
        ("filter-output", Some("type filter hook output priority -90; policy accept;"), checks()),
    ]
}

type Owner = Arc<str>;

/// An object and the service ports contributing it. Most objects have
/// one owner; a shared one (an `lb-N` chain, a slot map) may have
/// thousands, kept ordered so that the first is found at once.
#[derive(Debug, Clone)]
enum Owned<T> {
    One(Owner, T),
    Many(BTreeMap<Owner, T>),
}

impl<T> Owned<T> {
    /// The owner that counts (the first by id) and its version.
    fn first(&self) -> Option<(&Owner, &T)> {
        match self {
            Owned::One(o, t) => Some((o, t)),
            Owned::Many(m) => m.first_key_value(),
        }
    }

    fn effective(&self) -> Option<&T> {
        self.first().map(|(_, t)| t)
    }

    fn insert(&mut self, owner: &Owner, value: T) {
        match self {
            Owned::One(o, t) if o == owner => *t = value,
            Owned::One(..) => {
                let mut m = BTreeMap::new();
                m.insert(owner.clone(), value);
                if let Owned::One(o, t) = std::mem::replace(self, Owned::Many(BTreeMap::new())) {
                    m.insert(o, t);
                }
                *self = Owned::Many(m);
            }
            Owned::Many(m) => {
                m.insert(owner.clone(), value);
            }
        }
    }

    /// Drops `owner`; true when no owner is left.
    fn remove(&mut self, owner: &Owner) -> bool {
        match self {
            Owned::One(o, _) => o == owner,
            Owned::Many(m) => {
                m.remove(owner);
                m.is_empty()
            }
        }
    }
}

/// What was in effect before a sync's first change to an object: its
/// version and owner (an element's comment), or nothing.
type Before<T> = Option<(T, Owner)>;

fn before<T: Clone>(o: &Owned<T>) -> Before<T> {
    o.first().map(|(owner, t)| (t.clone(), owner.clone()))
}

/// Takes `owner`'s contribution out of `objects[name]`, remembering in
/// `touched` what was in effect before the sync's first change to it.
fn withdraw<K: Eq + std::hash::Hash + Clone, T: Clone>(
    objects: &mut HashMap<K, Owned<T>>,
    touched: Option<&mut HashMap<K, Before<T>>>,
    name: &K,
    owner: &Owner,
) {
    if let Some(o) = objects.get_mut(name) {
        if let Some(touched) = touched {
            touched.entry(name.clone()).or_insert_with(|| before(o));
        }
        if o.remove(owner) {
            objects.remove(name);
        }
    }
}

fn contribute<K: Eq + std::hash::Hash + Clone, T: Clone>(
    objects: &mut HashMap<K, Owned<T>>,
    touched: Option<&mut HashMap<K, Before<T>>>,
    name: &K,
    owner: &Owner,
    value: T,
) {
    use std::collections::hash_map::Entry;
    match objects.entry(name.clone()) {
        Entry::Occupied(mut o) => {
            if let Some(touched) = touched {
                touched.entry(name.clone()).or_insert_with(|| before(o.get()));
            }
            o.get_mut().insert(owner, value);
        }
        Entry::Vacant(v) => {
            if let Some(touched) = touched {
                touched.entry(name.clone()).or_insert(None);
            }
            v.insert(Owned::One(owner.clone(), value));
        }
    }
}

/// An endpoint as applied: what rendering reads of it (not its node's
/// name), in 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ep {
    ip: Ipv4Addr,
    port: u16,
    /// ready, serving, terminating, local: bits 0 to 3.
    state: u8,
}

impl Ep {
    fn of(e: &Endpoint) -> Ep {
        let state =
            u8::from(e.ready) | u8::from(e.serving) << 1 | u8::from(e.terminating) << 2 | u8::from(e.local) << 3;
        Ep { ip: e.ip, port: e.port, state }
    }

    fn endpoint(self) -> Endpoint {
        Endpoint {
            ip: self.ip,
            port: self.port,
            node: None,
            ready: self.state & 1 != 0,
            serving: self.state & 2 != 0,
            terminating: self.state & 4 != 0,
            local: self.state & 8 != 0,
        }
    }
}

/// A service port as applied, compactly: everything its fragment is made
/// from, its id (which is its owner name; namespace, name and port name
/// are cut out of it) and no per-endpoint allocation.
#[derive(Debug)]
struct Applied {
    id: Owner,
    namespace_len: u32,
    name_len: u32,
    protocol: Protocol,
    cluster_ip: Ipv4Addr,
    port: u16,
    node_port: Option<u16>,
    health_check_node_port: Option<u16>,
    affinity: Affinity,
    external_local: bool,
    internal_local: bool,
    external_ips: Box<[Ipv4Addr]>,
    load_balancer_ips: Box<[Ipv4Addr]>,
    load_balancer_source_ranges: Box<[Cidr]>,
    endpoints: Box<[Ep]>,
}

impl Applied {
    fn new(svc: &ServicePort, id: Owner) -> Applied {
        Applied {
            id,
            namespace_len: svc.namespace.len() as u32,
            name_len: svc.name.len() as u32,
            protocol: svc.protocol,
            cluster_ip: svc.cluster_ip,
            port: svc.port,
            node_port: svc.node_port,
            health_check_node_port: svc.health_check_node_port,
            affinity: svc.affinity,
            external_local: svc.external_local,
            internal_local: svc.internal_local,
            external_ips: svc.external_ips.as_slice().into(),
            load_balancer_ips: svc.load_balancer_ips.as_slice().into(),
            load_balancer_source_ranges: svc.load_balancer_source_ranges.as_slice().into(),
            endpoints: svc.endpoints.iter().map(Ep::of).collect(),
        }
    }

    /// True when `svc` (same id) renders as this: everything but the
    /// endpoints' node names. A sync compares every service port of the
    /// snapshot, so this is most of an unchanged one's cost (the fields
    /// are listed whole, so that a new one is not forgotten).
    fn renders_like(&self, svc: &ServicePort) -> bool {
        let ServicePort {
            namespace: _,
            name: _,
            port_name: _,
            protocol,
            cluster_ip,
            port,
            node_port,
            external_ips,
            load_balancer_ips,
            load_balancer_source_ranges,
            affinity,
            external_local,
            internal_local,
            health_check_node_port,
            endpoints,
        } = svc;
        self.protocol == *protocol
            && self.cluster_ip == *cluster_ip
            && self.port == *port
            && self.node_port == *node_port
            && *self.external_ips == **external_ips
            && *self.load_balancer_ips == **load_balancer_ips
            && *self.load_balancer_source_ranges == **load_balancer_source_ranges
            && self.affinity == *affinity
            && self.external_local == *external_local
            && self.internal_local == *internal_local
            && self.health_check_node_port == *health_check_node_port
            && self.endpoints.len() == endpoints.len()
            && self.endpoints.iter().zip(endpoints).all(|(a, b)| *a == Ep::of(b))
    }

    /// The service port again (endpoints without their node's name).
    fn service_port(&self) -> ServicePort {
        let ns = self.namespace_len as usize;
        let name_end = ns + 1 + self.name_len as usize;
        ServicePort {
            namespace: self.id.get(..ns).unwrap_or_default().to_string(),
            name: self.id.get(ns + 1..name_end).unwrap_or_default().to_string(),
            port_name: self.id.get(name_end + 1..).unwrap_or_default().to_string(),
            protocol: self.protocol,
            cluster_ip: self.cluster_ip,
            port: self.port,
            node_port: self.node_port,
            external_ips: self.external_ips.to_vec(),
            load_balancer_ips: self.load_balancer_ips.to_vec(),
            load_balancer_source_ranges: self.load_balancer_source_ranges.to_vec(),
            affinity: self.affinity,
            external_local: self.external_local,
            internal_local: self.internal_local,
            health_check_node_port: self.health_check_node_port,
            endpoints: self.endpoints.iter().map(|e| e.endpoint()).collect(),
        }
    }
}

/// The pieces of a service port's id (`namespace/name[:port]`), so that
/// ids compare without being made.
fn id_pieces(svc: &ServicePort) -> [&[u8]; 5] {
    let (colon, port): (&[u8], &[u8]) =
        if svc.port_name.is_empty() { (b"", b"") } else { (b":", svc.port_name.as_bytes()) };
    [svc.namespace.as_bytes(), b"/", svc.name.as_bytes(), colon, port]
}

/// Compares the concatenations of `a`'s and `b`'s pieces (as strings
/// compare: bytewise).
fn cmp_pieces(a: &[&[u8]], b: &[&[u8]]) -> Ordering {
    let (mut ai, mut ao, mut bi, mut bo) = (0, 0, 0, 0);
    loop {
        while ai < a.len() && ao == a[ai].len() {
            ai += 1;
            ao = 0;
        }
        while bi < b.len() && bo == b[bi].len() {
            bi += 1;
            bo = 0;
        }
        let (x, y) = match (a.get(ai), b.get(bi)) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => (&x[ao..], &y[bo..]),
        };
        let n = x.len().min(y.len());
        match x[..n].cmp(&y[..n]) {
            Ordering::Equal => {}
            other => return other,
        }
        ao += n;
        bo += n;
    }
}

fn cmp_ids(a: &ServicePort, b: &ServicePort) -> Ordering {
    cmp_pieces(&id_pieces(a), &id_pieces(b))
}

/// How `svc`'s id compares with `id`.
fn cmp_id(svc: &ServicePort, id: &str) -> Ordering {
    let id = id.as_bytes();
    let mut at = 0;
    for piece in id_pieces(svc) {
        let rest = &id[at..];
        let n = piece.len().min(rest.len());
        match piece[..n].cmp(&rest[..n]) {
            Ordering::Equal if n < piece.len() => return Ordering::Greater,
            Ordering::Equal => at += n,
            other => return other,
        }
    }
    if at < id.len() { Ordering::Less } else { Ordering::Equal }
}

/// One service port as applied, and what it contributed (names and keys,
/// in the order its fragment listed them, which is the order the full
/// rendering writes them in).
struct Entry {
    svc: Applied,
    chains: Box<[Arc<str>]>,
    decls: Box<[Arc<str>]>,
    elems: Box<[(Map, Key)]>,
}

impl Entry {
    fn owner(&self) -> &Owner {
        &self.svc.id
    }
}

/// What to do with one service port, in the merge of the applied ones and
/// a snapshot's.
enum Step<'a> {
    /// The applied one renders as the snapshot's.
    Keep,
    /// An applied one not in the snapshot.
    Gone,
    Changed(&'a ServicePort),
    New(&'a ServicePort),
    /// The same id as the previous one in the snapshot.
    Duplicate(&'a ServicePort),
}

/// What one sync changes, before it is rendered: objects with their
/// effective version before the change.
#[derive(Default)]
struct Touched {
    chains: HashMap<Arc<str>, Before<Arc<Chain>>>,
    decls: HashMap<Arc<str>, Before<Arc<Decl>>>,
    elems: BTreeMap<Map, HashMap<Key, Before<Value>>>,
}

/// The table wanted for a snapshot, kept between syncs so that a sync
/// renders only what changed.
pub struct Ruleset {
    facts: Facts,
    /// By id, as snapshots are. Inline, not boxed: an unchanged sync
    /// reads every entry and moves none, and reading them in a row is
    /// what the memory is fastest at.
    services: Vec<Entry>,
    chains: HashMap<Arc<str>, Owned<Arc<Chain>>>,
    decls: HashMap<Arc<str>, Owned<Arc<Decl>>>,
    /// The elements by map, in the maps' order (fixed ones first).
    elems: BTreeMap<Map, HashMap<Key, Owned<Value>>>,
    shared: service::Shared,
}

/// The outcome of [`Ruleset::update`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// The nft transaction from the previous state to the new one (empty
    /// when nothing changed).
    pub transaction: String,
    /// Service ports (ids) added, changed or removed.
    pub changed: Vec<String>,
    /// The same transaction as a netlink batch, when it changes elements
    /// only.
    pub(crate) elements_only: Option<netlink::Batch>,
}

impl Ruleset {
    pub fn new(facts: Facts) -> Ruleset {
        Ruleset {
            facts,
            services: Vec::new(),
            chains: HashMap::new(),
            decls: HashMap::new(),
            elems: BTreeMap::new(),
            shared: service::Shared::default(),
        }
    }

    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// The service ports programmed, by id (made on demand: the ruleset
    /// keeps a compact copy; endpoints come without their node's name).
    pub fn services(&self) -> impl Iterator<Item = ServicePort> + '_ {
        self.services.iter().map(|e| e.svc.service_port())
    }

    /// The service ports of protocol `p`, as [`Ruleset::services`].
    pub fn services_of(&self, p: Protocol) -> impl Iterator<Item = ServicePort> + '_ {
        self.services.iter().filter(move |e| e.svc.protocol == p).map(|e| e.svc.service_port())
    }

    /// The ids of the service ports of protocol `p`.
    pub fn ids_of(&self, p: Protocol) -> impl Iterator<Item = &str> + '_ {
        self.services.iter().filter(move |e| e.svc.protocol == p).map(|e| &*e.svc.id)
    }

    /// The service port `id` as programmed.
    pub fn service(&self, id: &str) -> Option<ServicePort> {
        self.entry(id).map(|e| e.svc.service_port())
    }

    /// The service port `id` as programmed, if its protocol is `p` (made
    /// only then).
    pub fn service_of(&self, id: &str, p: Protocol) -> Option<ServicePort> {
        self.entry(id).filter(|e| e.svc.protocol == p).map(|e| e.svc.service_port())
    }

    fn entry(&self, id: &str) -> Option<&Entry> {
        let at = self.services.binary_search_by(|e| (*e.svc.id).cmp(id)).ok()?;
        Some(&self.services[at])
    }

    /// Moves to `snap`, returning the transaction that takes a kernel
    /// holding the previous state to the new one.
    pub fn update(&mut self, snap: &Snapshot) -> Update {
        let mut touched = Touched::default();
        let changed = self.apply(snap, Some(&mut touched));
        let (transaction, elements_only) = self.render_delta(&touched);
        Update { transaction, changed, elements_only }
    }

    /// Moves to `snap` without working out a transaction, for a kernel
    /// that gets the whole table ([`Ruleset::render_full`]). Returns the
    /// service ports added, changed or removed.
    pub fn load(&mut self, snap: &Snapshot) -> Vec<String> {
        self.apply(snap, None)
    }

    /// How the snapshot's service ports (`wanted`) compare with those
    /// applied: a merge of two lists sorted by id, with no id made, no
    /// lookup and nothing moved, which is all an unchanged sync costs.
    /// None if `wanted` is not sorted by id.
    fn plan<'a>(&self, wanted: &[&'a ServicePort]) -> Option<Vec<Step<'a>>> {
        let mut steps = Vec::with_capacity(wanted.len().max(self.services.len()) + 1);
        let mut old = self.services.iter().peekable();
        let mut previous: Option<&ServicePort> = None;
        for &svc in wanted {
            match previous.map(|p| cmp_ids(p, svc)) {
                Some(Ordering::Greater) => return None,
                Some(Ordering::Equal) => {
                    steps.push(Step::Duplicate(svc));
                    continue;
                }
                _ => previous = Some(svc),
            }
            loop {
                let Some(e) = old.peek() else {
                    steps.push(Step::New(svc));
                    break;
                };
                match cmp_id(svc, &e.svc.id) {
                    Ordering::Greater => {
                        steps.push(Step::Gone);
                        old.next();
                    }
                    Ordering::Equal => {
                        steps.push(if e.svc.renders_like(svc) { Step::Keep } else { Step::Changed(svc) });
                        old.next();
                        break;
                    }
                    Ordering::Less => {
                        steps.push(Step::New(svc));
                        break;
                    }
                }
            }
        }
        steps.extend(old.map(|_| Step::Gone));
        Some(steps)
    }

    fn apply(&mut self, snap: &Snapshot, mut touched: Option<&mut Touched>) -> Vec<String> {
        // The snapshot's service ports are sorted by id, as the model
        // promises; if not, sorted here, stably, so that the first of
        // duplicates stays first.
        let mut wanted: Vec<&ServicePort> = snap.services.iter().collect();
        let steps = match self.plan(&wanted) {
            Some(steps) => steps,
            None => {
                wanted.sort_by(|a, b| cmp_ids(a, b));
                self.plan(&wanted).unwrap_or_default()
            }
        };
        if steps.iter().all(|s| matches!(s, Step::Keep)) && steps.len() == self.services.len() {
            return Vec::new();
        }
        self.reserve(&steps);
        let mut old = std::mem::take(&mut self.services).into_iter();
        let mut kept: Vec<Entry> = Vec::with_capacity(wanted.len());
        let mut changed = Vec::new();
        for step in steps {
            let (owner, svc) = match step {
                Step::Keep => {
                    kept.extend(old.next());
                    continue;
                }
                Step::Duplicate(svc) => {
                    tracing::warn!(service = %svc.id(), "duplicate service port in the snapshot; keeping the first");
                    continue;
                }
                Step::Gone => {
                    if let Some(gone) = old.next() {
                        changed.push(gone.svc.id.to_string());
                        self.withdraw_entry(&gone, touched.as_deref_mut());
                    }
                    continue;
                }
                Step::Changed(svc) => {
                    let Some(e) = old.next() else { continue };
                    self.withdraw_entry(&e, touched.as_deref_mut());
                    (e.svc.id.clone(), svc)
                }
                Step::New(svc) => (Owner::from(svc.id()), svc),
            };
            let fragment = service::fragment(svc, &self.facts, &mut self.shared);
            changed.push(owner.to_string());
            kept.push(self.add(owner, svc, fragment, touched.as_deref_mut()));
        }
        self.services = kept;
        changed.sort();
        changed
    }

    /// Room in the big maps for what `steps` add, so that a first load
    /// does not grow them step by step (each growth moves every element).
    fn reserve(&mut self, steps: &[Step<'_>]) {
        let mut slots: BTreeMap<Protocol, usize> = BTreeMap::new();
        let (mut services, mut local) = (0, 0);
        for step in steps {
            if let Step::New(svc) | Step::Changed(svc) = step {
                services += 1;
                *slots.entry(svc.protocol).or_default() += svc.endpoints.len();
                local += svc.endpoints.iter().filter(|e| e.local).count();
            }
        }
        if services < 1000 {
            return;
        }
        for (p, n) in slots {
            self.elems.entry(Map::Slots(Lb::Address, p)).or_default().reserve(n);
        }
        self.elems.entry(Map::Hairpin).or_default().reserve(local);
        self.elems.entry(Map::ClusterIps).or_default().reserve(services);
        self.elems.entry(Map::ServiceIps).or_default().reserve(services);
    }

    fn withdraw_entry(&mut self, entry: &Entry, mut touched: Option<&mut Touched>) {
        let owner = entry.owner();
        for name in &entry.chains {
            withdraw(&mut self.chains, touched.as_deref_mut().map(|t| &mut t.chains), name, owner);
        }
        for name in &entry.decls {
            withdraw(&mut self.decls, touched.as_deref_mut().map(|t| &mut t.decls), name, owner);
        }
        for (map, key) in &entry.elems {
            if let Some(elems) = self.elems.get_mut(map) {
                let t = touched.as_deref_mut().map(|t| t.elems.entry(*map).or_default());
                withdraw(elems, t, key, owner);
            }
        }
    }

    fn add(&mut self, owner: Owner, svc: &ServicePort, fragment: Fragment, mut touched: Option<&mut Touched>) -> Entry {
        let entry = Entry {
            svc: Applied::new(svc, owner.clone()),
            chains: fragment.chains.iter().map(|c| c.name.clone()).collect(),
            decls: fragment.decls.iter().map(|d| d.name.clone()).collect(),
            elems: fragment.elems.iter().map(|(m, k, _)| (*m, *k)).collect(),
        };
        for c in fragment.chains {
            let name = c.name.clone();
            contribute(&mut self.chains, touched.as_deref_mut().map(|t| &mut t.chains), &name, &owner, c);
        }
        for d in fragment.decls {
            let name = d.name.clone();
            contribute(&mut self.decls, touched.as_deref_mut().map(|t| &mut t.decls), &name, &owner, d);
        }
        for (map, key, value) in fragment.elems {
            let elems = self.elems.entry(map).or_default();
            let t = touched.as_deref_mut().map(|t| t.elems.entry(map).or_default());
            contribute(elems, t, &key, &owner, value);
        }
        entry
    }

    /// The whole table, as a transaction creating it in a kernel that does
    /// not have it.
    pub fn render_full(&self) -> String {
        self.render_table(true)
    }

    /// Every element, as the kernel holds them, for the netlink batch: the
    /// table without them comes from `render_table(false)`. The bytes are
    /// copied from the index as they are; nothing is formatted.
    pub fn element_batch(&self) -> netlink::Batch {
        let count: usize = self.elems.values().map(HashMap::len).sum();
        let mut batch = netlink::Batch::with_capacity(count * netlink::ELEMENT_BYTES + 4096);
        for (map, elems) in &self.elems {
            if elems.is_empty() {
                continue;
            }
            let effective = elems.iter().filter_map(|(key, o)| {
                let (owner, value) = o.first()?;
                Some(netlink::element(*map, key, value, owner))
            });
            batch.add_elements(TABLE, &map.name(), effective);
        }
        batch
    }

    /// Every element as nft commands.
    pub fn render_elements(&self) -> String {
        let mut out = String::new();
        self.write_elements(&mut out);
        out
    }

    fn write_elements(&self, out: &mut String) {
        let mut by_map: BTreeMap<Map, String> = BTreeMap::new();
        for entry in &self.services {
            for (map, key) in &entry.elems {
                let Some((owner, value)) = self.elems.get(map).and_then(|m| m.get(key)).and_then(Owned::first) else {
                    continue;
                };
                // An element several service ports contribute is written
                // by the first only.
                if owner != entry.owner() {
                    continue;
                }
                let text = by_map.entry(*map).or_default();
                text.push_str(if text.is_empty() { "\t" } else { ",\n\t" });
                elem::write_elem(text, *map, key, value, owner);
            }
        }
        for (map, text) in &by_map {
            let _ = write!(out, "add element ip {TABLE} {} {{\n{text}\n}}\n", map.name());
        }
    }

    /// The table; without its elements unless `elements`.
    pub fn render_table(&self, elements: bool) -> String {
        let count: usize = if elements { self.elems.values().map(HashMap::len).sum() } else { 0 };
        let mut out = String::with_capacity(4096 + count * 48);
        let _ = writeln!(out, "table ip {TABLE} {{");
        let _ = writeln!(out, "\tcomment \"svcnet service proxy: Services to nftables, one transaction per sync\"");
        for map in Map::FIXED {
            let kind = if map.is_map() { "map" } else { "set" };
            let _ = writeln!(out, "\t{kind} {} {{ {} }}", map.name(), map.decl());
        }
        let mut seen: HashSet<&str> = HashSet::new();
        for entry in &self.services {
            for name in &entry.decls {
                let Some((owner, d)) = self.decls.get(name).and_then(Owned::first) else { continue };
                if owner == entry.owner() && seen.insert(name) {
                    let _ = writeln!(out, "\t{} {} {{ {} }}", d.kind.keyword(), d.name, d.body);
                }
            }
        }
        for (name, hook, rules) in skeleton(&self.facts) {
            let _ = writeln!(out, "\tchain {name} {{");
            if let Some(hook) = hook {
                let _ = writeln!(out, "\t\t{hook}");
            }
            for r in rules {
                let _ = writeln!(out, "\t\t{r}");
            }
            let _ = writeln!(out, "\t}}");
        }
        let mut seen: HashSet<&str> = HashSet::new();
        for entry in &self.services {
            for name in &entry.chains {
                let Some((owner, c)) = self.chains.get(name).and_then(Owned::first) else { continue };
                if owner != entry.owner() || !seen.insert(name) {
                    continue;
                }
                let _ = writeln!(out, "\tchain {} {{", c.name);
                if let Some(comment) = &c.comment {
                    let _ = writeln!(out, "\t\tcomment \"{}\"", comment_text(comment));
                }
                for r in &c.rules {
                    let _ = writeln!(out, "\t\t{r}");
                }
                let _ = writeln!(out, "\t}}");
            }
        }
        let _ = writeln!(out, "}}");
        if elements {
            self.write_elements(&mut out);
        }
        out
    }

    fn render_delta(&self, touched: &Touched) -> (String, Option<netlink::Batch>) {
        let mut out = String::new();
        let now_chain = |name: &str| self.chains.get(name).and_then(Owned::effective);
        let now_decl = |name: &str| self.decls.get(name).and_then(Owned::effective);
        let mut added_chains: Vec<&Arc<Chain>> = Vec::new();
        let mut changed_chains: Vec<&Arc<Chain>> = Vec::new();
        let mut removed_chains: Vec<&Arc<str>> = Vec::new();
        for name in touched.chains.keys().collect::<BTreeSet<_>>() {
            match (&touched.chains[name], now_chain(name)) {
                (None, Some(c)) => added_chains.push(c),
                (Some((old, _)), Some(c)) if **old != **c => changed_chains.push(c),
                (Some(_), None) => removed_chains.push(name),
                _ => {}
            }
        }
        let mut added_decls: Vec<&Arc<Decl>> = Vec::new();
        let mut removed_decls: Vec<&Arc<Decl>> = Vec::new();
        for name in touched.decls.keys().collect::<BTreeSet<_>>() {
            match (&touched.decls[name], now_decl(name)) {
                (None, Some(d)) => added_decls.push(d),
                (Some((old, _)), Some(d)) if **old != **d => {
                    removed_decls.push(old);
                    added_decls.push(d);
                }
                (Some((old, _)), None) => removed_decls.push(old),
                _ => {}
            }
        }
        // Elements whose effective value (or, in a commented map, owner)
        // changed, with their text, which orders them in the transaction.
        let mut deleted: BTreeMap<Map, Vec<(String, Key)>> = BTreeMap::new();
        let mut added: BTreeMap<Map, Vec<(String, Key, &Value, &Owner)>> = BTreeMap::new();
        for (map, keys) in &touched.elems {
            for (key, before) in keys {
                let now = self.elems.get(map).and_then(|m| m.get(key)).and_then(Owned::first);
                let same = match (before, now) {
                    (None, None) => true,
                    (Some((was, was_owner)), Some((owner, value))) => {
                        was == value && (!elem::commented(*map) || was_owner == owner)
                    }
                    _ => false,
                };
                if same {
                    continue;
                }
                if before.is_some() {
                    deleted.entry(*map).or_default().push((key.text(*map), *key));
                }
                if let Some((owner, value)) = now {
                    added.entry(*map).or_default().push((key.text(*map), *key, value, owner));
                }
            }
        }
        // A set declared anew (its timeout changed) is deleted first, so
        // every rule naming it is refilled.
        for d in &added_decls {
            if touched.decls.get(&d.name).is_some_and(Option::is_some) {
                let needle = format!("@{} ", d.name);
                for (name, o) in &self.chains {
                    let Some(c) = o.effective() else { continue };
                    let listed = added_chains.iter().chain(&changed_chains).any(|x| x.name == *name);
                    if !listed && c.rules.iter().any(|r| r.contains(&needle)) {
                        changed_chains.push(c);
                    }
                }
            }
        }
        // Order: objects exist before anything refers to them; references
        // (rules, elements) go before what they point to.
        for c in &added_chains {
            match &c.comment {
                Some(comment) => {
                    let _ =
                        writeln!(out, "add chain ip {TABLE} {} {{ comment \"{}\"; }}", c.name, comment_text(comment));
                }
                None => {
                    let _ = writeln!(out, "add chain ip {TABLE} {}", c.name);
                }
            }
        }
        for c in changed_chains.iter().map(|c| &c.name).chain(removed_chains.iter().copied()) {
            let _ = writeln!(out, "flush chain ip {TABLE} {c}");
        }
        let removed_names: HashSet<&str> = removed_decls.iter().map(|d| &*d.name).collect();
        for (map, keys) in &mut deleted {
            keys.sort_unstable();
            // A map about to be deleted goes with its elements.
            if removed_names.contains(map.name().as_str()) {
                continue;
            }
            let _ = write!(out, "delete element ip {TABLE} {} {{ ", map.name());
            for (i, (text, _)) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(text);
            }
            out.push_str(" }\n");
        }
        for d in &removed_decls {
            let _ = writeln!(out, "delete {} ip {TABLE} {}", d.kind.keyword(), d.name);
        }
        for d in &added_decls {
            let _ = writeln!(out, "add {} ip {TABLE} {} {{ {} }}", d.kind.keyword(), d.name, d.body);
        }
        for c in added_chains.iter().chain(&changed_chains) {
            for r in &c.rules {
                let _ = writeln!(out, "add rule ip {TABLE} {} {r}", c.name);
            }
        }
        let elements_only = added_chains.is_empty()
            && changed_chains.is_empty()
            && removed_chains.is_empty()
            && added_decls.is_empty()
            && removed_decls.is_empty();
        // (A slot map's declaration follows from its name, so only an
        // affinity set is ever declared anew; should a map be, it is
        // refilled whole.)
        for d in added_decls.iter().filter(|d| d.kind == DeclKind::Map && removed_names.contains(&*d.name)) {
            for (map, elems) in self.elems.iter().filter(|(m, _)| *m.name() == *d.name) {
                let list = added.entry(*map).or_default();
                for (key, o) in elems {
                    if let Some((owner, value)) = o.first() {
                        if !list.iter().any(|(_, k, _, _)| k == key) {
                            list.push((key.text(*map), *key, value, owner));
                        }
                    }
                }
            }
        }
        for (map, elems) in &mut added {
            elems.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let _ = write!(out, "add element ip {TABLE} {} {{ ", map.name());
            for (i, (_, key, value, owner)) in elems.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                elem::write_elem(&mut out, *map, key, value, owner);
            }
            out.push_str(" }\n");
        }
        for c in &removed_chains {
            let _ = writeln!(out, "delete chain ip {TABLE} {c}");
        }
        let batch = (elements_only && !out.is_empty()).then(|| element_delta(&deleted, &added));
        (out, batch)
    }
}

/// Element deletions and additions as one netlink batch (deletions
/// first, as in the nft transaction).
fn element_delta(
    deleted: &BTreeMap<Map, Vec<(String, Key)>>,
    added: &BTreeMap<Map, Vec<(String, Key, &Value, &Owner)>>,
) -> netlink::Batch {
    let mut batch = netlink::Batch::new();
    for (map, keys) in deleted {
        batch.delete_elements(
            TABLE,
            &map.name(),
            keys.iter().map(|(_, key)| netlink::element(*map, key, &Value::None, "")),
        );
    }
    for (map, elems) in added {
        let encoded = elems.iter().map(|(_, key, value, owner)| netlink::element(*map, key, value, owner));
        batch.add_elements(TABLE, &map.name(), encoded);
    }
    batch
}

/// The objects a table left by a previous run holds, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Existing {
    pub chains: Vec<String>,
    pub sets: Vec<String>,
    pub maps: Vec<String>,
}

impl Existing {
    /// The nft commands listing them: names only (`nft -t list table`
    /// would fetch every element first, seconds at 100,000 elements).
    pub const LISTING: &str = "list chains ip\nlist sets ip\nlist maps ip\n";

    /// Reads the output of [`Existing::LISTING`] (`nft -t -f -`): the
    /// objects of table `ip svcnet`, whatever other tables there are.
    pub fn parse(listing: &str) -> Existing {
        let mut e = Existing::default();
        let mut ours = false;
        for line in listing.lines() {
            let mut words = line.split_whitespace();
            let (Some(kind), Some(second), third) = (words.next(), words.next(), words.next()) else { continue };
            if kind == "table" {
                ours = second == "ip" && third == Some(TABLE);
                continue;
            }
            if !ours || third != Some("{") {
                continue;
            }
            let name = second.trim_matches('"').to_string();
            let list = match kind {
                "chain" => &mut e.chains,
                "set" => &mut e.sets,
                "map" => &mut e.maps,
                _ => continue,
            };
            if !list.contains(&name) {
                list.push(name);
            }
        }
        e
    }
}

/// The transaction replacing whatever a previous run left (`existing`)
/// with `ruleset`, without a moment where the table is missing: the base
/// chains stay hooked (flushed and refilled), everything else is deleted
/// and recreated. Conntrack entries, and so established connections and
/// their NAT, are untouched.
pub fn render_replace(ruleset: &Ruleset, existing: &Existing) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "table ip {TABLE}");
    let _ = writeln!(out, "flush table ip {TABLE}");
    for s in &existing.maps {
        let _ = writeln!(out, "delete map ip {TABLE} {s}");
    }
    for s in &existing.sets {
        let _ = writeln!(out, "delete set ip {TABLE} {s}");
    }
    for c in &existing.chains {
        if !BASE_CHAINS.contains(&c.as_str()) {
            let _ = writeln!(out, "delete chain ip {TABLE} {c}");
        }
    }
    out.push_str(&ruleset.render_full());
    out
}

/// The full ruleset for `snap`: a transaction creating table `ip svcnet`.
pub fn render(snap: &Snapshot, facts: &Facts) -> String {
    let mut r = Ruleset::new(*facts);
    r.update(snap);
    r.render_full()
}
