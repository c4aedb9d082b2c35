//! Objects for the Endpoints, EndpointSlice and mirroring controller tests:
//! services from JSON manifests, pods from a builder, and the seeds' setup
//! (three nginx pods of `pc-deployment` in namespace `dev`).

#![allow(dead_code)] // Each test binary uses its own share of the fixtures.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EndpointSubset, Endpoints, Pod, PodCondition, PodIP, PodSpec, PodStatus, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// A Service from its manifest, as `kubectl create -f` would send it.
pub fn service(manifest: Value) -> Service {
    serde_json::from_value(manifest).expect("test manifests are valid Services")
}

/// An Endpoints object from its manifest.
pub fn endpoints(manifest: Value) -> Endpoints {
    serde_json::from_value(manifest).expect("test manifests are valid Endpoints")
}

pub fn ts(text: &str) -> Timestamp {
    text.parse().expect("test timestamps are valid")
}

/// The seeds' `service-clusterip`: port 80 to pod port 80 of
/// `app=nginx-pod` in `dev`.
pub fn service_clusterip() -> Service {
    service(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "service-clusterip", "namespace": "dev", "uid": "svc-uid-1",
                     "creationTimestamp": "2024-05-01T10:00:00Z"},
        "spec": {
            "selector": {"app": "nginx-pod"},
            "clusterIP": "10.97.97.97",
            "clusterIPs": ["10.97.97.97"],
            "ipFamilies": ["IPv4"],
            "type": "ClusterIP",
            "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]
        }
    }))
}

/// The seeds' `service-headliness`: like `service-clusterip`, headless.
pub fn service_headliness() -> Service {
    service(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "service-headliness", "namespace": "dev", "uid": "svc-uid-2"},
        "spec": {
            "selector": {"app": "nginx-pod"},
            "clusterIP": "None",
            "ipFamilies": ["IPv4"],
            "type": "ClusterIP",
            "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]
        }
    }))
}

/// The seeds' three `pc-deployment` pods, ready, on node1 and node2.
pub fn seed_pods() -> Vec<Pod> {
    vec![
        pod("pc-deployment-66cb59b984-8p84h").ip("10.244.1.40").node("node1").build(),
        pod("pc-deployment-66cb59b984-vx8vx").ip("10.244.2.33").node("node2").build(),
        pod("pc-deployment-66cb59b984-wnncx").ip("10.244.1.39").node("node1").build(),
    ]
}

pub fn refs(pods: &[Pod]) -> Vec<&Pod> {
    pods.iter().collect()
}

/// A pod in `dev` labelled `app=nginx-pod`, Running and Ready, with an
/// nginx container exposing port 80; no IP until [`PodBuilder::ip`].
pub fn pod(name: &str) -> PodBuilder {
    PodBuilder(Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("dev".into()),
            uid: Some(format!("uid-{name}")),
            labels: Some(BTreeMap::from([("app".into(), "nginx-pod".into())])),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "nginx".into(),
                image: Some("nginx:1.17.1".into()),
                ports: Some(vec![ContainerPort { container_port: 80, ..Default::default() }]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(Time(ts("2024-05-01T10:00:05Z"))),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    })
}

pub struct PodBuilder(Pod);

impl PodBuilder {
    fn spec(&mut self) -> &mut PodSpec {
        self.0.spec.get_or_insert_with(Default::default)
    }

    fn status(&mut self) -> &mut PodStatus {
        self.0.status.get_or_insert_with(Default::default)
    }

    pub fn namespace(mut self, namespace: &str) -> Self {
        self.0.metadata.namespace = Some(namespace.into());
        self
    }

    pub fn labels(mut self, labels: &[(&str, &str)]) -> Self {
        self.0.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        self
    }

    /// Sets `status.podIP` and `status.podIPs` to one IP.
    pub fn ip(self, ip: &str) -> Self {
        self.ips(&[ip])
    }

    /// Sets `status.podIPs` (and `status.podIP` to the first).
    pub fn ips(mut self, ips: &[&str]) -> Self {
        let status = self.status();
        status.pod_ip = ips.first().map(|ip| ip.to_string());
        status.pod_ips = Some(ips.iter().map(|ip| PodIP { ip: ip.to_string() }).collect());
        self
    }

    pub fn node(mut self, node: &str) -> Self {
        self.spec().node_name = Some(node.into());
        self
    }

    pub fn phase(mut self, phase: &str) -> Self {
        self.status().phase = Some(phase.into());
        self
    }

    pub fn not_ready(mut self) -> Self {
        for condition in self.status().conditions.iter_mut().flatten() {
            if condition.type_ == "Ready" {
                condition.status = "False".into();
            }
        }
        self
    }

    /// Sets `metadata.deletionTimestamp`: the pod is shutting down.
    pub fn terminating(mut self) -> Self {
        self.0.metadata.deletion_timestamp = Some(Time(ts("2024-05-01T11:00:00Z")));
        self
    }

    pub fn hostname(mut self, hostname: &str, subdomain: &str) -> Self {
        let spec = self.spec();
        spec.hostname = Some(hostname.into());
        spec.subdomain = Some(subdomain.into());
        self
    }

    /// Replaces the container's ports with named ones: (name, port, protocol).
    pub fn container_ports(mut self, ports: &[(&str, i32, &str)]) -> Self {
        let ports = ports
            .iter()
            .map(|(name, port, protocol)| ContainerPort {
                name: Some(name.to_string()),
                container_port: *port,
                protocol: Some(protocol.to_string()),
                ..Default::default()
            })
            .collect();
        if let Some(container) = self.spec().containers.first_mut() {
            container.ports = Some(ports);
        }
        self
    }

    pub fn build(self) -> Pod {
        self.0
    }
}

/// `n` ready pods with distinct IPs in 10.244.0.0/16, spread over nodes
/// node0..node2.
pub fn many_pods(n: usize) -> Vec<Pod> {
    (0..n)
        .map(|i| {
            pod(&format!("web-{i:04}"))
                .ip(&format!("10.244.{}.{}", i / 250, i % 250 + 1))
                .node(&format!("node{}", i % 3))
                .build()
        })
        .collect()
}

/// The ready endpoints of an Endpoints object as `kubectl describe`
/// prints them: `ip:port` per port and address, comma-separated.
pub fn describe_endpoints(endpoints: &Endpoints) -> String {
    let mut out = Vec::new();
    for subset in endpoints.subsets.iter().flatten() {
        describe_subset(subset, subset.addresses.as_deref().unwrap_or_default(), &mut out);
    }
    out.join(",")
}

/// Like [`describe_endpoints`], for the not-ready addresses.
pub fn describe_not_ready(endpoints: &Endpoints) -> String {
    let mut out = Vec::new();
    for subset in endpoints.subsets.iter().flatten() {
        describe_subset(subset, subset.not_ready_addresses.as_deref().unwrap_or_default(), &mut out);
    }
    out.join(",")
}

fn describe_subset(
    subset: &EndpointSubset,
    addresses: &[k8s_openapi::api::core::v1::EndpointAddress],
    out: &mut Vec<String>,
) {
    match subset.ports.as_deref() {
        None | Some([]) => out.extend(addresses.iter().map(|a| a.ip.clone())),
        Some(ports) => {
            for port in ports {
                out.extend(addresses.iter().map(|a| format!("{}:{}", a.ip, port.port)));
            }
        }
    }
}

/// Pretends the API server stored the slices: names them after their
/// generateName plus a counter, and gives them a resourceVersion.
pub fn stored(created: &[EndpointSlice], first_index: usize) -> Vec<EndpointSlice> {
    created
        .iter()
        .enumerate()
        .map(|(i, slice)| {
            let mut slice = slice.clone();
            let prefix = slice.metadata.generate_name.take().unwrap_or_default();
            slice.metadata.name = Some(format!("{prefix}{:05}", first_index + i));
            slice.metadata.resource_version = Some("1".into());
            slice
        })
        .collect()
}

/// Applies updates to a stored set of slices by name (bumping versions).
pub fn apply_updates(slices: &mut [EndpointSlice], updates: &[EndpointSlice]) {
    for update in updates {
        let slot =
            slices.iter_mut().find(|s| s.metadata.name == update.metadata.name).expect("updates name stored slices");
        let mut update = update.clone();
        update.metadata.resource_version = Some("2".into());
        *slot = update;
    }
}

/// The addresses of a slice's endpoints, in slice order.
pub fn slice_addresses(slice: &EndpointSlice) -> Vec<&str> {
    slice.endpoints.iter().flat_map(|e| e.addresses.iter().map(String::as_str)).collect()
}
