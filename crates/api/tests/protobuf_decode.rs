//! Decoding hand-built Kubernetes protobuf bodies into JSON.
//!
//! The inputs are written field by field with `protobuf::Writer`, using the
//! field numbers of the Kubernetes generated.proto files, and the expected
//! JSON is what Kubernetes' own JSON encoding of the same Go object is.

use serde_json::{Value, json};
use svcnet_api::protobuf::{Malformation, ProtobufError, Writer, decode, encode_unknown};

fn decoded(api_version: &str, kind: &str, raw: Writer) -> Value {
    let bytes = encode_unknown(api_version, kind, &raw.finish());
    decode(&bytes).unwrap_or_else(|e| panic!("{kind} does not decode: {e}"))
}

/// ObjectMeta with a name and namespace, and the creationTimestamp every
/// Go client sends as an empty Time.
fn metadata(name: &'static str, namespace: &'static str) -> impl FnOnce(Writer) -> Writer {
    move |m| m.string(1, name).string(3, namespace).bytes(8, &[])
}

#[test]
fn config_map_data_and_binary_data_become_objects() {
    let raw = Writer::new()
        .message(1, |m| metadata("app-config", "default")(m).entry(11, "app", |v| v.string(2, "web")))
        .entry(2, "mode", |v| v.string(2, "prod"))
        .entry(2, "greeting", |v| v.string(2, "hello world"))
        .entry(3, "blob", |v| v.bytes(2, &[0, 159, 146, 150]))
        .bool(4, true);
    assert_eq!(
        decoded("v1", "ConfigMap", raw),
        json!({
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {
                "name": "app-config",
                "namespace": "default",
                "creationTimestamp": null,
                "labels": {"app": "web"},
            },
            "immutable": true,
            "data": {"greeting": "hello world", "mode": "prod"},
            "binaryData": {"blob": "AJ+Slg=="},
        })
    );
}

#[test]
fn secret_data_is_base64_and_zero_scalars_are_left_out_like_go_omitempty() {
    let raw = Writer::new()
        .message(1, |m| {
            // Go writes every non-pointer field, zero or not.
            m.string(1, "tls-keys")
                .string(2, "")
                .string(3, "default")
                .string(4, "")
                .string(5, "")
                .string(6, "")
                .int64(7, 0)
                .bytes(8, &[])
        })
        .entry(2, "key.bin", |v| v.bytes(2, &[0xff, 0x00, 0x10]))
        .entry(2, "empty", |v| v)
        .string(3, "Opaque");
    assert_eq!(
        decoded("v1", "Secret", raw),
        json!({
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "tls-keys", "namespace": "default", "creationTimestamp": null},
            "data": {"empty": "", "key.bin": "/wAQ"},
            "type": "Opaque",
        })
    );
}

#[test]
fn namespace_keeps_its_empty_spec_and_status_objects() {
    let raw = Writer::new()
        .message(1, |m| m.string(1, "team-a").bytes(8, &[]))
        .bytes(2, &[])
        .message(3, |s| s.string(1, "Active"));
    assert_eq!(
        decoded("v1", "Namespace", raw),
        json!({
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {"name": "team-a", "creationTimestamp": null},
            "spec": {},
            "status": {"phase": "Active"},
        })
    );
}

/// A container the way client-go writes one: every non-pointer field
/// present, most of them empty.
fn container(w: Writer) -> Writer {
    w.string(1, "web")
        .string(2, "nginx:1.27")
        .string(3, "nginx")
        .string(4, "-g")
        .string(4, "daemon off;")
        .string(5, "")
        .message(6, |p| p.string(1, "http").int32(2, 0).int32(3, 8080).string(4, "TCP").string(5, ""))
        .message(7, |e| e.string(1, "MODE").string(2, "prod"))
        .message(7, |e| {
            e.string(1, "POD_NAME")
                .string(2, "")
                .message(3, |s| s.message(1, |f| f.string(1, "v1").string(2, "metadata.name")))
        })
        .message(8, |r| {
            r.entry(1, "memory", |q| q.message(2, |q| q.string(1, "128Mi")))
                .entry(2, "cpu", |q| q.message(2, |q| q.string(1, "250m")))
                .entry(2, "memory", |q| q.message(2, |q| q.string(1, "64Mi")))
        })
        .message(10, |probe| {
            probe
                .message(1, |h| {
                    h.message(2, |get| {
                        get.string(1, "/healthz")
                            .message(2, |port| port.int64(1, 1).int32(2, 0).string(3, "http"))
                            .string(3, "")
                            .string(4, "HTTP")
                    })
                })
                .int32(2, 5)
                .int32(3, 0)
                .int32(4, 10)
                .int32(5, 0)
                .int32(6, 0)
        })
        .message(11, |probe| {
            probe.message(1, |h| h.message(3, |tcp| tcp.message(1, |port| port.int64(1, 0).int32(2, 8080)))).int32(2, 0)
        })
        .string(13, "/dev/termination-log")
        .string(14, "IfNotPresent")
        .bool(16, false)
        .bool(17, false)
        .bool(18, false)
        .string(20, "File")
}

#[test]
fn deployment_with_a_pod_template_decodes_like_go_writes_json() {
    let raw = Writer::new()
        .message(1, metadata("web", "default"))
        .message(2, |spec| {
            spec.int32(1, 0)
                .message(2, |sel| sel.entry(1, "app", |v| v.string(2, "web")))
                .message(3, |template| {
                    template.message(1, |m| m.bytes(8, &[]).entry(11, "app", |v| v.string(2, "web"))).message(
                        2,
                        |pod| {
                            pod.message(2, container)
                                .string(3, "Always")
                                .int64(4, 30)
                                .string(6, "ClusterFirst")
                                .bool(11, false)
                                .message(14, |sc| sc.int64(2, 0))
                                .string(19, "default-scheduler")
                        },
                    )
                })
                .message(4, |strategy| {
                    strategy.string(1, "RollingUpdate").message(2, |ru| {
                        ru.message(1, |v| v.int64(1, 1).string(3, "25%")).message(2, |v| v.int64(1, 0).int32(2, 1))
                    })
                })
                .int32(5, 0)
                .int32(6, 10)
                .bool(7, false)
                .int32(9, 600)
        })
        .message(3, |status| status.int64(1, 0).int32(2, 0));
    assert_eq!(
        decoded("apps/v1", "Deployment", raw),
        json!({
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": null},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "web",
                            "image": "nginx:1.27",
                            "command": ["nginx"],
                            "args": ["-g", "daemon off;"],
                            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                            "env": [
                                {"name": "MODE", "value": "prod"},
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                            ],
                            "resources": {
                                "limits": {"memory": "128Mi"},
                                "requests": {"cpu": "250m", "memory": "64Mi"},
                            },
                            "livenessProbe": {
                                "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                                "initialDelaySeconds": 5,
                                "periodSeconds": 10,
                            },
                            "readinessProbe": {"tcpSocket": {"port": 8080}},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                            "imagePullPolicy": "IfNotPresent",
                        }],
                        "restartPolicy": "Always",
                        "terminationGracePeriodSeconds": 30,
                        "dnsPolicy": "ClusterFirst",
                        "securityContext": {"runAsUser": 0},
                        "schedulerName": "default-scheduler",
                    },
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1},
                },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
            },
            "status": {},
        })
    );
}

#[test]
fn service_ports_take_int_and_string_target_ports() {
    let port = |name: &'static str, port: i32, target: Writer, node_port: i32| {
        let target = target.finish();
        move |p: Writer| p.string(1, name).string(2, "TCP").int32(3, port).bytes(4, &target).int32(5, node_port)
    };
    let raw = Writer::new()
        .message(1, metadata("web", "default"))
        .message(2, |spec| {
            spec.message(1, port("http", 80, Writer::new().int64(1, 0).int32(2, 8080), 30080))
                .message(1, port("metrics", 9090, Writer::new().int64(1, 1).string(3, "metrics"), 0))
                .entry(2, "app", |v| v.string(2, "web"))
                .string(3, "10.96.0.10")
                .string(18, "10.96.0.10")
                .string(4, "NodePort")
                .string(7, "None")
                .string(11, "Cluster")
                .int32(12, 0)
                .bool(13, false)
                .string(19, "IPv4")
                .string(17, "SingleStack")
                .string(22, "Cluster")
        })
        .message(3, |status| status.bytes(1, &[]));
    assert_eq!(
        decoded("v1", "Service", raw),
        json!({
            "kind": "Service",
            "apiVersion": "v1",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": null},
            "spec": {
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080},
                    {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": "metrics"},
                ],
                "selector": {"app": "web"},
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"],
                "type": "NodePort",
                "sessionAffinity": "None",
                "externalTrafficPolicy": "Cluster",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
            },
            "status": {"loadBalancer": {}},
        })
    );
}

#[test]
fn ingress_rules_inline_their_http_value_and_path_type_is_null_when_unset() {
    let backend =
        |w: Writer| w.message(4, |svc| svc.string(1, "svc1").message(2, |port| port.string(1, "").int32(2, 8080)));
    let raw = Writer::new()
        .message(1, metadata("simple", "default"))
        .message(2, |spec| {
            spec.string(4, "nginx").message(2, |tls| tls.string(1, "foo.com").string(2, "my-cert")).message(3, |rule| {
                rule.string(1, "foo.com").message(2, |value| {
                    value.message(1, |http| {
                        http.message(1, |path| path.string(1, "/bar").string(3, "Exact").message(2, backend))
                            .message(1, |path| path.string(1, "/legacy").message(2, backend))
                    })
                })
            })
        })
        .message(3, |s| s.bytes(1, &[]));
    let service = json!({"service": {"name": "svc1", "port": {"number": 8080}}});
    assert_eq!(
        decoded("networking.k8s.io/v1", "Ingress", raw),
        json!({
            "kind": "Ingress",
            "apiVersion": "networking.k8s.io/v1",
            "metadata": {"name": "simple", "namespace": "default", "creationTimestamp": null},
            "spec": {
                "ingressClassName": "nginx",
                "tls": [{"hosts": ["foo.com"], "secretName": "my-cert"}],
                "rules": [{
                    "host": "foo.com",
                    "http": {"paths": [
                        {"path": "/bar", "pathType": "Exact", "backend": service},
                        {"path": "/legacy", "pathType": null, "backend": service},
                    ]},
                }],
            },
            "status": {"loadBalancer": {}},
        })
    );
}

#[test]
fn delete_options_keep_an_explicit_zero_grace_period() {
    let raw = Writer::new()
        .int64(1, 0)
        .message(2, |p| p.string(1, "6f1b2c3d").string(2, "42"))
        .string(4, "Foreground")
        .string(5, "All");
    assert_eq!(
        decoded("v1", "DeleteOptions", raw),
        json!({
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": "6f1b2c3d", "resourceVersion": "42"},
            "propagationPolicy": "Foreground",
            "dryRun": ["All"],
        })
    );
}

#[test]
fn delete_options_are_accepted_in_any_v1_group_version() {
    let value = decoded("apps/v1", "DeleteOptions", Writer::new().string(4, "Orphan"));
    assert_eq!(value["propagationPolicy"], "Orphan");
}

#[test]
fn endpoint_slices_write_null_for_unset_endpoints_and_ports() {
    let raw = Writer::new().message(1, metadata("web-abc", "default")).string(4, "IPv4");
    assert_eq!(
        decoded("discovery.k8s.io/v1", "EndpointSlice", raw),
        json!({
            "kind": "EndpointSlice",
            "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"name": "web-abc", "namespace": "default", "creationTimestamp": null},
            "addressType": "IPv4",
            "endpoints": null,
            "ports": null,
        })
    );
}

#[test]
fn managed_fields_embed_their_fields_v1_json() {
    let raw = Writer::new().message(1, |m| {
        m.string(1, "cm").bytes(8, &[]).message(17, |entry| {
            entry
                .string(1, "kubectl-create")
                .string(2, "Update")
                .string(3, "v1")
                .message(4, |t| t.int64(1, 1_735_689_600))
                .string(6, "FieldsV1")
                .message(7, |f| f.bytes(1, br#"{"f:data":{".":{},"f:mode":{}}}"#))
        })
    });
    assert_eq!(
        decoded("v1", "ConfigMap", raw)["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2025-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:mode": {}}},
        }])
    );
}

#[test]
fn negative_int64_values_survive_their_ten_byte_varints() {
    let raw = Writer::new()
        .message(1, metadata("p", "default"))
        .message(2, |spec| spec.int64(5, -1).message(14, |sc| sc.int64(2, -7)));
    let pod = decoded("v1", "Pod", raw);
    assert_eq!(pod["spec"]["activeDeadlineSeconds"], -1);
    assert_eq!(pod["spec"]["securityContext"]["runAsUser"], -7);
}

#[test]
fn packed_repeated_scalars_are_accepted_though_kubernetes_never_packs_them() {
    let raw = Writer::new()
        .message(1, metadata("p", "default"))
        .message(2, |spec| spec.message(14, |sc| sc.packed(4, &[1000, 2000]).int64(4, 3000)));
    assert_eq!(decoded("v1", "Pod", raw)["spec"]["securityContext"]["supplementalGroups"], json!([1000, 2000, 3000]));
}

#[test]
fn unknown_field_numbers_are_skipped_as_go_does() {
    let raw = Writer::new()
        .message(1, |m| m.string(1, "cm").bytes(8, &[]).string(99, "from the future"))
        .int64(1000, 5)
        .double(1001, 1.0)
        .entry(2, "k", |v| v.string(2, "v").int32(7, 1));
    assert_eq!(
        decoded("v1", "ConfigMap", raw),
        json!({
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"name": "cm", "creationTimestamp": null},
            "data": {"k": "v"},
        })
    );
}

#[test]
fn list_kinds_decode_their_items() {
    let item = Writer::new().message(1, metadata("a", "default")).finish();
    let raw = Writer::new().message(1, |m| m.string(2, "17")).bytes(2, &item).bytes(2, &item);
    let list = decoded("v1", "ConfigMapList", raw);
    assert_eq!(list["metadata"], json!({"resourceVersion": "17"}));
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(list["items"][0]["metadata"]["name"], "a");
}

#[test]
fn watch_events_decode_the_object_embedded_as_kubernetes_protobuf() {
    let pod = encode_unknown("v1", "Pod", &Writer::new().message(1, metadata("p", "ns")).finish());
    let raw = Writer::new().string(1, "ADDED").message(2, |raw| raw.bytes(1, &pod));
    let event = decoded("v1", "WatchEvent", raw);
    assert_eq!(event["type"], "ADDED");
    assert_eq!(event["object"]["kind"], "Pod");
    assert_eq!(event["object"]["metadata"]["name"], "p");
    assert_eq!(event["object"]["spec"], json!({"containers": null}));
}

#[test]
fn an_unknown_kind_is_reported_with_its_api_version() {
    let bytes = encode_unknown("batch/v1", "CronJob", &[]);
    let err = decode(&bytes).expect_err("no table for CronJob");
    assert!(
        matches!(&err, ProtobufError::UnsupportedKind { api_version, kind } if api_version == "batch/v1" && kind == "CronJob")
    );
    assert_eq!(err.to_string(), "cannot decode CronJob of batch/v1 from protobuf");
}

#[test]
fn a_body_without_the_magic_prefix_is_malformed() {
    let err = decode(b"{\"kind\":\"ConfigMap\"}").expect_err("JSON is not protobuf");
    assert!(matches!(err, ProtobufError::Malformed { reason: Malformation::MissingMagic, .. }), "{err}");
}

#[test]
fn gzip_content_encoding_is_refused() {
    let unknown =
        Writer::new().message(1, |t| t.string(1, "v1").string(2, "ConfigMap")).bytes(2, &[]).string(3, "gzip").finish();
    let err = decode(&[&b"k8s\0"[..], &unknown].concat()).expect_err("gzip");
    assert!(matches!(err, ProtobufError::UnsupportedEnvelope { .. }), "{err}");
}

#[test]
fn a_string_where_an_int_belongs_names_the_field_path() {
    let raw = Writer::new().message(1, metadata("d", "default")).message(2, |spec| {
        spec.message(3, |t| t.message(2, |pod| pod.message(2, |c| c.message(6, |p| p.string(3, "8080")))))
    });
    let err = decode(&encode_unknown("apps/v1", "Deployment", &raw.finish())).expect_err("wire type");
    assert_eq!(
        err.to_string(),
        "malformed protobuf at Deployment.spec.template.spec.containers[0].ports[0].containerPort: \
         wire type 2 where wire type 0 belongs"
    );
}

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn truncated_and_corrupted_bodies_are_errors_never_panics() {
    let raw = Writer::new()
        .message(1, metadata("web", "default"))
        .message(2, |spec| spec.int32(1, 3).message(3, |t| t.message(2, |pod| pod.message(2, container))))
        .finish();
    let bytes = encode_unknown("apps/v1", "Deployment", &raw);
    for cut in 0..bytes.len() {
        // Any prefix either decodes (it ends between fields) or fails.
        let _ = decode(&bytes[..cut]);
    }
    assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    let mut rng = XorShift(0x5eed);
    for _ in 0..5000 {
        let mut corrupted = bytes.clone();
        for _ in 0..(rng.next() % 4 + 1) {
            let i = (rng.next() as usize) % corrupted.len();
            corrupted[i] = rng.next() as u8;
        }
        let _ = decode(&corrupted);
    }
}

#[test]
fn deeply_nested_embedded_objects_are_refused() {
    let mut object = encode_unknown("v1", "Status", &[]);
    for _ in 0..200 {
        let event = Writer::new().string(1, "ADDED").message(2, |raw| raw.bytes(1, &object)).finish();
        object = encode_unknown("v1", "WatchEvent", &event);
    }
    let err = decode(&object).expect_err("too deep");
    assert!(matches!(err, ProtobufError::Malformed { reason: Malformation::TooDeep, .. }), "{err}");
}
