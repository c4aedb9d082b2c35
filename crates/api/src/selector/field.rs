//! Field selectors: the `fieldSelector` grammar, the fields each served
//! resource accepts, and reading those fields out of stored objects.
//!
//! Parsing follows apimachinery's `fields/selector.go`: terms split on
//! unescaped commas, each term on its first `!=`, `==` or `=`, and values
//! unescaped (`\\`, `\,`, `\=`). Which fields are allowed is decided per
//! resource, like kube-apiserver's field label conversion functions, with the
//! same two error wordings (resources without their own conversion get the
//! generic "is not a known field selector" message).

use std::fmt;

use serde_json::Value;

use super::SelectorError;
use crate::resources;

/// The comparison a field selector term makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `=`
    Equals,
    /// `==`, same meaning as `=`.
    DoubleEquals,
    /// `!=`
    NotEquals,
}

/// One `field<op>value` term, with the value already unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

impl FieldRequirement {
    /// A missing field reads as "", as in Go's `fields.Set.Get`.
    fn matches(&self, actual: Option<&str>) -> bool {
        let equal = actual.unwrap_or_default() == self.value;
        match self.operator {
            FieldOperator::Equals | FieldOperator::DoubleEquals => equal,
            FieldOperator::NotEquals => !equal,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = if self.operator == FieldOperator::NotEquals { "!=" } else { "=" };
        write!(f, "{}{op}{}", self.field, escape_field_value(&self.value))
    }
}

/// A parsed field selector: the AND of its terms; no terms matches everything.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FieldSelector {
    /// In the order Go keeps them: terms sorted as raw strings.
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses a `fieldSelector` query parameter. Which fields may be used is
    /// checked separately by [`FieldSelector::for_resource`], as kube-apiserver
    /// does after parsing.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut terms = split_terms(selector);
        terms.sort_unstable();
        let mut requirements = Vec::new();
        for term in terms.into_iter().filter(|t| !t.is_empty()) {
            let Some((field, operator, raw)) = split_term(term) else {
                return Err(SelectorError::InvalidFieldTerm { selector: selector.to_string(), term: term.to_string() });
            };
            let value = unescape_value(raw)?;
            requirements.push(FieldRequirement { field: field.to_string(), operator, value });
        }
        Ok(Self { requirements })
    }

    /// Checks every field against what the resource (by its plural, e.g.
    /// "pods") lets clients select on, and applies kube-apiserver's renames
    /// (`spec.host` is the old name of a pod's `spec.nodeName`).
    pub fn for_resource(mut self, plural: &str) -> Result<Self, SelectorError> {
        let conversion = conversion(plural);
        for r in &mut self.requirements {
            if plural == "pods" && r.field == "spec.host" {
                r.field = "spec.nodeName".to_string();
                continue;
            }
            match conversion {
                Conversion::Default if !DEFAULT_FIELDS.contains(&r.field.as_str()) => {
                    return Err(SelectorError::UnknownField(r.field.clone()));
                }
                Conversion::Custom(allowed) if !allowed.contains(&r.field.as_str()) => {
                    return Err(SelectorError::UnsupportedField(r.field.clone()));
                }
                _ => {}
            }
        }
        Ok(self)
    }

    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether every term holds; `get` returns a field's value, `None` when
    /// the object has no such field (compared as "").
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| r.matches(get(&r.field).as_deref()))
    }

    /// [`FieldSelector::matches`] over a stored object of the given resource,
    /// reading fields with [`field_value`].
    pub fn matches_object(&self, plural: &str, object: &Value) -> bool {
        self.matches(|field| field_value(plural, object, field))
    }

    /// The value a field must equal, if a term pins one; lets a store narrow
    /// a list by name or namespace before filtering.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator != FieldOperator::NotEquals)
            .map(|r| r.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Escapes a literal for use as a field selector value (`fields.EscapeValue`).
pub fn escape_field_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits on commas not preceded by a backslash; escapes stay in the terms.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits at the first operator; `!=` and `==` win over `=` at the same spot.
/// The field name has no escaping.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    const OPERATORS: [(&str, FieldOperator); 3] =
        [("!=", FieldOperator::NotEquals), ("==", FieldOperator::DoubleEquals), ("=", FieldOperator::Equals)];
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in OPERATORS {
            if rest.starts_with(op) {
                return Some((&term[..i], operator, &term[i + op.len()..]));
            }
        }
    }
    None
}

fn unescape_value(raw: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(raw.len());
    let mut in_slash = false;
    for c in raw.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::InvalidEscapeSequence(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(SelectorError::UnescapedCharacter(c)),
            c => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::InvalidEscapeSequence("\\".to_string()));
    }
    Ok(out)
}

const DEFAULT_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// Mirrors which kinds register a field label conversion in kube-apiserver
/// 1.33 (pkg/apis/core/v1/conversion.go); the rest use the default one.
/// ReplicaSets have `status.replicas` in their selectable fields but no
/// conversion for it in apps/v1, so kube-apiserver rejects it; so do we.
enum Conversion {
    Default,
    Custom(&'static [&'static str]),
}

fn conversion(plural: &str) -> Conversion {
    match plural {
        "pods" => Conversion::Custom(&[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ]),
        "nodes" => Conversion::Custom(&["metadata.name", "spec.unschedulable"]),
        "namespaces" => Conversion::Custom(&["status.phase", "metadata.name"]),
        "events" => Conversion::Custom(&[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "metadata.namespace",
            "metadata.name",
        ]),
        "secrets" => Conversion::Custom(&["type", "metadata.namespace", "metadata.name"]),
        "services" => Conversion::Custom(&["metadata.namespace", "metadata.name", "spec.clusterIP", "spec.type"]),
        _ => Conversion::Default,
    }
}

/// The field paths kube-apiserver accepts in a field selector for this
/// resource (by plural). Pods also accept `spec.host`, an alias of
/// `spec.nodeName` not listed here.
pub fn supported_fields(plural: &str) -> &'static [&'static str] {
    match conversion(plural) {
        Conversion::Default => DEFAULT_FIELDS,
        Conversion::Custom(fields) => fields,
    }
}

/// Reads a selectable field from a stored object, as the registry's
/// `ToSelectableFields` would: strings verbatim, booleans as "true"/"false",
/// counts in decimal, absent values as "". `None` when the resource has no
/// such selectable field (including `metadata.namespace` on cluster-scoped
/// resources).
pub fn field_value(plural: &str, object: &Value, path: &str) -> Option<String> {
    let s = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_string();
    let b = |pointer: &str| object.pointer(pointer).and_then(Value::as_bool).unwrap_or(false).to_string();
    match path {
        "metadata.name" => return Some(s("/metadata/name")),
        "metadata.namespace" => {
            // Unknown resources are assumed namespaced, the common case.
            let namespaced = resources::RESOURCES.iter().find(|r| r.plural == plural).is_none_or(|r| r.namespaced);
            return namespaced.then(|| s("/metadata/namespace"));
        }
        _ => {}
    }
    let value = match (plural, path) {
        ("pods", "spec.nodeName") => s("/spec/nodeName"),
        ("pods", "spec.restartPolicy") => s("/spec/restartPolicy"),
        ("pods", "spec.schedulerName") => s("/spec/schedulerName"),
        ("pods", "spec.serviceAccountName") => s("/spec/serviceAccountName"),
        ("pods", "spec.hostNetwork") => b("/spec/hostNetwork"),
        ("pods", "status.phase") => s("/status/phase"),
        ("pods", "status.nominatedNodeName") => s("/status/nominatedNodeName"),
        // The first of status.podIPs; older objects may only carry podIP.
        ("pods", "status.podIP") => object
            .pointer("/status/podIPs/0/ip")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| s("/status/podIP")),
        ("nodes", "spec.unschedulable") => b("/spec/unschedulable"),
        ("namespaces", "status.phase") => s("/status/phase"),
        ("events", "involvedObject.kind") => s("/involvedObject/kind"),
        ("events", "involvedObject.namespace") => s("/involvedObject/namespace"),
        ("events", "involvedObject.name") => s("/involvedObject/name"),
        ("events", "involvedObject.uid") => s("/involvedObject/uid"),
        ("events", "involvedObject.apiVersion") => s("/involvedObject/apiVersion"),
        ("events", "involvedObject.resourceVersion") => s("/involvedObject/resourceVersion"),
        ("events", "involvedObject.fieldPath") => s("/involvedObject/fieldPath"),
        ("events", "reason") => s("/reason"),
        ("events", "type") => s("/type"),
        ("events", "reportingComponent") => s("/reportingComponent"),
        // The legacy source component, else the new-style reporting controller.
        ("events", "source") => {
            let component = s("/source/component");
            if component.is_empty() { s("/reportingComponent") } else { component }
        }
        ("secrets", "type") => s("/type"),
        ("services", "spec.clusterIP") => s("/spec/clusterIP"),
        ("services", "spec.type") => s("/spec/type"),
        ("replicasets", "status.replicas") => {
            object.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0).to_string()
        }
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"nodeName": "node-a", "restartPolicy": "Always", "hostNetwork": true},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}
        })
    }

    #[test]
    fn field_selectors_match_pod_fields_with_equality_and_inequality() {
        let p = pod();
        for (sel, want) in [
            ("", true),
            ("spec.nodeName=node-a", true),
            ("spec.nodeName==node-a", true),
            ("spec.nodeName!=node-a", false),
            ("status.phase=Running,metadata.namespace=default", true),
            ("status.phase=Running,metadata.name=other", false),
            ("spec.hostNetwork=true", true),
            ("status.podIP=10.0.0.1", true),
            ("status.nominatedNodeName=", true),
            ("spec.schedulerName!=", false),
        ] {
            let s = FieldSelector::parse(sel).and_then(|s| s.for_resource("pods")).expect(sel);
            assert_eq!(s.matches_object("pods", &p), want, "{sel}");
        }
    }

    #[test]
    fn escaped_commas_and_equals_belong_to_the_value() {
        let s = FieldSelector::parse(r"metadata.name=a\,b\=c\\d,type!=x").expect("parses");
        assert_eq!(s.requirements()[0].value, r"a,b=c\d");
        assert_eq!(s.to_string(), r"metadata.name=a\,b\=c\\d,type!=x");
        assert_eq!(FieldSelector::parse(&s.to_string()).expect("reparses"), s);
    }

    #[test]
    fn malformed_field_selectors_give_kube_apiserver_messages() {
        let e = |s: &str| FieldSelector::parse(s).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(e("a=b,foo"), Err("invalid selector: 'a=b,foo'; can't understand 'foo'".into()));
        assert_eq!(e(r"a=b\x"), Err(r"invalid field selector: invalid escape sequence: \x".into()));
        assert_eq!(e(r"a=b\"), Err(r"invalid field selector: invalid escape sequence: \".into()));
        assert_eq!(e("a=b=c"), Err("invalid field selector: unescaped character in value: 61".into()));
    }

    #[test]
    fn unsupported_fields_are_rejected_with_the_resources_own_wording() {
        let e = |plural: &str, s: &str| {
            FieldSelector::parse(s).and_then(|s| s.for_resource(plural)).map(|_| ()).map_err(|e| e.to_string())
        };
        assert_eq!(
            e("configmaps", "spec.foo=x"),
            Err(r#""spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace""#.into())
        );
        assert_eq!(
            e("replicasets", "status.replicas=0"),
            Err(r#""status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace""#.into())
        );
        assert_eq!(e("pods", "spec.foo=x"), Err("field label not supported: spec.foo".into()));
        assert_eq!(
            e("namespaces", "metadata.namespace=x"),
            Err("field label not supported: metadata.namespace".into())
        );
        assert_eq!(e("services", "spec.type=NodePort"), Ok(()));
        assert_eq!(e("events", "involvedObject.kind=Pod,reason=Started"), Ok(()));
    }

    #[test]
    fn the_legacy_spec_host_field_selects_on_node_name() {
        let s = FieldSelector::parse("spec.host=node-a").and_then(|s| s.for_resource("pods")).expect("valid");
        assert_eq!(s.requirements()[0].field, "spec.nodeName");
        assert!(s.matches_object("pods", &pod()));
    }

    #[test]
    fn field_values_cover_events_nodes_secrets_and_services() {
        let ev = json!({"involvedObject": {"kind": "Pod", "name": "web-1"}, "reportingComponent": "kubelet", "type": "Normal"});
        assert_eq!(field_value("events", &ev, "source").as_deref(), Some("kubelet"));
        assert_eq!(field_value("events", &ev, "involvedObject.kind").as_deref(), Some("Pod"));
        assert_eq!(field_value("nodes", &json!({"spec": {}}), "spec.unschedulable").as_deref(), Some("false"));
        assert_eq!(field_value("nodes", &json!({}), "metadata.namespace"), None);
        assert_eq!(field_value("secrets", &json!({"type": "Opaque"}), "type").as_deref(), Some("Opaque"));
        assert_eq!(
            field_value("services", &json!({"spec": {"clusterIP": "None"}}), "spec.clusterIP").as_deref(),
            Some("None")
        );
        assert_eq!(field_value("services", &json!({}), "spec.ports"), None);
    }

    #[test]
    fn exact_name_matches_are_exposed_for_indexing() {
        let s = FieldSelector::parse("metadata.name=web,metadata.namespace!=kube-system").expect("parses");
        assert_eq!(s.requires_exact_match("metadata.name"), Some("web"));
        assert_eq!(s.requires_exact_match("metadata.namespace"), None);
    }

    /// Random strings over the grammar's alphabet: parsing never panics and
    /// whatever parses prints back to an equal selector.
    #[test]
    fn random_field_selectors_never_panic_and_round_trip() {
        const PIECES: &[&str] = &["a", "spec.x", "=", "==", "!=", "!", ",", "\\", "\\,", "\\=", "é", " ", ""];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parsed = 0;
        for _ in 0..20_000 {
            let len = next() % 8;
            let input: String = (0..len).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect();
            if let Ok(sel) = FieldSelector::parse(&input) {
                parsed += 1;
                let printed = sel.to_string();
                let reparsed = FieldSelector::parse(&printed).expect("printed selectors parse");
                // `==` prints as `=`; compare what the terms mean.
                let meaning = |s: &FieldSelector| {
                    let mut v: Vec<(String, bool, String)> = s
                        .requirements()
                        .iter()
                        .map(|r| (r.field.clone(), r.operator == FieldOperator::NotEquals, r.value.clone()))
                        .collect();
                    v.sort();
                    v
                };
                assert_eq!(meaning(&reparsed), meaning(&sel), "{input:?} printed as {printed:?}");
            }
        }
        assert!(parsed > 100, "the generator should produce valid selectors too ({parsed})");
    }

    #[test]
    fn supported_fields_list_the_defaults_for_plain_resources() {
        assert_eq!(supported_fields("endpointslices"), &["metadata.name", "metadata.namespace"]);
        assert!(supported_fields("pods").contains(&"spec.nodeName"));
    }
}
