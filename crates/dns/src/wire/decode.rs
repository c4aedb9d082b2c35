//! Decoding whole messages: every read is bounds-checked and compression
//! pointers may only point backwards, so a hostile packet can neither read
//! out of bounds nor loop.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Edns, Question, RData, Record, Soa, Srv, rtype};
use crate::name::{MAX_LABEL_LEN, MAX_NAME_LEN, Name};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message ends inside a field at byte {0}")]
    Truncated(usize),
    #[error("bad label type at byte {0}")]
    BadLabel(usize),
    #[error("compression pointer at byte {0} does not point backwards")]
    BadPointer(usize),
    #[error("name longer than 255 bytes")]
    NameTooLong,
    #[error("record data of type {rtype} does not match its length")]
    BadRdata { rtype: u16 },
    #[error("more than one OPT record, or one not owned by the root")]
    BadOpt,
}

/// A decoded message. Names are canonical (lowercased).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    pub flags: u16,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    /// Additional records, the OPT record excluded.
    pub additional: Vec<Record>,
    pub edns: Option<Edns>,
}

impl Message {
    pub fn decode(buf: &[u8]) -> Result<Message, WireError> {
        let mut r = Reader::new(buf);
        let id = r.u16()?;
        let flags = r.u16()?;
        let counts = [r.u16()?, r.u16()?, r.u16()?, r.u16()?];
        let mut questions = Vec::new();
        for _ in 0..counts[0] {
            let name = r.name()?;
            questions.push(Question { name, qtype: r.u16()?, qclass: r.u16()? });
        }
        let mut sections: [Vec<Record>; 3] = Default::default();
        let mut edns = None;
        for (section, &count) in sections.iter_mut().zip(&counts[1..]) {
            for _ in 0..count {
                match r.record()? {
                    Decoded::Record(rec) => section.push(rec),
                    Decoded::Opt(e) => {
                        if edns.is_some() {
                            return Err(WireError::BadOpt);
                        }
                        edns = Some(e);
                    }
                }
            }
        }
        let [answers, authority, additional] = sections;
        Ok(Message { id, flags, questions, answers, authority, additional, edns })
    }

    pub fn rcode(&self) -> super::Rcode {
        let low = self.flags & 0xf;
        let high = self.edns.map_or(0, |e| e.ext_rcode as u16);
        super::Rcode(high << 4 | low)
    }
}

pub(crate) enum Decoded {
    Record(Record),
    Opt(Edns),
}

/// A cursor over a message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn at(buf: &'a [u8], pos: usize) -> Self {
        Reader { buf, pos }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(WireError::Truncated(self.pos))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a possibly compressed name, lowercased.
    pub(crate) fn name(&mut self) -> Result<Name, WireError> {
        let mut wire = Vec::with_capacity(64);
        self.pos = read_name(self.buf, self.pos, &mut wire)?;
        Ok(Name::from_wire_unchecked(&wire))
    }

    /// Skips a possibly compressed name.
    pub(crate) fn skip_name(&mut self) -> Result<(), WireError> {
        loop {
            let len = self.u8()?;
            match len & 0xc0 {
                0x00 if len == 0 => return Ok(()),
                0x00 => {
                    self.bytes(len as usize)?;
                }
                0xc0 => {
                    self.u8()?;
                    return Ok(());
                }
                _ => return Err(WireError::BadLabel(self.pos - 1)),
            }
        }
    }

    pub(crate) fn record(&mut self) -> Result<Decoded, WireError> {
        let name = self.name()?;
        let rtype = self.u16()?;
        let class = self.u16()?;
        let ttl = self.u32()?;
        let rdlen = self.u16()? as usize;
        let start = self.pos;
        let end = start.checked_add(rdlen).filter(|&e| e <= self.buf.len()).ok_or(WireError::Truncated(start))?;
        if rtype == rtype::OPT {
            if !name.is_root() {
                return Err(WireError::BadOpt);
            }
            check_options(&self.buf[start..end])?;
            self.pos = end;
            return Ok(Decoded::Opt(Edns {
                udp_size: class,
                ext_rcode: (ttl >> 24) as u8,
                version: (ttl >> 16) as u8,
                dnssec_ok: ttl & 0x8000 != 0,
            }));
        }
        let data = self.rdata(rtype, end)?;
        if self.pos != end {
            return Err(WireError::BadRdata { rtype });
        }
        Ok(Decoded::Record(Record { name, class, ttl, data }))
    }

    fn rdata(&mut self, t: u16, end: usize) -> Result<RData, WireError> {
        let len = end - self.pos;
        // Names inside record data must not run past it.
        let bounded = |r: &mut Self| -> Result<Name, WireError> {
            let n = r.name()?;
            if r.pos > end { Err(WireError::BadRdata { rtype: t }) } else { Ok(n) }
        };
        Ok(match t {
            rtype::A if len == 4 => {
                let b = self.bytes(4)?;
                RData::A(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            }
            rtype::AAAA if len == 16 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(self.bytes(16)?);
                RData::Aaaa(Ipv6Addr::from(o))
            }
            rtype::A | rtype::AAAA => return Err(WireError::BadRdata { rtype: t }),
            rtype::NS => RData::Ns(bounded(self)?),
            rtype::CNAME => RData::Cname(bounded(self)?),
            rtype::PTR => RData::Ptr(bounded(self)?),
            rtype::MX => {
                let preference = self.u16()?;
                RData::Mx { preference, exchange: bounded(self)? }
            }
            rtype::SRV => {
                let (priority, weight, port) = (self.u16()?, self.u16()?, self.u16()?);
                RData::Srv(Srv { priority, weight, port, target: bounded(self)? })
            }
            rtype::SOA => {
                let mname = bounded(self)?;
                let rname = bounded(self)?;
                if end.saturating_sub(self.pos) != 20 {
                    return Err(WireError::BadRdata { rtype: t });
                }
                RData::Soa(Soa {
                    mname,
                    rname,
                    serial: self.u32()?,
                    refresh: self.u32()?,
                    retry: self.u32()?,
                    expire: self.u32()?,
                    minimum: self.u32()?,
                })
            }
            rtype::TXT => {
                let mut strings = Vec::new();
                while self.pos < end {
                    let n = self.u8()? as usize;
                    if self.pos + n > end {
                        return Err(WireError::BadRdata { rtype: t });
                    }
                    strings.push(self.bytes(n)?.to_vec());
                }
                RData::Txt(strings)
            }
            _ => RData::Other { rtype: t, data: self.bytes(len)?.to_vec() },
        })
    }
}

/// EDNS options are (code, length, data) triples that must fill the
/// record data exactly.
fn check_options(mut data: &[u8]) -> Result<(), WireError> {
    while !data.is_empty() {
        if data.len() < 4 {
            return Err(WireError::BadOpt);
        }
        let len = u16::from_be_bytes([data[2], data[3]]) as usize;
        data = data.get(4 + len..).ok_or(WireError::BadOpt)?;
    }
    Ok(())
}

/// Reads the name at `pos` into `out` (lowercased, uncompressed) and
/// returns the position after it in the original byte stream. Pointers
/// must point strictly before the label that holds them, so following
/// them always ends.
pub(crate) fn read_name(buf: &[u8], mut pos: usize, out: &mut Vec<u8>) -> Result<usize, WireError> {
    let mut resume = None;
    // Every pointer moves strictly backwards: this bounds the hops too.
    let mut limit = pos;
    loop {
        let len = *buf.get(pos).ok_or(WireError::Truncated(pos))?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                out.push(0);
                if out.len() > MAX_NAME_LEN {
                    return Err(WireError::NameTooLong);
                }
                return Ok(resume.unwrap_or(pos + 1));
            }
            0x00 => {
                let len = len as usize;
                debug_assert!(len <= MAX_LABEL_LEN);
                let label = buf.get(pos + 1..pos + 1 + len).ok_or(WireError::Truncated(pos))?;
                if out.len() + 1 + len + 1 > MAX_NAME_LEN {
                    return Err(WireError::NameTooLong);
                }
                out.push(len as u8);
                out.extend(label.iter().map(u8::to_ascii_lowercase));
                pos += 1 + len;
            }
            0xc0 => {
                let low = *buf.get(pos + 1).ok_or(WireError::Truncated(pos))?;
                let target = ((len as usize & 0x3f) << 8) | low as usize;
                if target >= limit {
                    return Err(WireError::BadPointer(pos));
                }
                resume.get_or_insert(pos + 2);
                limit = target;
                pos = target;
            }
            _ => return Err(WireError::BadLabel(pos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_loops_are_rejected() {
        // A header, then a name that is a pointer to itself.
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(&[0xc0, 12]);
        assert_eq!(read_name(&msg, 12, &mut Vec::new()), Err(WireError::BadPointer(12)));
        // Two pointers pointing at each other.
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(&[0xc0, 14, 0xc0, 12]);
        assert!(read_name(&msg, 14, &mut Vec::new()).is_err());
    }

    #[test]
    fn compressed_names_are_followed_backwards() {
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(b"\x03svc\x07cluster\x05local\x00");
        let at = msg.len();
        msg.extend_from_slice(b"\x03Web\xc0\x0c");
        let mut out = Vec::new();
        let after = read_name(&msg, at, &mut out).unwrap();
        assert_eq!(after, msg.len());
        assert_eq!(out, b"\x03web\x03svc\x07cluster\x05local\x00");
    }

    #[test]
    fn reads_past_the_end_are_errors_not_panics() {
        for cut in 0..30 {
            let msg = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01";
            let _ = Message::decode(&msg[..cut.min(msg.len())]);
        }
        assert!(Message::decode(b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab").is_err());
    }
}
