//! The browser-side routes, end to end over HTTP against a running control plane (SQLite
//! storage; the Postgres path of the same routes runs in `outbox.rs` and `with_simulators.rs`).
//! OpenAI and Twilio are recording endpoints here, so each upstream request is checked exactly
//! and each documented upstream error can be replayed.

mod common;

use common::recorder::Reply;
use common::web::*;
use contract::stream_token::StreamTokenVerifier;
use serde_json::{Value, json};

#[tokio::test]
async fn session_returns_an_ephemeral_secret_and_a_capability_never_the_key() {
    let w = web().await;
    w.openai.script([Reply::new(
        200,
        r#"{"value":"ek_68af0123","expires_at":1790000000,"session":{"type":"realtime","model":"gpt-realtime"}}"#,
    )]);
    let r = w.app.post_raw("/api/session", None, "application/json", b"{}".to_vec()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["client_secret"]["value"], "ek_68af0123");
    assert!(r.json["capability"].as_str().unwrap().len() > 40);
    assert!(!r.text.contains("sk-test-key"), "the long-lived key never reaches the browser");
    let reqs = w.openai.take();
    assert_eq!(reqs.len(), 1);
    let q = &reqs[0];
    assert_eq!((q.method.as_str(), q.path.as_str()), ("POST", "/v1/realtime/client_secrets"));
    assert_eq!(q.header("authorization"), Some("Bearer sk-test-key"));
    assert_eq!(q.header("openai-beta"), None, "GA only");
    let body = q.json();
    assert_eq!(body["expires_after"], json!({"anchor": "created_at", "seconds": 600}));
    assert_eq!(body["session"]["type"], "realtime");
    let tools: Vec<&str> =
        body["session"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tools, ["save_lead", "trigger_call"]);
    assert!(
        body["session"]["tools"][1]["parameters"]["required"].as_array().unwrap().contains(&json!("summary"))
    );
    // The capability works on the tool routes.
    let cap = r.json["capability"].as_str().unwrap();
    let s = w.app.post_json("/api/tools/save_lead", Some(cap), &lead_body("06 12 34 56 78")).await;
    assert_eq!(s.status, 200, "{}", s.text);
}

#[tokio::test]
async fn session_maps_openai_failures_to_clear_answers() {
    let w = web().await;
    let err = r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
    w.openai.script([Reply::new(401, err), Reply::new(429, err), Reply::new(500, err)]);
    for (status, code) in
        [(502, "openai_auth_failed"), (503, "openai_rate_limited"), (502, "openai_unavailable")]
    {
        let r = w.app.post_raw("/api/session", None, "application/json", b"{}".to_vec()).await;
        assert_eq!((r.status, r.code()), (status, code), "{}", r.text);
        assert!(r.json["message"].as_str().unwrap().contains("indisponible"));
    }
}

#[tokio::test]
async fn session_is_rate_limited_per_ip() {
    let w = web().await;
    let ok = r#"{"value":"ek_1","expires_at":1790000000,"session":{}}"#;
    w.openai.script((0..30).map(|_| Reply::new(200, ok)));
    for _ in 0..30 {
        assert_eq!(
            w.app.post_raw("/api/session", None, "application/json", b"{}".to_vec()).await.status,
            200
        );
    }
    let r = w.app.post_raw("/api/session", None, "application/json", b"{}".to_vec()).await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"));
    assert!(r.headers.get("retry-after").is_some());
    assert_eq!(w.openai.take().len(), 30, "a limited request costs no OpenAI call");
}

#[tokio::test]
async fn save_lead_stores_e164_and_is_idempotent_per_session() {
    let w = web().await;
    let (_, cap) = w.app.capability();
    let a = w.app.post_json("/api/tools/save_lead", Some(&cap), &lead_body("06 12 34 56 78")).await;
    let b = w.app.post_json("/api/tools/save_lead", Some(&cap), &lead_body("+33 6 12 34 56 78")).await;
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.text, b.text);
    assert_eq!(a.json["phone_e164"], "+33612345678");
    assert_eq!(a.json["lead_id"], b.json["lead_id"], "same session, same lead");
    let lead = w.app.app.storage.store.get_lead(a.json["lead_id"].as_str().unwrap().parse().unwrap()).await;
    let lead = lead.unwrap().unwrap();
    assert_eq!((lead.first_name.as_str(), lead.phone_e164.as_str()), ("Claire", "+33612345678"));
}

#[tokio::test]
async fn save_lead_follows_the_phone_vectors() {
    let w = web().await;
    // testing.md, default region FR. Premium and foreign numbers are valid leads: trigger_call refuses them.
    let cases: &[(&str, Result<&str, &str>)] = &[
        ("06 12 34 56 78", Ok("+33612345678")),
        ("+33 (0)6 12 34 56 78", Ok("+33612345678")),
        ("0033612345678", Ok("+33612345678")),
        ("tel:+33-6-12-34-56-78", Ok("+33612345678")),
        ("01 23 45 67 89", Ok("+33123456789")),
        ("0800 123 456", Ok("+33800123456")),
        ("0899 12 34 56", Ok("+33899123456")),
        ("0820 12 34 56", Ok("+33820123456")),
        ("+1 202 555 0143", Ok("+12025550143")),
        ("+44 909 8790000", Ok("+449098790000")),
        ("06 12 34 56", Err("phone_invalid")),
        ("0690 12 34 56", Err("phone_invalid")),
        ("abc", Err("phone_unreadable")),
        ("", Err("phone_unreadable")),
    ];
    for (input, want) in cases {
        let (_, cap) = w.app.capability();
        let r = w.app.post_json("/api/tools/save_lead", Some(&cap), &lead_body(input)).await;
        match want {
            Ok(e164) => assert_eq!(
                (r.status, r.json["phone_e164"].as_str()),
                (200, Some(*e164)),
                "{input}: {}",
                r.text
            ),
            Err(code) => {
                assert_eq!((r.status, r.code()), (422, *code), "{input}: {}", r.text);
                assert!(!r.json["message"].as_str().unwrap().is_empty());
            }
        }
    }
    let (_, cap) = w.app.capability();
    let r = w.app.post_json("/api/tools/save_lead", Some(&cap), &lead_body("06 12 34 56")).await;
    assert!(r.json["message"].as_str().unwrap().contains("semble incomplet"), "{}", r.text);
}

#[tokio::test]
async fn save_lead_refuses_bad_input_with_precise_errors() {
    let w = web().await;
    let (_, cap) = w.app.capability();
    let ok = lead_body("06 12 34 56 78");
    let r = w.app.post_json("/api/tools/save_lead", None, &ok).await;
    assert_eq!((r.status, r.code()), (401, "capability_missing"), "{}", r.text);
    let mut forged = cap.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let r = w.app.post_json("/api/tools/save_lead", Some(&forged), &ok).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let expired = w.app.app.capabilities.mint(uuid::Uuid::new_v4(), 1);
    let r = w.app.post_json("/api/tools/save_lead", Some(&expired), &ok).await;
    assert_eq!((r.status, r.code()), (401, "capability_expired"), "{}", r.text);
    let r = w
        .app
        .post_raw("/api/tools/save_lead", Some(&cap), "application/json", b"{\"first_name\":".to_vec())
        .await;
    assert_eq!((r.status, r.code()), (400, "malformed_json"));
    let r =
        w.app.post_raw("/api/tools/save_lead", Some(&cap), "text/plain", ok.to_string().into_bytes()).await;
    assert_eq!((r.status, r.code()), (415, "unsupported_media_type"));
    let big = vec![b' '; 64 * 1024];
    let r = w.app.post_raw("/api/tools/save_lead", Some(&cap), "application/json", big).await;
    assert_eq!((r.status, r.code()), (413, "body_too_large"));
    let mut extra = ok.clone();
    extra["role"] = json!("admin");
    let r = w.app.post_json("/api/tools/save_lead", Some(&cap), &extra).await;
    assert_eq!((r.status, r.code()), (422, "invalid_body"));
    let r = w.app.post_json("/api/tools/save_lead", Some(&cap), &json!({"first_name": "A"})).await;
    assert_eq!((r.status, r.code()), (422, "invalid_body"));
    let mut no_consent = ok.clone();
    no_consent["consent"] = json!(false);
    let r = w.app.post_json("/api/tools/save_lead", Some(&cap), &no_consent).await;
    assert_eq!((r.status, r.code()), (422, "consent_required"));
    let mut blank = ok.clone();
    blank["first_name"] = json!("   ");
    let r = w.app.post_json("/api/tools/save_lead", Some(&cap), &blank).await;
    assert_eq!((r.status, r.code()), (422, "first_name_invalid"));
    let mut long = ok.clone();
    long["last_name"] = json!("x".repeat(81));
    let r = w.app.post_json("/api/tools/save_lead", Some(&cap), &long).await;
    assert_eq!((r.status, r.code()), (422, "last_name_invalid"));
}

#[tokio::test]
async fn trigger_call_places_the_call_with_a_signed_stream_token_in_the_path() {
    let w = web().await;
    let (cap, lead_id) = saved(&w, "06 12 34 56 78").await;
    w.twilio.script([Reply::new(201, CALL_RESOURCE)]);
    let r = w.app.post_json("/api/tools/trigger_call", Some(&cap), &trigger(&lead_id)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let call_id = r.json["call_id"].as_str().unwrap().to_owned();
    assert!(r.json["message"].as_str().unwrap().contains("+33******78"), "the number is said masked");

    let reqs = w.twilio.take();
    assert_eq!(reqs.len(), 1);
    let q = &reqs[0];
    assert_eq!(q.path, format!("/2010-04-01/Accounts/{}/Calls.json", common::ACCOUNT_SID));
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        common::ACCOUNT_SID,
        common::AUTH_TOKEN
    ));
    assert_eq!(q.header("authorization"), Some(format!("Basic {basic}").as_str()));
    assert!(q.header("content-type").unwrap().starts_with("application/x-www-form-urlencoded"));
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&q.body).unwrap();
    let get = |k: &str| form.iter().filter(|(n, _)| n == k).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    assert_eq!(get("To"), ["+33612345678"]);
    assert_eq!(get("From"), [common::FROM]);
    assert_eq!(get("StatusCallbackEvent"), ["initiated", "ringing", "answered", "completed"]);
    assert_eq!(get("StatusCallback"), [format!("{}/twilio/status?call_id={call_id}", w.app.base).as_str()]);
    let twiml = get("Twiml")[0];
    assert!(twiml.len() < 4000);
    let (url, params, hangup) = stream_of(twiml);
    assert!(hangup, "the call hangs up when the stream ends");
    let token = url.strip_prefix("wss://edge.example.eu/api/twilio/media-stream/").expect(&url);
    assert!(!url.contains('?'), "Twilio refuses query strings in <Stream url>");
    assert!(token.len() <= 200);
    let v = StreamTokenVerifier::new(&[common::STREAM_TOKEN_SECRET], 0).unwrap();
    let claims = v.verify(token.as_bytes(), callway_control::routes::now_secs()).unwrap();
    assert_eq!(uuid::Uuid::from_bytes(claims.call_id).to_string(), call_id);
    assert_eq!(uuid::Uuid::from_bytes(claims.lead_id).to_string(), lead_id);
    assert!(params.contains(&("call_id".into(), call_id.clone())));

    let row = w.app.app.storage.store.get_call(call_id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.call_sid.as_deref()),
        ("queued", Some("CA0123456789abcdef0123456789abcdef"))
    );

    // One active call per lead.
    let again = w.app.post_json("/api/tools/trigger_call", Some(&cap), &trigger(&lead_id)).await;
    assert_eq!((again.status, again.code()), (409, "call_already_active"), "{}", again.text);
    assert!(w.twilio.take().is_empty());
}

#[tokio::test]
async fn trigger_call_guards_refuse_before_any_twilio_request() {
    let w = web().await;
    for (phone, code) in [
        ("0899 12 34 56", "phone_premium_rate"),
        ("0820 12 34 56", "phone_premium_rate"),
        ("+1 202 555 0143", "phone_country_not_allowed"),
        ("+44 909 8790000", "phone_premium_rate"),
        ("+44 7400 123456", "phone_country_not_allowed"), // a valid GB mobile: not in the EU allow-list
    ] {
        let (_, cap) = w.app.capability();
        let r = w.app.post_json("/api/tools/save_lead", Some(&cap), &lead_body(phone)).await;
        assert_eq!(r.status, 200, "{phone} is a valid lead: {}", r.text);
        let lead_id = r.json["lead_id"].as_str().unwrap();
        let t = w.app.post_json("/api/tools/trigger_call", Some(&cap), &trigger(lead_id)).await;
        assert_eq!((t.status, t.code()), (422, code), "{phone}: {}", t.text);
    }
    let (cap, lead_id) = saved(&w, "06 12 34 56 78").await;
    let (_, other_cap) = w.app.capability();
    let t = w.app.post_json("/api/tools/trigger_call", Some(&other_cap), &trigger(&lead_id)).await;
    assert_eq!((t.status, t.code()), (403, "lead_not_in_session"));
    let (fresh_cap, fresh_session) = {
        let (s, c) = w.app.capability();
        (c, s)
    };
    let own_lead = callway_control::capability::lead_id_for_session(fresh_session).to_string();
    let t = w.app.post_json("/api/tools/trigger_call", Some(&fresh_cap), &trigger(&own_lead)).await;
    assert_eq!((t.status, t.code()), (404, "lead_not_found"));
    let t = w
        .app
        .post_json("/api/tools/trigger_call", Some(&cap), &json!({"lead_id": lead_id, "summary": " "}))
        .await;
    assert_eq!((t.status, t.code()), (422, "summary_invalid"));
    let t = w.app.post_json("/api/tools/trigger_call", None, &trigger(&lead_id)).await;
    assert_eq!(t.status, 401);
    assert!(w.twilio.take().is_empty(), "no guard failure reaches Twilio");
}

#[tokio::test]
async fn trigger_call_maps_twilio_errors_and_retries_only_what_is_safe() {
    // Six calls from one loopback address: over the default per-IP quota, which is not under test here.
    let w = web_with(&[("RATE_LIMIT_CALLS_PER_IP_PER_HOUR", "100")]).await;
    let err = |code: u32, status: u16| {
        Reply::new(
            status,
            format!(
                r#"{{"code":{code},"message":"m","more_info":"https://www.twilio.com/docs/errors/{code}","status":{status}}}"#
            ),
        )
    };
    // Invalid number (21211): one request, a message the agent can say.
    let (cap, lead) = saved(&w, "06 12 34 56 78").await;
    w.twilio.script([err(21211, 400)]);
    let r = w.app.post_json("/api/tools/trigger_call", Some(&cap), &trigger(&lead)).await;
    assert_eq!((r.status, r.code()), (422, "twilio_invalid_number"), "{}", r.text);
    assert_eq!(w.twilio.take().len(), 1);

    // 500: ambiguous (the call may exist): never retried.
    let (cap, lead) = saved(&w, "06 12 34 56 79").await;
    w.twilio.script([err(20500, 500)]);
    let r = w.app.post_json("/api/tools/trigger_call", Some(&cap), &trigger(&lead)).await;
    assert_eq!((r.status, r.code()), (502, "twilio_unavailable"));
    assert_eq!(w.twilio.take().len(), 1, "Calls.create is not idempotent: no retry after a 5xx");

    // 429: Twilio did nothing; retried twice, then a 503 with Retry-After.
    let (cap, lead) = saved(&w, "06 12 34 56 80").await;
    w.twilio.script([err(20429, 429), err(20429, 429), err(20429, 429)]);
    let r = w.app.post_json("/api/tools/trigger_call", Some(&cap), &trigger(&lead)).await;
    assert_eq!((r.status, r.code()), (503, "twilio_rate_limited"));
    assert!(r.headers.get("retry-after").is_some());
    assert_eq!(w.twilio.take().len(), 3);

    // 429 then success: the retry places the call once.
    let (cap, lead) = saved(&w, "06 12 34 56 81").await;
    w.twilio.script([err(20429, 429), Reply::new(201, CALL_RESOURCE)]);
    let r = w.app.post_json("/api/tools/trigger_call", Some(&cap), &trigger(&lead)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(w.twilio.take().len(), 2);

    // Wrong credentials: an operator problem, said as such in the code.
    let (cap, lead) = saved(&w, "06 12 34 56 82").await;
    w.twilio.script([err(20003, 401)]);
    let r = w.app.post_json("/api/tools/trigger_call", Some(&cap), &trigger(&lead)).await;
    assert_eq!((r.status, r.code()), (502, "twilio_auth_failed"));

    // A failed create frees the lead's slot: the next attempt is not "already active".
    w.twilio.script([Reply::new(201, CALL_RESOURCE)]);
    w.twilio.take();
    let r = w.app.post_json("/api/tools/trigger_call", Some(&cap), &trigger(&lead)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn verified_numbers_mode_checks_outgoing_caller_ids_first() {
    let w = web_with(&[("TWILIO_REQUIRE_VERIFIED_NUMBERS", "1")]).await;
    let list = |numbers: &[&str]| {
        let ids: Vec<Value> = numbers
            .iter()
            .map(|n| json!({"phone_number": n, "friendly_name": n, "sid": "PN0123456789abcdef0123456789abcdef"}))
            .collect();
        Reply::new(200, json!({"outgoing_caller_ids": ids, "page": 0, "page_size": 50}).to_string())
    };
    let (cap, lead) = saved(&w, "06 12 34 56 78").await;
    w.twilio.script([list(&[])]);
    let r = w.app.post_json("/api/tools/trigger_call", Some(&cap), &trigger(&lead)).await;
    assert_eq!((r.status, r.code()), (422, "number_not_verified"), "{}", r.text);
    let reqs = w.twilio.take();
    assert_eq!(reqs.len(), 1, "refused without a Calls.create");
    assert_eq!(reqs[0].path, format!("/2010-04-01/Accounts/{}/OutgoingCallerIds.json", common::ACCOUNT_SID));
    assert!(reqs[0].query_pairs().contains(&("PhoneNumber".into(), "+33612345678".into())));

    let (cap, lead) = saved(&w, "06 12 34 56 79").await;
    w.twilio.script([list(&["+33612345679"]), Reply::new(201, CALL_RESOURCE)]);
    let r = w.app.post_json("/api/tools/trigger_call", Some(&cap), &trigger(&lead)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(w.twilio.take().len(), 2);
}

#[tokio::test]
async fn trigger_call_is_rate_limited_per_session() {
    let w = web().await;
    let (cap, lead) = saved(&w, "06 12 34 56 78").await;
    let err = Reply::new(400, r#"{"code":21211,"message":"m","more_info":"x","status":400}"#);
    w.twilio.script([err.clone(), err]);
    for _ in 0..2 {
        let r = w.app.post_json("/api/tools/trigger_call", Some(&cap), &trigger(&lead)).await;
        assert_eq!(r.status, 422);
    }
    let r = w.app.post_json("/api/tools/trigger_call", Some(&cap), &trigger(&lead)).await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"), "{}", r.text);
    assert_eq!(w.twilio.take().len(), 2);
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_content_security_policy_and_no_inline_code() {
    let w = web().await;
    let r = w.app.http.get(w.app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let csp = header("content-security-policy");
    let directives: std::collections::BTreeMap<&str, &str> =
        csp.split(';').filter_map(|d| d.trim().split_once(' ')).collect();
    let want = [
        ("default-src", "'none'".to_owned()),
        ("script-src", "'self'".to_owned()),
        ("style-src", "'self'".to_owned()),
        ("img-src", "'self'".to_owned()),
        ("media-src", "'self'".to_owned()),
        // The page's own routes and the OpenAI API it sends the SDP offer to: nothing else.
        ("connect-src", format!("'self' {}", w.openai.base)),
        ("base-uri", "'none'".to_owned()),
        ("form-action", "'self'".to_owned()),
        ("frame-ancestors", "'none'".to_owned()),
    ];
    assert_eq!(directives.len(), want.len(), "{csp}");
    for (name, value) in &want {
        assert_eq!(directives.get(name).copied(), Some(value.as_str()), "{name} in {csp}");
    }
    assert!(!csp.contains("unsafe") && !csp.contains('*') && !csp.contains("data:"), "{csp}");
    assert_eq!(header("permissions-policy"), "microphone=(self), camera=(), geolocation=()");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert!(header("content-type").starts_with("text/html"));

    // Nothing inline for the policy to refuse: no script body, no style element or attribute,
    // no event-handler attribute.
    let html = r.text().await.unwrap();
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<style") && !lower.contains(" style="), "inline style in the page");
    for (i, _) in lower.match_indices("<script") {
        let tag_end = i + lower[i..].find('>').unwrap();
        assert!(lower[i..tag_end].contains(" src=\"/"), "inline script: {}", &html[i..tag_end]);
        assert!(lower[tag_end..].starts_with("></script>"), "a script element with a body");
    }
    let handlers = lower.split(|c: char| c.is_ascii_whitespace()).filter(|w| {
        w.starts_with("on")
            && w.split_once('=').is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase()))
    });
    assert_eq!(handlers.count(), 0, "inline event handler in the page");
    assert!(!html.contains("sk-"), "no key in the page");

    // Its script and style come from its own origin, typed so `nosniff` lets them run.
    for (path, kind) in [("/static/app.js", "text/javascript"), ("/static/app.css", "text/css")] {
        assert!(html.contains(&format!("\"{path}\"")), "the page loads {path}");
        let r = w.app.http.get(w.app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let body = r.text().await.unwrap();
        if path.ends_with(".js") {
            assert!(
                body.contains("/api/session") && body.contains("oai-events"),
                "the script drives the web agent"
            );
            assert!(
                !body.contains("eval(") && !body.contains("new Function"),
                "no eval for the policy to refuse"
            );
            assert!(!body.contains("sk-"), "no key in the script");
        }
    }
}
