//! Packets in, bytes out: the prepared fast path against the pure answer,
//! case echo, EDNS, truncation, and malformed input.

use std::sync::Arc;

use crate::answer::{Answer, answer};
use crate::build::{Cluster, build_view};
use crate::compiled::Compiled;
use crate::handler::{Echo, Outcome, Transport, handle, write_response};
use crate::name::Name;
use crate::testkit::{headless, sample_cluster, slice};
use crate::view::{ZoneConfig, ZoneView};
use crate::wire::{Edns, Encoder, Message, Question, Rcode, class, flags, rtype};

const MAX_UDP: u16 = 1232;

fn compiled_for(cluster: &Cluster, recursion: bool) -> Compiled {
    let view = build_view(&ZoneConfig::new("cluster.local").unwrap(), cluster, 42);
    Compiled::new(Arc::new(view), recursion)
}

fn sample(recursion: bool) -> Compiled {
    compiled_for(&sample_cluster(), recursion)
}

/// The wire form of `text`, case kept.
fn raw(text: &str) -> Vec<u8> {
    let mut w = Vec::new();
    for label in text.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        w.push(label.len() as u8);
        w.extend_from_slice(label.as_bytes());
    }
    w.push(0);
    w
}

fn query(id: u16, name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let mut e = Encoder::default();
    e.header(id, flags::RD, [1, 0, 0, u16::from(edns.is_some())]);
    e.question(&raw(name), qtype, class::IN);
    if let Some(size) = edns {
        e.opt(&Edns { udp_size: size, ext_rcode: 0, version: 0, dnssec_ok: false });
    }
    e.into_inner()
}

fn ask(c: &Compiled, packet: &[u8], transport: Transport) -> (Outcome, Vec<u8>) {
    let mut out = Vec::new();
    let outcome = handle(c, packet, transport, MAX_UDP, &mut out);
    (outcome, out)
}

fn reply(c: &Compiled, packet: &[u8], transport: Transport) -> (Vec<u8>, Message) {
    let (outcome, out) = ask(c, packet, transport);
    assert!(matches!(outcome, Outcome::Reply(_)), "{outcome:?}");
    let m = Message::decode(&out).expect("the response decodes");
    (out, m)
}

/// What the slow path (the pure answer, encoded) makes of a query.
fn slow(view: &ZoneView, packet: &[u8], limit: usize) -> Option<Vec<u8>> {
    let q = crate::wire::Query::parse(packet).ok()?;
    let question = Question { name: Name::from_wire_unchecked(q.name.wire()), qtype: q.qtype, qclass: q.qclass };
    let Answer::Local(r) = answer(view, &question) else { return None };
    let echo = Echo {
        id: q.id,
        flags: q.flags,
        raw_name: q.raw_name,
        qtype: q.qtype,
        qclass: q.qclass,
        edns: q.edns,
        limit,
        our_udp: MAX_UDP,
        recursion: false,
    };
    let mut out = Vec::new();
    write_response(&mut out, &echo, &r);
    Some(out)
}

#[test]
fn prepared_answers_are_byte_for_byte_what_the_pure_answer_encodes() {
    let c = sample(false);
    let mut names: Vec<String> = c.view.nodes().map(|(n, _)| n.to_string()).collect();
    names.extend(
        ["nope.default.svc.cluster.local", "a.b.c.cluster.local", "x.web.default.svc.cluster.local", "cluster.local"]
            .map(String::from),
    );
    names.sort();
    let mut checked = 0;
    for name in &names {
        // Mixed case, to check that pointers into the question survive.
        let mixed: String =
            name.chars().enumerate().map(|(i, ch)| if i % 2 == 0 { ch.to_ascii_uppercase() } else { ch }).collect();
        for t in
            [rtype::A, rtype::AAAA, rtype::SRV, rtype::PTR, rtype::TXT, rtype::CNAME, rtype::SOA, rtype::NS, rtype::MX]
        {
            for edns in [None, Some(4096)] {
                let packet = query(7, &mixed, t, edns);
                let limit = edns.map_or(512, |_| MAX_UDP as usize);
                let (outcome, fast) = ask(&c, &packet, Transport::Udp);
                let Some(slow) = slow(&c.view, &packet, limit) else {
                    assert!(matches!(outcome, Outcome::Forward(_) | Outcome::Reply(_)), "{name}");
                    continue;
                };
                assert_eq!(fast, slow, "{mixed} type {t} edns {edns:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "{checked}");
}

#[test]
fn answers_echo_the_query_id_case_and_flags() {
    let c = sample(false);
    let (out, m) = reply(&c, &query(0xbeef, "WeB.DEFAULT.svc.Cluster.LOCAL", rtype::A, None), Transport::Udp);
    assert_eq!(m.id, 0xbeef);
    assert_eq!(&out[12..12 + 31], &raw("WeB.DEFAULT.svc.Cluster.LOCAL")[..]);
    // The answer's owner points at the question: the client's spelling.
    assert_eq!(&out[12 + 31 + 4..12 + 31 + 6], &[0xc0, 12]);
    assert_ne!(m.flags & flags::QR, 0);
    assert_ne!(m.flags & flags::AA, 0);
    assert_ne!(m.flags & flags::RD, 0);
    assert_eq!(m.flags & flags::RA, 0, "no upstreams: no recursion");
    assert_eq!(m.answers[0].to_string(), "web.default.svc.cluster.local. 5 IN A 10.96.0.10");
}

#[test]
fn nxdomain_from_the_template_carries_the_soa_pointing_into_the_question() {
    let c = sample(false);
    let (out, m) = reply(&c, &query(1, "Google.COM.default.svc.cluster.local", rtype::A, Some(1232)), Transport::Udp);
    assert_eq!(m.rcode(), Rcode::NXDOMAIN);
    assert_eq!(
        m.authority[0].to_string(),
        "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5"
    );
    assert!(m.edns.is_some());
    // The SOA owner is a pointer to "cluster.local" inside the question.
    let q_end = 12 + raw("Google.COM.default.svc.cluster.local").len() + 4;
    assert_eq!(out[q_end], 0xc0);
}

#[test]
fn edns_queries_get_our_opt_record_and_plain_ones_none() {
    let c = sample(false);
    let (_, m) = reply(&c, &query(1, "web.default.svc.cluster.local", rtype::A, Some(4096)), Transport::Udp);
    let e = m.edns.expect("OPT in the response");
    assert_eq!((e.udp_size, e.version, e.dnssec_ok), (MAX_UDP, 0, false));
    let (_, m) = reply(&c, &query(1, "web.default.svc.cluster.local", rtype::A, None), Transport::Udp);
    assert!(m.edns.is_none());
    // Errors answer with OPT too when the query had one.
    let (_, m) = reply(&c, &query(1, "nope.default.svc.cluster.local", rtype::A, Some(512)), Transport::Udp);
    assert!(m.edns.is_some());
}

fn big_headless(endpoints: usize) -> Cluster {
    let eps: Vec<(String, Option<&str>, bool)> =
        (0..endpoints).map(|i| (format!("10.2.{}.{}", i / 250, i % 250 + 1), None, true)).collect();
    let eps: Vec<(&str, Option<&str>, bool)> = eps.iter().map(|(a, h, r)| (a.as_str(), *h, *r)).collect();
    Cluster {
        services: vec![Arc::new(headless("default", "big", &[("http", 80, "TCP")]))],
        slices: vec![Arc::new(slice("default", "big", "big-1", &eps, &[("http", 80, "TCP")]))],
        ..Cluster::default()
    }
}

#[test]
fn answers_too_large_for_udp_are_truncated_and_whole_over_tcp() {
    let c = compiled_for(&big_headless(100), false);
    let name = "big.default.svc.cluster.local";
    // Without EDNS the limit is 512 bytes.
    let (out, m) = reply(&c, &query(1, name, rtype::A, None), Transport::Udp);
    assert!(out.len() <= 512);
    assert_ne!(m.flags & flags::TC, 0);
    assert!(m.answers.is_empty());
    // A client offering 4096 still gets at most our 1232.
    let (out, m) = reply(&c, &query(1, name, rtype::A, Some(4096)), Transport::Udp);
    assert!(out.len() <= 1232);
    assert_ne!(m.flags & flags::TC, 0);
    assert!(m.edns.is_some(), "a truncated EDNS answer keeps its OPT");
    let (_, m) = reply(&c, &query(1, name, rtype::A, None), Transport::Tcp);
    assert_eq!(m.flags & flags::TC, 0);
    assert_eq!(m.answers.len(), 100);
    // 40 addresses fit the EDNS limit but not 512.
    let c = compiled_for(&big_headless(40), false);
    let (_, m) = reply(&c, &query(1, name, rtype::A, None), Transport::Udp);
    assert_ne!(m.flags & flags::TC, 0);
    let (out, m) = reply(&c, &query(1, name, rtype::A, Some(1232)), Transport::Udp);
    assert!(out.len() > 512);
    assert_eq!((m.flags & flags::TC, m.answers.len()), (0, 40));
}

#[test]
fn srv_additional_records_are_dropped_before_anything_is_truncated() {
    let c = compiled_for(&big_headless(7), false);
    let (out, m) = reply(&c, &query(1, "_http._tcp.big.default.svc.cluster.local", rtype::SRV, None), Transport::Udp);
    assert!(out.len() <= 512);
    assert_eq!(m.flags & flags::TC, 0);
    assert_eq!((m.answers.len(), m.additional.len()), (7, 0));
    let (_, m) =
        reply(&c, &query(1, "_http._tcp.big.default.svc.cluster.local", rtype::SRV, Some(1232)), Transport::Udp);
    assert_eq!((m.answers.len(), m.additional.len()), (7, 7));
}

fn rcode_of(out: &[u8]) -> u16 {
    u16::from_be_bytes([out[2], out[3]]) & 0xf
}

#[test]
fn malformed_queries_get_formerr_and_other_opcodes_notimp() {
    let c = sample(false);
    // Garbage after a plausible header.
    let mut garbage = vec![0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    garbage.extend_from_slice(&[0x3f, 0xff, 0xfe, 0x01]);
    let (outcome, out) = ask(&c, &garbage, Transport::Udp);
    assert!(matches!(outcome, Outcome::Reply(s) if s.rcode == Rcode::FORMERR));
    assert_eq!(&out[..2], &[0x12, 0x34]);
    assert_eq!(rcode_of(&out), 1);
    assert_eq!(out.len(), 12);
    // No question at all.
    let (_, out) = ask(&c, &[0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], Transport::Udp);
    assert_eq!(rcode_of(&out), 1);
    // Two questions.
    let mut two = query(5, "web.default.svc.cluster.local", rtype::A, None);
    two[5] = 2;
    let (_, out) = ask(&c, &two, Transport::Udp);
    assert_eq!(rcode_of(&out), 1);
    // NOTIFY (opcode 4): not implemented, question echoed.
    let mut notify = query(6, "cluster.local", rtype::SOA, None);
    notify[2] = 0x20;
    let (_, out) = ask(&c, &notify, Transport::Udp);
    assert_eq!(rcode_of(&out), 4);
    assert_eq!(Message::decode(&out).unwrap().questions.len(), 1);
    assert_eq!(out[2] & 0x78, 0x20, "the opcode is echoed");
}

#[test]
fn edns_versions_above_zero_get_badvers_with_an_opt_record() {
    let c = sample(false);
    let mut e = Encoder::default();
    e.header(9, 0, [1, 0, 0, 1]);
    e.question(&raw("web.default.svc.cluster.local"), rtype::A, class::IN);
    e.opt(&Edns { udp_size: 1232, ext_rcode: 0, version: 1, dnssec_ok: false });
    let (_, m) = reply(&c, &e.into_inner(), Transport::Udp);
    assert_eq!(m.rcode(), Rcode::BADVERS);
}

#[test]
fn responses_and_runts_are_dropped() {
    let c = sample(false);
    let mut response = query(1, "web.default.svc.cluster.local", rtype::A, None);
    response[2] |= 0x80;
    assert!(matches!(ask(&c, &response, Transport::Udp).0, Outcome::Drop));
    assert!(matches!(ask(&c, &[1, 2, 3], Transport::Udp).0, Outcome::Drop));
    assert!(matches!(ask(&c, &[], Transport::Udp).0, Outcome::Drop));
}

#[test]
fn names_outside_the_zone_are_refused_without_upstreams_and_forwarded_with_them() {
    let packet = query(3, "Example.COM", rtype::A, Some(1232));
    let (outcome, out) = ask(&sample(false), &packet, Transport::Udp);
    assert!(matches!(outcome, Outcome::Reply(s) if s.rcode == Rcode::REFUSED && !s.local));
    assert_eq!(rcode_of(&out), 5);
    let (outcome, _) = ask(&sample(true), &packet, Transport::Udp);
    let Outcome::Forward(job) = outcome else { panic!("not forwarded: {outcome:?}") };
    assert_eq!(job.name, Name::parse("example.com").unwrap());
    assert_eq!(job.raw_name, raw("Example.COM"));
    assert_eq!(job.limit, 1232);
    // An ExternalName leading outside the zone is chased upstream.
    let (outcome, _) = ask(&sample(true), &query(4, "ext.default.svc.cluster.local", rtype::A, None), Transport::Udp);
    let Outcome::Forward(job) = outcome else { panic!("not forwarded: {outcome:?}") };
    assert_eq!(job.name, Name::parse("example.com").unwrap());
    assert_eq!(job.prefix.as_ref().map(|r| r.answer.len()), Some(1));
    // Without upstreams the CNAME alone is the answer.
    let (_, m) = reply(&sample(false), &query(4, "ext.default.svc.cluster.local", rtype::A, None), Transport::Udp);
    assert_eq!(m.answers.len(), 1);
}

#[test]
fn an_unsynced_zone_answers_servfail_for_its_names() {
    let view = ZoneView::unsynced(ZoneConfig::new("cluster.local").unwrap());
    let c = Compiled::new(Arc::new(view), false);
    for name in ["web.default.svc.cluster.local", "nope.default.svc.cluster.local", "cluster.local"] {
        let (_, out) = ask(&c, &query(1, name, rtype::A, None), Transport::Udp);
        assert_eq!(rcode_of(&out), 2, "{name}");
    }
}

#[test]
fn random_and_mutated_packets_never_panic() {
    use rand::{Rng, SeedableRng};
    let c = sample(true);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let seeds: Vec<Vec<u8>> = vec![
        query(1, "web.default.svc.cluster.local", rtype::A, Some(1232)),
        query(2, "_http._tcp.db.default.svc.cluster.local", rtype::SRV, None),
        query(3, "1-2-3-4.default.pod.cluster.local", rtype::A, Some(512)),
    ];
    let mut out = Vec::new();
    for i in 0..20_000 {
        let packet: Vec<u8> = if i % 2 == 0 {
            let len = rng.random_range(0..80);
            (0..len).map(|_| rng.random()).collect()
        } else {
            let mut p = seeds[i % seeds.len()].clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..p.len());
                p[at] = rng.random();
            }
            p.truncate(rng.random_range(0..=p.len()));
            p
        };
        let _ = handle(&c, &packet, Transport::Udp, MAX_UDP, &mut out);
        if !out.is_empty() {
            assert!(out.len() <= MAX_UDP as usize);
        }
    }
}

/// A name with many records is not given the one-byte plain entry, whose
/// lookups walk the records: an AAAA query to a big headless Service
/// (no named ports) must not scan its A records. Its answers stay those of
/// the pure path either way.
#[test]
fn big_headless_names_keep_per_type_entries() {
    for (n, plain) in [(2usize, true), (50, false)] {
        let eps: Vec<String> = (0..n).map(|i| format!("10.2.0.{}", i + 1)).collect();
        let eps: Vec<(&str, Option<&str>, bool)> = eps.iter().map(|a| (a.as_str(), None, true)).collect();
        let cluster = Cluster {
            services: vec![Arc::new(headless("default", "big", &[]))],
            slices: vec![Arc::new(slice("default", "big", "big-1", &eps, &[]))],
            ..Cluster::default()
        };
        let c = compiled_for(&cluster, false);
        let name = Name::parse("big.default.svc.cluster.local").unwrap();
        let entry = c.view.rec(name.wire()).and_then(|r| r.entry_bytes().map(<[u8]>::to_vec)).unwrap();
        assert_eq!(entry.len() == 1, plain, "{n} endpoints: entry {entry:?}");
        for qtype in [rtype::A, rtype::AAAA, rtype::TXT] {
            let mut out = Vec::new();
            handle(
                &c,
                &query(7, "big.default.svc.cluster.local", qtype, Some(1232)),
                Transport::Udp,
                MAX_UDP,
                &mut out,
            );
            let m = Message::decode(&out).unwrap();
            let want = if qtype == rtype::A { n } else { 0 };
            assert_eq!(m.answers.len(), want, "{n} endpoints, type {qtype}");
            assert_eq!(m.authority.len(), usize::from(want == 0), "NODATA carries the SOA");
        }
    }
}
