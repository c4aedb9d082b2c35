//! Server-side apply and `metadata.managedFields`, as pure functions.
//!
//! Start at [`apply`] (a `PATCH` with `application/apply-patch+yaml`) and
//! [`track_update`] (every create, update and non-apply patch). Both work
//! on JSON objects of one kind, named by its definition
//! ("io.k8s.api.core.v1.Service"), and follow kube-apiserver's field
//! manager (k8s.io/apimachinery `util/managedfields`, on top of
//! sigs.k8s.io/structured-merge-diff):
//!
//! - Ownership is recorded per manager identity: the manager name, the
//!   operation (`Apply` or `Update`), for updates the apiVersion, and the
//!   subresource. Each entry holds a [`fieldpath::FieldSet`] written as
//!   `FieldsV1` (`f:` fields and map keys, `k:` associative-list items,
//!   `v:` set items, `i:` atomic-list positions, `"."` for a node owned
//!   together with children).
//! - How a field is owned comes from its list or map type
//!   ([`topology`]): keyed lists per item, sets per value, atomic lists,
//!   maps and structs as one leaf.
//! - Never tracked: `apiVersion`, `kind`, and `metadata` itself with its
//!   `name`, `namespace`, `uid`, `resourceVersion`, `generation`,
//!   `creationTimestamp`, `selfLink`, `clusterName` and `managedFields`.
//!   Writes to the main resource ignore `status`; writes to the `status`
//!   subresource ignore `spec`.
//! - `metadata.managedFields` lists appliers first, then updaters, each
//!   oldest first (by whole seconds), then by manager, apiVersion and
//!   subresource, as kube-apiserver sorts them. `time` is the `now` passed
//!   in (RFC 3339, seconds), set when an entry's manager changed the
//!   object. Beyond ten update entries the oldest fold into
//!   "ancient-changes".
//!
//! Known differences from kube-apiserver are listed on [`apply`] and
//! [`track_update`].

mod apply;
mod entries;
pub mod fieldpath;
pub mod topology;
mod typed;
mod update;

use serde_json::{Value, json};

pub use apply::{apply, apply_to_subresource};
pub use update::track_update;

use crate::schema::{SchemaNode, Schemas, go_quote};
use entries::Entry;
use fieldpath::{FieldSet, Path, PathElement};
use typed::Ty;

/// The manager kubectl uses for `kubectl apply --server-side`; conflicts
/// with fields it owned through client-side apply are waived for it.
const KUBECTL: &str = "kubectl";
/// The annotation client-side apply keeps its last configuration in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Who owns an object's fields when it is first applied to without
/// managedFields.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";
/// The manager name for writes that name none.
const UNKNOWN_MANAGER: &str = "unknown";
/// kube-apiserver's limit on fieldManager names.
const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// The operation a managedFields entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// A field an apply would change that another manager owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    pub operation: Operation,
    /// The apiVersion of the other manager's entry.
    pub api_version: String,
    pub subresource: Option<String>,
    /// The field as kube prints it: `.spec.selector`,
    /// `.spec.ports[port=80,protocol="TCP"].targetPort`.
    pub field: String,
    path: Path,
}

impl Conflict {
    fn new(entry: &Entry, path: Path) -> Conflict {
        Conflict {
            manager: entry.manager.clone(),
            operation: entry.operation,
            api_version: entry.api_version.clone(),
            subresource: (!entry.subresource.is_empty()).then(|| entry.subresource.clone()),
            field: path.to_string(),
            path,
        }
    }

    /// The manager as kube-apiserver names it: `"kubectl"` for an applier,
    /// `"kubectl-edit" using v1` for an updater, with
    /// ` with subresource "status"` after the name when there is one.
    pub fn manager_description(&self) -> String {
        let mut out = go_quote(&self.manager);
        if let Some(subresource) = &self.subresource {
            out.push_str(&format!(" with subresource {}", go_quote(subresource)));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    fn identifier(&self) -> String {
        Entry::new(&self.manager, self.operation, &self.api_version, self.subresource.as_deref().unwrap_or(""))
            .identifier()
    }
}

/// One `details.causes` item of the 409 Status a conflict becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictCause {
    /// Always "FieldManagerConflict".
    pub reason: &'static str,
    /// `conflict with "kubectl-edit" using v1`.
    pub message: String,
    /// `.spec.selector`.
    pub field: String,
}

/// Why an apply was refused.
///
/// kube-apiserver answers [`Conflicts`](ApplyError::Conflicts) with 409
/// Conflict (reason `Conflict`, the [`causes`](ApplyError::causes) as
/// details); [`InvalidObjectType`](ApplyError::InvalidObjectType),
/// [`ManagedFieldsNotNil`](ApplyError::ManagedFieldsNotNil) and
/// [`NotAnObject`](ApplyError::NotAnObject) with 400 Bad Request;
/// [`InvalidConfiguration`](ApplyError::InvalidConfiguration) and
/// [`InvalidManagedFields`](ApplyError::InvalidManagedFields) are plain
/// errors there and become 500 with the message as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields the configuration changes are owned by other managers, and
    /// the apply was not forced.
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The configuration's apiVersion and kind are not the resource's;
    /// carries them as Go prints a GroupVersionKind ("apps/v1beta1, Kind=Deployment").
    #[error("invalid object type: {0}")]
    InvalidObjectType(String),
    /// The configuration carries `metadata.managedFields`.
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsNotNil,
    /// The configuration is not a JSON object; carries its JSON type.
    #[error("error decoding YAML: json: cannot unmarshal {0} into Go value of type map[string]interface {{}}")]
    NotAnObject(&'static str),
    /// The configuration does not fit the schema: undeclared fields, list
    /// items without keys, duplicated items.
    #[error("failed to create typed patch object ({object}): {errors}")]
    InvalidConfiguration {
        /// "namespace/name; apps/v1, Kind=Deployment".
        object: String,
        /// One error, or "errors:" and one indented line per error.
        errors: String,
    },
    /// The live object's managedFields cannot be decoded.
    #[error("failed to decode managed fields: {0}")]
    InvalidManagedFields(String),
    /// The caller named a definition the schema registry does not hold.
    #[error("no schema is registered for {0}")]
    UnknownDefinition(String),
}

impl ApplyError {
    /// The Status causes of a conflict error (empty for other errors):
    /// reason "FieldManagerConflict", message `conflict with "m" using v1`,
    /// field `.spec.selector`.
    pub fn causes(&self) -> Vec<ConflictCause> {
        let ApplyError::Conflicts(conflicts) = self else { return Vec::new() };
        conflicts
            .iter()
            .map(|c| ConflictCause {
                reason: "FieldManagerConflict",
                message: format!("conflict with {}", c.manager_description()),
                field: c.field.clone(),
            })
            .collect()
    }
}

/// kube-apiserver's conflict message: one conflict inline, several grouped
/// by manager (managers in identifier order), one path per line.
fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [conflict] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflict.manager_description(),
            conflict.field
        );
    }
    let mut groups: Vec<(String, String, Vec<&str>)> = Vec::new();
    for conflict in conflicts {
        let id = conflict.identifier();
        match groups.iter_mut().find(|(i, _, _)| *i == id) {
            Some((_, _, fields)) => fields.push(&conflict.field),
            None => groups.push((id, conflict.manager_description(), vec![&conflict.field])),
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let mut lines = Vec::new();
    for (_, manager, fields) in groups {
        lines.push(format!("conflicts with {manager}:"));
        lines.extend(fields.into_iter().map(|f| format!("- {f}")));
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

/// The manager kube-apiserver records when a request names no
/// `fieldManager`: the User-Agent up to its first '/', without
/// unprintable characters, at most 128 bytes ("kubectl" for
/// "kubectl/v1.32.4 (linux/amd64) kubernetes/...").
pub fn default_manager(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in prefix.chars().filter(|c| is_go_printable(*c)) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

/// The `fieldManager` parameter when given, else [`default_manager`].
pub fn manager_name(field_manager: Option<&str>, user_agent: &str) -> String {
    match field_manager {
        Some(manager) if !manager.is_empty() => manager.to_string(),
        _ => default_manager(user_agent),
    }
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols
/// and the ASCII space; not controls, other spaces, format characters or
/// private use.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    let format =
        matches!(c as u32, 0xAD | 0x600..=0x605 | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF);
    let private = matches!(c as u32, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF);
    !(c.is_control() || c.is_whitespace() || format || private)
}

/// The kind a definition describes, resolved once per request.
struct Kind {
    ty: Ty<'static>,
    root: SchemaNode<'static>,
    /// "apps/v1".
    api_version: String,
    kind: String,
}

impl Kind {
    /// The served apiVersion and kind come from the definition's
    /// `x-kubernetes-group-version-kind`, else from `object`.
    fn new(definition: &str, object: &Value) -> Option<Kind> {
        let root = Schemas::get().definition(definition)?;
        let gvk = root.raw().get("x-kubernetes-group-version-kind").and_then(|g| g.get(0));
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        let (api_version, kind) = match gvk {
            Some(gvk) => {
                let (group, version) = (text(gvk.get("group")), text(gvk.get("version")));
                let api_version = if group.is_empty() { version } else { format!("{group}/{version}") };
                (api_version, text(gvk.get("kind")))
            }
            None => (text(object.get("apiVersion")), text(object.get("kind"))),
        };
        Some(Kind { ty: Ty::root(root), root, api_version, kind })
    }

    /// Fields a write through `subresource` does not own: `status` on the
    /// main resource (of kinds that have one), `spec` on `status`.
    fn ignored(&self, subresource: &str) -> FieldSet {
        let mut ignored = FieldSet::new();
        if let Some(field) = self.ignored_field(subresource) {
            ignored.insert(&[PathElement::Field(field.into())]);
        }
        ignored
    }

    /// The top-level field that [`Kind::ignored`] consists of, if any.
    fn ignored_field(&self, subresource: &str) -> Option<&'static str> {
        let field = match subresource {
            "" => "status",
            "status" => "spec",
            _ => return None,
        };
        self.root.has_property(field).then_some(field)
    }
}

/// Fields never recorded in managedFields (kube-apiserver's strip set).
fn stripped_fields() -> FieldSet {
    let mut set = FieldSet::new();
    let field = |name: &str| PathElement::Field(name.into());
    set.insert(&[field("apiVersion")]);
    set.insert(&[field("kind")]);
    set.insert(&[field("metadata")]);
    for name in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        set.insert(&[field("metadata"), field(name)]);
    }
    set
}

/// `metadata.managedFields` of an object.
fn managed_fields_of(object: &Value) -> Option<&Value> {
    object.get("metadata").and_then(|m| m.get("managedFields"))
}

/// A copy of `object` without `metadata.managedFields`.
fn without_managed_fields(object: &Value) -> Value {
    let mut object = object.clone();
    set_managed_fields(&mut object, None);
    object
}

/// Sets (or with `None` removes) `metadata.managedFields`.
fn set_managed_fields(object: &mut Value, fields: Option<Value>) {
    let Value::Object(map) = object else { return };
    match fields {
        Some(fields) => {
            let metadata = map.entry("metadata").or_insert_with(|| json!({}));
            if let Value::Object(metadata) = metadata {
                metadata.insert("managedFields".into(), fields);
            }
        }
        None => {
            if let Some(Value::Object(metadata)) = map.get_mut("metadata") {
                metadata.remove("managedFields");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conflict(manager: &str, operation: Operation, field: &str) -> Conflict {
        let entry = Entry::new(manager, operation, "v1", "");
        let path = Path(field.split('.').skip(1).map(|f| PathElement::Field(f.into())).collect());
        Conflict::new(&entry, path)
    }

    #[test]
    fn one_conflict_is_reported_inline_like_kube() {
        let error =
            ApplyError::Conflicts(vec![conflict("kubectl-client-side-apply", Operation::Update, ".spec.replicas")]);
        assert_eq!(
            error.to_string(),
            r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .spec.replicas"#
        );
        let causes = error.causes();
        assert_eq!(causes[0].reason, "FieldManagerConflict");
        assert_eq!(causes[0].message, r#"conflict with "kubectl-client-side-apply" using v1"#);
        assert_eq!(causes[0].field, ".spec.replicas");
    }

    #[test]
    fn several_conflicts_are_grouped_by_manager() {
        let error = ApplyError::Conflicts(vec![
            conflict("b", Operation::Apply, ".spec.a"),
            conflict("a", Operation::Update, ".spec.b"),
            conflict("b", Operation::Apply, ".spec.c"),
        ]);
        assert_eq!(
            error.to_string(),
            "Apply failed with 3 conflicts: conflicts with \"a\" using v1:\n- .spec.b\nconflicts with \"b\":\n- .spec.a\n- .spec.c"
        );
    }

    #[test]
    fn the_default_manager_is_the_user_agent_up_to_its_first_slash() {
        assert_eq!(default_manager("kubectl/v1.32.4 (linux/amd64) kubernetes/abcdef"), "kubectl");
        assert_eq!(default_manager("Go-http-client/1.1"), "Go-http-client");
        assert_eq!(default_manager("my\u{7}tool"), "mytool");
        assert_eq!(default_manager(&"x".repeat(200)).len(), 128);
        assert_eq!(manager_name(Some("kubectl-edit"), "kubectl/v1.32"), "kubectl-edit");
        assert_eq!(manager_name(None, "kubectl/v1.32"), "kubectl");
    }
}
