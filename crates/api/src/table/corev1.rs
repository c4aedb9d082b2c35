//! Printers for the core (v1) group's simpler kinds: Namespace, Node, Service,
//! Endpoints, Secret, ConfigMap and Event (Pod has its own file).
//!
//! Each follows the Go printer in pkg/printers/internalversion/printers.go,
//! including its defaults for unset fields, as the apiserver would see them
//! after API defaulting.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::value::{age, arr, format_labels, int, join_host_port, load_balancer_addresses, present, s, since, time};

pub(super) fn namespace(ns: &Value, now: Timestamp) -> Vec<Value> {
    vec![json!(s(&ns["metadata"]["name"])), json!(s(&ns["status"]["phase"])), json!(age(ns, now))]
}

const NODE_ROLE_PREFIX: &str = "node-role.kubernetes.io/";
const NODE_ROLE_LABEL: &str = "kubernetes.io/role";

pub(super) fn node(node: &Value, now: Timestamp) -> Vec<Value> {
    // Only Ready is reported; like Go's map by type, the last entry wins.
    let ready = arr(&node["status"]["conditions"]).iter().rfind(|c| s(&c["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if s(&c["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if node["spec"]["unschedulable"].as_bool().unwrap_or(false) {
        status.push("SchedulingDisabled");
    }

    let mut roles: Vec<&str> = node["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix(NODE_ROLE_PREFIX) {
            Some(role) if !role.is_empty() => Some(role),
            Some(_) => None,
            None if k == NODE_ROLE_LABEL && !s(v).is_empty() => Some(s(v)),
            None => None,
        })
        .collect();
    roles.sort_unstable();
    roles.dedup();
    let roles = if roles.is_empty() { "<none>".to_string() } else { roles.join(",") };

    let info = &node["status"]["nodeInfo"];
    let address = |kind: &str| {
        arr(&node["status"]["addresses"]).iter().find(|a| s(&a["type"]) == kind).map_or("<none>", |a| s(&a["address"]))
    };
    let or_unknown = |v: &str| if v.is_empty() { "<unknown>".to_string() } else { v.to_string() };
    vec![
        json!(s(&node["metadata"]["name"])),
        json!(status.join(",")),
        json!(roles),
        json!(age(node, now)),
        json!(s(&info["kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(or_unknown(s(&info["osImage"]))),
        json!(or_unknown(s(&info["kernelVersion"]))),
        json!(or_unknown(s(&info["containerRuntimeVersion"]))),
    ]
}

pub(super) fn service(svc: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &svc["spec"];
    // API defaulting makes ClusterIP the type of any Service that names none.
    let svc_type = match s(&spec["type"]) {
        "" => "ClusterIP",
        t => t,
    };
    // Go reads spec.clusterIPs; objects written before dual-stack may only
    // carry spec.clusterIP, which defaulting would have copied over.
    let cluster_ip = arr(&spec["clusterIPs"])
        .first()
        .map(s)
        .filter(|ip| !ip.is_empty())
        .or_else(|| Some(s(&spec["clusterIP"])).filter(|ip| !ip.is_empty()))
        .unwrap_or("<none>");
    let external_ips: Vec<&str> = arr(&spec["externalIPs"]).iter().map(s).collect();
    let external = match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let mut all = load_balancer_addresses(&svc["status"]["loadBalancer"]);
            if all.is_empty() && external_ips.is_empty() {
                "<pending>".to_string()
            } else {
                all.extend(external_ips.iter().map(|ip| ip.to_string()));
                all.join(",")
            }
        }
        "ExternalName" => s(&spec["externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = arr(&spec["ports"])
        .iter()
        .map(|p| {
            let protocol = match s(&p["protocol"]) {
                "" => "TCP",
                proto => proto,
            };
            let node_port = int(&p["nodePort"]);
            if node_port > 0 {
                format!("{}:{node_port}/{protocol}", int(&p["port"]))
            } else {
                format!("{}/{protocol}", int(&p["port"]))
            }
        })
        .collect();
    let ports = if ports.is_empty() { "<none>".to_string() } else { ports.join(",") };
    vec![
        json!(s(&svc["metadata"]["name"])),
        json!(svc_type),
        json!(cluster_ip),
        json!(external),
        json!(ports),
        json!(age(svc, now)),
        json!(format_labels(&spec["selector"])),
    ]
}

/// `formatEndpoints`: the first three `ip:port` pairs (bare IPs for subsets
/// without ports), then ` + N more...` counting every pair.
fn format_endpoints(ep: &Value) -> String {
    const MAX: usize = 3;
    let subsets = arr(&ep["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    let mut count = 0;
    for ss in subsets {
        let addresses = arr(&ss["addresses"]);
        let ports = arr(&ss["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            list.extend(addresses.iter().map(|a| s(&a["ip"]).to_string()).take(MAX - list.len()));
            continue;
        }
        for port in ports {
            count += addresses.len();
            let port = int(&port["port"]);
            list.extend(addresses.iter().map(|a| join_host_port(s(&a["ip"]), port)).take(MAX - list.len()));
        }
    }
    let joined = list.join(",");
    if count > MAX { format!("{joined} + {} more...", count - MAX) } else { joined }
}

pub(super) fn endpoints(ep: &Value, now: Timestamp) -> Vec<Value> {
    vec![json!(s(&ep["metadata"]["name"])), json!(format_endpoints(ep)), json!(age(ep, now))]
}

fn count_keys(v: &Value) -> usize {
    v.as_object().map_or(0, serde_json::Map::len)
}

/// The DATA cell is an integer even though the column says "string", as in Go.
pub(super) fn secret(secret: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(s(&secret["metadata"]["name"])),
        json!(s(&secret["type"])),
        json!(count_keys(&secret["data"])),
        json!(age(secret, now)),
    ]
}

pub(super) fn config_map(cm: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(s(&cm["metadata"]["name"])),
        json!(count_keys(&cm["data"]) + count_keys(&cm["binaryData"])),
        json!(age(cm, now)),
    ]
}

pub(super) fn event(ev: &Value, now: Timestamp) -> Vec<Value> {
    // Old-style events carry firstTimestamp/lastTimestamp/count; new-style
    // ones (events.k8s.io writers) carry eventTime and a series.
    let first_seen = match time(&ev["firstTimestamp"]) {
        Some(t) => since(Some(t), now),
        None => since(time(&ev["eventTime"]), now),
    };
    let mut last_seen = match time(&ev["lastTimestamp"]) {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = int(&ev["count"]);
    if present(&ev["series"]) {
        last_seen = since(time(&ev["series"]["lastObservedTime"]), now);
        count = int(&ev["series"]["count"]);
    } else if count == 0 {
        // Singleton events don't have a count set in the new API.
        count = 1;
    }

    let involved = &ev["involvedObject"];
    let kind = s(&involved["kind"]).to_lowercase();
    let target = match s(&involved["name"]) {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let first_non_empty = |a: &str, b: &str| if a.is_empty() { b.to_string() } else { a.to_string() };
    let component = first_non_empty(s(&ev["source"]["component"]), s(&ev["reportingComponent"]));
    let instance = first_non_empty(s(&ev["source"]["host"]), s(&ev["reportingInstance"]));
    let source = if instance.is_empty() { component } else { format!("{component}, {instance}") };

    vec![
        json!(last_seen),
        json!(s(&ev["type"])),
        json!(s(&ev["reason"])),
        json!(target),
        json!(s(&involved["fieldPath"])),
        json!(source),
        json!(s(&ev["message"]).trim()),
        json!(first_seen),
        json!(count),
        json!(s(&ev["metadata"]["name"])),
    ]
}
