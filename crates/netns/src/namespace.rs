//! Named network namespaces made and removed in-process, the way `ip netns
//! add` and `ip netns delete` do it, so iproute2 (`ip netns list`, `ip -n`,
//! `ip netns exec`) sees and uses them as its own.
//!
//! A named namespace is a bind mount of a namespace file over an empty file
//! `/run/netns/NAME`; `/run/netns` itself is made a shared mount once, so
//! that these mounts propagate into mount namespaces made afterwards (`ip
//! netns exec`'s) and their unmounting propagates too. (svcnet's
//! containers start from a mount namespace without `/run/netns`.) Where
//! `/run` is on a disk rather than a tmpfs, `/run/netns` becomes a tmpfs of
//! its own ([`prepare_run_dir`]), as does the directory of the namespaces'
//! `/etc` files ([`prepare_files_dir`]).
//!
//! `unshare(CLONE_NEWNET)` moves only the calling thread, so a namespace is
//! made on a thread of its own that exits afterwards ([`in_new_netns`]);
//! work that has to happen inside a namespace (opening its netlink socket)
//! runs there too.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;

use crate::ip::{ETC_FILES_DIR, NETNS_RUN_DIR, NetError, netns_path};

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn failed<'a>(name: &'a str, step: &'static str) -> impl FnOnce(Errno) -> NetError + 'a {
    move |e| NetError::Namespace { name: name.to_string(), step, source: errno(e) }
}

/// Whether this process made sure `/run/netns` is a shared mount.
static RUN_DIR_READY: Mutex<bool> = Mutex::new(false);

/// Makes `/run/netns` exist and be a shared mount point, as `ip netns add`
/// does: if it is not a mount point yet, a bind mount of itself (or a
/// tmpfs, see below), made private and then shared so it starts a peer
/// group of its own. Under an exclusive lock on the directory, like
/// iproute2, so concurrent `ip` processes and this one do not stack
/// mounts.
fn prepare_run_dir(name: &str) -> Result<(), NetError> {
    let mut ready = RUN_DIR_READY.lock().unwrap_or_else(|e| e.into_inner());
    if *ready {
        return Ok(());
    }
    match nix::unistd::mkdir(NETNS_RUN_DIR, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(failed(name, "creating /run/netns")(e)),
    }
    let dir = File::open(NETNS_RUN_DIR).map_err(|source| NetError::Namespace {
        name: name.into(),
        step: "opening /run/netns",
        source,
    })?;
    // As iproute2: go on without the lock if it cannot be had.
    let _lock = Flock::lock(dir, FlockArg::LockExclusive).ok();
    let dir = Path::new(NETNS_RUN_DIR);
    let mut made_mount = false;
    loop {
        match nix::mount::mount(Some(""), dir, Some("none"), MsFlags::MS_SHARED | MsFlags::MS_REC, None::<&str>) {
            Ok(()) => break,
            // EINVAL: not a mount point yet.
            Err(Errno::EINVAL) if !made_mount => {}
            Err(e) => return Err(failed(name, "mount --make-shared /run/netns")(e)),
        }
        if on_disk(dir) && is_empty(dir) {
            // Where `/run` is on a disk (on most systems it is a tmpfs), a
            // tmpfs: each namespace's mount point is a new file here, and
            // on a disk every one of them costs an inode (on ext4 without a
            // journal, a search past every inode freed in the last minute).
            // Only when nobody's namespace is in there yet, which the tmpfs
            // would hide; like iproute2's bind mount, it stays mounted.
            nix::mount::mount(Some("tmpfs"), dir, Some("tmpfs"), memory_fs_flags(), Some("mode=755,size=1m"))
                .map_err(failed(name, "mount -t tmpfs tmpfs /run/netns"))?;
        } else {
            nix::mount::mount(Some(dir), dir, Some("none"), MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .map_err(failed(name, "mount --bind /run/netns /run/netns"))?;
        }
        nix::mount::mount(Some(dir), dir, Some("none"), MsFlags::MS_PRIVATE | MsFlags::MS_REC, None::<&str>)
            .map_err(failed(name, "mount --make-private /run/netns"))?;
        made_mount = true;
    }
    *ready = true;
    Ok(())
}

/// Whether this process made sure `/run/svcnet` is on a tmpfs.
static FILES_DIR_READY: Mutex<bool> = Mutex::new(false);

/// Makes `/run/svcnet/netns` ([`ETC_FILES_DIR`]) exist on a memory file
/// system: where `/run/svcnet` is on a disk, a tmpfs is mounted there
/// (under an exclusive lock on the directory, so that two svcnet processes
/// starting at once do not stack two). It stays mounted, as `/run` would.
pub(crate) fn prepare_files_dir() -> io::Result<()> {
    let mut ready = FILES_DIR_READY.lock().unwrap_or_else(|e| e.into_inner());
    if *ready {
        return Ok(());
    }
    let files = Path::new(ETC_FILES_DIR);
    let top = files.parent().unwrap_or(files);
    std::fs::create_dir_all(top)?;
    if on_disk(top) {
        let _lock = Flock::lock(File::open(top)?, FlockArg::LockExclusive).ok();
        // Another process may have mounted it while this one waited.
        if on_disk(top) {
            nix::mount::mount(Some("tmpfs"), top, Some("tmpfs"), memory_fs_flags(), Some("mode=755,size=64m"))
                .map_err(errno)?;
        }
    }
    std::fs::create_dir_all(files)?;
    *ready = true;
    Ok(())
}

/// How svcnet's tmpfs mounts are made: as `/run` usually is, and without
/// programs (they hold empty mount points and small text files).
fn memory_fs_flags() -> MsFlags {
    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC
}

/// Whether `dir` is on a file system other than tmpfs.
pub(crate) fn on_disk(dir: &Path) -> bool {
    nix::sys::statfs::statfs(dir).is_ok_and(|fs| fs.filesystem_type() != nix::sys::statfs::TMPFS_MAGIC)
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

/// Runs `f` on a thread of its own and hands back its result without
/// blocking the caller's (async) thread.
async fn on_thread<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T, NetError> + Send + 'static,
) -> Result<T, NetError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|source| NetError::Namespace { name: name.into(), step: "starting a thread", source })?;
    rx.await.unwrap_or_else(|_| {
        Err(NetError::Namespace { name: name.into(), step: "its thread", source: io::Error::other("panicked") })
    })
}

/// Runs `f` on a new thread inside a new network namespace bound at
/// `/run/netns/NAME`, and returns its result; the thread exits afterwards,
/// so no other work ever runs in the namespace by accident. Fails with
/// `EEXIST` if the name is taken. If `f` fails, the namespace is removed.
pub(crate) async fn in_new_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T, NetError> + Send + 'static,
) -> Result<T, NetError> {
    let owned = name.to_string();
    on_thread(name, move || {
        prepare_run_dir(&owned)?;
        create_here(&owned)?;
        let result = f();
        if result.is_err() {
            let _ = remove(&owned);
        }
        result
    })
    .await
}

/// Refuses what `ip netns` refuses: a name that is not one path component.
pub(crate) fn check_name(name: &str) -> Result<(), NetError> {
    if name.is_empty() || name.len() > 255 || name.contains('/') || name == "." || name == ".." {
        return Err(failed(name, "invalid name")(Errno::EINVAL));
    }
    Ok(())
}

/// `ip netns add NAME`, on the calling thread, which ends up inside the new
/// namespace.
fn create_here(name: &str) -> Result<(), NetError> {
    check_name(name)?;
    let path = netns_path(name);
    // The mount point: an empty file nobody may open by itself.
    let fd =
        nix::fcntl::open(&path, OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(failed(name, "creating its file in /run/netns"))?;
    drop(fd);
    let bound =
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(failed(name, "unshare(CLONE_NEWNET)")).and_then(|()| {
            // The thread's namespace, not the process's (/proc/self is the
            // main thread's).
            nix::mount::mount(Some("/proc/thread-self/ns/net"), &path, Some("none"), MsFlags::MS_BIND, None::<&str>)
                .map_err(failed(name, "bind-mounting it in /run/netns"))
        });
    if bound.is_err() {
        let _ = nix::unistd::unlink(&path);
    }
    bound
}

/// Moves the calling thread into namespace `name`: only for threads that
/// [`in_new_netns`] started, which exit afterwards.
pub(crate) fn enter(name: &str) -> Result<(), NetError> {
    let fd = open(name)?;
    nix::sched::setns(&fd, CloneFlags::CLONE_NEWNET).map_err(failed(name, "setns"))
}

/// A descriptor of namespace `name`, to move interfaces into or enter.
pub(crate) fn open(name: &str) -> Result<OwnedFd, NetError> {
    check_name(name)?;
    File::open(netns_path(name)).map(OwnedFd::from).map_err(|source| NetError::Namespace {
        name: name.into(),
        step: "opening it",
        source,
    })
}

/// `ip netns delete NAME`: detaches the bind mount and removes the file.
/// The kernel frees the namespace (and its interfaces, and the peers of
/// its veths) once nothing else holds it. Missing is fine.
pub(crate) fn remove(name: &str) -> Result<(), NetError> {
    check_name(name)?;
    let path = netns_path(name);
    // Fails when it is not mounted (a half-made namespace): the unlink says
    // whether anything was there.
    let _ = nix::mount::umount2(&path, MntFlags::MNT_DETACH);
    match nix::unistd::unlink(&path) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(failed(name, "removing its file from /run/netns")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_one_path_component_are_refused() {
        for bad in ["", ".", "..", "a/b", "../etc", &"x".repeat(256)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
            assert!(remove(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("svcnet-node1-default-web-0a1b2c3d").is_ok());
    }
}
