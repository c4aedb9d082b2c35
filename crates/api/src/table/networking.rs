//! Printers for networking.k8s.io (Ingress, IngressClass) and
//! discovery.k8s.io (EndpointSlice).

use jiff::Timestamp;
use serde_json::{Value, json};

use super::value::{age, arr, list_with_more, load_balancer_addresses, s};

/// `formatHosts`: up to three rule hosts; the "more" count is of rules, so
/// host-less rules past the third are counted too, as in Go.
fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = s(&rule["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let joined = list.join(",");
    if more { format!("{joined} + {} more...", rules.len() - MAX) } else { joined }
}

pub(super) fn ingress(ing: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &ing["spec"];
    let class = match s(&spec["ingressClassName"]) {
        "" if spec["ingressClassName"].is_null() => "<none>",
        c => c,
    };
    let ports = if arr(&spec["tls"]).is_empty() { "80" } else { "80, 443" };
    vec![
        json!(s(&ing["metadata"]["name"])),
        json!(class),
        json!(format_hosts(arr(&spec["rules"]))),
        json!(load_balancer_addresses(&ing["status"]["loadBalancer"]).join(",")),
        json!(ports),
        json!(age(ing, now)),
    ]
}

pub(super) fn ingress_class(ic: &Value, now: Timestamp) -> Vec<Value> {
    let params = &ic["spec"]["parameters"];
    let parameters = if params.is_object() {
        let mut p = s(&params["kind"]).to_string();
        if let Some(group) = params["apiGroup"].as_str() {
            p.push('.');
            p.push_str(group);
        }
        format!("{p}/{}", s(&params["name"]))
    } else {
        "<none>".to_string()
    };
    vec![json!(s(&ic["metadata"]["name"])), json!(s(&ic["spec"]["controller"])), json!(parameters), json!(age(ic, now))]
}

pub(super) fn endpoint_slice(slice: &Value, now: Timestamp) -> Vec<Value> {
    const MAX: usize = 3;
    let ports = arr(&slice["ports"]);
    // A port without a number means "all ports"; Go shows its name, else "*".
    let port_list: Vec<String> = ports
        .iter()
        .take(MAX)
        .map(|p| match (p["port"].as_i64(), p["name"].as_str()) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses: Vec<&str> =
        arr(&slice["endpoints"]).iter().flat_map(|e| arr(&e["addresses"]).iter().map(s)).collect();
    let address_list: Vec<String> = addresses.iter().take(MAX).map(|a| a.to_string()).collect();
    vec![
        json!(s(&slice["metadata"]["name"])),
        json!(s(&slice["addressType"])),
        json!(list_with_more(&port_list, ports.len(), MAX)),
        json!(list_with_more(&address_list, addresses.len(), MAX)),
        json!(age(slice, now)),
    ]
}
