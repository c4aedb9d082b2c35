//! The nftables data plane: kube-proxy's nftables mode, one table `ip
//! svcnet` in the node's namespace, changed by one `nft -f -` transaction
//! per sync that carries only what changed.
//!
//! Start at [`table`] for the table's layout and at [`service`] for what one
//! service port adds. In short:
//!
//! ```text
//! nat-prerouting / nat-output ─► services
//!   ip daddr @cluster-ips ip saddr != <pod CIDR>  → mark for masquerade
//!   ip daddr . l4proto . dport vmap @service-ips ─┐   (cluster, external, LB IPs)
//!   fib daddr local: l4proto . dport vmap @service-nodeports ─┐
//!                                                 ▼           ▼
//!      lb-N[-masq]: dnat to (daddr . l4proto . dport . numgen random mod N) map @endpoints
//!      nodeport-lb-N[-masq]: dnat to (l4proto . dport . numgen random mod N) map @nodeport-endpoints
//!      external-<svc> / nodeport-<svc> (externalTrafficPolicy Local: short-circuit
//!        pods and the node to the cluster endpoints, others to local endpoints)
//!      service-<svc> → endpoint-<svc>__<ip>/<port> (ClientIP affinity: per-endpoint
//!        chains and `dynamic,timeout` sets)
//! nat-postrouting: hairpin (@hairpin) and marked packets → masquerade
//! filter-prerouting / filter-output (after DNAT, ct state new):
//!   @no-endpoint-services / @no-endpoint-nodeports → reject (TCP reset) or drop,
//!   other ports of a cluster IP → reject, the rest of the service CIDR → drop
//! ```
//!
//! Why shared `lb-N` chains rather than kube-proxy's chain per service and
//! per endpoint: the kernel binds every rule that names a map to that map,
//! and both anonymous `vmap { … }`s and named sets referenced from thousands
//! of rules make a from-scratch load quadratic (10,000 services took 23 s
//! to 250 s in nft 1.0.6 / Linux 6.18). One rule per distinct endpoint count
//! names the big maps instead, so the table grows by elements only.

mod conntrack;
mod exec;
mod facts;
mod netlink;
mod service;
mod table;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

pub use facts::{Cidr, Facts};
pub use table::{BASE_CHAINS, Existing, Map, Ruleset, Update, render, render_replace};

use crate::model::{Protocol, ServicePort, Snapshot};
use crate::{DataPlane, NodeEnv, ProxyError, VirtualService};

/// The table's name (family `ip`).
pub const TABLE: &str = "svcnet";

/// The packet mark bit asking `nat-postrouting` to masquerade, kube-proxy's.
pub const MASQ_MARK: u32 = 0x4000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sctp {
    Unknown,
    Supported,
    /// nft refused a transaction with SCTP service ports and accepted it
    /// without them: they are left out from then on.
    Refused,
}

/// How the last sync reached the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// Nothing had changed.
    Unchanged,
    /// One `nft -f` transaction with the changes.
    Delta,
    /// A previous run's table, replaced in one `nft -f` transaction.
    Replace,
    /// No table yet: created by `nft -f`, its slot maps filled by one
    /// netlink batch (`netlink`), or by nft when that failed.
    Create { netlink: bool },
}

/// The nftables data plane of one node.
pub struct NftProxy {
    env: NodeEnv,
    /// What the kernel should hold; `None` before the first sync.
    ruleset: Option<Ruleset>,
    /// The kernel holds `ruleset` (false at start and after a failed sync:
    /// the next sync replaces the whole table).
    in_sync: bool,
    sctp: Sctp,
    /// UDP service ports as applied, to find stale conntrack entries.
    applied_udp: HashMap<String, ServicePort>,
    last: Option<SyncKind>,
}

impl NftProxy {
    pub fn new(env: NodeEnv) -> NftProxy {
        NftProxy { env, ruleset: None, in_sync: false, sctp: Sctp::Unknown, applied_udp: HashMap::new(), last: None }
    }

    /// How the last successful sync was applied.
    pub fn last_sync(&self) -> Option<SyncKind> {
        self.last
    }

    async fn nft(&self, args: &[&str], stdin: Option<String>) -> Result<exec::Output, ProxyError> {
        exec::run(&self.env, "nft", args, stdin).await
    }

    /// Applies one transaction.
    async fn apply(&self, transaction: String) -> Result<(), ProxyError> {
        let out = self.nft(&["-f", "-"], Some(transaction)).await?;
        if out.success {
            return Ok(());
        }
        Err(ProxyError::Command { command: "nft -f -".into(), stderr: exec::shorten(&out.stderr, 4000) })
    }

    /// The objects of a table a previous run left, if any.
    async fn existing(&self) -> Result<Existing, ProxyError> {
        let out = self.nft(&["-t", "list", "table", "ip", TABLE], None).await?;
        if out.success {
            return Ok(Existing::parse(&out.stdout));
        }
        if out.stderr.contains("No such file or directory") {
            return Ok(Existing::default());
        }
        Err(ProxyError::Command {
            command: format!("nft -t list table ip {TABLE}"),
            stderr: exec::shorten(&out.stderr, 2000),
        })
    }

    /// Brings the kernel to `snap`: the changes since the last sync, or,
    /// when the kernel's state is not known, the whole table.
    async fn program(&mut self, snap: &Snapshot, facts: Facts) -> Result<(), ProxyError> {
        if !self.ruleset.as_ref().is_some_and(|r| *r.facts() == facts) {
            self.ruleset = Some(Ruleset::new(facts));
            self.in_sync = false;
        }
        let Some(ruleset) = self.ruleset.as_mut() else { return Ok(()) };
        if self.in_sync {
            let transaction = ruleset.update(snap).transaction;
            if transaction.is_empty() {
                self.last = Some(SyncKind::Unchanged);
                return Ok(());
            }
            self.in_sync = false;
            self.apply(transaction).await?;
            self.in_sync = true;
            self.last = Some(SyncKind::Delta);
            return Ok(());
        }
        ruleset.load(snap);
        let existing = self.existing().await?;
        let Some(ruleset) = self.ruleset.as_ref() else { return Ok(()) };
        if existing != Existing::default() {
            // A previous run's table: replaced in one transaction, so that
            // no new connection finds it half-built.
            self.apply(render_replace(ruleset, &existing)).await?;
            self.in_sync = true;
            self.last = Some(SyncKind::Replace);
            return Ok(());
        }
        // A first start: the table, then the slot maps' elements in one
        // netlink batch (the bulk of the work, three times faster than
        // through nft). Until the batch lands, services are rejected, as
        // they were a moment before, when there was no table at all.
        self.apply(ruleset.render_table(false)).await?;
        let batch = ruleset.slot_batch();
        let mut by_netlink = true;
        if !batch.is_empty() {
            if let Err(e) = netlink::apply(&self.env, batch).await {
                tracing::warn!(error = %e, "loading the slot maps over netlink failed; using nft");
                self.apply(ruleset.render_slot_elements()).await?;
                by_netlink = false;
            }
        }
        self.in_sync = true;
        self.last = Some(SyncKind::Create { netlink: by_netlink });
        Ok(())
    }

    async fn delete_stale_udp_flows(&self, deletions: Vec<conntrack::Deletion>) {
        for args in deletions {
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            match exec::run(&self.env, "conntrack", &argv, None).await {
                Ok(out) if conntrack::deletion_ok(out.success, &out.stderr) => {
                    tracing::debug!(args = ?args, "deleted stale UDP flows");
                }
                Ok(out) => tracing::warn!(args = ?args, stderr = %out.stderr.trim(), "conntrack -D failed"),
                Err(e) => tracing::warn!(error = %e, "conntrack -D failed"),
            }
        }
    }
}

fn without_sctp(snap: &Snapshot) -> Snapshot {
    Snapshot {
        services: snap.services.iter().filter(|s| s.protocol != Protocol::Sctp).cloned().collect(),
        ..snap.clone()
    }
}

impl DataPlane for NftProxy {
    async fn sync(&mut self, snap: &Snapshot) -> Result<(), ProxyError> {
        let facts = Facts::of(snap, Some(&self.env));
        let has_sctp = snap.services.iter().any(|s| s.protocol == Protocol::Sctp);
        let filtered;
        let snap = if has_sctp && self.sctp == Sctp::Refused {
            filtered = without_sctp(snap);
            &filtered
        } else {
            snap
        };
        let deletions = conntrack::udp_deletions(&self.applied_udp, &snap.services);
        if let Err(e) = self.program(snap, facts).await {
            if !(has_sctp && self.sctp == Sctp::Unknown) {
                return Err(e);
            }
            // Most kernels take SCTP as any other protocol number; if this
            // one does not, serve everything else.
            let without = without_sctp(snap);
            self.ruleset = None;
            self.program(&without, facts).await.map_err(|_| e)?;
            let skipped = snap.services.len() - without.services.len();
            tracing::error!(skipped, "nft refused the SCTP service ports; they are not programmed on this node");
            self.sctp = Sctp::Refused;
            self.applied_udp =
                without.services.iter().filter(|s| s.protocol == Protocol::Udp).map(|s| (s.id(), s.clone())).collect();
            self.delete_stale_udp_flows(deletions).await;
            return Ok(());
        }
        if has_sctp && self.sctp == Sctp::Unknown {
            self.sctp = Sctp::Supported;
        }
        self.applied_udp =
            snap.services.iter().filter(|s| s.protocol == Protocol::Udp).map(|s| (s.id(), s.clone())).collect();
        self.delete_stale_udp_flows(deletions).await;
        Ok(())
    }

    async fn cleanup(&mut self) -> Result<(), ProxyError> {
        self.ruleset = None;
        self.in_sync = false;
        self.applied_udp.clear();
        let out = self.nft(&["delete", "table", "ip", TABLE], None).await?;
        if out.success || out.stderr.contains("No such file or directory") {
            return Ok(());
        }
        Err(ProxyError::Command {
            command: format!("nft delete table ip {TABLE}"),
            stderr: exec::shorten(&out.stderr, 2000),
        })
    }

    async fn describe(&self) -> Vec<VirtualService> {
        let Some(ruleset) = self.ruleset.as_ref() else { return Vec::new() };
        // One listing for every address; the table is small next to what
        // a busy node's conntrack holds only when it is idle.
        let flows = match exec::run(&self.env, "conntrack", &["-L"], None).await {
            Ok(out) if out.success => conntrack::parse_flows(&out.stdout),
            Ok(out) => {
                tracing::debug!(stderr = %out.stderr.trim(), "conntrack -L failed; describing without counts");
                Vec::new()
            }
            Err(e) => {
                tracing::debug!(error = %e, "conntrack -L failed; describing without counts");
                Vec::new()
            }
        };
        conntrack::describe(ruleset.services(), &self.env.node_ips, &flows)
    }
}
