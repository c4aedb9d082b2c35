//! svcnet's Kubernetes API server.
//!
//! Start at [`ApiServer::start`]. A request flows: [`server`] (TLS, client
//! certificate → [`identity`]) → [`handler`] (authorization, routing by
//! [`request`], content negotiation) → [`registry`] (object lifecycle over
//! the store, with per-kind [`strategy`]) → `svcnet_store::Store`. Reads
//! and watches are served from the [`cacher`], which follows the store.
//! Every error becomes a `metav1.Status` in [`error`].
//! Pods' `log` and `exec` are streamed from the node's agent by [`proxy`].

pub mod allocation;
mod apply;
mod binding;
mod body;
mod bootstrap;
pub mod cacher;
mod decode;
mod discovery;
pub mod error;
pub mod handler;
pub mod identity;
mod namespaces;
mod object;
mod openapi;
mod patching;
pub mod pki;
pub mod proxy;
pub mod registry;
pub mod request;
mod scale;
mod selectors;
pub mod server;
pub mod service_proxy;
pub mod strategy;
mod watch;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use svcnet_store::Store;
use tokio::sync::watch as tokio_watch;

pub use error::{ApiError, FieldCause};
pub use registry::Registry;

/// Configuration of the API server.
#[derive(Clone, Debug)]
pub struct ApiServerConfig {
    /// Where the PKI and kubeconfig live.
    pub data_dir: PathBuf,
    /// Address to listen on; kube-apiserver's secure port is 6443.
    pub bind: SocketAddr,
    /// Extra IPs the serving certificate must name (e.g. the `kubernetes`
    /// Service's cluster IP).
    pub extra_san_ips: Vec<IpAddr>,
    /// Service cluster IP and NodePort ranges.
    pub ranges: allocation::Ranges,
    /// Bearer token for node agents' streaming endpoints (`kubectl logs`,
    /// `kubectl exec`); `None` sends none.
    pub agent_token: Option<String>,
}

impl ApiServerConfig {
    pub fn new(data_dir: impl Into<PathBuf>, port: u16) -> Self {
        ApiServerConfig {
            data_dir: data_dir.into(),
            bind: SocketAddr::from(([127, 0, 0, 1], port)),
            extra_san_ips: Vec::new(),
            ranges: allocation::Ranges::default(),
            agent_token: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error(transparent)]
    Serve(#[from] server::ServeError),
    #[error("initializing the API state failed: {0}")]
    Init(#[from] ApiError),
}

/// A running API server.
pub struct ApiServer {
    pub api: Arc<handler::Api>,
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    shutdown: tokio_watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// Generates or loads the PKI, writes the admin kubeconfig, creates the
    /// built-in namespaces, and starts serving.
    pub async fn start(config: ApiServerConfig, store: Arc<dyn Store>) -> Result<ApiServer, StartError> {
        // The serving certificate also names the `kubernetes` Service's IP,
        // which pods use to reach the API server.
        let mut san_ips = config.extra_san_ips.clone();
        san_ips.push(IpAddr::V4(config.ranges.nth_ip(1)));
        let pki = pki::Pki::load_or_create(&config.data_dir.join("pki"), &san_ips)?;
        let listener = server::bind(config.bind).await?;
        let addr = listener.local_addr().map_err(|source| server::ServeError::Bind { addr: config.bind, source })?;
        let tls = server::tls_config(&pki)?;
        let registry = Registry::new(store, config.ranges.clone()).await?;
        bootstrap::ensure(&registry, addr.port()).await?;
        let api = Arc::new(handler::Api {
            registry,
            openapi: openapi::OpenApi::default(),
            address: addr.to_string(),
            agent_token: config.agent_token.clone(),
            cluster_dial: std::sync::OnceLock::new(),
        });
        let kubeconfig = config.data_dir.join("kubeconfig");
        pki::write_private(&kubeconfig, pki.admin_kubeconfig(&format!("https://{addr}")).as_bytes())?;
        let (shutdown, rx) = tokio_watch::channel(false);
        namespaces::spawn_lifecycle(api.clone(), rx.clone());
        let task = tokio::spawn(server::serve(listener, tls, api.clone(), rx));
        Ok(ApiServer { api, addr, kubeconfig, shutdown, task })
    }

    /// Stops accepting requests and closes open connections.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub(crate) async fn until_shutdown(shutdown: &mut tokio_watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it at once.
    let _ = shutdown.wait_for(|s| *s).await.is_ok();
}
