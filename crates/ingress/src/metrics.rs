//! Prometheus metrics, kept cheap on the request path: each route and
//! upstream of a table caches its counters (`OnceLock`), so counting a
//! request is a few relaxed atomic adds; the registry's lock is taken once
//! per route per table, and by the scraper.
//!
//! | metric | labels |
//! | --- | --- |
//! | `svcnet_ingress_requests_total` | `namespace`, `ingress`, `service`, `status` (`2xx`, ...) |
//! | `svcnet_ingress_request_duration_seconds` (histogram) | `namespace`, `ingress`, `service` |
//! | `svcnet_ingress_upstream_connect_errors_total` | `namespace`, `service` |
//! | `svcnet_ingress_upstream_errors_total` | `namespace`, `service`, `reason` (`connect`, `timeout`, `reset`) |
//! | `svcnet_ingress_config_reloads_total` | |
//! | `svcnet_ingress_config_last_reload_successful_timestamp_seconds` | |
//! | `svcnet_ingress_connections_active` | |
//!
//! Requests no rule matched are counted with empty `ingress`/`service`.
//!
//! `upstream_errors_total` counts each failure with an endpoint: `connect`
//! a connect that failed or timed out (as `upstream_connect_errors_total`),
//! `timeout` a connected backend too slow to take the request body or to
//! answer (a 504), `reset` a connected backend that broke the exchange
//! before its response headers (closed, reset, malformed: a 502 unless a
//! retry saved it). A pooled connection found closed and retried once on
//! a new one is not counted.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::table::{Route, Upstream};

const BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Counters of one (namespace, ingress, service).
#[derive(Debug, Default)]
pub struct RouteMetrics {
    status: [AtomicU64; 5],
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl RouteMetrics {
    pub(crate) fn observe(&self, status: u16, took: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.status[class].fetch_add(1, Relaxed);
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }
}

/// Counters of one Service.
#[derive(Debug, Default)]
pub struct ServiceMetrics {
    pub(crate) connect_errors: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) resets: AtomicU64,
}

type RouteKey = (String, String, String);

/// Every counter the proxy keeps.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<RouteKey, Arc<RouteMetrics>>>,
    services: Mutex<BTreeMap<(String, String), Arc<ServiceMetrics>>>,
    unmatched: Arc<RouteMetrics>,
    pub(crate) reloads: AtomicU64,
    last_reload_ok: AtomicU64,
    pub(crate) connections: AtomicU64,
}

impl Metrics {
    /// The counters of a route (or, with `None`, of unmatched requests).
    pub(crate) fn route<'a>(&'a self, route: Option<&'a Route>) -> &'a RouteMetrics {
        let Some(route) = route else { return &self.unmatched };
        route.metrics.get_or_init(|| {
            let key = (route.ingress.namespace.clone(), route.ingress.name.clone(), route.upstream.service.clone());
            self.routes.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_default().clone()
        })
    }

    pub(crate) fn service<'u>(&self, upstream: &'u Upstream) -> &'u ServiceMetrics {
        upstream.metrics.get_or_init(|| {
            let key = (upstream.namespace.clone(), upstream.service.clone());
            self.services.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_default().clone()
        })
    }

    /// A table was published.
    pub(crate) fn reloaded(&self) {
        self.reloads.fetch_add(1, Relaxed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.last_reload_ok.store(now, Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP svcnet_ingress_requests_total Requests answered, by Ingress, Service and status class.\n");
        out.push_str("# TYPE svcnet_ingress_requests_total counter\n");
        let routes: Vec<(RouteKey, Arc<RouteMetrics>)> = {
            let map = self.routes.lock().unwrap_or_else(|p| p.into_inner());
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let unmatched = ((String::new(), String::new(), String::new()), self.unmatched.clone());
        let all: Vec<&(RouteKey, Arc<RouteMetrics>)> = routes.iter().chain(std::iter::once(&unmatched)).collect();
        for ((ns, ing, svc), m) in &all {
            for (i, c) in m.status.iter().enumerate() {
                let v = c.load(Relaxed);
                if v > 0 {
                    let _ = writeln!(
                        out,
                        "svcnet_ingress_requests_total{{namespace=\"{}\",ingress=\"{}\",service=\"{}\",status=\"{}xx\"}} {v}",
                        esc(ns),
                        esc(ing),
                        esc(svc),
                        i + 1
                    );
                }
            }
        }
        out.push_str("# HELP svcnet_ingress_request_duration_seconds Time from request to response headers.\n");
        out.push_str("# TYPE svcnet_ingress_request_duration_seconds histogram\n");
        for ((ns, ing, svc), m) in &all {
            let count = m.count.load(Relaxed);
            if count == 0 {
                continue;
            }
            let labels = format!("namespace=\"{}\",ingress=\"{}\",service=\"{}\"", esc(ns), esc(ing), esc(svc));
            let mut cumulative = 0;
            for (b, c) in BUCKETS.iter().zip(&m.buckets) {
                cumulative += c.load(Relaxed);
                let _ =
                    writeln!(out, "svcnet_ingress_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {cumulative}");
            }
            let _ = writeln!(out, "svcnet_ingress_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}");
            let sum = m.sum_micros.load(Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "svcnet_ingress_request_duration_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "svcnet_ingress_request_duration_seconds_count{{{labels}}} {count}");
        }
        out.push_str("# HELP svcnet_ingress_upstream_connect_errors_total Failed connects to endpoints, by Service.\n");
        out.push_str("# TYPE svcnet_ingress_upstream_connect_errors_total counter\n");
        let services: Vec<((String, String), Arc<ServiceMetrics>)> = {
            let map = self.services.lock().unwrap_or_else(|p| p.into_inner());
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        for ((ns, svc), m) in &services {
            let _ = writeln!(
                out,
                "svcnet_ingress_upstream_connect_errors_total{{namespace=\"{}\",service=\"{}\"}} {}",
                esc(ns),
                esc(svc),
                m.connect_errors.load(Relaxed)
            );
        }
        out.push_str(
            "# HELP svcnet_ingress_upstream_errors_total Failures with endpoints, by Service and reason (connect, timeout, reset).\n",
        );
        out.push_str("# TYPE svcnet_ingress_upstream_errors_total counter\n");
        for ((ns, svc), m) in &services {
            for (reason, c) in [("connect", &m.connect_errors), ("timeout", &m.timeouts), ("reset", &m.resets)] {
                let _ = writeln!(
                    out,
                    "svcnet_ingress_upstream_errors_total{{namespace=\"{}\",service=\"{}\",reason=\"{reason}\"}} {}",
                    esc(ns),
                    esc(svc),
                    c.load(Relaxed)
                );
            }
        }
        out.push_str("# HELP svcnet_ingress_config_reloads_total Route tables published.\n");
        out.push_str("# TYPE svcnet_ingress_config_reloads_total counter\n");
        let _ = writeln!(out, "svcnet_ingress_config_reloads_total {}", self.reloads.load(Relaxed));
        out.push_str("# HELP svcnet_ingress_config_last_reload_successful_timestamp_seconds When the last table was published.\n");
        out.push_str("# TYPE svcnet_ingress_config_last_reload_successful_timestamp_seconds gauge\n");
        let _ = writeln!(
            out,
            "svcnet_ingress_config_last_reload_successful_timestamp_seconds {}",
            self.last_reload_ok.load(Relaxed)
        );
        out.push_str("# HELP svcnet_ingress_connections_active Client connections open.\n");
        out.push_str("# TYPE svcnet_ingress_connections_active gauge\n");
        let _ = writeln!(out, "svcnet_ingress_connections_active {}", self.connections.load(Relaxed));
        out
    }
}

/// Label values escaped as the exposition format wants.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_status_classes_and_cumulative_buckets() {
        let m = Metrics::default();
        m.unmatched.observe(404, Duration::from_millis(2));
        m.unmatched.observe(200, Duration::from_millis(20));
        m.reloaded();
        let text = m.render();
        assert!(text.contains("status=\"4xx\"} 1"), "{text}");
        assert!(text.contains("status=\"2xx\"} 1"), "{text}");
        assert!(text.contains("le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("le=\"0.025\"} 2\n"), "{text}");
        assert!(text.contains("svcnet_ingress_config_reloads_total 1\n"), "{text}");
    }

    #[test]
    fn upstream_errors_are_rendered_per_service_and_reason() {
        let m = Metrics::default();
        let s = m.services.lock().unwrap().entry(("default".into(), "web".into())).or_default().clone();
        s.connect_errors.fetch_add(3, Relaxed);
        s.timeouts.fetch_add(2, Relaxed);
        s.resets.fetch_add(1, Relaxed);
        let text = m.render();
        for line in [
            "svcnet_ingress_upstream_connect_errors_total{namespace=\"default\",service=\"web\"} 3\n",
            "svcnet_ingress_upstream_errors_total{namespace=\"default\",service=\"web\",reason=\"connect\"} 3\n",
            "svcnet_ingress_upstream_errors_total{namespace=\"default\",service=\"web\",reason=\"timeout\"} 2\n",
            "svcnet_ingress_upstream_errors_total{namespace=\"default\",service=\"web\",reason=\"reset\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} not in {text}");
        }
    }
}
