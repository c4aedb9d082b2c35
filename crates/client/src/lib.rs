//! svcnet's Kubernetes API client, used by every component that talks to an
//! API server (svcnet's own or a real kube-apiserver).
//!
//! Start with a [`Config`] (from a kubeconfig or the in-cluster service
//! account) and a [`Client`]; [`Api<K>`] gives the REST verbs on any
//! k8s-openapi type; [`Api::watch`] streams [`WatchEvent`]s; a
//! [`Reflector<K>`] keeps a [`Store<K>`] in sync with the server and tells
//! [`Subscription`]s what changed, which is what controllers run on.
//!
//! ```no_run
//! # async fn demo() -> Result<(), svcnet_client::Error> {
//! use k8s_openapi::api::core::v1::Pod;
//! use svcnet_client::{Api, Client, Config, Notification, Reflector, ReflectorConfig};
//!
//! let client = Client::new(Config::infer()?)?.with_user_agent("svcnet-agent/0.1.0")?;
//! let pods = Reflector::new(Api::<Pod>::all(client), ReflectorConfig::default().fields("spec.nodeName=node-1"));
//! let mut changes = pods.subscribe();
//! let pods = pods.spawn();
//! while let Some(n) = changes.recv().await {
//!     match n {
//!         Notification::Resync => { /* reconcile everything in pods.store() */ }
//!         Notification::Changed(change) => { /* reconcile change.key */ }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Modules: [`config`] (kubeconfig, in-cluster), `transport` (the shared
//! HTTP/2 connection), `client`, `api`, `params`, `watch`, `store`,
//! `reflector`, `error`.

mod api;
mod client;
pub mod config;
mod error;
pub mod events;
mod params;
mod reflector;
mod store;
mod tls;
mod transport;
mod watch;

pub use api::{Api, Deleted, Object, ObjectList};
pub use client::Client;
pub use config::{Auth, Config, ConfigError, Identity};
pub use error::{ApiError, Error, Result};
pub use params::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy, WatchParams,
};
pub use reflector::{
    Backoff, Change, ChangeKind, Notification, Reflector, ReflectorConfig, ReflectorHandle, Subscription,
};
pub use store::{ObjectKey, Snapshot, Store};
pub use watch::{WatchEvent, WatchStream};
