//! Reflectors: convergence, selectors, and what subscribers are told.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use serde_json::json;
use svcnet_client::{
    Api, Change, ChangeKind, DeleteParams, ListParams, Notification, ObjectKey, Patch, PatchParams, PostParams,
    Reflector, ReflectorConfig, Store, Subscription,
};

use crate::eventually;
use crate::harness::{Server, config_map, labelled, namespace};

/// Quick retries: the tests stop and start servers on purpose.
pub fn fast() -> ReflectorConfig {
    ReflectorConfig::default().backoff(Duration::from_millis(50), Duration::from_millis(500))
}

/// name → (resourceVersion, data) of what the server holds.
pub async fn server_view(api: &Api<ConfigMap>) -> BTreeMap<String, (String, String)> {
    let list = api.list(&ListParams::default()).await.expect("list");
    list.items.iter().map(view).collect()
}

pub fn store_view(store: &Store<ConfigMap>) -> BTreeMap<String, (String, String)> {
    store.state().iter().map(|cm| view(cm)).collect()
}

fn view(cm: &ConfigMap) -> (String, (String, String)) {
    let name = cm.metadata.name.clone().unwrap_or_default();
    let rv = cm.metadata.resource_version.clone().unwrap_or_default();
    (name, (rv, format!("{:?}", cm.data)))
}

/// Receives notifications until `want` has matched one of each, within 10
/// seconds; returns everything received.
pub async fn until<K: Clone + std::fmt::Debug>(
    sub: &mut Subscription<K>,
    want: &[&dyn Fn(&Notification<K>) -> bool],
) -> Vec<Notification<K>> {
    let mut seen: Vec<Notification<K>> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !want.iter().all(|w| seen.iter().any(w)) {
        match tokio::time::timeout_at(deadline, sub.recv()).await {
            Ok(Some(n)) => seen.push(n),
            Ok(None) => panic!("the reflector went away; saw {seen:?}"),
            Err(_) => panic!("expected notifications did not all arrive; saw {seen:?}"),
        }
    }
    seen
}

pub fn changed<K>(kind: ChangeKind, name: &str) -> impl Fn(&Notification<K>) -> bool {
    let name = name.to_string();
    move |n| matches!(n, Notification::Changed(Change { kind: k, key, .. }) if *k == kind && key.name == name)
}

pub fn resync<K>(n: &Notification<K>) -> bool {
    matches!(n, Notification::Resync)
}

fn pod(name: &str, node: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
    }))
    .expect("pod")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reflector_converges_through_creates_updates_and_deletes() {
    let server = Server::start().await;
    let client = server.client();
    let ns = namespace(&client, "reflected").await;
    let api = Api::<ConfigMap>::namespaced(client, &ns);
    for i in 0..5 {
        api.create(&PostParams::default(), &config_map(&format!("cm-{i}"), &[("v", "1")])).await.expect("create");
    }

    // Pages of two: the initial list takes three requests.
    let reflector = Reflector::new(api.clone(), fast().page_size(2));
    let store = reflector.store();
    let mut sub = reflector.subscribe();
    let _running = reflector.spawn();

    assert!(matches!(sub.recv().await, Some(Notification::Resync)), "the first notification is the initial resync");
    assert!(store.is_synced());
    assert_eq!(store_view(&store), server_view(&api).await);
    let cm0 = store.get(&ObjectKey::namespaced(&ns, "cm-0")).expect("cm-0 is in the store");
    assert_eq!(cm0.metadata.name.as_deref(), Some("cm-0"));

    api.create(&PostParams::default(), &config_map("fresh", &[])).await.expect("create");
    api.patch("cm-0", &PatchParams::default(), &Patch::Merge(json!({"data": {"v": "2"}}))).await.expect("patch");
    api.delete("cm-1", &DeleteParams::default()).await.expect("delete");

    let seen = until(
        &mut sub,
        &[
            &changed(ChangeKind::Applied, "fresh"),
            &changed(ChangeKind::Applied, "cm-0"),
            &changed(ChangeKind::Deleted, "cm-1"),
        ],
    )
    .await;
    assert!(!seen.iter().any(resync), "no resync without a reason: {seen:?}");
    // A change is announced after the store holds it.
    assert!(store.get(&ObjectKey::namespaced(&ns, "cm-1")).is_none());
    let cm0 = store.get(&ObjectKey::namespaced(&ns, "cm-0")).expect("cm-0");
    assert_eq!(cm0.data.as_ref().and_then(|d| d.get("v")).map(String::as_str), Some("2"));
    eventually!(10, store_view(&store) == server_view(&api).await, "the store did not converge to the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_selected_reflector_holds_only_the_pods_on_its_node() {
    let server = Server::start().await;
    let client = server.client();
    let ns = namespace(&client, "pods").await;
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    for (name, node) in [("a", "node-1"), ("b", "node-1"), ("c", "node-2")] {
        pods.create(&PostParams::default(), &pod(name, node)).await.expect("create pod");
    }

    let reflector = Reflector::new(Api::<Pod>::all(client), fast().fields("spec.nodeName=node-1"));
    let store = reflector.store();
    let _running = reflector.spawn();
    store.wait_synced().await;
    let keys = |store: &Store<Pod>| store.snapshot().keys().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(keys(&store), ["pods/a", "pods/b"]);

    // e lands on the other node before d lands here: by the time d shows
    // up, e would have too if the selector let it through.
    pods.create(&PostParams::default(), &pod("e", "node-2")).await.expect("create pod");
    pods.create(&PostParams::default(), &pod("d", "node-1")).await.expect("create pod");
    pods.delete("a", &DeleteParams::default().grace_period(0)).await.expect("delete pod");
    eventually!(10, keys(&store) == ["pods/b", "pods/d"], "store holds {:?}", keys(&store));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_selected_reflector_drops_objects_that_stop_matching() {
    let server = Server::start().await;
    let client = server.client();
    let ns = namespace(&client, "labels").await;
    let api = Api::<ConfigMap>::namespaced(client, &ns);
    api.create(&PostParams::default(), &labelled(config_map("web", &[]), &[("app", "web")])).await.expect("create");
    api.create(&PostParams::default(), &config_map("other", &[])).await.expect("create");

    let reflector = Reflector::new(api.clone(), fast().labels("app=web"));
    let store = reflector.store();
    let mut sub = reflector.subscribe();
    let _running = reflector.spawn();
    until(&mut sub, &[&resync]).await;
    assert_eq!(store_view(&store).keys().collect::<Vec<_>>(), ["web"]);

    api.patch("other", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}})))
        .await
        .expect("label");
    api.patch("web", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"app": null}}})))
        .await
        .expect("unlabel");
    until(&mut sub, &[&changed(ChangeKind::Applied, "other"), &changed(ChangeKind::Deleted, "web")]).await;
    assert_eq!(store_view(&store).keys().collect::<Vec<_>>(), ["other"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_is_told_to_resync_instead_of_missing_changes() {
    let server = Server::start().await;
    let client = server.client();
    let ns = namespace(&client, "laggard").await;
    let api = Api::<ConfigMap>::namespaced(client, &ns);
    let reflector = Reflector::new(api.clone(), ReflectorConfig { channel_capacity: 2, ..fast() });
    let store = reflector.store();
    let mut sub = reflector.subscribe();
    let _running = reflector.spawn();
    assert!(matches!(sub.recv().await, Some(Notification::Resync)));

    for i in 0..10 {
        api.create(&PostParams::default(), &config_map(&format!("cm-{i}"), &[])).await.expect("create");
    }
    eventually!(10, store.len() == 10, "the store holds {} objects", store.len());
    assert!(matches!(sub.recv().await, Some(Notification::Resync)), "missed changes turn into a resync");
    // After the resync the subscriber gets the changes still buffered.
    assert!(matches!(sub.recv().await, Some(Notification::Changed(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_starts_with_a_resync_and_ends_when_the_reflector_stops() {
    let server = Server::start().await;
    let api = Api::<ConfigMap>::namespaced(server.client(), "default");
    let running = Reflector::new(api, fast()).spawn();
    running.store().wait_synced().await;
    let mut late = running.subscribe();
    assert!(matches!(late.recv().await, Some(Notification::Resync)));
    drop(running);
    let end = tokio::time::timeout(Duration::from_secs(10), late.recv()).await.expect("the subscription ends");
    assert!(end.is_none());
}
