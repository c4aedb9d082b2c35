//! The StatefulSet controller's runtime: queue keys from informer changes,
//! reconcile with [`crate::statefulset`], write the actions (revisions
//! first, then pods, then the status), record events.
//!
//! Pod names are stable, so there are no expectations to keep: a pass on
//! a stale snapshot creates a pod that already exists (409, ignored) or
//! deletes one that is gone (404, ignored), never a second copy.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use svcnet_client::{Api, Client, ObjectKey, PostParams};

use super::Informers;
use super::events::{EventType, Recorder, reference};
use super::owned;
use super::queue::{Queue, feed_own_keys, feed_owner_keys};
use crate::statefulset;

/// Runs the StatefulSet controller.
pub fn spawn(inf: Arc<Informers>, client: Client, recorder: Recorder, workers: usize) {
    let queue = Queue::default();
    feed_own_keys(&inf.statefulsets, &queue);
    feed_owner_keys(&inf.pods, &inf.statefulsets, "StatefulSet", &queue);
    feed_owner_keys(&inf.revisions, &inf.statefulsets, "StatefulSet", &queue);
    let ctx = (inf.clone(), client, recorder);
    queue.work(&inf, workers, "statefulset", ctx, |(inf, client, recorder), key| async move {
        sync(&inf, &client, &recorder, &key).await.map(|()| None)
    });
}

async fn sync(inf: &Informers, client: &Client, recorder: &Recorder, key: &ObjectKey) -> svcnet_client::Result<()> {
    let Some(sts) = inf.statefulsets.store().get(key) else { return Ok(()) };
    if sts.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let ns = key.namespace.as_deref().unwrap_or("default");
    let uid = sts.metadata.uid.clone().unwrap_or_default();
    let all_pods = inf.pods.store().state();
    let pods = owned::controlled(&all_pods, ns, &uid);
    let all_revisions = inf.revisions.store().state();
    let revisions = owned::controlled(&all_revisions, ns, &uid);
    let actions = statefulset::reconcile_statefulset(&sts, &pods, &revisions, jiff::Timestamp::now());

    let revisions_api: Api<ControllerRevision> = Api::namespaced(client.clone(), ns);
    owned::write_revisions(&revisions_api, &actions.create_revisions, &actions.renumber_revisions).await?;
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
    let message = |name: &str| format!("delete Pod {name} in StatefulSet {set_name} successful");
    owned::delete_pods(&api, &actions.delete_pods, recorder, &set_ref, message).await?;
    owned::delete_revisions(&revisions_api, &actions.delete_revisions).await?;
    if let Some(status) = actions.status {
        // The whole status is replaced; a conflict means the set changed
        // and the next pass recomputes.
        let mut next = (*sts).clone();
        next.status = Some(status);
        owned::replace_status(&Api::<StatefulSet>::namespaced(client.clone(), ns), &key.name, &next).await?;
    }
    Ok(())
}
