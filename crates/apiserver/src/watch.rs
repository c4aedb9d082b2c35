//! Watches: a chunked stream of `{"type":...,"object":...}` lines fed from
//! the watch cache, with selectors applied the way kube-apiserver applies
//! them (an object that stops matching is reported DELETED, one that starts
//! matching ADDED), bookmarks, and 410 Gone for a resourceVersion that is
//! too old.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};
use svcnet_api::resources::ResourceInfo;
use svcnet_store::Revision;
use tokio::sync::{broadcast, mpsc};

use crate::body::{Body, ChannelBody};
use crate::cacher::{CacheEvent, CachedObject, Cacher, EventType};
use crate::error::{ApiError, Result};
use crate::handler::Render;
use crate::registry::Registry;
use crate::request::Query;

/// How often a watch with allowWatchBookmarks gets a BOOKMARK.
const BOOKMARK_EVERY: Duration = Duration::from_secs(10);

/// A watch's filter: namespace prefix plus label and field selectors.
pub type Filter = Arc<dyn Fn(&CachedObject) -> bool + Send + Sync>;

/// Starts a watch and returns the streaming response.
pub fn serve(
    registry: &Registry,
    resource: &'static ResourceInfo,
    ns: Option<&str>,
    query: &Query,
    filter: Filter,
    render: Render,
) -> Result<Response<Body>> {
    let rv = query.get("resourceVersion").unwrap_or("");
    let send_initial = query.flag("sendInitialEvents");
    let after: Option<Revision> = match rv {
        "" | "0" => None,
        v => Some(v.parse().map_err(|_| ApiError::BadRequest(format!("invalid resource version: {v:?}")))?),
    };
    let bookmarks = query.flag("allowWatchBookmarks");
    let timeout = query.int("timeoutSeconds")?.filter(|t| *t > 0).map(|t| Duration::from_secs(t as u64));
    let timeout = timeout.unwrap_or(Duration::from_secs(1800));
    let prefix = Cacher::prefix(resource, ns);
    let caches = registry.caches.clone();
    let (tx, rx) = mpsc::channel::<Bytes>(256);

    let start = if send_initial { None } else { after };
    let cacher = caches.cacher(resource).clone();
    let subscription = cacher.subscribe(start, caches.synced());
    let include_object = svcnet_api::table::IncludeObject::from_query(query.get("includeObject"))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut encoder = Encoder { resource, render, include_object, first: true };
    tokio::spawn(async move {
        let mut sub = match subscription {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(encoder.error(&e)).await;
                return;
            }
        };
        let matches = |o: &CachedObject| o.key.starts_with(&prefix) && filter(o);
        for event in sub.replay.drain(..) {
            if let Some(line) = encoder.event(&event, &matches)
                && tx.send(line).await.is_err()
            {
                return;
            }
        }
        if send_initial && bookmarks {
            let _ = tx.send(encoder.bookmark(sub.rv, true)).await;
        }
        let mut last_rv = sub.rv;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    let rv = caches.synced().max(last_rv);
                    if tx.send(encoder.bookmark(rv, false)).await.is_err() {
                        return;
                    }
                }
                event = sub.live.recv() => match event {
                    Ok(event) => {
                        if event.rv <= last_rv {
                            continue;
                        }
                        last_rv = event.rv;
                        if let Some(line) = encoder.event(&event, &matches)
                            && tx.send(line).await.is_err() {
                                return;
                            }
                    }
                    // A watcher that cannot keep up is closed; the client
                    // resumes from its last resourceVersion, which the
                    // history still holds.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let mut resp = Response::new(ChannelBody::boxed(rx));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-cache, private"));
    Ok(resp)
}

struct Encoder {
    resource: &'static ResourceInfo,
    render: Render,
    include_object: svcnet_api::table::IncludeObject,
    first: bool,
}

impl Encoder {
    /// Encodes an event as this watcher sees it after filtering.
    fn event(&mut self, event: &CacheEvent, matches: &impl Fn(&CachedObject) -> bool) -> Option<Bytes> {
        let now = matches(&event.object);
        let before = event.prev.as_deref().is_some_and(matches);
        let kind = match (event.kind, before, now) {
            (EventType::Deleted, true, _) | (EventType::Deleted, _, true) => EventType::Deleted,
            (EventType::Deleted, false, false) => return None,
            (EventType::Added, _, true) => EventType::Added,
            (EventType::Modified, true, true) => EventType::Modified,
            (EventType::Modified, false, true) => EventType::Added,
            (EventType::Modified, true, false) => EventType::Deleted,
            _ => return None,
        };
        Some(self.line(kind.as_str(), &event.object))
    }

    fn line(&mut self, kind: &str, object: &CachedObject) -> Bytes {
        let mut out = Vec::with_capacity(object.json.len() + 32);
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"object\":");
        match self.render {
            Render::Json => out.extend_from_slice(&object.json),
            Render::Table => {
                let rv = object.rv.to_string();
                // Column definitions travel with the first event only, as
                // kube-apiserver sends them.
                let options = svcnet_api::table::TableOptions {
                    include_object: self.include_object,
                    no_headers: !self.first,
                    resource_version: &rv,
                    continue_token: None,
                    remaining_item_count: None,
                };
                let table = svcnet_api::table::table_with(
                    self.resource.kind,
                    &[&object.value()],
                    jiff::Timestamp::now(),
                    &options,
                );
                self.first = false;
                out.extend_from_slice(&serde_json::to_vec(&table).unwrap_or_default());
            }
        }
        out.extend_from_slice(b"}\n");
        Bytes::from(out)
    }

    fn bookmark(&self, rv: Revision, initial_end: bool) -> Bytes {
        let mut meta = json!({ "resourceVersion": rv.to_string(), "creationTimestamp": Value::Null });
        if initial_end {
            meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        let object = json!({ "kind": self.resource.kind, "apiVersion": self.resource.api_version(), "metadata": meta });
        let mut line = serde_json::to_vec(&json!({ "type": "BOOKMARK", "object": object })).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    fn error(&self, e: &ApiError) -> Bytes {
        let mut line = serde_json::to_vec(&json!({ "type": "ERROR", "object": e.status() })).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}
