//! The nftables data plane: kube-proxy's nftables mode, one table `ip
//! svcnet` in the node's namespace, changed by one transaction per sync
//! that carries only what changed.
//!
//! Start at `nft/table.rs` for the table's layout, at `nft/service.rs` for what one
//! service port adds, and at the golden files (`nft/golden/*.nft`) for
//! whole tables. In short:
//!
//! ```text
//! nat-prerouting / nat-output ─► services
//!   jump firewall-check: ip daddr . l4proto . dport vmap @firewall-ips (LB IPs of
//!     Services with loadBalancerSourceRanges) → firewall-<svc>: allowed sources
//!     return, the others are dropped, before any DNAT
//!   ip daddr @cluster-ips ip saddr != <pod CIDR>  → mark for masquerade
//!   ip daddr . l4proto . dport vmap @service-ips ─┐   (cluster, external, LB IPs)
//!   fib daddr local: l4proto . dport vmap @service-nodeports ─┐
//!                                                 ▼           ▼
//!   lb-tcp-N[-masq]:          dnat to (daddr . dport . numgen random mod N) map @endpoints-tcp
//!   nodeport-lb-tcp-N[-masq]: dnat to (dport . numgen random mod N) map @nodeport-endpoints-tcp
//!   external-<svc> / nodeport-<svc>: externalTrafficPolicy Local; pods and the node
//!     short-circuit to the cluster endpoints (internal-lb-*), others to the local ones
//!   service-<svc> → endpoint-<svc>__<ip>/<port>: ClientIP affinity, a chain and a
//!     `dynamic,timeout` set per endpoint
//! nat-postrouting: hairpin (@hairpin) and marked packets → masquerade fully-random
//! filter-prerouting / filter-output (after DNAT, ct state new):
//!   @no-endpoint-services / @no-endpoint-nodeports → reject (TCP reset) or drop,
//!   other ports of a cluster IP → reject, the rest of the service CIDR → drop
//! ```
//!
//! Why shared `lb-<proto>-N` chains rather than kube-proxy's chain per
//! service and per endpoint with an anonymous `numgen … vmap { … }`: the
//! kernel binds every rule naming a set to it, and both anonymous sets
//! (each bind walks the whole transaction) and named sets referenced from
//! thousands of rules (each element checked against every binding) make a
//! large load quadratic: 10,000 services took 23 s to 250 s on nft 1.0.6 /
//! Linux 6.18. Here one rule per distinct endpoint count names the big
//! maps, and the table grows by map elements only: a slot per endpoint,
//! keyed by the service address (or node port) and slot number.
//!
//! How a sync reaches the kernel ([`SyncKind`]): a change of map elements
//! only (endpoints coming and going) is one netlink batch on a socket that
//! stays open (`nft/netlink.rs`); anything else one `nft -f -` transaction. A
//! first start creates the table with nft and fills it with one netlink
//! batch; a restart finding a previous run's table replaces it in one nft
//! transaction (conntrack, and so established connections, untouched).
//!
//! The ruleset holds map elements as the bytes the kernel takes
//! (`nft/elem.rs`), once; nft text is written from them only for `nft -f`.
//!
//! Measured (release build, 2 vCPUs, `dataplane program` in
//! `benches/dataplane`, docs/benchmarks.md): 10,000 services × 10
//! endpoints from scratch in 0.5 s with 40 MiB of RSS; one endpoint
//! changing among them in about 4 ms.

mod conntrack;
mod elem;
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
    /// One transaction with the changes: a netlink batch when only map
    /// elements changed (`netlink`), else `nft -f`.
    Delta { netlink: bool },
    /// A previous run's table, replaced in one `nft -f` transaction.
    Replace,
    /// No table yet: created by `nft -f`, its elements added by one
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
    /// UDP service ports as applied, by id, to find stale conntrack
    /// entries.
    applied_udp: HashMap<String, ServicePort>,
    last: Option<SyncKind>,
    /// For element-only changes; opened at the first sync.
    netlink: Option<netlink::Socket>,
}

impl NftProxy {
    pub fn new(env: NodeEnv) -> NftProxy {
        NftProxy {
            env,
            ruleset: None,
            in_sync: false,
            sctp: Sctp::Unknown,
            applied_udp: HashMap::new(),
            last: None,
            netlink: None,
        }
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
        let out = self.nft(&["-t", "-f", "-"], Some(Existing::LISTING.to_string())).await?;
        if out.success {
            return Ok(Existing::parse(&out.stdout));
        }
        Err(ProxyError::Command { command: "nft -t -f - (list)".into(), stderr: exec::shorten(&out.stderr, 2000) })
    }

    /// Brings the kernel to `snap`: the changes since the last sync, or,
    /// when the kernel's state is not known, the whole table.
    /// Returns the service ports (ids) that changed.
    async fn program(&mut self, snap: &Snapshot, facts: Facts) -> Result<Vec<String>, ProxyError> {
        if !self.ruleset.as_ref().is_some_and(|r| *r.facts() == facts) {
            self.ruleset = Some(Ruleset::new(facts));
            self.in_sync = false;
        }
        if self.netlink.is_none() {
            match netlink::Socket::open(&self.env).await {
                Ok(s) => self.netlink = Some(s),
                Err(e) => tracing::warn!(error = %e, "no nf_tables netlink socket; every change goes through nft"),
            }
        }
        let Some(ruleset) = self.ruleset.as_mut() else { return Ok(Vec::new()) };
        if self.in_sync {
            let update = ruleset.update(snap);
            if update.transaction.is_empty() {
                self.last = Some(SyncKind::Unchanged);
                return Ok(update.changed);
            }
            self.in_sync = false;
            let by_netlink = match (update.elements_only, self.netlink.as_ref()) {
                (Some(batch), Some(socket)) => match socket.apply(batch).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "the netlink batch failed; trying nft");
                        false
                    }
                },
                _ => false,
            };
            if !by_netlink {
                self.apply(update.transaction).await?;
            }
            self.in_sync = true;
            self.last = Some(SyncKind::Delta { netlink: by_netlink });
            return Ok(update.changed);
        }
        let mut changed = ruleset.load(snap);
        // The kernel's state is not known: every UDP service port counts
        // as changed (from what was last applied).
        changed.extend(self.applied_udp.keys().cloned());
        changed.extend(ruleset.ids_of(Protocol::Udp).map(str::to_string));
        changed.sort();
        changed.dedup();
        let existing = self.existing().await?;
        let Some(ruleset) = self.ruleset.as_ref() else { return Ok(changed) };
        if existing != Existing::default() {
            // A previous run's table: replaced in one transaction, so that
            // no new connection finds it half-built.
            self.apply(render_replace(ruleset, &existing)).await?;
            self.in_sync = true;
            self.last = Some(SyncKind::Replace);
            return Ok(changed);
        }
        // A first start: the table, then its elements in one netlink batch
        // (the bulk of the work, three times faster than through nft).
        // Until the batch lands, services are rejected, as they were a
        // moment before, when there was no table at all.
        self.apply(ruleset.render_table(false)).await?;
        let mut by_netlink = false;
        if let Some(socket) = self.netlink.as_ref() {
            match socket.apply(ruleset.element_batch()).await {
                Ok(()) => by_netlink = true,
                Err(e) => tracing::warn!(error = %e, "loading the elements over netlink failed; using nft"),
            }
        }
        if !by_netlink {
            self.apply(ruleset.render_elements()).await?;
        }
        self.in_sync = true;
        self.last = Some(SyncKind::Create { netlink: by_netlink });
        Ok(changed)
    }

    /// After a sync changing `changed`: deletes stale UDP flows and
    /// remembers the UDP service ports as applied.
    async fn udp_flows(&mut self, changed: &[String]) {
        let Some(ruleset) = self.ruleset.as_ref() else { return };
        let now: Vec<(&String, Option<ServicePort>)> =
            changed.iter().map(|id| (id, ruleset.service_of(id, Protocol::Udp))).collect();
        let changes: Vec<(Option<&ServicePort>, Option<&ServicePort>)> = now
            .iter()
            .map(|(id, after)| (self.applied_udp.get(*id), after.as_ref()))
            .filter(|(b, a)| b.is_some() || a.is_some())
            .collect();
        if changes.is_empty() {
            return;
        }
        let deletions = conntrack::udp_deletions(&changes, || {
            ruleset.services_of(Protocol::Udp).flat_map(|s| conntrack::using(&s)).collect()
        });
        for (id, after) in now {
            match after {
                Some(s) => self.applied_udp.insert(id.clone(), s),
                None => self.applied_udp.remove(id),
            };
        }
        self.delete_stale_udp_flows(deletions).await;
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
        let changed = match self.program(snap, facts).await {
            Ok(changed) => changed,
            Err(e) if has_sctp && self.sctp == Sctp::Unknown => {
                // Most kernels take SCTP as any other protocol number; if
                // this one does not, serve everything else.
                let without = without_sctp(snap);
                self.ruleset = None;
                let changed = self.program(&without, facts).await.map_err(|_| e)?;
                let skipped = snap.services.len() - without.services.len();
                tracing::error!(skipped, "nft refused the SCTP service ports; they are not programmed on this node");
                self.sctp = Sctp::Refused;
                changed
            }
            Err(e) => return Err(e),
        };
        if has_sctp && self.sctp == Sctp::Unknown {
            self.sctp = Sctp::Supported;
        }
        self.udp_flows(&changed).await;
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
        let services: Vec<ServicePort> = ruleset.services().collect();
        conntrack::describe(&services, &self.env.node_ips, &flows)
    }
}
