//! [`DnsConfig`]: every setting of the DNS server, with safe defaults.
//!
//! | field | default | meaning |
//! | --- | --- | --- |
//! | `listen` | `0.0.0.0:53` | UDP and TCP address (port 0 picks a free port for both) |
//! | `cluster_domain` | `cluster.local` | the zone served (`--cluster-domain`) |
//! | `ttl` | 5 s | TTL of every record, and the SOA minimum that bounds negative caching |
//! | `upstreams` | `None` = the `nameserver`s of `/etc/resolv.conf` | resolvers for names outside the zone; empty: refuse them |
//! | `pods` | `insecure` | `a-b-c-d.ns.pod.zone` records: `disabled`, `insecure` (kubeadm's Corefile) or `verified` (CoreDNS's own default is `disabled`) |
//! | `metrics` | `0.0.0.0:9153` | Prometheus `/metrics`, `/health`, `/ready`; `None` turns it off |
//! | `udp_workers` | one per core | threads, each with its own `SO_REUSEPORT` socket |
//! | `max_udp_payload` | 1232 | our EDNS payload size and the cap on UDP answers (DNS flag day 2020) |
//! | `cache_capacity` | 10 000 | upstream answers cached (RFC 2308 TTLs) |
//! | `cache_max_ttl` / `cache_max_negative_ttl` | 3600 s / 1800 s | caps on cached TTLs, as CoreDNS's cache |
//! | `upstream_timeout` | 2 s | per attempt; each upstream is tried twice |
//! | `max_concurrent_forwards` | 1000 | beyond it, forwarded questions get REFUSED (CoreDNS's `max_concurrent`) |
//! | `max_tcp_connections`, `tcp_idle_timeout` | 1024, 10 s | |

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use crate::name::{Name, NameError};
use crate::view::{PodsMode, ZoneConfig};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid cluster domain {domain:?}")]
    Domain {
        domain: String,
        #[source]
        source: NameError,
    },
    #[error("the cluster domain cannot be the root")]
    RootDomain,
}

#[derive(Clone, Debug)]
pub struct DnsConfig {
    pub listen: SocketAddr,
    pub cluster_domain: String,
    pub ttl: u32,
    pub upstreams: Option<Vec<SocketAddr>>,
    pub pods: PodsMode,
    pub metrics: Option<SocketAddr>,
    pub udp_workers: usize,
    pub max_udp_payload: u16,
    pub cache_capacity: usize,
    pub cache_max_ttl: Duration,
    pub cache_max_negative_ttl: Duration,
    pub upstream_timeout: Duration,
    pub max_concurrent_forwards: usize,
    pub max_tcp_connections: usize,
    pub tcp_idle_timeout: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 53)),
            cluster_domain: "cluster.local".to_string(),
            ttl: 5,
            upstreams: None,
            pods: PodsMode::Insecure,
            metrics: Some(SocketAddr::from(([0, 0, 0, 0], 9153))),
            udp_workers: 0,
            max_udp_payload: 1232,
            cache_capacity: 10_000,
            cache_max_ttl: Duration::from_secs(3600),
            cache_max_negative_ttl: Duration::from_secs(1800),
            upstream_timeout: Duration::from_secs(2),
            max_concurrent_forwards: 1000,
            max_tcp_connections: 1024,
            tcp_idle_timeout: Duration::from_secs(10),
        }
    }
}

impl DnsConfig {
    /// A configuration for tests: 127.0.0.1 on a free port, no metrics
    /// listener, no upstreams, two workers.
    pub fn local() -> DnsConfig {
        DnsConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            upstreams: Some(Vec::new()),
            metrics: None,
            udp_workers: 2,
            ..DnsConfig::default()
        }
    }

    pub fn zone_config(&self) -> Result<ZoneConfig, ConfigError> {
        let zone = Name::parse(&self.cluster_domain)
            .map_err(|source| ConfigError::Domain { domain: self.cluster_domain.clone(), source })?;
        if zone.is_root() {
            return Err(ConfigError::RootDomain);
        }
        Ok(ZoneConfig { zone, ttl: self.ttl, pods: self.pods })
    }

    /// The upstream resolvers: as configured, or from `/etc/resolv.conf`.
    pub fn resolved_upstreams(&self) -> Vec<SocketAddr> {
        match &self.upstreams {
            Some(u) => u.clone(),
            None => std::fs::read_to_string(Path::new("/etc/resolv.conf"))
                .map(|text| nameservers(&text))
                .unwrap_or_default(),
        }
    }

    pub fn workers(&self) -> usize {
        if self.udp_workers > 0 {
            self.udp_workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

/// The `nameserver` addresses of a resolv.conf, on port 53.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten()
        })
        // A link-local IPv6 address may carry a zone (`fe80::1%eth0`);
        // without its scope it is unusable, so such lines are skipped.
        .filter_map(|addr| addr.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_are_read_from_resolv_conf() {
        let text = "# comment\nsearch default.svc.cluster.local\nnameserver 10.96.0.10\nnameserver ::1\nnameserver fe80::1%eth0\noptions ndots:5\n";
        assert_eq!(nameservers(text), vec!["10.96.0.10:53".parse().unwrap(), "[::1]:53".parse().unwrap()]);
    }

    #[test]
    fn the_cluster_domain_must_be_a_name_below_the_root() {
        let mut c = DnsConfig::default();
        assert_eq!(c.zone_config().unwrap().zone.to_string(), "cluster.local.");
        c.cluster_domain = ".".into();
        assert!(matches!(c.zone_config(), Err(ConfigError::RootDomain)));
        c.cluster_domain = "a..b".into();
        assert!(matches!(c.zone_config(), Err(ConfigError::Domain { .. })));
    }
}
