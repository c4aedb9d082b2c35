//! Pod and pod template validation: the parts of kube's `ValidatePodSpec`
//! that apply to what svcnet runs (containers, ports, env, probes,
//! lifecycle hooks, volumes and mounts, restart/DNS policy, scheduling
//! names), and `ValidatePodUpdate`'s immutability rule.
//!
//! Not covered: resources/quantities, security contexts, affinity,
//! tolerations' operators, topology spread and volume sources' own fields.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::access::{get, int_of, list, obj, opt_str, present, str_of, str_or, strings};
use super::field::{FieldError, Path};
use super::service::port_num_or_name_errors;
use super::text::{
    each, inclusive_range_error, ip_errors, is_config_map_key, is_dns1123_label, is_dns1123_subdomain,
    is_http_header_name, is_port_name, is_port_num, is_relaxed_env_var_name, labels_errors,
};

const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];
const PULL_POLICIES: [&str; 3] = ["Always", "IfNotPresent", "Never"];
const NONNEGATIVE: &str = "must be greater than or equal to 0";
const INIT_ONLY_WITH_ALWAYS: &str = "may not be set for init containers without restartPolicy=Always";
const MAX_INT32: i64 = 2147483647;

/// Volume source fields in the order kube checks them, with the path name
/// kube uses when a second one is set (typos included).
const VOLUME_SOURCES: [(&str, &str); 30] = [
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

/// The downward API fields an env var may read (`validEnvDownwardAPIFieldPathExpressions`), sorted.
const ENV_FIELD_PATHS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
/// Field labels the v1 downward API converts at all.
const CONVERTIBLE_FIELD_PATHS: [&str; 14] = [
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const RESOURCE_FIELDS: [&str; 6] = [
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

pub(crate) fn validate_pod(pod: &Value) -> Vec<FieldError> {
    let spec = obj(pod, "spec");
    let spec_path = Path::root("spec");
    let mut errs = pod_spec_errors(spec, &spec_path, true);
    for field in ["containers", "initContainers"] {
        for (i, c) in list(spec, field).iter().enumerate() {
            let image = str_of(c, "image");
            if image.len() != image.trim().len() {
                errs.push(FieldError::invalid(
                    spec_path.child(field).index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    if !list(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden("spec.ephemeralContainers", "cannot be set on create"));
    }
    errs
}

/// `ValidatePodTemplateSpec` at `path` (e.g. `spec.template`).
pub(crate) fn pod_template_errors(template: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = labels_errors(get(obj(template, "metadata"), "labels"), &path.child("labels"));
    let spec = obj(template, "spec");
    errs.extend(pod_spec_errors(spec, &path.child("spec"), false));
    if !list(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// The effective restart policy of a pod spec (defaulted to Always).
pub(crate) fn restart_policy(spec: &Value) -> &str {
    str_or(spec, "restartPolicy", "Always")
}

fn pod_spec_errors(spec: &Value, path: &Path, is_pod: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    // terminationGracePeriodSeconds is defaulted to 30, so kube's Required
    // check never fires after defaulting; negative values are accepted.
    let grace = Some(int_of(spec, "terminationGracePeriodSeconds").unwrap_or(30));

    let (volumes, vol_errs) = volumes_errors(list(spec, "volumes"), &path.child("volumes"));
    errs.extend(vol_errs);
    errs.extend(containers_errors(list(spec, "containers"), &volumes, grace, &path.child("containers")));
    errs.extend(init_containers_errors(
        list(spec, "initContainers"),
        list(spec, "containers"),
        &volumes,
        grace,
        &path.child("initContainers"),
    ));

    if get(spec, "hostNetwork").and_then(Value::as_bool) == Some(true) {
        for (i, c) in list(spec, "containers").iter().enumerate() {
            for (j, p) in list(c, "ports").iter().enumerate() {
                let hp = int_of(p, "hostPort").unwrap_or(0);
                let cp = int_of(p, "containerPort").unwrap_or(0);
                if (is_pod || hp != 0) && hp != cp {
                    errs.push(FieldError::invalid(
                        path.child("containers").index(i).child("ports").index(j).child("hostPort"),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }

    let rp = restart_policy(spec);
    if !["Always", "OnFailure", "Never"].contains(&rp) {
        errs.push(FieldError::not_supported(path.child("restartPolicy"), rp, &["Always", "OnFailure", "Never"]));
    }
    let dns = str_or(spec, "dnsPolicy", "ClusterFirst");
    let dns_policies = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
    if !dns_policies.contains(&dns) {
        errs.push(FieldError::not_supported(path.child("dnsPolicy"), dns, &dns_policies));
    }
    errs.extend(labels_errors(get(spec, "nodeSelector"), &path.child("nodeSelector")));
    errs.extend(dns_config_errors(spec, dns, &path.child("dnsConfig")));

    for (field, check) in
        [("serviceAccountName", is_dns1123_subdomain as fn(&str) -> Vec<String>), ("nodeName", is_dns1123_subdomain)]
    {
        let v = str_of(spec, field);
        if !v.is_empty() {
            errs.extend(each(&path.child(field), v, check(v)));
        }
    }
    if let Some(ads) = int_of(spec, "activeDeadlineSeconds") {
        if !(1..=MAX_INT32).contains(&ads) {
            errs.push(FieldError::invalid(
                path.child("activeDeadlineSeconds"),
                ads,
                inclusive_range_error(1, MAX_INT32),
            ));
        }
    }
    for field in ["hostname", "subdomain"] {
        let v = str_of(spec, field);
        if !v.is_empty() {
            errs.extend(each(&path.child(field), v, is_dns1123_label(v)));
        }
    }
    for (i, alias) in list(spec, "hostAliases").iter().enumerate() {
        let ap = path.child("hostAliases").index(i);
        errs.extend(ip_errors(&ap.child("ip"), str_of(alias, "ip")));
        for (j, h) in strings(alias, "hostnames").iter().enumerate() {
            errs.extend(each(&ap.child("hostnames").index(j), h, is_dns1123_subdomain(h)));
        }
    }
    let pcn = str_of(spec, "priorityClassName");
    if !pcn.is_empty() {
        errs.extend(each(&path.child("priorityClassName"), pcn, is_dns1123_subdomain(pcn)));
    }
    errs
}

fn dns_config_errors(spec: &Value, policy: &str, path: &Path) -> Vec<FieldError> {
    let config = get(spec, "dnsConfig");
    if policy == "None" {
        let Some(config) = config else {
            return vec![FieldError::required(path, "must provide `dnsConfig` when `dnsPolicy` is None")];
        };
        if list(config, "nameservers").is_empty() {
            return vec![FieldError::required(
                path.child("nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )];
        }
    }
    let mut errs = Vec::new();
    if let Some(config) = config {
        let ns = strings(config, "nameservers");
        if ns.len() > 3 {
            errs.push(FieldError::invalid(
                path.child("nameservers"),
                ns.clone(),
                "must not have more than 3 nameservers",
            ));
        }
        for (i, n) in ns.iter().enumerate() {
            errs.extend(ip_errors(&path.child("nameservers").index(i), n));
        }
        for (i, o) in list(config, "options").iter().enumerate() {
            if str_of(o, "name").is_empty() {
                errs.push(FieldError::required(path.child("options").index(i), "must not be empty"));
            }
        }
    }
    errs
}

/// `ValidateVolumes`: returns the declared volume names and the errors.
fn volumes_errors(volumes: &[Value], path: &Path) -> (BTreeSet<String>, Vec<FieldError>) {
    let mut names = BTreeSet::new();
    let mut errs = Vec::new();
    for (i, vol) in volumes.iter().enumerate() {
        let idx = path.index(i);
        let mut el = volume_source_errors(vol, &idx);
        let name = str_of(vol, "name");
        if name.is_empty() {
            el.push(FieldError::required(idx.child("name"), ""));
        } else {
            el.extend(each(&idx.child("name"), name, is_dns1123_label(name)));
        }
        if names.contains(name) {
            el.push(FieldError::duplicate(idx.child("name"), name));
        }
        if el.is_empty() {
            names.insert(name.to_string());
        } else {
            errs.extend(el);
        }
    }
    (names, errs)
}

fn volume_source_errors(vol: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut count = 0;
    for (field, error_name) in VOLUME_SOURCES {
        let Some(source) = get(vol, field) else { continue };
        if count > 0 {
            errs.push(FieldError::forbidden(path.child(error_name), "may not specify more than 1 volume type"));
            continue;
        }
        count += 1;
        let sp = path.child(field);
        match field {
            "hostPath" if str_of(source, "path").is_empty() => errs.push(FieldError::required(sp.child("path"), "")),
            "persistentVolumeClaim" if str_of(source, "claimName").is_empty() => {
                errs.push(FieldError::required(sp.child("claimName"), ""))
            }
            "configMap" if str_of(source, "name").is_empty() => errs.push(FieldError::required(sp.child("name"), "")),
            "secret" if str_of(source, "secretName").is_empty() => {
                errs.push(FieldError::required(sp.child("secretName"), ""))
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

fn containers_errors(
    containers: &[Value],
    volumes: &BTreeSet<String>,
    grace: Option<i64>,
    path: &Path,
) -> Vec<FieldError> {
    if containers.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = Vec::new();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let cp = path.index(i);
        errs.extend(container_common_errors(c, volumes, &cp));
        let name = str_of(c, "name");
        if !names.insert(name) {
            errs.push(FieldError::duplicate(cp.child("name"), name));
        }
        if let Some(lc) = get(c, "lifecycle") {
            errs.extend(lifecycle_errors(lc, grace, &cp.child("lifecycle")));
        }
        errs.extend(probe_errors(c, "livenessProbe", grace, &cp));
        errs.extend(probe_errors(c, "readinessProbe", grace, &cp));
        errs.extend(probe_errors(c, "startupProbe", grace, &cp));
        if present(c, "restartPolicy") {
            errs.push(FieldError::forbidden(cp.child("restartPolicy"), "may not be set for non-init containers"));
        }
    }
    errs.extend(host_port_conflicts(containers, path));
    errs
}

fn init_containers_errors(
    inits: &[Value],
    regular: &[Value],
    volumes: &BTreeSet<String>,
    grace: Option<i64>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names: BTreeSet<&str> = regular.iter().map(|c| str_of(c, "name")).collect();
    for (i, c) in inits.iter().enumerate() {
        let cp = path.index(i);
        errs.extend(container_common_errors(c, volumes, &cp));
        let mut restart_always = false;
        if let Some(rp) = opt_str(c, "restartPolicy") {
            if rp != "Always" {
                errs.push(FieldError::not_supported(cp.child("restartPolicy"), rp, &["Always"]));
            }
            restart_always = rp == "Always";
        }
        let name = str_of(c, "name");
        if names.contains(name) {
            errs.push(FieldError::duplicate(cp.child("name"), name));
        } else if !name.is_empty() {
            names.insert(name);
        }
        // Init containers run one at a time, so each is checked alone (and
        // kube reports it at index 0).
        errs.extend(host_port_conflicts(std::slice::from_ref(c), path));
        if restart_always {
            if let Some(lc) = get(c, "lifecycle") {
                errs.extend(lifecycle_errors(lc, grace, &cp.child("lifecycle")));
            }
            errs.extend(probe_errors(c, "livenessProbe", grace, &cp));
            errs.extend(probe_errors(c, "readinessProbe", grace, &cp));
            errs.extend(probe_errors(c, "startupProbe", grace, &cp));
        } else {
            for field in ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe"] {
                if present(c, field) {
                    errs.push(FieldError::forbidden(cp.child(field), INIT_ONLY_WITH_ALWAYS));
                }
            }
        }
    }
    errs
}

fn container_common_errors(c: &Value, volumes: &BTreeSet<String>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_of(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else {
        errs.extend(each(&path.child("name"), name, is_dns1123_label(name)));
    }
    if str_of(c, "image").is_empty() {
        errs.push(FieldError::required(path.child("image"), ""));
    }
    let tmp = str_or(c, "terminationMessagePolicy", "File");
    if !["File", "FallbackToLogsOnError"].contains(&tmp) {
        errs.push(FieldError::not_supported(
            path.child("terminationMessagePolicy"),
            tmp,
            &["File", "FallbackToLogsOnError"],
        ));
    }
    errs.extend(container_ports_errors(list(c, "ports"), &path.child("ports")));
    errs.extend(env_errors(list(c, "env"), &path.child("env")));
    errs.extend(volume_mounts_errors(list(c, "volumeMounts"), volumes, &path.child("volumeMounts")));
    // imagePullPolicy is defaulted from the image tag.
    if let Some(pp) = opt_str(c, "imagePullPolicy") {
        if pp.is_empty() {
            errs.push(FieldError::required(path.child("imagePullPolicy"), ""));
        } else if !PULL_POLICIES.contains(&pp) {
            errs.push(FieldError::not_supported(path.child("imagePullPolicy"), pp, &PULL_POLICIES));
        }
    }
    errs
}

fn container_ports_errors(ports: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let idx = path.index(i);
        let name = str_of(p, "name");
        if !name.is_empty() {
            let msgs = is_port_name(name);
            if !msgs.is_empty() {
                errs.extend(each(&idx.child("name"), name, msgs));
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(idx.child("name"), name));
            }
        }
        let cp = int_of(p, "containerPort").unwrap_or(0);
        if cp == 0 {
            errs.push(FieldError::required(idx.child("containerPort"), ""));
        } else {
            for m in is_port_num(cp) {
                errs.push(FieldError::invalid(idx.child("containerPort"), cp, m));
            }
        }
        let hp = int_of(p, "hostPort").unwrap_or(0);
        if hp != 0 {
            for m in is_port_num(hp) {
                errs.push(FieldError::invalid(idx.child("hostPort"), hp, m));
            }
        }
        let protocol = str_or(p, "protocol", "TCP");
        if !PROTOCOLS.contains(&protocol) {
            errs.push(FieldError::not_supported(idx.child("protocol"), protocol, &PROTOCOLS));
        }
    }
    errs
}

/// `checkHostPortConflicts`: `<protocol>/<hostIP>/<hostPort>` must be unique.
fn host_port_conflicts(containers: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        for (j, p) in list(c, "ports").iter().enumerate() {
            let hp = int_of(p, "hostPort").unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!("{}/{}/{hp}", str_or(p, "protocol", "TCP"), str_of(p, "hostIP"));
            if seen.contains(&key) {
                errs.push(FieldError::duplicate(path.index(i).child("ports").index(j).child("hostPort"), key));
            } else {
                seen.insert(key);
            }
        }
    }
    errs
}

fn env_errors(vars: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ev) in vars.iter().enumerate() {
        let idx = path.index(i);
        let name = str_of(ev, "name");
        if name.is_empty() {
            errs.push(FieldError::required(idx.child("name"), ""));
        } else {
            errs.extend(each(&idx.child("name"), name, is_relaxed_env_var_name(name)));
        }
        if let Some(from) = get(ev, "valueFrom") {
            errs.extend(env_value_from_errors(from, !str_of(ev, "value").is_empty(), &idx.child("valueFrom")));
        }
    }
    errs
}

fn env_value_from_errors(from: &Value, has_value: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut sources = 0;
    if let Some(fr) = get(from, "fieldRef") {
        sources += 1;
        errs.extend(field_ref_errors(fr, &path.child("fieldRef")));
    }
    if let Some(rr) = get(from, "resourceFieldRef") {
        sources += 1;
        let rp = path.child("resourceFieldRef");
        let resource = str_of(rr, "resource");
        if resource.is_empty() {
            errs.push(FieldError::required(rp.child("resource"), ""));
        } else if !RESOURCE_FIELDS.contains(&resource)
            && !resource.starts_with("requests.hugepages-")
            && !resource.starts_with("limits.hugepages-")
        {
            errs.push(FieldError::not_supported(rp.child("resource"), resource, &RESOURCE_FIELDS));
        }
    }
    for field in ["configMapKeyRef", "secretKeyRef"] {
        if let Some(sel) = get(from, field) {
            sources += 1;
            let sp = path.child(field);
            let name = str_of(sel, "name");
            errs.extend(each(&sp.child("name"), name, is_dns1123_subdomain(name)));
            let key = str_of(sel, "key");
            if key.is_empty() {
                errs.push(FieldError::required(sp.child("key"), ""));
            } else {
                errs.extend(each(&sp.child("key"), key, is_config_map_key(key)));
            }
        }
    }
    if sources == 0 {
        errs.push(FieldError::invalid(
            path,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ));
    } else if has_value {
        errs.push(FieldError::invalid(path, "", "may not be specified when `value` is not empty"));
    } else if sources > 1 {
        errs.push(FieldError::invalid(path, "", "may not have more than one field specified at a time"));
    }
    errs
}

fn field_ref_errors(fr: &Value, path: &Path) -> Vec<FieldError> {
    // apiVersion is defaulted to v1.
    let field_path = str_of(fr, "fieldPath");
    if field_path.is_empty() {
        return vec![FieldError::required(path.child("fieldPath"), "")];
    }
    let (base, subscripted) = match field_path.split_once('[') {
        Some((base, rest)) if rest.ends_with(']') => (base, true),
        _ => (field_path, false),
    };
    if !CONVERTIBLE_FIELD_PATHS.contains(&base) {
        return vec![FieldError::invalid(
            path.child("fieldPath"),
            field_path,
            format!("error converting fieldPath: field label not supported: {field_path}"),
        )];
    }
    if subscripted {
        if base != "metadata.annotations" && base != "metadata.labels" {
            return vec![FieldError::invalid(path, base, "does not support subscript")];
        }
        return Vec::new();
    }
    if !ENV_FIELD_PATHS.contains(&field_path) {
        return vec![FieldError::not_supported(path.child("fieldPath"), field_path, &ENV_FIELD_PATHS)];
    }
    Vec::new()
}

fn volume_mounts_errors(mounts: &[Value], volumes: &BTreeSet<String>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut points: BTreeSet<&str> = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let idx = path.index(i);
        let name = str_of(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(idx.child("name"), ""));
        }
        if !volumes.contains(name) {
            errs.push(FieldError::not_found(idx.child("name"), name));
        }
        let mount_path = str_of(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(FieldError::required(idx.child("mountPath"), ""));
        }
        if !points.insert(mount_path) {
            errs.push(FieldError::invalid(idx.child("mountPath"), mount_path, "must be unique"));
        }
    }
    errs
}

fn probe_errors(c: &Value, field: &str, grace: Option<i64>, cpath: &Path) -> Vec<FieldError> {
    let Some(probe) = get(c, field) else { return Vec::new() };
    let path = cpath.child(field);
    let mut errs = handler_errors(probe, false, grace, &path);
    for (f, default) in [
        ("initialDelaySeconds", 0),
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ] {
        let v = int_of(probe, f).unwrap_or(default);
        if v < 0 {
            errs.push(FieldError::invalid(path.child(f), v, NONNEGATIVE));
        }
    }
    let tgps = int_of(probe, "terminationGracePeriodSeconds");
    if let Some(t) = tgps.filter(|t| *t <= 0) {
        errs.push(FieldError::invalid(path.child("terminationGracePeriodSeconds"), t, "must be greater than 0"));
    }
    let success = int_of(probe, "successThreshold").unwrap_or(1);
    match field {
        "readinessProbe" => {
            if let Some(t) = tgps {
                errs.push(FieldError::invalid(
                    path.child("terminationGracePeriodSeconds"),
                    t,
                    "must not be set for readinessProbes",
                ));
            }
        }
        _ if success != 1 => errs.push(FieldError::invalid(path.child("successThreshold"), success, "must be 1")),
        _ => {}
    }
    errs
}

fn lifecycle_errors(lc: &Value, grace: Option<i64>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for hook in ["postStart", "preStop"] {
        if let Some(h) = get(lc, hook) {
            errs.extend(handler_errors(h, true, grace, &path.child(hook)));
        }
    }
    errs
}

/// `validateHandler`: exactly one handler type; probes allow `grpc`,
/// lifecycle hooks `sleep`.
fn handler_errors(h: &Value, lifecycle: bool, grace: Option<i64>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut n = 0;
    let kinds: &[&str] =
        if lifecycle { &["exec", "httpGet", "tcpSocket", "sleep"] } else { &["exec", "httpGet", "tcpSocket", "grpc"] };
    for &kind in kinds {
        let Some(action) = get(h, kind) else { continue };
        let ap = path.child(kind);
        if n > 0 {
            errs.push(FieldError::forbidden(&ap, "may not specify more than 1 handler type"));
            continue;
        }
        n += 1;
        match kind {
            "exec" if list(action, "command").is_empty() => {
                errs.push(FieldError::required(ap.child("command"), ""));
            }
            "httpGet" => {
                if str_or(action, "path", "/").is_empty() {
                    errs.push(FieldError::required(ap.child("path"), ""));
                }
                errs.extend(port_num_or_name_errors(&ap.child("port"), get(action, "port").unwrap_or(&Value::Null)));
                let scheme = str_or(action, "scheme", "HTTP");
                if !["HTTP", "HTTPS"].contains(&scheme) {
                    errs.push(FieldError::not_supported(ap.child("scheme"), scheme, &["HTTP", "HTTPS"]));
                }
                for header in list(action, "httpHeaders") {
                    let name = str_of(header, "name");
                    errs.extend(each(&ap.child("httpHeaders"), name, is_http_header_name(name)));
                }
            }
            "tcpSocket" => {
                errs.extend(port_num_or_name_errors(&ap.child("port"), get(action, "port").unwrap_or(&Value::Null)));
            }
            "grpc" => {
                let port = int_of(action, "port").unwrap_or(0);
                for m in is_port_num(port) {
                    errs.push(FieldError::invalid(ap.child("port"), port, m));
                }
            }
            "sleep" => {
                let secs = int_of(action, "seconds").unwrap_or(0);
                if let Some(g) = grace {
                    if secs < 0 || secs > g {
                        errs.push(FieldError::invalid(
                            &ap,
                            secs,
                            format!("must be non-negative and less than terminationGracePeriodSeconds ({g})"),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

// ---- updates ----

/// The fields `ValidatePodUpdate` lets an update change, as it lists them.
const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

pub(crate) fn validate_pod_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = validate_pod(new);
    // validatePodMetadataAndSpec, which the update runs, has no
    // ephemeral-containers-on-create rule.
    errs.retain(|e| !(e.field == "spec.ephemeralContainers" && e.detail == "cannot be set on create"));
    let (ns, os) = (obj(new, "spec"), obj(old, "spec"));
    let spec_path = Path::root("spec");
    for field in ["containers", "initContainers"] {
        let (nc, oc) = (list(ns, field), list(os, field));
        if nc.len() != oc.len() {
            errs.push(FieldError::forbidden(spec_path.child(field), "pod updates may not add or remove containers"));
            return errs;
        }
        for (i, c) in nc.iter().enumerate() {
            let image = str_of(c, "image");
            let ip = spec_path.child(field).index(i).child("image");
            if image.is_empty() {
                errs.push(FieldError::required(&ip, ""));
            }
            if image.len() != image.trim().len() {
                errs.push(FieldError::invalid(&ip, image, "must not have leading or trailing whitespace"));
            }
        }
    }
    match (int_of(ns, "activeDeadlineSeconds"), int_of(os, "activeDeadlineSeconds")) {
        (Some(n), old_ads) => {
            if !(0..=MAX_INT32).contains(&n) {
                errs.push(FieldError::invalid("spec.activeDeadlineSeconds", n, inclusive_range_error(0, MAX_INT32)));
                return errs;
            }
            if old_ads.is_some_and(|o| o < n) {
                errs.push(FieldError::invalid(
                    "spec.activeDeadlineSeconds",
                    n,
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }
    let old_tolerations = list(os, "tolerations");
    let new_tolerations = list(ns, "tolerations");
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(m) = t.as_object_mut() {
            m.remove("tolerationSeconds");
        }
        t
    };
    if old_tolerations.iter().any(|o| !new_tolerations.iter().any(|n| strip(n) == strip(o))) {
        errs.push(FieldError::forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    }

    errs.extend(ephemeral_containers_update_errors(new, old));

    // Everything else in the spec must stay as it was.
    let mut munged = ns.as_object().cloned().unwrap_or_default();
    let old_map = os.as_object().cloned().unwrap_or_default();
    for field in ["containers", "initContainers"] {
        if let (Some(items), Some(old_items)) =
            (munged.get_mut(field).and_then(Value::as_array_mut), old_map.get(field).and_then(Value::as_array))
        {
            for (c, oc) in items.iter_mut().zip(old_items) {
                if let Some(m) = c.as_object_mut() {
                    match oc.get("image") {
                        Some(img) => m.insert("image".into(), img.clone()),
                        None => m.remove("image"),
                    };
                }
            }
        }
    }
    for field in ["activeDeadlineSeconds", "schedulingGates", "tolerations", "ephemeralContainers"] {
        restore(&mut munged, &old_map, field);
    }
    if int_of(os, "terminationGracePeriodSeconds").is_some_and(|g| g < 0)
        && int_of(ns, "terminationGracePeriodSeconds") == Some(1)
    {
        restore(&mut munged, &old_map, "terminationGracePeriodSeconds");
    }
    if munged != old_map {
        errs.push(FieldError::forbidden(
            "spec",
            format!("pod updates may not change fields other than {UPDATABLE}\n{}", spec_diff(&old_map, &munged)),
        ));
    }
    errs
}

/// Fields an ephemeral container may not set, in the order of kube's
/// `EphemeralContainerCommon` (its allow-list names the rest).
const NOT_FOR_EPHEMERAL: [&str; 7] =
    ["ports", "resources", "resizePolicy", "lifecycle", "livenessProbe", "readinessProbe", "startupProbe"];

/// `validateEphemeralContainers` on the new pod and
/// `ValidatePodEphemeralContainersUpdate`'s rule that ephemeral
/// containers, once added, are neither changed nor removed. (An update of
/// the pod itself keeps the old list, so only the `ephemeralcontainers`
/// subresource changes it.)
fn ephemeral_containers_update_errors(new: &Value, old: &Value) -> Vec<FieldError> {
    let (ns, os) = (obj(new, "spec"), obj(old, "spec"));
    let (added, before) = (list(ns, "ephemeralContainers"), list(os, "ephemeralContainers"));
    if added == before {
        return Vec::new();
    }
    if get(obj(obj(old, "metadata"), "annotations"), "kubernetes.io/config.mirror").is_some() {
        return vec![FieldError::forbidden("", "static pods do not support ephemeral containers")];
    }
    let path = Path::root("spec").child("ephemeralContainers");
    let mut errs = Vec::new();
    let (volumes, _) = volumes_errors(list(ns, "volumes"), &Path::root("spec").child("volumes"));
    let others: BTreeSet<&str> =
        list(ns, "containers").iter().chain(list(ns, "initContainers")).map(|c| str_of(c, "name")).collect();
    let mut names = others.clone();
    for (i, c) in added.iter().enumerate() {
        let cp = path.index(i);
        errs.extend(container_common_errors(c, &volumes, &cp));
        let name = str_of(c, "name");
        if !name.is_empty() && !names.insert(name) {
            errs.push(FieldError::duplicate(cp.child("name"), name));
        }
        let target = str_of(c, "targetContainerName");
        if !target.is_empty() && !others.contains(target) {
            errs.push(FieldError::not_found(cp.child("targetContainerName"), target));
        }
        for field in NOT_FOR_EPHEMERAL {
            let set = match get(c, field) {
                None | Some(Value::Null) => false,
                Some(Value::Object(m)) => !m.is_empty(),
                Some(Value::Array(a)) => !a.is_empty(),
                Some(_) => true,
            };
            if set {
                errs.push(FieldError::forbidden(cp.child(field), "cannot be set for an Ephemeral Container"));
            }
        }
        for (j, m) in list(c, "volumeMounts").iter().enumerate() {
            if !str_of(m, "subPath").is_empty() {
                errs.push(FieldError::forbidden(
                    cp.child("volumeMounts").index(j).child("subPath"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        if present(c, "restartPolicy") {
            errs.push(FieldError::forbidden(cp.child("restartPolicy"), "cannot be set for an Ephemeral Container"));
        }
    }
    for o in before {
        let name = str_of(o, "name");
        match added.iter().find(|n| str_of(n, "name") == name) {
            None => errs.push(FieldError::forbidden(
                &path,
                format!("existing ephemeral containers {name:?} may not be removed\n"),
            )),
            Some(n) if n != o => errs.push(FieldError::forbidden(
                &path,
                format!("existing ephemeral containers {name:?} may not be changed\n"),
            )),
            Some(_) => {}
        }
    }
    errs
}

fn restore(munged: &mut Map<String, Value>, old: &Map<String, Value>, field: &str) {
    match old.get(field) {
        Some(v) => munged.insert(field.to_string(), v.clone()),
        None => munged.remove(field),
    };
}

/// A short account of what changed, in the spirit of the `cmp.Diff` kube
/// appends (its exact output is Go-specific and not reproduced).
fn spec_diff(old: &Map<String, Value>, new: &Map<String, Value>) -> String {
    let keys: BTreeMap<&str, ()> = old.keys().chain(new.keys()).map(|k| (k.as_str(), ())).collect();
    let mut out = String::from("  core.PodSpec{\n");
    for key in keys.keys() {
        let (o, n) = (old.get(*key), new.get(*key));
        if o == n {
            continue;
        }
        if let Some(o) = o {
            out.push_str(&format!("- \t{key}: {o},\n"));
        }
        if let Some(n) = n {
            out.push_str(&format!("+ \t{key}: {n},\n"));
        }
    }
    out.push_str("  }\n");
    out
}
