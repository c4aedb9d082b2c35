//! The single writer thread: group commit, publication and log compaction.
//!
//! One loop, one batch at a time:
//!
//! 1. block for a request, then drain whatever else is queued (bounded by
//!    count and bytes) — while the previous fsync ran, concurrent clients
//!    queued up, so batch size grows with load and one fsync serves them all.
//!    If fewer requests are queued than the previous batch held, linger
//!    briefly for the rest (see [`Running::linger`]);
//! 2. stage every request against the index plus the batch so far
//!    ([`Batch`]), which keeps results identical to sequential execution;
//! 3. append one frame with all successful records and `fdatasync` it;
//! 4. apply the records to the index under a short write lock, publish the
//!    events to watchers, and only then answer the callers.
//!
//! Readers only ever take the index lock, which is not held during I/O, so
//! they never wait for an fsync and never see a write before it is durable.
//!
//! It is a plain OS thread rather than a tokio task because it spends its
//! life in blocking `write`/`fsync` calls that must not stall an async
//! runtime's workers.
//!
//! When the log passes [`EmbeddedStoreConfig::log_compaction_bytes`] and is
//! more than twice the live data, the writer starts a new log (named after
//! the next revision), serialises the index (a read lock, so readers carry
//! on) and hands the bytes to a helper thread that persists the snapshot and
//! deletes what it supersedes (see `snapshot.rs` for why that is crash-safe).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::batch::Batch;
use crate::dir::{self, DirLock};
use crate::embedded::{Shared, lock, read, write};
use crate::{EmbeddedStoreConfig, Error, KeyValue, Result, Revision, TxnOp, log, snapshot};

/// Soft limit on one batch's frame; beyond it requests wait for the next
/// batch so a burst of large values cannot make a single huge write.
const BATCH_BYTES: usize = 16 << 20;

/// Upper bound on how long a batch waits for stragglers, whatever the disk.
const MAX_LINGER: Duration = Duration::from_millis(1);

pub(crate) enum Request {
    Write(WriteRequest),
    /// Finish queued work, stop, release the directory, then signal.
    Shutdown(oneshot::Sender<()>),
}

pub(crate) struct WriteRequest {
    pub(crate) ops: Vec<TxnOp>,
    pub(crate) reply: oneshot::Sender<Result<Committed>>,
}

impl WriteRequest {
    fn encoded_len(&self) -> usize {
        log::record_len(self.ops.iter().map(|op| match op {
            TxnOp::Create { key, value } | TxnOp::Update { key, value, .. } => (key.as_str(), Some(&value[..])),
            TxnOp::Delete { key, .. } => (key.as_str(), None),
        }))
    }
}

/// The answer to a successful write.
pub(crate) struct Committed {
    pub(crate) revision: Revision,
    /// For a delete: the removed key-value at the delete's revision.
    pub(crate) deleted: Option<KeyValue>,
}

pub(crate) struct Writer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) rx: mpsc::Receiver<Request>,
    pub(crate) dir: PathBuf,
    pub(crate) config: EmbeddedStoreConfig,
    pub(crate) log: File,
    pub(crate) log_len: u64,
    /// Held for the writer's lifetime: whoever writes owns the directory.
    pub(crate) _lock: DirLock,
}

struct Running {
    w: Writer,
    /// A request that did not fit the previous batch.
    carry: Option<WriteRequest>,
    /// Set after a failed append: the log may hold a partial frame and the
    /// outcome of that batch is unknown, so no further write is attempted
    /// until the store is reopened (which truncates the partial frame).
    failed: Option<io::ErrorKind>,
    snapshotter: Option<JoinHandle<io::Result<Revision>>>,
    /// Size of the previous batch: roughly how many clients are active.
    last_batch: usize,
    /// Duration of the previous append + fdatasync.
    last_sync: Duration,
}

impl Writer {
    pub(crate) fn run(self) {
        let mut running =
            Running { w: self, carry: None, failed: None, snapshotter: None, last_batch: 0, last_sync: Duration::ZERO };
        let mut waiters = Vec::new();
        // Ends on a shutdown request or once every sender is gone.
        while let Some((batch, shutdown)) = running.next_batch() {
            let stop = shutdown.is_some();
            waiters.extend(shutdown);
            running.commit(batch);
            running.maybe_compact();
            if stop {
                break;
            }
        }
        // Requests sent from here on are dropped with the receiver, which
        // their callers see as `Closed`.
        if let Some(req) = running.carry.take() {
            let _ = req.reply.send(Err(Error::Closed));
        }
        while let Ok(req) = running.w.rx.try_recv() {
            match req {
                Request::Write(req) => {
                    let _ = req.reply.send(Err(Error::Closed));
                }
                Request::Shutdown(done) => waiters.push(done),
            }
        }
        running.reap_snapshotter(true);
        lock(&running.w.shared.hub).close();
        // Release the directory lock before telling anyone we are done, so a
        // reopen right after `close()` succeeds.
        drop(running);
        for done in waiters {
            let _ = done.send(());
        }
    }
}

impl Running {
    /// The next batch and, if one was found, a shutdown waiter; `None`
    /// once every sender is gone.
    fn next_batch(&mut self) -> Option<(Vec<WriteRequest>, Option<oneshot::Sender<()>>)> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut next = match self.carry.take() {
            Some(req) => Some(Request::Write(req)),
            None => Some(self.w.rx.recv().ok()?),
        };
        let linger_until = Instant::now() + self.linger();
        while let Some(req) = next {
            match req {
                Request::Shutdown(done) => return Some((batch, Some(done))),
                Request::Write(req) => {
                    let len = req.encoded_len();
                    if len + 4 > log::MAX_FRAME_PAYLOAD {
                        let e = io::Error::new(io::ErrorKind::InvalidInput, "write too large for one log frame");
                        let _ = req.reply.send(Err(Error::Io(e)));
                    } else if !batch.is_empty() && (batch.len() >= self.w.config.max_batch || bytes + len > BATCH_BYTES)
                    {
                        self.carry = Some(req);
                        break;
                    } else {
                        bytes += len;
                        batch.push(req);
                    }
                }
            }
            next = match self.w.rx.try_recv() {
                Ok(req) => Some(req),
                // A timeout or disconnect just ends this batch; the next
                // `recv` notices a disconnect.
                Err(TryRecvError::Empty) if batch.len() < self.last_batch => {
                    self.w.rx.recv_timeout(linger_until.saturating_duration_since(Instant::now())).ok()
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
            };
        }
        Some((batch, None))
    }

    /// How long a batch may wait for more requests once queued ones are
    /// drained.
    ///
    /// Without it, group commit under a closed loop of N clients settles
    /// into alternating batches: the moment a batch is answered, the writer
    /// picks up the first one or two clients that come back and fsyncs for
    /// just them, while the rest queue behind that fsync. Waiting for about
    /// as many requests as the previous batch held (they are the clients just
    /// answered) keeps batches full. The wait is capped at half an fsync, so
    /// on a fast disk it costs little, and it ends early once the batch is as
    /// large as the last one; a lone client never waits.
    fn linger(&self) -> Duration {
        if self.last_batch <= 1 { Duration::ZERO } else { MAX_LINGER.min(self.last_sync / 2) }
    }

    fn commit(&mut self, batch: Vec<WriteRequest>) {
        if batch.is_empty() {
            return;
        }
        self.last_batch = batch.len();
        if let Some(kind) = self.failed {
            for req in batch {
                let _ = req.reply.send(Err(failed_error(kind)));
            }
            return;
        }

        let mut answers = Vec::with_capacity(batch.len());
        let mut records = Vec::new();
        let mut events = Vec::new();
        {
            // Only this thread takes the write lock, so holding a read lock
            // while staging blocks nobody.
            let index = read(&self.w.shared.index);
            let mut staging = Batch::new(&index);
            for req in batch {
                let answer = staging.stage(req.ops).map(|staged| {
                    let committed = Committed { revision: staged.record.revision, deleted: staged.deleted };
                    records.push(staged.record);
                    events.extend(staged.events);
                    committed
                });
                answers.push((req.reply, answer));
            }
        }

        if let Some(last) = records.last().map(|r| r.revision) {
            let mut frame = Vec::new();
            log::encode_frame(&records, &mut frame);
            if let Err(e) = self.append(&frame) {
                tracing::error!(error = %e, "store log append failed; refusing further writes until reopened");
                self.failed = Some(e.kind());
                for (reply, _) in answers {
                    let _ = reply.send(Err(failed_error(e.kind())));
                }
                return;
            }
            {
                let mut index = write(&self.w.shared.index);
                for record in records {
                    index.apply(record);
                }
                self.w.shared.revision.store(last, std::sync::atomic::Ordering::Release);
            }
            lock(&self.w.shared.hub).publish(events);
        }
        for (reply, answer) in answers {
            // The caller may have given up waiting; the write stands anyway.
            let _ = reply.send(answer);
        }
    }

    fn append(&mut self, frame: &[u8]) -> io::Result<()> {
        let start = Instant::now();
        self.w.log.write_all(frame)?;
        self.w.log.sync_data()?;
        self.last_sync = start.elapsed();
        self.w.log_len += frame.len() as u64;
        Ok(())
    }

    fn maybe_compact(&mut self) {
        self.reap_snapshotter(false);
        if self.snapshotter.is_some() || self.failed.is_some() {
            return;
        }
        let live = read(&self.w.shared.index).live_bytes();
        if self.w.log_len < self.w.config.log_compaction_bytes || self.w.log_len <= live.saturating_mul(2) {
            return;
        }
        let revision = self.w.shared.revision.load(std::sync::atomic::Ordering::Acquire);
        if let Err(e) = self.rotate(revision + 1) {
            tracing::warn!(error = %e, "could not start a new store log; compaction postponed");
            return;
        }
        // Serialising here (not on the helper thread) pins the snapshot to
        // exactly `revision`, the last record of the logs it will replace.
        let bytes = snapshot::encode(&read(&self.w.shared.index));
        let dir = self.w.dir.clone();
        let spawned = std::thread::Builder::new()
            .name("svcnet-store-snapshot".into())
            .spawn(move || snapshot::persist(&dir, revision, &bytes).map(|()| revision));
        match spawned {
            Ok(handle) => self.snapshotter = Some(handle),
            Err(e) => tracing::warn!(error = %e, "could not start the snapshot thread"),
        }
    }

    /// Switches appends to a new, empty log whose first record will be
    /// `first_revision`, making its directory entry durable first.
    fn rotate(&mut self, first_revision: Revision) -> io::Result<()> {
        let path = dir::log_path(&self.w.dir, first_revision);
        let opened = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|file| dir::sync_dir(&self.w.dir).map(|()| file));
        match opened {
            Ok(file) => {
                self.w.log = file;
                self.w.log_len = 0;
                Ok(())
            }
            Err(e) => {
                // Leaving an empty, unused log behind would be harmless
                // (recovery skips it) but untidy.
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    fn reap_snapshotter(&mut self, wait: bool) {
        let finished = self.snapshotter.as_ref().is_some_and(|h| wait || h.is_finished());
        if !finished {
            return;
        }
        let Some(handle) = self.snapshotter.take() else { return };
        match handle.join() {
            Ok(Ok(revision)) => tracing::debug!(revision, "store snapshot written; old logs removed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "store snapshot failed; logs kept, will retry"),
            Err(_) => tracing::error!("store snapshot thread panicked; logs kept, will retry"),
        }
    }
}

fn failed_error(kind: io::ErrorKind) -> Error {
    Error::Io(io::Error::new(kind, "store log append failed; reopen the store to continue writing"))
}
