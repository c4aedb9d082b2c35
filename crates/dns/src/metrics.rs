//! Prometheus metrics under CoreDNS's names, so its dashboards and alerts
//! work unchanged:
//!
//! | metric | labels |
//! | --- | --- |
//! | `coredns_dns_requests_total` | server, zone, proto, family, type |
//! | `coredns_dns_responses_total` | server, zone, rcode |
//! | `coredns_dns_request_duration_seconds` | server, zone, type (histogram) |
//! | `coredns_cache_hits_total` | server, type (`success`, `denial`) |
//! | `coredns_cache_misses_total` | server |
//! | `coredns_kubernetes_dns_programming_duration_seconds` | service_kind: EndpointSlice `last-change-trigger-time` → new answers served |
//! | `svcnet_dns_view_build_seconds`, `svcnet_dns_view_names`, `svcnet_dns_view_serial` | — |
//!
//! `zone` is the cluster domain for names answered from the zone and
//! reverse names we hold, `.` for everything forwarded.
//!
//! Counters are sharded: each UDP worker thread owns a cache-line-aligned
//! shard, so the hot path never shares a written cache line.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::handler::Served;
use crate::wire::rtype;

const TYPES: [(u16, &str); 12] = [
    (rtype::A, "A"),
    (rtype::AAAA, "AAAA"),
    (rtype::CNAME, "CNAME"),
    (rtype::HTTPS, "HTTPS"),
    (rtype::MX, "MX"),
    (rtype::NS, "NS"),
    (rtype::PTR, "PTR"),
    (rtype::SOA, "SOA"),
    (rtype::SRV, "SRV"),
    (rtype::SVCB, "SVCB"),
    (rtype::TXT, "TXT"),
    (rtype::ANY, "ANY"),
];
const NTYPES: usize = TYPES.len() + 1;
const RCODES: usize = 17;
const ZONES: usize = 2;
const PROTOS: usize = 2;
const FAMILIES: usize = 2;
/// CoreDNS's request duration buckets: 0.25 ms doubling 16 times.
const DURATION_BUCKETS: usize = 16;

fn type_index(t: u16) -> usize {
    TYPES.iter().position(|(v, _)| *v == t).unwrap_or(TYPES.len())
}

fn type_name(i: usize) -> &'static str {
    TYPES.get(i).map_or("other", |(_, n)| n)
}

fn rcode_name(i: usize) -> &'static str {
    const NAMES: [&str; RCODES] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH",
        "NOTZONE", "RCODE11", "RCODE12", "RCODE13", "RCODE14", "RCODE15", "BADVERS",
    ];
    NAMES[i.min(RCODES - 1)]
}

/// How a request arrived.
#[derive(Clone, Copy, Debug)]
pub struct Via {
    pub tcp: bool,
    pub ipv6: bool,
}

/// One shard of request counters.
#[repr(align(128))]
pub struct Shard {
    requests: [AtomicU64; ZONES * PROTOS * FAMILIES * NTYPES],
    responses: [AtomicU64; ZONES * RCODES],
    duration: [AtomicU64; ZONES * NTYPES * (DURATION_BUCKETS + 1)],
    duration_sum_ns: [AtomicU64; ZONES * NTYPES],
    dropped: AtomicU64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            responses: std::array::from_fn(|_| AtomicU64::new(0)),
            duration: std::array::from_fn(|_| AtomicU64::new(0)),
            duration_sum_ns: std::array::from_fn(|_| AtomicU64::new(0)),
            dropped: AtomicU64::new(0),
        }
    }
}

impl Shard {
    /// Counts one answered request.
    #[inline]
    pub fn record(&self, served: Served, via: Via, took: Duration) {
        let z = usize::from(!served.local);
        let t = type_index(served.qtype);
        let r = (served.rcode.0 as usize).min(RCODES - 1);
        let req = ((z * PROTOS + usize::from(via.tcp)) * FAMILIES + usize::from(via.ipv6)) * NTYPES + t;
        self.requests[req].fetch_add(1, Relaxed);
        self.responses[z * RCODES + r].fetch_add(1, Relaxed);
        let ns = took.as_nanos().min(u64::MAX as u128) as u64;
        // Bucket i holds durations up to 0.25 ms × 2^i; the last, the rest.
        let bucket = if ns <= 250_000 {
            0
        } else {
            ((64 - ((ns - 1) / 250_000).leading_zeros()) as usize).min(DURATION_BUCKETS)
        };
        self.duration[(z * NTYPES + t) * (DURATION_BUCKETS + 1) + bucket].fetch_add(1, Relaxed);
        self.duration_sum_ns[z * NTYPES + t].fetch_add(ns, Relaxed);
    }

    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Relaxed);
    }
}

/// A histogram with fixed bounds (seconds).
pub struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<AtomicU64>,
    sum_ns: AtomicU64,
}

impl Histogram {
    fn exponential(start: f64, factor: f64, count: usize) -> Histogram {
        let bounds: Vec<f64> = (0..count).map(|i| start * factor.powi(i as i32)).collect();
        let counts = (0..=count).map(|_| AtomicU64::new(0)).collect();
        Histogram { bounds, counts, sum_ns: AtomicU64::new(0) }
    }

    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = self.bounds.iter().position(|&b| s <= b).unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// Kinds of Service for the programming-latency histogram (CoreDNS's).
pub const SERVICE_KINDS: [&str; 3] = ["cluster_ip", "headless_with_selector", "headless_without_selector"];

/// Every metric of one server.
pub struct Metrics {
    server: String,
    zone: String,
    shards: Box<[Shard]>,
    pub cache_hits_success: AtomicU64,
    pub cache_hits_denial: AtomicU64,
    pub cache_misses: AtomicU64,
    pub programming: [Histogram; 3],
    pub view_build: Histogram,
    pub view_names: AtomicU64,
    pub view_serial: AtomicU64,
}

impl Metrics {
    /// `shards` UDP workers, plus one shared shard for async tasks.
    pub fn new(server: String, zone: String, shards: usize) -> Metrics {
        Metrics {
            server,
            zone,
            shards: (0..=shards).map(|_| Shard::default()).collect(),
            cache_hits_success: AtomicU64::new(0),
            cache_hits_denial: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            programming: std::array::from_fn(|_| Histogram::exponential(0.001, 2.0, 20)),
            view_build: Histogram::exponential(0.0001, 2.0, 20),
            view_names: AtomicU64::new(0),
            view_serial: AtomicU64::new(0),
        }
    }

    /// Worker `i`'s shard; the last is shared by async tasks.
    pub fn shard(&self, i: usize) -> &Shard {
        &self.shards[i.min(self.shards.len() - 1)]
    }

    pub fn shared_shard(&self) -> &Shard {
        &self.shards[self.shards.len() - 1]
    }

    fn sum(&self, f: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards.iter().map(|s| f(s).load(Relaxed)).sum()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let server = &self.server;
        let zones = [self.zone.as_str(), "."];
        out.push_str("# HELP coredns_dns_requests_total Counter of DNS requests made per zone, protocol and family.\n");
        out.push_str("# TYPE coredns_dns_requests_total counter\n");
        for (z, zone) in zones.iter().enumerate() {
            for p in 0..PROTOS {
                for fam in 0..FAMILIES {
                    for t in 0..NTYPES {
                        let i = ((z * PROTOS + p) * FAMILIES + fam) * NTYPES + t;
                        let v = self.sum(|s| &s.requests[i]);
                        if v > 0 {
                            let proto = if p == 1 { "tcp" } else { "udp" };
                            let family = if fam == 1 { "2" } else { "1" };
                            let _ = writeln!(
                                out,
                                "coredns_dns_requests_total{{server=\"{server}\",zone=\"{zone}\",proto=\"{proto}\",family=\"{family}\",type=\"{}\"}} {v}",
                                type_name(t)
                            );
                        }
                    }
                }
            }
        }
        out.push_str("# HELP coredns_dns_responses_total Counter of response status codes.\n");
        out.push_str("# TYPE coredns_dns_responses_total counter\n");
        for (z, zone) in zones.iter().enumerate() {
            for r in 0..RCODES {
                let v = self.sum(|s| &s.responses[z * RCODES + r]);
                if v > 0 {
                    let _ = writeln!(
                        out,
                        "coredns_dns_responses_total{{server=\"{server}\",zone=\"{zone}\",rcode=\"{}\"}} {v}",
                        rcode_name(r)
                    );
                }
            }
        }
        out.push_str(
            "# HELP coredns_dns_request_duration_seconds Histogram of the time (in seconds) each request took.\n",
        );
        out.push_str("# TYPE coredns_dns_request_duration_seconds histogram\n");
        for (z, zone) in zones.iter().enumerate() {
            for t in 0..NTYPES {
                let base = (z * NTYPES + t) * (DURATION_BUCKETS + 1);
                let total: u64 = (0..=DURATION_BUCKETS).map(|b| self.sum(|s| &s.duration[base + b])).sum();
                if total == 0 {
                    continue;
                }
                let labels = format!("server=\"{server}\",zone=\"{zone}\",type=\"{}\"", type_name(t));
                let mut cumulative = 0;
                for b in 0..DURATION_BUCKETS {
                    cumulative += self.sum(|s| &s.duration[base + b]);
                    let le = 0.00025 * f64::from(1u32 << b);
                    let _ = writeln!(
                        out,
                        "coredns_dns_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(out, "coredns_dns_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {total}");
                let sum = self.sum(|s| &s.duration_sum_ns[z * NTYPES + t]) as f64 / 1e9;
                let _ = writeln!(out, "coredns_dns_request_duration_seconds_sum{{{labels}}} {sum}");
                let _ = writeln!(out, "coredns_dns_request_duration_seconds_count{{{labels}}} {total}");
            }
        }
        out.push_str(
            "# HELP coredns_cache_hits_total The count of cache hits.\n# TYPE coredns_cache_hits_total counter\n",
        );
        for (kind, v) in [("success", &self.cache_hits_success), ("denial", &self.cache_hits_denial)] {
            let _ =
                writeln!(out, "coredns_cache_hits_total{{server=\"{server}\",type=\"{kind}\"}} {}", v.load(Relaxed));
        }
        out.push_str(
            "# HELP coredns_cache_misses_total The count of cache misses.\n# TYPE coredns_cache_misses_total counter\n",
        );
        let _ = writeln!(out, "coredns_cache_misses_total{{server=\"{server}\"}} {}", self.cache_misses.load(Relaxed));
        out.push_str("# HELP svcnet_dns_dropped_total Packets that were not queries (too short, or responses).\n");
        out.push_str("# TYPE svcnet_dns_dropped_total counter\n");
        let _ = writeln!(out, "svcnet_dns_dropped_total{{server=\"{server}\"}} {}", self.sum(|s| &s.dropped));
        out.push_str("# HELP coredns_kubernetes_dns_programming_duration_seconds Histogram of the time (in seconds) it took to program a dns instance.\n");
        out.push_str("# TYPE coredns_kubernetes_dns_programming_duration_seconds histogram\n");
        for (kind, h) in SERVICE_KINDS.iter().zip(&self.programming) {
            h.render(
                &mut out,
                "coredns_kubernetes_dns_programming_duration_seconds",
                &format!("service_kind=\"{kind}\""),
            );
        }
        out.push_str("# HELP svcnet_dns_view_build_seconds Time to build and compile the zone after a change.\n");
        out.push_str("# TYPE svcnet_dns_view_build_seconds histogram\n");
        self.view_build.render(&mut out, "svcnet_dns_view_build_seconds", "");
        out.push_str("# HELP svcnet_dns_view_names Names in the served zone.\n# TYPE svcnet_dns_view_names gauge\n");
        let _ = writeln!(out, "svcnet_dns_view_names {}", self.view_names.load(Relaxed));
        out.push_str(
            "# HELP svcnet_dns_view_serial SOA serial of the served zone.\n# TYPE svcnet_dns_view_serial gauge\n",
        );
        let _ = writeln!(out, "svcnet_dns_view_serial {}", self.view_serial.load(Relaxed));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Rcode;

    #[test]
    fn requests_are_counted_under_coredns_names_and_labels() {
        let m = Metrics::new("dns://:53".into(), "cluster.local.".into(), 2);
        let served = Served { qtype: rtype::A, rcode: Rcode::NXDOMAIN, local: true };
        m.shard(0).record(served, Via { tcp: false, ipv6: false }, Duration::from_micros(10));
        m.shard(1).record(served, Via { tcp: false, ipv6: false }, Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains(
            "coredns_dns_requests_total{server=\"dns://:53\",zone=\"cluster.local.\",proto=\"udp\",family=\"1\",type=\"A\"} 2"
        ));
        assert!(text.contains(
            "coredns_dns_responses_total{server=\"dns://:53\",zone=\"cluster.local.\",rcode=\"NXDOMAIN\"} 2"
        ));
        assert!(text.contains(
            "coredns_dns_request_duration_seconds_bucket{server=\"dns://:53\",zone=\"cluster.local.\",type=\"A\",le=\"0.00025\"} 1"
        ));
        assert!(text.contains(
            "coredns_dns_request_duration_seconds_bucket{server=\"dns://:53\",zone=\"cluster.local.\",type=\"A\",le=\"0.004\"} 2"
        ));
        assert!(text.contains(
            "coredns_dns_request_duration_seconds_count{server=\"dns://:53\",zone=\"cluster.local.\",type=\"A\"} 2"
        ));
    }
}
