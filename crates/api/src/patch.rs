//! PATCH semantics as kube-apiserver implements them, as pure functions
//! over `serde_json::Value`:
//!
//! - [`json_merge_patch`]: `application/merge-patch+json` (RFC 7386, with
//!   evanphx/json-patch's treatment of nulls inside added values);
//! - [`json_patch`]: `application/json-patch+json` (RFC 6902, as
//!   evanphx/json-patch v4 applies it, quirks and messages included);
//! - [`strategic_merge_patch`]: `application/strategic-merge-patch+json`,
//!   driven by the patch metadata of [`crate::schema`].
//!
//! Errors carry the messages kube-apiserver returns; which HTTP status each
//! becomes is documented on [`PatchError`] and decided by the API server.

mod gofmt;
mod json_patch;
mod merge;
mod strategic;

pub(crate) use gofmt::float_g;
pub use json_patch::json_patch;
pub use merge::json_merge_patch;
pub use strategic::strategic_merge_patch;

/// The malformed strategic-merge-patch directives kube-apiserver names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// `$deleteFromPrimitiveList/<field>`.
    DeleteFromPrimitiveList,
    /// `$retainKeys`.
    RetainKeys,
    /// `$setElementOrder/<field>`.
    SetElementOrder,
}

impl std::fmt::Display for Directive {
    /// As Kubernetes' mergepatch errors name them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Directive::DeleteFromPrimitiveList => "primitive list",
            Directive::RetainKeys => "retainKeys",
            Directive::SetElementOrder => "setElementOrder list",
        })
    }
}

/// Why a patch cannot be applied.
///
/// kube-apiserver answers [`Malformed`](PatchError::Malformed) and
/// [`BadDirective`](PatchError::BadDirective) with 400 Bad Request;
/// [`JsonPatchFailed`](PatchError::JsonPatchFailed) and
/// [`ListOfLists`](PatchError::ListOfLists) with 422 Unprocessable Entity
/// (for JSON patch the text goes into the Status' first cause, its message
/// being "the server rejected our request due to an error in our request");
/// [`MergeFailed`](PatchError::MergeFailed) is passed through unwrapped and
/// so becomes a 500.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document is not of the JSON type its format requires, e.g.
    /// a JSON patch that is not an array of operations.
    #[error("{0}")]
    Malformed(String),
    /// An RFC 6902 operation could not be applied.
    #[error("{0}")]
    JsonPatchFailed(String),
    /// A strategic-merge-patch directive is malformed.
    #[error("invalid patch format of {0}")]
    BadDirective(Directive),
    /// A list holds lists, which strategic merge patch cannot merge.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// The strategic merge failed: unknown `$patch` value, missing merge
    /// key, a field the schema does not know, mismatched element types.
    #[error("{0}")]
    MergeFailed(String),
    /// The caller named a definition the schema registry does not hold.
    #[error("no schema is registered for {0}")]
    UnknownDefinition(String),
}
