//! Damage at the end of the log (a crash mid-append) is repaired on open;
//! damage before the end is refused as corruption.

use std::io::Write;
use std::path::Path;

use svcnet_store::{EmbeddedStore, Error, Store};

use crate::support::{active_log, b, file_len, open, tempdir};

/// Writes `/k/0..n` and closes; returns the log length after each write.
async fn write_keys(dir: &Path, n: usize) -> Vec<u64> {
    let store = open(dir).await;
    let mut lens = Vec::new();
    for i in 0..n {
        store.create(&format!("/k/{i}"), b(&format!("value-{i}"))).await.expect("create");
        lens.push(file_len(&active_log(dir)));
    }
    store.close().await.expect("close");
    lens
}

fn append(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).expect("open log");
    file.write_all(bytes).expect("append");
}

async fn assert_keys_then_write_more(dir: &Path, n: usize) {
    let store = open(dir).await;
    assert_eq!(store.current_revision(), n as i64);
    let list = store.list("/k/", None, 0).await.expect("list");
    assert_eq!(list.kvs.len(), n);
    for i in 0..n {
        let kv = store.get(&format!("/k/{i}")).await.expect("get");
        assert_eq!(kv.map(|kv| kv.value), Some(b(&format!("value-{i}"))), "key {i}");
    }
    assert_eq!(store.create("/after", b("x")).await.expect("create after repair"), n as i64 + 1);
    store.close().await.expect("close");
    // And the repaired log plus the new write replay cleanly.
    let store = open(dir).await;
    assert_eq!(store.current_revision(), n as i64 + 1);
    store.close().await.expect("close");
}

#[tokio::test]
async fn random_garbage_after_the_last_record_is_truncated_and_writing_continues() {
    let dir = tempdir();
    let lens = write_keys(dir.path(), 10).await;
    let log = active_log(dir.path());
    let garbage: Vec<u8> = (0..777u32).map(|_| rand::random::<u8>()).collect();
    append(&log, &garbage);
    let store = open(dir.path()).await;
    assert_eq!(file_len(&log), lens[9], "garbage truncated on open");
    drop(store);
    assert_keys_then_write_more(dir.path(), 10).await;
}

#[tokio::test]
async fn a_zeroed_tail_is_truncated() {
    let dir = tempdir();
    write_keys(dir.path(), 3).await;
    append(&active_log(dir.path()), &[0u8; 8192]);
    assert_keys_then_write_more(dir.path(), 3).await;
}

#[tokio::test]
async fn a_partially_written_last_record_is_dropped() {
    let dir = tempdir();
    let lens = write_keys(dir.path(), 10).await;
    let log = active_log(dir.path());
    // Cut the last frame at several points, from one byte in to one short.
    for cut in [lens[8] + 1, lens[8] + 10, (lens[8] + lens[9]) / 2, lens[9] - 1] {
        let copy = tempdir();
        for entry in std::fs::read_dir(dir.path()).expect("read dir").flatten() {
            if entry.file_name() != "LOCK" {
                std::fs::copy(entry.path(), copy.path().join(entry.file_name())).expect("copy");
            }
        }
        let copied_log = copy.path().join(log.file_name().expect("log name"));
        std::fs::OpenOptions::new().write(true).open(&copied_log).expect("open").set_len(cut).expect("cut");
        assert_keys_then_write_more(copy.path(), 9).await;
    }
}

#[tokio::test]
async fn damage_before_the_last_record_refuses_to_open() {
    let dir = tempdir();
    let lens = write_keys(dir.path(), 10).await;
    let log = active_log(dir.path());
    let mut bytes = std::fs::read(&log).expect("read log");
    // Flip a byte inside the third frame's payload.
    let target = (lens[1] + lens[2]) as usize / 2;
    bytes[target] ^= 0x40;
    std::fs::write(&log, &bytes).expect("write log");
    let opened = EmbeddedStore::open(dir.path(), Default::default()).await;
    assert!(matches!(opened, Err(Error::Corrupt(_))), "got {opened:?}");
    // Refusing must not have "repaired" anything.
    assert_eq!(file_len(&log), lens[9]);
}

#[tokio::test]
async fn a_missing_log_in_the_middle_of_the_chain_is_corruption() {
    let dir = tempdir();
    let config = svcnet_store::EmbeddedStoreConfig { log_compaction_bytes: u64::MAX, ..Default::default() };
    {
        let store = crate::support::open_with(dir.path(), config.clone()).await;
        store.create("/a", b("1")).await.expect("create");
        store.close().await.expect("close");
    }
    // A log named far ahead of the data implies lost revisions in between.
    std::fs::write(dir.path().join(format!("wal-{:020}.log", 10)), b"").expect("write");
    let opened = EmbeddedStore::open(dir.path(), config).await;
    assert!(matches!(opened, Err(Error::Corrupt(_))), "got {opened:?}");
}
