use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{
    LoadBalancerIngress, LoadBalancerStatus, Service, ServicePort, ServiceSpec, ServiceStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use svcnet_client::ObjectKey;

use super::*;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

fn pool(s: &str) -> Pool {
    s.parse().expect("test pool")
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::namespaced("default", name)
}

/// A LoadBalancer Service `default/name`, created `age` seconds after a
/// fixed instant, serving TCP port 80.
fn lb(name: &str, created: i64) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            creation_timestamp: Some(Time(Timestamp::from_second(1_700_000_000 + created).expect("in range"))),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            ports: Some(vec![ServicePort { port: 80, protocol: Some("TCP".into()), ..ServicePort::default() }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn with_type(mut svc: Service, t: &str) -> Service {
    svc.spec.get_or_insert_with(Default::default).type_ = Some(t.into());
    svc
}

fn asking(mut svc: Service, addr: &str) -> Service {
    svc.spec.get_or_insert_with(Default::default).load_balancer_ip = Some(addr.into());
    svc
}

fn annotated(mut svc: Service, k: &str, v: &str) -> Service {
    svc.metadata.annotations.get_or_insert_with(BTreeMap::new).insert(k.into(), v.into());
    svc
}

fn showing(mut svc: Service, addr: &str) -> Service {
    svc.status = Some(ServiceStatus {
        load_balancer: Some(LoadBalancerStatus {
            ingress: Some(vec![LoadBalancerIngress {
                ip: Some(addr.into()),
                ip_mode: Some("VIP".into()),
                ..LoadBalancerIngress::default()
            }]),
        }),
        ..ServiceStatus::default()
    });
    svc
}

fn on_port(mut svc: Service, port: i32) -> Service {
    svc.spec.get_or_insert_with(Default::default).ports =
        Some(vec![ServicePort { port, protocol: Some("TCP".into()), ..ServicePort::default() }]);
    svc
}

fn assigned(outcomes: &BTreeMap<ObjectKey, Outcome>, name: &str) -> Option<Ipv4Addr> {
    match outcomes.get(&key(name)) {
        Some(Outcome::Assigned(ip)) => Some(*ip),
        _ => None,
    }
}

fn failure(outcomes: &BTreeMap<ObjectKey, Outcome>, name: &str) -> String {
    match outcomes.get(&key(name)) {
        Some(Outcome::Failed(e)) => failure_message(&key(name), e),
        other => panic!("{name} did not fail: {other:?}"),
    }
}

// ---- the pool ----

#[test]
fn a_cidr_leaves_out_its_network_and_broadcast_addresses() {
    let p = pool("10.0.0.0/30");
    assert_eq!(p.addresses().collect::<Vec<_>>(), [ip("10.0.0.1"), ip("10.0.0.2")]);
    assert!(!p.contains(ip("10.0.0.0")) && !p.contains(ip("10.0.0.3")));
    assert_eq!(pool("10.0.0.0/31").len(), 2, "a /31 has no network or broadcast address");
    assert_eq!(pool("10.0.0.7/32").addresses().collect::<Vec<_>>(), [ip("10.0.0.7")]);
}

#[test]
fn ranges_and_single_addresses_keep_every_address_and_merge() {
    let p = pool(" 10.0.0.10-10.0.0.12, 10.0.0.13 ,10.0.0.11-10.0.0.11,192.168.1.0/24,");
    assert_eq!(p.to_string(), "10.0.0.10-10.0.0.13,192.168.1.1-192.168.1.254");
    assert_eq!(p.len(), 4 + 254);
    assert_eq!(pool(&p.to_string()), p, "Display parses back");
    assert!(p.contains(ip("10.0.0.13")) && !p.contains(ip("10.0.0.14")) && !p.contains(ip("10.0.0.9")));
    assert_eq!(default_pool(), pool(DEFAULT_POOL));
    assert_eq!(default_pool().len(), 254);
}

#[test]
fn bad_pools_say_what_is_wrong() {
    let err = |s: &str| parse_pool(s).expect_err(s);
    assert_eq!(err(""), "the address pool is empty");
    assert_eq!(err("10.0.0.5/24"), "\"10.0.0.5/24\" has host bits set (did you mean 10.0.0.0/24?)");
    assert_eq!(err("10.0.0.9-10.0.0.1"), "\"10.0.0.9-10.0.0.1\" ends before it starts");
    assert_eq!(err("10.0.0.0/33"), "\"10.0.0.0/33\" has an invalid prefix length (0 to 32)");
    assert_eq!(err("fd00::/64"), "\"fd00::\" is IPv6; the pool holds IPv4 addresses only");
    assert_eq!(err("10.0.0.0/24,nope"), "\"nope\" is not an IPv4 address");
}

// ---- allocation ----

#[test]
fn new_load_balancers_get_the_lowest_free_addresses_oldest_first() {
    let services = [lb("b", 2), lb("a", 1), lb("c", 3)];
    let (_, out) = allocate_all(pool("10.0.0.0/24"), &services);
    assert_eq!(assigned(&out, "a"), Some(ip("10.0.0.1")), "the network address is skipped");
    assert_eq!(assigned(&out, "b"), Some(ip("10.0.0.2")));
    assert_eq!(assigned(&out, "c"), Some(ip("10.0.0.3")));
}

#[test]
fn a_valid_address_in_the_status_is_kept() {
    let services = [lb("a", 1), showing(lb("b", 2), "10.0.0.7")];
    let (_, out) = allocate_all(pool("10.0.0.0/24"), &services);
    assert_eq!(assigned(&out, "b"), Some(ip("10.0.0.7")));
    assert_eq!(assigned(&out, "a"), Some(ip("10.0.0.1")));
}

#[test]
fn an_address_outside_the_pool_in_the_status_is_replaced() {
    let services = [showing(lb("a", 1), "192.168.9.9")];
    let (_, out) = allocate_all(pool("10.0.0.0/24"), &services);
    assert_eq!(assigned(&out, "a"), Some(ip("10.0.0.1")));
}

#[test]
fn a_requested_address_in_the_pool_is_given() {
    let services = [lb("a", 1), asking(lb("b", 2), "10.0.0.1")];
    let (_, out) = allocate_all(pool("10.0.0.0/24"), &services);
    assert_eq!(assigned(&out, "b"), Some(ip("10.0.0.1")), "requests go first at start");
    assert_eq!(assigned(&out, "a"), Some(ip("10.0.0.2")));
}

#[test]
fn a_requested_address_outside_the_pool_is_refused() {
    let services = [asking(lb("a", 1), "192.168.1.1")];
    let (alloc, out) = allocate_all(pool("10.0.0.0/24"), &services);
    assert_eq!(failure(&out, "a"), "Failed to allocate IP for \"default/a\": \"192.168.1.1\" is not allowed in config");
    assert_eq!(alloc.assigned(&key("a")), None);
}

#[test]
fn a_requested_address_another_service_holds_is_refused() {
    let mut alloc = Allocator::new(pool("10.0.0.0/24"));
    let a = lb("a", 1);
    assert_eq!(alloc.sync(&key("a"), Some(&a)).outcome, Outcome::Assigned(ip("10.0.0.1")));
    let b = asking(lb("b", 2), "10.0.0.1");
    let d = alloc.sync(&key("b"), Some(&b));
    let Outcome::Failed(e) = &d.outcome else { panic!("{d:?}") };
    assert_eq!(
        failure_message(&key("b"), e),
        "Failed to allocate IP for \"default/b\": \"10.0.0.1\" is already in use by default/a"
    );
    assert_eq!(status_update(&b, &d), None, "no status to clear: EXTERNAL-IP stays <pending>");

    // Once a is gone, b gets it.
    let d = alloc.sync(&key("a"), None);
    assert_eq!(d, Decision { outcome: Outcome::NotLoadBalancer, freed: Some(ip("10.0.0.1")) });
    assert_eq!(alloc.sync(&key("b"), Some(&b)).outcome, Outcome::Assigned(ip("10.0.0.1")));
}

#[test]
fn requests_come_from_the_annotations_or_the_field_and_must_agree() {
    let p = pool("10.0.0.0/24");
    let one = |svc: Service| allocate_all(p.clone(), [&svc]).1.remove(&key("a")).expect("an outcome");
    let a = || lb("a", 1);
    assert_eq!(one(annotated(a(), ANNOTATION_IPS, "10.0.0.5")), Outcome::Assigned(ip("10.0.0.5")));
    assert_eq!(one(annotated(a(), METALLB_ANNOTATION_IPS, " 10.0.0.6 ")), Outcome::Assigned(ip("10.0.0.6")));
    assert_eq!(
        one(asking(annotated(a(), ANNOTATION_IPS, "10.0.0.5"), "10.0.0.5")),
        Outcome::Assigned(ip("10.0.0.5")),
        "the same address twice is fine"
    );
    let failed = |svc: Service| match one(svc) {
        Outcome::Failed(e) => failure_message(&key("a"), &e),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        failed(asking(annotated(a(), ANNOTATION_IPS, "10.0.0.5"), "10.0.0.6")),
        "Failed to allocate IP for \"default/a\": svcnet.io/load-balancer-ips asks for \"10.0.0.5\" but spec.loadBalancerIP for \"10.0.0.6\""
    );
    assert_eq!(
        failed(annotated(a(), ANNOTATION_IPS, "10.0.0.5,10.0.0.6")),
        "Failed to allocate IP for \"default/a\": svcnet.io/load-balancer-ips asks for more than one IPv4 address"
    );
    assert_eq!(
        failed(annotated(a(), METALLB_ANNOTATION_IPS, "10.0.0.5,fd00::5")),
        "Failed to allocate IP for \"default/a\": \"fd00::5\" is not allowed in config"
    );
    assert_eq!(
        failed(asking(a(), "ten")),
        "Failed to allocate IP for \"default/a\": invalid IP \"ten\" in spec.loadBalancerIP"
    );
}

#[test]
fn a_service_with_a_load_balancer_class_is_left_alone() {
    let mut theirs = showing(lb("a", 1), "10.0.0.1");
    theirs.spec.get_or_insert_with(Default::default).load_balancer_class = Some("example.com/lb".into());
    let (alloc, out) = allocate_all(pool("10.0.0.0/24"), [&theirs, &lb("b", 2)]);
    assert_eq!(out.get(&key("a")), Some(&Outcome::OtherClass));
    assert_eq!(alloc.assigned(&key("a")), None);
    let d = Decision { outcome: Outcome::OtherClass, freed: None };
    assert_eq!(status_update(&theirs, &d), None, "its status is the other implementation's");
    assert_eq!(assigned(&out, "b"), Some(ip("10.0.0.1")), "not avoided: see the module's limits");
}

#[test]
fn a_class_given_to_a_service_frees_its_address_and_clears_it_only_if_shown() {
    let mut alloc = Allocator::new(pool("10.0.0.0/24"));
    let a = showing(lb("a", 1), "10.0.0.1");
    assert_eq!(alloc.sync(&key("a"), Some(&a)).outcome, Outcome::Assigned(ip("10.0.0.1")));
    let mut classed = a.clone();
    classed.spec.get_or_insert_with(Default::default).load_balancer_class = Some("example.com/lb".into());
    let d = alloc.sync(&key("a"), Some(&classed));
    assert_eq!(d, Decision { outcome: Outcome::OtherClass, freed: Some(ip("10.0.0.1")) });
    assert_eq!(status_ip(&status_update(&classed, &d).expect("our address is cleared")), None);
    let theirs = showing(classed, "10.9.9.9");
    assert_eq!(status_update(&theirs, &d), None, "the other implementation's address stays");
}

#[test]
fn a_service_that_stops_being_a_load_balancer_is_cleared_and_its_address_reused() {
    let mut alloc = Allocator::new(pool("10.0.0.0/24"));
    let a = lb("a", 1);
    let d = alloc.sync(&key("a"), Some(&a));
    let written = status_update(&a, &d).expect("a status to write");
    assert_eq!(status_ip(&written), Some(ip("10.0.0.1")));

    let now_cluster_ip = with_type(written.clone(), "ClusterIP");
    let d = alloc.sync(&key("a"), Some(&now_cluster_ip));
    assert_eq!(d, Decision { outcome: Outcome::NotLoadBalancer, freed: Some(ip("10.0.0.1")) });
    let cleared = status_update(&now_cluster_ip, &d).expect("the status is cleared");
    assert_eq!(
        cleared.status.and_then(|s| s.load_balancer),
        Some(LoadBalancerStatus { ingress: None }),
        "written as `loadBalancer: {{}}`"
    );
    assert_eq!(alloc.sync(&key("c"), Some(&lb("c", 3))).outcome, Outcome::Assigned(ip("10.0.0.1")));
}

#[test]
fn a_service_recreated_under_the_same_name_starts_afresh() {
    let mut alloc = Allocator::new(pool("10.0.0.0/24"));
    alloc.sync(&key("a"), Some(&asking(lb("a", 1), "10.0.0.9")));
    let mut again = lb("a", 5);
    again.metadata.uid = Some("uid-a-2".into());
    let d = alloc.sync(&key("a"), Some(&again));
    assert_eq!(d, Decision { outcome: Outcome::Assigned(ip("10.0.0.1")), freed: Some(ip("10.0.0.9")) });
}

#[test]
fn a_restart_keeps_assignments_and_resolves_duplicates_for_the_oldest() {
    // Two statuses show the same address (say, written by hand): the
    // older Service keeps it whatever order the informer lists them in.
    let services = vec![
        showing(lb("young", 5), "10.0.0.3"),
        showing(lb("old", 1), "10.0.0.3"),
        showing(lb("mid", 3), "10.0.0.1"),
        lb("new", 9),
    ];
    let (first, out) = allocate_all(pool("10.0.0.0/24"), &services);
    assert_eq!(assigned(&out, "old"), Some(ip("10.0.0.3")));
    assert_eq!(assigned(&out, "mid"), Some(ip("10.0.0.1")));
    assert_eq!(assigned(&out, "young"), Some(ip("10.0.0.2")));
    assert_eq!(assigned(&out, "new"), Some(ip("10.0.0.4")));
    let mut reversed = services.clone();
    reversed.reverse();
    assert_eq!(allocate_all(pool("10.0.0.0/24"), &reversed).1, out);

    // Restarting over the statuses just written changes nothing.
    let written: Vec<Service> = services
        .iter()
        .map(|s| {
            let k = ObjectKey::of(s).expect("named");
            let d = Decision { outcome: Outcome::Assigned(first.assigned(&k).expect("assigned")), freed: None };
            status_update(s, &d).unwrap_or_else(|| s.clone())
        })
        .collect();
    let (_, again) = allocate_all(pool("10.0.0.0/24"), &written);
    assert_eq!(again, out);
    let (rebuilt, _) = Allocator::rebuild(pool("10.0.0.0/24"), &written);
    for name in ["old", "mid", "young", "new"] {
        assert_eq!(rebuilt.assigned(&key(name)), first.assigned(&key(name)), "{name} is taken back at start");
    }
}

#[test]
fn an_exhausted_pool_leaves_the_newest_pending_until_an_address_frees() {
    let p = pool("10.0.0.1-10.0.0.2");
    let services = [lb("a", 1), lb("b", 2), lb("c", 3)];
    let (mut alloc, out) = allocate_all(p, &services);
    assert_eq!(failure(&out, "c"), "Failed to allocate IP for \"default/c\": no available IPs");
    let d = Decision { outcome: out[&key("c")].clone(), freed: None };
    assert_eq!(status_update(&services[2], &d), None, "EXTERNAL-IP stays <pending>");

    assert_eq!(alloc.sync(&key("a"), None).freed, Some(ip("10.0.0.1")));
    assert_eq!(alloc.sync(&key("c"), Some(&services[2])).outcome, Outcome::Assigned(ip("10.0.0.1")));
}

#[test]
fn services_with_the_same_sharing_key_share_an_address_on_different_ports() {
    let p = pool("10.0.0.0/24");
    let mut alloc = Allocator::new(p);
    let http = annotated(lb("http", 1), ANNOTATION_SHARED, "web");
    let https = annotated(on_port(lb("https", 2), 443), METALLB_ANNOTATION_SHARED, "web");
    let clash = annotated(lb("clash", 3), ANNOTATION_SHARED, "web");
    let other = annotated(on_port(asking(lb("other", 4), "10.0.0.1"), 8080), ANNOTATION_SHARED, "db");
    assert_eq!(alloc.sync(&key("http"), Some(&http)).outcome, Outcome::Assigned(ip("10.0.0.1")));
    assert_eq!(alloc.sync(&key("https"), Some(&https)).outcome, Outcome::Assigned(ip("10.0.0.1")));
    assert_eq!(alloc.sync(&key("clash"), Some(&clash)).outcome, Outcome::Assigned(ip("10.0.0.2")), "port 80 clashes");
    let Outcome::Failed(e) = alloc.sync(&key("other"), Some(&other)).outcome else {
        panic!("other was given 10.0.0.1")
    };
    assert_eq!(e.to_string(), "\"10.0.0.1\" is already in use by default/http");
    let pinned = asking(clash.clone(), "10.0.0.1");
    let Outcome::Failed(e) = alloc.sync(&key("clash"), Some(&pinned)).outcome else { panic!("clash shares port 80") };
    assert_eq!(e.to_string(), "\"10.0.0.1\" is already in use by default/http, which also serves port 80/TCP");
}

// ---- the status ----

#[test]
fn the_status_is_written_only_when_it_changes() {
    let svc = lb("a", 1);
    let d = Decision { outcome: Outcome::Assigned(ip("10.0.0.1")), freed: None };
    let next = status_update(&svc, &d).expect("a status to write");
    let ingress = next.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|l| l.ingress.clone());
    assert_eq!(
        ingress,
        Some(vec![LoadBalancerIngress {
            ip: Some("10.0.0.1".into()),
            ip_mode: Some("VIP".into()),
            ..LoadBalancerIngress::default()
        }])
    );
    assert_eq!(status_update(&next, &d), None);
    let mut without_mode = next.clone();
    if let Some(i) =
        without_mode.status.as_mut().and_then(|s| s.load_balancer.as_mut()).and_then(|l| l.ingress.as_mut())
    {
        i[0].ip_mode = None;
    }
    assert!(status_update(&without_mode, &d).is_some(), "ipMode is filled in");
    let none = Decision { outcome: Outcome::NotLoadBalancer, freed: None };
    assert_eq!(status_update(&with_type(lb("b", 1), "ClusterIP"), &none), None, "nothing to clear");
}
