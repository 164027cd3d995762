//! Twilio Media Streams codec: the JSON events Twilio sends us, and the ones we send back.
//!
//! Inbound (`connected`, `start`, `media`, `mark`, `dtmf`, `stop`; shapes in protocols.md A2):
//! [`parse_event`] tries the fast path first for the two events that arrive 50 times a second
//! (`media` and `mark`): a single scan of the strict JSON subset ([`crate::core::json_scan`]),
//! no tree, no allocation, the payload returned as a slice of the receive buffer. Anything the
//! scanner does not cover goes to simd-json. Both paths produce the same [`TwilioEvent`]; the
//! `twilio_differential` fuzz target checks they agree.
//!
//! Outbound (`media`, `mark`, `clear`; protocols.md A3): the `*_parts` functions return the
//! JSON as slices for [`crate::core::ws::Encoder::frame_parts`], so the audio is copied once,
//! straight into the send buffer.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::core::json_scan::{self, Value};

/// A `media` event: 20 ms (usually) of the caller's μ-law audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Media<'a> {
    /// Twilio's message counter.
    pub sequence_number: u64,
    /// The stream this belongs to (ASCII).
    pub stream_sid: &'a [u8],
    /// `inbound` for the caller's audio.
    pub track: &'a [u8],
    /// Chunk counter, from 1.
    pub chunk: u64,
    /// Milliseconds since the stream started.
    pub timestamp: u64,
    /// Base64 μ-law, checked to be in the base64 alphabet (forwarded to OpenAI unchanged).
    pub payload: &'a [u8],
}

/// The `start` event: who is calling and the stream's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start<'a> {
    /// Twilio's message counter.
    pub sequence_number: u64,
    /// Stream id (`MZ…`).
    pub stream_sid: &'a str,
    /// Account (`AC…`).
    pub account_sid: &'a str,
    /// Call (`CA…`).
    pub call_sid: &'a str,
    /// Streamed tracks (`inbound`).
    pub tracks: Vec<&'a str>,
    /// `audio/x-mulaw`.
    pub encoding: &'a str,
    /// 8000.
    pub sample_rate: u32,
    /// 1.
    pub channels: u32,
    /// `<Parameter>`s of the TwiML.
    pub custom_parameters: BTreeMap<&'a str, &'a str>,
}

/// An event received from Twilio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioEvent<'a> {
    /// First message: the WebSocket is connected.
    Connected {
        /// `Call`.
        protocol: &'a str,
        /// `1.0.0`.
        version: &'a str,
    },
    /// The stream starts.
    Start(Start<'a>),
    /// Caller audio.
    Media(Media<'a>),
    /// A mark we sent has been played (or flushed by a `clear`).
    Mark {
        /// Twilio's message counter.
        sequence_number: u64,
        /// The stream.
        stream_sid: &'a [u8],
        /// The name we gave it.
        name: &'a [u8],
    },
    /// The caller pressed a key.
    Dtmf {
        /// Twilio's message counter.
        sequence_number: u64,
        /// The stream.
        stream_sid: &'a str,
        /// `inbound_track`.
        track: &'a str,
        /// `0`-`9`, `*`, `#`.
        digit: &'a str,
    },
    /// The stream ended (hang-up or stream stopped).
    Stop {
        /// Twilio's message counter.
        sequence_number: u64,
        /// The stream.
        stream_sid: &'a str,
        /// Account.
        account_sid: &'a str,
        /// Call.
        call_sid: &'a str,
    },
}

/// Why a Twilio message was refused. Twilio is a trusted peer, so any of these means a bug
/// or a protocol change on its side: log it and carry on with the next message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TwilioError {
    /// Not JSON, or a field of the wrong type.
    #[error("Twilio message is not valid JSON of the expected shape")]
    InvalidJson,
    /// An `event` this codec does not know.
    #[error("unknown Twilio event type")]
    UnknownEvent,
    /// A required field is missing.
    #[error("Twilio `{event}` event lacks `{field}`")]
    MissingField {
        /// The event.
        event: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A numeric string field is not a number.
    #[error("Twilio field `{0}` is not a decimal number")]
    BadNumber(&'static str),
    /// The media payload is not base64.
    #[error("Twilio media payload is not base64")]
    BadPayload,
}

/// Parses one Twilio message (a WebSocket text payload, valid UTF-8). The buffer is mutable
/// because simd-json unescapes strings in place on the slow path.
pub fn parse_event(json: &mut [u8]) -> Result<TwilioEvent<'_>, TwilioError> {
    if let Some(fast) = scan_fast(json) {
        return Ok(fast.resolve(json));
    }
    parse_slow(json)
}

/// The fast path alone: `Some` for a `media` or `mark` event in the strict subset, `None`
/// otherwise (the caller then uses the full parser). Public for the differential fuzz target
/// and the benches.
pub fn parse_fast(json: &[u8]) -> Option<TwilioEvent<'_>> {
    scan_fast(json).map(|f| f.resolve(json))
}

type Span = std::ops::Range<usize>;

/// What the fast path found, as positions (so the buffer can be re-borrowed afterwards).
enum FastEvent {
    Media { seq: u64, sid: Span, track: Span, chunk: u64, timestamp: u64, payload: Span },
    Mark { seq: u64, sid: Span, name: Span },
}

impl FastEvent {
    fn resolve(self, json: &[u8]) -> TwilioEvent<'_> {
        match self {
            FastEvent::Media { seq, sid, track, chunk, timestamp, payload } => TwilioEvent::Media(Media {
                sequence_number: seq,
                stream_sid: &json[sid],
                track: &json[track],
                chunk,
                timestamp,
                payload: &json[payload],
            }),
            FastEvent::Mark { seq, sid, name } => {
                TwilioEvent::Mark { sequence_number: seq, stream_sid: &json[sid], name: &json[name] }
            }
        }
    }
}

fn scan_fast(json: &[u8]) -> Option<FastEvent> {
    template_media(json).or_else(|| template_mark(json)).or_else(|| scan_any_order(json))
}

fn span_in(json: &[u8], s: &[u8]) -> Span {
    let start = s.as_ptr() as usize - json.as_ptr() as usize;
    start..start + s.len()
}

/// Tier 1 for `media`: the exact layout Twilio sends (protocols.md A2).
#[inline]
fn template_media(json: &[u8]) -> Option<FastEvent> {
    let mut t = json_scan::Template::new(json);
    t.lit(br#"{"event":"media","sequenceNumber":""#)?;
    let seq = t.digit_str()?;
    t.lit(br#","media":{"track":""#)?;
    let track = t.short_str()?;
    t.lit(br#","chunk":""#)?;
    let chunk = t.digit_str()?;
    t.lit(br#","timestamp":""#)?;
    let timestamp = t.digit_str()?;
    t.lit(br#","payload":""#)?;
    let payload = t.base64_str()?;
    t.lit(br#"},"streamSid":""#)?;
    let sid = t.short_str()?;
    t.lit(b"}")?;
    t.end()?;
    Some(FastEvent::Media {
        seq,
        sid: span_in(json, sid),
        track: span_in(json, track),
        chunk,
        timestamp,
        payload: span_in(json, payload),
    })
}

/// Tier 1 for `mark`: the exact layout Twilio sends.
#[inline]
fn template_mark(json: &[u8]) -> Option<FastEvent> {
    let mut t = json_scan::Template::new(json);
    t.lit(br#"{"event":"mark","sequenceNumber":""#)?;
    let seq = t.digit_str()?;
    t.lit(br#","streamSid":""#)?;
    let sid = t.short_str()?;
    t.lit(br#","mark":{"name":""#)?;
    let name = t.short_str()?;
    t.lit(b"}}")?;
    t.end()?;
    Some(FastEvent::Mark { seq, sid: span_in(json, sid), name: span_in(json, name) })
}

/// Tier 2: any key order, whitespace, unknown scalar fields.
fn scan_any_order(json: &[u8]) -> Option<FastEvent> {
    #[derive(Default)]
    struct Fields<'a> {
        event: Option<&'a [u8]>,
        seq: Option<&'a [u8]>,
        sid: Option<&'a [u8]>,
        track: Option<&'a [u8]>,
        chunk: Option<&'a [u8]>,
        timestamp: Option<&'a [u8]>,
        payload: Option<&'a [u8]>,
        name: Option<&'a [u8]>,
    }
    fn set<'a>(slot: &mut Option<&'a [u8]>, v: Value<'a>) -> Option<()> {
        match (slot.is_none(), v) {
            (true, Value::Str(s)) => {
                *slot = Some(s);
                Some(())
            }
            // Duplicate known key or wrong type: let the full parser decide.
            _ => None,
        }
    }
    /// Notes a `media` or `mark` object; a second one is a duplicate key, which the full
    /// parser refuses, so the fast path must not merge them.
    fn once(seen: &mut bool, v: Value<'_>) -> Option<()> {
        match (*seen, v) {
            (false, Value::Object) => {
                *seen = true;
                Some(())
            }
            _ => None,
        }
    }
    let span = |s: &[u8]| span_in(json, s);
    let mut f = Fields::default();
    let (mut saw_media, mut saw_mark) = (false, false);
    json_scan::scan(json, &mut |parent, key, v| match (parent, key) {
        (None, b"event") => set(&mut f.event, v),
        (None, b"sequenceNumber") => set(&mut f.seq, v),
        (None, b"streamSid") => set(&mut f.sid, v),
        // The objects of the hot events: their fields follow (below). Even empty, they count
        // (the full parser refuses a `media` event with a `mark` object and vice versa).
        (None, b"media") => once(&mut saw_media, v),
        (None, b"mark") => once(&mut saw_mark, v),
        // The other events' objects, and strings the full parser reads, whatever their value:
        // never in a hot event; leave them to the full parser.
        (None, b"start" | b"stop" | b"dtmf" | b"protocol" | b"version") => None,
        (Some(b"media"), b"track") => set(&mut f.track, v),
        (Some(b"media"), b"chunk") => set(&mut f.chunk, v),
        (Some(b"media"), b"timestamp") => set(&mut f.timestamp, v),
        (Some(b"media"), b"payload") => set(&mut f.payload, v),
        (Some(b"mark"), b"name") => set(&mut f.name, v),
        // Other fields of `media` and `mark`, and anything under or beside unknown keys, are
        // ignored by both parsers.
        _ => Some(()),
    })?;
    let seq = digits(f.seq?)?;
    let sid = span(f.sid?);
    match f.event? {
        b"media" if !saw_mark => {
            let payload = f.payload?;
            if !json_scan::is_base64(payload) {
                return None;
            }
            Some(FastEvent::Media {
                seq,
                sid,
                track: span(f.track?),
                chunk: digits(f.chunk?)?,
                timestamp: digits(f.timestamp?)?,
                payload: span(payload),
            })
        }
        b"mark" if !saw_media => Some(FastEvent::Mark { seq, sid, name: span(f.name?) }),
        _ => None,
    }
}

/// A Twilio numeric string: 1 to 19 ASCII digits.
fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |v, &d| v * 10 + u64::from(d - b'0')))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent<'a> {
    #[serde(borrow)]
    event: &'a str,
    #[serde(borrow, default)]
    sequence_number: Option<&'a str>,
    #[serde(borrow, default)]
    stream_sid: Option<&'a str>,
    #[serde(borrow, default)]
    protocol: Option<&'a str>,
    #[serde(borrow, default)]
    version: Option<&'a str>,
    #[serde(borrow, default)]
    media: Option<RawMedia<'a>>,
    #[serde(borrow, default)]
    mark: Option<RawMark<'a>>,
    #[serde(borrow, default)]
    start: Option<RawStart<'a>>,
    #[serde(borrow, default)]
    stop: Option<RawStop<'a>>,
    #[serde(borrow, default)]
    dtmf: Option<RawDtmf<'a>>,
}

#[derive(Deserialize)]
struct RawMedia<'a> {
    #[serde(borrow, default)]
    track: Option<&'a str>,
    #[serde(borrow, default)]
    chunk: Option<&'a str>,
    #[serde(borrow, default)]
    timestamp: Option<&'a str>,
    #[serde(borrow, default)]
    payload: Option<&'a str>,
}

#[derive(Deserialize)]
struct RawMark<'a> {
    #[serde(borrow, default)]
    name: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStart<'a> {
    #[serde(borrow, default)]
    account_sid: Option<&'a str>,
    #[serde(borrow, default)]
    stream_sid: Option<&'a str>,
    #[serde(borrow, default)]
    call_sid: Option<&'a str>,
    #[serde(borrow, default)]
    tracks: Vec<&'a str>,
    #[serde(borrow, default)]
    media_format: Option<RawMediaFormat<'a>>,
    #[serde(borrow, default)]
    custom_parameters: BTreeMap<&'a str, &'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMediaFormat<'a> {
    #[serde(borrow)]
    encoding: &'a str,
    sample_rate: u32,
    channels: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStop<'a> {
    #[serde(borrow, default)]
    account_sid: Option<&'a str>,
    #[serde(borrow, default)]
    call_sid: Option<&'a str>,
}

#[derive(Deserialize)]
struct RawDtmf<'a> {
    #[serde(borrow, default)]
    track: Option<&'a str>,
    #[serde(borrow, default)]
    digit: Option<&'a str>,
}

fn need<T>(v: Option<T>, event: &'static str, field: &'static str) -> Result<T, TwilioError> {
    v.ok_or(TwilioError::MissingField { event, field })
}

fn number(s: Option<&str>, event: &'static str, field: &'static str) -> Result<u64, TwilioError> {
    digits(need(s, event, field)?.as_bytes()).ok_or(TwilioError::BadNumber(field))
}

/// The full parser (simd-json): every event, any key order, escapes. Public for the
/// differential fuzz target.
pub fn parse_slow(json: &mut [u8]) -> Result<TwilioEvent<'_>, TwilioError> {
    let raw: RawEvent<'_> = simd_json::serde::from_slice(json).map_err(|_| TwilioError::InvalidJson)?;
    let ev = raw.event;
    Ok(match ev {
        "connected" => TwilioEvent::Connected {
            protocol: need(raw.protocol, "connected", "protocol")?,
            version: need(raw.version, "connected", "version")?,
        },
        "media" => {
            if raw.mark.is_some() {
                return Err(TwilioError::InvalidJson);
            }
            let m = need(raw.media, "media", "media")?;
            let payload = need(m.payload, "media", "media.payload")?.as_bytes();
            if !json_scan::is_base64(payload) {
                return Err(TwilioError::BadPayload);
            }
            TwilioEvent::Media(Media {
                sequence_number: number(raw.sequence_number, "media", "sequenceNumber")?,
                stream_sid: need(raw.stream_sid, "media", "streamSid")?.as_bytes(),
                track: need(m.track, "media", "media.track")?.as_bytes(),
                chunk: number(m.chunk, "media", "media.chunk")?,
                timestamp: number(m.timestamp, "media", "media.timestamp")?,
                payload,
            })
        }
        "mark" => {
            if raw.media.is_some() {
                return Err(TwilioError::InvalidJson);
            }
            TwilioEvent::Mark {
                sequence_number: number(raw.sequence_number, "mark", "sequenceNumber")?,
                stream_sid: need(raw.stream_sid, "mark", "streamSid")?.as_bytes(),
                name: need(need(raw.mark, "mark", "mark")?.name, "mark", "mark.name")?.as_bytes(),
            }
        }
        "start" => {
            let s = need(raw.start, "start", "start")?;
            let fmt = need(s.media_format, "start", "start.mediaFormat")?;
            TwilioEvent::Start(Start {
                sequence_number: number(raw.sequence_number, "start", "sequenceNumber")?,
                stream_sid: need(s.stream_sid.or(raw.stream_sid), "start", "streamSid")?,
                account_sid: need(s.account_sid, "start", "start.accountSid")?,
                call_sid: need(s.call_sid, "start", "start.callSid")?,
                tracks: s.tracks,
                encoding: fmt.encoding,
                sample_rate: fmt.sample_rate,
                channels: fmt.channels,
                custom_parameters: s.custom_parameters,
            })
        }
        "dtmf" => {
            let d = need(raw.dtmf, "dtmf", "dtmf")?;
            TwilioEvent::Dtmf {
                sequence_number: number(raw.sequence_number, "dtmf", "sequenceNumber")?,
                stream_sid: need(raw.stream_sid, "dtmf", "streamSid")?,
                track: d.track.unwrap_or("inbound_track"),
                digit: need(d.digit, "dtmf", "dtmf.digit")?,
            }
        }
        "stop" => {
            let s = need(raw.stop, "stop", "stop")?;
            TwilioEvent::Stop {
                sequence_number: number(raw.sequence_number, "stop", "sequenceNumber")?,
                stream_sid: need(raw.stream_sid, "stop", "streamSid")?,
                account_sid: need(s.account_sid, "stop", "stop.accountSid")?,
                call_sid: need(s.call_sid, "stop", "stop.callSid")?,
            }
        }
        _ => return Err(TwilioError::UnknownEvent),
    })
}

/// `{"event":"media","streamSid":…,"media":{"payload":…}}` as slices (payload unchanged).
#[inline]
pub fn media_parts<'a>(stream_sid: &'a [u8], payload_b64: &'a [u8]) -> [&'a [u8]; 5] {
    [
        b"{\"event\":\"media\",\"streamSid\":\"",
        stream_sid,
        b"\",\"media\":{\"payload\":\"",
        payload_b64,
        b"\"}}",
    ]
}

/// `{"event":"mark","streamSid":…,"mark":{"name":…}}` as slices. `name` must need no JSON
/// escaping (our labels are `[a-z0-9-]`).
#[inline]
pub fn mark_parts<'a>(stream_sid: &'a [u8], name: &'a [u8]) -> [&'a [u8]; 5] {
    [b"{\"event\":\"mark\",\"streamSid\":\"", stream_sid, b"\",\"mark\":{\"name\":\"", name, b"\"}}"]
}

/// `{"event":"clear","streamSid":…}` as slices: Twilio drops all buffered audio and echoes the
/// pending marks.
#[inline]
pub fn clear_parts(stream_sid: &[u8]) -> [&[u8]; 3] {
    [b"{\"event\":\"clear\",\"streamSid\":\"", stream_sid, b"\"}"]
}

/// The name we give the mark that follows a chunk of agent audio: which response, which
/// chunk, and how many milliseconds of that response's audio will have played once Twilio
/// echoes it. Formatted `r{response}-c{chunk}-{end_ms}` into a stack buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkLabel {
    /// Our sequence number of the response.
    pub response: u32,
    /// Chunk within the response, from 1.
    pub chunk: u32,
    /// Audio of this response played when the mark is reached (ms).
    pub end_ms: u32,
}

/// Longest formatted [`MarkLabel`].
pub const MARK_LABEL_MAX: usize = 1 + 10 + 2 + 10 + 1 + 10;

impl MarkLabel {
    /// Writes the label into `buf`, returning the bytes written.
    pub fn write<'b>(&self, buf: &'b mut [u8; MARK_LABEL_MAX]) -> &'b [u8] {
        let mut w = crate::core::buf::SliceWriter::new(&mut buf[..]);
        // Cannot fail: the buffer is sized for the largest values.
        let _ = w.put(b"r").and_then(|_| w.put_u64(u64::from(self.response)));
        let _ = w.put(b"-c").and_then(|_| w.put_u64(u64::from(self.chunk)));
        let _ = w.put(b"-").and_then(|_| w.put_u64(u64::from(self.end_ms)));
        let n = w.written();
        &buf[..n]
    }

    /// Reads a label back from an echoed mark name; `None` if it is not one of ours.
    /// On bytes, one pass: every echoed mark goes through here (a `str` split built a
    /// substring searcher per mark, ~1 700 instructions of a 6 800-instruction conversation step).
    pub fn parse(name: &[u8]) -> Option<MarkLabel> {
        fn until_dash(s: &[u8]) -> Option<(&[u8], &[u8])> {
            let i = s.iter().position(|&b| b == b'-')?;
            Some((&s[..i], &s[i + 1..]))
        }
        let (r, rest) = until_dash(name.strip_prefix(b"r")?)?;
        let (c, ms) = until_dash(rest.strip_prefix(b"c")?)?;
        Some(MarkLabel {
            response: u32::try_from(digits(r)?).ok()?,
            chunk: u32::try_from(digits(c)?).ok()?,
            end_ms: u32::try_from(digits(ms)?).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const MEDIA: &str = r#"{"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"no+JhoaJjpzS/w=="},"streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0"}"#;

    fn slow(s: &str) -> Result<String, TwilioError> {
        let mut b = s.as_bytes().to_vec();
        parse_slow(&mut b).map(|e| format!("{e:?}"))
    }

    #[test]
    fn media_fast_and_slow_agree() {
        let fast = parse_fast(MEDIA.as_bytes()).unwrap();
        let TwilioEvent::Media(m) = fast else { panic!() };
        assert_eq!(m.payload, b"no+JhoaJjpzS/w==");
        assert_eq!((m.sequence_number, m.chunk, m.timestamp, m.track), (4, 2, 5, &b"inbound"[..]));
        assert_eq!(slow(MEDIA).unwrap(), format!("{fast:?}"));
    }

    #[test]
    fn media_in_another_key_order_and_with_spaces_is_still_fast() {
        let s = r#"{ "streamSid" : "MZ1", "event":"media", "media": {"payload":"AA==", "timestamp":"20","chunk":"1","track":"inbound"}, "sequenceNumber":"9", "extra": 1 }"#;
        assert!(matches!(parse_fast(s.as_bytes()), Some(TwilioEvent::Media(_))));
        assert_eq!(slow(s).unwrap(), format!("{:?}", parse_fast(s.as_bytes()).unwrap()));
    }

    #[test]
    fn escapes_fall_back_to_the_full_parser() {
        let s = MEDIA.replace("\"inbound\"", "\"in\\u0062ound\"");
        assert!(parse_fast(s.as_bytes()).is_none());
        let mut b = s.into_bytes();
        let TwilioEvent::Media(m) = parse_event(&mut b).unwrap() else { panic!() };
        assert_eq!(m.track, b"inbound");
    }

    #[test]
    fn mark_is_fast() {
        let s = r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"r7-c3-1840"}}"#;
        let fast = parse_fast(s.as_bytes()).unwrap();
        assert_eq!(fast, TwilioEvent::Mark { sequence_number: 4, stream_sid: b"MZ1", name: b"r7-c3-1840" });
        assert_eq!(slow(s).unwrap(), format!("{fast:?}"));
    }

    /// Found by the `twilio_differential` fuzz target: objects the fast path did not see
    /// (empty, duplicated, or where the full parser expects a string) made it accept messages
    /// the full parser refuses.
    #[test]
    fn objects_the_full_parser_refuses_are_not_fast() {
        let mark = r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"x"}"#;
        for extra in [
            r#","media":{}"#,
            r#","protocol":{"a":"b"}"#,
            r#","version":{}"#,
            r#","streamSid":{}"#,
            r#","sequenceNumber":{"a":"1"}"#,
            r#","mark":{}"#,
        ] {
            let s = format!("{mark}{extra}}}");
            assert!(parse_fast(s.as_bytes()).is_none(), "{s}");
            assert!(slow(&s).is_err(), "{s}");
        }
        // Another event's object: the full parser reads it (and ignores it); not the fast path.
        let s = format!(r#"{mark},"start":{{}}}}"#);
        assert!(parse_fast(s.as_bytes()).is_none(), "{s}");
        assert!(slow(&s).unwrap().starts_with("Mark"));
        let twice = MEDIA.replace(r#""media":{"track""#, r#""media":{},"media":{"track""#);
        assert!(parse_fast(twice.as_bytes()).is_none(), "{twice}");
        assert!(slow(&twice).is_err());
        // Unknown keys, empty or not, are ignored by both.
        let s = format!(r#"{mark},"extra":{{}},"more":{{"a":"b"}}}}"#);
        assert!(parse_fast(s.as_bytes()).is_some());
        assert_eq!(slow(&s).unwrap(), format!("{:?}", parse_fast(s.as_bytes()).unwrap()));
    }

    #[test]
    fn every_documented_event_parses() {
        let cases = [
            r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#,
            r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"lead_id":"42","token":"v1.x.y"}},"streamSid":"MZ1"}"#,
            r#"{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}"#,
            r#"{"event":"stop","sequenceNumber":"5","stop":{"accountSid":"AC1","callSid":"CA1"},"streamSid":"MZ1"}"#,
        ];
        let mut out = Vec::new();
        for c in cases {
            let mut b = c.as_bytes().to_vec();
            out.push(format!("{:?}", parse_event(&mut b).unwrap()));
        }
        assert!(out[0].starts_with("Connected"));
        assert!(
            out[1].contains("custom_parameters: {\"lead_id\": \"42\", \"token\": \"v1.x.y\"}"),
            "{}",
            out[1]
        );
        assert!(out[1].contains("sample_rate: 8000"));
        assert!(out[2].contains("digit: \"1\""));
        assert!(out[3].starts_with("Stop"));
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert_eq!(slow("not json"), Err(TwilioError::InvalidJson));
        assert_eq!(slow(r#"{"event":"hello"}"#), Err(TwilioError::UnknownEvent));
        assert_eq!(slow(r#"{"event":7}"#), Err(TwilioError::InvalidJson));
        assert_eq!(
            slow(r#"{"event":"media","sequenceNumber":"1","streamSid":"MZ"}"#),
            Err(TwilioError::MissingField { event: "media", field: "media" })
        );
        assert_eq!(
            slow(&MEDIA.replace("\"chunk\":\"2\"", "\"chunk\":\"x\"")),
            Err(TwilioError::BadNumber("media.chunk"))
        );
        assert_eq!(slow(&MEDIA.replace("no+J", "no J")), Err(TwilioError::BadPayload));
        assert!(parse_fast(MEDIA.replace("no+J", "no J").as_bytes()).is_none());
    }

    #[test]
    fn writers_produce_twilio_shapes() {
        let parts = media_parts(b"MZ1", b"AAAA");
        assert_eq!(parts.concat(), br#"{"event":"media","streamSid":"MZ1","media":{"payload":"AAAA"}}"#);
        assert_eq!(
            mark_parts(b"MZ1", b"r1-c1-20").concat(),
            br#"{"event":"mark","streamSid":"MZ1","mark":{"name":"r1-c1-20"}}"#
        );
        assert_eq!(clear_parts(b"MZ1").concat(), br#"{"event":"clear","streamSid":"MZ1"}"#);
        for p in [
            media_parts(b"MZ1", b"AAAA").concat(),
            mark_parts(b"MZ1", b"x").concat(),
            clear_parts(b"MZ1").concat(),
        ] {
            serde_json::from_slice::<serde_json::Value>(&p).unwrap();
        }
    }

    #[test]
    fn mark_labels_parse_as_the_string_splitting_reference_did() {
        fn reference(name: &[u8]) -> Option<MarkLabel> {
            let name = std::str::from_utf8(name).ok()?;
            let rest = name.strip_prefix('r')?;
            let (r, rest) = rest.split_once("-c")?;
            let (c, ms) = rest.split_once('-')?;
            let num = |s: &str| digits(s.as_bytes());
            Some(MarkLabel {
                response: u32::try_from(num(r)?).ok()?,
                chunk: u32::try_from(num(c)?).ok()?,
                end_ms: u32::try_from(num(ms)?).ok()?,
            })
        }
        // Every string of up to 7 bytes over the label's alphabet and a few intruders.
        let alphabet = b"rc-09x\xc3";
        let mut names: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..7 {
            let longer: Vec<Vec<u8>> = names
                .iter()
                .filter(|n| n.len() == names.last().map_or(0, Vec::len))
                .flat_map(|n| alphabet.iter().map(move |&b| [n.as_slice(), &[b]].concat()))
                .collect();
            names.extend(longer);
        }
        names.extend([
            b"r4294967296-c1-2".to_vec(),
            b"r1-c4294967295-20".to_vec(),
            b"r12-c340-6800".to_vec(),
        ]);
        let mut labels = 0;
        for n in &names {
            assert_eq!(MarkLabel::parse(n), reference(n), "{:?}", String::from_utf8_lossy(n));
            labels += usize::from(reference(n).is_some());
        }
        assert!(labels >= 10, "the inputs include real labels ({labels})");
    }

    #[test]
    fn mark_labels_round_trip() {
        let l = MarkLabel { response: u32::MAX, chunk: 3, end_ms: u32::MAX };
        let mut buf = [0u8; MARK_LABEL_MAX];
        let s = l.write(&mut buf).to_vec();
        assert_eq!(MarkLabel::parse(&s), Some(l));
        assert_eq!(MarkLabel::parse(b"greeting"), None);
        assert_eq!(MarkLabel::parse(b"r1-c2-"), None);
    }
}
