//! Field paths and sets of them, and their `FieldsV1` wire form.
//!
//! A [`FieldSet`] is a tree of [`PathElement`]s; a node is a *member* when
//! the path ending there is in the set itself (a leaf, a list item, a map
//! entry) and may also have children. `FieldsV1` writes each node as a JSON
//! object keyed by the serialized element (`f:`, `k:`, `v:`, `i:`), with
//! `"."` marking a node that is both a member and has children. Elements
//! are ordered as structured-merge-diff orders them (field names, then
//! keys, then values, then indices), which is the order kube-apiserver
//! writes them in.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Number, Value};

use crate::schema::go_quote;

/// One step of a path into an object.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// A struct field or a map key: `f:<name>`, printed `.name`.
    Field(String),
    /// An item of an associative list, by its key fields sorted by name:
    /// `k:{"port":80,"protocol":"TCP"}`, printed `[port=80,protocol="TCP"]`.
    Key(Vec<(String, Value)>),
    /// An item of a set list by its value: `v:"x"`, printed `[="x"]`.
    Value(Value),
    /// A position in an atomic list: `i:3`, printed `[3]`.
    Index(usize),
}

impl PathElement {
    /// A key element; the fields are sorted by name as Kubernetes does.
    pub fn key(mut fields: Vec<(String, Value)>) -> PathElement {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `FieldsV1` spelling: `f:name`, `k:{...}`, `v:...`, `i:N`.
    pub fn serialize(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut out = String::from("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_go_string(&mut out, name);
                    out.push(':');
                    write_go_json(&mut out, value);
                }
                out.push('}');
                out
            }
            PathElement::Value(value) => {
                let mut out = String::from("v:");
                write_go_json(&mut out, value);
                out
            }
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses the `FieldsV1` spelling. `Ok(None)` is an element type this
    /// version does not know, which Kubernetes skips.
    pub fn deserialize(s: &str) -> Result<Option<PathElement>, String> {
        let (kind, rest) = match (s.get(..1), s.get(1..2), s.get(2..)) {
            (Some(kind), Some(":"), Some(rest)) => (kind, rest),
            (_, _, _) if s.len() < 2 => return Err(format!("key must be 2 characters long: {s}")),
            _ => return Err(format!("missing colon: {s}")),
        };
        let element = match kind {
            "f" => PathElement::Field(rest.to_string()),
            "v" => PathElement::Value(serde_json::from_str(rest).map_err(|e| e.to_string())?),
            "k" => match serde_json::from_str(rest).map_err(|e| e.to_string())? {
                Value::Object(fields) => PathElement::key(fields.into_iter().collect()),
                _ => return Err(format!("key is not an object: {s}")),
            },
            "i" => PathElement::Index(rest.parse().map_err(|e: std::num::ParseIntError| e.to_string())?),
            _ => return Ok(None),
        };
        Ok(Some(element))
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b) {
                    let order = an.cmp(bn).then_with(|| compare_values(av, bv));
                    if order != Ordering::Equal {
                        return order;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    /// As kube-apiserver prints paths in conflicts: `.name`,
    /// `[port=80,protocol="TCP"]`, `[="x"]`, `[3]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let fields: Vec<String> = fields.iter().map(|(n, v)| format!("{n}={}", value_to_string(v))).collect();
                write!(f, "[{}]", fields.join(","))
            }
            PathElement::Value(value) => write!(f, "[={}]", value_to_string(value)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the root of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElement>);

impl fmt::Display for Path {
    /// `.spec.ports[port=80,protocol="TCP"].targetPort`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|e| e.fmt(f))
    }
}

/// A set of paths, as a tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    nodes: BTreeMap<PathElement, Node>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    member: bool,
    children: FieldSet,
}

impl Node {
    fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }
}

impl FieldSet {
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Adds a path; the empty path is ignored (the root is never a member).
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else { return };
        let node = self.nodes.entry(first.clone()).or_default();
        if rest.is_empty() {
            node.member = true;
        } else {
            node.children.insert(rest);
        }
    }

    /// Whether the path itself is in the set.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path.split_first() {
            None => false,
            Some((first, [])) => self.nodes.get(first).is_some_and(|n| n.member),
            Some((first, rest)) => self.nodes.get(first).is_some_and(|n| n.children.has(rest)),
        }
    }

    /// The paths below `element`, relative to it.
    pub fn child(&self, element: &PathElement) -> Option<&FieldSet> {
        self.nodes.get(element).map(|n| &n.children)
    }

    /// Whether `element` is a member here or has members below it.
    pub(crate) fn touches(&self, element: &PathElement) -> bool {
        self.nodes.contains_key(element)
    }

    pub(crate) fn is_member(&self, element: &PathElement) -> bool {
        self.nodes.get(element).is_some_and(|n| n.member)
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.union_in(other);
        out
    }

    fn union_in(&mut self, other: &FieldSet) {
        for (element, theirs) in &other.nodes {
            let mine = self.nodes.entry(element.clone()).or_default();
            mine.member |= theirs.member;
            mine.children.union_in(&theirs.children);
        }
    }

    /// The paths of `self` that are not paths of `other` (exact paths:
    /// removing `a` keeps `a.b`).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (element, mine) in &self.nodes {
            let node = match other.nodes.get(element) {
                None => mine.clone(),
                Some(theirs) => {
                    Node { member: mine.member && !theirs.member, children: mine.children.difference(&theirs.children) }
                }
            };
            if !node.is_empty() {
                out.nodes.insert(element.clone(), node);
            }
        }
        out
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (element, mine) in &self.nodes {
            let Some(theirs) = other.nodes.get(element) else { continue };
            let node =
                Node { member: mine.member && theirs.member, children: mine.children.intersection(&theirs.children) };
            if !node.is_empty() {
                out.nodes.insert(element.clone(), node);
            }
        }
        out
    }

    /// The paths of `self` that neither are in `other` nor lie below a
    /// path of `other`.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (element, mine) in &self.nodes {
            let node = match other.nodes.get(element) {
                None => mine.clone(),
                Some(theirs) if theirs.member => continue,
                Some(theirs) => {
                    Node { member: mine.member, children: mine.children.recursive_difference(&theirs.children) }
                }
            };
            if !node.is_empty() {
                out.nodes.insert(element.clone(), node);
            }
        }
        out
    }

    /// Every path, members of a node before the paths below it, each level
    /// in element order (the order Kubernetes lists conflicts in).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for (element, node) in &self.nodes {
            if node.member {
                let mut path = prefix.clone();
                path.push(element.clone());
                out.push(Path(path));
            }
        }
        for (element, node) in &self.nodes {
            if !node.children.is_empty() {
                prefix.push(element.clone());
                node.children.collect(prefix, out);
                prefix.pop();
            }
        }
    }

    /// The `FieldsV1` JSON of the set.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.emit(false))
    }

    fn emit(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self && !self.is_empty() {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        for (element, node) in &self.nodes {
            out.insert(element.serialize(), Value::Object(node.children.emit(node.member)));
        }
        out
    }

    /// Parses `FieldsV1` JSON. Unknown element types are skipped, as
    /// Kubernetes skips them.
    pub fn from_fields_v1(fields: &Value) -> Result<FieldSet, String> {
        match fields {
            Value::Object(map) => Ok(FieldSet::read(map)?.0),
            Value::Null => Ok(FieldSet::new()),
            _ => Err("FieldsV1 must be a JSON object".into()),
        }
    }

    /// The children of a node, and whether the node is a member: an object
    /// without (known) children is a leaf, `"."` marks a member with
    /// children.
    fn read(map: &Map<String, Value>) -> Result<(FieldSet, bool), String> {
        let mut set = FieldSet::new();
        let mut member = false;
        for (key, value) in map {
            if key == "." {
                member = true;
                continue;
            }
            let Some(element) = PathElement::deserialize(key)? else { continue };
            let Value::Object(child) = value else {
                return Err(format!("expected an object for {key}"));
            };
            let (children, child_member) = FieldSet::read(child)?;
            let node = set.nodes.entry(element).or_default();
            node.member |= child_member;
            node.children.union_in(&children);
        }
        if set.is_empty() {
            member = true;
        }
        Ok((set, member))
    }
}

/// A total order over JSON values, as structured-merge-diff orders them:
/// numbers (ints and floats compared numerically), then strings, booleans,
/// lists, maps and null.
pub(crate) fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (i, j) in x.iter().zip(y) {
                let order = compare_values(i, j);
                if order != Ordering::Equal {
                    return order;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for ((xk, xv), (yk, yv)) in xs.iter().zip(&ys) {
                let order = xk.cmp(yk).then_with(|| compare_values(xv, yv));
                if order != Ordering::Equal {
                    return order;
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

fn compare_numbers(x: &Number, y: &Number) -> Ordering {
    match (x.as_i64(), y.as_i64()) {
        (Some(i), Some(j)) => i.cmp(&j),
        _ => {
            let (f, g) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            f.partial_cmp(&g).unwrap_or(Ordering::Equal)
        }
    }
}

/// Equality as structured-merge-diff sees it: numbers by value (`1` equals
/// `1.0`), maps regardless of key order.
pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(i, j)| values_equal(i, j)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

/// structured-merge-diff's `value.ToString`, used in printed paths.
fn value_to_string(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => crate::patch::float_g(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => go_quote(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(value_to_string).collect();
            format!("[{}]", items.join(","))
        }
        Value::Object(map) => map.iter().map(|(k, v)| format!("{k}={}", value_to_string(v))).collect(),
    }
}

/// Writes a JSON value as Go's `encoding/json` does: map keys sorted,
/// `<`, `>`, `&`, U+2028 and U+2029 escaped.
pub(crate) fn write_go_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => out.push_str(&i.to_string()),
            (None, Some(u)) => out.push_str(&u.to_string()),
            (None, None) => out.push_str(&go_json_float(n.as_f64().unwrap_or(0.0))),
        },
        Value::String(s) => write_go_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(out, k);
                out.push(':');
                write_go_json(out, v);
            }
            out.push('}');
        }
    }
}

/// `encoding/json` floats: plain notation between 1e-6 and 1e21.
fn go_json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let sci = format!("{f:e}");
        let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    format!("{f}")
}

fn write_go_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.into())
    }

    #[test]
    fn keys_serialize_with_sorted_names_and_print_like_kube() {
        let key = PathElement::key(vec![("protocol".into(), json!("TCP")), ("port".into(), json!(80))]);
        assert_eq!(key.serialize(), r#"k:{"port":80,"protocol":"TCP"}"#);
        let path = Path(vec![f("spec"), f("ports"), key, f("targetPort")]);
        assert_eq!(path.to_string(), r#".spec.ports[port=80,protocol="TCP"].targetPort"#);
        assert_eq!(PathElement::Value(json!("x")).to_string(), r#"[="x"]"#);
        assert_eq!(PathElement::Value(json!("a<b")).serialize(), r#"v:"a\u003cb""#);
    }

    #[test]
    fn elements_order_fields_before_keys_before_values_before_indices() {
        let mut elements = [PathElement::Index(0), PathElement::Value(json!("a")), PathElement::key(vec![]), f("z")];
        elements.sort();
        assert!(matches!(elements[0], PathElement::Field(_)));
        assert!(matches!(elements[3], PathElement::Index(_)));
        assert_eq!(compare_values(&json!(2), &json!(10.5)), Ordering::Less);
        assert_eq!(compare_values(&json!(1), &json!(1.0)), Ordering::Equal);
        assert_eq!(compare_values(&json!(9), &json!("a")), Ordering::Less);
    }

    #[test]
    fn a_node_with_children_that_is_also_a_member_is_marked_with_a_dot() {
        let mut set = FieldSet::new();
        set.insert(&[f("metadata"), f("labels")]);
        set.insert(&[f("metadata"), f("labels"), f("app")]);
        set.insert(&[f("spec"), f("selector")]);
        assert_eq!(
            set.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:selector": {}}})
        );
        let text = serde_json::to_string(&set.to_fields_v1()).unwrap_or_default();
        assert_eq!(text, r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:selector":{}}}"#);
    }

    #[test]
    fn set_algebra_works_on_exact_paths_and_on_subtrees() {
        let mut a = FieldSet::new();
        a.insert(&[f("a")]);
        a.insert(&[f("a"), f("b")]);
        a.insert(&[f("c")]);
        let mut b = FieldSet::new();
        b.insert(&[f("a")]);
        assert!(a.difference(&b).has(&[f("a"), f("b")]));
        assert!(!a.difference(&b).has(&[f("a")]));
        assert!(a.recursive_difference(&b).child(&f("a")).is_none());
        assert_eq!(a.intersection(&b).paths(), vec![Path(vec![f("a")])]);
        assert_eq!(b.union(&a), a);
        let order: Vec<String> = a.paths().iter().map(Path::to_string).collect();
        assert_eq!(order, [".a", ".c", ".a.b"]);
    }

    #[test]
    fn unknown_element_types_are_skipped_and_malformed_ones_rejected() {
        let set = FieldSet::from_fields_v1(&json!({"f:a": {}, "x:b": {}})).expect("parses");
        assert_eq!(set.paths().len(), 1);
        assert!(FieldSet::from_fields_v1(&json!({"fa": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"k:[1]": {}})).is_err());
    }
}
