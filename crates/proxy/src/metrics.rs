//! kube-proxy's metrics, by kube-proxy's names, and its `/healthz`.

use std::sync::Mutex;
use std::time::Duration;

/// A Prometheus histogram with fixed buckets.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram { bounds, counts: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    fn observe(&mut self, v: f64) {
        for (i, b) in self.bounds.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            out.push_str(&format!("{name}_bucket{{le=\"{b}\"}} {c}\n"));
        }
        out.push_str(&format!(
            "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}\n",
            self.count, self.sum, self.count
        ));
    }
}

/// kube-proxy's buckets: exponential from 1 ms.
const SYNC_BUCKETS: &[f64] =
    &[0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384];
const PROGRAMMING_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0];

#[derive(Debug)]
struct Inner {
    sync: Histogram,
    programming: Histogram,
    last_sync: Option<jiff::Timestamp>,
    last_queued: Option<jiff::Timestamp>,
    syncs_failed: u64,
    services: usize,
    endpoints: usize,
}

/// The proxy's metrics.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    mode: &'static str,
}

impl Metrics {
    pub fn new(mode: &'static str) -> Self {
        Metrics {
            inner: Mutex::new(Inner {
                sync: Histogram::new(SYNC_BUCKETS),
                programming: Histogram::new(PROGRAMMING_BUCKETS),
                last_sync: None,
                last_queued: None,
                syncs_failed: 0,
                services: 0,
                endpoints: 0,
            }),
            mode,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A change arrived that a sync must pick up.
    pub fn queued(&self) {
        let mut i = self.lock();
        if i.last_queued.is_none() {
            i.last_queued = Some(jiff::Timestamp::now());
        }
    }

    /// A sync finished: how long the rules took, and for each change it
    /// carried, how long from the change to now.
    pub fn synced(
        &self,
        took: Duration,
        ok: bool,
        changes_seen: &[jiff::Timestamp],
        services: usize,
        endpoints: usize,
    ) {
        let now = jiff::Timestamp::now();
        let mut i = self.lock();
        i.sync.observe(took.as_secs_f64());
        if ok {
            i.last_sync = Some(now);
            i.last_queued = None;
            for t in changes_seen {
                let d = now.duration_since(*t).as_secs_f64().max(0.0);
                i.programming.observe(d);
            }
        } else {
            i.syncs_failed += 1;
        }
        i.services = services;
        i.endpoints = endpoints;
    }

    /// `/healthz`: healthy unless a change has waited more than `grace`
    /// for a sync (kube-proxy's healthz semantics).
    pub fn healthz(&self, grace: Duration) -> (bool, String) {
        let i = self.lock();
        let now = jiff::Timestamp::now();
        let stale = i.last_queued.is_some_and(|q| now.duration_since(q).as_secs_f64() > grace.as_secs_f64());
        let healthy = i.last_sync.is_some() && !stale;
        let last = i.last_sync.map(|t| t.to_string()).unwrap_or_default();
        (
            healthy,
            serde_json::json!({ "lastUpdated": last, "currentTime": now.to_string(), "nodeEligible": true })
                .to_string(),
        )
    }

    pub fn render(&self) -> String {
        let i = self.lock();
        let mut out = String::new();
        i.sync.render("kubeproxy_sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds", &mut out);
        i.programming.render(
            "kubeproxy_network_programming_duration_seconds",
            "In Cluster Network Programming Latency in seconds",
            &mut out,
        );
        let last = i.last_sync.map(|t| t.as_millisecond() as f64 / 1000.0).unwrap_or(0.0);
        out.push_str("# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds The last time proxy rules were successfully synced\n");
        out.push_str(&format!("# TYPE kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge\nkubeproxy_sync_proxy_rules_last_timestamp_seconds {last}\n"));
        out.push_str("# HELP kubeproxy_sync_proxy_rules_iptables_restore_failures_total Cumulative proxy rules restore failures\n");
        out.push_str(&format!("# TYPE kubeproxy_sync_proxy_rules_iptables_restore_failures_total counter\nkubeproxy_sync_proxy_rules_iptables_restore_failures_total {}\n", i.syncs_failed));
        out.push_str("# HELP svcnet_proxy_service_ports Service ports programmed\n");
        out.push_str(&format!(
            "# TYPE svcnet_proxy_service_ports gauge\nsvcnet_proxy_service_ports{{mode=\"{}\"}} {}\n",
            self.mode, i.services
        ));
        out.push_str("# HELP svcnet_proxy_endpoints Endpoints known across programmed service ports\n");
        out.push_str(&format!(
            "# TYPE svcnet_proxy_endpoints gauge\nsvcnet_proxy_endpoints{{mode=\"{}\"}} {}\n",
            self.mode, i.endpoints
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_named_as_kube_proxy() {
        let m = Metrics::new("nftables");
        m.queued();
        m.synced(Duration::from_millis(3), true, &[jiff::Timestamp::now()], 2, 5);
        let text = m.render();
        assert!(text.contains("kubeproxy_sync_proxy_rules_duration_seconds_bucket{le=\"0.002\"} 0\n"), "{text}");
        assert!(text.contains("kubeproxy_sync_proxy_rules_duration_seconds_bucket{le=\"0.004\"} 1\n"), "{text}");
        assert!(text.contains("kubeproxy_sync_proxy_rules_duration_seconds_count 1\n"));
        assert!(text.contains("kubeproxy_network_programming_duration_seconds_count 1\n"));
        assert!(text.contains("svcnet_proxy_service_ports{mode=\"nftables\"} 2\n"));
        assert!(m.healthz(Duration::from_secs(60)).0);
    }

    #[test]
    fn unhealthy_before_the_first_sync_and_when_a_change_waits_too_long() {
        let m = Metrics::new("iptables");
        assert!(!m.healthz(Duration::from_secs(60)).0);
        m.synced(Duration::from_millis(1), true, &[], 0, 0);
        m.queued();
        assert!(!m.healthz(Duration::ZERO).0);
        assert!(m.healthz(Duration::from_secs(60)).0);
    }
}
