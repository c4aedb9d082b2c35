//! Strict decoding of whole manifests of every served kind, through the
//! public API only, and agreement between the schemas and k8s-openapi's
//! own serialisation.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSpec, PodTemplateSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use svcnet_api::resources::RESOURCES;
use svcnet_api::schema::{DecodeError, SchemaKind, Schemas, check_object};

fn definition_of(kind: &str) -> &'static str {
    RESOURCES.iter().find(|r| r.kind == kind).map(|r| r.definition).expect("served kind")
}

fn assert_decodes_strictly(kind: &str, manifest: Value) {
    assert_eq!(check_object(definition_of(kind), &manifest, true), Ok(vec![]), "{kind}");
}

#[test]
fn objects_serialised_by_k8s_openapi_decode_strictly() {
    let labels = std::collections::BTreeMap::from([("app".to_string(), "web".to_string())]);
    let deployment = Deployment {
        metadata: ObjectMeta { name: Some("web".into()), labels: Some(labels.clone()), ..Default::default() },
        spec: Some(DeploymentSpec {
            replicas: Some(3),
            selector: LabelSelector { match_labels: Some(labels.clone()), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels.clone()), ..Default::default() }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "web".into(),
                        image: Some("nginx:1.27".into()),
                        ports: Some(vec![ContainerPort { container_port: 8080, ..Default::default() }]),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let service = Service {
        metadata: ObjectMeta { name: Some("web".into()), ..Default::default() },
        spec: Some(ServiceSpec {
            selector: Some(labels),
            ports: Some(vec![ServicePort {
                port: 80,
                target_port: Some(IntOrString::String("http".into())),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let deployment = serde_json::to_value(&deployment).expect("serialises");
    let service = serde_json::to_value(&service).expect("serialises");
    assert_decodes_strictly("Deployment", deployment);
    assert_decodes_strictly("Service", service);
}

#[test]
fn realistic_manifests_of_every_served_kind_decode_strictly() {
    let meta = json!({"name": "x", "namespace": "default", "labels": {"app": "web"}, "annotations": {"a": "b"},
        "creationTimestamp": "2024-05-01T10:00:00Z", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": "web-1", "uid": "0b7d5b5e-1f7d-4a1b-9d0a-6b8f3c2f1a10", "controller": true}]});
    let pod_spec = json!({
        "containers": [{
            "name": "web", "image": "nginx", "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "env": [{"name": "A", "value": "1"}, {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": 0.25}},
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        }],
        "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}],
        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
        "nodeSelector": {"disk": "ssd"},
    });
    assert_decodes_strictly(
        "Namespace",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}, "status": {"phase": "Active"}}),
    );
    assert_decodes_strictly(
        "Node",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "spec": {"podCIDR": "10.0.0.0/24", "podCIDRs": ["10.0.0.0/24"], "taints": [{"key": "k", "effect": "NoSchedule"}]},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.1.0.1"}], "capacity": {"pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-05-01T10:00:00Z"}]}}),
    );
    assert_decodes_strictly(
        "Pod",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec,
        "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}]}}),
    );
    assert_decodes_strictly(
        "Service",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta,
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv4"],
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}], "selector": {"app": "web"}},
        "status": {"loadBalancer": {}}}),
    );
    assert_decodes_strictly(
        "Endpoints",
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
        "subsets": [{"addresses": [{"ip": "10.0.0.5", "targetRef": {"kind": "Pod", "name": "x"}}], "ports": [{"port": 8080}]}]}),
    );
    assert_decodes_strictly(
        "Secret",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
        "data": {"password": "c2VjcmV0"}, "stringData": {"user": "admin"}}),
    );
    assert_decodes_strictly(
        "ConfigMap",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
        "data": {"a": "b"}, "binaryData": {"bin": "AAEC"}}),
    );
    assert_decodes_strictly(
        "Event",
        json!({"apiVersion": "v1", "kind": "Event", "metadata": meta,
        "involvedObject": {"kind": "Pod", "name": "x"}, "reason": "Started", "message": "ok", "type": "Normal",
        "count": 1, "firstTimestamp": "2024-05-01T10:00:00Z", "eventTime": "2024-05-01T10:00:00.123456Z",
        "source": {"component": "kubelet"}}),
    );
    assert_decodes_strictly(
        "EndpointSlice",
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": meta, "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}),
    );
    assert_decodes_strictly(
        "Deployment",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec}}}),
    );
    assert_decodes_strictly(
        "ReplicaSet",
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
        "spec": {"replicas": 1, "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
            "template": {"spec": pod_spec}}, "status": {"replicas": 1, "readyReplicas": 1}}),
    );
    assert_decodes_strictly(
        "Ingress",
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta,
        "spec": {"ingressClassName": "svcnet", "rules": [{"host": "a.example", "http": {"paths": [{"path": "/",
            "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}],
            "tls": [{"hosts": ["a.example"], "secretName": "tls"}]}}),
    );
    assert_decodes_strictly(
        "IngressClass",
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "svcnet"}, "spec": {"controller": "svcnet.dev/ingress"}}),
    );
}

#[test]
fn only_the_raw_go_types_are_opaque() {
    let schemas = Schemas::get();
    let mut opaque: Vec<&str> = schemas
        .definitions()
        .keys()
        .filter(|name| schemas.definition(name).is_some_and(|n| n.kind() == SchemaKind::Any))
        .map(String::as_str)
        .collect();
    opaque.sort_unstable();
    assert_eq!(
        opaque,
        [
            "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
            "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
            "io.k8s.apimachinery.pkg.runtime.RawExtension",
        ]
    );
}

#[test]
fn a_deployment_with_a_typo_deep_in_its_template_is_rejected_with_the_full_path() {
    let manifest = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx", "lifecycle": {"preStart": {}}}]}}}});
    let error = check_object(definition_of("Deployment"), &manifest, true).expect_err("typo");
    assert_eq!(
        error,
        DecodeError::Strict {
            kind: "Deployment".into(),
            version: "v1".into(),
            errors: vec!["unknown field \"spec.template.spec.containers[0].lifecycle.preStart\"".into()],
        }
    );
    assert_eq!(
        error.message(),
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.template.spec.containers[0].lifecycle.preStart\""
    );
}

#[test]
fn duplicate_unknown_fields_are_reported_once_and_capped_at_a_hundred() {
    let mut spec = serde_json::Map::new();
    for i in 0..150 {
        spec.insert(format!("bogus{i}"), json!(i));
    }
    let manifest = json!({"spec": spec});
    let warnings = check_object(definition_of("Service"), &manifest, false).expect("warnings only");
    assert_eq!(warnings.len(), 100);
    assert_eq!(warnings[0], "unknown field \"spec.bogus0\"");
}
