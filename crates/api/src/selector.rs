//! Label and field selectors, parsed and matched the way kube-apiserver does.
//!
//! - [`LabelSelector`]: the set-based `labelSelector` grammar (`a=b`, `a in (x,y)`,
//!   `!a`, `a>5` ...) and `metav1.LabelSelector` objects; start at
//!   [`LabelSelector::parse`].
//! - [`FieldSelector`]: the `fieldSelector` grammar (`f=v`, `f!=v`, backslash
//!   escapes), the fields each served resource lets clients select on, and
//!   [`field_value`] to read them from a stored object.
//!
//! Every [`SelectorError`] renders the exact message kube-apiserver puts in its
//! 400 `Status`, because kubectl shows that text verbatim and scripts match on it.

mod field;
mod label;
/// Shared with `table`, which quotes values the same way in its errors.
pub(crate) mod validation;

pub use field::{FieldOperator, FieldRequirement, FieldSelector, escape_field_value, field_value, supported_fields};
pub use label::{LabelSelector, Labels, Operator, Requirement};
pub use validation::{FieldError, FieldErrors};

/// A selector that kube-apiserver would reject with 400 Bad Request.
///
/// The `Display` text is the message kube-apiserver sends; the variants keep
/// the pieces so callers can reason about them without parsing text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A requirement inside a label selector is malformed. The inner error is
    /// part of the message (as Go's `%v` wrapping does), so it is not also
    /// exposed as `source` to avoid printing it twice in error chains.
    #[error("unable to parse requirement: {0}")]
    Requirement(RequirementError),
    /// A token appeared where the label selector grammar does not allow it.
    #[error("found '{found}', expected: {expected}")]
    Unexpected { found: String, expected: &'static str },
    /// A `metav1.LabelSelector` (or plain map) holds an invalid key or value.
    #[error("{0}")]
    Invalid(FieldErrors),
    /// A `matchExpressions` entry uses an operator other than In, NotIn,
    /// Exists, DoesNotExist.
    #[error("{} is not a valid label selector operator", validation::go_quote(.0))]
    InvalidOperator(String),
    /// A field selector term has no `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    InvalidFieldTerm { selector: String, term: String },
    /// A field selector value contains a backslash escape other than `\\`,
    /// `\,`, `\=`, or ends in a lone backslash.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscapeSequence(String),
    /// A field selector value contains an unescaped `,` or `=`. Go prints the
    /// rune with `%v`, i.e. as its decimal code point.
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedCharacter(char),
    /// The resource has no field label conversion of its own, so only the
    /// generic metadata fields are allowed.
    #[error(
        "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
        validation::go_quote(.0)
    )]
    UnknownField(String),
    /// The resource has its own field label conversion and this field is not
    /// in it.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

/// Why one requirement of a label selector did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    #[error("found '{found}', expected: {expected}")]
    Unexpected { found: String, expected: &'static str },
    /// Go's message for a missing `(` after `in`/`notin` lacks the comma the
    /// other messages have; kept as is.
    #[error("found '{found}' expected: '('")]
    ExpectedOpenParen { found: String },
    /// The key or a value failed label syntax validation.
    #[error("{0}")]
    Invalid(FieldErrors),
}
