//! Acknowledged writes survive closing or dropping the store, and a reopened
//! store continues the revision sequence.

use svcnet_store::{Error, Store, TxnOp};

use crate::support::{b, open, tempdir};

#[tokio::test]
async fn every_write_survives_a_reopen_and_revisions_continue() {
    let dir = tempdir();
    let before = {
        let store = open(dir.path()).await;
        for i in 0..50 {
            store.create(&format!("/k/{i:02}"), b(&format!("v{i}"))).await.expect("create");
        }
        store.update("/k/00", b("updated"), 1).await.expect("update");
        store.delete("/k/01", None).await.expect("delete");
        let ops = vec![
            TxnOp::Create { key: "/t/1".into(), value: b("t") },
            TxnOp::Delete { key: "/k/02".into(), expected: Some(3) },
        ];
        store.txn(ops).await.expect("txn");
        store.list("", None, 0).await.expect("list")
        // Dropped without close: Drop must flush and release the lock.
    };
    assert_eq!(before.revision, 53);

    let store = open(dir.path()).await;
    let after = store.list("", None, 0).await.expect("list");
    assert_eq!(after.revision, before.revision);
    assert_eq!(after.kvs, before.kvs);
    assert_eq!(store.create("/new", b("n")).await.expect("create"), 54);
    store.close().await.expect("close");

    let store = open(dir.path()).await;
    let new = store.get("/new").await.expect("get").expect("/new survived");
    assert_eq!((new.create_revision, new.mod_revision), (54, 54));
    assert_eq!(store.current_revision(), 54);
}

#[tokio::test]
async fn after_a_restart_history_starts_at_the_recovered_revision() {
    let dir = tempdir();
    {
        let store = open(dir.path()).await;
        for i in 0..5 {
            store.create(&format!("/k/{i}"), b("v")).await.expect("create");
        }
        store.close().await.expect("close");
    }
    let store = open(dir.path()).await;
    assert!(matches!(store.watch("", 2).await, Err(Error::Compacted { requested: 2, compacted: 5 })));
    let mut watch = store.watch("", store.current_revision()).await.expect("watch from current");
    store.create("/k/5", b("v")).await.expect("create");
    let event = crate::support::next_event(&mut watch).await;
    assert_eq!(event.kv.mod_revision, 6);
}
