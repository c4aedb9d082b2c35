//! The ReplicaSet controller's decisions: claiming pods, creating and
//! deleting them, which ones go first, and the status it reports.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time};
use svcnet_controllers::deployment::{
    BURST_REPLICAS, POD_DELETION_COST_ANNOTATION, rank_pods_for_deletion, reconcile_replicaset, replica_failure_status,
    replicaset_controller_ref,
};

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).expect("in range")
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn rs(replicas: i32) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some("web-abc".into()),
            namespace: Some("default".into()),
            uid: Some("rs-uid".into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: None,
            selector: LabelSelector { match_labels: Some(labels(&[("app", "web")])), match_expressions: None },
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(&[("app", "web"), ("tier", "front")])),
                    annotations: Some(labels(&[("note", "x")])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container { name: "c".into(), image: Some("nginx".into()), ..Default::default() }],
                    ..Default::default()
                }),
            }),
        }),
        status: None,
    }
}

/// A running, ready pod owned by `rs`, created at `created` and ready since
/// `ready_since`.
fn pod(name: &str, owner: Option<&ReplicaSet>, created: i64, ready_since: Option<i64>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            labels: Some(labels(&[("app", "web"), ("tier", "front")])),
            creation_timestamp: Some(Time(t(created))),
            owner_references: owner.map(|rs| vec![replicaset_controller_ref(rs)]),
            ..Default::default()
        },
        spec: Some(PodSpec { node_name: Some("node-a".into()), ..Default::default() }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready_since.is_some() { "True" } else { "False" }.into(),
                last_transition_time: Some(Time(t(ready_since.unwrap_or(created)))),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

fn names(pods: &[&Pod]) -> Vec<String> {
    pods.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).collect()
}

#[test]
fn a_replicaset_without_pods_creates_them_from_its_template() {
    let rs = rs(3);
    let actions = reconcile_replicaset(&rs, &[], t(0)).expect("valid");
    assert_eq!(actions.create_pods.len(), 3);
    let p = &actions.create_pods[0];
    assert_eq!(p.metadata.generate_name.as_deref(), Some("web-abc-"));
    assert_eq!(p.metadata.name, None);
    assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(p.metadata.labels, Some(labels(&[("app", "web"), ("tier", "front")])));
    assert_eq!(p.metadata.annotations, Some(labels(&[("note", "x")])));
    assert_eq!(
        p.metadata.owner_references,
        Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "web-abc".into(),
            uid: "rs-uid".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }])
    );
    assert_eq!(p.spec.as_ref().map(|s| s.containers[0].image.clone()), Some(Some("nginx".into())));
    assert!(actions.delete_pods.is_empty());
    let status = actions.status.expect("first status");
    assert_eq!(status.replicas, 0);
    assert_eq!(status.observed_generation, Some(1));
}

#[test]
fn creates_are_capped_at_the_burst_size() {
    let actions = reconcile_replicaset(&rs(BURST_REPLICAS as i32 + 20), &[], t(0)).expect("valid");
    assert_eq!(actions.create_pods.len(), BURST_REPLICAS);
}

#[test]
fn a_settled_replicaset_does_nothing_on_the_next_pass() {
    let mut rs = rs(2);
    let a = pod("a", Some(&rs), 0, Some(1));
    let b = pod("b", Some(&rs), 0, Some(1));
    let first = reconcile_replicaset(&rs, &[&a, &b], t(10)).expect("valid");
    assert!(first.create_pods.is_empty() && first.delete_pods.is_empty());
    rs.status = first.status;
    let second = reconcile_replicaset(&rs, &[&a, &b], t(11)).expect("valid");
    assert!(second.is_empty(), "{second:?}");
}

#[test]
fn status_counts_fully_labeled_ready_and_available_pods() {
    let mut rs = rs(3);
    rs.spec.as_mut().expect("spec").min_ready_seconds = Some(10);
    let old_ready = pod("a", Some(&rs), 0, Some(0));
    let fresh_ready = pod("b", Some(&rs), 0, Some(95));
    let mut partly_labeled = pod("c", Some(&rs), 0, None);
    partly_labeled.metadata.labels = Some(labels(&[("app", "web")]));
    let actions = reconcile_replicaset(&rs, &[&old_ready, &fresh_ready, &partly_labeled], t(100)).expect("valid");
    assert_eq!(
        actions.status,
        Some(ReplicaSetStatus {
            replicas: 3,
            fully_labeled_replicas: Some(2),
            ready_replicas: Some(2),
            available_replicas: Some(1),
            observed_generation: Some(1),
            ..Default::default()
        })
    );
    assert_eq!(actions.requeue_after, None, "not all replicas are ready, so time alone will not help");

    let ready_soon = pod("c", Some(&rs), 0, Some(99));
    let actions = reconcile_replicaset(&rs, &[&old_ready, &fresh_ready, &ready_soon], t(100)).expect("valid");
    assert_eq!(actions.status.as_ref().and_then(|s| s.available_replicas), Some(1));
    assert_eq!(actions.requeue_after, Some(std::time::Duration::from_secs(10)));
}

#[test]
fn terminal_and_deleting_pods_do_not_count_and_are_replaced() {
    let rs = rs(2);
    let mut failed = pod("failed", Some(&rs), 0, None);
    failed.status.as_mut().expect("status").phase = Some("Failed".into());
    let mut deleting = pod("deleting", Some(&rs), 0, Some(1));
    deleting.metadata.deletion_timestamp = Some(Time(t(5)));
    let actions = reconcile_replicaset(&rs, &[&failed, &deleting], t(10)).expect("valid");
    assert_eq!(actions.create_pods.len(), 2);
    assert!(actions.delete_pods.is_empty());
}

#[test]
fn orphans_that_match_are_adopted_and_counted() {
    let rs = rs(2);
    let orphan = pod("orphan", None, 0, Some(1));
    let mut other_owner = pod("other", None, 0, Some(1));
    other_owner.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: "someone-else".into(),
        uid: "other-uid".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    let mut unrelated = pod("unrelated", None, 0, Some(1));
    unrelated.metadata.labels = Some(labels(&[("app", "db")]));
    let mut deleting_orphan = pod("deleting-orphan", None, 0, Some(1));
    deleting_orphan.metadata.deletion_timestamp = Some(Time(t(5)));
    let mut elsewhere = pod("elsewhere", None, 0, Some(1));
    elsewhere.metadata.namespace = Some("other".into());

    let pods = [&orphan, &other_owner, &unrelated, &deleting_orphan, &elsewhere];
    let actions = reconcile_replicaset(&rs, &pods, t(10)).expect("valid");
    let adopted: Vec<&str> = actions.adopt.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(adopted, ["orphan"]);
    assert_eq!(actions.adopt[0].uid.as_deref(), Some("uid-orphan"));
    assert_eq!(actions.create_pods.len(), 1, "the adopted orphan counts towards the two replicas");
    assert_eq!(actions.status.map(|s| s.replicas), Some(1));
}

#[test]
fn owned_pods_that_stop_matching_are_released_and_replaced() {
    let rs = rs(1);
    let mut relabeled = pod("relabeled", Some(&rs), 0, Some(1));
    relabeled.metadata.labels = Some(labels(&[("app", "debug")]));
    let actions = reconcile_replicaset(&rs, &[&relabeled], t(10)).expect("valid");
    let released: Vec<&str> = actions.release.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(released, ["relabeled"]);
    assert_eq!(actions.create_pods.len(), 1);
}

#[test]
fn a_replicaset_being_deleted_neither_adopts_releases_nor_creates() {
    let mut rs = rs(3);
    rs.metadata.deletion_timestamp = Some(Time(t(0)));
    let orphan = pod("orphan", None, 0, Some(1));
    let mut relabeled = pod("relabeled", Some(&rs), 0, Some(1));
    relabeled.metadata.labels = Some(labels(&[("app", "debug")]));
    let actions = reconcile_replicaset(&rs, &[&orphan, &relabeled], t(10)).expect("valid");
    assert!(actions.adopt.is_empty() && actions.release.is_empty() && actions.create_pods.is_empty());
}

#[test]
fn excess_pods_are_deleted_most_expendable_first() {
    let rs = rs(1);
    let old_ready = pod("old-ready", Some(&rs), 0, Some(10));
    let mut pending = pod("pending", Some(&rs), 0, None);
    pending.status.as_mut().expect("status").phase = Some("Pending".into());
    let actions = reconcile_replicaset(&rs, &[&old_ready, &pending], t(1000)).expect("valid");
    let deleted: Vec<&str> = actions.delete_pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(deleted, ["pending"]);
}

#[test]
fn victim_ranking_prefers_unscheduled_then_pending_then_unknown_then_not_ready() {
    let rs = rs(0);
    let running = pod("running", Some(&rs), 0, Some(1));
    let not_ready = pod("not-ready", Some(&rs), 0, None);
    let mut unknown = pod("unknown", Some(&rs), 0, Some(1));
    unknown.status.as_mut().expect("status").phase = Some("Unknown".into());
    let mut pending = pod("pending", Some(&rs), 0, None);
    pending.status.as_mut().expect("status").phase = Some("Pending".into());
    let mut unscheduled = pod("unscheduled", Some(&rs), 0, Some(1));
    unscheduled.spec.as_mut().expect("spec").node_name = None;
    let pods = [&running, &not_ready, &unknown, &pending, &unscheduled];
    let ranked = rank_pods_for_deletion(&pods, &pods, t(10_000));
    assert_eq!(names(&ranked), ["unscheduled", "pending", "unknown", "not-ready", "running"]);
}

#[test]
fn victim_ranking_prefers_lower_deletion_cost_then_crowded_nodes() {
    let rs = rs(0);
    let mut costly = pod("costly", Some(&rs), 0, Some(1));
    costly.metadata.annotations = Some(labels(&[(POD_DELETION_COST_ANNOTATION, "100")]));
    let mut alone = pod("alone", Some(&rs), 0, Some(1));
    alone.spec.as_mut().expect("spec").node_name = Some("node-b".into());
    let crowded1 = pod("crowded1", Some(&rs), 0, Some(1));
    let crowded2 = pod("crowded2", Some(&rs), 0, Some(1));
    let pods = [&costly, &alone, &crowded1, &crowded2];
    let ranked = rank_pods_for_deletion(&pods, &pods, t(10_000));
    // node-a has three pods (including the costly one), node-b one.
    assert_eq!(names(&ranked), ["crowded1", "crowded2", "alone", "costly"]);
}

#[test]
fn victim_ranking_prefers_recently_ready_then_more_restarts_then_newer() {
    let rs = rs(0);
    let now = 100_000;
    // Ready for ~10s vs ~27h: different log2 buckets.
    let long_ready = pod("long-ready", Some(&rs), 0, Some(1));
    let recently_ready = pod("recently-ready", Some(&rs), 0, Some(now - 10));
    let ranked = rank_pods_for_deletion(&[&long_ready, &recently_ready], &[], t(now));
    assert_eq!(names(&ranked), ["recently-ready", "long-ready"]);

    let mut restarted = pod("restarted", Some(&rs), 0, Some(1));
    restarted.status.as_mut().expect("status").container_statuses =
        Some(vec![ContainerStatus { name: "c".into(), restart_count: 5, ..Default::default() }]);
    let steady = pod("steady", Some(&rs), 0, Some(1));
    let ranked = rank_pods_for_deletion(&[&steady, &restarted], &[], t(now));
    assert_eq!(names(&ranked), ["restarted", "steady"]);

    let older = pod("older", Some(&rs), 0, None);
    let newer = pod("newer", Some(&rs), now - 5, None);
    let ranked = rank_pods_for_deletion(&[&older, &newer], &[], t(now));
    assert_eq!(names(&ranked), ["newer", "older"]);
}

#[test]
fn a_recorded_replica_failure_is_cleared_by_the_next_clean_pass() {
    let mut rs = rs(1);
    let first = reconcile_replicaset(&rs, &[], t(0)).expect("valid");
    let failed = replica_failure_status(&first.status.expect("status"), true, "quota exceeded", t(0));
    let cond = failed.conditions.as_ref().and_then(|c| c.first()).expect("condition");
    assert_eq!((cond.type_.as_str(), cond.reason.as_deref()), ("ReplicaFailure", Some("FailedCreate")));
    rs.status = Some(failed);
    let p = pod("a", Some(&rs), 0, Some(1));
    let next = reconcile_replicaset(&rs, &[&p], t(5)).expect("valid");
    assert_eq!(next.status.expect("changed").conditions, None);
}

#[test]
fn an_invalid_selector_is_an_error() {
    let mut rs = rs(1);
    rs.spec.as_mut().expect("spec").selector = LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
            key: "app".into(),
            operator: "Near".into(),
            values: None,
        }]),
    };
    assert!(reconcile_replicaset(&rs, &[], t(0)).is_err());
}
