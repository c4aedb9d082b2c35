//! Pod validation with kube-apiserver 1.33's messages.

use serde_json::{Value, json};
use svcnet_api::defaults;
use svcnet_api::validation::{Context, validate, validate_update};

fn pod(spec: Value) -> Value {
    json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p" }, "spec": spec })
}

fn defaulted(obj: Value) -> Value {
    let mut obj = obj;
    defaults::apply("Pod", &mut obj);
    obj
}

fn messages(spec: Value) -> Vec<String> {
    validate("Pod", &defaulted(pod(spec)), &Context::default()).iter().map(|e| e.message()).collect()
}

fn nginx(extra: Value) -> Value {
    let mut c = json!({ "name": "nginx", "image": "nginx:1.17.1" });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c
}

#[test]
fn pod_mistakes_are_reported_as_kube_does() {
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("containers are required", json!({}), vec!["spec.containers: Required value"]),
        (
            "a container needs an image",
            json!({ "containers": [{ "name": "nginx" }] }),
            vec!["spec.containers[0].image: Required value"],
        ),
        (
            "container names are DNS labels",
            json!({ "containers": [{ "name": "Nginx", "image": "nginx" }] }),
            vec![
                r#"spec.containers[0].name: Invalid value: "Nginx": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
            ],
        ),
        (
            "container names are unique",
            json!({ "containers": [nginx(json!({})), nginx(json!({}))] }),
            vec![r#"spec.containers[1].name: Duplicate value: "nginx""#],
        ),
        (
            "init containers may not reuse a container's name",
            json!({ "containers": [nginx(json!({}))], "initContainers": [{ "name": "nginx", "image": "busybox" }] }),
            vec![r#"spec.initContainers[0].name: Duplicate value: "nginx""#],
        ),
        (
            "container ports are in range",
            json!({ "containers": [nginx(json!({ "ports": [{ "containerPort": 70000 }] }))] }),
            vec![
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ],
        ),
        (
            "a container port is required",
            json!({ "containers": [nginx(json!({ "ports": [{ "name": "http" }] }))] }),
            vec!["spec.containers[0].ports[0].containerPort: Required value"],
        ),
        (
            "container port names are IANA_SVC_NAMEs and unique",
            json!({ "containers": [nginx(json!({ "ports": [
                { "name": "http-port-number-1", "containerPort": 80 },
                { "name": "web", "containerPort": 81 },
                { "name": "web", "containerPort": 82 }
            ] }))] }),
            vec![
                r#"spec.containers[0].ports[0].name: Invalid value: "http-port-number-1": must be no more than 15 characters"#,
                r#"spec.containers[0].ports[2].name: Duplicate value: "web""#,
            ],
        ),
        (
            "host ports are in range",
            json!({ "containers": [nginx(json!({ "ports": [{ "containerPort": 80, "hostPort": 70000 }] }))] }),
            vec!["spec.containers[0].ports[0].hostPort: Invalid value: 70000: must be between 1 and 65535, inclusive"],
        ),
        (
            "host ports may not collide",
            json!({ "containers": [
                nginx(json!({ "ports": [{ "containerPort": 80, "hostPort": 8080 }] })),
                { "name": "other", "image": "busybox", "ports": [{ "containerPort": 81, "hostPort": 8080 }] }
            ] }),
            vec![r#"spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//8080""#],
        ),
        (
            "protocols are an enumeration",
            json!({ "containers": [nginx(json!({ "ports": [{ "containerPort": 80, "protocol": "tcp" }] }))] }),
            vec![
                r#"spec.containers[0].ports[0].protocol: Unsupported value: "tcp": supported values: "SCTP", "TCP", "UDP""#,
            ],
        ),
        (
            "restart policies are an enumeration",
            json!({ "containers": [nginx(json!({}))], "restartPolicy": "Sometimes" }),
            vec![
                r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
            ],
        ),
        (
            "env names may not contain '='",
            json!({ "containers": [nginx(json!({ "env": [{ "name": "A=B", "value": "x" }, { "value": "y" }] }))] }),
            vec![
                r#"spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII characters other than '='"#,
                "spec.containers[0].env[1].name: Required value",
            ],
        ),
        (
            "dotted and dashed env names are fine",
            json!({ "containers": [nginx(json!({ "env": [{ "name": "my.env-name", "value": "x" }] }))] }),
            vec![],
        ),
        (
            "a probe needs a handler",
            json!({ "containers": [nginx(json!({ "livenessProbe": { "periodSeconds": 5 } }))] }),
            vec!["spec.containers[0].livenessProbe: Required value: must specify a handler type"],
        ),
        (
            "a probe has exactly one handler",
            json!({ "containers": [nginx(json!({ "readinessProbe": { "httpGet": { "port": 80 }, "tcpSocket": { "port": 80 } } }))] }),
            vec!["spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"],
        ),
        (
            "liveness probes succeed once",
            json!({ "containers": [nginx(json!({ "livenessProbe": { "exec": { "command": ["true"] }, "successThreshold": 2 } }))] }),
            vec!["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"],
        ),
        (
            "probe timings are not negative",
            json!({ "containers": [nginx(json!({ "readinessProbe": { "exec": { "command": ["true"] }, "initialDelaySeconds": -1 } }))] }),
            vec![
                "spec.containers[0].readinessProbe.initialDelaySeconds: Invalid value: -1: must be greater than or equal to 0",
            ],
        ),
        (
            "probe ports are numbers or names",
            json!({ "containers": [nginx(json!({ "readinessProbe": { "tcpSocket": { "port": 0 } } }))] }),
            vec![
                "spec.containers[0].readinessProbe.tcpSocket.port: Invalid value: 0: must be between 1 and 65535, inclusive",
            ],
        ),
        (
            "exec handlers need a command",
            json!({ "containers": [nginx(json!({ "lifecycle": { "postStart": { "exec": {} } } }))] }),
            vec!["spec.containers[0].lifecycle.postStart.exec.command: Required value"],
        ),
        (
            "init containers may not have probes",
            json!({ "containers": [nginx(json!({}))], "initContainers": [{ "name": "init", "image": "busybox", "livenessProbe": { "exec": { "command": ["true"] } } }] }),
            vec![
                "spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
            ],
        ),
        (
            "mounts refer to declared volumes",
            json!({ "containers": [nginx(json!({ "volumeMounts": [{ "name": "logs", "mountPath": "/var/log" }] }))] }),
            vec![r#"spec.containers[0].volumeMounts[0].name: Not found: "logs""#],
        ),
        (
            "a volume has exactly one source",
            json!({ "containers": [nginx(json!({}))], "volumes": [{ "name": "v" }, { "name": "w", "emptyDir": {}, "hostPath": { "path": "/tmp" } }] }),
            vec![
                "spec.volumes[0]: Required value: must specify a volume type",
                "spec.volumes[1].hostPath: Forbidden: may not specify more than 1 volume type",
            ],
        ),
        (
            "images have no surrounding whitespace",
            json!({ "containers": [{ "name": "nginx", "image": "nginx " }] }),
            vec![r#"spec.containers[0].image: Invalid value: "nginx ": must not have leading or trailing whitespace"#],
        ),
        (
            "host network pods publish the container port",
            json!({ "hostNetwork": true, "containers": [nginx(json!({ "ports": [{ "containerPort": 80, "hostPort": 8080 }] }))] }),
            vec![
                "spec.containers[0].ports[0].hostPort: Invalid value: 8080: must match `containerPort` when `hostNetwork` is true",
            ],
        ),
        (
            "an active deadline is positive",
            json!({ "containers": [nginx(json!({}))], "activeDeadlineSeconds": 0 }),
            vec!["spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"],
        ),
    ];
    for (name, spec, want) in cases {
        assert_eq!(messages(spec), want, "{name}");
    }
}

#[test]
fn a_running_pod_may_only_change_its_images() {
    let old = defaulted(pod(json!({ "containers": [nginx(json!({ "ports": [{ "containerPort": 80 }] }))] })));
    let new_image = defaulted(pod(
        json!({ "containers": [{ "name": "nginx", "image": "nginx:1.25", "ports": [{ "containerPort": 80 }] }] }),
    ));
    assert_eq!(validate_update("Pod", &new_image, &old, &Context::default()), vec![]);

    let new_port = defaulted(pod(json!({ "containers": [nginx(json!({ "ports": [{ "containerPort": 8080 }] }))] })));
    let errs = validate_update("Pod", &new_port, &old, &Context::default());
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, "spec");
    assert_eq!(errs[0].reason(), "FieldValueForbidden");
    assert!(
        errs[0].message().starts_with(
            "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
        ),
        "{}",
        errs[0].message()
    );

    let two = defaulted(pod(json!({ "containers": [nginx(json!({})), { "name": "side", "image": "busybox" }] })));
    let errs: Vec<String> =
        validate_update("Pod", &two, &old, &Context::default()).iter().map(|e| e.message()).collect();
    assert_eq!(errs, vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]);
}

fn with_ephemeral(list: Value) -> Value {
    defaulted(pod(json!({ "containers": [nginx(json!({}))], "ephemeralContainers": list })))
}

fn update_messages(new: &Value, old: &Value) -> Vec<String> {
    validate_update("Pod", new, old, &Context::default()).iter().map(|e| e.message()).collect()
}

#[test]
fn ephemeral_containers_are_only_added_and_only_with_what_kube_allows_them() {
    let none = with_ephemeral(json!([]));
    let debugger =
        json!({ "name": "debugger", "image": "busybox", "stdin": true, "tty": true, "targetContainerName": "nginx" });
    let one = with_ephemeral(json!([debugger.clone()]));
    assert_eq!(update_messages(&one, &none), Vec::<String>::new(), "adding one is an update like any other");

    let second = with_ephemeral(json!([debugger.clone(), { "name": "debugger-2", "image": "busybox" }]));
    assert_eq!(update_messages(&second, &one), Vec::<String>::new());

    assert_eq!(
        update_messages(&none, &one),
        vec!["spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger\" may not be removed\n"]
    );
    let changed = with_ephemeral(
        json!([{ "name": "debugger", "image": "alpine", "stdin": true, "tty": true, "targetContainerName": "nginx" }]),
    );
    assert_eq!(
        update_messages(&changed, &one),
        vec!["spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger\" may not be changed\n"]
    );

    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "a name taken by a container",
            json!([{ "name": "nginx", "image": "busybox" }]),
            vec![r#"spec.ephemeralContainers[0].name: Duplicate value: "nginx""#],
        ),
        (
            "an image is required",
            json!([{ "name": "debugger" }]),
            vec!["spec.ephemeralContainers[0].image: Required value"],
        ),
        (
            "the target must be one of the pod's containers",
            json!([{ "name": "debugger", "image": "busybox", "targetContainerName": "web" }]),
            vec![r#"spec.ephemeralContainers[0].targetContainerName: Not found: "web""#],
        ),
        (
            "ports and probes are for the pod's own containers",
            json!([{ "name": "debugger", "image": "busybox", "ports": [{ "containerPort": 80 }],
                     "readinessProbe": { "tcpSocket": { "port": 80 } } }]),
            vec![
                "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].readinessProbe: Forbidden: cannot be set for an Ephemeral Container",
            ],
        ),
    ];
    for (name, list, want) in cases {
        assert_eq!(update_messages(&with_ephemeral(list), &none), want, "{name}");
    }

    let mut mirror = none.clone();
    mirror["metadata"]["annotations"] = json!({ "kubernetes.io/config.mirror": "abc" });
    let mut mirror_one = one.clone();
    mirror_one["metadata"]["annotations"] = mirror["metadata"]["annotations"].clone();
    assert_eq!(
        update_messages(&mirror_one, &mirror),
        vec![": Forbidden: static pods do not support ephemeral containers"]
    );

    assert_eq!(
        messages(json!({ "containers": [nginx(json!({}))], "ephemeralContainers": [debugger] })),
        vec!["spec.ephemeralContainers: Forbidden: cannot be set on create"]
    );
}
