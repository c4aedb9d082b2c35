//! The built-in LoadBalancer allocator end to end: a real API server on an
//! embedded store in this process, the controller manager against it,
//! Services created and changed through the client, and `kubectl get svc`
//! showing the addresses. The pool is TEST-NET-1 (192.0.2.0/24): the
//! addresses are only written to statuses, nothing is sent to them.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Namespace, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use svcnet_apiserver::{ApiServer, ApiServerConfig};
use svcnet_client::{Api, Client, Config, DeleteParams, ListParams, PostParams};
use svcnet_controllers::loadbalancer::parse_pool;
use svcnet_controllers::{ControllerConfig, ControllerManager};
use svcnet_store::EmbeddedStore;

const KUBECTL: &str = "/usr/bin/kubectl";

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
    config: Config,
    client: Client,
    kubeconfig: std::path::PathBuf,
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
        let client = Client::new(config.clone()).expect("client");
        let kubeconfig = server.kubeconfig.clone();
        Cluster { server: Some(server), store, config, client, kubeconfig, _dir: dir }
    }

    async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.store.close().await.expect("store closes");
    }

    async fn kubectl(&self, args: &[&str]) -> String {
        let mut cmd = tokio::process::Command::new(KUBECTL);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .expect("kubectl finishes within 60 s")
            .expect("kubectl runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "kubectl {args:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        stdout
    }
}

fn manager_config(pool: &str) -> ControllerConfig {
    ControllerConfig { lb_pool: Some(parse_pool(pool).expect("test pool")), ..ControllerConfig::default() }
}

/// A controller manager on its own runtime, so stopping it stops every
/// task it spawned (as killing the process would).
struct Detached {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Detached {
    fn start(config: Config, controllers: ControllerConfig) -> Detached {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime for the controller manager");
            runtime.block_on(async move {
                let _manager = ControllerManager::start(Client::new(config).expect("client"), controllers);
                let _ = stopped.await;
            });
            runtime.shutdown_timeout(Duration::from_secs(5));
        });
        Detached { stop: Some(stop), thread: Some(thread) }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join().expect("the manager's thread ends"))
                .await
                .expect("joined");
        }
    }
}

async fn namespace(client: &Client, name: &str) {
    let ns =
        Namespace { metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() }, ..Namespace::default() };
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("namespace is created");
}

fn service(name: &str, load_balancer_ip: Option<&str>) -> Service {
    Service {
        metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            selector: Some(BTreeMap::from([("app".to_string(), name.to_string())])),
            ports: Some(vec![ServicePort { port: 80, ..ServicePort::default() }]),
            load_balancer_ip: load_balancer_ip.map(str::to_string),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

async fn create(api: &Api<Service>, name: &str, load_balancer_ip: Option<&str>) {
    api.create(&PostParams::default(), &service(name, load_balancer_ip)).await.expect("service is created");
}

/// `status.loadBalancer.ingress` as (ip, ipMode) pairs.
async fn ingress(api: &Api<Service>, name: &str) -> Vec<(String, String)> {
    let svc = api.get(name).await.expect("service");
    svc.status
        .and_then(|s| s.load_balancer)
        .and_then(|lb| lb.ingress)
        .unwrap_or_default()
        .into_iter()
        .map(|i| (i.ip.unwrap_or_default(), i.ip_mode.unwrap_or_default()))
        .collect()
}

async fn wait_for_ip(api: &Api<Service>, name: &str, ip: &str) {
    let want = vec![(ip.to_string(), "VIP".to_string())];
    eventually!(15, ingress(api, name).await == want, "{name} did not get {ip}: {:?}", ingress(api, name).await);
}

async fn event_messages(client: &Client, ns: &str, reason: &str) -> Vec<(String, String, String)> {
    let events = Api::<Event>::namespaced(client.clone(), ns).list(&ListParams::default()).await.expect("events list");
    events
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .map(|e| {
            (e.involved_object.name.unwrap_or_default(), e.type_.unwrap_or_default(), e.message.unwrap_or_default())
        })
        .collect()
}

async fn wait_for_event(client: &Client, ns: &str, reason: &str, name: &str, kind: &str, message: &str) {
    let want = (name.to_string(), kind.to_string(), message.to_string());
    eventually!(
        15,
        event_messages(client, ns, reason).await.contains(&want),
        "no {reason} event {want:?}: {:?}",
        event_messages(client, ns, reason).await
    );
}

/// `kubectl get` output as rows of column → value.
fn table(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    lines
        .map(|line| {
            let row: BTreeMap<String, String> =
                header.iter().zip(line.split_whitespace()).map(|(h, v)| (h.to_string(), v.to_string())).collect();
            (row.get("NAME").cloned().unwrap_or_default(), row)
        })
        .collect()
}

#[tokio::test]
async fn load_balancers_get_pool_addresses_which_a_type_change_frees_for_the_next() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    namespace(&client, "lb").await;
    let manager = ControllerManager::start(client.clone(), manager_config("192.0.2.0/29"));
    let api: Api<Service> = Api::namespaced(client.clone(), "lb");

    create(&api, "a", None).await;
    wait_for_ip(&api, "a", "192.0.2.1").await;
    create(&api, "b", None).await;
    create(&api, "c", Some("192.0.2.5")).await;
    wait_for_ip(&api, "b", "192.0.2.2").await;
    wait_for_ip(&api, "c", "192.0.2.5").await;
    wait_for_event(&client, "lb", "IPAllocated", "a", "Normal", "Assigned IP [\"192.0.2.1\"]").await;
    wait_for_event(&client, "lb", "IPAllocated", "c", "Normal", "Assigned IP [\"192.0.2.5\"]").await;

    // Asking for a taken address, or one outside the pool, gets nothing.
    create(&api, "taken", Some("192.0.2.5")).await;
    create(&api, "outside", Some("198.51.100.7")).await;
    wait_for_event(
        &client,
        "lb",
        "AllocationFailed",
        "taken",
        "Warning",
        "Failed to allocate IP for \"lb/taken\": \"192.0.2.5\" is already in use by lb/c",
    )
    .await;
    wait_for_event(
        &client,
        "lb",
        "AllocationFailed",
        "outside",
        "Warning",
        "Failed to allocate IP for \"lb/outside\": \"198.51.100.7\" is not allowed in config",
    )
    .await;
    assert_eq!(ingress(&api, "taken").await, []);
    assert_eq!(ingress(&api, "outside").await, []);

    // a stops being a LoadBalancer: its status is cleared and the next
    // LoadBalancer gets its address.
    let mut a = api.get("a").await.expect("a");
    a.spec.get_or_insert_with(Default::default).type_ = Some("ClusterIP".into());
    api.replace("a", &PostParams::default(), &a).await.expect("a becomes a ClusterIP Service");
    eventually!(10, ingress(&api, "a").await.is_empty(), "a's status still shows {:?}", ingress(&api, "a").await);
    create(&api, "d", None).await;
    wait_for_ip(&api, "d", "192.0.2.1").await;

    let wide = cluster.kubectl(&["get", "svc", "-n", "lb", "-o", "wide"]).await;
    let rows = table(&wide);
    let external = |name: &str| rows.get(name).and_then(|r| r.get("EXTERNAL-IP")).cloned().unwrap_or_default();
    assert_eq!(external("a"), "<none>", "{wide}");
    assert_eq!(external("b"), "192.0.2.2", "{wide}");
    assert_eq!(external("c"), "192.0.2.5", "{wide}");
    assert_eq!(external("d"), "192.0.2.1", "{wide}");
    assert_eq!(external("taken"), "<pending>", "{wide}");
    assert_eq!(external("outside"), "<pending>", "{wide}");
    assert_eq!(rows.get("b").and_then(|r| r.get("TYPE")).map(String::as_str), Some("LoadBalancer"), "{wide}");

    drop(manager);
    cluster.stop().await;
}

#[tokio::test]
async fn an_exhausted_pool_leaves_a_service_pending_until_an_address_is_freed() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    namespace(&client, "full").await;
    let manager = ControllerManager::start(client.clone(), manager_config("192.0.2.10-192.0.2.11"));
    let api: Api<Service> = Api::namespaced(client.clone(), "full");
    create(&api, "one", None).await;
    wait_for_ip(&api, "one", "192.0.2.10").await;
    create(&api, "two", None).await;
    wait_for_ip(&api, "two", "192.0.2.11").await;
    create(&api, "three", None).await;
    wait_for_event(
        &client,
        "full",
        "AllocationFailed",
        "three",
        "Warning",
        "Failed to allocate IP for \"full/three\": no available IPs",
    )
    .await;
    assert_eq!(ingress(&api, "three").await, []);

    api.delete("one", &DeleteParams::default()).await.expect("one is deleted");
    wait_for_ip(&api, "three", "192.0.2.10").await;
    drop(manager);
    cluster.stop().await;
}

#[tokio::test]
async fn a_restarted_allocator_keeps_every_assignment_and_settles_what_changed_meanwhile() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    namespace(&client, "again").await;
    let api: Api<Service> = Api::namespaced(client.clone(), "again");
    let first = Detached::start(cluster.config.clone(), manager_config("192.0.2.0/29"));
    for (name, ip) in [("a", "192.0.2.1"), ("b", "192.0.2.2"), ("c", "192.0.2.3")] {
        create(&api, name, None).await;
        wait_for_ip(&api, name, ip).await;
    }
    first.stop().await;

    // While no allocator runs: a goes, d arrives, e asks for c's address.
    api.delete("a", &DeleteParams::default()).await.expect("a is deleted");
    create(&api, "d", None).await;
    create(&api, "e", Some("192.0.2.3")).await;
    let versions = |names: &'static [&'static str]| {
        let api = api.clone();
        async move {
            let mut out = Vec::new();
            for name in names {
                out.push(api.get(name).await.expect("service").metadata.resource_version);
            }
            out
        }
    };
    let before = versions(&["b", "c"]).await;

    let manager = ControllerManager::start(client.clone(), manager_config("192.0.2.0/29"));
    wait_for_ip(&api, "d", "192.0.2.1").await;
    wait_for_event(
        &client,
        "again",
        "AllocationFailed",
        "e",
        "Warning",
        "Failed to allocate IP for \"again/e\": \"192.0.2.3\" is already in use by again/c",
    )
    .await;
    assert_eq!(ingress(&api, "b").await, [("192.0.2.2".to_string(), "VIP".to_string())]);
    assert_eq!(ingress(&api, "c").await, [("192.0.2.3".to_string(), "VIP".to_string())]);
    assert_eq!(versions(&["b", "c"]).await, before, "kept assignments are not written again");
    drop(manager);
    cluster.stop().await;
}
