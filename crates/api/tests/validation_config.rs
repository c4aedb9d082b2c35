//! Secret, ConfigMap and Node validation with kube-apiserver 1.33's messages.

use serde_json::{Value, json};
use svcnet_api::defaults;
use svcnet_api::validation::{Context, validate, validate_update};

fn messages(kind: &str, obj: Value) -> Vec<String> {
    let mut obj = obj;
    defaults::apply(kind, &mut obj);
    validate(kind, &obj, &Context::default()).iter().map(|e| e.message()).collect()
}

fn update_messages(kind: &str, new: Value, old: Value) -> Vec<String> {
    let (mut new, mut old) = (new, old);
    defaults::apply(kind, &mut new);
    defaults::apply(kind, &mut old);
    validate_update(kind, &new, &old, &Context::default()).iter().map(|e| e.message()).collect()
}

fn secret(extra: Value) -> Value {
    let mut s = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "s" } });
    if let (Some(s), Some(extra)) = (s.as_object_mut(), extra.as_object()) {
        s.extend(extra.clone());
    }
    s
}

fn config_map(extra: Value) -> Value {
    let mut c = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c" } });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c
}

#[test]
fn secret_mistakes_are_reported_as_kube_does() {
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "a TLS secret needs a certificate and a key",
            secret(json!({ "type": "kubernetes.io/tls", "data": {} })),
            vec!["data[tls.crt]: Required value", "data[tls.key]: Required value"],
        ),
        (
            "stringData counts as data",
            secret(json!({ "type": "kubernetes.io/tls", "stringData": { "tls.crt": "c", "tls.key": "k" } })),
            vec![],
        ),
        (
            "keys are config keys",
            secret(json!({ "data": { "my key": "eA==", "..x": "eA==" } })),
            vec![
                r#"data[my key]: Invalid value: "my key": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"#,
                r#"data[..x]: Invalid value: "..x": must not start with '..'"#,
            ],
        ),
        (
            "basic auth needs a username or password",
            secret(json!({ "type": "kubernetes.io/basic-auth" })),
            vec!["data[username]: Required value", "data[password]: Required value"],
        ),
        (
            "docker config is JSON",
            secret(json!({ "type": "kubernetes.io/dockerconfigjson", "stringData": { ".dockerconfigjson": "[1]" } })),
            vec![
                r#"data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": json: cannot unmarshal array into Go value of type map[string]interface {}"#,
            ],
        ),
        (
            "a service account token names its account",
            secret(json!({ "type": "kubernetes.io/service-account-token" })),
            vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
        ),
    ];
    for (name, obj, want) in cases {
        assert_eq!(messages("Secret", obj), want, "{name}");
    }
}

#[test]
fn secrets_and_config_maps_are_limited_to_one_mebibyte() {
    let big = "x".repeat(1024 * 1024 + 1);
    assert_eq!(
        messages("Secret", secret(json!({ "stringData": { "big": big } }))),
        vec!["data: Too long: may not be more than 1048576 bytes"]
    );
    assert_eq!(
        messages("ConfigMap", config_map(json!({ "data": { "big": big } }))),
        vec![": Too long: may not be more than 1048576 bytes"]
    );
}

#[test]
fn config_map_keys_are_checked_and_not_shared_with_binary_data() {
    assert_eq!(
        messages("ConfigMap", config_map(json!({ "data": { "a": "1", "b/c": "2" }, "binaryData": { "a": "MQ==" } }))),
        vec![
            r#"data[a]: Invalid value: "a": duplicate of key present in binaryData"#,
            r#"data[b/c]: Invalid value: "b/c": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"#,
        ]
    );
}

#[test]
fn a_secret_keeps_its_type_and_immutable_objects_stay_frozen() {
    assert_eq!(
        update_messages(
            "Secret",
            secret(json!({ "type": "kubernetes.io/tls", "stringData": { "tls.crt": "c", "tls.key": "k" } })),
            secret(json!({}))
        ),
        vec![r#"type: Invalid value: "kubernetes.io/tls": field is immutable"#]
    );
    assert_eq!(
        update_messages(
            "Secret",
            secret(json!({ "data": { "a": "Yg==" } })),
            secret(json!({ "immutable": true, "data": { "a": "YQ==" } }))
        ),
        vec![
            "immutable: Forbidden: field is immutable when `immutable` is set",
            "data: Forbidden: field is immutable when `immutable` is set"
        ]
    );
    assert_eq!(
        update_messages(
            "ConfigMap",
            config_map(json!({ "immutable": true, "data": { "a": "2" } })),
            config_map(json!({ "immutable": true, "data": { "a": "1" } }))
        ),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );
    assert_eq!(
        update_messages(
            "ConfigMap",
            config_map(
                json!({ "immutable": true, "data": { "a": "1" }, "metadata": { "name": "c", "labels": { "x": "y" } } })
            ),
            config_map(json!({ "immutable": true, "data": { "a": "1" } }))
        ),
        Vec::<String>::new(),
        "metadata may still change"
    );
}

#[test]
fn node_pod_cidrs_are_cidrs_set_once() {
    let node = |spec: Value| json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": "n1" }, "spec": spec });
    assert_eq!(
        messages("Node", node(json!({ "podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"] }))),
        Vec::<String>::new()
    );
    assert_eq!(
        messages("Node", node(json!({ "podCIDRs": ["10.244.1.0"] }))),
        vec![
            r#"spec.podCIDRs[0]: Invalid value: "10.244.1.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"#
        ]
    );
    assert_eq!(
        messages("Node", node(json!({ "podCIDRs": ["10.244.1.0", "fd00::/64"] }))),
        vec![
            r#"spec.podCIDRs[0]: Invalid value: "10.244.1.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"#,
            "spec.podCIDRs: Internal error: invalid PodCIDRs. failed to check with dual stack with error:invalid CIDR address: 10.244.1.0",
            r#"spec.podCIDRs: Invalid value: []string{"10.244.1.0", "fd00::/64"}: may specify no more than one CIDR for each IP family"#,
        ]
    );
    assert_eq!(
        messages("Node", node(json!({ "podCIDRs": ["10.244.1.0/24", "10.244.2.0/24"] }))),
        vec![
            r#"spec.podCIDRs: Invalid value: []string{"10.244.1.0/24", "10.244.2.0/24"}: may specify no more than one CIDR for each IP family"#
        ]
    );
    assert_eq!(
        update_messages(
            "Node",
            node(json!({ "podCIDRs": ["10.244.2.0/24"] })),
            node(json!({ "podCIDRs": ["10.244.1.0/24"] }))
        ),
        vec![r#"spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid"#]
    );
    assert_eq!(
        update_messages("Node", node(json!({ "podCIDRs": ["10.244.2.0/24"] })), node(json!({}))),
        Vec::<String>::new()
    );
}

#[test]
fn namespaces_have_nothing_beyond_metadata_to_check() {
    assert_eq!(
        messages("Namespace", json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "dev" } })),
        Vec::<String>::new()
    );
}
