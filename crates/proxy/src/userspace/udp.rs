//! UDP: one session per client address, each with its own connected
//! socket in the node namespace towards the endpoint it picked. Replies go
//! back through the listening socket, from the very address the client's
//! datagram was redirected to (`IP_PKTINFO`), so conntrack can undo the
//! redirect and the client sees the reply come from the service address.
//!
//! A session ends after [`Config::udp_idle_timeout`] without traffic
//! either way, or when its endpoint refuses (ICMP port unreachable), after
//! which the client's next datagram picks another endpoint.
//!
//! [`Config::udp_idle_timeout`]: super::Config::udp_idle_timeout

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::balancer::ConnGuard;
use super::front::{Closing, FrontShared, cut};
use super::sys;

/// Large enough for any datagram.
const DATAGRAM: usize = 65536;

/// How often a talking session refreshes its client's affinity.
const AFFINITY_REFRESH: Duration = Duration::from_secs(1);

struct Session {
    upstream: UdpSocket,
    /// Milliseconds since `Sessions::epoch` of the last datagram either way.
    last: AtomicU64,
}

struct Sessions {
    epoch: Instant,
    map: Mutex<HashMap<SocketAddrV4, Arc<Session>>>,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddrV4, Arc<Session>>> {
        // Every update is one insert or remove: a poisoned map is still whole.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn remove(&self, client: SocketAddrV4, session: &Arc<Session>) {
        let mut map = self.lock();
        if map.get(&client).is_some_and(|s| Arc::ptr_eq(s, session)) {
            map.remove(&client);
        }
    }
}

pub(crate) async fn serve(listener: Arc<UdpSocket>, shared: Arc<FrontShared>, mut closing: Closing) {
    let sessions = Arc::new(Sessions { epoch: Instant::now(), map: Mutex::new(HashMap::new()) });
    let mut buf = vec![0u8; DATAGRAM];
    loop {
        let draining = closing.borrow_and_update().is_some();
        if draining {
            // Existing sessions' clients still send here (conntrack keeps
            // their redirect); serve them until they end or are cut.
            if sessions.lock().is_empty() || closing.borrow().is_some_and(|t| t <= Instant::now()) {
                break;
            }
        }
        let received = tokio::select! {
            r = listener.async_io(Interest::READABLE, || sys::recv_from_to(&*listener, &mut buf)) => r,
            _ = closing.changed(), if !draining => continue,
            () = tokio::time::sleep(Duration::from_secs(1)), if draining => continue,
        };
        let (n, client, local) = match received {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(service = %shared.id, error = %e, "userspace proxy: UDP receive failed");
                continue;
            }
        };
        let existing = sessions.lock().get(&client).cloned();
        let session = match existing {
            Some(s) => s,
            None if draining => continue,
            // loadBalancerSourceRanges: checked once per session, as
            // conntrack would let an admitted flow go on.
            None if !shared.route().admits(*client.ip()) => continue,
            None => match open(&shared, &listener, &sessions, client, local, &closing).await {
                Some(s) => s,
                None => continue,
            },
        };
        session.last.store(sessions.now_ms(), Ordering::Relaxed);
        // Straight to the kernel: Tokio's try_send would refuse a socket
        // it has not yet seen writable, losing a new session's first datagram.
        match sys::send_now(&session.upstream, &buf[..n]) {
            Ok(_) => {}
            // A full socket buffer drops the datagram, as a full link would.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                // A refusal reported on send: end the session so the next
                // datagram picks again.
                tracing::debug!(service = %shared.id, %client, error = %e, "userspace proxy: UDP send failed");
                if let Ok(SocketAddr::V4(peer)) = session.upstream.peer_addr() {
                    shared.forget(*client.ip(), peer);
                }
                sessions.remove(client, &session);
            }
        }
    }
    tracing::debug!(service = %shared.id, "userspace proxy: UDP listener closed");
}

/// Opens a session for `client`, or None when no endpoint is available or
/// the session limit is reached.
async fn open(
    shared: &Arc<FrontShared>,
    listener: &Arc<UdpSocket>,
    sessions: &Arc<Sessions>,
    client: SocketAddrV4,
    local: Ipv4Addr,
    closing: &Closing,
) -> Option<Arc<Session>> {
    if sessions.lock().len() >= shared.config.max_udp_sessions {
        tracing::warn!(service = %shared.id, "userspace proxy: too many UDP sessions, dropping");
        return None;
    }
    let route = shared.route();
    let guard = shared.choose(&route, *client.ip(), &[])?;
    let upstream = match connect(shared, guard.addr()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(service = %shared.id, endpoint = %guard.addr(), error = %e, "userspace proxy: UDP socket failed");
            return None;
        }
    };
    let session = Arc::new(Session { upstream, last: AtomicU64::new(sessions.now_ms()) });
    sessions.lock().insert(client, session.clone());
    let task = replies(session.clone(), guard, listener.clone(), sessions.clone(), shared.clone(), client, local);
    let closing = closing.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = task => {}
            () = cut(closing) => {}
        }
    });
    Some(session)
}

async fn connect(shared: &FrontShared, addr: SocketAddrV4) -> io::Result<UdpSocket> {
    let socket = shared.sockets.udp_bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).await?;
    socket.connect(addr).await?;
    Ok(socket)
}

/// Carries the endpoint's replies back to the client until the session
/// idles out or fails; then removes the session.
async fn replies(
    session: Arc<Session>,
    guard: ConnGuard,
    listener: Arc<UdpSocket>,
    sessions: Arc<Sessions>,
    shared: Arc<FrontShared>,
    client: SocketAddrV4,
    local: Ipv4Addr,
) {
    let idle = shared.config.udp_idle_timeout;
    let mut buf = vec![0u8; DATAGRAM];
    let mut refreshed = Instant::now();
    loop {
        let last = Duration::from_millis(session.last.load(Ordering::Relaxed));
        let expires = sessions.epoch + last + idle;
        if expires <= Instant::now() {
            break;
        }
        let n = tokio::select! {
            r = session.upstream.recv(&mut buf) => match r {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(service = %shared.id, endpoint = %guard.addr(), error = %e, "userspace proxy: UDP endpoint failed");
                    shared.forget(*client.ip(), guard.addr());
                    break;
                }
            },
            () = tokio::time::sleep_until(expires) => continue,
        };
        session.last.store(sessions.now_ms(), Ordering::Relaxed);
        if refreshed.elapsed() >= AFFINITY_REFRESH {
            refreshed = Instant::now();
            shared.touch(&shared.route(), *client.ip());
        }
        let sent = listener.async_io(Interest::WRITABLE, || sys::send_from_to(&*listener, &buf[..n], local, client));
        if let Err(e) = sent.await {
            tracing::debug!(service = %shared.id, %client, error = %e, "userspace proxy: UDP reply failed");
        }
    }
    sessions.remove(client, &session);
}
