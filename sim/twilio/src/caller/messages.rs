//! The JSON messages of a bidirectional Media Stream, both ways (protocols.md A2/A3).
//!
//! Outbound (what Twilio sends): built with the exact field order and types Twilio uses —
//! `sequenceNumber`, `chunk` and `timestamp` are strings, `sampleRate` and `channels` numbers.
//! Inbound (what a server may send: `media`, `mark`, `clear`): checked as strictly as Twilio
//! does; anything else is a 31951 warning, never a crash.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde::ser::SerializeMap as _;
use serde_json::Value;

use crate::codes;

/// `{"event":"connected","protocol":"Call","version":"1.0.0"}`.
pub fn connected() -> String {
    r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#.to_owned()
}

/// What the `start` message announces.
#[derive(Debug, Clone)]
pub struct StartInfo<'a> {
    /// `AC…`.
    pub account_sid: &'a str,
    /// `MZ…`.
    pub stream_sid: &'a str,
    /// `CA…`.
    pub call_sid: &'a str,
    /// Streamed tracks (`["inbound"]` on a bidirectional stream).
    pub tracks: &'a [String],
    /// The `<Parameter>`s, in document order.
    pub custom_parameters: &'a [(String, String)],
}

struct Params<'a>(&'a [(String, String)]);

impl Serialize for Params<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MediaFormat {
    encoding: &'static str,
    sample_rate: u32,
    channels: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StartBody<'a> {
    account_sid: &'a str,
    stream_sid: &'a str,
    call_sid: &'a str,
    tracks: &'a [String],
    media_format: MediaFormat,
    custom_parameters: Params<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Start<'a> {
    event: &'static str,
    sequence_number: String,
    start: StartBody<'a>,
    stream_sid: &'a str,
}

/// The `start` message (sequence number 1 on a real stream).
pub fn start(seq: u64, info: &StartInfo<'_>) -> String {
    to_json(&Start {
        event: "start",
        sequence_number: seq.to_string(),
        start: StartBody {
            account_sid: info.account_sid,
            stream_sid: info.stream_sid,
            call_sid: info.call_sid,
            tracks: info.tracks,
            media_format: MediaFormat { encoding: "audio/x-mulaw", sample_rate: 8000, channels: 1 },
            custom_parameters: Params(info.custom_parameters),
        },
        stream_sid: info.stream_sid,
    })
}

#[derive(Serialize)]
struct MediaBody<'a> {
    track: &'static str,
    chunk: String,
    timestamp: String,
    payload: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Media<'a> {
    event: &'static str,
    sequence_number: String,
    media: MediaBody<'a>,
    stream_sid: &'a str,
}

/// A `media` message: `chunk` counts from 1, `timestamp_ms` is the audio's position in the
/// stream, `payload` the base64 μ-law.
pub fn media(seq: u64, chunk: u64, timestamp_ms: u64, payload: &str, stream_sid: &str) -> String {
    to_json(&Media {
        event: "media",
        sequence_number: seq.to_string(),
        media: MediaBody {
            track: "inbound",
            chunk: chunk.to_string(),
            timestamp: timestamp_ms.to_string(),
            payload,
        },
        stream_sid,
    })
}

#[derive(Serialize)]
struct DtmfBody {
    track: &'static str,
    digit: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dtmf<'a> {
    event: &'static str,
    stream_sid: &'a str,
    sequence_number: String,
    dtmf: DtmfBody,
}

/// A `dtmf` message (note Twilio's order: `streamSid` before `sequenceNumber`).
pub fn dtmf(seq: u64, stream_sid: &str, digit: char) -> String {
    to_json(&Dtmf {
        event: "dtmf",
        stream_sid,
        sequence_number: seq.to_string(),
        dtmf: DtmfBody { track: "inbound_track", digit: digit.to_string() },
    })
}

#[derive(Serialize)]
struct MarkBody<'a> {
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Mark<'a> {
    event: &'static str,
    sequence_number: String,
    stream_sid: &'a str,
    mark: MarkBody<'a>,
}

/// A `mark` echo.
pub fn mark(seq: u64, stream_sid: &str, name: &str) -> String {
    to_json(&Mark { event: "mark", sequence_number: seq.to_string(), stream_sid, mark: MarkBody { name } })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StopBody<'a> {
    account_sid: &'a str,
    call_sid: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stop<'a> {
    event: &'static str,
    sequence_number: String,
    stop: StopBody<'a>,
    stream_sid: &'a str,
}

/// The `stop` message sent when the caller hangs up.
pub fn stop(seq: u64, account_sid: &str, call_sid: &str, stream_sid: &str) -> String {
    to_json(&Stop {
        event: "stop",
        sequence_number: seq.to_string(),
        stop: StopBody { account_sid, call_sid },
        stream_sid,
    })
}

fn to_json<T: Serialize>(v: &T) -> String {
    // Serialising these plain structs of strings and numbers cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

/// A valid message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    /// Audio to play (decoded μ-law).
    Media(Vec<u8>),
    /// A mark to echo once the audio before it has played.
    Mark(String),
    /// Empty the playback queue.
    Clear,
}

/// A message Twilio would refuse, with the warning it raises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// 31951 (or 31950 for a binary frame, decided by the caller).
    pub code: u32,
    /// What was wrong.
    pub detail: String,
}

fn invalid(detail: impl Into<String>) -> Invalid {
    Invalid { code: codes::STREAM_INVALID_MESSAGE, detail: detail.into() }
}

fn exact_keys(obj: &serde_json::Map<String, Value>, keys: &[&str], what: &str) -> Result<(), Invalid> {
    for k in keys {
        if !obj.contains_key(*k) {
            return Err(invalid(format!("{what}: missing field `{k}`")));
        }
    }
    if let Some(extra) = obj.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(invalid(format!("{what}: extra field `{extra}`")));
    }
    Ok(())
}

fn str_field<'a>(obj: &'a serde_json::Map<String, Value>, key: &str, what: &str) -> Result<&'a str, Invalid> {
    obj.get(key).and_then(Value::as_str).ok_or_else(|| invalid(format!("{what}: `{key}` is not a string")))
}

/// Checks a text message from the server the way Twilio does, for the stream `stream_sid`.
pub fn parse_server_message(text: &str, stream_sid: &str) -> Result<ServerMessage, Invalid> {
    let value: Value = serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let obj = value.as_object().ok_or_else(|| invalid("not a JSON object"))?;
    let event =
        obj.get("event").and_then(Value::as_str).ok_or_else(|| invalid("missing string field `event`"))?;
    let msg = match event {
        "media" => {
            exact_keys(obj, &["event", "streamSid", "media"], "media")?;
            let media = obj["media"].as_object().ok_or_else(|| invalid("media: `media` is not an object"))?;
            exact_keys(media, &["payload"], "media.media")?;
            let payload = str_field(media, "payload", "media.media")?;
            let audio = STANDARD
                .decode(payload)
                .map_err(|e| invalid(format!("media: payload is not base64: {e}")))?;
            ServerMessage::Media(audio)
        }
        "mark" => {
            exact_keys(obj, &["event", "streamSid", "mark"], "mark")?;
            let mark = obj["mark"].as_object().ok_or_else(|| invalid("mark: `mark` is not an object"))?;
            exact_keys(mark, &["name"], "mark.mark")?;
            ServerMessage::Mark(str_field(mark, "name", "mark.mark")?.to_owned())
        }
        "clear" => {
            exact_keys(obj, &["event", "streamSid"], "clear")?;
            ServerMessage::Clear
        }
        other => return Err(invalid(format!("unknown event `{other}`"))),
    };
    let sid = str_field(obj, "streamSid", event)?;
    if sid != stream_sid {
        return Err(invalid(format!("{event}: wrong streamSid `{sid}` (stream is `{stream_sid}`)")));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_shapes_match_protocols_md() {
        assert_eq!(
            media(4, 2, 5, "no+JhoaJjpzS", "MZ1"),
            r#"{"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"no+JhoaJjpzS"},"streamSid":"MZ1"}"#
        );
        assert_eq!(
            dtmf(5, "MZ1", '1'),
            r#"{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}"#
        );
        assert_eq!(
            mark(4, "MZ1", "r7-c3"),
            r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"r7-c3"}}"#
        );
        assert_eq!(
            stop(5, "AC1", "CA1", "MZ1"),
            r#"{"event":"stop","sequenceNumber":"5","stop":{"accountSid":"AC1","callSid":"CA1"},"streamSid":"MZ1"}"#
        );
        let tracks = vec!["inbound".to_owned()];
        let params = vec![("lead_id".to_owned(), "42".to_owned()), ("token".to_owned(), "v1.x.y".to_owned())];
        assert_eq!(
            start(
                1,
                &StartInfo {
                    account_sid: "AC1",
                    stream_sid: "MZ1",
                    call_sid: "CA1",
                    tracks: &tracks,
                    custom_parameters: &params
                }
            ),
            r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"lead_id":"42","token":"v1.x.y"}},"streamSid":"MZ1"}"#
        );
    }

    #[test]
    fn inbound_checks() {
        let ok =
            parse_server_message(r#"{"event":"media","streamSid":"MZ1","media":{"payload":"AAEC"}}"#, "MZ1");
        assert_eq!(ok, Ok(ServerMessage::Media(vec![0, 1, 2])));
        assert_eq!(
            parse_server_message(r#"{"streamSid":"MZ1","event":"mark","mark":{"name":"x"}}"#, "MZ1"),
            Ok(ServerMessage::Mark("x".into()))
        );
        assert_eq!(
            parse_server_message(r#"{"event":"clear","streamSid":"MZ1"}"#, "MZ1"),
            Ok(ServerMessage::Clear)
        );
        for bad in [
            "not json",
            "[1]",
            r#"{"event":"hello","streamSid":"MZ1"}"#,
            r#"{"event":"clear"}"#,
            r#"{"event":"clear","streamSid":"MZ2"}"#,
            r#"{"event":"clear","streamSid":"MZ1","extra":1}"#,
            r#"{"event":"media","streamSid":"MZ1","media":{"payload":"A"}}"#,
            r#"{"event":"media","streamSid":"MZ1","media":{"payload":"AAAA","track":"outbound"}}"#,
            r#"{"event":"mark","streamSid":"MZ1","mark":{}}"#,
            r#"{"event":"mark","streamSid":"MZ1","mark":{"name":3}}"#,
        ] {
            let e = parse_server_message(bad, "MZ1").unwrap_err();
            assert_eq!(e.code, 31951, "{bad}");
        }
    }
}
