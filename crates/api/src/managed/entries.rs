//! `metadata.managedFields` decoded: one [`Entry`] per manager identity
//! (manager, operation, and for updates the apiVersion; plus the
//! subresource), with its field set and the time of its last change.
//!
//! Identities are Kubernetes' own manager identifiers, the JSON of the
//! entry without fields and time (and without apiVersion for appliers, so
//! an applier keeps one entry across versions); they key the map, order
//! conflicts, and make a second entry with the same identity replace the
//! first, as in kube-apiserver.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Operation;
use super::fieldpath::{FieldSet, write_go_json};

/// How many update entries an object keeps before the oldest are merged
/// into "ancient-changes" (kube-apiserver's `DefaultMaxUpdateManagers`).
pub(crate) const MAX_UPDATE_MANAGERS: usize = 10;
const ANCIENT_CHANGES: &str = "ancient-changes";

/// One managedFields entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    /// "" for the main resource.
    pub subresource: String,
    /// RFC 3339, as stored.
    pub time: Option<String>,
    pub set: FieldSet,
}

impl Entry {
    pub(crate) fn new(manager: &str, operation: Operation, api_version: &str, subresource: &str) -> Entry {
        Entry {
            manager: manager.to_string(),
            operation,
            api_version: api_version.to_string(),
            subresource: subresource.to_string(),
            time: None,
            set: FieldSet::new(),
        }
    }

    /// Kubernetes' manager identifier: `{"manager":"kubectl","operation":"Apply"}`.
    pub(crate) fn identifier(&self) -> String {
        let mut id = Map::new();
        if !self.manager.is_empty() {
            id.insert("manager".into(), self.manager.clone().into());
        }
        id.insert("operation".into(), self.operation.as_str().into());
        if self.operation == Operation::Update && !self.api_version.is_empty() {
            id.insert("apiVersion".into(), self.api_version.clone().into());
        }
        if !self.subresource.is_empty() {
            id.insert("subresource".into(), self.subresource.clone().into());
        }
        // Field order as Go marshals the struct, not sorted.
        let mut out = String::from("{");
        for (i, (k, v)) in id.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_go_json(&mut out, &Value::String(k.clone()));
            out.push(':');
            write_go_json(&mut out, v);
        }
        out.push('}');
        out
    }

    /// Seconds since the epoch of the entry's time (0 without one), the
    /// precision Kubernetes sorts by.
    pub(crate) fn seconds(&self) -> i64 {
        self.time.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok()).map_or(0, |t| t.as_second())
    }

    fn encode(&self) -> Value {
        let mut out = Map::new();
        if !self.manager.is_empty() {
            out.insert("manager".into(), self.manager.clone().into());
        }
        out.insert("operation".into(), self.operation.as_str().into());
        if !self.api_version.is_empty() {
            out.insert("apiVersion".into(), self.api_version.clone().into());
        }
        if let Some(time) = &self.time {
            out.insert("time".into(), time.clone().into());
        }
        out.insert("fieldsType".into(), "FieldsV1".into());
        out.insert("fieldsV1".into(), self.set.to_fields_v1());
        if !self.subresource.is_empty() {
            out.insert("subresource".into(), self.subresource.clone().into());
        }
        Value::Object(out)
    }
}

/// All entries of an object, by identifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Managed {
    entries: BTreeMap<String, Entry>,
}

impl Managed {
    /// Decodes `metadata.managedFields` (absent or null is empty), with
    /// kube-apiserver's messages for malformed entries.
    pub(crate) fn decode(managed_fields: Option<&Value>) -> Result<Managed, String> {
        let mut managed = Managed::default();
        let items = match managed_fields {
            None | Some(Value::Null) => return Ok(managed),
            Some(Value::Array(items)) => items,
            Some(_) => return Err("managedFields must be a list".into()),
        };
        for (i, item) in items.iter().enumerate() {
            let text = |field: &str| item.get(field).and_then(Value::as_str).unwrap_or("").to_string();
            let operation = match text("operation").as_str() {
                "Apply" => Operation::Apply,
                "Update" => Operation::Update,
                _ => return Err("operation must be `Apply` or `Update`".into()),
            };
            let api_version = text("apiVersion");
            if api_version.is_empty() {
                return Err("apiVersion must not be empty".into());
            }
            match text("fieldsType").as_str() {
                "FieldsV1" => {}
                "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
                other => return Err(format!("invalid fieldsType {other:?} in managed fields entry {i}")),
            }
            let set = match item.get("fieldsV1") {
                Some(fields) => FieldSet::from_fields_v1(fields).map_err(|e| format!("error decoding set: {e}"))?,
                None => FieldSet::new(),
            };
            let entry = Entry {
                manager: text("manager"),
                operation,
                api_version,
                subresource: text("subresource"),
                time: item.get("time").and_then(Value::as_str).map(str::to_string),
                set,
            };
            managed.entries.insert(entry.identifier(), entry);
        }
        Ok(managed)
    }

    /// The entries as `metadata.managedFields`, sorted as kube-apiserver
    /// sorts them: appliers before updaters, then oldest first, then by
    /// manager, apiVersion and subresource. `None` when there are none.
    pub(crate) fn encode(&self) -> Option<Value> {
        if self.entries.is_empty() {
            return None;
        }
        let mut entries: Vec<&Entry> = self.entries.values().collect();
        entries.sort_by(|p, q| {
            p.operation
                .as_str()
                .cmp(q.operation.as_str())
                .then_with(|| p.seconds().cmp(&q.seconds()))
                .then_with(|| p.manager.cmp(&q.manager))
                .then_with(|| p.api_version.cmp(&q.api_version))
                .then_with(|| p.subresource.cmp(&q.subresource))
        });
        Some(Value::Array(entries.into_iter().map(Entry::encode).collect()))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.entries.get_mut(id)
    }

    pub(crate) fn insert(&mut self, entry: Entry) {
        self.entries.insert(entry.identifier(), entry);
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Entry> {
        self.entries.remove(id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut Entry)> {
        self.entries.iter_mut()
    }

    /// Every manager's fields together.
    pub(crate) fn union(&self) -> FieldSet {
        self.entries.values().fold(FieldSet::new(), |acc, e| acc.union(&e.set))
    }

    /// Drops entries whose set became empty.
    pub(crate) fn drop_empty(&mut self) {
        self.entries.retain(|_, e| !e.set.is_empty());
    }

    /// Merges the oldest update entries until at most `max` remain: the
    /// first (oldest) entry of each apiVersion is kept, later ones fold
    /// into an "ancient-changes" entry of that version, which takes the
    /// time of the last entry folded in.
    pub(crate) fn cap_updaters(&mut self, max: usize) {
        let mut updaters: Vec<(i64, String)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.operation == Operation::Update)
            .map(|(id, e)| (e.seconds(), id.clone()))
            .collect();
        if updaters.len() <= max {
            return;
        }
        updaters.sort();
        let mut remaining = updaters.len();
        let mut first_of_version: BTreeMap<String, String> = BTreeMap::new();
        for (_, id) in updaters {
            if remaining <= max {
                break;
            }
            let Some(entry) = self.entries.get(&id) else { continue };
            let version = entry.api_version.clone();
            let bucket = Entry::new(ANCIENT_CHANGES, Operation::Update, &version, "");
            let bucket_id = bucket.identifier();
            let Some(first) = first_of_version.get(&version).cloned() else {
                first_of_version.insert(version, id);
                continue;
            };
            if !self.entries.contains_key(&bucket_id) {
                // The bucket starts as the first entry of the version.
                if let Some(first) = self.entries.remove(&first) {
                    self.entries.insert(bucket_id.clone(), Entry { set: first.set, time: first.time, ..bucket });
                }
            }
            if let Some(entry) = self.entries.remove(&id) {
                if let Some(bucket) = self.entries.get_mut(&bucket_id) {
                    bucket.set = bucket.set.union(&entry.set);
                    bucket.time = entry.time;
                }
            }
            remaining -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifiers_drop_the_api_version_of_appliers() {
        let apply = Entry::new("kubectl", Operation::Apply, "v1", "");
        assert_eq!(apply.identifier(), r#"{"manager":"kubectl","operation":"Apply"}"#);
        let update = Entry::new("kubelet", Operation::Update, "v1", "status");
        assert_eq!(
            update.identifier(),
            r#"{"manager":"kubelet","operation":"Update","apiVersion":"v1","subresource":"status"}"#
        );
    }

    #[test]
    fn entries_decode_with_kube_errors_and_encode_sorted() {
        let fields = json!([
            {"manager": "b", "operation": "Update", "apiVersion": "v1", "time": "2024-01-01T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:type": {}}}},
            {"manager": "z", "operation": "Apply", "apiVersion": "v1", "time": "2025-01-01T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:selector": {}}}},
            {"manager": "a", "operation": "Update", "apiVersion": "v1", "time": "2024-06-01T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:ports": {}}}},
        ]);
        let managed = Managed::decode(Some(&fields)).expect("decodes");
        let encoded = managed.encode().expect("entries");
        let managers: Vec<&str> =
            encoded.as_array().into_iter().flatten().filter_map(|e| e["manager"].as_str()).collect();
        assert_eq!(managers, ["z", "b", "a"]);
        assert_eq!(encoded[0], fields[1]);
        let bad = json!([{"manager": "x", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}]);
        assert_eq!(Managed::decode(Some(&bad)), Err("operation must be `Apply` or `Update`".into()));
        let bad = json!([{"manager": "x", "operation": "Apply", "apiVersion": "v1"}]);
        assert_eq!(Managed::decode(Some(&bad)), Err("missing fieldsType in managed fields entry 0".into()));
    }

    #[test]
    fn the_oldest_updaters_fold_into_ancient_changes_beyond_the_cap() {
        let mut managed = Managed::default();
        for i in 0..12 {
            let mut entry = Entry::new(&format!("m{i:02}"), Operation::Update, "v1", "");
            entry.time = Some(format!("2024-01-01T00:00:{i:02}Z"));
            entry.set.insert(&[super::super::fieldpath::PathElement::Field(format!("f{i}"))]);
            managed.insert(entry);
        }
        managed.cap_updaters(MAX_UPDATE_MANAGERS);
        let names: Vec<String> = managed.iter().map(|(_, e)| e.manager.clone()).collect();
        assert_eq!(names.len(), 10);
        assert!(names.contains(&ANCIENT_CHANGES.to_string()));
        assert!(!names.contains(&"m00".to_string()) && !names.contains(&"m02".to_string()));
        let ancient = managed.iter().find(|(_, e)| e.manager == ANCIENT_CHANGES).map(|(_, e)| e.clone());
        assert_eq!(ancient.map(|e| e.set.paths().len()), Some(3));
    }
}
