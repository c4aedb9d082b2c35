//! The garbage collector: dependents whose owners are gone are deleted,
//! and owners deleted with `propagationPolicy: Foreground` or `Orphan`
//! (the `foregroundDeletion` / `orphan` finalizers) are finished, as
//! kube-controller-manager's garbage collector does for the kinds svcnet
//! serves: Pods owned by ReplicaSets, StatefulSets and DaemonSets, ReplicaSets by
//! Deployments, ControllerRevisions by both sets, EndpointSlices by
//! Services and Endpoints.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::json;
use svcnet_client::{
    Api, ChangeKind, Client, DeleteParams, Notification, Object, ObjectKey, Patch, PatchParams, Preconditions,
};

use super::Informers;

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";

/// Runs the garbage collector. A pass scans everything, so it runs only
/// when something can have made garbage: an owner was deleted or is being
/// deleted, or a dependent appeared whose owner is missing; plus once after
/// the informers sync, and every minute as a safety net.
pub fn spawn(inf: Arc<Informers>, client: Client) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    macro_rules! wake_on {
        ($informer:expr, $interesting:expr) => {{
            let mut sub = $informer.subscribe();
            let tx = tx.clone();
            let inf = inf.clone();
            tokio::spawn(async move {
                while let Some(n) = sub.recv().await {
                    let wake = match &n {
                        Notification::Resync => true,
                        Notification::Changed(c) => {
                            c.kind == ChangeKind::Deleted
                                || c.object.metadata.deletion_timestamp.is_some()
                                || $interesting(&inf, &c.object.metadata)
                        }
                    };
                    if wake {
                        let _ = tx.try_send(());
                    }
                }
            });
        }};
    }
    let orphaned = |inf: &Informers, meta: &ObjectMeta| {
        meta.owner_references.iter().flatten().any(|r| owner_exists(inf, meta.namespace.as_deref(), r) == Some(false))
    };
    let never = |_: &Informers, _: &ObjectMeta| false;
    wake_on!(inf.pods, orphaned);
    wake_on!(inf.replicasets, orphaned);
    wake_on!(inf.slices, orphaned);
    wake_on!(inf.revisions, orphaned);
    wake_on!(inf.deployments, never);
    wake_on!(inf.statefulsets, never);
    wake_on!(inf.daemonsets, never);
    wake_on!(inf.services, never);
    wake_on!(inf.endpoints, never);
    tokio::spawn(async move {
        inf.wait_synced().await;
        loop {
            // Let a burst of changes settle into one pass.
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Err(e) = pass(&inf, &client).await {
                tracing::debug!(error = %e, "garbage collection pass failed; will retry");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            if let Ok(None) = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
                return;
            }
        }
    });
}

/// Whether the owner a reference names still exists (same uid).
fn owner_exists(inf: &Informers, ns: Option<&str>, r: &OwnerReference) -> Option<bool> {
    let key = ObjectKey { namespace: ns.map(str::to_string), name: r.name.clone() };
    let uid = |m: &ObjectMeta| m.uid.as_deref() == Some(r.uid.as_str());
    match (r.api_version.as_str(), r.kind.as_str()) {
        ("apps/v1", "Deployment") => Some(inf.deployments.store().get(&key).is_some_and(|o| uid(&o.metadata))),
        ("apps/v1", "ReplicaSet") => Some(inf.replicasets.store().get(&key).is_some_and(|o| uid(&o.metadata))),
        ("apps/v1", "StatefulSet") => Some(inf.statefulsets.store().get(&key).is_some_and(|o| uid(&o.metadata))),
        ("apps/v1", "DaemonSet") => Some(inf.daemonsets.store().get(&key).is_some_and(|o| uid(&o.metadata))),
        ("v1", "Service") => Some(inf.services.store().get(&key).is_some_and(|o| uid(&o.metadata))),
        ("v1", "Endpoints") => Some(inf.endpoints.store().get(&key).is_some_and(|o| uid(&o.metadata))),
        ("v1", "Pod") => Some(inf.pods.store().get(&key).is_some_and(|o| uid(&o.metadata))),
        // Owners of kinds svcnet does not serve are left alone.
        _ => None,
    }
}

fn deleting_with(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.deletion_timestamp.is_some() && meta.finalizers.as_ref().is_some_and(|f| f.iter().any(|x| x == finalizer))
}

fn owned_by(meta: &ObjectMeta, owner: &ObjectMeta) -> bool {
    let uid = owner.uid.as_deref().unwrap_or_default();
    meta.owner_references.as_ref().is_some_and(|refs| refs.iter().any(|r| r.uid == uid))
}

/// An object the collector looks at, held by reference to the informer's
/// copy.
enum Item {
    Pod(Arc<Pod>),
    ReplicaSet(Arc<ReplicaSet>),
    Slice(Arc<EndpointSlice>),
    Deployment(Arc<Deployment>),
    StatefulSet(Arc<StatefulSet>),
    DaemonSet(Arc<DaemonSet>),
    Revision(Arc<ControllerRevision>),
    Service(Arc<Service>),
    Endpoints(Arc<Endpoints>),
}

impl Item {
    fn meta(&self) -> &ObjectMeta {
        match self {
            Item::Pod(o) => &o.metadata,
            Item::ReplicaSet(o) => &o.metadata,
            Item::Slice(o) => &o.metadata,
            Item::Deployment(o) => &o.metadata,
            Item::StatefulSet(o) => &o.metadata,
            Item::DaemonSet(o) => &o.metadata,
            Item::Revision(o) => &o.metadata,
            Item::Service(o) => &o.metadata,
            Item::Endpoints(o) => &o.metadata,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Item::Pod(_) => Pod::KIND,
            Item::ReplicaSet(_) => ReplicaSet::KIND,
            Item::Slice(_) => EndpointSlice::KIND,
            Item::Deployment(_) => Deployment::KIND,
            Item::StatefulSet(_) => StatefulSet::KIND,
            Item::DaemonSet(_) => DaemonSet::KIND,
            Item::Revision(_) => ControllerRevision::KIND,
            Item::Service(_) => Service::KIND,
            Item::Endpoints(_) => Endpoints::KIND,
        }
    }
}

/// Objects that have owners.
fn dependents(inf: &Informers) -> Vec<Item> {
    let mut all = Vec::new();
    all.extend(inf.pods.store().state().into_iter().map(Item::Pod));
    all.extend(inf.replicasets.store().state().into_iter().map(Item::ReplicaSet));
    all.extend(inf.slices.store().state().into_iter().map(Item::Slice));
    all.extend(inf.revisions.store().state().into_iter().map(Item::Revision));
    all.retain(|i| i.meta().owner_references.as_ref().is_some_and(|r| !r.is_empty()));
    all
}

async fn delete_dependent(
    client: &Client,
    meta: &ObjectMeta,
    kind: &str,
    policy: DeleteParams,
) -> svcnet_client::Result<()> {
    let ns = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let params = DeleteParams {
        preconditions: meta.uid.clone().map(|uid| Preconditions { uid: Some(uid), resource_version: None }),
        ..policy
    };
    let result = match kind {
        "Pod" => Api::<Pod>::namespaced(client.clone(), &ns).delete(&name, &params).await.map(|_| ()),
        "ReplicaSet" => Api::<ReplicaSet>::namespaced(client.clone(), &ns).delete(&name, &params).await.map(|_| ()),
        "ControllerRevision" => {
            Api::<ControllerRevision>::namespaced(client.clone(), &ns).delete(&name, &params).await.map(|_| ())
        }
        _ => Api::<EndpointSlice>::namespaced(client.clone(), &ns).delete(&name, &params).await.map(|_| ()),
    };
    match result {
        Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
        other => other,
    }
}

async fn patch_meta<K>(client: &Client, meta: &ObjectMeta, patch: serde_json::Value) -> svcnet_client::Result<()>
where
    K: Object + k8s_openapi::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let ns = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    match Api::<K>::namespaced(client.clone(), &ns).patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

async fn patch_dependent(
    client: &Client,
    meta: &ObjectMeta,
    kind: &str,
    patch: serde_json::Value,
) -> svcnet_client::Result<()> {
    match kind {
        "Pod" => patch_meta::<Pod>(client, meta, patch).await,
        "ReplicaSet" => patch_meta::<ReplicaSet>(client, meta, patch).await,
        "ControllerRevision" => patch_meta::<ControllerRevision>(client, meta, patch).await,
        _ => patch_meta::<EndpointSlice>(client, meta, patch).await,
    }
}

fn without(list: Option<&Vec<String>>, item: &str) -> Vec<String> {
    list.map(|l| l.iter().filter(|x| *x != item).cloned().collect()).unwrap_or_default()
}

async fn pass(inf: &Informers, client: &Client) -> svcnet_client::Result<()> {
    let deps = dependents(inf);
    // 1. Dependents whose every (known) owner is gone.
    for item in &deps {
        let meta = item.meta();
        let refs = meta.owner_references.as_deref().unwrap_or_default();
        let all_gone = refs.iter().all(|r| owner_exists(inf, meta.namespace.as_deref(), r) == Some(false));
        if all_gone && meta.deletion_timestamp.is_none() {
            delete_dependent(client, meta, item.kind(), DeleteParams::background()).await?;
        }
    }
    // 2. Owners being deleted in the foreground or orphaning. Leaves of the
    // ownership tree can be deleted in the foreground too (a dependent of a
    // foreground deletion is); with no dependents, their finalizer goes at
    // once.
    let mut owners: Vec<Item> = Vec::new();
    owners.extend(inf.deployments.store().state().into_iter().map(Item::Deployment));
    owners.extend(inf.replicasets.store().state().into_iter().map(Item::ReplicaSet));
    owners.extend(inf.statefulsets.store().state().into_iter().map(Item::StatefulSet));
    owners.extend(inf.daemonsets.store().state().into_iter().map(Item::DaemonSet));
    owners.extend(inf.services.store().state().into_iter().map(Item::Service));
    owners.extend(inf.endpoints.store().state().into_iter().map(Item::Endpoints));
    owners.extend(inf.pods.store().state().into_iter().map(Item::Pod));
    owners.extend(inf.slices.store().state().into_iter().map(Item::Slice));
    owners.retain(|o| o.meta().deletion_timestamp.is_some());
    for owner_item in owners {
        let (owner, kind) = (owner_item.meta(), owner_item.kind());
        if deleting_with(owner, ORPHAN) {
            let uid = owner.uid.clone().unwrap_or_default();
            for dep in deps.iter().filter(|d| owned_by(d.meta(), owner)) {
                let meta = dep.meta();
                let refs: Vec<&OwnerReference> =
                    meta.owner_references.iter().flatten().filter(|r| r.uid != uid).collect();
                patch_dependent(client, meta, dep.kind(), json!({ "metadata": { "ownerReferences": refs } })).await?;
            }
            remove_finalizer(client, owner, kind, ORPHAN).await?;
        } else if deleting_with(owner, FOREGROUND) {
            let mut blocking = 0;
            for dep in deps.iter().filter(|d| owned_by(d.meta(), owner)) {
                blocking += 1;
                if dep.meta().deletion_timestamp.is_none() {
                    let params = DeleteParams {
                        propagation_policy: Some(svcnet_client::PropagationPolicy::Foreground),
                        ..DeleteParams::default()
                    };
                    delete_dependent(client, dep.meta(), dep.kind(), params).await?;
                }
            }
            if blocking == 0 {
                remove_finalizer(client, owner, kind, FOREGROUND).await?;
            }
        }
    }
    Ok(())
}

async fn remove_finalizer(
    client: &Client,
    owner: &ObjectMeta,
    kind: &str,
    finalizer: &str,
) -> svcnet_client::Result<()> {
    let patch = json!({ "metadata": {
        "finalizers": without(owner.finalizers.as_ref(), finalizer),
        "resourceVersion": owner.resource_version,
    } });
    let result = match kind {
        "Deployment" => patch_meta::<Deployment>(client, owner, patch).await,
        "ReplicaSet" => patch_meta::<ReplicaSet>(client, owner, patch).await,
        "StatefulSet" => patch_meta::<StatefulSet>(client, owner, patch).await,
        "DaemonSet" => patch_meta::<DaemonSet>(client, owner, patch).await,
        "Service" => patch_meta::<Service>(client, owner, patch).await,
        "Pod" => patch_meta::<Pod>(client, owner, patch).await,
        "EndpointSlice" => patch_meta::<EndpointSlice>(client, owner, patch).await,
        _ => patch_meta::<Endpoints>(client, owner, patch).await,
    };
    match result {
        Err(e) if e.is_conflict() => Ok(()),
        other => other,
    }
}
