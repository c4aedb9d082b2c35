//! The append-only log: one checksummed frame per group commit.
//!
//! ```text
//! frame   := magic:u32 payload_len:u32 payload_crc:u32 header_crc:u32 payload
//! payload := record_count:u32 record*
//! record  := revision:i64 mutation_count:u32 mutation*
//! mutation:= 1:u8 key:bytes create_revision:i64 value:bytes      (put)
//!          | 2:u8 key:bytes                                      (delete)
//! bytes   := len:u32 raw[len]          all integers little-endian
//! ```
//!
//! Why a frame per *batch* rather than per record: the writer appends a whole
//! batch, fsyncs once, and only then starts the next batch. So after a crash
//! the only bytes that can be damaged are those of the final frame, and that
//! frame was never acknowledged. Recovery can then tell a torn tail (drop it)
//! from real corruption (refuse to open) with one rule: a damaged frame is a
//! torn tail if and only if no intact frame follows it. With a frame per
//! record, pages of one batch can reach disk out of order and leave intact
//! records after a damaged one, which that rule would misreport as
//! corruption.
//!
//! The header has its own CRC so a damaged length field is never trusted to
//! skip over data, and a zeroed header (a page that never reached disk) is
//! recognisably not a frame: its magic is wrong.

use crate::codec::{self, Reader};
use crate::index::{Mutation, Record};
use crate::{Error, Result};

const MAGIC: u32 = u32::from_le_bytes(*b"SVL1");
pub(crate) const HEADER_LEN: usize = 16;

/// Upper bound on one frame's payload. The writer splits batches well before
/// this and rejects single requests that would exceed it, and recovery treats
/// a larger declared length as damage.
pub(crate) const MAX_FRAME_PAYLOAD: usize = 1 << 30;

const TAG_PUT: u8 = 1;
const TAG_DELETE: u8 = 2;

/// Bytes a record of these mutations will take, without encoding it.
pub(crate) fn record_len<'a>(ops: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) -> usize {
    // revision + mutation count
    let mut len = 8 + 4;
    for (key, value) in ops {
        len += 1 + 4 + key.len();
        if let Some(value) = value {
            len += 8 + 4 + value.len();
        }
    }
    len
}

/// Appends one frame holding `records` to `out`.
pub(crate) fn encode_frame(records: &[Record], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + HEADER_LEN, 0);
    // Record counts are bounded by the batch size limit, far below u32::MAX.
    codec::put_u32(out, records.len() as u32);
    for record in records {
        codec::put_i64(out, record.revision);
        codec::put_u32(out, record.mutations.len() as u32);
        for mutation in &record.mutations {
            match mutation {
                Mutation::Put { key, value, create_revision } => {
                    codec::put_u8(out, TAG_PUT);
                    codec::put_bytes(out, key.as_bytes());
                    codec::put_i64(out, *create_revision);
                    codec::put_bytes(out, value);
                }
                Mutation::Delete { key } => {
                    codec::put_u8(out, TAG_DELETE);
                    codec::put_bytes(out, key.as_bytes());
                }
            }
        }
    }
    let payload_len = out.len() - start - HEADER_LEN;
    debug_assert!(payload_len <= MAX_FRAME_PAYLOAD, "writer splits batches below the frame limit");
    let payload_crc = crc32fast::hash(&out[start + HEADER_LEN..]);
    let mut header = Vec::with_capacity(HEADER_LEN);
    codec::put_u32(&mut header, MAGIC);
    codec::put_u32(&mut header, payload_len as u32);
    codec::put_u32(&mut header, payload_crc);
    let header_crc = crc32fast::hash(&header);
    codec::put_u32(&mut header, header_crc);
    out[start..start + HEADER_LEN].copy_from_slice(&header);
}

/// The intact content of one log file.
#[derive(Debug)]
pub(crate) struct Scanned {
    pub(crate) records: Vec<Record>,
    /// Length of the intact prefix; anything after it is a torn tail.
    pub(crate) valid_len: u64,
}

impl Scanned {
    pub(crate) fn is_torn(&self, file_len: usize) -> bool {
        self.valid_len < file_len as u64
    }
}

/// Decodes every frame of a log file. A damaged final frame is reported as
/// a shorter `valid_len`; damage followed by an intact frame is corruption.
pub(crate) fn scan(bytes: &[u8], file: &str) -> Result<Scanned> {
    let mut records = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let Some(payload) = intact_frame(&bytes[offset..]) else {
            if let Some(next) = next_intact_frame(bytes, offset + 1) {
                return Err(Error::Corrupt(format!(
                    "{file}: damaged frame at byte {offset} is followed by an intact one at byte {next}"
                )));
            }
            break;
        };
        decode_payload(payload, &mut records).map_err(|e| match e {
            Error::Corrupt(detail) => Error::Corrupt(format!("{file} frame at byte {offset}: {detail}")),
            other => other,
        })?;
        offset += HEADER_LEN + payload.len();
    }
    Ok(Scanned { records, valid_len: offset as u64 })
}

/// The payload of the frame at the start of `bytes`, if it is complete and
/// both checksums match.
fn intact_frame(bytes: &[u8]) -> Option<&[u8]> {
    let header = bytes.get(..HEADER_LEN)?;
    let word = |i: usize| header.get(i..i + 4).and_then(|w| w.try_into().ok()).map(u32::from_le_bytes);
    if word(0)? != MAGIC || crc32fast::hash(&header[..12]) != word(12)? {
        return None;
    }
    let len = word(4)? as usize;
    if len > MAX_FRAME_PAYLOAD {
        return None;
    }
    let payload = bytes.get(HEADER_LEN..HEADER_LEN + len)?;
    (crc32fast::hash(payload) == word(8)?).then_some(payload)
}

fn next_intact_frame(bytes: &[u8], from: usize) -> Option<usize> {
    let magic = MAGIC.to_le_bytes();
    (from..bytes.len().saturating_sub(HEADER_LEN - 1))
        .filter(|&i| bytes[i..].starts_with(&magic))
        .find(|&i| intact_frame(&bytes[i..]).is_some())
}

fn decode_payload(payload: &[u8], records: &mut Vec<Record>) -> Result<()> {
    let mut r = Reader::new(payload, "log frame");
    let count = r.u32()?;
    for _ in 0..count {
        let revision = r.i64()?;
        let n = r.u32()?;
        // Capacity from disk is untrusted; let the Vec grow as mutations
        // actually decode instead of pre-allocating `n`.
        let mut mutations = Vec::new();
        for _ in 0..n {
            let mutation = match r.u8()? {
                TAG_PUT => {
                    let key = r.string()?;
                    let create_revision = r.i64()?;
                    let value = r.owned_bytes()?;
                    Mutation::Put { key, value, create_revision }
                }
                TAG_DELETE => Mutation::Delete { key: r.string()? },
                tag => return Err(r.corrupt(&format!("unknown mutation tag {tag}"))),
            };
            mutations.push(mutation);
        }
        records.push(Record { revision, mutations });
    }
    if !r.is_empty() {
        return Err(r.corrupt("trailing bytes after the last record"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn record(revision: i64, key: &str) -> Record {
        Record {
            revision,
            mutations: vec![
                Mutation::Put { key: key.into(), value: Bytes::from_static(b"value"), create_revision: 1 },
                Mutation::Delete { key: format!("{key}-old") },
            ],
        }
    }

    fn two_frames() -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        encode_frame(&[record(1, "a"), record(2, "b")], &mut out);
        let first = out.len();
        encode_frame(&[record(3, "c")], &mut out);
        (out, first)
    }

    #[test]
    fn frames_round_trip() {
        let (bytes, _) = two_frames();
        let scanned = scan(&bytes, "test").ok();
        let records = scanned.as_ref().map(|s| s.records.clone());
        assert_eq!(records, Some(vec![record(1, "a"), record(2, "b"), record(3, "c")]));
        assert_eq!(scanned.map(|s| s.valid_len), Some(bytes.len() as u64));
    }

    #[test]
    fn record_len_matches_the_encoding() {
        let r = record(1, "key");
        let mut out = Vec::new();
        encode_frame(std::slice::from_ref(&r), &mut out);
        let ops = [("key", Some(&b"value"[..])), ("key-old", None)];
        assert_eq!(HEADER_LEN + 4 + record_len(ops), out.len());
    }

    #[test]
    fn every_truncation_of_the_last_frame_is_a_torn_tail() {
        let (bytes, first) = two_frames();
        for cut in first..bytes.len() {
            let scanned = scan(&bytes[..cut], "test");
            let Ok(scanned) = scanned else { panic!("cut at {cut} reported as corrupt") };
            assert_eq!(scanned.valid_len, first as u64, "cut at {cut}");
            assert_eq!(scanned.records.len(), 2);
        }
    }

    #[test]
    fn every_flipped_bit_in_the_last_frame_is_a_torn_tail() {
        let (bytes, first) = two_frames();
        for i in first..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            let scanned = scan(&damaged, "test");
            assert_eq!(scanned.ok().map(|s| s.valid_len), Some(first as u64), "flip at {i}");
        }
    }

    #[test]
    fn damage_before_an_intact_frame_is_corruption() {
        let (bytes, first) = two_frames();
        for i in [0, 5, 13, HEADER_LEN + 3, first - 1] {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x01;
            assert!(matches!(scan(&damaged, "test"), Err(Error::Corrupt(_))), "flip at {i}");
        }
    }

    #[test]
    fn zeroed_or_random_garbage_after_the_last_frame_is_a_torn_tail() {
        let (mut bytes, _) = two_frames();
        let len = bytes.len();
        bytes.extend_from_slice(&[0u8; 4096]);
        assert_eq!(scan(&bytes, "test").ok().map(|s| s.valid_len), Some(len as u64));
        bytes.truncate(len);
        bytes.extend((0..1000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        assert_eq!(scan(&bytes, "test").ok().map(|s| s.valid_len), Some(len as u64));
    }
}
