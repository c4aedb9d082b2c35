//! Sockets opened inside another network namespace.
//!
//! A socket belongs to the namespace it was created in, wherever it is used
//! afterwards, so a process in the host namespace can listen, connect and
//! probe inside its nodes' and pods' namespaces from its own threads.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::mpsc;

use nix::sched::CloneFlags;

fn errno(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

type SocketJob = Box<dyn FnOnce() + Send>;

/// A thread living in another network namespace, that opens sockets there.
/// A socket belongs to the namespace it was created in, wherever it is
/// used afterwards, so the agent can probe pods and forward traffic from its
/// own threads.
#[derive(Clone)]
pub struct NetnsSockets {
    jobs: mpsc::Sender<SocketJob>,
}

impl NetnsSockets {
    /// Starts the thread inside the namespace at `path` (`/run/netns/<name>`).
    pub fn enter(path: &Path) -> io::Result<NetnsSockets> {
        let fd: OwnedFd = File::open(path)?.into();
        let (jobs, rx) = mpsc::channel::<SocketJob>();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new().name(format!("netns-{}", fd.as_raw_fd())).spawn(move || {
            let entered = nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(errno);
            let ok = entered.is_ok();
            let _ = ready_tx.send(entered);
            if ok {
                while let Ok(job) = rx.recv() {
                    job();
                }
            }
        })?;
        ready_rx.recv().map_err(|_| io::Error::other("netns thread died"))??;
        Ok(NetnsSockets { jobs })
    }

    /// Runs `f` on the namespace's thread and returns its result.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| io::Error::other("netns thread is gone"))?;
        rx.await.map_err(|_| io::Error::other("netns thread is gone"))
    }

    /// An unconnected TCP socket in the namespace, for the caller to
    /// connect from any thread.
    pub async fn tcp_socket(&self, v6: bool) -> io::Result<tokio::net::TcpSocket> {
        let std = self
            .run(move || -> io::Result<std::net::TcpStream> {
                let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
                // SAFETY: socket(2) returns a new descriptor we take ownership of.
                let fd =
                    unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) };
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: fd is a fresh, valid, owned descriptor.
                Ok(unsafe { <std::net::TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) })
            })
            .await??;
        Ok(tokio::net::TcpSocket::from_std_stream(std))
    }

    /// A listening TCP socket bound in the namespace.
    pub async fn tcp_listen(&self, addr: std::net::SocketAddr) -> io::Result<tokio::net::TcpListener> {
        let std = self
            .run(move || -> io::Result<std::net::TcpListener> {
                let l = std::net::TcpListener::bind(addr)?;
                l.set_nonblocking(true)?;
                Ok(l)
            })
            .await??;
        tokio::net::TcpListener::from_std(std)
    }

    /// A UDP socket bound in the namespace.
    pub async fn udp_bind(&self, addr: std::net::SocketAddr) -> io::Result<tokio::net::UdpSocket> {
        let std = self
            .run(move || -> io::Result<std::net::UdpSocket> {
                let s = std::net::UdpSocket::bind(addr)?;
                s.set_nonblocking(true)?;
                Ok(s)
            })
            .await??;
        tokio::net::UdpSocket::from_std(std)
    }
}
