//! [`LiveZone`]: the zone kept up to date one object at a time, so that a
//! change costs the records of the object that changed, not the zone.
//!
//! Every object *contributes* records: a Service (with its
//! EndpointSlices) its names, a Pod (`pods verified`) its address, a
//! Namespace its empty names; `build.rs` says which, in the same pure
//! functions the whole-view [`build_view`](crate::build_view) uses. When an
//! object changes, its contribution is computed before and after, and only
//! the difference is applied:
//!
//! - **Names** are reference-counted by the contributions that hold them.
//!   A contribution also holds the ancestors of its names inside the
//!   zone, so empty non-terminals exist exactly while something below
//!   them does. The apex and its fixed children are held by the zone
//!   itself.
//! - **Records** at one name can come from several objects (the PTR of an
//!   address two Services share, two pods with one address); a record
//!   stays while any of them still holds it.
//! - The changed names are written to the view's [`Table`] of nodes, and
//!   their prepared answers are compiled again, together with the names
//!   whose answers copy theirs: the other names of the same Service (SRV
//!   answers carry their targets' addresses) and ExternalName aliases
//!   leading through them.
//!
//! [`LiveZone::publish`] then hands out a new view and [`Compiled`] that
//! share every untouched table shard with the previous ones. The SOA serial
//! moves on with each publish; prepared answers get it per query.
//!
//! The full rebuild stays the reference: the tests below apply random
//! sequences of changes and compare every answer with
//! [`build_view`](crate::build_view) of the same objects.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::build::{namespace_records, pod_records, service_records};
use crate::compiled::{Compiled, chased_names, compile, soa_template};
use crate::name::Name;
use crate::objects::{DnsPod, DnsService, DnsSlice};
use crate::slot::{ServiceSlot, pack_pod, unpack_pod};
use crate::store::Store;
use crate::table::Table;
use crate::view::{
    PodsMode, Sink, ZoneConfig, ZoneView, fixed_records, node_from, pack_node, soa_of, unpack_node, with_soa,
};
use crate::wire::{RData, rtype};

/// The kinds of objects the zone is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Service,
    Slice,
    Pod,
    Namespace,
}

/// `namespace/name`, in one allocation (tens of thousands of these).
type Key = Box<str>;

fn key(ns: &str, name: &str) -> Key {
    format!("{ns}/{name}").into()
}

/// The namespace and name of a key.
fn split(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// What one object puts in the zone, sorted and without duplicates.
#[derive(Debug, Default, PartialEq, Eq)]
struct Contribution {
    /// Every name it makes exist: owners of its records, its empty names,
    /// and their ancestors inside the zone (below the apex).
    names: Vec<Name>,
    records: Vec<(Name, RData)>,
    /// Lowercased namespaces, for `pods insecure` names.
    namespaces: Vec<Box<[u8]>>,
}

/// Collects one object's records from `build.rs`.
struct Collect<'c> {
    config: &'c ZoneConfig,
    out: Contribution,
}

impl<'c> Collect<'c> {
    fn new(config: &'c ZoneConfig) -> Self {
        Collect { config, out: Contribution::default() }
    }

    fn finish(self) -> Contribution {
        let Contribution { mut names, mut records, mut namespaces } = self.out;
        let zone = &self.config.zone;
        names.extend(records.iter().map(|(n, _)| n.clone()));
        let mut ancestors = Vec::new();
        for name in &names {
            if !name.is_subdomain_of(zone) {
                continue;
            }
            let mut current = name.parent();
            while let Some(p) = current {
                if p.wire().len() <= zone.wire().len() {
                    break;
                }
                current = p.parent();
                ancestors.push(p);
            }
        }
        names.extend(ancestors);
        names.sort_unstable();
        names.dedup();
        records.sort_unstable();
        records.dedup();
        namespaces.sort_unstable();
        namespaces.dedup();
        Contribution { names, records, namespaces }
    }
}

impl Sink for Collect<'_> {
    fn config(&self) -> &ZoneConfig {
        self.config
    }

    fn add(&mut self, name: Name, data: RData) {
        self.out.records.push((name, data));
    }

    fn add_empty(&mut self, name: Name) {
        self.out.names.push(name);
    }

    fn namespace_label(&mut self, lower: Box<[u8]>) {
        self.out.namespaces.push(lower);
    }
}

/// The zone, updated object by object. Owned by one updater; readers get
/// what [`LiveZone::publish`] returns.
pub(crate) struct LiveZone {
    config: ZoneConfig,
    recursion: bool,
    serial: u32,
    // The objects (the watcher keeps no copy of its own), by
    // `namespace/name`.
    /// By Service: the Service and its slices, packed (`slot.rs`).
    services: Store,
    /// By slice: the name of the Service it belongs to (its label).
    slices: Store,
    /// Packed (`slot.rs`).
    pods: Store,
    namespaces: HashSet<String>,
    // What they add up to. How many contributions hold each name is the
    // count beside the name in the view's table (a name held but not yet
    // published has a slot there that is not in the view).
    /// Records held by more than one contribution (the name's node has
    /// each record once), with how many beyond the first: rare (two
    /// Services sharing an address), so kept apart from the counts.
    shared: HashMap<Name, Vec<(RData, u32)>>,
    namespace_refs: HashMap<Box<[u8]>, u32>,
    view: ZoneView,
    /// A name inside a CNAME chain → the CNAME owners leading through it.
    chasers: HashMap<Name, Vec<Name>>,
    /// A CNAME owner → the names its chain leads through.
    chases: HashMap<Name, Vec<Name>>,
    // Since the last publish.
    /// Names whose records or existence may have changed, with their
    /// records as they are now (sorted).
    work: HashMap<Name, Vec<RData>>,
    /// Names whose answers must be prepared again.
    recompile: HashSet<Name>,
    namespaces_changed: bool,
}

impl LiveZone {
    /// A zone holding only its fixed names; the first
    /// [`LiveZone::publish`] has serial `serial + 1`.
    pub fn new(config: ZoneConfig, recursion: bool, serial: u32) -> LiveZone {
        let view = ZoneView::assemble(config.clone(), serial, Table::for_zone(&config.zone), Arc::default());
        let mut zone = LiveZone {
            config,
            recursion,
            serial,
            services: Store::default(),
            slices: Store::default(),
            pods: Store::default(),
            namespaces: HashSet::new(),
            shared: HashMap::new(),
            namespace_refs: HashMap::new(),
            view,
            chasers: HashMap::new(),
            chases: HashMap::new(),
            work: HashMap::new(),
            recompile: HashSet::new(),
            namespaces_changed: false,
        };
        let mut fixed = Collect::new(&zone.config);
        fixed_records(&mut fixed);
        // The apex is the zone's own; contributions stop below it.
        fixed.out.names.push(zone.config.zone.clone());
        let fixed = fixed.finish();
        zone.apply(Contribution::default(), fixed);
        zone
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The Service `ns/name`, if the zone holds it.
    pub fn service(&self, ns: &str, name: &str) -> Option<DnsService> {
        self.services.get(key(ns, name).as_bytes()).and_then(|b| ServiceSlot::unpack(b).service)
    }

    /// The Service and slices stored under `key` (an empty slot if none).
    fn slot(&self, key: &str) -> ServiceSlot {
        self.services.get(key.as_bytes()).map(ServiceSlot::unpack).unwrap_or_default()
    }

    /// Stores a slot, or drops it once it holds nothing.
    fn store(&mut self, key: &str, slot: &ServiceSlot) {
        if slot.is_empty() {
            self.services.remove(key.as_bytes());
        } else {
            self.services.put(key.as_bytes(), &slot.pack_after(&[]));
        }
    }

    /// The `(namespace, name)` of every Service, EndpointSlice or Pod the
    /// zone holds, and every Namespace (with an empty namespace): what a
    /// new list is compared with, to find what was deleted meanwhile.
    pub fn keys(&self, kind: Kind) -> Vec<(String, String)> {
        let pair = |k: &[u8]| {
            let (ns, name) = split(std::str::from_utf8(k).unwrap_or_default());
            (ns.to_string(), name.to_string())
        };
        match kind {
            Kind::Service => {
                // A slot holds a Service unless its first byte is 0.
                let holds_service = |(_, slot): &(&[u8], &[u8])| slot.first().is_some_and(|f| *f != 0);
                self.services.iter().filter(holds_service).map(|(k, _)| pair(k)).collect()
            }
            Kind::Slice => self.slices.iter().map(|(k, _)| pair(k)).collect(),
            Kind::Pod => self.pods.iter().map(|(k, _)| pair(k)).collect(),
            Kind::Namespace => self.namespaces.iter().map(|n| (String::new(), n.clone())).collect(),
        }
    }

    /// Sets (`Some`) or deletes (`None`) a Service.
    pub fn set_service(&mut self, ns: &str, name: &str, service: Option<DnsService>) {
        let key = key(ns, name);
        let mut slot = self.slot(&key);
        let before = self.service_contribution(&key, &slot);
        slot.service = service;
        let after = self.service_contribution(&key, &slot);
        self.store(&key, &slot);
        self.apply(before, after);
    }

    /// Sets or deletes an EndpointSlice; its Service (the one it belonged
    /// to, and the one it belongs to now) is recomputed.
    pub fn set_slice(&mut self, ns: &str, name: &str, slice: Option<DnsSlice>) {
        let slice_key = key(ns, name);
        let owner = slice.as_ref().and_then(|s| s.service.as_deref()).map(|svc| key(ns, svc));
        let previous = self.slices.get(slice_key.as_bytes()).map(|o| key(ns, &String::from_utf8_lossy(o)));
        let mut affected: Vec<Key> = previous.iter().chain(owner.iter()).cloned().collect();
        affected.dedup();
        let before: Vec<Contribution> = affected.iter().map(|k| self.service_contribution(k, &self.slot(k))).collect();
        if let Some(p) = &previous {
            let mut slot = self.slot(p);
            slot.slices.retain(|(n, _)| **n != *name);
            self.store(p, &slot);
            self.slices.remove(slice_key.as_bytes());
        }
        if let (Some(o), Some(mut s)) = (owner, slice) {
            // The slot is the Service's: the label need not be kept twice,
            // and the trigger time only matters as the event arrives.
            let service = s.service.take().unwrap_or_default();
            s.trigger_time = None;
            let mut slot = self.slot(&o);
            let at = slot.slices.partition_point(|(n, _)| **n < *name);
            slot.slices.insert(at, (name.into(), s));
            self.store(&o, &slot);
            self.slices.put(slice_key.as_bytes(), service.as_bytes());
        }
        for (k, before) in affected.iter().zip(before) {
            let after = self.service_contribution(k, &self.slot(k));
            self.apply(before, after);
        }
    }

    /// Sets or deletes a Pod (ignored unless `pods verified`).
    pub fn set_pod(&mut self, ns: &str, name: &str, pod: Option<DnsPod>) {
        if self.config.pods != PodsMode::Verified {
            return;
        }
        let key = key(ns, name);
        let stored = self.pods.get(key.as_bytes()).map(unpack_pod);
        let before = self.contribution(stored.as_ref(), |c, p| pod_records(c, ns, p));
        let after = self.contribution(pod.as_ref(), |c, p| pod_records(c, ns, p));
        match pod {
            Some(p) => self.pods.put(key.as_bytes(), &pack_pod(&p, &[])),
            None => self.pods.remove(key.as_bytes()),
        };
        self.apply(before, after);
    }

    /// Creates or deletes a Namespace.
    pub fn set_namespace(&mut self, name: &str, exists: bool) {
        let before = self.contribution(self.namespaces.get(name), |c, n| namespace_records(c, n));
        let after = self.contribution(exists.then_some(name), |c, n| namespace_records(c, n));
        if exists {
            self.namespaces.insert(name.to_string());
        } else {
            self.namespaces.remove(name);
        }
        self.apply(before, after);
    }

    fn contribution<T: ?Sized>(&self, object: Option<&T>, records: impl Fn(&mut Collect<'_>, &T)) -> Contribution {
        let Some(object) = object else { return Contribution::default() };
        let mut c = Collect::new(&self.config);
        records(&mut c, object);
        c.finish()
    }

    fn service_contribution(&self, key: &str, slot: &ServiceSlot) -> Contribution {
        let ServiceSlot { service: Some(service), slices } = slot else {
            return Contribution::default();
        };
        let slices: Vec<&DnsSlice> = slices.iter().map(|(_, s)| s).collect();
        let (ns, name) = split(key);
        let mut c = Collect::new(&self.config);
        service_records(&mut c, ns, name, service, &slices);
        c.finish()
    }

    /// Replaces one object's contribution `before` by `after`.
    fn apply(&mut self, before: Contribution, after: Contribution) {
        if before == after {
            return;
        }
        // Names first, so that records always land on a held name; names
        // let go last, once their records are gone.
        // Parents before their children, so that the table can keep an
        // empty `_tcp.<svc>` inside the record of `<svc>` (`table.rs`).
        let mut added: Vec<&Name> = missing_from(&after.names, &before.names).collect();
        added.sort_by_key(|n| n.wire().len());
        for name in added {
            let held = match self.view.nodes.bump(name.wire(), true) {
                Some(count) => count,
                None => self.view.nodes.put(name.wire(), false, &[], None, Some(1)),
            };
            if held == 1 {
                self.touch(name);
            }
        }
        for (name, data) in missing_from(&before.records, &after.records) {
            self.remove_record(name, data);
        }
        for (name, data) in missing_from(&after.records, &before.records) {
            self.add_record(name, data);
        }
        // Children before their parents.
        let mut released: Vec<&Name> = missing_from(&before.names, &after.names).collect();
        released.sort_by_key(|n| std::cmp::Reverse(n.wire().len()));
        for name in released {
            let Some(count) = self.view.nodes.bump(name.wire(), false) else { continue };
            if count == 0 {
                debug_assert!(!self.shared.contains_key(name), "{name} released with shared records");
                if self.view.nodes.get(name.wire()).is_some_and(|s| !s.rec.in_view()) {
                    // Held and let go between two publishes.
                    self.view.nodes.remove(name.wire());
                }
                self.touch(name);
            }
        }
        for ns in missing_from(&after.namespaces, &before.namespaces) {
            let refs = self.namespace_refs.entry(ns.clone()).or_default();
            *refs += 1;
            self.namespaces_changed |= *refs == 1;
        }
        for ns in missing_from(&before.namespaces, &after.namespaces) {
            if let Some(refs) = self.namespace_refs.get_mut(ns) {
                *refs -= 1;
                if *refs == 0 {
                    self.namespace_refs.remove(ns);
                    self.namespaces_changed = true;
                }
            }
        }
        // SRV answers carry the addresses of their targets, all names of
        // the same Service: prepare every name of the object again.
        self.recompile.extend(after.names);
    }

    /// Whether some contribution holds `name`.
    fn held(&self, name: &Name) -> bool {
        self.view.nodes.get(name.wire()).is_some_and(|s| s.count > 0)
    }

    /// The records of `name` being edited, from the published node.
    fn touch(&mut self, name: &Name) -> &mut Vec<RData> {
        let view = &self.view;
        self.work.entry(name.clone()).or_insert_with(|| {
            let mut data: Vec<RData> = view
                .node(name)
                .map(|n| {
                    n.rrsets.iter().filter(|s| s.rtype != rtype::SOA).flat_map(|s| s.data.iter().cloned()).collect()
                })
                .unwrap_or_default();
            data.sort_unstable();
            data
        })
    }

    fn add_record(&mut self, name: &Name, data: &RData) {
        let records = self.touch(name);
        match records.binary_search(data) {
            Err(at) => records.insert(at, data.clone()),
            Ok(_) => {
                if !self.held(name) {
                    return;
                }
                let shared = self.shared.entry(name.clone()).or_default();
                match shared.iter_mut().find(|(d, _)| d == data) {
                    Some((_, extra)) => *extra += 1,
                    None => shared.push((data.clone(), 1)),
                }
            }
        }
    }

    fn remove_record(&mut self, name: &Name, data: &RData) {
        if let Some(shared) = self.shared.get_mut(name) {
            if let Some(i) = shared.iter().position(|(d, _)| d == data) {
                shared[i].1 -= 1;
                if shared[i].1 == 0 {
                    shared.swap_remove(i);
                    if shared.is_empty() {
                        self.shared.remove(name);
                    }
                }
                return;
            }
        }
        let records = self.touch(name);
        if let Ok(at) = records.binary_search(data) {
            records.remove(at);
        }
    }

    /// Applies what changed since the last publish to the view, prepares
    /// the answers that changed with it, and returns the new version, or
    /// `None` if nothing changed.
    pub fn publish(&mut self) -> Option<Arc<Compiled>> {
        if self.work.is_empty() && self.recompile.is_empty() && !self.namespaces_changed {
            return None;
        }
        self.serial = self.serial.wrapping_add(1);
        let zone = self.config.zone.clone();
        let mut changed = Vec::new();
        for (name, records) in std::mem::take(&mut self.work) {
            if self.held(&name) {
                let node = pack_node(&node_from(records), &self.view.nodes);
                let unchanged = self.view.rec(name.wire()).is_some_and(|r| r.node_bytes() == node);
                if !unchanged {
                    // Prepared below: every changed name is.
                    self.view.nodes.put(name.wire(), true, &node, None, None);
                    changed.push(name);
                }
            } else if self.view.nodes.remove(name.wire()) == Some(true) {
                changed.push(name);
            }
        }
        let soa = soa_of(&self.config, self.serial);
        // The apex's prepared answers stay: its SOA serial is written per
        // query.
        let (apex, prepared) = match self.view.rec(zone.wire()) {
            Some(r) => (unpack_node(r.node_bytes(), &self.view.nodes), r.entry_bytes().map(<[u8]>::to_vec)),
            None => (Default::default(), None),
        };
        let apex = pack_node(&with_soa(apex, &soa), &self.view.nodes);
        self.view.nodes.put(zone.wire(), true, &apex, prepared.as_deref(), None);
        self.view.serial = self.serial;
        self.view.soa = soa;
        self.view.synced = true;
        let mut dirty: HashSet<Name> = std::mem::take(&mut self.recompile);
        for name in &changed {
            dirty.extend(self.chasers.get(name).into_iter().flatten().cloned());
        }
        if std::mem::take(&mut self.namespaces_changed) {
            self.view.namespaces = Arc::new(self.namespace_refs.keys().cloned().collect());
            // `pods insecure` names a CNAME may lead to exist by namespace.
            dirty.extend(self.chases.keys().cloned());
        }
        dirty.extend(changed);
        let template = soa_template(&self.view);
        for name in dirty {
            self.forget_chase(&name);
            // A name no longer in the view has nothing to prepare.
            let Some(packed) = self.view.rec(name.wire()).map(|r| r.node_bytes().to_vec()) else { continue };
            let node = unpack_node(&packed, &self.view.nodes);
            let entry = compile(&self.view, &template, &name, &packed);
            let through = chased_names(&self.view, &node);
            self.view.nodes.put(name.wire(), true, &packed, Some(&entry), None);
            if !through.is_empty() {
                for t in &through {
                    self.chasers.entry(t.clone()).or_default().push(name.clone());
                }
                self.chases.insert(name, through);
            }
        }
        let view = Arc::new(self.view.clone());
        Some(Arc::new(Compiled::assemble(view, self.recursion)))
    }

    fn forget_chase(&mut self, owner: &Name) {
        for t in self.chases.remove(owner).unwrap_or_default() {
            if let Some(owners) = self.chasers.get_mut(&t) {
                owners.retain(|o| o != owner);
                if owners.is_empty() {
                    self.chasers.remove(&t);
                }
            }
        }
    }
}

/// The items of sorted `a` that sorted `b` lacks.
fn missing_from<'a, T: Ord>(a: &'a [T], b: &'a [T]) -> impl Iterator<Item = &'a T> {
    let mut j = 0;
    a.iter().filter(move |x| {
        while j < b.len() && b[j] < **x {
            j += 1;
        }
        !(j < b.len() && b[j] == **x)
    })
}

#[cfg(test)]
#[path = "zone_tests.rs"]
mod tests;
