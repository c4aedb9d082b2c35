//! The answer table: for the sample cluster (`testkit::sample_cluster`),
//! what every kind of question gets, section by section.

use crate::answer::{Answer, answer};
use crate::build::build_view;
use crate::name::Name;
use crate::testkit::sample_cluster;
use crate::view::{PodsMode, ZoneConfig, ZoneView};
use crate::wire::{Question, Rcode, class, rtype};

const SOA: &str = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5";
const SOA_V4: &str = "in-addr.arpa. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5";

fn view(pods: PodsMode) -> ZoneView {
    let mut config = ZoneConfig::new("cluster.local").unwrap();
    config.pods = pods;
    build_view(&config, &sample_cluster(), 42)
}

struct Case {
    name: &'static str,
    qtype: u16,
    rcode: Rcode,
    answer: &'static [&'static str],
    authority: &'static [&'static str],
    additional: &'static [&'static str],
}

const fn ok(name: &'static str, qtype: u16, answer: &'static [&'static str]) -> Case {
    Case { name, qtype, rcode: Rcode::NOERROR, answer, authority: &[], additional: &[] }
}

const fn nodata(name: &'static str, qtype: u16) -> Case {
    Case { name, qtype, rcode: Rcode::NOERROR, answer: &[], authority: &[SOA], additional: &[] }
}

const fn nxdomain(name: &'static str, qtype: u16) -> Case {
    Case { name, qtype, rcode: Rcode::NXDOMAIN, answer: &[], authority: &[SOA], additional: &[] }
}

fn check(view: &ZoneView, cases: &[Case]) {
    let mut failures = Vec::new();
    for c in cases {
        let q = Question { name: Name::parse(c.name).unwrap(), qtype: c.qtype, qclass: class::IN };
        let Answer::Local(r) = answer(view, &q) else {
            failures.push(format!("{} {}: forwarded", c.name, c.qtype));
            continue;
        };
        let text = |v: &[crate::wire::Record]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        let got = (r.rcode, text(&r.answer), text(&r.authority), text(&r.additional));
        let want = (
            c.rcode,
            c.answer.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            c.authority.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            c.additional.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        );
        if got != want {
            failures.push(format!("{} type {}:\n  got  {got:?}\n  want {want:?}", c.name, c.qtype));
        }
        if r.rcode != Rcode::SERVFAIL && !r.authoritative {
            failures.push(format!("{} type {}: not authoritative", c.name, c.qtype));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_zone_apex_has_soa_and_ns_and_the_schema_version_is_published() {
    check(
        &view(PodsMode::Insecure),
        &[
            ok("cluster.local", rtype::SOA, &[SOA]),
            ok("cluster.local", rtype::NS, &["cluster.local. 5 IN NS ns.dns.cluster.local."]),
            ok("dns-version.cluster.local", rtype::TXT, &["dns-version.cluster.local. 5 IN TXT \"1.1.0\""]),
            nodata("dns-version.cluster.local", rtype::A),
        ],
    );
}

#[test]
fn cluster_ip_services_have_address_srv_and_ptr_records() {
    const ADDRS: &[&str] =
        &["web.default.svc.cluster.local. 5 IN A 10.96.0.10", "web.default.svc.cluster.local. 5 IN AAAA fd00::10"];
    check(
        &view(PodsMode::Insecure),
        &[
            ok("web.default.svc.cluster.local", rtype::A, &["web.default.svc.cluster.local. 5 IN A 10.96.0.10"]),
            ok("web.default.svc.cluster.local", rtype::AAAA, &["web.default.svc.cluster.local. 5 IN AAAA fd00::10"]),
            ok(
                "kubernetes.default.svc.cluster.local",
                rtype::A,
                &["kubernetes.default.svc.cluster.local. 5 IN A 10.96.0.1"],
            ),
            Case {
                additional: ADDRS,
                ..ok(
                    "_http._tcp.web.default.svc.cluster.local",
                    rtype::SRV,
                    &["_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."],
                )
            },
            Case {
                additional: ADDRS,
                ..ok(
                    "_dns._udp.web.default.svc.cluster.local",
                    rtype::SRV,
                    &["_dns._udp.web.default.svc.cluster.local. 5 IN SRV 0 100 53 web.default.svc.cluster.local."],
                )
            },
            // Every port, named or not, at the Service's own name (CoreDNS).
            Case {
                additional: ADDRS,
                ..ok(
                    "web.default.svc.cluster.local",
                    rtype::SRV,
                    &[
                        "web.default.svc.cluster.local. 5 IN SRV 0 33 53 web.default.svc.cluster.local.",
                        "web.default.svc.cluster.local. 5 IN SRV 0 33 80 web.default.svc.cluster.local.",
                        "web.default.svc.cluster.local. 5 IN SRV 0 33 8080 web.default.svc.cluster.local.",
                    ],
                )
            },
            ok(
                "10.0.96.10.in-addr.arpa",
                rtype::PTR,
                &["10.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."],
            ),
            ok(
                "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
                rtype::PTR,
                &[
                    "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR web.default.svc.cluster.local.",
                ],
            ),
            // Ready endpoints are named as CoreDNS names them, with PTRs.
            ok(
                "10-1-0-1.web.default.svc.cluster.local",
                rtype::A,
                &["10-1-0-1.web.default.svc.cluster.local. 5 IN A 10.1.0.1"],
            ),
            ok(
                "1.0.1.10.in-addr.arpa",
                rtype::PTR,
                &["1.0.1.10.in-addr.arpa. 5 IN PTR 10-1-0-1.web.default.svc.cluster.local."],
            ),
            nxdomain("10-1-0-2.web.default.svc.cluster.local", rtype::A),
        ],
    );
}

#[test]
fn names_that_exist_without_the_asked_type_are_nodata_with_the_soa() {
    check(
        &view(PodsMode::Insecure),
        &[
            nodata("web.default.svc.cluster.local", rtype::TXT),
            nodata("web.default.svc.cluster.local", rtype::SOA),
            nodata("kubernetes.default.svc.cluster.local", rtype::AAAA),
            // Empty non-terminals.
            nodata("svc.cluster.local", rtype::A),
            nodata("pod.cluster.local", rtype::A),
            nodata("default.svc.cluster.local", rtype::A),
            nodata("svc.cluster.local", rtype::NS),
            nodata("_tcp.web.default.svc.cluster.local", rtype::SRV),
            // A namespace without Services.
            nodata("empty.svc.cluster.local", rtype::A),
            // A reverse name we hold, asked for another type: the reverse
            // zone's SOA.
            Case { authority: &[SOA_V4], ..nodata("10.0.96.10.in-addr.arpa", rtype::A) },
        ],
    );
}

#[test]
fn names_that_do_not_exist_are_nxdomain_with_the_soa() {
    check(
        &view(PodsMode::Insecure),
        &[
            nxdomain("missing.default.svc.cluster.local", rtype::A),
            nxdomain("missing.default.svc.cluster.local", rtype::AAAA),
            nxdomain("web.nonexistent.svc.cluster.local", rtype::A),
            nxdomain("nonexistent.svc.cluster.local", rtype::A),
            nxdomain("foo.cluster.local", rtype::NS),
            nxdomain("_dns._tcp.web.default.svc.cluster.local", rtype::SRV),
            nxdomain("_http._udp.web.default.svc.cluster.local", rtype::SRV),
            // What a resolver's search path makes of an external name.
            nxdomain("google.com.default.svc.cluster.local", rtype::A),
            nxdomain("x.web.default.svc.cluster.local", rtype::A),
        ],
    );
}

#[test]
fn headless_services_answer_every_ready_endpoint_and_name_each_one() {
    const DB_ADDRS: &[&str] = &[
        "db-0.db.default.svc.cluster.local. 5 IN A 10.1.1.1",
        "10-1-1-2.db.default.svc.cluster.local. 5 IN A 10.1.1.2",
        "fd00--1-1.db.default.svc.cluster.local. 5 IN AAAA fd00::1:1",
    ];
    check(
        &view(PodsMode::Insecure),
        &[
            ok(
                "db.default.svc.cluster.local",
                rtype::A,
                &["db.default.svc.cluster.local. 5 IN A 10.1.1.1", "db.default.svc.cluster.local. 5 IN A 10.1.1.2"],
            ),
            ok("db.default.svc.cluster.local", rtype::AAAA, &["db.default.svc.cluster.local. 5 IN AAAA fd00::1:1"]),
            ok("db-0.db.default.svc.cluster.local", rtype::A, &["db-0.db.default.svc.cluster.local. 5 IN A 10.1.1.1"]),
            ok(
                "10-1-1-2.db.default.svc.cluster.local",
                rtype::A,
                &["10-1-1-2.db.default.svc.cluster.local. 5 IN A 10.1.1.2"],
            ),
            ok(
                "fd00--1-1.db.default.svc.cluster.local",
                rtype::AAAA,
                &["fd00--1-1.db.default.svc.cluster.local. 5 IN AAAA fd00::1:1"],
            ),
            nodata("db-0.db.default.svc.cluster.local", rtype::AAAA),
            // Not ready: no name, no address.
            nxdomain("db-2.db.default.svc.cluster.local", rtype::A),
            Case {
                additional: DB_ADDRS,
                ..ok(
                    "_postgres._tcp.db.default.svc.cluster.local",
                    rtype::SRV,
                    &[
                        "_postgres._tcp.db.default.svc.cluster.local. 5 IN SRV 0 33 5432 db-0.db.default.svc.cluster.local.",
                        "_postgres._tcp.db.default.svc.cluster.local. 5 IN SRV 0 33 5432 10-1-1-2.db.default.svc.cluster.local.",
                        "_postgres._tcp.db.default.svc.cluster.local. 5 IN SRV 0 33 5432 fd00--1-1.db.default.svc.cluster.local.",
                    ],
                )
            },
            ok(
                "1.1.1.10.in-addr.arpa",
                rtype::PTR,
                &["1.1.1.10.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local."],
            ),
            ok(
                "2.1.1.10.in-addr.arpa",
                rtype::PTR,
                &["2.1.1.10.in-addr.arpa. 5 IN PTR 10-1-1-2.db.default.svc.cluster.local."],
            ),
            ok(
                "portless.default.svc.cluster.local",
                rtype::A,
                &["portless.default.svc.cluster.local. 5 IN A 10.1.3.1"],
            ),
            ok(
                "10-1-3-1.portless.default.svc.cluster.local",
                rtype::A,
                &["10-1-3-1.portless.default.svc.cluster.local. 5 IN A 10.1.3.1"],
            ),
            nodata("portless.default.svc.cluster.local", rtype::SRV),
        ],
    );
}

/// The spec (§2.4.1): "If there are no ready endpoints for the headless
/// Service, the answer should be NXDOMAIN." CoreDNS does the same.
#[test]
fn headless_service_without_ready_endpoints_is_nxdomain() {
    check(
        &view(PodsMode::Insecure),
        &[
            nxdomain("idle.default.svc.cluster.local", rtype::A),
            nxdomain("_http._tcp.idle.default.svc.cluster.local", rtype::SRV),
            nxdomain("10-1-4-1.idle.default.svc.cluster.local", rtype::A),
        ],
    );
}

#[test]
fn publishing_not_ready_addresses_serves_endpoints_that_are_not_ready() {
    check(
        &view(PodsMode::Insecure),
        &[
            ok("warming.default.svc.cluster.local", rtype::A, &["warming.default.svc.cluster.local. 5 IN A 10.1.2.1"]),
            Case {
                additional: &["10-1-2-1.warming.default.svc.cluster.local. 5 IN A 10.1.2.1"],
                ..ok(
                    "_http._tcp.warming.default.svc.cluster.local",
                    rtype::SRV,
                    &[
                        "_http._tcp.warming.default.svc.cluster.local. 5 IN SRV 0 100 80 10-1-2-1.warming.default.svc.cluster.local.",
                    ],
                )
            },
        ],
    );
}

#[test]
fn external_names_are_cnames_chased_inside_the_zone() {
    let v = view(PodsMode::Insecure);
    check(
        &v,
        &[
            ok(
                "ext.default.svc.cluster.local",
                rtype::CNAME,
                &["ext.default.svc.cluster.local. 5 IN CNAME example.com."],
            ),
            ok(
                "alias.default.svc.cluster.local",
                rtype::A,
                &[
                    "alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.",
                    "web.default.svc.cluster.local. 5 IN A 10.96.0.10",
                ],
            ),
            ok(
                "alias.default.svc.cluster.local",
                rtype::AAAA,
                &[
                    "alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.",
                    "web.default.svc.cluster.local. 5 IN AAAA fd00::10",
                ],
            ),
            // The chain's last name decides the RCODE (RFC 6604).
            Case {
                authority: &[SOA],
                ..ok(
                    "alias.default.svc.cluster.local",
                    rtype::TXT,
                    &["alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local."],
                )
            },
            Case {
                rcode: Rcode::NXDOMAIN,
                authority: &[SOA],
                ..ok(
                    "dangling.default.svc.cluster.local",
                    rtype::A,
                    &["dangling.default.svc.cluster.local. 5 IN CNAME nope.default.svc.cluster.local."],
                )
            },
            // Names below an ExternalName do not exist.
            nxdomain("www.ext.default.svc.cluster.local", rtype::A),
        ],
    );
    // A target outside the zone is left for the upstreams.
    let q = Question::new(Name::parse("ext.default.svc.cluster.local").unwrap(), rtype::A);
    let Answer::Local(r) = answer(&v, &q) else { panic!("forwarded") };
    assert_eq!(r.answer.len(), 1);
    assert_eq!(r.chase, Some(Name::parse("example.com").unwrap()));
}

#[test]
fn pod_records_follow_the_pods_mode() {
    check(
        &view(PodsMode::Insecure),
        &[
            ok("1-2-3-4.default.pod.cluster.local", rtype::A, &["1-2-3-4.default.pod.cluster.local. 5 IN A 1.2.3.4"]),
            ok(
                "fd00--1.default.pod.cluster.local",
                rtype::AAAA,
                &["fd00--1.default.pod.cluster.local. 5 IN AAAA fd00::1"],
            ),
            nodata("1-2-3-4.default.pod.cluster.local", rtype::AAAA),
            nodata("default.pod.cluster.local", rtype::A),
            nxdomain("1-2-3-4.nonexistent.pod.cluster.local", rtype::A),
            nxdomain("not-an-ip.default.pod.cluster.local", rtype::A),
            nxdomain("x.1-2-3-4.default.pod.cluster.local", rtype::A),
        ],
    );
    check(
        &view(PodsMode::Verified),
        &[
            ok(
                "10-1-0-1.default.pod.cluster.local",
                rtype::A,
                &["10-1-0-1.default.pod.cluster.local. 5 IN A 10.1.0.1"],
            ),
            nxdomain("1-2-3-4.default.pod.cluster.local", rtype::A),
            nxdomain("10-1-0-1.kube-system.pod.cluster.local", rtype::A),
        ],
    );
    check(
        &view(PodsMode::Disabled),
        &[nxdomain("10-1-0-1.default.pod.cluster.local", rtype::A), nodata("pod.cluster.local", rtype::A)],
    );
}

#[test]
fn names_outside_our_zones_are_forwarded() {
    let v = view(PodsMode::Insecure);
    for (name, t) in [
        ("example.com", rtype::A),
        ("local", rtype::SOA),
        (".", rtype::NS),
        // Reverse names we hold nothing for fall through, like kubeadm's
        // `fallthrough in-addr.arpa ip6.arpa`.
        ("9.9.9.9.in-addr.arpa", rtype::PTR),
        ("in-addr.arpa", rtype::SOA),
    ] {
        let q = Question::new(Name::parse(name).unwrap(), t);
        assert_eq!(answer(&v, &q), Answer::Forward, "{name}");
    }
}

#[test]
fn questions_names_are_case_insensitive() {
    check(
        &view(PodsMode::Insecure),
        &[ok("WEB.Default.SVC.Cluster.Local", rtype::A, &["web.default.svc.cluster.local. 5 IN A 10.96.0.10"])],
    );
}

#[test]
fn other_classes_and_zone_transfers_are_refused_and_an_unsynced_zone_fails() {
    let v = view(PodsMode::Insecure);
    let web = Name::parse("web.default.svc.cluster.local").unwrap();
    let chaos = Question { name: web.clone(), qtype: rtype::A, qclass: 3 };
    let refused = |a: Answer| matches!(a, Answer::Local(r) if r.rcode == Rcode::REFUSED && r.answer.is_empty());
    assert!(refused(answer(&v, &chaos)));
    assert!(refused(answer(&v, &Question::new(Name::parse("cluster.local").unwrap(), rtype::AXFR))));
    assert!(refused(answer(&v, &Question::new(Name::parse("cluster.local").unwrap(), rtype::IXFR))));
    let unsynced = ZoneView::unsynced(ZoneConfig::new("cluster.local").unwrap());
    assert!(matches!(answer(&unsynced, &Question::new(web, rtype::A)), Answer::Local(r) if r.rcode == Rcode::SERVFAIL));
    assert_eq!(answer(&unsynced, &Question::new(Name::parse("example.com").unwrap(), rtype::A)), Answer::Forward);
}

#[test]
fn any_answers_every_rrset_at_the_name() {
    check(
        &view(PodsMode::Insecure),
        &[Case {
            additional: &[
                "web.default.svc.cluster.local. 5 IN A 10.96.0.10",
                "web.default.svc.cluster.local. 5 IN AAAA fd00::10",
            ],
            ..ok(
                "web.default.svc.cluster.local",
                rtype::ANY,
                &[
                    "web.default.svc.cluster.local. 5 IN A 10.96.0.10",
                    "web.default.svc.cluster.local. 5 IN AAAA fd00::10",
                    "web.default.svc.cluster.local. 5 IN SRV 0 33 53 web.default.svc.cluster.local.",
                    "web.default.svc.cluster.local. 5 IN SRV 0 33 80 web.default.svc.cluster.local.",
                    "web.default.svc.cluster.local. 5 IN SRV 0 33 8080 web.default.svc.cluster.local.",
                ],
            )
        }],
    );
}

#[test]
fn the_ttl_and_cluster_domain_are_configurable() {
    let config = ZoneConfig { zone: Name::parse("corp.example").unwrap(), ttl: 30, pods: PodsMode::Insecure };
    let v = build_view(&config, &sample_cluster(), 7);
    check(
        &v,
        &[
            ok("web.default.svc.corp.example", rtype::A, &["web.default.svc.corp.example. 30 IN A 10.96.0.10"]),
            Case {
                rcode: Rcode::NXDOMAIN,
                authority: &[
                    "corp.example. 30 IN SOA ns.dns.corp.example. hostmaster.corp.example. 7 7200 1800 86400 30",
                ],
                ..ok("nope.default.svc.corp.example", rtype::A, &[])
            },
        ],
    );
    let q = Question::new(Name::parse("web.default.svc.cluster.local").unwrap(), rtype::A);
    assert_eq!(answer(&v, &q), Answer::Forward);
}
