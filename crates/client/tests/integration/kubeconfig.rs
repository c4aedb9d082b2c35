//! Configurations: the kubeconfig svcnet writes, TLS verification, the
//! in-cluster service account, and the HTTP/1.1 fallback.

use http::Method;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use serde_json::Value;
use svcnet_client::{Api, Auth, Client, Config, Error, ListParams, WatchEvent, WatchParams};

use crate::harness::{Server, config_map};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubeconfig_svcnet_writes_gives_an_admin_client_in_the_default_namespace() {
    let server = Server::start().await;
    let config = Config::from_kubeconfig(&server.kubeconfig()).expect("kubeconfig loads");
    assert_eq!(config.server, format!("https://{}/", server.addr).as_str());
    assert_eq!(config.namespace, "default");
    assert!(config.identity.is_some() && config.ca_pem.is_some());
    let client = Client::new(config).expect("client");

    let version: Value = client.request_json(Method::GET, "/version", None).await.expect("GET /version");
    assert!(version.get("gitVersion").is_some(), "{version}");
    let namespaces = Api::<Namespace>::all(client.clone()).list(&ListParams::default()).await.expect("list namespaces");
    let names: Vec<_> = namespaces.items.iter().filter_map(|n| n.metadata.name.as_deref()).collect();
    assert!(names.contains(&"default") && names.contains(&"kube-system"), "{names:?}");
    let cms = Api::<ConfigMap>::default_namespaced(client);
    assert_eq!(cms.namespace(), Some("default"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_from_clones_share_the_client_and_all_succeed() {
    let server = Server::start().await;
    let client = server.client();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let api = Api::<ConfigMap>::namespaced(client.with_field_manager("many"), "default");
        tasks.spawn(async move { api.create(&Default::default(), &config_map(&format!("cm-{i}"), &[])).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("create");
    }
    let list = Api::<ConfigMap>::namespaced(client, "default").list(&ListParams::default()).await.expect("list");
    assert_eq!(
        list.items.iter().filter(|c| c.metadata.name.as_deref().is_some_and(|n| n.starts_with("cm-"))).count(),
        40
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_is_unauthorized() {
    let server = Server::start().await;
    let mut config = server.config();
    config.identity = None;
    let err = Api::<ConfigMap>::namespaced(Client::new(config).expect("client"), "default")
        .list(&ListParams::default())
        .await
        .expect_err("anonymous list must fail");
    assert!(err.is_unauthorized(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_certificate_names_localhost_and_127_0_0_1_but_nothing_else() {
    let server = Server::start().await;
    let get = |config: Config| async move { Api::<Namespace>::all(Client::new(config)?).get("default").await };

    let mut by_name = server.config();
    by_name.server = format!("https://localhost:{}", server.addr.port()).parse().expect("url");
    get(by_name).await.expect("localhost is a SAN");

    let mut other_name = server.config();
    other_name.tls_server_name = Some("api.example.com".into());
    let err = get(other_name).await.expect_err("a name the certificate lacks must fail");
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_signed_by_another_ca_is_refused_unless_verification_is_skipped() {
    let server = Server::start().await;
    let stranger = Server::start().await;
    let mut config = server.config();
    config.ca_pem = stranger.config().ca_pem;
    let err = Api::<Namespace>::all(Client::new(config.clone()).expect("client"))
        .get("default")
        .await
        .expect_err("wrong CA must fail");
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");

    config.insecure_skip_tls_verify = true;
    Api::<Namespace>::all(Client::new(config).expect("client")).get("default").await.expect("insecure client connects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_cluster_config_trusts_the_mounted_ca_and_sends_the_mounted_token() {
    let server = Server::start().await;
    let mount = tempfile::tempdir().expect("tempdir");
    std::fs::write(mount.path().join("token"), "not-a-real-token\n").expect("token");
    std::fs::write(mount.path().join("ca.crt"), server.config().ca_pem.expect("ca")).expect("ca");
    std::fs::write(mount.path().join("namespace"), "kube-system").expect("namespace");
    let config = Config::incluster_from("127.0.0.1", &server.addr.port().to_string(), mount.path()).expect("config");
    assert!(matches!(config.auth, Auth::TokenFile(_)));
    assert_eq!(config.namespace, "kube-system");

    // svcnet authenticates client certificates only, so the token gets a
    // 401 Status back: TLS with the mounted CA worked and the refusal is
    // decoded.
    let err = Api::<ConfigMap>::default_namespaced(Client::new(config).expect("client"))
        .get("x")
        .await
        .expect_err("svcnet does not accept tokens");
    assert!(err.is_unauthorized(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_limited_to_http1_does_requests_and_watches() {
    let server = Server::start().await;
    let mut config = server.config();
    config.http2 = false;
    let api = Api::<ConfigMap>::namespaced(Client::new(config).expect("client"), "default");
    let list = api.list(&ListParams::default()).await.expect("list");
    let mut watch = api.watch(&WatchParams::default(), list.resource_version()).await.expect("watch");
    // Several requests while the watch holds its own connection.
    for i in 0..3 {
        api.create(&Default::default(), &config_map(&format!("h1-{i}"), &[])).await.expect("create");
    }
    for i in 0..3 {
        match watch.next().await {
            Some(Ok(WatchEvent::Added(cm))) => assert_eq!(cm.metadata.name, Some(format!("h1-{i}"))),
            other => panic!("expected ADDED h1-{i}, got {other:?}"),
        }
    }
    assert_eq!(api.get("h1-2").await.expect("get").metadata.name.as_deref(), Some("h1-2"));
}
