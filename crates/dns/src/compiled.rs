//! [`Compiled`]: a view turned into ready-made responses, so that answering
//! a query is one hash lookup and three copies.
//!
//! For every name and every type it holds (plus "any other type", the
//! NODATA, and A and AAAA behind a CNAME), [`answer`] is run once
//! and its sections encoded as they follow a question at offset 12 whose
//! name has the query name's length. Compression pointers into the
//! question stay valid whatever case the client used, because only the
//! case differs; the client's question is copied in front, so answers echo
//! its case. The id, RD/CD bits and the OPT record are added per query.
//!
//! Names that do not exist are not stored: their NXDOMAIN is a header,
//! the question and an SOA record whose name pointers are patched to
//! where the zone starts in the question (`SoaTemplate`).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use crate::answer::{Answer, answer};
use crate::name::Name;
use crate::view::ZoneView;
use crate::wire::{Encoder, Question, class, flags, rtype};

/// A response to one (name, type), minus header, question and OPT.
#[derive(Debug)]
pub(crate) struct Prebuilt {
    /// AA and the RCODE.
    pub flags: u16,
    pub counts: [u16; 3],
    /// Answer, authority and additional records.
    pub body: Box<[u8]>,
    /// Length of the answer and authority records: where to cut when the
    /// additional section does not fit.
    pub cut: usize,
}

/// The responses for one name.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub typed: Vec<(u16, Prebuilt)>,
    /// For every other type; `None` sends them to the slow path (a CNAME's
    /// answer depends on the type chased).
    pub otherwise: Option<Prebuilt>,
}

impl Entry {
    pub fn get(&self, qtype: u16) -> Option<&Prebuilt> {
        self.typed.iter().find(|(t, _)| *t == qtype).map(|(_, p)| p).or(self.otherwise.as_ref())
    }
}

/// The NXDOMAIN authority record with its three name pointers to patch.
#[derive(Debug)]
pub(crate) struct SoaTemplate {
    pub bytes: Vec<u8>,
    pub pointers: [usize; 3],
}

/// A view with its responses prepared.
pub struct Compiled {
    pub(crate) view: Arc<ZoneView>,
    pub(crate) entries: HashMap<Box<[u8]>, Entry, SeededState>,
    pub(crate) zone_labels: usize,
    pub(crate) zone_wire: Box<[u8]>,
    pub(crate) nxdomain: SoaTemplate,
    /// Whether names outside the zone are resolved (we set RA).
    pub(crate) recursion: bool,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").field("serial", &self.view.serial()).field("names", &self.entries.len()).finish()
    }
}

/// The types clients ask a CNAME for, prepared with the chase done.
const COMMON: [u16; 2] = [rtype::A, rtype::AAAA];
/// A type no name holds, to prepare "any other type".
const UNUSED_TYPE: u16 = 65534;

impl Compiled {
    pub fn new(view: Arc<ZoneView>, recursion: bool) -> Compiled {
        let mut entries = HashMap::with_capacity_and_hasher(view.nodes.len(), SeededState::new());
        if view.is_synced() {
            for (name, node) in view.nodes() {
                let mut entry = Entry::default();
                let cname = node.rrset(rtype::CNAME).is_some();
                let mut types: Vec<u16> = node.rrsets.iter().map(|s| s.rtype).collect();
                // Elsewhere A and AAAA, when absent, are the NODATA of
                // "any other type"; behind a CNAME they are chased.
                if cname {
                    types.extend(COMMON);
                }
                types.sort_unstable();
                types.dedup();
                for t in types {
                    if let Some(p) = prebuild(&view, name, t) {
                        entry.typed.push((t, p));
                    }
                }
                if !cname {
                    entry.otherwise = prebuild(&view, name, UNUSED_TYPE);
                }
                entries.insert(name.wire().into(), entry);
            }
        }
        let zone = view.zone().clone();
        let nxdomain = soa_template(&view);
        Compiled { zone_labels: zone.label_count(), zone_wire: zone.wire().into(), entries, nxdomain, recursion, view }
    }

    pub fn view(&self) -> &Arc<ZoneView> {
        &self.view
    }
}

/// Runs [`answer`] for (name, t) and encodes it, unless it needs more than
/// the view (an upstream lookup).
fn prebuild(view: &ZoneView, name: &Name, t: u16) -> Option<Prebuilt> {
    let q = Question { name: name.clone(), qtype: t, qclass: class::IN };
    let Answer::Local(r) = answer(view, &q) else { return None };
    if r.chase.is_some() {
        return None;
    }
    let mut e = Encoder::default();
    e.header(0, 0, [0; 4]);
    e.question(name.wire(), t, class::IN);
    let start = e.len();
    for rec in r.answer.iter().chain(&r.authority) {
        e.record(rec);
    }
    let cut = e.len() - start;
    for rec in &r.additional {
        e.record(rec);
    }
    let buf = e.into_inner();
    let count = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
    Some(Prebuilt {
        flags: if r.authoritative { flags::AA } else { 0 } | (r.rcode.0 & 0xf),
        counts: [count(r.answer.len()), count(r.authority.len()), count(r.additional.len())],
        body: buf[start..].into(),
        cut,
    })
}

fn soa_template(view: &ZoneView) -> SoaTemplate {
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

/// FxHash-style hashing with a per-process random seed: the keys are
/// names from the cluster and lookups never insert, so speed matters more
/// than SipHash's guarantees, but the seed keeps collisions unpredictable.
#[derive(Clone)]
pub(crate) struct SeededState(u64);

impl SeededState {
    fn new() -> Self {
        SeededState(rand::random::<u64>() | 1)
    }
}

impl BuildHasher for SeededState {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

pub(crate) struct FastHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(K).rotate_left(26);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Fold the high bits down: hashbrown takes its control bits from
        // the top and its bucket index from the bottom.
        let h = self.0;
        h ^ (h >> 29) ^ (h >> 47)
    }
}
