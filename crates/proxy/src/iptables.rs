//! kube-proxy's iptables mode: Services as nat-table chains
//! (KUBE-SERVICES → KUBE-SVC/KUBE-EXT → KUBE-SEP; the layout is drawn in
//! `iptables/render.rs`), written with `iptables-restore --noflush` in the
//! node's namespace, changing only what changed.
//!
//! Start at [`IptablesProxy`]. The pieces:
//!
//! - `render`: the pure part, a [`Snapshot`] to a [`Ruleset`]
//!   (golden-tested against `iptables/golden/*.txt`; rules are written the
//!   way `iptables-save` prints them);
//! - `ruleset`: restores between rulesets: the delta from the last applied
//!   one, the reconcile from an `iptables-save`, the teardown;
//! - `conntrack`: UDP flows to flush when endpoints change, and the
//!   connection counts of `describe`;
//! - `exec`: every command runs through `ip netns exec <node>`.
//!
//! # Sync
//!
//! The proxy keeps the ruleset it last applied: fixed chains plus one
//! fragment per service port, shared with the next ruleset while the
//! service port is unchanged. A sync renders only the changed service
//! ports and restores only the chains whose rules differ (declaring a chain
//! flushes it). The long dispatch chains (KUBE-SERVICES, KUBE-NODEPORTS,
//! KUBE-EXTERNAL-SERVICES) are edited rule by rule (`-D` old, `-I` new) when
//! few rules changed. Chains of removed services are flushed and deleted
//! in the same transaction, after the rules that jumped to them are gone.
//!
//! Without a last ruleset (first sync, or after a failed one) it reads
//! `iptables-save` and rewrites every `KUBE-*` chain in one restore,
//! deleting stale ones and adding the jumps from the built-in chains that
//! are missing. Neither path touches conntrack, so established connections
//! keep their NAT; only UDP flows to endpoints that left are flushed.
//!
//! The node also needs a route to the service CIDR: a sandbox node has no
//! default route, and without one the node's own connections to a service
//! fail before nat OUTPUT can DNAT them, and pods' packets to an address
//! without endpoints die in routing (ICMP net unreachable) instead of
//! reaching the filter table's REJECT. The proxy adds `SERVICE_CIDR dev
//! <the node address's interface>`, as a default route would be in a real
//! cluster (packets that keep a service address are dropped before they
//! could leave). Not the pod bridge: pods' packets would then leave by the
//! interface they came in on, and the ICMP redirect the kernel sends for
//! that uses up the per-host ICMP budget the REJECT needs. A node without
//! its own interface gets the bridge anyway.
//!
//! A pod reaching itself through a service (hairpin) needs hairpin mode on
//! its bridge port, as kubelet's `hairpin-veth` sets it: br_netfilter DNATs
//! the frame and bridges it back out of the port it came in on.
//!
//! # Cost (10,000 Services × 10 endpoints, 430,000 rules)
//!
//! About 20 s from scratch and 26 s for a restart's reconcile (mostly
//! iptables-restore parsing and the kernel commit); 0.2–0.5 s for a change
//! to one Service. iptables-nft (1.8.9) keeps the chains a `--noflush`
//! restore names in a sorted linked list, which makes a restore declaring
//! 110,000 chains take minutes; a big restore starts with `-Z` (no chain:
//! "all chains"), which skips the list at the price of zeroing the tables'
//! packet counters. See `ruleset::zero_counters_pays`.

mod conntrack;
mod describe;
mod exec;
mod hash;
mod render;
mod ruleset;
mod save;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

pub use conntrack::Counts;
pub use hash::hash16;
pub use render::{ServiceChains, Targets, build, endpoint_chain, rebuild, render};
pub use ruleset::{DISPATCH, Fragment, JUMPS, Jump, Restore, Ruleset, Table, delta, reconcile, teardown};
pub use save::Saved;

use crate::model::Snapshot;
use crate::{DataPlane, NodeEnv, ProxyError, VirtualService};

/// What the last sync did, for logs and measurements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// A reconcile from `iptables-save` rather than a delta.
    pub full: bool,
    pub chains_written: usize,
    pub chains_deleted: usize,
    /// Dispatch-chain rules deleted or inserted one by one.
    pub rules_edited: usize,
    /// Size of the restore input.
    pub restore_bytes: usize,
    /// `conntrack -D` commands run.
    pub conntrack_flushes: usize,
    pub render: Duration,
    /// `iptables-save` (reconcile only) and `iptables-restore`.
    pub apply: Duration,
}

struct Applied {
    rules: Ruleset,
    node_ips: Vec<std::net::Ipv4Addr>,
}

/// The iptables data plane of one node.
pub struct IptablesProxy {
    env: NodeEnv,
    /// What the node has, as far as we know; `None` makes the next sync
    /// reconcile with `iptables-save`.
    applied: Option<Applied>,
    stats: SyncStats,
}

impl IptablesProxy {
    pub fn new(env: NodeEnv) -> IptablesProxy {
        IptablesProxy { env, applied: None, stats: SyncStats::default() }
    }

    pub fn env(&self) -> &NodeEnv {
        &self.env
    }

    /// What the last successful sync did.
    pub fn last_sync(&self) -> &SyncStats {
        &self.stats
    }

    /// Forgets what was applied, so the next sync reconciles with the
    /// node's actual rules (as after a restart).
    pub fn forget(&mut self) {
        self.applied = None;
    }

    async fn ensure_route(&self) -> Result<(), ProxyError> {
        ensure_service_route(&self.env).await
    }

    async fn flush_conntrack(&self, flushes: &[Vec<String>]) {
        for args in flushes {
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            match exec::run(&self.env.netns, "conntrack", &argv, None).await {
                Ok(out) if out.status.success() => {}
                // conntrack exits 1 when nothing matched.
                Ok(out) if String::from_utf8_lossy(&out.stderr).contains("0 flow entries") => {}
                Ok(out) => tracing::warn!(
                    netns = %self.env.netns,
                    args = %args.join(" "),
                    stderr = %String::from_utf8_lossy(&out.stderr).trim(),
                    "conntrack flush failed"
                ),
                Err(e) => tracing::warn!(netns = %self.env.netns, error = %e, "conntrack flush failed"),
            }
        }
    }
}

impl DataPlane for IptablesProxy {
    async fn sync(&mut self, snap: &Snapshot) -> Result<(), ProxyError> {
        // Taken out: if anything below fails, the next sync reconciles.
        let prev = self.applied.take();
        let started = Instant::now();
        let next = rebuild(snap, prev.as_ref().map(|p| &p.rules));
        let render = started.elapsed();
        let netns = self.env.netns.clone();

        let started = Instant::now();
        let (restore, full) = match &prev {
            Some(prev) => (delta(&prev.rules, &next), false),
            None => {
                self.ensure_route().await?;
                let saved = Saved::parse(&exec::save(&netns).await?);
                (Some(reconcile(&saved, &next)), true)
            }
        };
        if let Some(r) = &restore {
            exec::restore(&netns, &r.text).await?;
        }
        let apply = started.elapsed();

        // After a restart there is no previous snapshot to compare with:
        // flows from before it were NATed by the same rules and stay.
        let flushes = match &prev {
            Some(p) => {
                let before: Vec<_> = p.rules.service_ports().collect();
                conntrack::udp_flushes(&before, &snap.services.iter().collect::<Vec<_>>())
            }
            None => Vec::new(),
        };
        self.flush_conntrack(&flushes).await;

        let r = restore.unwrap_or_default();
        self.stats = SyncStats {
            full,
            chains_written: r.chains_written,
            chains_deleted: r.chains_deleted,
            rules_edited: r.rules_edited,
            restore_bytes: r.text.len(),
            conntrack_flushes: flushes.len(),
            render,
            apply,
        };
        tracing::debug!(netns = %netns, stats = ?self.stats, "iptables sync");
        self.applied = Some(Applied { rules: next, node_ips: snap.node_ips.clone() });
        Ok(())
    }

    async fn cleanup(&mut self) -> Result<(), ProxyError> {
        self.applied = None;
        let netns = self.env.netns.clone();
        let saved = Saved::parse(&exec::save(&netns).await?);
        if let Some(r) = teardown(&saved) {
            exec::restore(&netns, &r.text).await?;
        }
        if !self.env.service_cidr.is_empty() {
            let del = ["route", "del", self.env.service_cidr.as_str()];
            let out = exec::run(&netns, "ip", &del, None).await?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            // Already gone is fine.
            if !out.status.success() && !stderr.contains("No such process") {
                return Err(ProxyError::Command {
                    command: format!("ip {}", del.join(" ")),
                    stderr: stderr.trim().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Active and inactive counts come from one `conntrack -L` of the node
    /// (cost proportional to its conntrack table; empty if that fails).
    async fn describe(&self) -> Vec<VirtualService> {
        let Some(applied) = &self.applied else { return Vec::new() };
        let counts = match exec::run_ok(&self.env.netns, "conntrack", &["-L"], None).await {
            Ok(text) => Counts::parse(&text),
            Err(e) => {
                tracing::debug!(error = %e, "conntrack -L failed; describing without counts");
                Counts::default()
            }
        };
        let node_ips = if self.env.node_ips.is_empty() { &applied.node_ips } else { &self.env.node_ips };
        describe::virtual_services(applied.rules.service_ports(), node_ips, &counts)
    }
}

/// The interface holding `ip` in `ip -o -4 addr show` output
/// (`2: eth0    inet 172.18.0.2/24 brd ... scope global eth0\ ...`).
/// Routes the service CIDR out of the node's own interface (the one
/// holding its first address), else the pod bridge, so the node itself can
/// reach Services and rejects for addresses without endpoints are reached
/// (sandbox nodes have no default route). Every data plane needs it; the
/// runtime calls it before the first sync.
pub(crate) async fn ensure_service_route(env: &crate::NodeEnv) -> Result<(), ProxyError> {
    let netns = &env.netns;
    if env.service_cidr.is_empty() {
        return Ok(());
    }
    let mut dev = None;
    if let Some(node_ip) = env.node_ips.first() {
        let addrs = exec::run_ok(netns, "ip", &["-o", "-4", "addr", "show"], None).await?;
        dev = interface_with(&addrs, *node_ip);
    }
    let Some(dev) = dev.or_else(|| (!env.bridge.is_empty()).then(|| env.bridge.clone())) else {
        return Ok(());
    };
    exec::run_ok(netns, "ip", &["route", "replace", &env.service_cidr, "dev", &dev], None).await.map(drop)
}

fn interface_with(addrs: &str, ip: std::net::Ipv4Addr) -> Option<String> {
    let needle = format!("{ip}/");
    addrs.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let dev = words.nth(1)?;
        let inet = words.skip_while(|w| *w != "inet").nth(1)?;
        inet.starts_with(&needle).then(|| dev.split('@').next().unwrap_or(dev).to_string())
    })
}
