//! `GET /api/calls/{call_id}`: the page follows the call `trigger_call` placed, on real
//! PostgreSQL. Each signed Twilio status callback moves what the page is told (placing,
//! ringing, answered, ended, with a French message); the route answers only the web session
//! that placed the call (its capability and the call id), the same `404` for another session's
//! call and for an id that does not exist, and never the phone number.

mod common;

use common::web::*;
use contract::twilio_signature::TwilioSigner;

const CALL_SID: &str = "CA0123456789abcdef0123456789abcdef";

/// A call placed through `trigger_call` in a new session: (capability, call id).
async fn placed(w: &Web) -> (String, String) {
    let (cap, lead_id) = saved(w, "06 12 34 56 78").await;
    w.twilio.script([common::recorder::Reply::new(201, CALL_RESOURCE)]);
    let r = w.app.post_json("/api/tools/trigger_call", Some(&cap), &trigger(&lead_id)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    w.twilio.take();
    (cap, r.json["call_id"].as_str().unwrap().to_owned())
}

/// `GET /api/calls/{id}` with an optional capability.
async fn progress(w: &Web, call_id: &str, cap: Option<&str>) -> common::Answer {
    let mut req = w.app.http.get(w.app.url(&format!("/api/calls/{call_id}")));
    if let Some(c) = cap {
        req = req.bearer_auth(c);
    }
    common::Answer::of_response(req.send().await.unwrap()).await
}

/// Twilio's status callback for the call, signed over the URL the control plane gave Twilio.
async fn callback(w: &Web, call_id: &str, status: &str) {
    let path = format!("/twilio/status?call_id={call_id}");
    let pairs = [
        ("AccountSid", common::ACCOUNT_SID),
        ("CallSid", CALL_SID),
        ("CallStatus", status),
        ("Direction", "outbound-api"),
        ("From", common::FROM),
        ("To", "+33612345678"),
    ];
    let sig = TwilioSigner::new(common::AUTH_TOKEN.as_bytes()).sign(&w.app.url(&path), &pairs);
    let res = w
        .app
        .http
        .post(w.app.url(&path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(serde_urlencoded::to_string(pairs).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "callback {status}: {}", res.text().await.unwrap());
}

/// The progress answer's (stage, status, ended), after checking it never holds the number.
fn seen(a: &common::Answer) -> (String, String, bool) {
    assert_eq!(a.status, 200, "{}", a.text);
    for number in ["+33612345678", "0612345678", "06 12 34 56 78", "612345678"] {
        assert!(!a.text.contains(number), "the number in the answer: {}", a.text);
    }
    assert_eq!(a.headers["cache-control"], "no-store");
    (
        a.json["stage"].as_str().unwrap_or_default().to_owned(),
        a.json["status"].as_str().unwrap_or_default().to_owned(),
        a.json["ended"].as_bool().unwrap(),
    )
}

#[tokio::test]
async fn the_page_follows_its_call_from_the_status_callbacks() {
    let w = web_on_postgres().await;
    let (cap, call_id) = placed(&w).await;

    let a = progress(&w, &call_id, Some(&cap)).await;
    assert_eq!(seen(&a), ("placing".into(), "queued".into(), false));
    assert_eq!(a.json["call_id"], call_id.as_str());
    assert_eq!(a.json["message"], "Nous composons votre numéro…");

    callback(&w, &call_id, "initiated").await;
    assert_eq!(seen(&progress(&w, &call_id, Some(&cap)).await).0, "placing");
    callback(&w, &call_id, "ringing").await;
    let a = progress(&w, &call_id, Some(&cap)).await;
    assert_eq!(seen(&a), ("ringing".into(), "ringing".into(), false));
    assert_eq!(a.json["message"], "Votre téléphone sonne : décrochez, c'est Claire.");
    callback(&w, &call_id, "in-progress").await;
    let a = progress(&w, &call_id, Some(&cap)).await;
    assert_eq!(seen(&a), ("answered".into(), "in-progress".into(), false));
    assert_eq!(a.json["message"], "Vous êtes en ligne avec Claire.");
    callback(&w, &call_id, "completed").await;
    let a = progress(&w, &call_id, Some(&cap)).await;
    assert_eq!(seen(&a), ("ended".into(), "completed".into(), true));
    assert_eq!(a.json["message"], "Appel terminé. Merci d'avoir parlé avec Claire !");

    // A late callback (Twilio does not order them) does not move the page backwards.
    callback(&w, &call_id, "ringing").await;
    assert_eq!(seen(&progress(&w, &call_id, Some(&cap)).await), ("ended".into(), "completed".into(), true));
}

#[tokio::test]
async fn a_call_not_answered_ends_with_its_reason() {
    let w = web_on_postgres().await;
    let (cap, call_id) = placed(&w).await;
    callback(&w, &call_id, "ringing").await;
    callback(&w, &call_id, "busy").await;
    let a = progress(&w, &call_id, Some(&cap)).await;
    assert_eq!(seen(&a), ("ended".into(), "busy".into(), true));
    assert_eq!(a.json["message"], "Votre ligne était occupée : l'appel n'a pas abouti.");
}

#[tokio::test]
async fn only_the_session_that_placed_the_call_sees_it() {
    let w = web_on_postgres().await;
    let (cap, call_id) = placed(&w).await;
    let (other_cap, other_call) = placed(&w).await;
    assert_eq!(progress(&w, &other_call, Some(&other_cap)).await.status, 200);

    // No capability, or a forged or expired one: 401, nothing about the call.
    let r = progress(&w, &call_id, None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(!r.text.contains("queued"));
    let r = progress(&w, &call_id, Some("cap1.forged.capability")).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let expired =
        w.app.app.capabilities.mint(uuid::Uuid::new_v4(), callway_control::routes::now_secs() - 3600);
    assert_eq!(progress(&w, &call_id, Some(&expired)).await.status, 401);

    // Another session's call, an unknown id and a malformed one: one and the same 404.
    let theirs = progress(&w, &other_call, Some(&cap)).await;
    let unknown = progress(&w, &uuid::Uuid::new_v4().to_string(), Some(&cap)).await;
    let malformed = progress(&w, "1%20OR%201%3D1", Some(&cap)).await;
    for r in [&theirs, &unknown, &malformed] {
        assert_eq!((r.status, r.code()), (404, "call_not_found"), "{}", r.text);
    }
    assert_eq!(theirs.text, unknown.text, "another session's call is indistinguishable from none");
    assert_eq!(unknown.text, malformed.text);
    // A fresh capability for a session that placed nothing sees nothing either.
    let (_, stranger) = w.app.capability();
    assert_eq!(progress(&w, &call_id, Some(&stranger)).await.status, 404);
}

#[tokio::test]
async fn polling_is_limited_per_client_with_retry_after() {
    let w = web_with(&[("RATE_LIMIT_PROGRESS_PER_IP_PER_MINUTE", "3")]).await;
    let (cap, call_id) = placed(&w).await;
    for _ in 0..3 {
        assert_eq!(seen(&progress(&w, &call_id, Some(&cap)).await).0, "placing");
    }
    // The fourth in the minute: 429 with the wait in whole seconds (a slot frees every 20 s).
    let r = progress(&w, &call_id, Some(&cap)).await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"), "{}", r.text);
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "Retry-After: {wait}");
    assert!(r.json["message"].as_str().unwrap().contains(&format!("{wait} secondes")), "{}", r.text);
    assert!(!r.text.contains("queued"), "nothing about the call: {}", r.text);
    // Checked before the capability: a flood without one is refused as cheaply.
    assert_eq!(progress(&w, &call_id, None).await.status, 429);

    // Another client (another source address) is not held back by the first one.
    let other =
        reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 2])).build().unwrap();
    let res = other.get(w.app.url(&format!("/api/calls/{call_id}"))).bearer_auth(&cap).send().await.unwrap();
    assert_eq!(seen(&common::Answer::of_response(res).await).0, "placing");
    let metrics = w.app.http.get(w.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == "callway_rate_limited_total 2"), "{metrics}");
}
