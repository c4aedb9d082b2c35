//! Table-driven decoding of one message into the JSON Go would write.
//!
//! Start at [`object`]: it collects the wire fields of a message by number,
//! then walks the message's table in Go struct order and writes each field
//! the way `encoding/json` writes the Go struct that Kubernetes' generated
//! unmarshaller would have filled (see [`Presence`] for when a field is
//! written). The built-in types with hand-written JSON forms (`Time`,
//! `IntOrString`, `Quantity`, ...) are decoded here as well.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::message::{Field, Presence, Shape, Ty};
use super::wire::{Reader, WireValue};
use super::{MAGIC, Malformation, ProtobufError};

/// How deep messages may nest, objects embedded in a `RawExtension`
/// included. The tables nest about fifteen deep; the bound only stops
/// hostile input from recursing without end.
pub(super) const MAX_DEPTH: usize = 100;

/// Seconds from the Unix epoch to Go's zero `time.Time` (January 1, year
/// 1), which Kubernetes writes as `null`.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// The JSON object of a message with these `fields`.
pub(super) fn object(fields: &[Field], bytes: &[u8], depth: usize) -> Result<Map<String, Value>, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::malformed(Malformation::TooDeep));
    }
    let mut seen: Vec<Vec<WireValue<'_>>> = vec![Vec::new(); fields.len()];
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader.next_field().map_err(ProtobufError::malformed)? {
        // Unknown field numbers are skipped, as Go's generated code does.
        if let Some(i) = fields.iter().position(|f| f.0 == number) {
            seen[i].push(value);
        }
    }
    let mut out = Map::new();
    for (&(_, json, shape), values) in fields.iter().zip(&seen) {
        field(&mut out, json, shape, values, depth).map_err(|e| e.within(json))?;
    }
    Ok(out)
}

fn field(
    out: &mut Map<String, Value>,
    json: &str,
    shape: Shape,
    values: &[WireValue<'_>],
    depth: usize,
) -> Result<(), ProtobufError> {
    match shape {
        Shape::Inline(message) => {
            let bytes = merged(values)?;
            out.extend(object(message.fields, &bytes, depth + 1)?);
        }
        Shape::One(presence, ty) => {
            let decoded = if values.is_empty() { None } else { Some(one(ty, values, depth)?) };
            let written = match (decoded, presence) {
                (Some(v), Presence::Value) if ty.is_scalar() && is_zero(&v) => None,
                (Some(v), _) => Some(v),
                (None, Presence::Value) if ty.is_scalar() => None,
                (None, Presence::Value | Presence::Always) => Some(zero(ty, depth)?),
                (None, Presence::Ptr) => None,
                (None, Presence::PtrOrNull) => Some(Value::Null),
            };
            if let Some(v) = written {
                out.insert(json.to_owned(), v);
            }
        }
        Shape::List(ty) | Shape::ListOrNull(ty) => {
            let mut items = Vec::new();
            for value in values {
                let index = items.len();
                elements(ty, *value, &mut items, depth).map_err(|e| e.within(&format!("[{index}]")))?;
            }
            if !items.is_empty() {
                out.insert(json.to_owned(), Value::Array(items));
            } else if matches!(shape, Shape::ListOrNull(_)) {
                out.insert(json.to_owned(), Value::Null);
            }
        }
        Shape::Map(ty) => {
            // Go writes map keys sorted; a repeated key keeps its last value.
            let mut entries = BTreeMap::new();
            for value in values {
                let (key, v) = entry(ty, *value, depth)?;
                entries.insert(key, v);
            }
            if !entries.is_empty() {
                out.insert(json.to_owned(), Value::Object(entries.into_iter().collect()));
            }
        }
    }
    Ok(())
}

/// A single field from all its occurrences: the last one for scalars; for
/// messages the concatenation, which protobuf defines as their merge.
fn one(ty: Ty, values: &[WireValue<'_>], depth: usize) -> Result<Value, ProtobufError> {
    match (ty.is_scalar(), values.last()) {
        (true, Some(last)) => scalar(ty, *last).map_err(ProtobufError::malformed),
        _ => builtin_or_message(ty, &merged(values)?, depth),
    }
}

/// The elements one occurrence of a repeated field contributes: one, or
/// several for packed scalars (accepted even though Kubernetes never packs).
fn elements(ty: Ty, value: WireValue<'_>, items: &mut Vec<Value>, depth: usize) -> Result<(), ProtobufError> {
    let malformed = ProtobufError::malformed;
    match (ty, value) {
        (Ty::Int32 | Ty::Int64 | Ty::Bool, WireValue::Len(bytes)) => {
            let mut reader = Reader::new(bytes);
            while !reader.is_empty() {
                let v = reader.varint().map_err(malformed)?;
                items.push(scalar(ty, WireValue::Varint(v)).map_err(malformed)?);
            }
        }
        (Ty::Double, WireValue::Len(bytes)) => {
            let mut reader = Reader::new(bytes);
            while !reader.is_empty() {
                let bits = reader.fixed64().map_err(malformed)?;
                items.push(scalar(ty, WireValue::Fixed64(bits)).map_err(malformed)?);
            }
        }
        _ if ty.is_scalar() => items.push(scalar(ty, value).map_err(malformed)?),
        (_, WireValue::Len(bytes)) => items.push(builtin_or_message(ty, bytes, depth)?),
        (_, other) => return Err(malformed(wrong_wire_type(ty, other))),
    }
    Ok(())
}

/// One `map<string, V>` entry: key = 1, value = 2. Go fills a missing
/// value with an empty one.
fn entry(ty: Ty, value: WireValue<'_>, depth: usize) -> Result<(String, Value), ProtobufError> {
    let WireValue::Len(bytes) = value else {
        return Err(ProtobufError::malformed(wrong_wire_type(Ty::String, value)));
    };
    let (mut key, mut values) = (String::new(), Vec::new());
    let mut reader = Reader::new(bytes);
    while let Some((number, v)) = reader.next_field().map_err(ProtobufError::malformed)? {
        match (number, v) {
            (1, WireValue::Len(k)) => key = String::from_utf8_lossy(k).into_owned(),
            (1, other) => return Err(ProtobufError::malformed(wrong_wire_type(Ty::String, other))),
            (2, v) => values.push(v),
            _ => {}
        }
    }
    let decoded = if values.is_empty() {
        match ty {
            Ty::Bytes => Value::String(String::new()),
            _ => zero(ty, depth)?,
        }
    } else {
        one(ty, &values, depth).map_err(|e| e.within(&format!("[{key}]")))?
    };
    Ok((key, decoded))
}

fn scalar(ty: Ty, value: WireValue<'_>) -> Result<Value, Malformation> {
    Ok(match (ty, value) {
        (Ty::String, WireValue::Len(bytes)) => {
            // Go's JSON encoder replaces invalid UTF-8 the same way.
            Value::String(String::from_utf8_lossy(bytes).into_owned())
        }
        (Ty::Bytes, WireValue::Len(bytes)) => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
        // Go keeps the low 32 bits of a sign-extended int32 varint.
        (Ty::Int32, WireValue::Varint(v)) => Value::from(v as u32 as i32),
        (Ty::Int64, WireValue::Varint(v)) => Value::from(v as i64),
        (Ty::Bool, WireValue::Varint(v)) => Value::Bool(v != 0),
        (Ty::Double, WireValue::Fixed64(bits)) => {
            let double = f64::from_bits(bits);
            Value::Number(Number::from_f64(double).ok_or(Malformation::NonFiniteDouble)?)
        }
        (ty, other) => return Err(wrong_wire_type(ty, other)),
    })
}

fn builtin_or_message(ty: Ty, bytes: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    let malformed = ProtobufError::malformed;
    Ok(match ty {
        Ty::Message(message) => Value::Object(object(message.fields, bytes, depth + 1)?),
        Ty::Time => match timestamp(bytes).map_err(malformed)? {
            None => Value::Null,
            Some((GO_ZERO_TIME, _)) => Value::Null,
            Some((seconds, _)) => Value::String(rfc3339(seconds, None).map_err(malformed)?),
        },
        Ty::MicroTime => match timestamp(bytes).map_err(malformed)? {
            None => Value::Null,
            Some((seconds, nanos)) => {
                // Go's time.Unix normalizes nanoseconds outside [0, 1e9).
                let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
                let seconds = i64::try_from(total.div_euclid(1_000_000_000))
                    .map_err(|_| malformed(Malformation::TimeOutOfRange(seconds)))?;
                let nanos = total.rem_euclid(1_000_000_000) as u32;
                if (seconds, nanos) == (GO_ZERO_TIME, 0) {
                    Value::Null
                } else {
                    Value::String(rfc3339(seconds, Some(nanos)).map_err(malformed)?)
                }
            }
        },
        Ty::Duration => {
            let nanos = int_field(bytes, 1).map_err(malformed)?.unwrap_or(0);
            Value::String(go_duration(nanos))
        }
        Ty::IntOrString => int_or_string(bytes).map_err(malformed)?,
        Ty::Quantity => match string_field(bytes, 1).map_err(malformed)? {
            None => Value::String("0".into()),
            Some(q) if q.is_empty() => return Err(malformed(Malformation::EmptyQuantity)),
            Some(q) => Value::String(q),
        },
        Ty::RawExtension => match bytes_field(bytes, 1).map_err(malformed)? {
            None | Some([]) => Value::Null,
            Some(raw) if raw.starts_with(&MAGIC) => super::decode_at_depth(raw, depth + 1)?,
            Some(raw) => serde_json::from_slice(raw).map_err(|_| malformed(Malformation::RawExtension))?,
        },
        Ty::FieldsV1 => match bytes_field(bytes, 1).map_err(malformed)? {
            None | Some([]) => Value::Null,
            Some(raw) => serde_json::from_slice(raw).map_err(|_| malformed(Malformation::FieldsV1))?,
        },
        Ty::String | Ty::Int32 | Ty::Int64 | Ty::Bool | Ty::Bytes | Ty::Double => {
            return Err(malformed(Malformation::WireTypeMismatch { found: 2, expected: ty.wire_type() }));
        }
    })
}

/// The JSON Go writes for a field that is not on the wire.
fn zero(ty: Ty, depth: usize) -> Result<Value, ProtobufError> {
    Ok(match ty {
        Ty::String => Value::String(String::new()),
        Ty::Int32 | Ty::Int64 | Ty::Double | Ty::IntOrString => Value::from(0),
        Ty::Bool => Value::Bool(false),
        Ty::Duration => Value::String("0s".into()),
        Ty::Quantity => Value::String("0".into()),
        Ty::Bytes | Ty::Time | Ty::MicroTime | Ty::RawExtension | Ty::FieldsV1 => Value::Null,
        Ty::Message(message) => Value::Object(object(message.fields, &[], depth + 1)?),
    })
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

impl Ty {
    /// Whether the type is a plain proto scalar (everything else is a
    /// length-delimited message).
    fn is_scalar(self) -> bool {
        matches!(self, Ty::String | Ty::Int32 | Ty::Int64 | Ty::Bool | Ty::Bytes | Ty::Double)
    }

    fn wire_type(self) -> u8 {
        match self {
            Ty::Int32 | Ty::Int64 | Ty::Bool => 0,
            Ty::Double => 1,
            _ => 2,
        }
    }
}

fn wrong_wire_type(ty: Ty, found: WireValue<'_>) -> Malformation {
    Malformation::WireTypeMismatch { found: found.wire_type(), expected: ty.wire_type() }
}

/// All occurrences of a message field, concatenated (borrowed if single).
fn merged<'a>(values: &[WireValue<'a>]) -> Result<Cow<'a, [u8]>, ProtobufError> {
    let mut merged: Cow<'a, [u8]> = Cow::Borrowed(&[]);
    for value in values {
        let WireValue::Len(bytes) = *value else {
            return Err(ProtobufError::malformed(Malformation::WireTypeMismatch {
                found: value.wire_type(),
                expected: 2,
            }));
        };
        if merged.is_empty() {
            merged = Cow::Borrowed(bytes);
        } else {
            merged.to_mut().extend_from_slice(bytes);
        }
    }
    Ok(merged)
}

/// The last occurrence of field `number` in a small built-in message.
fn last_field<'a>(bytes: &'a [u8], number: u32) -> Result<Option<WireValue<'a>>, Malformation> {
    let mut reader = Reader::new(bytes);
    let mut last = None;
    while let Some((n, value)) = reader.next_field()? {
        if n == number {
            last = Some(value);
        }
    }
    Ok(last)
}

fn int_field(bytes: &[u8], number: u32) -> Result<Option<i64>, Malformation> {
    match last_field(bytes, number)? {
        None => Ok(None),
        Some(WireValue::Varint(v)) => Ok(Some(v as i64)),
        Some(other) => Err(wrong_wire_type(Ty::Int64, other)),
    }
}

fn bytes_field(bytes: &[u8], number: u32) -> Result<Option<&[u8]>, Malformation> {
    match last_field(bytes, number)? {
        None => Ok(None),
        Some(WireValue::Len(b)) => Ok(Some(b)),
        Some(other) => Err(wrong_wire_type(Ty::Bytes, other)),
    }
}

fn string_field(bytes: &[u8], number: u32) -> Result<Option<String>, Malformation> {
    Ok(bytes_field(bytes, number)?.map(|b| String::from_utf8_lossy(b).into_owned()))
}

/// `Timestamp { seconds = 1; nanos = 2 }`, or `None` for the empty message
/// Go writes for the zero time.
fn timestamp(bytes: &[u8]) -> Result<Option<(i64, i64)>, Malformation> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let seconds = int_field(bytes, 1)?.unwrap_or(0);
    // nanos is an int32 on the wire.
    let nanos = int_field(bytes, 2)?.map_or(0, |n| i64::from(n as i32));
    Ok(Some((seconds, nanos)))
}

/// `2024-01-01T00:00:00Z` (metav1.Time, whose protobuf decoding drops
/// nanoseconds) or `2024-01-01T00:00:00.000001Z` (metav1.MicroTime,
/// truncated to microseconds as Go's formatting does), always in UTC.
fn rfc3339(seconds: i64, nanos: Option<u32>) -> Result<String, Malformation> {
    let timestamp = jiff::Timestamp::new(seconds, nanos.map_or(0, |n| n as i32))
        .map_err(|_| Malformation::TimeOutOfRange(seconds))?;
    let civil = timestamp.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    let year = civil.year();
    if !(0..=9999).contains(&year) {
        return Err(Malformation::TimeOutOfRange(seconds));
    }
    let date = format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        civil.month(),
        civil.day(),
        civil.hour(),
        civil.minute(),
        civil.second()
    );
    Ok(match nanos {
        None => format!("{date}Z"),
        Some(n) => format!("{date}.{:06}Z", n / 1000),
    })
}

/// `IntOrString { type = 1; intVal = 2; strVal = 3 }`.
fn int_or_string(bytes: &[u8]) -> Result<Value, Malformation> {
    match int_field(bytes, 1)?.unwrap_or(0) {
        0 => Ok(Value::from(int_field(bytes, 2)?.map_or(0, |v| v as i32))),
        1 => Ok(Value::String(string_field(bytes, 3)?.unwrap_or_default())),
        other => Err(Malformation::IntOrStringType(other)),
    }
}

/// Go's `time.Duration.String()`: "1h2m3.5s", "1.5ms", "0s", "-2m0s".
pub(super) fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000_000_000 {
        // Below a second: one unit, with a fraction.
        let (unit, scale) = match n {
            0..1_000 => return format!("{sign}{n}ns"),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", with_fraction(n, scale));
    }
    let (hours, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
    let (minutes, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let seconds = with_fraction(rest, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{sign}{seconds}s"),
        (0, m) => format!("{sign}{m}m{seconds}s"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}s"),
    }
}

/// `value / scale` with the fraction's trailing zeros dropped.
fn with_fraction(value: u64, scale: u64) -> String {
    let (whole, fraction) = (value / scale, value % scale);
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = scale.ilog10() as usize;
    let fraction = format!("{fraction:0digits$}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}
