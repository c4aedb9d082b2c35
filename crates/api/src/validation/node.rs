//! Node validation: pod CIDRs and taints (`ValidateNode`), and the update
//! rule that pod CIDRs and the provider ID are set once.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::{Value, json};

use super::access::{list, obj, str_of, strings};
use super::field::{FieldError, Path, go_strings};
use super::text::{canonical, cidr_errors, each, is_label_value, is_qualified_name, parse_cidr_sloppy};
use crate::selector::validation::go_quote;

const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// The pod CIDRs as the internal type holds them: `podCIDRs`, or the
/// singular `podCIDR` when only that is set.
fn pod_cidrs(spec: &Value) -> Vec<String> {
    let cidrs = strings(spec, "podCIDRs");
    if cidrs.is_empty() && !str_of(spec, "podCIDR").is_empty() {
        return vec![str_of(spec, "podCIDR").to_string()];
    }
    cidrs
}

pub(crate) fn validate(node: &Value) -> Vec<FieldError> {
    let spec = obj(node, "spec");
    let mut errs = taint_errors(spec);
    let cidrs = pod_cidrs(spec);
    let path = Path::root("spec.podCIDRs");
    for (i, c) in cidrs.iter().enumerate() {
        errs.extend(cidr_errors(&path.index(i), c));
    }
    if cidrs.len() > 1 {
        let families: BTreeSet<bool> = cidrs
            .iter()
            .filter_map(|c| parse_cidr_sloppy(c))
            .map(|(ip, _)| matches!(canonical(ip), IpAddr::V4(_)))
            .collect();
        // IsDualStackCIDRStrings fails on the first unparsable CIDR, and
        // kube reports that as well as "not dual-stack".
        let unparsable = cidrs.iter().find(|c| parse_cidr_sloppy(c).is_none());
        if let Some(bad) = unparsable {
            errs.push(FieldError::internal(
                &path,
                format!("invalid PodCIDRs. failed to check with dual stack with error:invalid CIDR address: {bad}"),
            ));
        }
        if unparsable.is_some() || families.len() < 2 || cidrs.len() > 2 {
            errs.push(
                FieldError::invalid(&path, json!(cidrs), "may specify no more than one CIDR for each IP family")
                    .go(go_strings(cidrs.iter().map(String::as_str))),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, c) in cidrs.iter().enumerate() {
            if !seen.insert(c) {
                errs.push(FieldError::duplicate(path.index(i), c.as_str()));
            }
        }
    }
    errs
}

/// `validateNodeTaints`; kube reports them under `metadata.taints`.
fn taint_errors(spec: &Value) -> Vec<FieldError> {
    let path = Path::root("metadata.taints");
    let mut errs = Vec::new();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for (i, t) in list(spec, "taints").iter().enumerate() {
        let idx = path.index(i);
        let (key, value, effect) = (str_of(t, "key"), str_of(t, "value"), str_of(t, "effect"));
        errs.extend(each(&idx.child("key"), key, is_qualified_name(key)));
        let msgs = is_label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(idx.child("value"), value, msgs.join(";")));
        }
        if effect.is_empty() {
            errs.push(FieldError::required(idx.child("effect"), ""));
        } else if !EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(idx.child("effect"), effect, &EFFECTS));
        }
        if !seen.insert((effect.to_string(), key.to_string())) {
            let mut e = FieldError::duplicate(&idx, t.clone()).go(format!(
                "core.Taint{{Key:{}, Value:{}, Effect:{}, TimeAdded:(*v1.Time)(nil)}}",
                go_quote(key),
                go_quote(value),
                go_quote(effect)
            ));
            e.detail = "taints must be unique by key and effect pair".to_string();
            errs.push(e);
        }
    }
    errs
}

pub(crate) fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (ns, os) = (obj(new, "spec"), obj(old, "spec"));
    let (new_cidrs, old_cidrs) = (pod_cidrs(ns), pod_cidrs(os));
    let msg = "node updates may not change podCIDR except from \"\" to valid";
    if !old_cidrs.is_empty() {
        if old_cidrs.len() != new_cidrs.len() {
            errs.push(FieldError::forbidden("spec.podCIDRs", msg));
        } else {
            for (o, n) in old_cidrs.iter().zip(&new_cidrs) {
                if o != n {
                    errs.push(FieldError::forbidden("spec.podCIDRs", msg));
                }
            }
        }
    }
    let old_provider = str_of(os, "providerID");
    if !old_provider.is_empty() && old_provider != str_of(ns, "providerID") {
        errs.push(FieldError::forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    errs.extend(taint_errors(ns));
    errs
}
