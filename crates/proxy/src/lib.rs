//! svcnet's service proxy: kube-proxy's job for one node. It watches
//! Services and EndpointSlices, builds a [`model::Snapshot`] of what the
//! node must do, and hands it to one of three data planes, each in the
//! node's network namespace:
//!
//! - `nft`: one nftables table, updated in one transaction per sync, with
//!   verdict maps so lookups do not grow with the number of Services;
//! - `iptables`: kube-proxy's classic chains through `iptables-restore`;
//! - `userspace`: a Tokio L4 proxy per service port, reached through
//!   nftables redirects.

mod build;
pub use build::{NodeFacts, snapshot};
pub mod iptables;
mod listeners;
pub use listeners::relay_to_host;
mod metrics;
pub mod model;
pub mod nft;
mod runtime;
pub mod userspace;
pub use runtime::{LogSink, Mode, Proxy, ProxyConfig};

use std::future::Future;
use std::net::Ipv4Addr;

use svcnet_netns::NetnsSockets;

/// The Node label naming its zone; EndpointSlice zone hints refer to it.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The node a data plane programs.
#[derive(Clone)]
pub struct NodeEnv {
    pub node_name: String,
    /// The node's network namespace (`ip netns` name).
    pub netns: String,
    /// Sockets inside that namespace.
    pub sockets: NetnsSockets,
    pub node_ips: Vec<Ipv4Addr>,
    /// This node's pod CIDR (10.244.1.0/24) and its bridge (`cni0`).
    pub pod_cidr: String,
    pub bridge: String,
    /// The cluster's pod CIDR (10.244.0.0/16) and service CIDR (10.96.0.0/12).
    pub cluster_cidr: String,
    pub service_cidr: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("running {command}: {source}")]
    Spawn { command: String, source: std::io::Error },
    #[error("{command} failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("{0}")]
    Other(String),
}

/// What a node has programmed for one service address, for `svcnet proxy
/// list` (read like `ipvsadm -Ln`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VirtualService {
    /// `namespace/name:port`.
    pub service: String,
    pub protocol: String,
    /// `10.96.0.10:53`, `172.18.0.2:30080`, ...
    pub address: String,
    /// `random`, `rr` (round-robin), `lc` (least connections).
    pub scheduler: String,
    /// `persistent 10800` with ClientIP affinity.
    pub flags: String,
    pub endpoints: Vec<RealServer>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RealServer {
    /// `10.244.1.5:80`.
    pub address: String,
    pub weight: u32,
    pub active: u64,
    pub inactive: u64,
}

/// A way of making a node match a snapshot.
pub trait DataPlane: Send + 'static {
    /// Makes the node match `snap`, changing only what differs from the
    /// last successful sync (the first sync, or one after a failure,
    /// reconciles with whatever the node already has, without breaking
    /// established connections).
    fn sync(&mut self, snap: &model::Snapshot) -> impl Future<Output = Result<(), ProxyError>> + Send;

    /// Removes everything this data plane programmed.
    fn cleanup(&mut self) -> impl Future<Output = Result<(), ProxyError>> + Send;

    /// What is programmed now, one entry per service address.
    fn describe(&self) -> impl Future<Output = Vec<VirtualService>> + Send;
}

/// `ipvsadm -Ln`'s layout for what a node has programmed.
pub fn render_list(services: &[VirtualService]) -> String {
    let mut out = String::from(
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    );
    for s in services {
        let head = format!("{} {} {} {}", s.protocol.to_uppercase(), s.address, s.scheduler, s.flags);
        out.push_str(&format!("{:<50} # {}\n", head.trim_end(), s.service));
        for e in &s.endpoints {
            out.push_str(&format!("  -> {:<28} Masq    {:<6} {:<10} {}\n", e.address, e.weight, e.active, e.inactive));
        }
    }
    out
}

#[cfg(test)]
mod list_tests {
    use super::*;

    #[test]
    fn the_list_reads_like_ipvsadm() {
        let s = VirtualService {
            service: "dev/service-clusterip".into(),
            protocol: "tcp".into(),
            address: "10.97.97.97:80".into(),
            scheduler: "rr".into(),
            flags: String::new(),
            endpoints: vec![RealServer { address: "10.244.1.39:80".into(), weight: 1, active: 2, inactive: 0 }],
        };
        let text = render_list(&[s]);
        assert!(text.starts_with("Prot LocalAddress:Port Scheduler Flags\n"));
        assert!(text.contains("TCP 10.97.97.97:80 rr"), "{text}");
        assert!(text.contains("# dev/service-clusterip\n"), "{text}");
        assert!(text.contains("  -> 10.244.1.39:80               Masq    1      2          0\n"), "{text}");
    }
}
