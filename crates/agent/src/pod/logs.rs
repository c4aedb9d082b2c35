//! Container output into CRI-format log files (see `access.rs`): one record
//! per line, `<timestamp> <stream> <F|P> <text>`, long lines split into
//! partial (`P`) records.

use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::broadcast;

/// Longest record; longer lines are split into partial records, as
/// containerd does at 16 KiB.
const MAX_RECORD: usize = 16 * 1024;

fn now() -> String {
    // RFC 3339 in UTC with as many fractional digits as needed.
    jiff::Timestamp::now().to_string()
}

fn write_record(file: &Mutex<File>, stream: &str, tag: char, text: &[u8]) {
    let mut rec = Vec::with_capacity(text.len() + 48);
    rec.extend_from_slice(now().as_bytes());
    rec.push(b' ');
    rec.extend_from_slice(stream.as_bytes());
    rec.push(b' ');
    rec.push(tag as u8);
    rec.push(b' ');
    rec.extend_from_slice(text);
    rec.push(b'\n');
    let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
    let _ = f.write_all(&rec);
}

/// Copies `reader` into `file` as records of `stream` until EOF, and as
/// read to `live`'s receivers (attaches), if any.
pub async fn pump(
    mut reader: impl AsyncRead + Unpin,
    stream: &'static str,
    file: Arc<Mutex<File>>,
    live: broadcast::Sender<Bytes>,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if live.receiver_count() > 0 {
            let _ = live.send(Bytes::copy_from_slice(&buf[..n]));
        }
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(nl) = pending[start..].iter().position(|b| *b == b'\n') {
            write_record(&file, stream, 'F', &pending[start..start + nl]);
            start += nl + 1;
        }
        pending.drain(..start);
        while pending.len() >= MAX_RECORD {
            write_record(&file, stream, 'P', &pending[..MAX_RECORD]);
            pending.drain(..MAX_RECORD);
        }
    }
    if !pending.is_empty() {
        write_record(&file, stream, 'P', &pending);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_become_records_and_a_tail_without_newline_is_partial() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let file = Arc::new(Mutex::new(File::create(&path).unwrap()));
        let input: &[u8] = b"one\ntwo\nthree";
        pump(input, "stdout", file.clone(), broadcast::channel(1).0).await;
        let text = std::fs::read_to_string(&path).unwrap();
        let recs: Vec<(&str, &str, &str)> = text
            .lines()
            .map(|l| {
                let mut p = l.splitn(4, ' ');
                let _ts = p.next().unwrap();
                (p.next().unwrap(), p.next().unwrap(), p.next().unwrap_or(""))
            })
            .collect();
        assert_eq!(recs, [("stdout", "F", "one"), ("stdout", "F", "two"), ("stdout", "P", "three")]);
        assert!(text.lines().all(|l| l.split(' ').next().unwrap().parse::<jiff::Timestamp>().is_ok()));
    }

    #[tokio::test]
    async fn long_lines_are_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let file = Arc::new(Mutex::new(File::create(&path).unwrap()));
        let mut input = vec![b'x'; MAX_RECORD + 10];
        input.push(b'\n');
        pump(input.as_slice(), "stderr", file, broadcast::channel(1).0).await;
        let text = std::fs::read_to_string(&path).unwrap();
        let tags: Vec<&str> = text.lines().map(|l| l.split(' ').nth(2).unwrap()).collect();
        assert_eq!(tags, ["P", "F"]);
    }
}
