//! svcnet's storage layer.
//!
//! The API server talks to storage only through [`Store`], a trait shaped like
//! etcd's KV and watch APIs: string keys, opaque byte values, one global
//! monotonically increasing revision, compare-and-swap guarded by a key's
//! `mod_revision`, and watches that resume from a revision. That shape is
//! deliberate: an etcd backend can be added later without the API layer
//! noticing.
//!
//! [`EmbeddedStore`] is the default backend: an in-memory index over an
//! append-only, checksummed log with group commit. Start reading at
//! `embedded.rs`.

mod batch;
mod codec;
mod dir;
mod embedded;
mod error;
mod hub;
mod index;
mod log;
mod recovery;
mod snapshot;
mod types;
mod writer;

pub use embedded::{EmbeddedStore, EmbeddedStoreConfig};
pub use error::{Error, Result};
pub use types::{EventKind, KeyValue, ListResult, Revision, TxnOp, Watch, WatchEvent};

use async_trait::async_trait;
use bytes::Bytes;

/// The storage contract the API server relies on.
///
/// Revisions start at 1 for the first write and increase by exactly one per
/// successful write call (a [`Store::txn`] is one write). Every successful
/// write is durable before the call returns.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The value at `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Keys starting with `prefix`, in lexicographic order, strictly after
    /// `start_after` when given, at most `limit` of them (0 = no limit).
    /// `ListResult::revision` is the store revision the list was taken at and
    /// `more` tells whether keys were left out because of `limit`.
    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<ListResult>;

    /// Creates `key`; fails with [`Error::AlreadyExists`] if it exists.
    /// Returns the revision of the write.
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision>;

    /// Replaces `key` if its current `mod_revision` is `expected`; fails with
    /// [`Error::NotFound`] or [`Error::Conflict`]. Returns the new revision.
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision>;

    /// Deletes `key`, guarded by `expected` when given. Returns the deleted
    /// key-value with `mod_revision` set to the revision of the delete.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue>;

    /// Applies all `ops` atomically at one revision, or none of them.
    /// The first failing op's error is returned.
    async fn txn(&self, ops: Vec<TxnOp>) -> Result<Revision>;

    /// Events for keys under `prefix` with revision strictly greater than
    /// `after`, in revision order, then live ones. Fails with
    /// [`Error::Compacted`] when history after `after` is no longer kept.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch>;

    /// The revision of the latest durable write (0 for an empty store).
    fn current_revision(&self) -> Revision;

    /// Discards history at or below `revision`; watches from there fail.
    async fn compact(&self, revision: Revision) -> Result<()>;
}
