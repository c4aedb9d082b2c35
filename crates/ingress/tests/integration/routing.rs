//! Requests through the proxy to real backends: routing by host and path,
//! what the backend sees, the proxy's own answers, balancing, retries,
//! affinity, metrics.

use std::collections::HashMap;

use svcnet_ingress::testkit::{IngressBuilder, slice};

use crate::harness::{World, backend, closed_port, get, http_service, post, proxy, scrape};

#[tokio::test]
async fn requests_are_routed_by_host_and_path() {
    let (a, b, c, d) = (backend("a").await, backend("b").await, backend("c").await, backend("d").await);
    let mut w = World::default();
    w.service("default", "a", &[&a]).service("default", "b", &[&b]).service("default", "c", &[&c]).service(
        "default",
        "d",
        &[&d],
    );
    w.ingresses.push(
        IngressBuilder::new("default", "web")
            .path(Some("foo.example.com"), "/", "Prefix", "a", "80")
            .path(Some("foo.example.com"), "/api", "Prefix", "b", "http")
            .path(Some("foo.example.com"), "/api/exact", "Exact", "c", "80")
            .path(Some("*.example.com"), "/", "Prefix", "c", "80")
            .path(None, "/", "Prefix", "d", "80")
            .build(),
    );
    let p = proxy(w.table()).await;
    let cases = [
        ("foo.example.com", "/", "a"),
        ("foo.example.com:8080", "/x", "a"),
        ("foo.example.com", "/api", "b"),
        ("foo.example.com", "/api/", "b"),
        ("foo.example.com", "/api/v1?x=1", "b"),
        ("foo.example.com", "/apix", "a"),
        ("foo.example.com", "/api/exact", "c"),
        ("foo.example.com", "/api/exact/", "b"),
        ("bar.example.com", "/anything", "c"),
        ("deep.bar.example.com", "/", "d"),
        ("example.com", "/", "d"),
        ("other.org", "/", "d"),
    ];
    for (host, path, want) in cases {
        let r = get(p.http, host, path, &[]).await;
        assert_eq!(r.status, 200, "{host}{path}: {r:?}");
        assert_eq!(r.backend(), want, "{host}{path}");
    }
}

#[tokio::test]
async fn the_backend_sees_the_original_host_and_path_and_forwarded_headers() {
    let a = backend("a").await;
    let mut w = World::default();
    w.service("default", "a", &[&a]);
    w.ingresses
        .push(IngressBuilder::new("default", "web").path(Some("foo.example.com"), "/", "Prefix", "a", "80").build());
    let p = proxy(w.table()).await;
    let r = get(
        p.http,
        "foo.example.com:8080",
        "/some/path?q=1&r=2",
        &[("x-forwarded-for", "203.0.113.7"), ("connection", "x-drop-me"), ("x-drop-me", "1"), ("x-keep", "yes")],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.line("host"), Some("foo.example.com:8080"));
    assert_eq!(r.line("uri"), Some("/some/path?q=1&r=2"));
    assert_eq!(r.line("version"), Some("HTTP/1.1"));
    assert_eq!(r.header_seen("x-forwarded-for"), Some("203.0.113.7, 127.0.0.1"));
    assert_eq!(r.header_seen("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(r.header_seen("x-forwarded-proto"), Some("http"));
    assert_eq!(r.header_seen("x-forwarded-host"), Some("foo.example.com:8080"));
    assert_eq!(r.header_seen("x-forwarded-port"), Some(p.http.port().to_string().as_str()));
    assert_eq!(r.header_seen("x-keep"), Some("yes"));
    assert_eq!(r.header_seen("x-drop-me"), None, "headers named by Connection are hop-by-hop");
    let id = r.header_seen("x-request-id").expect("a generated request id");
    assert_eq!(id.len(), 32);
    let r = get(p.http, "foo.example.com", "/", &[("x-request-id", "given-id")]).await;
    assert_eq!(r.header_seen("x-request-id"), Some("given-id"));
    assert_eq!(r.header_seen("x-forwarded-for"), Some("127.0.0.1"));
}

#[tokio::test]
async fn no_match_is_404_and_a_service_without_endpoints_is_503_naming_it() {
    let mut w = World::default();
    w.services.push(http_service("default", "idle"));
    w.slices.push(slice("default", "idle", "idle-1", &[("127.0.0.1", false)], &[("http", 1)]));
    w.ingresses.push(
        IngressBuilder::new("default", "web")
            .path(Some("foo.example.com"), "/idle", "Prefix", "idle", "80")
            .path(Some("foo.example.com"), "/ghost", "Prefix", "ghost", "80")
            .build(),
    );
    let p = proxy(w.table()).await;
    let r = get(p.http, "foo.example.com", "/nothing", &[]).await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("no Ingress rule matches host \"foo.example.com\""), "{}", r.body);
    let r = get(p.http, "elsewhere.org", "/", &[]).await;
    assert_eq!(r.status, 404);
    let r = get(p.http, "foo.example.com", "/idle", &[]).await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("no ready endpoints for service default/idle"), "{}", r.body);
    let r = get(p.http, "foo.example.com", "/ghost/x", &[]).await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("service default/ghost not found"), "{}", r.body);
}

#[tokio::test]
async fn round_robin_reaches_every_endpoint_evenly() {
    let bs = [backend("b0").await, backend("b1").await, backend("b2").await];
    let mut w = World::default();
    w.service("default", "web", &[&bs[0], &bs[1], &bs[2]]);
    w.ingresses.push(IngressBuilder::new("default", "web").path(None, "/", "Prefix", "web", "80").build());
    let p = proxy(w.table()).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..30 {
        let r = get(p.http, "x", "/", &[]).await;
        assert_eq!(r.status, 200);
        *seen.entry(r.backend().to_string()).or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.values().all(|n| *n == 10), "{seen:?}");
}

#[tokio::test]
async fn least_request_balancing_also_reaches_every_endpoint() {
    let bs = [backend("b0").await, backend("b1").await];
    let mut w = World::default();
    w.service("default", "web", &[&bs[0], &bs[1]]);
    w.ingresses.push(
        IngressBuilder::new("default", "web")
            .annotation("nginx.ingress.kubernetes.io/load-balance", "ewma")
            .path(None, "/", "Prefix", "web", "80")
            .build(),
    );
    let p = proxy(w.table()).await;
    for _ in 0..40 {
        assert_eq!(get(p.http, "x", "/", &[]).await.status, 200);
    }
    assert!(bs.iter().all(|b| b.hits() > 0), "{:?}", bs.iter().map(|b| b.hits()).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_failed_connect_is_retried_on_the_next_endpoint() {
    let live = backend("live").await;
    let dead = closed_port().await;
    let mut w = World::default();
    w.services.push(http_service("default", "web"));
    w.slices.push(slice("default", "web", "web-dead", &[("127.0.0.1", true)], &[("http", dead.port())]));
    w.slices.push(slice("default", "web", "web-live", &[("127.0.0.1", true)], &[("http", live.addr.port())]));
    w.ingresses.push(IngressBuilder::new("default", "web").path(None, "/", "Prefix", "web", "80").build());
    let p = proxy(w.table()).await;
    for i in 0..10 {
        let r = get(p.http, "x", "/", &[]).await;
        assert_eq!(r.status, 200, "request {i}: {r:?}");
        assert_eq!(r.backend(), "live");
    }
    let m = scrape(&p, "/metrics").await;
    let errors: u64 = m
        .body
        .lines()
        .find_map(|l| {
            l.strip_prefix("svcnet_ingress_upstream_connect_errors_total{namespace=\"default\",service=\"web\"} ")
        })
        .and_then(|v| v.parse().ok())
        .expect("a connect error counter");
    assert!(errors >= 5, "{errors} connect errors counted");
    let line = format!(
        "svcnet_ingress_upstream_errors_total{{namespace=\"default\",service=\"web\",reason=\"connect\"}} {errors}\n"
    );
    assert!(m.body.contains(&line), "{line} not in {}", m.body);
}

#[tokio::test]
async fn when_every_endpoint_refuses_the_answer_is_502() {
    let dead = closed_port().await;
    let mut w = World::default();
    w.services.push(http_service("default", "web"));
    w.slices.push(slice("default", "web", "web-dead", &[("127.0.0.1", true)], &[("http", dead.port())]));
    w.ingresses.push(IngressBuilder::new("default", "web").path(None, "/", "Prefix", "web", "80").build());
    let p = proxy(w.table()).await;
    let r = get(p.http, "x", "/", &[]).await;
    assert_eq!(r.status, 502);
    assert!(r.body.contains("default/web"), "{}", r.body);
}

#[tokio::test]
async fn cookie_affinity_sticks_to_one_endpoint() {
    let bs = [backend("b0").await, backend("b1").await, backend("b2").await];
    let mut w = World::default();
    w.service("default", "web", &[&bs[0], &bs[1], &bs[2]]);
    w.ingresses.push(
        IngressBuilder::new("default", "web")
            .annotation("nginx.ingress.kubernetes.io/affinity", "cookie")
            .annotation("nginx.ingress.kubernetes.io/session-cookie-max-age", "600")
            .path(None, "/", "Prefix", "web", "80")
            .build(),
    );
    let p = proxy(w.table()).await;
    let first = get(p.http, "x", "/", &[]).await;
    let set = first.headers.get("set-cookie").and_then(|v| v.to_str().ok()).expect("an affinity cookie").to_string();
    assert!(set.starts_with("INGRESSCOOKIE="), "{set}");
    assert!(set.contains("Max-Age=600"), "{set}");
    let cookie = set.split(';').next().expect("name=value").to_string();
    let sticky = first.backend().to_string();
    for _ in 0..12 {
        let r = get(p.http, "x", "/", &[("cookie", &format!("other=1; {cookie}"))]).await;
        assert_eq!(r.backend(), sticky);
        assert!(r.headers.get("set-cookie").is_none(), "a matching cookie is not set again");
    }
    // A cookie for an endpoint that is gone gets a new one.
    let r = get(p.http, "x", "/", &[("cookie", "INGRESSCOOKIE=0000000000000000")]).await;
    assert_eq!(r.status, 200);
    assert!(r.headers.get("set-cookie").is_some());
}

#[tokio::test]
async fn metrics_count_requests_by_ingress_and_status_class_and_healthz_is_ok() {
    let a = backend("a").await;
    let mut w = World::default();
    w.service("default", "a", &[&a]);
    w.ingresses.push(IngressBuilder::new("default", "web").path(Some("foo.com"), "/", "Prefix", "a", "80").build());
    let p = proxy(w.table()).await;
    for _ in 0..3 {
        get(p.http, "foo.com", "/", &[]).await;
    }
    get(p.http, "bar.com", "/", &[]).await;
    let m = scrape(&p, "/metrics").await;
    assert!(
        m.body.contains(
            "svcnet_ingress_requests_total{namespace=\"default\",ingress=\"web\",service=\"a\",status=\"2xx\"} 3"
        ),
        "{}",
        m.body
    );
    assert!(m.body.contains("status=\"4xx\"} 1"), "{}", m.body);
    assert!(m.body.contains(
        "svcnet_ingress_request_duration_seconds_count{namespace=\"default\",ingress=\"web\",service=\"a\"} 3"
    ));
    assert!(m.body.contains("svcnet_ingress_config_reloads_total 1"));
    let h = scrape(&p, "/healthz").await;
    assert_eq!(h.status, 200);
}

#[tokio::test]
async fn request_bodies_reach_the_backend() {
    let a = backend("a").await;
    let mut w = World::default();
    w.service("default", "a", &[&a]);
    w.ingresses.push(IngressBuilder::new("default", "web").path(None, "/", "Prefix", "a", "80").build());
    let p = proxy(w.table()).await;
    let r = post(p.http, "x", "/submit", "hello body").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.line("method"), Some("POST"));
    assert_eq!(r.line("body"), Some("hello body"));
}

#[tokio::test]
async fn a_backend_slower_than_proxy_read_timeout_is_a_504() {
    let a = backend("a").await;
    let mut w = World::default();
    w.service("default", "a", &[&a]);
    w.ingresses.push(
        IngressBuilder::new("default", "web")
            .annotation("svcnet.io/proxy-read-timeout", "1")
            .path(None, "/", "Prefix", "a", "80")
            .build(),
    );
    let p = proxy(w.table()).await;
    let started = std::time::Instant::now();
    let r = get(p.http, "x", "/sleep/3000", &[]).await;
    assert_eq!(r.status, 504, "{r:?}");
    assert!(started.elapsed() < std::time::Duration::from_millis(2500));
    assert_eq!(get(p.http, "x", "/sleep/10", &[]).await.status, 200);
    let m = scrape(&p, "/metrics").await.body;
    for (reason, n) in [("connect", 0), ("timeout", 1), ("reset", 0)] {
        let line = format!(
            "svcnet_ingress_upstream_errors_total{{namespace=\"default\",service=\"a\",reason=\"{reason}\"}} {n}\n"
        );
        assert!(m.contains(&line), "{line} not in {m}");
    }
}
