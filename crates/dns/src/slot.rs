//! [`ServiceSlot`]: a Service and its EndpointSlices as the live zone
//! keeps them between changes: packed into one byte string, instead of a
//! dozen small allocations (each port name, address list, endpoint and
//! slice name its own, most of them a 32-byte minimum block for a few
//! bytes). A change unpacks the slot, edits it and packs it again; nothing
//! reads a slot on the query path.
//!
//! ```text
//! service: u8 (0: none, else 1 + flags HEADLESS, NOT_READY, SELECTS, EXTERNAL)
//!   [external name] cluster IPs (n, ips) ports (n, port...)
//! slices: n, then per slice: name, ip u8, endpoints (n, then per endpoint:
//!   addresses (n, ips), hostname (0 or 1 + string), ready u8), ports
//! port: name (0 or 1 + string), port (0 or 1 + i32), protocol
//! ```
//!
//! Numbers are LEB128, strings a length and their bytes, an address a
//! family byte (4 or 6) and its octets. A slice's Service label and trigger
//! time are not kept: the slot is the Service's, and the trigger time
//! matters only as the event arrives (`watch.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::objects::{DnsEndpoint, DnsEndpointPort, DnsPod, DnsService, DnsServicePort, DnsSlice, Protocol};

/// A Pod (`pods verified`) packed after `head`: terminating u8, addresses.
pub(crate) fn pack_pod(pod: &DnsPod, head: &[u8]) -> Box<[u8]> {
    let mut w = Writer(Vec::with_capacity(head.len() + 8));
    w.0.extend_from_slice(head);
    w.0.push(u8::from(pod.terminating));
    w.ips(&pod.ips);
    w.0.into_boxed_slice()
}

pub(crate) fn unpack_pod(b: &[u8]) -> DnsPod {
    let mut r = Reader { b, at: 0 };
    DnsPod { terminating: r.byte() != 0, ips: r.ips() }
}

/// A Service and its EndpointSlices (either may come first).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ServiceSlot {
    pub service: Option<DnsService>,
    /// With their names, sorted by name (the order the full build reads
    /// them in).
    pub slices: Vec<(Box<str>, DnsSlice)>,
}

const HEADLESS: u8 = 2;
const NOT_READY: u8 = 4;
const SELECTS: u8 = 8;
const EXTERNAL: u8 = 16;

impl ServiceSlot {
    pub fn is_empty(&self) -> bool {
        self.service.is_none() && self.slices.is_empty()
    }

    #[cfg(test)]
    pub fn pack(&self) -> Box<[u8]> {
        self.pack_after(&[])
    }

    /// The packed slot after `head` (the zone puts its key there: one
    /// allocation for both).
    pub fn pack_after(&self, head: &[u8]) -> Box<[u8]> {
        let mut w = Writer(Vec::with_capacity(head.len() + 64));
        w.0.extend_from_slice(head);
        match &self.service {
            None => w.0.push(0),
            Some(s) => {
                let mut flags = 1;
                for (on, bit) in [
                    (s.headless, HEADLESS),
                    (s.publish_not_ready, NOT_READY),
                    (s.selects_pods, SELECTS),
                    (s.external_name.is_some(), EXTERNAL),
                ] {
                    if on {
                        flags |= bit;
                    }
                }
                w.0.push(flags);
                if let Some(e) = &s.external_name {
                    w.str(e);
                }
                w.ips(&s.cluster_ips);
                w.num(s.ports.len());
                for p in &s.ports {
                    w.opt_str(p.name.as_deref());
                    w.opt_i32(Some(p.port));
                    w.protocol(&p.protocol);
                }
            }
        }
        w.num(self.slices.len());
        for (name, s) in &self.slices {
            w.str(name);
            w.0.push(u8::from(s.ip));
            w.num(s.endpoints.len());
            for e in &s.endpoints {
                w.ips(&e.addresses);
                w.opt_str(e.hostname.as_deref());
                w.0.push(u8::from(e.ready));
            }
            w.num(s.ports.len());
            for p in &s.ports {
                w.opt_str(p.name.as_deref());
                w.opt_i32(p.port);
                w.protocol(&p.protocol);
            }
        }
        w.0.into_boxed_slice()
    }

    pub fn unpack(b: &[u8]) -> ServiceSlot {
        let mut r = Reader { b, at: 0 };
        let flags = r.byte();
        let service = (flags != 0).then(|| {
            let external_name = (flags & EXTERNAL != 0).then(|| r.str());
            let cluster_ips = r.ips();
            let ports = (0..r.num())
                .map(|_| DnsServicePort { name: r.opt_str(), port: r.opt_i32().unwrap_or(0), protocol: r.protocol() })
                .collect();
            DnsService {
                external_name,
                headless: flags & HEADLESS != 0,
                publish_not_ready: flags & NOT_READY != 0,
                selects_pods: flags & SELECTS != 0,
                cluster_ips,
                ports,
            }
        });
        let slices = (0..r.num())
            .map(|_| {
                let name = r.str();
                let ip = r.byte() != 0;
                let endpoints = (0..r.num())
                    .map(|_| DnsEndpoint { addresses: r.ips(), hostname: r.opt_str(), ready: r.byte() != 0 })
                    .collect();
                let ports = (0..r.num())
                    .map(|_| DnsEndpointPort { name: r.opt_str(), port: r.opt_i32(), protocol: r.protocol() })
                    .collect();
                (name, DnsSlice { service: None, trigger_time: None, ip, endpoints, ports })
            })
            .collect();
        ServiceSlot { service, slices }
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn num(&mut self, n: usize) {
        let mut v = n as u64;
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn str(&mut self, s: &str) {
        self.num(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
        }
    }

    fn opt_i32(&mut self, n: Option<i32>) {
        match n {
            None => self.0.push(0),
            Some(n) => {
                self.0.push(1);
                // Zigzag: ports are small and positive, but any i32 round-trips.
                self.num(((n << 1) ^ (n >> 31)) as u32 as usize);
            }
        }
    }

    fn ips(&mut self, ips: &[IpAddr]) {
        self.num(ips.len());
        for ip in ips {
            match ip {
                IpAddr::V4(v4) => {
                    self.0.push(4);
                    self.0.extend_from_slice(&v4.octets());
                }
                IpAddr::V6(v6) => {
                    self.0.push(6);
                    self.0.extend_from_slice(&v6.octets());
                }
            }
        }
    }

    fn protocol(&mut self, p: &Protocol) {
        match p {
            Protocol::Tcp => self.0.push(0),
            Protocol::Udp => self.0.push(1),
            Protocol::Sctp => self.0.push(2),
            Protocol::Other(s) => {
                self.0.push(3);
                self.str(s);
            }
        }
    }
}

/// Reads what [`Writer`] wrote (only ever its own output: no checks
/// beyond what indexing does).
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let v = self.b[self.at];
        self.at += 1;
        v
    }

    fn num(&mut self) -> usize {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = self.byte();
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 || shift >= 63 {
                return v as usize;
            }
            shift += 7;
        }
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        s
    }

    fn str(&mut self) -> Box<str> {
        let n = self.num();
        String::from_utf8_lossy(self.bytes(n)).into()
    }

    fn opt_str(&mut self) -> Option<Box<str>> {
        (self.byte() != 0).then(|| self.str())
    }

    fn opt_i32(&mut self) -> Option<i32> {
        (self.byte() != 0).then(|| {
            let z = self.num() as u32;
            ((z >> 1) as i32) ^ -((z & 1) as i32)
        })
    }

    fn ips(&mut self) -> Box<[IpAddr]> {
        (0..self.num())
            .map(|_| match self.byte() {
                4 => {
                    let o = self.bytes(4);
                    IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3]))
                }
                _ => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(self.bytes(16));
                    IpAddr::V6(Ipv6Addr::from(o))
                }
            })
            .collect()
    }

    fn protocol(&mut self) -> Protocol {
        match self.byte() {
            0 => Protocol::Tcp,
            1 => Protocol::Udp,
            2 => Protocol::Sctp,
            _ => Protocol::Other(self.str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_round_trips() {
        let port = |name: Option<&str>, port, protocol| DnsServicePort { name: name.map(Into::into), port, protocol };
        let service = DnsService {
            external_name: Some("db.example.com".into()),
            headless: true,
            publish_not_ready: false,
            selects_pods: true,
            cluster_ips: vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()].into(),
            ports: vec![
                port(Some("http"), 80, Protocol::Tcp),
                port(None, -3, Protocol::Other("Weird".into())),
                port(Some("dns"), 65535, Protocol::Udp),
            ]
            .into(),
        };
        let slice = DnsSlice {
            service: None,
            trigger_time: None,
            ip: true,
            endpoints: vec![
                DnsEndpoint {
                    addresses: vec!["10.1.2.3".parse().unwrap()].into(),
                    hostname: Some("h".into()),
                    ready: true,
                },
                DnsEndpoint { addresses: Box::default(), hostname: None, ready: false },
            ]
            .into(),
            ports: vec![DnsEndpointPort { name: None, port: None, protocol: Protocol::Sctp }].into(),
        };
        for pod in [
            DnsPod::default(),
            DnsPod { terminating: true, ips: vec!["fd00::2".parse().unwrap(), "10.0.0.2".parse().unwrap()].into() },
        ] {
            assert_eq!(unpack_pod(&pack_pod(&pod, &[])), pod);
        }
        for slot in [
            ServiceSlot::default(),
            ServiceSlot { service: Some(service.clone()), slices: vec![] },
            ServiceSlot { service: None, slices: vec![("a".into(), slice.clone())] },
            ServiceSlot {
                service: Some(DnsService::default()),
                slices: vec![("a".into(), slice.clone()), ("b".into(), DnsSlice::default())],
            },
            ServiceSlot { service: Some(service), slices: vec![("x".repeat(300).into(), slice)] },
        ] {
            assert_eq!(ServiceSlot::unpack(&slot.pack()), slot);
        }
    }
}
