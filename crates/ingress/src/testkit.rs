//! Terse constructors of the objects an Ingress table is built from, for
//! tests and benchmarks (not used by the controller itself).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressClass, IngressClassSpec, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::class::DEFAULT_CLASS_ANNOTATION;
use crate::table::SERVICE_NAME_LABEL;

pub fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta { namespace: Some(ns.into()), name: Some(name.into()), ..ObjectMeta::default() }
}

/// A ClusterIP Service with ports `(name, port, targetPort)`; an empty name
/// is an unnamed port.
pub fn service(ns: &str, name: &str, ports: &[(&str, i32, i32)]) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            ports: Some(
                ports
                    .iter()
                    .map(|(n, p, t)| ServicePort {
                        name: (!n.is_empty()).then(|| n.to_string()),
                        port: *p,
                        target_port: Some(IntOrString::Int(*t)),
                        protocol: Some("TCP".into()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// Marks every port of the Service `appProtocol: kubernetes.io/h2c`.
pub fn h2c(mut svc: Service) -> Service {
    for p in svc.spec.iter_mut().flat_map(|s| s.ports.iter_mut().flatten()) {
        p.app_protocol = Some(crate::table::H2C_APP_PROTOCOL.into());
    }
    svc
}

/// An EndpointSlice of `service`: endpoints `(ip, ready)`, ports
/// `(name, port)`.
pub fn slice(ns: &str, service: &str, name: &str, endpoints: &[(&str, bool)], ports: &[(&str, u16)]) -> EndpointSlice {
    let mut metadata = meta(ns, name);
    metadata.labels = Some(BTreeMap::from([(SERVICE_NAME_LABEL.to_string(), service.to_string())]));
    let v6 = endpoints.first().is_some_and(|(a, _)| a.contains(':'));
    EndpointSlice {
        metadata,
        address_type: if v6 { "IPv6" } else { "IPv4" }.into(),
        endpoints: endpoints
            .iter()
            .map(|(a, ready)| Endpoint {
                addresses: vec![a.to_string()],
                conditions: Some(EndpointConditions { ready: Some(*ready), ..EndpointConditions::default() }),
                ..Endpoint::default()
            })
            .collect(),
        ports: Some(
            ports
                .iter()
                .map(|(n, p)| EndpointPort {
                    name: Some(n.to_string()),
                    port: Some(i32::from(*p)),
                    protocol: Some("TCP".into()),
                    ..EndpointPort::default()
                })
                .collect(),
        ),
    }
}

/// A `kubernetes.io/tls` Secret from PEM text.
pub fn tls_secret(ns: &str, name: &str, crt_pem: &str, key_pem: &str) -> Secret {
    Secret {
        metadata: meta(ns, name),
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_string(), ByteString(crt_pem.as_bytes().to_vec())),
            ("tls.key".to_string(), ByteString(key_pem.as_bytes().to_vec())),
        ])),
        ..Secret::default()
    }
}

pub fn ingress_class(name: &str, controller: &str, default: bool) -> IngressClass {
    IngressClass {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations: default.then(|| BTreeMap::from([(DEFAULT_CLASS_ANNOTATION.to_string(), "true".to_string())])),
            ..ObjectMeta::default()
        },
        spec: Some(IngressClassSpec { controller: Some(controller.into()), parameters: None }),
    }
}

/// A Service backend; a port that parses as a number is a number, else a
/// name.
pub fn backend(service: &str, port: &str) -> IngressBackend {
    let port = match port.parse::<i32>() {
        Ok(n) => ServiceBackendPort { number: Some(n), name: None },
        Err(_) => ServiceBackendPort { number: None, name: Some(port.to_string()) },
    };
    IngressBackend {
        service: Some(IngressServiceBackend { name: service.to_string(), port: Some(port) }),
        resource: None,
    }
}

/// Builds an Ingress: `IngressBuilder::new("default", "web").path(Some("foo.com"), "/", "Prefix", "web", "80").build()`.
#[derive(Clone, Debug)]
pub struct IngressBuilder {
    ingress: Ingress,
}

impl IngressBuilder {
    pub fn new(ns: &str, name: &str) -> Self {
        IngressBuilder {
            ingress: Ingress { metadata: meta(ns, name), spec: Some(IngressSpec::default()), status: None },
        }
    }

    fn spec(&mut self) -> &mut IngressSpec {
        self.ingress.spec.get_or_insert_with(IngressSpec::default)
    }

    pub fn class(mut self, class: &str) -> Self {
        self.spec().ingress_class_name = Some(class.into());
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.ingress.metadata.annotations.get_or_insert_with(BTreeMap::new).insert(key.into(), value.into());
        self
    }

    /// Created `secs` seconds after the epoch (for conflict order).
    pub fn created(mut self, secs: i64) -> Self {
        let ts = k8s_openapi::jiff::Timestamp::from_second(secs).unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        self.ingress.metadata.creation_timestamp = Some(Time(ts));
        self
    }

    /// A path under the rule for `host` (created if needed; `None` = any host).
    pub fn path(mut self, host: Option<&str>, path: &str, path_type: &str, service: &str, port: &str) -> Self {
        let rules = self.spec().rules.get_or_insert_with(Vec::new);
        let idx = match rules.iter().position(|r| r.host.as_deref() == host) {
            Some(i) => i,
            None => {
                rules.push(IngressRule {
                    host: host.map(str::to_string),
                    http: Some(HTTPIngressRuleValue { paths: Vec::new() }),
                });
                rules.len() - 1
            }
        };
        rules[idx].http.get_or_insert_with(|| HTTPIngressRuleValue { paths: Vec::new() }).paths.push(HTTPIngressPath {
            path: Some(path.into()),
            path_type: path_type.into(),
            backend: backend(service, port),
        });
        self
    }

    pub fn default_backend(mut self, service: &str, port: &str) -> Self {
        self.spec().default_backend = Some(backend(service, port));
        self
    }

    pub fn tls(mut self, hosts: &[&str], secret: &str) -> Self {
        self.spec().tls.get_or_insert_with(Vec::new).push(IngressTLS {
            hosts: Some(hosts.iter().map(|h| h.to_string()).collect()),
            secret_name: Some(secret.into()),
        });
        self
    }

    pub fn build(self) -> Ingress {
        self.ingress
    }
}
