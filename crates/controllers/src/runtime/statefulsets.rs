//! The StatefulSet controller's runtime: queue keys from informer changes,
//! reconcile with [`crate::statefulset`], write the actions (revisions
//! first, then pods, then the status), record events.
//!
//! Pod names are stable, so there are no expectations to keep: a pass on
//! a stale snapshot creates a pod that already exists (409, ignored) or
//! deletes one that is gone (404, ignored), never a second copy.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use svcnet_client::{Api, Client, DeleteParams, ObjectKey, Patch, PatchParams, PostParams, Preconditions};

use super::Informers;
use super::events::{EventType, Recorder, reference};
use super::queue::{Queue, feed_own_keys, feed_owner_keys};
use crate::deployment::PodRef;
use crate::statefulset;

const RETRY: Duration = Duration::from_millis(500);

/// Runs the StatefulSet controller.
pub fn spawn(inf: Arc<Informers>, client: Client, recorder: Recorder, workers: usize) {
    let queue = Queue::default();
    feed_own_keys(&inf.statefulsets, &queue);
    feed_owner_keys(&inf.pods, &inf.statefulsets, "StatefulSet", &queue);
    feed_owner_keys(&inf.revisions, &inf.statefulsets, "StatefulSet", &queue);
    for _ in 0..workers {
        let (inf, client, queue, recorder) = (inf.clone(), client.clone(), queue.clone(), recorder.clone());
        tokio::spawn(async move {
            inf.wait_synced().await;
            loop {
                let key = queue.next().await;
                if let Err(e) = sync(&inf, &client, &recorder, &key).await {
                    tracing::debug!(error = %e, statefulset = ?key, "syncing statefulset failed; retrying");
                    queue.add_after(key.clone(), RETRY);
                }
                queue.done(&key);
            }
        });
    }
}

fn owned_by(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, uid: &str) -> bool {
    meta.owner_references.iter().flatten().any(|r| r.controller == Some(true) && r.uid == uid)
}

async fn sync(inf: &Informers, client: &Client, recorder: &Recorder, key: &ObjectKey) -> svcnet_client::Result<()> {
    let Some(sts) = inf.statefulsets.store().get(key) else { return Ok(()) };
    if sts.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let ns = key.namespace.as_deref().unwrap_or("default");
    let uid = sts.metadata.uid.clone().unwrap_or_default();
    let all_pods = inf.pods.store().state();
    let pods: Vec<&Pod> = all_pods
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns) && owned_by(&p.metadata, &uid))
        .map(|p| p.as_ref())
        .collect();
    let all_revisions = inf.revisions.store().state();
    let revisions: Vec<&ControllerRevision> = all_revisions
        .iter()
        .filter(|r| r.metadata.namespace.as_deref() == Some(ns) && owned_by(&r.metadata, &uid))
        .map(|r| r.as_ref())
        .collect();
    let actions = statefulset::reconcile_statefulset(&sts, &pods, &revisions, jiff::Timestamp::now());

    let revisions_api: Api<ControllerRevision> = Api::namespaced(client.clone(), ns);
    for rev in &actions.create_revisions {
        match revisions_api.create(&PostParams::default(), rev).await {
            Ok(_) => {}
            Err(e) if e.is_already_exists() => {}
            Err(e) => return Err(e),
        }
    }
    for (name, number) in &actions.renumber_revisions {
        revisions_api.patch(name, &PatchParams::default(), &Patch::Merge(json!({ "revision": number }))).await?;
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let set_ref = reference("StatefulSet", "apps/v1", &sts.metadata);
    let set_name = key.name.as_str();
    for pod in &actions.create_pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        match api.create(&PostParams::default(), pod).await {
            Ok(_) => recorder.record(
                set_ref.clone(),
                EventType::Normal,
                "SuccessfulCreate",
                format!("create Pod {name} in StatefulSet {set_name} successful"),
            ),
            Err(e) if e.is_already_exists() => {}
            Err(e) => {
                recorder.record(
                    set_ref.clone(),
                    EventType::Warning,
                    "FailedCreate",
                    format!("create Pod {name} in StatefulSet {set_name} failed error: {e}"),
                );
                return Err(e);
            }
        }
    }
    for PodRef { name, uid, .. } in &actions.delete_pods {
        let params = DeleteParams {
            preconditions: uid.clone().map(|uid| Preconditions { uid: Some(uid), resource_version: None }),
            ..DeleteParams::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => recorder.record(
                set_ref.clone(),
                EventType::Normal,
                "SuccessfulDelete",
                format!("delete Pod {name} in StatefulSet {set_name} successful"),
            ),
            Err(e) if e.is_not_found() || e.is_conflict() => {}
            Err(e) => return Err(e),
        }
    }
    for name in &actions.delete_revisions {
        match revisions_api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(status) = actions.status {
        // The whole status is replaced; a conflict means the set changed
        // and the next pass recomputes.
        let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
        let mut next = (*sts).clone();
        next.status = Some(status);
        match sts_api.replace_status(&key.name, &PostParams::default(), &next).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() || e.is_conflict() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
