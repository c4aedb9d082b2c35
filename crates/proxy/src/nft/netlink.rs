//! Just enough of nf_tables' netlink protocol for map elements: adding and
//! deleting them in one batch (one kernel transaction), on a socket that
//! stays open.
//!
//! Two costs of `nft -f` are avoided this way. For a large load, nft
//! spends three quarters of the time parsing and evaluating text (and
//! touching 230 MB for 100,000 elements); a node's first sync therefore
//! creates the table with `nft -f` and fills its maps with one batch. For
//! a small change, nft's exit waits for an RCU grace period whenever
//! something was deleted (closing an nfnetlink socket flushes nf_tables'
//! destroy work), 10-20 ms on a busy node, longer than the change itself;
//! a sync that only changes elements (endpoints coming and going) is sent
//! here instead. Chains, rules and sets always go through `nft`.
//!
//! Keys and values are the ruleset's own bytes (`nft/elem.rs`), encoded as
//! nft does; element comments as libnftnl's userdata. A batch is written
//! into one buffer, sized up front, with no allocation per element.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send, setsockopt, socket,
    sockopt,
};

use super::elem::{self, Key, Value};
use super::table::Map;
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
const NFT_MSG_DELSETELEM: u16 = 14;
const NFPROTO_IPV4: u8 = 2;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_USERDATA: u16 = 6;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NF_DROP: i32 = 0;
const NFT_GOTO: i32 = -4;
/// libnftnl's element comment (`NFTNL_UDATA_SET_ELEM_COMMENT`).
const UDATA_COMMENT: u8 = 0;

/// Elements per message: the element list is one attribute, whose length
/// field has 16 bits.
const LIST_BUDGET: usize = 60_000;

/// About what an element takes in a batch (a slot: 48 bytes; a verdict
/// with its chain and comment: 80), to size the buffer.
pub const ELEMENT_BYTES: usize = 56;

/// What an element maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data<'a> {
    /// A plain set's element (or a key to delete).
    None,
    Value([u8; 8]),
    Goto(&'a str),
    Drop,
}

/// One element to encode, borrowed from the ruleset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    pub key: &'a [u8],
    pub data: Data<'a>,
    /// Written as [`elem::comment_chars`] makes it.
    pub comment: Option<&'a str>,
}

/// The element `key : value` of `map`, owned by `owner` (its comment in
/// a commented map).
pub fn element<'a>(map: Map, key: &'a Key, value: &'a Value, owner: &'a str) -> Element<'a> {
    let data = match value {
        Value::None => Data::None,
        Value::Target(ip, port) => Data::Value(Value::target_bytes(*ip, *port)),
        Value::Goto(chain) => Data::Goto(chain),
        Value::Drop => Data::Drop,
    };
    Element { key: key.bytes(map), data, comment: elem::commented(map).then_some(owner) }
}

/// A batch of element additions and deletions, encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    buf: Vec<u8>,
    seq: u32,
    /// Messages asking for an acknowledgement.
    acks: usize,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch::new()
    }
}

fn put_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_ne_bytes());
}

fn pad(buf: &mut Vec<u8>) {
    while buf.len() & 3 != 0 {
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

/// Sequence numbers, unique in the process, so that a batch recognizes
/// its own acknowledgements.
static NEXT_SEQ: AtomicU32 = AtomicU32::new(1);

impl Batch {
    pub fn new() -> Batch {
        Batch::with_capacity(512)
    }

    /// A batch whose buffer holds `bytes` before it grows.
    pub fn with_capacity(bytes: usize) -> Batch {
        let seq = NEXT_SEQ.fetch_add(1 << 20, Ordering::Relaxed);
        let mut b = Batch { buf: Vec::with_capacity(bytes), seq, acks: 0 };
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

    /// Adds `elems` to map or set `set` of `table`, in as many messages as
    /// it takes.
    pub fn add_elements<'a>(&mut self, table: &str, set: &str, elems: impl IntoIterator<Item = Element<'a>>) {
        self.elements(NFT_MSG_NEWSETELEM, NLM_F_CREATE, table, set, elems);
    }

    /// Deletes `elems` (their keys) from `set`.
    pub fn delete_elements<'a>(&mut self, table: &str, set: &str, elems: impl IntoIterator<Item = Element<'a>>) {
        self.elements(NFT_MSG_DELSETELEM, 0, table, set, elems);
    }

    fn elements<'a>(
        &mut self,
        msg: u16,
        flags: u16,
        table: &str,
        set: &str,
        elems: impl IntoIterator<Item = Element<'a>>,
    ) {
        let mut elems = elems.into_iter().peekable();
        while elems.peek().is_some() {
            let kind = (NFNL_SUBSYS_NFTABLES << 8) | msg;
            let at = self.header(kind, NLM_F_REQUEST | NLM_F_ACK | flags, NFPROTO_IPV4, 0);
            self.acks += 1;
            attr_str(&mut self.buf, NFTA_SET_ELEM_LIST_TABLE, table);
            attr_str(&mut self.buf, NFTA_SET_ELEM_LIST_SET, set);
            let list = attr_start(&mut self.buf, NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED);
            while let Some(e) = elems.next_if(|_| self.buf.len() - list < LIST_BUDGET) {
                let elem = attr_start(&mut self.buf, NFTA_LIST_ELEM | NLA_F_NESTED);
                let k = attr_start(&mut self.buf, NFTA_SET_ELEM_KEY | NLA_F_NESTED);
                attr_bytes(&mut self.buf, NFTA_DATA_VALUE, e.key);
                attr_end(&mut self.buf, k);
                if msg == NFT_MSG_NEWSETELEM {
                    self.data(&e);
                }
                attr_end(&mut self.buf, elem);
            }
            attr_end(&mut self.buf, list);
            self.finish_message(at);
        }
    }

    fn data(&mut self, e: &Element<'_>) {
        let b = &mut self.buf;
        match e.data {
            Data::None => {}
            Data::Value(v) => {
                let d = attr_start(b, NFTA_SET_ELEM_DATA | NLA_F_NESTED);
                attr_bytes(b, NFTA_DATA_VALUE, &v);
                attr_end(b, d);
            }
            verdict => {
                let d = attr_start(b, NFTA_SET_ELEM_DATA | NLA_F_NESTED);
                let v = attr_start(b, NFTA_DATA_VERDICT | NLA_F_NESTED);
                let code = if matches!(verdict, Data::Drop) { NF_DROP } else { NFT_GOTO };
                attr_bytes(b, NFTA_VERDICT_CODE, &code.to_be_bytes());
                if let Data::Goto(chain) = verdict {
                    attr_str(b, NFTA_VERDICT_CHAIN, chain);
                }
                attr_end(b, v);
                attr_end(b, d);
            }
        }
        if let Some(c) = e.comment {
            // One TLV: type, length (with the NUL), text (at most 128
            // bytes, so the length fits its byte).
            let at = attr_start(b, NFTA_SET_ELEM_USERDATA);
            b.extend_from_slice(&[UDATA_COMMENT, 0]);
            let text = b.len();
            let mut utf8 = [0u8; 4];
            for ch in elem::comment_chars(c) {
                b.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
            }
            b[text - 1] = (b.len() - text + 1) as u8;
            b.push(0);
            attr_end(b, at);
        }
    }

    /// The batch, ended, its number of acknowledgements and the range of
    /// its sequence numbers.
    fn end(mut self) -> (Vec<u8>, usize, std::ops::Range<u32>) {
        let first = u32::from_ne_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]]);
        self.control(NFNL_MSG_BATCH_END);
        (self.buf, self.acks, first..self.seq)
    }

    pub fn is_empty(&self) -> bool {
        self.acks == 0
    }

    /// Bytes encoded so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }
}

fn io_err(what: &str, e: impl std::fmt::Display) -> ProxyError {
    ProxyError::Other(format!("nf_tables netlink: {what}: {e}"))
}

/// An nfnetlink socket in the node's namespace, kept open: closing one
/// waits for nf_tables' pending destroy work (an RCU grace period).
pub struct Socket {
    fd: Arc<OwnedFd>,
}

impl Socket {
    pub async fn open(env: &NodeEnv) -> Result<Socket, ProxyError> {
        let fd: OwnedFd = env
            .sockets
            .run(|| {
                socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkNetFilter)
            })
            .await
            .map_err(|e| io_err("socket", e))?
            .map_err(|e| io_err("socket", e))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(|e| io_err("bind", e))?;
        let _ = setsockopt(&fd, sockopt::RcvBufForce, &(1 << 20));
        setsockopt(&fd, sockopt::ReceiveTimeout, &nix::sys::time::TimeVal::new(30, 0))
            .map_err(|e| io_err("SO_RCVTIMEO", e))?;
        Ok(Socket { fd: Arc::new(fd) })
    }

    /// Sends the batch and waits for every acknowledgement; the kernel
    /// applies all of it or nothing.
    pub async fn apply(&self, batch: Batch) -> Result<(), ProxyError> {
        let (buf, acks, seqs) = batch.end();
        let fd = self.fd.clone();
        if buf.len() < 64 * 1024 {
            // Small (the usual delta): not worth a thread hop.
            return exchange(&fd, &buf, acks, &seqs);
        }
        tokio::task::spawn_blocking(move || exchange(&fd, &buf, acks, &seqs))
            .await
            .map_err(|e| io_err("exchange", e))?
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Closing can block for an RCU grace period: not on the caller's
        // (maybe async) thread.
        let fd = self.fd.clone();
        let _ = std::thread::Builder::new().name("nft-netlink-close".into()).spawn(move || drop(fd));
    }
}

fn exchange(fd: &OwnedFd, buf: &[u8], acks: usize, seqs: &std::ops::Range<u32>) -> Result<(), ProxyError> {
    // The whole batch is one datagram: the kernel runs it as one
    // transaction only if it arrives in one piece.
    let size = buf.len() + 4096;
    if setsockopt(fd, sockopt::SndBuf, &size).is_err() || getsockopt_sndbuf(fd) < buf.len() {
        setsockopt(fd, sockopt::SndBufForce, &size).map_err(|e| io_err("SO_SNDBUFFORCE", e))?;
    }
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
            let seq = u32::from_ne_bytes([rx[at + 8], rx[at + 9], rx[at + 10], rx[at + 11]]);
            if len < 16 || at + len > n {
                break;
            }
            if kind == NLMSG_ERROR && len >= 20 && seqs.contains(&seq) {
                let code = i32::from_ne_bytes([rx[at + 16], rx[at + 17], rx[at + 18], rx[at + 19]]);
                if code != 0 {
                    return Err(io_err("batch", std::io::Error::from_raw_os_error(-code)));
                }
                pending = pending.saturating_sub(1);
            }
            at += (len + 3) & !3;
        }
    }
    Ok(())
}

fn getsockopt_sndbuf(fd: &OwnedFd) -> usize {
    nix::sys::socket::getsockopt(fd, sockopt::SndBuf).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;
    use crate::nft::service::Lb;

    fn ip(s: &str) -> std::net::Ipv4Addr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// The attributes of one element in a batch's buffer.
    fn one_element(e: Element<'_>) -> Vec<u8> {
        let mut b = Batch { buf: Vec::new(), seq: 0, acks: 0 };
        let at = attr_start(&mut b.buf, NFTA_LIST_ELEM | NLA_F_NESTED);
        b.data(&e);
        attr_end(&mut b.buf, at);
        b.buf[4..].to_vec()
    }

    #[test]
    fn values_verdicts_and_comments_are_encoded_as_nft_does() {
        let slots = Map::Slots(Lb::Address, Protocol::Udp);
        let key = Key::address_slot(ip("10.96.0.10"), 53, 1);
        let value = Value::Target(ip("10.244.1.5"), 8080);
        let e = element(slots, &key, &value, "kube-system/dns:dns");
        assert_eq!(e.key, [vec![10, 96, 0, 10, 0, 53, 0, 0], 1u32.to_ne_bytes().to_vec()].concat());
        assert_eq!(e.data, Data::Value([10, 244, 1, 5, 0x1f, 0x90, 0, 0]));
        assert_eq!(e.comment, None, "slots carry no comment");
        let bytes = one_element(e);
        // DATA { VALUE (8 bytes) }.
        assert_eq!(bytes[..8], [16, 0, 2, 0x80, 12, 0, 1, 0]);
        assert_eq!(bytes[8..], [10, 244, 1, 5, 0x1f, 0x90, 0, 0]);

        let key = Key::address(ip("10.96.0.10"), Protocol::Tcp, 80);
        let goto = Value::Goto("lb-tcp-3".into());
        let e = element(Map::ServiceIps, &key, &goto, "default/\"web\"");
        assert_eq!(e.data, Data::Goto("lb-tcp-3"));
        let bytes = one_element(e);
        let udata =
            [UDATA_COMMENT, 14, b'd', b'e', b'f', b'a', b'u', b'l', b't', b'/', b'_', b'w', b'e', b'b', b'_', 0];
        let tail = &bytes[bytes.len() - 20..];
        assert_eq!(tail[..4], [20, 0, NFTA_SET_ELEM_USERDATA as u8, 0]);
        assert_eq!(tail[4..], udata);

        let drop = element(Map::NoEndpointServices, &key, &Value::Drop, "x");
        assert_eq!(drop.data, Data::Drop);
        let key = Key::ip(ip("10.96.0.10"));
        let set = element(Map::ClusterIps, &key, &Value::None, "x");
        assert_eq!((set.key, set.data, set.comment), (&[10u8, 96, 0, 10][..], Data::None, None));
    }

    #[test]
    fn a_batch_is_begin_messages_end_with_attribute_lengths_that_fit() {
        let slots = Map::Slots(Lb::Address, Protocol::Udp);
        let key = Key::address_slot(ip("10.96.0.10"), 53, 1);
        let value = Value::Target(ip("10.244.1.5"), 53);
        let e = element(slots, &key, &value, "kube-system/dns:dns");
        let mut b = Batch::new();
        b.add_elements("svcnet", "endpoints-udp", std::iter::repeat_n(e, 5000));
        b.delete_elements("svcnet", "endpoints-udp", std::iter::repeat_n(e, 10));
        let (buf, acks, _) = b.end();
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
        assert_eq!(kinds[kinds.len() - 2], (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELSETELEM);
    }
}
