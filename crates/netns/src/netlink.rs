//! Just enough rtnetlink (`NETLINK_ROUTE`) to wire a pod: a veth pair with
//! its peer in another namespace, bridge ports, addresses and a default
//! route, each request acknowledged before the next.
//!
//! A netlink socket talks to the namespace it was created in, whichever
//! thread uses it afterwards, so [`Rtnl::open`] is called on a thread that
//! is in the namespace to configure (see `namespace.rs`). Messages are laid
//! out as iproute2 lays out the matching `ip` commands, so the result is the
//! same as `ip link add … type veth peer name eth0 netns POD`, `ip link set
//! … master cni0 up`, `ip link set … type bridge_slave hairpin on`, `ip addr
//! add`, `ip route add default via`.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send, setsockopt, socket,
    sockopt,
};

use crate::ip::NetError;

// <linux/netlink.h>
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
// <linux/rtnetlink.h>
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
const RTA_GATEWAY: u16 = 5;
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
// <linux/if_link.h>, <linux/if_addr.h>, <linux/veth.h>
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_EXT_MASK: u16 = 29;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_INFO_SLAVE_KIND: u16 = 4;
const IFLA_INFO_SLAVE_DATA: u16 = 5;
const IFLA_BRPORT_MODE: u16 = 4;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFF_UP: u32 = 0x1;
const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
/// `struct ifinfomsg`: family, pad, type, index, flags, change.
const IFINFOMSG_LEN: usize = 16;

/// One request being encoded: a `nlmsghdr`, the family header, attributes.
pub(crate) struct Message {
    buf: Vec<u8>,
    /// Where the lengths of the open nested attributes go.
    nests: Vec<usize>,
}

fn pad(buf: &mut Vec<u8>) {
    while buf.len() & 3 != 0 {
        buf.push(0);
    }
}

impl Message {
    /// A request of `kind`, acknowledged (`NLM_F_ACK`) whatever its outcome.
    fn new(kind: u16, flags: u16) -> Message {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // sequence, set when sent
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        Message { buf, nests: Vec::new() }
    }

    /// Appends a `struct ifinfomsg`.
    fn ifinfo(mut self, index: i32, flags: u32, change: u32) -> Message {
        put_ifinfo(&mut self.buf, index, flags, change);
        self
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Message {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        pad(&mut self.buf);
        self
    }

    fn attr_str(&mut self, kind: u16, s: &str) -> &mut Message {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.attr(kind, &data)
    }

    fn attr_u32(&mut self, kind: u16, v: u32) -> &mut Message {
        self.attr(kind, &v.to_ne_bytes())
    }

    /// Opens a nested attribute, closed by [`Message::end_nest`]. No
    /// `NLA_F_NESTED`, as iproute2 sends them.
    fn nest(&mut self, kind: u16) -> &mut Message {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self
    }

    fn end_nest(&mut self) -> &mut Message {
        if let Some(at) = self.nests.pop() {
            let len = (self.buf.len() - at) as u16;
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// Raw bytes inside the current nest (the peer's `ifinfomsg`).
    fn raw(&mut self, data: &[u8]) -> &mut Message {
        self.buf.extend_from_slice(data);
        pad(&mut self.buf);
        self
    }

    /// The encoded message with sequence number `seq`.
    fn finish(mut self, seq: u32) -> Vec<u8> {
        debug_assert!(self.nests.is_empty(), "unclosed nested attribute");
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

fn put_ifinfo(buf: &mut Vec<u8>, index: i32, flags: u32, change: u32) {
    buf.extend_from_slice(&[AF_UNSPEC, 0]);
    buf.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
    buf.extend_from_slice(&index.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&change.to_ne_bytes());
}

/// `ip link add NAME type veth peer name PEER netns <peer_netns>`.
pub(crate) fn new_veth(name: &str, peer: &str, peer_netns: BorrowedFd<'_>) -> Message {
    let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL).ifinfo(0, 0, 0);
    let mut peer_info = Vec::with_capacity(IFINFOMSG_LEN);
    put_ifinfo(&mut peer_info, 0, 0, 0);
    m.attr_str(IFLA_IFNAME, name)
        .nest(IFLA_LINKINFO)
        .attr_str(IFLA_INFO_KIND, "veth")
        .nest(IFLA_INFO_DATA)
        .nest(VETH_INFO_PEER)
        .raw(&peer_info)
        .attr_str(IFLA_IFNAME, peer)
        .attr_u32(IFLA_NET_NS_FD, peer_netns.as_raw_fd() as u32)
        .end_nest()
        .end_nest()
        .end_nest();
    m
}

/// `ip link set NAME [master <index>] up`.
pub(crate) fn link_up(name: &str, master: Option<u32>) -> Message {
    let mut m = Message::new(RTM_NEWLINK, 0).ifinfo(0, IFF_UP, IFF_UP);
    m.attr_str(IFLA_IFNAME, name);
    if let Some(master) = master {
        m.attr_u32(IFLA_MASTER, master);
    }
    m
}

/// `ip link set NAME type bridge_slave hairpin on`: a frame may leave the
/// bridge port it came in by.
pub(crate) fn hairpin_on(name: &str) -> Message {
    let mut m = Message::new(RTM_NEWLINK, 0).ifinfo(0, 0, 0);
    m.attr_str(IFLA_IFNAME, name)
        .nest(IFLA_LINKINFO)
        .attr_str(IFLA_INFO_SLAVE_KIND, "bridge")
        .nest(IFLA_INFO_SLAVE_DATA)
        .attr(IFLA_BRPORT_MODE, &[1])
        .end_nest()
        .end_nest();
    m
}

/// `ip link delete NAME`.
pub(crate) fn del_link(name: &str) -> Message {
    let mut m = Message::new(RTM_DELLINK, 0).ifinfo(0, 0, 0);
    m.attr_str(IFLA_IFNAME, name);
    m
}

/// The `RTM_NEWLINK` answer to this names the link's index.
pub(crate) fn get_link(name: &str) -> Message {
    let mut m = Message::new(RTM_GETLINK, 0).ifinfo(0, 0, 0);
    m.attr_str(IFLA_IFNAME, name).attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    m
}

/// `ip addr add ADDR/LEN dev <index>`: global scope, no broadcast.
pub(crate) fn new_addr(index: u32, addr: Ipv4Addr, prefix_len: u8) -> Message {
    let mut m = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    // struct ifaddrmsg: family, prefixlen, flags, scope, index.
    m.buf.extend_from_slice(&[AF_INET, prefix_len, 0, RT_SCOPE_UNIVERSE]);
    m.buf.extend_from_slice(&index.to_ne_bytes());
    m.attr(IFA_LOCAL, &addr.octets()).attr(IFA_ADDRESS, &addr.octets());
    m
}

/// `ip route add default via GATEWAY`: main table, protocol boot.
pub(crate) fn default_route(gateway: Ipv4Addr) -> Message {
    let mut m = Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope,
    // type, flags.
    m.buf.extend_from_slice(&[AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST]);
    m.buf.extend_from_slice(&0u32.to_ne_bytes());
    m.attr(RTA_GATEWAY, &gateway.octets());
    m
}

/// A `NETLINK_ROUTE` socket in the namespace of the thread that opened it.
pub(crate) struct Rtnl {
    fd: OwnedFd,
    seq: u32,
    rx: Vec<u8>,
    /// Which namespace this talks to, for errors.
    netns: String,
}

fn failed(op: String, source: io::Error) -> NetError {
    NetError::Netlink { op, source }
}

fn errno(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl Rtnl {
    /// Opens the socket in the calling thread's network namespace, which
    /// errors call `netns`.
    pub fn open(netns: &str) -> Result<Rtnl, NetError> {
        let fail = |step: &str, e| failed(format!("{step} (namespace {netns})"), errno(e));
        let fd = socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkRoute)
            .map_err(|e| fail("socket", e))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(|e| fail("bind", e))?;
        // A request the kernel never answers must not hang a pod forever.
        setsockopt(&fd, sockopt::ReceiveTimeout, &nix::sys::time::TimeVal::new(10, 0))
            .map_err(|e| fail("SO_RCVTIMEO", e))?;
        Ok(Rtnl { fd, seq: 0, rx: vec![0; 32 * 1024], netns: netns.to_string() })
    }

    /// Sends `msg` and waits for its acknowledgement; returns the payload
    /// of the answer that came before it, if any (a `GET`'s). `op` says
    /// what the request does, for the error.
    fn request(&mut self, msg: Message, op: impl FnOnce() -> String) -> Result<Option<Vec<u8>>, NetError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let buf = msg.finish(seq);
        let result = self.exchange(&buf, seq);
        result.map_err(|source| failed(format!("{} (namespace {})", op(), self.netns), source))
    }

    fn exchange(&mut self, buf: &[u8], seq: u32) -> io::Result<Option<Vec<u8>>> {
        // EINTR: with SO_RCVTIMEO set, socket calls are not restarted after a
        // signal handler ran on this thread (signal(7)), SA_RESTART or not,
        // and the agent's SIGCHLD handler may run on any of its threads.
        let sent = loop {
            match send(self.fd.as_raw_fd(), buf, MsgFlags::empty()) {
                Err(nix::Error::EINTR) => continue,
                r => break r.map_err(errno)?,
            }
        };
        if sent != buf.len() {
            return Err(io::Error::other(format!("sent {sent} of {} bytes", buf.len())));
        }
        let mut answer = None;
        loop {
            let n = match recv(self.fd.as_raw_fd(), &mut self.rx, MsgFlags::empty()) {
                Err(nix::Error::EINTR) => continue,
                r => r.map_err(errno)?,
            };
            match parse(&self.rx[..n], seq, &mut answer)? {
                Some(()) => return Ok(answer),
                None => continue,
            }
        }
    }

    /// `ip link add NAME type veth peer name PEER netns <peer_netns>`.
    pub fn add_veth(
        &mut self,
        name: &str,
        peer: &str,
        peer_netns: BorrowedFd<'_>,
        peer_ns: &str,
    ) -> Result<(), NetError> {
        self.request(new_veth(name, peer, peer_netns), || format!("adding veth {name} with peer {peer} in {peer_ns}"))
            .map(drop)
    }

    pub fn link_up(&mut self, name: &str, master: Option<u32>) -> Result<(), NetError> {
        self.request(link_up(name, master), || match master {
            Some(m) => format!("setting {name} up with master index {m}"),
            None => format!("setting {name} up"),
        })
        .map(drop)
    }

    pub fn hairpin_on(&mut self, name: &str) -> Result<(), NetError> {
        self.request(hairpin_on(name), || format!("turning hairpin mode on for bridge port {name}")).map(drop)
    }

    pub fn del_link(&mut self, name: &str) -> Result<(), NetError> {
        self.request(del_link(name), || format!("deleting {name}")).map(drop)
    }

    /// The interface index of `name`.
    pub fn link_index(&mut self, name: &str) -> Result<u32, NetError> {
        let op = || format!("looking up {name}");
        let answer = self.request(get_link(name), op)?;
        // ifi_index, in the ifinfomsg after the answer's nlmsghdr.
        answer
            .as_deref()
            .and_then(|a| a.get(NLMSG_HDRLEN + 4..NLMSG_HDRLEN + 8))
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| {
                failed(
                    format!("{} (namespace {}): no link in the answer", op(), self.netns),
                    io::Error::other("short answer"),
                )
            })
    }

    pub fn add_addr(&mut self, index: u32, name: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<(), NetError> {
        self.request(new_addr(index, addr, prefix_len), || format!("adding address {addr}/{prefix_len} to {name}"))
            .map(drop)
    }

    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<(), NetError> {
        self.request(default_route(gateway), || format!("adding the default route via {gateway}")).map(drop)
    }
}

/// Reads the messages of one datagram. `Some(())` once the
/// acknowledgement of request `seq` came (an error if it carried one);
/// the answer to the request (a non-error message with its sequence
/// number) goes to `answer`. Messages about other sequence numbers (a
/// late answer to an earlier, timed-out request) are skipped.
fn parse(datagram: &[u8], seq: u32, answer: &mut Option<Vec<u8>>) -> io::Result<Option<()>> {
    let mut at = 0;
    while at + NLMSG_HDRLEN <= datagram.len() {
        let m = &datagram[at..];
        let len = u32::from_ne_bytes([m[0], m[1], m[2], m[3]]) as usize;
        if len < NLMSG_HDRLEN || len > m.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated netlink message"));
        }
        let kind = u16::from_ne_bytes([m[4], m[5]]);
        let msg_seq = u32::from_ne_bytes([m[8], m[9], m[10], m[11]]);
        if msg_seq == seq {
            if kind == NLMSG_ERROR {
                if len < NLMSG_HDRLEN + 4 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated netlink error"));
                }
                let code = i32::from_ne_bytes([m[16], m[17], m[18], m[19]]);
                return if code == 0 {
                    Ok(Some(()))
                } else {
                    Err(io::Error::from_raw_os_error(code.checked_neg().unwrap_or(libc::EIO)))
                };
            }
            *answer = Some(m[..len].to_vec());
        }
        at += (len + 3) & !3;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// Walks attributes from `at` to `end`: (kind, payload start, payload end).
    fn attrs(b: &[u8], mut at: usize, end: usize) -> Vec<(u16, usize, usize)> {
        let mut out = Vec::new();
        while at + 4 <= end {
            let len = u16_at(b, at) as usize;
            assert!(len >= 4 && at + len <= end, "attribute at {at} of length {len} overruns {end}");
            out.push((u16_at(b, at + 2), at + 4, at + len));
            at += (len + 3) & !3;
        }
        assert_eq!(at, end, "attributes end exactly where their parent does");
        out
    }

    #[test]
    fn a_veth_request_nests_the_peer_with_its_name_and_namespace_fd() {
        let fd = std::fs::File::open("/dev/null").expect("open /dev/null");
        let raw = fd.as_raw_fd() as u32;
        let b = new_veth("vethabc", "eth0", std::os::fd::AsFd::as_fd(&fd)).finish(7);
        assert_eq!(u32_at(&b, 0) as usize, b.len());
        assert_eq!(u16_at(&b, 4), RTM_NEWLINK);
        assert_eq!(u16_at(&b, 6), NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        assert_eq!(u32_at(&b, 8), 7);
        let top = attrs(&b, NLMSG_HDRLEN + IFINFOMSG_LEN, b.len());
        assert_eq!(top.len(), 2);
        assert_eq!((top[0].0, &b[top[0].1..top[0].2]), (IFLA_IFNAME, &b"vethabc\0"[..]));
        assert_eq!(top[1].0, IFLA_LINKINFO);
        let info = attrs(&b, top[1].1, top[1].2);
        assert_eq!((info[0].0, &b[info[0].1..info[0].2]), (IFLA_INFO_KIND, &b"veth\0"[..]));
        assert_eq!(info[1].0, IFLA_INFO_DATA);
        let data = attrs(&b, info[1].1, info[1].2);
        assert_eq!(data.len(), 1);
        assert_eq!(data[0].0, VETH_INFO_PEER);
        // The peer: an ifinfomsg, then its own attributes.
        assert_eq!(&b[data[0].1..data[0].1 + IFINFOMSG_LEN], &[0u8; IFINFOMSG_LEN]);
        let peer = attrs(&b, data[0].1 + IFINFOMSG_LEN, data[0].2);
        assert_eq!((peer[0].0, &b[peer[0].1..peer[0].2]), (IFLA_IFNAME, &b"eth0\0"[..]));
        assert_eq!((peer[1].0, u32_at(&b, peer[1].1)), (IFLA_NET_NS_FD, raw));
    }

    #[test]
    fn link_up_sets_and_changes_only_iff_up_and_names_the_master() {
        let b = link_up("vethabc", Some(5)).finish(1);
        assert_eq!(u16_at(&b, 6), NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(u32_at(&b, NLMSG_HDRLEN + 4), 0, "addressed by name, not index");
        assert_eq!(u32_at(&b, NLMSG_HDRLEN + 8), IFF_UP);
        assert_eq!(u32_at(&b, NLMSG_HDRLEN + 12), IFF_UP);
        let top = attrs(&b, NLMSG_HDRLEN + IFINFOMSG_LEN, b.len());
        assert_eq!((top[1].0, u32_at(&b, top[1].1)), (IFLA_MASTER, 5));
    }

    #[test]
    fn hairpin_is_bridge_slave_data_with_port_mode_one() {
        let b = hairpin_on("vethabc").finish(1);
        let top = attrs(&b, NLMSG_HDRLEN + IFINFOMSG_LEN, b.len());
        let info = attrs(&b, top[1].1, top[1].2);
        assert_eq!((info[0].0, &b[info[0].1..info[0].2]), (IFLA_INFO_SLAVE_KIND, &b"bridge\0"[..]));
        let data = attrs(&b, info[1].1, info[1].2);
        assert_eq!((data[0].0, &b[data[0].1..data[0].2]), (IFLA_BRPORT_MODE, &[1u8][..]));
    }

    #[test]
    fn an_address_and_a_default_route_are_laid_out_as_iproute2_sends_them() {
        let b = new_addr(3, Ipv4Addr::new(10, 244, 1, 5), 24).finish(1);
        assert_eq!(&b[NLMSG_HDRLEN..NLMSG_HDRLEN + 4], &[AF_INET, 24, 0, 0]);
        assert_eq!(u32_at(&b, NLMSG_HDRLEN + 4), 3);
        let a = attrs(&b, NLMSG_HDRLEN + 8, b.len());
        assert_eq!(
            a.iter().map(|x| (x.0, &b[x.1..x.2])).collect::<Vec<_>>(),
            [(IFA_LOCAL, &[10u8, 244, 1, 5][..]), (IFA_ADDRESS, &[10u8, 244, 1, 5][..])]
        );
        let r = default_route(Ipv4Addr::new(10, 244, 1, 1)).finish(2);
        assert_eq!(&r[NLMSG_HDRLEN..NLMSG_HDRLEN + 8], &[AF_INET, 0, 0, 0, 254, 3, 0, 1]);
        let a = attrs(&r, NLMSG_HDRLEN + 12, r.len());
        assert_eq!((a[0].0, &r[a[0].1..a[0].2]), (RTA_GATEWAY, &[10u8, 244, 1, 1][..]));
    }

    fn message(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        pad(&mut m);
        m
    }

    #[test]
    fn an_answer_then_its_ack_is_returned_and_other_sequences_are_skipped() {
        let mut d = message(NLMSG_ERROR, 4, &(-17i32).to_ne_bytes()); // a stale one
        d.extend(message(RTM_NEWLINK, 5, &[1, 2, 3]));
        let mut answer = None;
        assert!(parse(&d, 5, &mut answer).expect("parses").is_none(), "no ack yet");
        assert_eq!(answer.as_deref().map(<[u8]>::len), Some(NLMSG_HDRLEN + 3));
        let ack = message(NLMSG_ERROR, 5, &0i32.to_ne_bytes());
        assert_eq!(parse(&ack, 5, &mut answer).expect("acked"), Some(()));
    }

    #[test]
    fn an_error_ack_carries_its_errno() {
        let nack = message(NLMSG_ERROR, 9, &(-17i32).to_ne_bytes());
        let e = parse(&nack, 9, &mut None).expect_err("EEXIST");
        assert_eq!(e.raw_os_error(), Some(17));
        let mut short = message(NLMSG_ERROR, 9, &[]);
        short[0] = 40; // claims more than there is
        assert!(parse(&short, 9, &mut None).is_err());
    }
}
