//! The scheduler's runtime: queue the pods [`crate::scheduler`] should
//! place, decide for them against a snapshot of the shared informers, bind
//! them through `pods/{name}/binding`, and report what could not be
//! placed (a `PodScheduled=False` condition and a `FailedScheduling`
//! event).
//!
//! One task decides, one pod at a time, as kube-scheduler's scheduling
//! cycle does; bindings go out in the background. A pod is *assumed* on
//! its node from the moment it is chosen until the informer shows it
//! bound, as in kube-scheduler's cache, so a burst of pods spreads by
//! what has been decided rather than by what the watch has caught up
//! with. Pods that fit nowhere are retried with back-off, and at once
//! when a node changes in a way that matters or a bound pod goes away.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use svcnet_client::{Api, ChangeKind, Client, Notification, ObjectKey, PostParams, Store};
use tokio::sync::Semaphore;

use super::Informers;
use super::events::{EventType, Recorder, reference};
use super::queue::Queue;
use crate::scheduler::{self, FitError, Snapshot};

/// How many queued pods one pass decides against one snapshot.
const BATCH: usize = 256;
/// Bindings in flight at once.
const MAX_BINDINGS: usize = 32;
/// Back-off of a pod that fits nowhere: doubling from the first to the
/// last.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How long after its binding succeeded a pod stays assumed if the
/// informer never shows it bound (a lost watch event must not hold room
/// on a node forever).
const ASSUMED_TTL: Duration = Duration::from_secs(30);
/// Retry delay after a binding failed for another reason than the pod.
const RETRY: Duration = Duration::from_millis(500);

/// A pod chosen for a node whose binding the informer does not show yet.
struct Assumed {
    uid: String,
    node: String,
    /// When the binding succeeded; `None` while it is in flight.
    bound_at: Option<Instant>,
}

/// The scheduler's state beside the informers: assumed pods, and the pods
/// that fit nowhere (with how often they have tried).
#[derive(Clone, Default)]
struct Cache {
    assumed: Arc<Mutex<HashMap<ObjectKey, Assumed>>>,
    unschedulable: Arc<Mutex<HashMap<ObjectKey, u32>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each update is a single map operation; a panic elsewhere cannot
    // leave the maps inconsistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn uid_of(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

impl Cache {
    /// The informers' nodes and bound pods, plus the assumed pods. Drops
    /// assumptions the informer has caught up with (the pod is bound,
    /// gone or replaced) or that outlived [`ASSUMED_TTL`].
    fn snapshot(&self, nodes: &[Arc<Node>], pods: &Store<Pod>) -> Snapshot {
        let all = pods.state();
        let mut snapshot = Snapshot::new(nodes.iter().map(Arc::as_ref), all.iter().map(Arc::as_ref));
        lock(&self.assumed).retain(|key, a| {
            let Some(pod) = pods.get(key) else { return false };
            let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
            let expired = a.bound_at.is_some_and(|t| t.elapsed() > ASSUMED_TTL);
            if bound || expired || uid_of(&pod) != a.uid {
                return false;
            }
            snapshot.assume(&pod, &a.node);
            true
        });
        snapshot
    }

    fn is_assumed(&self, key: &ObjectKey, pod: &Pod) -> bool {
        lock(&self.assumed).get(key).is_some_and(|a| a.uid == uid_of(pod))
    }

    fn assume(&self, key: &ObjectKey, pod: &Pod, node: &str) {
        lock(&self.assumed)
            .insert(key.clone(), Assumed { uid: uid_of(pod).to_string(), node: node.to_string(), bound_at: None });
    }

    fn bound(&self, key: &ObjectKey) {
        if let Some(a) = lock(&self.assumed).get_mut(key) {
            a.bound_at = Some(Instant::now());
        }
    }

    fn forget(&self, key: &ObjectKey) {
        lock(&self.assumed).remove(key);
    }

    /// Records one more failed attempt; returns the back-off before the
    /// next.
    fn failed(&self, key: &ObjectKey) -> Duration {
        let mut all = lock(&self.unschedulable);
        let attempts = all.entry(key.clone()).or_default();
        *attempts = attempts.saturating_add(1);
        BACKOFF_FIRST.saturating_mul(1 << (*attempts - 1).min(6)).min(BACKOFF_MAX)
    }

    fn schedulable(&self, key: &ObjectKey) {
        lock(&self.unschedulable).remove(key);
    }

    /// Queues every pod waiting for room.
    fn retry_unschedulable(&self, queue: &Queue) {
        let keys: Vec<ObjectKey> = lock(&self.unschedulable).keys().cloned().collect();
        for key in keys {
            queue.add(key);
        }
    }
}

/// What of a node can change where pods fit: a node update that changes
/// none of it (a heartbeat) does not retry unschedulable pods.
#[derive(Clone, Debug, PartialEq)]
struct NodeFacts {
    labels: BTreeMap<String, String>,
    unschedulable: bool,
    taints: Vec<(String, Option<String>, String)>,
    ready: Option<String>,
    allocatable: BTreeMap<String, String>,
}

impl NodeFacts {
    fn of(node: &Node) -> NodeFacts {
        let spec = node.spec.as_ref();
        let status = node.status.as_ref();
        NodeFacts {
            labels: node.metadata.labels.clone().unwrap_or_default(),
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            taints: spec
                .and_then(|s| s.taints.as_ref())
                .map(|t| t.iter().map(|t| (t.key.clone(), t.value.clone(), t.effect.clone())).collect())
                .unwrap_or_default(),
            ready: status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .map(|c| c.status.clone()),
            allocatable: status
                .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()))
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
                .unwrap_or_default(),
        }
    }
}

/// Everything a scheduling pass needs.
#[derive(Clone)]
struct Scheduler {
    inf: Arc<Informers>,
    client: Client,
    recorder: Recorder,
    queue: Queue,
    cache: Cache,
    bindings: Arc<Semaphore>,
}

/// Runs the scheduler.
pub fn spawn(inf: Arc<Informers>, client: Client, recorder: Recorder) {
    let s = Scheduler {
        inf,
        client,
        recorder,
        queue: Queue::default(),
        cache: Cache::default(),
        bindings: Arc::new(Semaphore::new(MAX_BINDINGS)),
    };
    feed_pods(&s);
    feed_nodes(&s);
    tokio::spawn(async move {
        s.inf.wait_synced().await;
        loop {
            let mut keys = vec![s.queue.next().await];
            while keys.len() < BATCH && !s.queue.is_empty() {
                keys.push(s.queue.next().await);
            }
            let pods = s.inf.pods.store();
            let mut snapshot = s.cache.snapshot(&s.inf.nodes.store().state(), &pods);
            for key in keys {
                s.schedule_one(&mut snapshot, &pods, &key).await;
                s.queue.done(&key);
            }
        }
    });
}

/// Queues pods waiting to be scheduled; retries unschedulable pods when a
/// bound pod goes away or finishes (it frees room).
fn feed_pods(s: &Scheduler) {
    let mut sub = s.inf.pods.subscribe();
    let store = s.inf.pods.store();
    let (queue, cache) = (s.queue.clone(), s.cache.clone());
    tokio::spawn(async move {
        while let Some(n) = sub.recv().await {
            match n {
                Notification::Resync => {
                    for pod in store.state() {
                        if scheduler::wants_scheduling(&pod)
                            && let Some(key) = ObjectKey::of(pod.as_ref())
                        {
                            queue.add(key);
                        }
                    }
                    cache.retry_unschedulable(&queue);
                }
                Notification::Changed(c) => {
                    let bound =
                        c.object.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
                    match c.kind {
                        ChangeKind::Applied if scheduler::wants_scheduling(&c.object) => queue.add(c.key),
                        ChangeKind::Applied if bound && scheduler::is_terminal(&c.object) => {
                            cache.retry_unschedulable(&queue);
                        }
                        ChangeKind::Applied => cache.schedulable(&c.key),
                        ChangeKind::Deleted => {
                            cache.schedulable(&c.key);
                            cache.forget(&c.key);
                            if bound {
                                cache.retry_unschedulable(&queue);
                            }
                        }
                    }
                }
            }
        }
    });
}

/// Retries unschedulable pods when a node appears, goes, or changes where
/// pods may fit.
fn feed_nodes(s: &Scheduler) {
    let mut sub = s.inf.nodes.subscribe();
    let (queue, cache) = (s.queue.clone(), s.cache.clone());
    tokio::spawn(async move {
        let mut known: HashMap<ObjectKey, NodeFacts> = HashMap::new();
        while let Some(n) = sub.recv().await {
            let changed = match n {
                Notification::Resync => true,
                Notification::Changed(c) if c.kind == ChangeKind::Deleted => known.remove(&c.key).is_some(),
                Notification::Changed(c) => {
                    let facts = NodeFacts::of(&c.object);
                    known.insert(c.key, facts.clone()) != Some(facts)
                }
            };
            if changed {
                cache.retry_unschedulable(&queue);
            }
        }
    });
}

impl Scheduler {
    async fn schedule_one(&self, snapshot: &mut Snapshot, pods: &Store<Pod>, key: &ObjectKey) {
        let Some(pod) = pods.get(key) else {
            self.cache.schedulable(key);
            return;
        };
        if !scheduler::wants_scheduling(&pod) {
            self.cache.schedulable(key);
            return;
        }
        if self.cache.is_assumed(key, &pod) {
            return;
        }
        match snapshot.schedule(&pod) {
            Ok(node) => {
                snapshot.assume(&pod, &node);
                self.cache.assume(key, &pod, &node);
                self.cache.schedulable(key);
                // Bounded: when the API server is slow, deciding waits.
                let Ok(permit) = self.bindings.clone().acquire_owned().await else { return };
                let (this, key) = (self.clone(), key.clone());
                // The Scheduled events of a burst wait for its bindings.
                let hold = svcnet_client::events::hold();
                tokio::spawn(async move {
                    this.bind(&key, &pod, &node).await;
                    drop((permit, hold));
                });
            }
            Err(fit) => {
                let backoff = self.cache.failed(key);
                self.queue.add_after(key.clone(), backoff);
                tracing::debug!(pod = ?key, reason = %fit, "pod is unschedulable");
                self.report_unschedulable(key, &pod, &fit);
            }
        }
    }

    async fn bind(&self, key: &ObjectKey, pod: &Pod, node: &str) {
        let ns = key.namespace.as_deref().unwrap_or("default");
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(key.name.clone()),
                namespace: Some(ns.to_string()),
                uid: pod.metadata.uid.clone(),
                ..ObjectMeta::default()
            },
            target: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node.to_string()),
                ..ObjectReference::default()
            },
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let result: svcnet_client::Result<serde_json::Value> =
            api.create_subresource("binding", &key.name, &PostParams::default(), &binding).await;
        match result {
            Ok(_) => {
                self.cache.bound(key);
                self.recorder.record(
                    reference("Pod", "v1", &pod.metadata),
                    EventType::Normal,
                    "Scheduled",
                    format!("Successfully assigned {ns}/{} to {node}", key.name),
                );
            }
            Err(e) => {
                self.cache.forget(key);
                // Bound elsewhere, being deleted, replaced or gone: the
                // informer will show it, and the pod's own change queues
                // it again if it still needs a node.
                if e.is_not_found() || e.is_conflict() {
                    tracing::debug!(pod = ?key, error = %e, "binding refused");
                    return;
                }
                tracing::warn!(pod = ?key, node, error = %e, "binding failed; retrying");
                self.queue.add_after(key.clone(), RETRY);
            }
        }
    }

    /// `PodScheduled=False` with reason `Unschedulable` and kube's message
    /// on the pod (written only when it changes), and a
    /// `FailedScheduling` event.
    fn report_unschedulable(&self, key: &ObjectKey, pod: &Arc<Pod>, fit: &FitError) {
        let message = fit.to_string();
        self.recorder.record(
            reference("Pod", "v1", &pod.metadata),
            EventType::Warning,
            "FailedScheduling",
            message.clone(),
        );
        let Some(next) = with_unschedulable_condition(pod, &message, Time(jiff::Timestamp::now())) else { return };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), key.namespace.as_deref().unwrap_or("default"));
        let name = key.name.clone();
        tokio::spawn(async move {
            // A conflict means the pod changed; that change queues it again.
            if let Err(e) = api.replace_status(&name, &PostParams::default(), &next).await {
                tracing::debug!(pod = name, error = %e, "writing the PodScheduled condition failed");
            }
        });
    }
}

/// The pod with `PodScheduled=False` (reason `Unschedulable`, `message`),
/// or `None` if it already says so. The transition time moves only when
/// the status does.
fn with_unschedulable_condition(pod: &Pod, message: &str, now: Time) -> Option<Pod> {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
    let existing = conditions.iter().find(|c| c.type_ == "PodScheduled");
    if let Some(c) = existing
        && c.status == "False"
        && c.reason.as_deref() == Some("Unschedulable")
        && c.message.as_deref() == Some(message)
    {
        return None;
    }
    let since = existing.filter(|c| c.status == "False").and_then(|c| c.last_transition_time.clone()).unwrap_or(now);
    let condition = PodCondition {
        type_: "PodScheduled".into(),
        status: "False".into(),
        reason: Some("Unschedulable".into()),
        message: Some(message.to_string()),
        last_transition_time: Some(since),
        ..PodCondition::default()
    };
    let mut next = pod.clone();
    let list = next.status.get_or_insert_with(Default::default).conditions.get_or_insert_with(Vec::new);
    match list.iter_mut().find(|c| c.type_ == "PodScheduled") {
        Some(c) => *c = condition,
        None => list.push(condition),
    }
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(1_700_000_000 + s).expect("in range"))
    }

    #[test]
    fn the_unschedulable_condition_is_written_only_when_it_changes() {
        let pod = Pod::default();
        let first =
            with_unschedulable_condition(&pod, "0/1 nodes are available: 1 Too many pods.", at(0)).expect("new");
        let c = &first.status.as_ref().and_then(|s| s.conditions.clone()).expect("conditions")[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_deref()),
            ("PodScheduled", "False", Some("Unschedulable"))
        );
        assert_eq!(c.last_transition_time, Some(at(0)));
        assert!(with_unschedulable_condition(&first, "0/1 nodes are available: 1 Too many pods.", at(5)).is_none());
        let other =
            with_unschedulable_condition(&first, "no nodes available to schedule pods", at(5)).expect("changed");
        let c = &other.status.as_ref().and_then(|s| s.conditions.clone()).expect("conditions")[0];
        assert_eq!(c.message.as_deref(), Some("no nodes available to schedule pods"));
        assert_eq!(c.last_transition_time, Some(at(0)), "still False: the transition time stays");
    }

    #[test]
    fn back_off_doubles_up_to_its_cap() {
        let cache = Cache::default();
        let key = ObjectKey::namespaced("default", "p");
        let delays: Vec<u64> = (0..9).map(|_| cache.failed(&key).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        cache.schedulable(&key);
        assert_eq!(cache.failed(&key), BACKOFF_FIRST);
    }

    #[test]
    fn a_node_heartbeat_does_not_count_as_a_change() {
        let mut node = Node::default();
        let before = NodeFacts::of(&node);
        node.metadata.resource_version = Some("2".into());
        assert_eq!(NodeFacts::of(&node), before);
        node.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
        assert_ne!(NodeFacts::of(&node), before);
    }
}
