//! The UDP workers: one OS thread per `SO_REUSEPORT` socket, blocking in
//! the kernel, no executor in between. On Linux each wake-up takes every
//! query waiting (up to 32, `recvmmsg` with `MSG_WAITFORONE`) and sends
//! every answer in one `sendmmsg`: at loopback rates the system calls and
//! the wake-ups they cause the client, not the answering, are the cost.
//!
//! A query that needs an upstream is handed to the tokio runtime, which
//! answers it on the same socket when the upstream has spoken.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use crate::answer::Response;
use crate::compiled::Compiled;
use crate::handler::{Outcome, Served, Transport, handle, write_response};
use crate::metrics::{Shard, Via};
use crate::server::Shared;
use crate::wire::Rcode;

pub(crate) struct Worker {
    pub socket: Arc<UdpSocket>,
    pub shared: Arc<Shared>,
    pub index: usize,
    pub runtime: tokio::runtime::Handle,
    pub stop: Arc<AtomicBool>,
}

/// A worker's copy of the current compiled view, refreshed when the
/// server's generation counter moves (one relaxed load per batch).
struct ViewCache {
    generation: u64,
    compiled: Arc<Compiled>,
}

impl ViewCache {
    fn new(shared: &Shared) -> ViewCache {
        ViewCache { generation: shared.current.generation(), compiled: shared.current.load() }
    }

    fn current(&mut self, shared: &Shared) -> &Compiled {
        let g = shared.current.generation();
        if g != self.generation {
            self.generation = g;
            self.compiled = shared.current.load();
        }
        &self.compiled
    }
}

fn is_ipv6(peer: SocketAddr) -> bool {
    matches!(peer, SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_none())
}

impl Worker {
    pub fn run(self) {
        #[cfg(target_os = "linux")]
        self.run_batched();
        #[cfg(not(target_os = "linux"))]
        self.run_simple();
    }

    /// Answers one packet into `out`; true if `out` is to be sent now.
    fn answer(
        &self,
        shard: &Shard,
        compiled: &Compiled,
        packet: &[u8],
        peer: SocketAddr,
        out: &mut Vec<u8>,
        started: Instant,
    ) -> bool {
        let via = Via { tcp: false, ipv6: is_ipv6(peer) };
        match handle(compiled, packet, Transport::Udp, self.shared.max_udp, out) {
            Outcome::Reply(served) => {
                shard.record(served, via, started.elapsed());
                true
            }
            Outcome::Drop => {
                shard.dropped();
                false
            }
            Outcome::Forward(job) => {
                let Some(permit) = self.shared.forwarder.try_start() else {
                    write_response(out, &job.echo(), &Response::error(Rcode::REFUSED));
                    shard.record(
                        Served { qtype: job.qtype, rcode: Rcode::REFUSED, local: false },
                        via,
                        started.elapsed(),
                    );
                    return true;
                };
                let (socket, shared) = (self.socket.clone(), self.shared.clone());
                self.runtime.spawn(async move {
                    let _permit = permit;
                    let mut out = Vec::new();
                    let served = shared.forwarder.complete(&job, &mut out).await;
                    // A blocking socket, but a UDP send waits for nobody:
                    // at worst for buffer space.
                    if let Err(e) = socket.send_to(&out, peer) {
                        tracing::debug!(%peer, error = %e, "UDP send failed");
                    }
                    shared.metrics.shared_shard().record(served, via, started.elapsed());
                });
                false
            }
        }
    }

    fn run_simple(&self) {
        let mut buf = vec![0u8; 65535];
        let mut out = Vec::with_capacity(65535);
        let mut view = ViewCache::new(&self.shared);
        let shard = self.shared.metrics.shard(self.index);
        while !self.stop.load(Relaxed) {
            let (n, peer) = match self.socket.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) => {
                    // Timeouts let us check `stop` (and let go of an old
                    // version, as below); ICMP errors from earlier sends
                    // surface here too, harmlessly.
                    tracing::trace!(error = %e, "UDP receive");
                    view.current(&self.shared);
                    continue;
                }
            };
            let started = Instant::now();
            let compiled = view.current(&self.shared);
            if self.answer(shard, compiled, &buf[..n], peer, &mut out, started) {
                if let Err(e) = self.socket.send_to(&out, peer) {
                    tracing::debug!(%peer, error = %e, "UDP send failed");
                }
            }
        }
    }

    #[cfg(target_os = "linux")]
    fn run_batched(&self) {
        use std::io::{IoSlice, IoSliceMut};
        use std::os::fd::AsRawFd;

        use nix::errno::Errno;
        use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};

        const BATCH: usize = 32;
        /// Queries are small; a larger datagram is cut and then most
        /// likely answered FORMERR.
        const RECV_BUF: usize = 4096;

        let fd = self.socket.as_raw_fd();
        let shard = self.shared.metrics.shard(self.index);
        let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; RECV_BUF]).collect();
        let mut outs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(1232)).collect();
        let mut recv_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let mut send_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let mut received: Vec<(usize, Option<SockaddrStorage>)> = Vec::with_capacity(BATCH);
        let mut peers: Vec<Option<SockaddrStorage>> = Vec::with_capacity(BATCH);
        let mut view = ViewCache::new(&self.shared);
        while !self.stop.load(Relaxed) {
            received.clear();
            {
                let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
                match recvmmsg(fd, &mut recv_headers, iovs.iter_mut(), MsgFlags::MSG_WAITFORONE, None) {
                    Ok(msgs) => received.extend(msgs.map(|m| (m.bytes, m.address))),
                    // The socket's read timeout: time to check `stop`, and
                    // to let go of the version this worker answered from
                    // last. An idle worker would otherwise keep it alive,
                    // and with it every record replaced since.
                    Err(Errno::EAGAIN | Errno::EINTR) => {
                        view.current(&self.shared);
                        continue;
                    }
                    // A kernel (or sandbox) without recvmmsg.
                    Err(Errno::ENOSYS) => return self.run_simple(),
                    Err(e) => {
                        tracing::trace!(error = %e, "UDP receive");
                        continue;
                    }
                }
            }
            let started = Instant::now();
            let compiled = view.current(&self.shared);
            peers.clear();
            for (i, (len, addr)) in received.iter().enumerate() {
                let Some(addr) = addr else { continue };
                let peer = match (addr.as_sockaddr_in(), addr.as_sockaddr_in6()) {
                    (Some(v4), _) => SocketAddr::V4((*v4).into()),
                    (None, Some(v6)) => SocketAddr::V6((*v6).into()),
                    _ => continue,
                };
                let slot = peers.len();
                let packet = &bufs[i][..(*len).min(RECV_BUF)];
                if self.answer(shard, compiled, packet, peer, &mut outs[slot], started) {
                    peers.push(Some(*addr));
                }
            }
            if peers.is_empty() {
                continue;
            }
            let slices: Vec<[IoSlice<'_>; 1]> = outs[..peers.len()].iter().map(|o| [IoSlice::new(o)]).collect();
            // The count of messages sent is not read back (nix would read
            // the unused address slots to give it): for UDP, a message the
            // kernel refused is a lost datagram the client retries.
            if let Err(e) = sendmmsg(fd, &mut send_headers, &slices, &peers, [], MsgFlags::empty()) {
                tracing::debug!(error = %e, count = peers.len(), "UDP send failed");
            }
        }
    }
}
