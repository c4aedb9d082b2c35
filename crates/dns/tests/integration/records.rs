//! Every kind of record, as dig sees it over UDP.

use crate::harness::{SOA, dig, server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_resolves_cluster_ip_services_with_srv_targets_in_the_additional_section() {
    let s = server().await;
    let a = s.udp_addr();
    let d = dig(a, &["web.default.svc.cluster.local", "A"]).await;
    assert_eq!(d.status, "NOERROR", "{}", d.raw);
    assert!(d.has_flag("aa"), "{}", d.raw);
    assert_eq!(d.answer, ["web.default.svc.cluster.local. 5 IN A 10.96.0.10"]);
    let d = dig(a, &["web.default.svc.cluster.local", "AAAA"]).await;
    assert_eq!(d.answer, ["web.default.svc.cluster.local. 5 IN AAAA fd00::10"]);
    let d = dig(a, &["_http._tcp.web.default.svc.cluster.local", "SRV"]).await;
    assert_eq!(
        d.answer,
        ["_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."]
    );
    assert_eq!(
        d.additional,
        ["web.default.svc.cluster.local. 5 IN A 10.96.0.10", "web.default.svc.cluster.local. 5 IN AAAA fd00::10"]
    );
    let d = dig(a, &["-x", "10.96.0.10"]).await;
    assert_eq!(d.answer, ["10.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."]);
    let d = dig(a, &["-x", "fd00::10"]).await;
    assert_eq!(d.answer.len(), 1, "{}", d.raw);
    assert!(d.answer[0].ends_with("ip6.arpa. 5 IN PTR web.default.svc.cluster.local."), "{}", d.raw);
    let d = dig(a, &["dns-version.cluster.local", "TXT"]).await;
    assert_eq!(d.answer, ["dns-version.cluster.local. 5 IN TXT \"1.1.0\""]);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_resolves_headless_services_endpoints_and_pods() {
    let s = server().await;
    let a = s.udp_addr();
    let d = dig(a, &["db.default.svc.cluster.local"]).await;
    assert_eq!(
        d.answer,
        ["db.default.svc.cluster.local. 5 IN A 10.1.1.1", "db.default.svc.cluster.local. 5 IN A 10.1.1.2"]
    );
    let d = dig(a, &["db-0.db.default.svc.cluster.local"]).await;
    assert_eq!(d.answer, ["db-0.db.default.svc.cluster.local. 5 IN A 10.1.1.1"]);
    let d = dig(a, &["_postgres._tcp.db.default.svc.cluster.local", "SRV"]).await;
    assert_eq!(d.answer.len(), 3, "{}", d.raw);
    assert_eq!(d.additional.len(), 3, "{}", d.raw);
    assert!(d.additional.contains(&"fd00--1-1.db.default.svc.cluster.local. 5 IN AAAA fd00::1:1".to_string()));
    let d = dig(a, &["-x", "10.1.1.1"]).await;
    assert_eq!(d.answer, ["1.1.1.10.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local."]);
    let d = dig(a, &["idle.default.svc.cluster.local"]).await;
    assert_eq!(d.status, "NXDOMAIN", "a headless service without ready endpoints: {}", d.raw);
    let d = dig(a, &["10-20-30-40.default.pod.cluster.local"]).await;
    assert_eq!(d.answer, ["10-20-30-40.default.pod.cluster.local. 5 IN A 10.20.30.40"]);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_follows_external_names_inside_the_zone_cname_first() {
    let s = server().await;
    let d = dig(s.udp_addr(), &["alias.default.svc.cluster.local"]).await;
    assert_eq!(
        d.answer,
        [
            "alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.",
            "web.default.svc.cluster.local. 5 IN A 10.96.0.10"
        ]
    );
    // Without upstreams an outside target is left to the client.
    let d = dig(s.udp_addr(), &["ext.default.svc.cluster.local"]).await;
    assert_eq!(d.answer, ["ext.default.svc.cluster.local. 5 IN CNAME example.com."]);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_answers_carry_the_soa_so_resolvers_cache_them() {
    let s = server().await;
    let a = s.udp_addr();
    for (name, t, status) in [
        ("missing.default.svc.cluster.local", "A", "NXDOMAIN"),
        ("google.com.default.svc.cluster.local", "AAAA", "NXDOMAIN"),
        ("web.default.svc.cluster.local", "TXT", "NOERROR"),
        ("svc.cluster.local", "A", "NOERROR"),
        ("default.svc.cluster.local", "A", "NOERROR"),
    ] {
        let d = dig(a, &[name, t]).await;
        assert_eq!(d.status, status, "{name} {t}: {}", d.raw);
        assert!(d.answer.is_empty(), "{name} {t}: {}", d.raw);
        assert_eq!(d.authority, [SOA], "{name} {t}: {}", d.raw);
        assert!(d.has_flag("aa"), "{name} {t}: {}", d.raw);
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_echo_the_case_of_the_question() {
    let s = server().await;
    let d = dig(s.udp_addr(), &["WeB.DeFault.SVC.cluster.LOCAL"]).await;
    assert_eq!(d.answer, ["WeB.DeFault.SVC.cluster.LOCAL. 5 IN A 10.96.0.10"], "{}", d.raw);
    let d = dig(s.udp_addr(), &["NoPe.DeFault.SVC.cluster.LOCAL"]).await;
    assert_eq!(d.status, "NXDOMAIN");
    assert_eq!(
        d.authority,
        ["cluster.LOCAL. 5 IN SOA ns.dns.cluster.LOCAL. hostmaster.cluster.LOCAL. 42 7200 1800 86400 5"]
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_outside_the_zone_are_refused_without_upstreams() {
    let s = server().await;
    let d = dig(s.udp_addr(), &["example.com"]).await;
    assert_eq!(d.status, "REFUSED", "{}", d.raw);
    assert!(!d.has_flag("ra"));
    s.shutdown().await;
}
