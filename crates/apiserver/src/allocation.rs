//! Cluster IP and NodePort allocation for Services.
//!
//! Every allocated address and port is a key of its own in the store
//! (`/registry/allocations/serviceips/<ip>`, `.../nodeports/<port>`),
//! written in the same transaction as the Service that owns it. So two
//! concurrent creates can never get the same IP (the second transaction's
//! create of the key fails), nothing leaks when a write fails, and
//! allocations survive restarts with the Services themselves. The set of
//! keys an object owns is derived from the object ([`owned_keys`]); the
//! registry diffs it on every write.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use rand::Rng as _;
use serde_json::{Value, json};
use svcnet_api::resources::ResourceInfo;
use svcnet_store::Store;

use crate::error::{ApiError, FieldCause, Result};

pub const IP_PREFIX: &str = "/registry/allocations/serviceips/";
pub const PORT_PREFIX: &str = "/registry/allocations/nodeports/";

/// The ranges Services are allocated from.
#[derive(Clone, Debug)]
pub struct Ranges {
    pub service_cidr: (Ipv4Addr, u8),
    pub node_ports: (u16, u16),
}

impl Default for Ranges {
    fn default() -> Self {
        Ranges { service_cidr: (Ipv4Addr::new(10, 96, 0, 0), 12), node_ports: (30000, 32767) }
    }
}

impl Ranges {
    fn cidr_bounds(&self) -> (u32, u32) {
        let (base, prefix) = self.service_cidr;
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
        let network = u32::from(base) & mask;
        (network, network | !mask)
    }

    pub fn contains_ip(&self, ip: Ipv4Addr) -> bool {
        let (lo, hi) = self.cidr_bounds();
        (lo..=hi).contains(&u32::from(ip))
    }

    /// The well-known cluster IPs: `.1` of the range is the `kubernetes`
    /// Service, `.10` the cluster DNS.
    pub fn nth_ip(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.cidr_bounds().0 + n)
    }

    pub fn cidr_string(&self) -> String {
        format!("{}/{}", self.service_cidr.0, self.service_cidr.1)
    }
}

/// Parses `10.96.0.0/12`.
pub fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, prefix) = s.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    (prefix <= 32).then_some((ip.parse().ok()?, prefix))
}

/// Parses `30000-32767`.
pub fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (lo, hi) = s.split_once('-')?;
    let (lo, hi): (u16, u16) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
    (lo > 0 && lo <= hi).then_some((lo, hi))
}

fn is_service(resource: &ResourceInfo) -> bool {
    resource.group.is_empty() && resource.plural == "services"
}

fn service_type(obj: &Value) -> &str {
    obj.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP")
}

fn node_ports(obj: &Value) -> Vec<i64> {
    let mut ports: Vec<i64> = obj
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| ps.iter().filter_map(|p| p.get("nodePort").and_then(Value::as_i64)).filter(|p| *p > 0).collect())
        .unwrap_or_default();
    if let Some(h) = obj.pointer("/spec/healthCheckNodePort").and_then(Value::as_i64).filter(|p| *p > 0) {
        ports.push(h);
    }
    ports
}

fn cluster_ips(obj: &Value) -> Vec<String> {
    let mut ips: Vec<String> = obj
        .pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if ips.is_empty()
        && let Some(ip) = obj.pointer("/spec/clusterIP").and_then(Value::as_str)
    {
        ips.push(ip.to_string());
    }
    ips.retain(|ip| !ip.is_empty() && ip != "None");
    ips
}

/// The allocation keys `obj` holds besides its own key.
pub fn owned_keys(resource: &ResourceInfo, obj: &Value) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    if !is_service(resource) {
        return keys;
    }
    for ip in cluster_ips(obj) {
        keys.insert(format!("{IP_PREFIX}{ip}"));
    }
    for port in node_ports(obj) {
        keys.insert(format!("{PORT_PREFIX}{port}"));
    }
    keys
}

/// What an allocation key records: who holds it.
pub fn key_value(obj: &Value) -> bytes::Bytes {
    let owner = json!({
        "namespace": obj.pointer("/metadata/namespace"),
        "name": obj.pointer("/metadata/name"),
    });
    bytes::Bytes::from(owner.to_string())
}

/// The error for an allocation key that another object already holds.
pub fn taken_error(resource: &ResourceInfo, obj: &Value, key: &str) -> ApiError {
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let cause = if let Some(ip) = key.strip_prefix(IP_PREFIX) {
        FieldCause::invalid(
            "spec.clusterIPs",
            &json!([ip]),
            format!("failed to allocate IP {ip}: provided IP is already allocated"),
        )
    } else {
        let port: i64 = key.strip_prefix(PORT_PREFIX).and_then(|p| p.parse().ok()).unwrap_or(0);
        let index = obj
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .and_then(|ps| ps.iter().position(|p| p.get("nodePort").and_then(Value::as_i64) == Some(port)));
        let field = match index {
            Some(i) => format!("spec.ports[{i}].nodePort"),
            None => "spec.healthCheckNodePort".to_string(),
        };
        FieldCause::invalid(field, &json!(port), "provided port is already allocated")
    };
    ApiError::invalid(resource.group, resource.kind, name, vec![cause])
}

/// Fills in a Service's cluster IP and node ports: keeps what the old
/// object had, honours what the client asked for (in range), and picks
/// free ones at random for the rest. Freeness of requested values is
/// enforced by the write transaction itself.
pub async fn allocate(
    store: &dyn Store,
    ranges: &Ranges,
    resource: &ResourceInfo,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<()> {
    if !is_service(resource) {
        return Ok(());
    }
    let kind = service_type(obj).to_string();
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let invalid = |cause: FieldCause| ApiError::invalid(resource.group, resource.kind, &name, vec![cause]);
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };

    if kind == "ExternalName" {
        // ExternalName Services hold no address and no ports.
        for f in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "healthCheckNodePort"] {
            spec.remove(f);
        }
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports {
                if let Some(p) = p.as_object_mut() {
                    p.remove("nodePort");
                }
            }
        }
        return Ok(());
    }

    // Cluster IP: unset on update means "keep", as kube-apiserver patches
    // allocated values back in.
    let old_kind = old.map(service_type);
    let old_ips = old.map(cluster_ips).unwrap_or_default();
    let old_headless = old.and_then(|o| o.pointer("/spec/clusterIP")).and_then(Value::as_str) == Some("None");
    let mut ip = spec.get("clusterIP").and_then(Value::as_str).unwrap_or("").to_string();
    if ip.is_empty()
        && let Some(first) =
            spec.get("clusterIPs").and_then(Value::as_array).and_then(|a| a.first()).and_then(Value::as_str)
    {
        ip = first.to_string();
    }
    if ip.is_empty() && old_kind.is_some_and(|k| k != "ExternalName") {
        if old_headless {
            ip = "None".into();
        } else if let Some(o) = old_ips.first() {
            ip = o.clone();
        }
    }
    if ip.is_empty() {
        ip = pick_ip(store, ranges).await?.to_string();
    } else if ip != "None" {
        // Validation has checked syntax and range already; this is the
        // allocator's own guard for callers that skip validation.
        if let Ok(addr) = ip.parse::<Ipv4Addr>() {
            if !ranges.contains_ip(addr) && !old_ips.contains(&ip) {
                return Err(invalid(FieldCause::invalid(
                    "spec.clusterIPs",
                    &json!([ip]),
                    format!("failed to allocate IP {ip}: {}", svcnet_api::validation::MISMATCHED_NETWORK),
                )));
            }
        }
    }
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
    spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
    spec.entry("ipFamilyPolicy").or_insert_with(|| json!("SingleStack"));

    // Node ports.
    let wants_node_ports = kind == "NodePort"
        || (kind == "LoadBalancer"
            && spec.get("allocateLoadBalancerNodePorts").and_then(Value::as_bool) != Some(false));
    let old_ports: Vec<(i64, String, i64)> = old
        .and_then(|o| o.pointer("/spec/ports"))
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    Some((
                        p.get("port")?.as_i64()?,
                        p.get("protocol").and_then(Value::as_str).unwrap_or("TCP").to_string(),
                        p.get("nodePort")?.as_i64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let old_had_node_ports = matches!(old_kind, Some("NodePort" | "LoadBalancer"));
    let mut taken: BTreeSet<i64> = BTreeSet::new();
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for (i, p) in ports.iter_mut().enumerate() {
            let Some(p) = p.as_object_mut() else { continue };
            if !wants_node_ports {
                p.remove("nodePort");
                continue;
            }
            let requested = p.get("nodePort").and_then(Value::as_i64).filter(|n| *n > 0);
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP").to_string();
            let node_port = match requested {
                Some(n) => {
                    let (lo, hi) = ranges.node_ports;
                    let kept = old_ports.iter().any(|(_, _, o)| *o == n);
                    if !kept && (n < i64::from(lo) || n > i64::from(hi)) {
                        return Err(invalid(FieldCause::invalid(
                            format!("spec.ports[{i}].nodePort"),
                            &json!(n),
                            svcnet_api::validation::node_port_range_detail((lo, hi)),
                        )));
                    }
                    n
                }
                None => {
                    let kept = old_had_node_ports
                        .then(|| old_ports.iter().find(|(op, oproto, _)| *op == port && *oproto == protocol))
                        .flatten()
                        .map(|(_, _, n)| *n);
                    match kept {
                        Some(n) => n,
                        None => pick_port(store, ranges, &taken).await?,
                    }
                }
            };
            taken.insert(node_port);
            p.insert("nodePort".into(), json!(node_port));
        }
    }
    let needs_health_check =
        kind == "LoadBalancer" && spec.get("externalTrafficPolicy").and_then(Value::as_str) == Some("Local");
    if needs_health_check {
        if spec.get("healthCheckNodePort").and_then(Value::as_i64).is_none_or(|p| p == 0) {
            let kept = old.and_then(|o| o.pointer("/spec/healthCheckNodePort")).and_then(Value::as_i64);
            let port = match kept {
                Some(p) if p > 0 => p,
                _ => pick_port(store, ranges, &taken).await?,
            };
            spec.insert("healthCheckNodePort".into(), json!(port));
        }
    } else {
        spec.remove("healthCheckNodePort");
    }
    Ok(())
}

/// A random free cluster IP. Dynamic picks avoid the lowest sixteenth of
/// the range, which kube-apiserver keeps for static assignment (the seeds'
/// 10.97.97.97 sits above it, so picks may still meet static ones; the
/// transaction catches that).
async fn pick_ip(store: &dyn Store, ranges: &Ranges) -> Result<Ipv4Addr> {
    let (lo, hi) = ranges.cidr_bounds();
    let size = hi - lo + 1;
    if size < 4 {
        return Err(ApiError::Internal("the service CIDR is too small to allocate from".into()));
    }
    let static_band = (size / 16).clamp(16, 256).min(size / 2);
    let first = lo + static_band;
    let last = hi - 1;
    for _ in 0..64 {
        let candidate = rand::rng().random_range(first..=last);
        let ip = Ipv4Addr::from(candidate);
        if store.get(&format!("{IP_PREFIX}{ip}")).await?.is_none() {
            return Ok(ip);
        }
    }
    // Nearly full: scan the whole usable range once.
    for candidate in (lo + 1)..hi {
        let ip = Ipv4Addr::from(candidate);
        if store.get(&format!("{IP_PREFIX}{ip}")).await?.is_none() {
            return Ok(ip);
        }
    }
    Err(ApiError::Internal(format!("failed to allocate a serviceIP: range is full ({})", ranges.cidr_string())))
}

async fn pick_port(store: &dyn Store, ranges: &Ranges, taken: &BTreeSet<i64>) -> Result<i64> {
    let (lo, hi) = ranges.node_ports;
    for _ in 0..64 {
        let candidate = i64::from(rand::rng().random_range(lo..=hi));
        if !taken.contains(&candidate) && store.get(&format!("{PORT_PREFIX}{candidate}")).await?.is_none() {
            return Ok(candidate);
        }
    }
    for candidate in i64::from(lo)..=i64::from(hi) {
        if !taken.contains(&candidate) && store.get(&format!("{PORT_PREFIX}{candidate}")).await?.is_none() {
            return Ok(candidate);
        }
    }
    Err(ApiError::Internal(format!("failed to allocate a nodePort: range is full ({lo}-{hi})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_contain() {
        let r = Ranges::default();
        assert!(r.contains_ip(Ipv4Addr::new(10, 97, 97, 97)));
        assert!(r.contains_ip(Ipv4Addr::new(10, 111, 255, 255)));
        assert!(!r.contains_ip(Ipv4Addr::new(10, 112, 0, 0)));
        assert_eq!(r.nth_ip(1), Ipv4Addr::new(10, 96, 0, 1));
        assert_eq!(r.nth_ip(10), Ipv4Addr::new(10, 96, 0, 10));
        assert_eq!(parse_cidr("10.0.0.0/24"), Some((Ipv4Addr::new(10, 0, 0, 0), 24)));
        assert_eq!(parse_port_range("30000-32767"), Some((30000, 32767)));
        assert_eq!(parse_port_range("5-1"), None);
    }

    #[test]
    fn services_own_their_ip_and_node_ports() {
        let svc = svcnet_api::resources::by_plural("", "services").expect("services");
        let obj = json!({ "spec": { "clusterIP": "10.97.97.97", "clusterIPs": ["10.97.97.97"],
            "ports": [{ "port": 80, "nodePort": 32001 }, { "port": 81 }] } });
        let keys: Vec<String> = owned_keys(svc, &obj).into_iter().collect();
        assert_eq!(keys, [format!("{PORT_PREFIX}32001"), format!("{IP_PREFIX}10.97.97.97")]);
        let headless = json!({ "spec": { "clusterIP": "None" } });
        assert!(owned_keys(svc, &headless).is_empty());
    }
}
