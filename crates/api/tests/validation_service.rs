//! Service validation through the public API: every manifest is defaulted
//! first, as the API server does, and the messages are kube-apiserver
//! 1.33's, verbatim.

use serde_json::{Value, json};
use svcnet_api::defaults;
use svcnet_api::validation::{Context, invalid_message, prepare_service_update, validate, validate_update};

fn service(spec: Value) -> Value {
    json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "svc", "namespace": "default" }, "spec": spec })
}

fn messages(obj: &Value) -> Vec<String> {
    let mut obj = obj.clone();
    defaults::apply("Service", &mut obj);
    validate("Service", &obj, &Context::default()).iter().map(|e| e.message()).collect()
}

fn update_messages(new: &Value, old: &Value) -> Vec<String> {
    let (mut new, mut old) = (new.clone(), old.clone());
    defaults::apply("Service", &mut new);
    defaults::apply("Service", &mut old);
    validate_update("Service", &new, &old, &Context::default()).iter().map(|e| e.message()).collect()
}

fn web_port() -> Value {
    json!([{ "port": 80, "targetPort": 80 }])
}

#[test]
fn common_service_mistakes_are_reported_as_kube_does() {
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "port zero is out of range",
            json!({ "selector": { "app": "web" }, "ports": [{ "port": 0, "targetPort": 80 }] }),
            vec!["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"],
        ),
        (
            "port zero without target port also defaults the target port to zero",
            json!({ "ports": [{ "port": 0 }] }),
            vec![
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
            ],
        ),
        ("ports are required", json!({ "selector": { "app": "web" } }), vec!["spec.ports: Required value"]),
        ("headless services need no ports", json!({ "clusterIP": "None", "selector": { "app": "web" } }), vec![]),
        (
            "port names must be unique",
            json!({ "ports": [{ "name": "http", "port": 80 }, { "name": "http", "port": 81 }] }),
            vec![r#"spec.ports[1].name: Duplicate value: "http""#],
        ),
        (
            "several ports each need a name",
            json!({ "ports": [{ "port": 80 }, { "port": 81 }] }),
            vec!["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"],
        ),
        (
            "port names are DNS-1123 labels",
            json!({ "ports": [{ "name": "Web_1", "port": 80 }] }),
            vec![
                r#"spec.ports[0].name: Invalid value: "Web_1": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
            ],
        ),
        (
            "unknown types list the supported ones",
            json!({ "type": "Foo", "ports": web_port() }),
            vec![
                r#"spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort""#,
            ],
        ),
        (
            "protocols are TCP, UDP or SCTP",
            json!({ "ports": [{ "port": 53, "protocol": "ICMP" }] }),
            vec![r#"spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP""#],
        ),
        (
            "target port names follow IANA_SVC_NAME",
            json!({ "ports": [{ "port": 80, "targetPort": "HTTP" }] }),
            vec![
                r#"spec.ports[0].targetPort: Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"#,
                r#"spec.ports[0].targetPort: Invalid value: "HTTP": must contain at least one letter (a-z)"#,
            ],
        ),
        (
            "a numeric string target port is a name without letters",
            json!({ "ports": [{ "port": 80, "targetPort": "8080" }] }),
            vec![r#"spec.ports[0].targetPort: Invalid value: "8080": must contain at least one letter (a-z)"#],
        ),
        (
            "load balancers may not be headless",
            json!({ "type": "LoadBalancer", "clusterIP": "None", "ports": web_port() }),
            vec![r#"spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for LoadBalancer services"#],
        ),
        (
            "node port services may not be headless",
            json!({ "type": "NodePort", "clusterIP": "None", "ports": web_port() }),
            vec![r#"spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for NodePort services"#],
        ),
        (
            "the same port and protocol twice prints Go's ServicePort",
            json!({ "ports": [{ "name": "a", "port": 80 }, { "name": "b", "port": 80, "targetPort": 8080 }] }),
            vec![
                r#"spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}"#,
            ],
        ),
        (
            "the same port on different protocols is fine",
            json!({ "ports": [{ "name": "dns", "port": 53, "protocol": "UDP" }, { "name": "dns-tcp", "port": 53 }] }),
            vec![],
        ),
        (
            "node ports are not for ClusterIP services",
            json!({ "ports": [{ "port": 80, "nodePort": 30080 }] }),
            vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
        ),
        (
            "node ports outside the range are rejected by the allocator alone",
            json!({ "type": "NodePort", "ports": [{ "port": 80, "nodePort": 8080 }, { "port": 0 }] }),
            vec![
                "spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767",
            ],
        ),
        (
            "node ports must be unique per protocol",
            json!({ "type": "NodePort", "ports": [
                { "name": "a", "port": 80, "nodePort": 30080 },
                { "name": "b", "port": 81, "nodePort": 30080 }
            ] }),
            vec!["spec.ports[1].nodePort: Duplicate value: 30080"],
        ),
        (
            "a cluster IP must be an IP",
            json!({ "clusterIP": "abc", "ports": [] }),
            vec![
                r#"spec.clusterIPs[0]: Invalid value: "abc": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#,
            ],
        ),
        (
            "clusterIPs must start with clusterIP",
            json!({ "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.11"], "ports": web_port() }),
            vec![r#"spec.clusterIPs: Invalid value: []string{"10.96.0.11"}: first value must match `clusterIP`"#],
        ),
        (
            "a cluster IP outside the service CIDR cannot be allocated",
            json!({ "clusterIP": "10.0.0.1", "ports": web_port() }),
            vec![
                r#"spec.clusterIPs: Invalid value: []string{"10.0.0.1"}: failed to allocate IP 10.0.0.1: the provided network does not match the current range"#,
            ],
        ),
        (
            "the network address of the service CIDR is not in its valid range",
            json!({ "clusterIP": "10.96.0.0", "ports": web_port() }),
            vec![
                r#"spec.clusterIPs: Invalid value: []string{"10.96.0.0"}: failed to allocate IP 10.96.0.0: the provided IP (10.96.0.0) is not in the valid range. The range of valid IPs is 10.96.0.0/12"#,
            ],
        ),
        (
            "an IPv6 cluster IP on an IPv4 cluster",
            json!({ "clusterIP": "fd00::10", "ports": web_port() }),
            vec![r#"spec.clusterIPs[0]: Invalid value: []string{"fd00::10"}: IPv6 is not configured on this cluster"#],
        ),
        (
            "RequireDualStack on a single-stack cluster",
            json!({ "ipFamilyPolicy": "RequireDualStack", "ports": web_port() }),
            vec![
                r#"spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services"#,
            ],
        ),
        (
            "an IP family the cluster does not serve",
            json!({ "ipFamilies": ["IPv6"], "ports": web_port() }),
            vec![r#"spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster"#],
        ),
        (
            "IP family policies are an enumeration",
            json!({ "ipFamilyPolicy": "Dual", "ports": web_port() }),
            vec![
                r#"spec.ipFamilyPolicy: Unsupported value: "Dual": supported values: "PreferDualStack", "RequireDualStack", "SingleStack""#,
            ],
        ),
        (
            "ExternalName services need a name",
            json!({ "type": "ExternalName" }),
            vec!["spec.externalName: Required value"],
        ),
        (
            "external names are lowercase DNS names",
            json!({ "type": "ExternalName", "externalName": "WWW.Baidu.com" }),
            vec![
                r#"spec.externalName: Invalid value: "WWW.Baidu.com": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
            ],
        ),
        (
            "an external name may end in a dot",
            json!({ "type": "ExternalName", "externalName": "www.baidu.com." }),
            vec![],
        ),
        (
            "ExternalName services have no cluster IP",
            json!({ "type": "ExternalName", "externalName": "www.baidu.com", "clusterIP": "10.96.0.10" }),
            vec!["spec.clusterIPs: Forbidden: may not be set for ExternalName services"],
        ),
        (
            "session affinity is None or ClientIP",
            json!({ "sessionAffinity": "Sticky", "ports": web_port() }),
            vec![r#"spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None""#],
        ),
        (
            "a ClientIP timeout of zero",
            json!({ "sessionAffinity": "ClientIP", "sessionAffinityConfig": { "clientIP": { "timeoutSeconds": 0 } }, "ports": web_port() }),
            vec![
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400",
            ],
        ),
        (
            "a ClientIP timeout over a day",
            json!({ "sessionAffinity": "ClientIP", "sessionAffinityConfig": { "clientIP": { "timeoutSeconds": 86401 } }, "ports": web_port() }),
            vec![
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be greater than 0 and less than 86400",
            ],
        ),
        (
            "affinity config without ClientIP affinity",
            json!({ "sessionAffinityConfig": { "clientIP": { "timeoutSeconds": 10 } }, "ports": web_port() }),
            vec!["spec.sessionAffinityConfig: Forbidden: must not be set when session affinity is None"],
        ),
        (
            "external traffic policy on an internal service",
            json!({ "externalTrafficPolicy": "Local", "ports": web_port() }),
            vec![
                r#"spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services"#,
            ],
        ),
        (
            "external traffic policy values",
            json!({ "type": "NodePort", "externalTrafficPolicy": "Nearest", "ports": web_port() }),
            vec![r#"spec.externalTrafficPolicy: Unsupported value: "Nearest": supported values: "Cluster", "Local""#],
        ),
        (
            "internal traffic policy values",
            json!({ "internalTrafficPolicy": "Node", "ports": web_port() }),
            vec![r#"spec.internalTrafficPolicy: Unsupported value: "Node": supported values: "Cluster", "Local""#],
        ),
        (
            "a health check node port needs a Local load balancer",
            json!({ "type": "NodePort", "healthCheckNodePort": 31000, "ports": web_port() }),
            vec![
                "spec.healthCheckNodePort: Invalid value: 31000: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ],
        ),
        (
            "external IPs may not be special addresses",
            json!({ "externalIPs": ["0.0.0.0", "127.0.0.1", "169.254.1.1", "224.0.0.1", "fe80::1", "ff02::1", "nope"], "ports": web_port() }),
            vec![
                r#"spec.externalIPs[0]: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)"#,
                r#"spec.externalIPs[1]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#,
                r#"spec.externalIPs[2]: Invalid value: "169.254.1.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)"#,
                r#"spec.externalIPs[3]: Invalid value: "224.0.0.1": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"#,
                r#"spec.externalIPs[4]: Invalid value: "fe80::1": may not be in the link-local range (169.254.0.0/16, fe80::/10)"#,
                r#"spec.externalIPs[5]: Invalid value: "ff02::1": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"#,
                r#"spec.externalIPs[6]: Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#,
            ],
        ),
        (
            "source ranges only on load balancers, and only CIDRs",
            json!({ "loadBalancerSourceRanges": ["10.0.0.0/8", "10.0.0.1"], "ports": web_port() }),
            vec![
                "spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'",
                r#"spec.LoadBalancerSourceRanges[1]: Invalid value: "10.0.0.1": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"#,
            ],
        ),
        (
            "a load balancer class needs a load balancer",
            json!({ "loadBalancerClass": "example.com/lb", "ports": web_port() }),
            vec!["spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'"],
        ),
        (
            "selector keys and values are label syntax",
            json!({ "selector": { "app": "-web" }, "ports": web_port() }),
            vec![
                r#"spec.selector: Invalid value: "-web": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"#,
            ],
        ),
    ];
    for (name, spec, want) in cases {
        assert_eq!(messages(&service(spec)), want, "{name}");
    }
}

#[test]
fn errors_render_as_kubectl_shows_them() {
    // kubectl create svc clusterip two-ports --tcp 80:80,443,443
    let mut svc = service(json!({ "ports": [
        { "name": "80-80", "port": 80, "targetPort": 80 },
        { "name": "443", "port": 443, "targetPort": 443 },
        { "name": "443", "port": 443, "targetPort": 443 }
    ] }));
    svc["metadata"]["name"] = json!("two-ports");
    defaults::apply("Service", &mut svc);
    let errs = validate("Service", &svc, &Context::default());
    assert_eq!(
        invalid_message("Service", "two-ports", &errs),
        r#"Service "two-ports" is invalid: [spec.ports[2].name: Duplicate value: "443", spec.ports[2]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:443, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}]"#
    );
    assert_eq!(errs[0].reason(), "FieldValueDuplicate");
    assert_eq!(errs[0].body(), r#"Duplicate value: "443""#);
}

#[test]
fn a_custom_service_cidr_and_node_port_range_are_honoured() {
    let ctx = Context {
        service_cidrs: vec![("10.0.0.0".parse().unwrap(), 24), ("fd00::".parse().unwrap(), 108)],
        node_port_range: (20000, 20010),
    };
    let mut svc =
        service(json!({ "type": "NodePort", "clusterIP": "10.0.0.5", "ports": [{ "port": 80, "nodePort": 20005 }] }));
    defaults::apply("Service", &mut svc);
    assert_eq!(validate("Service", &svc, &ctx), vec![]);
    svc["spec"]["ipFamilyPolicy"] = json!("RequireDualStack");
    assert_eq!(validate("Service", &svc, &ctx), vec![], "a dual-stack cluster allows RequireDualStack");
    svc["spec"]["ports"][0]["nodePort"] = json!(30080);
    let errs: Vec<String> = validate("Service", &svc, &ctx).iter().map(|e| e.message()).collect();
    assert_eq!(
        errs,
        vec![
            "spec.ports[0].nodePort: Invalid value: 30080: provided port is not in the valid range. The range of valid ports is 20000-20010"
        ]
    );
}

#[test]
fn changing_an_allocated_cluster_ip_is_refused() {
    let old = service(json!({ "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": web_port() }));
    let new = service(json!({ "clusterIP": "10.96.0.20", "ports": web_port() }));
    assert_eq!(
        update_messages(&new, &old),
        vec![r#"spec.clusterIPs[0]: Invalid value: []string{"10.96.0.20"}: may not change once set"#]
    );
}

#[test]
fn an_update_that_leaves_out_allocated_values_keeps_them() {
    let old = service(json!({ "type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
        "ports": [{ "port": 80, "nodePort": 31111 }] }));
    let new = service(json!({ "type": "NodePort", "ports": [{ "port": 80 }] }));
    assert_eq!(update_messages(&new, &old), Vec::<String>::new());
    let (mut stored, mut old_d) = (new.clone(), old.clone());
    defaults::apply("Service", &mut stored);
    defaults::apply("Service", &mut old_d);
    prepare_service_update(&mut stored, &old_d);
    assert_eq!(stored["spec"]["clusterIPs"], json!(["10.96.0.10"]));
    assert_eq!(stored["spec"]["ports"][0]["nodePort"], 31111);
}

#[test]
fn switching_type_drops_the_fields_the_new_type_cannot_have() {
    let old = service(json!({ "type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
        "ports": [{ "port": 80, "nodePort": 31111 }] }));
    // kubectl apply keeps the server-set nodePort in the merged object.
    let to_cluster_ip = service(json!({ "type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
        "externalTrafficPolicy": "Cluster", "ports": [{ "port": 80, "nodePort": 31111 }] }));
    assert_eq!(update_messages(&to_cluster_ip, &old), Vec::<String>::new());
    let to_external_name = service(json!({ "type": "ExternalName", "externalName": "www.baidu.com",
        "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [{ "port": 80 }] }));
    assert_eq!(update_messages(&to_external_name, &old), Vec::<String>::new());
}

#[test]
fn load_balancer_class_and_health_check_port_are_fixed_once_set() {
    let old = service(json!({ "type": "LoadBalancer", "clusterIP": "10.96.0.10", "loadBalancerClass": "example.com/a",
        "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000, "ports": [{ "port": 80, "nodePort": 31111 }] }));
    let mut new = old.clone();
    new["spec"]["loadBalancerClass"] = json!("example.com/b");
    new["spec"]["healthCheckNodePort"] = json!(31001);
    assert_eq!(
        update_messages(&new, &old),
        vec![
            r#"spec.loadBalancerClass: Invalid value: "example.com/b": may not change once set"#,
            "spec.healthCheckNodePort: Forbidden: field is immutable",
        ]
    );
}
