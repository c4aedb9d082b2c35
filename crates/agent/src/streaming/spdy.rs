//! SPDY/3.1 framing, the server side of what `kubectl port-forward`
//! speaks (through moby/spdystream), either over an HTTP connection
//! upgraded to `SPDY/3.1` or tunnelled inside WebSocket binary messages
//! (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31 and later).
//!
//! Every frame has an 8-byte head. A control frame: the control bit,
//! version 3 and a 16-bit type, then 8 bits of flags and a 24-bit length. A
//! data frame: a 31-bit stream id, then flags and length. Header blocks in
//! SYN_STREAM, SYN_REPLY and HEADERS are zlib streams (one per direction
//! for the whole connection, each block ending in a sync flush) primed with
//! the protocol's dictionary; what they hold is a count and length-prefixed
//! names and values.
//!
//! The client's blocks are inflated with the dictionary; ours are written
//! as stored (uncompressed) deflate blocks, each ended by a sync flush as
//! zlib's writers do, which every inflater reads without needing the
//! dictionary.

use std::collections::BTreeMap;

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

pub const SYN_STREAM: u16 = 1;
pub const SYN_REPLY: u16 = 2;
pub const RST_STREAM: u16 = 3;
pub const SETTINGS: u16 = 4;
pub const PING: u16 = 6;
pub const GOAWAY: u16 = 7;
pub const HEADERS: u16 = 8;
pub const WINDOW_UPDATE: u16 = 9;

pub const FLAG_FIN: u8 = 0x01;

/// RST_STREAM status codes.
pub const PROTOCOL_ERROR: u32 = 1;
#[cfg(test)]
pub const CANCEL: u32 = 5;

/// The largest frame accepted: port-forward data frames are at most
/// 32 KiB; control frames are small.
const MAX_FRAME: usize = 1 << 20;
/// The largest header block accepted, inflated.
const MAX_HEADERS: usize = 64 * 1024;

/// The preset dictionary of SPDY/3 header compression (the draft 3
/// specification, section 2.6.10.1): length-prefixed header names and
/// values, then a run of common value fragments.
const DICTIONARY_WORDS: [&str; 66] = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
    // The last word is followed by the fragments, unprefixed.
    "",
];
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The dictionary's bytes.
pub fn dictionary() -> Vec<u8> {
    let mut d = Vec::with_capacity(1424);
    for word in DICTIONARY_WORDS.iter().filter(|w| !w.is_empty()) {
        d.extend_from_slice(&(word.len() as u32).to_be_bytes());
        d.extend_from_slice(word.as_bytes());
    }
    d.extend_from_slice(DICTIONARY_TAIL.as_bytes());
    d
}

/// zlib's checksum, which names a preset dictionary in a stream's head.
pub fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

/// Header names and values (a value with several parts keeps its NULs).
pub type HeaderBlock = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream: u32,
        fin: bool,
        headers: HeaderBlock,
    },
    SynReply {
        stream: u32,
        fin: bool,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    Settings,
    Ping {
        id: u32,
    },
    GoAway,
    Headers {
        stream: u32,
    },
    WindowUpdate,
    Data {
        stream: u32,
        fin: bool,
        data: Vec<u8>,
    },
    /// A control frame of a type this server does not act on.
    Other {
        kind: u16,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpdyError {
    #[error("SPDY version {0} is not supported (only 3)")]
    Version(u16),
    #[error("SPDY frame of {0} bytes is larger than allowed")]
    TooLarge(usize),
    #[error("malformed SPDY {0} frame")]
    Malformed(&'static str),
    #[error("SPDY header block: {0}")]
    Headers(String),
}

/// Reads frames from bytes as they arrive, inflating header blocks.
pub struct Reader {
    buf: Vec<u8>,
    inflater: Inflater,
}

impl Default for Reader {
    fn default() -> Self {
        Reader { buf: Vec::new(), inflater: Inflater::new() }
    }
}

impl Reader {
    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SpdyError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let length = usize::from(self.buf[5]) << 16 | usize::from(self.buf[6]) << 8 | usize::from(self.buf[7]);
        if length > MAX_FRAME {
            return Err(SpdyError::TooLarge(length));
        }
        if self.buf.len() < 8 + length {
            return Ok(None);
        }
        let head: [u8; 8] = self.buf[..8].try_into().unwrap_or_default();
        let body: Vec<u8> = self.buf.drain(..8 + length).skip(8).collect();
        let flags = head[4];
        let word = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if word & 0x8000_0000 == 0 {
            return Ok(Some(Frame::Data { stream: word, fin: flags & FLAG_FIN != 0, data: body }));
        }
        let version = ((word >> 16) & 0x7fff) as u16;
        if version != 3 {
            return Err(SpdyError::Version(version));
        }
        let kind = (word & 0xffff) as u16;
        let u32_at = |at: usize, what| {
            body.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok_or(SpdyError::Malformed(what))
        };
        let frame = match kind {
            SYN_STREAM => {
                let stream = u32_at(0, "SYN_STREAM")? & 0x7fff_ffff;
                let block = body.get(10..).ok_or(SpdyError::Malformed("SYN_STREAM"))?;
                let headers = parse_block(&self.inflater.inflate(block)?)?;
                Frame::SynStream { stream, fin: flags & FLAG_FIN != 0, headers }
            }
            SYN_REPLY | HEADERS => {
                let stream = u32_at(0, "SYN_REPLY")? & 0x7fff_ffff;
                // Inflated to keep the shared zlib stream in step.
                let block = body.get(4..).ok_or(SpdyError::Malformed("SYN_REPLY"))?;
                parse_block(&self.inflater.inflate(block)?)?;
                if kind == HEADERS {
                    Frame::Headers { stream }
                } else {
                    Frame::SynReply { stream, fin: flags & FLAG_FIN != 0 }
                }
            }
            RST_STREAM => {
                Frame::RstStream { stream: u32_at(0, "RST_STREAM")? & 0x7fff_ffff, status: u32_at(4, "RST_STREAM")? }
            }
            SETTINGS => Frame::Settings,
            PING => Frame::Ping { id: u32_at(0, "PING")? },
            GOAWAY => Frame::GoAway,
            WINDOW_UPDATE => Frame::WindowUpdate,
            other => Frame::Other { kind: other },
        };
        Ok(Some(frame))
    }
}

/// The name/value pairs of an inflated header block.
fn parse_block(block: &[u8]) -> Result<HeaderBlock, SpdyError> {
    fn bad(what: &str) -> SpdyError {
        SpdyError::Headers(what.to_string())
    }
    fn take<'a>(rest: &mut &'a [u8], len: usize) -> Result<&'a [u8], SpdyError> {
        if rest.len() < len {
            return Err(bad("truncated"));
        }
        let (head, tail) = rest.split_at(len);
        *rest = tail;
        Ok(head)
    }
    fn length(rest: &mut &[u8]) -> Result<usize, SpdyError> {
        let b = take(rest, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn text(rest: &mut &[u8]) -> Result<String, SpdyError> {
        let len = length(rest)?;
        let bytes = take(rest, len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| bad("a name or value is not UTF-8"))
    }
    let mut rest = block;
    let count = length(&mut rest)?;
    if count > rest.len() / 8 {
        return Err(bad("more pairs than the block can hold"));
    }
    let mut headers = HeaderBlock::new();
    for _ in 0..count {
        let name = text(&mut rest)?;
        let value = text(&mut rest)?;
        if name.is_empty() {
            return Err(bad("an empty header name"));
        }
        headers.insert(name.to_ascii_lowercase(), value);
    }
    Ok(headers)
}

/// The receiving half of the connection's header compression.
struct Inflater {
    state: Box<DecompressorOxide>,
    /// Output so far; the last 32 KiB (deflate's window) are kept, first
    /// the dictionary.
    window: Vec<u8>,
    /// Whether the zlib head has been read.
    started: bool,
}

const WINDOW: usize = 32 * 1024;

impl Inflater {
    fn new() -> Inflater {
        Inflater { state: Box::default(), window: dictionary(), started: false }
    }

    /// Inflates one header block (a sync-flushed piece of the stream).
    fn inflate(&mut self, mut input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let err = |m: String| SpdyError::Headers(m);
        if !self.started {
            let [cmf, flg, ..] = *input else { return Err(err("truncated zlib head".into())) };
            if cmf & 0x0f != 8 || (u16::from(cmf) << 8 | u16::from(flg)) % 31 != 0 {
                return Err(err("not a zlib stream".into()));
            }
            input = &input[2..];
            if flg & 0x20 != 0 {
                let id = input.get(..4).ok_or_else(|| err("truncated zlib head".into()))?;
                let id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
                let ours = adler32(&self.window);
                if id != ours {
                    return Err(err(format!("the stream uses dictionary {id:08x}, not SPDY/3's {ours:08x}")));
                }
                input = &input[4..];
            }
            self.started = true;
        }
        if self.window.len() > 2 * WINDOW {
            let keep = self.window.len() - WINDOW;
            self.window.drain(..keep);
        }
        let start = self.window.len();
        let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF | inflate_flags::TINFL_FLAG_HAS_MORE_INPUT;
        loop {
            let pos = self.window.len();
            self.window.resize(pos + 4096, 0);
            let (status, used, wrote) = decompress(&mut self.state, input, &mut self.window, pos, flags);
            self.window.truncate(pos + wrote);
            input = &input[used..];
            if self.window.len() - start > MAX_HEADERS {
                return Err(err("header block too large".into()));
            }
            match status {
                TINFLStatus::HasMoreOutput => continue,
                TINFLStatus::NeedsMoreInput | TINFLStatus::Done if input.is_empty() => break,
                TINFLStatus::NeedsMoreInput => continue,
                TINFLStatus::Done => return Err(err("data after the end of the zlib stream".into())),
                failed => return Err(err(format!("inflating failed: {failed:?}"))),
            }
        }
        Ok(self.window[start..].to_vec())
    }
}

/// Writes frames; header blocks go out as stored deflate blocks of one
/// zlib stream.
#[derive(Default)]
pub struct Writer {
    started: bool,
}

impl Writer {
    fn header_block(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut plain = Vec::new();
        plain.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (name, value) in headers {
            for s in [name, value] {
                plain.extend_from_slice(&(s.len() as u32).to_be_bytes());
                plain.extend_from_slice(s.as_bytes());
            }
        }
        let mut out = Vec::with_capacity(plain.len() + 16);
        if !self.started {
            // zlib head: deflate, 32 KiB window, no dictionary, check bits.
            out.extend_from_slice(&[0x78, 0x01]);
            self.started = true;
        }
        for piece in plain.chunks(0xffff) {
            // A stored block that is not the last: BFINAL 0, BTYPE 00.
            let len = piece.len() as u16;
            out.push(0);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(piece);
        }
        // A sync flush: an empty stored block. Go's inflater hands over a
        // stored block's bytes only when it reads the next block's head,
        // so without it a block's end would wait for the next frame.
        out.extend_from_slice(&[0, 0, 0, 0xff, 0xff]);
        out
    }

    fn control(kind: u16, flags: u8, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(8 + body.len());
        f.extend_from_slice(&(0x8003_0000 | u32::from(kind)).to_be_bytes());
        f.extend_from_slice(&((u32::from(flags) << 24) | body.len() as u32).to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    pub fn syn_reply(&mut self, stream: u32, fin: bool, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut body = stream.to_be_bytes().to_vec();
        body.extend(self.header_block(headers));
        Self::control(SYN_REPLY, if fin { FLAG_FIN } else { 0 }, &body)
    }

    /// A SYN_STREAM (what a client sends; for tests).
    #[cfg(test)]
    pub fn syn_stream(&mut self, stream: u32, fin: bool, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut body = stream.to_be_bytes().to_vec();
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        body.extend(self.header_block(headers));
        Self::control(SYN_STREAM, if fin { FLAG_FIN } else { 0 }, &body)
    }

    pub fn rst_stream(stream: u32, status: u32) -> Vec<u8> {
        let mut body = stream.to_be_bytes().to_vec();
        body.extend_from_slice(&status.to_be_bytes());
        Self::control(RST_STREAM, 0, &body)
    }

    pub fn ping(id: u32) -> Vec<u8> {
        Self::control(PING, 0, &id.to_be_bytes())
    }

    pub fn data(stream: u32, fin: bool, data: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(8 + data.len());
        f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        f.extend_from_slice(&((u32::from(if fin { FLAG_FIN } else { 0 }) << 24) | data.len() as u32).to_be_bytes());
        f.extend_from_slice(data);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_spdy3s() {
        let d = dictionary();
        // The draft's dictionary: 1423 bytes, ending "enq=0." with no NUL;
        // its adler32 is what a SPDY/3 stream's zlib head names.
        assert_eq!(d.len(), 1423);
        assert!(d.ends_with(b"enq=0."));
        assert_eq!(&d[..11], b"\0\0\0\x07options");
        assert_eq!(adler32(&d), DICTIONARY_ADLER32);
    }

    /// Python's `zlib.adler32` of the draft's dictionary (whose sha256 is
    /// 51d27341...8407f02, the bytes moby/spdystream uses).
    const DICTIONARY_ADLER32: u32 = 0xe3c6_a7c2;

    #[test]
    fn adler32_matches_zlib() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        assert_eq!(adler32(&vec![0xffu8; 100_000]), 0x149a_302c);
    }

    /// Two header blocks as a client writes them: one zlib stream primed
    /// with the dictionary (its head names it), best compression, a sync
    /// flush after each block. Made with Python's zlib (`compressobj(9,
    /// zdict=...)`), as Go's `zlib.NewWriterLevelDict` would.
    const CLIENT_BLOCK_1: &str =
        "78f9e3c6a7c202253a48f95b044eea16061606409ab308125f99a074cc68004e892545a989b9d0c2863515141500000000ffff";
    const CLIENT_BLOCK_2: &str = "225333a8a44a04000000ffff";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn syn_stream_with_block(stream: u32, block: &[u8]) -> Vec<u8> {
        let mut body = stream.to_be_bytes().to_vec();
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        body.extend_from_slice(block);
        Writer::control(SYN_STREAM, 0, &body)
    }

    #[test]
    fn a_clients_compressed_header_blocks_inflate_with_the_dictionary() {
        let mut reader = Reader::default();
        reader.push(&syn_stream_with_block(1, &unhex(CLIENT_BLOCK_1)));
        reader.push(&syn_stream_with_block(3, &unhex(CLIENT_BLOCK_2)));
        let Some(Frame::SynStream { stream: 1, headers, .. }) = reader.next_frame().unwrap() else { panic!() };
        assert_eq!(headers.get("streamtype").map(String::as_str), Some("error"));
        assert_eq!(headers.get("port").map(String::as_str), Some("8080"));
        assert_eq!(headers.get("requestid").map(String::as_str), Some("0"));
        let Some(Frame::SynStream { stream: 3, headers, .. }) = reader.next_frame().unwrap() else { panic!() };
        assert_eq!(headers.get("streamtype").map(String::as_str), Some("data"));
        // The second block refers back into the first: it is 12 bytes.
        assert_eq!(unhex(CLIENT_BLOCK_2).len(), 12);
    }

    #[test]
    fn a_stream_primed_with_another_dictionary_is_refused() {
        let mut block = unhex(CLIENT_BLOCK_1);
        block[5] ^= 1; // the dictionary id in the zlib head
        let mut reader = Reader::default();
        reader.push(&syn_stream_with_block(1, &block));
        let Err(SpdyError::Headers(why)) = reader.next_frame() else { panic!() };
        assert!(why.contains("dictionary"), "{why}");
    }

    #[test]
    fn our_stored_header_blocks_read_back() {
        let mut writer = Writer::default();
        let mut reader = Reader::default();
        let frame = writer.syn_stream(1, false, &[("streamtype", "error"), ("port", "8080"), ("requestid", "0")]);
        reader.push(&frame);
        let Some(Frame::SynStream { stream: 1, fin: false, headers }) = reader.next_frame().unwrap() else {
            panic!("no SYN_STREAM")
        };
        assert_eq!(headers.get("streamtype").map(String::as_str), Some("error"));
        assert_eq!(headers.get("port").map(String::as_str), Some("8080"));
        // A second block continues the same stream.
        reader.push(&writer.syn_stream(3, true, &[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]));
        let Some(Frame::SynStream { stream: 3, fin: true, headers }) = reader.next_frame().unwrap() else {
            panic!("no second SYN_STREAM")
        };
        assert_eq!(headers.get("streamtype").map(String::as_str), Some("data"));
        assert_eq!(reader.next_frame().unwrap(), None);
    }

    #[test]
    fn frames_arrive_in_pieces_and_data_frames_carry_their_stream() {
        let mut reader = Reader::default();
        let mut bytes = Writer::data(5, false, b"hello");
        bytes.extend(Writer::ping(7));
        bytes.extend(Writer::data(5, true, b""));
        bytes.extend(Writer::rst_stream(5, CANCEL));
        let mut frames = Vec::new();
        for b in bytes.chunks(3) {
            reader.push(b);
            while let Some(f) = reader.next_frame().unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(
            frames,
            [
                Frame::Data { stream: 5, fin: false, data: b"hello".to_vec() },
                Frame::Ping { id: 7 },
                Frame::Data { stream: 5, fin: true, data: Vec::new() },
                Frame::RstStream { stream: 5, status: CANCEL },
            ]
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut r = Reader::default();
        r.push(&[0x80, 0x02, 0, 1, 0, 0, 0, 0]);
        assert_eq!(r.next_frame(), Err(SpdyError::Version(2)));
        let mut r = Reader::default();
        r.push(&[0x80, 0x03, 0, 1, 0, 0xff, 0xff, 0xff]);
        assert!(matches!(r.next_frame(), Err(SpdyError::TooLarge(_))));
        // A SYN_STREAM whose header block is not zlib.
        let mut r = Reader::default();
        r.push(&Writer::control(SYN_STREAM, 0, &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3]));
        assert!(matches!(r.next_frame(), Err(SpdyError::Headers(_))));
        // A block claiming more pairs than it holds.
        assert!(parse_block(&[0, 0, 0, 9, 0, 0, 0, 1]).is_err());
        assert!(parse_block(&[0, 0, 0, 1, 0, 0, 0, 200, 1]).is_err());
    }
}
