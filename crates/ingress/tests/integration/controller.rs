//! Against a real svcnet API server in this process: the controller
//! serves an Ingress created with svcnet-client, writes its status, says
//! what is missing in an Event, and picks up a changed Secret.
//!
//! The API server refuses loopback endpoint addresses (as Kubernetes
//! does), so the EndpointSlice names 10.99.0.1 and the test's
//! [`Connector`] opens every upstream connection to the loopback backend
//! instead: no packet is ever sent to 10.x.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use svcnet_apiserver::{ApiServer, ApiServerConfig};
use svcnet_client::{Api, Client, Config, ListParams, PostParams};
use svcnet_ingress::testkit::{IngressBuilder, ingress_class, service, slice, tls_secret};
use svcnet_ingress::{Connector, IngressConfig, IngressController, Listeners};
use svcnet_store::EmbeddedStore;
use tokio::net::{TcpListener, TcpStream};

use crate::eventually;
use crate::harness::{backend, get, init_logging, read_reply, request};
use crate::tls::{client, pki, tls_connect};

struct ToBackend(SocketAddr);

impl Connector for ToBackend {
    fn connect(&self, _addr: SocketAddr) -> Pin<Box<dyn Future<Output = std::io::Result<TcpStream>> + Send + '_>> {
        Box::pin(TcpStream::connect(self.0))
    }
}

async fn api_server(dir: &tempfile::TempDir) -> (ApiServer, Client) {
    let store = EmbeddedStore::open(&dir.path().join("store"), Default::default()).await.expect("store opens");
    let api = ApiServer::start(ApiServerConfig::new(dir.path(), 0), store as Arc<_>).await.expect("API server");
    let mut config = Config::from_kubeconfig(&api.kubeconfig).expect("kubeconfig");
    config.server = format!("https://{}", api.addr).parse().expect("test setup");
    let client = Client::new(config).expect("client").with_user_agent("svcnet-ingress-tests/0.1.0").expect("agent");
    (api, client)
}

fn status_ips(ing: &Ingress) -> Vec<String> {
    ing.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|l| l.iter().filter_map(|i| i.ip.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_serves_writes_status_reports_problems_and_follows_secret_changes() {
    init_logging();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_api, kube) = api_server(&dir).await;
    let a = backend("a").await;
    let first = pki(&["secure.example.com"]);

    let post = PostParams::default();
    let mut svc = service("default", "web", &[("http", 80, 8080)]);
    if let Some(spec) = svc.spec.as_mut() {
        spec.selector = None;
    }
    Api::<Service>::namespaced(kube.clone(), "default").create(&post, &svc).await.expect("Service");
    Api::<EndpointSlice>::namespaced(kube.clone(), "default")
        .create(&post, &slice("default", "web", "web-1", &[("10.99.0.1", true)], &[("http", 8080)]))
        .await
        .expect("EndpointSlice");
    let secrets = Api::<Secret>::namespaced(kube.clone(), "default");
    secrets.create(&post, &tls_secret("default", "web-tls", &first.leaf_pem, &first.key_pem)).await.expect("Secret");
    Api::<IngressClass>::all(kube.clone())
        .create(&post, &ingress_class("svcnet", "svcnet.io/ingress-controller", false))
        .await
        .expect("IngressClass");
    let ingresses = Api::<Ingress>::namespaced(kube.clone(), "default");
    let ing = IngressBuilder::new("default", "web")
        .class("svcnet")
        .tls(&["secure.example.com"], "web-tls")
        .path(Some("secure.example.com"), "/", "Prefix", "web", "80")
        .path(Some("secure.example.com"), "/ghost", "Prefix", "ghost", "80")
        .build();
    ingresses.create(&post, &ing).await.expect("Ingress");
    // Someone else's Ingress: never served, never given our status.
    ingresses
        .create(
            &post,
            &IngressBuilder::new("default", "theirs")
                .class("nginx")
                .path(Some("x.com"), "/", "Prefix", "web", "80")
                .build(),
        )
        .await
        .expect("Ingress");

    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let https = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (http_addr, https_addr) = (http.local_addr().expect("addr"), https.local_addr().expect("addr"));
    let config = IngressConfig {
        status_addresses: vec!["192.0.2.10".parse().expect("ip")],
        metrics: Some("127.0.0.1:0".parse().expect("addr")),
        ..IngressConfig::default()
    };
    let controller = IngressController::start(
        kube.clone(),
        config,
        Listeners { http: vec![http], https: vec![https] },
        Arc::new(ToBackend(a.addr)),
    )
    .await
    .expect("the controller starts");
    let metrics = controller.metrics_addr().expect("metrics address");
    eventually!(10, get(metrics, "m", "/healthz", &[]).await.status == 200, "never became healthy");

    // Status.
    eventually!(
        10,
        status_ips(&ingresses.get("web").await.expect("get")) == ["192.0.2.10"],
        "the Ingress status was never written"
    );
    assert!(status_ips(&ingresses.get("theirs").await.expect("get")).is_empty());

    // Served over TLS with the Secret's certificate, plain HTTP redirected.
    let https_get = |ca: rustls::pki_types::CertificateDer<'static>, path: &'static str| async move {
        let tls = tls_connect(https_addr, "secure.example.com", client(&ca, &[b"http/1.1"])).await.ok()?;
        let (mut s, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.ok()?;
        tokio::spawn(conn);
        let r = s.send_request(request("secure.example.com", path, &[])).await.ok()?;
        Some(read_reply(r).await)
    };
    eventually!(
        10,
        https_get(first.ca_der.clone(), "/").await.is_some_and(|r| r.status == 200 && r.backend() == "a"),
        "HTTPS to secure.example.com never reached the backend"
    );
    let r = get(http_addr, "secure.example.com", "/x", &[]).await;
    assert_eq!(r.status, 308);
    let ghost = https_get(first.ca_der.clone(), "/ghost").await.expect("a response");
    assert_eq!(ghost.status, 503);
    assert!(ghost.body.contains("default/ghost"), "{}", ghost.body);

    // The missing Service is an Event on the Ingress, next to the Sync one.
    let events = Api::<Event>::namespaced(kube.clone(), "default");
    let reasons = || async {
        events
            .list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter(|e| e.involved_object.name.as_deref() == Some("web"))
                    .filter_map(|e| e.reason)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    eventually!(
        10,
        {
            let r = reasons().await;
            r.iter().any(|r| r == "MissingService") && r.iter().any(|r| r == "Sync")
        },
        "no MissingService and Sync events: {:?}",
        reasons().await
    );

    // A new certificate in the Secret is served to new handshakes.
    let second = pki(&["secure.example.com"]);
    let mut secret = secrets.get("web-tls").await.expect("get");
    secret.data = tls_secret("default", "web-tls", &second.leaf_pem, &second.key_pem).data;
    secrets.replace("web-tls", &post, &secret).await.expect("replace Secret");
    eventually!(
        10,
        https_get(second.ca_der.clone(), "/").await.is_some_and(|r| r.status == 200),
        "the new certificate was never served"
    );
    assert!(https_get(first.ca_der.clone(), "/").await.is_none(), "the old certificate is gone");

    // Another controller's Ingress whose status that controller wrote is
    // left alone; ours that becomes another controller's is cleared.
    let mut theirs = ingresses.get("theirs").await.expect("get");
    theirs.status = Some(
        serde_json::from_value(serde_json::json!({
            "loadBalancer": { "ingress": [{ "ip": "198.51.100.7" }] }
        }))
        .expect("status"),
    );
    ingresses.replace_status("theirs", &post, &theirs).await.expect("their status");
    let mut web = ingresses.get("web").await.expect("get");
    web.spec.as_mut().expect("spec").ingress_class_name = Some("nginx".to_string());
    ingresses.replace("web", &post, &web).await.expect("replace Ingress");
    eventually!(
        10,
        status_ips(&ingresses.get("web").await.expect("get")).is_empty(),
        "the status of an Ingress no longer ours was never cleared"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status_ips(&ingresses.get("theirs").await.expect("get")), ["198.51.100.7"]);

    controller.shutdown(Duration::from_secs(1)).await;
}
