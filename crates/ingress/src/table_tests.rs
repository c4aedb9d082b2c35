//! `build_table` as a table of cases: hosts, merging and conflicts,
//! default backends, classes, ports by name and number, endpoints, TLS.

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

use crate::annotations::BackendProtocol;
use crate::config::IngressConfig;
use crate::paths::request_host;
use crate::table::{Problem, RouteTable, build_table};
use crate::testkit::{IngressBuilder, h2c, ingress_class, service, slice, tls_secret};

struct World {
    ingresses: Vec<Ingress>,
    classes: Vec<IngressClass>,
    services: Vec<Service>,
    slices: Vec<EndpointSlice>,
    secrets: Vec<Secret>,
}

impl World {
    /// Services a, b, c, d in `default`, each port 80 ("http", target 8080)
    /// with one ready endpoint 10.0.0.N.
    fn new(ingresses: Vec<Ingress>) -> World {
        let mut w =
            World { ingresses, classes: Vec::new(), services: Vec::new(), slices: Vec::new(), secrets: Vec::new() };
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            w.services.push(service("default", name, &[("http", 80, 8080)]));
            let ip = format!("10.0.0.{}", i + 1);
            w.slices.push(slice("default", name, &format!("{name}-1"), &[(&ip, true)], &[("http", 8080)]));
        }
        w
    }

    fn build(&self) -> (RouteTable, Vec<Problem>) {
        build_table(
            &self.ingresses,
            &self.classes,
            &self.services,
            &self.slices,
            &self.secrets,
            &IngressConfig::default(),
        )
    }
}

/// Which service answers `url` ("host/path"), or "404".
fn route(table: &RouteTable, url: &str) -> String {
    let (host, path) = url.split_once('/').map_or((url, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    match table.lookup(&request_host(host), &path) {
        Some(r) => r.upstream.service.clone(),
        None => "404".into(),
    }
}

fn reasons(problems: &[Problem]) -> Vec<(String, &'static str)> {
    problems.iter().map(|p| (p.ingress.name.clone(), p.reason)).collect()
}

#[test]
fn exact_hosts_beat_wildcards_which_beat_rules_without_a_host() {
    let w = World::new(vec![
        IngressBuilder::new("default", "i")
            .path(Some("foo.bar.com"), "/", "Prefix", "a", "80")
            .path(Some("*.bar.com"), "/", "Prefix", "b", "80")
            .path(None, "/", "Prefix", "c", "80")
            .build(),
    ]);
    let (t, problems) = w.build();
    assert!(problems.is_empty(), "{problems:?}");
    let cases = [
        ("foo.bar.com/", "a"),
        ("FOO.bar.com:8080/x", "a"),
        ("baz.bar.com/", "b"),
        ("baz.bar.com:443/x/y", "b"),
        ("deep.baz.bar.com/", "c"),
        ("bar.com/", "c"),
        ("anything.example/", "c"),
        ("/", "c"),
    ];
    for (url, want) in cases {
        assert_eq!(route(&t, url), want, "{url}");
    }
}

#[test]
fn the_most_specific_host_is_the_only_one_consulted_then_the_default_backend() {
    let w = World::new(vec![
        IngressBuilder::new("default", "i")
            .path(Some("foo.com"), "/api", "Prefix", "a", "80")
            .path(None, "/", "Prefix", "c", "80")
            .build(),
    ]);
    let (t, _) = w.build();
    assert_eq!(route(&t, "foo.com/api/v1"), "a");
    assert_eq!(route(&t, "foo.com/other"), "404");
    assert_eq!(route(&t, "other.com/other"), "c");
    let w = World::new(vec![
        IngressBuilder::new("default", "i").path(Some("foo.com"), "/api", "Prefix", "a", "80").build(),
        IngressBuilder::new("default", "j").default_backend("d", "80").build(),
    ]);
    let (t, _) = w.build();
    assert_eq!(route(&t, "foo.com/other"), "d");
    assert_eq!(route(&t, "x.com/"), "d");
}

#[test]
fn ingresses_for_the_same_host_are_merged() {
    let w = World::new(vec![
        IngressBuilder::new("default", "one").path(Some("foo.com"), "/a", "Prefix", "a", "80").build(),
        IngressBuilder::new("other", "two").path(Some("foo.com"), "/b", "Prefix", "b", "80").build(),
    ]);
    let mut w = w;
    w.services.push(service("other", "b", &[("http", 80, 8080)]));
    w.slices.push(slice("other", "b", "b-1", &[("10.1.0.1", true)], &[("http", 8080)]));
    let (t, problems) = w.build();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(route(&t, "foo.com/a/x"), "a");
    assert_eq!(route(&t, "foo.com/b"), "b");
    assert_eq!(t.lookup("foo.com", "/b").map(|r| r.upstream.namespace.as_str()), Some("other"));
    assert_eq!(route(&t, "foo.com/c"), "404");
}

#[test]
fn on_a_conflict_the_oldest_ingress_wins_then_namespace_and_name() {
    // "young" sorts first by name but is newer: "old" wins.
    let w = World::new(vec![
        IngressBuilder::new("default", "a-young")
            .created(2000)
            .path(Some("foo.com"), "/x", "Prefix", "a", "80")
            .build(),
        IngressBuilder::new("default", "z-old").created(1000).path(Some("foo.com"), "/x/", "Prefix", "b", "80").build(),
    ]);
    let (t, problems) = w.build();
    assert_eq!(route(&t, "foo.com/x"), "b");
    assert_eq!(reasons(&problems), [("a-young".to_string(), "RouteConflict")]);
    // Same age: namespace/name order.
    let w = World::new(vec![
        IngressBuilder::new("default", "b").created(1000).path(Some("foo.com"), "/x", "Exact", "b", "80").build(),
        IngressBuilder::new("default", "a").created(1000).path(Some("foo.com"), "/x", "Exact", "a", "80").build(),
    ]);
    let (t, problems) = w.build();
    assert_eq!(route(&t, "foo.com/x"), "a");
    assert_eq!(reasons(&problems), [("b".to_string(), "RouteConflict")]);
    // Different path types do not conflict: Exact wins for its path.
    let w = World::new(vec![
        IngressBuilder::new("default", "p").created(1000).path(Some("foo.com"), "/x", "Prefix", "a", "80").build(),
        IngressBuilder::new("default", "e").created(2000).path(Some("foo.com"), "/x", "Exact", "b", "80").build(),
    ]);
    let (t, problems) = w.build();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(route(&t, "foo.com/x"), "b");
    assert_eq!(route(&t, "foo.com/x/y"), "a");
    // ImplementationSpecific is Prefix, so it conflicts with Prefix.
    let w = World::new(vec![
        IngressBuilder::new("default", "p").created(1000).path(Some("foo.com"), "/x", "Prefix", "a", "80").build(),
        IngressBuilder::new("default", "i")
            .created(2000)
            .path(Some("foo.com"), "/x", "ImplementationSpecific", "b", "80")
            .build(),
    ]);
    let (t, problems) = w.build();
    assert_eq!(route(&t, "foo.com/x"), "a");
    assert_eq!(reasons(&problems), [("i".to_string(), "RouteConflict")]);
}

#[test]
fn the_default_backend_of_the_oldest_ingress_that_has_one_is_used() {
    let w = World::new(vec![
        IngressBuilder::new("default", "new").created(3000).default_backend("a", "80").build(),
        IngressBuilder::new("default", "old").created(1000).path(None, "/only", "Exact", "c", "80").build(),
        IngressBuilder::new("default", "mid").created(2000).default_backend("b", "80").build(),
    ]);
    let (t, _) = w.build();
    assert_eq!(route(&t, "x/only"), "c");
    assert_eq!(route(&t, "x/else"), "b");
}

#[test]
fn other_classes_are_ignored_and_ours_are_served() {
    let mut w = World::new(vec![
        IngressBuilder::new("default", "ours").class("svcnet").path(Some("ours.com"), "/", "Prefix", "a", "80").build(),
        IngressBuilder::new("default", "theirs")
            .class("nginx")
            .path(Some("theirs.com"), "/", "Prefix", "b", "80")
            .build(),
        IngressBuilder::new("default", "legacy")
            .annotation("kubernetes.io/ingress.class", "nginx")
            .path(Some("legacy.com"), "/", "Prefix", "b", "80")
            .build(),
        IngressBuilder::new("default", "classless").path(Some("none.com"), "/", "Prefix", "c", "80").build(),
    ]);
    w.classes = vec![
        ingress_class("svcnet", "svcnet.io/ingress-controller", false),
        ingress_class("nginx", "k8s.io/ingress-nginx", true),
    ];
    let (t, _) = w.build();
    assert_eq!(route(&t, "ours.com/"), "a");
    assert_eq!(route(&t, "theirs.com/"), "404");
    assert_eq!(route(&t, "legacy.com/"), "404");
    // The default class is nginx's: class-less Ingresses are not ours.
    assert_eq!(route(&t, "none.com/"), "404");
    assert_eq!(t.ingresses().iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["ours"]);
}

#[test]
fn backends_resolve_by_port_number_or_name_to_the_slice_target_port() {
    let mut w = World::new(vec![
        IngressBuilder::new("default", "i")
            .path(Some("num.com"), "/", "Prefix", "multi", "80")
            .path(Some("name.com"), "/", "Prefix", "multi", "admin")
            .path(Some("bad.com"), "/", "Prefix", "multi", "81")
            .build(),
    ]);
    w.services.push(service("default", "multi", &[("http", 80, 8080), ("admin", 9000, 9090)]));
    w.slices.push(slice(
        "default",
        "multi",
        "multi-1",
        &[("10.2.0.1", true), ("10.2.0.2", false), ("10.2.0.3", true)],
        &[("http", 8080), ("admin", 9091)],
    ));
    w.slices.push(slice("default", "multi", "multi-2", &[("10.2.0.4", true)], &[("http", 8081)]));
    let (t, problems) = w.build();
    let addrs = |host: &str| -> Vec<String> {
        t.lookup(host, "/")
            .map(|r| r.upstream.endpoints.iter().map(|e| e.addr.to_string()).collect())
            .unwrap_or_default()
    };
    assert_eq!(addrs("num.com"), ["10.2.0.1:8080", "10.2.0.3:8080", "10.2.0.4:8081"]);
    // The slice's port of that name is the target port (9091, not the Service's 9090).
    assert_eq!(addrs("name.com"), ["10.2.0.1:9091", "10.2.0.3:9091"]);
    assert!(addrs("bad.com").is_empty());
    assert_eq!(reasons(&problems), [("i".to_string(), "MissingServicePort")]);
}

#[test]
fn a_missing_service_is_a_503_upstream_and_a_problem_naming_it() {
    let w = World::new(vec![IngressBuilder::new("default", "i").path(None, "/", "Prefix", "ghost", "80").build()]);
    let (t, problems) = w.build();
    let r = t.lookup("x", "/").expect("the route exists");
    assert!(r.upstream.endpoints.is_empty());
    assert_eq!(r.upstream.unavailable.as_deref(), Some("service default/ghost not found"));
    assert_eq!(reasons(&problems), [("i".to_string(), "MissingService")]);
    assert!(problems[0].message.contains("default/ghost"));
}

#[test]
fn a_service_without_ready_endpoints_has_none() {
    let mut w = World::new(vec![IngressBuilder::new("default", "i").path(None, "/", "Prefix", "idle", "80").build()]);
    w.services.push(service("default", "idle", &[("", 80, 8080)]));
    w.slices.push(slice("default", "idle", "idle-1", &[("10.3.0.1", false)], &[("", 8080)]));
    let (t, problems) = w.build();
    assert!(problems.is_empty(), "{problems:?}");
    let r = t.lookup("x", "/").expect("route");
    assert!(r.upstream.endpoints.is_empty());
    assert!(r.upstream.unavailable.as_deref().is_some_and(|u| u.contains("default/idle")));
}

#[test]
fn tls_hosts_get_their_certificate_by_sni_and_redirect_unless_told_not_to() {
    let leaf = rcgen::generate_simple_self_signed(vec!["foo.com".to_string()]).expect("cert");
    let wild = rcgen::generate_simple_self_signed(vec!["*.wild.com".to_string()]).expect("cert");
    let mut w = World::new(vec![
        IngressBuilder::new("default", "tls")
            .tls(&["foo.com"], "foo-tls")
            .tls(&["*.wild.com"], "wild-tls")
            .tls(&["gone.com"], "missing")
            .path(Some("foo.com"), "/", "Prefix", "a", "80")
            .path(Some("x.wild.com"), "/", "Prefix", "a", "80")
            .path(Some("gone.com"), "/", "Prefix", "a", "80")
            .build(),
        IngressBuilder::new("default", "plain").path(Some("plain.com"), "/", "Prefix", "b", "80").build(),
        IngressBuilder::new("default", "forced")
            .annotation("nginx.ingress.kubernetes.io/force-ssl-redirect", "true")
            .path(Some("forced.com"), "/", "Prefix", "b", "80")
            .build(),
        IngressBuilder::new("default", "optout")
            .annotation("svcnet.io/ssl-redirect", "false")
            .tls(&["optout.com"], "foo-tls")
            .path(Some("optout.com"), "/", "Prefix", "b", "80")
            .build(),
    ]);
    w.secrets.push(tls_secret("default", "foo-tls", &leaf.cert.pem(), &leaf.signing_key.serialize_pem()));
    w.secrets.push(tls_secret("default", "wild-tls", &wild.cert.pem(), &wild.signing_key.serialize_pem()));
    let (t, problems) = w.build();
    assert_eq!(reasons(&problems), [("tls".to_string(), "MissingSecret")]);
    let der = |host: &str| t.certificate(host).map(|k| k.cert[0].as_ref().to_vec());
    assert_eq!(der("foo.com"), Some(leaf.cert.der().to_vec()));
    assert_eq!(der("FOO.com"), Some(leaf.cert.der().to_vec()));
    assert_eq!(der("x.wild.com"), Some(wild.cert.der().to_vec()));
    assert_eq!(der("y.x.wild.com"), None);
    assert_eq!(der("gone.com"), None, "a missing Secret leaves the default certificate");
    let redirects = |host: &str| t.lookup(host, "/").is_some_and(|r| r.ssl_redirect);
    assert!(redirects("foo.com"));
    assert!(redirects("x.wild.com"));
    assert!(redirects("gone.com"), "TLS is configured even if its Secret is missing");
    assert!(!redirects("plain.com"));
    assert!(redirects("forced.com"));
    assert!(!redirects("optout.com"));
}

#[test]
fn h2c_backends_come_from_app_protocol_or_the_annotation() {
    let mut w = World::new(vec![
        IngressBuilder::new("default", "i").path(Some("grpc.com"), "/", "Prefix", "grpc", "80").build(),
        IngressBuilder::new("default", "j")
            .annotation("nginx.ingress.kubernetes.io/backend-protocol", "GRPC")
            .path(Some("annotated.com"), "/", "Prefix", "a", "80")
            .build(),
    ]);
    w.services.push(h2c(service("default", "grpc", &[("grpc", 80, 50051)])));
    w.slices.push(slice("default", "grpc", "grpc-1", &[("10.4.0.1", true)], &[("grpc", 50051)]));
    let (t, _) = w.build();
    let proto = |host: &str| t.lookup(host, "/").map(|r| r.upstream.protocol);
    assert_eq!(proto("grpc.com"), Some(BackendProtocol::H2c));
    assert_eq!(proto("annotated.com"), Some(BackendProtocol::H2c));
    assert_eq!(proto("x.com"), None);
}

#[test]
fn invalid_paths_and_hosts_are_reported_and_skipped() {
    let w = World::new(vec![
        IngressBuilder::new("default", "i")
            .path(Some("foo.com"), "relative", "Prefix", "a", "80")
            .path(Some("foo.com"), "/ok", "Regex", "a", "80")
            .path(Some("a.*.com"), "/", "Prefix", "a", "80")
            .path(Some("foo.com"), "/fine", "Exact", "a", "80")
            .build(),
    ]);
    let (t, problems) = w.build();
    assert_eq!(
        reasons(&problems),
        [("i".to_string(), "InvalidHost"), ("i".to_string(), "InvalidPath"), ("i".to_string(), "InvalidPath")]
    );
    assert_eq!(route(&t, "foo.com/fine"), "a");
}

#[test]
fn bad_secrets_are_reported_and_leave_the_default_certificate() {
    let a = rcgen::generate_simple_self_signed(vec!["a.com".to_string()]).expect("cert");
    let b = rcgen::generate_simple_self_signed(vec!["b.com".to_string()]).expect("cert");
    let mut w = World::new(vec![
        IngressBuilder::new("default", "mismatch").tls(&["a.com"], "mismatch").build(),
        IngressBuilder::new("default", "garbage").tls(&["g.com"], "garbage").build(),
        IngressBuilder::new("default", "empty").tls(&["e.com"], "empty").build(),
        IngressBuilder::new("default", "opaque").tls(&["o.com"], "opaque").build(),
    ]);
    w.secrets.push(tls_secret("default", "mismatch", &a.cert.pem(), &b.signing_key.serialize_pem()));
    w.secrets.push(tls_secret("default", "garbage", "-----BEGIN CERTIFICATE-----\nnot base64!\n", "junk"));
    let mut empty = tls_secret("default", "empty", "", "");
    empty.data = None;
    w.secrets.push(empty);
    let mut opaque = tls_secret("default", "opaque", &a.cert.pem(), &a.signing_key.serialize_pem());
    opaque.type_ = Some("Opaque".into());
    w.secrets.push(opaque);
    let (t, problems) = w.build();
    let mut got = reasons(&problems);
    got.sort();
    assert_eq!(
        got,
        [
            ("empty".to_string(), "InvalidSecret"),
            ("garbage".to_string(), "InvalidSecret"),
            ("mismatch".to_string(), "InvalidSecret"),
            ("opaque".to_string(), "InvalidSecret"),
        ]
    );
    assert!(problems.iter().any(|p| p.message.contains("does not match")), "{problems:?}");
    assert!(problems.iter().any(|p| p.message.contains("type Opaque")), "{problems:?}");
    for host in ["a.com", "g.com", "e.com", "o.com"] {
        assert!(t.certificate(host).is_none(), "{host} gets the default certificate");
    }
}

#[test]
fn parsed_certificates_are_reused_while_the_secret_resource_version_holds() {
    use crate::table::{CertCache, compile};
    let leaf = rcgen::generate_simple_self_signed(vec!["foo.com".to_string()]).expect("cert");
    let other = rcgen::generate_simple_self_signed(vec!["foo.com".to_string()]).expect("cert");
    let mut w = World::new(vec![IngressBuilder::new("default", "tls").tls(&["foo.com"], "foo-tls").build()]);
    let mut secret = tls_secret("default", "foo-tls", &leaf.cert.pem(), &leaf.signing_key.serialize_pem());
    secret.metadata.resource_version = Some("1".into());
    w.secrets.push(secret);
    let mut cache = CertCache::default();
    let config = IngressConfig::default();
    let build = |w: &World, cache: &mut CertCache| {
        let (t, _) = compile(&w.ingresses, &w.classes, &w.services, &w.slices, &w.secrets, &config, cache);
        t.certificate("foo.com").expect("a certificate")
    };
    let first = build(&w, &mut cache);
    let again = build(&w, &mut cache);
    assert!(std::sync::Arc::ptr_eq(&first, &again), "the same resourceVersion is not parsed again");
    w.secrets[0] = tls_secret("default", "foo-tls", &other.cert.pem(), &other.signing_key.serialize_pem());
    w.secrets[0].metadata.resource_version = Some("2".into());
    let changed = build(&w, &mut cache);
    assert_eq!(changed.cert[0].as_ref(), other.cert.der().as_ref(), "a new resourceVersion is parsed");
    w.ingresses.clear();
    let (_, _) = compile(&w.ingresses, &w.classes, &w.services, &w.slices, &w.secrets, &config, &mut cache);
    assert_eq!(format!("{cache:?}").matches("resource_version").count(), 0, "unused entries are dropped");
}
