//! Values exchanged through the [`Store`](crate::Store) trait.

use bytes::Bytes;

/// A store revision. Revision 0 means "before the first write".
pub type Revision = i64;

/// A key with its value and the revisions that created and last modified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    pub create_revision: Revision,
    pub mod_revision: Revision,
}

/// The answer to [`Store::list`](crate::Store::list).
#[derive(Clone, Debug, Default)]
pub struct ListResult {
    pub kvs: Vec<KeyValue>,
    pub revision: Revision,
    pub more: bool,
}

/// One operation of an atomic [`Store::txn`](crate::Store::txn).
#[derive(Clone, Debug)]
pub enum TxnOp {
    Create { key: String, value: Bytes },
    Update { key: String, value: Bytes, expected: Revision },
    Delete { key: String, expected: Option<Revision> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change seen by a watch. For `Put`, `kv` is the new value; for
/// `Delete`, `kv` holds the last value with `mod_revision` set to the
/// revision of the delete. `prev` is the value before the change, if any.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev: Option<KeyValue>,
}

/// A stream of [`WatchEvent`]s. Dropping it cancels the watch.
pub struct Watch {
    pub(crate) rx: tokio::sync::mpsc::Receiver<crate::Result<WatchEvent>>,
}

impl Watch {
    /// Builds a watch from a channel; backends other than the embedded one
    /// feed it from their own tasks.
    pub fn from_channel(rx: tokio::sync::mpsc::Receiver<crate::Result<WatchEvent>>) -> Self {
        Self { rx }
    }

    /// The next event; `None` once the store side has closed the watch.
    /// An `Err` (for example [`Error::WatcherTooSlow`](crate::Error)) is
    /// the last item.
    pub async fn next(&mut self) -> Option<crate::Result<WatchEvent>> {
        self.rx.recv().await
    }
}
