//! Watch semantics: resuming from history, compaction, the bounded history,
//! txn events and slow watchers.

use std::time::Duration;

use svcnet_store::{EmbeddedStoreConfig, Error, Store, TxnOp};

use crate::support::{b, next_event, next_item, open, open_with, tempdir};

#[tokio::test]
async fn a_watch_replays_history_after_its_revision_then_goes_live() {
    let dir = tempdir();
    let store = open(dir.path()).await;
    for i in 1..=5 {
        store.create(&format!("/a/{i}"), b("v")).await.expect("create");
        store.create(&format!("/b/{i}"), b("v")).await.expect("create");
    }
    let mut watch = store.watch("/a/", 4).await.expect("watch");
    store.create("/a/6", b("v")).await.expect("create");
    let mut revisions = Vec::new();
    for _ in 0..4 {
        revisions.push(next_event(&mut watch).await.kv.mod_revision);
    }
    assert_eq!(revisions, [5, 7, 9, 11]);
}

#[tokio::test]
async fn watching_from_a_compacted_revision_fails() {
    let dir = tempdir();
    let store = open(dir.path()).await;
    for i in 1..=5 {
        store.create(&format!("/k/{i}"), b("v")).await.expect("create");
    }
    store.compact(3).await.expect("compact");
    assert!(matches!(store.watch("", 2).await, Err(Error::Compacted { requested: 2, compacted: 3 })));
    let mut watch = store.watch("", 3).await.expect("watch from the compaction point");
    assert_eq!(next_event(&mut watch).await.kv.mod_revision, 4);
    assert_eq!(next_event(&mut watch).await.kv.mod_revision, 5);
    // Compacting beyond the head stops at the head: watching from the
    // current revision is always possible.
    store.compact(1_000).await.expect("compact");
    assert!(store.watch("", store.current_revision()).await.is_ok());
}

#[tokio::test]
async fn the_history_keeps_only_the_configured_number_of_events() {
    let dir = tempdir();
    let config = EmbeddedStoreConfig { history_events: 10, ..Default::default() };
    let store = open_with(dir.path(), config).await;
    for i in 1..=30 {
        store.create(&format!("/k/{i}"), b("v")).await.expect("create");
    }
    assert!(matches!(store.watch("", 5).await, Err(Error::Compacted { requested: 5, compacted: 20 })));
    let mut watch = store.watch("", 20).await.expect("watch within the history");
    assert_eq!(next_event(&mut watch).await.kv.mod_revision, 21);
}

#[tokio::test]
async fn a_txn_produces_one_event_per_op_at_one_revision() {
    let dir = tempdir();
    let store = open(dir.path()).await;
    store.create("/a", b("a")).await.expect("create");
    let mut watch = store.watch("", store.current_revision()).await.expect("watch");
    let ops =
        vec![TxnOp::Create { key: "/b".into(), value: b("b") }, TxnOp::Delete { key: "/a".into(), expected: None }];
    let revision = store.txn(ops).await.expect("txn");
    let first = next_event(&mut watch).await;
    let second = next_event(&mut watch).await;
    assert_eq!((first.kv.key.as_str(), first.kv.mod_revision), ("/b", revision));
    assert_eq!((second.kv.key.as_str(), second.kv.mod_revision), ("/a", revision));
}

#[tokio::test]
async fn a_slow_watcher_is_cut_off_without_blocking_writers() {
    let dir = tempdir();
    let config = EmbeddedStoreConfig { watch_buffer: 8, ..Default::default() };
    let store = open_with(dir.path(), config).await;
    let mut slow = store.watch("", 0).await.expect("watch");
    let mut fast = store.watch("", 0).await.expect("watch");
    let fast_reader = tokio::spawn(async move {
        let mut last = 0;
        while last < 200 {
            last = next_event(&mut fast).await.kv.mod_revision;
        }
        last
    });
    let writes = async {
        for i in 0..200 {
            store.create(&format!("/k/{i}"), b("v")).await.expect("create");
        }
    };
    tokio::time::timeout(Duration::from_secs(20), writes).await.expect("writers must not wait for a slow watcher");
    assert_eq!(fast_reader.await.expect("fast reader"), 200);

    for revision in 1..=8 {
        assert_eq!(next_event(&mut slow).await.kv.mod_revision, revision);
    }
    assert!(matches!(next_item(&mut slow).await, Some(Err(Error::WatcherTooSlow))));
    assert!(next_item(&mut slow).await.is_none(), "the slow watcher is dropped after the error");
}

#[tokio::test]
async fn a_watch_from_the_future_sees_only_later_events() {
    let dir = tempdir();
    let store = open(dir.path()).await;
    let mut watch = store.watch("", 3).await.expect("watch");
    for i in 1..=4 {
        store.create(&format!("/k/{i}"), b("v")).await.expect("create");
    }
    assert_eq!(next_event(&mut watch).await.kv.mod_revision, 4);
}
