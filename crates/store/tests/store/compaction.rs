//! Log compaction under concurrent load: snapshots replace old logs, reads
//! keep working throughout, and a reopen restores exactly the final state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use svcnet_store::{EmbeddedStoreConfig, Store};

use crate::support::{b, eventually, files, open_with, tempdir};

const TASKS: usize = 8;
const KEYS_PER_TASK: usize = 20;
const UPDATES_PER_TASK: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compaction_under_load_keeps_every_write() {
    let dir = tempdir();
    let config = EmbeddedStoreConfig { log_compaction_bytes: 64 << 10, ..Default::default() };
    let store = open_with(dir.path(), config.clone()).await;

    let stop_readers = Arc::new(AtomicBool::new(false));
    let reader = {
        let store = Arc::clone(&store);
        let stop = Arc::clone(&stop_readers);
        tokio::spawn(async move {
            let mut lists = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let list = store.list("/c/", None, 0).await.expect("list during compaction");
                assert!(list.kvs.iter().all(|kv| kv.mod_revision <= list.revision));
                lists += 1;
                tokio::task::yield_now().await;
            }
            lists
        })
    };

    let mut writers = Vec::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            // Each task owns its keys, so its last acknowledged value is final.
            let mut last = BTreeMap::new();
            for k in 0..KEYS_PER_TASK {
                let key = format!("/c/{task}/{k:02}");
                let rev = store.create(&key, b("initial")).await.expect("create");
                last.insert(key, (rev, b("initial")));
            }
            for i in 0..UPDATES_PER_TASK {
                let key = format!("/c/{task}/{:02}", i % KEYS_PER_TASK);
                let value = b(&format!("{key}={i}:{}", "x".repeat(300)));
                let expected = last[&key].0;
                let rev = store.update(&key, value.clone(), expected).await.expect("update");
                last.insert(key, (rev, value));
            }
            last
        }));
    }
    let mut expected = BTreeMap::new();
    for writer in writers {
        expected.extend(writer.await.expect("writer task"));
    }
    stop_readers.store(true, Ordering::Relaxed);
    assert!(reader.await.expect("reader task") > 0);

    let total_writes = (TASKS * (KEYS_PER_TASK + UPDATES_PER_TASK)) as i64;
    assert_eq!(store.current_revision(), total_writes);
    // ~1.4 MiB of log against a 64 KiB threshold: old logs must be gone.
    eventually("old logs and snapshots removed", Duration::from_secs(10), || {
        files(dir.path(), "snapshot-").len() == 1 && files(dir.path(), "wal-").len() <= 2
    })
    .await;
    store.close().await.expect("close");

    let store = open_with(dir.path(), config).await;
    assert_eq!(store.current_revision(), total_writes);
    let list = store.list("/c/", None, 0).await.expect("list");
    let found: BTreeMap<_, _> = list.kvs.into_iter().map(|kv| (kv.key, (kv.mod_revision, kv.value))).collect();
    assert_eq!(found, expected);
    assert_eq!(store.create("/c/new", b("n")).await.expect("create"), total_writes + 1);
}

/// Writes `n` updates of one key with log compaction disabled, so the log
/// is much larger than the live data; returns the final revision.
async fn write_one_log(dir: &std::path::Path, n: usize) -> i64 {
    let config = EmbeddedStoreConfig { log_compaction_bytes: u64::MAX, ..Default::default() };
    let store = open_with(dir, config).await;
    let mut rev = store.create("/hot", b("0")).await.expect("create");
    for i in 1..n {
        rev = store.update("/hot", b(&i.to_string()), rev).await.expect("update");
    }
    store.create("/cold", b("c")).await.expect("create");
    store.close().await.expect("close");
    rev + 1
}

async fn assert_recovers(dir: &std::path::Path, revision: i64, hot: &str) {
    let store = crate::support::open(dir).await;
    assert_eq!(store.current_revision(), revision);
    assert_eq!(store.get("/hot").await.expect("get").map(|kv| kv.value), Some(b(hot)));
    assert!(store.get("/cold").await.expect("get").is_some());
    assert_eq!(store.create("/next", b("n")).await.expect("create"), revision + 1);
    store.close().await.expect("close");
    let store = crate::support::open(dir).await;
    assert_eq!(store.current_revision(), revision + 1);
    store.close().await.expect("close");
}

#[tokio::test]
async fn a_crash_after_starting_a_new_log_but_before_the_snapshot_recovers() {
    let dir = tempdir();
    let revision = write_one_log(dir.path(), 100).await;
    // What rotation leaves behind: an empty log named after the next revision.
    std::fs::write(dir.path().join(format!("wal-{:020}.log", revision + 1)), b"").expect("write");
    // And a snapshot that was being written when the crash hit.
    std::fs::write(dir.path().join(format!("snapshot-{revision:020}.tmp")), b"half a snap").expect("write");
    assert_recovers(dir.path(), revision, "99").await;
    assert!(files(dir.path(), "snapshot-").is_empty(), "the partial snapshot is removed");
}

#[tokio::test]
async fn a_crash_after_the_snapshot_but_before_deleting_old_logs_recovers() {
    let dir = tempdir();
    let revision = write_one_log(dir.path(), 200).await;
    let old_log = files(dir.path(), "wal-").pop().expect("log");
    let saved = std::fs::read(&old_log).expect("read log");

    // One more write with a tiny threshold triggers a real compaction.
    let config = EmbeddedStoreConfig { log_compaction_bytes: 1, ..Default::default() };
    let store = open_with(dir.path(), config).await;
    store.update("/hot", b("final"), revision - 1).await.expect("update");
    store.close().await.expect("close (waits for the snapshot)");
    assert_eq!(files(dir.path(), "snapshot-").len(), 1);
    assert!(!old_log.exists(), "compaction deleted the old log");

    // Put the superseded log back, as if the crash hit before deletion.
    std::fs::write(&old_log, saved).expect("restore old log");
    assert_recovers(dir.path(), revision + 1, "final").await;
    assert!(!old_log.exists(), "recovery removes the redundant log");
}
