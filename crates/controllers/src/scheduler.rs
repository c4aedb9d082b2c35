//! The pod scheduler's decisions (kube-scheduler's default profile, cut
//! down to what a single binary needs), as pure functions over a snapshot
//! of nodes and the pods already on them.
//!
//! Start at [`Snapshot`]: build it from the nodes and pods an informer
//! holds, ask [`Snapshot::schedule`] where a pod goes, and
//! [`Snapshot::assume`] the answer so the next pod sees it before the API
//! server does. [`wants_scheduling`] says which pods are this scheduler's
//! to place. The runtime (`runtime/scheduler.rs`) binds and reports.
//!
//! Filters, in kube-scheduler's order; a node is out at the first it fails:
//!
//! | plugin | a node fails when | reason |
//! | --- | --- | --- |
//! | NodeUnschedulable | `spec.unschedulable`, not tolerated | `node(s) were unschedulable` |
//! | TaintToleration | a NoSchedule/NoExecute taint is not tolerated; a node whose Ready condition is not True counts as tainted `node.kubernetes.io/not-ready` (False) or `node.kubernetes.io/unreachable` (Unknown), as the node lifecycle controller would taint it | `node(s) had untolerated taint {key: value}` |
//! | NodeAffinity | `spec.nodeSelector` or the required node affinity does not match | `node(s) didn't match Pod's node affinity/selector` |
//! | NodePorts | a requested hostPort is taken | `node(s) didn't have free ports for the requested pod ports` |
//! | NodeResourcesFit | pods, cpu or memory exceed allocatable | `Too many pods`, `Insufficient cpu`, `Insufficient memory` |
//!
//! Scoring spreads: among the nodes that fit, the one with the fewest pods
//! of the same controller (or, for pods without one, the same labels in
//! the same namespace), then the fewest pods, then the smallest share of
//! its cpu and memory requested, then the first by name.
//!
//! Left out: preemption, inter-pod (anti-)affinity, topology spread
//! constraints, preferred node affinity, volumes, extended resources,
//! `nominatedNodeName`, and the `SchedulingGated` condition (gated pods
//! are simply not scheduled until their gates are gone).

mod filters;
mod quantity;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Node, Pod, Taint};

pub use filters::{HostPort, Resources, pod_host_ports, pod_requests};
pub use quantity::parse_milli;

/// The scheduler name pods get by default.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// Reasons, worded as kube-scheduler's plugins word them.
pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const REASON_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub const REASON_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";
pub const REASON_CPU: &str = "Insufficient cpu";
pub const REASON_MEMORY: &str = "Insufficient memory";

/// The taints the node lifecycle controller puts on nodes that are not
/// Ready; the scheduler applies them from the Ready condition itself.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint `spec.unschedulable` stands for (tolerating it lets a pod on
/// a cordoned node).
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Whether the default scheduler should place `pod`: it names this
/// scheduler (or none), is not bound yet, has no scheduling gates left, is
/// not being deleted and has not finished.
pub fn wants_scheduling(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    let scheduler = spec.and_then(|s| s.scheduler_name.as_deref()).unwrap_or("");
    let node = spec.and_then(|s| s.node_name.as_deref()).unwrap_or("");
    let gated = spec.and_then(|s| s.scheduling_gates.as_ref()).is_some_and(|g| !g.is_empty());
    (scheduler.is_empty() || scheduler == DEFAULT_SCHEDULER_NAME)
        && node.is_empty()
        && !gated
        && pod.metadata.deletion_timestamp.is_none()
        && !is_terminal(pod)
}

/// Succeeded or Failed: the pod holds nothing on its node any more.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// Why a pod fits no node, as kube-scheduler's `FitError` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FitError {
    /// There are no nodes at all.
    NoNodes,
    /// `nodes` nodes, none of which fits; how many nodes gave each reason
    /// (a node may give several, e.g. `Insufficient cpu` and `memory`).
    Unfit { nodes: usize, reasons: BTreeMap<String, usize> },
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::NoNodes => f.write_str("no nodes available to schedule pods"),
            FitError::Unfit { nodes, reasons } => {
                // kube sorts the "<count> <reason>" strings themselves.
                let mut parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
                parts.sort();
                write!(f, "0/{nodes} nodes are available: {}.", parts.join(", "))
            }
        }
    }
}

impl std::error::Error for FitError {}

/// Which pods a pod spreads away from: those of its controller, or
/// without one, those with the same labels in its namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SpreadGroup {
    Owner(String),
    Labels(String, BTreeMap<String, String>),
}

fn spread_group(pod: &Pod) -> Option<SpreadGroup> {
    let owner = pod.metadata.owner_references.iter().flatten().find(|r| r.controller == Some(true));
    if let Some(owner) = owner {
        return Some(SpreadGroup::Owner(owner.uid.clone()));
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    (!labels.is_empty()).then(|| SpreadGroup::Labels(pod.metadata.namespace.clone().unwrap_or_default(), labels))
}

/// What the scheduler keeps of a pod on a node.
#[derive(Clone, Debug)]
struct Placed {
    group: Option<SpreadGroup>,
    ports: Vec<HostPort>,
}

/// What the scheduler knows of one node and the pods on it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    name: String,
    labels: BTreeMap<String, String>,
    unschedulable: bool,
    /// Its taints, with the one its Ready condition implies.
    taints: Vec<Taint>,
    allocatable: Resources,
    requested: Resources,
    pods: Vec<Placed>,
}

impl NodeInfo {
    fn new(node: &Node) -> NodeInfo {
        let spec = node.spec.as_ref();
        let mut taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        if let Some(key) = readiness_taint(node)
            && !taints.iter().any(|t| t.key == key)
        {
            taints.push(Taint { key: key.into(), effect: "NoSchedule".into(), ..Taint::default() });
        }
        let status = node.status.as_ref();
        let allocatable = status.and_then(|s| s.allocatable.as_ref()).filter(|a| !a.is_empty());
        let allocatable = allocatable.or_else(|| status.and_then(|s| s.capacity.as_ref()));
        NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            taints,
            allocatable: allocatable.map(Resources::from_list).unwrap_or_default(),
            requested: Resources::default(),
            pods: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many pods the node holds (bound and assumed).
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    fn add(&mut self, pod: &Pod) {
        self.requested.add(&pod_requests(pod));
        self.requested.pods += 1;
        self.pods.push(Placed { group: spread_group(pod), ports: pod_host_ports(pod) });
    }

    /// The reasons `pod` does not fit here; empty when it does.
    fn fit(&self, pod: &Pod) -> Vec<String> {
        if let Some(reason) = filters::unschedulable(self, pod) {
            return vec![reason];
        }
        if let Some(reason) = filters::taints(self, pod) {
            return vec![reason];
        }
        if !filters::node_affinity(self, pod) {
            return vec![REASON_AFFINITY.into()];
        }
        if !filters::ports_free(self, pod) {
            return vec![REASON_PORTS.into()];
        }
        filters::resources_fit(self, pod)
    }

    /// How much `pod` would rather go elsewhere (lower is better).
    fn score(&self, group: Option<&SpreadGroup>, request: &Resources) -> (usize, usize, i64) {
        let same = group.map_or(0, |g| self.pods.iter().filter(|p| p.group.as_ref() == Some(g)).count());
        let share = |used: i64, total: i64| if total <= 0 { 1000 } else { used.saturating_mul(1000) / total };
        let cpu = share(self.requested.milli_cpu + request.milli_cpu, self.allocatable.milli_cpu);
        let memory = share(self.requested.memory + request.memory, self.allocatable.memory);
        (same, self.pods.len(), cpu + memory)
    }
}

/// The taint a node's Ready condition implies, if it is not True.
fn readiness_taint(node: &Node) -> Option<&'static str> {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    let ready = conditions.and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    match ready.map(|c| c.status.as_str()) {
        Some("True") => None,
        Some("Unknown") => Some(TAINT_UNREACHABLE),
        _ => Some(TAINT_NOT_READY),
    }
}

/// Whether `pod` may run on `node` by the filters a DaemonSet's pods
/// must pass (kube's `nodeShouldRunDaemonPod`): unschedulable, taints and
/// node affinity; ports and resources are the scheduler's to check.
pub fn daemon_pod_fits(node: &Node, pod: &Pod) -> bool {
    let info = NodeInfo::new(node);
    filters::unschedulable(&info, pod).is_none()
        && filters::taints(&info, pod).is_none()
        && filters::node_affinity(&info, pod)
}

/// Whether a daemon pod already on `node` may stay there (kube's
/// `shouldContinueRunning`): its node selector and affinity still match.
/// A NoSchedule taint, a NotReady node or `unschedulable` keep new daemon
/// pods off, not the ones there.
pub fn daemon_pod_may_stay(node: &Node, pod: &Pod) -> bool {
    filters::node_affinity(&NodeInfo::new(node), pod)
}

/// The nodes and what is on them, as the scheduler decides from.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// By name, so that ties go to the first name.
    nodes: BTreeMap<String, NodeInfo>,
}

impl Snapshot {
    /// A snapshot of `nodes` with the `pods` bound to them. Finished pods
    /// and pods on unknown nodes take no room.
    pub fn new<'a>(nodes: impl IntoIterator<Item = &'a Node>, pods: impl IntoIterator<Item = &'a Pod>) -> Snapshot {
        let mut snapshot =
            Snapshot { nodes: nodes.into_iter().map(NodeInfo::new).map(|n| (n.name.clone(), n)).collect() };
        for pod in pods {
            let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("");
            if !node.is_empty() {
                snapshot.assume(pod, node);
            }
        }
        snapshot
    }

    /// Accounts for `pod` on `node` (bound, or about to be); a finished
    /// pod or an unknown node changes nothing.
    pub fn assume(&mut self, pod: &Pod, node: &str) {
        if is_terminal(pod) {
            return;
        }
        if let Some(info) = self.nodes.get_mut(node) {
            info.add(pod);
        }
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node `pod` should go to, or why none fits.
    pub fn schedule(&self, pod: &Pod) -> Result<String, FitError> {
        if self.nodes.is_empty() {
            return Err(FitError::NoNodes);
        }
        let group = spread_group(pod);
        let request = pod_requests(pod);
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut best: Option<((usize, usize, i64), &str)> = None;
        for (name, info) in &self.nodes {
            let unfit = info.fit(pod);
            if !unfit.is_empty() {
                for r in unfit {
                    *reasons.entry(r).or_default() += 1;
                }
                continue;
            }
            let score = info.score(group.as_ref(), &request);
            // Nodes come in name order: a strictly better score wins.
            if best.as_ref().is_none_or(|(b, _)| score < *b) {
                best = Some((score, name));
            }
        }
        match best {
            Some((_, name)) => Ok(name.to_string()),
            None => Err(FitError::Unfit { nodes: self.nodes.len(), reasons }),
        }
    }
}
