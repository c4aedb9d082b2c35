//! Endpoints (`ValidateEndpoints`) and discovery.k8s.io/v1 EndpointSlices
//! (`ValidateEndpointSlice`).

use std::collections::BTreeSet;

use serde_json::Value;

use super::access::{get, int_of, list, opt_str, str_of, str_or};
use super::field::{FieldError, Path};
use super::text::{
    each, fqdn_errors, ip_errors, ipv4_errors, ipv6_errors, is_dns1123_label, is_dns1123_subdomain, is_port_num,
    is_qualified_name, labels_errors, non_special_ip_errors,
};

const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];
const ADDRESS_TYPES: [&str; 3] = ["FQDN", "IPv4", "IPv6"];
const ADDRESS_TYPES_ON_UPDATE: [&str; 4] = ["FQDN", "IP", "IPv4", "IPv6"];
const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 100;
const MAX_TOPOLOGY_LABELS: usize = 16;

pub(crate) fn validate_endpoints(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ss) in list(obj, "subsets").iter().enumerate() {
        let path = Path::root("subsets").index(i);
        let (ready, not_ready) = (list(ss, "addresses"), list(ss, "notReadyAddresses"));
        if ready.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(&path, "must specify `addresses` or `notReadyAddresses`"));
        }
        for (j, a) in ready.iter().enumerate() {
            errs.extend(address_errors(a, &path.child("addresses").index(j)));
        }
        for (j, a) in not_ready.iter().enumerate() {
            errs.extend(address_errors(a, &path.child("notReadyAddresses").index(j)));
        }
        let ports = list(ss, "ports");
        for (j, p) in ports.iter().enumerate() {
            errs.extend(endpoint_port_errors(p, ports.len() > 1, &path.child("ports").index(j)));
        }
    }
    errs
}

fn address_errors(a: &Value, path: &Path) -> Vec<FieldError> {
    let ip = str_of(a, "ip");
    let mut errs = ip_errors(&path.child("ip"), ip);
    let hostname = str_of(a, "hostname");
    if !hostname.is_empty() {
        errs.extend(each(&path.child("hostname"), hostname, is_dns1123_label(hostname)));
    }
    if let Some(node) = opt_str(a, "nodeName") {
        errs.extend(each(&path.child("nodeName"), node, is_dns1123_subdomain(node)));
    }
    errs.extend(non_special_ip_errors(&path.child("ip"), ip));
    errs
}

fn endpoint_port_errors(p: &Value, require_name: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_of(p, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(each(&path.child("name"), name, is_dns1123_label(name)));
    }
    let port = int_of(p, "port").unwrap_or(0);
    for m in is_port_num(port) {
        errs.push(FieldError::invalid(path.child("port"), port, m));
    }
    let protocol = str_or(p, "protocol", "TCP");
    if !PROTOCOLS.contains(&protocol) {
        errs.push(FieldError::not_supported(path.child("protocol"), protocol, &PROTOCOLS));
    }
    if let Some(ap) = opt_str(p, "appProtocol") {
        errs.extend(each(&path.child("appProtocol"), ap, is_qualified_name(ap)));
    }
    errs
}

pub(crate) fn validate_endpoint_slice(obj: &Value, update: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let address_type = str_of(obj, "addressType");
    let valid: &[&str] = if update { &ADDRESS_TYPES_ON_UPDATE } else { &ADDRESS_TYPES };
    if address_type.is_empty() {
        errs.push(FieldError::required("addressType", ""));
    } else if !valid.contains(&address_type) {
        errs.push(FieldError::not_supported("addressType", address_type, valid));
    }
    errs.extend(slice_endpoints_errors(list(obj, "endpoints"), address_type));
    errs.extend(slice_ports_errors(list(obj, "ports")));
    errs
}

pub(crate) fn validate_endpoint_slice_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = validate_endpoint_slice(new, true);
    let (n, o) = (str_of(new, "addressType"), str_of(old, "addressType"));
    if n != o {
        errs.push(FieldError::invalid("addressType", n, "field is immutable"));
    }
    errs
}

fn slice_endpoints_errors(endpoints: &[Value], address_type: &str) -> Vec<FieldError> {
    let path = Path::root("endpoints");
    if endpoints.len() > MAX_ENDPOINTS {
        return vec![FieldError::too_many(&path, endpoints.len(), MAX_ENDPOINTS)];
    }
    let mut errs = Vec::new();
    for (i, ep) in endpoints.iter().enumerate() {
        let idx = path.index(i);
        let addr_path = idx.child("addresses");
        let addresses = list(ep, "addresses");
        if addresses.is_empty() {
            errs.push(FieldError::required(&addr_path, "must contain at least 1 address"));
        } else if addresses.len() > MAX_ADDRESSES {
            errs.push(FieldError::too_many(&addr_path, addresses.len(), MAX_ADDRESSES));
        }
        for (j, a) in addresses.iter().enumerate() {
            let a = a.as_str().unwrap_or("");
            let p = addr_path.index(j);
            match address_type {
                "IP" => errs.extend(ip_errors(&p, a)),
                "IPv4" => {
                    errs.extend(ipv4_errors(&p, a));
                    errs.extend(non_special_ip_errors(&p, a));
                }
                "IPv6" => {
                    errs.extend(ipv6_errors(&p, a));
                    errs.extend(non_special_ip_errors(&p, a));
                }
                "FQDN" => errs.extend(fqdn_errors(&p, a)),
                _ => {}
            }
        }
        let topology = get(ep, "deprecatedTopology");
        let topo_path = idx.child("topology");
        let n = topology.and_then(Value::as_object).map_or(0, |m| m.len());
        if n > MAX_TOPOLOGY_LABELS {
            errs.push(FieldError::too_many(&topo_path, n, MAX_TOPOLOGY_LABELS));
        }
        errs.extend(labels_errors(topology, &topo_path));
        if let Some(h) = opt_str(ep, "hostname") {
            errs.extend(each(&idx.child("hostname"), h, is_dns1123_label(h)));
        }
    }
    errs
}

fn slice_ports_errors(ports: &[Value]) -> Vec<FieldError> {
    let path = Path::root("ports");
    if ports.len() > MAX_PORTS {
        return vec![FieldError::too_many(&path, ports.len(), MAX_PORTS)];
    }
    let mut errs = Vec::new();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let idx = path.index(i);
        // Defaulting turns an absent name into "".
        let name = str_of(p, "name");
        if !name.is_empty() {
            errs.extend(each(&idx.child("name"), name, is_dns1123_label(name)));
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(idx.child("name"), name));
        }
        let protocol = str_or(p, "protocol", "TCP");
        if !PROTOCOLS.contains(&protocol) {
            errs.push(FieldError::not_supported(idx.child("protocol"), protocol, &PROTOCOLS));
        }
        if let Some(ap) = opt_str(p, "appProtocol") {
            errs.extend(each(&idx.child("appProtocol"), ap, is_qualified_name(ap)));
        }
    }
    errs
}
