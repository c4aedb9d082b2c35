//! The REST routes kube-apiserver's endpoint installer would register for
//! each served resource, as plain data that both the Swagger 2.0 and the
//! OpenAPI 3.0 renderers walk.
//!
//! Start at [`path_items`]. Paths, operation ids, actions, descriptions,
//! parameters and responses follow what kube-apiserver v1.33 publishes for
//! the same resources, so clients that key on them (kubectl's field
//! validation probe, client generators, `kubectl explain`) behave as they do
//! against a real cluster.

use crate::resources::{GROUPS, RESOURCES, ResourceInfo};

/// Definition names of the API machinery types the routes refer to.
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

/// Media types the patch endpoints accept, one per patch flavour.
pub(crate) const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
// svcnet encodes objects as JSON and YAML only (no protobuf or CBOR), so
// unlike kube-apiserver those are all the documents advertise.
const PRODUCES: &[&str] = &["application/json", "application/yaml"];
const PRODUCES_STREAM: &[&str] = &["application/json", "application/yaml", "application/json;stream=watch"];
const CONSUMES_ANY: &[&str] = &["*/*"];

/// An HTTP method, in the order Swagger lists them on a path item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Method {
    Get,
    Put,
    Post,
    Delete,
    Patch,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Put => "put",
            Method::Post => "post",
            Method::Delete => "delete",
            Method::Patch => "patch",
        }
    }
}

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum In {
    Body,
    Path,
    Query,
}

impl In {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            In::Body => "body",
            In::Path => "path",
            In::Query => "query",
        }
    }
}

/// One request parameter. Body parameters carry a schema; the others a
/// primitive type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Param {
    pub name: &'static str,
    pub location: In,
    pub description: String,
    pub required: bool,
    /// "string", "integer" or "boolean" for non-body parameters.
    pub ty: &'static str,
    /// Definition name of a body parameter's schema.
    pub schema: Option<String>,
}

impl Param {
    fn query(name: &'static str, ty: &'static str, description: &str) -> Param {
        Param { name, location: In::Query, description: description.to_string(), required: false, ty, schema: None }
    }

    fn path(name: &'static str, description: String) -> Param {
        Param { name, location: In::Path, description, required: true, ty: "string", schema: None }
    }

    fn body(schema: &str, required: bool) -> Param {
        Param {
            name: "body",
            location: In::Body,
            description: String::new(),
            required,
            ty: "",
            schema: Some(schema.to_string()),
        }
    }
}

/// A group, version and kind, as the `x-kubernetes-group-version-kind`
/// extension spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gvk {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
}

/// One response of an operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Response {
    pub code: u16,
    pub description: &'static str,
    /// Definition name of the response body's schema.
    pub schema: Option<String>,
}

/// One operation on a path.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub method: Method,
    pub id: String,
    pub description: String,
    /// The `x-kubernetes-action` value.
    pub action: &'static str,
    pub gvk: Gvk,
    pub tag: String,
    pub consumes: &'static [&'static str],
    pub produces: &'static [&'static str],
    /// Parameters specific to this operation, sorted by name then location.
    pub params: Vec<Param>,
    pub responses: Vec<Response>,
}

/// A path with its operations and the parameters all of them share.
#[derive(Debug, Clone)]
pub(crate) struct PathItem {
    pub path: String,
    pub params: Vec<Param>,
    pub operations: Vec<Operation>,
}

// Query parameter descriptions, verbatim from kube-apiserver so generated
// clients and `kubectl explain`-style tools read the same text.
const PRETTY: &str = "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).";
const DRY_RUN: &str = "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed";
const FIELD_MANAGER: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.";
const FIELD_MANAGER_PATCH: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).";
const FIELD_VALIDATION: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.";
const FORCE: &str = "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.";
const LABEL_SELECTOR: &str =
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.";
const FIELD_SELECTOR: &str =
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.";
const LIMIT: &str = "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results. Setting a limit may return fewer than the requested amount of items (up to zero items) in the event all requested objects are filtered out and clients should only use the presence of the continue field to determine whether more results are available. Servers may choose not to support the limit argument and will return all of the available results. If limit is specified and the continue field is empty, clients may assume that no more results are available. This field is not supported if watch is true.\n\nThe server guarantees that the objects returned when using continue will be identical to issuing a single list call without a limit - that is, no objects created, modified, or deleted after the first request is issued will be included in any subsequent continued requests. This is sometimes referred to as a consistent snapshot, and ensures that a client that is using limit to receive smaller chunks of a very large result can ensure they see all possible objects. If objects are updated during a chunked list the version of the object that was present at the time the first list result was calculated is returned.";
const CONTINUE: &str = "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid whether due to expiration (generally five to fifteen minutes) or a configuration change on the server, the server will respond with a 410 ResourceExpired error together with a continue token. If the client needs a consistent list, it must restart their list without the continue field. Otherwise, the client may send another list request with the token received with the 410 error, the server will respond with a list starting from the next key, but from the latest snapshot, which is inconsistent from the previous list results - objects that are created, modified, or deleted after the first list request will be included in the response, as long as their keys are after the \"next key\".\n\nThis field is not supported when watch is true. Clients may start a watch from the last resourceVersion value returned by the server and not miss any modifications.";
const RESOURCE_VERSION: &str = "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset";
const WATCH: &str = "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.";
const TIMEOUT_SECONDS: &str =
    "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.";
const ALLOW_WATCH_BOOKMARKS: &str = "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.";
const PROPAGATION_POLICY: &str = "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.";
const GRACE_PERIOD_SECONDS: &str = "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.";
const NAMESPACE: &str = "object name and auth scope, such as for teams and projects";

fn list_params() -> Vec<Param> {
    vec![
        Param::query("allowWatchBookmarks", "boolean", ALLOW_WATCH_BOOKMARKS),
        Param::query("continue", "string", CONTINUE),
        Param::query("fieldSelector", "string", FIELD_SELECTOR),
        Param::query("labelSelector", "string", LABEL_SELECTOR),
        Param::query("limit", "integer", LIMIT),
        Param::query("resourceVersion", "string", RESOURCE_VERSION),
        Param::query("timeoutSeconds", "integer", TIMEOUT_SECONDS),
        Param::query("watch", "boolean", WATCH),
    ]
}

fn write_params(body: &str, patch: bool) -> Vec<Param> {
    let mut params = vec![
        Param::body(body, true),
        Param::query("dryRun", "string", DRY_RUN),
        Param::query("fieldManager", "string", if patch { FIELD_MANAGER_PATCH } else { FIELD_MANAGER }),
        Param::query("fieldValidation", "string", FIELD_VALIDATION),
    ];
    if patch {
        params.push(Param::query("force", "boolean", FORCE));
    }
    params
}

fn delete_params() -> Vec<Param> {
    vec![
        Param::body(DELETE_OPTIONS, false),
        Param::query("dryRun", "string", DRY_RUN),
        Param::query("gracePeriodSeconds", "integer", GRACE_PERIOD_SECONDS),
        Param::query("propagationPolicy", "string", PROPAGATION_POLICY),
    ]
}

fn delete_collection_params() -> Vec<Param> {
    let mut params = delete_params();
    params.extend(list_params().into_iter().filter(|p| !matches!(p.name, "watch" | "allowWatchBookmarks")));
    params
}

/// "Core", "Apps", "Networking", "RbacAuthorization": the group part of
/// kube operation ids (".k8s.io" dropped, dotted words capitalised).
fn group_pascal(group: &str) -> String {
    if group.is_empty() {
        return "Core".to_string();
    }
    group.trim_end_matches(".k8s.io").split(['.', '-']).map(capitalise).collect()
}

/// "core_v1", "apps_v1", "rbacAuthorization_v1": kube's operation tags.
fn tag(group: &str, version: &str) -> String {
    let pascal = group_pascal(group);
    let mut chars = pascal.chars();
    let camel: String = chars.next().map(|c| c.to_ascii_lowercase()).into_iter().chain(chars).collect();
    format!("{camel}_{version}")
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(chars).collect()
}

fn ok(schema: &str) -> Response {
    Response { code: 200, description: "OK", schema: Some(schema.to_string()) }
}
fn created(schema: &str) -> Response {
    Response { code: 201, description: "Created", schema: Some(schema.to_string()) }
}
fn accepted(schema: &str) -> Response {
    Response { code: 202, description: "Accepted", schema: Some(schema.to_string()) }
}
const UNAUTHORIZED: Response = Response { code: 401, description: "Unauthorized", schema: None };

/// The definition name of a resource's list kind; the registry only names
/// the item kind.
pub(crate) fn list_definition(r: &ResourceInfo) -> String {
    format!("{}List", r.definition)
}

/// Kinds whose DELETE answers with the deleted object rather than a Status,
/// as their kube-apiserver storage does.
fn delete_returns_object(r: &ResourceInfo) -> bool {
    r.group.is_empty() && matches!(r.kind, "Pod" | "Service")
}

/// Every path kube-apiserver serves for the given resources, sorted by path.
pub(crate) fn path_items<'a>(resources: impl IntoIterator<Item = &'a ResourceInfo>) -> Vec<PathItem> {
    let mut items: Vec<PathItem> = Vec::new();
    for r in resources {
        for (path, operations) in resource_routes(r) {
            items.push(hoist_common_params(path, operations));
        }
    }
    items.sort_by(|a, b| a.path.cmp(&b.path));
    items
}

/// The resources of one group version, in registry order.
pub(crate) fn resources_of(group: &str, version: &str) -> impl Iterator<Item = &'static ResourceInfo> {
    RESOURCES.iter().filter(move |r| r.group == group && r.version == version)
}

/// Every served group version, for extensions that list them all.
pub(crate) fn group_versions() -> impl Iterator<Item = (&'static str, &'static str)> {
    GROUPS.iter().copied()
}

struct OpBuilder<'r> {
    r: &'r ResourceInfo,
    gv: String,
    tag: String,
    /// "Namespaced" for namespaced kinds: part of every id but the
    /// all-namespaces ones.
    scope: &'static str,
}

impl OpBuilder<'_> {
    fn op(&self, method: Method, id: String, description: String, action: &'static str) -> Operation {
        Operation {
            method,
            id,
            description,
            action,
            gvk: Gvk { group: self.r.group, version: self.r.version, kind: self.r.kind },
            tag: self.tag.clone(),
            consumes: CONSUMES_ANY,
            produces: PRODUCES,
            params: Vec::new(),
            responses: Vec::new(),
        }
    }

    fn list(&self, all_namespaces: bool) -> Operation {
        let (gv, kind) = (&self.gv, self.r.kind);
        let id = if all_namespaces {
            format!("list{gv}{kind}ForAllNamespaces")
        } else {
            format!("list{gv}{}{kind}", self.scope)
        };
        let mut op = self.op(Method::Get, id, format!("list or watch objects of kind {kind}"), "list");
        op.produces = PRODUCES_STREAM;
        op.params = list_params();
        op.responses = vec![ok(&list_definition(self.r)), UNAUTHORIZED];
        op
    }

    fn create(&self) -> Operation {
        let (gv, kind) = (&self.gv, self.r.kind);
        let def = self.r.definition;
        let mut op =
            self.op(Method::Post, format!("create{gv}{}{kind}", self.scope), format!("create a {kind}"), "post");
        op.params = write_params(def, false);
        op.responses = vec![ok(def), created(def), accepted(def), UNAUTHORIZED];
        op
    }

    fn delete_collection(&self) -> Operation {
        let (gv, kind) = (&self.gv, self.r.kind);
        let id = format!("delete{gv}Collection{}{kind}", self.scope);
        let mut op = self.op(Method::Delete, id, format!("delete collection of {kind}"), "deletecollection");
        op.params = delete_collection_params();
        op.responses = vec![ok(STATUS), UNAUTHORIZED];
        op
    }

    /// get/put/patch on the object or one of its subresources ("", "Status",
    /// "Scale"). Scale operations are about autoscaling/v1 Scale objects.
    fn item(&self, method: Method, subresource: &str) -> Operation {
        let (gv, kind, scope) = (&self.gv, self.r.kind, self.scope);
        let (verb, action, what) = match method {
            Method::Get => ("read", "get", "read"),
            Method::Put => ("replace", "put", "replace"),
            _ => ("patch", "patch", "partially update"),
        };
        let description = match subresource {
            "" => format!("{what} the specified {kind}"),
            sub => format!("{what} {} of the specified {kind}", sub.to_ascii_lowercase()),
        };
        let mut op = self.op(method, format!("{verb}{gv}{scope}{kind}{subresource}"), description, action);
        let schema = if subresource == "Scale" {
            op.gvk = Gvk { group: "autoscaling", version: "v1", kind: "Scale" };
            SCALE
        } else {
            self.r.definition
        };
        match method {
            Method::Get => op.responses = vec![ok(schema), UNAUTHORIZED],
            Method::Put => {
                op.params = write_params(schema, false);
                op.responses = vec![ok(schema), created(schema), UNAUTHORIZED];
            }
            _ => {
                op.consumes = PATCH_TYPES;
                op.params = write_params(PATCH, true);
                op.responses = vec![ok(schema), created(schema), UNAUTHORIZED];
            }
        }
        op
    }

    fn delete(&self) -> Operation {
        let (gv, kind) = (&self.gv, self.r.kind);
        let mut op =
            self.op(Method::Delete, format!("delete{gv}{}{kind}", self.scope), format!("delete a {kind}"), "delete");
        op.params = delete_params();
        let returned = if delete_returns_object(self.r) { self.r.definition } else { STATUS };
        op.responses = vec![ok(returned), accepted(returned), UNAUTHORIZED];
        op
    }

    fn watch(&self) -> Operation {
        let (gv, kind) = (&self.gv, self.r.kind);
        let description = format!(
            "watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."
        );
        let mut op = self.op(Method::Get, format!("watch{gv}{}{kind}", self.scope), description, "watch");
        op.produces = PRODUCES_STREAM;
        op.params = list_params();
        op.responses = vec![ok(WATCH_EVENT), UNAUTHORIZED];
        op
    }

    fn watch_list(&self, all_namespaces: bool) -> Operation {
        let (gv, kind) = (&self.gv, self.r.kind);
        let id = if all_namespaces {
            format!("watch{gv}{kind}ListForAllNamespaces")
        } else {
            format!("watch{gv}{}{kind}List", self.scope)
        };
        let description = format!(
            "watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."
        );
        let mut op = self.op(Method::Get, id, description, "watchlist");
        op.produces = PRODUCES_STREAM;
        op.params = list_params();
        op.responses = vec![ok(WATCH_EVENT), UNAUTHORIZED];
        op
    }
}

/// The (path, operations) pairs of one resource. Per-route parameters
/// (namespace, name, pretty) are attached to every operation here and
/// hoisted to the path by [`hoist_common_params`], as kube-openapi does.
fn resource_routes(r: &ResourceInfo) -> Vec<(String, Vec<Operation>)> {
    let b = OpBuilder {
        r,
        gv: format!("{}{}", group_pascal(r.group), capitalise(r.version)),
        tag: tag(r.group, r.version),
        scope: if r.namespaced { "Namespaced" } else { "" },
    };
    let prefix = r.group_version_path();
    let plural = r.plural;
    let scope_path = if r.namespaced { "/namespaces/{namespace}" } else { "" };
    let collection = format!("{prefix}{scope_path}/{plural}");
    let item = format!("{collection}/{{name}}");

    let pretty = Param::query("pretty", "string", PRETTY);
    let namespace = Param::path("namespace", NAMESPACE.to_string());
    let name = Param::path("name", format!("name of the {}", r.kind));
    let name_of = |what: &str| Param::path("name", format!("name of the {what}"));
    // Every route of a namespaced collection takes {namespace}; item
    // routes take {name} too.
    let with = |mut op: Operation, item: bool, name: &Param| {
        op.params.push(pretty.clone());
        if r.namespaced {
            op.params.push(namespace.clone());
        }
        if item {
            op.params.push(name.clone());
        }
        op
    };

    let mut collection_ops = vec![with(b.list(false), false, &name), with(b.create(), false, &name)];
    // kube-apiserver's namespace storage implements no deletecollection;
    // matched so the documents list the verbs a real cluster does.
    if !(r.group.is_empty() && r.kind == "Namespace") {
        collection_ops.push(with(b.delete_collection(), false, &name));
    }
    let mut routes = vec![
        (collection.clone(), collection_ops),
        (
            item.clone(),
            vec![
                with(b.item(Method::Get, ""), true, &name),
                with(b.item(Method::Put, ""), true, &name),
                with(b.item(Method::Patch, ""), true, &name),
                with(b.delete(), true, &name),
            ],
        ),
    ];
    for (enabled, sub, what) in
        [(r.has_status, "Status", r.kind.to_string()), (r.has_scale, "Scale", "Scale".to_string())]
    {
        if enabled {
            let name = name_of(&what);
            let ops = [Method::Get, Method::Put, Method::Patch].map(|m| with(b.item(m, sub), true, &name));
            routes.push((format!("{item}/{}", sub.to_ascii_lowercase()), Vec::from(ops)));
        }
    }
    let watch_prefix = format!("{prefix}/watch{scope_path}/{plural}");
    routes.push((watch_prefix.clone(), vec![with(b.watch_list(false), false, &name)]));
    routes.push((format!("{watch_prefix}/{{name}}"), vec![with(b.watch(), true, &name)]));
    if r.namespaced {
        let all = |mut op: Operation| {
            op.params.push(pretty.clone());
            op
        };
        routes.push((format!("{prefix}/{plural}"), vec![all(b.list(true))]));
        routes.push((format!("{prefix}/watch/{plural}"), vec![all(b.watch_list(true))]));
    }
    routes
}

/// Moves the non-body parameters every operation of a path shares onto the
/// path item, and sorts what is left by name then location.
fn hoist_common_params(path: String, mut operations: Vec<Operation>) -> PathItem {
    let mut common: Vec<Param> = Vec::new();
    if let Some(first) = operations.first() {
        for p in &first.params {
            let shared = p.location != In::Body
                && operations.iter().all(|op| op.params.iter().any(|q| q.name == p.name && q.location == p.location));
            if shared {
                common.push(p.clone());
            }
        }
    }
    for op in &mut operations {
        op.params.retain(|p| !common.iter().any(|c| c.name == p.name && c.location == p.location));
        sort_params(&mut op.params);
    }
    sort_params(&mut common);
    operations.sort_by_key(|op| op.method);
    PathItem { path, params: common, operations }
}

fn sort_params(params: &mut [Param]) {
    params.sort_by(|a, b| (a.name, a.location.as_str()).cmp(&(b.name, b.location.as_str())));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_plural;

    #[test]
    fn operation_ids_follow_kube_naming() {
        let Some(services) = by_plural("", "services") else { panic!("services are served") };
        let items = path_items([services]);
        let ids: Vec<&str> = items.iter().flat_map(|i| i.operations.iter().map(|o| o.id.as_str())).collect();
        for id in [
            "listCoreV1NamespacedService",
            "createCoreV1NamespacedService",
            "deleteCoreV1CollectionNamespacedService",
            "readCoreV1NamespacedService",
            "replaceCoreV1NamespacedService",
            "patchCoreV1NamespacedService",
            "deleteCoreV1NamespacedService",
            "readCoreV1NamespacedServiceStatus",
            "patchCoreV1NamespacedServiceStatus",
            "listCoreV1ServiceForAllNamespaces",
            "watchCoreV1NamespacedService",
            "watchCoreV1NamespacedServiceList",
            "watchCoreV1ServiceListForAllNamespaces",
        ] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        assert_eq!(group_pascal("networking.k8s.io"), "Networking");
        assert_eq!(group_pascal("rbac.authorization.k8s.io"), "RbacAuthorization");
        assert_eq!(tag("rbac.authorization.k8s.io", "v1"), "rbacAuthorization_v1");
        assert_eq!(tag("", "v1"), "core_v1");
    }

    #[test]
    fn parameters_shared_by_every_operation_of_a_path_move_to_the_path() {
        let Some(deployments) = by_plural("apps", "deployments") else { panic!("deployments are served") };
        let items = path_items([deployments]);
        let Some(item) = items.iter().find(|i| i.path == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
        else {
            panic!("item path missing")
        };
        let common: Vec<&str> = item.params.iter().map(|p| p.name).collect();
        assert_eq!(common, ["name", "namespace", "pretty"]);
        let Some(patch) = item.operations.iter().find(|o| o.method == Method::Patch) else { panic!("no patch") };
        let names: Vec<&str> = patch.params.iter().map(|p| p.name).collect();
        assert_eq!(names, ["body", "dryRun", "fieldManager", "fieldValidation", "force"]);
        let Some(scale) = items.iter().find(|i| i.path.ends_with("/scale")) else { panic!("no scale path") };
        assert!(scale.operations.iter().all(|o| o.gvk.kind == "Scale" && o.gvk.group == "autoscaling"));
    }
}
