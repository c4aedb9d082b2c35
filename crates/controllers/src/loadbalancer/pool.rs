//! The address pool LoadBalancer Services draw from: IPv4 CIDRs and
//! ranges, parsed once into sorted, merged ranges of usable addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// Why a pool entry does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("the address pool is empty")]
    Empty,
    #[error("{0:?} is not an IPv4 address")]
    InvalidAddress(String),
    #[error("{0:?} is IPv6; the pool holds IPv4 addresses only")]
    Ipv6(String),
    #[error("{0:?} has an invalid prefix length (0 to 32)")]
    InvalidPrefix(String),
    #[error("{entry:?} has host bits set (did you mean {network}?)")]
    HostBits { entry: String, network: String },
    #[error("{0:?} ends before it starts")]
    Reversed(String),
}

/// Usable IPv4 addresses, as sorted, disjoint, non-adjacent inclusive
/// ranges. A CIDR with a prefix shorter than /31 leaves out its network
/// and broadcast addresses; a `first-last` range keeps every address in
/// it. Build one with [`parse_pool`] or [`Pool::range`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    ranges: Vec<(u32, u32)>,
}

impl Pool {
    /// Every address from `first` to `last`, both included (empty if
    /// `last < first`).
    pub fn range(first: Ipv4Addr, last: Ipv4Addr) -> Pool {
        let (a, b) = (u32::from(first), u32::from(last));
        Pool { ranges: if a <= b { vec![(a, b)] } else { Vec::new() } }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        // The ranges are sorted and disjoint: the candidate is the last
        // that starts at or before `ip`.
        let i = self.ranges.partition_point(|&(first, _)| first <= ip);
        i > 0 && ip <= self.ranges[i - 1].1
    }

    /// How many addresses the pool holds.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|&(a, b)| u64::from(b - a) + 1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The pool's addresses, lowest first.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| (a..=b).map(Ipv4Addr::from))
    }

    fn from_ranges(mut ranges: Vec<(u32, u32)>) -> Pool {
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Pool { ranges: merged }
    }
}

/// `first-last` per range, or one address, comma-separated: parses back
/// to the same pool.
impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{}", Ipv4Addr::from(a))?;
            } else {
                write!(f, "{}-{}", Ipv4Addr::from(a), Ipv4Addr::from(b))?;
            }
        }
        Ok(())
    }
}

impl FromStr for Pool {
    type Err = PoolError;

    /// Comma-separated entries, each a CIDR (`10.0.0.0/24`), a range
    /// (`10.0.0.10-10.0.0.20`) or one address. Overlapping entries merge.
    fn from_str(s: &str) -> Result<Pool, PoolError> {
        let mut ranges = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            ranges.push(parse_entry(entry)?);
        }
        if ranges.is_empty() {
            return Err(PoolError::Empty);
        }
        Ok(Pool::from_ranges(ranges))
    }
}

/// Parses a comma-separated pool (see [`Pool`]'s `FromStr`); the error is
/// a sentence for a command-line flag.
pub fn parse_pool(s: &str) -> Result<Pool, String> {
    s.parse().map_err(|e: PoolError| e.to_string())
}

fn address(s: &str) -> Result<Ipv4Addr, PoolError> {
    match s.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Ok(ip),
        Ok(IpAddr::V6(_)) => Err(PoolError::Ipv6(s.trim().to_string())),
        Err(_) => Err(PoolError::InvalidAddress(s.trim().to_string())),
    }
}

fn parse_entry(entry: &str) -> Result<(u32, u32), PoolError> {
    if let Some((ip, prefix)) = entry.split_once('/') {
        let ip = u32::from(address(ip)?);
        let prefix: u32 = match prefix.trim().parse() {
            Ok(p) if p <= 32 => p,
            _ => return Err(PoolError::InvalidPrefix(entry.to_string())),
        };
        let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
        let network = ip & mask;
        if network != ip {
            return Err(PoolError::HostBits {
                entry: entry.to_string(),
                network: format!("{}/{prefix}", Ipv4Addr::from(network)),
            });
        }
        let broadcast = network | !mask;
        return Ok(if prefix < 31 { (network + 1, broadcast - 1) } else { (network, broadcast) });
    }
    if let Some((first, last)) = entry.split_once('-') {
        let (first, last) = (u32::from(address(first)?), u32::from(address(last)?));
        if last < first {
            return Err(PoolError::Reversed(entry.to_string()));
        }
        return Ok((first, last));
    }
    let ip = u32::from(address(entry)?);
    Ok((ip, ip))
}
