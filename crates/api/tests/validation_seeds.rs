//! The seed manifests (the tutorial objects svcnet is demonstrated with)
//! pass validation once defaulted, and fail with kube's messages when the
//! usual mistakes are made to them.

use serde_json::{Value, json};
use svcnet_api::defaults;
use svcnet_api::validation::{Context, validate};

fn messages(kind: &str, obj: &Value) -> Vec<String> {
    let mut obj = obj.clone();
    defaults::apply(kind, &mut obj);
    validate(kind, &obj, &Context::default()).iter().map(|e| e.message()).collect()
}

fn seeds() -> Vec<(&'static str, Value)> {
    let svc = |name: &str, spec: Value| json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": name, "namespace": "dev" }, "spec": spec });
    vec![
        (
            "Service",
            svc(
                "service-clusterip",
                json!({ "selector": { "app": "nginx-pod" }, "clusterIP": "10.97.97.97", "type": "ClusterIP",
                        "ports": [{ "port": 80, "targetPort": 80 }] }),
            ),
        ),
        (
            "Service",
            svc(
                "service-nodeport",
                json!({ "selector": { "app": "nginx-pod" }, "type": "NodePort",
                        "ports": [{ "port": 80, "nodePort": 32001, "targetPort": 80 }] }),
            ),
        ),
        (
            "Service",
            svc(
                "service-loadbalancer",
                json!({ "selector": { "app": "nginx-pod" }, "type": "LoadBalancer",
                        "ports": [{ "port": 80, "targetPort": 80 }] }),
            ),
        ),
        (
            "Service",
            svc(
                "service-externalip",
                json!({ "selector": { "app": "nginx-pod" }, "externalIPs": ["101.101.101.1"],
                        "ports": [{ "port": 80, "targetPort": 80 }] }),
            ),
        ),
        ("Service", svc("service-externalname", json!({ "type": "ExternalName", "externalName": "www.baidu.com" }))),
        (
            "Service",
            svc(
                "service-headliness",
                json!({ "selector": { "app": "nginx-pod" }, "clusterIP": "None", "type": "ClusterIP",
                        "ports": [{ "port": 80, "targetPort": 80 }] }),
            ),
        ),
        ("Service", svc("my-service", json!({ "ports": [{ "protocol": "TCP", "port": 80, "targetPort": 9376 }] }))),
        (
            "Endpoints",
            json!({ "apiVersion": "v1", "kind": "Endpoints", "metadata": { "name": "my-service" },
                    "subsets": [{ "addresses": [{ "ip": "1.2.3.4" }], "ports": [{ "port": 9376 }] }] }),
        ),
        (
            "Deployment",
            json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "pc-deployment", "namespace": "dev" },
                    "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "nginx-pod" } },
                              "template": { "metadata": { "labels": { "app": "nginx-pod" } },
                                            "spec": { "containers": [{ "name": "nginx", "image": "nginx:1.17.1",
                                                                       "ports": [{ "containerPort": 80 }] }] } } } }),
        ),
        (
            "Ingress",
            json!({ "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": { "name": "ingress-https", "namespace": "dev" },
                    "spec": {
                        "tls": [{ "hosts": ["nginx.itheima.com", "tomcat.itheima.com"], "secretName": "tls-secret" }],
                        "rules": [
                            { "host": "nginx.itheima.com", "http": { "paths": [{ "path": "/", "pathType": "Prefix",
                                "backend": { "service": { "name": "nginx-service", "port": { "number": 80 } } } }] } },
                            { "host": "tomcat.itheima.com", "http": { "paths": [{ "path": "/", "pathType": "Prefix",
                                "backend": { "service": { "name": "tomcat-service", "port": { "number": 8080 } } } }] } }
                        ] } }),
        ),
        (
            "Secret",
            json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "tls-secret", "namespace": "dev" },
                    "type": "kubernetes.io/tls", "data": { "tls.crt": "LS0tLS1CRUdJTg==", "tls.key": "LS0tLS1CRUdJTg==" } }),
        ),
        (
            "Pod",
            json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "pod-liveness", "namespace": "dev" },
                    "spec": { "containers": [{ "name": "nginx", "image": "nginx:1.17.1", "ports": [{ "name": "nginx-port", "containerPort": 80 }],
                        "livenessProbe": { "httpGet": { "port": 80, "path": "/" } },
                        "readinessProbe": { "tcpSocket": { "port": "nginx-port" } },
                        "lifecycle": { "preStop": { "exec": { "command": ["/usr/sbin/nginx", "-s", "quit"] } } } }] } }),
        ),
    ]
}

#[test]
fn every_seed_manifest_is_valid() {
    for (kind, obj) in seeds() {
        assert_eq!(messages(kind, &obj), Vec::<String>::new(), "{kind} {}", obj["metadata"]["name"]);
    }
}

#[test]
fn the_seed_node_port_outside_the_range_is_refused() {
    let (kind, mut svc) = seeds().swap_remove(1);
    svc["spec"]["ports"][0]["nodePort"] = json!(80);
    assert_eq!(
        messages(kind, &svc),
        vec![
            "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
        ]
    );
}

#[test]
fn the_seed_deployment_with_a_mismatched_template_is_refused() {
    let (kind, mut d) = seeds().swap_remove(8);
    d["spec"]["template"]["metadata"]["labels"]["app"] = json!("nginx");
    assert_eq!(
        messages(kind, &d),
        vec![
            r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"nginx"}: `selector` does not match template `labels`"#
        ]
    );
}
