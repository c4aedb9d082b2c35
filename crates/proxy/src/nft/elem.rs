//! Map and set elements as the kernel holds them: a key is the register
//! bytes nf_tables compares (each field of a concatenation in its own
//! 4-byte register, addresses and ports in network order, a `numgen` slot
//! in host order), a value a slot's target or a verdict.
//!
//! The ruleset keeps its 100,000-odd elements this way, once, at 14 bytes
//! of key and a small value each; the netlink batch copies the bytes as
//! they are, and nft text is written from them only when a transaction
//! goes through `nft -f` (a restart, a fallback, a change of chains). An
//! element's comment is its owner's id, so it is not stored either.

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::service::Lb;
use super::table::Map;
use crate::model::Protocol;

/// One 4-byte register of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Ip,
    Proto,
    Port,
    Slot,
}

/// The fields of a map's keys.
fn layout(map: Map) -> &'static [Field] {
    use Field::*;
    match map {
        Map::ServiceIps | Map::NoEndpointServices | Map::FirewallIps => &[Ip, Proto, Port],
        Map::ServiceNodeports | Map::NoEndpointNodeports => &[Proto, Port],
        Map::ClusterIps => &[Ip],
        Map::Hairpin => &[Ip, Ip],
        Map::Slots(Lb::Address | Lb::InternalAddress, _) => &[Ip, Port, Slot],
        Map::Slots(Lb::NodePort | Lb::InternalNodePort, _) => &[Port, Slot],
    }
}

fn proto_number(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    }
}

fn port_register(port: u16) -> [u8; 4] {
    let [a, b] = port.to_be_bytes();
    [a, b, 0, 0]
}

/// An element's key: up to three registers, unused bytes zero; how many
/// count follows from the map ([`Key::bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key([u8; 12]);

impl Key {
    fn of(registers: &[[u8; 4]]) -> Key {
        let mut k = [0u8; 12];
        for (i, r) in registers.iter().enumerate() {
            k[4 * i..4 * i + 4].copy_from_slice(r);
        }
        Key(k)
    }

    /// `ip . proto . port` (`service-ips`, `no-endpoint-services`).
    pub fn address(ip: Ipv4Addr, p: Protocol, port: u16) -> Key {
        Key::of(&[ip.octets(), [proto_number(p), 0, 0, 0], port_register(port)])
    }

    /// `proto . port` (`service-nodeports`, `no-endpoint-nodeports`).
    pub fn node_port(p: Protocol, port: u16) -> Key {
        Key::of(&[[proto_number(p), 0, 0, 0], port_register(port)])
    }

    /// `ip` (`cluster-ips`).
    pub fn ip(ip: Ipv4Addr) -> Key {
        Key::of(&[ip.octets()])
    }

    /// `ip . ip` (`hairpin`).
    pub fn pair(a: Ipv4Addr, b: Ipv4Addr) -> Key {
        Key::of(&[a.octets(), b.octets()])
    }

    /// `ip . port . slot` (the address slot maps).
    pub fn address_slot(ip: Ipv4Addr, port: u16, slot: u32) -> Key {
        Key::of(&[ip.octets(), port_register(port), slot.to_ne_bytes()])
    }

    /// `port . slot` (the node port slot maps).
    pub fn port_slot(port: u16, slot: u32) -> Key {
        Key::of(&[port_register(port), slot.to_ne_bytes()])
    }

    /// The key's registers in `map`, as the kernel takes them.
    pub fn bytes(&self, map: Map) -> &[u8] {
        &self.0[..4 * layout(map).len()]
    }

    /// The key as nft writes it (`10.96.0.10 . tcp . 80`).
    pub fn write_text(&self, map: Map, out: &mut String) {
        for (i, (field, r)) in layout(map).iter().zip(self.0.chunks_exact(4)).enumerate() {
            if i > 0 {
                out.push_str(" . ");
            }
            match field {
                Field::Ip => push_ip(out, [r[0], r[1], r[2], r[3]]),
                Field::Proto => match r[0] {
                    6 => out.push_str("tcp"),
                    17 => out.push_str("udp"),
                    132 => out.push_str("sctp"),
                    n => push_u32(out, u32::from(n)),
                },
                Field::Port => push_u32(out, u32::from(u16::from_be_bytes([r[0], r[1]]))),
                Field::Slot => push_u32(out, u32::from_ne_bytes([r[0], r[1], r[2], r[3]])),
            }
        }
    }

    pub fn text(&self, map: Map) -> String {
        let mut s = String::with_capacity(24);
        self.write_text(map, &mut s);
        s
    }
}

/// What an element maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An element of a plain set.
    None,
    /// A slot's endpoint (`ip . port`).
    Target(Ipv4Addr, u16),
    /// `goto <chain>`; the name is shared with the chain's.
    Goto(Arc<str>),
    Drop,
}

impl Value {
    /// The value as nft writes it after ` : `; None in a plain set.
    pub fn write_text(&self, out: &mut String) {
        match self {
            Value::None => {}
            Value::Target(ip, port) => {
                push_ip(out, ip.octets());
                out.push_str(" . ");
                push_u32(out, u32::from(*port));
            }
            Value::Goto(chain) => {
                out.push_str("goto ");
                out.push_str(chain);
            }
            Value::Drop => out.push_str("drop"),
        }
    }

    /// A slot's target as the kernel takes it (two registers).
    pub fn target_bytes(ip: Ipv4Addr, port: u16) -> [u8; 8] {
        let [a, b, c, d] = ip.octets();
        let [p, q] = port.to_be_bytes();
        [a, b, c, d, p, q, 0, 0]
    }
}

/// Whether `map`'s elements carry a comment (their owner's id): the
/// verdict maps do, so that `nft list` names the Service.
pub fn commented(map: Map) -> bool {
    matches!(
        map,
        Map::ServiceIps | Map::ServiceNodeports | Map::NoEndpointServices | Map::NoEndpointNodeports | Map::FirewallIps
    )
}

/// Writes one element as nft text: `key [comment "…"] [: value]`.
pub fn write_elem(out: &mut String, map: Map, key: &Key, value: &Value, owner: &str) {
    key.write_text(map, out);
    if commented(map) {
        out.push_str(" comment \"");
        push_comment(out, owner);
        out.push('"');
    }
    if *value != Value::None {
        out.push_str(" : ");
        value.write_text(out);
    }
}

/// Longest comment nft takes.
pub const COMMENT_MAX: usize = 128;

/// `s` as text safe inside an nft comment: quotes, backslashes and
/// control characters as `_`, at most [`COMMENT_MAX`] bytes (cut at a
/// character boundary).
pub fn comment_chars(s: &str) -> impl Iterator<Item = char> + '_ {
    let mut len = 0;
    s.chars().map(|c| if c == '"' || c == '\\' || c.is_control() { '_' } else { c }).take_while(move |c| {
        len += c.len_utf8();
        len <= COMMENT_MAX
    })
}

/// Pushes `s` as [`comment_chars`] makes it.
pub fn push_comment(out: &mut String, s: &str) {
    out.extend(comment_chars(s));
}

fn push_u32(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in &digits[i..] {
        out.push(char::from(*d));
    }
}

fn push_ip(out: &mut String, octets: [u8; 4]) {
    for (i, o) in octets.into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_u32(out, u32::from(o));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn keys_are_laid_out_in_registers_and_read_back_as_nft_text() {
        let slots = Map::Slots(Lb::Address, Protocol::Udp);
        let k = Key::address_slot(ip("10.96.0.10"), 53, 1);
        assert_eq!(k.bytes(slots), [vec![10, 96, 0, 10, 0, 53, 0, 0], 1u32.to_ne_bytes().to_vec()].concat());
        assert_eq!(k.text(slots), "10.96.0.10 . 53 . 1");
        let np = Map::Slots(Lb::NodePort, Protocol::Tcp);
        let k = Key::port_slot(30080, 0);
        assert_eq!(k.bytes(np), [vec![0x75, 0x80, 0, 0], 0u32.to_ne_bytes().to_vec()].concat());
        assert_eq!(k.text(np), "30080 . 0");
        let k = Key::address(ip("10.96.0.10"), Protocol::Udp, 53);
        assert_eq!(k.bytes(Map::ServiceIps), [10, 96, 0, 10, 17, 0, 0, 0, 0, 53, 0, 0]);
        assert_eq!(k.text(Map::ServiceIps), "10.96.0.10 . udp . 53");
        let k = Key::pair(ip("10.244.1.2"), ip("10.244.1.2"));
        assert_eq!(k.bytes(Map::Hairpin), [10, 244, 1, 2, 10, 244, 1, 2]);
        assert_eq!(k.text(Map::Hairpin), "10.244.1.2 . 10.244.1.2");
        assert_eq!(Key::node_port(Protocol::Sctp, 30000).text(Map::ServiceNodeports), "sctp . 30000");
        assert_eq!(Key::ip(ip("255.0.0.1")).text(Map::ClusterIps), "255.0.0.1");
        assert_eq!(Value::target_bytes(ip("10.244.1.5"), 8080), [10, 244, 1, 5, 0x1f, 0x90, 0, 0]);
    }

    #[test]
    fn elements_are_written_as_nft_does_with_the_owner_as_comment() {
        let mut out = String::new();
        let key = Key::address(ip("10.96.0.10"), Protocol::Tcp, 80);
        write_elem(&mut out, Map::ServiceIps, &key, &Value::Goto("lb-tcp-3".into()), "default/web");
        assert_eq!(out, "10.96.0.10 . tcp . 80 comment \"default/web\" : goto lb-tcp-3");
        out.clear();
        write_elem(&mut out, Map::ClusterIps, &Key::ip(ip("10.96.0.10")), &Value::None, "default/web");
        assert_eq!(out, "10.96.0.10");
        out.clear();
        let slots = Map::Slots(Lb::Address, Protocol::Tcp);
        write_elem(
            &mut out,
            slots,
            &Key::address_slot(ip("10.96.0.10"), 80, 2),
            &Value::Target(ip("10.244.2.2"), 8080),
            "x",
        );
        assert_eq!(out, "10.96.0.10 . 80 . 2 : 10.244.2.2 . 8080");
    }

    #[test]
    fn comments_lose_quotes_and_control_characters_and_stop_at_128_bytes() {
        let mut out = String::new();
        push_comment(&mut out, "a\"b\\c\nd");
        assert_eq!(out, "a_b_c_d");
        out.clear();
        let long = "é".repeat(100);
        push_comment(&mut out, &long);
        assert_eq!(out.len(), 128);
        out.clear();
        push_comment(&mut out, &format!("{}é", "x".repeat(127)));
        assert_eq!(out, "x".repeat(127));
    }
}
