//! Starting an exec'd process inside a container: the container's
//! network, UTS and mount namespaces, its environment and working
//! directory, and either pipes or a pseudo-terminal for its stdio.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, Command};

use super::query::ExecOptions;
use super::sys::{self, JoinPlan};
use crate::access::ContainerRef;

/// PATH when the container's environment sets none (the runtimes' default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("container process {pid} is gone: opening {path}: {source}")]
    Namespace {
        pid: u32,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("chdir to cwd ({dir:?}) set in the container failed: no such directory")]
    WorkingDir { dir: PathBuf },
    #[error("allocating a terminal failed: {0}")]
    Terminal(#[source] nix::Error),
    #[error("exec: {program:?}: executable file not found in $PATH")]
    NotInPath { program: String },
    #[error("exec: {program:?}: stat {program}: no such file or directory")]
    NoSuchFile { program: String },
    #[error("exec: {program:?}: permission denied")]
    PermissionDenied { program: String },
    #[error("exec: {program:?}: {source}")]
    Exec {
        program: String,
        #[source]
        source: io::Error,
    },
}

/// A started process and its ends of the stdio streams.
pub struct Process {
    pub child: Child,
    /// Also its process group (a group or session of its own).
    pub pid: i32,
    pub stdin: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    pub stdout: Option<Box<dyn AsyncRead + Send + Unpin>>,
    pub stderr: Option<Box<dyn AsyncRead + Send + Unpin>>,
    /// The pty master, with a TTY.
    pub terminal: Option<PtyMaster>,
}

impl Process {
    /// SIGKILL to the whole process group: the command and whatever it
    /// started.
    pub fn kill(&self) {
        // killpg(0) would mean our own group.
        if self.pid <= 0 {
            return;
        }
        if let Err(e) = killpg(Pid::from_raw(self.pid), Signal::SIGKILL) {
            tracing::debug!(pid = self.pid, error = %e, "killing an exec'd process group failed");
        }
    }
}

/// Blocks until the process has exited, without reaping it: while it is
/// a zombie its pid, and so its process group's id, cannot be reused, and
/// [`Process::kill`] can only reach what the exec started.
pub fn wait_exit_unreaped(pid: i32) {
    if pid <= 0 {
        return;
    }
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
    while let Err(nix::Error::EINTR) = waitid(Id::Pid(Pid::from_raw(pid)), flags) {}
}

/// The exit code a shell would report: the code, or 128 + the signal.
pub fn exit_code(status: ExitStatus) -> i32 {
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1)
}

/// Starts `options.command` in `container`'s namespaces.
pub fn spawn(container: &ContainerRef, options: &ExecOptions) -> Result<Process, SpawnError> {
    let program = options.command.first().cloned().unwrap_or_default();
    let namespaces =
        [("net", CloneFlags::CLONE_NEWNET), ("uts", CloneFlags::CLONE_NEWUTS), ("mnt", CloneFlags::CLONE_NEWNS)]
            .into_iter()
            .map(|(name, kind)| {
                let path = PathBuf::from(format!("/proc/{}/ns/{name}", container.pid));
                match File::open(&path) {
                    Ok(f) => Ok((OwnedFd::from(f), kind)),
                    Err(source) => Err(SpawnError::Namespace { pid: container.pid, path, source }),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
    let dir = container.working_dir.clone().unwrap_or_else(|| PathBuf::from("/"));
    // Checked through the container's root, where the child will look.
    let seen_from_host =
        Path::new(&format!("/proc/{}/root", container.pid)).join(dir.strip_prefix("/").unwrap_or(&dir));
    if !seen_from_host.is_dir() {
        return Err(SpawnError::WorkingDir { dir });
    }
    let c_dir = CString::new(dir.as_os_str().as_bytes()).map_err(|_| SpawnError::WorkingDir { dir: dir.clone() })?;

    let mut command = Command::new(&program);
    command.args(&options.command[1..]).env_clear();
    command.envs(container.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if !container.env.iter().any(|(k, _)| k == "PATH") {
        command.env("PATH", DEFAULT_PATH);
    }
    if options.tty && !container.env.iter().any(|(k, _)| k == "TERM") {
        command.env("TERM", "xterm");
    }

    let mut terminal = None;
    if options.tty {
        let pty = nix::pty::openpty(None, None).map_err(SpawnError::Terminal)?;
        for fd in [&pty.master, &pty.slave] {
            fcntl(fd.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(SpawnError::Terminal)?;
        }
        fcntl(pty.master.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(SpawnError::Terminal)?;
        let stdio = || pty.slave.try_clone().map(Stdio::from).map_err(|e| SpawnError::Terminal(errno(&e)));
        command.stdin(stdio()?).stdout(stdio()?).stderr(stdio()?);
        terminal = Some(PtyMaster::new(pty.master).map_err(|e| SpawnError::Terminal(errno(&e)))?);
        // `pty.slave` is dropped at the end of this function, with
        // `command` and its copies: the master then reads EOF once the
        // process and its children have closed theirs.
    } else {
        let piped = |yes: bool| if yes { Stdio::piped() } else { Stdio::null() };
        command.stdin(piped(options.stdin)).stdout(piped(options.stdout)).stderr(piped(options.stderr));
        // Its own process group, so that a kill reaches what it started.
        command.process_group(0);
    }
    sys::join_before_exec(&mut command, JoinPlan { namespaces, dir: c_dir, controlling_terminal: options.tty });

    let mut child = command.spawn().map_err(|source| match source.kind() {
        io::ErrorKind::NotFound if program.contains('/') => SpawnError::NoSuchFile { program: program.clone() },
        io::ErrorKind::NotFound => SpawnError::NotInPath { program: program.clone() },
        io::ErrorKind::PermissionDenied => SpawnError::PermissionDenied { program: program.clone() },
        _ => SpawnError::Exec { program: program.clone(), source },
    })?;
    let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    let process = match terminal {
        Some(master) => Process {
            child,
            pid,
            stdin: options.stdin.then(|| Box::new(master.clone()) as Box<dyn AsyncWrite + Send + Unpin>),
            stdout: Some(Box::new(master.clone())),
            stderr: None,
            terminal: Some(master),
        },
        None => Process {
            pid,
            stdin: child.stdin.take().map(|s| Box::new(s) as Box<dyn AsyncWrite + Send + Unpin>),
            stdout: child.stdout.take().map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
            stderr: child.stderr.take().map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
            terminal: None,
            child,
        },
    };
    Ok(process)
}

fn errno(e: &io::Error) -> nix::Error {
    e.raw_os_error().map_or(nix::Error::EIO, nix::Error::from_raw)
}

/// The master side of a pty, readable and writable without blocking a
/// thread. Reading ends (EOF) when every slave descriptor is closed.
#[derive(Clone)]
pub struct PtyMaster(Arc<AsyncFd<OwnedFd>>);

impl PtyMaster {
    /// Takes a non-blocking pty master.
    pub fn new(fd: OwnedFd) -> io::Result<PtyMaster> {
        Ok(PtyMaster(Arc::new(sys::register(fd)?)))
    }

    pub fn resize(&self, columns: u16, rows: u16) {
        if let Err(e) = sys::set_window_size(self.0.get_ref().as_fd(), columns, rows) {
            tracing::debug!(error = %e, "resizing a terminal failed");
        }
    }
}

impl AsyncRead for PtyMaster {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| nix::unistd::read(fd.get_ref(), unfilled).map_err(io::Error::from)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Linux answers EIO once the last slave descriptor closed.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PtyMaster {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
