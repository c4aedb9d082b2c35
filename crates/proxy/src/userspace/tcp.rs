//! TCP: accept, pick an endpoint, connect from the node namespace (the
//! next endpoint on failure), then relay both ways until both sides are
//! done, half-closing each direction on its own.
//!
//! Each direction starts with a small buffer; once a read fills it (bulk
//! data) the direction switches to `splice(2)` through a pipe, so large
//! transfers move page references from socket to socket without copying.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};

use super::balancer::ConnGuard;
use super::front::{Closing, FrontShared, Traffic, closing_started, cut};
use super::sys;

/// The first buffer of each direction; a read that fills it switches the
/// direction to splice.
const SMALL_BUFFER: usize = 16 * 1024;

pub(crate) async fn serve(listener: TcpListener, shared: Arc<FrontShared>, mut closing: Closing) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(handle(stream, peer, shared.clone(), closing.clone()));
                }
                Err(e) => {
                    // Out of descriptors or memory: back off instead of spinning.
                    tracing::warn!(service = %shared.id, error = %e, "userspace proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = closing_started(&mut closing) => break,
        }
    }
    tracing::debug!(service = %shared.id, "userspace proxy: listener closed");
}

async fn handle(client: TcpStream, peer: SocketAddr, shared: Arc<FrontShared>, closing: Closing) {
    let SocketAddr::V4(peer) = peer else { return };
    if !shared.route().admits(*peer.ip()) {
        tracing::debug!(service = %shared.id, client = %peer, "userspace proxy: outside loadBalancerSourceRanges, resetting");
        let _ = client.set_zero_linger();
        return;
    }
    let _ = client.set_nodelay(true);
    let original = sys::original_dst(&client).ok();
    let Some((upstream, guard)) = connect(&shared, peer).await else {
        tracing::debug!(service = %shared.id, client = %peer, ?original, "userspace proxy: no endpoint reachable, resetting");
        let _ = client.set_zero_linger();
        return;
    };
    tracing::trace!(service = %shared.id, client = %peer, ?original, endpoint = %guard.addr(), "userspace proxy: connected");
    tokio::select! {
        () = relay(&client, &upstream, guard, &shared) => {}
        () = cut(closing) => {
            let _ = client.set_zero_linger();
            let _ = upstream.set_zero_linger();
        }
    }
}

/// Connects to an endpoint for `client`, trying each endpoint at most once.
async fn connect(shared: &FrontShared, client: SocketAddrV4) -> Option<(TcpStream, ConnGuard)> {
    let route = shared.route();
    let mut tried = Vec::new();
    while let Some(guard) = shared.choose(&route, *client.ip(), &tried) {
        let addr = guard.addr();
        tried.push(addr);
        match connect_one(shared, addr).await {
            Ok(stream) => return Some((stream, guard)),
            Err(e) => {
                tracing::debug!(service = %shared.id, endpoint = %addr, error = %e, "userspace proxy: endpoint failed, trying the next");
                shared.forget(*client.ip(), addr);
            }
        }
    }
    None
}

async fn connect_one(shared: &FrontShared, addr: SocketAddrV4) -> io::Result<TcpStream> {
    let socket = shared.sockets.tcp_socket(false).await?;
    let stream = tokio::time::timeout(shared.config.connect_timeout, socket.connect(addr.into()))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Relays until both directions have ended; on an error in either, resets
/// both sides, so a reset travels through the proxy as a reset.
async fn relay(client: &TcpStream, upstream: &TcpStream, mut guard: ConnGuard, shared: &FrontShared) {
    let splice = shared.config.splice;
    let up = pump(client, upstream, splice, &shared.traffic);
    let down = pump(upstream, client, splice, &shared.traffic);
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        let result = tokio::select! {
            r = &mut up, if !up_done => { up_done = true; r }
            r = &mut down, if !down_done => { down_done = true; r }
        };
        match result {
            Ok(()) => guard.half_close(),
            Err(e) => {
                tracing::debug!(service = %shared.id, endpoint = %guard.addr(), error = %e, "userspace proxy: connection aborted");
                let _ = client.set_zero_linger();
                let _ = upstream.set_zero_linger();
                return;
            }
        }
    }
}

/// Copies `from` to `to` until `from` ends, then shuts down `to`'s write
/// side.
async fn pump(from: &TcpStream, to: &TcpStream, splice: bool, traffic: &Traffic) -> io::Result<()> {
    let mut buf = vec![0u8; SMALL_BUFFER];
    let mut try_splice = splice;
    loop {
        from.readable().await?;
        let n = match from.try_read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        write_all(to, &buf[..n]).await?;
        traffic.copied.fetch_add(n as u64, Ordering::Relaxed);
        if n == buf.len() && try_splice {
            // Bulk data: splice from here on, if a pipe can be had and the
            // sockets take it; else go on copying.
            try_splice = false;
            match sys::Pipe::new() {
                Ok(pipe) => match splice_all(from, to, &pipe, traffic).await? {
                    Spliced::Eof => break,
                    Spliced::Unsupported => {}
                },
                Err(e) => tracing::debug!(error = %e, "userspace proxy: no pipe for splice, copying"),
            }
        }
    }
    sys::shutdown_write(to)
}

enum Spliced {
    /// `from` ended.
    Eof,
    /// The kernel cannot splice these sockets; nothing was moved.
    Unsupported,
}

async fn write_all(to: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        to.writable().await?;
        match to.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Splices `from` into the pipe and the pipe into `to` until `from` ends.
/// The pipe is always emptied before it is filled again, so a would-block
/// while filling can only mean the socket has nothing to read.
async fn splice_all(from: &TcpStream, to: &TcpStream, pipe: &sys::Pipe, traffic: &Traffic) -> io::Result<Spliced> {
    use std::os::fd::AsFd;
    let mut moved = false;
    loop {
        let n = loop {
            from.readable().await?;
            match from.try_io(Interest::READABLE, || pipe.fill(from.as_fd(), pipe.capacity)) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e)
                    if !moved && matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)) =>
                {
                    return Ok(Spliced::Unsupported);
                }
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Ok(Spliced::Eof);
        }
        moved = true;
        let mut left = n;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || pipe.drain(to.as_fd(), left)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(m) => left -= m.min(left),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        traffic.spliced.fetch_add(n as u64, Ordering::Relaxed);
    }
}
