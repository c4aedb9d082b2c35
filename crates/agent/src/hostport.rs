//! `hostPort`: traffic to a node address on a pod's host port is
//! forwarded to the pod, as the CNI portmap plugin does, by an nftables
//! table in the node's network namespace (`svcnet-hostports`), rewritten
//! whole in one transaction whenever the set of mappings changes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

pub const TABLE: &str = "svcnet-hostports";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mapping {
    pub protocol: String,
    /// Only this node address, when the pod set `hostIP`.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub pod_ip: Ipv4Addr,
    pub container_port: u16,
    /// `namespace/pod`, for the rule's comment.
    pub owner: String,
}

/// The mappings a pod asks for.
pub fn mappings(pod: &k8s_openapi::api::core::v1::Pod, pod_ip: Ipv4Addr) -> Vec<Mapping> {
    let owner = format!("{}/{}", crate::pod::spec::namespace(pod), crate::pod::spec::name(pod));
    let spec = crate::pod::spec::spec(pod);
    if spec.host_network.unwrap_or(false) {
        return Vec::new();
    }
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let host_port = u16::try_from(p.host_port?).ok().filter(|p| *p > 0)?;
            Some(Mapping {
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()).to_ascii_lowercase(),
                host_ip: p.host_ip.as_deref().and_then(|h| h.parse().ok()).filter(|h: &Ipv4Addr| !h.is_unspecified()),
                host_port,
                pod_ip,
                container_port: u16::try_from(p.container_port).ok()?,
                owner: owner.clone(),
            })
        })
        .collect()
}

/// The whole table for a set of mappings, as one `nft -f` transaction that
/// replaces any previous version.
pub fn ruleset(maps: &[Mapping], pod_cidr: &str) -> String {
    let mut rules = String::new();
    for m in maps {
        let dst = match m.host_ip {
            Some(ip) => format!("ip daddr {ip}"),
            None => "fib daddr type local".to_string(),
        };
        rules.push_str(&format!(
            "    {dst} {} dport {} dnat to {}:{} comment \"{} hostPort {}\"\n",
            m.protocol, m.host_port, m.pod_ip, m.container_port, m.owner, m.host_port
        ));
    }
    format!(
        "table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n  chain hostports {{\n{rules}  }}\n  \
         chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    jump hostports\n  }}\n  \
         chain output {{\n    type nat hook output priority -100; policy accept;\n    jump hostports\n  }}\n  \
         chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
         ip saddr {pod_cidr} ct status dnat ip daddr {pod_cidr} masquerade comment \"hairpin to a hostPort\"\n  }}\n}}\n"
    )
}

/// The host ports of one node.
#[derive(Default)]
pub struct HostPorts {
    by_pod: BTreeMap<String, Vec<Mapping>>,
    applied: Option<String>,
}

impl HostPorts {
    /// Sets (or with an empty list, clears) a pod's mappings; true when the
    /// table must be rewritten.
    pub fn set(&mut self, uid: &str, maps: Vec<Mapping>) -> bool {
        let changed = if maps.is_empty() {
            self.by_pod.remove(uid).is_some()
        } else {
            self.by_pod.insert(uid.to_string(), maps.clone()) != Some(maps)
        };
        changed || self.applied.is_none() && !self.by_pod.is_empty()
    }

    pub fn render(&self, pod_cidr: &str) -> String {
        let mut all: Vec<Mapping> = self.by_pod.values().flatten().cloned().collect();
        all.sort();
        ruleset(&all, pod_cidr)
    }

    /// Writes the table into the node namespace if it differs from what was
    /// applied last.
    pub async fn apply(&mut self, netns: &str, pod_cidr: &str) -> Result<(), String> {
        let text = self.render(pod_cidr);
        if self.applied.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        let mut child = tokio::process::Command::new("ip")
            .args(["netns", "exec", netns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("running nft: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(text.as_bytes()).await.map_err(|e| format!("writing to nft: {e}"))?;
        }
        let out = child.wait_with_output().await.map_err(|e| format!("running nft: {e}"))?;
        if !out.status.success() {
            return Err(format!("nft refused the hostPort table: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        self.applied = Some(text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_host_ports_become_dnat_rules_with_comments() {
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "dev"},
            "spec": {"containers": [{"name": "c", "ports": [
                {"containerPort": 80, "hostPort": 8080},
                {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "172.18.0.2"},
                {"containerPort": 9090}
            ]}]}
        }))
        .unwrap();
        let maps = mappings(&pod, "10.244.1.5".parse().unwrap());
        assert_eq!(maps.len(), 2);
        let text = ruleset(&maps, "10.244.1.0/24");
        assert!(
            text.contains(
                "fib daddr type local tcp dport 8080 dnat to 10.244.1.5:80 comment \"dev/web hostPort 8080\""
            ),
            "{text}"
        );
        assert!(text.contains("ip daddr 172.18.0.2 udp dport 5353 dnat to 10.244.1.5:53"), "{text}");
        assert!(text.starts_with("table ip svcnet-hostports\ndelete table ip svcnet-hostports\n"));
    }

    #[test]
    fn only_changes_ask_for_a_rewrite() {
        let m = Mapping {
            protocol: "tcp".into(),
            host_ip: None,
            host_port: 80,
            pod_ip: "10.244.1.2".parse().unwrap(),
            container_port: 80,
            owner: "a/b".into(),
        };
        let mut h = HostPorts::default();
        assert!(!h.set("u0", vec![]));
        assert!(h.set("u1", vec![m.clone()]));
        h.applied = Some(h.render("10.244.1.0/24"));
        assert!(!h.set("u1", vec![m]));
        assert!(h.set("u1", vec![]));
    }
}
