//! Errors returned by stores.

use crate::Revision;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("key {0:?} already exists")]
    AlreadyExists(String),
    #[error("key {0:?} not found")]
    NotFound(String),
    #[error("key {key:?} is at revision {current}, not the expected {expected}")]
    Conflict { key: String, expected: Revision, current: Revision },
    #[error("revision {requested} has been compacted; oldest available is {compacted}")]
    Compacted { requested: Revision, compacted: Revision },
    #[error("watcher fell too far behind and was closed")]
    WatcherTooSlow,
    #[error("store is closed")]
    Closed,
    #[error("store directory {0:?} is already open in another process or handle")]
    Locked(std::path::PathBuf),
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    #[error("store I/O failed")]
    Io(#[source] std::io::Error),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
