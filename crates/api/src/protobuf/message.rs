//! The table model: how one protobuf message maps to Kubernetes JSON.
//!
//! Every message is a [`Message`]: a name ("core.v1.Service", the proto
//! package without its `k8s.io.api.`/`k8s.io.apimachinery.pkg.apis.`
//! prefix) and its fields in Go struct order, which is the order
//! Kubernetes' JSON encoding writes them in. A field is
//! `(number, json name, Shape)`; the [`Shape`] carries what the Go type
//! says and the proto file does not: whether Go holds the field by value
//! or by pointer, and whether its JSON tag has `omitempty`. Both matter
//! because Go writes every non-pointer field to the wire, so "present on
//! the wire" only means "set" for pointers.
//!
//! The tables themselves live in one file per API group (`meta.rs`,
//! `core.rs`, ...) and are plain statics that point at each other, so a
//! reference to a message that does not exist does not compile.

use std::fmt;

/// One protobuf message type and the JSON object it becomes.
pub(super) struct Message {
    pub(super) name: &'static str,
    pub(super) fields: &'static [Field],
}

impl Message {
    pub(super) const fn new(name: &'static str, fields: &'static [Field]) -> Message {
        Message { name, fields }
    }
}

// The tables form a graph; printing the name is enough and never recurses.
impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// `(field number, JSON name, shape)`; the name is empty for inlined
/// (embedded) structs.
pub(super) type Field = (u32, &'static str, Shape);

/// How a field is held in Go, which decides when Kubernetes' JSON has it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Shape {
    /// One value of the type.
    One(Presence, Ty),
    /// A slice with `omitempty`: left out when empty.
    List(Ty),
    /// A slice without `omitempty`: `null` when empty.
    ListOrNull(Ty),
    /// A `map[string]T` with `omitempty` (repeated entries on the wire,
    /// key = 1, value = 2): left out when empty.
    Map(Ty),
    /// An embedded struct (`json:",inline"`): its fields join the parent.
    Inline(&'static Message),
}

/// When a single (non-repeated) field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Presence {
    /// A value with `omitempty`: scalars are left out when zero. Structs are
    /// always written, as Go's `omitempty` never omits a struct (so an
    /// unset `metav1.Time` is `null` and an unset `IntOrString` is `0`).
    Value,
    /// A value without `omitempty`: always written, zero when unset.
    Always,
    /// A pointer with `omitempty`: written whenever set, even to zero.
    Ptr,
    /// A pointer without `omitempty`: `null` when unset.
    PtrOrNull,
}

/// The protobuf type of a field (of each element, for lists and maps).
#[derive(Debug, Clone, Copy)]
pub(super) enum Ty {
    String,
    Int32,
    Int64,
    Bool,
    /// Base64 in JSON.
    Bytes,
    // No served kind has a `double` or `metav1.Duration` field today; the
    // decoder supports both so that a table is all a new kind needs.
    #[allow(dead_code)]
    Double,
    /// `meta.v1.Time`: RFC 3339 with seconds; `null` when unset.
    Time,
    /// `meta.v1.MicroTime`: RFC 3339 with microseconds; `null` when unset.
    MicroTime,
    /// `meta.v1.Duration`: a Go duration string such as "1m30s".
    #[allow(dead_code)]
    Duration,
    /// `util.intstr.IntOrString`: a JSON number or string.
    IntOrString,
    /// `api.resource.Quantity`: its string form.
    Quantity,
    /// `runtime.RawExtension`: the embedded object itself.
    RawExtension,
    /// `meta.v1.FieldsV1`: the embedded JSON field set.
    FieldsV1,
    Message(&'static Message),
}

pub(super) const STRING: Ty = Ty::String;
pub(super) const INT32: Ty = Ty::Int32;
pub(super) const INT64: Ty = Ty::Int64;
pub(super) const BOOL: Ty = Ty::Bool;
pub(super) const BYTES: Ty = Ty::Bytes;
pub(super) const TIME: Ty = Ty::Time;
pub(super) const MICRO_TIME: Ty = Ty::MicroTime;
pub(super) const INT_OR_STRING: Ty = Ty::IntOrString;
pub(super) const QUANTITY: Ty = Ty::Quantity;
pub(super) const RAW_EXTENSION: Ty = Ty::RawExtension;
pub(super) const FIELDS_V1: Ty = Ty::FieldsV1;

pub(super) const fn msg(message: &'static Message) -> Ty {
    Ty::Message(message)
}

pub(super) const fn value(ty: Ty) -> Shape {
    Shape::One(Presence::Value, ty)
}

pub(super) const fn always(ty: Ty) -> Shape {
    Shape::One(Presence::Always, ty)
}

pub(super) const fn ptr(ty: Ty) -> Shape {
    Shape::One(Presence::Ptr, ty)
}

pub(super) const fn ptr_or_null(ty: Ty) -> Shape {
    Shape::One(Presence::PtrOrNull, ty)
}

pub(super) const fn list(ty: Ty) -> Shape {
    Shape::List(ty)
}

pub(super) const fn list_or_null(ty: Ty) -> Shape {
    Shape::ListOrNull(ty)
}

pub(super) const fn map(ty: Ty) -> Shape {
    Shape::Map(ty)
}

pub(super) const fn inline(message: &'static Message) -> Shape {
    Shape::Inline(message)
}
