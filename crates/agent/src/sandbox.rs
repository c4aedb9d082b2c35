//! The sandbox cluster's nodes: a node network namespace shared by every
//! node, and one namespace per node, all named under one prefix so a
//! crashed run's leftovers can be found and removed.

use std::net::Ipv4Addr;

use crate::ipam::Ipv4Cidr;
use crate::net::{self, NetError, NodeNet};

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Every namespace this sandbox makes is called `<prefix>-...`.
    pub prefix: String,
    pub nodes: u32,
    /// Pod CIDRs are /24s out of this block: node `i` gets the `i`th.
    pub cluster_cidr: Ipv4Cidr,
    /// The node network; node `i` gets its `i+1`th address.
    pub node_cidr: Ipv4Cidr,
}

#[derive(Debug, Clone)]
pub struct SandboxNode {
    pub name: String,
    pub netns: String,
    pub ip: Ipv4Addr,
    pub pod_cidr: Ipv4Cidr,
}

pub fn fabric_name(prefix: &str) -> String {
    format!("{prefix}-net")
}

/// The nodes a configuration describes: `node1`..`nodeN`, as in the
/// documents svcnet follows (pods of node1 in 10.244.1.0/24, ...).
pub fn plan(cfg: &SandboxConfig) -> Result<Vec<SandboxNode>, String> {
    (1..=cfg.nodes)
        .map(|i| {
            let pod_cidr = cfg
                .cluster_cidr
                .subnet(24, i)
                .ok_or_else(|| format!("cluster CIDR {} has no room for node {i}'s /24", cfg.cluster_cidr))?;
            if u64::from(i) + 2 >= cfg.node_cidr.size() {
                return Err(format!("node CIDR {} has no room for node {i}", cfg.node_cidr));
            }
            Ok(SandboxNode {
                name: format!("node{i}"),
                netns: format!("{}-node{i}", cfg.prefix),
                ip: cfg.node_cidr.nth(i + 1),
                pod_cidr,
            })
        })
        .collect()
}

/// Removes what an earlier run under this prefix left, then builds the
/// node network and every node.
pub async fn create(cfg: &SandboxConfig) -> Result<Vec<SandboxNode>, NetError> {
    let nodes = plan(cfg).map_err(|e| NetError::Failed { command: "planning the sandbox".into(), stderr: e })?;
    let removed = destroy(&cfg.prefix).await?;
    if removed > 0 {
        tracing::info!(removed, prefix = %cfg.prefix, "removed network namespaces left by an earlier run");
    }
    let fabric = fabric_name(&cfg.prefix);
    net::create_fabric(&fabric).await?;
    for (i, n) in nodes.iter().enumerate() {
        let peers = nodes.iter().filter(|p| p.name != n.name).map(|p| (p.pod_cidr.to_string(), p.ip)).collect();
        let node = NodeNet {
            netns: n.netns.clone(),
            index: i as u32 + 1,
            node_ip: n.ip,
            node_prefix_len: cfg.node_cidr.prefix_len,
            gateway: n.pod_cidr.nth(1),
            pod_prefix_len: n.pod_cidr.prefix_len,
            peers,
        };
        net::create_node(Some(&fabric), &node).await?;
    }
    Ok(nodes)
}

/// Deletes every namespace under the prefix (pods, nodes, node network).
pub async fn destroy(prefix: &str) -> Result<usize, NetError> {
    net::cleanup(&format!("{prefix}-")).await
}

/// A short prefix that is the same for the same data directory, so the
/// next `svcnet up` on it finds what a crashed one left behind.
pub fn prefix_for(data_dir: &std::path::Path) -> String {
    let canonical = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    // FNV-1a: stable across builds and platforms.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in canonical.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("svcnet-{:06x}", h & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_get_the_documents_layout() {
        let cfg = SandboxConfig {
            prefix: "svcnet-abc123".into(),
            nodes: 2,
            cluster_cidr: Ipv4Cidr::parse("10.244.0.0/16").unwrap(),
            node_cidr: Ipv4Cidr::parse("172.18.0.0/24").unwrap(),
        };
        let nodes = plan(&cfg).unwrap();
        let got: Vec<(String, String, String, String)> =
            nodes.iter().map(|n| (n.name.clone(), n.netns.clone(), n.ip.to_string(), n.pod_cidr.to_string())).collect();
        assert_eq!(
            got,
            [
                ("node1".into(), "svcnet-abc123-node1".into(), "172.18.0.2".into(), "10.244.1.0/24".into()),
                ("node2".into(), "svcnet-abc123-node2".into(), "172.18.0.3".into(), "10.244.2.0/24".into()),
            ]
        );
    }

    #[test]
    fn too_many_nodes_for_the_cidrs_is_an_error() {
        let cfg = SandboxConfig {
            prefix: "p".into(),
            nodes: 3,
            cluster_cidr: Ipv4Cidr::parse("10.244.0.0/23").unwrap(),
            node_cidr: Ipv4Cidr::parse("172.18.0.0/24").unwrap(),
        };
        assert!(plan(&cfg).unwrap_err().contains("no room for node 2"));
    }

    #[test]
    fn the_prefix_is_stable_per_directory() {
        let a = prefix_for(std::path::Path::new("/tmp/a"));
        assert_eq!(a, prefix_for(std::path::Path::new("/tmp/a")));
        assert_ne!(a, prefix_for(std::path::Path::new("/tmp/b")));
        assert_eq!(a.len(), "svcnet-".len() + 6);
    }
}
