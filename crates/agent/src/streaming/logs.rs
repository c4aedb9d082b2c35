//! `kubectl logs`: reading a CRI log file back as the text the container
//! wrote, with kube's `PodLogOptions` (tail, timestamps, since, limit,
//! follow).
//!
//! The pure part is [`parse_record`], [`tail_start`] and [`LogRenderer`];
//! [`open`] and [`stream`] do the file I/O.

use std::io::SeekFrom;
use std::time::Duration;

use bytes::Bytes;
use jiff::{SignedDuration, Timestamp};
use tokio::fs::File;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::mpsc;

use super::query::Query;
use crate::access::{AccessError, LogRef};

/// How often a follower looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// kube's `PodLogOptions`, as the query string carries them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub tail_lines: Option<u64>,
    pub timestamps: bool,
    /// From `sinceTime`, or `sinceSeconds` before now.
    pub since: Option<Timestamp>,
    pub limit_bytes: Option<u64>,
}

impl LogOptions {
    pub fn parse(query: &Query, now: Timestamp) -> Result<LogOptions, AccessError> {
        let tail_lines = match query.int("tailLines")? {
            Some(n) if n < 0 => return Err(invalid("tailLines", n, "must be greater than or equal to 0")),
            other => other.map(|n| n as u64),
        };
        let limit_bytes = match query.int("limitBytes")? {
            Some(n) if n < 1 => return Err(invalid("limitBytes", n, "must be greater than 0")),
            other => other.map(|n| n as u64),
        };
        let since_seconds = query.int("sinceSeconds")?;
        let since_time = query.get("sinceTime").filter(|s| !s.is_empty());
        let since = match (since_seconds, since_time) {
            (Some(_), Some(_)) => {
                return Err(AccessError::bad_request("at most one of `sinceTime` or `sinceSeconds` may be specified"));
            }
            (Some(n), None) if n < 1 => return Err(invalid("sinceSeconds", n, "must be greater than 0")),
            (Some(n), None) => Some(now.saturating_sub(SignedDuration::from_secs(n)).unwrap_or(Timestamp::MIN)),
            (None, Some(t)) => Some(t.parse::<Timestamp>().map_err(|e| {
                AccessError::bad_request(format!("invalid value for sinceTime: {t:?} is not an RFC 3339 time: {e}"))
            })?),
            (None, None) => None,
        };
        Ok(LogOptions {
            follow: query.flag("follow")?,
            previous: query.flag("previous")?,
            tail_lines,
            timestamps: query.flag("timestamps")?,
            since,
            limit_bytes,
        })
    }
}

fn invalid(field: &str, value: i64, detail: &str) -> AccessError {
    AccessError::bad_request(format!("{field}: Invalid value: {value}: {detail}"))
}

/// One record of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub timestamp: Timestamp,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// `P`: the line goes on in the next record.
    pub partial: bool,
    pub content: &'a [u8],
}

/// Parses one record (without its newline); `None` for a malformed one,
/// which readers skip as the kubelet does.
pub fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let mut fields = line.splitn(4, |b| *b == b' ');
    let timestamp = std::str::from_utf8(fields.next()?).ok()?.parse::<Timestamp>().ok()?;
    let stream = std::str::from_utf8(fields.next()?).ok()?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    // Tags may grow more `:`-separated fields; the first is F or P.
    let tag = fields.next()?;
    let partial = match tag.split(|b| *b == b':').next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(Record { timestamp, stream, partial, content: fields.next().unwrap_or(b"") })
}

/// Where the last `lines` lines of a log start in `data`, a suffix of the
/// file (the whole file when `at_file_start`). Lines, not records: the `P`
/// records of one line count once, and an unfinished last line counts.
/// `None` when `data` holds fewer lines and more of the file is needed.
pub fn tail_start(data: &[u8], at_file_start: bool, lines: u64) -> Option<usize> {
    if lines == 0 {
        return Some(data.len());
    }
    let mut pos = 0;
    // Line starts we can be sure of: after each F record, and the file's
    // start. A suffix begins inside some record, which is skipped.
    let mut starts = Vec::new();
    if at_file_start {
        starts.push(0);
    } else {
        pos = data.iter().position(|b| *b == b'\n')? + 1;
    }
    while pos < data.len() {
        let (record, next) = match data[pos..].iter().position(|b| *b == b'\n') {
            Some(i) => (&data[pos..pos + i], pos + i + 1),
            None => (&data[pos..], data.len()),
        };
        if parse_record(record).is_some_and(|r| !r.partial) {
            starts.push(next);
        }
        pos = next;
    }
    if starts.last() == Some(&data.len()) {
        starts.pop();
    }
    let wanted = usize::try_from(lines).unwrap_or(usize::MAX);
    if starts.len() >= wanted {
        Some(starts[starts.len() - wanted])
    } else if at_file_start {
        Some(0)
    } else {
        None
    }
}

/// Turns records into the text `kubectl logs` shows: partial records
/// joined, an optional RFC 3339 timestamp before each line, lines before
/// `since` left out, at most `limit_bytes` in all.
#[derive(Debug)]
pub struct LogRenderer {
    timestamps: bool,
    since: Option<Timestamp>,
    remaining: Option<u64>,
    at_line_start: bool,
    skipping_line: bool,
}

impl LogRenderer {
    pub fn new(options: &LogOptions) -> LogRenderer {
        LogRenderer {
            timestamps: options.timestamps,
            since: options.since,
            remaining: options.limit_bytes,
            at_line_start: true,
            skipping_line: false,
        }
    }

    /// Whether `limit_bytes` is used up.
    pub fn exhausted(&self) -> bool {
        self.remaining == Some(0)
    }

    /// Renders one record onto `out`.
    pub fn push(&mut self, record: &Record<'_>, out: &mut Vec<u8>) {
        if self.at_line_start {
            // A line is in or out as a whole, by its first record's time.
            self.skipping_line = self.since.is_some_and(|since| record.timestamp < since);
        }
        if !self.skipping_line {
            if self.at_line_start && self.timestamps {
                // RFC 3339 in UTC with trailing zeros of the fraction
                // trimmed, as Go's RFC3339Nano prints.
                self.emit(format!("{} ", record.timestamp).as_bytes(), out);
            }
            self.emit(record.content, out);
            if !record.partial {
                self.emit(b"\n", out);
            }
        }
        self.at_line_start = !record.partial;
    }

    /// Renders every well-formed record of `data`, newline-separated
    /// records (the last may lack its newline).
    pub fn push_records(&mut self, data: &[u8], out: &mut Vec<u8>) {
        for line in data.split(|b| *b == b'\n') {
            if self.exhausted() {
                return;
            }
            if let Some(record) = parse_record(line) {
                self.push(&record, out);
            }
        }
    }

    fn emit(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let take = match self.remaining {
            Some(r) => usize::try_from(r).unwrap_or(usize::MAX).min(bytes.len()),
            None => bytes.len(),
        };
        out.extend_from_slice(&bytes[..take]);
        if let Some(r) = self.remaining.as_mut() {
            *r -= take as u64;
        }
    }
}

/// Opens the log and positions it where the output starts (after `tail`).
pub async fn open(log: &LogRef, options: &LogOptions) -> Result<File, AccessError> {
    let failed = |e: std::io::Error| AccessError {
        code: 500,
        message: format!("failed to read the log of container {:?}: {}: {e}", log.container, log.path.display()),
    };
    let mut file = File::open(&log.path).await.map_err(failed)?;
    if let Some(lines) = options.tail_lines {
        let len = file.metadata().await.map_err(failed)?.len();
        let start = find_tail(&mut file, len, lines).await.map_err(failed)?;
        file.seek(SeekFrom::Start(start)).await.map_err(failed)?;
    }
    Ok(file)
}

/// Reads ever larger windows from the end of the file until one holds
/// `lines` lines.
async fn find_tail(file: &mut File, len: u64, lines: u64) -> std::io::Result<u64> {
    let mut window: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start)).await?;
        let mut data = vec![0; (len - start) as usize];
        file.read_exact(&mut data).await?;
        if let Some(offset) = tail_start(&data, start == 0, lines) {
            return Ok(start + offset as u64);
        }
        window = window.saturating_mul(4);
    }
}

/// Streams the log from `file`'s position into `tx` until its end, or,
/// with `follow`, until the attempt has finished and everything it wrote
/// is sent. Stops early when the receiver goes away.
pub async fn stream(
    mut file: File,
    mut finished: tokio::sync::watch::Receiver<bool>,
    options: LogOptions,
    tx: mpsc::Sender<Bytes>,
) {
    let mut renderer = LogRenderer::new(&options);
    let mut pending = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        // Decided before reading: once the attempt has finished, one more
        // read to the end sees all it wrote.
        let last_pass = !options.follow || *finished.borrow() || finished.has_changed().is_err();
        loop {
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(error = %e, "reading a container log failed");
                    return;
                }
            };
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
            // Only whole records; the rest waits for its newline.
            let Some(end) = pending.iter().rposition(|b| *b == b'\n') else { continue };
            let mut out = Vec::new();
            renderer.push_records(&pending[..end], &mut out);
            pending.drain(..=end);
            if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
                return;
            }
            if renderer.exhausted() {
                return;
            }
        }
        if last_pass {
            let mut out = Vec::new();
            renderer.push_records(&pending, &mut out);
            if !out.is_empty() {
                let _ = tx.send(Bytes::from(out)).await;
            }
            return;
        }
        tokio::select! {
            _ = tx.closed() => return,
            _ = finished.changed() => {}
            _ = tokio::time::sleep(FOLLOW_POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2024-05-01T10:00:00.100000000Z stdout F first
2024-05-01T10:00:01Z stderr F second
2024-05-01T10:00:02.5Z stdout P thi
2024-05-01T10:00:02.6Z stdout P r
2024-05-01T10:00:02.7Z stdout F d
2024-05-01T10:00:03.000000001Z stdout F 
2024-05-01T10:00:04Z stdout F fifth
";

    fn render(options: &LogOptions, data: &str) -> String {
        let start = options.tail_lines.map_or(0, |n| tail_start(data.as_bytes(), true, n).expect("whole file"));
        let mut out = Vec::new();
        LogRenderer::new(options).push_records(&data.as_bytes()[start..], &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn records_are_parsed_with_their_tags() {
        let r = parse_record(b"2024-05-01T10:00:02.5Z stdout P thi s").expect("valid");
        assert!(r.partial);
        assert_eq!(r.stream, "stdout");
        assert_eq!(r.content, b"thi s");
        let r = parse_record(b"2024-05-01T12:00:00+02:00 stderr F:x").expect("valid");
        assert_eq!(r.timestamp.to_string(), "2024-05-01T10:00:00Z");
        assert_eq!(r.content, b"");
        assert_eq!(parse_record(b"2024-05-01T10:00:00Z stdin F x"), None);
        assert_eq!(parse_record(b"yesterday stdout F x"), None);
        assert_eq!(parse_record(b"2024-05-01T10:00:00Z stdout"), None);
    }

    #[test]
    fn partial_records_join_into_one_line_and_empty_lines_stay() {
        assert_eq!(render(&LogOptions::default(), LOG), "first\nsecond\nthird\n\nfifth\n");
    }

    #[test]
    fn timestamps_prefix_each_line_once_in_rfc3339_nano() {
        let options = LogOptions { timestamps: true, ..LogOptions::default() };
        assert_eq!(
            render(&options, LOG),
            "2024-05-01T10:00:00.1Z first\n\
             2024-05-01T10:00:01Z second\n\
             2024-05-01T10:00:02.5Z third\n\
             2024-05-01T10:00:03.000000001Z \n\
             2024-05-01T10:00:04Z fifth\n"
        );
    }

    #[test]
    fn tail_counts_lines_not_records() {
        let tail = |n| render(&LogOptions { tail_lines: Some(n), ..LogOptions::default() }, LOG);
        assert_eq!(tail(0), "");
        assert_eq!(tail(1), "fifth\n");
        assert_eq!(tail(3), "third\n\nfifth\n");
        assert_eq!(tail(5), "first\nsecond\nthird\n\nfifth\n");
        assert_eq!(tail(50), "first\nsecond\nthird\n\nfifth\n");
    }

    #[test]
    fn an_unfinished_last_line_counts_for_tail() {
        let log = format!("{LOG}2024-05-01T10:00:05Z stdout P six");
        let tail = |n| render(&LogOptions { tail_lines: Some(n), ..LogOptions::default() }, &log);
        assert_eq!(tail(1), "six");
        assert_eq!(tail(2), "fifth\nsix");
    }

    #[test]
    fn tail_of_a_suffix_asks_for_more_when_it_cannot_be_sure() {
        let data = LOG.as_bytes();
        // A window starting inside "thi"/"r"/"d": its first whole record
        // may continue a line begun before it.
        let cut = LOG.find("2024-05-01T10:00:02.6Z").expect("fixture") - 3;
        let suffix = &data[cut..];
        let at = tail_start(suffix, false, 2).expect("two lines are in the window");
        assert_eq!(&suffix[at..], &data[LOG.find("2024-05-01T10:00:03").expect("fixture")..]);
        assert_eq!(tail_start(suffix, false, 3), None, "the third line began before the window");
        assert_eq!(tail_start(b"no newline at all", false, 1), None);
    }

    #[test]
    fn limit_bytes_cuts_the_output_mid_line() {
        let options = LogOptions { limit_bytes: Some(9), ..LogOptions::default() };
        assert_eq!(render(&options, LOG), "first\nsec");
        let options = LogOptions { limit_bytes: Some(25), timestamps: true, ..LogOptions::default() };
        assert_eq!(render(&options, LOG), "2024-05-01T10:00:00.1Z fi");
    }

    #[test]
    fn since_leaves_out_whole_lines_that_began_earlier() {
        let since = "2024-05-01T10:00:02.6Z".parse().ok();
        let options = LogOptions { since, ..LogOptions::default() };
        // "third" began at 02.5: left out although its tail is later.
        assert_eq!(render(&options, LOG), "\nfifth\n");
    }

    #[test]
    fn options_are_read_from_the_query_and_checked() {
        let now: Timestamp = "2024-05-01T10:00:00Z".parse().expect("fixture");
        let q =
            Query::parse(Some("follow=true&tailLines=10&timestamps=1&sinceSeconds=60&limitBytes=100&previous=false"));
        let o = LogOptions::parse(&q, now).expect("valid");
        assert_eq!(
            o,
            LogOptions {
                follow: true,
                previous: false,
                tail_lines: Some(10),
                timestamps: true,
                since: "2024-05-01T09:59:00Z".parse().ok(),
                limit_bytes: Some(100),
            }
        );
        let q = Query::parse(Some("sinceTime=2024-04-30T00%3A00%3A00Z"));
        assert_eq!(LogOptions::parse(&q, now).expect("valid").since, "2024-04-30T00:00:00Z".parse().ok());

        let err = |q: &str| LogOptions::parse(&Query::parse(Some(q)), now).expect_err(q).message;
        assert_eq!(err("tailLines=-1"), "tailLines: Invalid value: -1: must be greater than or equal to 0");
        assert_eq!(err("limitBytes=0"), "limitBytes: Invalid value: 0: must be greater than 0");
        assert_eq!(err("tailLines=x"), "invalid value for tailLines: \"x\" is not an integer");
        assert!(err("sinceSeconds=5&sinceTime=2024-04-30T00:00:00Z").contains("at most one of"));
        assert!(err("sinceTime=yesterday").starts_with("invalid value for sinceTime"));
    }
}
