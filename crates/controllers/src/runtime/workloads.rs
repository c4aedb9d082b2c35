//! The ReplicaSet and Deployment controllers' runtime: queue keys from
//! informer changes, reconcile with [`crate::deployment`], write the
//! actions, record events.
//!
//! The ReplicaSet controller keeps *expectations*, as kube-controller-
//! manager does: after creating or deleting pods for a ReplicaSet it does
//! not reconcile that ReplicaSet again until its informer has seen those
//! changes, or it would act twice on a stale snapshot.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::json;
use svcnet_client::{
    Api, Client, DeleteParams, Notification, ObjectKey, Patch, PatchParams, PostParams, Preconditions,
};

use super::Informers;
use super::events::{EventType, Recorder, reference};
use super::queue::{Queue, RETRY, feed_own_keys, feed_owner_keys};
use crate::deployment::{self, PodRef};

/// Expectations older than this are dropped (a lost watch event must not
/// wedge a ReplicaSet forever); kube uses five minutes.
const EXPECTATIONS_TTL: Duration = Duration::from_secs(60);

fn controller_of(refs: Option<&Vec<OwnerReference>>, kind: &str) -> Option<String> {
    refs?.iter().find(|r| r.controller == Some(true) && r.kind == kind).map(|r| r.name.clone())
}

fn ns_of(key: &ObjectKey) -> &str {
    key.namespace.as_deref().unwrap_or("default")
}

#[derive(Default)]
struct Expectation {
    creates: HashSet<String>,
    deletes: HashSet<String>,
    since: Option<Instant>,
}

/// Outstanding creates and deletes per ReplicaSet.
#[derive(Default, Clone)]
struct Expectations(Arc<Mutex<HashMap<ObjectKey, Expectation>>>);

impl Expectations {
    fn satisfied(&self, key: &ObjectKey, pods: &svcnet_client::Store<Pod>) -> bool {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = all.get_mut(key) else { return true };
        let ns = ns_of(key);
        e.creates.retain(|name| pods.get(&ObjectKey::namespaced(ns, name)).is_none());
        e.deletes.retain(|name| {
            pods.get(&ObjectKey::namespaced(ns, name)).is_some_and(|p| p.metadata.deletion_timestamp.is_none())
        });
        let expired = e.since.is_some_and(|t| t.elapsed() > EXPECTATIONS_TTL);
        if (e.creates.is_empty() && e.deletes.is_empty()) || expired {
            all.remove(key);
            return true;
        }
        false
    }

    fn expect(&self, key: &ObjectKey, creates: Vec<String>, deletes: Vec<String>) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let e = all.entry(key.clone()).or_default();
        e.creates.extend(creates);
        e.deletes.extend(deletes);
        e.since = Some(Instant::now());
    }
}

/// Runs the ReplicaSet controller.
pub fn spawn_replicasets(inf: Arc<Informers>, client: Client, recorder: Recorder, workers: usize) {
    let queue = Queue::default();
    let expectations = Expectations::default();
    feed_own_keys(&inf.replicasets, &queue);
    feed_owner_keys(&inf.pods, &inf.replicasets, "ReplicaSet", &queue);
    let ctx = (inf.clone(), client, expectations, recorder);
    queue.work(&inf, workers, "replicaset", ctx, |(inf, client, expectations, recorder), key| async move {
        sync_replicaset(&inf, &client, &expectations, &recorder, &key).await
    });
}

fn owner_refs_patch(
    current: Option<&Vec<OwnerReference>>,
    add: Option<OwnerReference>,
    remove_uid: Option<&str>,
) -> serde_json::Value {
    let mut refs: Vec<OwnerReference> = current.cloned().unwrap_or_default();
    if let Some(uid) = remove_uid {
        refs.retain(|r| r.uid != uid);
    }
    if let Some(r) = add {
        refs.retain(|x| x.uid != r.uid);
        refs.push(r);
    }
    json!({ "metadata": { "ownerReferences": refs } })
}

async fn sync_replicaset(
    inf: &Informers,
    client: &Client,
    expectations: &Expectations,
    recorder: &Recorder,
    key: &ObjectKey,
) -> svcnet_client::Result<Option<Duration>> {
    let Some(rs) = inf.replicasets.store().get(key) else { return Ok(None) };
    let pods_store = inf.pods.store();
    if !expectations.satisfied(key, &pods_store) {
        return Ok(None);
    }
    let ns = ns_of(key);
    let all_pods = pods_store.state();
    let pods: Vec<&Pod> =
        all_pods.iter().filter(|p| p.metadata.namespace.as_deref() == Some(ns)).map(|p| p.as_ref()).collect();
    let actions = match deployment::reconcile_replicaset(&rs, &pods, jiff::Timestamp::now()) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, replicaset = ?key, "cannot reconcile replicaset");
            return Ok(None);
        }
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let rs_ref = deployment::replicaset_controller_ref(&rs);
    let rs_uid = rs.metadata.uid.clone().unwrap_or_default();
    for PodRef { name, .. } in &actions.adopt {
        let current = pods_store.get(&ObjectKey::namespaced(ns, name));
        let patch = owner_refs_patch(
            current.as_ref().and_then(|p| p.metadata.owner_references.as_ref()),
            Some(rs_ref.clone()),
            None,
        );
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    }
    for PodRef { name, .. } in &actions.release {
        let current = pods_store.get(&ObjectKey::namespaced(ns, name));
        let patch =
            owner_refs_patch(current.as_ref().and_then(|p| p.metadata.owner_references.as_ref()), None, Some(&rs_uid));
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    }
    let reference = reference("ReplicaSet", "apps/v1", &rs.metadata);
    let mut created = Vec::new();
    let mut failed = None;
    for pod in &actions.create_pods {
        match api.create(&PostParams::default(), pod).await {
            Ok(p) => {
                let name = p.metadata.name.clone().unwrap_or_default();
                recorder.record(
                    reference.clone(),
                    EventType::Normal,
                    "SuccessfulCreate",
                    format!("Created pod: {name}"),
                );
                created.push(name);
            }
            Err(e) => {
                recorder.record(reference.clone(), EventType::Warning, "FailedCreate", format!("Error creating: {e}"));
                failed = Some(e);
                break;
            }
        }
    }
    let mut deleted = Vec::new();
    for PodRef { name, uid, .. } in &actions.delete_pods {
        let params = DeleteParams {
            preconditions: uid.clone().map(|uid| Preconditions { uid: Some(uid), resource_version: None }),
            ..DeleteParams::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => {
                recorder.record(
                    reference.clone(),
                    EventType::Normal,
                    "SuccessfulDelete",
                    format!("Deleted pod: {name}"),
                );
                deleted.push(name.clone());
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if !created.is_empty() || !deleted.is_empty() {
        expectations.expect(key, created, deleted);
    }
    if let Some(status) = actions.status {
        // The whole status is replaced (a merge patch could not clear the
        // counters serde leaves out when they are zero); a conflict means
        // the ReplicaSet changed and the next pass recomputes.
        let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
        let mut next = (*rs).clone();
        next.status = Some(status);
        match rs_api.replace_status(&key.name, &PostParams::default(), &next).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(actions.requeue_after)
}

/// Runs the Deployment controller.
pub fn spawn_deployments(inf: Arc<Informers>, client: Client, recorder: Recorder, workers: usize) {
    let queue = Queue::default();
    feed_own_keys(&inf.deployments, &queue);
    feed_owner_keys(&inf.replicasets, &inf.deployments, "Deployment", &queue);
    {
        // Pods matter to a Deployment through its ReplicaSets (Recreate
        // waits for old pods to be gone).
        let (inf, queue) = (inf.clone(), queue.clone());
        let mut sub = inf.pods.subscribe();
        tokio::spawn(async move {
            while let Some(n) = sub.recv().await {
                let Notification::Changed(c) = n else { continue };
                let ns = c.key.namespace.clone().unwrap_or_default();
                let Some(rs) = controller_of(c.object.metadata.owner_references.as_ref(), "ReplicaSet") else {
                    continue;
                };
                let Some(rs) = inf.replicasets.store().get(&ObjectKey::namespaced(&ns, &rs)) else { continue };
                if let Some(d) = controller_of(rs.metadata.owner_references.as_ref(), "Deployment") {
                    queue.add(ObjectKey::namespaced(&ns, &d));
                }
            }
        });
    }
    let ctx = (inf.clone(), client, recorder);
    queue.work(&inf, workers, "deployment", ctx, |(inf, client, recorder), key| async move {
        sync_deployment(&inf, &client, &recorder, &key).await
    });
}

async fn sync_deployment(
    inf: &Informers,
    client: &Client,
    recorder: &Recorder,
    key: &ObjectKey,
) -> svcnet_client::Result<Option<Duration>> {
    let Some(d) = inf.deployments.store().get(key) else { return Ok(None) };
    let ns = ns_of(key);
    let all_rs = inf.replicasets.store().state();
    let rss: Vec<&ReplicaSet> =
        all_rs.iter().filter(|r| r.metadata.namespace.as_deref() == Some(ns)).map(|r| r.as_ref()).collect();
    let all_pods = inf.pods.store().state();
    let pods: Vec<&Pod> =
        all_pods.iter().filter(|p| p.metadata.namespace.as_deref() == Some(ns)).map(|p| p.as_ref()).collect();
    let actions = match deployment::reconcile_deployment(&d, &rss, &pods, jiff::Timestamp::now()) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, deployment = ?key, "cannot reconcile deployment");
            return Ok(None);
        }
    };
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let d_api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d_ref = deployment::deployment_controller_ref(&d);
    let d_uid = d.metadata.uid.clone().unwrap_or_default();
    let reference = reference("Deployment", "apps/v1", &d.metadata);
    let rs_store = inf.replicasets.store();
    for name in &actions.adopt_rs {
        let current = rs_store.get(&ObjectKey::namespaced(ns, name));
        let patch = owner_refs_patch(
            current.as_ref().and_then(|r| r.metadata.owner_references.as_ref()),
            Some(d_ref.clone()),
            None,
        );
        rs_api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    }
    for name in &actions.release_rs {
        let current = rs_store.get(&ObjectKey::namespaced(ns, name));
        let patch =
            owner_refs_patch(current.as_ref().and_then(|r| r.metadata.owner_references.as_ref()), None, Some(&d_uid));
        rs_api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    }
    if let Some(rs) = &actions.create_rs {
        let name = rs.metadata.name.clone().unwrap_or_default();
        let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        match rs_api.create(&PostParams::default(), rs).await {
            Ok(_) => recorder.record(
                reference.clone(),
                EventType::Normal,
                "ScalingReplicaSet",
                format!("Scaled up replica set {name} from 0 to {replicas}"),
            ),
            // Its name is taken: the next pass sees it (and bumps
            // collisionCount if it is not ours).
            Err(e) if e.is_already_exists() => return Ok(Some(RETRY)),
            Err(e) => return Err(e),
        }
    }
    let updated: HashSet<String> = actions.update_rs.iter().filter_map(|r| r.metadata.name.clone()).collect();
    for rs in &actions.update_rs {
        let name = rs.metadata.name.clone().unwrap_or_default();
        rs_api.replace(&name, &PostParams::default(), rs).await?;
    }
    for (name, replicas) in &actions.scale {
        let old = rs_store
            .get(&ObjectKey::namespaced(ns, name))
            .and_then(|r| r.spec.as_ref().and_then(|s| s.replicas))
            .unwrap_or(0);
        if !updated.contains(name) {
            let patch = json!({ "spec": { "replicas": replicas } });
            rs_api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await?;
        }
        let direction = if *replicas > old { "up" } else { "down" };
        recorder.record(
            reference.clone(),
            EventType::Normal,
            "ScalingReplicaSet",
            format!("Scaled {direction} replica set {name} from {old} to {replicas}"),
        );
    }
    for name in &actions.delete_rs {
        match rs_api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(revision) = &actions.set_revision {
        let patch = json!({ "metadata": { "annotations": { deployment::REVISION_ANNOTATION: revision } } });
        d_api.patch(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    }
    if actions.status_changed {
        // Replaced whole, for the same reason as ReplicaSet status. The
        // revision annotation written above bumped the resourceVersion,
        // so read the latest first.
        let mut next = match d_api.get(&key.name).await {
            Ok(d) => d,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        next.status = Some(actions.status.clone());
        match d_api.replace_status(&key.name, &PostParams::default(), &next).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(actions.requeue_after)
}
