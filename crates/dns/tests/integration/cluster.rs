//! Against a real svcnet API server in this process: objects created with
//! svcnet-client show up in dig's answers, and go away again.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use svcnet_apiserver::{ApiServer, ApiServerConfig};
use svcnet_client::{Api, Client, Config, DeleteParams, PostParams};
use svcnet_dns::testkit::{headless, service, slice};
use svcnet_dns::{DnsConfig, DnsServer};
use svcnet_store::EmbeddedStore;

use crate::eventually;
use crate::harness::{Dig, dig, init_logging};

struct Cluster {
    _dir: tempfile::TempDir,
    api: ApiServer,
    store: Arc<EmbeddedStore>,
    client: Client,
}

async fn cluster() -> Cluster {
    init_logging();
    let dir = tempfile::tempdir().expect("test setup");
    let store = EmbeddedStore::open(&dir.path().join("store"), Default::default()).await.expect("store opens");
    let api = ApiServer::start(ApiServerConfig::new(dir.path(), 0), store.clone() as Arc<_>).await.expect("API server");
    let mut config = Config::from_kubeconfig(&api.kubeconfig).expect("kubeconfig");
    config.server = format!("https://{}", api.addr).parse().expect("test setup");
    let client =
        Client::new(config).expect("test setup").with_user_agent("svcnet-dns-tests/0.1.0").expect("test setup");
    Cluster { _dir: dir, api, store, client }
}

async fn a(dns: &DnsServer, name: &str) -> Dig {
    dig(dns.udp_addr(), &[name, "A"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_and_endpoint_slices_appear_in_dns_and_disappear_again() {
    let c = cluster().await;
    let dns = svcnet_dns::start(c.client.clone(), DnsConfig::local()).await.expect("DNS starts");
    // The API server's own Service, once the first lists are in.
    eventually!(
        10,
        a(&dns, "kubernetes.default.svc.cluster.local").await.answer.len() == 1,
        "the kubernetes Service never resolved"
    );
    let serial = |d: &Dig| d.authority.first().and_then(|soa| soa.split(' ').nth(6)).map(str::to_string);
    let first_serial = serial(&dig(dns.udp_addr(), &["nope.default.svc.cluster.local"]).await);

    // A ClusterIP Service: the API server allocates its address.
    let services = Api::<Service>::namespaced(c.client.clone(), "default");
    let mut web = service("default", "web", &[], &[("http", 80, "TCP")]);
    if let Some(spec) = web.spec.as_mut() {
        spec.cluster_ip = None;
        spec.cluster_ips = None;
    }
    let web = services.create(&PostParams::default(), &web).await.expect("web is created");
    let ip = web.spec.and_then(|s| s.cluster_ip).expect("an allocated cluster IP");
    let want = format!("web.default.svc.cluster.local. 5 IN A {ip}");
    eventually!(
        10,
        a(&dns, "web.default.svc.cluster.local").await.answer == [want.clone()],
        "web never resolved to {ip}"
    );
    let d = dig(dns.udp_addr(), &["_http._tcp.web.default.svc.cluster.local", "SRV"]).await;
    assert_eq!(
        d.answer,
        ["_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."]
    );
    let d = dig(dns.udp_addr(), &["-x", &ip]).await;
    assert_eq!(d.answer.len(), 1, "{}", d.raw);

    // A headless Service with hand-written slices.
    services.create(&PostParams::default(), &headless("default", "db", &[("pg", 5432, "TCP")])).await.expect("db");
    let slices = Api::<EndpointSlice>::namespaced(c.client.clone(), "default");
    let both = slice(
        "default",
        "db",
        "db-a",
        &[("10.1.0.1", Some("db-0"), true), ("10.1.0.2", None, true)],
        &[("pg", 5432, "TCP")],
    );
    slices.create(&PostParams::default(), &both).await.expect("slice");
    eventually!(10, a(&dns, "db.default.svc.cluster.local").await.answer.len() == 2, "db never had two addresses");
    let d = a(&dns, "db-0.db.default.svc.cluster.local").await;
    assert_eq!(d.answer, ["db-0.db.default.svc.cluster.local. 5 IN A 10.1.0.1"]);

    // One endpoint stops being ready: it leaves the answer.
    let mut current = slices.get("db-a").await.expect("slice read back");
    if let Some(cond) = current.endpoints[1].conditions.as_mut() {
        cond.ready = Some(false);
    }
    slices.replace("db-a", &PostParams::default(), &current).await.expect("slice replaced");
    eventually!(
        10,
        a(&dns, "db.default.svc.cluster.local").await.answer == ["db.default.svc.cluster.local. 5 IN A 10.1.0.1"],
        "the not-ready endpoint was never dropped"
    );

    // Deleted Services are NXDOMAIN, and the SOA serial moved on.
    services.delete("web", &DeleteParams::default()).await.expect("web deleted");
    eventually!(10, a(&dns, "web.default.svc.cluster.local").await.status == "NXDOMAIN", "web never went away");
    let last_serial = serial(&dig(dns.udp_addr(), &["nope.default.svc.cluster.local"]).await);
    assert_ne!(first_serial, last_serial, "the SOA serial counts changes");
    assert!(dns.metrics().render().contains("svcnet_dns_view_serial"));

    dns.shutdown().await;
    c.api.shutdown().await;
    c.store.close().await.expect("store closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zone_answers_servfail_until_the_first_sync() {
    init_logging();
    // An API server that does not exist: the reflectors never sync.
    let client = Client::new(Config::new("https://127.0.0.1:9").expect("test setup")).expect("test setup");
    let dns = svcnet_dns::start(client, DnsConfig::local()).await.expect("DNS starts");
    let d = a(&dns, "kubernetes.default.svc.cluster.local").await;
    assert_eq!(d.status, "SERVFAIL", "{}", d.raw);
    dns.shutdown().await;
}
