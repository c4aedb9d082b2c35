//! Just enough of nf_tables' netlink protocol for one job: adding many
//! elements to existing maps in one batch (one kernel transaction).
//!
//! `nft -f` spends three quarters of a 100,000-element load parsing and
//! evaluating text (and touching 230 MB of memory); the kernel's share is
//! the rest. A node's first sync sends its slot maps' elements this way,
//! right after the `nft -f` transaction that created the table; every
//! other change goes through `nft`.
//!
//! Keys and values are encoded as nft does: each field of a concatenation
//! in its own 4-byte register, addresses and ports in network order, a
//! `numgen` slot in host order.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send, setsockopt, socket,
    sockopt,
};

use crate::{NodeEnv, ProxyError};

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFPROTO_IPV4: u8 = 2;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

/// Elements per message: the element list is one attribute, whose length
/// field has 16 bits.
const LIST_BUDGET: usize = 60_000;

/// A batch of element additions, encoded.
pub struct Batch {
    buf: Vec<u8>,
    seq: u32,
    /// Messages asking for an acknowledgement.
    acks: usize,
}

fn put_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_ne_bytes());
}

fn pad(buf: &mut Vec<u8>) {
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

/// Starts an attribute; returns where its length goes.
fn attr_start(buf: &mut Vec<u8>, kind: u16) -> usize {
    let at = buf.len();
    put_u16(buf, 0);
    put_u16(buf, kind);
    at
}

fn attr_end(buf: &mut Vec<u8>, at: usize) {
    let len = (buf.len() - at) as u16;
    buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    pad(buf);
}

fn attr_bytes(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let at = attr_start(buf, kind);
    buf.extend_from_slice(data);
    attr_end(buf, at);
}

fn attr_str(buf: &mut Vec<u8>, kind: u16, s: &str) {
    let at = attr_start(buf, kind);
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
    attr_end(buf, at);
}

impl Batch {
    pub fn new() -> Batch {
        let mut b = Batch { buf: Vec::new(), seq: 1, acks: 0 };
        b.control(NFNL_MSG_BATCH_BEGIN);
        b
    }

    /// Starts a message; returns where its length goes.
    fn header(&mut self, kind: u16, flags: u16, family: u8, res_id: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        put_u16(&mut self.buf, kind);
        put_u16(&mut self.buf, flags);
        self.buf.extend_from_slice(&self.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.seq += 1;
        self.buf.extend_from_slice(&[family, 0]);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        at
    }

    fn finish_message(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u32;
        self.buf[at..at + 4].copy_from_slice(&len.to_ne_bytes());
    }

    fn control(&mut self, kind: u16) {
        let at = self.header(kind, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
        self.finish_message(at);
    }

    /// Adds `elems` (key, value) to map `set` of `table`, in as many
    /// messages as it takes.
    pub fn add_elements<'a>(&mut self, table: &str, set: &str, elems: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) {
        let mut elems = elems.into_iter().peekable();
        while elems.peek().is_some() {
            let kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM;
            let at = self.header(kind, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, NFPROTO_IPV4, 0);
            self.acks += 1;
            attr_str(&mut self.buf, NFTA_SET_ELEM_LIST_TABLE, table);
            attr_str(&mut self.buf, NFTA_SET_ELEM_LIST_SET, set);
            let list = attr_start(&mut self.buf, NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED);
            while let Some((key, value)) = elems.next_if(|_| self.buf.len() - list < LIST_BUDGET) {
                let elem = attr_start(&mut self.buf, NFTA_LIST_ELEM | NLA_F_NESTED);
                let k = attr_start(&mut self.buf, NFTA_SET_ELEM_KEY | NLA_F_NESTED);
                attr_bytes(&mut self.buf, NFTA_DATA_VALUE, key);
                attr_end(&mut self.buf, k);
                let d = attr_start(&mut self.buf, NFTA_SET_ELEM_DATA | NLA_F_NESTED);
                attr_bytes(&mut self.buf, NFTA_DATA_VALUE, value);
                attr_end(&mut self.buf, d);
                attr_end(&mut self.buf, elem);
            }
            attr_end(&mut self.buf, list);
            self.finish_message(at);
        }
    }

    /// The batch, ended.
    fn end(mut self) -> (Vec<u8>, usize) {
        self.control(NFNL_MSG_BATCH_END);
        (self.buf, self.acks)
    }

    pub fn is_empty(&self) -> bool {
        self.acks == 0
    }
}

/// Encodes one field of a slot map key or value: an address, or a port,
/// or (the last field of a key) a slot number.
fn field(out: &mut Vec<u8>, text: &str, slot: bool) -> Option<()> {
    if let Ok(ip) = text.parse::<Ipv4Addr>() {
        out.extend_from_slice(&ip.octets());
    } else if slot {
        out.extend_from_slice(&text.parse::<u32>().ok()?.to_ne_bytes());
    } else {
        out.extend_from_slice(&text.parse::<u16>().ok()?.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
    }
    Some(())
}

/// `10.96.0.10 . 80 . 2` (or `30080 . 2`) as the kernel holds it.
pub fn slot_key(text: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = text.split(" . ").collect();
    let mut out = Vec::with_capacity(12);
    for (i, p) in parts.iter().enumerate() {
        field(&mut out, p, i + 1 == parts.len())?;
    }
    Some(out)
}

/// `10.244.1.5 . 8080` as the kernel holds it.
pub fn slot_value(text: &str) -> Option<Vec<u8>> {
    let (ip, port) = text.split_once(" . ")?;
    let mut out = Vec::with_capacity(8);
    field(&mut out, ip, false)?;
    field(&mut out, port, false)?;
    Some(out)
}

fn io_err(what: &str, e: impl std::fmt::Display) -> ProxyError {
    ProxyError::Other(format!("nf_tables netlink: {what}: {e}"))
}

/// Sends the batch from a socket in the node's namespace and waits for
/// every acknowledgement; the kernel applies all of it or nothing.
pub async fn apply(env: &NodeEnv, batch: Batch) -> Result<(), ProxyError> {
    let (buf, acks) = batch.end();
    let fd: OwnedFd = env
        .sockets
        .run(|| {
            socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkNetFilter)
        })
        .await
        .map_err(|e| io_err("socket", e))?
        .map_err(|e| io_err("socket", e))?;
    tokio::task::spawn_blocking(move || exchange(&fd, &buf, acks))
        .await
        .map_err(|e| io_err("exchange", e))?
}

fn exchange(fd: &OwnedFd, buf: &[u8], acks: usize) -> Result<(), ProxyError> {
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(|e| io_err("bind", e))?;
    // The whole batch is one datagram: the kernel runs it as one
    // transaction only if it arrives in one piece.
    let size = buf.len() + 4096;
    setsockopt(fd, sockopt::SndBufForce, &size).or_else(|_| setsockopt(fd, sockopt::SndBuf, &size)).map_err(|e| io_err("SO_SNDBUF", e))?;
    let _ = setsockopt(fd, sockopt::RcvBufForce, &(1 << 20));
    setsockopt(fd, sockopt::ReceiveTimeout, &nix::sys::time::TimeVal::new(30, 0)).map_err(|e| io_err("SO_RCVTIMEO", e))?;
    let sent = send(fd.as_raw_fd(), buf, MsgFlags::empty()).map_err(|e| io_err("send", e))?;
    if sent != buf.len() {
        return Err(io_err("send", format!("{sent} of {} bytes", buf.len())));
    }
    let mut pending = acks;
    let mut rx = vec![0u8; 1 << 16];
    let started = std::time::Instant::now();
    while pending > 0 {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(io_err("recv", "no answer"));
        }
        let n = recv(fd.as_raw_fd(), &mut rx, MsgFlags::empty()).map_err(|e| io_err("recv", e))?;
        let mut at = 0;
        while at + 16 <= n {
            let len = u32::from_ne_bytes([rx[at], rx[at + 1], rx[at + 2], rx[at + 3]]) as usize;
            let kind = u16::from_ne_bytes([rx[at + 4], rx[at + 5]]);
            if len < 16 || at + len > n {
                break;
            }
            if kind == NLMSG_ERROR && len >= 20 {
                let code = i32::from_ne_bytes([rx[at + 16], rx[at + 17], rx[at + 18], rx[at + 19]]);
                if code != 0 {
                    return Err(io_err("adding elements", std::io::Error::from_raw_os_error(-code)));
                }
                pending = pending.saturating_sub(1);
            }
            at += (len + 3) & !3;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_laid_out_in_registers() {
        assert_eq!(
            slot_key("10.96.0.10 . 53 . 1"),
            Some([vec![10, 96, 0, 10, 0, 53, 0, 0], 1u32.to_ne_bytes().to_vec()].concat())
        );
        assert_eq!(slot_key("30080 . 0"), Some([vec![0x75, 0x80, 0, 0], 0u32.to_ne_bytes().to_vec()].concat()));
        assert_eq!(slot_value("10.244.1.5 . 8080"), Some(vec![10, 244, 1, 5, 0x1f, 0x90, 0, 0]));
        assert_eq!(slot_value("nonsense"), None);
    }

    #[test]
    fn a_batch_is_begin_messages_end_with_attribute_lengths_that_fit() {
        let key = slot_key("10.96.0.10 . 53 . 1").unwrap_or_default();
        let value = slot_value("10.244.1.5 . 53").unwrap_or_default();
        let mut b = Batch::new();
        b.add_elements("svcnet", "endpoints-udp", (0..5000).map(|_| (key.as_slice(), value.as_slice())));
        let (buf, acks) = b.end();
        assert!(acks >= 4, "5000 elements take several messages: {acks}");
        let mut at = 0;
        let mut kinds = Vec::new();
        while at < buf.len() {
            let len = u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
            kinds.push(u16::from_ne_bytes([buf[at + 4], buf[at + 5]]));
            assert!(len < 65_536);
            at += len;
        }
        assert_eq!(at, buf.len());
        assert_eq!(kinds.first(), Some(&NFNL_MSG_BATCH_BEGIN));
        assert_eq!(kinds.last(), Some(&NFNL_MSG_BATCH_END));
        assert_eq!(kinds.len(), acks + 2);
    }
}
