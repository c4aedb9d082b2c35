//! Endpoints and EndpointSlice validation with kube-apiserver 1.33's messages.

use serde_json::{Value, json};
use svcnet_api::defaults;
use svcnet_api::validation::{Context, validate, validate_update};

fn messages(kind: &str, obj: Value) -> Vec<String> {
    let mut obj = obj;
    defaults::apply(kind, &mut obj);
    validate(kind, &obj, &Context::default()).iter().map(|e| e.message()).collect()
}

fn endpoints(subsets: Value) -> Value {
    json!({ "apiVersion": "v1", "kind": "Endpoints", "metadata": { "name": "my-service" }, "subsets": subsets })
}

fn slice(address_type: &str, endpoints: Value, ports: Value) -> Value {
    json!({ "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": { "name": "s" },
            "addressType": address_type, "endpoints": endpoints, "ports": ports })
}

#[test]
fn endpoints_mistakes_are_reported_as_kube_does() {
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "a subset needs addresses",
            json!([{ "ports": [{ "port": 80 }] }]),
            vec!["subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"],
        ),
        (
            "addresses must be IPs",
            json!([{ "addresses": [{ "ip": "my-host" }] }]),
            vec![
                r#"subsets[0].addresses[0].ip: Invalid value: "my-host": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#,
                r#"subsets[0].addresses[0].ip: Invalid value: "my-host": must be a valid IP address"#,
            ],
        ),
        (
            "loopback addresses are refused",
            json!([{ "notReadyAddresses": [{ "ip": "127.0.0.1" }] }]),
            vec![
                r#"subsets[0].notReadyAddresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#,
            ],
        ),
        (
            "the unspecified address is refused",
            json!([{ "addresses": [{ "ip": "::" }] }]),
            vec![r#"subsets[0].addresses[0].ip: Invalid value: "::": may not be unspecified (::)"#],
        ),
        (
            "link-local addresses are refused",
            json!([{ "addresses": [{ "ip": "169.254.169.254" }] }]),
            vec![
                r#"subsets[0].addresses[0].ip: Invalid value: "169.254.169.254": may not be in the link-local range (169.254.0.0/16, fe80::/10)"#,
            ],
        ),
        (
            "several ports need names",
            json!([{ "addresses": [{ "ip": "1.2.3.4" }], "ports": [{ "port": 80 }, { "port": 81 }] }]),
            vec!["subsets[0].ports[0].name: Required value", "subsets[0].ports[1].name: Required value"],
        ),
        (
            "ports are in range and of a known protocol",
            json!([{ "addresses": [{ "ip": "1.2.3.4" }], "ports": [{ "port": 70000, "protocol": "HTTP" }] }]),
            vec![
                "subsets[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
                r#"subsets[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP""#,
            ],
        ),
        (
            "hostnames are DNS labels",
            json!([{ "addresses": [{ "ip": "1.2.3.4", "hostname": "a.b" }] }]),
            vec![r#"subsets[0].addresses[0].hostname: Invalid value: "a.b": must not contain dots"#],
        ),
    ];
    for (name, subsets, want) in cases {
        assert_eq!(messages("Endpoints", endpoints(subsets)), want, "{name}");
    }
}

#[test]
fn endpoint_slice_mistakes_are_reported_as_kube_does() {
    let ep = |addrs: Value| json!([{ "addresses": addrs }]);
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "a valid IPv4 slice",
            slice("IPv4", ep(json!(["10.244.1.5"])), json!([{ "name": "http", "port": 80 }])),
            vec![],
        ),
        (
            "address types are an enumeration",
            slice("IP4", json!([]), json!([])),
            vec![r#"addressType: Unsupported value: "IP4": supported values: "FQDN", "IPv4", "IPv6""#],
        ),
        (
            "an IPv6 address in an IPv4 slice",
            slice("IPv4", ep(json!(["fd00::1"])), json!([])),
            vec![r#"endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address"#],
        ),
        (
            "an endpoint needs an address",
            slice("IPv4", json!([{ "addresses": [] }]), json!([])),
            vec!["endpoints[0].addresses: Required value: must contain at least 1 address"],
        ),
        (
            "FQDN addresses need two labels",
            slice("FQDN", ep(json!(["localhost"])), json!([])),
            vec![
                r#"endpoints[0].addresses[0]: Invalid value: "localhost": should be a domain with at least two segments separated by dots"#,
            ],
        ),
        (
            "port names are unique, an absent name included",
            slice("IPv4", json!([]), json!([{ "port": 80 }, { "port": 81 }])),
            vec![r#"ports[1].name: Duplicate value: """#],
        ),
    ];
    for (name, obj, want) in cases {
        assert_eq!(messages("EndpointSlice", obj), want, "{name}");
    }
}

#[test]
fn endpoint_slices_are_limited_to_a_thousand_endpoints_and_a_hundred_ports() {
    let endpoints: Vec<Value> =
        (0..1001).map(|i| json!({ "addresses": [format!("10.0.{}.{}", i / 250, i % 250 + 1)] })).collect();
    let ports: Vec<Value> = (0..101).map(|i| json!({ "name": format!("p{i}"), "port": 1000 + i })).collect();
    assert_eq!(
        messages("EndpointSlice", slice("IPv4", json!(endpoints), json!(ports))),
        vec![
            "endpoints: Too many: 1001: must have at most 1000 items",
            "ports: Too many: 101: must have at most 100 items"
        ]
    );
}

#[test]
fn an_endpoint_slice_keeps_its_address_type() {
    let old = slice("IPv4", json!([]), json!([]));
    let new = slice("IPv6", json!([]), json!([]));
    let errs: Vec<String> =
        validate_update("EndpointSlice", &new, &old, &Context::default()).iter().map(|e| e.message()).collect();
    assert_eq!(errs, vec![r#"addressType: Invalid value: "IPv6": field is immutable"#]);
}
