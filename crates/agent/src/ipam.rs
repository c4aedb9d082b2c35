//! Pod addresses from the node's pod CIDR, as the CNI host-local plugin
//! hands them out: the first address is the bridge (the pods' gateway), the
//! network and broadcast addresses are never used, and a released address
//! goes to the back of the line so a new pod does not inherit a fresh
//! stale conntrack or ARP entry.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    pub fn parse(s: &str) -> Result<Ipv4Cidr, String> {
        let (a, l) = s.split_once('/').ok_or_else(|| format!("{s:?} is not a CIDR (want a.b.c.d/len)"))?;
        let addr: Ipv4Addr = a.parse().map_err(|_| format!("{s:?}: {a:?} is not an IPv4 address"))?;
        let prefix_len: u8 = l.parse().ok().filter(|l| *l <= 32).ok_or_else(|| format!("{s:?}: bad prefix length"))?;
        Ok(Ipv4Cidr { addr: Ipv4Addr::from(u32::from(addr) & Self::mask(prefix_len)), prefix_len })
    }

    fn mask(len: u8) -> u32 {
        if len == 0 { 0 } else { u32::MAX << (32 - len) }
    }

    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix_len)
    }

    /// The `i`th address of the block.
    pub fn nth(&self, i: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr).wrapping_add(i))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask(self.prefix_len) == u32::from(self.addr)
    }

    /// The `i`th sub-block of length `len` (for node pod CIDRs out of the
    /// cluster CIDR).
    pub fn subnet(&self, len: u8, i: u32) -> Option<Ipv4Cidr> {
        if len < self.prefix_len || len > 32 || u64::from(i) >= 1u64 << (len - self.prefix_len) {
            return None;
        }
        let base = u32::from(self.addr) + (i << (32 - u32::from(len)));
        Some(Ipv4Cidr { addr: Ipv4Addr::from(base), prefix_len: len })
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

#[derive(Debug)]
pub struct Ipam {
    cidr: Ipv4Cidr,
    used: BTreeSet<u32>,
    /// Offset of the last address handed out; the search resumes after it.
    cursor: u32,
}

impl Ipam {
    pub fn new(cidr: Ipv4Cidr) -> Ipam {
        Ipam { cidr, used: BTreeSet::new(), cursor: 1 }
    }

    /// The bridge's address.
    pub fn gateway(&self) -> Ipv4Addr {
        self.cidr.nth(1)
    }

    pub fn cidr(&self) -> Ipv4Cidr {
        self.cidr
    }

    fn usable(&self) -> std::ops::Range<u32> {
        // Skip network (0) and gateway (1); stop before broadcast.
        2..(self.cidr.size().saturating_sub(1).min(u64::from(u32::MAX)) as u32)
    }

    /// Marks `ip` used, if it is free and usable (a pod keeping its address
    /// across an agent restart).
    pub fn reserve(&mut self, ip: Ipv4Addr) -> bool {
        if !self.cidr.contains(ip) {
            return false;
        }
        let off = u32::from(ip) - u32::from(self.cidr.addr);
        self.usable().contains(&off) && self.used.insert(off)
    }

    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let range = self.usable();
        let mut off = self.cursor.max(range.start);
        for _ in range.clone() {
            if off >= range.end {
                off = range.start;
            }
            if self.used.insert(off) {
                self.cursor = off + 1;
                return Some(self.cidr.nth(off));
            }
            off += 1;
        }
        None
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        if self.cidr.contains(ip) {
            self.used.remove(&(u32::from(ip) - u32::from(self.cidr.addr)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        Ipv4Cidr::parse(s).unwrap()
    }

    #[test]
    fn node_cidrs_come_out_of_the_cluster_cidr() {
        let c = cidr("10.244.0.0/16");
        assert_eq!(c.subnet(24, 1).unwrap().to_string(), "10.244.1.0/24");
        assert_eq!(c.subnet(24, 255).unwrap().to_string(), "10.244.255.0/24");
        assert!(c.subnet(24, 256).is_none());
        assert_eq!(cidr("10.244.3.7/24").to_string(), "10.244.3.0/24");
        assert!(Ipv4Cidr::parse("10.244.0.0").is_err());
        assert!(Ipv4Cidr::parse("10.244.0.0/33").is_err());
    }

    #[test]
    fn addresses_skip_network_gateway_and_broadcast_and_rotate() {
        let mut ipam = Ipam::new(cidr("10.244.1.0/29"));
        assert_eq!(ipam.gateway().to_string(), "10.244.1.1");
        let got: Vec<String> = std::iter::from_fn(|| ipam.allocate()).map(|ip| ip.to_string()).collect();
        assert_eq!(got, ["10.244.1.2", "10.244.1.3", "10.244.1.4", "10.244.1.5", "10.244.1.6"]);
        ipam.release("10.244.1.3".parse().unwrap());
        ipam.release("10.244.1.5".parse().unwrap());
        // The search goes on from the last address handed out.
        assert_eq!(ipam.allocate().unwrap().to_string(), "10.244.1.3");
        assert_eq!(ipam.allocate().unwrap().to_string(), "10.244.1.5");
        assert_eq!(ipam.allocate(), None);
    }

    #[test]
    fn released_addresses_are_not_reused_first() {
        let mut ipam = Ipam::new(cidr("10.244.1.0/24"));
        let a = ipam.allocate().unwrap();
        let b = ipam.allocate().unwrap();
        ipam.release(a);
        let c = ipam.allocate().unwrap();
        assert_ne!(c, a);
        assert_ne!(c, b);
    }

    #[test]
    fn reserve_keeps_known_addresses() {
        let mut ipam = Ipam::new(cidr("10.244.1.0/24"));
        assert!(ipam.reserve("10.244.1.2".parse().unwrap()));
        assert!(!ipam.reserve("10.244.1.2".parse().unwrap()));
        assert!(!ipam.reserve("10.244.1.1".parse().unwrap()));
        assert!(!ipam.reserve("10.244.2.9".parse().unwrap()));
        assert_eq!(ipam.allocate().unwrap().to_string(), "10.244.1.3");
    }
}
