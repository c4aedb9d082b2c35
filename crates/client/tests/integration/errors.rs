//! Refusals map to errors callers can test for.

use k8s_openapi::api::core::v1::ConfigMap;
use svcnet_client::{Api, Error, PostParams};

use crate::harness::{Server, config_map};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getting_a_missing_object_is_not_found_with_the_servers_status() {
    let server = Server::start().await;
    let err = Api::<ConfigMap>::namespaced(server.client(), "default").get("nope").await.expect_err("missing");
    assert!(err.is_not_found(), "{err:?}");
    let status = err.api_error().expect("an API error");
    assert_eq!((status.code(), status.reason()), (404, "NotFound"));
    assert!(status.message().contains("nope"), "{}", status.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_an_object_twice_is_already_exists_not_a_conflict() {
    let server = Server::start().await;
    let api = Api::<ConfigMap>::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &config_map("twice", &[])).await.expect("first create");
    let err = api.create(&PostParams::default(), &config_map("twice", &[])).await.expect_err("second create");
    assert!(err.is_already_exists() && !err.is_conflict(), "{err:?}");
    assert_eq!(err.code(), Some(409));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_from_a_stale_resource_version_is_a_conflict() {
    let server = Server::start().await;
    let api = Api::<ConfigMap>::namespaced(server.client(), "default");
    let stale = api.create(&PostParams::default(), &config_map("raced", &[("v", "1")])).await.expect("create");
    let mut winner = stale.clone();
    winner.data = Some([("v".to_string(), "2".to_string())].into());
    api.replace("raced", &PostParams::default(), &winner).await.expect("first writer wins");
    let err = api.replace("raced", &PostParams::default(), &stale).await.expect_err("stale writer loses");
    assert!(err.is_conflict() && !err.is_already_exists(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_object_is_refused_as_invalid() {
    let server = Server::start().await;
    let api = Api::<ConfigMap>::namespaced(server.client(), "default");
    let err = api.create(&PostParams::default(), &config_map("Not_A_DNS_Name", &[])).await.expect_err("invalid name");
    assert!(err.is_invalid(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_object_calls_across_all_namespaces_fail_before_reaching_the_server() {
    let server = Server::start().await;
    let err = Api::<ConfigMap>::all(server.client()).get("x").await.expect_err("needs a namespace");
    assert!(matches!(err, Error::NamespaceRequired { kind: "ConfigMap" }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_a_connection_error_not_a_panic() {
    let mut server = Server::start().await;
    let client = server.client();
    server.stop().await;
    let err = Api::<ConfigMap>::namespaced(client, "default").get("x").await.expect_err("nobody listens");
    assert!(matches!(err, Error::Connect { .. } | Error::Http(_)), "{err:?}");
}
