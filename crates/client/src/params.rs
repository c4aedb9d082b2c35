//! Options of the API verbs, and how they become query parameters and
//! bodies.

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// Options of a list: selectors and paging.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    /// e.g. `app=web,tier!=cache`.
    pub label_selector: Option<String>,
    /// e.g. `spec.nodeName=node-1`.
    pub field_selector: Option<String>,
    /// At most this many items per page (the server may return fewer).
    pub limit: Option<u32>,
    /// The `continue` token of the previous page.
    pub continue_token: Option<String>,
}

impl ListParams {
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.to_string());
        self
    }

    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = Some(selector.to_string());
        self
    }

    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn continue_token(mut self, token: &str) -> Self {
        self.continue_token = Some(token.to_string());
        self
    }

    pub(crate) fn query(&self) -> Query {
        let mut q = Query::default();
        q.opt("labelSelector", self.label_selector.as_deref());
        q.opt("fieldSelector", self.field_selector.as_deref());
        q.opt("limit", self.limit.map(|l| l.to_string()).as_deref());
        q.opt("continue", self.continue_token.as_deref());
        q
    }
}

/// Options of a watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchParams {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    /// The server ends the watch after this long (its default otherwise).
    pub timeout_seconds: Option<u32>,
    /// Ask for BOOKMARK events, which advance the resourceVersion to resume
    /// from without any object changing.
    pub bookmarks: bool,
}

impl WatchParams {
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.to_string());
        self
    }

    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = Some(selector.to_string());
        self
    }

    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout_seconds = Some(seconds);
        self
    }

    pub fn bookmarks(mut self) -> Self {
        self.bookmarks = true;
        self
    }

    pub(crate) fn query(&self, resource_version: &str) -> Query {
        let mut q = Query::default();
        q.push("watch", "true");
        q.opt("labelSelector", self.label_selector.as_deref());
        q.opt("fieldSelector", self.field_selector.as_deref());
        q.opt("timeoutSeconds", self.timeout_seconds.map(|t| t.to_string()).as_deref());
        if self.bookmarks {
            q.push("allowWatchBookmarks", "true");
        }
        if !resource_version.is_empty() {
            q.push("resourceVersion", resource_version);
        }
        q
    }
}

/// Options of create and replace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostParams {
    /// Validate and default, but do not persist.
    pub dry_run: bool,
    /// Overrides the client's field manager.
    pub field_manager: Option<String>,
}

impl PostParams {
    pub(crate) fn query(&self, default_manager: &str) -> Query {
        let mut q = Query::default();
        if self.dry_run {
            q.push("dryRun", "All");
        }
        q.push("fieldManager", self.field_manager.as_deref().unwrap_or(default_manager));
        q
    }
}

/// Options of a patch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatchParams {
    pub dry_run: bool,
    /// Take ownership of fields other managers own (server-side apply only).
    pub force: bool,
    /// Overrides the client's field manager.
    pub field_manager: Option<String>,
}

impl PatchParams {
    /// Server-side apply as `manager`.
    pub fn apply(manager: &str) -> Self {
        PatchParams { field_manager: Some(manager.to_string()), ..PatchParams::default() }
    }

    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }

    pub(crate) fn query(&self, default_manager: &str, apply: bool) -> Query {
        let mut q = Query::default();
        if self.dry_run {
            q.push("dryRun", "All");
        }
        // kube-apiserver refuses force on anything but apply patches.
        if self.force && apply {
            q.push("force", "true");
        }
        q.push("fieldManager", self.field_manager.as_deref().unwrap_or(default_manager));
        q
    }
}

/// A patch, by kind.
#[derive(Clone, Debug)]
pub enum Patch<P: Serialize> {
    /// Server-side apply: `P` is the fully specified intent of the manager.
    Apply(P),
    /// JSON merge patch (RFC 7386).
    Merge(P),
    /// Kubernetes strategic merge patch (lists merge by their keys).
    Strategic(P),
    /// JSON patch (RFC 6902): an array of operations.
    Json(Value),
}

impl<P: Serialize> Patch<P> {
    pub(crate) fn content_type(&self) -> &'static str {
        match self {
            Patch::Apply(_) => "application/apply-patch+yaml",
            Patch::Merge(_) => "application/merge-patch+json",
            Patch::Strategic(_) => "application/strategic-merge-patch+json",
            Patch::Json(_) => "application/json-patch+json",
        }
    }

    pub(crate) fn is_apply(&self) -> bool {
        matches!(self, Patch::Apply(_))
    }

    /// The body; JSON is valid YAML, so apply patches go out as JSON too.
    pub(crate) fn body(&self) -> Result<Vec<u8>> {
        let encoded = match self {
            Patch::Apply(p) | Patch::Merge(p) | Patch::Strategic(p) => serde_json::to_vec(p),
            Patch::Json(ops) => serde_json::to_vec(ops),
        };
        encoded.map_err(Error::Encode)
    }
}

/// What happens to an object's dependents when it is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropagationPolicy {
    Orphan,
    Background,
    Foreground,
}

/// Conditions the object must still meet for a delete to go ahead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

/// Options of a delete, sent as a `DeleteOptions` body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteParams {
    pub dry_run: bool,
    pub grace_period_seconds: Option<u32>,
    pub propagation_policy: Option<PropagationPolicy>,
    pub preconditions: Option<Preconditions>,
}

impl DeleteParams {
    pub fn background() -> Self {
        DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..DeleteParams::default() }
    }

    pub fn foreground() -> Self {
        DeleteParams { propagation_policy: Some(PropagationPolicy::Foreground), ..DeleteParams::default() }
    }

    pub fn orphan() -> Self {
        DeleteParams { propagation_policy: Some(PropagationPolicy::Orphan), ..DeleteParams::default() }
    }

    pub fn grace_period(mut self, seconds: u32) -> Self {
        self.grace_period_seconds = Some(seconds);
        self
    }

    pub fn preconditions(mut self, preconditions: Preconditions) -> Self {
        self.preconditions = Some(preconditions);
        self
    }

    pub(crate) fn body(&self) -> Value {
        let mut body = json!({ "kind": "DeleteOptions", "apiVersion": "v1" });
        if self.dry_run {
            body["dryRun"] = json!(["All"]);
        }
        if let Some(g) = self.grace_period_seconds {
            body["gracePeriodSeconds"] = json!(g);
        }
        if let Some(p) = self.propagation_policy {
            body["propagationPolicy"] = json!(match p {
                PropagationPolicy::Orphan => "Orphan",
                PropagationPolicy::Background => "Background",
                PropagationPolicy::Foreground => "Foreground",
            });
        }
        if let Some(pre) = &self.preconditions {
            let mut p = json!({});
            if let Some(uid) = &pre.uid {
                p["uid"] = json!(uid);
            }
            if let Some(rv) = &pre.resource_version {
                p["resourceVersion"] = json!(rv);
            }
            body["preconditions"] = p;
        }
        body
    }
}

/// A query string under construction, percent-encoding every value.
#[derive(Clone, Debug, Default)]
pub(crate) struct Query(String);

impl Query {
    pub(crate) fn push(&mut self, key: &str, value: &str) {
        self.0.push(if self.0.is_empty() { '?' } else { '&' });
        self.0.push_str(key);
        self.0.push('=');
        encode_into(&mut self.0, value);
    }

    fn opt(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            self.push(key, v);
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
pub(crate) fn encode_into(out: &mut String, value: &str) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_percent_encoded() {
        let q = ListParams::default().labels("app in (a, b),!x").fields("spec.nodeName=n1").limit(5).query();
        assert_eq!(
            q.as_str(),
            "?labelSelector=app%20in%20%28a%2C%20b%29%2C%21x&fieldSelector=spec.nodeName%3Dn1&limit=5"
        );
    }

    #[test]
    fn watch_queries_carry_the_resource_version_and_bookmarks() {
        let q = WatchParams::default().timeout(290).bookmarks().query("42");
        assert_eq!(q.as_str(), "?watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=42");
    }

    #[test]
    fn force_is_only_sent_with_apply_patches() {
        let p = PatchParams::apply("me").force();
        assert_eq!(p.query("default", true).as_str(), "?force=true&fieldManager=me");
        assert_eq!(p.query("default", false).as_str(), "?fieldManager=me");
        assert_eq!(PatchParams::default().query("ctrl", false).as_str(), "?fieldManager=ctrl");
    }

    #[test]
    fn delete_params_become_delete_options() {
        let body = DeleteParams::foreground()
            .grace_period(0)
            .preconditions(Preconditions { uid: Some("u1".into()), resource_version: None })
            .body();
        assert_eq!(
            body,
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                   "propagationPolicy": "Foreground", "preconditions": {"uid": "u1"}})
        );
    }
}
