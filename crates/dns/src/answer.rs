//! [`answer`]: the pure function from a view and a question to the
//! response, as a table of cases in its tests. Every rule about *what* to
//! answer lives here; the compiled fast path (`compiled.rs`) only replays
//! its results, and the server only moves bytes.
//!
//! - A name in the cluster zone or a reverse name we hold is answered
//!   authoritatively: its records, NODATA (NOERROR, no answer, SOA in
//!   authority) for an existing name without records of that type (empty
//!   non-terminals included), NXDOMAIN (SOA in authority) for names that
//!   do not exist. The SOA's TTL and minimum are the zone TTL, so
//!   resolvers cache negatives that long (RFC 2308).
//! - A CNAME (ExternalName) is answered first and chased inside the zone;
//!   a target outside it is left for the server to resolve upstream.
//! - SRV answers carry their targets' addresses in the additional section.
//! - Anything else is [`Answer::Forward`]ed (names outside our zones, and
//!   reverse names we hold no PTR for, like kubeadm's `fallthrough`).

use crate::name::{Name, parse_dashed_ip};
use crate::view::{Node, PodsMode, RRset, ZoneView};
use crate::wire::{Question, RData, Rcode, Record, class, rtype};

/// The longest CNAME chain followed inside the zone.
const MAX_CHAIN: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Local(Response),
    /// Not ours to answer: ask the upstream resolvers.
    Forward,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub rcode: Rcode,
    pub authoritative: bool,
    pub answer: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
    /// A CNAME target outside our zones that the answer ends on; the
    /// server appends what upstream resolvers say about it.
    pub chase: Option<Name>,
}

impl Response {
    pub fn error(rcode: Rcode) -> Response {
        Response {
            rcode,
            authoritative: false,
            answer: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            chase: None,
        }
    }

    fn authoritative(rcode: Rcode) -> Response {
        Response { authoritative: true, ..Response::error(rcode) }
    }
}

pub fn answer(view: &ZoneView, q: &Question) -> Answer {
    if q.qtype == rtype::OPT {
        return Answer::Local(Response::error(Rcode::FORMERR));
    }
    let Some(zone) = view.zone_of(&q.name) else { return Answer::Forward };
    let in_cluster_zone = zone == view.zone();
    // A reverse name we hold nothing at is someone else's.
    if !in_cluster_zone && !view.contains(&q.name) {
        return Answer::Forward;
    }
    if q.qclass != class::IN {
        return Answer::Local(Response::error(Rcode::REFUSED));
    }
    if q.qtype == rtype::AXFR || q.qtype == rtype::IXFR {
        return Answer::Local(Response::error(Rcode::REFUSED));
    }
    if !view.is_synced() {
        return Answer::Local(Response::error(Rcode::SERVFAIL));
    }
    let ttl = view.ttl();
    let mut response = Response::authoritative(Rcode::NOERROR);
    let mut name = q.name.clone();
    for _ in 0..MAX_CHAIN {
        let Some(node) = lookup(view, &name) else {
            response.rcode = Rcode::NXDOMAIN;
            response.authority.push(soa_record(view, &name));
            return Answer::Local(response);
        };
        if q.qtype != rtype::CNAME && q.qtype != rtype::ANY {
            if let Some(RData::Cname(target)) = node.rrset(rtype::CNAME).and_then(|s| s.data.first()) {
                response.answer.push(Record::new(name.clone(), ttl, RData::Cname(target.clone())));
                if view.zone_of(target).is_some_and(|z| z == view.zone()) {
                    name = target.clone();
                    continue;
                }
                response.chase = Some(target.clone());
                return Answer::Local(response);
            }
        }
        let sets: Vec<&RRset> = if q.qtype == rtype::ANY {
            node.rrsets.iter().collect()
        } else {
            node.rrset(q.qtype).into_iter().collect()
        };
        if sets.is_empty() {
            response.authority.push(soa_record(view, &name));
            return Answer::Local(response);
        }
        for set in sets {
            for data in &set.data {
                response.answer.push(Record::new(name.clone(), ttl, data.clone()));
            }
            add_additional(view, set, &mut response.additional);
        }
        return Answer::Local(response);
    }
    // A chain longer than any Service can make: a loop.
    Answer::Local(Response::error(Rcode::SERVFAIL))
}

/// The node at `name`, including `pods insecure` names made up on demand.
fn lookup(view: &ZoneView, name: &Name) -> Option<Node> {
    if let Some(node) = view.node(name) {
        return Some(node);
    }
    if view.pods_mode() != PodsMode::Insecure {
        return None;
    }
    // <dashed-ip>.<ns>.pod.<zone>
    let zone = view.zone();
    let parent = name.parent()?; // <ns>.pod.<zone>
    let pod_zone = parent.parent()?; // pod.<zone>
    if pod_zone.parent().as_ref() != Some(zone) || pod_zone.labels().next() != Some(&b"pod"[..]) {
        return None;
    }
    let ns = parent.labels().next()?;
    if !view.has_namespace(ns) {
        return None;
    }
    let ip = parse_dashed_ip(name.labels().next()?)?;
    let data = match ip {
        std::net::IpAddr::V4(v4) => RData::A(v4),
        std::net::IpAddr::V6(v6) => RData::Aaaa(v6),
    };
    Some(Node { rrsets: vec![RRset { rtype: data.rtype(), data: vec![data] }] })
}

/// The addresses of SRV targets and NS hosts that we hold.
fn add_additional(view: &ZoneView, set: &RRset, additional: &mut Vec<Record>) {
    let mut targets: Vec<&Name> = Vec::new();
    for data in &set.data {
        match data {
            RData::Srv(srv) => targets.push(&srv.target),
            RData::Ns(ns) => targets.push(ns),
            _ => {}
        }
    }
    targets.sort();
    targets.dedup();
    for target in targets {
        let Some(node) = view.node(target) else { continue };
        for t in [rtype::A, rtype::AAAA] {
            for data in node.rrset(t).map(|s| s.data.as_slice()).unwrap_or_default() {
                additional.push(Record::new(target.clone(), view.ttl(), data.clone()));
            }
        }
    }
}

/// The SOA for a negative answer about `name`: the cluster zone's, or for
/// a reverse name the same data owned by the reverse zone's apex.
pub fn soa_record(view: &ZoneView, name: &Name) -> Record {
    let owner = view.zone_of(name).unwrap_or(view.zone()).clone();
    Record::new(owner, view.ttl(), RData::Soa(view.soa().clone()))
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
