//! Generic REST storage: get, list, create, update, patch and delete for
//! every resource, over the [`Store`] and the watch [`Caches`].
//!
//! This is where Kubernetes' object lifecycle rules live: metadata that
//! the server owns (uid, creationTimestamp, generation, resourceVersion),
//! optimistic concurrency, generateName, graceful deletion, finalizers and
//! deletionTimestamp, namespace existence. Kind-specific rules come from
//! [`crate::strategy`].

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use svcnet_api::resources::{self, ResourceInfo};
use svcnet_store::{Revision, Store, TxnOp};

use crate::allocation::{self, Ranges};
use crate::cacher::{CachedObject, Cacher, Caches};
use crate::error::{ApiError, FieldCause, Result};
use crate::object::{self, meta_mut, meta_str};
use crate::strategy;

/// How unknown or duplicate fields in a request body are treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> Result<Self> {
        match s {
            None | Some("") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::BadRequest(format!(
                "fieldValidation parameter {other:?} is not supported, must be one of: Ignore, Warn, Strict"
            ))),
        }
    }
}

/// Options common to every write.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub validation: FieldValidation,
    /// Who makes the change, for `metadata.managedFields`.
    pub manager: String,
    /// Record the change in managedFields as an Update by `manager`
    /// (server-side apply records its own Apply entries instead).
    pub track_managed_fields: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            dry_run: false,
            validation: FieldValidation::default(),
            manager: "kube-apiserver".into(),
            track_managed_fields: true,
        }
    }
}

/// The result of a write: the object as stored, plus warnings for the
/// client (sent as `Warning` headers).
#[derive(Debug)]
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
}

/// Options of a delete, from the query string or a DeleteOptions body.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

/// The result of a delete: the object, and whether it is gone already
/// (200) or only marked for deletion (202).
pub struct Deleted {
    pub object: Value,
    pub gone: bool,
}

/// A page of a list.
pub struct ListPage {
    pub objects: Vec<Arc<CachedObject>>,
    pub rv: Revision,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

/// Filters and paging of a list or watch.
pub struct ListOptions {
    pub filter: Box<dyn Fn(&CachedObject) -> bool + Send + Sync>,
    pub filtered: bool,
    pub limit: usize,
    pub continue_token: Option<String>,
}

/// The generic storage of all resources.
pub struct Registry {
    pub store: Arc<dyn Store>,
    pub caches: Arc<Caches>,
    pub ranges: Ranges,
    /// What validation needs to know about the cluster.
    pub validation: svcnet_api::validation::Context,
}

/// The largest number of times a write is retried after losing a race
/// with another writer, when the client did not ask for a precondition.
const MAX_RETRIES: usize = 16;

impl Registry {
    pub async fn new(store: Arc<dyn Store>, ranges: Ranges) -> Result<Registry> {
        let caches = Caches::start(store.clone()).await?;
        let validation = svcnet_api::validation::Context {
            service_cidrs: vec![(std::net::IpAddr::V4(ranges.service_cidr.0), ranges.service_cidr.1)],
            node_port_range: ranges.node_ports,
        };
        Ok(Registry { store, caches, ranges, validation })
    }

    /// Writes a new object together with the allocation keys it owns.
    async fn commit_create(
        &self,
        resource: &ResourceInfo,
        key: &str,
        obj: &Value,
    ) -> Result<Revision, svcnet_store::Error> {
        let owned = allocation::owned_keys(resource, obj);
        let value = encode(obj).map_err(|e| svcnet_store::Error::Corrupt(e.to_string()))?;
        if owned.is_empty() {
            return self.store.create(key, value).await;
        }
        let mut ops = vec![TxnOp::Create { key: key.to_string(), value }];
        ops.extend(owned.into_iter().map(|k| TxnOp::Create { key: k, value: allocation::key_value(obj) }));
        self.store.txn(ops).await
    }

    /// Replaces an object, taking and releasing allocation keys as its
    /// owned set changes, all in one transaction.
    async fn commit_update(
        &self,
        resource: &ResourceInfo,
        key: &str,
        obj: &Value,
        old: &Value,
        expected: Revision,
    ) -> Result<Revision, svcnet_store::Error> {
        let new_keys = allocation::owned_keys(resource, obj);
        let old_keys = allocation::owned_keys(resource, old);
        let value = encode(obj).map_err(|e| svcnet_store::Error::Corrupt(e.to_string()))?;
        if new_keys == old_keys {
            return self.store.update(key, value, expected).await;
        }
        let mut ops = vec![TxnOp::Update { key: key.to_string(), value, expected }];
        ops.extend(
            new_keys.difference(&old_keys).map(|k| TxnOp::Create { key: k.clone(), value: allocation::key_value(obj) }),
        );
        ops.extend(old_keys.difference(&new_keys).map(|k| TxnOp::Delete { key: k.clone(), expected: None }));
        self.store.txn(ops).await
    }

    /// Removes an object and releases everything it had allocated.
    async fn commit_delete(
        &self,
        resource: &ResourceInfo,
        key: &str,
        old: &Value,
        expected: Revision,
    ) -> Result<Revision, svcnet_store::Error> {
        let owned = allocation::owned_keys(resource, old);
        if owned.is_empty() {
            return self.store.delete(key, Some(expected)).await.map(|kv| kv.mod_revision);
        }
        let mut ops = vec![TxnOp::Delete { key: key.to_string(), expected: Some(expected) }];
        ops.extend(owned.into_iter().map(|k| TxnOp::Delete { key: k, expected: None }));
        self.store.txn(ops).await
    }

    fn not_found(resource: &ResourceInfo, name: &str) -> ApiError {
        ApiError::not_found(resource.group, resource.plural, name)
    }

    /// The current object, read consistently (after every acknowledged write).
    pub async fn get(
        &self,
        resource: &'static ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Arc<CachedObject>> {
        self.caches.wait_fresh().await?;
        self.caches
            .cacher(resource)
            .get(&Cacher::key(resource, ns, name))
            .ok_or_else(|| Self::not_found(resource, name))
    }

    /// Lists objects, optionally in one namespace, filtered and paged.
    pub async fn list(
        &self,
        resource: &'static ResourceInfo,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListPage> {
        let synced = self.caches.wait_fresh().await?;
        let prefix = Cacher::prefix(resource, ns);
        let start_after = match &opts.continue_token {
            Some(token) => Some(decode_continue(token, &prefix)?),
            None => None,
        };
        let cacher = self.caches.cacher(resource);
        let (snapshot, more) = cacher.list(&prefix, start_after.as_deref(), opts.limit, synced, |o| (opts.filter)(o));
        let (continue_token, remaining) = match (more, snapshot.objects.last()) {
            (true, Some(last)) => {
                let remaining = if opts.filtered {
                    None
                } else {
                    let (rest, _) = cacher.list(&prefix, Some(&last.key), 0, synced, |_| true);
                    Some(rest.objects.len())
                };
                (Some(encode_continue(snapshot.rv, &last.key, &prefix)), remaining)
            }
            _ => (None, None),
        };
        Ok(ListPage { objects: snapshot.objects, rv: snapshot.rv, continue_token, remaining })
    }

    /// kube-apiserver's DefaultIngressClass admission: a new Ingress that
    /// names no class (neither `spec.ingressClassName` nor the legacy
    /// `kubernetes.io/ingress.class` annotation) gets the default
    /// IngressClass's name, the most recently created one if several are
    /// marked default (as Kubernetes 1.28 and later choose).
    fn default_ingress_class(&self, obj: &mut Value) {
        if obj.pointer("/spec/ingressClassName").is_some_and(|v| !v.is_null())
            || obj.pointer("/metadata/annotations/kubernetes.io~1ingress.class").is_some()
        {
            return;
        }
        let Some(classes) = resources::by_plural("networking.k8s.io", "ingressclasses") else {
            return;
        };
        let prefix = Cacher::prefix(classes, None);
        let (snapshot, _) = self.caches.cacher(classes).list(&prefix, None, 0, self.caches.synced(), |_| true);
        let default = snapshot
            .objects
            .iter()
            .map(|o| o.value())
            .filter(|c| {
                c.pointer("/metadata/annotations/ingressclass.kubernetes.io~1is-default-class").and_then(Value::as_str)
                    == Some("true")
            })
            .max_by(|a, b| {
                let created =
                    |c: &Value| c.pointer("/metadata/creationTimestamp").and_then(Value::as_str).map(str::to_owned);
                created(a).cmp(&created(b))
            });
        if let Some(name) = default.as_ref().and_then(|c| c.pointer("/metadata/name")).and_then(Value::as_str) {
            if !obj.get("spec").is_some_and(Value::is_object) {
                obj["spec"] = json!({});
            }
            obj["spec"]["ingressClassName"] = json!(name);
        }
    }

    /// Checks that a namespaced object may be written into `ns`.
    async fn check_namespace(&self, ns: &str, creating: bool) -> Result<()> {
        let nsres = namespaces();
        match self.caches.cacher(nsres).get(&Cacher::key(nsres, None, ns)) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(o) if creating && o.deleting => Err(ApiError::Forbidden(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Creates an object from a request body.
    pub async fn create(
        &self,
        resource: &'static ResourceInfo,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written> {
        let warnings = check_body(resource, &obj, opts.validation)?;
        let strategy = strategy::for_resource(resource);
        let generate_name;
        {
            let Some(meta) = meta_mut(&mut obj) else {
                return Err(ApiError::BadRequest("the body of the request is not a JSON object".into()));
            };
            match (resource.namespaced, ns, meta.get("namespace").and_then(Value::as_str)) {
                (true, Some(url), Some(body)) if !body.is_empty() && body != url => {
                    return Err(ApiError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".into(),
                    ));
                }
                (true, Some(url), _) => {
                    meta.insert("namespace".into(), json!(url));
                }
                (true, None, _) => return Err(ApiError::NoRoute),
                (false, _, _) => {
                    meta.remove("namespace");
                }
            }
            if meta.get("resourceVersion").and_then(Value::as_str).is_some_and(|rv| !rv.is_empty()) {
                return Err(ApiError::BadRequest("resourceVersion should not be set on objects to be created".into()));
            }
            generate_name = meta.get("generateName").and_then(Value::as_str).unwrap_or("").to_string();
            let name = meta.get("name").and_then(Value::as_str).unwrap_or("").to_string();
            if name.is_empty() && generate_name.is_empty() {
                return Err(ApiError::invalid(
                    resource.group,
                    resource.kind,
                    "",
                    vec![FieldCause::required("metadata.name", "name or generateName is required")],
                ));
            }
            for field in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
                meta.remove(field);
            }
            meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            meta.insert("creationTimestamp".into(), json!(object::now_rfc3339()));
            if strategy::tracks_generation(resource) {
                meta.insert("generation".into(), json!(1));
            } else {
                meta.remove("generation");
            }
        }
        set_type_meta(resource, &mut obj);
        if let Some(ns) = ns {
            self.caches.wait_fresh().await?;
            self.check_namespace(ns, true).await?;
        }
        svcnet_api::defaults::apply(resource.kind, &mut obj);
        if resource.group == "networking.k8s.io" && resource.plural == "ingresses" {
            self.default_ingress_class(&mut obj);
        }
        strategy.prepare_for_create(resource, &mut obj);
        if opts.track_managed_fields {
            let now = object::now_rfc3339();
            svcnet_api::managed::track_update(None, &mut obj, &opts.manager, None, resource.definition, &now);
        }

        let attempts = if generate_name.is_empty() { 1 } else { 8 };
        for _ in 0..attempts {
            if !generate_name.is_empty() {
                let prefix: String = generate_name.chars().take(object::MAX_GENERATED_PREFIX).collect();
                if let Some(meta) = meta_mut(&mut obj) {
                    meta.insert("name".into(), json!(format!("{prefix}{}", object::name_suffix())));
                }
            }
            let name = meta_str(&obj, "name").to_string();
            let mut causes: Vec<FieldCause> = strategy::name_errors(resource, &name)
                .into_iter()
                .map(|m| FieldCause::invalid("metadata.name", &json!(name), m))
                .collect();
            causes.extend(metadata_causes(&obj));
            causes.extend(strategy.validate(resource, &obj, &self.validation));
            if !causes.is_empty() {
                return Err(ApiError::invalid(resource.group, resource.kind, &name, causes));
            }
            allocation::allocate(self.store.as_ref(), &self.ranges, resource, &mut obj, None).await?;
            if opts.dry_run {
                return Ok(Written { object: obj, warnings });
            }
            let key = Cacher::key(resource, ns, &name);
            match self.commit_create(resource, &key, &obj).await {
                Ok(rev) => {
                    set_rv(&mut obj, rev);
                    return Ok(Written { object: obj, warnings });
                }
                Err(svcnet_store::Error::AlreadyExists(k)) if k != key => {
                    return Err(allocation::taken_error(resource, &obj, &k));
                }
                Err(svcnet_store::Error::AlreadyExists(_)) if !generate_name.is_empty() => continue,
                Err(svcnet_store::Error::AlreadyExists(_)) => {
                    return Err(ApiError::AlreadyExists {
                        group: resource.group.into(),
                        kind: resource.plural.into(),
                        name,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::AlreadyExists {
            group: resource.group.into(),
            kind: resource.plural.into(),
            name: meta_str(&obj, "name").into(),
        })
    }

    /// Replaces an object (PUT), on the main resource or a subresource.
    /// Returns the written object and whether it was created.
    pub async fn update(
        &self,
        resource: &'static ResourceInfo,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<(Written, bool)> {
        let warnings = check_body(resource, &obj, opts.validation)?;
        let body_name = meta_str(&obj, "name");
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let precondition = meta_str(&obj, "resourceVersion").to_string();
        for _ in 0..MAX_RETRIES {
            let current = match self.get(resource, ns, name).await {
                Ok(c) => c,
                Err(ApiError::NotFound { .. }) if allows_create_on_update(resource) && sub.is_none() => {
                    let mut obj = obj.clone();
                    if let Some(meta) = meta_mut(&mut obj) {
                        meta.insert("name".into(), json!(name));
                        meta.remove("resourceVersion");
                    }
                    return self.create(resource, ns, obj, opts).await.map(|w| (w, true));
                }
                Err(e) => return Err(e),
            };
            if !precondition.is_empty() && precondition != current.rv.to_string() {
                return Err(ApiError::conflict_modified(resource.group, resource.plural, name));
            }
            let old = current.value();
            match self.write_update(resource, ns, name, sub, obj.clone(), &current, &old, opts).await {
                Err(ApiError::Conflict { .. }) if precondition.is_empty() => continue,
                Ok(mut w) => {
                    w.warnings.extend(warnings);
                    return Ok((w, false));
                }
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::conflict_modified(resource.group, resource.plural, name))
    }

    /// Applies `patch` to the current object with `apply` and writes the
    /// result, retrying when another writer got there first (unless the
    /// patch itself carries a resourceVersion precondition).
    pub async fn patch(
        &self,
        resource: &'static ResourceInfo,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        opts: &WriteOptions,
        apply: impl Fn(&Value) -> Result<Value>,
    ) -> Result<Written> {
        for _ in 0..MAX_RETRIES {
            let current = self.get(resource, ns, name).await?;
            let old = current.value();
            let patched = apply(&old)?;
            let warnings = check_body(resource, &patched, opts.validation)?;
            let precondition = meta_str(&patched, "resourceVersion").to_string();
            if precondition != current.rv.to_string() {
                return Err(ApiError::conflict_modified(resource.group, resource.plural, name));
            }
            if meta_str(&patched, "name") != name {
                return Err(ApiError::BadRequest(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta_str(&patched, "name")
                )));
            }
            // A lost race is retried from a fresh read: a patch that named
            // a resourceVersion then fails its precondition above.
            match self.write_update(resource, ns, name, sub, patched, &current, &old, opts).await {
                Err(ApiError::Conflict { .. }) => continue,
                Ok(mut w) => {
                    w.warnings.extend(warnings);
                    return Ok(w);
                }
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::conflict_modified(resource.group, resource.plural, name))
    }

    /// The common tail of update and patch: carry over server-owned
    /// metadata, apply the strategy, validate, and compare-and-swap.
    /// `old` is `current`'s object (decoded once by the caller).
    #[allow(clippy::too_many_arguments)]
    async fn write_update(
        &self,
        resource: &'static ResourceInfo,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        mut obj: Value,
        current: &CachedObject,
        old: &Value,
        opts: &WriteOptions,
    ) -> Result<Written> {
        let strategy = strategy::for_resource(resource);
        if !obj.is_object() {
            return Err(ApiError::BadRequest("the body of the request is not a JSON object".into()));
        }
        set_type_meta(resource, &mut obj);
        match sub {
            None => strategy.prepare_for_update(resource, &mut obj, old),
            Some("status") => strategy.prepare_for_status_update(resource, &mut obj, old),
            Some("ephemeralcontainers") if resource.plural == "pods" => {
                strategy.prepare_for_ephemeral_containers_update(&mut obj, old)
            }
            Some("finalize") if resource.plural == "namespaces" => {
                let finalizers = obj.pointer("/spec/finalizers").cloned();
                let mut merged = old.clone();
                merged["spec"]["finalizers"] = finalizers.unwrap_or_else(|| json!([]));
                obj = merged;
            }
            Some(other) => {
                return Err(ApiError::NotFound {
                    group: resource.group.into(),
                    kind: format!("{}/{other}", resource.plural),
                    name: name.into(),
                });
            }
        }
        carry_server_metadata(&mut obj, old, resource, ns);
        svcnet_api::defaults::apply(resource.kind, &mut obj);
        if opts.track_managed_fields {
            let now = object::now_rfc3339();
            svcnet_api::managed::track_update(Some(old), &mut obj, &opts.manager, sub, resource.definition, &now);
        }
        if strategy::tracks_generation(resource) && obj.get("spec") != old.get("spec") {
            let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0) + 1;
            if let Some(meta) = meta_mut(&mut obj) {
                meta.insert("generation".into(), json!(generation));
            }
        }
        let mut causes = metadata_causes(&obj);
        causes.extend(strategy.validate_update(resource, &obj, old, &self.validation));
        if !causes.is_empty() {
            return Err(ApiError::invalid(resource.group, resource.kind, name, causes));
        }
        if meta_str(&obj, "deletionTimestamp").is_empty() || !object::finalizers(&obj).is_empty() {
            allocation::allocate(self.store.as_ref(), &self.ranges, resource, &mut obj, Some(old)).await?;
        }
        // An object being deleted goes away once its last finalizer does.
        if !meta_str(&obj, "deletionTimestamp").is_empty()
            && object::finalizers(&obj).is_empty()
            && !has_spec_finalizers(&obj)
        {
            if opts.dry_run {
                return Ok(Written { object: obj, warnings: Vec::new() });
            }
            let rev = self
                .commit_delete(resource, &current.key, old, current.rv)
                .await
                .map_err(|e| store_write_error(e, resource, name))?;
            set_rv(&mut obj, rev);
            return Ok(Written { object: obj, warnings: Vec::new() });
        }
        set_rv(&mut obj, current.rv);
        if obj == *old {
            // kube-apiserver does not write (or bump resourceVersion) when
            // an update changes nothing.
            return Ok(Written { object: obj, warnings: Vec::new() });
        }
        if opts.dry_run {
            return Ok(Written { object: obj, warnings: Vec::new() });
        }
        let rev = match self.commit_update(resource, &current.key, &obj, old, current.rv).await {
            Ok(rev) => rev,
            Err(svcnet_store::Error::AlreadyExists(k)) => return Err(allocation::taken_error(resource, &obj, &k)),
            Err(e) => return Err(store_write_error(e, resource, name)),
        };
        set_rv(&mut obj, rev);
        Ok(Written { object: obj, warnings: Vec::new() })
    }

    /// Deletes an object: at once, or by marking it with a
    /// deletionTimestamp when finalizers or a grace period hold it.
    pub async fn delete(
        &self,
        resource: &'static ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted> {
        if resource.plural == "namespaces" && crate::namespaces::UNDELETABLE.contains(&name) {
            return Err(ApiError::Forbidden(format!(
                "namespaces {name:?} is forbidden: this namespace may not be deleted"
            )));
        }
        for _ in 0..MAX_RETRIES {
            let current = self.get(resource, ns, name).await?;
            let mut obj = current.value();
            if let Some(uid) = &opts.precondition_uid {
                let actual = meta_str(&obj, "uid");
                if uid != actual {
                    return Err(ApiError::Conflict {
                        group: resource.group.into(),
                        kind: resource.plural.into(),
                        name: name.into(),
                        detail: format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                        ),
                    });
                }
            }
            if let Some(rv) = &opts.precondition_rv
                && *rv != current.rv.to_string()
            {
                return Err(ApiError::Conflict {
                    group: resource.group.into(),
                    kind: resource.plural.into(),
                    name: name.into(),
                    detail: format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        current.rv
                    ),
                });
            }
            let mut finalizers = object::finalizers(&obj);
            let policy_finalizer = match opts.propagation_policy.as_deref() {
                Some("Orphan") => Some("orphan"),
                Some("Foreground") => Some("foregroundDeletion"),
                Some("Background") | None => None,
                Some(other) => {
                    return Err(ApiError::invalid(
                        resource.group,
                        resource.kind,
                        name,
                        vec![FieldCause::not_supported(
                            "propagationPolicy",
                            &json!(other),
                            &["Foreground", "Background", "Orphan", "nil"],
                        )],
                    ));
                }
            };
            let already_deleting = !meta_str(&obj, "deletionTimestamp").is_empty();
            if let Some(f) = policy_finalizer
                && !already_deleting
                && !finalizers.iter().any(|x| x == f)
            {
                finalizers.push(f.to_string());
            }
            let grace = self.grace_period(resource, &obj, opts);
            let namespace_pending = resource.plural == "namespaces" && has_spec_finalizers(&obj);
            if finalizers.is_empty() && grace == 0 && !namespace_pending {
                if opts.dry_run {
                    return Ok(Deleted { object: obj, gone: true });
                }
                match self.commit_delete(resource, &current.key, &obj, current.rv).await {
                    Ok(rev) => {
                        set_rv(&mut obj, rev);
                        return Ok(Deleted { object: obj, gone: true });
                    }
                    Err(svcnet_store::Error::Conflict { .. }) => continue,
                    Err(svcnet_store::Error::NotFound(_)) => return Err(Self::not_found(resource, name)),
                    Err(e) => return Err(e.into()),
                }
            }
            if already_deleting && object::finalizers(&obj) == finalizers {
                // Nothing new to record: deletion is already under way.
                return Ok(Deleted { object: obj, gone: false });
            }
            let Some(meta) = meta_mut(&mut obj) else {
                return Err(ApiError::Internal("stored object has no metadata".into()));
            };
            if !already_deleting {
                let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
                meta.insert("deletionTimestamp".into(), json!(object::rfc3339(at)));
                meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
            meta.insert("finalizers".into(), json!(finalizers));
            if resource.plural == "namespaces" {
                obj["status"]["phase"] = json!("Terminating");
            }
            if opts.dry_run {
                return Ok(Deleted { object: obj, gone: false });
            }
            match self.store.update(&current.key, encode(&obj)?, current.rv).await {
                Ok(rev) => {
                    set_rv(&mut obj, rev);
                    return Ok(Deleted { object: obj, gone: false });
                }
                Err(svcnet_store::Error::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict_modified(resource.group, resource.plural, name))
    }

    /// Graceful deletion applies to pods bound to a node, whose agent must
    /// stop the containers first; everything else goes at once.
    fn grace_period(&self, resource: &ResourceInfo, obj: &Value, opts: &DeleteOptions) -> i64 {
        if resource.plural != "pods" {
            return 0;
        }
        if obj.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("").is_empty() {
            return 0;
        }
        if obj.pointer("/status/phase").and_then(Value::as_str).is_some_and(|p| p == "Succeeded" || p == "Failed") {
            return 0;
        }
        let default = obj.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(30);
        opts.grace_period_seconds.unwrap_or(default).max(0)
    }

    /// Deletes every object a list would return.
    pub async fn delete_collection(
        &self,
        resource: &'static ResourceInfo,
        ns: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Vec<Value>> {
        let page = self.list(resource, ns, list).await?;
        let mut deleted = Vec::new();
        for o in page.objects {
            let ns = (!o.namespace.is_empty()).then_some(o.namespace.as_str());
            match self.delete(resource, ns, &o.name, opts).await {
                Ok(d) => deleted.push(d.object),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }
}

fn namespaces() -> &'static ResourceInfo {
    // The registry always serves namespaces.
    resources::by_plural("", "namespaces").expect("namespaces are a served resource")
}

fn has_spec_finalizers(obj: &Value) -> bool {
    obj.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|a| !a.is_empty())
        && obj.get("kind").and_then(Value::as_str) == Some("Namespace")
}

/// Kinds whose PUT creates a missing object, as kube-apiserver's
/// strategies allow (`AllowCreateOnUpdate`).
fn allows_create_on_update(resource: &ResourceInfo) -> bool {
    resource.group.is_empty() && matches!(resource.plural, "endpoints" | "events")
}

fn store_write_error(e: svcnet_store::Error, resource: &ResourceInfo, name: &str) -> ApiError {
    match e {
        svcnet_store::Error::Conflict { .. } => ApiError::conflict_modified(resource.group, resource.plural, name),
        svcnet_store::Error::NotFound(_) => ApiError::not_found(resource.group, resource.plural, name),
        other => other.into(),
    }
}

/// Copies the metadata only the server may set from the stored object.
fn carry_server_metadata(obj: &mut Value, old: &Value, resource: &ResourceInfo, ns: Option<&str>) {
    let Some(old_meta) = object::meta(old).cloned() else { return };
    let Some(meta) = meta_mut(obj) else { return };
    for field in ["name", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
        match old_meta.get(field) {
            Some(v) => meta.insert(field.into(), v.clone()),
            None => meta.remove(field),
        };
    }
    meta.remove("selfLink");
    if resource.namespaced {
        if let Some(ns) = ns {
            meta.insert("namespace".into(), json!(ns));
        }
    } else {
        meta.remove("namespace");
    }
    // A deleting object may lose finalizers but not gain new ones (as
    // kube-apiserver enforces); keep what the client sent otherwise.
}

/// Generic metadata validation shared by create and update.
fn metadata_causes(obj: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let Some(meta) = object::meta(obj) else { return causes };
    for (field, what) in [("labels", "label"), ("annotations", "annotation")] {
        let Some(map) = meta.get(field) else { continue };
        let Some(map) = map.as_object() else { continue };
        for (k, v) in map {
            if let Some(msg) = qualified_name_error(k) {
                causes.push(FieldCause::invalid(format!("metadata.{field}"), &json!(k), msg));
            }
            if what == "label"
                && let Some(v) = v.as_str()
                && let Some(msg) = label_value_error(v)
            {
                causes.push(FieldCause::invalid("metadata.labels".to_string(), &json!(v), msg));
            }
        }
    }
    if let Some(total) = meta
        .get("annotations")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum::<usize>())
        && total > 256 * 1024
    {
        causes.push(FieldCause {
            reason: "FieldValueTooLong",
            message: "Too long: must have at most 262144 bytes".into(),
            field: "metadata.annotations".into(),
        });
    }
    causes
}

/// Label and annotation keys: an optional DNS subdomain prefix and a name.
fn qualified_name_error(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && (p.is_empty() || !object::dns1123_subdomain_errors(p).is_empty())
    {
        return Some("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into());
    }
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    (!ok).then(|| "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into())
}

fn label_value_error(v: &str) -> Option<String> {
    if v.is_empty() {
        return None;
    }
    let ok = v.len() <= 63
        && v.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && v.as_bytes()[0].is_ascii_alphanumeric()
        && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric();
    (!ok).then(|| "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into())
}

/// Checks the request body against the kind's schema: type errors always
/// fail; unknown fields fail under Strict, warn under Warn.
fn check_body(resource: &ResourceInfo, obj: &Value, validation: FieldValidation) -> Result<Vec<String>> {
    if !obj.is_object() {
        return Err(ApiError::BadRequest("the body of the request is not a JSON object".into()));
    }
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let expected = resource.api_version();
    if !api_version.is_empty() && api_version != expected {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({expected})"
        )));
    }
    if !kind.is_empty() && kind != resource.kind {
        return Err(ApiError::BadRequest(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            resource.kind
        )));
    }
    crate::decode::check(resource, obj, validation)
}

fn set_type_meta(resource: &ResourceInfo, obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        // apiVersion and kind lead, as Kubernetes serializes them.
        let mut ordered = Map::new();
        ordered.insert("kind".into(), json!(resource.kind));
        ordered.insert("apiVersion".into(), json!(resource.api_version()));
        for (k, v) in std::mem::take(map) {
            if k != "kind" && k != "apiVersion" {
                ordered.insert(k, v);
            }
        }
        *map = ordered;
    }
}

fn set_rv(obj: &mut Value, rev: Revision) {
    if let Some(meta) = meta_mut(obj) {
        meta.insert("resourceVersion".into(), json!(rev.to_string()));
    }
}

/// Serializes an object for the store, without its resourceVersion: the
/// store's revision is the resourceVersion. The bytes are those of a copy
/// with `metadata.resourceVersion` removed (`Map::remove`, which moves the
/// last field of the map into its place), written without making the copy.
fn encode(obj: &Value) -> Result<Bytes> {
    serde_json::to_vec(&WithoutRv(obj))
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(format!("encoding object: {e}")))
}

/// An object as [`encode`] writes it.
struct WithoutRv<'a>(&'a Value);

/// Metadata without `resourceVersion`, its fields in the order `Map::remove`
/// leaves them.
struct MetaWithoutRv<'a>(&'a Map<String, Value>);

impl serde::Serialize for WithoutRv<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let Value::Object(map) = self.0 else { return self.0.serialize(serializer) };
        // As `meta_mut`, which gives an object without metadata an empty one.
        let no_meta = !map.contains_key("metadata");
        let mut out = serializer.serialize_map(Some(map.len() + usize::from(no_meta)))?;
        for (key, value) in map {
            match value {
                Value::Object(meta) if key == "metadata" => out.serialize_entry(key, &MetaWithoutRv(meta))?,
                _ => out.serialize_entry(key, value)?,
            }
        }
        if no_meta {
            out.serialize_entry("metadata", &Map::new())?;
        }
        out.end()
    }
}

impl serde::Serialize for MetaWithoutRv<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let entries: Vec<(&String, &Value)> = self.0.iter().collect();
        let Some(at) = entries.iter().position(|(k, _)| *k == "resourceVersion") else {
            return self.0.serialize(serializer);
        };
        let last = entries.len() - 1;
        // Map::remove swaps the last field into the removed one's place.
        let order = (0..at).chain((at < last).then_some(last)).chain(at + 1..last);
        let mut out = serializer.serialize_map(Some(last))?;
        for i in order {
            out.serialize_entry(entries[i].0, entries[i].1)?;
        }
        out.end()
    }
}

/// Continue tokens carry the list's revision and the last key returned,
/// relative to the listed prefix, like kube-apiserver's.
fn encode_continue(rv: Revision, last_key: &str, prefix: &str) -> String {
    let start = last_key.strip_prefix(prefix).unwrap_or(last_key);
    let token = json!({ "v": "meta.k8s.io/v1", "rv": rv, "start": start });
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str, prefix: &str) -> Result<String> {
    let bad = || ApiError::BadRequest("continue key is not valid: invalid continue token".into());
    let bytes = base64::engine::general_purpose::URL_SAFE.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok(format!("{prefix}{start}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_tampering() {
        let t = encode_continue(7, "/registry/core/services/default/b", "/registry/core/services/default/");
        assert_eq!(
            decode_continue(&t, "/registry/core/services/default/").ok().as_deref(),
            Some("/registry/core/services/default/b")
        );
        assert!(decode_continue("!!!", "/p/").is_err());
        let evil = base64::engine::general_purpose::URL_SAFE.encode(r#"{"rv":1,"start":"../secrets/x"}"#);
        assert!(decode_continue(&evil, "/p/").is_err());
    }

    #[test]
    fn encoding_drops_the_resource_version_as_removing_it_from_a_copy_would() {
        let objects = [
            json!({"kind": "Pod", "metadata": {"name": "a", "resourceVersion": "5", "uid": "u", "labels": {"x": "y"}}, "spec": {}}),
            json!({"metadata": {"resourceVersion": "5", "name": "a"}}),
            json!({"metadata": {"name": "a", "resourceVersion": "5"}}),
            json!({"metadata": {"resourceVersion": "5"}}),
            json!({"metadata": {"name": "a"}, "spec": {"metadata": {"resourceVersion": "kept"}}}),
            json!({"metadata": "odd", "x": [1, 2]}),
            json!({"kind": "NoMetadata"}),
            json!([1, 2]),
        ];
        for obj in objects {
            let mut copy = obj.clone();
            if let Some(meta) = meta_mut(&mut copy) {
                meta.remove("resourceVersion");
            }
            let want = serde_json::to_vec(&copy).unwrap();
            assert_eq!(encode(&obj).unwrap(), Bytes::from(want), "{obj}");
        }
    }

    #[test]
    fn label_keys_and_values_are_validated_as_kubernetes_does() {
        assert!(qualified_name_error("app").is_none());
        assert!(qualified_name_error("app.kubernetes.io/name").is_none());
        assert!(qualified_name_error("-app").is_some());
        assert!(qualified_name_error("Bad_Prefix/x").is_some());
        assert!(label_value_error("").is_none());
        assert!(label_value_error("v1.2_3").is_none());
        assert!(label_value_error("has space").is_some());
    }
}
