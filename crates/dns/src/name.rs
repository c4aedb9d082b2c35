//! [`Name`]: a domain name held in its canonical wire form — uncompressed
//! labels, ASCII lowercased, ending in the root label — so that an invalid
//! name (a label over 63 bytes, a name over 255) cannot be held, and two
//! names compare equal exactly when DNS says they are the same name.
//!
//! The wire form is also the key of every lookup: a query's name, once
//! lowercased, is compared byte for byte with the zone's names.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// The longest name on the wire, root label included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// The longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty label in {0:?}")]
    EmptyLabel(String),
    #[error("label longer than 63 bytes in {0:?}")]
    LabelTooLong(String),
    #[error("name longer than 255 bytes: {0:?}")]
    TooLong(String),
}

/// A domain name in canonical (lowercase, uncompressed) wire format.
///
/// The bytes are shared: a clone is a reference count, so the zone's
/// tables, the records pointing at a name and the prepared answers all
/// hold one copy of it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Arc<[u8]>);

/// Lookups by wire bytes: `Name`'s `Hash` and `Eq` are those of its bytes.
impl std::borrow::Borrow<[u8]> for Name {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl Name {
    /// The root name `.`.
    pub fn root() -> Name {
        Name(Arc::from(&[0u8][..]))
    }

    /// Parses presentation form (`web.default.svc.cluster.local`, with or
    /// without the final dot). No escapes: Kubernetes names never need them.
    pub fn parse(text: &str) -> Result<Name, NameError> {
        let trimmed = text.strip_suffix('.').unwrap_or(text);
        if trimmed.is_empty() {
            return Ok(Name::root());
        }
        Name::from_labels(trimmed.split('.').map(str::as_bytes)).map_err(|e| e.with_text(text))
    }

    /// Builds a name from its labels, leftmost first (root label implied).
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = &'a [u8]>) -> Result<Name, NameError> {
        let mut wire = Vec::with_capacity(64);
        for label in labels {
            push_label(&mut wire, label)?;
        }
        wire.push(0);
        if wire.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong(String::new()));
        }
        Ok(Name(wire.into()))
    }

    /// Takes canonical wire bytes as they are; the caller guarantees they
    /// are a valid lowercase uncompressed name (the query parser does).
    pub(crate) fn from_wire_unchecked(wire: &[u8]) -> Name {
        debug_assert!(is_canonical_wire(wire), "not a canonical name: {wire:?}");
        Name(wire.into())
    }

    /// The wire form, root label included.
    pub fn wire(&self) -> &[u8] {
        &self.0
    }

    /// The labels, leftmost first, root excluded.
    pub fn labels(&self) -> Labels<'_> {
        Labels { wire: &self.0 }
    }

    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    pub fn is_root(&self) -> bool {
        self.0.len() == 1
    }

    /// `label.self`.
    pub fn prepend(&self, label: &[u8]) -> Result<Name, NameError> {
        let mut wire = Vec::with_capacity(self.0.len() + label.len() + 1);
        push_label(&mut wire, label)?;
        wire.extend_from_slice(&self.0);
        if wire.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong(String::new()));
        }
        Ok(Name(wire.into()))
    }

    /// `a.b.self` from `["a", "b"]`.
    pub fn prepend_all(&self, labels: &[&[u8]]) -> Result<Name, NameError> {
        let mut name = self.clone();
        for label in labels.iter().rev() {
            name = name.prepend(label)?;
        }
        Ok(name)
    }

    /// The name without its leftmost label; `None` for the root.
    pub fn parent(&self) -> Option<Name> {
        if self.is_root() {
            return None;
        }
        let skip = 1 + self.0[0] as usize;
        Some(Name(self.0[skip..].into()))
    }

    /// Whether `self` is `other` or below it.
    pub fn is_subdomain_of(&self, other: &Name) -> bool {
        let (s, o) = (&self.0, &other.0);
        if o.len() > s.len() || !s.ends_with(o) {
            return false;
        }
        // The suffix must start on a label boundary of `self`.
        let start = s.len() - o.len();
        let mut pos = 0;
        while pos < start {
            pos += 1 + s[pos] as usize;
        }
        pos == start
    }

    /// The `in-addr.arpa.` or `ip6.arpa.` name of an address.
    pub fn reverse(ip: IpAddr) -> Name {
        let mut text = String::with_capacity(73);
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                text.push_str(&format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0]));
            }
            IpAddr::V6(v6) => {
                for byte in v6.octets().iter().rev() {
                    text.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
                }
                text.push_str("ip6.arpa");
            }
        }
        // Digits and the arpa labels: always valid.
        Name::parse(&text).unwrap_or_else(|_| Name::root())
    }

    /// The address a full-length reverse name stands for.
    pub fn reverse_ip(&self) -> Option<IpAddr> {
        let labels: Vec<&[u8]> = self.labels().collect();
        let n = labels.len();
        if n == 6 && labels[4] == b"in-addr" && labels[5] == b"arpa" {
            let mut octets = [0u8; 4];
            for (i, label) in labels[..4].iter().enumerate() {
                let text = std::str::from_utf8(label).ok()?;
                if text.len() > 1 && text.starts_with('0') {
                    return None;
                }
                octets[3 - i] = text.parse().ok()?;
            }
            return Some(IpAddr::V4(Ipv4Addr::from(octets)));
        }
        if n == 34 && labels[32] == b"ip6" && labels[33] == b"arpa" {
            let mut octets = [0u8; 16];
            for (i, label) in labels[..32].iter().enumerate() {
                let [c] = label else { return None };
                let nibble = (*c as char).to_digit(16)? as u8;
                let byte = 15 - i / 2;
                octets[byte] |= if i % 2 == 0 { nibble } else { nibble << 4 };
            }
            return Some(IpAddr::V6(Ipv6Addr::from(octets)));
        }
        None
    }

    /// Presentation form with the final dot.
    pub fn to_text(&self) -> String {
        self.to_string()
    }
}

impl NameError {
    fn with_text(self, text: &str) -> NameError {
        match self {
            NameError::EmptyLabel(_) => NameError::EmptyLabel(text.to_string()),
            NameError::LabelTooLong(_) => NameError::LabelTooLong(text.to_string()),
            NameError::TooLong(_) => NameError::TooLong(text.to_string()),
        }
    }
}

fn push_label(wire: &mut Vec<u8>, label: &[u8]) -> Result<(), NameError> {
    if label.is_empty() {
        return Err(NameError::EmptyLabel(String::new()));
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(NameError::LabelTooLong(String::new()));
    }
    wire.push(label.len() as u8);
    wire.extend(label.iter().map(u8::to_ascii_lowercase));
    Ok(())
}

/// Whether `wire` is a complete, lowercase, uncompressed name.
pub(crate) fn is_canonical_wire(wire: &[u8]) -> bool {
    let mut pos = 0;
    while let Some(&len) = wire.get(pos) {
        if len == 0 {
            return pos + 1 == wire.len() && wire.len() <= MAX_NAME_LEN;
        }
        if len as usize > MAX_LABEL_LEN || pos + 1 + len as usize > wire.len() {
            return false;
        }
        if wire[pos + 1..pos + 1 + len as usize].iter().any(u8::is_ascii_uppercase) {
            return false;
        }
        pos += 1 + len as usize;
    }
    false
}

/// Iterator over a name's labels.
pub struct Labels<'a> {
    wire: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let len = *self.wire.first()? as usize;
        if len == 0 {
            return None;
        }
        let label = self.wire.get(1..1 + len)?;
        self.wire = &self.wire[1 + len..];
        Some(label)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for label in self.labels() {
            for &b in label {
                match b {
                    b'.' | b'\\' => write!(f, "\\{}", b as char)?,
                    0x21..=0x7e => write!(f, "{}", b as char)?,
                    _ => write!(f, "\\{b:03}")?,
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// The label CoreDNS gives an endpoint without a hostname: its address
/// with `.` or `:` turned into `-` (`10-1-2-3`, `fd00--1`).
pub fn dashed_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

/// The address in a dashed label (`10-1-2-3`, `fd00--1`), as pod names
/// carry it.
pub fn parse_dashed_ip(label: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(label).ok()?;
    if let Ok(v4) = text.replace('-', ".").parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(v4));
    }
    text.replace('-', ":").parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_lowercased_with_or_without_the_final_dot() {
        let a = Name::parse("Web.Default.svc.cluster.local.").unwrap();
        let b = Name::parse("web.default.svc.cluster.local").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "web.default.svc.cluster.local.");
        assert_eq!(a.wire()[0], 3);
        assert_eq!(a.label_count(), 5);
        assert_eq!(Name::parse(".").unwrap(), Name::root());
    }

    #[test]
    fn invalid_names_cannot_be_held() {
        assert!(matches!(Name::parse("a..b"), Err(NameError::EmptyLabel(_))));
        assert!(matches!(Name::parse(&"x".repeat(64)), Err(NameError::LabelTooLong(_))));
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(matches!(Name::parse(&long), Err(NameError::TooLong(_))));
    }

    #[test]
    fn subdomains_respect_label_boundaries() {
        let zone = Name::parse("cluster.local").unwrap();
        assert!(Name::parse("a.svc.cluster.local").unwrap().is_subdomain_of(&zone));
        assert!(zone.is_subdomain_of(&zone));
        assert!(!Name::parse("xcluster.local").unwrap().is_subdomain_of(&zone));
        assert!(!Name::parse("local").unwrap().is_subdomain_of(&zone));
        assert_eq!(Name::parse("a.b.c").unwrap().parent().unwrap(), Name::parse("b.c").unwrap());
    }

    #[test]
    fn reverse_names_round_trip_for_both_families() {
        let v4: IpAddr = "10.96.0.1".parse().unwrap();
        let r = Name::reverse(v4);
        assert_eq!(r.to_string(), "1.0.96.10.in-addr.arpa.");
        assert_eq!(r.reverse_ip(), Some(v4));
        let v6: IpAddr = "fd00::1".parse().unwrap();
        let r = Name::reverse(v6);
        assert!(r.to_string().starts_with("1.0.0.0.0.0.0.0."));
        assert!(r.to_string().ends_with("0.0.d.f.ip6.arpa."));
        assert_eq!(r.reverse_ip(), Some(v6));
        assert_eq!(Name::parse("0.96.10.in-addr.arpa").unwrap().reverse_ip(), None);
    }

    #[test]
    fn dashed_ips_round_trip() {
        for ip in ["10.1.2.3", "fd00::1", "5678:abcd::2"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(parse_dashed_ip(dashed_ip(ip).as_bytes()), Some(ip));
        }
        assert_eq!(dashed_ip("fd00::1".parse().unwrap()), "fd00--1");
        assert_eq!(parse_dashed_ip(b"web"), None);
    }
}
