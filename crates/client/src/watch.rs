//! Watches: the server's chunked stream of newline-delimited
//! `{"type": ..., "object": ...}` events, decoded into [`WatchEvent`]s.
//!
//! A line that is not a valid event (bad JSON, unknown type, an object that
//! does not decode as `K`) is logged and skipped: one malformed object must
//! not end a controller's view of all the others. A 410 ERROR event ends
//! the stream with [`Error::Gone`].

use std::marker::PhantomData;
use std::time::Duration;

use bytes::BytesMut;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::Object;
use crate::client::Client;
use crate::error::{ApiError, Error, Result};
use crate::transport::Lease;

/// Longest event line accepted: objects are at most a few MiB (etcd's
/// request limit), so anything near this is a broken stream.
const MAX_EVENT_BYTES: usize = 64 * 1024 * 1024;

/// One event of a watch.
#[derive(Clone, Debug)]
pub enum WatchEvent<K> {
    Added(K),
    Modified(K),
    /// The object's last state.
    Deleted(K),
    /// Nothing changed, but the watch may resume from this resourceVersion.
    Bookmark {
        resource_version: String,
    },
    /// The server reported an error other than 410 Gone (which ends the
    /// stream as [`Error::Gone`]).
    Error(Box<ApiError>),
}

impl<K: Object> WatchEvent<K> {
    /// The resourceVersion this event brings the watcher to, if any.
    pub fn resource_version(&self) -> Option<&str> {
        match self {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
                o.metadata().resource_version.as_deref()
            }
            WatchEvent::Bookmark { resource_version } => Some(resource_version),
            WatchEvent::Error(_) => None,
        }
    }
}

/// A running watch. Dropping it cancels the request.
pub struct WatchStream<K> {
    body: Incoming,
    lease: Option<Lease>,
    client: Client,
    buf: BytesMut,
    /// Bytes of `buf` known to hold no newline.
    scanned: usize,
    idle: Duration,
    ended: bool,
    _kind: PhantomData<fn() -> K>,
}

impl<K: Object> WatchStream<K> {
    pub(crate) fn new(body: Incoming, lease: Lease, client: Client, idle: Duration) -> Self {
        WatchStream {
            body,
            lease: Some(lease),
            client,
            buf: BytesMut::new(),
            scanned: 0,
            idle,
            ended: false,
            _kind: PhantomData,
        }
    }

    /// The next event; `None` once the server has ended the watch (after
    /// its timeout, say). An error ends the stream too.
    pub async fn next(&mut self) -> Option<Result<WatchEvent<K>>> {
        loop {
            while let Some(line) = self.next_line() {
                match parse_line::<K>(&line) {
                    Parsed::Event(e) => return Some(Ok(e)),
                    Parsed::Gone(e) => {
                        self.finish();
                        return Some(Err(Error::Gone(e)));
                    }
                    Parsed::Skip => {}
                }
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout(self.idle, self.body.frame()).await {
                Err(_) => {
                    self.finish();
                    return Some(Err(Error::Timeout(self.idle)));
                }
                Ok(None) => {
                    self.ended = true;
                    if let Some(lease) = self.lease.take() {
                        self.client.release(lease);
                    }
                }
                Ok(Some(Err(e))) => {
                    self.finish();
                    return Some(Err(Error::Http(e)));
                }
                Ok(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else { continue };
                    if self.buf.len() + data.len() > MAX_EVENT_BYTES {
                        self.finish();
                        return Some(Err(Error::EventTooLarge { limit: MAX_EVENT_BYTES }));
                    }
                    self.buf.extend_from_slice(&data);
                }
            }
        }
    }

    /// The next complete line; at the end of the stream, also whatever
    /// trails the last newline.
    fn next_line(&mut self) -> Option<BytesMut> {
        if let Some(pos) = self.buf[self.scanned..].iter().position(|b| *b == b'\n') {
            let mut line = self.buf.split_to(self.scanned + pos + 1);
            self.scanned = 0;
            line.truncate(line.len() - 1);
            return Some(line);
        }
        self.scanned = self.buf.len();
        if self.ended && !self.buf.is_empty() {
            self.scanned = 0;
            return Some(self.buf.split());
        }
        None
    }

    fn finish(&mut self) {
        self.ended = true;
        self.buf.clear();
        self.scanned = 0;
        // An unfinished HTTP/1.1 response leaves its connection unusable.
        self.lease = None;
    }
}

enum Parsed<K> {
    Event(WatchEvent<K>),
    Gone(Box<ApiError>),
    Skip,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    object: Value,
}

/// An event read in one pass: when its type (which servers send before
/// the object) says it carries an object, the object is decoded straight
/// into `K` rather than into a [`Value`] first and converted, which
/// costs every informer about twice as much per event. Anything else
/// (bookmarks, errors, an object before its type) keeps the object as a
/// [`Value`]. A line this cannot read is read again as a [`RawEvent`],
/// which says what was wrong with it.
struct DirectEvent<K> {
    kind: String,
    object: Option<EventObject<K>>,
}

enum EventObject<K> {
    Typed(K),
    Raw(Value),
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum EventField {
    Type,
    Object,
    #[serde(other)]
    Other,
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for DirectEvent<K> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Fields<K>(PhantomData<fn() -> K>);
        impl<'de, K: DeserializeOwned> serde::de::Visitor<'de> for Fields<K> {
            type Value = DirectEvent<K>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a watch event")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<DirectEvent<K>, A::Error> {
                use serde::de::Error as _;
                let (mut kind, mut object) = (None::<String>, None);
                while let Some(field) = map.next_key::<EventField>()? {
                    match field {
                        EventField::Type if kind.is_some() => return Err(A::Error::duplicate_field("type")),
                        EventField::Type => kind = Some(map.next_value()?),
                        EventField::Object if object.is_some() => return Err(A::Error::duplicate_field("object")),
                        EventField::Object => {
                            object = Some(match kind.as_deref() {
                                Some("ADDED" | "MODIFIED" | "DELETED") => EventObject::Typed(map.next_value()?),
                                _ => EventObject::Raw(map.next_value()?),
                            });
                        }
                        EventField::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                let kind = kind.ok_or_else(|| A::Error::missing_field("type"))?;
                Ok(DirectEvent { kind, object })
            }
        }
        deserializer.deserialize_map(Fields(PhantomData))
    }
}

fn parse_line<K: Object>(line: &[u8]) -> Parsed<K> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Parsed::Skip;
    }
    let raw = match serde_json::from_slice::<DirectEvent<K>>(line) {
        Ok(DirectEvent { kind, object: Some(EventObject::Typed(o)) }) => {
            return Parsed::Event(match kind.as_str() {
                "ADDED" => WatchEvent::Added(o),
                "MODIFIED" => WatchEvent::Modified(o),
                _ => WatchEvent::Deleted(o),
            });
        }
        Ok(DirectEvent { kind, object: Some(EventObject::Raw(object)) }) => RawEvent { kind, object },
        Ok(DirectEvent { kind, object: None }) => RawEvent { kind, object: Value::Null },
        Err(_) => match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(kind = K::KIND, error = %e, "skipping a watch event that is not valid JSON");
                return Parsed::Skip;
            }
        },
    };
    parse_raw(raw)
}

fn parse_raw<K: Object>(raw: RawEvent) -> Parsed<K> {
    let object = |o: Value| match serde_json::from_value::<K>(o) {
        Ok(o) => Some(o),
        Err(e) => {
            tracing::warn!(kind = K::KIND, event = %raw.kind, error = %e, "skipping a watch event whose object does not decode");
            None
        }
    };
    match raw.kind.as_str() {
        "ADDED" => object(raw.object).map_or(Parsed::Skip, |o| Parsed::Event(WatchEvent::Added(o))),
        "MODIFIED" => object(raw.object).map_or(Parsed::Skip, |o| Parsed::Event(WatchEvent::Modified(o))),
        "DELETED" => object(raw.object).map_or(Parsed::Skip, |o| Parsed::Event(WatchEvent::Deleted(o))),
        // Bookmarks carry only kind, apiVersion and metadata, which kinds
        // with required fields would refuse to decode; take the RV only.
        "BOOKMARK" => match raw.object.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
            Some(rv) => Parsed::Event(WatchEvent::Bookmark { resource_version: rv.to_string() }),
            None => {
                tracing::warn!(kind = K::KIND, "skipping a BOOKMARK without a resourceVersion");
                Parsed::Skip
            }
        },
        "ERROR" => {
            let status = serde_json::from_value::<Status>(raw.object).unwrap_or_default();
            let error = Box::new(ApiError::from_status(status, 500));
            if error.code() == 410 { Parsed::Gone(error) } else { Parsed::Event(WatchEvent::Error(error)) }
        }
        other => {
            tracing::warn!(kind = K::KIND, event = other, "skipping a watch event of unknown type");
            Parsed::Skip
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};

    use super::*;

    fn parse<K: Object>(line: &str) -> Parsed<K> {
        parse_line::<K>(line.as_bytes())
    }

    #[test]
    fn object_events_decode_into_the_kind() {
        let p = parse::<ConfigMap>(
            r#"{"type":"MODIFIED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"9"}}}"#,
        );
        let Parsed::Event(WatchEvent::Modified(cm)) = p else { panic!("not a MODIFIED event") };
        assert_eq!(cm.metadata.name.as_deref(), Some("a"));
    }

    #[test]
    fn an_object_before_its_type_or_beside_unknown_fields_still_decodes() {
        let p = parse::<ConfigMap>(
            r#"{"object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}},"extra":[1,{"x":2}],"type":"DELETED"}"#,
        );
        let Parsed::Event(WatchEvent::Deleted(cm)) = p else { panic!("not a DELETED event") };
        assert_eq!(cm.metadata.name.as_deref(), Some("b"));
        let p = parse::<ConfigMap>(r#"{"type":"ADDED","object":{"metadata":{"name":"c"}},"type":"ADDED"}"#);
        assert!(matches!(p, Parsed::Skip), "a duplicate field is refused, as before");
    }

    #[test]
    fn a_bookmark_yields_its_resource_version_even_for_kinds_with_required_fields() {
        let p = parse::<Pod>(
            r#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12"}}}"#,
        );
        let Parsed::Event(WatchEvent::Bookmark { resource_version }) = p else { panic!("not a bookmark") };
        assert_eq!(resource_version, "12");
    }

    #[test]
    fn an_error_event_with_code_410_is_gone() {
        let p = parse::<ConfigMap>(
            r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 5 (9)","reason":"Expired","code":410}}"#,
        );
        assert!(matches!(p, Parsed::Gone(e) if e.reason() == "Expired"));
        let p = parse::<ConfigMap>(r#"{"type":"ERROR","object":{"kind":"Status","code":500,"message":"boom"}}"#);
        assert!(matches!(p, Parsed::Event(WatchEvent::Error(e)) if e.code() == 500));
    }

    #[test]
    fn malformed_events_are_skipped_not_fatal() {
        for line in [
            "not json",
            r#"{"type":"ADDED","object":{"kind":"Secret","apiVersion":"v1"}}"#,
            r#"{"type":"ADDED","object":{"metadata":{"name":7}}}"#,
            r#"{"type":"SURPRISE","object":{}}"#,
            r#"{"type":"BOOKMARK","object":{}}"#,
            r#"{"object":{}}"#,
            "   ",
        ] {
            assert!(matches!(parse::<ConfigMap>(line), Parsed::Skip), "{line:?} should be skipped");
        }
    }
}
