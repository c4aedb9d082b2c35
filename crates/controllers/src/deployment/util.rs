//! Small predicates and conversions shared by the ReplicaSet and Deployment
//! logic: label selectors, controller references, pod readiness and
//! availability, int-or-percent resolution and timestamps.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Error;

/// A parsed `metav1.LabelSelector`. Parsing checks the operators and value
/// lists once, so matching cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Selector {
    pub(crate) fn parse(selector: &LabelSelector) -> Result<Self, Error> {
        let mut requirements = Vec::new();
        for (k, v) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::Equals(k.clone(), v.clone()));
        }
        for expr in selector.match_expressions.iter().flatten() {
            let values = expr.values.clone().unwrap_or_default();
            let key = expr.key.clone();
            let req = match expr.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(Error::InvalidSelector(format!(
                        "operator {} on key {key:?} needs at least one value",
                        expr.operator
                    )));
                }
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(Error::InvalidSelector(format!(
                        "operator {} on key {key:?} takes no values",
                        expr.operator
                    )));
                }
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => {
                    return Err(Error::InvalidSelector(format!("unknown operator {other:?} on key {key:?}")));
                }
            };
            requirements.push(req);
        }
        Ok(Self { requirements })
    }

    /// A selector with no requirements selects everything (as
    /// `LabelSelectorAsSelector` does for an empty selector).
    pub(crate) fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    pub(crate) fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k));
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v),
            Requirement::In(k, vs) => get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        })
    }
}

/// The owner reference with `controller: true`, if any.
pub(crate) fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.iter().flatten().find(|r| r.controller == Some(true))
}

pub(crate) fn uid(meta: &ObjectMeta) -> &str {
    meta.uid.as_deref().unwrap_or_default()
}

pub(crate) fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

pub(crate) fn namespace(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or_default()
}

pub(crate) fn being_deleted(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

/// An owner reference marking `owner` as the controller of a dependent, as
/// `metav1.NewControllerRef` builds it.
pub(crate) fn new_controller_ref(meta: &ObjectMeta, api_version: &str, kind: &str) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: name(meta).to_string(),
        uid: uid(meta).to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

pub(crate) fn pod_phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default()
}

/// Not terminal and not being deleted (`controller.IsPodActive`).
pub(crate) fn is_pod_active(pod: &Pod) -> bool {
    let phase = pod_phase(pod);
    phase != "Succeeded" && phase != "Failed" && !being_deleted(&pod.metadata)
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status.as_ref()?.conditions.iter().flatten().find(|c| c.type_ == "Ready")
}

pub(crate) fn is_pod_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When a ready pod became ready; `None` for pods that are not ready or
/// whose condition carries no transition time.
pub(crate) fn pod_ready_since(pod: &Pod) -> Option<Timestamp> {
    if !is_pod_ready(pod) {
        return None;
    }
    ready_condition(pod).and_then(|c| c.last_transition_time.as_ref()).map(|t| t.0)
}

/// Ready for at least `min_ready_seconds` (`podutil.IsPodAvailable`): a
/// pod is available once its Ready condition's lastTransitionTime plus
/// minReadySeconds lies strictly before `now`.
pub(crate) fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    if !is_pod_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    match pod_ready_since(pod) {
        Some(since) => nanos(since) + i128::from(min_ready_seconds) * NANOS_PER_SECOND < nanos(now),
        None => false,
    }
}

pub(crate) const NANOS_PER_SECOND: i128 = 1_000_000_000;

pub(crate) fn nanos(t: Timestamp) -> i128 {
    t.as_nanosecond()
}

/// `now` as the API stores it: metav1.Time has whole seconds on the wire,
/// so conditions written with sub-second precision would never compare
/// equal to what is read back.
pub(crate) fn wire_time(now: Timestamp) -> Time {
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// `intstr.GetScaledValueFromIntOrPercent`: an int as is, a percentage of
/// `total` rounded up or down.
pub(crate) fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, Error> {
    match value {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let invalid = || Error::InvalidIntOrPercent(s.clone());
            let pct: i64 = s.strip_suffix('%').ok_or_else(invalid)?.parse().map_err(|_| invalid())?;
            let product = pct * i64::from(total);
            let v = if round_up {
                product.div_euclid(100) + i64::from(product.rem_euclid(100) != 0)
            } else {
                product.div_euclid(100)
            };
            i32::try_from(v).map_err(|_| invalid())
        }
    }
}

/// Zero is left out of the status on the wire (`omitempty`); keeping it
/// out here too makes a status read back from the API compare equal.
pub(crate) fn omit_zero(v: i32) -> Option<i32> {
    (v != 0).then_some(v)
}

pub(crate) fn omit_zero64(v: i64) -> Option<i64> {
    (v != 0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn percentages_round_up_for_surge_and_down_for_unavailability() {
        let pct = IntOrString::String("25%".into());
        assert_eq!(scaled_value(&pct, 3, true), Ok(1));
        assert_eq!(scaled_value(&pct, 3, false), Ok(0));
        assert_eq!(scaled_value(&pct, 8, true), Ok(2));
        assert_eq!(scaled_value(&IntOrString::String("100%".into()), 7, false), Ok(7));
        assert_eq!(scaled_value(&IntOrString::Int(4), 100, false), Ok(4));
        assert!(scaled_value(&IntOrString::String("25".into()), 3, true).is_err());
        assert!(scaled_value(&IntOrString::String("x%".into()), 3, true).is_err());
    }

    #[test]
    fn selectors_combine_match_labels_and_expressions() {
        let req = |key: &str, op: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        };
        let sel = Selector::parse(&LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                req("tier", "In", &["front", "edge"]),
                req("canary", "DoesNotExist", &[]),
                req("env", "NotIn", &["prod"]),
                req("team", "Exists", &[]),
            ]),
        })
        .expect("valid");
        assert!(sel.matches(Some(&labels(&[("app", "web"), ("tier", "edge"), ("team", "a")]))));
        assert!(!sel.matches(Some(&labels(&[("app", "web"), ("tier", "back"), ("team", "a")]))));
        assert!(!sel.matches(Some(&labels(&[("app", "web"), ("tier", "edge"), ("team", "a"), ("canary", "1")]))));
        assert!(!sel.matches(Some(&labels(&[("app", "web"), ("tier", "edge"), ("team", "a"), ("env", "prod")]))));
        assert!(!sel.matches(None));
        assert!(Selector::parse(&LabelSelector::default()).expect("valid").is_everything());
        assert!(
            Selector::parse(&LabelSelector { match_labels: None, match_expressions: Some(vec![req("a", "In", &[])]) })
                .is_err()
        );
    }

    #[test]
    fn availability_needs_min_ready_seconds_strictly_passed() {
        let since = Timestamp::from_second(1000).expect("in range");
        let pod = Pod {
            status: Some(k8s_openapi::api::core::v1::PodStatus {
                conditions: Some(vec![k8s_openapi::api::core::v1::PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(since)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let at = |s| Timestamp::from_second(s).expect("in range");
        assert!(is_pod_available(&pod, 0, at(1000)));
        assert!(!is_pod_available(&pod, 10, at(1010)));
        assert!(is_pod_available(&pod, 10, at(1011)));
    }
}
