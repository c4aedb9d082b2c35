//! The hot path's query parser: no allocation, one pass, and the question
//! name lowercased into a stack buffer that is the lookup key.

use super::decode::{Reader, WireError};
use super::{Edns, Rcode, flags, rtype};
use crate::name::{MAX_LABEL_LEN, MAX_NAME_LEN};

/// A lowercased, uncompressed name on the stack, with where each label
/// starts.
#[derive(Clone)]
pub struct NameBuf {
    bytes: [u8; MAX_NAME_LEN],
    len: usize,
    starts: [u8; 128],
    labels: usize,
}

impl Default for NameBuf {
    fn default() -> Self {
        NameBuf { bytes: [0; MAX_NAME_LEN], len: 0, starts: [0; 128], labels: 0 }
    }
}

impl NameBuf {
    /// The canonical wire form, root label included.
    pub fn wire(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Number of labels, root excluded.
    pub fn label_count(&self) -> usize {
        self.labels
    }

    /// The `i`th label, leftmost first.
    pub fn label(&self, i: usize) -> &[u8] {
        let s = self.starts[i] as usize;
        let len = self.bytes[s] as usize;
        &self.bytes[s + 1..s + 1 + len]
    }

    /// The name from label `i` on (`i == label_count()` gives the root).
    pub fn suffix(&self, i: usize) -> &[u8] {
        let s = if i >= self.labels { self.len - 1 } else { self.starts[i] as usize };
        &self.bytes[s..self.len]
    }

    /// Byte offset of label `i` within the name.
    pub fn offset_of(&self, i: usize) -> usize {
        if i >= self.labels { self.len - 1 } else { self.starts[i] as usize }
    }

    /// Fills the buffer from canonical wire bytes.
    pub fn set(&mut self, wire: &[u8]) -> bool {
        if wire.len() > MAX_NAME_LEN {
            return false;
        }
        self.len = 0;
        self.labels = 0;
        let mut pos = 0;
        while let Some(&len) = wire.get(pos) {
            if len == 0 {
                self.bytes[..pos + 1].copy_from_slice(&wire[..pos + 1]);
                self.len = pos + 1;
                return true;
            }
            if len as usize > MAX_LABEL_LEN || self.labels >= self.starts.len() {
                return false;
            }
            self.starts[self.labels] = pos as u8;
            self.labels += 1;
            pos += 1 + len as usize;
        }
        false
    }
}

/// A parsed query.
pub struct Query<'a> {
    pub id: u16,
    pub flags: u16,
    /// The question name as sent (uncompressed), for echoing.
    pub raw_name: &'a [u8],
    /// The same name lowercased.
    pub name: NameBuf,
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
}

/// Why a packet gets no ordinary answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// Shorter than a header, or a response: answering could loop or
    /// reflect, so it is dropped.
    Ignore,
    /// Answer with `rcode`; the question is `packet[12..question_end]`
    /// when it parsed, and the OPT record is echoed when `edns` is set.
    Reject { id: u16, flags: u16, rcode: Rcode, question_end: Option<usize>, edns: Option<Edns> },
}

impl<'a> Query<'a> {
    pub fn parse(packet: &'a [u8]) -> Result<Query<'a>, QueryError> {
        if packet.len() < 12 {
            return Err(QueryError::Ignore);
        }
        let id = u16::from_be_bytes([packet[0], packet[1]]);
        let fl = u16::from_be_bytes([packet[2], packet[3]]);
        if fl & flags::QR != 0 {
            return Err(QueryError::Ignore);
        }
        let count = |i: usize| u16::from_be_bytes([packet[4 + 2 * i], packet[5 + 2 * i]]);
        let (qd, an, ns, ar) = (count(0), count(1), count(2), count(3));
        let opcode = flags::opcode(fl);
        let reject = |rcode, question_end, edns| QueryError::Reject { id, flags: fl, rcode, question_end, edns };
        let bad_or_notimp = if opcode == 0 { Rcode::FORMERR } else { Rcode::NOTIMP };
        if qd != 1 {
            return Err(reject(bad_or_notimp, None, None));
        }
        let mut name = NameBuf::default();
        let mut pos = 12;
        loop {
            let Some(&len) = packet.get(pos) else { return Err(reject(bad_or_notimp, None, None)) };
            if len == 0 {
                name.bytes[name.len] = 0;
                name.len += 1;
                pos += 1;
                break;
            }
            // Compression in a question could only point into the header.
            if len as usize > MAX_LABEL_LEN || name.len + 1 + len as usize + 1 > MAX_NAME_LEN {
                return Err(reject(bad_or_notimp, None, None));
            }
            let Some(label) = packet.get(pos + 1..pos + 1 + len as usize) else {
                return Err(reject(bad_or_notimp, None, None));
            };
            name.starts[name.labels] = name.len as u8;
            name.labels += 1;
            name.bytes[name.len] = len;
            for (dst, src) in name.bytes[name.len + 1..name.len + 1 + label.len()].iter_mut().zip(label) {
                *dst = src.to_ascii_lowercase();
            }
            name.len += 1 + len as usize;
            pos += 1 + len as usize;
        }
        let raw_name = &packet[12..pos];
        let Some(tail) = packet.get(pos..pos + 4) else { return Err(reject(bad_or_notimp, None, None)) };
        let qtype = u16::from_be_bytes([tail[0], tail[1]]);
        let qclass = u16::from_be_bytes([tail[2], tail[3]]);
        let question_end = pos + 4;
        if opcode != 0 {
            return Err(reject(Rcode::NOTIMP, Some(question_end), None));
        }
        let mut edns = None;
        if an != 0 || ns != 0 || ar != 0 {
            edns = find_opt(packet, question_end, an as usize + ns as usize, ar as usize)
                .map_err(|_| reject(Rcode::FORMERR, Some(question_end), None))?;
        }
        if let Some(e) = edns {
            if e.version != 0 {
                return Err(reject(Rcode::BADVERS, Some(question_end), edns));
            }
        }
        Ok(Query { id, flags: fl, raw_name, name, qtype, qclass, edns })
    }

    pub fn recursion_desired(&self) -> bool {
        self.flags & flags::RD != 0
    }
}

/// Skips `skip` records, then looks for the OPT record among `additional`.
fn find_opt(packet: &[u8], from: usize, skip: usize, additional: usize) -> Result<Option<Edns>, WireError> {
    let mut r = Reader::at(packet, from);
    for _ in 0..skip {
        r.skip_name()?;
        r.bytes(8)?;
        let len = r.u16()? as usize;
        r.bytes(len)?;
    }
    let mut edns = None;
    for _ in 0..additional {
        let root = packet.get(r.pos) == Some(&0);
        r.skip_name()?;
        let t = r.u16()?;
        let class = r.u16()?;
        let ttl = r.u32()?;
        let len = r.u16()? as usize;
        let data = r.bytes(len)?;
        if t == rtype::OPT {
            if !root || edns.is_some() {
                return Err(WireError::BadOpt);
            }
            let mut opts = data;
            while !opts.is_empty() {
                let olen =
                    opts.get(2..4).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize).ok_or(WireError::BadOpt)?;
                opts = opts.get(4 + olen..).ok_or(WireError::BadOpt)?;
            }
            edns = Some(Edns {
                udp_size: class,
                ext_rcode: (ttl >> 24) as u8,
                version: (ttl >> 16) as u8,
                dnssec_ok: ttl & 0x8000 != 0,
            });
        }
    }
    Ok(edns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], extra: &[u8], arcount: u16) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        p.extend_from_slice(&arcount.to_be_bytes());
        p.extend_from_slice(name);
        p.extend_from_slice(&[0, 1, 0, 1]);
        p.extend_from_slice(extra);
        p
    }

    #[test]
    fn a_query_parses_with_its_name_lowercased_and_its_case_kept() {
        let p = query(b"\x03WeB\x07cluster\x05local\x00", &[], 0);
        let q = Query::parse(&p).unwrap();
        assert_eq!(q.id, 0x1234);
        assert_eq!(q.name.wire(), b"\x03web\x07cluster\x05local\x00");
        assert_eq!(q.raw_name, b"\x03WeB\x07cluster\x05local\x00");
        assert_eq!(q.name.label_count(), 3);
        assert_eq!(q.name.label(1), b"cluster");
        assert_eq!(q.name.suffix(1), b"\x07cluster\x05local\x00");
        assert_eq!(q.name.suffix(3), b"\x00");
        assert!(q.edns.is_none());
        assert!(q.recursion_desired());
    }

    #[test]
    fn edns_is_found_and_checked() {
        let opt = [0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0];
        let p = query(b"\x01a\x00", &opt, 1);
        let e = Query::parse(&p).unwrap().edns.unwrap();
        assert_eq!((e.udp_size, e.version, e.dnssec_ok), (1232, 0, true));
        // Version 1 is answered with BADVERS.
        let opt = [0, 0, 41, 0x04, 0xd0, 0, 1, 0, 0, 0, 0];
        let p = query(b"\x01a\x00", &opt, 1);
        assert!(matches!(Query::parse(&p), Err(QueryError::Reject { rcode: Rcode::BADVERS, .. })));
        // Two OPT records are malformed.
        let mut two = opt.to_vec();
        two[6] = 0;
        two.extend_from_slice(&two.clone());
        let p = query(b"\x01a\x00", &two, 2);
        assert!(matches!(
            Query::parse(&p),
            Err(QueryError::Reject { rcode: Rcode::FORMERR, question_end: Some(_), .. })
        ));
    }

    #[test]
    fn malformed_packets_are_rejected_or_ignored() {
        assert_eq!(Query::parse(&[0; 11]).err(), Some(QueryError::Ignore));
        let mut response = query(b"\x01a\x00", &[], 0);
        response[2] |= 0x80;
        assert_eq!(Query::parse(&response).err(), Some(QueryError::Ignore));
        let p = query(b"\xc0\x0c", &[], 0);
        assert!(matches!(Query::parse(&p), Err(QueryError::Reject { rcode: Rcode::FORMERR, question_end: None, .. })));
        let p = query(b"\x05ab", &[], 0);
        assert!(matches!(Query::parse(&p), Err(QueryError::Reject { rcode: Rcode::FORMERR, .. })));
        let mut notify = query(b"\x01a\x00", &[], 0);
        notify[2] = 0x20; // opcode 4
        assert!(matches!(
            Query::parse(&notify),
            Err(QueryError::Reject { rcode: Rcode::NOTIMP, question_end: Some(_), .. })
        ));
    }

    #[test]
    fn every_prefix_of_a_packet_parses_or_fails_without_panicking() {
        let opt = [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 4, 0, 10, 0, 0];
        let p = query(b"\x03www\x07example\x03com\x00", &opt, 1);
        for cut in 0..=p.len() {
            let _ = Query::parse(&p[..cut]);
        }
        let mut nb = NameBuf::default();
        assert!(nb.set(b"\x01a\x01b\x00"));
        assert_eq!(nb.label_count(), 2);
        assert!(!nb.set(b"\x01a"));
    }
}
