//! The cluster objects as the DNS server keeps them: only what the zone is
//! built from, without `ObjectMeta` (360 bytes even when empty) and with
//! no reflector copy beside them. The watcher (`watch.rs`) decodes the API
//! server's JSON straight into these types through [`Watched`], which
//! carries the name, namespace and resourceVersion of the event and is
//! dropped once the object is handed to the zone; the zone (`zone.rs`)
//! holds the one copy, keyed by namespace and name. The labels and
//! annotations the zone reads become fields, parsed (addresses, times)
//! rather than kept as text.
//!
//! Each type decodes through a private "wire" struct shaped like the API's
//! JSON, and converts from the k8s-openapi type through that same struct,
//! so [`build_view`](crate::build_view) over typed objects and the server
//! over JSON read the same fields (`tests` checks the two agree).

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer, Serialize};

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The pre-EndpointSlice way to publish not-ready endpoints; the spec
/// still names it.
const TOLERATE_UNREADY: &str = "service.alpha.kubernetes.io/tolerate-unready-endpoints";
/// When the change that led to a slice's current state happened (set by
/// the EndpointSlice controller).
const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// Name, namespace and resourceVersion: all a watch needs.
fn trimmed(meta: ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        resource_version: meta.resource_version,
        ..ObjectMeta::default()
    }
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref().and_then(|a| a.get(key)).map(String::as_str)
}

fn boxed(s: Option<String>) -> Option<Box<str>> {
    s.map(String::into_boxed_str)
}

/// A port protocol, without an allocation for the usual three.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub enum Protocol {
    /// `TCP`, or no protocol given (the API's default).
    #[default]
    Tcp,
    Udp,
    Sctp,
    Other(Box<str>),
}

impl Protocol {
    fn from_wire(p: Option<String>) -> Protocol {
        match p.as_deref() {
            None | Some("TCP") => Protocol::Tcp,
            Some("UDP") => Protocol::Udp,
            Some("SCTP") => Protocol::Sctp,
            Some(_) => Protocol::Other(p.unwrap_or_default().into_boxed_str()),
        }
    }

    /// The SRV label: `_tcp`, `_udp`, ...
    pub fn label(&self) -> String {
        match self {
            Protocol::Tcp => "_tcp".to_string(),
            Protocol::Udp => "_udp".to_string(),
            Protocol::Sctp => "_sctp".to_string(),
            Protocol::Other(p) => format!("_{}", p.to_ascii_lowercase()),
        }
    }
}

/// An object as a watch event or list item brings it: the few metadata
/// fields the watcher needs, and the object as the zone keeps it.
#[derive(Clone, Debug, Serialize)]
pub struct Watched<T> {
    pub metadata: ObjectMeta,
    pub object: T,
}

/// A Service.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DnsService {
    /// `type: ExternalName`: the target as written (empty if missing).
    pub external_name: Option<Box<str>>,
    /// `clusterIP: None`.
    pub headless: bool,
    /// `publishNotReadyAddresses`, or the old tolerate-unready annotation.
    pub publish_not_ready: bool,
    /// Whether it has a selector (for the programming-latency metric).
    pub selects_pods: bool,
    /// `spec.clusterIPs`, or `spec.clusterIP` when that is empty: the ones
    /// that parse.
    pub cluster_ips: Box<[IpAddr]>,
    pub ports: Box<[DnsServicePort]>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DnsServicePort {
    pub name: Option<Box<str>>,
    pub port: i32,
    pub protocol: Protocol,
}

impl DnsService {
    pub fn is_headless(&self) -> bool {
        self.headless
    }
}

#[derive(Deserialize)]
struct ServiceWire {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<ServiceSpecWire>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceSpecWire {
    #[serde(rename = "type")]
    type_: Option<String>,
    #[serde(rename = "clusterIP")]
    cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs")]
    cluster_ips: Option<Vec<String>>,
    external_name: Option<String>,
    ports: Option<Vec<ServicePortWire>>,
    publish_not_ready_addresses: Option<bool>,
    selector: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct ServicePortWire {
    name: Option<String>,
    #[serde(default)]
    port: i32,
    protocol: Option<String>,
}

impl From<ServiceWire> for Watched<DnsService> {
    fn from(w: ServiceWire) -> Watched<DnsService> {
        let tolerate = annotation(&w.metadata, TOLERATE_UNREADY) == Some("true");
        let spec = w.spec.unwrap_or_default();
        let object = DnsService {
            external_name: (spec.type_.as_deref() == Some("ExternalName"))
                .then(|| spec.external_name.unwrap_or_default().into_boxed_str()),
            headless: spec.cluster_ip.as_deref() == Some("None"),
            cluster_ips: match spec.cluster_ips.filter(|ips| !ips.is_empty()) {
                Some(ips) => ips.iter().filter_map(|ip| ip.parse().ok()).collect(),
                None => spec.cluster_ip.iter().filter_map(|ip| ip.parse().ok()).collect(),
            },
            ports: spec
                .ports
                .unwrap_or_default()
                .into_iter()
                .map(|p| DnsServicePort {
                    name: boxed(p.name),
                    port: p.port,
                    protocol: Protocol::from_wire(p.protocol),
                })
                .collect(),
            publish_not_ready: spec.publish_not_ready_addresses == Some(true) || tolerate,
            selects_pods: spec.selector.is_some_and(|s| !s.is_empty()),
        };
        Watched { metadata: trimmed(w.metadata), object }
    }
}

impl From<&Service> for DnsService {
    fn from(s: &Service) -> DnsService {
        Watched::<DnsService>::from(ServiceWire {
            metadata: s.metadata.clone(),
            spec: s.spec.as_ref().map(|spec| ServiceSpecWire {
                type_: spec.type_.clone(),
                cluster_ip: spec.cluster_ip.clone(),
                cluster_ips: spec.cluster_ips.clone(),
                external_name: spec.external_name.clone(),
                ports: spec.ports.as_ref().map(|ports| {
                    ports
                        .iter()
                        .map(|p| ServicePortWire { name: p.name.clone(), port: p.port, protocol: p.protocol.clone() })
                        .collect()
                }),
                publish_not_ready_addresses: spec.publish_not_ready_addresses,
                selector: spec.selector.clone(),
            }),
        })
        .object
    }
}

/// An EndpointSlice.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DnsSlice {
    /// The Service it belongs to (its `kubernetes.io/service-name` label).
    pub service: Option<Box<str>>,
    /// Its `last-change-trigger-time` annotation.
    pub trigger_time: Option<jiff::Timestamp>,
    /// Addresses are IPv4 or IPv6 (not FQDN).
    pub ip: bool,
    pub endpoints: Box<[DnsEndpoint]>,
    pub ports: Box<[DnsEndpointPort]>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DnsEndpoint {
    /// The addresses that parse as IP addresses.
    pub addresses: Box<[IpAddr]>,
    pub hostname: Option<Box<str>>,
    /// The `ready` condition; unset counts as ready.
    pub ready: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DnsEndpointPort {
    pub name: Option<Box<str>>,
    pub port: Option<i32>,
    pub protocol: Protocol,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SliceWire {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    address_type: String,
    #[serde(default)]
    endpoints: Vec<EndpointWire>,
    ports: Option<Vec<EndpointPortWire>>,
}

#[derive(Deserialize)]
struct EndpointWire {
    #[serde(default)]
    addresses: Vec<String>,
    hostname: Option<String>,
    conditions: Option<ConditionsWire>,
}

#[derive(Deserialize)]
struct ConditionsWire {
    ready: Option<bool>,
}

#[derive(Deserialize)]
struct EndpointPortWire {
    name: Option<String>,
    port: Option<i32>,
    protocol: Option<String>,
}

impl From<SliceWire> for Watched<DnsSlice> {
    fn from(w: SliceWire) -> Watched<DnsSlice> {
        let service = w.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)).map(|s| s.as_str().into());
        let trigger_time = annotation(&w.metadata, TRIGGER_TIME).and_then(|t| t.parse().ok());
        let object = DnsSlice {
            service,
            trigger_time,
            ip: w.address_type == "IPv4" || w.address_type == "IPv6",
            endpoints: w
                .endpoints
                .into_iter()
                .map(|e| DnsEndpoint {
                    addresses: e.addresses.iter().filter_map(|a| a.parse().ok()).collect(),
                    hostname: boxed(e.hostname),
                    ready: e.conditions.and_then(|c| c.ready).unwrap_or(true),
                })
                .collect(),
            ports: w
                .ports
                .unwrap_or_default()
                .into_iter()
                .map(|p| DnsEndpointPort {
                    name: boxed(p.name),
                    port: p.port,
                    protocol: Protocol::from_wire(p.protocol),
                })
                .collect(),
        };
        Watched { metadata: trimmed(w.metadata), object }
    }
}

impl From<&EndpointSlice> for DnsSlice {
    fn from(s: &EndpointSlice) -> DnsSlice {
        Watched::<DnsSlice>::from(SliceWire {
            metadata: s.metadata.clone(),
            address_type: s.address_type.clone(),
            endpoints: s
                .endpoints
                .iter()
                .map(|e| EndpointWire {
                    addresses: e.addresses.clone(),
                    hostname: e.hostname.clone(),
                    conditions: e.conditions.as_ref().map(|c| ConditionsWire { ready: c.ready }),
                })
                .collect(),
            ports: s.ports.as_ref().map(|ports| {
                ports
                    .iter()
                    .map(|p| EndpointPortWire { name: p.name.clone(), port: p.port, protocol: p.protocol.clone() })
                    .collect()
            }),
        })
        .object
    }
}

/// A Pod: its addresses (for `pods verified`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DnsPod {
    /// Being deleted (a deletion timestamp is set).
    pub terminating: bool,
    /// `status.podIPs`, or `status.podIP` when that is empty; the ones
    /// that parse.
    pub ips: Box<[IpAddr]>,
}

#[derive(Deserialize)]
struct PodWire {
    #[serde(default)]
    metadata: ObjectMeta,
    status: Option<PodStatusWire>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodStatusWire {
    #[serde(rename = "podIP")]
    pod_ip: Option<String>,
    #[serde(rename = "podIPs")]
    pod_ips: Option<Vec<PodIpWire>>,
}

#[derive(Deserialize)]
struct PodIpWire {
    #[serde(default)]
    ip: String,
}

impl From<PodWire> for Watched<DnsPod> {
    fn from(w: PodWire) -> Watched<DnsPod> {
        let status = w.status.unwrap_or_default();
        let mut ips: Vec<IpAddr> = status.pod_ips.iter().flatten().filter_map(|p| p.ip.parse().ok()).collect();
        if ips.is_empty() {
            ips.extend(status.pod_ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()));
        }
        let object = DnsPod { terminating: w.metadata.deletion_timestamp.is_some(), ips: ips.into() };
        Watched { metadata: trimmed(w.metadata), object }
    }
}

impl From<&Pod> for DnsPod {
    fn from(p: &Pod) -> DnsPod {
        Watched::<DnsPod>::from(PodWire {
            metadata: p.metadata.clone(),
            status: p.status.as_ref().map(|s| PodStatusWire {
                pod_ip: s.pod_ip.clone(),
                pod_ips: s.pod_ips.as_ref().map(|ips| ips.iter().map(|ip| PodIpWire { ip: ip.ip.clone() }).collect()),
            }),
        })
        .object
    }
}

/// A Namespace: that it exists is all the zone needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DnsNamespace;

#[derive(Deserialize)]
struct NamespaceWire {
    #[serde(default)]
    metadata: ObjectMeta,
}

impl From<NamespaceWire> for Watched<DnsNamespace> {
    fn from(w: NamespaceWire) -> Watched<DnsNamespace> {
        Watched { metadata: trimmed(w.metadata), object: DnsNamespace }
    }
}

/// Decoding: a `Watched<T>` through T's wire struct, and `T` alone as the
/// object part of that.
macro_rules! decoded {
    ($t:ty, $wire:ty) => {
        impl<'de> Deserialize<'de> for Watched<$t> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$wire>::deserialize(d).map(Watched::from)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Watched::<$t>::deserialize(d).map(|w| w.object)
            }
        }
    };
}

decoded!(DnsService, ServiceWire);
decoded!(DnsSlice, SliceWire);
decoded!(DnsPod, PodWire);
decoded!(DnsNamespace, NamespaceWire);

/// Makes `Watched<T>` listable and watchable at the URL of the k8s-openapi
/// type it stands for.
macro_rules! object {
    ($t:ty, $k:ty) => {
        impl k8s_openapi::Resource for Watched<$t> {
            const API_VERSION: &'static str = <$k as k8s_openapi::Resource>::API_VERSION;
            const GROUP: &'static str = <$k as k8s_openapi::Resource>::GROUP;
            const KIND: &'static str = <$k as k8s_openapi::Resource>::KIND;
            const VERSION: &'static str = <$k as k8s_openapi::Resource>::VERSION;
            const URL_PATH_SEGMENT: &'static str = <$k as k8s_openapi::Resource>::URL_PATH_SEGMENT;
            type Scope = <$k as k8s_openapi::Resource>::Scope;
        }

        impl k8s_openapi::Metadata for Watched<$t> {
            type Ty = ObjectMeta;
            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

object!(DnsService, Service);
object!(DnsSlice, EndpointSlice);
object!(DnsPod, Pod);
object!(DnsNamespace, Namespace);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, sample_cluster};

    /// What the watcher decodes from the API's JSON equals the
    /// conversion `build_view` uses.
    fn round_trip<K: Serialize, D: for<'de> Deserialize<'de> + for<'a> From<&'a K> + PartialEq + std::fmt::Debug>(
        object: &K,
    ) {
        let json = serde_json::to_string(object).unwrap();
        let decoded: D = serde_json::from_str(&json).unwrap();
        assert_eq!(decoded, D::from(object), "{json}");
    }

    #[test]
    fn decoding_json_and_converting_typed_objects_agree() {
        let cluster = sample_cluster();
        for s in &cluster.services {
            round_trip::<Service, DnsService>(s);
        }
        for s in &cluster.slices {
            round_trip::<EndpointSlice, DnsSlice>(s);
        }
        for p in &cluster.pods {
            round_trip::<Pod, DnsPod>(p);
        }
        let mut annotated = testkit::headless("a", "b", &[]);
        annotated.metadata.annotations = Some(BTreeMap::from([(TOLERATE_UNREADY.into(), "true".into())]));
        annotated.metadata.resource_version = Some("7".into());
        round_trip::<Service, DnsService>(&annotated);
        assert!(DnsService::from(&annotated).publish_not_ready);
        let mut terminating = testkit::pod("a", "p", &["10.0.0.1", "fd00::1", "junk"]);
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        round_trip::<Pod, DnsPod>(&terminating);
        let pod = DnsPod::from(&terminating);
        assert!(pod.terminating);
        assert_eq!(pod.ips.len(), 2);
    }

    #[test]
    fn only_what_the_zone_reads_is_kept() {
        let json = r#"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice",
            "metadata":{"name":"web-x","namespace":"default","resourceVersion":"29","uid":"u",
              "labels":{"kubernetes.io/service-name":"web","app":"web"},
              "annotations":{"endpoints.kubernetes.io/last-change-trigger-time":"2026-11-22T04:06:50Z"},
              "ownerReferences":[{"apiVersion":"v1","kind":"Service","name":"web","uid":"s"}]},
            "addressType":"IPv4",
            "endpoints":[{"addresses":["10.244.0.5"],"conditions":{"ready":false,"serving":true},
              "targetRef":{"kind":"Pod","name":"p","namespace":"default","uid":"p"}}],
            "ports":[{"name":"","port":8080,"protocol":"TCP"}]}"#;
        let w: Watched<DnsSlice> = serde_json::from_str(json).unwrap();
        assert_eq!(w.metadata.name.as_deref(), Some("web-x"));
        assert_eq!(w.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(w.metadata.resource_version.as_deref(), Some("29"));
        assert!(w.metadata.labels.is_none() && w.metadata.annotations.is_none() && w.metadata.uid.is_none());
        let s = w.object;
        assert_eq!(s, serde_json::from_str::<DnsSlice>(json).unwrap());
        assert_eq!(s.service.as_deref(), Some("web"));
        assert_eq!(s.trigger_time, Some("2026-11-22T04:06:50Z".parse().unwrap()));
        assert!(s.ip && !s.endpoints[0].ready);
        assert_eq!(s.ports[0].port, Some(8080));
        assert_eq!(s.ports[0].protocol, Protocol::Tcp);
        assert_eq!(s.ports[0].name.as_deref(), Some(""));
    }
}
