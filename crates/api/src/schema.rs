//! The OpenAPI schemas of every served kind, and navigation over them.
//!
//! Start at [`Schemas::get`]: a registry built once from k8s-openapi's
//! schemars impls, keyed by Kubernetes definition names
//! ("io.k8s.api.core.v1.Service") with `$ref`s of the form
//! `#/definitions/NAME`, ready to be emitted as OpenAPI v2/v3 documents.
//! [`SchemaNode`] walks a definition field by field; besides the JSON
//! schema it answers the questions the Go API types answer through struct
//! tags, which k8s-openapi does not carry: the strategic-merge-patch
//! strategy and merge key of a field (see `schema/patch_meta.rs`).
//!
//! [`check_object`] decodes a JSON object against a definition the way
//! kube-apiserver's JSON decoder does, reporting type mismatches and unknown
//! fields with Kubernetes' own messages.

mod decode;
mod go;
mod patch_meta;

use std::sync::LazyLock;

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::autoscaling::v1 as autoscaling;
use k8s_openapi::api::core::v1 as corev1;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::api::networking::v1 as networking;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::resources::{GROUPS, RESOURCES};

pub use decode::{DecodeError, check_object};
pub(crate) use go::quote as go_quote;
pub use patch_meta::{PatchMeta, patch_strategies};

/// Where definitions live in the documents we emit; every `$ref` starts so.
pub const DEFINITIONS_PREFIX: &str = "#/definitions/";

pub(crate) const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
pub(crate) const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
pub(crate) const TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Time";
pub(crate) const MICRO_TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// The registry of JSON schema definitions for every served kind and
/// everything they reference.
#[derive(Debug)]
pub struct Schemas {
    definitions: Map<String, Value>,
}

static SCHEMAS: LazyLock<Schemas> = LazyLock::new(Schemas::build);

impl Schemas {
    /// The process-wide registry, built on first use.
    pub fn get() -> &'static Schemas {
        &SCHEMAS
    }

    /// The raw definitions, keyed by definition name; references inside are
    /// `#/definitions/NAME`. Served kinds and their lists carry
    /// `x-kubernetes-group-version-kind`, and fields with a patch strategy
    /// carry `x-kubernetes-patch-strategy`/`x-kubernetes-patch-merge-key`,
    /// as in kube-apiserver's own OpenAPI documents.
    pub fn definitions(&self) -> &Map<String, Value> {
        &self.definitions
    }

    /// The root node of a definition, e.g. "io.k8s.api.core.v1.Service".
    pub fn definition(&self, name: &str) -> Option<SchemaNode<'_>> {
        let (name, schema) = self.definitions.get_key_value(name)?;
        Some(SchemaNode {
            schemas: self,
            schema: schema.as_object()?,
            field: None,
            definition: Some(name.as_str()),
            patch: PatchMeta::NONE,
            go_type: None,
        })
    }

    fn build() -> Schemas {
        let settings = SchemaSettings::draft07().with(|s| {
            s.definitions_path = DEFINITIONS_PREFIX.into();
            s.meta_schema = None;
            // Kubernetes' v2 documents keep siblings next to `$ref`
            // ("description"); the v3 emitter rewrites them itself.
            s.transforms = Vec::new();
        });
        let mut generator = settings.into_generator();
        generator.subschema_for::<corev1::Namespace>();
        generator.subschema_for::<corev1::Node>();
        generator.subschema_for::<corev1::Pod>();
        generator.subschema_for::<corev1::Service>();
        generator.subschema_for::<corev1::Endpoints>();
        generator.subschema_for::<corev1::Secret>();
        generator.subschema_for::<corev1::ConfigMap>();
        generator.subschema_for::<corev1::Event>();
        generator.subschema_for::<discovery::EndpointSlice>();
        generator.subschema_for::<apps::Deployment>();
        generator.subschema_for::<apps::ReplicaSet>();
        generator.subschema_for::<apps::StatefulSet>();
        generator.subschema_for::<apps::DaemonSet>();
        generator.subschema_for::<apps::ControllerRevision>();
        generator.subschema_for::<networking::Ingress>();
        generator.subschema_for::<networking::IngressClass>();
        generator.subschema_for::<autoscaling::Scale>();
        generator.subschema_for::<meta::Status>();
        generator.subschema_for::<meta::DeleteOptions>();
        generator.subschema_for::<meta::ListMeta>();
        generator.subschema_for::<meta::WatchEvent<corev1::Pod>>();
        generator.subschema_for::<meta::APIGroup>();
        generator.subschema_for::<meta::APIGroupList>();
        generator.subschema_for::<meta::APIResourceList>();
        generator.subschema_for::<meta::APIVersions>();
        generator.subschema_for::<meta::Patch>();
        let mut definitions = generator.take_definitions(false);

        add_list_definitions(&mut definitions);
        add_group_version_kinds(&mut definitions);
        patch_meta::annotate(&mut definitions);
        Schemas { definitions }
    }
}

/// k8s-openapi has no schemas for the `FooList` kinds (its `List<T>` is
/// generic), so they are written here in the shape Kubernetes publishes.
fn add_list_definitions(definitions: &mut Map<String, Value>) {
    for resource in RESOURCES {
        let Some(item) = definitions.get(resource.definition) else { continue };
        let describe =
            |field: &str| item.pointer(&format!("/properties/{field}/description")).cloned().unwrap_or(Value::Null);
        let (api_version, kind) = (describe("apiVersion"), describe("kind"));
        let list = json!({
            "description": format!("{} is a list of {} objects.", resource.list_kind, resource.kind),
            "type": "object",
            "properties": {
                "apiVersion": { "description": api_version, "type": "string" },
                "items": {
                    "description": format!("List of {}.", resource.plural),
                    "type": "array",
                    "items": { "$ref": format!("{DEFINITIONS_PREFIX}{}", resource.definition) },
                },
                "kind": { "description": kind, "type": "string" },
                "metadata": {
                    "$ref": format!("{DEFINITIONS_PREFIX}{LIST_META}"),
                    "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                },
            },
            "required": ["items"],
        });
        definitions.insert(list_definition(resource.definition, resource.list_kind), list);
    }
}

/// "io.k8s.api.core.v1.Service" + "ServiceList" -> "io.k8s.api.core.v1.ServiceList".
fn list_definition(item: &str, list_kind: &str) -> String {
    match item.rsplit_once('.') {
        Some((package, _)) => format!("{package}.{list_kind}"),
        None => list_kind.to_string(),
    }
}

/// kubectl finds the schema of a kind through this extension (explain,
/// client-side validation), so every kind we serve must carry it.
fn add_group_version_kinds(definitions: &mut Map<String, Value>) {
    let mut tag = |definition: &str, gvks: Vec<Value>| {
        if let Some(Value::Object(schema)) = definitions.get_mut(definition) {
            schema.insert("x-kubernetes-group-version-kind".into(), Value::Array(gvks));
        }
    };
    let gvk = |group: &str, version: &str, kind: &str| json!({"group": group, "kind": kind, "version": version});
    for r in RESOURCES {
        tag(r.definition, vec![gvk(r.group, r.version, r.kind)]);
        tag(&list_definition(r.definition, r.list_kind), vec![gvk(r.group, r.version, r.list_kind)]);
    }
    tag("io.k8s.api.autoscaling.v1.Scale", vec![gvk("autoscaling", "v1", "Scale")]);
    tag("io.k8s.apimachinery.pkg.apis.meta.v1.Status", vec![gvk("", "v1", "Status")]);
    // Meta kinds are registered in every group version, as upstream lists them.
    for (definition, kind) in [
        ("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", "DeleteOptions"),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent", "WatchEvent"),
    ] {
        let gvks = GROUPS.iter().map(|(g, v)| gvk(g, v, kind)).collect();
        tag(definition, gvks);
    }
}

/// What a schema node holds, as far as decoding and patching care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    /// A struct (with `properties`) or a map (with `additionalProperties`);
    /// see [`SchemaNode::is_map`].
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
    /// `intstr.IntOrString`: an int32 or a string.
    IntOrString,
    /// `resource.Quantity`: a string or number in quantity syntax.
    Quantity,
    /// `metav1.Time` or `metav1.MicroTime`: an RFC 3339 string.
    Time,
    /// A `[]byte` field: a base64 string.
    Bytes,
    /// Anything goes: `runtime.RawExtension`, `metav1.FieldsV1`, or a schema
    /// without a type.
    Any,
}

/// A position in a definition: the schema of a field, list item or map
/// value, with `$ref`s followed, plus the field metadata Go struct tags
/// would carry.
#[derive(Debug, Clone, Copy)]
pub struct SchemaNode<'a> {
    schemas: &'a Schemas,
    /// The schema after following `$ref`.
    schema: &'a Map<String, Value>,
    /// The schema as written at the field, when it differs (a `$ref` with a
    /// field-specific description).
    field: Option<&'a Map<String, Value>>,
    /// The definition this node is, when it is a named one.
    definition: Option<&'a str>,
    patch: PatchMeta,
    /// The Go type of the field when it is a named type the schema cannot
    /// tell ("v1.Protocol"), for decode error messages.
    go_type: Option<&'static str>,
}

impl<'a> SchemaNode<'a> {
    fn resolve(schemas: &'a Schemas, written: &'a Value) -> Option<SchemaNode<'a>> {
        let written = written.as_object()?;
        let (schema, definition) = match written.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.strip_prefix(DEFINITIONS_PREFIX)?;
                let (name, schema) = schemas.definitions.get_key_value(name)?;
                (schema.as_object()?, Some(name.as_str()))
            }
            None => (written, None),
        };
        Some(SchemaNode {
            schemas,
            schema,
            field: definition.map(|_| written),
            definition,
            patch: PatchMeta::NONE,
            go_type: None,
        })
    }

    /// The definition name when this node is a named definition.
    pub fn definition_name(&self) -> Option<&'a str> {
        self.definition
    }

    /// The raw JSON schema (after following `$ref`).
    pub fn raw(&self) -> &'a Map<String, Value> {
        self.schema
    }

    pub fn kind(&self) -> SchemaKind {
        match self.definition {
            Some(INT_OR_STRING) => return SchemaKind::IntOrString,
            Some(QUANTITY) => return SchemaKind::Quantity,
            Some(TIME | MICRO_TIME) => return SchemaKind::Time,
            _ => {}
        }
        if self.flag("x-kubernetes-int-or-string") {
            return SchemaKind::IntOrString;
        }
        if self.flag("x-kubernetes-preserve-unknown-fields") {
            return SchemaKind::Any;
        }
        match self.schema.get("type").and_then(Value::as_str) {
            Some("object") if self.schema.contains_key("properties") || self.is_map() => SchemaKind::Object,
            // RawExtension, FieldsV1, Patch: opaque objects Go keeps raw.
            Some("object") => SchemaKind::Any,
            Some("array") => SchemaKind::Array,
            Some("string") if self.format() == Some("byte") => SchemaKind::Bytes,
            Some("string") if self.format() == Some("date-time") => SchemaKind::Time,
            Some("string") => SchemaKind::String,
            Some("integer") => SchemaKind::Integer,
            Some("number") => SchemaKind::Number,
            Some("boolean") => SchemaKind::Boolean,
            _ => SchemaKind::Any,
        }
    }

    fn flag(&self, extension: &str) -> bool {
        self.schema.get(extension).and_then(Value::as_bool).unwrap_or(false)
    }

    /// The `format` of a primitive: "int32", "int64", "double", "byte", "date-time".
    pub fn format(&self) -> Option<&'a str> {
        self.schema.get("format").and_then(Value::as_str)
    }

    /// The field's description, preferring the one written at the field.
    pub fn description(&self) -> Option<&'a str> {
        self.field.and_then(|f| f.get("description")).or_else(|| self.schema.get("description")).and_then(Value::as_str)
    }

    /// A map (`additionalProperties`) rather than a struct.
    pub fn is_map(&self) -> bool {
        self.schema.get("additionalProperties").is_some_and(Value::is_object)
    }

    /// Whether this node is a struct with the named field.
    pub fn has_property(&self, name: &str) -> bool {
        self.schema.get("properties").and_then(Value::as_object).is_some_and(|p| p.contains_key(name))
    }

    /// The schema of a struct field, carrying the field's patch metadata.
    pub fn property(&self, name: &str) -> Option<SchemaNode<'a>> {
        let written = self.schema.get("properties")?.as_object()?.get(name)?;
        let mut node = SchemaNode::resolve(self.schemas, written)?;
        if let Some(parent) = self.definition {
            node.patch = patch_meta::lookup(parent, name);
            node.go_type = go::named_field_type(parent, name);
        }
        Some(node)
    }

    /// The struct fields, in schema order.
    pub fn properties(&self) -> impl Iterator<Item = (&'a str, SchemaNode<'a>)> + '_ {
        self.schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|p| p.keys())
            .filter_map(|name| Some((name.as_str(), self.property(name)?)))
    }

    /// Names listed under `required`.
    pub fn required(&self) -> impl Iterator<Item = &'a str> {
        self.schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
    }

    /// The schema of list items.
    pub fn items(&self) -> Option<SchemaNode<'a>> {
        let mut node = SchemaNode::resolve(self.schemas, self.schema.get("items")?)?;
        // A named element type ("[]v1.IPFamily") names its items too.
        node.go_type = self.go_type.and_then(|t| t.strip_prefix("[]"));
        Some(node)
    }

    /// The schema of map values.
    pub fn additional_properties(&self) -> Option<SchemaNode<'a>> {
        SchemaNode::resolve(self.schemas, self.schema.get("additionalProperties")?)
    }

    /// The strategic-merge-patch metadata of the field this node was reached
    /// through (Go's `patchStrategy`/`patchMergeKey` struct tags).
    pub fn patch_meta(&self) -> PatchMeta {
        self.patch
    }

    /// The Go type kube-apiserver would name in a decode error:
    /// "int32", "[]v1.ServicePort", "map[string]string", "v1.Protocol".
    pub fn go_type(&self) -> String {
        if let Some(named) = self.go_type {
            return named.to_string();
        }
        match self.kind() {
            SchemaKind::Object if self.is_map() => {
                let value = self.additional_properties().map(|v| v.go_type());
                format!("map[string]{}", value.as_deref().unwrap_or("interface {}"))
            }
            SchemaKind::Array => {
                let item = self.items().map(|i| i.go_type());
                format!("[]{}", item.as_deref().unwrap_or("interface {}"))
            }
            SchemaKind::String => "string".into(),
            SchemaKind::Bytes => "[]uint8".into(),
            SchemaKind::Boolean => "bool".into(),
            SchemaKind::Number => "float64".into(),
            SchemaKind::Integer => match self.format() {
                Some("int32") => "int32".into(),
                Some("int64") => "int64".into(),
                _ => "int".into(),
            },
            _ => match self.definition {
                Some(name) => go::qualified_name(name),
                None => "interface {}".into(),
            },
        }
    }

    /// The Go struct name of a named definition ("ServicePort").
    pub(crate) fn go_struct_name(&self) -> &'a str {
        self.definition.map(go::short_name).unwrap_or("")
    }

    pub(crate) fn is_micro_time(&self) -> bool {
        self.definition == Some(MICRO_TIME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(definition: &str) -> SchemaNode<'static> {
        Schemas::get().definition(definition).expect("definition registered")
    }

    #[test]
    fn every_served_kind_and_its_list_has_a_definition() {
        for r in RESOURCES {
            assert!(Schemas::get().definition(r.definition).is_some(), "{}", r.definition);
            let list = list_definition(r.definition, r.list_kind);
            let items = node(&list).property("items").and_then(|i| i.items());
            assert_eq!(items.and_then(|i| i.definition_name()), Some(r.definition));
        }
    }

    #[test]
    fn every_reference_points_at_a_definition() {
        fn walk(value: &Value, definitions: &Map<String, Value>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        let name = r.strip_prefix(DEFINITIONS_PREFIX).expect("definitions ref");
                        assert!(definitions.contains_key(name), "dangling {r}");
                    }
                    map.values().for_each(|v| walk(v, definitions));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, definitions)),
                _ => {}
            }
        }
        let definitions = Schemas::get().definitions();
        walk(&Value::Object(definitions.clone()), definitions);
    }

    #[test]
    fn navigation_reaches_service_port_fields_with_their_kinds() {
        let spec = node("io.k8s.api.core.v1.Service").property("spec").expect("spec");
        assert_eq!(spec.definition_name(), Some("io.k8s.api.core.v1.ServiceSpec"));
        let ports = spec.property("ports").expect("ports");
        assert_eq!(ports.kind(), SchemaKind::Array);
        let port = ports.items().expect("items");
        assert_eq!(port.property("port").map(|p| p.kind()), Some(SchemaKind::Integer));
        assert_eq!(port.property("targetPort").map(|p| p.kind()), Some(SchemaKind::IntOrString));
        assert_eq!(port.property("protocol").map(|p| p.go_type()).as_deref(), Some("v1.Protocol"));
        assert_eq!(ports.go_type(), "[]v1.ServicePort");
    }

    #[test]
    fn special_kinds_are_recognised() {
        let pod = node("io.k8s.api.core.v1.Pod");
        let meta = pod.property("metadata").expect("metadata");
        assert_eq!(meta.property("creationTimestamp").map(|n| n.kind()), Some(SchemaKind::Time));
        assert_eq!(meta.property("labels").map(|n| n.go_type()).as_deref(), Some("map[string]string"));
        let managed = meta.property("managedFields").and_then(|m| m.items()).expect("managedFields");
        assert_eq!(managed.property("fieldsV1").map(|n| n.kind()), Some(SchemaKind::Any));
        let secret = node("io.k8s.api.core.v1.Secret");
        let data = secret.property("data").and_then(|d| d.additional_properties());
        assert_eq!(data.map(|d| d.kind()), Some(SchemaKind::Bytes));
        let limits = node("io.k8s.api.core.v1.ResourceRequirements").property("limits").expect("limits");
        assert_eq!(limits.additional_properties().map(|q| q.kind()), Some(SchemaKind::Quantity));
        assert_eq!(limits.go_type(), "v1.ResourceList");
    }

    #[test]
    fn patch_metadata_is_reachable_through_navigation_and_published() {
        let pod_spec = node("io.k8s.api.core.v1.PodSpec");
        let containers = pod_spec.property("containers").expect("containers").patch_meta();
        assert!(containers.merge && !containers.retain_keys);
        assert_eq!(containers.merge_key, Some("name"));
        let volumes = pod_spec.property("volumes").expect("volumes").patch_meta();
        assert!(volumes.merge && volumes.retain_keys);
        assert_eq!(pod_spec.property("tolerations").map(|t| t.patch_meta()), Some(PatchMeta::NONE));
        let published = &Schemas::get().definitions()["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(published["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(published["x-kubernetes-patch-merge-key"], "name");
    }

    #[test]
    fn served_kinds_carry_their_group_version_kind() {
        let deployment = &Schemas::get().definitions()["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        let list = &Schemas::get().definitions()["io.k8s.api.core.v1.ServiceList"];
        assert_eq!(list["x-kubernetes-group-version-kind"][0]["kind"], "ServiceList");
    }
}
