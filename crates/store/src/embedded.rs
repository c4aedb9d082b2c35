//! [`EmbeddedStore`]: the default [`Store`], an in-memory index made durable
//! by an append-only log with group commit. Start here.
//!
//! ```text
//!  callers ──mpsc──▶ writer thread ──frame+fdatasync──▶ wal-<rev>.log
//!     ▲                  │ after fsync: apply under a short write lock
//!     │ get/list         ▼                      publish to watchers
//!     └──── RwLock<Index> ◀──────────────────── WatchHub (history + watchers)
//! ```
//!
//! Module map (one concern per file):
//!
//! | file          | concern                                                 |
//! |---------------|---------------------------------------------------------|
//! | `writer.rs`   | the group-commit loop, publication, triggering snapshots |
//! | `batch.rs`    | validating a batch with exactly sequential semantics    |
//! | `index.rs`    | the in-memory key space and the `Record` it applies      |
//! | `log.rs`      | the log frame format and torn-tail detection            |
//! | `snapshot.rs` | the snapshot format and its crash-safe replacement      |
//! | `recovery.rs` | rebuilding the index at open                            |
//! | `hub.rs`      | watch fan-out and the bounded event history             |
//! | `dir.rs`      | file names in the store directory and the `LOCK` file   |
//! | `codec.rs`    | integer/byte-string encoding and the untrusted reader   |
//!
//! On disk the directory holds `LOCK`, at most one current
//! `snapshot-<rev>.snap` and a chain of `wal-<first rev>.log` files of
//! checksummed frames, one frame per group commit. Open loads the snapshot,
//! replays the logs after it and truncates a torn final frame (it was never
//! acknowledged). Everything read from disk is checked; damage anywhere but
//! the tail is [`Error::Corrupt`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, mpsc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::hub::WatchHub;
use crate::index::Index;
use crate::writer::{Committed, Request, WriteRequest, Writer};
use crate::{Error, KeyValue, ListResult, Result, Revision, Store, TxnOp, Watch, dir, recovery};

/// Tuning for [`EmbeddedStore`]. The defaults suit an API server.
///
/// | field                  | default     | effect |
/// |------------------------|-------------|--------|
/// | `log_compaction_bytes` | 64 MiB      | log size after which a snapshot replaces it (only once the log is also more than twice the live data); `u64::MAX` disables |
/// | `history_events`       | 100 000     | events kept in memory for watches resuming from the past; older revisions answer `Compacted` |
/// | `watch_buffer`         | 4 096       | events a watcher may fall behind before it gets `WatcherTooSlow` (a watch resuming from the past also gets room for its backlog) |
/// | `max_batch`            | 4 096       | most write calls made durable by one fsync |
#[derive(Clone, Debug)]
pub struct EmbeddedStoreConfig {
    pub log_compaction_bytes: u64,
    pub history_events: usize,
    pub watch_buffer: usize,
    pub max_batch: usize,
}

impl Default for EmbeddedStoreConfig {
    fn default() -> Self {
        Self { log_compaction_bytes: 64 << 20, history_events: 100_000, watch_buffer: 4096, max_batch: 4096 }
    }
}

/// State shared by the callers' handles and the writer thread.
pub(crate) struct Shared {
    /// Durable state only; written solely by the writer, after fsync.
    pub(crate) index: RwLock<Index>,
    /// Mirrors `index.revision()` so `current_revision` needs no lock.
    pub(crate) revision: AtomicI64,
    pub(crate) hub: Mutex<WatchHub>,
}

// The critical sections below never panic midway (they only move data that
// is already validated), so a poisoned lock still guards consistent data.
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The embedded, durable [`Store`]. See the module docs for the design.
///
/// Writes are acknowledged only once fsynced. A write whose future is dropped
/// before it resolves may still be applied. After [`EmbeddedStore::close`]
/// (or dropping the last handle) writes and new watches fail with
/// [`Error::Closed`]; reads keep answering from the last durable state.
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    /// A std channel: sending never blocks, and the writer thread can wait
    /// on it with a timeout (see `Running::linger`).
    requests: mpsc::Sender<Request>,
    writer: Mutex<Option<JoinHandle<()>>>,
    dir: PathBuf,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("dir", &self.dir)
            .field("revision", &self.current_revision())
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir`: takes the directory
    /// lock, recovers the state and starts the writer thread.
    ///
    /// Fails with [`Error::Locked`] if the directory is already open, and
    /// with [`Error::Corrupt`] if the files are damaged other than by a torn
    /// final write.
    pub async fn open(dir: &Path, config: EmbeddedStoreConfig) -> Result<Arc<Self>> {
        let dir = dir.to_path_buf();
        match tokio::task::spawn_blocking(move || Self::open_blocking(dir, config)).await {
            Ok(result) => result,
            Err(e) => Err(Error::Io(std::io::Error::other(e))),
        }
    }

    fn open_blocking(dir_path: PathBuf, config: EmbeddedStoreConfig) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&dir_path)?;
        let dir_lock = dir::lock(&dir_path)?;
        let recovered = recovery::recover(&dir_path)?;
        let revision = recovered.index.revision();
        tracing::info!(
            dir = %dir_path.display(),
            revision,
            keys = recovered.index.len(),
            "opened embedded store"
        );
        let shared = Arc::new(Shared {
            index: RwLock::new(recovered.index),
            revision: AtomicI64::new(revision),
            hub: Mutex::new(WatchHub::new(revision, config.history_events, config.watch_buffer)),
        });
        let (requests, rx) = mpsc::channel();
        let writer = Writer {
            shared: Arc::clone(&shared),
            rx,
            dir: dir_path.clone(),
            config,
            log: recovered.log,
            log_len: recovered.log_len,
            _lock: dir_lock,
        };
        let handle = std::thread::Builder::new().name("svcnet-store-writer".into()).spawn(move || writer.run())?;
        Ok(Arc::new(Self { shared, requests, writer: Mutex::new(Some(handle)), dir: dir_path }))
    }

    /// The directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Finishes the writes already submitted, stops the writer, ends all
    /// watches and releases the directory lock. Idempotent.
    pub async fn close(&self) -> Result<()> {
        let (done, stopped) = oneshot::channel();
        if self.requests.send(Request::Shutdown(done)).is_ok() {
            // An error means the writer already exited, which is the goal.
            let _ = stopped.await;
        }
        // The writer has released everything; reaping the thread is instant.
        let handle = lock(&self.writer).take();
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!("store writer thread panicked");
        }
        Ok(())
    }

    async fn submit(&self, ops: Vec<TxnOp>) -> Result<Committed> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request::Write(WriteRequest { ops, reply })).map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }
}

impl Drop for EmbeddedStore {
    /// Stops the writer after it has flushed what was queued. This blocks for
    /// at most one batch (plus an in-flight snapshot); call
    /// [`EmbeddedStore::close`] first to do that wait asynchronously.
    fn drop(&mut self) {
        let (done, _) = oneshot::channel();
        let _ = self.requests.send(Request::Shutdown(done));
        let handle = lock(&self.writer).take();
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!("store writer thread panicked");
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(read(&self.shared.index).get(key))
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<ListResult> {
        Ok(read(&self.shared.index).list(prefix, start_after, limit))
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        let op = TxnOp::Create { key: key.to_owned(), value };
        Ok(self.submit(vec![op]).await?.revision)
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        let op = TxnOp::Update { key: key.to_owned(), value, expected };
        Ok(self.submit(vec![op]).await?.revision)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let op = TxnOp::Delete { key: key.to_owned(), expected };
        let committed = self.submit(vec![op]).await?;
        // A successful single delete always reports what it removed.
        committed.deleted.ok_or_else(|| Error::NotFound(key.to_owned()))
    }

    /// An empty `ops` writes nothing and returns the current revision.
    async fn txn(&self, ops: Vec<TxnOp>) -> Result<Revision> {
        if ops.is_empty() {
            return Ok(self.current_revision());
        }
        Ok(self.submit(ops).await?.revision)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch> {
        lock(&self.shared.hub).watch(prefix, after)
    }

    fn current_revision(&self) -> Revision {
        self.shared.revision.load(Ordering::Acquire)
    }

    /// Only the in-memory watch history is affected; the disk log is
    /// compacted on its own schedule (see [`EmbeddedStoreConfig`]).
    async fn compact(&self, revision: Revision) -> Result<()> {
        lock(&self.shared.hub).compact(revision);
        Ok(())
    }
}
