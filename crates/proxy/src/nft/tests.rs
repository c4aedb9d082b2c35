//! Golden tests of the renderer (`golden/*.nft`; `SVCNET_UPDATE_GOLDEN=1`
//! rewrites them) and tests of the incremental transactions.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::*;
use crate::model::{Affinity, Endpoint, Protocol, ServicePort, Snapshot};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn facts() -> Facts {
    Facts {
        cluster_cidr: Some("10.244.0.0/16".parse().unwrap_or_else(|e| panic!("{e}"))),
        service_cidr: Some("10.96.0.0/12".parse().unwrap_or_else(|e| panic!("{e}"))),
    }
}

pub(super) fn ep(addr: &str, port: u16, local: bool) -> Endpoint {
    Endpoint {
        ip: ip(addr),
        port,
        node: Some(if local { "node1" } else { "node2" }.into()),
        ready: true,
        serving: true,
        terminating: false,
        local,
    }
}

fn terminating(mut e: Endpoint) -> Endpoint {
    e.ready = false;
    e.terminating = true;
    e
}

pub(super) fn svc(name: &str, cluster_ip: &str, port: u16, endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        namespace: "default".into(),
        name: name.into(),
        port_name: String::new(),
        protocol: Protocol::Tcp,
        cluster_ip: ip(cluster_ip),
        port,
        node_port: None,
        external_ips: Vec::new(),
        load_balancer_ips: Vec::new(),
        load_balancer_source_ranges: Vec::new(),
        affinity: Affinity::None,
        external_local: false,
        internal_local: false,
        health_check_node_port: None,
        endpoints,
    }
}

fn snap(mut services: Vec<ServicePort>) -> Snapshot {
    services.sort_by_key(|s| s.id());
    Snapshot {
        node_name: "node1".into(),
        node_ips: vec![ip("172.18.0.2")],
        cluster_cidr: "10.244.0.0/16".into(),
        service_cidr: "10.96.0.0/12".into(),
        services,
    }
}

fn three() -> Vec<Endpoint> {
    vec![ep("10.244.1.2", 8080, true), ep("10.244.1.3", 8080, true), ep("10.244.2.2", 8080, false)]
}

fn golden(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/nft/golden").join(format!("{name}.nft"));
    if std::env::var_os("SVCNET_UPDATE_GOLDEN").is_some() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with SVCNET_UPDATE_GOLDEN=1 to create it)", path.display()));
    if want != text {
        let diff: Vec<String> = want
            .lines()
            .zip(text.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(i, (a, b))| format!("line {}:\n  want {a}\n  got  {b}", i + 1))
            .collect();
        panic!(
            "{} differs from the rendering (SVCNET_UPDATE_GOLDEN=1 rewrites it):\n{}\n--- got ---\n{text}",
            path.display(),
            diff.join("\n")
        );
    }
}

fn check(name: &str, services: Vec<ServicePort>) -> String {
    let text = render(&snap(services), &facts());
    golden(name, &text);
    text
}

#[test]
fn cluster_ip_with_three_endpoints_balances_through_a_shared_chain() {
    let text = check("clusterip", vec![svc("web", "10.96.0.10", 80, three())]);
    assert!(text.contains("10.96.0.10 . tcp . 80 comment \"default/web\" : goto lb-tcp-3"), "{text}");
    assert!(text.contains("10.96.0.10 . 80 . 2 : 10.244.2.2 . 8080"), "{text}");
    assert!(text.contains("dnat ip addr . port to ip daddr . tcp dport . numgen random mod 3 map @endpoints-tcp"));
}

#[test]
fn a_service_without_endpoints_rejects() {
    let text = check("no_endpoints", vec![svc("empty", "10.96.0.11", 80, Vec::new())]);
    assert!(text.contains("10.96.0.11 . tcp . 80 comment \"default/empty\" : goto reject-chain"), "{text}");
    assert!(!text.contains("add element ip svcnet service-ips"), "{text}");
}

#[test]
fn a_node_port_is_masqueraded_and_balanced_by_port() {
    let mut s = svc("np", "10.96.0.12", 80, three());
    s.node_port = Some(30080);
    let text = check("nodeport", vec![s]);
    assert!(text.contains("tcp . 30080 comment \"default/np\" : goto nodeport-lb-tcp-3-masq"), "{text}");
    assert!(text.contains("30080 . 1 : 10.244.1.3 . 8080"), "{text}");
}

#[test]
fn external_ips_are_service_addresses_masqueraded() {
    let mut s = svc("ext", "10.96.0.13", 80, three());
    s.external_ips = vec![ip("192.0.2.10"), ip("192.0.2.11")];
    let text = check("external_ips", vec![s]);
    assert!(text.contains("192.0.2.11 . tcp . 80 comment \"default/ext\" : goto lb-tcp-3-masq"), "{text}");
}

#[test]
fn load_balancer_ips_are_service_addresses_masqueraded() {
    let mut s = svc("lb", "10.96.0.14", 443, three());
    s.node_port = Some(30443);
    s.load_balancer_ips = vec![ip("198.51.100.7")];
    check("load_balancer", vec![s]);
}

#[test]
fn load_balancer_source_ranges_filter_the_lb_ips_only_through_a_firewall_chain() {
    let mut s = svc("fw", "10.96.0.16", 443, three());
    s.node_port = Some(30444);
    s.external_ips = vec![ip("192.0.2.20")];
    s.load_balancer_ips = vec![ip("198.51.100.8"), ip("198.51.100.9")];
    s.load_balancer_source_ranges =
        ["10.244.1.0/24", "203.0.113.0/25"].iter().map(|c| c.parse().unwrap_or_else(|e| panic!("{e}"))).collect();
    let text = check("source_ranges", vec![s]);
    for lb in ["198.51.100.8", "198.51.100.9"] {
        assert!(
            text.contains(&format!("{lb} . tcp . 443 comment \"default/fw\" : goto firewall-default/fw/tcp")),
            "{text}"
        );
    }
    assert!(!text.contains("192.0.2.20 . tcp . 443 comment \"default/fw\" : goto firewall"), "{text}");
    assert!(
        text.contains("\t\tip saddr 10.244.1.0/24 return\n\t\tip saddr 203.0.113.0/25 return\n\t\tdrop\n"),
        "{text}"
    );
}

#[test]
fn source_ranges_come_and_go_with_their_chain_and_elements() {
    let plain = {
        let mut s = svc("fw", "10.96.0.16", 443, three());
        s.load_balancer_ips = vec![ip("198.51.100.8")];
        s
    };
    let mut ranged = plain.clone();
    ranged.load_balancer_source_ranges = vec!["203.0.113.0/25".parse().unwrap_or_else(|e| panic!("{e}"))];
    let mut r = Ruleset::new(facts());
    r.update(&snap(vec![plain.clone()]));
    let u = r.update(&snap(vec![ranged.clone()]));
    assert!(u.transaction.contains("add chain ip svcnet firewall-default/fw/tcp"), "{}", u.transaction);
    assert!(
        u.transaction.contains(
            "add element ip svcnet firewall-ips { 198.51.100.8 . tcp . 443 comment \"default/fw\" : goto firewall-default/fw/tcp }"
        ),
        "{}",
        u.transaction
    );
    assert!(!u.transaction.contains("service-ips"), "the service's own elements stay: {}", u.transaction);
    let u = r.update(&snap(vec![plain.clone()]));
    assert!(
        u.transaction.contains("delete element ip svcnet firewall-ips { 198.51.100.8 . tcp . 443 }"),
        "{}",
        u.transaction
    );
    assert!(u.transaction.contains("delete chain ip svcnet firewall-default/fw/tcp"), "{}", u.transaction);
    converges(&[snap(vec![plain.clone()]), snap(vec![ranged.clone()])]);
    converges(&[snap(vec![ranged]), snap(vec![plain])]);
}

#[test]
fn client_ip_affinity_uses_endpoint_chains_and_timeout_sets() {
    let mut s = svc("sticky", "10.96.0.15", 80, three());
    s.affinity = Affinity::ClientIp { timeout_seconds: 10800 };
    s.node_port = Some(30081);
    let text = check("affinity", vec![s]);
    assert!(text.contains("set affinity-default/sticky/tcp__10.244.1.2/8080 { type ipv4_addr; flags dynamic,timeout; timeout 10800s; }"), "{text}");
    assert!(text.contains(
        "ip saddr @affinity-default/sticky/tcp__10.244.1.3/8080 goto endpoint-default/sticky/tcp__10.244.1.3/8080"
    ));
    assert!(text.contains("update @affinity-default/sticky/tcp__10.244.2.2/8080 { ip saddr }"));
}

#[test]
fn external_traffic_policy_local_keeps_the_client_and_short_circuits_pods() {
    let mut s = svc("local", "10.96.0.16", 80, three());
    s.node_port = Some(30082);
    s.load_balancer_ips = vec![ip("198.51.100.8")];
    s.external_local = true;
    s.health_check_node_port = Some(32000);
    let text = check("external_local", vec![s]);
    assert!(text.contains("chain external-default/local/tcp {"), "{text}");
    assert!(text.contains("ip saddr 10.244.0.0/16 goto internal-lb-tcp-3"), "{text}");
    assert!(text.contains("goto lb-tcp-2\n"), "only the two local endpoints: {text}");
    assert!(text.contains("198.51.100.8 . 80 . 1 : 10.244.1.3 . 8080"));
    // The remote endpoint only in the internal (short-circuit) map.
    assert_eq!(text.matches("198.51.100.8 . 80 . 2 : 10.244.2.2 . 8080").count(), 1, "{text}");
}

#[test]
fn external_traffic_policy_local_without_local_endpoints_drops_outside_traffic() {
    let mut s = svc("remote", "10.96.0.17", 80, vec![ep("10.244.2.2", 8080, false)]);
    s.node_port = Some(30083);
    s.external_local = true;
    let text = check("external_local_remote_only", vec![s]);
    assert!(text.contains("tcp . 30083 comment \"default/remote\" : drop"), "{text}");
    assert!(text.contains("tcp . 30083 comment \"default/remote\" : goto nodeport-default/remote/tcp"), "{text}");
}

#[test]
fn internal_traffic_policy_local_sends_cluster_ip_traffic_to_local_endpoints_only() {
    let mut s = svc("itp", "10.96.0.18", 80, three());
    s.internal_local = true;
    s.node_port = Some(30084);
    let text = check("internal_local", vec![s]);
    assert!(text.contains("10.96.0.18 . tcp . 80 comment \"default/itp\" : goto lb-tcp-2"), "{text}");
    assert!(text.contains("tcp . 30084 comment \"default/itp\" : goto nodeport-lb-tcp-3-masq"), "{text}");
}

#[test]
fn terminating_endpoints_serve_when_none_is_ready() {
    let eps = vec![
        terminating(ep("10.244.1.2", 8080, true)),
        Endpoint { serving: false, ..terminating(ep("10.244.1.3", 8080, true)) },
    ];
    let text = check("terminating", vec![svc("draining", "10.96.0.19", 80, eps)]);
    assert!(text.contains("goto lb-tcp-1"), "{text}");
    assert!(!text.contains("10.244.1.3 . 8080"), "not serving: {text}");
}

#[test]
fn each_port_of_a_multi_port_service_is_its_own_service_port() {
    let mut http = svc("multi", "10.96.0.20", 80, three());
    http.port_name = "http".into();
    let mut https = svc(
        "multi",
        "10.96.0.20",
        443,
        three()
            .into_iter()
            .map(|mut e| {
                e.port = 8443;
                e
            })
            .collect(),
    );
    https.port_name = "https".into();
    let text = check("multi_port", vec![http, https]);
    assert!(text.contains("10.96.0.20 . tcp . 443 comment \"default/multi:https\" : goto lb-tcp-3"), "{text}");
    assert_eq!(text.matches("chain lb-tcp-3 {").count(), 1, "{text}");
}

#[test]
fn udp_services_use_the_same_maps() {
    let mut dns = svc("dns", "10.96.0.10", 53, vec![ep("10.244.1.5", 53, true), ep("10.244.2.5", 53, false)]);
    dns.namespace = "kube-system".into();
    dns.protocol = Protocol::Udp;
    dns.port_name = "dns".into();
    let text = check("udp", vec![dns]);
    assert!(text.contains("10.96.0.10 . udp . 53 comment \"kube-system/dns:dns\" : goto lb-udp-2"), "{text}");
}

#[test]
fn sctp_services_render_like_the_others() {
    let mut s = svc("sctp", "10.96.0.21", 9999, three());
    s.protocol = Protocol::Sctp;
    s.affinity = Affinity::ClientIp { timeout_seconds: 60 };
    let text = check("sctp", vec![s]);
    assert!(text.contains("meta l4proto sctp dnat to 10.244.1.2:8080"), "{text}");
}

#[test]
fn an_unknown_pod_cidr_masquerades_all_cluster_ip_traffic() {
    let f = Facts { cluster_cidr: None, service_cidr: None };
    let text = render(&snap(vec![svc("web", "10.96.0.10", 80, three())]), &f);
    assert!(text.contains("ip daddr @cluster-ips meta mark set meta mark | 0x00004000"), "{text}");
    assert!(!text.contains("unallocated"), "{text}");
}

#[test]
fn names_and_comments_cannot_break_out_of_the_text() {
    let mut s = svc("web", "10.96.0.10", 80, three());
    s.namespace = "a\"b".into();
    s.port_name = "x y;z".into();
    s.affinity = Affinity::ClientIp { timeout_seconds: 5 };
    let text = render(&snap(vec![s]), &facts());
    assert!(text.contains("chain service-a_b/web/tcp/x_y_z {"), "{text}");
    assert!(text.contains("comment \"a_b/web:x y;z\""), "{text}");
}

/// A second renderer, fed the whole history, must end where a fresh one
/// fed only the last snapshot does.
fn converges(steps: &[Snapshot]) {
    let mut r = Ruleset::new(facts());
    for s in steps {
        r.update(s);
    }
    let mut fresh = Ruleset::new(facts());
    if let Some(last) = steps.last() {
        fresh.update(last);
    }
    assert_eq!(r.render_full(), fresh.render_full());
}

#[test]
fn an_unchanged_snapshot_is_an_empty_transaction() {
    let s = snap(vec![svc("web", "10.96.0.10", 80, three())]);
    let mut r = Ruleset::new(facts());
    assert!(!r.update(&s).transaction.is_empty());
    let u = r.update(&s);
    assert_eq!(u.transaction, "");
    assert!(u.changed.is_empty());
}

#[test]
fn adding_an_endpoint_moves_the_address_to_another_lb_chain_and_adds_one_slot() {
    let before = snap(vec![svc("web", "10.96.0.10", 80, three())]);
    let mut eps = three();
    eps.push(ep("10.244.2.3", 8080, false));
    let after = snap(vec![svc("web", "10.96.0.10", 80, eps)]);
    let mut r = Ruleset::new(facts());
    r.update(&before);
    let u = r.update(&after);
    assert_eq!(
        u.transaction,
        "add chain ip svcnet lb-tcp-4\n\
         flush chain ip svcnet lb-tcp-3\n\
         delete element ip svcnet service-ips { 10.96.0.10 . tcp . 80 }\n\
         add rule ip svcnet lb-tcp-4 dnat ip addr . port to ip daddr . tcp dport . numgen random mod 4 map @endpoints-tcp\n\
         add element ip svcnet service-ips { 10.96.0.10 . tcp . 80 comment \"default/web\" : goto lb-tcp-4 }\n\
         add element ip svcnet endpoints-tcp { 10.96.0.10 . 80 . 3 : 10.244.2.3 . 8080 }\n\
         delete chain ip svcnet lb-tcp-3\n"
    );
    assert_eq!(u.changed, vec!["default/web".to_string()]);
    converges(&[before, after]);
}

#[test]
fn a_shared_lb_chain_stays_while_another_service_uses_it() {
    let a = svc("a", "10.96.0.10", 80, three());
    let b = svc("b", "10.96.0.11", 80, three());
    let mut r = Ruleset::new(facts());
    r.update(&snap(vec![a.clone(), b.clone()]));
    let u = r.update(&snap(vec![b.clone()]));
    assert!(!u.transaction.contains("lb-tcp-3"), "{}", u.transaction);
    assert!(
        u.transaction.contains(
            "delete element ip svcnet endpoints-tcp { 10.96.0.10 . 80 . 0, 10.96.0.10 . 80 . 1, 10.96.0.10 . 80 . 2 }"
        ),
        "{}",
        u.transaction
    );
    let u = r.update(&snap(vec![]));
    assert!(u.transaction.contains("flush chain ip svcnet lb-tcp-3\n"), "{}", u.transaction);
    assert!(u.transaction.contains("delete map ip svcnet endpoints-tcp\n"), "{}", u.transaction);
    assert!(!u.transaction.contains("delete element ip svcnet endpoints-tcp"), "the map goes whole: {}", u.transaction);
    assert!(u.transaction.ends_with("delete chain ip svcnet lb-tcp-3\n"), "{}", u.transaction);
}

#[test]
fn losing_every_endpoint_swaps_the_balancing_for_a_reject() {
    let mut r = Ruleset::new(facts());
    r.update(&snap(vec![svc("web", "10.96.0.10", 80, vec![ep("10.244.1.2", 80, true)])]));
    let u = r.update(&snap(vec![svc("web", "10.96.0.10", 80, Vec::new())]));
    assert!(
        u.transaction.contains("delete element ip svcnet service-ips { 10.96.0.10 . tcp . 80 }\n"),
        "{}",
        u.transaction
    );
    assert!(u.transaction.contains("add element ip svcnet no-endpoint-services { 10.96.0.10 . tcp . 80 comment \"default/web\" : goto reject-chain }"), "{}", u.transaction);
    assert!(
        u.transaction.contains("delete element ip svcnet hairpin { 10.244.1.2 . 10.244.1.2 }"),
        "{}",
        u.transaction
    );
    assert!(!u.transaction.contains("cluster-ips"), "the cluster IP stays: {}", u.transaction);
}

#[test]
fn an_affinity_endpoint_leaves_after_the_rules_naming_it() {
    let mut s = svc("sticky", "10.96.0.15", 80, three());
    s.affinity = Affinity::ClientIp { timeout_seconds: 10 };
    let mut r = Ruleset::new(facts());
    r.update(&snap(vec![s.clone()]));
    s.endpoints.remove(0);
    let u = r.update(&snap(vec![s.clone()]));
    let t = &u.transaction;
    let pos = |needle: &str| t.find(needle).unwrap_or_else(|| panic!("{needle} missing from\n{t}"));
    let flush_service = pos("flush chain ip svcnet service-default/sticky/tcp\n");
    let flush_endpoint = pos("flush chain ip svcnet endpoint-default/sticky/tcp__10.244.1.2/8080\n");
    let delete_set = pos("delete set ip svcnet affinity-default/sticky/tcp__10.244.1.2/8080\n");
    let delete_chain = pos("delete chain ip svcnet endpoint-default/sticky/tcp__10.244.1.2/8080\n");
    assert!(flush_service < delete_chain && flush_endpoint < delete_set && flush_endpoint < delete_chain, "{t}");
    assert!(t.contains("add rule ip svcnet service-default/sticky/tcp numgen random mod 2 vmap"), "{t}");
    assert!(!t.contains("delete set ip svcnet affinity-default/sticky/tcp__10.244.1.3/8080"), "{t}");
    converges(&[snap(vec![]), snap(vec![s])]);
}

#[test]
fn a_new_affinity_timeout_recreates_the_sets_and_refills_the_chains_naming_them() {
    let mut s = svc("sticky", "10.96.0.15", 80, vec![ep("10.244.1.2", 80, true)]);
    s.affinity = Affinity::ClientIp { timeout_seconds: 10 };
    let mut r = Ruleset::new(facts());
    r.update(&snap(vec![s.clone()]));
    s.affinity = Affinity::ClientIp { timeout_seconds: 20 };
    let t = r.update(&snap(vec![s])).transaction;
    let pos = |needle: &str| t.find(needle).unwrap_or_else(|| panic!("{needle} missing from\n{t}"));
    assert!(pos("flush chain ip svcnet endpoint-") < pos("delete set ip svcnet affinity-"), "{t}");
    assert!(pos("flush chain ip svcnet service-") < pos("delete set ip svcnet affinity-"), "{t}");
    assert!(
        pos("delete set ip svcnet affinity-")
            < pos(
                "add set ip svcnet affinity-default/sticky/tcp__10.244.1.2/80 { type ipv4_addr; flags dynamic,timeout; timeout 20s; }"
            ),
        "{t}"
    );
    assert!(pos("add set ip svcnet affinity-") < pos("add rule ip svcnet endpoint-"), "{t}");
}

#[test]
fn two_services_claiming_one_external_ip_keep_the_first_until_it_leaves() {
    let mut a = svc("a", "10.96.0.10", 80, three());
    a.external_ips = vec![ip("192.0.2.1")];
    let mut b = svc("b", "10.96.0.11", 80, vec![ep("10.244.1.9", 80, true)]);
    b.external_ips = vec![ip("192.0.2.1")];
    let mut r = Ruleset::new(facts());
    r.update(&snap(vec![a.clone(), b.clone()]));
    let full = r.render_full();
    assert_eq!(full.matches("192.0.2.1 . tcp . 80 comment").count(), 1, "{full}");
    assert!(full.contains("192.0.2.1 . tcp . 80 comment \"default/a\" : goto lb-tcp-3-masq"), "{full}");
    let t = r.update(&snap(vec![b.clone()])).transaction;
    assert!(
        t.contains(
            "add element ip svcnet service-ips { 192.0.2.1 . tcp . 80 comment \"default/b\" : goto lb-tcp-1-masq }"
        ),
        "{t}"
    );
    converges(&[snap(vec![a, b.clone()]), snap(vec![b])]);
}

#[test]
fn histories_converge_to_the_fresh_rendering() {
    let mut s1 = svc("a", "10.96.0.10", 80, three());
    s1.node_port = Some(30000);
    let mut s2 = s1.clone();
    s2.external_local = true;
    s2.load_balancer_ips = vec![ip("198.51.100.1")];
    let mut s3 = s2.clone();
    s3.affinity = Affinity::ClientIp { timeout_seconds: 30 };
    s3.endpoints.pop();
    let mut u = svc("dns", "10.96.0.53", 53, three());
    u.protocol = Protocol::Udp;
    let steps = [
        snap(vec![s1.clone()]),
        snap(vec![s2.clone(), u.clone()]),
        snap(vec![s3.clone(), u.clone()]),
        snap(vec![s1.clone()]),
        snap(vec![s3, u]),
        snap(vec![s2]),
    ];
    for n in 1..=steps.len() {
        converges(&steps[..n]);
    }
}

#[test]
fn udp_flows_are_deleted_when_a_service_gains_endpoints_or_an_endpoint_goes() {
    let mut dns = svc("dns", "10.96.0.10", 53, Vec::new());
    dns.protocol = Protocol::Udp;
    dns.node_port = Some(30053);
    let mut with = dns.clone();
    with.endpoints = vec![ep("10.244.1.5", 5353, true), ep("10.244.1.6", 5353, true)];
    let nobody = std::collections::HashSet::new;
    let d = conntrack::udp_deletions(&[(Some(&dns), Some(&with))], nobody);
    assert_eq!(
        d,
        vec![
            vec!["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53"],
            vec!["-D", "-p", "udp", "--orig-port-dst", "30053"],
        ]
    );
    // A new service port with endpoints is a gain too.
    assert_eq!(conntrack::udp_deletions(&[(None, Some(&with))], nobody).len(), 2);
    let mut fewer = with.clone();
    fewer.endpoints.remove(0);
    let d = conntrack::udp_deletions(&[(Some(&with), Some(&fewer))], nobody);
    assert_eq!(d, vec![vec!["-D", "-p", "udp", "--reply-src", "10.244.1.5", "--reply-port-src", "5353"]]);
    // ... unless another UDP service port still sends to it.
    let still = || std::collections::HashSet::from([("10.244.1.5".parse().unwrap_or_else(|e| panic!("{e}")), 5353)]);
    assert!(conntrack::udp_deletions(&[(Some(&with), Some(&fewer))], still).is_empty());
    // A removed service port's endpoints go.
    assert_eq!(conntrack::udp_deletions(&[(Some(&fewer), None)], nobody).len(), 1);
    let tcp = svc("web", "10.96.0.11", 80, three());
    assert!(conntrack::udp_deletions(&[(None, Some(&tcp))], nobody).is_empty());
}

#[test]
fn describe_counts_flows_per_endpoint() {
    let listing = "tcp      6 86398 ESTABLISHED src=10.244.1.9 dst=10.96.0.10 sport=40000 dport=80 src=10.244.1.2 dst=10.244.1.9 sport=8080 dport=40000 [ASSURED] mark=0 use=1\n\
                   tcp      6 118 TIME_WAIT src=10.244.1.9 dst=10.96.0.10 sport=40001 dport=80 src=10.244.1.2 dst=10.244.1.9 sport=8080 dport=40001 [ASSURED] mark=0 use=1\n\
                   udp      17 29 src=10.244.1.9 dst=172.18.0.2 sport=5000 dport=30053 [UNREPLIED] src=10.244.1.3 dst=10.244.1.1 sport=8080 dport=5000 mark=0 use=1\n";
    let flows = conntrack::parse_flows(listing);
    assert_eq!(flows.len(), 3);
    let mut s = svc("web", "10.96.0.10", 80, three());
    s.affinity = Affinity::ClientIp { timeout_seconds: 10800 };
    let list = conntrack::describe([&s], &[ip("172.18.0.2")], &flows);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].address, "10.96.0.10:80");
    assert_eq!(list[0].flags, "persistent 10800");
    assert_eq!(list[0].scheduler, "random");
    assert_eq!((list[0].endpoints[0].active, list[0].endpoints[0].inactive), (1, 1));
    assert_eq!(list[0].endpoints[1].active + list[0].endpoints[1].inactive, 0);
}

#[test]
fn a_previous_runs_table_is_replaced_in_the_same_transaction() {
    let listing = "table ip svcnet-hostports {\n\tchain hostports {\n\t}\n}\n\
                   table ip svcnet {\n\tchain lb-3 {\n\t}\n\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t}\n}\n\
                   table ip svcnet {\n\tset affinity-x {\n\t\ttype ipv4_addr\n\t}\n}\n\
                   table ip svcnet {\n\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t}\n}\n";
    let existing = Existing::parse(listing);
    assert_eq!(existing.maps, vec!["service-ips"]);
    assert_eq!(existing.sets, vec!["affinity-x"]);
    assert_eq!(existing.chains, vec!["lb-3", "nat-prerouting"]);
    let mut r = Ruleset::new(facts());
    r.update(&snap(vec![svc("web", "10.96.0.10", 80, three())]));
    let t = render_replace(&r, &existing);
    assert!(t.starts_with("table ip svcnet\nflush table ip svcnet\ndelete map ip svcnet service-ips\ndelete set ip svcnet affinity-x\ndelete chain ip svcnet lb-3\ntable ip svcnet {\n"), "{t}");
    assert!(!t.contains("delete chain ip svcnet nat-prerouting"), "{t}");
}

/// `cargo test --release -p svcnet-proxy --lib nft::tests::renderer_timing -- --ignored --nocapture`
#[test]
#[ignore = "a timing, not a test"]
fn renderer_timing() {
    // SVCNET_LOCAL=1: every endpoint on this node (a hairpin element each,
    // as in the dataplane bench).
    let local = std::env::var_os("SVCNET_LOCAL").is_some();
    let big = |salt: u16| {
        snap(
            (0..10_000u32)
                .map(|i| {
                    let mut s = svc(
                        &format!("svc-{i:05}"),
                        &Ipv4Addr::from(0x0a60_0000 + i + 1).to_string(),
                        80,
                        (0..10u32)
                            .map(|k| {
                                ep(&Ipv4Addr::from(0x0af4_0000 + (i * 10 + k) % 60_000 + 2).to_string(), 8080, local)
                            })
                            .collect(),
                    );
                    s.namespace = format!("ns-{}", i % 100);
                    if i == 0 {
                        s.endpoints[0].port = 8080 + salt;
                    }
                    s
                })
                .collect(),
        )
    };
    let snaps: Vec<Snapshot> = (0..20).map(big).collect();
    // A first start: the table without elements for nft, the elements as
    // one netlink batch.
    let loads: u32 = std::env::var("SVCNET_LOADS").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut r = Ruleset::new(facts());
    let t = std::time::Instant::now();
    for _ in 1..loads {
        Ruleset::new(facts()).load(&snaps[0]);
    }
    r.load(&snaps[0]);
    let loaded = t.elapsed() / loads;
    let t = std::time::Instant::now();
    let table = r.render_table(false);
    let rendered = t.elapsed();
    let t = std::time::Instant::now();
    let batch = r.element_batch();
    eprintln!(
        "first start: load {loaded:?}, table {rendered:?} ({} bytes), batch {:?} ({} bytes)",
        table.len(),
        t.elapsed(),
        batch.len()
    );
    let mut r = Ruleset::new(facts());
    let t = std::time::Instant::now();
    r.update(&snaps[0]);
    eprintln!("first update: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let text = r.render_full();
    eprintln!("render_full: {:?} ({} bytes)", t.elapsed(), text.len());
    if let Some(path) = std::env::var_os("SVCNET_DUMP") {
        std::fs::write(path, &text).unwrap_or_else(|e| panic!("{e}"));
    }
    let t = std::time::Instant::now();
    for s in &snaps[1..] {
        r.update(s);
    }
    eprintln!("one change: {:?} each", t.elapsed() / 19);
    let t = std::time::Instant::now();
    let rounds: u32 = std::env::var("SVCNET_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    for _ in 0..rounds {
        r.update(&snaps[19]);
    }
    eprintln!("no change: {:?} each", t.elapsed() / rounds);
    let t = std::time::Instant::now();
    let mut n = 0;
    for _ in 0..10 {
        n += snaps[19].services.iter().map(|s| s.id().len()).sum::<usize>();
    }
    eprintln!("ids alone: {:?} each ({n})", t.elapsed() / 10);
    let copy = snaps[19].clone();
    let t = std::time::Instant::now();
    let mut same = 0;
    for _ in 0..10 {
        same += copy.services.iter().zip(&snaps[19].services).filter(|(a, b)| a == b).count();
    }
    eprintln!("comparing alone: {:?} each ({same})", t.elapsed() / 10);
    use std::hash::{BuildHasher, Hash, Hasher};
    let rs = std::collections::hash_map::RandomState::new();
    let t = std::time::Instant::now();
    let mut x = 0u64;
    for _ in 0..10 {
        for s in &snaps[19].services {
            let mut h = rs.build_hasher();
            s.namespace.hash(&mut h);
            s.name.hash(&mut h);
            s.port_name.hash(&mut h);
            s.cluster_ip.hash(&mut h);
            s.endpoints.hash(&mut h);
            x ^= h.finish();
        }
    }
    eprintln!("hashing alone: {:?} each ({x})", t.elapsed() / 10);
}

#[test]
fn an_unsorted_snapshot_with_a_duplicate_renders_as_the_sorted_one() {
    let a = svc("a", "10.96.0.10", 80, three());
    let b = svc("b", "10.96.0.11", 80, vec![ep("10.244.1.9", 80, true)]);
    let mut c = svc("c", "10.96.0.12", 80, Vec::new());
    c.node_port = Some(30001);
    let sorted = snap(vec![a.clone(), b.clone(), c.clone()]);
    let mut shuffled = sorted.clone();
    shuffled.services = vec![c.clone(), a.clone(), b.clone(), a.clone()];
    let mut r = Ruleset::new(facts());
    r.update(&snap(vec![b.clone()]));
    let u = r.update(&shuffled);
    assert_eq!(u.changed, vec!["default/a".to_string(), "default/c".to_string()]);
    assert_eq!(r.render_full(), render(&sorted, &facts()));
    assert_eq!(r.update(&sorted).transaction, "");
    let ids: Vec<String> = r.services().map(|s| s.id()).collect();
    assert_eq!(ids, vec!["default/a", "default/b", "default/c"]);
}
