//! What the ruleset needs to know about the cluster besides its Services:
//! the pod and service CIDRs, parsed so that nothing unchecked reaches the
//! nft text.

use crate::NodeEnv;
use crate::model::Snapshot;

pub use crate::model::Cidr;

/// The cluster facts the table is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// The cluster's pod CIDR: traffic to a cluster IP from outside it is
    /// masqueraded, and traffic from inside it to an external address of
    /// an externalTrafficPolicy Local service is short-circuited to the
    /// cluster endpoints. Unknown: every cluster IP packet is masqueraded
    /// (always correct, loses the client address).
    pub cluster_cidr: Option<Cidr>,
    /// The service CIDR: new connections to an address in it that is no
    /// service are dropped. Unknown: no such rule.
    pub service_cidr: Option<Cidr>,
}

impl Facts {
    /// From the snapshot's CIDRs, falling back on the node's.
    pub fn of(snap: &Snapshot, env: Option<&NodeEnv>) -> Facts {
        let pick = |own: &str, fallback: Option<&str>| {
            [Some(own), fallback].into_iter().flatten().filter(|s| !s.trim().is_empty()).find_map(|s| match s.parse() {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring an unusable CIDR");
                    None
                }
            })
        };
        Facts {
            cluster_cidr: pick(&snap.cluster_cidr, env.map(|e| e.cluster_cidr.as_str())),
            service_cidr: pick(&snap.service_cidr, env.map(|e| e.service_cidr.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_lose_their_host_bits() {
        assert_eq!("10.244.1.7/16".parse::<Cidr>().map(|c| c.to_string()), Ok("10.244.0.0/16".to_string()));
        assert_eq!("10.96.0.0/12".parse::<Cidr>().map(|c| c.to_string()), Ok("10.96.0.0/12".to_string()));
        assert_eq!("1.2.3.4".parse::<Cidr>().map(|c| c.to_string()), Ok("1.2.3.4/32".to_string()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("10.0.0.0/x; drop".parse::<Cidr>().is_err());
        assert!("fd00::/8".parse::<Cidr>().is_err());
        let c: Cidr = "10.96.0.0/12".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(c.contains("10.111.1.1".parse().unwrap_or_else(|e| panic!("{e}"))));
        assert!(!c.contains("10.112.0.1".parse().unwrap_or_else(|e| panic!("{e}"))));
    }
}
