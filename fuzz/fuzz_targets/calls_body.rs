//! `callway_sim_openai::calls_body`: the body of `POST /v1/realtime/calls` (`application/sdp`,
//! or `multipart/form-data` with `sdp` and `session` parts) as the OpenAI simulator reads it.
//!
//! Input: byte 0 picks the mode.
//! - Even: raw. The next byte picks a `Content-Type` (SDP, multipart with a fixed boundary,
//!   quoted, with extra parameters, without one, or a line taken from the input), the rest is
//!   the body. Never a panic; an accepted SDP body is the bytes as sent; an accepted multipart
//!   body, written again with a boundary found nowhere in its values, reads back the same
//!   (its `session` is the JSON of what was sent). With the fixed boundary the verdict follows
//!   `multipart_parts`: its refusal, or what its parts call for (first bad part refused, `sdp`
//!   required, no other name).
//! - Odd: generated. Arbitrary `sdp` and `session` values and part order are written as a
//!   browser writes a form (CRLF, a boundary absent from the values); it must read back
//!   exactly: the sdp as sent, the session as JSON, and the refusal (not UTF-8, not JSON) the
//!   one the values call for, the first bad part deciding.
#![no_main]

use arbitrary::{Result, Unstructured};
use callway_sim_openai::calls_body::{CallsBody, CallsBodyError, multipart_parts, parse_calls_body};
use libfuzzer_sys::fuzz_target;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A form body of `parts` with `boundary`, as browsers write one.
fn form(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in parts {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n").as_bytes(),
        );
        if *name == "session" {
            out.extend_from_slice(b"Content-Type: application/json\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// A boundary that occurs in none of `values`.
fn fresh_boundary(values: &[&[u8]]) -> String {
    (0u32..)
        .map(|i| format!("----callwayFuzzBoundary{i:08x}"))
        .find(|b| values.iter().all(|v| !contains(v, b.as_bytes())))
        .expect("some boundary is free")
}

/// What a form of these parts must read as: parts in order, the first bad one refused, the
/// last `sdp` and `session` kept, `sdp` required.
fn expected(parts: &[(String, Vec<u8>)]) -> std::result::Result<CallsBody, CallsBodyError> {
    let (mut sdp, mut session) = (None, None);
    for (name, value) in parts {
        match name.as_str() {
            "sdp" => {
                sdp = Some(String::from_utf8(value.clone()).map_err(|_| CallsBodyError::NotUtf8("sdp"))?)
            }
            "session" => {
                session = Some(
                    serde_json::from_slice(value)
                        .map_err(|e| CallsBodyError::SessionNotJson(e.to_string()))?,
                )
            }
            other => return Err(CallsBodyError::UnknownPart(other.to_owned())),
        }
    }
    Ok(CallsBody { sdp: sdp.ok_or(CallsBodyError::MissingSdp)?, session })
}

fn raw(mut u: Unstructured<'_>) -> Result<()> {
    let pick: u8 = u.arbitrary()?;
    let content_type = match pick % 7 {
        0 => "application/sdp".to_owned(),
        1 => "multipart/form-data; boundary=XyZ".to_owned(),
        2 => "multipart/form-data; boundary=\"XyZ\"".to_owned(),
        3 => "Multipart/Form-Data; charset=utf-8; BOUNDARY=XyZ".to_owned(),
        4 => "multipart/form-data".to_owned(),
        5 => "APPLICATION/SDP; charset=utf-8".to_owned(),
        _ => {
            // A content type from the input itself: up to the first newline.
            let line: &str = u.arbitrary()?;
            line.split('\n').next().unwrap_or_default().to_owned()
        }
    };
    let body = u.take_rest();
    let result = parse_calls_body(&content_type, body);
    let mime = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match &result {
        Ok(b) if mime == "application/sdp" => {
            assert_eq!(b.sdp.as_bytes(), body, "an SDP body is taken as sent");
            assert!(b.session.is_none());
        }
        Ok(b) => {
            assert_eq!(mime, "multipart/form-data", "only the two content types are read: {content_type:?}");
            let session = b.session.as_ref().map(|s| serde_json::to_vec(s).expect("JSON writes"));
            let mut parts: Vec<(&str, &[u8])> = vec![("sdp", b.sdp.as_bytes())];
            if let Some(s) = &session {
                parts.push(("session", s));
            }
            let values: Vec<&[u8]> = parts.iter().map(|(_, v)| *v).collect();
            let boundary = fresh_boundary(&values);
            let again = form(&boundary, &parts);
            let ct = format!("multipart/form-data; boundary={boundary}");
            assert_eq!(parse_calls_body(&ct, &again).as_ref(), Ok(b), "written again, read the same");
        }
        Err(CallsBodyError::UnsupportedContentType(ct)) => {
            assert_eq!(ct, &content_type);
            assert!(mime != "application/sdp" && mime != "multipart/form-data");
        }
        Err(_) => {}
    }
    if (1..=3).contains(&(pick % 7)) {
        // The verdict on structure is the part reader's.
        match multipart_parts(body, "XyZ") {
            Err(e) => assert_eq!(result, Err(e)),
            Ok(parts) => assert_eq!(result, expected(&parts), "the parts decide"),
        }
    }
    Ok(())
}

fn generated(u: &mut Unstructured<'_>) -> Result<()> {
    let sdp: Vec<u8> = u.arbitrary()?;
    let session: Option<Vec<u8>> = u.arbitrary()?;
    let session_first: bool = u.arbitrary()?;
    let mut parts: Vec<(&str, &[u8])> = vec![("sdp", &sdp)];
    if let Some(s) = &session {
        parts.push(("session", s));
        if session_first {
            parts.swap(0, 1);
        }
    }
    let values: Vec<&[u8]> = parts.iter().map(|(_, v)| *v).collect();
    let boundary = fresh_boundary(&values);
    let body = form(&boundary, &parts);
    let got = parse_calls_body(&format!("multipart/form-data; boundary=\"{boundary}\""), &body);
    let owned: Vec<(String, Vec<u8>)> = parts.iter().map(|(n, v)| ((*n).to_owned(), v.to_vec())).collect();
    let want = expected(&owned);
    if let Ok(b) = &want {
        assert_eq!(b.sdp.as_bytes(), sdp.as_slice());
    }
    assert_eq!(got, want, "a browser's form reads back exactly");
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut u = Unstructured::new(rest);
    let _ = if mode & 1 == 0 { raw(u) } else { generated(&mut u) };
});
