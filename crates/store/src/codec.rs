//! Little-endian binary encoding shared by the log and snapshot formats.
//!
//! Both on-disk formats are flat sequences of fixed-width little-endian
//! integers and `u32`-length-prefixed byte strings. Writing them by hand
//! keeps the format obvious from the code and avoids a serialisation
//! dependency whose output could change under us between versions.
//!
//! Everything read back from disk is untrusted: [`Reader`] never panics and
//! never indexes out of bounds; any short or malformed input becomes
//! [`Error::Corrupt`] naming what was being read and where.

use bytes::Bytes;

use crate::Error;

/// The largest key or value length the formats can express.
///
/// Lengths are stored as `u32`. The writer refuses requests whose encoding
/// would not fit a log frame (see `log::MAX_FRAME_PAYLOAD`), which is well
/// below this, so encoders can rely on every length fitting.
const MAX_LEN: usize = u32::MAX as usize;

pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Writes a `u32` length prefix followed by `bytes`.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    debug_assert!(bytes.len() <= MAX_LEN, "writer admits only requests that fit a frame");
    // Truncation cannot happen: the writer rejects oversized requests before
    // anything is encoded (see MAX_LEN).
    put_u32(out, bytes.len() as u32);
    out.extend_from_slice(bytes);
}

/// A cursor over untrusted bytes read from disk.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// `what` names the structure being decoded, for error messages.
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, pos: 0, what }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn corrupt(&self, detail: &str) -> Error {
        Error::Corrupt(format!("{}: {} at byte {}", self.what, detail, self.pos))
    }

    pub(crate) fn take(&mut self, n: usize) -> crate::Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len());
        let Some(end) = end else {
            return Err(self.corrupt(&format!("truncated (wanted {n} more bytes)")));
        };
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> crate::Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> crate::Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> crate::Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> crate::Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> crate::Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A length-prefixed byte string.
    pub(crate) fn bytes(&mut self) -> crate::Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    /// A length-prefixed byte string copied out, so the (possibly much
    /// larger) buffer it came from can be freed.
    pub(crate) fn owned_bytes(&mut self) -> crate::Result<Bytes> {
        Ok(Bytes::copy_from_slice(self.bytes()?))
    }

    /// A length-prefixed UTF-8 string (keys are `String`s in the API).
    pub(crate) fn string(&mut self) -> crate::Result<String> {
        let raw = self.bytes()?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(self.corrupt("key is not UTF-8")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let mut out = Vec::new();
        put_u8(&mut out, 7);
        put_u32(&mut out, 0xdead_beef);
        put_u64(&mut out, u64::MAX - 1);
        put_i64(&mut out, -42);
        put_bytes(&mut out, "héllo".as_bytes());
        let mut r = Reader::new(&out, "test");
        assert_eq!(r.u8().ok(), Some(7));
        assert_eq!(r.u32().ok(), Some(0xdead_beef));
        assert_eq!(r.u64().ok(), Some(u64::MAX - 1));
        assert_eq!(r.i64().ok(), Some(-42));
        assert_eq!(r.string().ok().as_deref(), Some("héllo"));
        assert!(r.is_empty());
    }

    #[test]
    fn short_input_is_corrupt_not_a_panic() {
        let mut out = Vec::new();
        put_u32(&mut out, 1000);
        out.extend_from_slice(b"abc");
        let mut r = Reader::new(&out, "test");
        assert!(matches!(r.bytes(), Err(Error::Corrupt(_))));
        let mut r = Reader::new(&[1, 2], "test");
        assert!(matches!(r.i64(), Err(Error::Corrupt(_))));
    }

    #[test]
    fn invalid_utf8_key_is_corrupt() {
        let mut out = Vec::new();
        put_bytes(&mut out, &[0xff, 0xfe]);
        let mut r = Reader::new(&out, "test");
        assert!(matches!(r.string(), Err(Error::Corrupt(_))));
    }
}
