//! Shared helpers: opening stores, reading watches with deadlines, and
//! inspecting the store directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use svcnet_store::{EmbeddedStore, EmbeddedStoreConfig, Watch, WatchEvent};

pub fn b(s: &str) -> Bytes {
    Bytes::from(s.to_owned())
}

pub async fn open(dir: &Path) -> Arc<EmbeddedStore> {
    open_with(dir, EmbeddedStoreConfig::default()).await
}

pub async fn open_with(dir: &Path, config: EmbeddedStoreConfig) -> Arc<EmbeddedStore> {
    match EmbeddedStore::open(dir, config).await {
        Ok(store) => store,
        Err(e) => panic!("open {}: {e}", dir.display()),
    }
}

/// The next watch item, failing the test if none arrives within 10 s.
pub async fn next_item(watch: &mut Watch) -> Option<svcnet_store::Result<WatchEvent>> {
    match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
        Ok(item) => item,
        Err(_) => panic!("no watch event within 10 s"),
    }
}

pub async fn next_event(watch: &mut Watch) -> WatchEvent {
    match next_item(watch).await {
        Some(Ok(event)) => event,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

/// Files in `dir` whose names start with `prefix`, sorted.
pub fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)));
    out.sort();
    out
}

/// The newest log file (the one being appended to).
pub fn active_log(dir: &Path) -> PathBuf {
    match files(dir, "wal-").pop() {
        Some(path) => path,
        None => panic!("no log in {}", dir.display()),
    }
}

pub fn file_len(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) => panic!("stat {}: {e}", path.display()),
    }
}

/// Polls `condition` until it holds, failing after `within`.
pub async fn eventually(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !condition() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("tempdir: {e}"),
    }
}

/// A seed from `SVCNET_STORE_SEED` to replay a failure, else a fresh one.
/// Printed so that a failing run's captured output shows it.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("SVCNET_STORE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("{test}: seed {seed} (rerun with SVCNET_STORE_SEED={seed})");
    seed
}
