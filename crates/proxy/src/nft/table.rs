//! The table `ip svcnet` as data: its fixed skeleton, and the chains, sets
//! and map elements service ports contribute, with the two renderings the
//! data plane applies: the whole table, and the transaction from what was
//! applied last to what is wanted now. Pure.
//!
//! Several service ports may contribute the same object (a shared `lb-N`
//! chain, a hairpin element, two Services claiming one external IP): each
//! object remembers its owners, the first by id wins, and it leaves the
//! kernel only with its last owner.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write;
use std::sync::Arc;

use super::service::{self, Fragment, Lb, comment_text, mark_rule};
use super::{Facts, MASQ_MARK, TABLE};
use crate::model::{Endpoint, Protocol, ServicePort, Snapshot};

/// The table's maps and sets that hold elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Map {
    ServiceIps,
    ServiceNodeports,
    NoEndpointServices,
    NoEndpointNodeports,
    ClusterIps,
    Hairpin,
    /// `endpoints-tcp`, `nodeport-endpoints-udp`, ...: declared while a
    /// balancing chain uses them.
    Slots(Lb, Protocol),
}

impl Map {
    /// The maps every table declares.
    pub const FIXED: [Map; 6] = [
        Map::ServiceIps,
        Map::ServiceNodeports,
        Map::NoEndpointServices,
        Map::NoEndpointNodeports,
        Map::ClusterIps,
        Map::Hairpin,
    ];

    pub fn name(self) -> String {
        match self {
            Map::ServiceIps => "service-ips".into(),
            Map::ServiceNodeports => "service-nodeports".into(),
            Map::NoEndpointServices => "no-endpoint-services".into(),
            Map::NoEndpointNodeports => "no-endpoint-nodeports".into(),
            Map::ClusterIps => "cluster-ips".into(),
            Map::Hairpin => "hairpin".into(),
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
            Map::Slots(..) => "",
        }
    }
}

/// A regular chain's name, comment and rules (nft text, one per rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
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
    pub name: String,
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
        (
            "services",
            None,
            vec![
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
    fn effective(&self) -> Option<&T> {
        match self {
            Owned::One(_, t) => Some(t),
            Owned::Many(m) => m.first_key_value().map(|(_, t)| t),
        }
    }

    fn effective_owner(&self) -> Option<&Owner> {
        match self {
            Owned::One(o, _) => Some(o),
            Owned::Many(m) => m.first_key_value().map(|(o, _)| o),
        }
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

/// Takes `owner`'s contribution out of `objects[name]`, remembering in
/// `touched` what was in effect before the sync's first change to it.
fn withdraw<K: Eq + std::hash::Hash + Clone, T: Clone>(
    objects: &mut HashMap<K, Owned<T>>,
    touched: Option<&mut HashMap<K, Option<T>>>,
    name: &K,
    owner: &Owner,
) {
    if let Some(o) = objects.get_mut(name) {
        if let Some(touched) = touched {
            touched.entry(name.clone()).or_insert_with(|| o.effective().cloned());
        }
        if o.remove(owner) {
            objects.remove(name);
        }
    }
}

fn contribute<K: Eq + std::hash::Hash + Clone, T: Clone>(
    objects: &mut HashMap<K, Owned<T>>,
    touched: Option<&mut HashMap<K, Option<T>>>,
    name: &K,
    owner: &Owner,
    value: T,
) {
    match objects.get_mut(name) {
        Some(o) => {
            if let Some(touched) = touched {
                touched.entry(name.clone()).or_insert_with(|| o.effective().cloned());
            }
            o.insert(owner, value);
        }
        None => {
            if let Some(touched) = touched {
                touched.entry(name.clone()).or_insert(None);
            }
            objects.insert(name.clone(), Owned::One(owner.clone(), value));
        }
    }
}

/// An element's value and comment.
type ElemValue = (Option<String>, Option<String>);

struct Entry {
    svc: ServicePort,
    owner: Owner,
    fragment: Fragment,
}

/// What one sync changes, before it is rendered: objects with their
/// effective value before the change.
#[derive(Default)]
struct Touched {
    chains: HashMap<String, Option<Chain>>,
    decls: HashMap<String, Option<Decl>>,
    elems: HashMap<Map, HashMap<String, Option<ElemValue>>>,
}

/// The table wanted for a snapshot, kept between syncs so that a sync
/// renders only what changed.
pub struct Ruleset {
    facts: Facts,
    /// By id, as snapshots are. Boxed: every sync moves each entry into
    /// the next list, a pointer rather than a few hundred bytes.
    #[allow(clippy::vec_box)]
    services: Vec<Box<Entry>>,
    chains: HashMap<String, Owned<Chain>>,
    decls: HashMap<String, Owned<Decl>>,
    elems: HashMap<Map, HashMap<String, Owned<ElemValue>>>,
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
    pub(crate) elements_only: Option<super::netlink::Batch>,
}

impl Ruleset {
    pub fn new(facts: Facts) -> Ruleset {
        Ruleset { facts, services: Vec::new(), chains: HashMap::new(), decls: HashMap::new(), elems: HashMap::new() }
    }

    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// The service ports programmed, by id.
    pub fn services(&self) -> impl Iterator<Item = &ServicePort> {
        self.sorted().into_iter().map(|e| &e.svc)
    }

    /// The service port `id` as programmed.
    pub fn service(&self, id: &str) -> Option<&ServicePort> {
        let at = self.services.binary_search_by(|e| (*e.owner).cmp(id)).ok()?;
        Some(&self.services[at].svc)
    }

    fn sorted(&self) -> Vec<&Entry> {
        self.services.iter().map(|e| &**e).collect()
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

    fn apply(&mut self, snap: &Snapshot, mut touched: Option<&mut Touched>) -> Vec<String> {
        let id_of = |svc: &ServicePort, id: &mut String| {
            id.clear();
            let _ = match svc.port_name.as_str() {
                "" => write!(id, "{}/{}", svc.namespace, svc.name),
                port => write!(id, "{}/{}:{port}", svc.namespace, svc.name),
            };
        };
        // A merge of two lists sorted by id: the applied service ports and
        // the snapshot's (sorted by id, as the model promises; sorted here
        // if not), so that an unchanged sync costs one comparison per
        // service port and no lookup.
        let mut id = String::new();
        let mut ids: Vec<(String, &ServicePort)> = Vec::new();
        let mut last = String::new();
        let mut sorted = true;
        for svc in &snap.services {
            id_of(svc, &mut id);
            if id < last {
                sorted = false;
                break;
            }
            std::mem::swap(&mut last, &mut id);
        }
        if !sorted {
            ids = snap.services.iter().map(|s| (s.id(), s)).collect();
            ids.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let wanted: Box<dyn Iterator<Item = &ServicePort>> =
            if sorted { Box::new(snap.services.iter()) } else { Box::new(ids.iter().map(|(_, s)| *s)) };
        let old = std::mem::take(&mut self.services);
        let mut old = old.into_iter().peekable();
        let mut kept: Vec<Box<Entry>> = Vec::with_capacity(snap.services.len());
        let mut changed = Vec::new();
        let mut previous = String::new();
        for (i, svc) in wanted.enumerate() {
            id_of(svc, &mut id);
            if i > 0 && previous == id {
                tracing::warn!(service = %id, "duplicate service port in the snapshot; keeping the first");
                continue;
            }
            previous.clear();
            previous.push_str(&id);
            while let Some(gone) = old.next_if(|e| *e.owner < *id) {
                changed.push(gone.owner.to_string());
                self.withdraw_entry(&gone, touched.as_deref_mut());
            }
            let owner: Owner = match old.next_if(|e| *e.owner == *id) {
                Some(e) if renders_alike(&e.svc, svc) => {
                    kept.push(e);
                    continue;
                }
                Some(e) => {
                    self.withdraw_entry(&e, touched.as_deref_mut());
                    e.owner.clone()
                }
                None => Arc::from(id.as_str()),
            };
            let fragment = service::fragment(svc, &self.facts);
            self.add(&owner, &fragment, touched.as_deref_mut());
            kept.push(Box::new(Entry { svc: svc.clone(), owner, fragment }));
            changed.push(id.clone());
        }
        for gone in old {
            changed.push(gone.owner.to_string());
            self.withdraw_entry(&gone, touched.as_deref_mut());
        }
        self.services = kept;
        changed.sort();
        changed
    }

    fn withdraw_entry(&mut self, entry: &Entry, mut touched: Option<&mut Touched>) {
        let owner = &entry.owner;
        for c in &entry.fragment.chains {
            withdraw(&mut self.chains, touched.as_deref_mut().map(|t| &mut t.chains), &c.name, owner);
        }
        for d in &entry.fragment.decls {
            withdraw(&mut self.decls, touched.as_deref_mut().map(|t| &mut t.decls), &d.name, owner);
        }
        for (map, e) in &entry.fragment.elems {
            if let Some(elems) = self.elems.get_mut(map) {
                let t = touched.as_deref_mut().map(|t| t.elems.entry(*map).or_default());
                withdraw(elems, t, &e.key, owner);
            }
        }
    }

    fn add(&mut self, owner: &Owner, fragment: &Fragment, mut touched: Option<&mut Touched>) {
        for c in &fragment.chains {
            contribute(&mut self.chains, touched.as_deref_mut().map(|t| &mut t.chains), &c.name, owner, c.clone());
        }
        for d in &fragment.decls {
            contribute(&mut self.decls, touched.as_deref_mut().map(|t| &mut t.decls), &d.name, owner, d.clone());
        }
        for (map, e) in &fragment.elems {
            let value = (e.value.clone(), e.comment.clone());
            let elems = self.elems.entry(*map).or_default();
            let t = touched.as_deref_mut().map(|t| t.elems.entry(*map).or_default());
            contribute(elems, t, &e.key, owner, value);
        }
    }

    /// The maps with elements, fixed ones first, in a stable order.
    fn maps_in_order(&self) -> Vec<Map> {
        let mut slots: BTreeSet<Map> = BTreeSet::new();
        for entry in &self.services {
            for (m, _) in &entry.fragment.elems {
                if matches!(m, Map::Slots(..)) {
                    slots.insert(*m);
                }
            }
        }
        Map::FIXED.into_iter().chain(slots).collect()
    }

    /// The whole table, as a transaction creating it in a kernel that does
    /// not have it.
    pub fn render_full(&self) -> String {
        self.render_table(true)
    }

    /// Every element, as the kernel holds them, for
    /// the netlink batch: the table without them comes from
    /// `render_table(false)`. None if one cannot be encoded (then
    /// [`Ruleset::render_elements`] is the way).
    pub fn element_batch(&self) -> Option<super::netlink::Batch> {
        let mut maps: BTreeMap<Map, Vec<super::netlink::Element>> = BTreeMap::new();
        for entry in self.sorted() {
            for (map, e) in &entry.fragment.elems {
                let Some(o) = self.elems.get(map).and_then(|m| m.get(&e.key)) else { continue };
                if o.effective_owner() != Some(&entry.owner) {
                    continue;
                }
                let (value, comment) = o.effective()?;
                let encoded = super::netlink::encode(*map, &e.key, value.as_deref(), comment.as_deref())?;
                maps.entry(*map).or_default().push(encoded);
            }
        }
        let mut batch = super::netlink::Batch::new();
        for (map, elems) in &maps {
            batch.add_elements(TABLE, &map.name(), elems);
        }
        Some(batch)
    }

    /// Every element as nft commands.
    pub fn render_elements(&self) -> String {
        let full = self.render_table(true);
        let without = self.render_table(false);
        // The table comes first, its elements after.
        full.get(without.len()..).unwrap_or_default().to_string()
    }

    /// The table; without its elements unless `elements`.
    pub fn render_table(&self, elements: bool) -> String {
        let mut out = String::with_capacity(4096 + self.elems.values().map(|m| m.len() * 40).sum::<usize>());
        let _ = writeln!(out, "table ip {TABLE} {{");
        let _ = writeln!(out, "\tcomment \"svcnet service proxy: Services to nftables, one transaction per sync\"");
        for map in Map::FIXED {
            let kind = if map.is_map() { "map" } else { "set" };
            let _ = writeln!(out, "\t{kind} {} {{ {} }}", map.name(), map.decl());
        }
        let sorted = self.sorted();
        let mut seen: HashSet<&str> = HashSet::new();
        for entry in &sorted {
            for d in &entry.fragment.decls {
                if self.decls.get(&d.name).and_then(Owned::effective_owner) == Some(&entry.owner)
                    && seen.insert(&d.name)
                {
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
        for entry in &sorted {
            for c in &entry.fragment.chains {
                if seen.contains(c.name.as_str())
                    || self.chains.get(&c.name).and_then(Owned::effective_owner) != Some(&entry.owner)
                {
                    continue;
                }
                seen.insert(&c.name);
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
        let mut by_map: HashMap<Map, String> = HashMap::new();
        for entry in &sorted {
            for (map, e) in &entry.fragment.elems {
                let Some(o) = self.elems.get(map).and_then(|m| m.get(&e.key)) else { continue };
                // An element several service ports contribute is written
                // by the first only.
                if o.effective_owner() != Some(&entry.owner) {
                    continue;
                }
                let text = by_map.entry(*map).or_default();
                text.push_str(if text.is_empty() { "\t" } else { ",\n\t" });
                write_elem(text, &e.key, o.effective());
            }
        }
        if !elements {
            return out;
        }
        for map in self.maps_in_order() {
            if let Some(text) = by_map.get(&map) {
                let _ = write!(out, "add element ip {TABLE} {} {{\n{text}\n}}\n", map.name());
            }
        }
        out
    }

    fn render_delta(&self, touched: &Touched) -> (String, Option<super::netlink::Batch>) {
        let mut out = String::new();
        let now_chain = |name: &str| self.chains.get(name).and_then(Owned::effective);
        let now_decl = |name: &str| self.decls.get(name).and_then(Owned::effective);
        let mut added_chains = Vec::new();
        let mut changed_chains = Vec::new();
        let mut removed_chains = Vec::new();
        for name in touched.chains.keys().collect::<BTreeSet<_>>() {
            match (&touched.chains[name], now_chain(name)) {
                (None, Some(c)) => added_chains.push(c),
                (Some(old), Some(c)) if old != c => changed_chains.push(c),
                (Some(_), None) => removed_chains.push(name),
                _ => {}
            }
        }
        let mut added_decls = Vec::new();
        let mut removed_decls = Vec::new();
        for name in touched.decls.keys().collect::<BTreeSet<_>>() {
            match (&touched.decls[name], now_decl(name)) {
                (None, Some(d)) => added_decls.push(d),
                (Some(old), Some(d)) if old != d => {
                    removed_decls.push(old);
                    added_decls.push(d);
                }
                (Some(old), None) => removed_decls.push(old),
                _ => {}
            }
        }
        let mut deleted: BTreeMap<Map, Vec<&str>> = BTreeMap::new();
        let mut added: BTreeMap<Map, Vec<(&str, &ElemValue)>> = BTreeMap::new();
        for (map, keys) in &touched.elems {
            for (key, before) in keys {
                let now = self.elems.get(map).and_then(|m| m.get(key)).and_then(Owned::effective);
                if before.as_ref() == now {
                    continue;
                }
                if before.is_some() {
                    deleted.entry(*map).or_default().push(key);
                }
                if let Some(v) = now {
                    added.entry(*map).or_default().push((key, v));
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
        let removed_names: HashSet<&str> = removed_decls.iter().map(|d| d.name.as_str()).collect();
        let deleted_elems: Vec<(Map, &str)> =
            deleted.iter().flat_map(|(m, keys)| keys.iter().map(move |k| (*m, *k))).collect();
        let added_elems: Vec<(Map, &str, &ElemValue)> =
            added.iter().flat_map(|(m, elems)| elems.iter().map(move |(k, v)| (*m, *k, *v))).collect();
        for (map, mut keys) in deleted {
            // A map about to be deleted goes with its elements.
            if removed_names.contains(map.name().as_str()) {
                continue;
            }
            keys.sort_unstable();
            let _ = writeln!(out, "delete element ip {TABLE} {} {{ {} }}", map.name(), keys.join(", "));
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
        // (A slot map's declaration follows from its name, so only an
        // affinity set is ever declared anew; should a map be, it is
        // refilled whole.)
        for d in added_decls.iter().filter(|d| d.kind == DeclKind::Map && removed_names.contains(d.name.as_str())) {
            for (map, elems) in self.elems.iter().filter(|(m, _)| m.name() == d.name) {
                let list = added.entry(*map).or_default();
                for (key, o) in elems {
                    if let Some(v) = o.effective() {
                        if !list.iter().any(|(k, _)| *k == key) {
                            list.push((key, v));
                        }
                    }
                }
            }
        }
        for (map, mut elems) in added {
            elems.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let _ = write!(out, "add element ip {TABLE} {} {{ ", map.name());
            for (i, (key, v)) in elems.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_elem(&mut out, key, Some(v));
            }
            out.push_str(" }\n");
        }
        for c in &removed_chains {
            let _ = writeln!(out, "delete chain ip {TABLE} {c}");
        }
        let elements_only = added_chains.is_empty()
            && changed_chains.is_empty()
            && removed_chains.is_empty()
            && added_decls.is_empty()
            && removed_decls.is_empty()
            && !out.is_empty();
        let batch = if elements_only { element_delta(&deleted_elems, &added_elems) } else { None };
        (out, batch)
    }
}

/// True when two versions of a service port (same id) render alike:
/// everything but the endpoints' node names, compared without following
/// a pointer per endpoint. A sync compares every service port of the
/// snapshot, so this is most of an unchanged one's cost (the fields are
/// listed whole, so that a new one is not forgotten).
fn renders_alike(a: &ServicePort, b: &ServicePort) -> bool {
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
        affinity,
        external_local,
        internal_local,
        health_check_node_port,
        endpoints,
    } = a;
    *protocol == b.protocol
        && *cluster_ip == b.cluster_ip
        && *port == b.port
        && *node_port == b.node_port
        && *external_ips == b.external_ips
        && *load_balancer_ips == b.load_balancer_ips
        && *affinity == b.affinity
        && *external_local == b.external_local
        && *internal_local == b.internal_local
        && *health_check_node_port == b.health_check_node_port
        && endpoints.len() == b.endpoints.len()
        && endpoints.iter().zip(&b.endpoints).all(|(x, y)| {
            let Endpoint { ip, port, node: _, ready, serving, terminating, local } = x;
            *ip == y.ip
                && *port == y.port
                && *ready == y.ready
                && *serving == y.serving
                && *terminating == y.terminating
                && *local == y.local
        })
}

/// Element deletions and additions as one netlink batch (deletions
/// first, as in the nft transaction); None if one cannot be encoded.
fn element_delta(deleted: &[(Map, &str)], added: &[(Map, &str, &ElemValue)]) -> Option<super::netlink::Batch> {
    let mut batch = super::netlink::Batch::new();
    let mut by_map: BTreeMap<Map, Vec<super::netlink::Element>> = BTreeMap::new();
    for (map, key) in deleted {
        by_map.entry(*map).or_default().push(super::netlink::encode_key(*map, key)?);
    }
    for (map, elems) in &by_map {
        batch.delete_elements(TABLE, &map.name(), elems);
    }
    by_map.clear();
    for (map, key, (value, comment)) in added {
        by_map.entry(*map).or_default().push(super::netlink::encode(*map, key, value.as_deref(), comment.as_deref())?);
    }
    for (map, elems) in &by_map {
        batch.add_elements(TABLE, &map.name(), elems);
    }
    Some(batch)
}

fn write_elem(out: &mut String, key: &str, value: Option<&ElemValue>) {
    out.push_str(key);
    if let Some((value, comment)) = value {
        if let Some(c) = comment {
            let _ = write!(out, " comment \"{}\"", comment_text(c));
        }
        if let Some(v) = value {
            out.push_str(" : ");
            out.push_str(v);
        }
    }
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
