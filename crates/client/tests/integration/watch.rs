//! Watches: event types and order, selectors, timeouts, and 410 Gone.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;
use svcnet_client::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams, WatchStream,
};

use crate::harness::{Server, config_map, labelled, namespace};

/// The next event, within a deadline.
async fn next(watch: &mut WatchStream<ConfigMap>) -> WatchEvent<ConfigMap> {
    match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(other) => panic!("expected an event, got {other:?}"),
        Err(_) => panic!("no event within 10 s"),
    }
}

fn describe(event: &WatchEvent<ConfigMap>) -> (String, String) {
    let (kind, cm) = match event {
        WatchEvent::Added(cm) => ("ADDED", cm),
        WatchEvent::Modified(cm) => ("MODIFIED", cm),
        WatchEvent::Deleted(cm) => ("DELETED", cm),
        other => panic!("unexpected {other:?}"),
    };
    (kind.to_string(), cm.metadata.name.clone().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_sees_added_modified_and_deleted_in_order() {
    let server = Server::start().await;
    let client = server.client();
    let ns = namespace(&client, "watched").await;
    let api = Api::<ConfigMap>::namespaced(client, &ns);
    let rv = api.list(&ListParams::default()).await.expect("list").resource_version().to_string();
    let mut watch = api.watch(&WatchParams::default().bookmarks(), &rv).await.expect("watch");

    api.create(&PostParams::default(), &config_map("w", &[("v", "1")])).await.expect("create");
    api.patch("w", &PatchParams::default(), &Patch::Merge(json!({"data": {"v": "2"}}))).await.expect("patch");
    api.delete("w", &DeleteParams::default()).await.expect("delete");

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = next(&mut watch).await;
        if matches!(event, WatchEvent::Bookmark { .. }) {
            continue;
        }
        if let WatchEvent::Modified(cm) = &event {
            assert_eq!(cm.data.as_ref().and_then(|d| d.get("v")).map(String::as_str), Some("2"));
        }
        assert!(event.resource_version().is_some_and(|v| !v.is_empty()));
        seen.push(describe(&event));
    }
    let expected = [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")].map(|(k, n)| (k.to_string(), n.to_string()));
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_resource_version_zero_starts_with_the_current_objects() {
    let server = Server::start().await;
    let client = server.client();
    let ns = namespace(&client, "initial").await;
    let api = Api::<ConfigMap>::namespaced(client, &ns);
    api.create(&PostParams::default(), &config_map("existing", &[])).await.expect("create");
    let mut watch = api.watch(&WatchParams::default(), "0").await.expect("watch");
    assert_eq!(describe(&next(&mut watch).await), ("ADDED".to_string(), "existing".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_selected_watch_reports_objects_entering_and_leaving_the_selection() {
    let server = Server::start().await;
    let client = server.client();
    let ns = namespace(&client, "selected").await;
    let api = Api::<ConfigMap>::namespaced(client, &ns);
    let rv = api.list(&ListParams::default()).await.expect("list").resource_version().to_string();
    let mut watch = api.watch(&WatchParams::default().labels("app=web"), &rv).await.expect("watch");

    api.create(&PostParams::default(), &config_map("other", &[])).await.expect("create unlabelled");
    api.create(&PostParams::default(), &labelled(config_map("web", &[]), &[("app", "web")])).await.expect("create");
    api.patch("web", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"app": "api"}}})))
        .await
        .expect("relabel");

    assert_eq!(describe(&next(&mut watch).await), ("ADDED".to_string(), "web".to_string()));
    assert_eq!(describe(&next(&mut watch).await), ("DELETED".to_string(), "web".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ends_when_its_timeout_passes() {
    let server = Server::start().await;
    let api = Api::<ConfigMap>::namespaced(server.client(), "default");
    let rv = api.list(&ListParams::default()).await.expect("list").resource_version().to_string();
    let mut watch = api.watch(&WatchParams::default().timeout(1), &rv).await.expect("watch");
    let end = tokio::time::timeout(Duration::from_secs(10), watch.next()).await.expect("the server ends the watch");
    assert!(end.is_none(), "{end:?}");
}
