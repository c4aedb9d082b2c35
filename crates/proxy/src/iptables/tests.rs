//! Golden tests of the renderer and tests of the restores between
//! rulesets.
//!
//! The expected restores live in `golden/<case>.txt`. After a deliberate
//! change to the layout, regenerate them and review the diff:
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test -p svcnet-proxy --lib iptables
//! ```

use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::ruleset::zero_counters_pays;
use super::*;
use crate::model::{Affinity, Endpoint, Protocol, ServicePort, Snapshot};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn ep(addr: &str, port: u16, local: bool) -> Endpoint {
    Endpoint {
        ip: ip(addr),
        port,
        node: Some(if local { "node1" } else { "node2" }.to_string()),
        ready: true,
        serving: true,
        terminating: false,
        local,
    }
}

fn terminating(mut e: Endpoint, serving: bool) -> Endpoint {
    e.ready = false;
    e.serving = serving;
    e.terminating = true;
    e
}

fn svc(name: &str, port_name: &str, cluster_ip: &str, port: u16, endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        namespace: "default".into(),
        name: name.into(),
        port_name: port_name.into(),
        protocol: Protocol::Tcp,
        cluster_ip: ip(cluster_ip),
        port,
        node_port: None,
        external_ips: vec![],
        load_balancer_ips: vec![],
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
    vec![ep("10.244.1.2", 8080, true), ep("10.244.1.3", 8080, true), ep("10.244.2.4", 8080, false)]
}

fn golden(case: &str, snap: &Snapshot) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/iptables/golden").join(format!("{case}.txt"));
    let got = render(snap);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "{case}: rendering differs from {} at line {}:\n got: {:?}\nwant: {:?}\n\nfull output:\n{got}",
            path.display(),
            first + 1,
            got.lines().nth(first),
            want.lines().nth(first)
        );
    }
}

#[test]
fn golden_cluster_ip_with_three_endpoints() {
    golden("cluster_ip", &snap(vec![svc("web", "http", "10.96.0.20", 80, three())]));
}

#[test]
fn golden_services_without_endpoints_are_rejected_in_filter() {
    let mut np = svc("empty-np", "", "10.96.0.22", 80, vec![]);
    np.node_port = Some(30022);
    np.external_ips = vec![ip("172.18.0.200")];
    let mut udp = svc("empty-udp", "dns", "10.96.0.23", 53, vec![]);
    udp.protocol = Protocol::Udp;
    // Not ready and not serving: as good as none.
    let dead = svc("dead", "", "10.96.0.24", 80, vec![terminating(ep("10.244.1.9", 80, true), false)]);
    golden("no_endpoints", &snap(vec![svc("empty", "", "10.96.0.21", 80, vec![]), np, udp, dead]));
}

#[test]
fn golden_node_port() {
    let mut s = svc("web", "http", "10.96.0.20", 80, three());
    s.node_port = Some(30080);
    golden("node_port", &snap(vec![s]));
}

#[test]
fn golden_external_ips() {
    let mut s = svc("web", "http", "10.96.0.20", 80, three());
    s.external_ips = vec![ip("172.18.0.100"), ip("198.51.100.7")];
    golden("external_ips", &snap(vec![s]));
}

#[test]
fn golden_load_balancer_ip() {
    let mut s = svc("web", "http", "10.96.0.20", 80, three());
    s.node_port = Some(30080);
    s.load_balancer_ips = vec![ip("192.0.2.10")];
    golden("load_balancer", &snap(vec![s]));
}

#[test]
fn golden_load_balancer_source_ranges() {
    let mut s = svc("web", "http", "10.96.0.20", 80, three());
    s.node_port = Some(30080);
    s.load_balancer_ips = vec![ip("192.0.2.10")];
    s.load_balancer_source_ranges =
        ["10.244.1.0/24", "203.0.113.0/25"].iter().map(|c| c.parse().unwrap_or_else(|e| panic!("{e}"))).collect();
    golden("source_ranges", &snap(vec![s.clone()]));
    // Without endpoints there is nothing to protect: the LB IP is refused.
    s.endpoints.clear();
    let text = render(&snap(vec![s]));
    assert!(!text.contains("KUBE-FW-"), "{text}");
}

#[test]
fn golden_client_ip_affinity() {
    let mut s = svc("sticky", "", "10.96.0.30", 80, three());
    s.affinity = Affinity::ClientIp { timeout_seconds: 10800 };
    golden("affinity", &snap(vec![s]));
}

#[test]
fn golden_external_traffic_policy_local() {
    let mut s = svc("web", "http", "10.96.0.20", 80, three());
    s.node_port = Some(30080);
    s.load_balancer_ips = vec![ip("192.0.2.10")];
    s.external_local = true;
    s.health_check_node_port = Some(32000);
    // Endpoints only elsewhere: pods still get through, others are dropped.
    let mut remote = svc("remote", "", "10.96.0.25", 80, vec![ep("10.244.2.5", 80, false)]);
    remote.node_port = Some(30081);
    remote.external_local = true;
    golden("external_local", &snap(vec![s, remote]));
}

#[test]
fn golden_internal_traffic_policy_local() {
    let mut s = svc("web", "http", "10.96.0.20", 80, three());
    s.internal_local = true;
    let mut remote = svc("remote", "", "10.96.0.25", 80, vec![ep("10.244.2.5", 80, false)]);
    remote.internal_local = true;
    golden("internal_local", &snap(vec![s, remote]));
}

#[test]
fn golden_terminating_endpoints_serve_when_none_is_ready() {
    let eps = vec![
        terminating(ep("10.244.1.2", 8080, true), true),
        terminating(ep("10.244.1.3", 8080, true), false),
        terminating(ep("10.244.2.4", 8080, false), true),
    ];
    golden("terminating", &snap(vec![svc("web", "http", "10.96.0.20", 80, eps)]));
}

#[test]
fn golden_multi_port_service() {
    let http = svc("web", "http", "10.96.0.20", 80, vec![ep("10.244.1.2", 8080, true), ep("10.244.1.3", 8080, true)]);
    let https =
        svc("web", "https", "10.96.0.20", 443, vec![ep("10.244.1.2", 8443, true), ep("10.244.1.3", 8443, true)]);
    golden("multi_port", &snap(vec![http, https]));
}

#[test]
fn golden_udp_and_tcp_dns() {
    let eps = || vec![ep("10.244.1.2", 53, true), ep("10.244.2.3", 53, false)];
    let mut udp = svc("kube-dns", "dns", "10.96.0.10", 53, eps());
    udp.namespace = "kube-system".into();
    udp.protocol = Protocol::Udp;
    let mut tcp = svc("kube-dns", "dns-tcp", "10.96.0.10", 53, eps());
    tcp.namespace = "kube-system".into();
    golden("udp", &snap(vec![udp, tcp]));
}

#[test]
fn chain_names_are_stable_short_and_distinct_per_protocol() {
    let s = svc("web", "http", "10.96.0.20", 80, three());
    let names = ServiceChains::of(&s);
    assert_eq!(names.svc, format!("KUBE-SVC-{}", hash16("default/web:httptcp")));
    assert_eq!(names.svc.len(), 25);
    assert_eq!(&names.svl[9..], &names.svc[9..]);
    let mut u = s.clone();
    u.protocol = Protocol::Udp;
    assert_ne!(ServiceChains::of(&u).svc, names.svc);
    let sep = endpoint_chain(&s, &s.endpoints[0]);
    assert_eq!(sep, format!("KUBE-SEP-{}", hash16("default/web:httptcp10.244.1.2:8080")));
    assert!(sep.len() <= 28, "iptables chain names are at most 28 characters");
}

#[test]
fn probabilities_make_a_uniform_choice() {
    let text = render(&snap(vec![svc("web", "http", "10.96.0.20", 80, three())]));
    let probs: Vec<&str> =
        text.lines().filter_map(|l| l.split("--probability ").nth(1)).map(|r| r.split(' ').next().unwrap()).collect();
    assert_eq!(probs, ["0.33333333349", "0.50000000000"]);
}

fn chains_declared(restore: &str) -> Vec<&str> {
    restore.lines().filter_map(|l| l.strip_prefix(':')).map(|l| l.split(' ').next().unwrap()).collect()
}

fn chains_deleted(restore: &str) -> Vec<&str> {
    restore.lines().filter_map(|l| l.strip_prefix("-X ")).collect()
}

fn cluster() -> Vec<ServicePort> {
    vec![
        svc("a", "", "10.96.0.31", 80, vec![ep("10.244.1.2", 80, true)]),
        svc("b", "", "10.96.0.32", 80, three()),
        svc("c", "", "10.96.0.33", 80, vec![ep("10.244.1.5", 80, true)]),
    ]
}

#[test]
fn an_unchanged_snapshot_restores_nothing() {
    let rs = build(&snap(cluster()));
    assert_eq!(delta(&rs, &build(&snap(cluster()))), None);
}

#[test]
fn one_endpoint_change_rewrites_only_that_services_chains() {
    let before = snap(cluster());
    let mut services = cluster();
    let b = &mut services[1];
    let gone = b.endpoints.remove(1);
    b.endpoints.push(ep("10.244.1.7", 8080, true));
    let after = snap(services);

    let r = delta(&build(&before), &build(&after)).unwrap();
    let b = &after.services[1];
    let svc_chain = ServiceChains::of(b).svc;
    let added = endpoint_chain(b, &b.endpoints[2]);
    let removed = endpoint_chain(b, &gone);
    assert_eq!(chains_declared(&r.text), [svc_chain.as_str(), added.as_str(), removed.as_str()]);
    assert_eq!(chains_deleted(&r.text), [removed.as_str()]);
    assert_eq!((r.chains_written, r.chains_deleted), (2, 1));
    // Only nat: the filter table did not change.
    assert!(r.text.starts_with("*nat\n") && !r.text.contains("*filter"), "{}", r.text);
    // The deletion comes after the rewritten chain stops jumping to it.
    let x = r.text.find(&format!("-X {removed}")).unwrap();
    assert!(r.text[..x].contains(&format!("-A {svc_chain} ")));
    assert!(!r.text[..x].contains(&format!("-j {removed}")));
}

#[test]
fn a_new_service_rewrites_the_dispatch_chain_and_adds_its_own() {
    let before = snap(cluster());
    let mut services = cluster();
    services.push(svc("d", "", "10.96.0.34", 80, vec![ep("10.244.1.8", 80, true)]));
    let after = snap(services);
    let r = delta(&build(&before), &build(&after)).unwrap();
    let d = after.services.iter().find(|s| s.name == "d").unwrap();
    assert_eq!(
        chains_declared(&r.text),
        ["KUBE-SERVICES", ServiceChains::of(d).svc.as_str(), endpoint_chain(d, &d.endpoints[0]).as_str()]
    );
    assert!(chains_deleted(&r.text).is_empty());
}

#[test]
fn a_removed_service_loses_its_chains_after_its_jumps() {
    let before = snap(cluster());
    let mut services = cluster();
    let a = services.remove(0);
    let after = snap(services);
    let r = delta(&build(&before), &build(&after)).unwrap();
    let svc_chain = ServiceChains::of(&a).svc;
    let sep = endpoint_chain(&a, &a.endpoints[0]);
    assert_eq!(chains_deleted(&r.text), [svc_chain.as_str(), sep.as_str()]);
    let x = r.text.find("-X ").unwrap();
    assert!(r.text[..x].contains("-A KUBE-SERVICES "), "KUBE-SERVICES is rewritten before the deletes");
}

#[test]
fn losing_every_endpoint_moves_the_service_to_the_filter_table() {
    let before = snap(cluster());
    let mut services = cluster();
    services[2].endpoints.clear();
    let r = delta(&build(&before), &build(&snap(services))).unwrap();
    assert!(r.text.contains("*filter\n:KUBE-SERVICES - [0:0]\n"), "{}", r.text);
    assert!(r.text.contains("\"default/c has no endpoints\""), "{}", r.text);
}

const SAVED_AFTER_RESTART: &str = "\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-STALESTALESTALE - [0:0]
:OTHER - [0:0]
-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-A OUTPUT -j OTHER
-A OTHER -d 10.0.0.1/32 -j KUBE-SVC-STALESTALESTALE
-A KUBE-SERVICES -d 10.96.0.99/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-STALESTALESTALE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
";

#[test]
fn a_reconcile_rewrites_everything_deletes_stale_chains_and_adds_missing_jumps() {
    let next = build(&snap(cluster()));
    let r = reconcile(&Saved::parse(SAVED_AFTER_RESTART), &next);
    let declared = chains_declared(&r.text);
    for table in ["nat", "filter"] {
        for c in next.chains(table) {
            assert!(declared.contains(&c.name.as_str()), "{} declared", c.name);
        }
    }
    assert_eq!(chains_deleted(&r.text), ["KUBE-SVC-STALESTALESTALE"]);
    // A foreign chain's jump to the stale chain goes first; the foreign chain stays.
    assert!(r.text.contains("-D OTHER -d 10.0.0.1/32 -j KUBE-SVC-STALESTALESTALE\n"));
    assert!(!r.text.contains("-X OTHER"));
    // PREROUTING already jumps to KUBE-SERVICES; the rest are added.
    assert!(!r.text.contains("-I PREROUTING"));
    let hooks: Vec<&str> = r.text.lines().filter(|l| l.starts_with("-I ")).collect();
    assert_eq!(hooks.len(), JUMPS.len() - 1);
    assert!(hooks.contains(&"-I OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"));
    assert!(
        hooks.contains(&"-I POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING")
    );
    // Order inside the nat section: declarations, unhooks, rules, deletes, hooks.
    let pos = |s: &str| r.text.find(s).unwrap();
    assert!(pos(":KUBE-SVC-STALESTALESTALE") < pos("-D OTHER"));
    assert!(pos("-D OTHER") < pos("-A KUBE-SERVICES"));
    assert!(pos("-A KUBE-SERVICES") < pos("-X KUBE-SVC-STALESTALESTALE"));
    assert!(pos("-X KUBE-SVC-STALESTALESTALE") < pos("-I OUTPUT"));
}

#[test]
fn a_reconcile_on_a_fresh_node_installs_every_jump() {
    let r = reconcile(&Saved::default(), &build(&snap(vec![])));
    assert_eq!(r.text.lines().filter(|l| l.starts_with("-I ")).count(), JUMPS.len());
    assert!(chains_deleted(&r.text).is_empty());
}

#[test]
fn teardown_removes_jumps_then_every_kube_chain() {
    let r = teardown(&Saved::parse(SAVED_AFTER_RESTART)).unwrap();
    assert_eq!(chains_deleted(&r.text), ["KUBE-SERVICES", "KUBE-SVC-STALESTALESTALE"]);
    assert!(r.text.contains("-D PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"));
    assert!(r.text.contains("-D OTHER -d 10.0.0.1/32 -j KUBE-SVC-STALESTALESTALE\n"));
    assert!(!r.text.contains("*filter"), "nothing of ours in filter");
    let nothing = "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n";
    assert_eq!(teardown(&Saved::parse(nothing)), None);
}

#[test]
fn big_restores_start_by_zeroing_counters() {
    assert!(!zero_counters_pays(100, 0));
    assert!(zero_counters_pays(430_000, 0));
    assert!(zero_counters_pays(430_000, 430_000));
    // Rewriting one 10,000-rule chain of a 430,000-rule table: the list is cheaper.
    assert!(!zero_counters_pays(10_050, 430_000));
    let many: Vec<ServicePort> = (0..1000u32)
        .map(|i| svc(&format!("s{i}"), "", &format!("10.96.{}.{}", i / 250, i % 250 + 1), 80, three()))
        .collect();
    let r = reconcile(&Saved::default(), &build(&snap(many)));
    assert!(r.text.starts_with("*nat\n-Z\n"));
}

#[test]
fn describe_lists_every_address_with_its_endpoints() {
    let mut s = svc("web", "http", "10.96.0.20", 80, three());
    s.node_port = Some(30080);
    s.external_ips = vec![ip("172.18.0.100")];
    s.external_local = true;
    s.affinity = Affinity::ClientIp { timeout_seconds: 60 };
    let snap = snap(vec![s]);
    let counts = Counts::parse(
        "tcp 6 100 ESTABLISHED src=10.244.1.9 dst=10.96.0.20 sport=1 dport=80 src=10.244.1.3 dst=10.244.1.9 sport=8080 dport=1 [ASSURED]\n",
    );
    let vs = describe::virtual_services(&snap.services, &[ip("172.18.0.2")], &counts);
    let addrs: Vec<&str> = vs.iter().map(|v| v.address.as_str()).collect();
    assert_eq!(addrs, ["10.96.0.20:80", "172.18.0.100:80", "172.18.0.2:30080"]);
    assert_eq!(vs[0].service, "default/web:http");
    assert_eq!(vs[0].scheduler, "random");
    assert_eq!(vs[0].flags, "persistent 60");
    assert_eq!(vs[0].endpoints.len(), 3);
    assert_eq!((vs[0].endpoints[1].address.as_str(), vs[0].endpoints[1].active), ("10.244.1.3:8080", 1));
    // Local external policy: only this node's endpoints.
    assert_eq!(vs[1].endpoints.len(), 2);
}

#[test]
fn the_interface_holding_the_node_address_is_found() {
    let addrs = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
4: eth0    inet 172.18.0.2/24 scope global eth0\\       valid_lft forever preferred_lft forever
5: cni0    inet 10.244.1.1/24 scope global cni0\\       valid_lft forever preferred_lft forever
";
    assert_eq!(interface_with(addrs, "172.18.0.2".parse().unwrap()).as_deref(), Some("eth0"));
    assert_eq!(interface_with(addrs, "172.18.0.20".parse().unwrap()), None);
}

fn many(n: u32) -> Vec<ServicePort> {
    (0..n)
        .map(|i| svc(&format!("s{i:03}"), "", &format!("10.96.1.{}", i + 1), 80, vec![ep("10.244.1.2", 80, true)]))
        .collect()
}

#[test]
fn unchanged_services_keep_their_fragment_and_changed_ones_are_rendered_again() {
    let before = build(&snap(many(5)));
    let mut services = many(5);
    services[2].port = 81;
    let after = rebuild(&snap(services.clone()), Some(&before));
    for i in [0, 1, 3, 4] {
        assert!(std::sync::Arc::ptr_eq(&before.services[i], &after.services[i]), "s{i} reused");
    }
    assert!(!std::sync::Arc::ptr_eq(&before.services[2], &after.services[2]));
    assert_eq!(after, build(&snap(services.clone())), "reuse renders the same ruleset");
    // A different cluster CIDR changes every fragment's masquerade rule.
    let mut other = snap(services);
    other.cluster_cidr = "10.32.0.0/12".into();
    let again = rebuild(&other, Some(&after));
    assert!(again.services.iter().zip(&after.services).all(|(a, b)| !std::sync::Arc::ptr_eq(a, b)));
    assert!(render(&other).contains("! -s 10.32.0.0/12 "));
}

#[test]
fn a_new_service_among_many_is_inserted_rule_by_rule() {
    let before = build(&snap(many(20)));
    let mut services = many(20);
    services.push(svc("zzz", "", "10.96.2.1", 80, vec![ep("10.244.1.2", 80, true)]));
    let after = rebuild(&snap(services), Some(&before));
    let r = delta(&before, &after).unwrap();
    assert!(!chains_declared(&r.text).contains(&"KUBE-SERVICES"), "{}", r.text);
    let zzz = after.services.last().unwrap();
    let svc_chain = ServiceChains::of(&zzz.source).svc;
    assert!(
        r.text.contains(&format!(
            "-I KUBE-SERVICES -d 10.96.2.1/32 -p tcp -m comment --comment \"default/zzz cluster IP\" -m tcp --dport 80 -j {svc_chain}\n"
        )),
        "{}",
        r.text
    );
    assert_eq!((r.chains_written, r.rules_edited), (2, 1));
    // The jump is inserted after its chain is declared.
    assert!(r.text.find(&format!(":{svc_chain} ")).unwrap() < r.text.find("-I KUBE-SERVICES").unwrap());
}

#[test]
fn a_removed_service_among_many_is_deleted_rule_by_rule_before_its_chains() {
    let before = build(&snap(many(20)));
    let mut services = many(20);
    let gone = services.remove(7);
    let after = rebuild(&snap(services), Some(&before));
    let r = delta(&before, &after).unwrap();
    let svc_chain = ServiceChains::of(&gone).svc;
    let d = r.text.find("-D KUBE-SERVICES -d 10.96.1.8/32 ").expect("rule deleted");
    assert!(d < r.text.find(&format!("-X {svc_chain}")).unwrap());
    assert_eq!((r.chains_written, r.chains_deleted, r.rules_edited), (0, 2, 1));
}

#[test]
fn rebuilding_gives_the_same_deltas_as_rendering_from_scratch() {
    // A deterministic walk through edits: endpoints come and go, services
    // appear, disappear and change type.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut services = many(30);
    let mut prev = build(&snap(services.clone()));
    for step in 0..200 {
        let i = next(services.len() as u64) as usize;
        match next(6) {
            0 => services[i].endpoints.push(ep(&format!("10.244.1.{}", 10 + next(200)), 80, next(2) == 0)),
            1 => {
                services[i].endpoints.pop();
            }
            2 => services[i].node_port = Some(30000 + next(1000) as u16),
            3 => services[i].external_local = !services[i].external_local,
            4 => {
                services.remove(i);
            }
            _ => services.push(svc(&format!("n{step}"), "", &format!("10.96.3.{}", step % 250 + 1), 80, three())),
        }
        if services.is_empty() {
            services = many(3);
        }
        let s = snap(services.clone());
        let reused = rebuild(&s, Some(&prev));
        let fresh = build(&s);
        assert_eq!(reused, fresh, "step {step}");
        assert_eq!(delta(&prev, &reused), delta(&prev, &fresh), "step {step}");
        prev = reused;
    }
}

#[test]
fn a_changed_last_rule_rewrites_the_dispatch_chain() {
    let before = build(&snap(many(20)));
    let mut moved = snap(many(20));
    moved.service_cidr = "10.100.0.0/16".into();
    let r = delta(&before, &rebuild(&moved, Some(&before))).unwrap();
    assert!(r.text.starts_with("*filter\n:KUBE-SERVICES - [0:0]\n"), "{}", r.text);
    assert_eq!(r.rules_edited, 0);
    assert!(r.text.ends_with("-A KUBE-SERVICES -d 10.100.0.0/16 -m comment --comment \"drop new connections to unallocated service IPs\" -m conntrack ! --ctstate DNAT -j DROP\nCOMMIT\n"));
}
