//! Ingress and IngressClass validation with kube-apiserver 1.33's messages.

use serde_json::{Value, json};
use svcnet_api::validation::{Context, validate, validate_update};

fn ingress(spec: Value) -> Value {
    json!({ "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": { "name": "ingress-http" }, "spec": spec })
}

fn rule(host: &str, path: Value) -> Value {
    json!({ "host": host, "http": { "paths": [path] } })
}

fn prefix(path: &str) -> Value {
    json!({ "path": path, "pathType": "Prefix", "backend": { "service": { "name": "nginx-service", "port": { "number": 80 } } } })
}

fn messages(kind: &str, obj: &Value) -> Vec<String> {
    validate(kind, obj, &Context::default()).iter().map(|e| e.message()).collect()
}

#[test]
fn ingress_mistakes_are_reported_as_kube_does() {
    let service_backend =
        |service: Value| json!({ "path": "/", "pathType": "Prefix", "backend": { "service": service } });
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "rules or a default backend",
            json!({}),
            vec![
                "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified",
            ],
        ),
        (
            "a default backend alone is enough",
            json!({ "defaultBackend": { "service": { "name": "web", "port": { "name": "http" } } } }),
            vec![],
        ),
        (
            "pathType is required",
            json!({ "rules": [rule("nginx.itheima.com", json!({ "path": "/", "backend": { "service": { "name": "web", "port": { "number": 80 } } } }))] }),
            vec!["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"],
        ),
        (
            "pathType is an enumeration",
            json!({ "rules": [rule("a.com", json!({ "path": "/", "pathType": "Regex", "backend": { "service": { "name": "web", "port": { "number": 80 } } } }))] }),
            vec![
                r#"spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix""#,
            ],
        ),
        (
            "Prefix paths are absolute",
            json!({ "rules": [rule("a.com", prefix("api"))] }),
            vec![r#"spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path"#],
        ),
        (
            "paths may not climb or double slashes",
            json!({ "rules": [rule("a.com", prefix("/a//b/.."))] }),
            vec![
                r#"spec.rules[0].http.paths[0].path: Invalid value: "/a//b/..": must not contain '//'"#,
                r#"spec.rules[0].http.paths[0].path: Invalid value: "/a//b/..": cannot end with '/..'"#,
            ],
        ),
        (
            "hosts are DNS names, not IPs",
            json!({ "rules": [rule("1.2.3.4", prefix("/"))] }),
            vec![r#"spec.rules[0].host: Invalid value: "1.2.3.4": must be a DNS name, not an IP address"#],
        ),
        (
            "hosts are lowercase",
            json!({ "rules": [rule("Nginx.com", prefix("/"))] }),
            vec![
                r#"spec.rules[0].host: Invalid value: "Nginx.com": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
            ],
        ),
        (
            "a wildcard is the first label only",
            json!({ "rules": [rule("foo.*.com", prefix("/"))] }),
            vec![
                r#"spec.rules[0].host: Invalid value: "foo.*.com": a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
            ],
        ),
        ("a leading wildcard is fine", json!({ "rules": [rule("*.foo.com", prefix("/"))] }), vec![]),
        (
            "a backend needs a service or resource",
            json!({ "rules": [rule("a.com", json!({ "path": "/", "pathType": "Prefix", "backend": {} }))] }),
            vec![r#"spec.rules[0].http.paths[0].backend: Invalid value: "": resource or service backend is required"#],
        ),
        (
            "not both a service and a resource",
            json!({ "rules": [rule("a.com", json!({ "path": "/", "pathType": "Prefix", "backend": {
                "service": { "name": "web", "port": { "number": 80 } }, "resource": { "kind": "Bucket", "name": "b" } } }))] }),
            vec![
                r#"spec.rules[0].http.paths[0].backend: Invalid value: "": cannot set both resource and service backends"#,
            ],
        ),
        (
            "a service backend needs a port",
            json!({ "rules": [rule("a.com", service_backend(json!({ "name": "web" })))] }),
            vec!["spec.rules[0].http.paths[0].backend: Required value: port name or number is required"],
        ),
        (
            "a port name or a number, not both",
            json!({ "rules": [rule("a.com", service_backend(json!({ "name": "web", "port": { "name": "http", "number": 80 } })))] }),
            vec![r#"spec.rules[0].http.paths[0].backend: Invalid value: "": cannot set both port name & port number"#],
        ),
        (
            "a service backend needs a name",
            json!({ "rules": [rule("a.com", service_backend(json!({ "port": { "number": 80 } })))] }),
            vec!["spec.rules[0].http.paths[0].backend.service.name: Required value"],
        ),
        (
            "service names are DNS-1035 labels",
            json!({ "rules": [rule("a.com", service_backend(json!({ "name": "1web", "port": { "number": 70000 } })))] }),
            vec![
                r#"spec.rules[0].http.paths[0].backend.service.name: Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#,
                "spec.rules[0].http.paths[0].backend.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ],
        ),
        (
            "an http rule needs paths",
            json!({ "rules": [{ "host": "a.com", "http": { "paths": [] } }] }),
            vec!["spec.rules[0].http.paths: Required value"],
        ),
        (
            "tls hosts are DNS names",
            json!({ "rules": [rule("a.com", prefix("/"))], "tls": [{ "hosts": ["A.com"], "secretName": "tls_secret" }] }),
            vec![
                r#"spec.tls[0].hosts[0]: Invalid value: "A.com": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                r#"spec.tls[0].secretName: Invalid value: "tls_secret": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
            ],
        ),
        (
            "ingress class names are DNS subdomains",
            json!({ "ingressClassName": "Nginx", "rules": [rule("a.com", prefix("/"))] }),
            vec![
                r#"spec.ingressClassName: Invalid value: "Nginx": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
            ],
        ),
    ];
    for (name, spec, want) in cases {
        assert_eq!(messages("Ingress", &ingress(spec)), want, "{name}");
    }
}

#[test]
fn an_update_may_keep_a_secret_name_that_was_already_invalid() {
    let old = ingress(json!({ "rules": [rule("a.com", prefix("/"))], "tls": [{ "secretName": "Old_Secret" }] }));
    let new = ingress(json!({ "rules": [rule("b.com", prefix("/"))], "tls": [{ "secretName": "Old_Secret" }] }));
    assert_eq!(validate_update("Ingress", &new, &old, &Context::default()), vec![]);
    assert_eq!(messages("Ingress", &new).len(), 1, "but a new Ingress may not use it");
}

#[test]
fn ingress_class_mistakes_are_reported_as_kube_does() {
    let class = |spec: Value| json!({ "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": { "name": "nginx" }, "spec": spec });
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("the controller is required", json!({}), vec!["spec.controller: Required value"]),
        (
            "the controller is a domain-prefixed path",
            json!({ "controller": "nginx" }),
            vec![r#"spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")"#],
        ),
        ("a valid controller", json!({ "controller": "k8s.io/ingress-nginx" }), vec![]),
        (
            "parameters need a kind and name",
            json!({ "controller": "k8s.io/ingress-nginx", "parameters": { "apiGroup": "k8s.example.com" } }),
            vec!["spec.parameters.kind: Required value", "spec.parameters.name: Required value"],
        ),
        (
            "namespaced parameters need a namespace",
            json!({ "controller": "k8s.io/ingress-nginx", "parameters": { "kind": "Params", "name": "p", "scope": "Namespace" } }),
            vec!["spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'"],
        ),
        (
            "cluster parameters have no namespace",
            json!({ "controller": "k8s.io/ingress-nginx", "parameters": { "kind": "Params", "name": "p", "namespace": "default" } }),
            vec!["spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'"],
        ),
    ];
    for (name, spec, want) in cases {
        assert_eq!(messages("IngressClass", &class(spec)), want, "{name}");
    }
    let old = class(json!({ "controller": "k8s.io/ingress-nginx" }));
    let new = class(json!({ "controller": "example.com/other" }));
    let errs: Vec<String> =
        validate_update("IngressClass", &new, &old, &Context::default()).iter().map(|e| e.message()).collect();
    assert_eq!(errs, vec![r#"spec.controller: Invalid value: "example.com/other": field is immutable"#]);
}
