//! DNS messages on the wire (RFC 1035, 2782, 3596, 6891): the types of
//! records svcnet serves, a strict decoder ([`Message::decode`]), an
//! encoder with name compression ([`Encoder`]), and the allocation-free
//! query parser the server runs on every packet ([`Query::parse`]).
//!
//! Start at [`Query::parse`] for the hot path and [`Message`] for
//! everything else (upstream answers, tests).

pub(crate) mod decode;
pub(crate) mod encode;
mod query;

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::name::Name;

pub use decode::{Message, WireError};
pub use encode::Encoder;
pub use query::{NameBuf, Query, QueryError};

/// Record types (RFC 1035 §3.2.2 and later).
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const OPT: u16 = 41;
    pub const SVCB: u16 = 64;
    pub const HTTPS: u16 = 65;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const ANY: u16 = 255;

    /// The mnemonic, for logs and metric labels.
    pub fn name(t: u16) -> Option<&'static str> {
        Some(match t {
            A => "A",
            NS => "NS",
            CNAME => "CNAME",
            SOA => "SOA",
            PTR => "PTR",
            MX => "MX",
            TXT => "TXT",
            AAAA => "AAAA",
            SRV => "SRV",
            OPT => "OPT",
            SVCB => "SVCB",
            HTTPS => "HTTPS",
            IXFR => "IXFR",
            AXFR => "AXFR",
            ANY => "ANY",
            _ => return None,
        })
    }
}

/// Classes.
pub mod class {
    pub const IN: u16 = 1;
}

/// Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2).
pub mod flags {
    pub const QR: u16 = 0x8000;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
    pub const AD: u16 = 0x0020;
    pub const CD: u16 = 0x0010;
    pub const OPCODE_MASK: u16 = 0x7800;

    pub fn opcode(flags: u16) -> u8 {
        ((flags & OPCODE_MASK) >> 11) as u8
    }
}

/// A response code; values above 15 need an OPT record to carry their
/// upper bits (RFC 6891 §6.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rcode(pub u16);

impl Rcode {
    pub const NOERROR: Rcode = Rcode(0);
    pub const FORMERR: Rcode = Rcode(1);
    pub const SERVFAIL: Rcode = Rcode(2);
    pub const NXDOMAIN: Rcode = Rcode(3);
    pub const NOTIMP: Rcode = Rcode(4);
    pub const REFUSED: Rcode = Rcode(5);
    pub const BADVERS: Rcode = Rcode(16);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "NOERROR",
            1 => "FORMERR",
            2 => "SERVFAIL",
            3 => "NXDOMAIN",
            4 => "NOTIMP",
            5 => "REFUSED",
            16 => "BADVERS",
            _ => "OTHER",
        }
    }
}

/// A question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
}

impl Question {
    pub fn new(name: Name, qtype: u16) -> Question {
        Question { name, qtype, qclass: class::IN }
    }
}

/// A resource record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub name: Name,
    pub class: u16,
    pub ttl: u32,
    pub data: RData,
}

impl Record {
    pub fn new(name: Name, ttl: u32, data: RData) -> Record {
        Record { name, class: class::IN, ttl, data }
    }

    pub fn rtype(&self) -> u16 {
        self.data.rtype()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: Name,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Soa {
    pub mname: Name,
    pub rname: Name,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

/// Record data of the types svcnet serves or must understand in an
/// upstream's answer (those whose data holds compressible names); others
/// are kept as opaque bytes (RFC 3597).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Ns(Name),
    Cname(Name),
    Ptr(Name),
    Soa(Soa),
    Mx {
        preference: u16,
        exchange: Name,
    },
    /// Character strings, each at most 255 bytes.
    Txt(Vec<Vec<u8>>),
    Srv(Srv),
    Other {
        rtype: u16,
        data: Vec<u8>,
    },
}

impl RData {
    pub fn rtype(&self) -> u16 {
        match self {
            RData::A(_) => rtype::A,
            RData::Aaaa(_) => rtype::AAAA,
            RData::Ns(_) => rtype::NS,
            RData::Cname(_) => rtype::CNAME,
            RData::Ptr(_) => rtype::PTR,
            RData::Soa(_) => rtype::SOA,
            RData::Mx { .. } => rtype::MX,
            RData::Txt(_) => rtype::TXT,
            RData::Srv(_) => rtype::SRV,
            RData::Other { rtype, .. } => *rtype,
        }
    }
}

impl std::fmt::Display for Record {
    /// Presentation form: `name ttl IN TYPE data`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.rtype();
        let class = if self.class == class::IN { "IN".to_string() } else { format!("CLASS{}", self.class) };
        match rtype::name(t) {
            Some(n) => write!(f, "{} {} {class} {n} {}", self.name, self.ttl, self.data),
            None => write!(f, "{} {} {class} TYPE{t} {}", self.name, self.ttl, self.data),
        }
    }
}

impl std::fmt::Display for RData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RData::A(ip) => write!(f, "{ip}"),
            RData::Aaaa(ip) => write!(f, "{ip}"),
            RData::Ns(n) | RData::Cname(n) | RData::Ptr(n) => write!(f, "{n}"),
            RData::Soa(s) => {
                write!(f, "{} {} {} {} {} {} {}", s.mname, s.rname, s.serial, s.refresh, s.retry, s.expire, s.minimum)
            }
            RData::Mx { preference, exchange } => write!(f, "{preference} {exchange}"),
            RData::Txt(strings) => {
                let quoted: Vec<String> = strings.iter().map(|s| format!("{:?}", String::from_utf8_lossy(s))).collect();
                f.write_str(&quoted.join(" "))
            }
            RData::Srv(s) => write!(f, "{} {} {} {}", s.priority, s.weight, s.port, s.target),
            RData::Other { data, .. } => {
                write!(f, "\\# {}", data.len())?;
                if !data.is_empty() {
                    f.write_str(" ")?;
                    for b in data {
                        write!(f, "{b:02x}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// The EDNS(0) pseudo-record of a message (RFC 6891).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    /// The sender's UDP payload size.
    pub udp_size: u16,
    /// Upper 8 bits of the extended RCODE.
    pub ext_rcode: u8,
    pub version: u8,
    pub dnssec_ok: bool,
}

/// The UDP payload every resolver must accept (RFC 1035 §4.2.1).
pub const MIN_UDP_PAYLOAD: usize = 512;
