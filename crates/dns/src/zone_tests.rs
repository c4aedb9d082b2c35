//! The incremental zone against the full rebuild: random sequences of
//! object changes, applied one by one, must publish exactly what
//! `build_view` makes of the same objects — the same names and nodes, and
//! byte for byte the same response to every question.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::LiveZone;
use crate::build::{Cluster, build_view};
use crate::compiled::Compiled;
use crate::handler::{Outcome, Transport, handle};
use crate::name::Name;
use crate::objects::{DnsPod, DnsService, DnsSlice};
use crate::table::{SHARDS, Table};
use crate::testkit::{self, external_name, headless, namespace, pod, publishing_not_ready, service};
use crate::view::{Node, PodsMode, ZoneConfig};
use crate::wire::{Encoder, Message, RData, Rcode, class, flags, rtype};

type Key = (String, String);

/// The objects, as the API server holds them.
#[derive(Default)]
struct Model {
    services: BTreeMap<Key, Arc<Service>>,
    slices: BTreeMap<Key, Arc<EndpointSlice>>,
    pods: BTreeMap<Key, Arc<Pod>>,
    namespaces: BTreeMap<String, Arc<Namespace>>,
}

impl Model {
    fn cluster(&self) -> Cluster {
        Cluster {
            services: self.services.values().cloned().collect(),
            slices: self.slices.values().cloned().collect(),
            pods: self.pods.values().cloned().collect(),
            namespaces: self.namespaces.values().cloned().collect(),
        }
    }
}

const NAMESPACES: [&str; 3] = ["a", "b", "c"];
const SERVICES: [&str; 4] = ["s0", "s1", "s2", "s3"];
const IPS: [&str; 7] = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "fd00::1", "fd00::2", "bogus"];
const TARGETS: [&str; 9] = [
    "s1.a.svc.cluster.local",
    "s0.b.svc.cluster.local",
    "h0.s2.a.svc.cluster.local",
    "10-0-0-1.a.pod.cluster.local",
    "a.svc.cluster.local",
    "nope.c.svc.cluster.local",
    "s3.a.svc.cluster.local",
    "example.com",
    "",
];

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from[rng.random_range(0..from.len())]
}

fn some_ips<'a>(rng: &mut StdRng, n: usize) -> Vec<&'a str> {
    (0..rng.random_range(0..=n)).map(|_| pick(rng, &IPS)).collect()
}

fn some_ports(rng: &mut StdRng) -> Vec<testkit::Port<'static>> {
    let all = [("http", 80, "TCP"), ("dns", 53, "UDP"), ("", 8080, "TCP"), ("HTTP", 81, "TCP"), ("zero", 0, "TCP")];
    (0..rng.random_range(0..=3)).map(|_| all[rng.random_range(0..all.len())]).collect()
}

fn random_service(rng: &mut StdRng, ns: &str, name: &str) -> Service {
    let ports = some_ports(rng);
    match rng.random_range(0..7) {
        0 | 1 => {
            let ips: Vec<&str> = some_ips(rng, 2).into_iter().filter(|ip| *ip != "bogus").collect();
            service(ns, name, &ips, &ports)
        }
        2 => headless(ns, name, &ports),
        3 => publishing_not_ready(headless(ns, name, &ports)),
        4 => external_name(ns, name, pick(rng, &TARGETS)),
        5 => {
            let mut s = headless(ns, name, &ports);
            s.metadata.annotations = Some(BTreeMap::from([(
                "service.alpha.kubernetes.io/tolerate-unready-endpoints".to_string(),
                "true".to_string(),
            )]));
            s
        }
        _ => {
            let mut s = service(ns, name, &[], &ports);
            if rng.random_bool(0.5) {
                s.spec = None;
            }
            s
        }
    }
}

fn random_slice(rng: &mut StdRng, ns: &str, name: &str) -> EndpointSlice {
    let mut s = testkit::slice(ns, pick(rng, &SERVICES), name, &[], &[]);
    if rng.random_bool(0.1) {
        s.metadata.labels = None;
    }
    s.address_type = pick(rng, &["IPv4", "IPv6", "IPv4", "FQDN"]).to_string();
    s.endpoints = (0..rng.random_range(0..=3))
        .map(|_| Endpoint {
            addresses: some_ips(rng, 2).into_iter().map(str::to_string).collect(),
            // `_tcp`: records at a name that is otherwise an empty
            // non-terminal held in its Service's record (`table.rs`).
            hostname: [None, Some("h0"), Some("H1"), Some(""), Some("_tcp")][rng.random_range(0..5)]
                .map(str::to_string),
            conditions: [None, Some(true), Some(false), Some(true)][rng.random_range(0..4)]
                .map(|ready| EndpointConditions { ready: Some(ready), ..EndpointConditions::default() }),
            ..Endpoint::default()
        })
        .collect();
    s.ports = Some(
        some_ports(rng)
            .into_iter()
            .map(|(n, p, proto)| EndpointPort {
                name: Some(n.to_string()),
                port: Some(p),
                protocol: Some(proto.to_string()),
                ..EndpointPort::default()
            })
            .collect(),
    );
    s
}

fn random_pod(rng: &mut StdRng, ns: &str, name: &str) -> Pod {
    let ips: Vec<&str> = some_ips(rng, 2);
    let mut p = pod(ns, name, &ips);
    if rng.random_bool(0.15) {
        p.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
    }
    p
}

/// What the watcher makes of an object: its JSON decoded into the
/// server's own type (the full rebuild converts the typed object instead,
/// so the comparison covers the decoding too).
fn decoded<K: serde::Serialize, D: serde::de::DeserializeOwned>(object: &K) -> D {
    serde_json::from_str(&serde_json::to_string(object).unwrap()).unwrap()
}

/// One random change, to the model and to the zone.
fn step(rng: &mut StdRng, model: &mut Model, zone: &mut LiveZone) {
    let ns = pick(rng, &NAMESPACES);
    let delete = rng.random_bool(0.25);
    match rng.random_range(0..10) {
        0..=3 => {
            let name = pick(rng, &SERVICES);
            let key = (ns.to_string(), name.to_string());
            if delete {
                model.services.remove(&key);
                zone.set_service(ns, name, None);
            } else {
                let s = Arc::new(random_service(rng, ns, name));
                model.services.insert(key, s.clone());
                zone.set_service(ns, name, Some(decoded(&*s)));
            }
        }
        4..=6 => {
            let name = pick(rng, &["e0", "e1", "e2", "e3", "e4"]);
            let key = (ns.to_string(), name.to_string());
            if delete {
                model.slices.remove(&key);
                zone.set_slice(ns, name, None);
            } else {
                let s = Arc::new(random_slice(rng, ns, name));
                model.slices.insert(key, s.clone());
                zone.set_slice(ns, name, Some(decoded(&*s)));
            }
        }
        7 | 8 => {
            let name = pick(rng, &["p0", "p1", "p2"]);
            let key = (ns.to_string(), name.to_string());
            if delete {
                model.pods.remove(&key);
                zone.set_pod(ns, name, None);
            } else {
                let p = Arc::new(random_pod(rng, ns, name));
                model.pods.insert(key, p.clone());
                zone.set_pod(ns, name, Some(decoded(&*p)));
            }
        }
        _ => {
            if delete {
                model.namespaces.remove(ns);
                zone.set_namespace(ns, false);
            } else {
                let n = Arc::new(namespace(ns));
                model.namespaces.insert(ns.to_string(), n.clone());
                zone.set_namespace(ns, true);
            }
        }
    }
}

fn query(name: &Name, qtype: u16) -> Vec<u8> {
    let mut e = Encoder::default();
    e.header(0x1234, flags::RD, [1, 0, 0, 0]);
    e.question(name.wire(), qtype, class::IN);
    e.into_inner()
}

fn respond(c: &Compiled, packet: &[u8]) -> String {
    let mut out = Vec::new();
    match handle(c, packet, Transport::Udp, 1232, &mut out) {
        Outcome::Reply(_) => format!("{out:?}"),
        other => format!("{other:?}"),
    }
}

/// Names worth asking about beyond those the views hold.
fn probes() -> Vec<Name> {
    let mut names = vec![
        "cluster.local",
        "nope.a.svc.cluster.local",
        "x.s0.a.svc.cluster.local",
        "_http._tcp.s9.a.svc.cluster.local",
        "_tcp.s0.a.svc.cluster.local",
        "_udp.s1.b.svc.cluster.local",
        "_sctp.s2.a.svc.cluster.local",
        "_foo._tcp.s0.a.svc.cluster.local",
        "_tcp.svc.cluster.local",
        "10-0-0-1.a.pod.cluster.local",
        "10-0-0-9.c.pod.cluster.local",
        "fd00--1.b.pod.cluster.local",
        "d.pod.cluster.local",
        "1.0.0.10.in-addr.arpa",
        "9.0.0.10.in-addr.arpa",
        "example.com",
    ];
    names.extend(NAMESPACES.iter().map(|ns| match *ns {
        "a" => "a.svc.cluster.local",
        "b" => "b.pod.cluster.local",
        _ => "c.svc.cluster.local",
    }));
    names.into_iter().map(|n| Name::parse(n).unwrap()).collect()
}

/// The published version equals the full rebuild of the same objects.
fn check(config: &ZoneConfig, model: &Model, published: &Compiled, context: &str) {
    let serial = published.view.serial();
    let full = Compiled::new(Arc::new(build_view(config, &model.cluster(), serial)), false);
    let nodes =
        |c: &Compiled| -> BTreeMap<Name, Node> { c.view.nodes().map(|(name, node)| (name.clone(), node)).collect() };
    let (got, want) = (nodes(published), nodes(&full));
    if got != want {
        let keys: BTreeSet<&Name> = got.keys().chain(want.keys()).collect();
        for k in keys {
            assert_eq!(got.get(k), want.get(k), "{context}: node {k}");
        }
    }
    assert_eq!(published.view.namespaces, full.view.namespaces, "{context}: namespaces");
    assert_eq!(published.prepared(), full.prepared(), "{context}: prepared names");
    assert_eq!(published.prepared(), published.view.len(), "{context}: every name prepared");
    let mut names: Vec<Name> = got.into_keys().collect();
    names.extend(probes());
    for name in &names {
        for t in [
            rtype::A,
            rtype::AAAA,
            rtype::SRV,
            rtype::PTR,
            rtype::CNAME,
            rtype::TXT,
            rtype::SOA,
            rtype::NS,
            rtype::MX,
            rtype::ANY,
        ] {
            let packet = query(name, t);
            assert_eq!(respond(published, &packet), respond(&full, &packet), "{context}: {name} type {t}");
        }
    }
}

fn run(seed: u64, pods: PodsMode, steps: usize) {
    let mut config = ZoneConfig::new("cluster.local").unwrap();
    config.pods = pods;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Model::default();
    let mut zone = LiveZone::new(config.clone(), false, 1000);
    let mut published = zone.publish().expect("the first publish");
    check(&config, &model, &published, "empty");
    for i in 0..steps {
        step(&mut rng, &mut model, &mut zone);
        // Publish after one change or after a burst of them.
        if rng.random_bool(0.5) {
            let serial = zone.serial();
            match zone.publish() {
                Some(p) => {
                    assert_eq!(p.view.serial(), serial.wrapping_add(1), "one serial per publish");
                    published = p;
                }
                None => assert_eq!(zone.serial(), serial, "nothing changed, nothing published"),
            }
            check(&config, &model, &published, &format!("seed {seed} {pods:?} step {i}"));
        }
    }
}

#[test]
fn random_changes_applied_incrementally_equal_a_full_rebuild() {
    for seed in 0..12 {
        for pods in [PodsMode::Insecure, PodsMode::Verified, PodsMode::Disabled] {
            run(seed, pods, 150);
        }
    }
}

#[test]
fn the_sample_cluster_built_object_by_object_equals_the_full_rebuild() {
    for pods in [PodsMode::Insecure, PodsMode::Verified, PodsMode::Disabled] {
        let mut config = ZoneConfig::new("cluster.local").unwrap();
        config.pods = pods;
        let cluster = testkit::sample_cluster();
        let mut model = Model::default();
        let mut zone = LiveZone::new(config.clone(), false, 7);
        // Slices before their Services, to exercise the index.
        for s in &cluster.slices {
            let (ns, name) = (s.metadata.namespace.clone().unwrap(), s.metadata.name.clone().unwrap());
            zone.set_slice(&ns, &name, Some(DnsSlice::from(&**s)));
            model.slices.insert((ns, name), s.clone());
        }
        for s in &cluster.services {
            let (ns, name) = (s.metadata.namespace.clone().unwrap(), s.metadata.name.clone().unwrap());
            zone.set_service(&ns, &name, Some(DnsService::from(&**s)));
            model.services.insert((ns, name), s.clone());
        }
        for p in &cluster.pods {
            let (ns, name) = (p.metadata.namespace.clone().unwrap(), p.metadata.name.clone().unwrap());
            zone.set_pod(&ns, &name, Some(DnsPod::from(&**p)));
            model.pods.insert((ns, name), p.clone());
        }
        for n in &cluster.namespaces {
            let name = n.metadata.name.clone().unwrap();
            zone.set_namespace(&name, true);
            model.namespaces.insert(name, n.clone());
        }
        let published = zone.publish().expect("a publish");
        check(&config, &model, &published, "sample");
        // Then take it apart again, one object at a time.
        let mut published = published;
        let services: Vec<Key> = model.services.keys().cloned().collect();
        for (ns, name) in services {
            zone.set_service(&ns, &name, None);
            model.services.remove(&(ns.clone(), name.clone()));
            // `idle` serves nothing: deleting it publishes nothing.
            published = zone.publish().unwrap_or(published);
            check(&config, &model, &published, &format!("without {ns}/{name}"));
        }
    }
}

#[test]
fn an_unchanged_object_publishes_nothing() {
    let config = ZoneConfig::new("cluster.local").unwrap();
    let mut zone = LiveZone::new(config, false, 1);
    let svc = service("a", "web", &["10.0.0.1"], &[("http", 80, "TCP")]);
    zone.set_service("a", "web", Some(DnsService::from(&svc)));
    assert!(zone.publish().is_some());
    // A new resourceVersion, an annotation: nothing DNS serves.
    let mut same = svc.clone();
    same.metadata.resource_version = Some("2".into());
    same.metadata.annotations = Some(BTreeMap::from([("note".to_string(), "x".to_string())]));
    zone.set_service("a", "web", Some(DnsService::from(&same)));
    let serial = zone.serial();
    assert!(zone.publish().is_none());
    assert_eq!(zone.serial(), serial);
}

fn touched(a: &Table, b: &Table) -> usize {
    SHARDS - a.shared_shards(b)
}

#[test]
fn one_service_change_in_a_large_zone_touches_a_few_shards() {
    let config = ZoneConfig::new("cluster.local").unwrap();
    let mut zone = LiveZone::new(config, false, 1);
    for i in 0..5000 {
        let ip = format!("10.96.{}.{}", i / 250, i % 250 + 1);
        zone.set_service(
            "bench",
            &format!("svc-{i}"),
            Some(DnsService::from(&service("bench", &format!("svc-{i}"), &[&ip], &[("http", 80, "TCP")]))),
        );
    }
    let before = zone.publish().expect("a publish");
    let new = service("bench", "new", &["10.100.0.1"], &[("http", 80, "TCP")]);
    zone.set_service("bench", "new", Some(DnsService::from(&new)));
    let after = zone.publish().expect("a publish");
    // The Service's names (name, SRV name, `_tcp` and the PTR), the names
    // it holds with every Service of its namespace (`bench.svc`, `svc`,
    // and for `pods insecure` `bench.pod`, `pod`: their counts move and
    // their answers are prepared again) and the apex: nine names, a
    // handful of shards.
    let n = touched(&before.view.nodes, &after.view.nodes);
    assert!(n <= 9, "{n}");
    assert_eq!(after.view.len(), before.view.len() + 4);
}

/// The response of `c` to `name` `qtype`, decoded.
fn ask(c: &Compiled, name: &str, qtype: u16) -> Message {
    let mut out = Vec::new();
    let outcome = handle(c, &query(&Name::parse(name).unwrap(), qtype), Transport::Udp, 1232, &mut out);
    assert!(matches!(outcome, Outcome::Reply(_)), "{name}: {outcome:?}");
    Message::decode(&out).unwrap()
}

/// NOERROR or NXDOMAIN, with no answer and the zone's SOA in authority.
fn assert_negative(m: &Message, rcode: Rcode, what: &str) {
    assert_eq!(Rcode(m.flags & 0xf), rcode, "{what}");
    assert!(m.answers.is_empty(), "{what}: {:?}", m.answers);
    assert_eq!(m.authority.len(), 1, "{what}");
    assert_eq!(m.authority[0].name, Name::parse("cluster.local").unwrap(), "{what}");
    assert!(matches!(m.authority[0].data, RData::Soa(_)), "{what}");
}

#[test]
fn protocol_names_of_named_ports_are_nodata_with_the_soa_and_held_in_the_services_record() {
    let config = ZoneConfig::new("cluster.local").unwrap();
    let mut zone = LiveZone::new(config, false, 1);
    zone.set_namespace("a", true);
    let ports = [("http", 80, "TCP"), ("dns", 53, "UDP")];
    zone.set_service("a", "web", Some(DnsService::from(&service("a", "web", &["10.0.0.1"], &ports))));
    let c = zone.publish().expect("a publish");
    for t in [rtype::A, rtype::SRV, rtype::TXT] {
        for name in ["_tcp.web.a.svc.cluster.local", "_udp.web.a.svc.cluster.local"] {
            assert_negative(&ask(&c, name, t), Rcode::NOERROR, &format!("{name} {t}"));
        }
        for name in [
            "_sctp.web.a.svc.cluster.local",
            "_foo._tcp.web.a.svc.cluster.local",
            "_dns._tcp.web.a.svc.cluster.local",
            "_tcp.nope.a.svc.cluster.local",
            "x._tcp.web.a.svc.cluster.local",
        ] {
            assert_negative(&ask(&c, name, t), Rcode::NXDOMAIN, &format!("{name} {t}"));
        }
    }
    assert_eq!(ask(&c, "_http._tcp.web.a.svc.cluster.local", rtype::SRV).answers.len(), 1);
    // Names of their own: the Service, its two SRV names and its PTR, not
    // `_tcp` and `_udp`.
    assert_eq!(c.view.len() - c.view.nodes.stored(), 2);
    assert!(c.view.nodes().any(|(n, node)| n.to_string() == "_tcp.web.a.svc.cluster.local." && node.rrsets.is_empty()));
    // Without named UDP ports `_udp` is gone; without named ports, `_tcp`.
    zone.set_service("a", "web", Some(DnsService::from(&service("a", "web", &["10.0.0.1"], &ports[..1]))));
    let c = zone.publish().expect("a publish");
    assert_negative(&ask(&c, "_tcp.web.a.svc.cluster.local", rtype::A), Rcode::NOERROR, "_tcp");
    assert_negative(&ask(&c, "_udp.web.a.svc.cluster.local", rtype::A), Rcode::NXDOMAIN, "_udp");
    zone.set_service("a", "web", Some(DnsService::from(&service("a", "web", &["10.0.0.1"], &[("", 80, "TCP")]))));
    let c = zone.publish().expect("a publish");
    assert_negative(&ask(&c, "_tcp.web.a.svc.cluster.local", rtype::A), Rcode::NXDOMAIN, "_tcp");
    assert_eq!(c.view.len(), c.view.nodes.stored());
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The zone's memory per Service as `bench/dns-memory.sh` builds them
/// (one named port, one slice with one ready endpoint, its Pod), decoded
/// from JSON as the watcher decodes them, published in bursts. Run with
/// `cargo test --release -p svcnet-dns zone_memory -- --ignored --nocapture`.
#[test]
#[ignore]
fn zone_memory_per_service() {
    // One mode per process: memory freed by one run would flatter the next.
    let pods = match std::env::var("DNS_MEM_PODS").as_deref() {
        Ok("verified") => PodsMode::Verified,
        _ => PodsMode::Insecure,
    };
    {
        let mut config = ZoneConfig::new("cluster.local").unwrap();
        config.pods = pods;
        let n = 10_000;
        let mut zone = LiveZone::new(config, false, 1);
        zone.set_namespace("dns-mem", true);
        let _ = zone.publish();
        let mut kept = Vec::new();
        let before = rss_kib();
        for i in 0..n {
            let ip = format!("10.96.{}.{}", i / 250, i % 250 + 1);
            let pod_ip = format!("10.200.{}.{}", i / 256, i % 256);
            let name = format!("m{i}");
            let svc = service("dns-mem", &name, &[&ip], &[("http", 80, "TCP")]);
            zone.set_service("dns-mem", &name, Some(decoded(&svc)));
            let s = testkit::slice(
                "dns-mem",
                &name,
                &format!("{name}-abcde"),
                &[(&pod_ip, None, true)],
                &[("http", 8080, "TCP")],
            );
            zone.set_slice("dns-mem", &format!("{name}-abcde"), Some(decoded(&s)));
            zone.set_pod("dns-mem", &format!("p{i}"), Some(decoded(&pod("dns-mem", &format!("p{i}"), &[&pod_ip]))));
            if i % 50 == 49 {
                // Readers hold the previous version for a moment.
                kept.push(zone.publish());
                if kept.len() > 2 {
                    kept.remove(0);
                }
            }
        }
        let names = kept.last().and_then(|p| p.as_ref()).map_or(0, |p| p.view.len());
        // Where the view's bytes go, by kind of name (the first label with
        // digits as 9): `DNS_MEM_DEBUG=1`.
        if std::env::var("DNS_MEM_DEBUG").is_ok() {
            let last = kept.last().and_then(|p| p.as_ref()).unwrap();
            let mut by: std::collections::BTreeMap<String, (usize, usize, usize, usize)> = Default::default();
            for s in last.view.nodes.iter() {
                let name = last.view.nodes.name_of(&s).to_string();
                let kind = name
                    .split('.')
                    .next()
                    .unwrap_or("")
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '9' } else { c })
                    .collect::<String>();
                let e = by.entry(kind).or_default();
                e.0 += 1;
                e.1 += s.rec.prefix().len();
                e.2 += s.rec.node_bytes().len();
                e.3 += s.rec.entry_bytes().map_or(0, <[u8]>::len);
            }
            for (k, (n, name, node, entry)) in by.iter().filter(|(_, v)| v.0 > 100) {
                eprintln!(
                    "{k:>20} {n:>6} name {:>5.1} node {:>5.1} entry {:>5.1}",
                    *name as f64 / *n as f64,
                    *node as f64 / *n as f64,
                    *entry as f64 / *n as f64
                );
            }
        }
        kept.clear();
        let grown = rss_kib().saturating_sub(before) as f64 * 1024.0;
        eprintln!(
            "{pods:?}: {names} names, {:.0} bytes per Service, {:.0} per object (Services + Pods)",
            grown / n as f64,
            grown / (2 * n) as f64
        );
    }
}
