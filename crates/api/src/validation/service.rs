//! Service validation: kube-apiserver's `ValidateService`/`ValidateServiceUpdate`,
//! preceded by the checks its Service REST storage makes before it
//! allocates (IP families, cluster IP ranges, node port ranges), which
//! kube reports on their own, before any other problem.
//!
//! Like kube, the checks see the object after the Service strategy's
//! normalization (`clusterIPs` synced with `clusterIP`, allocated values
//! carried over from the old object on update, type-dependent fields
//! dropped on a type change); [`prepare_create`] and [`prepare_update`] do
//! that to the object the API server stores.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::{Value, json};

use super::Context;
use super::access::{get, int_of, list, obj, opt_str, present, str_of, str_or, string_map, strings};
use super::field::{FieldError, Path, go_strings, go_strings_or_nil};
use super::text::{
    canonical, cidr_contains, cidr_errors, each, ip_errors, is_dns1123_label, is_dns1123_subdomain, is_port_name,
    is_port_num, is_qualified_name, labels_errors, non_special_ip_errors, parse_ip_sloppy,
};

const TYPES: [&str; 4] = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];
const FAMILIES: [&str; 2] = ["IPv4", "IPv6"];
const POLICIES: [&str; 3] = ["PreferDualStack", "RequireDualStack", "SingleStack"];
const LB_SOURCE_RANGES_ANNOTATION: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";
/// `core.MaxClientIPServiceAffinitySeconds`.
const MAX_AFFINITY_SECONDS: i64 = 86400;

/// The error the 1.33 cluster IP allocator (one allocator per ServiceCIDR,
/// the GA MultiCIDRServiceAllocator) gives for an address outside every
/// Service CIDR.
pub const MISMATCHED_NETWORK: &str = "the provided network does not match the current range";

/// Whether `ip` is inside one of the Service CIDRs.
pub fn ip_in_service_cidr(ip: IpAddr, cidrs: &[(IpAddr, u8)]) -> bool {
    cidrs.iter().any(|c| cidr_contains(*c, ip))
}

/// The allocator's error text for a requested cluster IP, or `None` when
/// the address can be allocated from `cidrs`. kube-apiserver reports it as
/// `spec.clusterIPs: Invalid value: []string{...}: failed to allocate IP
/// <ip>: <this text>` (see [`cluster_ip_allocation_error`]).
///
/// An address outside every CIDR gives [`MISMATCHED_NETWORK`]; the network
/// address (and the IPv4 broadcast address) of a CIDR gives
/// [`not_in_range_detail`].
pub fn cluster_ip_range_detail(ip: &str, cidrs: &[(IpAddr, u8)]) -> Option<String> {
    let ip = canonical(parse_ip_sloppy(ip)?);
    let Some(&(base, bits)) = cidrs.iter().find(|c| cidr_contains(**c, ip)) else {
        return Some(MISMATCHED_NETWORK.to_string());
    };
    let (network, broadcast) = bounds(base, bits);
    let reserved = ip == network || (ip.is_ipv4() && ip == broadcast);
    reserved.then(|| not_in_range_detail(&ip.to_string(), &format!("{network}/{bits}")))
}

/// The pre-1.31 single-CIDR allocator's `ErrNotInRange` text, which 1.33
/// still uses for a CIDR's reserved first (and IPv4 last) address.
pub fn not_in_range_detail(ip: &str, range: &str) -> String {
    format!("the provided IP ({ip}) is not in the valid range. The range of valid IPs is {range}")
}

/// The field error kube-apiserver returns when allocating `ip`, one of the
/// Service's `cluster_ips`, failed with `detail`.
pub fn cluster_ip_allocation_error(cluster_ips: &[String], ip: &str, detail: &str) -> FieldError {
    FieldError::invalid("spec.clusterIPs", json!(cluster_ips), format!("failed to allocate IP {ip}: {detail}"))
        .go(go_strings(cluster_ips.iter().map(String::as_str)))
}

/// The node port allocator's `ErrNotInRange` text.
pub fn node_port_range_detail(range: (u16, u16)) -> String {
    format!("provided port is not in the valid range. The range of valid ports is {}-{}", range.0, range.1)
}

fn bounds(base: IpAddr, bits: u8) -> (IpAddr, IpAddr) {
    match canonical(base) {
        IpAddr::V4(v4) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits.min(32))) };
            let net = u32::from(v4) & mask;
            (IpAddr::from(net.to_be_bytes()), IpAddr::from((net | !mask).to_be_bytes()))
        }
        IpAddr::V6(v6) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits.min(128))) };
            let net = u128::from(v6) & mask;
            (IpAddr::from(net.to_be_bytes()), IpAddr::from((net | !mask).to_be_bytes()))
        }
    }
}

fn family_of(ip: &str) -> Option<&'static str> {
    parse_ip_sloppy(ip).map(canonical).map(|ip| if ip.is_ipv4() { "IPv4" } else { "IPv6" })
}

fn configured_families(ctx: &Context) -> BTreeSet<&'static str> {
    ctx.service_cidrs.iter().map(|(ip, _)| if canonical(*ip).is_ipv4() { "IPv4" } else { "IPv6" }).collect()
}

// ---- reading a Service spec, with kube's defaults for absent fields ----

struct Port {
    name: String,
    port: i64,
    protocol: String,
    target: Value,
    node_port: i64,
    app_protocol: Option<String>,
}

fn ports(spec: &Value) -> Vec<Port> {
    list(spec, "ports")
        .iter()
        .map(|p| {
            let port = int_of(p, "port").unwrap_or(0);
            // SetDefaults_ServicePort: an unset (0 or "") targetPort is the port.
            let target = match get(p, "targetPort") {
                None => Value::from(port),
                Some(Value::String(s)) if s.is_empty() => Value::from(port),
                Some(v) if v.as_i64() == Some(0) => Value::from(port),
                Some(v) => v.clone(),
            };
            Port {
                name: str_of(p, "name").to_string(),
                port,
                protocol: str_or(p, "protocol", "TCP").to_string(),
                target,
                node_port: int_of(p, "nodePort").unwrap_or(0),
                app_protocol: opt_str(p, "appProtocol").map(str::to_string),
            }
        })
        .collect()
}

fn svc_type(spec: &Value) -> &str {
    str_or(spec, "type", "ClusterIP")
}

fn is_headless(spec: &Value) -> bool {
    let ips = strings(spec, "clusterIPs");
    ips.len() == 1 && ips[0] == "None"
}

fn needs_cluster_ip(spec: &Value) -> bool {
    svc_type(spec) != "ExternalName"
}

fn needs_node_port(spec: &Value) -> bool {
    matches!(svc_type(spec), "NodePort" | "LoadBalancer")
}

fn externally_accessible(spec: &Value) -> bool {
    match svc_type(spec) {
        "LoadBalancer" | "NodePort" => true,
        "ClusterIP" => !list(spec, "externalIPs").is_empty(),
        _ => false,
    }
}

/// The external traffic policy, defaulted to Cluster where kube defaults it.
fn external_traffic_policy(spec: &Value) -> &str {
    match str_of(spec, "externalTrafficPolicy") {
        "" if externally_accessible(spec) => "Cluster",
        p => p,
    }
}

fn needs_health_check(spec: &Value) -> bool {
    svc_type(spec) == "LoadBalancer" && external_traffic_policy(spec) == "Local"
}

fn spec_of(obj: &Value) -> &Value {
    super::access::obj(obj, "spec")
}

fn spec_mut(obj: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    obj.get_mut("spec").and_then(Value::as_object_mut)
}

// ---- the Service strategy's normalization ----

/// What kube-apiserver does to a new Service before allocating and
/// validating it: a client that set only `clusterIP` gets `clusterIPs`.
pub fn prepare_create(svc: &mut Value) {
    let Some(spec) = spec_mut(svc) else { return };
    let ip = spec.get("clusterIP").and_then(Value::as_str).unwrap_or("").to_string();
    let ips_empty = spec.get("clusterIPs").and_then(Value::as_array).is_none_or(Vec::is_empty);
    if !ip.is_empty() && ips_empty {
        spec.insert("clusterIPs".into(), json!([ip]));
    }
}

/// What kube-apiserver does to an updated Service before validating it:
/// allocated values the client left out are carried over from `old`
/// (`patchAllocatedValues`), `clusterIP`/`clusterIPs` are synced
/// (`normalizeClusterIPs`), and fields the new type no longer uses are
/// dropped when the client did not change them (`dropTypeDependentFields`),
/// so `kubectl apply` can switch a NodePort Service back to ClusterIP.
pub fn prepare_update(new: &mut Value, old: &Value) {
    begin_update(new, old);
    drop_type_dependent_fields(new, old);
}

fn begin_update(new: &mut Value, old: &Value) {
    patch_allocated_values(new, old);
    normalize_update(new, old);
}

fn patch_allocated_values(new: &mut Value, old: &Value) {
    let old_spec = spec_of(old).clone();
    let new_view = spec_of(new).clone();
    let Some(spec) = spec_mut(new) else { return };
    if needs_cluster_ip(&old_spec) && needs_cluster_ip(&new_view) {
        if str_of(&new_view, "clusterIP").is_empty() && !str_of(&old_spec, "clusterIP").is_empty() {
            spec.insert("clusterIP".into(), json!(str_of(&old_spec, "clusterIP")));
        }
        if list(&new_view, "clusterIPs").is_empty() && !list(&old_spec, "clusterIPs").is_empty() {
            spec.insert("clusterIPs".into(), json!(strings(&old_spec, "clusterIPs")));
        }
    }
    if needs_node_port(&old_spec) && needs_node_port(&new_view) {
        let old_ports = ports(&old_spec);
        let new_ports = ports(&new_view);
        let old_used: BTreeSet<i64> = old_ports.iter().map(|p| p.node_port).filter(|n| *n != 0).collect();
        let new_used: BTreeSet<i64> = new_ports.iter().map(|p| p.node_port).filter(|n| *n != 0).collect();
        let used: BTreeSet<i64> = old_used.intersection(&new_used).copied().collect();
        let by_name: std::collections::HashMap<&str, i64> =
            old_ports.iter().map(|p| (p.name.as_str(), p.node_port)).collect();
        if let Some(items) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for (p, view) in items.iter_mut().zip(&new_ports) {
                let old_val = by_name.get(view.name.as_str()).copied().unwrap_or(0);
                if view.node_port == 0 && old_val != 0 && !used.contains(&old_val) {
                    if let Some(m) = p.as_object_mut() {
                        m.insert("nodePort".into(), json!(old_val));
                    }
                }
            }
        }
    }
    if needs_health_check(&old_spec)
        && needs_health_check(&new_view)
        && int_of(&new_view, "healthCheckNodePort").unwrap_or(0) == 0
    {
        if let Some(hc) = int_of(&old_spec, "healthCheckNodePort") {
            spec.insert("healthCheckNodePort".into(), json!(hc));
        }
    }
}

fn normalize_update(new: &mut Value, old: &Value) {
    let old_spec = spec_of(old).clone();
    let view = spec_of(new).clone();
    let Some(spec) = spec_mut(new) else { return };
    let old_ip = str_of(&old_spec, "clusterIP");
    let new_ip = str_of(&view, "clusterIP");
    let old_ips = strings(&old_spec, "clusterIPs");
    let mut new_ips = strings(&view, "clusterIPs");
    if !old_ips.is_empty() && new_ips.is_empty() && old_ip == new_ip {
        new_ips = old_ips.clone();
        spec.insert("clusterIPs".into(), json!(old_ips));
    }
    if old_ip != new_ip {
        let same = old_ips == new_ips;
        if !old_ip.is_empty() && new_ip.is_empty() {
            if same {
                spec.remove("clusterIPs");
            }
        } else if same {
            spec.insert("clusterIPs".into(), json!([new_ip]));
        }
    }
}

fn drop_type_dependent_fields(new: &mut Value, old: &Value) {
    let old_spec = spec_of(old).clone();
    let view = spec_of(new).clone();
    let new_is_lb = svc_type(&view) == "LoadBalancer";
    if let Some(spec) = spec_mut(new) {
        if needs_cluster_ip(&old_spec) && !needs_cluster_ip(&view) {
            if strings(&old_spec, "clusterIPs") == strings(&view, "clusterIPs") {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
            if strings(&old_spec, "ipFamilies") == strings(&view, "ipFamilies") {
                spec.remove("ipFamilies");
            }
            if get(&old_spec, "ipFamilyPolicy") == get(&view, "ipFamilyPolicy") {
                spec.remove("ipFamilyPolicy");
            }
        }
        if needs_node_port(&old_spec) && !needs_node_port(&view) {
            let same = ports(&old_spec).iter().map(|p| p.node_port).collect::<Vec<_>>()
                == ports(&view).iter().map(|p| p.node_port).collect::<Vec<_>>();
            if same {
                if let Some(items) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in items.iter_mut().filter_map(Value::as_object_mut) {
                        p.remove("nodePort");
                    }
                }
            }
        }
        if needs_health_check(&old_spec)
            && !needs_health_check(&view)
            && int_of(&old_spec, "healthCheckNodePort") == int_of(&view, "healthCheckNodePort")
        {
            spec.remove("healthCheckNodePort");
        }
        if svc_type(&old_spec) == "LoadBalancer" && !new_is_lb {
            let (o, n) = (get(&old_spec, "allocateLoadBalancerNodePorts"), get(&view, "allocateLoadBalancerNodePorts"));
            if o.is_some() && o == n {
                spec.remove("allocateLoadBalancerNodePorts");
            }
            if get(&old_spec, "loadBalancerClass") == get(&view, "loadBalancerClass") {
                spec.remove("loadBalancerClass");
            }
        }
        if externally_accessible(&old_spec)
            && !externally_accessible(&view)
            && str_of(&old_spec, "externalTrafficPolicy") == str_of(&view, "externalTrafficPolicy")
        {
            spec.remove("externalTrafficPolicy");
        }
    }
    if !new_is_lb {
        if let Some(status) = new.get_mut("status").and_then(Value::as_object_mut) {
            if status.contains_key("loadBalancer") {
                status.insert("loadBalancer".into(), json!({}));
            }
        }
    }
}

// ---- entry points ----

pub(crate) fn validate(svc: &Value, ctx: &Context) -> Vec<FieldError> {
    let mut svc = svc.clone();
    prepare_create(&mut svc);
    let errs = allocation_errors(spec_of(&svc), None, ctx);
    if !errs.is_empty() {
        return errs;
    }
    validate_service(&svc)
}

pub(crate) fn validate_update(new: &Value, old: &Value, ctx: &Context) -> Vec<FieldError> {
    let mut old = old.clone();
    prepare_create(&mut old);
    let mut new = new.clone();
    begin_update(&mut new, &old);
    let errs = allocation_errors(spec_of(&new), Some(spec_of(&old)), ctx);
    if !errs.is_empty() {
        return errs;
    }
    drop_type_dependent_fields(&mut new, &old);
    let (spec, old_spec) = (spec_of(&new), spec_of(&old));
    let mut errs = upgrade_downgrade_cluster_ips(old_spec, spec);
    errs.extend(upgrade_downgrade_ip_families(old_spec, spec));
    errs.extend(load_balancer_class_errors(Some(old_spec), spec));
    if needs_health_check(old_spec)
        && needs_health_check(spec)
        && int_of(spec, "healthCheckNodePort") != int_of(old_spec, "healthCheckNodePort")
    {
        errs.push(FieldError::forbidden("spec.healthCheckNodePort", "field is immutable"));
    }
    errs.extend(validate_service(&new));
    errs
}

// ---- allocation-time checks (Service REST storage, before validation) ----

fn allocation_errors(spec: &Value, old: Option<&Value>, ctx: &Context) -> Vec<FieldError> {
    if needs_cluster_ip(spec) {
        let errs = ip_family_errors(spec, old, ctx);
        if !errs.is_empty() {
            return errs;
        }
        if !is_headless(spec) {
            let ips = strings(spec, "clusterIPs");
            let old_ips = old.filter(|o| needs_cluster_ip(o)).map(|o| strings(o, "clusterIPs")).unwrap_or_default();
            for ip in ips.iter().filter(|ip| !ip.is_empty() && !old_ips.contains(ip)) {
                if let Some(detail) = cluster_ip_range_detail(ip, &ctx.service_cidrs) {
                    return vec![cluster_ip_allocation_error(&ips, ip, &detail)];
                }
            }
        }
    }
    if needs_node_port(spec) {
        let old_ports: BTreeSet<i64> = old
            .filter(|o| needs_node_port(o))
            .map(|o| ports(o).iter().map(|p| p.node_port).collect())
            .unwrap_or_default();
        let (lo, hi) = ctx.node_port_range;
        for (i, p) in ports(spec).iter().enumerate() {
            if p.node_port == 0 || old_ports.contains(&p.node_port) {
                continue;
            }
            if p.node_port < i64::from(lo) || p.node_port > i64::from(hi) {
                let path = Path::root("spec.ports").index(i).child("nodePort");
                return vec![FieldError::invalid(path, p.node_port, node_port_range_detail(ctx.node_port_range))];
            }
        }
    }
    Vec::new()
}

/// `initIPFamilyFields`: the IP family checks the allocator makes.
fn ip_family_errors(spec: &Value, old: Option<&Value>, ctx: &Context) -> Vec<FieldError> {
    let headless_selectorless = str_of(spec, "clusterIP") == "None" && string_map(get(spec, "selector")).is_empty();
    let mut ips = strings(spec, "clusterIPs");
    let mut families = strings(spec, "ipFamilies");
    if let Some(old) = old {
        // A PreferDualStack Service that changes nothing family-related is
        // left alone.
        let policy = opt_str(spec, "ipFamilyPolicy").or_else(|| opt_str(old, "ipFamilyPolicy"));
        if policy == Some("PreferDualStack")
            && opt_str(old, "ipFamilyPolicy") == Some("PreferDualStack")
            && strings(old, "clusterIPs") == ips
            && strings(old, "ipFamilies") == families
        {
            return Vec::new();
        }
    }
    let policy = match opt_str(spec, "ipFamilyPolicy") {
        Some(p) => p,
        None => match old.and_then(|o| opt_str(o, "ipFamilyPolicy")) {
            Some(p) => p,
            None if headless_selectorless => "RequireDualStack",
            None => "SingleStack",
        },
    };
    let errs = cluster_ips_related_errors(spec);
    if !errs.is_empty() {
        return errs;
    }
    let mut errs = Vec::new();
    if let Some(old) = old {
        let old_ips = strings(old, "clusterIPs");
        let old_families = strings(old, "ipFamilies");
        if policy == "SingleStack" {
            if old_ips == ips && ips.len() > 1 {
                ips.truncate(1);
            }
            if old_families == families && families.len() > 1 {
                families.truncate(1);
            }
        } else {
            if !ips.is_empty() && ips.len() < old_ips.len() {
                errs.push(FieldError::invalid(
                    "spec.ipFamilyPolicy",
                    policy,
                    "must be 'SingleStack' to release the secondary cluster IP",
                ));
            }
            if !families.is_empty() && families.len() < old_families.len() {
                errs.push(FieldError::invalid(
                    "spec.ipFamilyPolicy",
                    policy,
                    "must be 'SingleStack' to release the secondary IP family",
                ));
            }
        }
    }
    if policy == "SingleStack" {
        if ips.len() == 2 {
            errs.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                policy,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if families.len() == 2 {
            errs.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                policy,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }
    let configured = configured_families(ctx);
    for (i, ip) in ips.iter().enumerate() {
        if ip == "None" {
            break;
        }
        let Some(fam) = family_of(ip) else { continue };
        if i >= families.len() {
            if configured.contains(fam) {
                families.push(fam.to_string());
            } else {
                errs.push(
                    FieldError::invalid(
                        Path::root("spec.clusterIPs").index(i),
                        json!(ips),
                        format!("{fam} is not configured on this cluster"),
                    )
                    .go(go_strings(ips.iter().map(String::as_str))),
                );
            }
        }
    }
    if !errs.is_empty() || headless_selectorless {
        return errs;
    }
    if policy == "RequireDualStack" && configured.len() < 2 {
        errs.push(FieldError::invalid(
            "spec.ipFamilyPolicy",
            policy,
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, fam) in families.iter().enumerate() {
        if !configured.contains(fam.as_str()) {
            errs.push(FieldError::invalid(
                Path::root("spec.ipFamilies").index(i),
                fam.as_str(),
                "not configured on this cluster",
            ));
        }
    }
    errs
}

// ---- ValidateService ----

fn validate_service(svc: &Value) -> Vec<FieldError> {
    let spec = spec_of(svc);
    let spec_path = Path::root("spec");
    let ty = svc_type(spec);
    let headless = is_headless(spec);
    let cluster_ips = strings(spec, "clusterIPs");
    let ports = ports(spec);
    let mut errs = Vec::new();

    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                cluster_ips[0].as_str(),
                format!("may not be set to 'None' for {ty} services"),
            ));
        }
        "ExternalName" => {
            if !cluster_ips.is_empty() {
                errs.push(FieldError::forbidden("spec.clusterIPs", "may not be set for ExternalName services"));
            }
            if !list(spec, "ipFamilies").is_empty() {
                errs.push(FieldError::forbidden("spec.ipFamilies", "may not be set for ExternalName services"));
            }
            if present(spec, "ipFamilyPolicy") {
                errs.push(FieldError::forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"));
            }
            // The name (a CNAME) may end in a dot to mark it fully qualified.
            let name = str_of(spec, "externalName");
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                errs.extend(each(&spec_path.child("externalName"), cname, is_dns1123_subdomain(cname)));
            }
        }
        _ => {}
    }

    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let path = spec_path.child("ports").index(i);
        if ports.len() > 1 && p.name.is_empty() {
            errs.push(FieldError::required(path.child("name"), ""));
        } else if !p.name.is_empty() {
            errs.extend(each(&path.child("name"), &p.name, is_dns1123_label(&p.name)));
            if !names.insert(&p.name) {
                errs.push(FieldError::duplicate(path.child("name"), p.name.as_str()));
            }
        }
        for m in is_port_num(p.port) {
            errs.push(FieldError::invalid(path.child("port"), p.port, m));
        }
        if !PROTOCOLS.contains(&p.protocol.as_str()) {
            errs.push(FieldError::not_supported(path.child("protocol"), p.protocol.as_str(), &PROTOCOLS));
        }
        errs.extend(port_num_or_name_errors(&path.child("targetPort"), &p.target));
        if let Some(ap) = &p.app_protocol {
            errs.extend(each(&path.child("appProtocol"), ap, is_qualified_name(ap)));
        }
    }

    if present(spec, "selector") {
        errs.extend(labels_errors(get(spec, "selector"), &spec_path.child("selector")));
    }

    let affinity = str_or(spec, "sessionAffinity", "None");
    if !["ClientIP", "None"].contains(&affinity) {
        errs.push(FieldError::not_supported("spec.sessionAffinity", affinity, &["ClientIP", "None"]));
    }
    if affinity == "ClientIP" {
        errs.extend(client_ip_affinity_errors(get(spec, "sessionAffinityConfig")));
    } else if affinity == "None" && present(spec, "sessionAffinityConfig") {
        errs.push(FieldError::forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"));
    }

    if ty != "ExternalName" {
        errs.extend(cluster_ips_related_errors(spec));
    }

    for (i, ip) in strings(spec, "externalIPs").iter().enumerate() {
        let path = spec_path.child("externalIPs").index(i);
        let invalid = ip_errors(&path, ip);
        if invalid.is_empty() {
            errs.extend(non_special_ip_errors(&path, ip));
        } else {
            errs.extend(invalid);
        }
    }

    if !TYPES.contains(&ty) {
        errs.push(FieldError::not_supported("spec.type", ty, &TYPES));
    }

    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p.node_port != 0 {
                errs.push(FieldError::forbidden(
                    spec_path.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }

    let mut node_ports: BTreeSet<(&str, i64)> = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        if p.node_port != 0 && !node_ports.insert((&p.protocol, p.node_port)) {
            errs.push(FieldError::duplicate(spec_path.child("ports").index(i).child("nodePort"), p.node_port));
        }
    }

    let mut seen: BTreeSet<(&str, i64)> = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        if !seen.insert((&p.protocol, p.port)) {
            let go = format!(
                "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                crate::selector::validation::go_quote(&p.protocol),
                p.port
            );
            errs.push(
                FieldError::duplicate(
                    spec_path.child("ports").index(i),
                    json!({"port": p.port, "protocol": p.protocol}),
                )
                .go(go),
            );
        }
    }

    let ranges = strings(spec, "loadBalancerSourceRanges");
    if !ranges.is_empty() {
        // kube's path really is capitalised here.
        let path = spec_path.child("LoadBalancerSourceRanges");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(&path, "may only be used when `type` is 'LoadBalancer'"));
        }
        for (i, r) in ranges.iter().enumerate() {
            errs.extend(cidr_errors(&path.index(i), r.trim()));
        }
    } else if let Some(val) =
        obj(obj(svc, "metadata"), "annotations").get(LB_SOURCE_RANGES_ANNOTATION).and_then(Value::as_str)
    {
        let path = Path::root("metadata.annotations").key(LB_SOURCE_RANGES_ANNOTATION);
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(&path, "may only be used when `type` is 'LoadBalancer'"));
        }
        let val = val.trim();
        if !val.is_empty() {
            for r in val.split(',') {
                errs.extend(cidr_errors(&path, r.trim()));
            }
        }
    }

    if present(spec, "allocateLoadBalancerNodePorts") && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    // A LoadBalancer without allocateLoadBalancerNodePorts is defaulted to
    // true before validation, so kube's Required check cannot fire.

    errs.extend(load_balancer_class_errors(None, spec));

    let etp = external_traffic_policy(spec);
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if !["Cluster", "Local"].contains(&etp) {
        errs.push(FieldError::not_supported("spec.externalTrafficPolicy", etp, &["Cluster", "Local"]));
    }
    let hc = int_of(spec, "healthCheckNodePort").unwrap_or(0);
    if !needs_health_check(spec) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                "spec.healthCheckNodePort",
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc != 0 {
        // 0 is allocated before validation runs, so only a bad value is checked.
        for m in is_port_num(hc) {
            errs.push(FieldError::invalid("spec.healthCheckNodePort", hc, m));
        }
    }

    if let Some(itp) = opt_str(spec, "internalTrafficPolicy") {
        if !["Cluster", "Local"].contains(&itp) {
            errs.push(FieldError::not_supported("spec.internalTrafficPolicy", itp, &["Cluster", "Local"]));
        }
    }
    if let Some(td) = opt_str(spec, "trafficDistribution") {
        if td != "PreferClose" {
            errs.push(FieldError::not_supported("spec.trafficDistribution", td, &["PreferClose"]));
        }
    }
    errs
}

/// `ValidatePortNumOrName`.
pub(crate) fn port_num_or_name_errors(path: &Path, port: &Value) -> Vec<FieldError> {
    match port {
        Value::String(s) => each(path, s, is_port_name(s)),
        other => {
            let n = other.as_i64().unwrap_or(0);
            is_port_num(n).into_iter().map(|m| FieldError::invalid(path, n, m)).collect()
        }
    }
}

fn client_ip_affinity_errors(config: Option<&Value>) -> Vec<FieldError> {
    let detail = "when session affinity type is ClientIP";
    let Some(config) = config else {
        return vec![FieldError::required("spec.sessionAffinityConfig", detail)];
    };
    let Some(client) = get(config, "clientIP") else {
        return vec![FieldError::required("spec.sessionAffinityConfig.clientIP", detail)];
    };
    let path = "spec.sessionAffinityConfig.clientIP.timeoutSeconds";
    match int_of(client, "timeoutSeconds") {
        None => vec![FieldError::required(path, detail)],
        Some(t) if t <= 0 || t > MAX_AFFINITY_SECONDS => {
            vec![FieldError::invalid(path, t, format!("must be greater than 0 and less than {MAX_AFFINITY_SECONDS}"))]
        }
        Some(_) => Vec::new(),
    }
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn cluster_ips_related_errors(spec: &Value) -> Vec<FieldError> {
    if svc_type(spec) == "ExternalName" {
        return Vec::new();
    }
    let mut errs = Vec::new();
    let ip = str_of(spec, "clusterIP");
    let ips = strings(spec, "clusterIPs");
    let go_ips = go_strings_or_nil(&ips);
    let ips_value = json!(ips);
    if !ip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required("spec.clusterIPs", ""));
        } else if ips[0] != ip {
            errs.push(
                FieldError::invalid("spec.clusterIPs", ips_value.clone(), "first value must match `clusterIP`")
                    .go(&go_ips),
            );
        }
    } else if !ips.is_empty() {
        errs.push(
            FieldError::invalid(
                "spec.clusterIPs",
                ips_value.clone(),
                "must be empty when `clusterIP` is not specified",
            )
            .go(&go_ips),
        );
    }

    let families = strings(spec, "ipFamilies");
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for (i, f) in families.iter().enumerate() {
        let path = Path::root("spec.ipFamilies").index(i);
        if !FAMILIES.contains(&f.as_str()) {
            errs.push(FieldError::not_supported(&path, f.as_str(), &FAMILIES));
        }
        if !seen.insert(f) {
            errs.push(FieldError::duplicate(&path, f.as_str()));
        }
    }
    if let Some(policy) = get(spec, "ipFamilyPolicy") {
        let p = policy.as_str().unwrap_or("");
        if !POLICIES.contains(&p) {
            errs.push(FieldError::not_supported("spec.ipFamilyPolicy", p, &POLICIES));
        }
    }

    let mut has_invalid = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                has_invalid = true;
                errs.push(
                    FieldError::invalid(
                        "spec.clusterIPs",
                        ips_value.clone(),
                        "'None' must be the first and only value",
                    )
                    .go(&go_ips),
                );
            }
            continue;
        }
        let e = ip_errors(&Path::root("spec.clusterIPs").index(i), ip);
        has_invalid |= !e.is_empty();
        errs.extend(e);
    }
    if ips.len() > 2 {
        errs.push(
            FieldError::invalid("spec.clusterIPs", ips_value.clone(), "may only hold up to 2 values").go(&go_ips),
        );
    }
    if has_invalid {
        return errs;
    }
    if ips.len() > 1 {
        let fams: BTreeSet<&str> = ips.iter().filter_map(|ip| family_of(ip)).collect();
        if fams.len() < 2 {
            errs.push(
                FieldError::invalid(
                    "spec.clusterIPs",
                    ips_value.clone(),
                    "may specify no more than one IP for each IP family",
                )
                .go(&go_ips),
            );
        }
    }
    if !is_headless(spec) && !ips.is_empty() && !families.is_empty() {
        for (i, ip) in ips.iter().enumerate() {
            let Some(want) = families.get(i) else { break };
            let is_v6 = family_of(ip) == Some("IPv6");
            let path = Path::root("spec.clusterIPs").index(i);
            if want == "IPv4" && is_v6 {
                errs.push(FieldError::invalid(
                    &path,
                    ip.as_str(),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if want == "IPv6" && !is_v6 {
                errs.push(FieldError::invalid(
                    &path,
                    ip.as_str(),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

fn load_balancer_class_errors(old: Option<&Value>, spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let class = opt_str(spec, "loadBalancerClass");
    let is_lb = svc_type(spec) == "LoadBalancer";
    if let Some(old) = old {
        if svc_type(old) == "LoadBalancer" && is_lb && opt_str(old, "loadBalancerClass") != class {
            let v = class.map_or(Value::Null, Value::from);
            errs.push(FieldError::invalid("spec.loadBalancerClass", v, "may not change once set"));
        }
    }
    match class {
        Some(c) if is_lb => errs.extend(each(&Path::root("spec.loadBalancerClass"), c, is_qualified_name(c))),
        Some(_) => {
            errs.push(FieldError::forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"))
        }
        None => {}
    }
    errs
}

fn upgrade_downgrade_cluster_ips(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !needs_cluster_ip(new) || !needs_cluster_ip(old) || (is_headless(old) && is_headless(new)) {
        return errs;
    }
    let (old_ips, new_ips) = (strings(old, "clusterIPs"), strings(new, "clusterIPs"));
    let go = go_strings_or_nil(&new_ips);
    let changed = |i: usize| {
        FieldError::invalid(format!("spec.clusterIPs[{i}]"), json!(new_ips), "may not change once set").go(&go)
    };
    if old_ips.len() == new_ips.len() {
        for (i, ip) in old_ips.iter().enumerate() {
            if *ip != new_ips[i] {
                errs.push(changed(i));
            }
        }
    } else if old_ips.len() > new_ips.len() {
        if new_ips.is_empty() {
            errs.push(
                FieldError::invalid("spec.clusterIPs[0]", json!(new_ips), "primary clusterIP can not be unset").go(&go),
            );
        }
        if !old_ips.is_empty() && !new_ips.is_empty() && new_ips[0] != old_ips[0] {
            errs.push(changed(0));
        }
        if new_ips.len() == 1 && opt_str(new, "ipFamilyPolicy") != Some("SingleStack") {
            let v = opt_str(new, "ipFamilyPolicy").map_or(Value::Null, Value::from);
            errs.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                v,
                "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
        errs.push(changed(0));
    }
    errs
}

fn upgrade_downgrade_ip_families(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !needs_cluster_ip(new) || !needs_cluster_ip(old) || is_headless(old) || is_headless(new) {
        return errs;
    }
    let (old_f, new_f) = (strings(old, "ipFamilies"), strings(new, "ipFamilies"));
    let new_ips = strings(new, "clusterIPs");
    if old_f.len() == new_f.len() {
        for (i, f) in old_f.iter().enumerate() {
            if *f != new_f[i] {
                errs.push(
                    FieldError::invalid("spec.ipFamilies[0]", json!(new_f), "may not change once set")
                        .go(go_family_list(&new_f)),
                );
            }
        }
    } else if old_f.len() > new_f.len() {
        if new_ips.is_empty() {
            errs.push(
                FieldError::invalid("spec.ipFamilies[0]", json!(new_f), "primary ipFamily can not be unset")
                    .go(go_family_list(&new_f)),
            );
        }
        if !new_f.is_empty() && new_f[0] != old_f[0] {
            // kube reports the clusterIPs as the value here.
            errs.push(
                FieldError::invalid("spec.ipFamilies[0]", json!(new_ips), "may not change once set")
                    .go(go_strings_or_nil(&new_ips)),
            );
        }
        if new_f.len() == 1 && opt_str(new, "ipFamilyPolicy") != Some("SingleStack") {
            let v = opt_str(new, "ipFamilyPolicy").map_or(Value::Null, Value::from);
            errs.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                v,
                "must be set to 'SingleStack' when releasing the secondary ipFamily",
            ));
        }
    } else if !old_f.is_empty() && !new_f.is_empty() && new_f[0] != old_f[0] {
        errs.push(
            FieldError::invalid("spec.ipFamilies[0]", json!(new_ips), "may not change once set")
                .go(go_strings_or_nil(&new_ips)),
        );
    }
    errs
}

/// `%#v` of a `[]core.IPFamily`.
fn go_family_list(families: &[String]) -> String {
    if families.is_empty() {
        return "[]core.IPFamily(nil)".to_string();
    }
    let quoted: Vec<String> = families.iter().map(|f| crate::selector::validation::go_quote(f)).collect();
    format!("[]core.IPFamily{{{}}}", quoted.join(", "))
}
