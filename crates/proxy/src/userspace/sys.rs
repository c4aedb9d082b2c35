//! The few system calls the proxy needs beyond Tokio: `splice(2)` through
//! a pipe (the only `unsafe` in the proxy), the original destination of a
//! redirected connection, and UDP with `IP_PKTINFO` so replies leave from
//! the address the client's datagram was redirected to.
#![allow(unsafe_code)]

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::socket::{
    self, ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, getsockopt, setsockopt, sockopt,
};

fn errno(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// How much a pipe asks for: big enough that one splice moves a good
/// share of a socket buffer (the kernel's default is 64 KiB).
const PIPE_SIZE: i32 = 1 << 20;

/// A non-blocking pipe that data is spliced through, one per direction of
/// a connection that carries bulk data.
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// The pipe's capacity in bytes.
    pub capacity: usize,
}

impl Pipe {
    pub fn new() -> io::Result<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(errno)?;
        // Growing the pipe may be refused (pipe-max-size, per-user
        // limits); the default size still works, only with more calls.
        let capacity = match fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE)) {
            Ok(size) => usize::try_from(size).unwrap_or(65536),
            Err(_) => fcntl(&write, FcntlArg::F_GETPIPE_SZ).ok().and_then(|s| usize::try_from(s).ok()).unwrap_or(65536),
        };
        Ok(Pipe { read, write, capacity })
    }

    /// Moves up to `len` bytes from socket `from` into the pipe; 0 at EOF.
    pub fn fill(&self, from: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        splice(from, self.write.as_fd(), len)
    }

    /// Moves up to `len` bytes from the pipe into socket `to`.
    pub fn drain(&self, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        splice(self.read.as_fd(), to, len)
    }
}

/// `splice(2)` between two descriptors, one of them a pipe, without
/// blocking on the pipe (the sockets are non-blocking themselves).
fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are borrowed, so open for the whole call;
    // null offsets are what splice(2) requires for pipes and sockets; no
    // memory of ours is read or written.
    let n = unsafe {
        libc::splice(
            from.as_raw_fd(),
            std::ptr::null_mut(),
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    // A negative return is -1 with errno set; anything else is a count.
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// The destination the client connected to before the redirect
/// (`SO_ORIGINAL_DST`, from conntrack).
pub(crate) fn original_dst(sock: &impl AsFd) -> io::Result<SocketAddrV4> {
    let sin = getsockopt(sock, sockopt::OriginalDst).map_err(errno)?;
    Ok(SocketAddrV4::new(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)), u16::from_be(sin.sin_port)))
}

/// Shuts down the write side of a socket (half-close). A peer that is
/// already gone is not an error: there is nobody left to tell.
pub(crate) fn shutdown_write(sock: &impl AsRawFd) -> io::Result<()> {
    match socket::shutdown(sock.as_raw_fd(), socket::Shutdown::Write) {
        Ok(()) | Err(nix::Error::ENOTCONN) => Ok(()),
        Err(e) => Err(errno(e)),
    }
}

/// Asks for the destination address of every received datagram.
pub(crate) fn enable_pktinfo(sock: &impl AsFd) -> io::Result<()> {
    setsockopt(sock, sockopt::Ipv4PacketInfo, &true).map_err(errno)
}

/// Receives one datagram: its length, sender and the local address it was
/// sent to (after the redirect). Returns `WouldBlock` when there is none.
pub(crate) fn recv_from_to(sock: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4, Ipv4Addr)> {
    let mut cmsg = nix::cmsg_space!(libc::in_pktinfo);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = socket::recvmsg::<SockaddrIn>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)
        .map_err(errno)?;
    let from = msg.address.map(SocketAddrV4::from).ok_or_else(|| io::Error::other("datagram without a sender"))?;
    let mut local = Ipv4Addr::UNSPECIFIED;
    for c in msg.cmsgs().map_err(errno)? {
        if let ControlMessageOwned::Ipv4PacketInfo(info) = c {
            local = Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr));
        }
    }
    Ok((msg.bytes, from, local))
}

/// Sends one datagram on a connected socket without waiting. Returns
/// `WouldBlock` when the socket buffer is full.
pub(crate) fn send_now(sock: &impl AsRawFd, data: &[u8]) -> io::Result<usize> {
    socket::send(sock.as_raw_fd(), data, MsgFlags::MSG_DONTWAIT).map_err(errno)
}

/// Sends one datagram to `to` from local address `from` (unspecified: let
/// routing choose). Returns `WouldBlock` when the socket buffer is full.
pub(crate) fn send_from_to(sock: &impl AsRawFd, data: &[u8], from: Ipv4Addr, to: SocketAddrV4) -> io::Result<usize> {
    let iov = [IoSlice::new(data)];
    let dest = SockaddrIn::from(to);
    let info = libc::in_pktinfo {
        ipi_ifindex: 0,
        ipi_spec_dst: libc::in_addr { s_addr: u32::from(from).to_be() },
        ipi_addr: libc::in_addr { s_addr: 0 },
    };
    let cmsgs = [ControlMessage::Ipv4PacketInfo(&info)];
    let cmsgs: &[ControlMessage<'_>] = if from.is_unspecified() { &[] } else { &cmsgs };
    socket::sendmsg(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_DONTWAIT, Some(&dest)).map_err(errno)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn data_spliced_through_a_pipe_arrives_intact() {
        // Socket pairs: splice works on them as on TCP, without a network.
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (d, mut c) = std::os::unix::net::UnixStream::pair().unwrap();
        let pipe = Pipe::new().unwrap();
        assert!(pipe.capacity >= 65536);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let writer = std::thread::spawn({
            let data = data.clone();
            move || {
                a.write_all(&data).unwrap();
                a.shutdown(std::net::Shutdown::Write).unwrap();
            }
        });
        // b -> pipe -> d, blocking sockets: each call moves what is there.
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            c.read_to_end(&mut got).unwrap();
            got
        });
        let mut moved = 0;
        loop {
            // SPLICE_F_NONBLOCK makes a socket pair's side non-blocking too.
            let n = match pipe.fill(b.as_fd(), pipe.capacity) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    continue;
                }
                r => r.unwrap(),
            };
            if n == 0 {
                break;
            }
            let mut left = n;
            while left > 0 {
                match pipe.drain(d.as_fd(), left) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(1))
                    }
                    r => left -= r.unwrap(),
                }
            }
            moved += n;
        }
        shutdown_write(&d).unwrap();
        writer.join().unwrap();
        let got = reader.join().unwrap();
        assert_eq!(moved, data.len());
        assert!(got == data);
    }
}
