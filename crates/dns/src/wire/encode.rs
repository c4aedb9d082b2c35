//! Encoding messages with name compression (RFC 1035 §4.1.4).
//!
//! Every name written in full registers each of its suffixes with the
//! offset it starts at; a later name is written as its unmatched leading
//! labels plus a pointer to the longest suffix already in the message.
//! Comparison is on lowercased bytes, so an owner name equal to the
//! question compresses to a pointer to the question *as the client wrote
//! it*: that is how answers echo the query's case.

use super::{Edns, RData, Record, rtype};
use crate::name::Name;

/// Pointers can only reach the first 16 KiB of a message.
const MAX_POINTER: usize = 0x3fff;

/// Writes a message into a buffer.
pub struct Encoder {
    pub buf: Vec<u8>,
    /// Lowercased bytes of every registered name.
    arena: Vec<u8>,
    /// (start in arena, length, offset in message) of each suffix.
    suffixes: Vec<(u32, u16, u16)>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new(Vec::with_capacity(512))
    }
}

impl Encoder {
    /// Appends to `buf`; offsets are relative to its start, which must be
    /// the message's first byte.
    pub fn new(buf: Vec<u8>) -> Encoder {
        Encoder { buf, arena: Vec::new(), suffixes: Vec::new() }
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A header with the given counts.
    pub fn header(&mut self, id: u16, flags: u16, counts: [u16; 4]) {
        self.u16(id);
        self.u16(flags);
        for c in counts {
            self.u16(c);
        }
    }

    /// Writes `wire` (an uncompressed name in any case) as it is, and
    /// registers its suffixes for compression. Used for the question, so
    /// the client's spelling is echoed.
    pub fn raw_name(&mut self, wire: &[u8]) {
        let at = self.buf.len();
        self.buf.extend_from_slice(wire);
        let lower: Vec<u8> = wire.iter().map(u8::to_ascii_lowercase).collect();
        self.register(&lower, at, lower.len());
    }

    /// Writes a name, compressed against the names already written when
    /// `compress` (never inside SRV data: RFC 2782).
    pub fn name(&mut self, name: &Name, compress: bool) {
        let wire = name.wire();
        let mut pos = 0;
        while wire[pos] != 0 {
            if compress {
                if let Some(offset) = self.find(&wire[pos..]) {
                    let at = self.buf.len();
                    self.buf.extend_from_slice(&wire[..pos]);
                    self.u16(0xc000 | offset);
                    self.register(wire, at, pos);
                    return;
                }
            }
            pos += 1 + wire[pos] as usize;
        }
        let at = self.buf.len();
        self.buf.extend_from_slice(wire);
        self.register(wire, at, wire.len() - 1);
    }

    /// Registers the suffixes of `wire` that start in its first
    /// `written` bytes, which sit at message offset `at`.
    fn register(&mut self, wire: &[u8], at: usize, written: usize) {
        let start = self.arena.len();
        self.arena.extend_from_slice(wire);
        let mut pos = 0;
        while pos < written && wire[pos] != 0 {
            let offset = at + pos;
            if offset > MAX_POINTER {
                break;
            }
            self.suffixes.push(((start + pos) as u32, (wire.len() - pos) as u16, offset as u16));
            pos += 1 + wire[pos] as usize;
        }
    }

    fn find(&self, suffix: &[u8]) -> Option<u16> {
        self.suffixes.iter().find_map(|&(start, len, offset)| {
            let s = start as usize;
            (len as usize == suffix.len() && &self.arena[s..s + len as usize] == suffix).then_some(offset)
        })
    }

    /// The question section's one entry.
    pub fn question(&mut self, raw_name: &[u8], qtype: u16, qclass: u16) {
        self.raw_name(raw_name);
        self.u16(qtype);
        self.u16(qclass);
    }

    pub fn record(&mut self, r: &Record) {
        self.name(&r.name, true);
        self.u16(r.rtype());
        self.u16(r.class);
        self.u32(r.ttl);
        let len_at = self.buf.len();
        self.u16(0);
        self.rdata(&r.data);
        let len = self.buf.len() - len_at - 2;
        // Record data is bounded by the names and strings it holds, far
        // below 64 KiB.
        self.buf[len_at..len_at + 2].copy_from_slice(&(len as u16).to_be_bytes());
    }

    fn rdata(&mut self, data: &RData) {
        match data {
            RData::A(ip) => self.buf.extend_from_slice(&ip.octets()),
            RData::Aaaa(ip) => self.buf.extend_from_slice(&ip.octets()),
            RData::Ns(n) | RData::Cname(n) | RData::Ptr(n) => self.name(n, true),
            RData::Soa(soa) => {
                self.name(&soa.mname, true);
                self.name(&soa.rname, true);
                for v in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                    self.u32(v);
                }
            }
            RData::Mx { preference, exchange } => {
                self.u16(*preference);
                self.name(exchange, true);
            }
            RData::Txt(strings) => {
                for s in strings {
                    let s = &s[..s.len().min(255)];
                    self.u8(s.len() as u8);
                    self.buf.extend_from_slice(s);
                }
            }
            RData::Srv(srv) => {
                self.u16(srv.priority);
                self.u16(srv.weight);
                self.u16(srv.port);
                self.name(&srv.target, false);
            }
            RData::Other { data, .. } => self.buf.extend_from_slice(data),
        }
    }

    /// Our OPT record: our payload size, version 0, no options.
    pub fn opt(&mut self, edns: &Edns) {
        self.u8(0);
        self.u16(rtype::OPT);
        self.u16(edns.udp_size);
        self.u32((edns.ext_rcode as u32) << 24 | (edns.version as u32) << 16 | if edns.dnssec_ok { 0x8000 } else { 0 });
        self.u16(0);
    }
}

/// The 11 bytes of an OPT record without options.
pub(crate) fn opt_bytes(udp_size: u16, ext_rcode: u8) -> [u8; 11] {
    let s = udp_size.to_be_bytes();
    [0, 0, 41, s[0], s[1], ext_rcode, 0, 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Message, class};

    #[test]
    fn owner_names_compress_to_the_question_as_the_client_spelled_it() {
        let mut e = Encoder::default();
        e.header(7, 0x8400, [1, 2, 0, 0]);
        e.question(b"\x03WEB\x03svc\x05Local\x00", rtype::A, class::IN);
        let name = Name::parse("web.svc.local").unwrap();
        e.record(&Record::new(name.clone(), 5, RData::A("10.0.0.1".parse().unwrap())));
        e.record(&Record::new(
            Name::parse("x.svc.local").unwrap(),
            5,
            RData::Cname(Name::parse("web.svc.local").unwrap()),
        ));
        let bytes = e.into_inner();
        // The first answer's owner is a pointer to the question.
        let q_end = 12 + 15 + 4;
        assert_eq!(&bytes[q_end..q_end + 2], &[0xc0, 12]);
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(m.answers[0].name, name);
        assert_eq!(m.answers[1].data, RData::Cname(name));
        // "x" + pointer to "svc.local" inside the question.
        assert!(bytes.len() < q_end + 16 + 2 + 10 + 2 + 10 + 2);
    }

    #[test]
    fn every_record_type_round_trips_through_compression() {
        use crate::wire::{Soa, Srv};
        let n = |s: &str| Name::parse(s).unwrap();
        let records = vec![
            Record::new(n("a.example"), 1, RData::A("192.0.2.1".parse().unwrap())),
            Record::new(n("a.example"), 2, RData::Aaaa("2001:db8::1".parse().unwrap())),
            Record::new(n("example"), 3, RData::Ns(n("ns.a.example"))),
            Record::new(n("b.example"), 4, RData::Cname(n("a.example"))),
            Record::new(n("1.2.0.192.in-addr.arpa"), 5, RData::Ptr(n("a.example"))),
            Record::new(
                n("example"),
                6,
                RData::Soa(Soa {
                    mname: n("ns.a.example"),
                    rname: n("hostmaster.example"),
                    serial: 7,
                    refresh: 8,
                    retry: 9,
                    expire: 10,
                    minimum: 11,
                }),
            ),
            Record::new(n("example"), 12, RData::Mx { preference: 10, exchange: n("mail.example") }),
            Record::new(n("example"), 13, RData::Txt(vec![b"v=1".to_vec(), Vec::new(), vec![b'x'; 255]])),
            Record::new(
                n("_s._tcp.example"),
                14,
                RData::Srv(Srv { priority: 1, weight: 2, port: 3, target: n("a.example") }),
            ),
            Record::new(n("example"), 15, RData::Other { rtype: 99, data: vec![1, 2, 3] }),
        ];
        let mut e = Encoder::default();
        e.header(42, 0x8400, [1, records.len() as u16, 0, 1]);
        e.question(b"\x01a\x07example\x00", rtype::A, class::IN);
        for r in &records {
            e.record(r);
        }
        e.opt(&crate::wire::Edns { udp_size: 1232, ext_rcode: 1, version: 0, dnssec_ok: true });
        let bytes = e.into_inner();
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(m.answers, records);
        assert_eq!(m.rcode(), crate::wire::Rcode(16));
        assert!(m.edns.unwrap().dnssec_ok);
        // "example" is spelled out twice: in the question, and in the SRV
        // target, which is never compressed; every other name points.
        let spelled = bytes.windows(8).filter(|w| w == b"\x07example").count();
        assert_eq!(spelled, 2);
    }

    #[test]
    fn srv_targets_are_written_in_full() {
        let mut e = Encoder::default();
        e.header(1, 0, [0, 1, 0, 0]);
        let target = Name::parse("a.b").unwrap();
        e.record(&Record::new(target.clone(), 5, RData::A("1.2.3.4".parse().unwrap())));
        let before = e.len();
        e.rdata(&RData::Srv(crate::wire::Srv { priority: 0, weight: 0, port: 1, target: target.clone() }));
        assert_eq!(e.len() - before, 6 + target.wire().len());
    }
}
