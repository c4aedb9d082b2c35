//! Small helpers over JSON objects: metadata access, name rules and
//! timestamps, shared by every handler.

use rand::Rng as _;
use serde_json::{Map, Value};

/// `metadata` of an object (created if missing and the object is a map).
pub fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = obj.as_object_mut()?;
    map.entry("metadata").or_insert_with(|| Value::Object(Map::new())).as_object_mut()
}

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.as_object()
}

/// A string field of `metadata`, empty when absent.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    meta(obj).and_then(|m| m.get(field)).and_then(Value::as_str).unwrap_or("")
}

/// `metadata.finalizers` as strings.
pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Now, as Kubernetes writes timestamps (RFC 3339, whole seconds, UTC).
pub fn now_rfc3339() -> String {
    rfc3339(jiff::Timestamp::now())
}

pub fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The random suffix kube-apiserver appends to `generateName`: five
/// characters from an alphabet without vowels or confusable digits.
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// The longest prefix generateName keeps, so that prefix + suffix fits in
/// a 63-character label.
pub const MAX_GENERATED_PREFIX: usize = 58;

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Problems with `name` as an RFC 1123 label (Namespace names...).
pub fn dns1123_label_errors(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if name.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !is_label(name) {
        errs.push(DNS1123_LABEL_MSG.to_string());
    }
    errs
}

/// Problems with `name` as an RFC 1123 subdomain (most object names).
pub fn dns1123_subdomain_errors(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if name.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if !name.split('.').all(is_label) {
        errs.push(DNS1123_SUBDOMAIN_MSG.to_string());
    }
    errs
}

/// Problems with `name` as an RFC 1035 label (Service names).
pub fn dns1035_label_errors(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if name.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !is_label(name) || !name.as_bytes()[0].is_ascii_lowercase() {
        errs.push(DNS1035_LABEL_MSG.to_string());
    }
    errs
}

/// Path segment names the API server refuses for any object.
pub fn path_segment_errors(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            return vec![format!("may not contain '{bad}'")];
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kubernetes_dns_rules() {
        assert!(dns1123_label_errors("web-1").is_empty());
        assert!(!dns1123_label_errors("Web").is_empty());
        assert!(!dns1123_label_errors("-web").is_empty());
        assert!(dns1123_subdomain_errors("a.b-c.d").is_empty());
        assert!(!dns1123_subdomain_errors("a..b").is_empty());
        assert!(!dns1035_label_errors("1web").is_empty());
        assert!(dns1035_label_errors("web1").is_empty());
        assert_eq!(dns1123_label_errors(&"a".repeat(64)), vec!["must be no more than 63 characters"]);
    }

    #[test]
    fn generated_suffixes_are_five_safe_characters() {
        let s = name_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn timestamps_are_whole_seconds_in_utc() {
        let t: jiff::Timestamp = "2024-05-06T07:08:09.999Z".parse().expect("ts");
        assert_eq!(rfc3339(t), "2024-05-06T07:08:09Z");
    }
}
