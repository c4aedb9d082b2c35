//! Kind-specific validation with kube-apiserver's exact messages: the
//! semantic checks kube runs after decoding and defaulting (`pkg/apis/*/validation`,
//! plus the Service allocator's range checks), as pure functions over JSON.
//!
//! Start at [`validate`] and [`validate_update`]; both take an object that
//! has been through [`crate::defaults::apply`] and return every problem at
//! once, in kube's order. Each [`FieldError`] renders exactly as Go's
//! `field.Error.Error()`, and [`invalid_message`] builds the 422 `Status`
//! message. Metadata (names, labels, annotations) is validated elsewhere.
//!
//! | kind | create | update |
//! | --- | --- | --- |
//! | Service | allocation checks (IP families, cluster IP and node port ranges), then `ValidateService` | cluster IPs/families may not change, LB class, health check port, then create rules |
//! | Endpoints, EndpointSlice | addresses, ports, limits | + EndpointSlice `addressType` immutable |
//! | Pod | containers, ports, env, probes, volumes, policies | only images, `activeDeadlineSeconds`, added tolerations may change |
//! | Deployment, ReplicaSet | selector vs. template, replicas, strategy | + selector immutable |
//! | Ingress, IngressClass | hosts, paths, backends, TLS; controller, parameters | + controller immutable |
//! | Secret, ConfigMap | keys, 1 MiB, per-type keys | + `type` immutable, `immutable` objects frozen |
//! | Node | pod CIDRs, taints | + pod CIDRs and provider ID set once |
//! | Namespace, Event | nothing beyond metadata | nothing |

mod access;
mod apps;
mod config;
mod endpoints;
mod field;
mod ingress;
mod node;
mod pod;
mod service;
mod text;

use std::net::{IpAddr, Ipv4Addr};

use serde_json::Value;

pub use config::MAX_SIZE as MAX_SECRET_SIZE;
pub use field::{ErrorKind, FieldError, invalid_message, qualified_kind};
pub use service::{
    MISMATCHED_NETWORK, cluster_ip_allocation_error, cluster_ip_range_detail, ip_in_service_cidr,
    node_port_range_detail, not_in_range_detail, prepare_create as prepare_service_create,
    prepare_update as prepare_service_update,
};
pub use text::{non_special_ip_errors_at as non_special_ip_errors, parse_cidr_sloppy, parse_ip_sloppy};

/// The cluster configuration some checks depend on.
///
/// | field | default | kube-apiserver flag |
/// | --- | --- | --- |
/// | `service_cidrs` | `10.96.0.0/12` | `--service-cluster-ip-range` |
/// | `node_port_range` | `30000-32767` | `--service-node-port-range` |
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// Service CIDRs as (address, prefix length); their IP families are the
    /// families the cluster serves (two CIDRs of different families make it
    /// dual-stack).
    pub service_cidrs: Vec<(IpAddr, u8)>,
    /// Inclusive node port range.
    pub node_port_range: (u16, u16),
}

impl Default for Context {
    fn default() -> Self {
        Context { service_cidrs: vec![(IpAddr::V4(Ipv4Addr::new(10, 96, 0, 0)), 12)], node_port_range: (30000, 32767) }
    }
}

/// Validates a new object of `kind` (after defaulting), as kube-apiserver
/// does on create. Empty means valid.
///
/// For a Service this includes the checks kube's Service storage makes
/// before allocating (IP families, requested cluster IPs inside
/// `ctx.service_cidrs`, requested node ports inside `ctx.node_port_range`);
/// like kube, when those fail only they are reported. Whether a requested
/// IP or port is already taken is for the allocator to say.
pub fn validate(kind: &str, obj: &Value, ctx: &Context) -> Vec<FieldError> {
    match kind {
        "Service" => service::validate(obj, ctx),
        "Endpoints" => endpoints::validate_endpoints(obj),
        "EndpointSlice" => endpoints::validate_endpoint_slice(obj, false),
        "Pod" => pod::validate_pod(obj),
        "Deployment" => apps::validate(obj, apps::Kind::Deployment),
        "ReplicaSet" => apps::validate(obj, apps::Kind::ReplicaSet),
        "StatefulSet" => apps::validate_statefulset(obj),
        "DaemonSet" => apps::validate(obj, apps::Kind::DaemonSet),
        "Ingress" => ingress::validate_create(obj),
        "IngressClass" => ingress::validate_class(obj),
        "Secret" => config::validate_secret(obj),
        "ConfigMap" => config::validate_config_map(obj),
        "Node" => node::validate(obj),
        _ => Vec::new(),
    }
}

/// Validates an update of `old` to `new` (both defaulted), as kube-apiserver
/// does: the kind's update rules, then (for most kinds) the create rules
/// on `new`.
///
/// For a Service, `new` is first normalized as kube's Service strategy
/// does (see [`prepare_service_update`]); the API server should store the
/// object that function produces.
pub fn validate_update(kind: &str, new: &Value, old: &Value, ctx: &Context) -> Vec<FieldError> {
    match kind {
        "Service" => service::validate_update(new, old, ctx),
        "Endpoints" => endpoints::validate_endpoints(new),
        "EndpointSlice" => endpoints::validate_endpoint_slice_update(new, old),
        "Pod" => pod::validate_pod_update(new, old),
        "Deployment" => apps::validate_update(new, old, apps::Kind::Deployment),
        "ReplicaSet" => apps::validate_update(new, old, apps::Kind::ReplicaSet),
        "StatefulSet" => apps::validate_statefulset_update(new, old),
        "DaemonSet" => apps::validate_update(new, old, apps::Kind::DaemonSet),
        "Ingress" => ingress::validate_update(new, old),
        "IngressClass" => ingress::validate_class_update(new, old),
        "Secret" => config::validate_secret_update(new, old),
        "ConfigMap" => config::validate_config_map_update(new, old),
        "Node" => {
            let mut errs = node::validate(new);
            errs.extend(node::validate_update(new, old));
            errs
        }
        _ => Vec::new(),
    }
}
