//! The body of `POST /v1/realtime/calls`, read without any I/O: `application/sdp` (the offer
//! is the whole body) or `multipart/form-data` with an `sdp` part and an optional `session`
//! part (a JSON session object), as the GA API takes them.
//!
//! [`parse_calls_body`] is pure: any bytes and any `Content-Type` give either a
//! [`CallsBody`] or a [`CallsBodyError`], never a panic (fuzzed: `fuzz/fuzz_targets/
//! calls_body.rs`). `calls.rs` turns the error into OpenAI's error body; checking the session
//! against the client schema and the offer against str0m happens after this.

use serde_json::Value;

/// A readable `POST /v1/realtime/calls` body.
#[derive(Debug, Clone, PartialEq)]
pub struct CallsBody {
    /// The SDP offer, as sent (UTF-8).
    pub sdp: String,
    /// The multipart `session` part, parsed as JSON (not yet checked against the schema).
    pub session: Option<Value>,
}

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallsBodyError {
    /// Neither `application/sdp` nor `multipart/form-data`.
    #[error("unsupported content type '{0}'")]
    UnsupportedContentType(String),
    /// `multipart/form-data` without a `boundary` parameter (or an empty one).
    #[error("multipart/form-data without a boundary")]
    NoBoundary,
    /// The multipart body does not follow the boundary structure.
    #[error("the multipart body could not be parsed")]
    MalformedMultipart,
    /// The offer (`body` or the `sdp` part) is not UTF-8.
    #[error("the {0} is not UTF-8 text")]
    NotUtf8(&'static str),
    /// The `session` part is not JSON; the parser's message.
    #[error("invalid 'session': not JSON ({0})")]
    SessionNotJson(String),
    /// A part other than `sdp` and `session`.
    #[error("unknown parameter '{0}'")]
    UnknownPart(String),
    /// No `sdp` part.
    #[error("missing required parameter 'sdp'")]
    MissingSdp,
}

/// Reads the body of `POST /v1/realtime/calls` sent with `content_type`.
pub fn parse_calls_body(content_type: &str, body: &[u8]) -> Result<CallsBody, CallsBodyError> {
    let mime = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/sdp" => Ok(CallsBody { sdp: utf8(body, "body")?, session: None }),
        "multipart/form-data" => {
            let boundary = content_type
                .split(';')
                .skip(1)
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| v.trim().trim_matches('"'))
                .filter(|b| !b.is_empty())
                .ok_or(CallsBodyError::NoBoundary)?;
            let mut sdp = None;
            let mut session = None;
            for (name, value) in multipart_parts(body, boundary)? {
                match name.as_str() {
                    "sdp" => sdp = Some(utf8(&value, "sdp")?),
                    "session" => {
                        let v: Value = serde_json::from_slice(&value)
                            .map_err(|e| CallsBodyError::SessionNotJson(e.to_string()))?;
                        session = Some(v);
                    }
                    _ => return Err(CallsBodyError::UnknownPart(name)),
                }
            }
            Ok(CallsBody { sdp: sdp.ok_or(CallsBodyError::MissingSdp)?, session })
        }
        _ => Err(CallsBodyError::UnsupportedContentType(content_type.to_owned())),
    }
}

fn utf8(bytes: &[u8], what: &'static str) -> Result<String, CallsBodyError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| CallsBodyError::NotUtf8(what))
}

/// The named parts of a `multipart/form-data` body delimited by `--boundary`, in order. A
/// part's value ends before the `\r\n` that precedes the next delimiter; text before the first
/// delimiter (the preamble) is skipped, the body ends at `--boundary--`.
pub fn multipart_parts(body: &[u8], boundary: &str) -> Result<Vec<(String, Vec<u8>)>, CallsBodyError> {
    let bad = || CallsBodyError::MalformedMultipart;
    let delimiter = format!("--{boundary}");
    let d = delimiter.as_bytes();
    let mut at = find(body, d, 0).ok_or_else(bad)? + d.len();
    let mut parts = Vec::new();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Ok(parts);
        }
        at += usize::from(body.get(at..at + 2) == Some(b"\r\n")) * 2;
        // The head ends at the first blank line; a part without any header (the blank line
        // right after the delimiter) is malformed: it has no name.
        let head_end = find(body, b"\r\n\r\n", at).ok_or_else(bad)?;
        let head = std::str::from_utf8(&body[at..head_end]).map_err(|_| bad())?;
        let name = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                if !k.trim().eq_ignore_ascii_case("content-disposition") {
                    return None;
                }
                v.split(';').find_map(|p| {
                    let (k, v) = p.trim().split_once('=')?;
                    (k.trim() == "name").then(|| v.trim().trim_matches('"').to_owned())
                })
            })
            .ok_or_else(bad)?;
        let start = head_end + 4;
        let next = find(body, d, start).ok_or_else(bad)?;
        // The CRLF before the delimiter belongs to it, not to the value; an empty value has
        // the delimiter right after the head's blank line, whose CRLF is not the value's.
        let end = if next >= start + 2 && body[..next].ends_with(b"\r\n") { next - 2 } else { next };
        parts.push((name, body[start..end].to_vec()));
        at = next + d.len();
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// The offer without the candidates a server cannot reach (pure, fuzzed with the GPT-Live
/// body: `fuzz/fuzz_targets/live_sessions_body.rs`): a browser that gathered its
/// candidates before sending the offer (as OpenAI's GPT-Live guide says to) may hide its host
/// addresses behind mDNS names (`….local`), which only its own network resolves; a server
/// ignores those and learns the address from the browser's connectivity checks instead (the
/// ICE-lite answerer's peer-reflexive candidate), as it does when the offer has none.
pub fn reachable_candidates(sdp: &str) -> String {
    let keep = |line: &str| {
        let Some(c) = line.strip_prefix("a=candidate:") else { return true };
        c.split(' ').nth(4).is_some_and(|addr| addr.parse::<std::net::IpAddr>().is_ok())
    };
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n').filter(|l| keep(l.trim_end())) {
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mdns_candidates_are_left_out_and_others_kept() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=candidate:1 1 udp 2113937151 0f1e2d3c-aaaa-bbbb-cccc-0123456789ab.local 54321 typ host generation 0\r\n\
            a=candidate:2 1 udp 2113937151 127.0.0.1 54322 typ host generation 0\r\n\
            a=end-of-candidates\r\n";
        let kept = reachable_candidates(sdp);
        assert!(!kept.contains(".local"), "{kept}");
        assert!(kept.contains("127.0.0.1 54322") && kept.contains("a=end-of-candidates\r\n"), "{kept}");
        assert_eq!(reachable_candidates("v=0\r\n"), "v=0\r\n");
    }

    const FORM: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"sdp\"\r\n\r\nv=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=\"session\"\r\nContent-Type: application/json\r\n\r\n{\"type\":\"realtime\"}\r\n--XyZ--\r\n";

    #[test]
    fn multipart_parts_are_read_and_malformed_bodies_refused() {
        let parts = multipart_parts(FORM, "XyZ").expect("well formed");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, "sdp");
        assert_eq!(parts[0].1, b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n");
        assert_eq!(parts[1], ("session".to_owned(), b"{\"type\":\"realtime\"}".to_vec()));
        assert_eq!(
            multipart_parts(b"--XyZ\r\nno header end", "XyZ"),
            Err(CallsBodyError::MalformedMultipart)
        );
        assert_eq!(multipart_parts(b"nothing", "XyZ"), Err(CallsBodyError::MalformedMultipart));
        let body = parse_calls_body("multipart/form-data; boundary=\"XyZ\"", FORM).expect("read");
        assert!(body.sdp.starts_with("v=0"));
        assert_eq!(body.session.expect("session")["type"], "realtime");
        assert_eq!(
            parse_calls_body("text/plain", b"v=0"),
            Err(CallsBodyError::UnsupportedContentType("text/plain".into()))
        );
        assert_eq!(
            parse_calls_body(
                "multipart/form-data; boundary=XyZ",
                b"--XyZ\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\n{}\r\n--XyZ--",
            ),
            Err(CallsBodyError::MissingSdp)
        );
        assert_eq!(parse_calls_body("multipart/form-data; boundary=", FORM), Err(CallsBodyError::NoBoundary));
        assert_eq!(parse_calls_body("application/sdp", &[0xff, 0xfe]), Err(CallsBodyError::NotUtf8("body")));
    }

    /// Found while writing the `calls_body` fuzz target: an empty part (its delimiter right
    /// after the head's blank line) sliced its value backwards and panicked the handler.
    #[test]
    fn an_empty_part_is_empty_not_a_panic() {
        let body = b"--B\r\nContent-Disposition: form-data; name=\"sdp\"\r\n\r\n--B--";
        assert_eq!(multipart_parts(body, "B"), Ok(vec![("sdp".to_owned(), Vec::new())]));
        assert_eq!(
            parse_calls_body("multipart/form-data; boundary=B", body),
            Ok(CallsBody { sdp: String::new(), session: None })
        );
    }
}
