//! The body of `POST /v1/live/sessions` (GPT-Live over WebRTC), read without any I/O: JSON
//! `{"session": {…}, "transport": {"type": "webrtc", "sdp": "<offer>"}}`, nothing else.
//!
//! [`parse_live_sessions_body`] is pure: any bytes and any `Content-Type` give either a
//! [`LiveSessionsBody`] or a [`LiveBodyError`] naming the member at fault, never a panic
//! (fuzzed: `fuzz/fuzz_targets/live_sessions_body.rs`). `live/create.rs` turns the error into
//! OpenAI's error body; checking the session against the Live client schema and the offer
//! against str0m happens after this.

use serde_json::Value;

/// A readable `POST /v1/live/sessions` body.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSessionsBody {
    /// The `session` member as sent (not yet checked against the schema).
    pub session: Value,
    /// The SDP offer (`transport.sdp`), non-empty.
    pub sdp: String,
}

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LiveBodyError {
    /// Not `application/json`.
    #[error("unsupported content type '{0}'")]
    UnsupportedContentType(String),
    /// Not JSON at all.
    #[error("the body is not JSON")]
    NotJson,
    /// JSON, but not an object.
    #[error("the body is not a JSON object")]
    NotAnObject,
    /// `transport` is not an object.
    #[error("'transport' is not an object")]
    TransportNotAnObject,
    /// A member this endpoint does not take (dotted path: `x`, `transport.x`).
    #[error("unknown parameter '{0}'")]
    Unknown(String),
    /// A required member is missing (`session`, `transport`, `transport.type`,
    /// `transport.sdp`).
    #[error("missing required parameter '{0}'")]
    Missing(&'static str),
    /// `transport.type` is not `webrtc` (the value as sent, JSON).
    #[error("invalid transport.type {0}")]
    UnsupportedTransport(String),
    /// `transport.sdp` is not a non-empty string.
    #[error("'transport.sdp' is not a non-empty string")]
    InvalidSdp,
}

/// Reads the body of `POST /v1/live/sessions` sent with `content_type`.
pub fn parse_live_sessions_body(content_type: &str, body: &[u8]) -> Result<LiveSessionsBody, LiveBodyError> {
    let mime = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if mime != "application/json" {
        return Err(LiveBodyError::UnsupportedContentType(content_type.to_owned()));
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| LiveBodyError::NotJson)?;
    let Value::Object(mut obj) = v else { return Err(LiveBodyError::NotAnObject) };
    if let Some(k) = obj.keys().find(|k| !["session", "transport"].contains(&k.as_str())) {
        return Err(LiveBodyError::Unknown(k.clone()));
    }
    let session = obj.remove("session").ok_or(LiveBodyError::Missing("session"))?;
    let transport = obj.remove("transport").ok_or(LiveBodyError::Missing("transport"))?;
    let Value::Object(t) = transport else { return Err(LiveBodyError::TransportNotAnObject) };
    if let Some(k) = t.keys().find(|k| !["type", "sdp"].contains(&k.as_str())) {
        return Err(LiveBodyError::Unknown(format!("transport.{k}")));
    }
    match t.get("type") {
        None => return Err(LiveBodyError::Missing("transport.type")),
        Some(Value::String(s)) if s == "webrtc" => {}
        Some(other) => return Err(LiveBodyError::UnsupportedTransport(other.to_string())),
    }
    match t.get("sdp") {
        None => Err(LiveBodyError::Missing("transport.sdp")),
        Some(Value::String(s)) if !s.is_empty() => Ok(LiveSessionsBody { session, sdp: s.clone() }),
        Some(_) => Err(LiveBodyError::InvalidSdp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_member_by_member() {
        let ok = br#"{"session":{"model":"gpt-live-1"},"transport":{"type":"webrtc","sdp":"v=0"}}"#;
        let b = parse_live_sessions_body("application/json; charset=utf-8", ok).unwrap();
        assert_eq!((b.session["model"].as_str(), b.sdp.as_str()), (Some("gpt-live-1"), "v=0"));
        let e = |ct: &str, body: &[u8]| parse_live_sessions_body(ct, body).unwrap_err();
        assert!(matches!(e("application/sdp", b"v=0"), LiveBodyError::UnsupportedContentType(_)));
        assert_eq!(e("application/json", b"{"), LiveBodyError::NotJson);
        assert_eq!(e("application/json", b"[]"), LiveBodyError::NotAnObject);
        assert_eq!(
            e("application/json", br#"{"session":{},"transport":{"type":"webrtc","sdp":"v=0"},"x":1}"#),
            LiveBodyError::Unknown("x".into())
        );
        assert_eq!(
            e("application/json", br#"{"transport":{"type":"webrtc","sdp":"v=0"}}"#),
            LiveBodyError::Missing("session")
        );
        assert_eq!(
            e("application/json", br#"{"session":{},"transport":{"type":"sip","sdp":"v=0"}}"#),
            LiveBodyError::UnsupportedTransport("\"sip\"".into())
        );
        assert_eq!(
            e("application/json", br#"{"session":{},"transport":{"type":"webrtc","sdp":"v=0","ice":1}}"#),
            LiveBodyError::Unknown("transport.ice".into())
        );
        assert_eq!(
            e("application/json", br#"{"session":{},"transport":{"type":"webrtc"}}"#),
            LiveBodyError::Missing("transport.sdp")
        );
        assert_eq!(
            e("application/json", br#"{"session":{},"transport":{"type":"webrtc","sdp":""}}"#),
            LiveBodyError::InvalidSdp
        );
        assert_eq!(
            e("application/json", br#"{"session":{},"transport":"webrtc"}"#),
            LiveBodyError::TransportNotAnObject
        );
    }
}
