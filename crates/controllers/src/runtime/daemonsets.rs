//! The DaemonSet controller's runtime: queue keys from informer changes
//! (a node's change queues every set), reconcile with
//! [`crate::daemonset`], write the actions (revisions first, then pods,
//! then the status), record events.
//!
//! Daemon pods are created with `generateName`, so a pass on a snapshot
//! that does not show a pod just created yet would make a second one for
//! the same node. As kube-controller-manager's expectations do, a created
//! pod is remembered until the informer shows it (or a minute passes),
//! and its node counts as covered meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use svcnet_client::{Api, Client, Notification, ObjectKey, PostParams};

use super::Informers;
use super::events::{EventType, Recorder, reference};
use super::owned;
use super::queue::{Queue, feed_own_keys, feed_owner_keys};
use crate::daemonset;

const EXPECTATIONS_TTL: Duration = Duration::from_secs(60);

/// Pods created and not yet seen, per set: (node, pod name, when).
#[derive(Clone, Default)]
struct Pending(Arc<Mutex<HashMap<ObjectKey, Vec<(String, String, Instant)>>>>);

impl Pending {
    /// The nodes whose pod is created but not yet in `pods`.
    fn unseen_nodes(&self, key: &ObjectKey, pods: &svcnet_client::Store<Pod>) -> Vec<String> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = all.get_mut(key) else { return Vec::new() };
        let ns = key.namespace.as_deref().unwrap_or("default");
        list.retain(|(_, pod, at)| {
            at.elapsed() < EXPECTATIONS_TTL && pods.get(&ObjectKey::namespaced(ns, pod)).is_none()
        });
        let nodes = list.iter().map(|(node, _, _)| node.clone()).collect();
        if list.is_empty() {
            all.remove(key);
        }
        nodes
    }

    fn created(&self, key: &ObjectKey, node: String, pod: String) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(key.clone()).or_default().push((node, pod, Instant::now()));
    }
}

/// Runs the DaemonSet controller.
pub fn spawn(inf: Arc<Informers>, client: Client, recorder: Recorder, workers: usize) {
    let queue = Queue::default();
    let pending = Pending::default();
    feed_own_keys(&inf.daemonsets, &queue);
    feed_owner_keys(&inf.pods, &inf.daemonsets, "DaemonSet", &queue);
    feed_owner_keys(&inf.revisions, &inf.daemonsets, "DaemonSet", &queue);
    {
        // A node added, removed or relabelled can change every set.
        let (inf, queue) = (inf.clone(), queue.clone());
        let mut sub = inf.nodes.subscribe();
        tokio::spawn(async move {
            while let Some(n) = sub.recv().await {
                if matches!(n, Notification::Changed(_) | Notification::Resync) {
                    queue.add_all(&inf.daemonsets.store().state());
                }
            }
        });
    }
    let ctx = (inf.clone(), client, recorder, pending);
    queue.work(&inf, workers, "daemonset", ctx, |(inf, client, recorder, pending), key| async move {
        sync(&inf, &client, &recorder, &pending, &key).await.map(|()| None)
    });
}

async fn sync(
    inf: &Informers,
    client: &Client,
    recorder: &Recorder,
    pending: &Pending,
    key: &ObjectKey,
) -> svcnet_client::Result<()> {
    let Some(ds) = inf.daemonsets.store().get(key) else { return Ok(()) };
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let ns = key.namespace.as_deref().unwrap_or("default");
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let pods_store = inf.pods.store();
    let unseen = pending.unseen_nodes(key, &pods_store);
    let all_pods = pods_store.state();
    let pods = owned::controlled(&all_pods, ns, &uid);
    let all_nodes = inf.nodes.store().state();
    let nodes: Vec<&Node> = all_nodes.iter().map(|n| n.as_ref()).collect();
    let all_revisions = inf.revisions.store().state();
    let revisions = owned::controlled(&all_revisions, ns, &uid);
    let mut actions = daemonset::reconcile_daemonset(&ds, &nodes, &pods, &revisions, jiff::Timestamp::now());
    if !unseen.is_empty() {
        // Created already; the informer has not shown it yet.
        actions.create_pods.retain(|p| !daemonset::pod_node(p).is_some_and(|n| unseen.contains(&n)));
        actions.status = None;
    }

    let revisions_api: Api<ControllerRevision> = Api::namespaced(client.clone(), ns);
    owned::write_revisions(&revisions_api, &actions.create_revisions, &actions.renumber_revisions).await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let set_ref = reference("DaemonSet", "apps/v1", &ds.metadata);
    for pod in &actions.create_pods {
        match api.create(&PostParams::default(), pod).await {
            Ok(created) => {
                let name = created.metadata.name.clone().unwrap_or_default();
                if let Some(node) = daemonset::pod_node(pod) {
                    pending.created(key, node, name.clone());
                }
                recorder.record(set_ref.clone(), EventType::Normal, "SuccessfulCreate", format!("Created pod: {name}"));
            }
            Err(e) => {
                recorder.record(set_ref.clone(), EventType::Warning, "FailedCreate", format!("Error creating: {e}"));
                return Err(e);
            }
        }
    }
    owned::delete_pods(&api, &actions.delete_pods, recorder, &set_ref, |name| format!("Deleted pod: {name}")).await?;
    owned::delete_revisions(&revisions_api, &actions.delete_revisions).await?;
    if let Some(status) = actions.status {
        let mut next = (*ds).clone();
        next.status = Some(status);
        owned::replace_status(&Api::<DaemonSet>::namespaced(client.clone(), ns), &key.name, &next).await?;
    }
    Ok(())
}
