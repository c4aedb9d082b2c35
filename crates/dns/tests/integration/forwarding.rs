//! Names outside the zone: forwarded to an upstream (another svcnet-dns
//! serving `example.com` on loopback), cached, chased for ExternalNames.

use std::time::Duration;

use svcnet_dns::name::Name;
use svcnet_dns::wire::RData;
use svcnet_dns::{DnsConfig, DnsServer, ViewBuilder, serve_static};

use crate::harness::{dig, server_with};

/// `example.com` with an apex A, `www`, and `big` (100 addresses: too many
/// for UDP).
async fn upstream() -> DnsServer {
    let config = DnsConfig { cluster_domain: "example.com".into(), ttl: 300, ..DnsConfig::local() };
    let mut b = ViewBuilder::new(config.zone_config().expect("test setup"));
    let n = |s: &str| Name::parse(s).expect("test setup");
    b.add(n("example.com"), RData::A("192.0.2.10".parse().expect("test setup")));
    b.add(n("www.example.com"), RData::A("192.0.2.11".parse().expect("test setup")));
    for i in 1..=100 {
        b.add(n("big.example.com"), RData::A(format!("198.51.100.{i}").parse().expect("test setup")));
    }
    serve_static(&config, b.build(7)).await.expect("upstream starts")
}

async fn forwarding_to(up: &DnsServer) -> DnsServer {
    server_with(DnsConfig {
        upstreams: Some(vec![up.udp_addr()]),
        upstream_timeout: Duration::from_millis(500),
        ..DnsConfig::local()
    })
    .await
}

fn metric(s: &DnsServer, line_start: &str) -> u64 {
    let text = s.metrics().render();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_outside_the_zone_are_forwarded_and_cached() {
    let up = upstream().await;
    let s = forwarding_to(&up).await;
    let d = dig(s.udp_addr(), &["www.example.com"]).await;
    assert_eq!(d.status, "NOERROR", "{}", d.raw);
    assert_eq!(d.answer, ["www.example.com. 300 IN A 192.0.2.11"], "{}", d.raw);
    assert!(d.has_flag("ra"), "{}", d.raw);
    assert!(!d.has_flag("aa"), "{}", d.raw);
    let d = dig(s.udp_addr(), &["WWW.example.COM"]).await;
    assert_eq!(d.answer.len(), 1, "{}", d.raw);
    assert!(d.answer[0].starts_with("WWW.example.COM. "), "case echoed from the cache: {}", d.raw);
    assert_eq!(metric(&s, "coredns_cache_hits_total{server=\"dns://127.0.0.1"), 1);
    assert_eq!(metric(&s, "coredns_cache_misses_total"), 1);
    // Zone answers still come from the zone, with RA now set.
    let d = dig(s.udp_addr(), &["web.default.svc.cluster.local"]).await;
    assert!(d.has_flag("aa") && d.has_flag("ra"), "{}", d.raw);
    s.shutdown().await;
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_upstream_answers_are_cached_for_the_soa_minimum() {
    let up = upstream().await;
    let s = forwarding_to(&up).await;
    for _ in 0..2 {
        let d = dig(s.udp_addr(), &["nope.example.com"]).await;
        assert_eq!(d.status, "NXDOMAIN", "{}", d.raw);
        assert_eq!(d.authority.len(), 1, "{}", d.raw);
        assert!(d.authority[0].starts_with("example.com. "), "{}", d.raw);
    }
    let text = s.metrics().render();
    assert!(text.contains("type=\"denial\"} 1"), "{text}");
    s.shutdown().await;
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_upstream_answers_are_fetched_again_over_tcp() {
    let up = upstream().await;
    let s = forwarding_to(&up).await;
    let d = dig(s.tcp_addr(), &["+tcp", "big.example.com"]).await;
    assert_eq!(d.answer.len(), 100, "{}", d.raw);
    let d = dig(s.udp_addr(), &["+ignore", "big.example.com"]).await;
    assert!(d.has_flag("tc"), "the cached answer is still too big for UDP: {}", d.raw);
    s.shutdown().await;
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_names_leading_outside_the_zone_are_resolved_upstream() {
    let up = upstream().await;
    let s = forwarding_to(&up).await;
    let d = dig(s.udp_addr(), &["ext.default.svc.cluster.local"]).await;
    assert_eq!(
        d.answer,
        ["ext.default.svc.cluster.local. 5 IN CNAME example.com.", "example.com. 300 IN A 192.0.2.10"],
        "{}",
        d.raw
    );
    s.shutdown().await;
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_upstream_means_servfail_not_silence() {
    // Bound, but never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("test setup");
    let s = server_with(DnsConfig {
        upstreams: Some(vec![silent.local_addr().expect("test setup")]),
        upstream_timeout: Duration::from_millis(200),
        ..DnsConfig::local()
    })
    .await;
    let d = dig(s.udp_addr(), &["www.example.com"]).await;
    assert_eq!(d.status, "SERVFAIL", "{}", d.raw);
    s.shutdown().await;
}
