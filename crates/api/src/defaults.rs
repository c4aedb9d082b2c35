//! API defaulting: the values kube-apiserver fills in when a client leaves
//! a field out (`SetDefaults_*` in Kubernetes), so that stored objects,
//! `kubectl get -o yaml` and `kubectl describe` look the same as on a real
//! cluster. Applied on every create and update, before validation.
//!
//! Allocation (cluster IPs, node ports) is not defaulting and lives in the
//! API server's Service strategy.

use serde_json::{Map, Value, json};

/// Fills in defaults for an object of `kind`.
pub fn apply(kind: &str, obj: &mut Value) {
    match kind {
        "Service" => service(obj),
        "Pod" => {
            if let Some(spec) = obj.get_mut("spec") {
                pod_spec(spec);
            }
        }
        "Deployment" => deployment(obj),
        "ReplicaSet" => replica_set(obj),
        "StatefulSet" => stateful_set(obj),
        "DaemonSet" => daemon_set(obj),
        "Secret" => set_default(obj, "type", json!("Opaque")),
        "Endpoints" => {
            for subset in array_mut(obj, "subsets") {
                for port in array_mut(subset, "ports") {
                    set_default(port, "protocol", json!("TCP"));
                }
            }
        }
        "EndpointSlice" => {
            for port in array_mut(obj, "ports") {
                set_default(port, "protocol", json!("TCP"));
            }
        }
        "Event" if obj.get("type").is_none() => {
            set_default(obj, "type", json!("Normal"));
        }
        _ => {}
    }
}

fn set_default(obj: &mut Value, field: &str, value: Value) {
    if let Some(map) = obj.as_object_mut() {
        if map.get(field).is_none_or(Value::is_null) {
            map.insert(field.to_string(), value);
        }
    }
}

fn object_mut<'a>(obj: &'a mut Value, field: &str) -> Option<&'a mut Map<String, Value>> {
    obj.as_object_mut()?.get_mut(field)?.as_object_mut()
}

fn array_mut<'a>(obj: &'a mut Value, field: &str) -> impl Iterator<Item = &'a mut Value> {
    obj.as_object_mut()
        .and_then(|m| m.get_mut(field))
        .and_then(Value::as_array_mut)
        .map(|a| a.iter_mut())
        .into_iter()
        .flatten()
}

fn service(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec") else { return };
    set_default(spec, "type", json!("ClusterIP"));
    let kind = spec.get("type").and_then(Value::as_str).unwrap_or("ClusterIP").to_string();
    set_default(spec, "sessionAffinity", json!("None"));
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP") {
        let cfg = spec
            .as_object_mut()
            .map(|m| m.entry("sessionAffinityConfig").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut);
        if let Some(cfg) = cfg {
            let client = cfg.entry("clientIP").or_insert_with(|| json!({}));
            set_default(client, "timeoutSeconds", json!(10800));
        }
    }
    for port in array_mut(spec, "ports") {
        set_default(port, "protocol", json!("TCP"));
        if port.get("targetPort").is_none_or(|t| t.is_null() || t == &json!(0) || t == &json!("")) {
            if let Some(p) = port.get("port").cloned() {
                if let Some(m) = port.as_object_mut() {
                    m.insert("targetPort".into(), p);
                }
            }
        }
    }
    if kind != "ExternalName" {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if kind == "NodePort" || kind == "LoadBalancer" {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if kind == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
}

fn pod_spec(spec: &mut Value) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "securityContext", json!({}));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        // Host ports equal container ports on the host network.
        for c in array_mut(spec, "containers") {
            for p in array_mut(c, "ports") {
                if p.get("hostPort").is_none() {
                    if let Some(cp) = p.get("containerPort").cloned() {
                        if let Some(m) = p.as_object_mut() {
                            m.insert("hostPort".into(), cp);
                        }
                    }
                }
            }
        }
    }
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        for c in array_mut(spec, field) {
            container(c);
        }
    }
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in volumes {
            for (source, mode_field) in [
                ("configMap", "defaultMode"),
                ("secret", "defaultMode"),
                ("projected", "defaultMode"),
                ("downwardAPI", "defaultMode"),
            ] {
                if let Some(src) = object_mut(v, source) {
                    src.entry(mode_field).or_insert(json!(420));
                }
            }
            if let Some(hp) = object_mut(v, "hostPath") {
                hp.entry("type").or_insert(json!(""));
            }
        }
    }
}

fn container(c: &mut Value) {
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    let image = c.get("image").and_then(Value::as_str).unwrap_or("").to_string();
    // :latest (or no tag) images are pulled always, pinned ones if absent.
    let tag = image.rsplit('/').next().and_then(|last| last.split_once(':').map(|(_, t)| t.to_string()));
    let latest = !image.contains('@') && tag.as_deref().is_none_or(|t| t == "latest");
    set_default(c, "imagePullPolicy", json!(if latest { "Always" } else { "IfNotPresent" }));
    set_default(c, "resources", json!({}));
    for p in array_mut(c, "ports") {
        set_default(p, "protocol", json!("TCP"));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe) {
            set_default(p, "timeoutSeconds", json!(1));
            set_default(p, "periodSeconds", json!(10));
            set_default(p, "successThreshold", json!(1));
            set_default(p, "failureThreshold", json!(3));
            if let Some(h) = object_mut(p, "httpGet") {
                h.entry("path").or_insert(json!("/"));
                h.entry("scheme").or_insert(json!("HTTP"));
            }
        }
    }
}

fn template(obj: &mut Value) {
    if let Some(spec) = obj.pointer_mut("/spec/template/spec") {
        pod_spec(spec);
    }
    if let Some(meta) = obj.pointer_mut("/spec/template/metadata").and_then(Value::as_object_mut) {
        meta.remove("creationTimestamp");
    }
}

fn deployment(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec") else { return };
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    rolling_update_strategy(spec, "strategy", &[("maxUnavailable", json!("25%")), ("maxSurge", json!("25%"))]);
    template(obj);
}

/// Defaults a workload's update strategy `spec[field]` to RollingUpdate,
/// and its `rollingUpdate` parameters to `rolling` when that is its type.
fn rolling_update_strategy(spec: &mut Value, field: &str, rolling: &[(&str, Value)]) {
    set_default(spec, field, json!({}));
    let Some(strategy) = spec.get_mut(field) else { return };
    set_default(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        set_default(strategy, "rollingUpdate", json!({}));
        if let Some(ru) = strategy.get_mut("rollingUpdate") {
            for (key, value) in rolling {
                set_default(ru, key, value.clone());
            }
        }
    }
}

fn stateful_set(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec") else { return };
    set_default(spec, "replicas", json!(1));
    set_default(spec, "podManagementPolicy", json!("OrderedReady"));
    set_default(spec, "revisionHistoryLimit", json!(10));
    rolling_update_strategy(spec, "updateStrategy", &[("partition", json!(0))]);
    set_default(spec, "persistentVolumeClaimRetentionPolicy", json!({}));
    if let Some(policy) = spec.get_mut("persistentVolumeClaimRetentionPolicy") {
        set_default(policy, "whenDeleted", json!("Retain"));
        set_default(policy, "whenScaled", json!("Retain"));
    }
    template(obj);
}

fn daemon_set(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec") else { return };
    set_default(spec, "revisionHistoryLimit", json!(10));
    rolling_update_strategy(spec, "updateStrategy", &[("maxUnavailable", json!(1)), ("maxSurge", json!(0))]);
    template(obj);
}

fn replica_set(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec") {
        set_default(spec, "replicas", json!(1));
    }
    template(obj);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_get_protocol_target_port_and_affinity_defaults() {
        let mut svc = json!({ "spec": { "ports": [{ "port": 80 }], "sessionAffinity": "ClientIP" } });
        apply("Service", &mut svc);
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(svc["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"], 10800);
        assert_eq!(svc["spec"]["internalTrafficPolicy"], "Cluster");
        assert!(svc["spec"].get("externalTrafficPolicy").is_none());
    }

    #[test]
    fn node_port_services_default_external_traffic_policy() {
        let mut svc = json!({ "spec": { "type": "NodePort", "ports": [{ "port": 80, "targetPort": "http" }] } });
        apply("Service", &mut svc);
        assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    }

    #[test]
    fn deployments_default_rolling_update_and_pod_template() {
        let mut d = json!({ "spec": { "template": { "spec": { "containers": [
            { "name": "web", "image": "nginx:1.17.1", "ports": [{ "containerPort": 80 }] },
            { "name": "side", "image": "busybox" }
        ] } } } });
        apply("Deployment", &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(pod["containers"][1]["imagePullPolicy"], "Always");
        assert_eq!(pod["containers"][0]["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn explicit_values_are_never_overwritten() {
        let mut d = json!({ "spec": { "replicas": 0, "strategy": { "type": "Recreate" } } });
        apply("Deployment", &mut d);
        assert_eq!(d["spec"]["replicas"], 0);
        assert!(d["spec"]["strategy"].get("rollingUpdate").is_none());
    }
}
