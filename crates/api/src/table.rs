//! Server-side `meta.k8s.io/v1` Tables: what `kubectl get` asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! Start at [`table`]: it renders a list (or a single object) of one kind
//! into the Table JSON kube-apiserver sends, using [`columns`] and
//! [`row_cells`], which mirror the Go printers in
//! `pkg/printers/internalversion/printers.go` column for column. Kinds
//! without a printer get the default convertor's Name / Created At table.
//!
//! Like kube-apiserver, rows always carry the `-o wide` cells too (the
//! server generates tables with `Wide: true`); kubectl hides priority-1
//! columns unless asked for them.

mod apps;
mod columns;
mod corev1;
mod networking;
mod pod;
mod value;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::resources;
use crate::selector::validation::go_quote;

/// One entry of a Table's `columnDefinitions`, serialized exactly as
/// `metav1.TableColumnDefinition` (every field always present).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Title-cased, e.g. "Cluster-IP"; kubectl upper-cases it for display.
    pub name: &'static str,
    /// An OpenAPI type: "string", "integer", "number", "boolean" or "date".
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// "name" for the column that holds the object's name, else "".
    pub format: &'static str,
    pub description: &'static str,
    /// 0 always shown, 1 only with `-o wide`.
    pub priority: i32,
}

/// What each row's `object` holds (the `includeObject` query parameter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// `null`.
    None,
    /// A `PartialObjectMetadata` carrying the object's full `metadata`; the
    /// default, and what kubectl needs for `--show-labels` and names.
    #[default]
    Metadata,
    /// The whole object (kubectl asks for it when sorting with `--sort-by`).
    Object,
}

impl IncludeObject {
    /// Reads the `includeObject` query parameter; absent or empty is
    /// `Metadata`, as in kube-apiserver.
    pub fn from_query(value: Option<&str>) -> Result<Self, TableError> {
        match value.unwrap_or_default() {
            "" | "Metadata" => Ok(Self::Metadata),
            "None" => Ok(Self::None),
            "Object" => Ok(Self::Object),
            other => Err(TableError::UnrecognizedIncludeObject(other.to_string())),
        }
    }
}

/// A table request kube-apiserver would reject with 400 Bad Request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("unrecognized includeObject value: {}", go_quote(.0))]
    UnrecognizedIncludeObject(String),
}

/// Everything about a Table besides its kind, rows and clock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableOptions<'a> {
    pub include_object: IncludeObject,
    /// `noHeaders=true` (from `TableOptions`): omit `columnDefinitions`.
    pub no_headers: bool,
    /// The list's (or single object's) resourceVersion; omitted when empty.
    pub resource_version: &'a str,
    /// The list's continue token; omitted when `None` or empty.
    pub continue_token: Option<&'a str>,
    pub remaining_item_count: Option<i64>,
}

/// The columns kube-apiserver prints for a kind ("Pod", "Service", ...),
/// including the priority-1 ones; unknown kinds get Name and Created At.
pub fn columns(kind: &str) -> &'static [Column] {
    match kind {
        "Namespace" => &columns::NAMESPACE,
        "Node" => &columns::NODE,
        "Pod" => &columns::POD,
        "Service" => &columns::SERVICE,
        "Endpoints" => &columns::ENDPOINTS,
        "EndpointSlice" => &columns::ENDPOINT_SLICE,
        "Secret" => &columns::SECRET,
        "ConfigMap" => &columns::CONFIG_MAP,
        "Event" => &columns::EVENT,
        "Deployment" => &columns::DEPLOYMENT,
        "ReplicaSet" => &columns::REPLICA_SET,
        "StatefulSet" => &columns::STATEFUL_SET,
        "DaemonSet" => &columns::DAEMON_SET,
        "ControllerRevision" => &columns::CONTROLLER_REVISION,
        "Ingress" => &columns::INGRESS,
        "IngressClass" => &columns::INGRESS_CLASS,
        _ => &columns::GENERIC,
    }
}

/// The cells of one object's row, one per entry of [`columns`], as JSON
/// strings and integers; ages are measured against `now`.
pub fn row_cells(kind: &str, object: &Value, now: Timestamp) -> Vec<Value> {
    row(kind, object, now).0
}

/// Cells plus the row conditions only pods have.
fn row(kind: &str, object: &Value, now: Timestamp) -> (Vec<Value>, Option<Value>) {
    let cells = match kind {
        "Namespace" => corev1::namespace(object, now),
        "Node" => corev1::node(object, now),
        "Pod" => return pod::pod(object, now),
        "Service" => corev1::service(object, now),
        "Endpoints" => corev1::endpoints(object, now),
        "EndpointSlice" => networking::endpoint_slice(object, now),
        "Secret" => corev1::secret(object, now),
        "ConfigMap" => corev1::config_map(object, now),
        "Event" => corev1::event(object, now),
        "Deployment" => apps::deployment(object, now),
        "ReplicaSet" => apps::replica_set(object, now),
        "StatefulSet" => apps::stateful_set(object, now),
        "DaemonSet" => apps::daemon_set(object, now),
        "ControllerRevision" => apps::controller_revision(object, now),
        "Ingress" => networking::ingress(object, now),
        "IngressClass" => networking::ingress_class(object, now),
        _ => vec![json!(value::s(&object["metadata"]["name"])), json!(value::created_at(object))],
    };
    (cells, None)
}

/// Renders objects of one kind as the `meta.k8s.io/v1` Table kube-apiserver
/// returns, with default options besides those given.
pub fn table(
    kind: &str,
    objects: &[&Value],
    now: Timestamp,
    include_object: IncludeObject,
    resource_version: &str,
    continue_token: Option<&str>,
) -> Value {
    let options = TableOptions { include_object, resource_version, continue_token, ..TableOptions::default() };
    table_with(kind, objects, now, &options)
}

/// [`table`] with every option.
pub fn table_with(kind: &str, objects: &[&Value], now: Timestamp, options: &TableOptions<'_>) -> Value {
    let mut metadata = Map::new();
    if !options.resource_version.is_empty() {
        metadata.insert("resourceVersion".into(), json!(options.resource_version));
    }
    if let Some(token) = options.continue_token.filter(|t| !t.is_empty()) {
        metadata.insert("continue".into(), json!(token));
    }
    if let Some(n) = options.remaining_item_count {
        metadata.insert("remainingItemCount".into(), json!(n));
    }
    // Go leaves the slice nil with noHeaders, which encodes as null.
    let column_definitions = if options.no_headers { Value::Null } else { json!(columns(kind)) };
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let (cells, conditions) = row(kind, object, now);
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(cells));
            if let Some(conditions) = conditions {
                row.insert("conditions".into(), conditions);
            }
            row.insert("object".into(), row_object(kind, object, options.include_object));
            Value::Object(row)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

/// A row's `object`. With `None` Go encodes an empty RawExtension, i.e. `null`.
fn row_object(kind: &str, object: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
        IncludeObject::Object => with_type_meta(kind, object),
    }
}

/// The object as its API version encodes it: `kind` and `apiVersion` first,
/// filled in from the registry if the stored copy lacks them.
fn with_type_meta(kind: &str, object: &Value) -> Value {
    let Some(fields) = object.as_object() else {
        return object.clone();
    };
    if fields.contains_key("kind") && fields.contains_key("apiVersion") {
        return object.clone();
    }
    let mut out = Map::new();
    let api_version = resources::RESOURCES.iter().find(|r| r.kind == kind).map(|r| r.api_version());
    out.insert("kind".into(), fields.get("kind").cloned().unwrap_or_else(|| json!(kind)));
    if let Some(v) = fields.get("apiVersion").cloned().or_else(|| api_version.map(Value::String)) {
        out.insert("apiVersion".into(), v);
    }
    for (k, v) in fields {
        if k != "kind" && k != "apiVersion" {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// apimachinery's `duration.HumanDuration`, which kubectl ages use: two
/// significant units at most (`2m3s`, `3h5m`, `2d3h`, `2y10d`), `0s` for up
/// to two seconds in the future (clock skew), `<invalid>` beyond that.
pub fn human_duration(d: SignedDuration) -> String {
    // Go truncates towards zero at each step, as integer division does here.
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests;
