//! Cluster objects for tests and benchmarks: terse constructors and one
//! sample cluster that exercises every kind of record. Not part of the
//! server; public so that integration tests and load tools share it.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Pod, PodIP, PodStatus, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::build::{Cluster, SERVICE_NAME_LABEL};

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta { namespace: Some(ns.into()), name: Some(name.into()), ..ObjectMeta::default() }
}

/// A port: `(name, port, protocol)`; an empty name is an unnamed port.
pub type Port<'a> = (&'a str, i32, &'a str);

/// A Service with the given cluster IPs (`["None"]` for headless).
pub fn service(ns: &str, name: &str, cluster_ips: &[&str], ports: &[Port<'_>]) -> Service {
    let ports = ports
        .iter()
        .map(|(n, p, proto)| ServicePort {
            name: (!n.is_empty()).then(|| n.to_string()),
            port: *p,
            protocol: Some(proto.to_string()),
            ..ServicePort::default()
        })
        .collect();
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            cluster_ip: cluster_ips.first().map(|s| s.to_string()),
            cluster_ips: Some(cluster_ips.iter().map(|s| s.to_string()).collect()),
            selector: Some(BTreeMap::from([("app".to_string(), name.to_string())])),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub fn headless(ns: &str, name: &str, ports: &[Port<'_>]) -> Service {
    service(ns, name, &["None"], ports)
}

pub fn external_name(ns: &str, name: &str, target: &str) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some(target.into()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub fn publishing_not_ready(mut svc: Service) -> Service {
    if let Some(spec) = svc.spec.as_mut() {
        spec.publish_not_ready_addresses = Some(true);
    }
    svc
}

/// An endpoint: `(address, hostname, ready)`.
pub type Ep<'a> = (&'a str, Option<&'a str>, bool);

/// An EndpointSlice of `service` (address type from the first address).
pub fn slice(ns: &str, service: &str, name: &str, endpoints: &[Ep<'_>], ports: &[Port<'_>]) -> EndpointSlice {
    let v6 = endpoints.first().is_some_and(|(a, _, _)| a.contains(':'));
    let mut metadata = meta(ns, name);
    metadata.labels = Some(BTreeMap::from([(SERVICE_NAME_LABEL.to_string(), service.to_string())]));
    EndpointSlice {
        metadata,
        address_type: if v6 { "IPv6" } else { "IPv4" }.into(),
        endpoints: endpoints
            .iter()
            .map(|(addr, host, ready)| Endpoint {
                addresses: vec![addr.to_string()],
                hostname: host.map(str::to_string),
                conditions: Some(EndpointConditions { ready: Some(*ready), ..EndpointConditions::default() }),
                ..Endpoint::default()
            })
            .collect(),
        ports: Some(
            ports
                .iter()
                .map(|(n, p, proto)| EndpointPort {
                    name: Some(n.to_string()),
                    port: Some(*p),
                    protocol: Some(proto.to_string()),
                    ..EndpointPort::default()
                })
                .collect(),
        ),
    }
}

pub fn pod(ns: &str, name: &str, ips: &[&str]) -> Pod {
    Pod {
        metadata: meta(ns, name),
        status: Some(PodStatus {
            pod_ip: ips.first().map(|s| s.to_string()),
            pod_ips: Some(ips.iter().map(|ip| PodIP { ip: ip.to_string() }).collect()),
            ..PodStatus::default()
        }),
        ..Pod::default()
    }
}

pub fn namespace(name: &str) -> Namespace {
    Namespace { metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() }, ..Namespace::default() }
}

/// A cluster with every kind of record, in namespace `default`:
///
/// | Service | what |
/// | --- | --- |
/// | `kubernetes` | 10.96.0.1, `https` 443/TCP |
/// | `web` | 10.96.0.10 and fd00::10; `http` 80/TCP, `dns` 53/UDP, unnamed 8080; endpoints 10.1.0.1 (ready), 10.1.0.2 (not ready) |
/// | `db` | headless, `postgres` 5432/TCP; db-0 = 10.1.1.1, 10.1.1.2 (no hostname), fd00::1:1, and 10.1.1.3 not ready |
/// | `idle` | headless, only a not-ready endpoint |
/// | `warming` | headless publishing not-ready addresses: 10.1.2.1 not ready |
/// | `portless` | headless without ports: 10.1.3.1 |
/// | `ext` | ExternalName example.com |
/// | `alias` | ExternalName web.default.svc.cluster.local |
/// | `dangling` | ExternalName nope.default.svc.cluster.local |
///
/// plus namespaces `default`, `kube-system`, `empty`, and pod `pod-a`
/// (10.1.0.1) for `pods verified`.
pub fn sample_cluster() -> Cluster {
    let d = "default";
    Cluster {
        services: vec![
            service(d, "kubernetes", &["10.96.0.1"], &[("https", 443, "TCP")]),
            service(
                d,
                "web",
                &["10.96.0.10", "fd00::10"],
                &[("http", 80, "TCP"), ("dns", 53, "UDP"), ("", 8080, "TCP")],
            ),
            headless(d, "db", &[("postgres", 5432, "TCP")]),
            headless(d, "idle", &[("http", 80, "TCP")]),
            publishing_not_ready(headless(d, "warming", &[("http", 80, "TCP")])),
            headless(d, "portless", &[]),
            external_name(d, "ext", "example.com"),
            external_name(d, "alias", "web.default.svc.cluster.local"),
            external_name(d, "dangling", "nope.default.svc.cluster.local"),
        ]
        .into_iter()
        .map(Arc::new)
        .collect(),
        slices: vec![
            slice(d, "web", "web-1", &[("10.1.0.1", None, true), ("10.1.0.2", None, false)], &[("http", 8080, "TCP")]),
            slice(
                d,
                "db",
                "db-1",
                &[("10.1.1.1", Some("db-0"), true), ("10.1.1.2", None, true), ("10.1.1.3", Some("db-2"), false)],
                &[("postgres", 5432, "TCP")],
            ),
            slice(d, "db", "db-2", &[("fd00::1:1", None, true)], &[("postgres", 5432, "TCP")]),
            slice(d, "idle", "idle-1", &[("10.1.4.1", None, false)], &[("http", 80, "TCP")]),
            slice(d, "warming", "warming-1", &[("10.1.2.1", None, false)], &[("http", 80, "TCP")]),
            slice(d, "portless", "portless-1", &[("10.1.3.1", None, true)], &[]),
        ]
        .into_iter()
        .map(Arc::new)
        .collect(),
        pods: vec![Arc::new(pod(d, "pod-a", &["10.1.0.1"]))],
        namespaces: ["default", "kube-system", "empty"].into_iter().map(|n| Arc::new(namespace(n))).collect(),
    }
}
