//! The scheduler and the `pods/binding` subresource end to end: a real API
//! server on an embedded store in this process, the controller manager
//! against it, and nodes and pods created through the client.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Container, Event, Namespace, Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodCondition, PodSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};
use svcnet_apiserver::{ApiServer, ApiServerConfig};
use svcnet_client::{Api, Client, Config, ListParams, PostParams};
use svcnet_controllers::{ControllerConfig, ControllerManager};
use svcnet_store::EmbeddedStore;

/// Retries `$cond` (which may `.await`) every 50 ms until it holds or
/// `$secs` seconds pass, then fails with the message.
macro_rules! eventually {
    ($secs:expr, $cond:expr, $($msg:tt)+) => {{
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs($secs);
        loop {
            if $cond {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                panic!($($msg)+);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }};
}

/// An API server on 127.0.0.1 with its store and data directory.
struct Cluster {
    server: Option<ApiServer>,
    store: Arc<EmbeddedStore>,
    client: Client,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(&dir.path().join("store"), Default::default()).await.expect("store opens");
        let server = ApiServer::start(ApiServerConfig::new(dir.path(), 0), store.clone() as Arc<_>)
            .await
            .expect("API server starts");
        let mut config = Config::from_kubeconfig(&server.kubeconfig).expect("kubeconfig loads");
        config.server = format!("https://{}", server.addr).parse().expect("server URL");
        let client = Client::new(config).expect("client");
        Cluster { server: Some(server), store, client, _dir: dir }
    }

    async fn stop(mut self, manager: Option<ControllerManager>) {
        drop(manager);
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.store.close().await.expect("store closes");
    }
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect()
}

fn node(name: &str, ready: bool, labels: &[(&str, &str)]) -> Node {
    let mut all: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    all.insert("kubernetes.io/hostname".into(), name.into());
    let resources = quantities(&[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")]);
    Node {
        metadata: ObjectMeta { name: Some(name.into()), labels: Some(all), ..ObjectMeta::default() },
        spec: Some(NodeSpec { pod_cidr: Some("10.244.0.0/24".into()), ..NodeSpec::default() }),
        status: Some(NodeStatus {
            capacity: Some(resources.clone()),
            allocatable: Some(resources),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                reason: Some(if ready { "KubeletReady" } else { "KubeletNotReady" }.into()),
                ..NodeCondition::default()
            }]),
            ..NodeStatus::default()
        }),
    }
}

fn pod(name: &str, labels: &[(&str, &str)]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container { name: "c".into(), image: Some("nginx".into()), ..Container::default() }],
            ..PodSpec::default()
        }),
        status: None,
    }
}

async fn namespace(client: &Client, name: &str) {
    let ns =
        Namespace { metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() }, ..Namespace::default() };
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("namespace is created");
}

async fn create_nodes(client: &Client, nodes: &[Node]) {
    let api = Api::<Node>::all(client.clone());
    for n in nodes {
        api.create(&PostParams::default(), n).await.expect("node is created");
    }
}

fn node_name(p: &Pod) -> Option<&str> {
    p.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty())
}

fn scheduled_condition(p: &Pod) -> Option<&PodCondition> {
    p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "PodScheduled")
}

async fn events_with_reason(client: &Client, ns: &str, reason: &str) -> Vec<Event> {
    let events = Api::<Event>::namespaced(client.clone(), ns).list(&ListParams::default()).await.expect("events list");
    events.items.into_iter().filter(|e| e.reason.as_deref() == Some(reason)).collect()
}

/// Pods per node, once all of `ns`'s pods are bound.
async fn placement(pods: &Api<Pod>, expected: usize) -> BTreeMap<String, usize> {
    let mut per_node = BTreeMap::new();
    eventually!(
        30,
        {
            let list = pods.list(&ListParams::default()).await.expect("pods list");
            per_node.clear();
            for p in &list.items {
                if let Some(n) = node_name(p) {
                    *per_node.entry(n.to_string()).or_insert(0) += 1;
                }
            }
            per_node.values().sum::<usize>() == expected
        },
        "not every pod was bound: {per_node:?}"
    );
    per_node
}

#[tokio::test]
async fn six_pods_spread_three_and_three_over_the_two_ready_nodes() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    namespace(&client, "spread").await;
    create_nodes(&client, &[node("node-a", true, &[]), node("node-b", true, &[]), node("node-down", false, &[])]).await;
    let manager = ControllerManager::start(client.clone(), ControllerConfig::default());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "spread");
    for i in 0..6 {
        pods.create(&PostParams::default(), &pod(&format!("web-{i}"), &[("app", "web")]))
            .await
            .expect("pod is created");
    }
    let per_node = placement(&pods, 6).await;
    assert_eq!(per_node, BTreeMap::from([("node-a".to_string(), 3), ("node-b".to_string(), 3)]));
    for p in pods.list(&ListParams::default()).await.expect("pods list").items {
        let c = scheduled_condition(&p).expect("PodScheduled condition");
        assert_eq!(c.status, "True", "{:?}", p.metadata.name);
        assert!(c.last_transition_time.is_some());
    }
    let bound_to = |name: &str| {
        let pods = pods.clone();
        let name = name.to_string();
        async move { pods.get(&name).await.ok().and_then(|p| node_name(&p).map(str::to_string)) }
    };
    let node0 = bound_to("web-0").await.expect("web-0 is bound");
    let message = format!("Successfully assigned spread/web-0 to {node0}");
    eventually!(
        10,
        events_with_reason(&client, "spread", "Scheduled")
            .await
            .iter()
            .any(|e| e.message.as_deref() == Some(message.as_str())),
        "no Scheduled event says {message:?}"
    );
    cluster.stop(Some(manager)).await;
}

#[tokio::test]
async fn a_hundred_pods_created_at_once_spread_evenly() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    namespace(&client, "burst").await;
    create_nodes(&client, &[node("node-a", true, &[]), node("node-b", true, &[])]).await;
    let manager = ControllerManager::start(client.clone(), ControllerConfig::default());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "burst");
    let creates = (0..100).map(|i| {
        let pods = pods.clone();
        async move { pods.create(&PostParams::default(), &pod(&format!("w-{i}"), &[("app", "w")])).await.map(|_| ()) }
    });
    for r in futures_join_all(creates).await {
        r.expect("pod is created");
    }
    let per_node = placement(&pods, 100).await;
    assert_eq!(per_node, BTreeMap::from([("node-a".to_string(), 50), ("node-b".to_string(), 50)]));
    cluster.stop(Some(manager)).await;
}

/// Runs the futures concurrently on this task's runtime.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task runs to completion"));
    }
    out
}

#[tokio::test]
async fn a_pod_no_node_matches_waits_unschedulable_until_one_does() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    namespace(&client, "picky").await;
    create_nodes(&client, &[node("plain", true, &[])]).await;
    let manager = ControllerManager::start(client.clone(), ControllerConfig::default());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "picky");
    let mut p = pod("wants-ssd", &[]);
    p.spec.get_or_insert_with(Default::default).node_selector =
        Some(BTreeMap::from([("disk".to_string(), "ssd".to_string())]));
    pods.create(&PostParams::default(), &p).await.expect("pod is created");

    let message = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.";
    eventually!(
        15,
        pods.get("wants-ssd").await.ok().and_then(|p| scheduled_condition(&p).cloned()).is_some_and(|c| {
            c.status == "False" && c.reason.as_deref() == Some("Unschedulable") && c.message.as_deref() == Some(message)
        }),
        "the pod is not marked Unschedulable with {message:?}"
    );
    assert_eq!(node_name(&pods.get("wants-ssd").await.expect("pod")), None);
    eventually!(
        10,
        events_with_reason(&client, "picky", "FailedScheduling")
            .await
            .iter()
            .any(|e| { e.message.as_deref() == Some(message) && e.type_.as_deref() == Some("Warning") }),
        "no FailedScheduling event says {message:?}"
    );

    create_nodes(&client, &[node("fast", true, &[("disk", "ssd")])]).await;
    eventually!(
        10,
        pods.get("wants-ssd").await.ok().is_some_and(|p| {
            node_name(&p) == Some("fast") && scheduled_condition(&p).is_some_and(|c| c.status == "True")
        }),
        "the pod was not bound to the new matching node"
    );
    cluster.stop(Some(manager)).await;
}

/// POSTs `body` to `path` and returns the HTTP code and the answer.
async fn post(client: &Client, path: &str, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).expect("encodes").into();
    match client.request_json::<Value>(http::Method::POST, path, Some(("application/json", bytes))).await {
        Ok(v) => (v.get("code").and_then(Value::as_u64).unwrap_or(200) as u16, v),
        Err(e) => {
            let api = e.api_error().expect("the server answered with a Status");
            (api.code(), serde_json::to_value(&api.status).expect("status encodes"))
        }
    }
}

#[tokio::test]
async fn the_binding_subresource_answers_as_kube_apiserver_does() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    namespace(&client, "bind").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "bind");
    for name in ["a", "b"] {
        pods.create(&PostParams::default(), &pod(name, &[])).await.expect("pod is created");
    }
    let binding = |pod: &str, node: &str| json!({ "kind": "Binding", "apiVersion": "v1", "metadata": { "name": pod }, "target": { "kind": "Node", "name": node } });

    let status: Value =
        pods.create_subresource("binding", "a", &PostParams::default(), &binding("a", "node-1")).await.expect("bound");
    assert_eq!(
        status,
        json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 })
    );
    let a = pods.get("a").await.expect("pod a");
    assert_eq!(node_name(&a), Some("node-1"));
    assert_eq!(scheduled_condition(&a).map(|c| c.status.as_str()), Some("True"));

    let e = pods
        .create_subresource::<_, Value>("binding", "a", &PostParams::default(), &binding("a", "node-2"))
        .await
        .expect_err("already bound");
    let api = e.api_error().expect("a Status");
    assert_eq!(api.code(), 409);
    assert_eq!(
        api.status.message.as_deref(),
        Some("Operation cannot be fulfilled on pods/binding \"a\": pod a is already assigned to node \"node-1\"")
    );

    let e = pods
        .create_subresource::<_, Value>("binding", "missing", &PostParams::default(), &binding("missing", "node-1"))
        .await
        .expect_err("no such pod");
    assert_eq!(e.code(), Some(404));

    let e = pods
        .create_subresource::<_, Value>(
            "binding",
            "b",
            &PostParams::default(),
            &json!({ "metadata": { "name": "b" }, "target": {} }),
        )
        .await
        .expect_err("no target");
    let api = e.api_error().expect("a Status");
    assert_eq!(api.code(), 422);
    assert_eq!(api.status.message.as_deref(), Some("Binding \"b\" is invalid: target.name: Required value"));

    // The older collection names the pod in the body.
    let (code, answer) = post(&client, "/api/v1/namespaces/bind/bindings", &binding("b", "node-2")).await;
    assert_eq!((code, answer["status"].as_str()), (201, Some("Success")));
    assert_eq!(node_name(&pods.get("b").await.expect("pod b")), Some("node-2"));

    // An ordinary update may not move a bound pod.
    let mut moved = pods.get("b").await.expect("pod b");
    moved.spec.get_or_insert_with(Default::default).node_name = Some("node-1".into());
    let e = pods.replace("b", &PostParams::default(), &moved).await.expect_err("nodeName is immutable");
    assert_eq!(e.code(), Some(422));
    cluster.stop(None).await;
}
