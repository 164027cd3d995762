//! Twilio's signed status callbacks (call and stream): the signature is checked over the URL
//! built from `PUBLIC_APP_URL` (what Twilio was given), never the request's own host, and an
//! accepted callback moves the call's status timeline.

mod common;

use common::web::*;
use contract::twilio_signature::TwilioSigner;

const PUBLIC: &str = "https://cp.example.eu";

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    serde_urlencoded::to_string(pairs).unwrap().into_bytes()
}

/// Posts `pairs` as Twilio would, with `signature` in `x-twilio-signature`.
async fn post_with_signature(
    w: &Web,
    path_and_query: &str,
    signature: String,
    pairs: &[(&str, &str)],
) -> common::Answer {
    let res = w
        .app
        .http
        .post(w.app.url(path_and_query))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(form(pairs))
        .send()
        .await
        .unwrap();
    common::Answer::of_response(res).await
}

/// Posts `pairs` signed over `signed_url` with the account's token.
async fn post_signed(
    w: &Web,
    path_and_query: &str,
    signed_url: &str,
    pairs: &[(&str, &str)],
) -> common::Answer {
    let sig = TwilioSigner::new(common::AUTH_TOKEN.as_bytes()).sign(signed_url, pairs);
    post_with_signature(w, path_and_query, sig, pairs).await
}

fn call_params<'a>(status: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("AccountSid", common::ACCOUNT_SID),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
        ("CallStatus", status),
        ("Direction", "outbound-api"),
        ("From", common::FROM),
        ("To", "+33612345678"),
    ];
    p.extend_from_slice(extra);
    p
}

#[tokio::test]
async fn signed_call_and_stream_callbacks_build_the_timeline() {
    let w = web_with(&[("PUBLIC_APP_URL", PUBLIC)]).await;
    let (call_id, _, _) = placed_call(&w, "06 12 34 56 78").await;
    let path = format!("/twilio/status?call_id={call_id}");
    for status in ["initiated", "ringing", "in-progress"] {
        let r = post_signed(&w, &path, &format!("{PUBLIC}{path}"), &call_params(status, &[])).await;
        assert_eq!(r.status, 204, "{status}: {}", r.text);
    }
    let spath = format!("/twilio/stream-status?call_id={call_id}");
    let stream = [
        ("AccountSid", common::ACCOUNT_SID),
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
        ("StreamSid", "MZ0123456789abcdef0123456789abcdef"),
        ("StreamEvent", "stream-started"),
        ("Timestamp", "2026-11-26T10:00:00Z"),
    ];
    let r = post_signed(&w, &spath, &format!("{PUBLIC}{spath}"), &stream).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let done = call_params("completed", &[("CallDuration", "42")]);
    let r = post_signed(&w, &path, &format!("{PUBLIC}{path}"), &done).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let id = call_id.parse().unwrap();
    let timeline = w.app.app.storage.store.status_timeline(id).await.unwrap();
    assert_eq!(timeline, ["queued", "initiated", "ringing", "in-progress", "stream-started", "completed"]);
    assert_eq!(w.app.app.storage.store.get_call(id).await.unwrap().unwrap().status, "completed");
}

#[tokio::test]
async fn bad_or_misplaced_signatures_are_refused() {
    let w = web_with(&[("PUBLIC_APP_URL", PUBLIC)]).await;
    let (call_id, _, _) = placed_call(&w, "06 12 34 56 78").await;
    let path = format!("/twilio/status?call_id={call_id}");
    let params = call_params("ringing", &[]);

    // Signed over the address the request reached (a proxy's view), not PUBLIC_APP_URL.
    let r = post_signed(&w, &path, &w.app.url(&path), &params).await;
    assert_eq!((r.status, r.code()), (403, "signature_invalid"), "{}", r.text);
    // Signed with another token.
    let sig = TwilioSigner::new(b"not-the-token").sign(&format!("{PUBLIC}{path}"), &params);
    assert_eq!(post_with_signature(&w, &path, sig, &params).await.status, 403);
    // A parameter changed after signing.
    let sig = TwilioSigner::new(common::AUTH_TOKEN.as_bytes()).sign(&format!("{PUBLIC}{path}"), &params);
    let tampered = call_params("completed", &[]);
    assert_eq!(post_with_signature(&w, &path, sig, &tampered).await.status, 403);
    // No signature at all.
    let r = w.app.post_raw(&path, None, "application/x-www-form-urlencoded", form(&params)).await;
    assert_eq!((r.status, r.code()), (401, "signature_missing"));
    // Another account's callback, correctly signed with our token (token reuse across accounts).
    let mut other = call_params("ringing", &[]);
    other[0] = ("AccountSid", "ACffffffffffffffffffffffffffffffff");
    let r = post_signed(&w, &path, &format!("{PUBLIC}{path}"), &other).await;
    assert_eq!((r.status, r.code()), (403, "account_mismatch"));
    // No call id, or an unknown one.
    let r = post_signed(&w, "/twilio/status", &format!("{PUBLIC}/twilio/status"), &params).await;
    assert_eq!((r.status, r.code()), (400, "call_id_missing"));
    let unknown = format!("/twilio/status?call_id={}", uuid::Uuid::new_v4());
    let r = post_signed(&w, &unknown, &format!("{PUBLIC}{unknown}"), &params).await;
    assert_eq!((r.status, r.code()), (404, "call_unknown"), "{}", r.text);
    let timeline = w.app.app.storage.store.status_timeline(call_id.parse().unwrap()).await.unwrap();
    assert_eq!(timeline, ["queued"], "nothing refused reached the timeline");
}
