//! Single-client semantics: CRUD, CAS, revision numbering, txn atomicity,
//! list pagination, the directory lock and close.

use svcnet_store::{Error, EventKind, Store, TxnOp};

use crate::support::{b, next_event, open, tempdir};

#[tokio::test]
async fn revisions_count_successful_writes_and_cas_guards_updates() {
    let dir = tempdir();
    let store = open(dir.path()).await;
    assert_eq!(store.current_revision(), 0);
    assert_eq!(store.create("/a", b("1")).await.expect("create /a"), 1);
    assert_eq!(store.create("/b", b("1")).await.expect("create /b"), 2);
    assert!(matches!(store.create("/a", b("x")).await, Err(Error::AlreadyExists(k)) if k == "/a"));
    assert_eq!(store.update("/a", b("2"), 1).await.expect("update /a"), 3);
    assert!(matches!(
        store.update("/a", b("3"), 1).await,
        Err(Error::Conflict { key, expected: 1, current: 3 }) if key == "/a"
    ));
    assert!(matches!(store.update("/nope", b("x"), 1).await, Err(Error::NotFound(_))));

    let a = store.get("/a").await.expect("get").expect("/a exists");
    assert_eq!((a.value, a.create_revision, a.mod_revision), (b("2"), 1, 3));

    assert!(matches!(store.delete("/a", Some(1)).await, Err(Error::Conflict { current: 3, .. })));
    let deleted = store.delete("/a", Some(3)).await.expect("delete /a");
    assert_eq!(
        (deleted.key.as_str(), deleted.value, deleted.create_revision, deleted.mod_revision),
        ("/a", b("2"), 1, 4)
    );
    assert!(store.get("/a").await.expect("get").is_none());
    assert!(matches!(store.delete("/a", None).await, Err(Error::NotFound(_))));

    // Recreating starts a new lifetime with a new create_revision.
    assert_eq!(store.create("/a", b("again")).await.expect("recreate"), 5);
    let a = store.get("/a").await.expect("get").expect("/a exists");
    assert_eq!((a.create_revision, a.mod_revision), (5, 5));
    // Failed calls used no revision.
    assert_eq!(store.current_revision(), 5);
}

#[tokio::test]
async fn a_txn_applies_all_ops_at_one_revision_or_none() {
    let dir = tempdir();
    let store = open(dir.path()).await;
    store.create("/a", b("a")).await.expect("create");
    store.create("/b", b("b")).await.expect("create");

    let failing = vec![
        TxnOp::Create { key: "/x".into(), value: b("x") },
        TxnOp::Update { key: "/a".into(), value: b("a2"), expected: 1 },
        TxnOp::Create { key: "/b".into(), value: b("dup") },
        TxnOp::Delete { key: "/missing".into(), expected: None },
    ];
    assert!(matches!(store.txn(failing).await, Err(Error::AlreadyExists(k)) if k == "/b"));
    assert!(store.get("/x").await.expect("get").is_none());
    assert_eq!(store.get("/a").await.expect("get").map(|kv| kv.mod_revision), Some(1));
    assert_eq!(store.current_revision(), 2);

    let ok = vec![
        TxnOp::Create { key: "/x".into(), value: b("x") },
        TxnOp::Update { key: "/a".into(), value: b("a2"), expected: 1 },
        TxnOp::Delete { key: "/b".into(), expected: Some(2) },
    ];
    assert_eq!(store.txn(ok).await.expect("txn"), 3);
    let list = store.list("/", None, 0).await.expect("list");
    let seen: Vec<_> = list.kvs.iter().map(|kv| (kv.key.as_str(), kv.create_revision, kv.mod_revision)).collect();
    assert_eq!(seen, [("/a", 1, 3), ("/x", 3, 3)]);

    assert_eq!(store.txn(Vec::new()).await.expect("empty txn"), 3, "an empty txn writes nothing");
}

#[tokio::test]
async fn list_pages_through_a_prefix_in_order() {
    let dir = tempdir();
    let store = open(dir.path()).await;
    for key in ["/other/1", "/p", "/p0", "/q/1"] {
        store.create(key, b("-")).await.expect("create");
    }
    // Created out of order to show the listing sorts.
    for i in (0..25).rev() {
        store.create(&format!("/p/{i:02}"), b("v")).await.expect("create");
    }
    let mut keys = Vec::new();
    let mut start_after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.list("/p/", start_after.as_deref(), 10).await.expect("list");
        assert_eq!(page.revision, store.current_revision());
        pages += 1;
        keys.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        start_after = page.kvs.last().map(|kv| kv.key.clone());
        if !page.more {
            assert_eq!(page.kvs.len(), 5);
            break;
        }
        assert_eq!(page.kvs.len(), 10);
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("/p/{i:02}")).collect();
    assert_eq!(keys, expected);
    let all = store.list("/p/", None, 0).await.expect("list");
    assert_eq!((all.kvs.len(), all.more), (25, false));
    let exact = store.list("/p/", None, 25).await.expect("list");
    assert_eq!((exact.kvs.len(), exact.more), (25, false));
}

#[tokio::test]
async fn delete_events_carry_the_deleted_value_and_the_previous_one() {
    let dir = tempdir();
    let store = open(dir.path()).await;
    let mut watch = store.watch("/k", 0).await.expect("watch");
    store.create("/k", b("v1")).await.expect("create");
    store.update("/k", b("v2"), 1).await.expect("update");
    let deleted = store.delete("/k", None).await.expect("delete");

    let created = next_event(&mut watch).await;
    assert_eq!((created.kind, created.kv.mod_revision, created.prev.is_none()), (EventKind::Put, 1, true));
    let updated = next_event(&mut watch).await;
    assert_eq!(updated.kind, EventKind::Put);
    assert_eq!(updated.prev.map(|p| (p.value, p.mod_revision)), Some((b("v1"), 1)));
    let gone = next_event(&mut watch).await;
    assert_eq!(gone.kind, EventKind::Delete);
    assert_eq!(gone.kv, deleted);
    assert_eq!((gone.kv.value, gone.kv.mod_revision), (b("v2"), 3));
    assert_eq!(gone.prev.map(|p| p.mod_revision), Some(2));
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused_until_close() {
    let dir = tempdir();
    let store = open(dir.path()).await;
    let second = svcnet_store::EmbeddedStore::open(dir.path(), Default::default()).await;
    assert!(matches!(second, Err(Error::Locked(_))), "got {second:?}");
    store.close().await.expect("close");
    let reopened = open(dir.path()).await;
    reopened.close().await.expect("close");
}

#[tokio::test]
async fn after_close_writes_and_watches_fail_but_reads_still_answer() {
    let dir = tempdir();
    let store = open(dir.path()).await;
    store.create("/k", b("v")).await.expect("create");
    let mut watch = store.watch("", 0).await.expect("watch");
    store.close().await.expect("close");
    store.close().await.expect("close is idempotent");
    assert!(matches!(store.create("/j", b("v")).await, Err(Error::Closed)));
    assert!(matches!(store.watch("", 0).await, Err(Error::Closed)));
    assert!(store.get("/k").await.expect("get").is_some());
    // The open watch delivers what it had, then ends.
    assert!(matches!(watch.next().await, Some(Ok(_))));
    assert!(watch.next().await.is_none());
}
