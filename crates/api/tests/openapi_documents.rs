//! The OpenAPI documents as clients read them: kubectl's field validation
//! probe and `kubectl explain` over v3, the v2 protobuf kubectl downloads,
//! and the kube-apiserver path list. One module per concern; the shared
//! fixture builds the definitions the way `schema::Schemas` does, with a
//! schemars generator over the k8s-openapi types of every served kind.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use svcnet_api::openapi;
use svcnet_api::resources::{GROUPS, RESOURCES};

/// Definitions for every served kind, refs under "#/definitions/".
fn definitions() -> &'static Map<String, Value> {
    static DEFS: OnceLock<Map<String, Value>> = OnceLock::new();
    DEFS.get_or_init(|| {
        use k8s_openapi::api::{
            apps::v1 as apps, core::v1 as core, discovery::v1 as discovery, networking::v1 as networking,
        };
        use schemars::JsonSchema;
        let mut generator = schemars::generate::SchemaSettings::draft07()
            .with(|s| s.definitions_path = "#/definitions/".into())
            .into_generator();
        let mut covered = BTreeSet::new();
        let mut add = |name: std::borrow::Cow<'static, str>, f: &mut dyn FnMut(&mut schemars::SchemaGenerator)| {
            f(&mut generator);
            covered.insert(name.into_owned());
        };
        add(core::Namespace::schema_name(), &mut |g| drop(g.subschema_for::<core::Namespace>()));
        add(core::Node::schema_name(), &mut |g| drop(g.subschema_for::<core::Node>()));
        add(core::Pod::schema_name(), &mut |g| drop(g.subschema_for::<core::Pod>()));
        add(core::Service::schema_name(), &mut |g| drop(g.subschema_for::<core::Service>()));
        add(core::Endpoints::schema_name(), &mut |g| drop(g.subschema_for::<core::Endpoints>()));
        add(core::Secret::schema_name(), &mut |g| drop(g.subschema_for::<core::Secret>()));
        add(core::ConfigMap::schema_name(), &mut |g| drop(g.subschema_for::<core::ConfigMap>()));
        add(core::Event::schema_name(), &mut |g| drop(g.subschema_for::<core::Event>()));
        add(discovery::EndpointSlice::schema_name(), &mut |g| drop(g.subschema_for::<discovery::EndpointSlice>()));
        add(apps::Deployment::schema_name(), &mut |g| drop(g.subschema_for::<apps::Deployment>()));
        add(apps::ReplicaSet::schema_name(), &mut |g| drop(g.subschema_for::<apps::ReplicaSet>()));
        add(apps::StatefulSet::schema_name(), &mut |g| drop(g.subschema_for::<apps::StatefulSet>()));
        add(apps::DaemonSet::schema_name(), &mut |g| drop(g.subschema_for::<apps::DaemonSet>()));
        add(apps::ControllerRevision::schema_name(), &mut |g| drop(g.subschema_for::<apps::ControllerRevision>()));
        add(networking::Ingress::schema_name(), &mut |g| drop(g.subschema_for::<networking::Ingress>()));
        add(networking::IngressClass::schema_name(), &mut |g| drop(g.subschema_for::<networking::IngressClass>()));
        for r in RESOURCES {
            assert!(covered.contains(r.definition), "fixture lacks {}", r.definition);
        }
        generator.take_definitions(true)
    })
}

/// A stand-in for the patch strategy table another module owns.
fn patch_meta(definition: &str, field: &str) -> Option<(&'static str, Option<&'static str>)> {
    match (definition, field) {
        ("io.k8s.api.core.v1.ServiceSpec", "ports") => Some(("merge", Some("port"))),
        ("io.k8s.api.core.v1.PodSpec", "containers") => Some(("merge", Some("name"))),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers") => Some(("merge", None)),
        _ => None,
    }
}

fn v2() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| openapi::v2_document(definitions(), &patch_meta))
}

fn v3(group: &str, version: &str) -> Value {
    match openapi::v3_group_version(group, version, definitions(), &patch_meta) {
        Some(doc) => doc,
        None => panic!("{group}/{version} is served"),
    }
}

fn gvk_matches(ext: Option<&Value>, group: &str, version: &str, kind: &str) -> bool {
    ext == Some(&json!({ "group": group, "kind": kind, "version": version }))
}

/// kubectl's QueryParamVerifier (v2, over the protobuf models) and
/// QueryParamVerifierV3: the first PATCH operation tagged with the kind
/// decides, so every such operation must list `fieldValidation`.
mod field_validation {
    use super::*;

    fn v2_param<'a>(doc: &'a Value, p: &'a Value) -> &'a Value {
        match p.get("$ref").and_then(Value::as_str) {
            Some(r) => &doc["parameters"][r.trim_start_matches("#/parameters/")],
            None => p,
        }
    }

    /// Asserts every served kind's PATCH operations take `fieldValidation`.
    pub(super) fn assert_v2(doc: &Value) {
        let paths = doc["paths"].as_object().into_iter().flatten();
        let patches: Vec<&Value> = paths.filter_map(|(_, item)| item.get("patch")).collect();
        for r in RESOURCES {
            let ops: Vec<&&Value> = patches
                .iter()
                .filter(|op| gvk_matches(op.get("x-kubernetes-group-version-kind"), r.group, r.version, r.kind))
                .collect();
            assert!(!ops.is_empty(), "no PATCH operation for {}", r.kind);
            for op in ops {
                let found = op["parameters"].as_array().into_iter().flatten().any(|p| {
                    let p = v2_param(doc, p);
                    p["in"] == "query" && p["name"] == "fieldValidation"
                });
                assert!(found, "{} lacks fieldValidation", op["operationId"]);
            }
        }
    }

    #[test]
    fn every_served_kind_has_a_patch_operation_with_field_validation_in_v2() {
        assert_v2(v2());
    }

    /// Asserts, for one group version's document, what [`assert_v2`] does,
    /// with the parameter inline.
    pub(super) fn assert_v3(group: &str, version: &str, doc: &Value) {
        let patches: Vec<&Value> =
            doc["paths"].as_object().into_iter().flatten().filter_map(|(_, item)| item.get("patch")).collect();
        for r in RESOURCES.iter().filter(|r| r.group == group && r.version == version) {
            let ops: Vec<&&Value> = patches
                .iter()
                .filter(|op| gvk_matches(op.get("x-kubernetes-group-version-kind"), r.group, r.version, r.kind))
                .collect();
            assert!(!ops.is_empty(), "no PATCH operation for {}", r.kind);
            for op in ops {
                // Inline: kubectl only resolves "#/parameters/" refs,
                // which OpenAPI 3 documents cannot contain.
                let found = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["in"] == "query" && p["name"] == "fieldValidation");
                assert!(found, "{} lacks fieldValidation", op["operationId"]);
            }
        }
    }

    #[test]
    fn every_served_kind_has_a_patch_operation_with_inline_field_validation_in_v3() {
        for (group, version) in GROUPS {
            assert_v3(group, version, &v3(group, version));
        }
    }

    #[test]
    fn scale_subresources_patch_as_autoscaling_v1_scale() {
        let doc = v3("apps", "v1");
        let op = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"];
        assert!(gvk_matches(op.get("x-kubernetes-group-version-kind"), "autoscaling", "v1", "Scale"));
        assert_eq!(op["operationId"], "patchAppsV1NamespacedDeploymentScale");
    }
}

/// `kubectl explain` over v3: find the kind by its extension in
/// components.schemas, then walk fields through `$ref`/`allOf`.
mod explain {
    use super::*;

    fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        let target = schema
            .get("$ref")
            .or_else(|| schema.get("allOf").and_then(|a| a.get(0)).and_then(|s| s.get("$ref")))
            .or_else(|| schema.get("items").and_then(|i| i.get("$ref")))
            .or_else(|| {
                schema.get("items").and_then(|i| i.get("allOf")).and_then(|a| a.get(0)).and_then(|s| s.get("$ref"))
            });
        match target.and_then(Value::as_str) {
            Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
            None => schema,
        }
    }

    #[test]
    fn service_spec_ports_is_found_by_group_version_kind_and_described() {
        let doc = v3("", "v1");
        let schemas = doc["components"]["schemas"].as_object().into_iter().flatten();
        let kinds: Vec<(&String, &Value)> = schemas
            .filter(|(_, s)| {
                s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|l| l.contains(&json!({ "group": "", "kind": "Service", "version": "v1" })))
            })
            .collect();
        assert_eq!(kinds.len(), 1);
        let service = kinds[0].1;
        assert!(service["description"].as_str().is_some_and(|d| !d.is_empty()));
        let spec_field = &service["properties"]["spec"];
        assert!(spec_field["description"].as_str().is_some_and(|d| !d.is_empty()));
        let spec = resolve(&doc, spec_field);
        let ports_field = &spec["properties"]["ports"];
        assert_eq!(ports_field["type"], "array");
        assert!(ports_field["description"].as_str().is_some_and(|d| d.contains("ports")));
        assert_eq!(ports_field["x-kubernetes-patch-merge-key"], "port");
        let port = resolve(&doc, ports_field);
        assert!(port["description"].as_str().is_some_and(|d| d.starts_with("ServicePort")));
        assert_eq!(port["required"], json!(["port"]));
        let target = resolve(&doc, &port["properties"]["targetPort"]);
        assert_eq!(target["format"], "int-or-string");
        assert_eq!(target["oneOf"], json!([{ "type": "integer" }, { "type": "string" }]));
    }

    #[test]
    fn every_served_kind_and_list_kind_is_tagged_in_both_versions() {
        let defs = v2()["definitions"].as_object().cloned().unwrap_or_default();
        for r in RESOURCES {
            let gvk = json!([{ "group": r.group, "kind": r.kind, "version": r.version }]);
            assert_eq!(defs[r.definition]["x-kubernetes-group-version-kind"], gvk, "{}", r.kind);
            let list = format!("{}List", r.definition);
            let list_gvk = json!([{ "group": r.group, "kind": r.list_kind, "version": r.version }]);
            assert_eq!(defs[&list]["x-kubernetes-group-version-kind"], list_gvk, "{}", r.list_kind);
            let v3doc = v3(r.group, r.version);
            assert_eq!(v3doc["components"]["schemas"][r.definition]["x-kubernetes-group-version-kind"], gvk);
        }
        let delete_options =
            &defs["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]["x-kubernetes-group-version-kind"];
        assert_eq!(delete_options.as_array().map(Vec::len), Some(GROUPS.len()));
        for (name, kind) in [
            ("io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent", "WatchEvent"),
            ("io.k8s.apimachinery.pkg.apis.meta.v1.Status", "Status"),
            ("io.k8s.api.autoscaling.v1.Scale", "Scale"),
        ] {
            let tagged = defs[name]["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|l| l.iter().all(|g| g["kind"] == kind));
            assert!(tagged, "{name}");
        }
    }

    #[test]
    fn kinds_do_not_require_metadata() {
        let defs = &v2()["definitions"];
        assert!(defs["io.k8s.api.core.v1.Service"].get("required").is_none());
        assert_eq!(defs["io.k8s.api.core.v1.ServiceList"]["required"], json!(["items"]));
    }
}

/// Swagger 2.0 hygiene: gnostic rejects unknown schema keywords and
/// kubectl's proto models only follow plain `$ref`s.
mod references {
    use super::*;

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    fn resolves(doc: &Value, r: &str) -> bool {
        r.strip_prefix('#').is_some_and(|pointer| {
            // Definition names contain no '/', so the pointer splits cleanly.
            doc.pointer(pointer).is_some()
        })
    }

    pub(super) fn broken_refs(doc: &Value) -> BTreeSet<String> {
        let mut all = Vec::new();
        refs(doc, &mut all);
        assert!(all.len() > 10);
        all.into_iter().filter(|r| !resolves(doc, r)).map(str::to_string).collect()
    }

    #[test]
    fn every_ref_in_v2_resolves() {
        let broken = broken_refs(v2());
        assert!(broken.is_empty(), "{broken:?}");
    }

    #[test]
    fn every_ref_in_every_v3_document_resolves() {
        for (group, version) in GROUPS {
            let doc = v3(group, version);
            let broken = broken_refs(&doc);
            assert!(broken.is_empty(), "{group}/{version}: {broken:?}");
            assert!(all_refs_are_components(&doc));
        }
    }

    fn all_refs_are_components(doc: &Value) -> bool {
        let mut all = Vec::new();
        refs(doc, &mut all);
        all.iter().all(|r| r.starts_with("#/components/schemas/"))
    }

    #[test]
    fn only_reachable_definitions_are_published() {
        let defs = v2()["definitions"].as_object().cloned().unwrap_or_default();
        // Reached only from other kinds' fields, never from a served one.
        assert!(!defs.contains_key("io.k8s.api.core.v1.PodTemplate"));
        assert!(defs.contains_key("io.k8s.api.core.v1.ServicePort"));
        let core = v3("", "v1");
        let schemas = core["components"]["schemas"].as_object().cloned().unwrap_or_default();
        assert!(!schemas.contains_key("io.k8s.api.apps.v1.Deployment"));
        assert!(!schemas.contains_key("io.k8s.api.autoscaling.v1.Scale"));
    }

    fn check_v2_schema(path: &str, s: &Value, problems: &mut Vec<String>) {
        let Value::Object(m) = s else { return };
        for (k, v) in m {
            if matches!(k.as_str(), "nullable" | "oneOf" | "anyOf" | "const" | "$defs" | "definitions" | "$schema") {
                problems.push(format!("{path}: {k}"));
            }
            if k == "type" && !v.is_string() {
                problems.push(format!("{path}: type {v}"));
            }
        }
        if m.get("allOf").is_some() {
            problems.push(format!("{path}: allOf"));
        }
        if let Some(Value::Object(props)) = m.get("properties") {
            for (name, p) in props {
                check_v2_schema(&format!("{path}.{name}"), p, problems);
            }
        }
        if let Some(items) = m.get("items") {
            check_v2_schema(&format!("{path}[]"), items, problems);
        }
        if let Some(ap) = m.get("additionalProperties") {
            check_v2_schema(&format!("{path}{{}}"), ap, problems);
        }
    }

    pub(super) fn v2_keyword_problems(doc: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, s) in doc["definitions"].as_object().into_iter().flatten() {
            check_v2_schema(name, s, &mut problems);
        }
        problems
    }

    #[test]
    fn v2_schemas_use_only_swagger_2_keywords() {
        let problems = v2_keyword_problems(v2());
        assert!(problems.is_empty(), "{problems:?}");
        let defs = &v2()["definitions"];
        assert_eq!(defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"], "int-or-string");
        assert_eq!(defs["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"], "date-time");
        assert_eq!(defs["io.k8s.api.core.v1.Secret"]["properties"]["data"]["additionalProperties"]["format"], "byte");
        assert_eq!(defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"], "string");
        assert_eq!(defs["io.k8s.apimachinery.pkg.runtime.RawExtension"]["type"], "object");
    }

    #[test]
    fn patch_strategies_come_from_the_hook() {
        let spec = &v2()["definitions"]["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"];
        assert_eq!(spec["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(spec["x-kubernetes-patch-merge-key"], "port");
        assert_eq!(spec["items"]["$ref"], "#/definitions/io.k8s.api.core.v1.ServicePort");
        let finalizers =
            &v2()["definitions"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["finalizers"];
        assert_eq!(finalizers["x-kubernetes-patch-strategy"], "merge");
        assert!(finalizers.get("x-kubernetes-patch-merge-key").is_none());
    }

    #[test]
    fn v3_root_links_every_group_version_by_content_hash() {
        let docs: Vec<(String, String)> = GROUPS
            .iter()
            .map(|(g, v)| {
                let bytes = serde_json::to_vec(&v3(g, v)).unwrap_or_default();
                (openapi::v3_path(g, v), openapi::content_hash(&bytes))
            })
            .collect();
        let pairs: Vec<(&str, &str)> = docs.iter().map(|(p, h)| (p.as_str(), h.as_str())).collect();
        let root = openapi::v3_root(&pairs);
        let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap_or_default();
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="));
        let hash = url.rsplit('=').next().unwrap_or_default();
        assert_eq!(hash.len(), 128);
        assert!(hash.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        assert!(root["paths"]["api/v1"].is_object());
        // Stable: building again gives the same bytes, hence the same URL.
        let again = serde_json::to_vec(&v3("apps", "v1")).unwrap_or_default();
        assert_eq!(openapi::content_hash(&again), hash);
        assert!(openapi::v3_group_version("batch", "v1", definitions(), &patch_meta).is_none());
    }
}

/// The path list kube-apiserver v1.33 serves for services, minus the
/// `proxy` subresource svcnet does not implement.
mod paths {
    use super::*;

    #[test]
    fn service_paths_match_kube_apiserver() {
        let expected = [
            "/api/v1/namespaces/{namespace}/services",
            "/api/v1/namespaces/{namespace}/services/{name}",
            "/api/v1/namespaces/{namespace}/services/{name}/status",
            "/api/v1/services",
            "/api/v1/watch/namespaces/{namespace}/services",
            "/api/v1/watch/namespaces/{namespace}/services/{name}",
            "/api/v1/watch/services",
        ];
        for doc in [v2().clone(), v3("", "v1")] {
            let paths: Vec<&str> = doc["paths"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(p, _)| p.as_str())
                .filter(|p| p.split('/').any(|seg| seg == "services"))
                .collect();
            assert_eq!(paths, expected);
        }
        let collection = &v2()["paths"]["/api/v1/namespaces/{namespace}/services"];
        let methods: Vec<&str> = collection.as_object().into_iter().flatten().map(|(k, _)| k.as_str()).collect();
        assert_eq!(methods, ["delete", "get", "parameters", "post"]);
        let actions: Vec<(&str, &str)> = ["delete", "get", "post"]
            .iter()
            .map(|m| {
                (
                    collection[m]["operationId"].as_str().unwrap_or(""),
                    collection[m]["x-kubernetes-action"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            actions,
            [
                ("deleteCoreV1CollectionNamespacedService", "deletecollection"),
                ("listCoreV1NamespacedService", "list"),
                ("createCoreV1NamespacedService", "post"),
            ]
        );
        let item = &v2()["paths"]["/api/v1/namespaces/{namespace}/services/{name}"];
        assert_eq!(item["patch"]["operationId"], "patchCoreV1NamespacedService");
        assert_eq!(item["patch"]["consumes"][2], "application/strategic-merge-patch+json");
        assert_eq!(v2()["paths"]["/api/v1/services"]["get"]["operationId"], "listCoreV1ServiceForAllNamespaces");
        assert_eq!(v2()["paths"]["/api/v1/watch/services"]["get"]["x-kubernetes-action"], "watchlist");
    }

    #[test]
    fn cluster_scoped_kinds_have_no_namespace_or_all_namespaces_paths() {
        let paths: Vec<String> = v2()["paths"].as_object().into_iter().flatten().map(|(p, _)| p.clone()).collect();
        let nodes: Vec<&str> =
            paths.iter().map(String::as_str).filter(|p| p.split('/').any(|s| s == "nodes")).collect();
        assert_eq!(
            nodes,
            [
                "/api/v1/nodes",
                "/api/v1/nodes/{name}",
                "/api/v1/nodes/{name}/status",
                "/api/v1/watch/nodes",
                "/api/v1/watch/nodes/{name}",
            ]
        );
        assert!(
            v2()["paths"]["/api/v1/namespaces"].get("delete").is_none(),
            "kube has no deletecollection for namespaces"
        );
        assert_eq!(v2()["paths"]["/api/v1/nodes"]["delete"]["operationId"], "deleteCoreV1CollectionNode");
    }

    #[test]
    fn list_operations_take_the_list_query_parameters() {
        let doc = v3("", "v1");
        let list = &doc["paths"]["/api/v1/namespaces/{namespace}/services"]["get"];
        let names: Vec<&str> =
            list["parameters"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(
            names,
            [
                "allowWatchBookmarks",
                "continue",
                "fieldSelector",
                "labelSelector",
                "limit",
                "resourceVersion",
                "timeoutSeconds",
                "watch"
            ]
        );
        let delete = &doc["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["delete"];
        let names: Vec<&str> =
            delete["parameters"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(names, ["dryRun", "gracePeriodSeconds", "propagationPolicy"]);
        assert_eq!(
            delete["requestBody"]["content"]["*/*"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
        );
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["patch"];
        assert_eq!(patch["requestBody"]["required"], true);
        assert!(patch["requestBody"]["content"]["application/apply-patch+yaml"].is_object());
        assert_eq!(
            patch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Service"
        );
    }
}

/// The v2 protobuf, decoded by a wire-format reader written here from
/// gnostic's OpenAPIv2.proto, independently of the encoder, and rebuilt
/// into Swagger JSON that must equal the document it was encoded from.
/// `openapi_verify_protobuf.py` checks the same bytes with protoc-generated
/// classes.
mod protobuf {
    use super::*;

    #[derive(Debug, Clone)]
    enum Wire {
        Varint(u64),
        Fixed64(u64),
        Bytes(Vec<u8>),
    }

    fn read_varint(buf: &[u8], pos: &mut usize) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = buf[*pos];
            *pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
        }
        panic!("varint longer than 10 bytes");
    }

    /// One message's fields, in wire order.
    fn fields(buf: &[u8]) -> Vec<(u32, Wire)> {
        let mut pos = 0;
        let mut out = Vec::new();
        while pos < buf.len() {
            let key = read_varint(buf, &mut pos);
            let field = u32::try_from(key >> 3).unwrap_or(0);
            let wire = match key & 7 {
                0 => Wire::Varint(read_varint(buf, &mut pos)),
                1 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&buf[pos..pos + 8]);
                    pos += 8;
                    Wire::Fixed64(u64::from_le_bytes(b))
                }
                2 => {
                    let len = usize::try_from(read_varint(buf, &mut pos)).unwrap_or(0);
                    let bytes = buf[pos..pos + len].to_vec();
                    pos += len;
                    Wire::Bytes(bytes)
                }
                other => panic!("unexpected wire type {other} for field {field}"),
            };
            assert!(field > 0, "field 0 is invalid");
            out.push((field, wire));
        }
        out
    }

    struct Msg(Vec<(u32, Wire)>);

    impl Msg {
        fn parse(buf: &[u8]) -> Msg {
            Msg(fields(buf))
        }
        fn all(&self, n: u32) -> impl Iterator<Item = &Wire> {
            self.0.iter().filter(move |(f, _)| *f == n).map(|(_, w)| w)
        }
        fn msgs(&self, n: u32) -> Vec<Msg> {
            self.all(n)
                .map(|w| match w {
                    Wire::Bytes(b) => Msg::parse(b),
                    other => panic!("field {n} is {other:?}, not a message"),
                })
                .collect()
        }
        fn msg(&self, n: u32) -> Option<Msg> {
            let mut all = self.msgs(n);
            assert!(all.len() <= 1, "field {n} repeated");
            all.pop()
        }
        fn strings(&self, n: u32) -> Vec<String> {
            self.all(n)
                .map(|w| match w {
                    Wire::Bytes(b) => String::from_utf8(b.clone()).unwrap_or_default(),
                    other => panic!("field {n} is {other:?}, not a string"),
                })
                .collect()
        }
        fn string(&self, n: u32) -> Option<String> {
            self.strings(n).pop()
        }
        fn bool(&self, n: u32) -> Option<bool> {
            self.all(n).last().map(|w| matches!(w, Wire::Varint(1)))
        }
        fn int(&self, n: u32) -> Option<i64> {
            self.all(n).last().map(|w| match w {
                Wire::Varint(v) => *v as i64,
                other => panic!("field {n} is {other:?}"),
            })
        }
        fn double(&self, n: u32) -> Option<f64> {
            self.all(n).last().map(|w| match w {
                Wire::Fixed64(v) => f64::from_bits(*v),
                other => panic!("field {n} is {other:?}"),
            })
        }
        /// `Any.yaml` (field 2); our YAML is JSON, so parse it as such.
        fn any(&self, n: u32) -> Option<Value> {
            self.msg(n).map(|a| any_value(&a))
        }
    }

    fn any_value(a: &Msg) -> Value {
        let yaml = a.string(2).unwrap_or_default();
        serde_json::from_str(&yaml).unwrap_or_else(|e| panic!("Any.yaml {yaml:?} is not JSON: {e}"))
    }

    fn put(m: &mut Map<String, Value>, k: &str, v: Option<Value>) {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    }

    fn extensions(m: &mut Map<String, Value>, msg: &Msg, n: u32) {
        for named in msg.msgs(n) {
            let name = named.string(1).unwrap_or_default();
            assert!(name.starts_with("x-"), "vendor extension {name}");
            let value = named.msg(2).map(|a| any_value(&a)).unwrap_or(Value::Null);
            m.insert(name, value);
        }
    }

    fn named(msg: &Msg, n: u32, value: impl Fn(&Msg) -> Value) -> Map<String, Value> {
        msg.msgs(n)
            .into_iter()
            .map(|pair| (pair.string(1).unwrap_or_default(), pair.msg(2).map(|v| value(&v)).unwrap_or(Value::Null)))
            .collect()
    }

    fn strings(v: Vec<String>) -> Option<Value> {
        (!v.is_empty()).then(|| json!(v))
    }

    fn schema(s: &Msg) -> Value {
        let mut m = Map::new();
        put(&mut m, "$ref", s.string(1).map(Value::from));
        put(&mut m, "format", s.string(2).map(Value::from));
        put(&mut m, "title", s.string(3).map(Value::from));
        put(&mut m, "description", s.string(4).map(Value::from));
        put(&mut m, "default", s.any(5));
        put(&mut m, "maximum", s.double(7).map(Value::from));
        put(&mut m, "minimum", s.double(9).map(Value::from));
        put(&mut m, "maxLength", s.int(11).map(Value::from));
        put(&mut m, "minLength", s.int(12).map(Value::from));
        put(&mut m, "pattern", s.string(13).map(Value::from));
        put(&mut m, "maxItems", s.int(14).map(Value::from));
        put(&mut m, "minItems", s.int(15).map(Value::from));
        put(&mut m, "uniqueItems", s.bool(16).map(Value::from));
        put(&mut m, "required", strings(s.strings(19)));
        let enums: Vec<Value> = s.msgs(20).iter().map(any_value).collect();
        put(&mut m, "enum", (!enums.is_empty()).then(|| Value::Array(enums)));
        if let Some(ap) = s.msg(21) {
            let v = match (ap.msg(1), ap.all(2).last()) {
                (Some(sub), _) => schema(&sub),
                (None, Some(Wire::Varint(b))) => json!(*b == 1),
                other => panic!("additionalProperties oneof unset: {:?}", other.1),
            };
            m.insert("additionalProperties".into(), v);
        }
        if let Some(t) = s.msg(22) {
            let mut types = t.strings(1);
            assert_eq!(types.len(), 1, "one type per schema");
            m.insert("type".into(), json!(types.pop()));
        }
        if let Some(items) = s.msg(23) {
            let mut all = items.msgs(1);
            assert_eq!(all.len(), 1);
            m.insert("items".into(), schema(&all.remove(0)));
        }
        let all_of: Vec<Value> = s.msgs(24).iter().map(schema).collect();
        put(&mut m, "allOf", (!all_of.is_empty()).then(|| Value::Array(all_of)));
        if let Some(props) = s.msg(25) {
            m.insert("properties".into(), Value::Object(named(&props, 1, schema)));
        }
        put(&mut m, "readOnly", s.bool(27).map(Value::from));
        put(&mut m, "example", s.any(30));
        extensions(&mut m, s, 31);
        Value::Object(m)
    }

    fn parameter(p: &Msg) -> Value {
        let mut m = Map::new();
        if let Some(body) = p.msg(1) {
            put(&mut m, "description", body.string(1).map(Value::from));
            put(&mut m, "name", body.string(2).map(Value::from));
            put(&mut m, "in", body.string(3).map(Value::from));
            put(&mut m, "required", body.bool(4).map(Value::from));
            put(&mut m, "schema", body.msg(5).map(|s| schema(&s)));
            extensions(&mut m, &body, 6);
            return Value::Object(m);
        }
        let Some(non_body) = p.msg(2) else { panic!("Parameter oneof unset") };
        // query = 3 (with allowEmptyValue = 5), path = 4.
        let (sub, off) = match (non_body.msg(3), non_body.msg(4)) {
            (Some(q), None) => (q, 1),
            (None, Some(path)) => (path, 0),
            _ => panic!("exactly one of query/path expected"),
        };
        put(&mut m, "required", sub.bool(1).map(Value::from));
        put(&mut m, "in", sub.string(2).map(Value::from));
        put(&mut m, "description", sub.string(3).map(Value::from));
        put(&mut m, "name", sub.string(4).map(Value::from));
        put(&mut m, "type", sub.string(5 + off).map(Value::from));
        put(&mut m, "format", sub.string(6 + off).map(Value::from));
        put(&mut m, "uniqueItems", sub.bool(19 + off).map(Value::from));
        extensions(&mut m, &sub, 22 + off);
        Value::Object(m)
    }

    fn parameters_items(msg: &Msg, n: u32) -> Option<Value> {
        let items: Vec<Value> = msg
            .msgs(n)
            .iter()
            .map(|item| match (item.msg(1), item.msg(2)) {
                (Some(p), None) => parameter(&p),
                (None, Some(r)) => json!({ "$ref": r.string(1) }),
                _ => panic!("ParametersItem oneof"),
            })
            .collect();
        (!items.is_empty()).then(|| Value::Array(items))
    }

    fn operation(o: &Msg) -> Value {
        let mut m = Map::new();
        put(&mut m, "tags", strings(o.strings(1)));
        put(&mut m, "description", o.string(3).map(Value::from));
        put(&mut m, "operationId", o.string(5).map(Value::from));
        put(&mut m, "produces", strings(o.strings(6)));
        put(&mut m, "consumes", strings(o.strings(7)));
        put(&mut m, "parameters", parameters_items(o, 8));
        if let Some(responses) = o.msg(9) {
            let codes = named(&responses, 1, |rv| {
                let Some(r) = rv.msg(1) else { panic!("ResponseValue is not a Response") };
                let mut m = Map::new();
                put(&mut m, "description", r.string(1).map(Value::from));
                put(
                    &mut m,
                    "schema",
                    r.msg(2).map(|item| schema(&item.msg(1).unwrap_or_else(|| panic!("SchemaItem")))),
                );
                Value::Object(m)
            });
            m.insert("responses".into(), Value::Object(codes));
        }
        put(&mut m, "schemes", strings(o.strings(10)));
        extensions(&mut m, o, 13);
        Value::Object(m)
    }

    fn document(buf: &[u8]) -> Value {
        let d = Msg::parse(buf);
        let mut m = Map::new();
        put(&mut m, "swagger", d.string(1).map(Value::from));
        if let Some(info) = d.msg(2) {
            m.insert("info".into(), json!({ "title": info.string(1), "version": info.string(2) }));
        }
        if let Some(paths) = d.msg(8) {
            let items = named(&paths, 2, |item| {
                let mut m = Map::new();
                for (n, method) in [(2, "get"), (3, "put"), (4, "post"), (5, "delete"), (8, "patch")] {
                    put(&mut m, method, item.msg(n).map(|o| operation(&o)));
                }
                put(&mut m, "parameters", parameters_items(item, 9));
                Value::Object(m)
            });
            m.insert("paths".into(), Value::Object(items));
        }
        if let Some(defs) = d.msg(9) {
            m.insert("definitions".into(), Value::Object(named(&defs, 1, schema)));
        }
        if let Some(params) = d.msg(10) {
            m.insert("parameters".into(), Value::Object(named(&params, 1, parameter)));
        }
        let security: Vec<Value> =
            d.msgs(12).iter().map(|req| Value::Object(named(req, 1, |a| json!(a.strings(1))))).collect();
        put(&mut m, "security", (!security.is_empty()).then(|| Value::Array(security)));
        if let Some(sd) = d.msg(13) {
            let items = named(&sd, 1, |item| {
                let Some(k) = item.msg(2) else { panic!("only apiKey security is published") };
                json!({ "type": k.string(1), "name": k.string(2), "in": k.string(3), "description": k.string(4) })
            });
            m.insert("securityDefinitions".into(), Value::Object(items));
        }
        Value::Object(m)
    }

    #[test]
    fn protobuf_decodes_back_to_the_json_document() {
        let bytes = openapi::v2_protobuf(v2());
        let decoded = document(&bytes);
        // Compare section by section so a failure names what differs.
        for key in ["swagger", "info", "security", "securityDefinitions", "parameters"] {
            assert_eq!(decoded[key], v2()[key], "{key}");
        }
        for (path, item) in v2()["paths"].as_object().into_iter().flatten() {
            assert_eq!(&decoded["paths"][path], item, "{path}");
        }
        for (name, def) in v2()["definitions"].as_object().into_iter().flatten() {
            assert_eq!(&decoded["definitions"][name], def, "{name}");
        }
        assert_eq!(&decoded, v2());
    }

    #[test]
    fn protobuf_keeps_the_json_order_of_paths_and_properties() {
        let bytes = openapi::v2_protobuf(v2());
        let d = Msg::parse(&bytes);
        let Some(paths) = d.msg(8) else { panic!("no paths") };
        let names: Vec<String> = paths.msgs(2).iter().filter_map(|p| p.string(1)).collect();
        let expected: Vec<String> = v2()["paths"].as_object().into_iter().flatten().map(|(k, _)| k.clone()).collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn group_version_kind_extension_is_yaml_kubectl_can_read() {
        let bytes = openapi::v2_protobuf(v2());
        let decoded = document(&bytes);
        let op = &decoded["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["patch"];
        assert_eq!(op["x-kubernetes-group-version-kind"], json!({ "group": "", "kind": "Service", "version": "v1" }));
        assert_eq!(op["x-kubernetes-action"], "patch");
    }
}

/// The documents built from the crate's own schema registry, which
/// already carries the patch strategies, list kinds and machinery types:
/// the same client-facing checks must hold.
mod crate_schemas {
    use super::*;
    use svcnet_api::schema::Schemas;

    #[test]
    fn documents_from_the_schema_registry_satisfy_kubectl() {
        let defs = Schemas::get().definitions();
        let doc = openapi::v2_document(defs, &openapi::no_patch_meta);
        field_validation::assert_v2(&doc);
        let broken = references::broken_refs(&doc);
        assert!(broken.is_empty(), "{broken:?}");
        let problems = references::v2_keyword_problems(&doc);
        assert!(problems.is_empty(), "{problems:?}");
        let ports = &doc["definitions"]["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"];
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "port");
        for (group, version) in GROUPS {
            let Some(v3doc) = openapi::v3_group_version(group, version, defs, &openapi::no_patch_meta) else {
                panic!("{group}/{version} is served")
            };
            field_validation::assert_v3(group, version, &v3doc);
            let broken = references::broken_refs(&v3doc);
            assert!(broken.is_empty(), "{group}/{version}: {broken:?}");
        }
    }
}

/// Writes every document to `$SVCNET_OPENAPI_DUMP` (when set) for the
/// out-of-process checks: `openapi_verify_protobuf.py` decodes the
/// protobuf with protoc-generated classes, and a stub server can feed the
/// files to a real kubectl.
#[test]
fn documents_are_dumped_for_external_checks_when_asked() {
    let Some(dir) = std::env::var_os("SVCNET_OPENAPI_DUMP") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let write = |name: &str, bytes: &[u8]| {
        if let Err(e) = std::fs::write(dir.join(name), bytes) {
            panic!("writing {name}: {e}");
        }
    };
    // What the server serves: built from the crate's schema registry.
    let defs = svcnet_api::schema::Schemas::get().definitions();
    let v2 = openapi::v2_document(defs, &openapi::no_patch_meta);
    write("v2.json", &serde_json::to_vec(&v2).unwrap_or_default());
    write("v2.pb", &openapi::v2_protobuf(&v2));
    let mut hashes = Vec::new();
    for (group, version) in GROUPS {
        let doc = openapi::v3_group_version(group, version, defs, &openapi::no_patch_meta);
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        let key = openapi::v3_path(group, version);
        write(&format!("v3-{}.json", key.replace('/', "_")), &bytes);
        hashes.push((key, openapi::content_hash(&bytes)));
    }
    let pairs: Vec<(&str, &str)> = hashes.iter().map(|(k, h)| (k.as_str(), h.as_str())).collect();
    write("v3-root.json", &serde_json::to_vec(&openapi::v3_root(&pairs)).unwrap_or_default());
}
