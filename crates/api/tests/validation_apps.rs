//! Deployment and ReplicaSet validation with kube-apiserver 1.33's messages.

use serde_json::{Value, json};
use svcnet_api::defaults;
use svcnet_api::validation::{Context, invalid_message, qualified_kind, validate, validate_update};

fn deployment(spec: Value) -> Value {
    json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "pc-deployment" }, "spec": spec })
}

fn template(labels: Value) -> Value {
    json!({ "metadata": { "labels": labels }, "spec": { "containers": [{ "name": "nginx", "image": "nginx:1.17.1" }] } })
}

fn defaulted(kind: &str, obj: Value) -> Value {
    let mut obj = obj;
    defaults::apply(kind, &mut obj);
    obj
}

fn messages(kind: &str, obj: Value) -> Vec<String> {
    validate(kind, &defaulted(kind, obj), &Context::default()).iter().map(|e| e.message()).collect()
}

#[test]
fn deployment_mistakes_are_reported_as_kube_does() {
    let sel = json!({ "matchLabels": { "app": "nginx-pod" } });
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "a selector is required, and nothing matches without one",
            json!({ "template": template(json!({ "app": "nginx-pod" })) }),
            vec![
                "spec.selector: Required value",
                r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"nginx-pod"}: `selector` does not match template `labels`"#,
            ],
        ),
        (
            "an empty selector is invalid",
            json!({ "selector": {}, "template": template(json!({ "app": "nginx-pod" })) }),
            vec![
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
            ],
        ),
        (
            "the template must carry the selected labels",
            json!({ "selector": sel, "template": template(json!({ "app": "nginx" })) }),
            vec![
                r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"nginx"}: `selector` does not match template `labels`"#,
            ],
        ),
        (
            "replicas are not negative",
            json!({ "replicas": -1, "selector": sel, "template": template(json!({ "app": "nginx-pod" })) }),
            vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            "maxSurge and maxUnavailable may not both be zero",
            json!({ "selector": sel, "template": template(json!({ "app": "nginx-pod" })),
                    "strategy": { "rollingUpdate": { "maxSurge": 0, "maxUnavailable": 0 } } }),
            vec![
                r#"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0"#,
            ],
        ),
        (
            "percentages are numbers followed by %",
            json!({ "selector": sel, "template": template(json!({ "app": "nginx-pod" })),
                    "strategy": { "rollingUpdate": { "maxSurge": "25 %", "maxUnavailable": "150%" } } }),
            vec![
                r#"spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"25 %"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"#,
                r#"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: must not be greater than 100%"#,
            ],
        ),
        (
            "strategy types are Recreate or RollingUpdate",
            json!({ "selector": sel, "template": template(json!({ "app": "nginx-pod" })), "strategy": { "type": "BlueGreen" } }),
            vec![
                r#"spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "Recreate", "RollingUpdate""#,
            ],
        ),
        (
            "Recreate takes no rolling update parameters",
            json!({ "selector": sel, "template": template(json!({ "app": "nginx-pod" })),
                    "strategy": { "type": "Recreate", "rollingUpdate": { "maxSurge": 1 } } }),
            vec!["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"],
        ),
        (
            "the progress deadline outlasts minReadySeconds",
            json!({ "selector": sel, "template": template(json!({ "app": "nginx-pod" })), "minReadySeconds": 600, "revisionHistoryLimit": -1 }),
            vec![
                "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
                "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
            ],
        ),
        (
            "pods of a deployment always restart",
            json!({ "selector": sel, "template": {
                "metadata": { "labels": { "app": "nginx-pod" } },
                "spec": { "restartPolicy": "Never", "containers": [{ "name": "nginx", "image": "nginx" }] } } }),
            vec![r#"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#],
        ),
        (
            "selector operators are an enumeration",
            json!({ "selector": { "matchExpressions": [{ "key": "app", "operator": "Equals", "values": ["nginx-pod"] }] },
                    "template": template(json!({ "app": "nginx-pod" })) }),
            vec![
                r#"spec.selector.matchExpressions[0].operator: Invalid value: "Equals": not a valid selector operator"#,
                r#"spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"app", Operator:"Equals", Values:[]string{"nginx-pod"}}}}: invalid label selector"#,
            ],
        ),
        (
            "template containers are validated too",
            json!({ "selector": sel, "template": { "metadata": { "labels": { "app": "nginx-pod" } }, "spec": { "containers": [] } } }),
            vec!["spec.template.spec.containers: Required value"],
        ),
    ];
    for (name, spec, want) in cases {
        assert_eq!(messages("Deployment", deployment(spec)), want, "{name}");
    }
}

#[test]
fn a_deployment_selector_is_immutable() {
    let old = defaulted(
        "Deployment",
        deployment(json!({ "selector": { "matchLabels": { "app": "nginx-pod" } },
        "template": template(json!({ "app": "nginx-pod", "tier": "web" })) })),
    );
    let new = defaulted(
        "Deployment",
        deployment(json!({ "selector": { "matchLabels": { "app": "nginx-pod", "tier": "web" } },
        "template": template(json!({ "app": "nginx-pod", "tier": "web" })) })),
    );
    let errs = validate_update("Deployment", &new, &old, &Context::default());
    assert_eq!(
        invalid_message(&qualified_kind("apps", "Deployment"), "pc-deployment", &errs),
        r#"Deployment.apps "pc-deployment" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"nginx-pod", "tier":"web"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"#
    );
    let scaled = {
        let mut d = old.clone();
        d["spec"]["replicas"] = json!(5);
        d
    };
    assert_eq!(validate_update("Deployment", &scaled, &old, &Context::default()), vec![]);
}

#[test]
fn replica_sets_follow_the_same_selector_rules() {
    let rs = json!({ "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": { "name": "pc-replicaset" },
        "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "nginx-pod" } }, "template": template(json!({ "app": "nginx" })) } });
    assert_eq!(
        messages("ReplicaSet", rs),
        vec![
            r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"nginx"}: `selector` does not match template `labels`"#
        ]
    );
}
