//! Label key and value syntax checks with apimachinery's exact wording, and
//! the `field.Error` rendering those checks are reported in.
//!
//! The messages match Kubernetes 1.33 (`IsQualifiedName`,
//! `IsValidLabelValue`, `IsDNS1123Subdomain`), including the double space in
//! `'MyName',  or 'my.name'` that Go's `RegexError` produces.

use std::fmt;

/// The regex kube-apiserver quotes for label key name parts.
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;

/// The value a [`FieldError`] complains about, printed as Go's `%q` / `%#v`
/// would print it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BadValue {
    Str(String),
    /// A `[]string`; `None` is a nil slice, which Go prints as `[]string(nil)`.
    Strings(Option<Vec<String>>),
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::Str(s) => f.write_str(&go_quote(s)),
            BadValue::Strings(None) => f.write_str("[]string(nil)"),
            BadValue::Strings(Some(v)) => {
                let items: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
                write!(f, "[]string{{{}}}", items.join(", "))
            }
        }
    }
}

/// One `field.Invalid` error: `path: Invalid value: "v": detail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field path as Go prints it; `<nil>` when the parser had no path.
    pub path: String,
    pub(crate) value: BadValue,
    pub detail: String,
}

impl FieldError {
    pub(crate) fn invalid(path: impl Into<String>, value: BadValue, detail: impl Into<String>) -> Self {
        Self { path: path.into(), value, detail: detail.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: Invalid value: {}", self.path, self.value)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// A non-empty list of [`FieldError`]s, rendered like Go's aggregate error:
/// one error alone, several as `[a, b]` with duplicates dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut seen: Vec<String> = Vec::new();
        for e in &self.0 {
            let msg = e.to_string();
            if !seen.contains(&msg) {
                seen.push(msg);
            }
        }
        match seen.len() {
            0 => Ok(()),
            1 => f.write_str(&seen[0]),
            _ => write!(f, "[{}]", seen.join(", ")),
        }
    }
}

/// Quotes a string the way Go's `%q` does (one implementation serves the
/// whole crate: the schema decoder's).
pub(crate) use crate::schema::go_quote;

/// Go's `RegexError`: the message, the examples, and the regex.
fn regex_error(msg: &str, re: &str, examples: &[&str]) -> String {
    let mut s = String::from(msg);
    if examples.is_empty() {
        s.push_str(&format!(" (regex used for validation is '{re}')"));
        return s;
    }
    s.push_str(" (e.g. ");
    for (i, ex) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push_str(&format!("'{ex}', "));
    }
    s.push_str(&format!("regex used for validation is '{re}')"));
    s
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, anchored.
fn matches_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            is_alnum(first) && is_alnum(last) && b.iter().all(|&c| is_alnum(c) || c == b'-' || c == b'_' || c == b'.')
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`, anchored.
fn matches_dns1123_subdomain(s: &str) -> bool {
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(&first), Some(&last)) => edge(first) && edge(last) && b.iter().all(|&c| edge(c) || c == b'-'),
            _ => false,
        }
    };
    s.split('.').all(label_ok)
}

fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, &["example.com"]));
    }
    errs
}

/// Go's `IsQualifiedName`: the problems with a label key, empty when valid.
pub(crate) fn label_key_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(dns1123_subdomain_errors(prefix).into_iter().map(|m| format!("prefix part {m}")));
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > NAME_MAX {
        errs.push(format!("name part {}", max_len_error(NAME_MAX)));
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
        ));
    }
    errs
}

/// Go's `IsValidLabelValue`: the problems with a label value, empty when valid.
pub(crate) fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !value.is_empty() && !matches_qualified_name(value) {
        errs.push(regex_error(LABEL_VALUE_ERR, LABEL_VALUE_FMT, &["MyValue", "my_value", "12345"]));
    }
    errs
}

/// `validateLabelKey`: one field error joining every problem with `; `.
pub(crate) fn validate_label_key(key: &str, path: &str) -> Option<FieldError> {
    let errs = label_key_errors(key);
    (!errs.is_empty()).then(|| FieldError::invalid(path, BadValue::Str(key.to_string()), errs.join("; ")))
}

/// `validateLabelValue`; the path is `<path>[<key>]` as Go's `path.Key(k)`.
pub(crate) fn validate_label_value(key: &str, value: &str, path: &str) -> Option<FieldError> {
    let errs = label_value_errors(value);
    (!errs.is_empty())
        .then(|| FieldError::invalid(format!("{path}[{key}]"), BadValue::Str(value.to_string()), errs.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_escapes_like_percent_q() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("tab\there"), r#""tab\there""#);
        assert_eq!(go_quote("\u{1}"), r#""\x01""#);
        assert_eq!(go_quote("héllo"), "\"héllo\"");
    }

    #[test]
    fn label_keys_accept_prefixes_and_reject_bad_names() {
        assert!(label_key_errors("app").is_empty());
        assert!(label_key_errors("app.kubernetes.io/name").is_empty());
        assert!(label_key_errors("a/b/c")[0].starts_with("a qualified name must consist"));
        assert_eq!(label_key_errors("/x"), vec!["prefix part must be non-empty".to_string()]);
        assert_eq!(label_key_errors("x/").len(), 2, "empty name is both empty and unmatched");
        assert!(label_key_errors("Example.com/x")[0].starts_with("prefix part a lowercase RFC 1123 subdomain"));
        assert_eq!(label_key_errors(&"a".repeat(64))[0], "name part must be no more than 63 characters");
    }

    #[test]
    fn label_values_may_be_empty_but_not_start_with_a_dash() {
        assert!(label_value_errors("").is_empty());
        assert!(label_value_errors("v1.2_3-x").is_empty());
        assert_eq!(
            label_value_errors("-x"),
            vec!["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string()]
        );
    }

    #[test]
    fn field_errors_render_one_alone_and_several_bracketed() {
        let a = FieldError::invalid("key", BadValue::Str("a b".into()), "bad");
        let b = FieldError::invalid("values", BadValue::Strings(None), "empty");
        assert_eq!(FieldErrors(vec![a.clone()]).to_string(), r#"key: Invalid value: "a b": bad"#);
        assert_eq!(
            FieldErrors(vec![a.clone(), b, a]).to_string(),
            r#"[key: Invalid value: "a b": bad, values: Invalid value: []string(nil): empty]"#
        );
    }
}
