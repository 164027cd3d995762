//! `callway_sim_openai::live_body`: the body of `POST /v1/live/sessions` (GPT-Live over WebRTC,
//! JSON `{session, transport:{type:"webrtc", sdp}}`) as the OpenAI simulator reads it, and
//! `calls_body::reachable_candidates`, the offer filter both WebRTC endpoints apply before
//! str0m sees an offer.
//!
//! Input: byte 0 picks the mode.
//! - 0 mod 3, raw: the next byte picks a `Content-Type` (JSON, JSON with a charset, SDP, or a
//!   line taken from the input), the rest is the body. Never a panic; an accepted body has a
//!   non-empty offer, came with a JSON content type, and written again as JSON reads back the
//!   same.
//! - 1 mod 3, generated: an arbitrary session (a JSON string of the input, or an object
//!   holding it), `transport.type` and `sdp`, written as the control plane writes them; the
//!   verdict must be the one the values call for (a type other than `webrtc` refused, an empty
//!   offer refused, else exactly what was sent).
//! - 2 mod 3, the offer filter on arbitrary text: never a panic; what it keeps is a
//!   subsequence of the input's lines, in order, every candidate line kept names an IP
//!   address, every other line is kept, and filtering again changes nothing.
#![no_main]

use arbitrary::{Result, Unstructured};
use callway_sim_openai::calls_body::reachable_candidates;
use callway_sim_openai::live_body::{LiveBodyError, LiveSessionsBody, parse_live_sessions_body};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn raw(u: &mut Unstructured<'_>) -> Result<()> {
    let ct = match u.int_in_range(0..=3u8)? {
        0 => "application/json".to_owned(),
        1 => "application/json; charset=utf-8".to_owned(),
        2 => "application/sdp".to_owned(),
        _ => {
            let n = u.int_in_range(0..=40usize)?;
            String::from_utf8_lossy(u.bytes(n)?).into_owned()
        }
    };
    let body = u.bytes(u.len())?;
    if let Ok(b) = parse_live_sessions_body(&ct, body) {
        assert!(!b.sdp.is_empty());
        assert!(ct.trim_start().to_ascii_lowercase().starts_with("application/json"), "{ct:?}");
        let again = json!({"session": b.session, "transport": {"type": "webrtc", "sdp": b.sdp}});
        let again = parse_live_sessions_body("application/json", again.to_string().as_bytes());
        assert_eq!(again.as_ref(), Ok(&b));
    }
    Ok(())
}

fn generated(u: &mut Unstructured<'_>) -> Result<()> {
    let text: String = u.arbitrary()?;
    let session = if u.arbitrary()? { Value::String(text) } else { json!({"model": text}) };
    let kind: String = if u.arbitrary()? { "webrtc".into() } else { u.arbitrary()? };
    let sdp: String = u.arbitrary()?;
    let body = json!({"session": session, "transport": {"type": kind, "sdp": sdp}}).to_string();
    let got = parse_live_sessions_body("application/json", body.as_bytes());
    let want = if kind != "webrtc" {
        Err(LiveBodyError::UnsupportedTransport(Value::String(kind).to_string()))
    } else if sdp.is_empty() {
        Err(LiveBodyError::InvalidSdp)
    } else {
        Ok(LiveSessionsBody { session, sdp })
    };
    assert_eq!(got, want);
    Ok(())
}

fn filter(u: &mut Unstructured<'_>) -> Result<()> {
    let sdp = String::from_utf8_lossy(u.bytes(u.len())?).into_owned();
    let kept = reachable_candidates(&sdp);
    let mut input = sdp.split_inclusive('\n');
    for line in kept.split_inclusive('\n') {
        assert!(input.any(|l| l == line), "{line:?} is not one of the input's lines, in order");
        if let Some(c) = line.trim_end().strip_prefix("a=candidate:") {
            let addr = c.split(' ').nth(4).unwrap_or_default();
            assert!(addr.parse::<std::net::IpAddr>().is_ok(), "{line:?}");
        }
    }
    let non_candidates = |s: &str| s.split_inclusive('\n').filter(|l| !l.starts_with("a=candidate:")).count();
    assert_eq!(non_candidates(&kept), non_candidates(&sdp));
    assert_eq!(reachable_candidates(&kept), kept);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = match u.arbitrary::<u8>().unwrap_or(0) % 3 {
        0 => raw(&mut u),
        1 => generated(&mut u),
        _ => filter(&mut u),
    };
});
