//! The few system calls the pod runtime makes around `fork`/`exec`, and
//! sockets opened inside another network namespace.
//!
//! Everything between `fork` and `exec` runs in `pre_exec`, where only
//! async-signal-safe work is allowed: every path and name is turned into a
//! `CString` and every namespace file opened *before* the fork, so the child
//! only makes system calls.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;

/// How a container process is placed.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The pod's network namespace (`/run/netns/<name>`).
    pub netns: PathBuf,
    /// Files bind-mounted over their targets in a private mount namespace
    /// (the pod's resolv.conf, hosts and hostname over `/etc/...`).
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// The pod's hostname, set in a private UTS namespace.
    pub hostname: String,
}

struct PreparedBind {
    source: CString,
    target: CString,
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds NUL"))
}

fn errno(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Makes `cmd` start in the pod: its network namespace, a private mount
/// namespace with the pod's files bound over `/etc`, a private UTS
/// namespace with the pod's hostname, a session (and process group) of its
/// own, and death when the agent dies.
pub fn place(cmd: &mut tokio::process::Command, placement: &Placement) -> io::Result<()> {
    let netns: OwnedFd = File::open(&placement.netns)?.into();
    let binds = placement
        .binds
        .iter()
        .map(|(s, t)| Ok(PreparedBind { source: cstring(s)?, target: cstring(t)? }))
        .collect::<io::Result<Vec<_>>>()?;
    let hostname = CString::new(placement.hostname.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "hostname holds NUL"))?;
    let root = c"/";
    // SAFETY: the closure only makes system calls on values prepared above
    // (no allocation, no locks), as required between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::setns(netns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(errno)?;
            nix::sched::unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS).map_err(errno)?;
            nix::mount::mount(None::<&Path>, root, None::<&Path>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&Path>)
                .map_err(errno)?;
            for b in &binds {
                nix::mount::mount(
                    Some(b.source.as_c_str()),
                    b.target.as_c_str(),
                    None::<&Path>,
                    MsFlags::MS_BIND,
                    None::<&Path>,
                )
                .map_err(errno)?;
            }
            if libc::sethostname(hostname.as_ptr(), hostname.as_bytes().len()) != 0 {
                return Err(io::Error::last_os_error());
            }
            nix::unistd::setsid().map_err(errno)?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(errno)?;
            Ok(())
        });
    }
    Ok(())
}

/// Makes `cmd` join the namespaces of a running process (`pid`): network,
/// UTS and mount, in its own session, for exec probes.
pub fn join(cmd: &mut tokio::process::Command, pid: u32) -> io::Result<()> {
    let open = |ns: &str| -> io::Result<OwnedFd> { Ok(File::open(format!("/proc/{pid}/ns/{ns}"))?.into()) };
    let net = open("net")?;
    let uts = open("uts")?;
    let mnt = open("mnt")?;
    // SAFETY: only system calls on descriptors opened before the fork.
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::setns(net.as_fd(), CloneFlags::CLONE_NEWNET).map_err(errno)?;
            nix::sched::setns(uts.as_fd(), CloneFlags::CLONE_NEWUTS).map_err(errno)?;
            nix::sched::setns(mnt.as_fd(), CloneFlags::CLONE_NEWNS).map_err(errno)?;
            nix::unistd::setsid().map_err(errno)?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(errno)?;
            Ok(())
        });
    }
    Ok(())
}

/// Sends `signal` to the process group `pgid` (a container's session).
pub fn kill_group(pgid: u32, signal: Signal) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid as i32), signal);
}

/// True when this process may create network namespaces (root, or
/// CAP_SYS_ADMIN with CAP_NET_ADMIN).
pub fn can_manage_namespaces() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    // CapEff in /proc/self/status: bit 21 is CAP_SYS_ADMIN, 12 CAP_NET_ADMIN.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 21) != 0 && caps & (1 << 12) != 0)
}

pub use svcnet_netns::NetnsSockets;
