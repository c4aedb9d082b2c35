//! API server restarts: transparent reconnects, 410 Gone for history the
//! restarted server no longer has, and reflectors that re-list.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;
use svcnet_client::{
    Api, ChangeKind, DeleteParams, Error, ListParams, Patch, PatchParams, PostParams, Reflector, WatchParams,
};

use crate::eventually;
use crate::harness::{Server, config_map, namespace};
use crate::reflector::{changed, fast, server_view, store_view, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reconnects_transparently_after_the_server_restarts() {
    let mut server = Server::start().await;
    let api = Api::<ConfigMap>::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &config_map("durable", &[])).await.expect("create");
    server.restart().await;
    let cm = api.get("durable").await.expect("the same client works against the restarted server");
    assert_eq!(cm.metadata.name.as_deref(), Some("durable"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_from_a_resource_version_older_than_a_restarted_servers_history_is_gone() {
    let mut server = Server::start().await;
    let api = Api::<ConfigMap>::namespaced(server.client(), "default");
    let old = api.list(&ListParams::default()).await.expect("list").resource_version().to_string();
    api.create(&PostParams::default(), &config_map("after", &[])).await.expect("create");
    server.restart().await;

    // svcnet accepts the watch and then sends an ERROR event with code 410;
    // kube-apiserver may also answer 410 outright. Both are Error::Gone.
    let result = match api.watch(&WatchParams::default(), &old).await {
        Ok(mut watch) => tokio::time::timeout(Duration::from_secs(10), watch.next()).await.expect("an answer"),
        Err(e) => Some(Err(e)),
    };
    match result {
        Some(Err(e @ Error::Gone(_))) => assert!(e.is_gone() && e.code() == Some(410), "{e:?}"),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reflector_survives_an_api_server_restart_on_the_same_data_dir_and_port() {
    let mut server = Server::start().await;
    let client = server.client();
    let ns = namespace(&client, "restarts").await;
    let api = Api::<ConfigMap>::namespaced(client, &ns);
    api.create(&PostParams::default(), &config_map("before", &[])).await.expect("create");
    let reflector = Reflector::new(api.clone(), fast());
    let store = reflector.store();
    let mut sub = reflector.subscribe();
    let _running = reflector.spawn();
    store.wait_synced().await;
    // A change seen proves the watch is established, so the stop below
    // breaks a running watch rather than a request in flight.
    api.create(&PostParams::default(), &config_map("watched", &[])).await.expect("create");
    until(&mut sub, &[&changed(ChangeKind::Applied, "watched")]).await;

    server.stop().await;
    // While the server is down the store keeps serving what it last knew.
    assert_eq!(store_view(&store).keys().collect::<Vec<_>>(), ["before", "watched"]);
    server.restart().await;

    api.create(&PostParams::default(), &config_map("after", &[])).await.expect("create after restart");
    api.delete("before", &DeleteParams::default()).await.expect("delete after restart");
    until(&mut sub, &[&changed(ChangeKind::Applied, "after"), &changed(ChangeKind::Deleted, "before")]).await;
    eventually!(10, store_view(&store) == server_view(&api).await, "the store did not converge after the restart");

    // And it keeps following.
    api.create(&PostParams::default(), &config_map("later", &[])).await.expect("create");
    until(&mut sub, &[&changed(ChangeKind::Applied, "later")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reflector_relists_after_410_and_announces_what_changed_while_it_could_not_watch() {
    let mut server = Server::start().await;
    let client = server.client();
    let ns = namespace(&client, "gone").await;
    let api = Api::<ConfigMap>::namespaced(client, &ns);
    for name in ["kept", "edited", "doomed"] {
        api.create(&PostParams::default(), &config_map(name, &[("v", "1")])).await.expect("create");
    }
    let reflector = Reflector::new(api.clone(), fast());
    let store = reflector.store();
    let mut sub = reflector.subscribe();
    let _running = reflector.spawn();
    until(&mut sub, &[&|n| matches!(n, svcnet_client::Notification::Resync)]).await;
    let kept_before = store_view(&store)["kept"].clone();

    // Changes made through another server on the same data: the restarted
    // server's watch history starts after them, so the reflector's
    // resourceVersion is gone and only a re-list can tell it.
    let ns_for_other = ns.clone();
    server
        .behind_the_back(|other| async move {
            let other = Api::<ConfigMap>::namespaced(other, &ns_for_other);
            other.delete("doomed", &DeleteParams::default()).await.expect("delete");
            other
                .patch("edited", &PatchParams::default(), &Patch::Merge(json!({"data": {"v": "2"}})))
                .await
                .expect("patch");
            other.create(&PostParams::default(), &config_map("born", &[])).await.expect("create");
        })
        .await;

    let seen = until(
        &mut sub,
        &[
            &changed(ChangeKind::Deleted, "doomed"),
            &changed(ChangeKind::Applied, "edited"),
            &changed(ChangeKind::Applied, "born"),
        ],
    )
    .await;
    assert!(!seen.iter().any(changed(ChangeKind::Applied, "kept")), "unchanged objects are not announced: {seen:?}");
    eventually!(10, store_view(&store) == server_view(&api).await, "the store did not converge after the re-list");
    assert_eq!(store_view(&store)["kept"], kept_before);
}
