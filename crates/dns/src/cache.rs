//! The cache of upstream answers (RFC 2308): positive answers live for the
//! smallest TTL in their answer section, negative ones (NXDOMAIN, NODATA)
//! for the SOA's min(TTL, MINIMUM); a negative answer without an SOA, and
//! any failure, is not cached. Both are capped, and the number of entries
//! is bounded. Served copies have their TTLs counted down.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::handler::Echo;
use crate::name::Name;
use crate::wire::decode::{Reader, WireError};
use crate::wire::encode::opt_bytes;
use crate::wire::{Rcode, flags, rtype};

/// An upstream response, as received minus its OPT record.
#[derive(Debug)]
pub struct Cached {
    /// The message; its question is ours (the queried name lowercased).
    pub msg: Box<[u8]>,
    pub question_end: usize,
    pub rcode: Rcode,
    pub counts: [u16; 3],
    /// Where the additional section starts.
    pub cut: usize,
    /// Byte offsets of every record's TTL.
    ttl_offsets: Vec<u32>,
    pub stored: Instant,
    /// How long the answer may be served from the cache; `None`: not
    /// cacheable.
    pub lifetime: Option<Duration>,
    pub negative: bool,
    pub truncated: bool,
}

impl Cached {
    /// Checks an upstream response to `name`/`qtype`/`qclass` and notes
    /// what caching needs. The question must be `name` uncompressed.
    pub fn parse(resp: &[u8], name: &Name, qtype: u16, qclass: u16, now: Instant) -> Result<Cached, WireError> {
        let mut r = Reader::new(resp);
        let _id = r.u16()?;
        let fl = r.u16()?;
        let counts = [r.u16()?, r.u16()?, r.u16()?, r.u16()?];
        if counts[0] != 1 {
            return Err(WireError::Truncated(4));
        }
        let qname = r.name()?;
        if qname != *name || r.pos != 12 + name.wire().len() {
            return Err(WireError::BadLabel(12));
        }
        if r.u16()? != qtype || r.u16()? != qclass {
            return Err(WireError::BadLabel(12));
        }
        let question_end = r.pos;
        let mut ttl_offsets = Vec::new();
        let mut min_answer_ttl = u32::MAX;
        let mut soa_ttl = None;
        let mut ext_rcode = 0u16;
        let mut kept = [counts[1], counts[2], counts[3]];
        let mut end = question_end;
        let mut cut = question_end;
        'sections: for section in 0..3 {
            if section == 2 {
                cut = r.pos;
            }
            for i in 0..counts[section + 1] {
                let start = r.pos;
                r.skip_name()?;
                let t = r.u16()?;
                let _class = r.u16()?;
                let ttl_at = r.pos;
                let ttl = r.u32()?;
                let len = r.u16()? as usize;
                let data = r.bytes(len)?;
                if t == rtype::OPT {
                    // Records after the OPT could point into it only
                    // backwards, so cutting here keeps pointers valid.
                    ext_rcode = (ttl >> 24) as u16;
                    kept[section] = i;
                    if section == 2 {
                        end = start;
                        break 'sections;
                    }
                    return Err(WireError::BadOpt);
                }
                ttl_offsets.push(ttl_at as u32);
                match section {
                    0 => min_answer_ttl = min_answer_ttl.min(ttl),
                    1 if t == rtype::SOA && data.len() >= 22 => {
                        let m = &data[data.len() - 4..];
                        let minimum = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
                        soa_ttl = Some(ttl.min(minimum));
                    }
                    _ => {}
                }
                end = r.pos;
            }
        }
        let rcode = Rcode(ext_rcode << 4 | (fl & 0xf));
        let truncated = fl & flags::TC != 0;
        let negative = rcode == Rcode::NXDOMAIN || (rcode == Rcode::NOERROR && counts[1] == 0);
        let lifetime = match rcode {
            _ if truncated => None,
            Rcode::NOERROR if counts[1] > 0 => Some(min_answer_ttl),
            Rcode::NOERROR | Rcode::NXDOMAIN => soa_ttl,
            _ => None,
        }
        .filter(|&t| t > 0)
        .map(|t| Duration::from_secs(t.into()));
        // The stored message stands alone: its counts match what it holds.
        let mut msg: Box<[u8]> = resp[..end].into();
        for (i, c) in kept.iter().enumerate() {
            msg[6 + 2 * i..8 + 2 * i].copy_from_slice(&c.to_be_bytes());
        }
        Ok(Cached {
            msg,
            question_end,
            rcode,
            counts: kept,
            cut,
            ttl_offsets,
            stored: now,
            lifetime,
            negative,
            truncated,
        })
    }

    /// Whole seconds since it was stored.
    pub fn age(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.stored).as_secs()).unwrap_or(u32::MAX)
    }

    /// Writes the response to a client: its id, flags and question
    /// spelling, our OPT, TTLs counted down; cut or truncated to fit.
    pub fn write(&self, out: &mut Vec<u8>, echo: &Echo<'_>, now: Instant) {
        out.clear();
        let age = self.age(now);
        let opt = usize::from(echo.edns.is_some()) * 11;
        let fixed = 12 + echo.raw_name.len() + 4 + opt;
        let body = &self.msg[self.question_end..];
        let cut = self.cut - self.question_end;
        let (body, counts, truncated) = if fixed + body.len() <= echo.limit {
            (body, self.counts, false)
        } else if fixed + cut <= echo.limit {
            (&body[..cut], [self.counts[0], self.counts[1], 0], false)
        } else {
            (&[][..], [0; 3], true)
        };
        let fl = flags::QR
            | (echo.flags & (flags::OPCODE_MASK | flags::RD | flags::CD))
            | flags::RA
            | if truncated { flags::TC } else { 0 }
            | (self.rcode.0 & 0xf);
        out.extend_from_slice(&echo.id.to_be_bytes());
        out.extend_from_slice(&fl.to_be_bytes());
        out.extend_from_slice(&[0, 1]);
        out.extend_from_slice(&counts[0].to_be_bytes());
        out.extend_from_slice(&counts[1].to_be_bytes());
        out.extend_from_slice(&(counts[2] + u16::from(echo.edns.is_some())).to_be_bytes());
        out.extend_from_slice(echo.raw_name);
        out.extend_from_slice(&echo.qtype.to_be_bytes());
        out.extend_from_slice(&echo.qclass.to_be_bytes());
        let body_at = out.len();
        out.extend_from_slice(body);
        if age > 0 {
            for &off in &self.ttl_offsets {
                let at = body_at + off as usize - self.question_end;
                if at + 4 > out.len() {
                    break;
                }
                let ttl = u32::from_be_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]);
                out[at..at + 4].copy_from_slice(&ttl.saturating_sub(age).to_be_bytes());
            }
        }
        if echo.edns.is_some() {
            out.extend_from_slice(&opt_bytes(echo.our_udp, (self.rcode.0 >> 4) as u8));
        }
    }
}

/// The key of a cached answer.
type Key = (Name, u16, u16);

/// A bounded map of cached answers.
pub struct Cache {
    map: HashMap<Key, Arc<Cached>>,
    capacity: usize,
    max_ttl: Duration,
    max_negative_ttl: Duration,
}

impl Cache {
    pub fn new(capacity: usize, max_ttl: Duration, max_negative_ttl: Duration) -> Cache {
        Cache { map: HashMap::new(), capacity, max_ttl, max_negative_ttl }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&mut self, name: &Name, qtype: u16, qclass: u16, now: Instant) -> Option<Arc<Cached>> {
        let key = (name.clone(), qtype, qclass);
        let entry = self.map.get(&key)?;
        if self.expired(entry, now) {
            self.map.remove(&key);
            return None;
        }
        Some(entry.clone())
    }

    fn expired(&self, c: &Cached, now: Instant) -> bool {
        let cap = if c.negative { self.max_negative_ttl } else { self.max_ttl };
        let lifetime = c.lifetime.unwrap_or_default().min(cap);
        now.saturating_duration_since(c.stored) >= lifetime
    }

    /// Stores an answer if it may be cached.
    pub fn insert(&mut self, name: &Name, qtype: u16, qclass: u16, answer: Arc<Cached>) {
        if answer.lifetime.is_none() || self.capacity == 0 {
            return;
        }
        if self.map.len() >= self.capacity {
            let now = Instant::now();
            let before = self.map.len();
            let mut stale: Vec<Key> =
                self.map.iter().filter(|(_, c)| self.expired(c, now)).map(|(k, _)| k.clone()).collect();
            // Nothing expired: drop an eighth, whichever come first (the
            // map's order is random enough for this).
            if stale.is_empty() {
                stale = self.map.keys().take((before / 8).max(1)).cloned().collect();
            }
            for k in stale {
                self.map.remove(&k);
            }
        }
        self.map.insert((name.clone(), qtype, qclass), answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Encoder, RData, Record, Soa, class};

    fn response(name: &Name, rcode: u16, answers: &[Record], authority: &[Record]) -> Vec<u8> {
        let mut e = Encoder::default();
        e.header(9, 0x8180 | rcode, [1, answers.len() as u16, authority.len() as u16, 1]);
        e.question(name.wire(), rtype::A, class::IN);
        for r in answers.iter().chain(authority) {
            e.record(r);
        }
        e.opt(&crate::wire::Edns { udp_size: 1232, ext_rcode: 0, version: 0, dnssec_ok: false });
        e.into_inner()
    }

    fn soa(zone: &Name, ttl: u32, minimum: u32) -> Record {
        Record::new(
            zone.clone(),
            ttl,
            RData::Soa(Soa {
                mname: zone.clone(),
                rname: zone.clone(),
                serial: 1,
                refresh: 2,
                retry: 3,
                expire: 4,
                minimum,
            }),
        )
    }

    #[test]
    fn positive_answers_live_for_their_smallest_ttl_and_lose_the_opt_record() {
        let name = Name::parse("example.test").unwrap();
        let a = |ttl, ip: &str| Record::new(name.clone(), ttl, RData::A(ip.parse().unwrap()));
        let msg = response(&name, 0, &[a(300, "192.0.2.1"), a(60, "192.0.2.2")], &[]);
        let c = Cached::parse(&msg, &name, rtype::A, class::IN, Instant::now()).unwrap();
        assert_eq!(c.lifetime, Some(Duration::from_secs(60)));
        assert!(!c.negative);
        assert_eq!(c.counts, [2, 0, 0]);
        assert_eq!(c.msg.len(), msg.len() - 11);
        let stored = crate::wire::Message::decode(&c.msg).expect("the stored message decodes on its own");
        assert_eq!((stored.answers.len(), stored.additional.len(), stored.edns), (2, 0, None));
    }

    #[test]
    fn negative_answers_live_for_the_soa_minimum_or_ttl_and_not_at_all_without_soa() {
        let name = Name::parse("nope.example.test").unwrap();
        let zone = Name::parse("example.test").unwrap();
        let msg = response(&name, 3, &[], &[soa(&zone, 900, 30)]);
        let c = Cached::parse(&msg, &name, rtype::A, class::IN, Instant::now()).unwrap();
        assert_eq!((c.negative, c.lifetime), (true, Some(Duration::from_secs(30))));
        let msg = response(&name, 3, &[], &[]);
        let c = Cached::parse(&msg, &name, rtype::A, class::IN, Instant::now()).unwrap();
        assert_eq!(c.lifetime, None);
        let msg = response(&name, 2, &[], &[soa(&zone, 900, 30)]);
        assert_eq!(Cached::parse(&msg, &name, rtype::A, class::IN, Instant::now()).unwrap().lifetime, None);
    }

    #[test]
    fn an_answer_to_another_question_is_rejected() {
        let name = Name::parse("example.test").unwrap();
        let msg = response(&name, 0, &[], &[]);
        let other = Name::parse("example.tesu").unwrap();
        assert!(Cached::parse(&msg, &other, rtype::A, class::IN, Instant::now()).is_err());
        assert!(Cached::parse(&msg, &name, rtype::AAAA, class::IN, Instant::now()).is_err());
    }

    #[test]
    fn served_ttls_count_down_and_entries_expire() {
        let name = Name::parse("example.test").unwrap();
        let msg = response(&name, 0, &[Record::new(name.clone(), 10, RData::A("192.0.2.1".parse().unwrap()))], &[]);
        let t0 = Instant::now();
        let c = Arc::new(Cached::parse(&msg, &name, rtype::A, class::IN, t0).unwrap());
        let mut cache = Cache::new(10, Duration::from_secs(3600), Duration::from_secs(1800));
        cache.insert(&name, rtype::A, class::IN, c.clone());
        assert!(cache.get(&name, rtype::A, class::IN, t0 + Duration::from_secs(9)).is_some());
        let echo = Echo {
            id: 0x4242,
            flags: flags::RD,
            raw_name: b"\x07EXAMPLE\x04test\x00",
            qtype: rtype::A,
            qclass: class::IN,
            edns: None,
            limit: 512,
            our_udp: 1232,
            recursion: true,
        };
        let mut out = Vec::new();
        c.write(&mut out, &echo, t0 + Duration::from_secs(4));
        let m = crate::wire::Message::decode(&out).unwrap();
        assert_eq!(m.id, 0x4242);
        assert_eq!(m.answers[0].ttl, 6);
        assert_eq!(&out[12..26], echo.raw_name);
        assert!(cache.get(&name, rtype::A, class::IN, t0 + Duration::from_secs(10)).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let mut cache = Cache::new(16, Duration::from_secs(3600), Duration::from_secs(1800));
        for i in 0..100 {
            let name = Name::parse(&format!("n{i}.example.test")).unwrap();
            let msg =
                response(&name, 0, &[Record::new(name.clone(), 100, RData::A("192.0.2.1".parse().unwrap()))], &[]);
            let c = Cached::parse(&msg, &name, rtype::A, class::IN, Instant::now()).unwrap();
            cache.insert(&name, rtype::A, class::IN, Arc::new(c));
            assert!(cache.len() <= 16);
        }
    }
}
