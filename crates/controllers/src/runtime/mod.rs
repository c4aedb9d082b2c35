//! The controller manager's runtime: shared informers for the kinds the
//! controllers read, and one task group per controller, all talking to the
//! API server through [`svcnet_client`]. Start at [`ControllerManager`].

mod daemonsets;
mod events;
mod gc;
mod loadbalancer;
mod owned;
mod queue;
mod scheduler;
mod services;
mod statefulsets;
mod workloads;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use svcnet_client::{Api, Client, Reflector, ReflectorConfig, ReflectorHandle};

pub use events::{EventType, Recorder};
pub use queue::Queue;

/// Informers shared by every controller: one list+watch per kind.
pub struct Informers {
    pub services: ReflectorHandle<Service>,
    pub pods: ReflectorHandle<Pod>,
    pub endpoints: ReflectorHandle<Endpoints>,
    pub slices: ReflectorHandle<EndpointSlice>,
    pub nodes: ReflectorHandle<Node>,
    pub deployments: ReflectorHandle<Deployment>,
    pub replicasets: ReflectorHandle<ReplicaSet>,
    pub statefulsets: ReflectorHandle<StatefulSet>,
    pub daemonsets: ReflectorHandle<DaemonSet>,
    pub revisions: ReflectorHandle<ControllerRevision>,
}

impl Informers {
    pub fn start(client: &Client) -> Informers {
        fn run<K>(client: &Client) -> ReflectorHandle<K>
        where
            K: svcnet_client::Object + Send + Sync + 'static,
        {
            Reflector::new(Api::<K>::all(client.clone()), ReflectorConfig::default()).spawn()
        }
        Informers {
            services: run(client),
            pods: run(client),
            endpoints: run(client),
            slices: run(client),
            nodes: run(client),
            deployments: run(client),
            replicasets: run(client),
            statefulsets: run(client),
            daemonsets: run(client),
            revisions: run(client),
        }
    }

    /// Resolves once every informer holds a complete list.
    pub async fn wait_synced(&self) {
        self.services.store().wait_synced().await;
        self.pods.store().wait_synced().await;
        self.endpoints.store().wait_synced().await;
        self.slices.store().wait_synced().await;
        self.nodes.store().wait_synced().await;
        self.deployments.store().wait_synced().await;
        self.replicasets.store().wait_synced().await;
        self.statefulsets.store().wait_synced().await;
        self.daemonsets.store().wait_synced().await;
        self.revisions.store().wait_synced().await;
    }
}

/// Settings of the controller manager, with kube-controller-manager's
/// defaults.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// `--concurrent-endpoint-syncs`.
    pub endpoint_workers: usize,
    /// `--concurrent-service-endpoint-syncs`.
    pub slice_workers: usize,
    /// `--max-endpoints-per-slice`.
    pub max_endpoints_per_slice: usize,
    /// `--concurrent-deployment-syncs`.
    pub deployment_workers: usize,
    /// `--concurrent-replicaset-syncs`.
    pub replicaset_workers: usize,
    /// `--concurrent-statefulset-syncs`.
    pub statefulset_workers: usize,
    /// `--concurrent-daemonset-syncs`.
    pub daemonset_workers: usize,
    /// The addresses the built-in LoadBalancer allocator hands out
    /// ([`crate::loadbalancer`]); `None` leaves LoadBalancer Services to
    /// another implementation. Default: [`crate::loadbalancer::DEFAULT_POOL`].
    pub lb_pool: Option<crate::loadbalancer::Pool>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            endpoint_workers: 5,
            slice_workers: 5,
            max_endpoints_per_slice: crate::endpointslice::DEFAULT_MAX_ENDPOINTS_PER_SLICE,
            deployment_workers: 5,
            replicaset_workers: 5,
            statefulset_workers: 5,
            daemonset_workers: 2,
            lb_pool: Some(crate::loadbalancer::default_pool()),
        }
    }
}

/// A running set of controllers; dropping it stops them with the
/// informers they read.
pub struct ControllerManager {
    pub informers: Arc<Informers>,
}

impl ControllerManager {
    /// Starts every controller against the API server `client` talks to.
    /// Each resyncs everything from its informers at start, so the manager
    /// is safe to restart at any moment.
    pub fn start(client: Client, config: ControllerConfig) -> ControllerManager {
        let informers = Arc::new(Informers::start(&client));
        let recorder = Recorder::new(client.clone(), "svcnet-controller-manager");
        services::spawn_endpoints(informers.clone(), client.clone(), config.endpoint_workers);
        services::spawn_endpointslices(
            informers.clone(),
            client.clone(),
            config.slice_workers,
            config.max_endpoints_per_slice,
        );
        services::spawn_mirroring(informers.clone(), client.clone());
        workloads::spawn_replicasets(informers.clone(), client.clone(), recorder.clone(), config.replicaset_workers);
        statefulsets::spawn(informers.clone(), client.clone(), recorder.clone(), config.statefulset_workers);
        daemonsets::spawn(informers.clone(), client.clone(), recorder.clone(), config.daemonset_workers);
        workloads::spawn_deployments(informers.clone(), client.clone(), recorder, config.deployment_workers);
        // kube-scheduler runs beside the controller manager; here it is
        // one more controller, reporting events as `default-scheduler`.
        let scheduler_events = Recorder::new(client.clone(), crate::scheduler::DEFAULT_SCHEDULER_NAME);
        scheduler::spawn(informers.clone(), client.clone(), scheduler_events);
        if let Some(pool) = config.lb_pool {
            let lb_events = Recorder::new(client.clone(), loadbalancer::COMPONENT);
            loadbalancer::spawn(informers.clone(), client.clone(), lb_events, pool);
        }
        gc::spawn(informers.clone(), client);
        ControllerManager { informers }
    }
}
