//! The filter plugins: whether a pod may go to a node, and if not, why.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::quantity::parse_milli;
use super::{NodeInfo, REASON_CPU, REASON_MEMORY, REASON_TOO_MANY_PODS, REASON_UNSCHEDULABLE, TAINT_UNSCHEDULABLE};

/// The resources the scheduler accounts for: cpu in millicores, memory in
/// bytes, and a number of pods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub pods: i64,
}

impl Resources {
    /// From a resource list (`requests`, `allocatable`); unparsable
    /// quantities count as zero.
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Resources {
        let milli = |name: &str| list.get(name).and_then(|q| parse_milli(&q.0)).unwrap_or(0);
        Resources {
            milli_cpu: milli("cpu"),
            // Bytes and pods are whole: Quantity.Value rounds up.
            memory: whole(milli("memory")),
            pods: whole(milli("pods")),
        }
    }

    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
        self.pods = self.pods.saturating_add(other.pods);
    }

    fn max(&self, other: &Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.max(other.milli_cpu),
            memory: self.memory.max(other.memory),
            pods: self.pods.max(other.pods),
        }
    }
}

fn whole(milli: i64) -> i64 {
    milli.saturating_add(999).div_euclid(1000)
}

/// A container's requests; a resource with a limit but no request
/// requests its limit, as API defaulting sets it.
fn container_requests(c: &Container) -> Resources {
    let Some(r) = c.resources.as_ref() else { return Resources::default() };
    let mut list = r.limits.clone().unwrap_or_default();
    list.extend(r.requests.clone().unwrap_or_default());
    Resources::from_list(&list)
}

/// What a pod requests of its node (`pods` is not counted here): its
/// containers and sidecars together, or its largest init container with
/// the sidecars started before it, whichever is more, plus its overhead.
pub fn pod_requests(pod: &Pod) -> Resources {
    let Some(spec) = pod.spec.as_ref() else { return Resources::default() };
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
        } else {
            let mut with_sidecars = r;
            with_sidecars.add(&sidecars);
            init_peak = init_peak.max(&with_sidecars);
        }
    }
    let mut total = sidecars;
    for c in &spec.containers {
        total.add(&container_requests(c));
    }
    let mut total = total.max(&init_peak);
    if let Some(overhead) = &spec.overhead {
        total.add(&Resources::from_list(overhead));
    }
    total.pods = 0;
    total
}

/// A host port a pod takes on its node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub protocol: String,
    /// `0.0.0.0` when the pod does not name one.
    pub ip: String,
    pub port: i32,
}

impl HostPort {
    /// Two pods cannot share a port and protocol on one address, and a
    /// wildcard address takes them all.
    fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// The host ports of a pod's containers and sidecars.
pub fn pod_host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else { return Vec::new() };
    let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|p| *p > 0)?;
            let ip = p.host_ip.as_deref().filter(|ip| !ip.is_empty()).unwrap_or("0.0.0.0");
            let protocol = p.protocol.as_deref().filter(|p| !p.is_empty()).unwrap_or("TCP");
            Some(HostPort { protocol: protocol.into(), ip: ip.into(), port })
        })
        .collect()
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or(&[])
}

/// Whether `t` tolerates `taint`: an empty effect or key matches any;
/// `Exists` ignores the value, `Equal` (the default) compares it.
fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect = t.effect.as_deref().unwrap_or("");
    let key = t.key.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("") {
        "Exists" => true,
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// NodeUnschedulable: a cordoned node takes only pods tolerating
/// [`TAINT_UNSCHEDULABLE`].
pub(super) fn unschedulable(node: &NodeInfo, pod: &Pod) -> Option<String> {
    if !node.unschedulable {
        return None;
    }
    let taint = Taint { key: TAINT_UNSCHEDULABLE.into(), effect: "NoSchedule".into(), ..Taint::default() };
    (!tolerations(pod).iter().any(|t| tolerates(t, &taint))).then(|| REASON_UNSCHEDULABLE.to_string())
}

/// TaintToleration: the first NoSchedule or NoExecute taint the pod does
/// not tolerate.
pub(super) fn taints(node: &NodeInfo, pod: &Pod) -> Option<String> {
    let tolerations = tolerations(pod);
    node.taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
        .map(|t| format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value.as_deref().unwrap_or("")))
}

/// NodeAffinity: `spec.nodeSelector` and the required node affinity's
/// terms (any one of which must match).
pub(super) fn node_affinity(node: &NodeInfo, pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return true };
    let selector_matches = spec.node_selector.iter().flatten().all(|(k, v)| node.labels.get(k) == Some(v));
    if !selector_matches {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref());
    match required {
        None => true,
        Some(selector) => selector.node_selector_terms.iter().any(|term| term_matches(node, term)),
    }
}

/// A term matches when all its expressions and fields do; an empty term
/// matches nothing.
fn term_matches(node: &NodeInfo, term: &NodeSelectorTerm) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions.iter().all(|r| requirement_matches(r, node.labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            // metadata.name is the one field a node selector may name,
            // with In or NotIn only.
            r.key == "metadata.name"
                && matches!(r.operator.as_str(), "In" | "NotIn")
                && requirement_matches(r, Some(&node.name))
        })
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), [want]) = (value.and_then(number), values) else { return false };
            let Some(want) = number(want) else { return false };
            if r.operator == "Gt" { have > want } else { have < want }
        }
        _ => false,
    }
}

/// NodePorts: none of the pod's host ports is taken on the node.
pub(super) fn ports_free(node: &NodeInfo, pod: &Pod) -> bool {
    let wanted = pod_host_ports(pod);
    wanted.iter().all(|w| node.pods.iter().flat_map(|p| &p.ports).all(|taken| !taken.conflicts(w)))
}

/// NodeResourcesFit: one more pod, and the pod's cpu and memory requests,
/// fit in what is allocatable and not yet requested. Every shortfall is a
/// reason.
pub(super) fn resources_fit(node: &NodeInfo, pod: &Pod) -> Vec<String> {
    let mut reasons = Vec::new();
    if node.requested.pods + 1 > node.allocatable.pods {
        reasons.push(REASON_TOO_MANY_PODS.to_string());
    }
    let want = pod_requests(pod);
    let (have, used) = (&node.allocatable, &node.requested);
    if want.milli_cpu > 0 && want.milli_cpu > have.milli_cpu - used.milli_cpu {
        reasons.push(REASON_CPU.to_string());
    }
    if want.memory > 0 && want.memory > have.memory - used.memory {
        reasons.push(REASON_MEMORY.to_string());
    }
    reasons
}
