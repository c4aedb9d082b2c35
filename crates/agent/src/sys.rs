//! The few system calls the pod runtime makes around starting processes,
//! and sockets opened inside another network namespace.
//!
//! Between the new process's start and its `exec` only async-signal-safe
//! work is allowed (in `pre_exec`, and in [`spawn_in_pod`]'s child, which
//! shares the agent's memory): every path and name is turned into a
//! `CString` and every namespace file opened *before*, so the child only
//! makes system calls.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitPidFlag;

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

/// What a container process runs: the resolved program, its argv (argv[0]
/// as the pod gave it), its whole environment and working directory.
pub struct Exec<'a> {
    pub program: &'a Path,
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    pub dir: &'a Path,
    /// Give the process a stdin pipe (a container with `stdin: true`)
    /// rather than `/dev/null`.
    pub stdin: bool,
    /// Give it a terminal (a container with `tty: true`): a pty whose
    /// slave is its stdin, stdout, stderr and controlling terminal.
    pub tty: bool,
}

/// A container process started by [`spawn_in_pod`], with the read ends of
/// its stdout and stderr pipes, and the write end of its stdin pipe when it
/// asked for one (else its stdin is `/dev/null`).
pub struct PodChild {
    pub pid: u32,
    /// Becomes readable when the process ends; reaped through [`reap`].
    pub pidfd: OwnedFd,
    /// The output pipes' read ends (none with a terminal).
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub stdin: Option<OwnedFd>,
    /// With [`Exec::tty`]: the pty master (non-blocking), which carries
    /// the process's input and output both.
    pub terminal: Option<OwnedFd>,
}

/// Everything the new process needs, made before `clone`: it runs on a
/// borrowed stack in the agent's memory, so it only makes system calls on
/// these values (no allocation, no locks), as `posix_spawn`'s child does.
struct ChildPlan {
    netns: RawFd,
    /// The mount namespace to copy ([`mount_template`]), or -1: the
    /// agent's own.
    mounts: RawFd,
    binds: Vec<PreparedBind>,
    hostname: CString,
    program: CString,
    /// NULL-terminated pointers into `_strings`.
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    _strings: Vec<CString>,
    dir: CString,
    stdio: [RawFd; 3],
    /// Make stdin (a pty slave) the controlling terminal of the new session.
    controlling_tty: bool,
    /// The agent's pid: the child's parent, until the agent dies.
    parent: libc::pid_t,
    /// The errno of the step that failed, written by the child before it
    /// exits; still 0 when it reached `execve`.
    error: AtomicI32,
}

/// The stack the new process runs on until `execve`. It makes a dozen
/// system calls from small frames; 64 KiB is ample.
const CHILD_STACK: usize = 64 * 1024;

/// The kernel's signal set size (`_NSIG / 8`) that `rt_sigprocmask`
/// takes; the C library's `sigset_t` is larger. Where it differs the
/// system call fails and `pthread_sigmask` is used instead.
const KERNEL_SIGSET: libc::c_long = 8;

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

fn check(r: libc::c_int) -> Result<(), i32> {
    if r == -1 { Err(last_errno()) } else { Ok(()) }
}

/// The new process, from `clone` to `execve`: stdio, the pod's namespaces
/// (a mount namespace without `/run/netns`'s mounts), working directory,
/// then default signal dispositions and an empty signal mask, as the
/// standard library's `Command` leaves them.
fn child_steps(p: &ChildPlan) -> Result<(), i32> {
    // SAFETY (whole function): only system calls on the plan's values,
    // which outlive the child (the parent is suspended until it execs or
    // exits: CLONE_VFORK).
    unsafe {
        for (fd, target) in p.stdio.iter().zip(0..) {
            if *fd == target {
                check(libc::fcntl(target, libc::F_SETFD, 0))?;
            } else {
                check(libc::dup2(*fd, target))?;
            }
        }
        check(libc::setns(p.netns, libc::CLONE_NEWNET))?;
        if p.mounts >= 0 {
            check(libc::setns(p.mounts, libc::CLONE_NEWNS))?;
        }
        check(libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUTS))?;
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        ))?;
        if p.mounts < 0 {
            // No template: the copy holds every pod's namespace mount
            // (see `mount_template`); detached at least, so that later
            // pods' mounts do not propagate here and deleted pods'
            // namespaces are not kept alive. EINVAL: not a mount point.
            if libc::umount2(c"/run/netns".as_ptr(), libc::MNT_DETACH) == -1 {
                let e = last_errno();
                if e != libc::EINVAL && e != libc::ENOENT {
                    return Err(e);
                }
            }
        }
        // After setns, which moves the working directory to the root.
        check(libc::chdir(p.dir.as_ptr()))?;
        for b in &p.binds {
            check(libc::mount(
                b.source.as_ptr(),
                b.target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ))?;
        }
        check(libc::sethostname(p.hostname.as_ptr(), p.hostname.as_bytes().len()))?;
        check(libc::setsid())?;
        if p.controlling_tty {
            check(libc::ioctl(0, libc::TIOCSCTTY, 0))?;
        }
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong))?;
        // The agent may have died before PDEATHSIG was armed (the vfork wait
        // is killable): the child has been reparented and nothing would
        // ever kill it.
        if libc::getppid() != p.parent {
            return Err(libc::ESRCH);
        }
        // Handlers the agent installed must not run in this process (it
        // shares the agent's memory until execve); ignored signals stay
        // ignored through exec, except SIGPIPE, which Rust's runtime ignores
        // and `Command` restores.
        for sig in 1..=libc::SIGRTMAX() {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue; // one the C library reserves
            }
            if old.sa_sigaction != libc::SIG_DFL && (old.sa_sigaction != libc::SIG_IGN || sig == libc::SIGPIPE) {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        check(libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()))?;
        check(libc::execve(p.program.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr()))?;
    }
    Ok(())
}

extern "C" fn child_main(plan: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `plan` is the `ChildPlan` that `spawn_in_pod` passed to
    // `clone` and keeps alive until the child has exec'd or exited.
    let plan = unsafe { &*(plan as *const ChildPlan) };
    let e = child_steps(plan).err().unwrap_or(libc::EIO);
    plan.error.store(e, Ordering::Relaxed);
    // SAFETY: ends the child without running anything of the agent's.
    unsafe { libc::_exit(127) }
}

/// Starts a container process in the pod: its network namespace, a private
/// mount namespace with the pod's files bound over `/etc` (and without
/// `/run/netns`), a private UTS namespace with the pod's hostname, a
/// session (and process group) of its own, and death when the agent dies.
///
/// The child shares the agent's memory (`CLONE_VM|CLONE_VFORK`, as
/// `posix_spawn` does) until it execs: `fork`, which `Command` uses as soon
/// as a `pre_exec` hook is set, would copy the page tables of the whole
/// agent process (tens of megabytes in `svcnet up`) for each container.
pub fn spawn_in_pod(exec: &Exec<'_>, placement: &Placement) -> io::Result<PodChild> {
    let invalid = |what| io::Error::new(io::ErrorKind::InvalidInput, format!("{what} holds NUL"));
    let netns: OwnedFd = File::open(&placement.netns)?.into();
    let binds = placement
        .binds
        .iter()
        .map(|(s, t)| Ok(PreparedBind { source: cstring(s)?, target: cstring(t)? }))
        .collect::<io::Result<Vec<_>>>()?;
    let mut strings = Vec::with_capacity(exec.argv.len() + exec.env.len());
    for a in exec.argv {
        strings.push(CString::new(a.as_bytes()).map_err(|_| invalid("an argument"))?);
    }
    for (k, v) in exec.env {
        strings.push(CString::new(format!("{k}={v}")).map_err(|_| invalid("an environment variable"))?);
    }
    let ptrs = |s: &[CString]| s.iter().map(|c| c.as_ptr()).chain([std::ptr::null()]).collect::<Vec<_>>();
    let (argv, envp) = (ptrs(&strings[..exec.argv.len()]), ptrs(&strings[exec.argv.len()..]));
    // Read-write, as `Stdio::null` opens it; or a pipe whose write end the
    // agent keeps; or a terminal, whose master the agent keeps.
    let mut terminal = None;
    let (stdin, stdin_w): (OwnedFd, Option<OwnedFd>) = if exec.tty {
        let pty = nix::pty::openpty(None, None).map_err(errno)?;
        for fd in [&pty.master, &pty.slave] {
            nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).map_err(errno)?;
        }
        nix::fcntl::fcntl(&pty.master, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).map_err(errno)?;
        terminal = Some(pty.master);
        (pty.slave, None)
    } else if exec.stdin {
        let (r, w) = io::pipe()?;
        (r.into(), Some(w.into()))
    } else {
        (File::options().read(true).write(true).open("/dev/null")?.into(), None)
    };
    let (out_r, out_w, err_r, err_w): (Option<OwnedFd>, OwnedFd, Option<OwnedFd>, OwnedFd) = if exec.tty {
        (None, stdin.try_clone()?, None, stdin.try_clone()?)
    } else {
        let (out_r, out_w) = io::pipe()?;
        let (err_r, err_w) = io::pipe()?;
        (Some(out_r.into()), out_w.into(), Some(err_r.into()), err_w.into())
    };
    let plan = ChildPlan {
        netns: netns.as_raw_fd(),
        mounts: mount_template().map_or(-1, |fd| fd.as_raw_fd()),
        binds,
        hostname: CString::new(placement.hostname.as_bytes()).map_err(|_| invalid("the hostname"))?,
        program: cstring(exec.program)?,
        argv,
        envp,
        _strings: strings,
        dir: cstring(exec.dir)?,
        stdio: [stdin.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()],
        controlling_tty: exec.tty,
        parent: std::process::id() as libc::pid_t,
        error: AtomicI32::new(0),
    };
    let mut stack = vec![0u8; CHILD_STACK];
    // The stack grows down; the top must be 16-byte aligned.
    let top = (stack.as_mut_ptr() as usize + CHILD_STACK) & !15;
    let mut pidfd: libc::c_int = -1;
    // SAFETY: all signals (the C library's internal ones too, which
    // `pthread_sigmask` and `sigfillset` leave out) are blocked around
    // `clone` so that none runs an agent handler on the child's stack before
    // it resets them; the child only reads `plan` and writes its `error`
    // (and, through the C library's wrappers, the `errno` of this thread,
    // whose TLS it shares and which is suspended meanwhile), and the parent
    // resumes only once the child has exec'd or exited (CLONE_VFORK), so
    // `plan` and `stack` outlive its use of them. CLONE_PIDFD stores the
    // pidfd in `pidfd` (the parent_tid argument).
    let (pid, clone_error) = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        std::ptr::write_bytes(&mut all as *mut libc::sigset_t as *mut u8, 0xff, size_of::<libc::sigset_t>());
        let raw = libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const libc::sigset_t,
            &mut old as *mut libc::sigset_t,
            KERNEL_SIGSET,
        ) == 0;
        if !raw {
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        }
        let pid = libc::clone(
            child_main,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
            &plan as *const ChildPlan as *mut libc::c_void,
            &mut pidfd as *mut libc::c_int,
        );
        let clone_error = io::Error::last_os_error();
        if raw {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &old as *const libc::sigset_t,
                std::ptr::null_mut::<libc::sigset_t>(),
                KERNEL_SIGSET,
            );
        } else {
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        }
        (pid, clone_error)
    };
    drop(stack);
    if pid == -1 {
        return Err(clone_error);
    }
    // SAFETY: clone succeeded, so `pidfd` is a descriptor it opened for us.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let error = plan.error.load(Ordering::Relaxed);
    if error != 0 {
        // It has exited (CLONE_VFORK returned): reap it, or it stays a zombie.
        while let Err(nix::Error::EINTR) =
            nix::sys::wait::waitid(nix::sys::wait::Id::PIDFd(pidfd.as_fd()), WaitPidFlag::WEXITED)
        {}
        return Err(io::Error::from_raw_os_error(error));
    }
    // With a terminal, the master reads EOF (EIO) once the process and
    // its children have closed the slave: the agent keeps no copy.
    drop((out_w, err_w, stdin, netns));
    Ok(PodChild { pid: pid as u32, pidfd, stdout: out_r, stderr: err_r, stdin: stdin_w, terminal })
}

/// The mount namespace containers start from: the agent's as it was when
/// this was first called (at the agent's start, through
/// [`prepare_mount_template`]), made a slave of it (mounts and unmounts
/// on the host's shared mounts reach it), without `/run/netns`. Each
/// container copies it (`unshare(CLONE_NEWNS)` copies the whole mount
/// table): without the template, the copy would hold a mount for every
/// pod's network namespace on the host, so a container's start would cost
/// more with every pod, and the pods' namespaces would propagate into
/// every container. `None` (and a warning) if it cannot be made: each
/// container then copies the agent's namespace and detaches `/run/netns`
/// from its copy.
///
/// It is made after [`svcnet_netns::ip::prepare_etc_files`], so that the
/// tmpfs the pods' `/etc` files live on is in it even where the host's
/// mounts do not propagate.
fn mount_template() -> Option<&'static OwnedFd> {
    static TEMPLATE: std::sync::OnceLock<Option<OwnedFd>> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            // unshare(CLONE_NEWNS) moves only the calling thread (which
            // stops sharing its root and working directory with the
            // others): a thread of its own, ended at once.
            let made = std::thread::spawn(|| -> io::Result<OwnedFd> {
                svcnet_netns::ip::prepare_etc_files()?;
                nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(errno)?;
                nix::mount::mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE,
                    None::<&str>,
                )
                .map_err(errno)?;
                // Every mount stacked there (iproute2's bind mount, or
                // svcnet's tmpfs, and anything another tool put on top).
                loop {
                    match nix::mount::umount2(svcnet_netns::ip::NETNS_RUN_DIR, nix::mount::MntFlags::MNT_DETACH) {
                        Ok(()) => {}
                        Err(nix::Error::EINVAL | nix::Error::ENOENT) => break,
                        Err(e) => return Err(errno(e)),
                    }
                }
                Ok(File::open("/proc/thread-self/ns/mnt")?.into())
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("its thread panicked")));
            made.inspect_err(|e| {
                tracing::warn!(error = %e, "making the containers' template mount namespace failed; containers copy the agent's")
            })
            .ok()
        })
        .as_ref()
}

/// Makes the containers' template mount namespace now (see
/// [`mount_template`]; blocking), rather than at the first container's
/// start. Whether there is one.
pub fn prepare_mount_template() -> bool {
    mount_template().is_some()
}

/// Registers a [`PodChild`]'s pidfd with the runtime's reactor, which sees
/// it readable once the process ends.
pub fn watch_exit(pidfd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is an open descriptor that stays open, and
    // always returns the same number, until the `AsyncFd` drops it.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)
}

/// The exit status of a [`PodChild`] that has ended (and is now reaped),
/// or `None` while it runs.
pub fn reap(pidfd: &OwnedFd) -> io::Result<Option<ExitStatus>> {
    waitid_exited(pidfd, WaitPidFlag::WNOHANG)
}

/// Blocks until a [`PodChild`] ends, and reaps it.
pub fn reap_blocking(pidfd: &OwnedFd) -> io::Result<ExitStatus> {
    loop {
        if let Some(status) = waitid_exited(pidfd, WaitPidFlag::empty())? {
            return Ok(status);
        }
    }
}

fn waitid_exited(pidfd: &OwnedFd, flags: WaitPidFlag) -> io::Result<Option<ExitStatus>> {
    use nix::sys::wait::{Id, WaitStatus, waitid};
    loop {
        return match waitid(Id::PIDFd(pidfd.as_fd()), WaitPidFlag::WEXITED | flags) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => Err(errno(e)),
            Ok(WaitStatus::Exited(_, code)) => Ok(Some(ExitStatus::from_raw((code & 0xff) << 8))),
            Ok(WaitStatus::Signaled(_, sig, core)) => {
                Ok(Some(ExitStatus::from_raw(sig as i32 | if core { 0x80 } else { 0 })))
            }
            Ok(_) => Ok(None),
        };
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn placement() -> Placement {
        Placement { netns: "/proc/self/ns/net".into(), binds: Vec::new(), hostname: "spawn-test".into() }
    }

    /// `sh -c SCRIPT` with a minimal PATH, run from `/`.
    struct Shell {
        argv: [String; 3],
        env: [(String, String); 1],
    }

    impl Shell {
        fn new(script: &str) -> Shell {
            Shell {
                argv: ["sh".to_string(), "-c".into(), script.into()],
                env: [("PATH".to_string(), "/usr/bin:/bin".to_string())],
            }
        }

        fn exec(&self, stdin: bool, tty: bool) -> Exec<'_> {
            Exec { program: Path::new("/bin/sh"), argv: &self.argv, env: &self.env, dir: Path::new("/"), stdin, tty }
        }
    }

    fn wait(pidfd: &OwnedFd) -> ExitStatus {
        loop {
            if let Some(status) = reap(pidfd).expect("waitid") {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn a_child_runs_with_its_argv_env_hostname_and_pipes_and_is_reaped() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let argv = ["sh".to_string(), "-c".into(), "echo \"$A $(hostname) $(pwd)\"; echo err >&2; exit 3".into()];
        let env = [("A".to_string(), "x".to_string()), ("PATH".into(), "/usr/bin:/bin".into())];
        let exec = Exec {
            program: Path::new("/bin/sh"),
            argv: &argv,
            env: &env,
            dir: Path::new("/tmp"),
            stdin: false,
            tty: false,
        };
        let child = spawn_in_pod(&exec, &placement()).expect("spawns");
        assert!(child.stdin.is_none());
        let (mut out, mut err) = (String::new(), String::new());
        File::from(child.stdout.expect("a pipe")).read_to_string(&mut out).expect("stdout");
        File::from(child.stderr.expect("a pipe")).read_to_string(&mut err).expect("stderr");
        assert_eq!(out, "x spawn-test /tmp\n");
        assert_eq!(err, "err\n");
        assert_eq!(wait(&child.pidfd).code(), Some(3));
        assert_eq!(reap(&child.pidfd).map_err(|e| e.raw_os_error()), Err(Some(libc::ECHILD)), "reaped once");
    }

    #[test]
    fn a_child_sees_the_pods_files_but_no_network_namespace_mounts() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        /// Deletes the namespace (and its files) however the test ends.
        struct Netns(String, tokio::runtime::Runtime);
        impl Drop for Netns {
            fn drop(&mut self) {
                let _ = self.1.block_on(svcnet_netns::ip::delete_netns(&self.0));
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let netns = Netns(format!("svcnet-systest-{}", std::process::id()), rt);
        let name = &netns.0;
        netns.1.block_on(svcnet_netns::ip::add_netns(name)).expect("a named namespace");
        svcnet_netns::ip::write_etc_files(name, &[("hostname", "from-the-pod\n")]).expect("files");
        let host = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(host.contains(&format!(" /run/netns/{name} ")), "the host has the namespace's mount");
        let file = svcnet_netns::ip::etc_files_dir(name).join("hostname");
        assert!(prepare_mount_template(), "a template mount namespace");
        let shell = Shell::new(&format!("cat {}; cat /proc/self/mountinfo", file.display()));
        let child = spawn_in_pod(&shell.exec(false, false), &placement()).expect("spawns");
        let mut out = String::new();
        File::from(child.stdout.expect("a pipe")).read_to_string(&mut out).expect("stdout");
        assert_eq!(wait(&child.pidfd).code(), Some(0), "{out}");
        assert!(out.starts_with("from-the-pod\n"), "the pod's files are there: {out}");
        let mounts: Vec<&str> = out.lines().skip(1).collect();
        assert!(!mounts.iter().any(|m| m.contains("/run/netns")), "no namespace mounts: {out}");
        assert!(mounts.len() < host.lines().count(), "a smaller mount table than the host's: {out}");
    }

    #[test]
    fn an_exec_failure_is_its_errno_and_leaves_no_child() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let argv = ["missing".to_string()];
        let exec = Exec {
            program: Path::new("/nonexistent/missing"),
            argv: &argv,
            env: &[],
            dir: Path::new("/"),
            stdin: true,
            tty: false,
        };
        let e = spawn_in_pod(&exec, &placement()).err().expect("fails");
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        let exec = Exec {
            program: Path::new("/bin/true"),
            argv: &argv,
            env: &[],
            dir: Path::new("/nonexistent"),
            stdin: false,
            tty: false,
        };
        let e = spawn_in_pod(&exec, &placement()).err().expect("fails");
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn a_child_that_asks_for_stdin_reads_what_the_agent_writes() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        use std::io::Write as _;
        let shell = Shell::new("read a; read b; echo \"$a+$b\"; cat");
        let child = spawn_in_pod(&shell.exec(true, false), &placement()).expect("spawns");
        let mut stdin = File::from(child.stdin.expect("a stdin pipe"));
        stdin.write_all(b"one\ntwo\nrest\n").unwrap();
        drop(stdin); // EOF ends `cat`
        let mut out = String::new();
        File::from(child.stdout.expect("a pipe")).read_to_string(&mut out).expect("stdout");
        assert_eq!(out, "one+two\nrest\n");
        assert_eq!(wait(&child.pidfd).code(), Some(0));
    }

    #[test]
    fn a_child_with_a_terminal_has_it_as_stdio_and_controlling_terminal() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        use std::io::Write as _;
        // `tty` names the slave; reading /dev/tty works only with a
        // controlling terminal; what is typed comes back echoed.
        let shell = Shell::new("tty; read line </dev/tty; echo \"got $line\"; exit 5");
        let child = spawn_in_pod(&shell.exec(true, true), &placement()).expect("spawns");
        assert!(child.stdout.is_none() && child.stderr.is_none() && child.stdin.is_none());
        let master = child.terminal.expect("a terminal");
        nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty())).unwrap();
        let mut term = File::from(master);
        term.write_all(b"hello\n").unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        // Linux answers EIO once the last slave descriptor is closed.
        while let Ok(n) = term.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let out = String::from_utf8_lossy(&out);
        assert!(out.lines().any(|l| l.starts_with("/dev/pts/")), "{out}");
        assert!(out.contains("hello\r\n"), "echoed by the terminal: {out}");
        assert!(out.contains("got hello\r\n"), "{out}");
        assert_eq!(wait(&child.pidfd).code(), Some(5));
    }
}
