//! Rebuilding the index at open: newest snapshot, then the log chain.
//!
//! Replay enforces the invariants the writer maintains, so that lost or
//! mixed-up files are reported as [`Error::Corrupt`] instead of silently
//! serving old data:
//!
//! - within the chain, revisions are consecutive, and each log's first
//!   record carries the revision in its name;
//! - records at or below the snapshot's revision are skipped (they are left
//!   over from a compaction that crashed before deleting them); the first
//!   one above it must be exactly snapshot + 1;
//! - only the newest log may end in a torn frame, since the writer never
//!   starts a new log before the previous one's last batch is durable; the
//!   torn bytes were never acknowledged and are truncated away;
//! - no log may be named beyond the recovered revision + 1: it was created
//!   after revisions that are now missing.

use std::fs::{self, File, OpenOptions};
use std::path::Path;

use crate::dir::{self, Listing};
use crate::index::Index;
use crate::{Error, Result, Revision, log, snapshot};

/// What open needs to resume writing.
pub(crate) struct Recovered {
    pub(crate) index: Index,
    /// The log to append to, positioned at its end.
    pub(crate) log: File,
    pub(crate) log_len: u64,
}

struct LogInfo {
    start: Revision,
    last_revision: Option<Revision>,
    valid_len: u64,
    file_len: u64,
}

pub(crate) fn recover(dir_path: &Path) -> Result<Recovered> {
    let listing = Listing::read(dir_path)?;
    let mut dir_changed = false;
    for tmp in &listing.tmp_files {
        fs::remove_file(tmp)?;
        dir_changed = true;
    }

    let mut index = match listing.snapshots.last() {
        Some(&revision) => {
            let path = dir::snapshot_path(dir_path, revision);
            let index = snapshot::decode(&fs::read(&path)?, &path.display().to_string())?;
            if index.revision() != revision {
                return Err(Error::Corrupt(format!(
                    "{} holds revision {}, not the one in its name",
                    path.display(),
                    index.revision()
                )));
            }
            index
        }
        None => Index::default(),
    };
    let snapshot_revision = index.revision();

    let mut logs = Vec::with_capacity(listing.logs.len());
    for (i, &start) in listing.logs.iter().enumerate() {
        let path = dir::log_path(dir_path, start);
        let name = path.display().to_string();
        let bytes = fs::read(&path)?;
        let scanned = log::scan(&bytes, &name)?;
        let is_newest = i + 1 == listing.logs.len();
        if scanned.is_torn(bytes.len()) && !is_newest {
            return Err(Error::Corrupt(format!(
                "{name}: damaged frame at byte {} but a newer log exists",
                scanned.valid_len
            )));
        }
        let mut last_revision = None;
        for record in scanned.records {
            let expected = last_revision.map_or(start, |r: Revision| r + 1);
            if record.revision != expected {
                return Err(Error::Corrupt(format!(
                    "{name}: record has revision {}, expected {expected}",
                    record.revision
                )));
            }
            last_revision = Some(record.revision);
            if record.revision <= snapshot_revision {
                continue;
            }
            if record.revision != index.revision() + 1 {
                return Err(Error::Corrupt(format!(
                    "{name}: revisions {} to {} are missing",
                    index.revision() + 1,
                    record.revision - 1
                )));
            }
            index.apply(record);
        }
        logs.push(LogInfo { start, last_revision, valid_len: scanned.valid_len, file_len: bytes.len() as u64 });
    }

    let revision = index.revision();
    if let Some(log) = logs.iter().find(|l| l.start > revision + 1) {
        return Err(Error::Corrupt(format!(
            "{} exists but revisions {} to {} are missing",
            dir::log_path(dir_path, log.start).display(),
            revision + 1,
            log.start - 1
        )));
    }

    // Keep appending to the newest log only if it ends exactly where the
    // recovered state does; otherwise start a fresh one, so every log keeps
    // holding one consecutive run that begins at its name.
    let active = logs.pop_if(|l| match l.last_revision {
        Some(last) => last == revision,
        None => l.start == revision + 1,
    });
    for old in &logs {
        let redundant = old.last_revision.is_none_or(|last| last <= snapshot_revision);
        if redundant {
            fs::remove_file(dir::log_path(dir_path, old.start))?;
            dir_changed = true;
        }
    }
    for &old in listing.snapshots.iter().filter(|&&s| s < snapshot_revision) {
        fs::remove_file(dir::snapshot_path(dir_path, old))?;
        dir_changed = true;
    }

    let (log, log_len) = match active {
        Some(active) => {
            let path = dir::log_path(dir_path, active.start);
            let file = OpenOptions::new().append(true).open(&path)?;
            if active.valid_len < active.file_len {
                tracing::warn!(
                    log = %path.display(),
                    kept = active.valid_len,
                    dropped = active.file_len - active.valid_len,
                    "truncating torn tail of the store log (an unacknowledged write)"
                );
                file.set_len(active.valid_len)?;
                file.sync_all()?;
            }
            (file, active.valid_len)
        }
        None => {
            // No file of this name can exist here: it would be the newest
            // log, empty, and so would have been chosen as `active`.
            let file = OpenOptions::new().create(true).append(true).open(dir::log_path(dir_path, revision + 1))?;
            dir_changed = true;
            (file, 0)
        }
    };
    if dir_changed {
        dir::sync_dir(dir_path)?;
    }
    Ok(Recovered { index, log, log_len })
}
