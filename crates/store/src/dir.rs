//! The store directory: file names, listing and the process lock.
//!
//! ```text
//! LOCK                          flock'd while a process has the store open
//! snapshot-<rev>.snap           full index at <rev> (newest one wins)
//! snapshot-<rev>.tmp            a snapshot being written; ignored, removed
//! wal-<first rev>.log           log frames; several form a chain
//! ```
//!
//! Revisions in names are zero-padded to 20 digits so that a plain `ls`
//! shows files in revision order. A log is named after the first revision it
//! may hold, which lets a snapshot at revision R delete every log named
//! `<= R` without reading it: the writer only starts a new log right after
//! revision R is durable, so all earlier logs end at or below R.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Result, Revision};

const LOCK_FILE: &str = "LOCK";
const SNAPSHOT_PREFIX: &str = "snapshot-";
const SNAPSHOT_SUFFIX: &str = ".snap";
const SNAPSHOT_TMP_SUFFIX: &str = ".tmp";
const LOG_PREFIX: &str = "wal-";
const LOG_SUFFIX: &str = ".log";

pub(crate) fn snapshot_path(dir: &Path, revision: Revision) -> PathBuf {
    dir.join(format!("{SNAPSHOT_PREFIX}{revision:020}{SNAPSHOT_SUFFIX}"))
}

pub(crate) fn snapshot_tmp_path(dir: &Path, revision: Revision) -> PathBuf {
    dir.join(format!("{SNAPSHOT_PREFIX}{revision:020}{SNAPSHOT_TMP_SUFFIX}"))
}

pub(crate) fn log_path(dir: &Path, first_revision: Revision) -> PathBuf {
    dir.join(format!("{LOG_PREFIX}{first_revision:020}{LOG_SUFFIX}"))
}

/// Makes creations, renames and deletions in `dir` durable. Without it a
/// freshly created log could vanish after a power loss together with the
/// acknowledged writes inside it.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Store files found in a directory, each list sorted by revision.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub(crate) snapshots: Vec<Revision>,
    pub(crate) logs: Vec<Revision>,
    pub(crate) tmp_files: Vec<PathBuf>,
}

impl Listing {
    pub(crate) fn read(dir: &Path) -> io::Result<Self> {
        let mut listing = Self::default();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            // Names that are not ours (or not UTF-8) are left alone.
            let Some(name) = name.to_str() else { continue };
            if let Some(rev) = parse(name, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX) {
                listing.snapshots.push(rev);
            } else if let Some(rev) = parse(name, LOG_PREFIX, LOG_SUFFIX) {
                listing.logs.push(rev);
            } else if parse(name, SNAPSHOT_PREFIX, SNAPSHOT_TMP_SUFFIX).is_some() {
                listing.tmp_files.push(entry.path());
            }
        }
        listing.snapshots.sort_unstable();
        listing.logs.sort_unstable();
        Ok(listing)
    }
}

fn parse(name: &str, prefix: &str, suffix: &str) -> Option<Revision> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// An exclusive `flock` on `<dir>/LOCK`, held until dropped.
///
/// `std::fs::File::try_lock` is `flock(LOCK_EX | LOCK_NB)` on Linux.
///
/// flock locks belong to the open file description, so a second open of the
/// same directory is refused even from within the same process, and the
/// kernel releases the lock when a holder dies, including by `kill -9`.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// How long [`lock`] keeps retrying a held lock before reporting it.
///
/// A lock can be held briefly by a process that does not own the store:
/// when any thread of the owning process spawns a child, the child shares
/// every open file description (and so the flock) from fork until exec
/// closes them. A reopen racing with that window would otherwise fail
/// spuriously; a real second owner keeps the lock far longer than this.
const LOCK_PATIENCE: Duration = Duration::from_millis(250);

pub(crate) fn lock(dir: &Path) -> Result<DirLock> {
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(LOCK_FILE))?;
    let deadline = Instant::now() + LOCK_PATIENCE;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(DirLock { _file: file }),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(TryLockError::WouldBlock) => return Err(Error::Locked(dir.to_path_buf())),
            Err(TryLockError::Error(e)) => return Err(Error::Io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_revision() {
        let dir = Path::new("/x");
        let name = |p: PathBuf| p.file_name().and_then(|n| n.to_str()).map(str::to_owned).unwrap_or_default();
        assert_eq!(parse(&name(log_path(dir, 42)), LOG_PREFIX, LOG_SUFFIX), Some(42));
        assert_eq!(parse(&name(snapshot_path(dir, 7)), SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX), Some(7));
        assert!(name(log_path(dir, 9)) < name(log_path(dir, 10)));
        assert_eq!(parse("wal-.log", LOG_PREFIX, LOG_SUFFIX), None);
        assert_eq!(parse("wal-+1.log", LOG_PREFIX, LOG_SUFFIX), None);
    }
}
