//! The protobuf wire format: a zero-copy field reader, and a small writer
//! used to build test inputs.

use super::Malformation;

/// Wire type 0.
const VARINT: u8 = 0;
/// Wire type 1.
const FIXED64: u8 = 1;
/// Wire type 2: strings, bytes, messages and packed repeated scalars.
const LEN: u8 = 2;
/// Wire type 5.
const FIXED32: u8 = 5;

/// One field value as found on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

impl WireValue<'_> {
    pub(super) fn wire_type(&self) -> u8 {
        match self {
            WireValue::Varint(_) => VARINT,
            WireValue::Fixed64(_) => FIXED64,
            WireValue::Len(_) => LEN,
            WireValue::Fixed32(_) => FIXED32,
        }
    }
}

/// Reads the fields of one message in wire order.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    /// The next `(field number, value)`, or `None` at the end of the input.
    /// Groups (wire types 3 and 4) are rejected: no Kubernetes message
    /// uses them.
    pub(super) fn next_field(&mut self) -> Result<Option<(u32, WireValue<'a>)>, Malformation> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| Malformation::FieldNumber(key >> 3))?;
        if number == 0 {
            return Err(Malformation::FieldNumber(0));
        }
        let value = match (key & 7) as u8 {
            VARINT => WireValue::Varint(self.varint()?),
            FIXED64 => WireValue::Fixed64(u64::from_le_bytes(self.take_array()?)),
            LEN => {
                let len = usize::try_from(self.varint()?).map_err(|_| Malformation::Truncated)?;
                WireValue::Len(self.take(len)?)
            }
            FIXED32 => WireValue::Fixed32(u32::from_le_bytes(self.take_array()?)),
            other => return Err(Malformation::WireType(other)),
        };
        Ok(Some((number, value)))
    }

    /// A base-128 varint. Ten bytes carry 64 bits; like Go's decoder, bits
    /// past the 64th are dropped and an eleventh byte is an error.
    pub(super) fn varint(&mut self) -> Result<u64, Malformation> {
        let mut value = 0u64;
        for (i, &byte) in self.rest.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        Err(if self.rest.len() < 10 { Malformation::Truncated } else { Malformation::VarintOverflow })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(super) fn fixed64(&mut self) -> Result<u64, Malformation> {
        Ok(u64::from_le_bytes(self.take_array()?))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Malformation> {
        if len > self.rest.len() {
            return Err(Malformation::Truncated);
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], Malformation> {
        let bytes = self.take(N)?;
        let mut array = [0; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }
}

/// Builds protobuf messages field by field, for tests and fixtures:
/// svcnet never answers in protobuf.
///
/// Scalars are written exactly as given (a zero is still written), the way
/// Go's generated marshallers write non-pointer fields.
///
/// ```
/// use svcnet_api::protobuf::Writer;
/// let config_map = Writer::new()
///     .message(1, |meta| meta.string(1, "app-config"))
///     .entry(2, "mode", |v| v.string(2, "prod"))
///     .finish();
/// assert_eq!(config_map[0], 0x0a);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    /// The encoded message.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    fn key(mut self, field: u32, wire_type: u8) -> Self {
        self.put_varint(u64::from(field) << 3 | u64::from(wire_type));
        self
    }

    fn put_varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    /// A raw varint field.
    pub fn varint(self, field: u32, value: u64) -> Self {
        let mut w = self.key(field, VARINT);
        w.put_varint(value);
        w
    }

    /// An `int64` (negative values take ten bytes).
    pub fn int64(self, field: u32, value: i64) -> Self {
        self.varint(field, value as u64)
    }

    /// An `int32`, sign-extended to 64 bits as protobuf requires.
    pub fn int32(self, field: u32, value: i32) -> Self {
        self.varint(field, i64::from(value) as u64)
    }

    pub fn bool(self, field: u32, value: bool) -> Self {
        self.varint(field, u64::from(value))
    }

    pub fn double(self, field: u32, value: f64) -> Self {
        let mut w = self.key(field, FIXED64);
        w.buf.extend_from_slice(&value.to_le_bytes());
        w
    }

    /// A length-delimited field: `bytes`, or an already encoded message.
    pub fn bytes(self, field: u32, value: &[u8]) -> Self {
        let mut w = self.key(field, LEN);
        w.put_varint(value.len() as u64);
        w.buf.extend_from_slice(value);
        w
    }

    pub fn string(self, field: u32, value: &str) -> Self {
        self.bytes(field, value.as_bytes())
    }

    /// A nested message built by `build`.
    pub fn message(self, field: u32, build: impl FnOnce(Writer) -> Writer) -> Self {
        let inner = build(Writer::new()).finish();
        self.bytes(field, &inner)
    }

    /// One entry of a `map<string, V>`: key 1 is `key`, and `value` writes
    /// field 2 (for example `|v| v.string(2, "x")`).
    pub fn entry(self, field: u32, key: &str, value: impl FnOnce(Writer) -> Writer) -> Self {
        self.message(field, |entry| value(entry.string(1, key)))
    }

    /// A packed repeated varint field.
    pub fn packed(self, field: u32, values: &[i64]) -> Self {
        let mut packed = Writer::new();
        for &value in values {
            packed.put_varint(value as u64);
        }
        self.bytes(field, &packed.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(bytes: &[u8]) -> Result<Vec<(u32, WireValue<'_>)>, Malformation> {
        let mut reader = Reader::new(bytes);
        let mut out = Vec::new();
        while let Some(field) = reader.next_field()? {
            out.push(field);
        }
        Ok(out)
    }

    #[test]
    fn reader_reads_back_what_the_writer_wrote() {
        let bytes = Writer::new().int64(1, -1).string(2, "hi").double(3, 1.5).int32(300, -2).finish();
        assert_eq!(
            fields(&bytes),
            Ok(vec![
                (1, WireValue::Varint(u64::MAX)),
                (2, WireValue::Len(b"hi")),
                (3, WireValue::Fixed64(1.5f64.to_bits())),
                (300, WireValue::Varint((-2i64) as u64)),
            ])
        );
    }

    #[test]
    fn negative_int64_takes_ten_bytes() {
        assert_eq!(Writer::new().int64(1, -1).finish().len(), 11);
    }

    #[test]
    fn every_truncation_of_a_message_is_an_error_not_a_panic() {
        let bytes = Writer::new().string(1, "hello").int64(2, 1 << 40).double(3, 2.0).finish();
        // Field ends: 2+5 bytes, then 1+6, then 1+8.
        assert_eq!(bytes.len(), 23);
        for cut in 1..bytes.len() {
            let result = fields(&bytes[..cut]);
            assert_eq!(result.is_ok(), cut == 7 || cut == 14, "cut at {cut}: {result:?}");
        }
    }

    #[test]
    fn eleven_byte_varints_and_groups_are_rejected() {
        assert_eq!(
            fields(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(Malformation::VarintOverflow)
        );
        assert_eq!(fields(&[0x0b]), Err(Malformation::WireType(3)));
        assert_eq!(fields(&[0x00]), Err(Malformation::FieldNumber(0)));
    }
}
