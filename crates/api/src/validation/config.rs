//! Secret and ConfigMap validation (`ValidateSecret`, `ValidateConfigMap`
//! and their updates): key syntax, the 1 MiB size limit, the keys each
//! Secret type requires, and immutability.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::access::{bool_of, get, obj, str_of, str_or};
use super::field::{FieldError, Path};
use super::text::{each, is_config_map_key};

/// `core.MaxSecretSize`, which also bounds ConfigMaps.
pub const MAX_SIZE: usize = 1024 * 1024;
const IMMUTABLE: &str = "field is immutable when `immutable` is set";

/// A Secret's data as Go sees it after conversion: `data` decoded from
/// base64, with `stringData` entries laid over it.
fn secret_data(secret: &Value) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for (k, v) in get(secret, "data").and_then(Value::as_object).into_iter().flatten() {
        let raw = v.as_str().unwrap_or("");
        // Undecodable data is rejected when the body is decoded; count its
        // raw size here.
        let bytes = base64::engine::general_purpose::STANDARD.decode(raw).unwrap_or_else(|_| raw.as_bytes().to_vec());
        out.push((k.clone(), bytes));
    }
    for (k, v) in get(secret, "stringData").and_then(Value::as_object).into_iter().flatten() {
        let bytes = v.as_str().unwrap_or("").as_bytes().to_vec();
        match out.iter_mut().find(|(key, _)| key == k) {
            Some(entry) => entry.1 = bytes,
            None => out.push((k.clone(), bytes)),
        }
    }
    out
}

pub(crate) fn validate_secret(secret: &Value) -> Vec<FieldError> {
    let data_path = Path::root("data");
    let data = secret_data(secret);
    let mut errs = Vec::new();
    let mut total = 0;
    for (key, value) in &data {
        errs.extend(each(&data_path.key(key), key, is_config_map_key(key)));
        total += value.len();
    }
    if total > MAX_SIZE {
        errs.push(FieldError::too_long(&data_path, MAX_SIZE));
    }
    let has = |k: &str| data.iter().any(|(key, _)| key == k);
    let value_of = |k: &str| data.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_slice());
    match str_or(secret, "type", "Opaque") {
        "kubernetes.io/service-account-token" => {
            let name = str_of(obj(obj(secret, "metadata"), "annotations"), "kubernetes.io/service-account.name");
            if name.is_empty() {
                errs.push(FieldError::required(
                    Path::root("metadata.annotations").key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" => {
            errs.extend(docker_config_errors(value_of(".dockercfg"), &data_path.key(".dockercfg")))
        }
        "kubernetes.io/dockerconfigjson" => {
            errs.extend(docker_config_errors(value_of(".dockerconfigjson"), &data_path.key(".dockerconfigjson")))
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(FieldError::required(data_path.key("username"), ""));
            errs.push(FieldError::required(data_path.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if value_of("ssh-privatekey").is_none_or(<[u8]>::is_empty) => {
            errs.push(FieldError::required(data_path.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !has(key) {
                    errs.push(FieldError::required(data_path.key(key), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

/// The key must exist and hold a JSON object. Go's `encoding/json` error
/// text is approximated for the common cases.
fn docker_config_errors(value: Option<&[u8]>, path: &Path) -> Vec<FieldError> {
    let Some(bytes) = value else {
        return vec![FieldError::required(path, "")];
    };
    let detail = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(_)) => return Vec::new(),
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "bool",
                _ => return Vec::new(), // null unmarshals into a nil map
            };
            format!("json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}")
        }
        Err(e) if e.is_eof() => "unexpected end of JSON input".to_string(),
        Err(e) => e.to_string(),
    };
    vec![FieldError::invalid(path, "<secret contents redacted>", detail)]
}

pub(crate) fn validate_secret_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (nt, ot) = (str_or(new, "type", "Opaque"), str_or(old, "type", "Opaque"));
    if nt != ot {
        errs.push(FieldError::invalid("type", nt, "field is immutable"));
    }
    if bool_of(old, "immutable") == Some(true) {
        if bool_of(new, "immutable") != Some(true) {
            errs.push(FieldError::forbidden("immutable", IMMUTABLE));
        }
        let sorted = |v: &Value| {
            let mut d = secret_data(v);
            d.sort();
            d
        };
        if sorted(new) != sorted(old) {
            errs.push(FieldError::forbidden("data", IMMUTABLE));
        }
    }
    errs.extend(validate_secret(new));
    errs
}

pub(crate) fn validate_config_map(cm: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0;
    let data = get(cm, "data").and_then(Value::as_object);
    let binary = get(cm, "binaryData").and_then(Value::as_object);
    for (key, value) in data.into_iter().flatten() {
        let path = Path::root("data").key(key);
        errs.extend(each(&path, key, is_config_map_key(key)));
        if binary.is_some_and(|b| b.contains_key(key)) {
            errs.push(FieldError::invalid(&path, key.as_str(), "duplicate of key present in binaryData"));
        }
        total += value.as_str().unwrap_or("").len();
    }
    for (key, value) in binary.into_iter().flatten() {
        errs.extend(each(&Path::root("binaryData").key(key), key, is_config_map_key(key)));
        let raw = value.as_str().unwrap_or("");
        total += base64::engine::general_purpose::STANDARD.decode(raw).map_or(raw.len(), |b| b.len());
    }
    if total > MAX_SIZE {
        // kube passes an empty path: the whole object is too big.
        errs.push(FieldError::too_long("", MAX_SIZE));
    }
    errs
}

pub(crate) fn validate_config_map_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if bool_of(old, "immutable") == Some(true) {
        if bool_of(new, "immutable") != Some(true) {
            errs.push(FieldError::forbidden("immutable", IMMUTABLE));
        }
        for field in ["data", "binaryData"] {
            if map_or_empty(new, field) != map_or_empty(old, field) {
                errs.push(FieldError::forbidden(field, IMMUTABLE));
            }
        }
    }
    errs.extend(validate_config_map(new));
    errs
}

fn map_or_empty(v: &Value, field: &str) -> Map<String, Value> {
    get(v, field).and_then(Value::as_object).cloned().unwrap_or_default()
}
