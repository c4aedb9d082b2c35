//! What the StatefulSet and DaemonSet runtimes share: finding the objects
//! a set controls, and writing a pass's revisions, pod deletions and
//! status. Not-found and conflict answers are left to the next pass,
//! which recomputes from fresher informers.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;
use svcnet_client::{Api, DeleteParams, Object, Patch, PatchParams, PostParams, Preconditions};

use super::events::{EventType, Recorder};
use crate::deployment::PodRef;

/// The objects in `ns` whose controller has uid `uid`.
pub(super) fn controlled<'a, K: Object>(all: &'a [Arc<K>], ns: &str, uid: &str) -> Vec<&'a K> {
    let mine = |meta: &ObjectMeta| {
        meta.namespace.as_deref() == Some(ns)
            && meta.owner_references.iter().flatten().any(|r| r.controller == Some(true) && r.uid == uid)
    };
    all.iter().filter(|o| mine(o.metadata())).map(|o| o.as_ref()).collect()
}

/// Creates a pass's new revisions and renumbers reused ones (before any
/// pod made from them).
pub(super) async fn write_revisions(
    api: &Api<ControllerRevision>,
    create: &[ControllerRevision],
    renumber: &[(String, i64)],
) -> svcnet_client::Result<()> {
    for rev in create {
        match api.create(&PostParams::default(), rev).await {
            Ok(_) => {}
            Err(e) if e.is_already_exists() => {}
            Err(e) => return Err(e),
        }
    }
    for (name, number) in renumber {
        api.patch(name, &PatchParams::default(), &Patch::Merge(json!({ "revision": number }))).await?;
    }
    Ok(())
}

/// Deletes revisions past the history limit.
pub(super) async fn delete_revisions(api: &Api<ControllerRevision>, names: &[String]) -> svcnet_client::Result<()> {
    for name in names {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Deletes pods (each only if it is still the one decided on: a uid
/// precondition), recording `SuccessfulDelete` with `message(name)`.
pub(super) async fn delete_pods(
    api: &Api<Pod>,
    pods: &[PodRef],
    recorder: &Recorder,
    set: &ObjectReference,
    message: impl Fn(&str) -> String,
) -> svcnet_client::Result<()> {
    for PodRef { name, uid, .. } in pods {
        let params = DeleteParams {
            preconditions: uid.clone().map(|uid| Preconditions { uid: Some(uid), resource_version: None }),
            ..DeleteParams::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => recorder.record(set.clone(), EventType::Normal, "SuccessfulDelete", message(name)),
            Err(e) if e.is_not_found() || e.is_conflict() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Replaces the set's whole status.
pub(super) async fn replace_status<K: Object>(api: &Api<K>, name: &str, next: &K) -> svcnet_client::Result<()> {
    match api.replace_status(name, &PostParams::default(), next).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
        Err(e) => Err(e),
    }
}
