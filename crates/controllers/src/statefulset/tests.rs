use super::*;

fn sts(replicas: i32, extra: serde_json::Value) -> StatefulSet {
    let mut v = json!({
        "metadata": { "name": "web", "namespace": "default", "uid": "u-web", "generation": 1 },
        "spec": {
            "replicas": replicas,
            "serviceName": "nginx",
            "selector": { "matchLabels": { "app": "nginx" } },
            "template": {
                "metadata": { "labels": { "app": "nginx" } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx:1.25" }] }
            }
        }
    });
    if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(v).unwrap()
}

fn pass(set: &StatefulSet, pods: &[Pod], revisions: &[ControllerRevision]) -> StatefulSetActions {
    let pods: Vec<&Pod> = pods.iter().collect();
    let revisions: Vec<&ControllerRevision> = revisions.iter().collect();
    reconcile_statefulset(set, &pods, &revisions, Timestamp::UNIX_EPOCH)
}

/// Pod `ordinal` as the controller made it, Running and Ready or not.
fn pod(set: &StatefulSet, revision: &str, ordinal: i32, ready: bool) -> Pod {
    let mut p = new_pod(set, &set.spec.as_ref().unwrap().template, revision, ordinal);
    p.status = Some(
        serde_json::from_value(json!({
            "phase": "Running",
            "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }]
        }))
        .unwrap(),
    );
    p
}

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter().map(|p| name(&p.metadata).to_string()).collect()
}

fn deleted(actions: &StatefulSetActions) -> Vec<String> {
    actions.delete_pods.iter().map(|p| p.name.clone()).collect()
}

#[test]
fn ordinals_parse_only_the_sets_own_names() {
    assert_eq!(ordinal_of("web", "web-0"), Some(0));
    assert_eq!(ordinal_of("web", "web-12"), Some(12));
    assert_eq!(ordinal_of("web", "web-01"), None);
    assert_eq!(ordinal_of("web", "web-x"), None);
    assert_eq!(ordinal_of("web", "webby-1"), None);
    assert_eq!(ordinal_of("web", "web-"), None);
}

#[test]
fn ordered_ready_creates_one_pod_at_a_time_after_the_ones_before_are_ready() {
    let set = sts(3, json!({}));
    let first = pass(&set, &[], &[]);
    assert_eq!(first.create_revisions.len(), 1);
    let rev = name(&first.create_revisions[0].metadata).to_string();
    assert!(rev.starts_with("web-"));
    assert_eq!(names(&first.create_pods), ["web-0"]);
    let p0 = &first.create_pods[0];
    let spec = p0.spec.as_ref().unwrap();
    assert_eq!((spec.hostname.as_deref(), spec.subdomain.as_deref()), (Some("web-0"), Some("nginx")));
    let labels = p0.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[REVISION_LABEL], rev);
    assert_eq!(labels[POD_NAME_LABEL], "web-0");
    assert_eq!(labels[POD_INDEX_LABEL], "0");
    assert_eq!(labels["app"], "nginx");
    assert_eq!(p0.metadata.owner_references.as_ref().unwrap()[0].kind, "StatefulSet");

    let revisions = first.create_revisions.clone();
    // web-0 not ready yet: nothing more.
    let waiting = pass(&set, &[pod(&set, &rev, 0, false)], &revisions);
    assert!(waiting.create_pods.is_empty() && waiting.delete_pods.is_empty());
    // Ready: web-1 next.
    let next = pass(&set, &[pod(&set, &rev, 0, true)], &revisions);
    assert_eq!(names(&next.create_pods), ["web-1"]);
    assert!(next.create_revisions.is_empty());
}

#[test]
fn parallel_creates_every_missing_pod_at_once() {
    let set = sts(3, json!({ "podManagementPolicy": "Parallel" }));
    assert_eq!(names(&pass(&set, &[], &[]).create_pods), ["web-0", "web-1", "web-2"]);
}

#[test]
fn scaling_down_removes_the_highest_ordinal_first_and_waits_for_it() {
    let set = sts(1, json!({}));
    let revs = pass(&set, &[], &[]).create_revisions;
    let rev = name(&revs[0].metadata).to_string();
    let pods = [pod(&set, &rev, 0, true), pod(&set, &rev, 1, true), pod(&set, &rev, 2, true)];
    assert_eq!(deleted(&pass(&set, &pods, &revs)), ["web-2"]);
    let mut going = pods.clone();
    going[2].metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::UNIX_EPOCH));
    assert!(deleted(&pass(&set, &going, &revs)).is_empty(), "web-1 waits until web-2 is gone");
    assert_eq!(deleted(&pass(&set, &pods[..2], &revs)), ["web-1"]);
}

#[test]
fn a_rolling_update_replaces_pods_from_the_highest_down_to_the_partition() {
    let old = sts(3, json!({}));
    let revs = pass(&old, &[], &[]).create_revisions;
    let old_rev = name(&revs[0].metadata).to_string();
    let mut status_old = old.clone();
    status_old.status = Some(StatefulSetStatus { current_revision: Some(old_rev.clone()), ..Default::default() });
    let pods = [pod(&old, &old_rev, 0, true), pod(&old, &old_rev, 1, true), pod(&old, &old_rev, 2, true)];

    let mut new = status_old.clone();
    new.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0].image = Some("nginx:1.26".into());
    let step = pass(&new, &pods, &revs);
    assert_eq!(step.create_revisions.len(), 1);
    let new_rev = name(&step.create_revisions[0].metadata).to_string();
    assert_ne!(new_rev, old_rev);
    assert_eq!(step.create_revisions[0].revision, 2);
    assert_eq!(deleted(&step), ["web-2"]);
    let revs2: Vec<ControllerRevision> = revs.iter().cloned().chain(step.create_revisions.clone()).collect();
    // web-2 is recreated from the new revision...
    let recreate = pass(&new, &pods[..2], &revs2);
    assert_eq!(names(&recreate.create_pods), ["web-2"]);
    assert_eq!(recreate.create_pods[0].spec.as_ref().unwrap().containers[0].image.as_deref(), Some("nginx:1.26"));
    // ...and once it is ready, web-1 goes.
    let updated2 = pod(&new, &new_rev, 2, true);
    let step2 = pass(&new, &[pods[0].clone(), pods[1].clone(), updated2.clone()], &revs2);
    assert_eq!(deleted(&step2), ["web-1"]);
    let status = step2.status.unwrap();
    assert_eq!((status.current_replicas, status.updated_replicas), (Some(2), Some(1)));
    assert_eq!(status.current_revision.as_deref(), Some(old_rev.as_str()));

    // With partition 2, web-1 and web-0 keep the old revision.
    let mut partitioned = new.clone();
    partitioned.spec.as_mut().unwrap().update_strategy =
        Some(serde_json::from_value(json!({ "type": "RollingUpdate", "rollingUpdate": { "partition": 2 } })).unwrap());
    assert!(deleted(&pass(&partitioned, &[pods[0].clone(), pods[1].clone(), updated2.clone()], &revs2)).is_empty());
    // A pod recreated below the partition comes from the current revision.
    let again = pass(&partitioned, &[pods[0].clone(), updated2.clone()], &revs2);
    assert_eq!(again.create_pods[0].spec.as_ref().unwrap().containers[0].image.as_deref(), Some("nginx:1.25"));

    // All on the new revision: the rollout is complete.
    let done = pass(&new, &[pod(&new, &new_rev, 0, true), pod(&new, &new_rev, 1, true), updated2], &revs2);
    let status = done.status.unwrap();
    assert_eq!(status.current_revision.as_deref(), Some(new_rev.as_str()));
    assert_eq!((status.ready_replicas, status.updated_replicas, status.current_replicas), (Some(3), Some(3), Some(3)));
    // The old revision is history, kept within the limit.
    assert!(done.delete_revisions.is_empty());
}

#[test]
fn on_delete_leaves_old_pods_until_they_are_deleted() {
    let old = sts(2, json!({ "updateStrategy": { "type": "OnDelete" } }));
    let revs = pass(&old, &[], &[]).create_revisions;
    let old_rev = name(&revs[0].metadata).to_string();
    let pods = [pod(&old, &old_rev, 0, true), pod(&old, &old_rev, 1, true)];
    let mut new = old.clone();
    new.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0].image = Some("nginx:1.26".into());
    assert!(deleted(&pass(&new, &pods, &revs)).is_empty());
}

#[test]
fn failed_pods_are_replaced_and_history_is_trimmed() {
    let set = sts(1, json!({ "revisionHistoryLimit": 1 }));
    let revs = pass(&set, &[], &[]).create_revisions;
    let rev = name(&revs[0].metadata).to_string();
    let mut failed = pod(&set, &rev, 0, false);
    failed.status.as_mut().unwrap().phase = Some("Failed".into());
    assert_eq!(deleted(&pass(&set, &[failed], &revs)), ["web-0"]);

    let old = |n: i64| ControllerRevision {
        metadata: ObjectMeta { name: Some(format!("web-old{n}")), ..Default::default() },
        revision: n,
        data: None,
    };
    let mut all = vec![old(1), old(2), old(3)];
    all.extend(revs.iter().map(|r| ControllerRevision { revision: 4, ..r.clone() }));
    let actions = pass(&set, &[pod(&set, &rev, 0, true)], &all);
    assert_eq!(actions.delete_revisions, ["web-old1", "web-old2"]);
}

#[test]
fn volume_claim_templates_become_claim_volumes_named_per_pod() {
    let set = sts(1, json!({ "volumeClaimTemplates": [{ "metadata": { "name": "www" }, "spec": {} }] }));
    let created = pass(&set, &[], &[]).create_pods;
    let volumes = created[0].spec.as_ref().unwrap().volumes.clone().unwrap();
    assert_eq!(volumes[0].name, "www");
    assert_eq!(volumes[0].persistent_volume_claim.as_ref().unwrap().claim_name, "www-web-0");
}
