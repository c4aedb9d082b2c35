//! The only `unsafe` of the streaming server: what an exec'd child does
//! between fork and exec (join the container's namespaces, change
//! directory, take a controlling terminal) and the terminal ioctls.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd as _, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use tokio::io::unix::AsyncFd;

nix::ioctl_write_int_bad!(tiocsctty, libc::TIOCSCTTY);
nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);

/// What the child does before it execs, prepared in the parent so that
/// the child only makes system calls.
pub(super) struct JoinPlan {
    /// Namespace files opened in the parent, joined in order (mount last:
    /// after it, `/proc` paths would name the container's view).
    pub namespaces: Vec<(OwnedFd, CloneFlags)>,
    /// The working directory, resolved in the container's mount namespace.
    pub dir: CString,
    /// Become a session leader with stdin (a pty) as controlling terminal.
    pub controlling_terminal: bool,
}

/// Installs `plan` to run in the child between fork and exec.
pub(super) fn join_before_exec(command: &mut tokio::process::Command, plan: JoinPlan) {
    let hook = move || -> io::Result<()> {
        for (fd, kind) in &plan.namespaces {
            nix::sched::setns(fd, *kind).map_err(os_error)?;
        }
        nix::unistd::chdir(plan.dir.as_c_str()).map_err(os_error)?;
        if plan.controlling_terminal {
            nix::unistd::setsid().map_err(os_error)?;
            // SAFETY: TIOCSCTTY takes an int argument (0: do not steal a
            // terminal another session owns); fd 0 is the pty slave that
            // std has already installed as the child's stdin.
            unsafe { tiocsctty(0, 0) }.map_err(os_error)?;
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child, where only
    // async-signal-safe operations are allowed. It makes raw system calls
    // (setns, chdir, setsid, ioctl) on file descriptors and a C string
    // prepared before the fork, allocates nothing (errors are
    // `io::Error::from_raw_os_error`), and takes no locks.
    unsafe {
        command.pre_exec(hook);
    }
}

fn os_error(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Registers a pty master with the runtime's reactor.
pub(super) fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is an open descriptor that stays open, and
    // always returns the same number, until the `AsyncFd` drops it.
    unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)
}

/// Sets a terminal's size (TIOCSWINSZ on the pty master).
pub(super) fn set_window_size(fd: BorrowedFd<'_>, columns: u16, rows: u16) -> nix::Result<()> {
    let size = libc::winsize { ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: `fd` is a live descriptor for the duration of the call and
    // TIOCSWINSZ reads one `winsize`, which `&size` points to.
    unsafe { tiocswinsz(fd.as_raw_fd(), &size) }.map(drop)
}
