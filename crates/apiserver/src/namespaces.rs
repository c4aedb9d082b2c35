//! Namespace lifecycle: a deleted namespace is emptied and then finalized, as kube-controller-
//! manager's namespace controller does.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use svcnet_api::resources::RESOURCES;
use tokio::sync::watch;

use crate::error::{ApiError, Result};
use crate::handler::Api;
use crate::registry::{DeleteOptions, ListOptions, Registry, WriteOptions};

pub(crate) use crate::bootstrap::ns_resource;

/// Built-in namespaces that may not be deleted, as in Kubernetes.
pub const UNDELETABLE: [&str; 3] = ["default", "kube-system", "kube-public"];

/// Runs the namespace finalizer until shutdown.
pub fn spawn_lifecycle(api: Arc<Api>, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let cacher = api.registry.caches.cacher(ns_resource()).clone();
        loop {
            // Wake on any namespace change, or periodically to notice that
            // content has drained away.
            let mut live = match cacher.subscribe(Some(api.registry.caches.synced()), api.registry.caches.synced()) {
                Ok(s) => s.live,
                Err(_) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = finalize_terminating(&api.registry).await {
                tracing::warn!(error = %e, "namespace cleanup failed");
            }
            tokio::select! {
                _ = crate::until_shutdown(&mut shutdown) => return,
                _ = live.recv() => {}
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    });
}

async fn finalize_terminating(registry: &Registry) -> Result<()> {
    let all = ListOptions { filter: Box::new(|_| true), filtered: false, limit: 0, continue_token: None };
    let namespaces = registry.list(ns_resource(), None, &all).await?;
    for ns in namespaces.objects {
        if !ns.deleting {
            continue;
        }
        let mut remaining = 0;
        for r in RESOURCES.iter().filter(|r| r.namespaced) {
            let page = registry.list(r, Some(&ns.name), &all).await?;
            for o in page.objects {
                remaining += 1;
                if o.deleting {
                    continue;
                }
                let opts = DeleteOptions { propagation_policy: Some("Background".into()), ..Default::default() };
                match registry.delete(r, Some(&ns.name), &o.name, &opts).await {
                    Ok(_) | Err(ApiError::NotFound { .. }) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, namespace = %ns.name, name = %o.name, "deleting namespace content failed")
                    }
                }
            }
        }
        if remaining == 0 {
            let mut obj = ns.value();
            obj["spec"]["finalizers"] = json!([]);
            match registry.update(ns_resource(), None, &ns.name, Some("finalize"), obj, &WriteOptions::default()).await
            {
                Ok(_) | Err(ApiError::NotFound { .. }) | Err(ApiError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
