//! The LoadBalancer allocator's runtime: queue the Services that change,
//! decide their address with [`crate::loadbalancer::Allocator`], write
//! `status.loadBalancer` through the status subresource, and report
//! `IPAllocated` / `AllocationFailed` events.
//!
//! One task decides, one Service at a time, as MetalLB's controller does:
//! the allocator in memory is the truth about which address is whose, so
//! a decision never waits for the informer to show the previous write. It
//! is rebuilt from the Services' statuses once the informers have synced
//! (see [`Allocator::rebuild`]), so the controller may restart at any
//! moment. Services that got no address are retried whenever an address
//! is freed.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use svcnet_client::{Api, Client, Notification, ObjectKey, PostParams};

use super::Informers;
use super::events::{EventType, Recorder, reference};
use super::queue::Queue;
use crate::loadbalancer::{self as lb, Allocator, Outcome, Pool};

/// The events' source component.
pub const COMPONENT: &str = "svcnet-lb-allocator";

/// Retry delay after a status write failed for another reason than the
/// Service having changed or gone.
const RETRY: Duration = Duration::from_millis(500);

struct State {
    allocator: Allocator,
    /// Services that got no address: retried when one is freed.
    failed: BTreeSet<ObjectKey>,
}

#[derive(Clone)]
struct Controller {
    inf: Arc<Informers>,
    client: Client,
    recorder: Recorder,
    queue: Queue,
    state: Arc<Mutex<State>>,
}

impl Controller {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Each update is a few map operations under one lock; a panic
        // elsewhere cannot leave them half done.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs the allocator over `pool`.
pub fn spawn(inf: Arc<Informers>, client: Client, recorder: Recorder, pool: Pool) {
    let c = Controller {
        inf,
        client,
        recorder,
        queue: Queue::default(),
        state: Arc::new(Mutex::new(State { allocator: Allocator::new(pool), failed: BTreeSet::new() })),
    };
    feed(&c);
    tokio::spawn(async move {
        c.inf.wait_synced().await;
        // Take back what the statuses show, then settle every Service in
        // the allocator's order before following changes.
        let services = c.inf.services.store().state();
        let order = {
            let mut st = c.lock();
            let pool = st.allocator.pool().clone();
            let (allocator, order) = Allocator::rebuild(pool, services.iter().map(Arc::as_ref));
            st.allocator = allocator;
            order
        };
        for key in order {
            c.sync(&key).await;
        }
        loop {
            let key = c.queue.next().await;
            c.sync(&key).await;
            c.queue.done(&key);
        }
    });
}

/// Queues each Service that changes; on a re-list, every Service and every
/// key the allocator knows (one deleted meanwhile frees its address).
/// Keys queued before the start-up pass ends are worked after it.
fn feed(c: &Controller) {
    let mut sub = c.inf.services.subscribe();
    let store = c.inf.services.store();
    let c = c.clone();
    tokio::spawn(async move {
        // The first resync is the initial list, which the start-up pass
        // settles.
        let mut listed = false;
        while let Some(n) = sub.recv().await {
            match n {
                Notification::Resync if !listed => listed = true,
                Notification::Resync => {
                    c.queue.add_all(&store.state());
                    let known: Vec<ObjectKey> = {
                        let st = c.lock();
                        st.allocator.keys().chain(st.failed.iter()).cloned().collect()
                    };
                    for key in known {
                        c.queue.add(key);
                    }
                }
                Notification::Changed(change) => c.queue.add(change.key),
            }
        }
    });
}

impl Controller {
    async fn sync(&self, key: &ObjectKey) {
        let svc = self.inf.services.store().get(key);
        let decision = {
            let mut st = self.lock();
            let decision = st.allocator.sync(key, svc.as_deref());
            if matches!(decision.outcome, Outcome::Failed(_)) {
                st.failed.insert(key.clone());
            } else {
                st.failed.remove(key);
            }
            if decision.freed.is_some() {
                for waiting in st.failed.iter().filter(|k| *k != key) {
                    self.queue.add(waiting.clone());
                }
            }
            decision
        };
        let Some(svc) = svc else { return };
        if let Outcome::Failed(e) = &decision.outcome {
            tracing::debug!(service = %key, error = %e, "no LoadBalancer address");
            self.recorder.record(
                reference("Service", "v1", &svc.metadata),
                EventType::Warning,
                lb::REASON_FAILED,
                lb::failure_message(key, e),
            );
        }
        let Some(next) = lb::status_update(&svc, &decision) else { return };
        let api: Api<Service> = Api::namespaced(self.client.clone(), key.namespace.as_deref().unwrap_or("default"));
        match api.replace_status(&key.name, &PostParams::default(), &next).await {
            Ok(_) => {
                if let Outcome::Assigned(ip) = decision.outcome
                    && lb::status_ip(&svc) != Some(ip)
                {
                    self.recorder.record(
                        reference("Service", "v1", &svc.metadata),
                        EventType::Normal,
                        lb::REASON_ALLOCATED,
                        lb::assigned_message(ip),
                    );
                }
            }
            // The Service changed or went: its own notification queues it
            // again, and the allocator still holds what was decided.
            Err(e) if e.is_conflict() || e.is_not_found() => {
                tracing::debug!(service = %key, error = %e, "LoadBalancer status write refused");
            }
            Err(e) => {
                tracing::warn!(service = %key, error = %e, "writing the LoadBalancer status failed; retrying");
                self.queue.add_after(key.clone(), RETRY);
            }
        }
    }
}
