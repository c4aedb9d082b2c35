//! apps/v1 Deployment and ReplicaSet validation (`ValidateDeploymentSpec`,
//! `ValidateReplicaSetSpec`) and their strategies' immutable selector.

use serde_json::Value;

use super::access::{get, int_of, list, obj, str_of, str_or};
use super::field::{FieldError, Path, go_int_or_string, go_labels, go_strings_or_nil};
use super::pod::{pod_template_errors, restart_policy};
use super::text::{each, is_label_value, is_percent, is_qualified_name, labels_errors};
use crate::selector::LabelSelector;
use crate::selector::validation::go_quote;

const NONNEGATIVE: &str = "must be greater than or equal to 0";

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Deployment,
    ReplicaSet,
    DaemonSet,
}

pub(crate) fn validate(obj_: &Value, kind: Kind) -> Vec<FieldError> {
    let spec = obj(obj_, "spec");
    let path = Path::root("spec");
    if kind == Kind::DaemonSet {
        return daemonset_errors(spec, &path);
    }
    let mut errs = Vec::new();
    // replicas is defaulted to 1.
    let replicas = int_of(spec, "replicas").unwrap_or(1);
    if replicas < 0 {
        errs.push(FieldError::invalid("spec.replicas", replicas, NONNEGATIVE));
    }
    if kind == Kind::ReplicaSet {
        errs.extend(nonnegative(spec, "minReadySeconds", &path));
    }
    errs.extend(selector_and_template_errors(spec, &path, "deployment", "ReplicaSet"));
    if kind == Kind::Deployment {
        errs.extend(strategy_errors(obj(spec, "strategy"), &path.child("strategy")));
        errs.extend(nonnegative(spec, "minReadySeconds", &path));
        errs.extend(nonnegative(spec, "revisionHistoryLimit", &path));
        if let Some(pds) = int_of(spec, "progressDeadlineSeconds") {
            if pds < 0 {
                errs.push(FieldError::invalid("spec.progressDeadlineSeconds", pds, NONNEGATIVE));
            }
            if pds <= int_of(spec, "minReadySeconds").unwrap_or(0) {
                errs.push(FieldError::invalid(
                    "spec.progressDeadlineSeconds",
                    pds,
                    "must be greater than minReadySeconds",
                ));
            }
        }
    }
    errs
}

pub(crate) fn validate_update(new: &Value, old: &Value, kind: Kind) -> Vec<FieldError> {
    let mut errs = validate(new, kind);
    let (ns, os) = (get(obj(new, "spec"), "selector"), get(obj(old, "spec"), "selector"));
    if normalized_selector(ns) != normalized_selector(os) {
        let value = ns.cloned().unwrap_or(Value::Null);
        errs.push(FieldError::invalid("spec.selector", value, "field is immutable").go(go_selector(ns)));
    }
    errs
}

/// `ValidateDaemonSetSpec`.
fn daemonset_errors(spec: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = selector_and_template_errors(spec, path, "daemonset", "DaemonSet");
    // kube words this one differently from the other workloads.
    let deadline = path.child("template").child("spec").child("activeDeadlineSeconds");
    for e in errs.iter_mut().filter(|e| e.field == String::from(&deadline)) {
        let value = get(obj(obj(spec, "template"), "spec"), "activeDeadlineSeconds").cloned().unwrap_or(Value::Null);
        *e = FieldError::invalid(&deadline, value, "activeDeadlineSeconds must be nil for daemonset");
    }
    errs.extend(nonnegative(spec, "minReadySeconds", path));
    errs.extend(nonnegative(spec, "revisionHistoryLimit", path));
    let strategy = obj(spec, "updateStrategy");
    let sp = path.child("updateStrategy");
    match str_or(strategy, "type", "RollingUpdate") {
        "OnDelete" => {}
        "RollingUpdate" => {
            let ru = obj(strategy, "rollingUpdate");
            let rp = sp.child("rollingUpdate");
            let (one, zero) = (Value::from(1), Value::from(0));
            let max_unavailable = get(ru, "maxUnavailable").unwrap_or(&one);
            let max_surge = get(ru, "maxSurge").unwrap_or(&zero);
            errs.extend(int_or_percent_errors(max_unavailable, &rp.child("maxUnavailable")));
            errs.extend(int_or_percent_errors(max_surge, &rp.child("maxSurge")));
            match (int_or_percent_value(max_unavailable) != 0, int_or_percent_value(max_surge) != 0) {
                (true, true) => errs.push(
                    FieldError::invalid(
                        rp.child("maxSurge"),
                        max_surge.clone(),
                        "may not be set when maxUnavailable is non-zero",
                    )
                    .go(go_int_or_string(max_surge)),
                ),
                (false, false) => {
                    errs.push(FieldError::required(rp.child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
                }
                _ => {}
            }
        }
        other => errs.push(FieldError::not_supported(sp.child("type"), other, &["OnDelete", "RollingUpdate"])),
    }
    errs
}

/// The spec fields an update of a StatefulSet may change.
const STATEFULSET_UPDATABLE: [&str; 6] =
    ["replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy", "minReadySeconds"];

/// `ValidateStatefulSetSpec`.
pub(crate) fn validate_statefulset(obj_: &Value) -> Vec<FieldError> {
    let spec = obj(obj_, "spec");
    let path = Path::root("spec");
    let mut errs = Vec::new();
    let policy = str_or(spec, "podManagementPolicy", "OrderedReady");
    if !["OrderedReady", "Parallel"].contains(&policy) {
        errs.push(FieldError::not_supported(path.child("podManagementPolicy"), policy, &["OrderedReady", "Parallel"]));
    }
    let strategy = obj(spec, "updateStrategy");
    let sp = path.child("updateStrategy");
    match str_or(strategy, "type", "RollingUpdate") {
        "OnDelete" => {
            if let Some(ru) = get(strategy, "rollingUpdate") {
                errs.push(FieldError::invalid(
                    sp.child("rollingUpdate"),
                    ru.clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            errs.extend(nonnegative(obj(strategy, "rollingUpdate"), "partition", &sp.child("rollingUpdate")));
        }
        other => errs.push(FieldError::not_supported(sp.child("type"), other, &["OnDelete", "RollingUpdate"])),
    }
    if let Some(start) = int_of(obj(spec, "ordinals"), "start") {
        if start < 0 {
            errs.push(FieldError::invalid("spec.ordinals.start", start, NONNEGATIVE));
        }
    }
    errs.extend(nonnegative(spec, "replicas", &path));
    errs.extend(nonnegative(spec, "minReadySeconds", &path));
    errs.extend(selector_and_template_errors(spec, &path, "statefulset", "StatefulSet"));
    errs
}

/// `ValidateStatefulSetUpdate`: the spec fields outside
/// [`STATEFULSET_UPDATABLE`] are immutable.
pub(crate) fn validate_statefulset_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = validate_statefulset(new);
    let strip = |v: &Value| {
        let mut m = obj(v, "spec").as_object().cloned().unwrap_or_default();
        for f in STATEFULSET_UPDATABLE {
            m.remove(f);
        }
        m
    };
    if strip(new) != strip(old) {
        errs.push(FieldError::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
    errs
}

fn nonnegative(spec: &Value, field: &str, path: &Path) -> Vec<FieldError> {
    match int_of(spec, field) {
        Some(v) if v < 0 => vec![FieldError::invalid(path.child(field), v, NONNEGATIVE)],
        _ => Vec::new(),
    }
}

/// Semantic equality treats absent and empty lists and maps alike.
fn normalized_selector(sel: Option<&Value>) -> Option<(Vec<(String, String)>, Vec<Value>)> {
    let sel = sel?;
    let mut labels: Vec<(String, String)> = super::access::string_map(get(sel, "matchLabels"));
    labels.sort();
    let exprs = list(sel, "matchExpressions")
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some(m) = e.as_object_mut() {
                if m.get("values").and_then(Value::as_array).is_some_and(Vec::is_empty) {
                    m.remove("values");
                }
            }
            e
        })
        .collect();
    Some((labels, exprs))
}

/// `%#v` of the dereferenced `*metav1.LabelSelector`.
fn go_selector(sel: Option<&Value>) -> String {
    let Some(sel) = sel else { return "\"null\"".to_string() };
    let exprs = list(sel, "matchExpressions");
    let exprs = if get(sel, "matchExpressions").is_none() {
        "[]v1.LabelSelectorRequirement(nil)".to_string()
    } else {
        let items: Vec<String> = exprs
            .iter()
            .map(|e| {
                let values = super::access::strings(e, "values");
                let values = if get(e, "values").is_none() {
                    "[]string(nil)".to_string()
                } else {
                    go_strings_or_nil(&values).replace("[]string(nil)", "[]string{}")
                };
                format!(
                    "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{values}}}",
                    go_quote(str_of(e, "key")),
                    go_quote(str_of(e, "operator"))
                )
            })
            .collect();
        format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
    };
    format!("v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}", go_labels(get(sel, "matchLabels")))
}

/// `ValidateLabelSelector` (strict label values).
fn label_selector_errors(sel: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = labels_errors(get(sel, "matchLabels"), &path.child("matchLabels"));
    for (i, expr) in list(sel, "matchExpressions").iter().enumerate() {
        let ep = path.child("matchExpressions").index(i);
        let op = str_of(expr, "operator");
        let values = list(expr, "values");
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        ep.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        ep.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(ep.child("operator"), op, "not a valid selector operator")),
        }
        let key = str_of(expr, "key");
        errs.extend(each(&ep.child("key"), key, is_qualified_name(key)));
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            errs.extend(each(&ep.child("values").index(j), v, is_label_value(v)));
        }
    }
    errs
}

/// The selector and pod template rules every workload shares; `kind` and
/// `deadline_kind` name the kind in kube's messages as kube words them
/// ("empty selector is invalid for deployment", "activeDeadlineSeconds in
/// ReplicaSet is not Supported").
fn selector_and_template_errors(spec: &Value, path: &Path, kind: &str, deadline_kind: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let sel = get(spec, "selector");
    match sel {
        None => errs.push(FieldError::required(path.child("selector"), "")),
        Some(s) => {
            errs.extend(label_selector_errors(s, &path.child("selector")));
            let empty =
                super::access::string_map(get(s, "matchLabels")).is_empty() && list(s, "matchExpressions").is_empty();
            if empty {
                errs.push(
                    FieldError::invalid(
                        path.child("selector"),
                        s.clone(),
                        format!("empty selector is invalid for {kind}"),
                    )
                    .go(go_selector(sel)),
                );
            }
        }
    }
    let selector = match sel {
        None => Ok(LabelSelector::nothing()),
        Some(s) => LabelSelector::from_label_selector_json(s),
    };
    let Ok(selector) = selector else {
        errs.push(
            FieldError::invalid(path.child("selector"), sel.cloned().unwrap_or(Value::Null), "invalid label selector")
                .go(go_selector(sel)),
        );
        return errs;
    };
    let template = obj(spec, "template");
    let tpath = path.child("template");
    let labels = get(obj(template, "metadata"), "labels");
    if !selector.is_everything() {
        let empty = serde_json::Map::new();
        let matched = match labels.and_then(Value::as_object) {
            Some(m) => selector.matches(m),
            None => selector.matches(&empty),
        };
        if !matched {
            errs.push(
                FieldError::invalid(
                    tpath.child("metadata").child("labels"),
                    labels.cloned().unwrap_or(Value::Null),
                    "`selector` does not match template `labels`",
                )
                .go(go_labels(labels)),
            );
        }
    }
    if kind == "statefulset" {
        // kube checks only a StatefulSet template's labels: its volume
        // mounts may name volumeClaimTemplates, which become volumes only
        // in the pods.
        errs.extend(labels_errors(get(obj(template, "metadata"), "labels"), &tpath.child("labels")));
    } else {
        errs.extend(pod_template_errors(template, &tpath));
    }
    let tspec = obj(template, "spec");
    let rp = restart_policy(tspec);
    if rp != "Always" {
        errs.push(FieldError::not_supported(tpath.child("spec").child("restartPolicy"), rp, &["Always"]));
    }
    if get(tspec, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::forbidden(
            tpath.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {deadline_kind} is not Supported"),
        ));
    }
    errs
}

/// `getIntOrPercentValue`.
fn int_or_percent_value(v: &Value) -> i64 {
    match v {
        Value::String(s) => {
            if is_percent(s).is_empty() {
                s.trim_end_matches('%').parse().unwrap_or(0)
            } else {
                // IntValue() of a non-numeric string is 0.
                s.parse().unwrap_or(0)
            }
        }
        other => other.as_i64().unwrap_or(0),
    }
}

/// `ValidatePositiveIntOrPercent`.
fn int_or_percent_errors(v: &Value, path: &Path) -> Vec<FieldError> {
    match v {
        Value::String(s) => {
            is_percent(s).into_iter().map(|m| FieldError::invalid(path, v.clone(), m).go(go_int_or_string(v))).collect()
        }
        other => {
            let n = other.as_i64().unwrap_or(0);
            if n < 0 { vec![FieldError::invalid(path, n, NONNEGATIVE)] } else { Vec::new() }
        }
    }
}

fn strategy_errors(strategy: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match str_or(strategy, "type", "RollingUpdate") {
        "Recreate" => {
            if get(strategy, "rollingUpdate").is_some() {
                errs.push(FieldError::forbidden(
                    path.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => {
            let ru = obj(strategy, "rollingUpdate");
            let rp = path.child("rollingUpdate");
            // Both default to 25%.
            let default = Value::from("25%");
            let max_unavailable = get(ru, "maxUnavailable").unwrap_or(&default);
            let max_surge = get(ru, "maxSurge").unwrap_or(&default);
            errs.extend(int_or_percent_errors(max_unavailable, &rp.child("maxUnavailable")));
            errs.extend(int_or_percent_errors(max_surge, &rp.child("maxSurge")));
            if int_or_percent_value(max_unavailable) == 0 && int_or_percent_value(max_surge) == 0 {
                errs.push(
                    FieldError::invalid(
                        rp.child("maxUnavailable"),
                        max_unavailable.clone(),
                        "may not be 0 when `maxSurge` is 0",
                    )
                    .go(go_int_or_string(max_unavailable)),
                );
            }
            if max_unavailable.is_string()
                && is_percent(str_of_value(max_unavailable)).is_empty()
                && int_or_percent_value(max_unavailable) > 100
            {
                errs.push(
                    FieldError::invalid(
                        rp.child("maxUnavailable"),
                        max_unavailable.clone(),
                        "must not be greater than 100%",
                    )
                    .go(go_int_or_string(max_unavailable)),
                );
            }
        }
        other => {
            let ru = match get(strategy, "rollingUpdate") {
                None => "(*apps.RollingUpdateDeployment)(nil)".to_string(),
                Some(ru) => format!(
                    "&apps.RollingUpdateDeployment{{MaxUnavailable:{}, MaxSurge:{}}}",
                    go_int_or_string(get(ru, "maxUnavailable").unwrap_or(&Value::from(0))),
                    go_int_or_string(get(ru, "maxSurge").unwrap_or(&Value::from(0)))
                ),
            };
            let go = format!("apps.DeploymentStrategy{{Type:{}, RollingUpdate:{ru}}}", go_quote(other));
            errs.push(FieldError::not_supported(path, strategy.clone(), &["Recreate", "RollingUpdate"]).go(go));
        }
    }
    errs
}

fn str_of_value(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}
