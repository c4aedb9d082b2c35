//! [`ZoneView`]: the immutable set of names and records the server answers
//! from at one moment. It is built whole by [`ViewBuilder`] (from cluster
//! objects in `build.rs`, or by hand in tests and benchmarks), or derived
//! from the previous view by an incremental update (`zone.rs`), and
//! swapped in atomically; nothing mutates a view once it is published.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::name::Name;
use crate::table::Table;
use crate::wire::{RData, Soa, rtype};

/// How `a-b-c-d.<ns>.pod.<zone>` names are answered, as CoreDNS's
/// `pods` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PodsMode {
    /// No pod records: every name under `pod.<zone>` is NXDOMAIN.
    Disabled,
    /// Any dashed address in an existing namespace resolves to that
    /// address, pod or not (kube-dns's behaviour; the spec's deprecated
    /// records §2.6). The default, as in kubeadm's Corefile.
    #[default]
    Insecure,
    /// Only addresses of pods (not terminating) in that namespace.
    Verified,
}

impl std::str::FromStr for PodsMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "disabled" => Ok(PodsMode::Disabled),
            "insecure" => Ok(PodsMode::Insecure),
            "verified" => Ok(PodsMode::Verified),
            other => Err(format!("pods mode must be disabled, insecure or verified, not {other:?}")),
        }
    }
}

/// What a view serves, beyond the objects it is built from.
#[derive(Clone, Debug)]
pub struct ZoneConfig {
    /// The cluster domain, e.g. `cluster.local.`.
    pub zone: Name,
    /// TTL of every record, and the SOA minimum (negative caching TTL).
    pub ttl: u32,
    pub pods: PodsMode,
}

impl ZoneConfig {
    pub fn new(zone: &str) -> Result<ZoneConfig, crate::name::NameError> {
        Ok(ZoneConfig { zone: Name::parse(zone)?, ttl: 5, pods: PodsMode::default() })
    }
}

/// The records of one type at one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RRset {
    pub rtype: u16,
    pub data: Vec<RData>,
}

/// The records at one name; none for an empty non-terminal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    pub rrsets: Vec<RRset>,
}

impl Node {
    pub fn rrset(&self, t: u16) -> Option<&RRset> {
        self.rrsets.iter().find(|r| r.rtype == t)
    }

    pub fn is_empty_non_terminal(&self) -> bool {
        self.rrsets.is_empty()
    }
}

/// One name as the view stores it, in a few dozen contiguous bytes of
/// its table shard (`table.rs`): the name, its records (`rtype u16,
/// length u16, data` each, names in canonical wire form) and its prepared
/// answers (`compiled.rs`), instead of a key, a node, its RRsets, a
/// 64-byte [`RData`] each and a separate table of answers. A view holds
/// tens of thousands of names, most with one record; records are read
/// back as a [`Node`] only to prepare answers and on the slow path.
///
/// ```text
/// prefix length u8, suffix u8, name prefix, state u8 (IN_VIEW, HAS_ENTRY, CHILDREN),
/// [if CHILDREN: mask u8, then per child in the mask: state u8, count (LEB128)]
/// records length (LEB128), records, prepared answers (to the end, if HAS_ENTRY)
/// ```
///
/// The name is stored without the longest of its table's common suffixes
/// (`svc.<zone>`, `pod.<zone>`, `<zone>`, `in-addr.arpa`, `ip6.arpa`;
/// `table.rs`), which
/// every name of a Service ends with: the table puts it back.
///
/// The children are the empty non-terminals `_tcp`, `_udp` and `_sctp`
/// right below the name ([`CHILD_LABELS`]): a Service with named ports has
/// one or two (`_tcp.<svc>` above `_http._tcp.<svc>`), each of which
/// exists only to answer NODATA. The table keeps such a child inside its
/// parent's record, as its state and the zone's count of it, instead of as
/// a name of its own (`table.rs`).
///
/// A name the live zone holds but has not published yet is not IN_VIEW:
/// readers never see one (a publish settles every such name), and the
/// view's reads skip it anyway.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rec<'a>(&'a [u8]);

const IN_VIEW: u8 = 1;
const HAS_ENTRY: u8 = 2;
const CHILDREN: u8 = 4;

/// The first labels of the empty non-terminals a record can hold as
/// children, in wire form.
pub(crate) const CHILD_LABELS: [&[u8]; 3] = [b"\x04_tcp", b"\x04_udp", b"\x05_sctp"];

/// The prepared answers of a child: "any other type" is the zone's NODATA
/// (`compiled.rs`), and there is no type it has records of.
pub(crate) const CHILD_ENTRY: [u8; 1] = crate::compiled::PLAIN_NODATA_ENTRY;

/// The records of children, by state (IN_VIEW | HAS_ENTRY): no name, no
/// records, [`CHILD_ENTRY`].
static CHILD_RECS: [[u8; 5]; 4] = [
    [0, 0, 0, 0, CHILD_ENTRY[0]],
    [0, 0, IN_VIEW, 0, CHILD_ENTRY[0]],
    [0, 0, HAS_ENTRY, 0, CHILD_ENTRY[0]],
    [0, 0, IN_VIEW | HAS_ENTRY, 0, CHILD_ENTRY[0]],
];

/// A child held in its parent's record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Child {
    pub in_view: bool,
    pub has_entry: bool,
    pub count: u32,
}

impl Child {
    /// The record readers see for it (its name is the parent's, after
    /// the child's label).
    pub fn rec(&self) -> Rec<'static> {
        Rec(&CHILD_RECS[usize::from(self.in_view) | usize::from(self.has_entry) << 1])
    }
}

/// The children of a record, by [`CHILD_LABELS`] index.
pub(crate) type Children = [Option<Child>; 3];

impl std::fmt::Debug for Rec<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rec")
            .field("prefix", &self.prefix())
            .field("suffix", &self.suffix())
            .field("in_view", &self.in_view())
            .field("children", &self.children())
            .field("node", &self.node_bytes())
            .field("entry", &self.entry_bytes().map(<[u8]>::len))
            .finish()
    }
}

/// Appends `v` as LEB128 (the packed records' and answers' lengths).
pub(crate) fn put_var(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads the LEB128 number [`put_var`] wrote at `*at`, moving past it.
#[inline]
pub(crate) fn var_at(b: &[u8], at: &mut usize) -> u32 {
    let mut v = 0u32;
    let mut shift = 0;
    loop {
        let byte = b[*at];
        *at += 1;
        v |= u32::from(byte & 0x7f) << shift;
        if byte < 0x80 || shift >= 28 {
            return v;
        }
        shift += 7;
    }
}

impl<'a> Rec<'a> {
    /// Reads the bytes [`Rec::encode`] wrote.
    #[inline]
    pub fn from_bytes(bytes: &'a [u8]) -> Rec<'a> {
        Rec(bytes)
    }

    /// The bytes of a record for the name `prefix` + suffix number
    /// `suffix` of its table (0: none).
    pub fn encode(
        prefix: &[u8],
        suffix: u8,
        in_view: bool,
        node: &[u8],
        entry: Option<&[u8]>,
        children: &Children,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + prefix.len() + node.len() + entry.map_or(0, <[u8]>::len));
        // Names are at most 255 bytes.
        out.push(prefix.len() as u8);
        out.push(suffix);
        out.extend_from_slice(prefix);
        let has_children = children.iter().any(Option::is_some);
        out.push(
            if in_view { IN_VIEW } else { 0 }
                | if entry.is_some() { HAS_ENTRY } else { 0 }
                | if has_children { CHILDREN } else { 0 },
        );
        if has_children {
            let mask = children.iter().enumerate().filter(|(_, c)| c.is_some()).fold(0, |m, (i, _)| m | 1 << i);
            out.push(mask);
            for c in children.iter().flatten() {
                out.push(if c.in_view { IN_VIEW } else { 0 } | if c.has_entry { HAS_ENTRY } else { 0 });
                put_var(&mut out, c.count);
            }
        }
        // Record data of one name: far below 4 GiB.
        put_var(&mut out, node.len() as u32);
        out.extend_from_slice(node);
        out.extend_from_slice(entry.unwrap_or_default());
        out
    }

    /// The name, less its suffix.
    #[inline]
    pub fn prefix(&self) -> &'a [u8] {
        let b: &'a [u8] = self.0;
        &b[2..2 + b[0] as usize]
    }

    /// Which of its table's suffixes the name ends with (0: none).
    #[inline]
    pub fn suffix(&self) -> u8 {
        self.0[1]
    }

    #[inline]
    fn state(&self) -> u8 {
        self.0[2 + self.0[0] as usize]
    }

    #[inline]
    pub fn in_view(&self) -> bool {
        self.state() & IN_VIEW != 0
    }

    /// The children this record holds.
    pub fn children(&self) -> Children {
        let mut out = Children::default();
        if self.state() & CHILDREN == 0 {
            return out;
        }
        let b = self.0;
        let mut at = 3 + b[0] as usize;
        let mask = b[at];
        at += 1;
        for (i, c) in out.iter_mut().enumerate() {
            if mask & (1 << i) != 0 {
                let state = b[at];
                at += 1;
                let count = var_at(b, &mut at);
                *c = Some(Child { in_view: state & IN_VIEW != 0, has_entry: state & HAS_ENTRY != 0, count });
            }
        }
        out
    }

    #[inline]
    fn node_range(&self) -> std::ops::Range<usize> {
        let b = self.0;
        let mut at = 3 + b[0] as usize;
        if self.state() & CHILDREN != 0 {
            let mask = b[at];
            at += 1;
            for _ in 0..mask.count_ones() {
                at += 1;
                var_at(b, &mut at);
            }
        }
        let len = var_at(b, &mut at) as usize;
        at..at + len
    }

    /// The records, packed.
    #[inline]
    pub fn node_bytes(&self) -> &'a [u8] {
        let b: &'a [u8] = self.0;
        &b[self.node_range()]
    }

    /// The prepared answers, if they have been prepared.
    #[inline]
    pub fn entry_bytes(&self) -> Option<&'a [u8]> {
        let b: &'a [u8] = self.0;
        (self.state() & HAS_ENTRY != 0).then(|| &b[self.node_range().end..])
    }
}

/// Whether the data of type `t` ends with a name. That name is packed
/// less the longest suffix its table leaves out of names, followed by the
/// suffix number (`table.rs`): a PTR or SRV target costs its first labels.
#[inline]
pub(crate) fn ends_with_name(t: u16) -> bool {
    matches!(t, rtype::NS | rtype::CNAME | rtype::PTR | rtype::MX | rtype::SRV)
}

/// A node's records packed as a [`Rec`] holds them (empty for an empty
/// non-terminal), trailing names shortened by `table`'s suffixes.
pub(crate) fn pack_node(node: &Node, table: &Table) -> Vec<u8> {
    let mut out = Vec::new();
    let name = |out: &mut Vec<u8>, n: &Name| {
        let (prefix, suffix) = table.split(n.wire());
        out.extend_from_slice(prefix);
        out.push(suffix);
    };
    for set in &node.rrsets {
        for data in &set.data {
            out.extend_from_slice(&set.rtype.to_be_bytes());
            let len_at = out.len();
            out.extend_from_slice(&[0, 0]);
            match data {
                RData::A(ip) => out.extend_from_slice(&ip.octets()),
                RData::Aaaa(ip) => out.extend_from_slice(&ip.octets()),
                RData::Ns(n) | RData::Cname(n) | RData::Ptr(n) => name(&mut out, n),
                RData::Soa(soa) => {
                    out.extend_from_slice(soa.mname.wire());
                    out.extend_from_slice(soa.rname.wire());
                    for v in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                }
                RData::Mx { preference, exchange } => {
                    out.extend_from_slice(&preference.to_be_bytes());
                    name(&mut out, exchange);
                }
                RData::Txt(strings) => {
                    for s in strings {
                        out.push(s.len().min(255) as u8);
                        out.extend_from_slice(&s[..s.len().min(255)]);
                    }
                }
                RData::Srv(srv) => {
                    for v in [srv.priority, srv.weight, srv.port] {
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                    name(&mut out, &srv.target);
                }
                RData::Other { data, .. } => out.extend_from_slice(data),
            }
            // Record data of the zone: far below 64 KiB.
            let len = (out.len() - len_at - 2) as u16;
            out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
        }
    }
    out
}

/// The packed records of `b`, in order: type, and the data as two parts
/// (the trailing name's suffix put back as the second).
#[inline]
pub(crate) fn packed_records<'a>(
    b: &'a [u8],
    table: &'a Table,
) -> impl Iterator<Item = (u16, &'a [u8], &'a [u8])> + 'a {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at + 4 > b.len() {
            return None;
        }
        let t = u16::from_be_bytes([b[at], b[at + 1]]);
        let len = u16::from_be_bytes([b[at + 2], b[at + 3]]) as usize;
        let d = &b[at + 4..at + 4 + len];
        at += 4 + len;
        Some(match d.split_last() {
            Some((&suffix, head)) if ends_with_name(t) => (t, head, table.suffix(suffix)),
            _ => (t, d, &[][..]),
        })
    })
}

/// The node again, as [`node_from`] made it.
pub(crate) fn unpack_node(b: &[u8], table: &Table) -> Node {
    let mut rrsets: Vec<RRset> = Vec::new();
    let mut whole = Vec::new();
    for (t, head, tail) in packed_records(b, table) {
        let data = if tail.is_empty() {
            unpack_rdata(t, head)
        } else {
            whole.clear();
            whole.extend_from_slice(head);
            whole.extend_from_slice(tail);
            unpack_rdata(t, &whole)
        };
        match rrsets.last_mut() {
            Some(set) if set.rtype == t => set.data.push(data),
            _ => rrsets.push(RRset { rtype: t, data: vec![data] }),
        }
    }
    Node { rrsets }
}

/// A name at the start of `d` (canonical wire form) and what follows it.
fn unpack_name(d: &[u8]) -> (Name, &[u8]) {
    let mut at = 0;
    while at < d.len() && d[at] != 0 {
        at += 1 + d[at] as usize;
    }
    let end = (at + 1).min(d.len());
    (Name::from_wire_unchecked(&d[..end]), &d[end..])
}

fn be16(d: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([d[2 * i], d[2 * i + 1]])
}

fn unpack_rdata(t: u16, d: &[u8]) -> RData {
    match t {
        rtype::A if d.len() == 4 => RData::A(std::net::Ipv4Addr::new(d[0], d[1], d[2], d[3])),
        rtype::AAAA if d.len() == 16 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(d);
            RData::Aaaa(std::net::Ipv6Addr::from(o))
        }
        rtype::NS => RData::Ns(unpack_name(d).0),
        rtype::CNAME => RData::Cname(unpack_name(d).0),
        rtype::PTR => RData::Ptr(unpack_name(d).0),
        rtype::SOA => {
            let (mname, rest) = unpack_name(d);
            let (rname, rest) = unpack_name(rest);
            let v = |i: usize| u32::from_be_bytes([rest[4 * i], rest[4 * i + 1], rest[4 * i + 2], rest[4 * i + 3]]);
            RData::Soa(Soa { mname, rname, serial: v(0), refresh: v(1), retry: v(2), expire: v(3), minimum: v(4) })
        }
        rtype::MX => RData::Mx { preference: be16(d, 0), exchange: unpack_name(&d[2..]).0 },
        rtype::TXT => {
            let mut strings = Vec::new();
            let mut rest = d;
            while let Some((&n, tail)) = rest.split_first() {
                strings.push(tail[..n as usize].to_vec());
                rest = &tail[n as usize..];
            }
            RData::Txt(strings)
        }
        rtype::SRV => RData::Srv(crate::wire::Srv {
            priority: be16(d, 0),
            weight: be16(d, 1),
            port: be16(d, 2),
            target: unpack_name(&d[6..]).0,
        }),
        _ => RData::Other { rtype: t, data: d.to_vec() },
    }
}

/// The zone at one moment. Its tables are shared with the versions
/// before and after it (see `table.rs`): cloning a view is cheap, and an
/// incremental update (`zone.rs`) copies only the parts it changes.
#[derive(Clone, Debug)]
pub struct ZoneView {
    pub(crate) config: ZoneConfig,
    pub(crate) serial: u32,
    /// False until the watches hold a first complete list: until then
    /// questions about the zone get SERVFAIL rather than a wrong NXDOMAIN.
    pub(crate) synced: bool,
    /// In-zone names and the reverse names we hold PTR records for, with
    /// their prepared answers once a [`Compiled`](crate::compiled::Compiled)
    /// has prepared them.
    pub(crate) nodes: Table,
    /// Lowercased namespaces, for `pods insecure` names.
    pub(crate) namespaces: Arc<HashSet<Box<[u8]>>>,
    pub(crate) soa: Soa,
    pub(crate) reverse_v4: Name,
    pub(crate) reverse_v6: Name,
}

impl ZoneView {
    /// An empty, unsynced view: the server answers SERVFAIL for the zone
    /// until the first real one replaces it.
    pub fn unsynced(config: ZoneConfig) -> ZoneView {
        let mut view = ViewBuilder::new(config).build(0);
        view.synced = false;
        view
    }

    /// A synced view of `nodes` (whose apex must already carry the SOA
    /// of `serial`).
    pub(crate) fn assemble(
        config: ZoneConfig,
        serial: u32,
        nodes: Table,
        namespaces: Arc<HashSet<Box<[u8]>>>,
    ) -> ZoneView {
        ZoneView {
            soa: soa_of(&config, serial),
            config,
            serial,
            synced: true,
            nodes,
            namespaces,
            reverse_v4: Name::parse("in-addr.arpa").unwrap_or_else(|_| Name::root()),
            reverse_v6: Name::parse("ip6.arpa").unwrap_or_else(|_| Name::root()),
        }
    }

    pub fn zone(&self) -> &Name {
        &self.config.zone
    }

    pub fn ttl(&self) -> u32 {
        self.config.ttl
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    pub fn is_synced(&self) -> bool {
        self.synced
    }

    pub fn pods_mode(&self) -> PodsMode {
        self.config.pods
    }

    /// The records at `name`, if it exists (read back from their packed
    /// form: a copy).
    pub fn node(&self, name: &Name) -> Option<Node> {
        self.rec(name.wire()).map(|r| unpack_node(r.node_bytes(), &self.nodes))
    }

    /// The stored record of the name `wire`, if it is in the view.
    #[inline]
    pub(crate) fn rec(&self, wire: &[u8]) -> Option<Rec<'_>> {
        self.nodes.get(wire).map(|s| s.rec).filter(|r| r.in_view())
    }

    /// Whether `name` exists.
    pub fn contains(&self, name: &Name) -> bool {
        self.rec(name.wire()).is_some()
    }

    /// Every name with its node, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = (Name, Node)> + '_ {
        self.nodes
            .iter()
            .filter(|s| s.rec.in_view())
            .map(|s| (self.nodes.name_of(&s), unpack_node(s.rec.node_bytes(), &self.nodes)))
    }

    /// How many names the view holds.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn has_namespace(&self, ns: &[u8]) -> bool {
        self.namespaces.contains(ns)
    }

    /// The SOA record data of the zone.
    pub fn soa(&self) -> &Soa {
        &self.soa
    }

    /// Which of our zones a name belongs to: the cluster zone, or one of
    /// the reverse zones for names we hold.
    pub fn zone_of(&self, name: &Name) -> Option<&Name> {
        if name.is_subdomain_of(&self.config.zone) {
            Some(&self.config.zone)
        } else if name.is_subdomain_of(&self.reverse_v4) {
            Some(&self.reverse_v4)
        } else if name.is_subdomain_of(&self.reverse_v6) {
            Some(&self.reverse_v6)
        } else {
            None
        }
    }
}

/// Where the records of cluster objects go (`build.rs` writes to it): the
/// whole-view [`ViewBuilder`], or one object's contribution to an
/// incremental update (`zone.rs`).
pub(crate) trait Sink {
    fn config(&self) -> &ZoneConfig;
    /// Adds a record (duplicates are dropped).
    fn add(&mut self, name: Name, data: RData);
    /// Makes a name exist without records of its own.
    fn add_empty(&mut self, name: Name);
    /// Records that namespace `ns` exists: `<ns>.svc.<zone>` (and with
    /// `pods insecure`, `<ns>.pod.<zone>`) answer NODATA, not NXDOMAIN.
    fn namespace(&mut self, ns: &str) {
        let lower = ns.to_ascii_lowercase();
        let zone = self.config().zone.clone();
        if let Ok(n) = zone.prepend_all(&[lower.as_bytes(), b"svc"]) {
            self.add_empty(n);
        }
        if self.config().pods == PodsMode::Insecure {
            if let Ok(n) = zone.prepend_all(&[lower.as_bytes(), b"pod"]) {
                self.add_empty(n);
            }
        }
        self.namespace_label(lower.into_bytes().into_boxed_slice());
    }
    /// Notes a lowercased namespace for `pods insecure` names.
    fn namespace_label(&mut self, lower: Box<[u8]>);
}

/// The zone's fixed names: the apex (NS; the SOA is added with the
/// serial), `dns-version` TXT, and the `svc` and `pod` subtrees.
pub(crate) fn fixed_records(b: &mut impl Sink) {
    let zone = b.config().zone.clone();
    b.add(zone.clone(), RData::Ns(ns_name(&zone)));
    if let Ok(version) = zone.prepend(b"dns-version") {
        b.add(version, RData::Txt(vec![SCHEMA_VERSION.as_bytes().to_vec()]));
    }
    for sub in [&b"svc"[..], b"pod"] {
        if let Ok(n) = zone.prepend(sub) {
            b.add_empty(n);
        }
    }
}

/// The node of a name from its records in any order, duplicates
/// included: sorted (answers are deterministic), one RRset per type.
pub(crate) fn node_from(mut data: Vec<RData>) -> Node {
    data.sort();
    data.dedup();
    let mut rrsets: Vec<RRset> = Vec::new();
    for d in data {
        let t = d.rtype();
        match rrsets.iter_mut().find(|r| r.rtype == t) {
            Some(set) => set.data.push(d),
            None => rrsets.push(RRset { rtype: t, data: vec![d] }),
        }
    }
    rrsets.sort_by_key(|r| r.rtype);
    // Exact capacities: a view holds tens of thousands of nodes, most
    // with one record, and a pushed-to vector would reserve four.
    for set in &mut rrsets {
        set.data.shrink_to_fit();
    }
    rrsets.shrink_to_fit();
    Node { rrsets }
}

/// The apex node: the SOA first, then the apex's other records.
pub(crate) fn with_soa(mut node: Node, soa: &Soa) -> Node {
    node.rrsets.retain(|r| r.rtype != rtype::SOA);
    node.rrsets.insert(0, RRset { rtype: rtype::SOA, data: vec![RData::Soa(soa.clone())] });
    node
}

/// The zone's SOA data for `serial`.
pub(crate) fn soa_of(config: &ZoneConfig, serial: u32) -> Soa {
    let zone = &config.zone;
    Soa {
        mname: ns_name(zone),
        rname: zone.prepend(b"hostmaster").unwrap_or_else(|_| zone.clone()),
        serial,
        refresh: 7200,
        retry: 1800,
        expire: 86400,
        minimum: config.ttl,
    }
}

/// Collects records, then [`ViewBuilder::build`]s a view: records are
/// deduplicated and sorted (answers are deterministic), and every
/// ancestor of a name up to the zone apex exists as an empty
/// non-terminal, so it answers NODATA rather than NXDOMAIN (RFC 8020).
pub struct ViewBuilder {
    config: ZoneConfig,
    nodes: HashMap<Name, Vec<RData>>,
    namespaces: HashSet<Box<[u8]>>,
}

/// The schema version of the Kubernetes DNS specification served.
pub const SCHEMA_VERSION: &str = "1.1.0";

impl ViewBuilder {
    /// A builder holding the zone's fixed names: the apex (SOA, NS),
    /// `dns-version` TXT, and the `svc` and `pod` subtrees.
    pub fn new(config: ZoneConfig) -> ViewBuilder {
        let mut b = ViewBuilder { config, nodes: HashMap::new(), namespaces: HashSet::new() };
        fixed_records(&mut b);
        b
    }

    pub fn config(&self) -> &ZoneConfig {
        &self.config
    }

    /// Adds a record (a duplicate is dropped at build).
    pub fn add(&mut self, name: Name, data: RData) {
        self.nodes.entry(name).or_default().push(data);
    }

    /// Makes a name exist without records of its own.
    pub fn add_empty(&mut self, name: Name) {
        self.nodes.entry(name).or_default();
    }

    /// Records that namespace `ns` exists: `<ns>.svc.<zone>` (and with
    /// `pods insecure`, `<ns>.pod.<zone>`) answer NODATA, not NXDOMAIN.
    pub fn namespace(&mut self, ns: &str) {
        Sink::namespace(self, ns);
    }

    pub fn build(self, serial: u32) -> ZoneView {
        let ViewBuilder { config, nodes: raw, namespaces } = self;
        let zone = config.zone.clone();
        let mut nodes: HashMap<Name, Node> = HashMap::with_capacity(raw.len() * 2);
        for (name, data) in raw {
            nodes.insert(name, node_from(data));
        }
        // The apex SOA carries the serial, so it is added here.
        let apex = nodes.remove(&zone).unwrap_or_default();
        nodes.insert(zone.clone(), with_soa(apex, &soa_of(&config, serial)));
        // Empty non-terminals: every ancestor inside the zone.
        let owners: Vec<Name> = nodes.keys().filter(|n| n.is_subdomain_of(&zone)).cloned().collect();
        for owner in owners {
            let mut cur = owner.parent();
            while let Some(p) = cur {
                if !p.is_subdomain_of(&zone) || nodes.contains_key(&p) {
                    break;
                }
                let next = p.parent();
                nodes.insert(p, Node::default());
                cur = next;
            }
        }
        let mut table = Table::for_zone(&zone);
        for (name, node) in nodes {
            let packed = pack_node(&node, &table);
            table.put(name.wire(), true, &packed, None, None);
        }
        let nodes = table;
        ZoneView::assemble(config, serial, nodes, Arc::new(namespaces))
    }
}

impl Sink for ViewBuilder {
    fn config(&self) -> &ZoneConfig {
        &self.config
    }

    fn add(&mut self, name: Name, data: RData) {
        ViewBuilder::add(self, name, data);
    }

    fn add_empty(&mut self, name: Name) {
        ViewBuilder::add_empty(self, name);
    }

    fn namespace_label(&mut self, lower: Box<[u8]>) {
        self.namespaces.insert(lower);
    }
}

/// `ns.dns.<zone>`, the zone's name server as CoreDNS names it.
fn ns_name(zone: &Name) -> Name {
    zone.prepend_all(&[b"ns", b"dns"]).unwrap_or_else(|_| zone.clone())
}
