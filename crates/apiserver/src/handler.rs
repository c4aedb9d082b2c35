//! Request dispatch: authentication and authorization, routing, content
//! negotiation, and the REST verbs on top of the [`Registry`].

use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use svcnet_api::resources::ResourceInfo;

use crate::body::{self, Body};
use crate::cacher::CachedObject;
use crate::discovery;
use crate::error::{ApiError, Result};
use crate::identity::Identity;
use crate::openapi::OpenApi;
use crate::registry::{DeleteOptions, FieldValidation, Registry, WriteOptions, Written};
use crate::request::{DiscoveryPath, Query, ResourceRequest, Route, route};
use crate::scale;
use crate::selectors;
use crate::watch;

/// Bodies larger than this are refused with 413, as kube-apiserver does.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Everything a request handler needs.
pub struct Api {
    pub registry: Registry,
    pub openapi: OpenApi,
    /// host:port clients use to reach us, for discovery documents.
    pub address: String,
    /// Sent as `Authorization: Bearer` to node agents (pod log and exec).
    pub agent_token: Option<String>,
    /// How Service and Pod proxy requests reach cluster addresses; unset,
    /// they are dialled from this process.
    pub cluster_dial: std::sync::OnceLock<crate::service_proxy::Dial>,
}

/// How the client wants the response rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Render {
    Json,
    Table,
}

fn negotiate(req: &Request<hyper::body::Incoming>) -> Render {
    let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    // kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io, ...`;
    // the first acceptable entry wins.
    for entry in accept.split(',') {
        let params: Vec<&str> = entry.split(';').map(str::trim).collect();
        let is_table = params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io");
        if is_table && (params.contains(&"v=v1") || params.contains(&"v=v1beta1")) {
            return Render::Table;
        }
        if params.first().is_some_and(|m| *m == "application/json" || *m == "*/*")
            && !params.iter().any(|p| p.starts_with("as="))
        {
            return Render::Json;
        }
    }
    Render::Json
}

pub fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    bytes_response(code, Bytes::from(serde_json::to_vec(value).unwrap_or_default()), "application/json")
}

pub fn bytes_response(code: StatusCode, bytes: Bytes, content_type: &'static str) -> Response<Body> {
    let mut resp = Response::new(body::full(bytes));
    *resp.status_mut() = code;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    let code = StatusCode::from_u16(e.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json_response(code, &e.status());
    if matches!(e, ApiError::Unauthorized) {
        resp.headers_mut().insert("www-authenticate", HeaderValue::from_static("Basic realm=\"kubernetes-master\""));
    }
    resp
}

fn with_warnings(mut resp: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let text = format!("299 - {:?}", w);
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}

impl Api {
    pub async fn handle(
        self: Arc<Self>,
        req: Request<hyper::body::Incoming>,
        identity: Option<Identity>,
    ) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let result = self.dispatch(req, identity).await;
        match result {
            Ok(r) => r,
            Err(e) => {
                if e.code() >= 500 {
                    tracing::warn!(%method, %path, error = %e, "request failed");
                }
                error_response(&e)
            }
        }
    }

    async fn dispatch(
        &self,
        req: Request<hyper::body::Incoming>,
        identity: Option<Identity>,
    ) -> Result<Response<Body>> {
        let route = route(req.uri().path())?;
        let public = matches!(route, Route::Health(_) | Route::Version);
        let identity = match identity {
            Some(i) => i,
            None if public => {
                Identity { user: "system:anonymous".into(), groups: vec!["system:unauthenticated".into()] }
            }
            None => return Err(ApiError::Unauthorized),
        };
        if !public && !identity.is_admin() {
            return Err(forbidden(&identity, &req, &route));
        }
        match route {
            Route::Version => Ok(json_response(StatusCode::OK, &discovery::version())),
            Route::Health(path) => health(&path),
            Route::Discovery(d) => {
                let doc = match d {
                    DiscoveryPath::CoreVersions => Some(discovery::core_versions(&self.address)),
                    DiscoveryPath::Groups => Some(discovery::groups()),
                    DiscoveryPath::Group(g) => discovery::group(&g),
                    DiscoveryPath::GroupVersion { group, version } => discovery::resource_list(&group, &version),
                };
                doc.map(|d| json_response(StatusCode::OK, &d)).ok_or(ApiError::NoRoute)
            }
            Route::OpenApiV2 => {
                let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
                Ok(self.openapi.v2(accept.contains("protobuf")))
            }
            Route::OpenApiV3Root => Ok(self.openapi.v3_root()),
            Route::OpenApiV3(path) => self.openapi.v3(&path).ok_or(ApiError::NoRoute),
            Route::Resource(r) => self.resource(req, r).await,
            Route::NotFound => Err(ApiError::NoRoute),
        }
    }

    async fn resource(&self, req: Request<hyper::body::Incoming>, r: ResourceRequest) -> Result<Response<Body>> {
        if crate::proxy::handles(&r) {
            return crate::proxy::serve(self, req, r).await;
        }
        if crate::service_proxy::handles(&r) {
            return crate::service_proxy::serve(self, req, r).await;
        }
        let render = negotiate(&req);
        let query = Query::parse(req.uri().query());
        let method = req.method().clone();
        let content_type =
            req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json").to_string();
        let user_agent = req.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let res = r.resource;
        let ns = r.namespace.as_deref();
        let sub = r.subresource.as_deref();
        if sub == Some("binding") && res.plural == "pods" {
            // Binding only creates (`pods/{name}/binding`, or `bindings`
            // with the pod named in the body).
            let Some(ns) = ns else { return Err(ApiError::NoRoute) };
            if method != Method::POST {
                return Err(ApiError::MethodNotAllowed);
            }
            let obj = read_object(req, &content_type).await?;
            let opts = write_options(&query, &user_agent, "create")?;
            let status = crate::binding::create(&self.registry, ns, r.name.as_deref(), &obj, &opts).await?;
            return Ok(json_response(StatusCode::CREATED, &status));
        }
        if let Some(s) = sub {
            let known = (s == "status" && res.has_status)
                || (s == "scale" && res.has_scale)
                || (s == "finalize" && res.plural == "namespaces")
                || (s == "ephemeralcontainers" && res.plural == "pods");
            if !known {
                return Err(ApiError::NoRoute);
            }
        }
        if res.namespaced && ns.is_none() && r.name.is_some() {
            return Err(ApiError::NoRoute);
        }
        let watching = r.watch_path || query.flag("watch");
        match (&method, r.name.as_deref()) {
            (&Method::GET, None) if watching => {
                let filter = selectors::list_filter(res, &query)?;
                watch::serve(&self.registry, res, ns, &query, filter, render)
            }
            (&Method::GET, None) => {
                let opts = selectors::list_options(res, &query)?;
                let page = self.registry.list(res, ns, &opts).await?;
                render_list(res, &page, render, &query)
            }
            (&Method::GET, Some(name)) => {
                let obj = self.registry.get(res, ns, name).await?;
                if sub == Some("scale") {
                    return Ok(json_response(StatusCode::OK, &scale::from_object(res, &obj.value())?));
                }
                render_object(res, &obj, render, &query)
            }
            (&Method::POST, None) => {
                let obj = read_object(req, &content_type).await?;
                let opts = write_options(&query, &user_agent, "create")?;
                let w = self.registry.create(res, ns, obj, &opts).await?;
                Ok(written(StatusCode::CREATED, &w))
            }
            (&Method::PUT, Some(name)) => {
                let obj = read_object(req, &content_type).await?;
                let opts = write_options(&query, &user_agent, "update")?;
                if sub == Some("scale") {
                    let w = scale::update(&self.registry, res, ns, name, obj, &opts).await?;
                    return Ok(written(StatusCode::OK, &w));
                }
                let (w, created) = self.registry.update(res, ns, name, sub, obj, &opts).await?;
                Ok(written(if created { StatusCode::CREATED } else { StatusCode::OK }, &w))
            }
            (&Method::PATCH, Some(name)) => {
                let bytes = read_body(req).await?;
                let opts = write_options(&query, &user_agent, "update")?;
                let (w, created) =
                    crate::patching::patch(&self.registry, res, ns, name, sub, &content_type, &bytes, &opts, &query)
                        .await?;
                Ok(written(if created { StatusCode::CREATED } else { StatusCode::OK }, &w))
            }
            (&Method::DELETE, Some(name)) => {
                if sub.is_some() {
                    return Err(ApiError::MethodNotAllowed);
                }
                let bytes = read_body(req).await?;
                let opts = delete_options(&query, &bytes, &content_type)?;
                let d = self.registry.delete(res, ns, name, &opts).await?;
                let code = if d.gone { StatusCode::OK } else { StatusCode::ACCEPTED };
                Ok(json_response(code, &d.object))
            }
            (&Method::DELETE, None) => {
                if res.plural == "namespaces" {
                    return Err(ApiError::MethodNotAllowed);
                }
                let bytes = read_body(req).await?;
                let opts = delete_options(&query, &bytes, &content_type)?;
                let list = selectors::list_options(res, &query)?;
                let deleted = self.registry.delete_collection(res, ns, &list, &opts).await?;
                let list = json!({
                    "kind": res.list_kind, "apiVersion": res.api_version(),
                    "metadata": {}, "items": deleted,
                });
                Ok(json_response(StatusCode::OK, &list))
            }
            _ => Err(ApiError::MethodNotAllowed),
        }
    }
}

fn forbidden(identity: &Identity, req: &Request<hyper::body::Incoming>, route: &Route) -> ApiError {
    let user = &identity.user;
    let verb = match *req.method() {
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "access",
    };
    match route {
        Route::Resource(r) => {
            let verb = if r.name.is_none() && verb == "get" { "list" } else { verb };
            let mut msg = format!(
                "{}{} is forbidden: User {user:?} cannot {verb} resource {:?} in API group {:?}",
                r.resource.plural,
                if r.resource.group.is_empty() { String::new() } else { format!(".{}", r.resource.group) },
                r.resource.plural,
                r.resource.group
            );
            match &r.namespace {
                Some(ns) => msg.push_str(&format!(" in the namespace {ns:?}")),
                None => msg.push_str(" at the cluster scope"),
            }
            ApiError::Forbidden(msg)
        }
        _ => ApiError::Forbidden(format!("forbidden: User {user:?} cannot {verb} path {:?}", req.uri().path())),
    }
}

/// `/healthz`, `/livez`, `/readyz` and the individual checks kube-apiserver
/// lists under them (`/livez/ping`, `/readyz/etcd`, ...): a request is only
/// served once the store and cache are up, so every check passes.
fn health(path: &str) -> Result<Response<Body>> {
    let name = path.trim_start_matches('/');
    if !name.contains('/') || name.ends_with("/ping") || name.ends_with("/log") || name.ends_with("/etcd") {
        return Ok(bytes_response(StatusCode::OK, Bytes::from_static(b"ok"), "text/plain; charset=utf-8"));
    }
    Err(ApiError::NoRoute)
}

fn written(code: StatusCode, w: &Written) -> Response<Body> {
    with_warnings(json_response(code, &w.object), &w.warnings)
}

fn write_options(query: &Query, user_agent: &str, _op: &str) -> Result<WriteOptions> {
    let dry_run = match query.get("dryRun") {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!("Invalid dry run value: {other:?}: supported values: \"All\"")));
        }
    };
    let field_manager = query.get("fieldManager");
    if let Some(m) = field_manager
        && m.len() > 128
    {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![crate::FieldCause::invalid("fieldManager", &json!(m), "must be at most 128 characters long")],
        ));
    }
    Ok(WriteOptions {
        dry_run,
        validation: FieldValidation::parse(query.get("fieldValidation"))?,
        manager: svcnet_api::managed::manager_name(field_manager, user_agent),
        track_managed_fields: true,
    })
}

fn delete_options(query: &Query, body: &Bytes, content_type: &str) -> Result<DeleteOptions> {
    let mut opts = DeleteOptions {
        grace_period_seconds: query.int("gracePeriodSeconds")?,
        propagation_policy: query.get("propagationPolicy").map(str::to_string),
        dry_run: query.get("dryRun") == Some("All"),
        ..DeleteOptions::default()
    };
    if !body.is_empty() {
        let v = parse_document(body, content_type)?;
        if let Some(g) = v.get("gracePeriodSeconds").and_then(Value::as_i64) {
            opts.grace_period_seconds = Some(g);
        }
        if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
            opts.propagation_policy = Some(p.to_string());
        }
        if v.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
            opts.propagation_policy = Some("Orphan".into());
        }
        opts.precondition_uid = v.pointer("/preconditions/uid").and_then(Value::as_str).map(str::to_string);
        opts.precondition_rv = v.pointer("/preconditions/resourceVersion").and_then(Value::as_str).map(str::to_string);
        if v.get("dryRun").and_then(Value::as_array).is_some_and(|a| a.iter().any(|x| x == "All")) {
            opts.dry_run = true;
        }
    }
    Ok(opts)
}

pub async fn read_body(req: Request<hyper::body::Incoming>) -> Result<Bytes> {
    let mut body = req.into_body();
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::BadRequest(format!("reading the request body failed: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        total += data.len();
        if total > MAX_BODY {
            // Keep reading (and discarding) up to a bound: answering before
            // the client has sent everything makes HTTP/2 clients see a
            // reset stream instead of the 413.
            if total > DRAIN_LIMIT {
                break;
            }
            continue;
        }
        buf.extend_from_slice(&data);
    }
    if total > MAX_BODY {
        return Err(ApiError::TooLarge { limit: MAX_BODY });
    }
    Ok(Bytes::from(buf))
}

/// How much of an oversized body is read and thrown away before the 413.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Parses a JSON or YAML body into a JSON value.
pub fn parse_document(bytes: &[u8], content_type: &str) -> Result<Value> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    match media {
        "application/yaml" | "application/apply-patch+yaml" => serde_yaml::from_slice::<Value>(bytes)
            .map_err(|e| ApiError::BadRequest(format!("error converting YAML to JSON: {e}"))),
        // client-go's typed clients (kubectl create configmap, secret, ...)
        // send protobuf.
        "application/vnd.kubernetes.protobuf" => svcnet_api::protobuf::decode(bytes).map_err(|e| match e {
            svcnet_api::protobuf::ProtobufError::Malformed { .. } => ApiError::BadRequest(e.to_string()),
            other => ApiError::UnsupportedMediaType(other.to_string()),
        }),
        _ => serde_json::from_slice::<Value>(bytes)
            .map_err(|e| ApiError::BadRequest(format!("couldn't get version/kind; json parse error: {e}"))),
    }
}

async fn read_object(req: Request<hyper::body::Incoming>, content_type: &str) -> Result<Value> {
    let bytes = read_body(req).await?;
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !matches!(media, "application/json" | "application/yaml" | "application/vnd.kubernetes.protobuf" | "" | "*/*") {
        return Err(ApiError::UnsupportedMediaType("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf".to_string()));
    }
    let v = parse_document(&bytes, content_type)?;
    if !v.is_object() {
        return Err(ApiError::BadRequest("the body of the request is not a JSON object".into()));
    }
    Ok(v)
}

/// The `includeObject` query parameter of Table requests.
fn include_object(query: &Query) -> Result<svcnet_api::table::IncludeObject> {
    svcnet_api::table::IncludeObject::from_query(query.get("includeObject"))
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn render_list(
    res: &ResourceInfo,
    page: &crate::registry::ListPage,
    render: Render,
    query: &Query,
) -> Result<Response<Body>> {
    let rv = page.rv.to_string();
    if render == Render::Table {
        return table_list(res, page, query);
    }
    // Items are already serialized: splice them in rather than re-encode.
    let mut meta = json!({ "resourceVersion": rv });
    if let Some(c) = &page.continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(n) = page.remaining {
        meta["remainingItemCount"] = json!(n);
    }
    let head = json!({ "kind": res.list_kind, "apiVersion": res.api_version(), "metadata": meta });
    let head = serde_json::to_vec(&head).unwrap_or_default();
    let total: usize = page.objects.iter().map(|o| o.json.len() + 1).sum();
    let mut out = Vec::with_capacity(head.len() + total + 16);
    out.extend_from_slice(&head[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    for (i, o) in page.objects.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&o.json);
    }
    out.extend_from_slice(b"]}");
    Ok(bytes_response(StatusCode::OK, Bytes::from(out), "application/json"))
}

/// A list rendered as a Table, one row at a time: decoding every object at
/// once would multiply the memory a large list needs.
fn table_list(res: &ResourceInfo, page: &crate::registry::ListPage, query: &Query) -> Result<Response<Body>> {
    let rv = page.rv.to_string();
    let now = jiff::Timestamp::now();
    let include_object = include_object(query)?;
    let options = |no_headers| svcnet_api::table::TableOptions {
        include_object,
        no_headers,
        resource_version: &rv,
        continue_token: page.continue_token.as_deref(),
        remaining_item_count: page.remaining.map(|n| n as i64),
    };
    let mut head = svcnet_api::table::table_with(res.kind, &[], now, &options(false));
    let rows_json = head.as_object_mut().and_then(|m| m.remove("rows"));
    let _ = rows_json;
    let mut out = serde_json::to_vec(&head).unwrap_or_default();
    out.pop();
    out.extend_from_slice(b",\"rows\":[");
    for (i, o) in page.objects.iter().enumerate() {
        let value = o.value();
        let mut one = svcnet_api::table::table_with(res.kind, &[&value], now, &options(true));
        let row = one.get_mut("rows").and_then(|r| r.as_array_mut()).and_then(|r| r.pop()).unwrap_or(Value::Null);
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&serde_json::to_vec(&row).unwrap_or_default());
    }
    out.extend_from_slice(b"]}");
    Ok(bytes_response(StatusCode::OK, Bytes::from(out), "application/json"))
}

fn render_object(res: &ResourceInfo, obj: &CachedObject, render: Render, query: &Query) -> Result<Response<Body>> {
    if render == Render::Table {
        let table = svcnet_api::table::table(
            res.kind,
            &[&obj.value()],
            jiff::Timestamp::now(),
            include_object(query)?,
            &obj.rv.to_string(),
            None,
        );
        return Ok(json_response(StatusCode::OK, &table));
    }
    Ok(bytes_response(StatusCode::OK, obj.json.clone(), "application/json"))
}
