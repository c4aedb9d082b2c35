//! Snapshot files: the whole index at one revision, so old logs can go.
//!
//! ```text
//! snapshot := "SVCNSNP1" revision:i64 entry_count:u64 entry* crc:u32
//! entry    := key:bytes create_revision:i64 mod_revision:i64 value:bytes
//! ```
//!
//! One CRC over the whole file is enough because a snapshot is never
//! appended to: it is written to `snapshot-<rev>.tmp`, fsynced, renamed to
//! `snapshot-<rev>.snap` and the directory fsynced. Rename is atomic, so a
//! `.snap` file is either absent or complete; a bad CRC therefore means the
//! disk lost data after the fact and is reported as corruption rather than
//! silently falling back to older state.
//!
//! Only after the new snapshot is durable are older snapshots and the logs it
//! covers deleted. A crash at any point leaves either the old snapshot with
//! all logs, or the new snapshot with some redundant logs whose records are
//! skipped on replay because their revisions are not above the snapshot's.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use crate::codec::{self, Reader};
use crate::dir;
use crate::index::{Entry, Index};
use crate::{Error, Result, Revision};

const MAGIC: &[u8; 8] = b"SVCNSNP1";

pub(crate) fn encode(index: &Index) -> Vec<u8> {
    let mut out = Vec::with_capacity(usize::try_from(index.live_bytes()).unwrap_or(0) + 32 * index.len() + 32);
    out.extend_from_slice(MAGIC);
    codec::put_i64(&mut out, index.revision());
    codec::put_u64(&mut out, index.len() as u64);
    for (key, entry) in index.iter() {
        codec::put_bytes(&mut out, key.as_bytes());
        codec::put_i64(&mut out, entry.create_revision);
        codec::put_i64(&mut out, entry.mod_revision);
        codec::put_bytes(&mut out, &entry.value);
    }
    let crc = crc32fast::hash(&out);
    codec::put_u32(&mut out, crc);
    out
}

pub(crate) fn decode(bytes: &[u8], file: &str) -> Result<Index> {
    decode_unnamed(bytes).map_err(|e| match e {
        Error::Corrupt(detail) => Error::Corrupt(format!("{file}: {detail}")),
        other => other,
    })
}

fn decode_unnamed(bytes: &[u8]) -> Result<Index> {
    let corrupt = |detail: &str| Error::Corrupt(detail.to_owned());
    let Some(split) = bytes.len().checked_sub(4) else {
        return Err(corrupt("shorter than its checksum"));
    };
    let (body, crc) = bytes.split_at(split);
    let mut r = Reader::new(crc, "snapshot");
    if crc32fast::hash(body) != r.u32()? {
        return Err(corrupt("checksum mismatch"));
    }
    let mut r = Reader::new(body, "snapshot");
    if r.take(MAGIC.len())? != MAGIC {
        return Err(corrupt("not a snapshot (bad magic)"));
    }
    let revision = r.i64()?;
    let count = r.u64()?;
    let mut map = BTreeMap::new();
    for _ in 0..count {
        let key = r.string()?;
        let create_revision = r.i64()?;
        let mod_revision = r.i64()?;
        let value = r.owned_bytes()?;
        if mod_revision > revision || create_revision > mod_revision {
            return Err(r.corrupt(&format!("key {key:?} has revisions beyond the snapshot's")));
        }
        map.insert(key, Entry { value, create_revision, mod_revision });
    }
    if !r.is_empty() {
        return Err(r.corrupt("trailing bytes after the last entry"));
    }
    Ok(Index::from_snapshot(map, revision))
}

/// Makes `bytes` (a snapshot at `revision`) durable, then deletes what it
/// supersedes: older snapshots and every log starting at or below
/// `revision`. The caller guarantees the active log starts after `revision`.
pub(crate) fn persist(dir_path: &Path, revision: Revision, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir::snapshot_tmp_path(dir_path, revision);
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, dir::snapshot_path(dir_path, revision))?;
    dir::sync_dir(dir_path)?;

    let listing = dir::Listing::read(dir_path)?;
    for &old in listing.snapshots.iter().filter(|&&s| s < revision) {
        std::fs::remove_file(dir::snapshot_path(dir_path, old))?;
    }
    for &start in listing.logs.iter().filter(|&&start| start <= revision) {
        std::fs::remove_file(dir::log_path(dir_path, start))?;
    }
    dir::sync_dir(dir_path)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::index::{Mutation, Record};

    fn sample() -> Index {
        let mut index = Index::default();
        for (revision, key) in [(1, "b"), (2, "a"), (3, "c")] {
            let value = Bytes::from(format!("value of {key}"));
            index.apply(Record {
                revision,
                mutations: vec![Mutation::Put { key: key.into(), value, create_revision: revision }],
            });
        }
        index.apply(Record { revision: 4, mutations: vec![Mutation::Delete { key: "c".into() }] });
        index
    }

    #[test]
    fn snapshots_round_trip() {
        let index = sample();
        let decoded = decode(&encode(&index), "test");
        let Ok(decoded) = decoded else { panic!("decode failed: {decoded:?}") };
        assert_eq!(decoded.revision(), 4);
        assert_eq!(decoded.live_bytes(), index.live_bytes());
        let entries = |i: &Index| i.iter().map(|(k, e)| (k.clone(), e.clone())).collect::<Vec<_>>();
        assert_eq!(entries(&decoded), entries(&index));
    }

    #[test]
    fn any_damage_is_corruption() {
        let bytes = encode(&sample());
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x04;
            assert!(matches!(decode(&damaged, "test"), Err(Error::Corrupt(_))), "flip at {i}");
        }
        for cut in 0..bytes.len() {
            assert!(matches!(decode(&bytes[..cut], "test"), Err(Error::Corrupt(_))), "cut at {cut}");
        }
    }
}
