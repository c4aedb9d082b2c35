//! [`Compiled`]: a view turned into ready-made responses, so that answering
//! a query is one lookup and a few copies.
//!
//! For every name and every type it holds (plus "any other type", the
//! NODATA, and A and AAAA behind a CNAME), [`answer`] is run once
//! and its sections encoded as they follow a question at offset 12 whose
//! name has the query name's length. Compression pointers into the
//! question stay valid whatever case the client used, because only the
//! case differs; the client's question is copied in front, so answers echo
//! its case. The id, RD/CD bits and the OPT record are added per query.
//! The responses are stored at the end of the name's record in the view
//! (`Rec`, `view.rs`); a response that is just the name's records of the
//! asked type is written from them rather than stored twice ([`Entry`]).
//!
//! Names that do not exist are not stored: their NXDOMAIN is a header,
//! the question and an SOA record whose name pointers are patched to
//! where the zone starts in the question (`SoaTemplate`). The SOA serial
//! is written per query too (`Prebuilt::serial_at`), so that an update
//! prepares again only the names it changed (`zone.rs`), not every
//! negative answer.

use std::sync::Arc;

use crate::answer::{Answer, answer};
use crate::name::Name;
use crate::table::Table;
use crate::view::{Node, ZoneView, packed_records, put_var, unpack_node, var_at};
use crate::wire::{Encoder, Question, RData, class, flags, rtype};

/// A response to one (name, type), minus header, question and OPT, as
/// read from its [`Entry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prebuilt<'a> {
    /// AA and the RCODE.
    pub flags: u16,
    pub counts: [u16; 3],
    /// Length of the answer and authority records: where to cut when the
    /// additional section does not fit.
    pub cut: u32,
    /// Where the body holds an SOA serial ([`NO_SERIAL`] if nowhere): the
    /// serial moves on with every update, so it is written per query
    /// rather than preparing every negative answer again.
    pub serial_at: u32,
    /// Answer, authority and additional records.
    pub body: &'a [u8],
}

pub(crate) const NO_SERIAL: u32 = u32::MAX;

/// A prepared response before it is packed into an [`Entry`].
struct Built {
    flags: u16,
    counts: [u16; 3],
    cut: u32,
    serial_at: u32,
    body: Vec<u8>,
}

/// The responses for one name, packed at the end of the name's [`Rec`]
/// (a view holds several names per Service, and this is most of its
/// memory):
///
/// ```text
/// PLAIN_NODATA or PLAIN_SLOW: u8 (nothing more), or
/// otherwise: u8  (SLOW, NODATA or PREBUILT)   typed: u8
/// per typed response, then the "otherwise" one (qtype 0) if PREBUILT:
///   qtype u16, RECORDS u8
///   qtype u16, RECORDS_PLUS u8, additional count u16, length (LEB128),
///     additional records
///   qtype u16, FULL u8, flags u16, counts 3 x u16,
///     cut, serial_at + 1 (0: none), body length (LEB128), body
/// ```
///
/// "Otherwise" is the response to the types the name has no entry for:
/// SLOW is the slow path (a CNAME's answer depends on the type chased),
/// NODATA the NXDOMAIN template with NOERROR, shared by every name of the
/// cluster zone instead of a copy each. RECORDS is a response that is
/// exactly the name's records of that type, each after a pointer to the
/// question (most answers: an A record, a PTR): it is written from the
/// records the `Rec` holds anyway instead of being stored twice, and
/// [`compile`] stores it so only when that writes the very bytes the
/// encoder wrote. RECORDS_PLUS is the same followed by a stored
/// additional section (SRV: the targets' addresses; SRV targets are not
/// compressed, so the answer is the records as held).
#[derive(Clone, Copy)]
pub(crate) struct Entry<'a> {
    bytes: &'a [u8],
    /// The name's records, packed (`view.rs`), and their table.
    node: &'a [u8],
    table: &'a Table,
}

const SLOW: u8 = 0;
const NODATA: u8 = 1;
const PREBUILT: u8 = 2;
/// The whole entry, one byte: every type the name holds is answered with
/// just its records (RECORDS), any other type as NODATA or SLOW says. Most
/// names (an endpoint's A, a PTR, a pod, an empty non-terminal) are
/// answered so, and save the 4 bytes per type of the long form.
const PLAIN_NODATA: u8 = 3;
const PLAIN_SLOW: u8 = 4;
/// The most records a name answered by a plain entry may hold.
const PLAIN_MAX_RECORDS: usize = 8;

/// The answers of a name without records whose "any other type" is the
/// zone's NODATA: what empty non-terminals get (`view.rs` stores those
/// of `_tcp.<svc>` so).
pub(crate) const PLAIN_NODATA_ENTRY: [u8; 1] = [PLAIN_NODATA];

const RECORDS: u8 = 0;
const FULL: u8 = 1;
const RECORDS_PLUS: u8 = 2;

impl std::fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry").field("bytes", &self.bytes.len()).finish()
    }
}

/// What the fast path found for a query.
pub(crate) enum Hit<'a> {
    Prebuilt(Prebuilt<'a>),
    Records(Records<'a>),
    NoData,
}

/// An answer of the name's records of one type, written from them.
#[derive(Clone, Copy)]
pub(crate) struct Records<'a> {
    pub rtype: u16,
    node: &'a [u8],
    table: &'a Table,
    /// The additional section, and how many records it holds.
    pub additional: &'a [u8],
    pub additional_count: u16,
}

impl<'a> Records<'a> {
    /// The records' data, in order, in two parts.
    #[inline]
    fn each(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + use<'a> {
        let rtype = self.rtype;
        packed_records(self.node, self.table).filter(move |(t, _, _)| *t == rtype).map(|(_, head, tail)| (head, tail))
    }

    /// How many records, and their encoded length.
    #[inline]
    pub fn size(&self) -> (u16, usize) {
        self.each().fold((0, 0), |(n, len), (head, tail)| (n + 1, len + 12 + head.len() + tail.len()))
    }

    /// Appends the records, each owned by a pointer to the question.
    #[inline]
    pub fn write(&self, out: &mut Vec<u8>, ttl: u32) {
        for (head, tail) in self.each() {
            out.extend_from_slice(&[0xc0, 12]);
            out.extend_from_slice(&self.rtype.to_be_bytes());
            out.extend_from_slice(&class::IN.to_be_bytes());
            out.extend_from_slice(&ttl.to_be_bytes());
            // Record data of the zone: below 64 KiB (`view.rs`).
            out.extend_from_slice(&((head.len() + tail.len()) as u16).to_be_bytes());
            out.extend_from_slice(head);
            out.extend_from_slice(tail);
        }
    }
}

#[inline]
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// One typed response of [`compile`]: stored whole, or written from the
/// records.
enum Typed {
    Full(Built),
    /// With the additional section and its count.
    Records(Vec<u8>, u16),
}

impl<'a> Entry<'a> {
    pub(crate) fn new(bytes: &'a [u8], node: &'a [u8], table: &'a Table) -> Entry<'a> {
        Entry { bytes, node, table }
    }

    fn pack(typed: &[(u16, Typed)], otherwise: Option<&Built>, nodata: bool) -> Vec<u8> {
        let full = |b: &Built| 20 + b.body.len();
        let size: usize = typed
            .iter()
            .map(|(_, b)| {
                3 + match b {
                    Typed::Full(b) => full(b),
                    Typed::Records(add, _) if add.is_empty() => 0,
                    Typed::Records(add, _) => 7 + add.len(),
                }
            })
            .sum::<usize>()
            + otherwise.map_or(0, |b| 3 + full(b));
        let mut out = Vec::with_capacity(2 + size);
        out.push(match (otherwise, nodata) {
            (Some(_), _) => PREBUILT,
            (None, true) => NODATA,
            (None, false) => SLOW,
        });
        // A node has one RRset per type, of a handful of types.
        out.push(u8::try_from(typed.len()).unwrap_or(u8::MAX));
        for (t, b) in typed.iter().take(u8::MAX as usize) {
            out.extend_from_slice(&t.to_be_bytes());
            match b {
                Typed::Records(add, _) if add.is_empty() => out.push(RECORDS),
                Typed::Records(add, count) => {
                    out.push(RECORDS_PLUS);
                    out.extend_from_slice(&count.to_be_bytes());
                    put_var(&mut out, add.len() as u32);
                    out.extend_from_slice(add);
                }
                Typed::Full(b) => put_full(&mut out, b),
            }
        }
        if let Some(b) = otherwise {
            out.extend_from_slice(&[0, 0]);
            put_full(&mut out, b);
        }
        out.shrink_to_fit();
        out
    }

    /// The response at `at` and where the next one starts.
    #[inline]
    fn response_at(&self, at: usize) -> (u16, Hit<'a>, usize) {
        let b = self.bytes;
        let qtype = u16_at(b, at);
        match b[at + 2] {
            RECORDS => {
                let r =
                    Records { rtype: qtype, node: self.node, table: self.table, additional: &[], additional_count: 0 };
                return (qtype, Hit::Records(r), at + 3);
            }
            RECORDS_PLUS => {
                let additional_count = u16_at(b, at + 3);
                let mut i = at + 5;
                let len = var_at(b, &mut i) as usize;
                let additional = &b[i..i + len];
                let r = Records { rtype: qtype, node: self.node, table: self.table, additional, additional_count };
                return (qtype, Hit::Records(r), i + len);
            }
            _ => {}
        }
        let flags = u16_at(b, at + 3);
        let counts = [u16_at(b, at + 5), u16_at(b, at + 7), u16_at(b, at + 9)];
        let mut i = at + 11;
        let cut = var_at(b, &mut i);
        let serial_at = var_at(b, &mut i).wrapping_sub(1);
        let len = var_at(b, &mut i) as usize;
        let body = &b[i..i + len];
        (qtype, Hit::Prebuilt(Prebuilt { flags, counts, cut, serial_at, body }), i + len)
    }

    #[inline]
    pub fn get(&self, qtype: u16) -> Option<Hit<'a>> {
        if let plain @ (PLAIN_NODATA | PLAIN_SLOW) = self.bytes[0] {
            if packed_records(self.node, self.table).any(|(t, _, _)| t == qtype) {
                let (node, table) = (self.node, self.table);
                return Some(Hit::Records(Records { rtype: qtype, node, table, additional: &[], additional_count: 0 }));
            }
            return (plain == PLAIN_NODATA).then_some(Hit::NoData);
        }
        let mut at = 2;
        for _ in 0..self.bytes[1] {
            let (t, hit, next) = self.response_at(at);
            if t == qtype {
                return Some(hit);
            }
            at = next;
        }
        match self.bytes[0] {
            NODATA => Some(Hit::NoData),
            PREBUILT => Some(self.response_at(at).1),
            _ => None,
        }
    }
}

fn put_full(out: &mut Vec<u8>, b: &Built) {
    out.push(FULL);
    out.extend_from_slice(&b.flags.to_be_bytes());
    for c in b.counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
    put_var(out, b.cut);
    put_var(out, b.serial_at.wrapping_add(1));
    // Bodies are DNS messages: far below 4 GiB.
    put_var(out, b.body.len() as u32);
    out.extend_from_slice(&b.body);
}

/// The authority record of negative answers (NXDOMAIN, and NODATA in
/// the cluster zone) with its three name pointers to patch.
#[derive(Debug)]
pub(crate) struct SoaTemplate {
    pub bytes: Vec<u8>,
    pub pointers: [usize; 3],
}

impl SoaTemplate {
    /// Appends the record for a question whose zone suffix starts
    /// `zone_at` bytes into the question name.
    pub fn write(&self, out: &mut Vec<u8>, zone_at: usize) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        // The question starts at offset 12, and names in it are under 255
        // bytes: the pointer always fits in 14 bits.
        let pointer = (0xc000 | (12 + zone_at) as u16).to_be_bytes();
        for p in self.pointers {
            out[start + p..start + p + 2].copy_from_slice(&pointer);
        }
    }
}

/// A view with its responses prepared.
pub struct Compiled {
    /// The view, each name's prepared responses stored with its records.
    pub(crate) view: Arc<ZoneView>,
    /// The view's SOA serial, written into prepared answers.
    pub(crate) serial: u32,
    pub(crate) zone_labels: usize,
    pub(crate) zone_wire: Box<[u8]>,
    pub(crate) nxdomain: SoaTemplate,
    /// Whether names outside the zone are resolved (we set RA).
    pub(crate) recursion: bool,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").field("serial", &self.view.serial()).field("names", &self.view.len()).finish()
    }
}

/// The types clients ask a CNAME for, prepared with the chase done.
const COMMON: [u16; 2] = [rtype::A, rtype::AAAA];
/// A type no name holds, to prepare "any other type".
const UNUSED_TYPE: u16 = 65534;

impl Compiled {
    /// Prepares the responses of every name of `view`.
    pub fn new(view: Arc<ZoneView>, recursion: bool) -> Compiled {
        let view = if view.is_synced() {
            let template = soa_template(&view);
            let mut prepared = (*view).clone();
            for slot in view.nodes.iter().filter(|s| s.rec.in_view()) {
                let rec = &slot.rec;
                let name = view.nodes.name_of(&slot);
                let entry = compile(&view, &template, &name, rec.node_bytes());
                prepared.nodes.put(name.wire(), true, rec.node_bytes(), Some(&entry), None);
            }
            Arc::new(prepared)
        } else {
            view
        };
        Compiled::assemble(view, recursion)
    }

    /// A view whose responses are prepared already (by the incremental
    /// update, which prepares only the names that changed).
    pub(crate) fn assemble(view: Arc<ZoneView>, recursion: bool) -> Compiled {
        let zone = view.zone().clone();
        let nxdomain = soa_template(&view);
        Compiled {
            zone_labels: zone.label_count(),
            zone_wire: zone.wire().into(),
            serial: view.serial(),
            nxdomain,
            recursion,
            view,
        }
    }

    pub fn view(&self) -> &Arc<ZoneView> {
        &self.view
    }

    /// The prepared responses of the name `wire`, if it has them.
    #[inline]
    pub(crate) fn entry(&self, wire: &[u8]) -> Option<Entry<'_>> {
        let rec = self.view.rec(wire)?;
        Some(Entry::new(rec.entry_bytes()?, rec.node_bytes(), &self.view.nodes))
    }

    /// How many names have prepared responses.
    #[cfg(test)]
    pub(crate) fn prepared(&self) -> usize {
        self.view.nodes.iter().filter(|s| s.rec.in_view() && s.rec.entry_bytes().is_some()).count()
    }
}

/// The prepared responses of one name of `view`, whose negative answers
/// `template` (from `soa_template(view)`) writes.
pub(crate) fn compile(view: &ZoneView, template: &SoaTemplate, name: &Name, packed: &[u8]) -> Vec<u8> {
    let node = unpack_node(packed, &view.nodes);
    let cname = node.rrset(rtype::CNAME).is_some();
    let mut types: Vec<u16> = node.rrsets.iter().map(|s| s.rtype).collect();
    // Elsewhere A and AAAA, when absent, are the NODATA of "any other
    // type"; behind a CNAME they are chased.
    if cname {
        types.extend(COMMON);
    }
    types.sort_unstable();
    types.dedup();
    let typed: Vec<(u16, Typed)> = types
        .into_iter()
        .filter_map(|t| {
            let built = prebuild(view, name, t)?;
            let records = Records { rtype: t, node: packed, table: &view.nodes, additional: &[], additional_count: 0 };
            let mut written = Vec::with_capacity(built.body.len());
            records.write(&mut written, view.ttl());
            let cut = built.cut as usize;
            let same = built.flags == flags::AA
                && built.counts[..2] == [records.size().0, 0]
                && built.serial_at == NO_SERIAL
                && cut == written.len()
                && built.body[..cut] == written;
            Some((
                t,
                if same { Typed::Records(built.body[cut..].to_vec(), built.counts[2]) } else { Typed::Full(built) },
            ))
        })
        .collect();
    let (otherwise, nodata) = match (!cname).then(|| prebuild(view, name, UNUSED_TYPE)).flatten() {
        Some(p) if is_template_nodata(view, template, name, &p) => (None, true),
        // Outside the cluster zone (reverse names: a NODATA with the
        // reverse zone's SOA, about 100 bytes a name) "any other type" is
        // left to the slow path: resolvers ask reverse names for PTR.
        Some(p) if name.is_subdomain_of(view.zone()) => (Some(p), false),
        _ => (None, false),
    };
    // A plain entry finds a type by walking the name's records, so it is
    // kept to names with few: the A records of a big headless Service
    // would make every AAAA query walk them all.
    let records: usize = node.rrsets.iter().map(|r| r.data.len()).sum();
    let plain = !cname
        && records <= PLAIN_MAX_RECORDS
        && otherwise.is_none()
        && typed.len() == node.rrsets.len()
        && typed.iter().all(|(_, t)| matches!(t, Typed::Records(add, _) if add.is_empty()));
    if plain {
        return vec![if nodata { PLAIN_NODATA } else { PLAIN_SLOW }];
    }
    Entry::pack(&typed, otherwise.as_ref(), nodata)
}

/// Whether `p` is exactly what the template writes as NODATA for `name`
/// (checked, not assumed: the encoder could compress differently).
fn is_template_nodata(view: &ZoneView, template: &SoaTemplate, name: &Name, p: &Built) -> bool {
    if !name.is_subdomain_of(view.zone()) || p.flags != flags::AA || p.counts != [0, 1, 0] {
        return false;
    }
    let mut bytes = Vec::with_capacity(template.bytes.len());
    template.write(&mut bytes, name.wire().len() - view.zone().wire().len());
    p.body == bytes
}

/// The names inside the cluster zone a CNAME at `node` leads through (its
/// prepared answers copy their records): when one of them changes, the
/// owner's answers must be prepared again.
pub(crate) fn chased_names(view: &ZoneView, node: &Node) -> Vec<Name> {
    let mut names = Vec::new();
    let mut current = node.clone();
    while let Some(RData::Cname(target)) = current.rrset(rtype::CNAME).and_then(|s| s.data.first()).cloned() {
        if view.zone_of(&target) != Some(view.zone()) || names.contains(&target) {
            break;
        }
        names.push(target.clone());
        match view.node(&target) {
            Some(next) => current = next,
            None => break,
        }
    }
    names
}

/// Runs [`answer`] for (name, t) and encodes it, unless it needs more than
/// the view (an upstream lookup).
fn prebuild(view: &ZoneView, name: &Name, t: u16) -> Option<Built> {
    let q = Question { name: name.clone(), qtype: t, qclass: class::IN };
    let Answer::Local(r) = answer(view, &q) else { return None };
    if r.chase.is_some() {
        return None;
    }
    let mut e = Encoder::default();
    e.header(0, 0, [0; 4]);
    e.question(name.wire(), t, class::IN);
    let start = e.len();
    let mut serial_at = NO_SERIAL;
    for rec in r.answer.iter().chain(&r.authority) {
        e.record(rec);
        if matches!(rec.data, RData::Soa(_)) {
            // The serial opens the last 20 bytes of SOA data.
            serial_at = (e.len() - start - 20) as u32;
        }
    }
    let cut = (e.len() - start) as u32;
    for rec in &r.additional {
        e.record(rec);
    }
    let buf = e.into_inner();
    let count = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
    Some(Built {
        flags: if r.authoritative { flags::AA } else { 0 } | (r.rcode.0 & 0xf),
        counts: [count(r.answer.len()), count(r.authority.len()), count(r.additional.len())],
        body: buf[start..].to_vec(),
        cut,
        serial_at,
    })
}

pub(crate) fn soa_template(view: &ZoneView) -> SoaTemplate {
    let soa = view.soa();
    let mut b = Vec::with_capacity(64);
    let mut pointers = [0; 3];
    pointers[0] = b.len();
    b.extend_from_slice(&[0xc0, 0]);
    b.extend_from_slice(&rtype::SOA.to_be_bytes());
    b.extend_from_slice(&class::IN.to_be_bytes());
    b.extend_from_slice(&view.ttl().to_be_bytes());
    let len_at = b.len();
    b.extend_from_slice(&[0, 0]);
    // mname and rname are `<label>... <zone>`: their own labels, then a
    // pointer to the zone in the question.
    let zone_len = view.zone().wire().len();
    for (i, n) in [&soa.mname, &soa.rname].into_iter().enumerate() {
        let w = n.wire();
        b.extend_from_slice(&w[..w.len() - zone_len]);
        pointers[i + 1] = b.len();
        b.extend_from_slice(&[0xc0, 0]);
    }
    for v in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    let rdlen = (b.len() - len_at - 2) as u16;
    b[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    SoaTemplate { bytes: b, pointers }
}
