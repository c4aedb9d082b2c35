//! One packet in, one response out, without I/O: [`handle`] parses a query
//! and writes the response bytes, or says the query needs an upstream
//! ([`Outcome::Forward`]) or no answer at all. The error-to-RCODE mapping
//! of malformed queries is here and only here.
//!
//! Path of a query: parse (FORMERR / NOTIMP / BADVERS on failure) → the
//! compiled responses (a hit is copied out) → NXDOMAIN from the SOA
//! template for names under the zone that do not exist → otherwise the
//! pure [`answer`] and the general encoder, or a forward.

use crate::answer::{Answer, Response, answer};
use crate::compiled::{Compiled, Hit, NO_SERIAL, Prebuilt, Records};
use crate::name::Name;
use crate::wire::encode::opt_bytes;
use crate::wire::{Edns, Encoder, MIN_UDP_PAYLOAD, Query, QueryError, Question, Rcode, class, flags, rtype};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The largest message on TCP (the length prefix is 16 bits).
pub const MAX_TCP_MESSAGE: usize = 65535;

/// What became of a packet.
#[derive(Debug)]
pub enum Outcome {
    /// `out` holds the response.
    Reply(Served),
    /// The answer needs the upstream resolvers.
    Forward(Box<ForwardJob>),
    /// Not a query (too short, or a response): no answer.
    Drop,
}

/// What was answered, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served {
    pub qtype: u16,
    pub rcode: Rcode,
    /// Answered from the zone (true) or about a name outside it.
    pub local: bool,
}

/// What a response must echo from its query.
#[derive(Clone, Debug)]
pub struct Echo<'a> {
    pub id: u16,
    pub flags: u16,
    pub raw_name: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
    /// The largest response the client takes on this transport.
    pub limit: usize,
    /// Our payload size, for our OPT record.
    pub our_udp: u16,
    pub recursion: bool,
}

/// A query to finish once upstream resolvers have answered.
#[derive(Clone, Debug)]
pub struct ForwardJob {
    pub id: u16,
    pub flags: u16,
    pub raw_name: Vec<u8>,
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
    pub limit: usize,
    pub our_udp: u16,
    /// For an ExternalName pointing outside the zone: our CNAME answer,
    /// to which the upstream answer for `name` is appended.
    pub prefix: Option<Response>,
}

impl ForwardJob {
    pub fn echo(&self) -> Echo<'_> {
        Echo {
            id: self.id,
            flags: self.flags,
            raw_name: &self.raw_name,
            qtype: self.qtype,
            qclass: self.qclass,
            edns: self.edns,
            limit: self.limit,
            our_udp: self.our_udp,
            recursion: true,
        }
    }
}

/// Answers `packet`, writing the response into `out` (cleared first).
/// `max_udp` is our EDNS payload size: the cap on what we send over UDP.
pub fn handle(c: &Compiled, packet: &[u8], transport: Transport, max_udp: u16, out: &mut Vec<u8>) -> Outcome {
    out.clear();
    let q = match Query::parse(packet) {
        Ok(q) => q,
        Err(QueryError::Ignore) => return Outcome::Drop,
        Err(QueryError::Reject { id, flags: fl, rcode, question_end, edns }) => {
            let question = question_end.and_then(|end| packet.get(12..end));
            write_reject(out, id, fl, question, rcode, edns.map(|_| max_udp), c.recursion);
            let qtype = question.map_or(0, |q| u16::from_be_bytes([q[q.len() - 4], q[q.len() - 3]]));
            return Outcome::Reply(Served { qtype, rcode, local: true });
        }
    };
    let limit = match transport {
        Transport::Tcp => MAX_TCP_MESSAGE,
        Transport::Udp => {
            q.edns.map_or(MIN_UDP_PAYLOAD, |e| (e.udp_size as usize).clamp(MIN_UDP_PAYLOAD, max_udp as usize))
        }
    };
    let echo = Echo {
        id: q.id,
        flags: q.flags,
        raw_name: q.raw_name,
        qtype: q.qtype,
        qclass: q.qclass,
        edns: q.edns,
        limit,
        our_udp: max_udp,
        recursion: c.recursion,
    };
    let fast = q.qclass == class::IN && !matches!(q.qtype, rtype::ANY | rtype::AXFR | rtype::IXFR | rtype::OPT);
    if fast {
        if let Some(entry) = c.entry(q.name.wire()) {
            match entry.get(q.qtype) {
                Some(Hit::Prebuilt(p)) => {
                    write_prebuilt(out, &echo, &p, c.serial);
                    return Outcome::Reply(Served { qtype: q.qtype, rcode: Rcode(p.flags & 0xf), local: true });
                }
                Some(Hit::Records(r)) => {
                    write_records(out, &echo, &r, c.view.ttl());
                    return Outcome::Reply(Served { qtype: q.qtype, rcode: Rcode::NOERROR, local: true });
                }
                // Only names of the cluster zone get the template.
                Some(Hit::NoData) => {
                    let zone_at = q.name.offset_of(q.name.label_count().saturating_sub(c.zone_labels));
                    write_negative(out, &echo, c, zone_at, Rcode::NOERROR);
                    return Outcome::Reply(Served { qtype: q.qtype, rcode: Rcode::NOERROR, local: true });
                }
                None => {}
            }
        } else if let Some(zone_at) = nxdomain_offset(c, &q) {
            write_negative(out, &echo, c, zone_at, Rcode::NXDOMAIN);
            return Outcome::Reply(Served { qtype: q.qtype, rcode: Rcode::NXDOMAIN, local: true });
        }
    }
    let name = Name::from_wire_unchecked(q.name.wire());
    let question = Question { name, qtype: q.qtype, qclass: q.qclass };
    match answer(&c.view, &question) {
        Answer::Local(r) if r.chase.is_none() || !c.recursion || !echo.recursion_desired() => {
            write_response(out, &echo, &r);
            Outcome::Reply(Served { qtype: q.qtype, rcode: r.rcode, local: true })
        }
        Answer::Local(r) => Outcome::Forward(Box::new(ForwardJob {
            id: q.id,
            flags: q.flags,
            raw_name: q.raw_name.to_vec(),
            // Some: checked by the guard above.
            name: r.chase.clone().unwrap_or_else(Name::root),
            qtype: q.qtype,
            qclass: q.qclass,
            edns: q.edns,
            limit,
            our_udp: max_udp,
            prefix: Some(r),
        })),
        Answer::Forward if !c.recursion => {
            write_response(out, &echo, &Response::error(Rcode::REFUSED));
            Outcome::Reply(Served { qtype: q.qtype, rcode: Rcode::REFUSED, local: false })
        }
        Answer::Forward => Outcome::Forward(Box::new(ForwardJob {
            id: q.id,
            flags: q.flags,
            raw_name: q.raw_name.to_vec(),
            name: question.name,
            qtype: q.qtype,
            qclass: q.qclass,
            edns: q.edns,
            limit,
            our_udp: max_udp,
            prefix: None,
        })),
    }
}

impl Echo<'_> {
    fn recursion_desired(&self) -> bool {
        self.flags & flags::RD != 0
    }

    /// Response header flags: ours plus what a response copies from the
    /// query (opcode, RD, CD).
    fn flags(&self, own: u16, truncated: bool) -> u16 {
        flags::QR
            | (self.flags & (flags::OPCODE_MASK | flags::RD | flags::CD))
            | own
            | if truncated { flags::TC } else { 0 }
            | if self.recursion { flags::RA } else { 0 }
    }

    fn opt_len(&self) -> usize {
        if self.edns.is_some() { 11 } else { 0 }
    }

    fn question_len(&self) -> usize {
        self.raw_name.len() + 4
    }

    fn write_head(&self, out: &mut Vec<u8>, own_flags: u16, truncated: bool, counts: [u16; 3]) {
        let ar = counts[2] + u16::from(self.edns.is_some());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.flags(own_flags, truncated).to_be_bytes());
        out.extend_from_slice(&[0, 1]);
        out.extend_from_slice(&counts[0].to_be_bytes());
        out.extend_from_slice(&counts[1].to_be_bytes());
        out.extend_from_slice(&ar.to_be_bytes());
        out.extend_from_slice(self.raw_name);
        out.extend_from_slice(&self.qtype.to_be_bytes());
        out.extend_from_slice(&self.qclass.to_be_bytes());
    }

    fn write_opt(&self, out: &mut Vec<u8>, rcode: Rcode) {
        if self.edns.is_some() {
            out.extend_from_slice(&opt_bytes(self.our_udp, (rcode.0 >> 4) as u8));
        }
    }
}

/// Where the zone starts in the question, if the name is under the zone,
/// does not exist, and is not one that `answer` makes up (pod names) — so
/// it is NXDOMAIN.
fn nxdomain_offset(c: &Compiled, q: &Query<'_>) -> Option<usize> {
    let labels = q.name.label_count();
    if labels <= c.zone_labels || !c.view.is_synced() {
        return None;
    }
    let zone_index = labels - c.zone_labels;
    if q.name.suffix(zone_index) != &*c.zone_wire {
        return None;
    }
    // `x.<ns>.pod.<zone>` may be a made-up pod name.
    if zone_index >= 3 && q.name.label(zone_index - 1) == b"pod" {
        return None;
    }
    Some(q.name.offset_of(zone_index))
}

/// Copies a prepared response with the current SOA `serial`, cutting the
/// additional section, or everything with TC set, when it does not fit.
pub(crate) fn write_prebuilt(out: &mut Vec<u8>, echo: &Echo<'_>, p: &Prebuilt<'_>, serial: u32) {
    let fixed = 12 + echo.question_len() + echo.opt_len();
    let cut = p.cut as usize;
    let (body, counts, truncated) = if fixed + p.body.len() <= echo.limit {
        (p.body, p.counts, false)
    } else if fixed + cut <= echo.limit {
        (&p.body[..cut], [p.counts[0], p.counts[1], 0], false)
    } else {
        (&[][..], [0; 3], true)
    };
    out.reserve(fixed + body.len());
    echo.write_head(out, p.flags, truncated, counts);
    let start = out.len();
    out.extend_from_slice(body);
    let at = p.serial_at as usize;
    if p.serial_at != NO_SERIAL && at + 4 <= body.len() {
        out[start + at..start + at + 4].copy_from_slice(&serial.to_be_bytes());
    }
    echo.write_opt(out, Rcode(p.flags & 0xf));
}

/// An answer of the name's records of one type, written from them (as
/// [`write_prebuilt`] would write the same bytes prepared).
fn write_records(out: &mut Vec<u8>, echo: &Echo<'_>, r: &Records<'_>, ttl: u32) {
    let fixed = 12 + echo.question_len() + echo.opt_len();
    let (count, len) = r.size();
    if fixed + len + r.additional.len() <= echo.limit {
        out.reserve(fixed + len + r.additional.len());
        echo.write_head(out, flags::AA, false, [count, 0, r.additional_count]);
        r.write(out, ttl);
        out.extend_from_slice(r.additional);
    } else if fixed + len <= echo.limit {
        echo.write_head(out, flags::AA, false, [count, 0, 0]);
        r.write(out, ttl);
    } else {
        echo.write_head(out, flags::AA, true, [0; 3]);
    }
    echo.write_opt(out, Rcode::NOERROR);
}

/// A negative answer (NXDOMAIN, or NODATA in the cluster zone) from the
/// SOA template.
fn write_negative(out: &mut Vec<u8>, echo: &Echo<'_>, c: &Compiled, zone_at: usize, rcode: Rcode) {
    echo.write_head(out, flags::AA | rcode.0, false, [0, 1, 0]);
    c.nxdomain.write(out, zone_at);
    echo.write_opt(out, rcode);
}

/// Encodes a response: cuts the additional section, or sets TC and drops
/// every section, when the client's limit is too small.
pub fn write_response(out: &mut Vec<u8>, echo: &Echo<'_>, r: &Response) {
    let mut buf = std::mem::take(out);
    buf.clear();
    let mut enc = Encoder::new(buf);
    let own = if r.authoritative { flags::AA } else { 0 } | (r.rcode.0 & 0xf);
    // Flags and counts are set once we know what fits.
    enc.header(echo.id, 0, [1, 0, 0, 0]);
    enc.question(echo.raw_name, echo.qtype, echo.qclass);
    let question_end = enc.len();
    for rec in &r.answer {
        enc.record(rec);
    }
    for rec in &r.authority {
        enc.record(rec);
    }
    let cut = enc.len();
    for rec in &r.additional {
        enc.record(rec);
    }
    let mut buf = enc.into_inner();
    let count = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
    let mut counts = [count(r.answer.len()), count(r.authority.len()), count(r.additional.len())];
    let mut truncated = false;
    if buf.len() + echo.opt_len() > echo.limit {
        if cut + echo.opt_len() <= echo.limit {
            buf.truncate(cut);
            counts[2] = 0;
        } else {
            buf.truncate(question_end);
            counts = [0; 3];
            truncated = true;
        }
    }
    let ar = counts[2] + u16::from(echo.edns.is_some());
    buf[2..4].copy_from_slice(&echo.flags(own, truncated).to_be_bytes());
    buf[6..8].copy_from_slice(&counts[0].to_be_bytes());
    buf[8..10].copy_from_slice(&counts[1].to_be_bytes());
    buf[10..12].copy_from_slice(&ar.to_be_bytes());
    echo.write_opt(&mut buf, r.rcode);
    *out = buf;
}

/// The answer to a query that could not be processed: the header, the
/// question when it parsed, and an OPT record when the query's parsed.
fn write_reject(
    out: &mut Vec<u8>,
    id: u16,
    query_flags: u16,
    question: Option<&[u8]>,
    rcode: Rcode,
    our_udp: Option<u16>,
    recursion: bool,
) {
    let fl = flags::QR
        | (query_flags & (flags::OPCODE_MASK | flags::RD | flags::CD))
        | (rcode.0 & 0xf)
        | if recursion { flags::RA } else { 0 };
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&fl.to_be_bytes());
    out.extend_from_slice(&[0, u8::from(question.is_some()), 0, 0, 0, 0, 0, u8::from(our_udp.is_some())]);
    if let Some(q) = question {
        out.extend_from_slice(q);
    }
    if let Some(size) = our_udp {
        out.extend_from_slice(&opt_bytes(size, (rcode.0 >> 4) as u8));
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
