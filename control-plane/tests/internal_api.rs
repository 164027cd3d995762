//! The gateway's internal API: HMAC authentication on every route, single-use stream-token
//! redemption, the phone tools (`save_lead` correction, `end_call` → Twilio hang-up) and call
//! event batches.

mod common;

use common::recorder::Reply;
use common::web::*;
use contract::internal_api::{REDEEM_PATH, SIGNATURE_HEADER, TIMESTAMP_HEADER, events_path, tool_path};
use serde_json::json;

#[tokio::test]
async fn a_stream_token_is_redeemed_once_for_the_call_context() {
    let w = web().await;
    let (call_id, lead_id, token) = placed_call(&w, "06 12 34 56 78").await;
    let body = json!({"token": token, "call_sid": "CA0123456789abcdef0123456789abcdef"});
    let r = w.app.post_internal(REDEEM_PATH, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.json["call_id"].as_str(), r.json["lead_id"].as_str()),
        (Some(call_id.as_str()), Some(lead_id.as_str()))
    );
    assert_eq!(r.json["first_name"], "Claire");
    assert_eq!(r.json["language"], "fr");
    let instructions = r.json["instructions"].as_str().unwrap();
    assert!(
        instructions.contains("Claire") && instructions.contains("prise de rendez-vous"),
        "{instructions}"
    );
    let again = w.app.post_internal(REDEEM_PATH, &body).await;
    assert_eq!((again.status, again.code()), (409, "token_already_redeemed"));
}

/// `trigger_call` with the page's transcript beside the model's arguments: (call id, token).
async fn placed_with_transcript(w: &Web, phone: &str, transcript: serde_json::Value) -> (String, String) {
    let (cap, lead_id) = saved(w, phone).await;
    w.twilio.script([Reply::new(201, CALL_RESOURCE)]);
    let mut body = trigger(&lead_id);
    body["transcript"] = transcript;
    let r = w.app.post_json("/api/tools/trigger_call", Some(&cap), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let reqs = w.twilio.take();
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&reqs[0].body).unwrap();
    let (url, _, _) = stream_of(&form.iter().find(|(k, _)| k == "Twiml").unwrap().1);
    (r.json["call_id"].as_str().unwrap().to_owned(), url.rsplit('/').next().unwrap().to_owned())
}

#[tokio::test]
async fn the_web_conversation_reaches_the_gateways_that_read_it_bounded_to_its_latest_lines() {
    let w = web().await;
    // 70 lines and a blank one: the 64 most recent non-blank lines are kept, in order.
    let mut lines: Vec<serde_json::Value> = (0..70)
        .map(
            |i| json!({"speaker": if i % 2 == 0 { "agent" } else { "caller" }, "text": format!("ligne {i}")}),
        )
        .collect();
    lines.push(json!({"speaker": "caller", "text": "   "}));
    let (_, token) = placed_with_transcript(&w, "06 12 34 56 78", json!(lines)).await;
    let r = w.app.post_internal_as_version(REDEEM_PATH, &json!({"token": token}), 2).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = r.json["web_transcript"].as_array().unwrap();
    assert_eq!(got.len(), 64);
    assert_eq!(got[0], json!({"speaker": "agent", "text": "ligne 6"}));
    assert_eq!(got[63], json!({"speaker": "caller", "text": "ligne 69"}));

    // A gateway that does not announce version 2 (an older release) never gets the field: it
    // would refuse the whole context.
    let (_, token) =
        placed_with_transcript(&w, "06 98 76 54 32", json!([{"speaker": "agent", "text": "Bonjour"}])).await;
    let r = w.app.post_internal(REDEEM_PATH, &json!({"token": token})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json.get("web_transcript").is_none(), "{}", r.json);
    let ctx: contract::internal_api::CallContext = serde_json::from_value(r.json).unwrap();
    assert!(ctx.web_transcript.is_empty());
}

#[tokio::test]
async fn a_transcript_of_the_wrong_shape_is_refused_with_a_clear_error() {
    let w = web().await;
    let (cap, lead_id) = saved(&w, "06 12 34 56 78").await;
    let mut body = trigger(&lead_id);
    body["transcript"] = json!([{"speaker": "robot", "text": "bip"}]);
    let r = w.app.post_json("/api/tools/trigger_call", Some(&cap), &body).await;
    assert_eq!((r.status, r.code()), (422, "invalid_body"), "{}", r.text);
    assert!(r.text.contains("robot"), "the error names the bad value: {}", r.text);
    assert!(w.twilio.take().is_empty(), "no call placed");
}

#[tokio::test]
async fn redemption_refuses_forged_expired_and_unknown_tokens() {
    let w = web().await;
    let (_, _, token) = placed_call(&w, "06 12 34 56 78").await;
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    // Another tag with the same canonical padding bits (the tag's last base64url character
    // carries 4 bits and two zero bits: 'A' and 'E' both keep them zero), so the token stays
    // well-formed and only its signature is wrong ('B' after an 'A' made it malformed, 1 run
    // in 16).
    forged.push(if last == 'A' { 'E' } else { 'A' });
    let r = w.app.post_internal(REDEEM_PATH, &json!({"token": forged})).await;
    assert_eq!((r.status, r.code()), (401, "token_invalid"), "{}", r.text);
    let r = w.app.post_internal(REDEEM_PATH, &json!({"token": "v1.not-a-token"})).await;
    assert_eq!((r.status, r.code()), (400, "token_malformed"));
    let minter =
        contract::stream_token::StreamTokenMinter::new(common::STREAM_TOKEN_SECRET.as_bytes()).unwrap();
    let claims = |expires_at| contract::stream_token::StreamClaims {
        call_id: *uuid::Uuid::new_v4().as_bytes(),
        lead_id: *uuid::Uuid::new_v4().as_bytes(),
        expires_at,
        nonce: [7; 12],
    };
    let r = w.app.post_internal(REDEEM_PATH, &json!({"token": minter.mint(&claims(1_000))})).await;
    assert_eq!((r.status, r.code()), (410, "token_expired"));
    let valid_unknown = minter.mint(&claims(callway_control::routes::now_secs() + 60));
    let r = w.app.post_internal(REDEEM_PATH, &json!({"token": valid_unknown})).await;
    assert_eq!((r.status, r.code()), (404, "token_unknown"));
    let r = w.app.post_internal(REDEEM_PATH, &json!({"token": token, "extra": 1})).await;
    assert_eq!((r.status, r.code()), (422, "invalid_body"));
}

/// The control plane during a rotation of both secrets (`deploy/RUNBOOK.md`, rotating
/// secrets): gateways signing internal requests with the previous `INTERNAL_API_SECRET` or the
/// new one are served, a third secret is not; stream tokens minted before the control plane
/// moved to the new `STREAM_TOKEN_SECRET` still redeem, the new ones too.
#[tokio::test]
async fn during_a_rotation_the_previous_secrets_are_accepted_and_a_third_is_not() {
    const NEW_TOKEN_SECRET: &str = "rotated-stream-token-secret-0123456789abcdef";
    const NEW_INTERNAL_SECRET: &str = "rotated-internal-api-secret-0123456789abcdef";
    let w = web_with(&[
        ("STREAM_TOKEN_SECRET", NEW_TOKEN_SECRET),
        ("STREAM_TOKEN_SECRET_PREVIOUS", common::STREAM_TOKEN_SECRET),
        ("INTERNAL_API_SECRET", NEW_INTERNAL_SECRET),
        ("INTERNAL_API_SECRET_PREVIOUS", common::INTERNAL_API_SECRET),
    ])
    .await;
    // A token the control plane minted now (new secret), redeemed by a gateway still on the
    // previous internal secret, then by one on the new secret (already redeemed: 409, so
    // the signature passed).
    let (call_id, _, token) = placed_call(&w, "06 12 34 56 78").await;
    let body = json!({"token": token, "call_sid": "CA0123456789abcdef0123456789abcdef"});
    let r = w.app.post_internal_signed(REDEEM_PATH, &body, common::INTERNAL_API_SECRET).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["call_id"].as_str(), Some(call_id.as_str()));
    let r = w.app.post_internal_signed(REDEEM_PATH, &body, NEW_INTERNAL_SECRET).await;
    assert_eq!((r.status, r.code()), (409, "token_already_redeemed"), "{}", r.text);
    let r = w.app.post_internal_signed(REDEEM_PATH, &body, "a-third-internal-secret-0123456789abcdef").await;
    assert_eq!(r.status, 401, "{}", r.text);

    // Tokens of the previous stream-token secret pass the signature check (unknown call: 404);
    // a third secret's do not (401).
    let claims = contract::stream_token::StreamClaims {
        call_id: *uuid::Uuid::new_v4().as_bytes(),
        lead_id: *uuid::Uuid::new_v4().as_bytes(),
        expires_at: callway_control::routes::now_secs() + 60,
        nonce: [7; 12],
    };
    for (secret, want) in [
        (common::STREAM_TOKEN_SECRET, (404, "token_unknown")),
        (NEW_TOKEN_SECRET, (404, "token_unknown")),
        ("a-third-stream-token-secret-0123456789abcdef", (401, "token_invalid")),
    ] {
        let minted = contract::stream_token::StreamTokenMinter::new(secret.as_bytes()).unwrap().mint(&claims);
        let r = w.app.post_internal(REDEEM_PATH, &json!({"token": minted})).await;
        assert_eq!((r.status, r.code()), want, "{secret}: {}", r.text);
    }
}

#[tokio::test]
async fn every_internal_route_requires_the_hmac() {
    let w = web().await;
    let (call_id, _, token) = placed_call(&w, "06 12 34 56 78").await;
    let body = serde_json::to_vec(&json!({"token": token})).unwrap();
    let now = callway_control::routes::now_secs();
    let good = contract::internal_api::InternalAuth::new(common::INTERNAL_API_SECRET.as_bytes());
    let bad = contract::internal_api::InternalAuth::new(b"some-other-secret-some-other-secret!");
    let cases = [
        (None, None, "auth_malformed"),
        (Some(now.to_string()), Some(bad.sign(now, "POST", REDEEM_PATH, &body)), "bad_signature"),
        (Some(now.to_string()), Some(good.sign(now, "POST", "/internal/v1/other", &body)), "bad_signature"),
        (
            Some((now - 3600).to_string()),
            Some(good.sign(now - 3600, "POST", REDEEM_PATH, &body)),
            "stale_timestamp",
        ),
    ];
    for (ts, sig, code) in cases {
        let mut req = w
            .app
            .http
            .post(w.app.url(REDEEM_PATH))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(ts) = ts {
            req = req.header(TIMESTAMP_HEADER, ts);
        }
        if let Some(sig) = sig {
            req = req.header(SIGNATURE_HEADER, sig);
        }
        let r = common::Answer::of_response(req.send().await.unwrap()).await;
        assert_eq!((r.status, r.code()), (401, code), "{}", r.text);
    }
    for path in [tool_path(&call_id, "end_call"), events_path(&call_id)] {
        let r = w.app.post_raw(&path, None, "application/json", b"{}".to_vec()).await;
        assert_eq!(r.status, 401, "{path}");
    }
    // The token was never redeemed by any of these.
    assert_eq!(w.app.post_internal(REDEEM_PATH, &json!({"token": token})).await.status, 200);
}

#[tokio::test]
async fn phone_tools_correct_the_lead_and_end_the_call_for_real() {
    let w = web().await;
    let (call_id, lead_id, token) = placed_call(&w, "06 12 34 56 78").await;
    assert_eq!(w.app.post_internal(REDEEM_PATH, &json!({"token": token})).await.status, 200);
    let args = json!({"last_name": "Durand", "phone": "06 98 76 54 32"}).to_string();
    let r = w
        .app
        .post_internal(
            &tool_path(&call_id, "save_lead"),
            &json!({"tool_call_id": "call_1", "arguments": args}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["ok"], true, "{}", r.text);
    let out: serde_json::Value = serde_json::from_str(r.json["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["phone_e164"], "+33698765432");
    let lead = w.app.app.storage.store.get_lead(lead_id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!((lead.last_name.as_str(), lead.phone_e164.as_str()), ("Durand", "+33698765432"));

    let bad = json!({"phone": "06 12"}).to_string();
    let r = w
        .app
        .post_internal(
            &tool_path(&call_id, "save_lead"),
            &json!({"tool_call_id": "call_2", "arguments": bad}),
        )
        .await;
    assert_eq!((r.status, r.json["ok"].as_bool()), (200, Some(false)), "a refusal the model can say back");
    assert!(r.json["output"].as_str().unwrap().contains("semble incomplet"));

    w.twilio.script([Reply::new(200, CALL_RESOURCE)]);
    let r = w
        .app
        .post_internal(
            &tool_path(&call_id, "end_call"),
            &json!({"tool_call_id": "call_3", "arguments": "{}"}),
        )
        .await;
    assert_eq!((r.status, r.json["ok"].as_bool()), (200, Some(true)), "{}", r.text);
    let reqs = w.twilio.take();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].path,
        format!("/2010-04-01/Accounts/{}/Calls/CA0123456789abcdef0123456789abcdef.json", common::ACCOUNT_SID)
    );
    assert_eq!(&reqs[0].body[..], b"Status=completed");

    let r = w
        .app
        .post_internal(&tool_path(&call_id, "teleport"), &json!({"tool_call_id": "c", "arguments": "{}"}))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = w
        .app
        .post_internal(
            &tool_path(&uuid::Uuid::new_v4().to_string(), "end_call"),
            &json!({"tool_call_id": "c", "arguments": "{}"}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);

    // Each tool call and its result is on the call's record, without the values themselves.
    let record = callway_control::record::read::call(
        &w.app.app.storage.store,
        call_id.parse().unwrap(),
        callway_control::record::Numbers::Masked,
    )
    .await
    .unwrap()
    .unwrap();
    let tools: Vec<(&str, Option<&str>)> = record
        .timeline
        .iter()
        .filter(|t| t.kind == "tool")
        .map(|t| (t.what.as_str(), t.detail.as_deref()))
        .collect();
    assert_eq!(tools.len(), 3, "{tools:?}");
    assert_eq!(tools[0], ("save_lead", Some("ok: last name, number corrected")));
    assert_eq!(tools[1].0, "save_lead");
    assert!(tools[1].1.unwrap().starts_with("refused: "), "{tools:?}");
    assert_eq!(tools[2].0, "hangup-requested");
    assert!(!format!("{tools:?}").contains("698765432"), "no number on the timeline");
}

#[tokio::test]
async fn call_events_are_stored_idempotently() {
    let w = web().await;
    let (call_id, _, _) = placed_call(&w, "06 12 34 56 78").await;
    let batch = json!({"seq": 0, "events": [
        {"kind": "transcript", "speaker": "agent", "text": "Bonjour Claire, c'est Claire de Callway.", "at_ms": 300},
        {"kind": "usage", "response_id": "resp_1", "input_tokens": 1200, "output_tokens": 300},
        {"kind": "ended", "side": "twilio", "reason": "caller_hung_up", "duration_ms": 95000}
    ]});
    for _ in 0..2 {
        let r = w.app.post_internal(&events_path(&call_id), &batch).await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
    let row = w.app.app.storage.store.get_call(call_id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!((row.input_tokens, row.output_tokens), (1200, 300), "a retried batch is not counted twice");
    assert_eq!(row.end_reason.as_deref(), Some("caller_hung_up"));
    let r =
        w.app.post_internal(&events_path(&call_id), &json!({"seq": 3, "events": [{"kind": "laugh"}]})).await;
    assert_eq!((r.status, r.code()), (422, "invalid_body"));
    let r = w
        .app
        .post_internal(&events_path(&uuid::Uuid::new_v4().to_string()), &json!({"seq": 0, "events": []}))
        .await;
    assert_eq!((r.status, r.code()), (404, "call_unknown"));
    let r = w.app.post_internal(&events_path("not-a-uuid"), &json!({"seq": 0, "events": []})).await;
    assert_eq!((r.status, r.code()), (400, "call_id_invalid"));
    let huge: Vec<_> = (0..5000)
        .map(|i| json!({"kind": "transcript", "speaker": "caller", "text": "x".repeat(100), "at_ms": i}))
        .collect();
    let r = w.app.post_internal(&events_path(&call_id), &json!({"seq": 10, "events": huge})).await;
    assert_eq!((r.status, r.code()), (413, "body_too_large"));
}
