//! Walks over objects guided by their schema, as structured-merge-diff's
//! `typed` package walks them: the field set an object (or an applied
//! configuration) consists of, the comparison of two objects, the merge of
//! a configuration into an object, and the pruning of fields an applier
//! stopped applying.
//!
//! [`Ty`] is the merge topology of one position: a struct (owned field by
//! field unless atomic), a map (key by key unless atomic), a list (atomic,
//! set, or keyed), a scalar, or an untyped value (maps granular, lists
//! atomic). Empty and null maps and lists count as leaves, so `{}` and
//! `null` stay distinguishable, as in Kubernetes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::fieldpath::{FieldSet, Path, PathElement, values_equal};
use super::topology::{self, ListType};
use crate::schema::{SchemaKind, SchemaNode};

/// `runtime.RawExtension`: an opaque embedded object, owned as a whole.
const RAW_EXTENSION: &str = "io.k8s.apimachinery.pkg.runtime.RawExtension";

/// The key fields of an associative list.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Keys {
    Many(&'static [&'static str]),
    /// A patch merge key standing in for missing list-map keys.
    One(&'static str),
}

impl Keys {
    fn names(&self) -> &[&'static str] {
        match self {
            Keys::Many(names) => names,
            Keys::One(name) => std::slice::from_ref(name),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Relation {
    Atomic,
    Set,
    Keyed(Keys),
}

/// The merge topology of one position in an object.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty<'a> {
    Struct {
        node: SchemaNode<'a>,
        atomic: bool,
        top: bool,
    },
    Map {
        node: SchemaNode<'a>,
        atomic: bool,
    },
    List {
        node: SchemaNode<'a>,
        relation: Relation,
    },
    Scalar,
    /// No schema: objects are granular maps of untyped values, lists atomic.
    Deduced,
    /// Opaque: owned and replaced whole.
    Untyped,
}

/// How a value is walked, given its type (and, for untyped values, itself).
#[derive(Clone, Copy)]
enum Shape {
    Leaf,
    Object,
    List,
}

impl<'a> Ty<'a> {
    /// The type of a kind's root object.
    pub(crate) fn root(node: SchemaNode<'a>) -> Ty<'a> {
        Ty::Struct { node, atomic: false, top: true }
    }

    /// The type of a schema node reached through `field` of the struct
    /// `parent` (or as a list item or map value when `None`).
    fn resolve(node: SchemaNode<'a>, parent: Option<(&str, &str)>) -> Ty<'a> {
        if node.definition_name() == Some(RAW_EXTENSION) {
            return Ty::Untyped;
        }
        match node.kind() {
            SchemaKind::Object if node.is_map() => {
                let atomic = parent.is_some_and(|(d, f)| topology::map_is_atomic(d, f));
                Ty::Map { node, atomic }
            }
            SchemaKind::Object => {
                let atomic = node.definition_name().is_some_and(topology::struct_is_atomic);
                Ty::Struct { node, atomic, top: false }
            }
            SchemaKind::Array => {
                let listed = parent.and_then(|(d, f)| topology::list_type(d, f));
                let relation = match listed {
                    Some(ListType::Atomic) => Relation::Atomic,
                    Some(ListType::Set) => Relation::Set,
                    Some(ListType::Map(keys)) => Relation::Keyed(Keys::Many(keys)),
                    // Kubernetes falls back to the patch strategy.
                    None => {
                        let patch = node.patch_meta();
                        match (patch.merge, patch.merge_key) {
                            (true, Some(key)) => Relation::Keyed(Keys::One(key)),
                            (true, None) => Relation::Set,
                            (false, _) => Relation::Atomic,
                        }
                    }
                };
                Ty::List { node, relation }
            }
            SchemaKind::Any => Ty::Deduced,
            _ => Ty::Scalar,
        }
    }

    /// The type of `key` in an object of this type and whether it is a
    /// named struct field; `None` for a field the struct does not declare.
    pub(crate) fn field(&self, key: &str) -> Option<(Ty<'a>, bool)> {
        match self {
            Ty::Struct { node, .. } => {
                let child = node.property(key)?;
                let parent = node.definition_name().map(|d| (d, key));
                Some((Ty::resolve(child, parent), true))
            }
            Ty::Map { node, .. } => {
                let value = node.additional_properties().map_or(Ty::Deduced, |v| Ty::resolve(v, None));
                Some((value, false))
            }
            Ty::Deduced => Some((Ty::Deduced, false)),
            _ => None,
        }
    }

    fn field_or_deduced(&self, key: &str) -> (Ty<'a>, bool) {
        self.field(key).unwrap_or((Ty::Deduced, false))
    }

    /// The type of list items.
    fn item(&self) -> Ty<'a> {
        match self {
            Ty::List { node, .. } => node.items().map_or(Ty::Deduced, |i| Ty::resolve(i, None)),
            _ => Ty::Deduced,
        }
    }

    fn relation(&self) -> Relation {
        match self {
            Ty::List { relation, .. } => *relation,
            _ => Relation::Atomic,
        }
    }

    /// How values of this type are walked when one side is `a` and the
    /// other `b`.
    fn shape(&self, a: Option<&Value>, b: Option<&Value>) -> Shape {
        match self {
            Ty::Scalar | Ty::Untyped => Shape::Leaf,
            Ty::Struct { atomic: true, .. } | Ty::Map { atomic: true, .. } => Shape::Leaf,
            Ty::Struct { .. } | Ty::Map { .. } => Shape::Object,
            Ty::List { relation: Relation::Atomic, .. } => Shape::Leaf,
            Ty::List { .. } => Shape::List,
            Ty::Deduced if a.is_some_and(Value::is_object) || b.is_some_and(Value::is_object) => Shape::Object,
            Ty::Deduced => Shape::Leaf,
        }
    }
}

/// The path element naming `item` in a list of type `list`.
pub(crate) fn item_element(list: &Ty<'_>, item: &Value) -> Result<PathElement, String> {
    match list.relation() {
        Relation::Keyed(keys) => {
            let fields = match item {
                Value::Null => return Err("associative list with keys may not have a null element".into()),
                Value::Object(fields) => fields,
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let node = match list {
                Ty::List { node, .. } => node.items(),
                _ => None,
            };
            let key = keys
                .names()
                .iter()
                .map(|name| {
                    let value = match (fields.get(*name), node) {
                        (Some(value), _) => value.clone(),
                        (None, Some(node)) => topology::key_default(&node, name),
                        (None, None) => Value::String(String::new()),
                    };
                    (name.to_string(), value)
                })
                .collect();
            Ok(PathElement::key(key))
        }
        Relation::Set => match item {
            Value::Object(_) => Err("associative list without keys has an element that's a map type".into()),
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => Err("associative list without keys has an element that's an explicit null".into()),
            scalar => Ok(PathElement::Value(scalar.clone())),
        },
        Relation::Atomic => Err("invalid indexing of non-associative list".into()),
    }
}

/// The items of a list with their elements, items that have none skipped.
fn elements<'v>(list: &Ty<'_>, items: &'v [Value]) -> Vec<(PathElement, &'v Value)> {
    items.iter().filter_map(|item| item_element(list, item).ok().map(|pe| (pe, item))).collect()
}

/// The first item for each element, in list order.
fn first_occurrences<'v>(list: &Ty<'_>, items: &'v [Value]) -> Vec<(PathElement, &'v Value)> {
    let mut seen = BTreeSet::new();
    elements(list, items).into_iter().filter(|(pe, _)| seen.insert(pe.clone())).collect()
}

/// The items of a list value (none for absent or null).
fn items_of(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn is_empty_collection(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::Object(map)) => map.is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        Some(_) => false,
    }
}

/// Whether a side is present, non-null and not an object (a type mismatch
/// for an object position).
fn not_object(value: Option<&Value>) -> bool {
    value.is_some_and(|v| !v.is_object() && !v.is_null())
}

fn not_array(value: Option<&Value>) -> bool {
    value.is_some_and(|v| !v.is_array() && !v.is_null())
}

// ---------------------------------------------------------------------------
// Field sets

/// The fields an object (or applied configuration) sets: every leaf, every
/// list item, every map entry, and every empty or null field.
pub(crate) fn to_field_set(value: &Value, ty: Ty<'_>) -> FieldSet {
    let mut set = FieldSet::new();
    walk_set(value, ty, &mut Vec::new(), &mut set);
    set
}

fn walk_set(value: &Value, ty: Ty<'_>, path: &mut Vec<PathElement>, set: &mut FieldSet) {
    match ty.shape(Some(value), None) {
        Shape::Leaf => set.insert(path),
        Shape::Object => {
            let Value::Object(map) = value else { return };
            for (key, child) in map {
                let (child_ty, named) = ty.field_or_deduced(key);
                path.push(PathElement::Field(key.clone()));
                walk_set(child, child_ty, path, set);
                if child.is_null() || child.as_object().is_some_and(Map::is_empty) || !named {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Shape::List => {
            let Value::Array(items) = value else { return };
            let items = elements(&ty, items);
            let mut counts: BTreeMap<&PathElement, usize> = BTreeMap::new();
            for (pe, _) in &items {
                *counts.entry(pe).or_default() += 1;
            }
            let item_ty = ty.item();
            for (pe, item) in &items {
                path.push(pe.clone());
                // Duplicated items are owned as a whole.
                if counts.get(pe).copied().unwrap_or(0) < 2 {
                    walk_set(item, item_ty, path, set);
                }
                set.insert(path);
                path.pop();
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Comparison

/// What changed from one object to another, as field sets.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    /// Drops the ignored fields and everything below them.
    pub(crate) fn exclude(self, ignored: &FieldSet) -> Comparison {
        Comparison {
            added: self.added.recursive_difference(ignored),
            modified: self.modified.recursive_difference(ignored),
            removed: self.removed.recursive_difference(ignored),
        }
    }

    /// Added or modified fields.
    pub(crate) fn changed(&self) -> FieldSet {
        self.modified.union(&self.added)
    }
}

/// Compares `old` with `new`. Besides leaves, a map, struct, list or list
/// item that appears (or disappears) as a whole is itself added (removed).
pub(crate) fn compare(old: Option<&Value>, new: Option<&Value>, ty: Ty<'_>) -> Comparison {
    let mut comparison = Comparison::default();
    walk_compare(old, new, ty, &mut Vec::new(), &mut comparison);
    comparison
}

fn walk_compare(l: Option<&Value>, r: Option<&Value>, ty: Ty<'_>, path: &mut Vec<PathElement>, out: &mut Comparison) {
    let leaf = |out: &mut Comparison| match (l, r) {
        (None, _) => out.added.insert(path),
        (_, None) => out.removed.insert(path),
        (Some(a), Some(b)) if !values_equal(a, b) => out.modified.insert(path),
        _ => {}
    };
    let descended = match ty.shape(l, r) {
        Shape::Leaf => {
            leaf(out);
            false
        }
        Shape::Object if not_object(l) || not_object(r) || (is_empty_collection(l) && is_empty_collection(r)) => {
            leaf(out);
            false
        }
        Shape::Object => {
            let empty = Map::new();
            let lm = l.and_then(Value::as_object).unwrap_or(&empty);
            let rm = r.and_then(Value::as_object).unwrap_or(&empty);
            let keys = lm.keys().chain(rm.keys().filter(|k| !lm.contains_key(*k)));
            for key in keys {
                let (child, _) = ty.field_or_deduced(key);
                path.push(PathElement::Field(key.clone()));
                walk_compare(lm.get(key), rm.get(key), child, path, out);
                path.pop();
            }
            true
        }
        Shape::List if not_array(l) || not_array(r) || (is_empty_collection(l) && is_empty_collection(r)) => {
            leaf(out);
            false
        }
        Shape::List => {
            let (li, ri) = (items_of(l), items_of(r));
            let left: BTreeMap<PathElement, &Value> = first_occurrences(&ty, li).into_iter().collect();
            let right = first_occurrences(&ty, ri);
            let item_ty = ty.item();
            for (pe, item) in &right {
                path.push(pe.clone());
                walk_compare(left.get(pe).copied(), Some(item), item_ty, path, out);
                path.pop();
            }
            let right: BTreeSet<&PathElement> = right.iter().map(|(pe, _)| pe).collect();
            for (pe, item) in &left {
                if !right.contains(pe) {
                    path.push(pe.clone());
                    walk_compare(Some(item), None, item_ty, path, out);
                    path.pop();
                }
            }
            true
        }
    };
    if descended {
        if l.is_none() {
            out.added.insert(path);
        } else if r.is_none() {
            out.removed.insert(path);
        }
    }
}

// ---------------------------------------------------------------------------
// Merge

/// Merges an applied configuration `r` into `l`: the configuration wins on
/// leaves and atomic values, maps and structs merge key by key, associative
/// lists merge item by item. Items keep the configuration's order, with
/// items only the object has staying where they were relative to it.
pub(crate) fn merge(l: Option<&Value>, r: Option<&Value>, ty: Ty<'_>) -> Option<Value> {
    let leaf = || r.or(l).cloned();
    match ty.shape(l, r) {
        Shape::Leaf => leaf(),
        Shape::Object if not_object(l) || not_object(r) || (is_empty_collection(l) && is_empty_collection(r)) => leaf(),
        Shape::Object => {
            let empty = Map::new();
            let lm = l.and_then(Value::as_object).unwrap_or(&empty);
            let rm = r.and_then(Value::as_object).unwrap_or(&empty);
            let mut out = Map::new();
            for (key, lv) in lm {
                let (child, _) = ty.field_or_deduced(key);
                if let Some(v) = merge(Some(lv), rm.get(key), child) {
                    out.insert(key.clone(), v);
                }
            }
            for (key, rv) in rm.iter().filter(|(k, _)| !lm.contains_key(*k)) {
                let (child, _) = ty.field_or_deduced(key);
                if let Some(v) = merge(None, Some(rv), child) {
                    out.insert(key.clone(), v);
                }
            }
            Some(Value::Object(out))
        }
        Shape::List if not_array(l) || not_array(r) || (is_empty_collection(l) && is_empty_collection(r)) => leaf(),
        Shape::List => Some(Value::Array(merge_items(&ty, items_of(l), items_of(r)))),
    }
}

/// structured-merge-diff's list merge: walk both lists, emitting shared
/// items in the configuration's order and object-only items where they
/// stood.
fn merge_items(ty: &Ty<'_>, lhs: &[Value], rhs: &[Value]) -> Vec<Value> {
    let item_ty = ty.item();
    let lhs = elements(ty, lhs);
    let rhs = first_occurrences(ty, rhs);
    let mut lhs_count: BTreeMap<&PathElement, usize> = BTreeMap::new();
    for (pe, _) in &lhs {
        *lhs_count.entry(pe).or_default() += 1;
    }
    // Duplicated object items are replaced by the configuration's item.
    let lhs_unique = |pe: &PathElement| match lhs_count.get(pe) {
        Some(1) => lhs.iter().find(|(p, _)| p == pe).map(|(_, v)| *v),
        _ => None,
    };
    let rhs_map: BTreeMap<&PathElement, &Value> = rhs.iter().map(|(pe, v)| (pe, *v)).collect();
    let mut shared = rhs.iter().map(|(pe, _)| pe).filter(|pe| lhs_count.contains_key(pe));
    let mut next_shared = shared.next();
    let mut merged: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let (mut li, mut ri) = (0, 0);
    while li < lhs.len() || ri < rhs.len() {
        if li < lhs.len() && ri < rhs.len() {
            let pe = &lhs[li].0;
            if *pe == rhs[ri].0 {
                merged.insert(pe);
                out.extend(merge(lhs_unique(pe), Some(rhs[ri].1), item_ty));
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            // A shared item whose turn has not come yet.
            if rhs_map.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lhs.len() {
            let (pe, item) = &lhs[li];
            if !rhs_map.contains_key(pe) {
                out.extend(merge(Some(item), None, item_ty));
                li += 1;
                continue;
            }
            if merged.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < rhs.len() {
            let (pe, item) = &rhs[ri];
            merged.insert(pe);
            out.extend(merge(lhs_unique(pe), Some(item), item_ty));
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Pruning

/// Removes from `value` what the applier owned (`last`) and nobody owns
/// any more (`owned` is every manager's set, the applier's new one
/// included). A struct field counts as owned when anything below it is;
/// list items and map entries only when they are owned themselves, so a
/// removed item goes with everything in it. Maps and lists emptied by the
/// removal disappear, as they do once Kubernetes stores the object.
pub(crate) fn prune(value: &mut Value, ty: Ty<'_>, last: &FieldSet, owned: &FieldSet) {
    let empty = FieldSet::new();
    match (ty.shape(Some(value), None), value) {
        (Shape::Object, Value::Object(map)) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let pe = PathElement::Field(key.clone());
                if !last.touches(&pe) {
                    continue;
                }
                let (child_ty, named) = ty.field_or_deduced(&key);
                let claimed = |set: &FieldSet| set.is_member(&pe) || (named && set.touches(&pe));
                let Some(child) = map.get_mut(&key) else { continue };
                let empty_list =
                    child.as_array().is_some_and(Vec::is_empty) && matches!(child_ty.shape(None, None), Shape::List);
                if claimed(last) && !claimed(owned) && !empty_list {
                    map.remove(&key);
                } else if let Some(below) = last.child(&pe).filter(|s| !s.is_empty()) {
                    let was_empty = is_empty_collection(Some(child));
                    prune(child, child_ty, below, owned.child(&pe).unwrap_or(&empty));
                    // Structs stay (Go keeps them as `{}`); maps and lists go.
                    let collection = matches!(child_ty, Ty::Map { .. } | Ty::List { .. } | Ty::Deduced);
                    if collection && !was_empty && is_empty_collection(Some(child)) {
                        map.remove(&key);
                    }
                }
            }
        }
        (Shape::List, Value::Array(items)) => {
            let item_ty = ty.item();
            let mut kept = Vec::with_capacity(items.len());
            for mut item in std::mem::take(items) {
                let Ok(pe) = item_element(&ty, &item) else {
                    kept.push(item);
                    continue;
                };
                if last.is_member(&pe) && !owned.is_member(&pe) {
                    continue;
                }
                if let Some(below) = last.child(&pe).filter(|s| !s.is_empty()) {
                    prune(&mut item, item_ty, below, owned.child(&pe).unwrap_or(&empty));
                }
                kept.push(item);
            }
            *items = kept;
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Normalisation

/// Adds `{}` for every struct field that is a Go value rather than a
/// pointer, and `null` for lists Go always writes, wherever their parent
/// exists: kube-apiserver compares Go objects, in which such fields always
/// exist.
pub(crate) fn fill_value_structs(value: &mut Value, ty: Ty<'_>) {
    match (ty, value) {
        (Ty::Struct { node, top, .. }, Value::Object(map)) => {
            if let Some(definition) = node.definition_name() {
                // By name first: resolving every property's schema costs
                // far more than the tables, and few fields are in them.
                let names = node.raw().get("properties").and_then(Value::as_object).into_iter().flat_map(|p| p.keys());
                for name in names {
                    if map.contains_key(name) {
                        continue;
                    }
                    let fill = if topology::is_value_struct(definition, name, top) {
                        Value::Object(Map::new())
                    } else if topology::is_null_when_empty(definition, name) {
                        Value::Null
                    } else {
                        continue;
                    };
                    if node.property(name).is_some() {
                        map.insert(name.to_string(), fill);
                    }
                }
            }
            for (key, child) in map.iter_mut() {
                if let Some((child_ty, _)) = ty.field(key) {
                    fill_value_structs(child, child_ty);
                }
            }
        }
        (Ty::Map { .. }, Value::Object(map)) => {
            for (key, child) in map.iter_mut() {
                if let Some((child_ty, _)) = ty.field(key) {
                    fill_value_structs(child, child_ty);
                }
            }
        }
        (Ty::List { .. }, Value::Array(items)) => {
            let item_ty = ty.item();
            items.iter_mut().for_each(|item| fill_value_structs(item, item_ty));
        }
        _ => {}
    }
}

/// Drops null struct fields, as decoding into Go types does.
pub(crate) fn drop_null_fields(value: &mut Value, ty: Ty<'_>) {
    match (ty, value) {
        (Ty::Struct { .. }, Value::Object(map)) => {
            map.retain(|_, v| !v.is_null());
            for (key, child) in map.iter_mut() {
                if let Some((child_ty, _)) = ty.field(key) {
                    drop_null_fields(child, child_ty);
                }
            }
        }
        (Ty::Map { .. }, Value::Object(map)) => {
            for (key, child) in map.iter_mut() {
                if let Some((child_ty, _)) = ty.field(key) {
                    drop_null_fields(child, child_ty);
                }
            }
        }
        (Ty::List { .. }, Value::Array(items)) => {
            let item_ty = ty.item();
            items.iter_mut().for_each(|item| drop_null_fields(item, item_ty));
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Validation

/// Checks an applied configuration the way structured-merge-diff types it:
/// undeclared fields, maps and lists of the wrong shape, list items without
/// keys, duplicated items. Each error reads `<path>: <message>`.
pub(crate) fn validate(value: &Value, ty: Ty<'_>) -> Vec<String> {
    let mut errors = Vec::new();
    walk_validate(value, ty, &mut Vec::new(), &mut errors);
    errors
}

fn error_at(path: &[PathElement], message: impl std::fmt::Display) -> String {
    format!("{}: {message}", Path(path.to_vec()))
}

fn walk_validate(value: &Value, ty: Ty<'_>, path: &mut Vec<PathElement>, errors: &mut Vec<String>) {
    match ty {
        Ty::Scalar | Ty::Untyped | Ty::Deduced => {}
        Ty::Struct { .. } | Ty::Map { .. } => match value {
            Value::Null => {}
            Value::Object(map) => {
                for (key, child) in map {
                    path.push(PathElement::Field(key.clone()));
                    match ty.field(key) {
                        Some((child_ty, _)) => walk_validate(child, child_ty, path, errors),
                        None => errors.push(error_at(path, "field not declared in schema")),
                    }
                    path.pop();
                }
            }
            other => errors.push(error_at(path, format!("expected map, got {other}"))),
        },
        Ty::List { relation, .. } => {
            let items = match value {
                Value::Null => return,
                Value::Array(items) => items,
                other => return errors.push(error_at(path, format!("expected list, got {other}"))),
            };
            let item_ty = ty.item();
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let pe = match relation {
                    Relation::Atomic => PathElement::Index(i),
                    _ => match item_element(&ty, item) {
                        Ok(pe) => pe,
                        Err(e) => return errors.push(error_at(path, format!("element {i}: {e}"))),
                    },
                };
                if !matches!(relation, Relation::Atomic) && !seen.insert(pe.clone()) {
                    errors.push(error_at(path, format!("duplicate entries for key {pe}")));
                }
                path.push(pe);
                walk_validate(item, item_ty, path, errors);
                path.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Schemas;
    use serde_json::json;

    fn service() -> Ty<'static> {
        Ty::root(Schemas::get().definition("io.k8s.api.core.v1.Service").expect("Service"))
    }

    fn fields(value: &Value) -> Value {
        to_field_set(value, service()).to_fields_v1()
    }

    #[test]
    fn an_applied_service_owns_its_leaves_items_and_map_entries_but_not_named_parents() {
        let config = json!({
            "metadata": {"name": "web", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        });
        assert_eq!(
            fields(&config),
            json!({
                "f:metadata": {"f:labels": {"f:tier": {}}, "f:name": {}},
                "f:spec": {
                    "f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:targetPort": {}}},
                    "f:selector": {},
                },
            })
        );
    }

    #[test]
    fn empty_and_null_fields_are_owned_as_leaves() {
        let config = json!({"metadata": {"annotations": {}, "labels": null}, "spec": {"ports": []}});
        assert_eq!(fields(&config), json!({"f:metadata": {"f:annotations": {}, "f:labels": {}}}));
    }

    #[test]
    fn comparing_marks_added_maps_and_items_themselves() {
        let old = json!({"metadata": {}, "spec": {}});
        let new = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"ports": [{"port": 80}], "type": "ClusterIP"}});
        let comparison = compare(Some(&old), Some(&new), service());
        assert_eq!(
            comparison.added.to_fields_v1(),
            json!({
                "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
                "f:spec": {
                    "f:ports": {".": {}, "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}},
                    "f:type": {},
                },
            })
        );
        assert!(comparison.modified.is_empty() && comparison.removed.is_empty());
    }

    #[test]
    fn merging_keeps_server_only_items_in_place_and_follows_the_configuration_order() {
        let live = json!({"spec": {"ports": [{"port": 1}, {"port": 2}, {"port": 3}]}});
        let config = json!({"spec": {"ports": [{"port": 3, "name": "c"}, {"port": 1}]}});
        let merged = merge(Some(&live), Some(&config), service()).expect("merged");
        // Port 2 stays before port 3 as it stood; 3 and 1 follow the configuration.
        assert_eq!(merged["spec"]["ports"], json!([{"port": 2}, {"port": 3, "name": "c"}, {"port": 1}]));
    }

    #[test]
    fn atomic_fields_are_replaced_and_granular_maps_merged() {
        let live = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"selector": {"a": "1"}}});
        let config = json!({"metadata": {"labels": {"b": "2"}}, "spec": {"selector": {"b": "2"}}});
        let merged = merge(Some(&live), Some(&config), service()).expect("merged");
        assert_eq!(merged["metadata"]["labels"], json!({"a": "1", "b": "2"}));
        assert_eq!(merged["spec"]["selector"], json!({"b": "2"}));
    }

    #[test]
    fn validation_reports_unknown_fields_and_duplicate_keys_with_kube_paths() {
        let config = json!({"spec": {"bogus": 1, "ports": [{"port": 80}, {"port": 80, "protocol": "TCP"}]}});
        assert_eq!(
            validate(&config, service()),
            [
                ".spec.bogus: field not declared in schema",
                ".spec.ports: duplicate entries for key [port=80,protocol=\"TCP\"]"
            ]
        );
        let config = json!({"metadata": {"finalizers": [{"a": 1}]}});
        assert_eq!(
            validate(&config, service()),
            [".metadata.finalizers: element 0: associative list without keys has an element that's a map type"]
        );
    }

    #[test]
    fn value_structs_are_filled_where_their_parent_exists() {
        let deployment = Ty::root(Schemas::get().definition("io.k8s.api.apps.v1.Deployment").expect("Deployment"));
        let mut object = json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}});
        fill_value_structs(&mut object, deployment);
        assert_eq!(object["metadata"], json!({}));
        assert_eq!(object["spec"]["strategy"], json!({}));
        assert_eq!(object["spec"]["template"]["metadata"], json!({}));
        assert_eq!(object["spec"]["template"]["spec"]["containers"][0]["resources"], json!({}));
    }
}
