//! The control plane against the in-repo simulators of Twilio and OpenAI, on a real PostgreSQL:
//! the web session's secret comes from the OpenAI simulator (which checks our body against the
//! GA session shape); `trigger_call` makes the Twilio simulator really place the call: it rings,
//! answers, opens the `wss://` stream URL (TLS with a test CA) signed as Twilio signs, the edge
//! stand-in authorizes the upgrade with the gateway's own core and redeems the token, the call
//! ends through the TwiML's `<Hangup/>`, and Twilio's signed status callbacks build the call's
//! timeline. Twilio faults (429, 500) and outcomes (busy) give the documented behaviour.

mod common;

use std::time::Duration;

use callway_sim_openai::SimConfig;
use callway_sim_twilio::api::{ApiConfig, CallStatus, Fault, Outcome};
use common::world::{World, world_with};
use serde_json::json;

async fn world(extra: &[(&str, &str)], tune: impl FnOnce(&mut ApiConfig)) -> World {
    world_with(SimConfig::default(), extra, tune).await
}

async fn lead_and_call(w: &World, phone: &str) -> common::Answer {
    let s = w.cp.post_raw("/api/session", None, "application/json", b"{}".to_vec()).await;
    assert_eq!(s.status, 200, "{}", s.text);
    assert!(s.json["client_secret"]["value"].as_str().unwrap().starts_with("ek_"));
    let cap = s.json["capability"].as_str().unwrap().to_owned();
    let body = json!({"first_name": "Claire", "last_name": "Martin", "phone": phone, "consent": true});
    let lead = w.cp.post_json("/api/tools/save_lead", Some(&cap), &body).await;
    assert_eq!(lead.status, 200, "{}", lead.text);
    let summary = "Gérante d'une agence immobilière, veut qualifier les appels entrants.";
    let t = json!({"lead_id": lead.json["lead_id"], "summary": summary});
    w.cp.post_json("/api/tools/trigger_call", Some(&cap), &t).await
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    // A hang guard, not a timing assertion: the flows below take well under a second.
    tokio::time::timeout(Duration::from_secs(60), f).await.expect("the simulated call did not finish")
}

#[tokio::test]
async fn a_triggered_call_is_placed_streamed_to_the_edge_and_tracked_to_completion() {
    let w = world(&[], |_| {}).await;
    let r = lead_and_call(&w, "06 12 34 56 78").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let call_id = r.json["call_id"].as_str().unwrap().to_owned();

    let calls = within(w.twilio.wait_for_calls(1)).await;
    let sid = calls[0].sid.clone();
    let done = within(w.twilio.wait_call_finished(&sid)).await;
    assert_eq!(done.status, CallStatus::Completed, "{:?}", done.errors);
    assert_eq!(done.to, "+33612345678");
    assert!(done.errors.is_empty(), "{:?}", done.errors);
    let report = &done.caller_reports[0];
    assert!(report.handshake_failure.is_none(), "{report:?}");
    assert!(report.url.starts_with(&format!("wss://{}/api/twilio/media-stream/v1.", w.edge().domain)));

    // The edge saw a signed upgrade, a valid token, and redeemed it once.
    let seen = w.edge().seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].authorized, Some(Ok(call_id.clone())));
    let (status, ctx) = seen[0].redeemed.clone().unwrap();
    assert_eq!(status, 200, "{ctx}");
    assert_eq!(ctx["first_name"], "Claire");
    assert!(ctx["summary"].as_str().unwrap().contains("agence immobilière"));
    assert_eq!(seen[0].custom_parameters["call_id"], call_id.as_str());
    assert_eq!(seen[0].call_sid, sid);
    assert_eq!(seen[0].events.first().map(String::as_str), Some("connected"));
    assert_eq!(seen[0].events.last().map(String::as_str), Some("stop"));

    // Every callback was signed as Twilio signs and accepted by the control plane.
    let callbacks = w.twilio.callbacks_for(&sid);
    let events: Vec<&str> = callbacks.iter().map(|c| c.event.as_str()).collect();
    for e in ["initiated", "ringing", "answered", "completed", "stream-started", "stream-stopped"] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    for c in &callbacks {
        assert_eq!(c.http_status, Some(204), "{} → {:?} {:?}", c.event, c.http_status, c.error);
    }
    let id = call_id.parse().unwrap();
    let store = &w.cp.app.storage.store;
    let row = store.get_call(id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.call_sid.as_deref()), ("completed", Some(sid.as_str())));
    let timeline = store.status_timeline(id).await.unwrap();
    // Twilio's `initiated` callback may land before our own `queued` record (as with the real
    // service): the order of arrival varies, the status rank keeps the call's status right.
    assert!(timeline.iter().any(|s| s == "queued"), "{timeline:?}");
    assert_eq!(timeline.last().map(String::as_str), Some("completed"), "{timeline:?}");
    assert!(timeline.iter().any(|s| s == "stream-started") && timeline.iter().any(|s| s == "in-progress"));

    // The OpenAI simulator accepted our client_secrets body as a valid GA session.
    let secrets = w.openai.client_secret_requests();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].status, 200, "{}", secrets[0].response);
}

#[tokio::test]
async fn an_ie1_account_is_called_through_its_regional_host_and_its_callbacks_verify() {
    // The simulated account lives in Ireland: Twilio would refuse its credentials on
    // api.twilio.com. TWILIO_API_BASE stays the simulator; TWILIO_REGION/TWILIO_EDGE make the
    // control plane name api.dublin.ie1.twilio.com in every request's Host.
    let w = world(&[("TWILIO_REGION", "ie1"), ("TWILIO_EDGE", "dublin")], |c| c.region = Some("ie1".into()))
        .await;
    let r = lead_and_call(&w, "06 12 34 56 78").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let call_id: uuid::Uuid = r.json["call_id"].as_str().unwrap().parse().unwrap();
    let create = w.twilio.requests().into_iter().find(|q| q.path.ends_with("/Calls.json")).unwrap();
    assert_eq!(create.host.as_deref(), Some("api.dublin.ie1.twilio.com"));
    assert_eq!(create.status, 201, "{}", create.response);

    let sid = within(w.twilio.wait_for_calls(1)).await[0].sid.clone();
    let done = within(w.twilio.wait_call_finished(&sid)).await;
    assert_eq!(done.status, CallStatus::Completed, "{:?}", done.errors);
    // The status callbacks are signed over PUBLIC_APP_URL with the (IE1) auth token, as before.
    let callbacks = w.twilio.callbacks_for(&sid);
    assert!(callbacks.iter().any(|c| c.event == "completed"), "{callbacks:?}");
    for c in &callbacks {
        assert_eq!(c.http_status, Some(204), "{} → {:?} {:?}", c.event, c.http_status, c.error);
    }
    let timeline = w.cp.app.storage.store.status_timeline(call_id).await.unwrap();
    assert_eq!(timeline.last().map(String::as_str), Some("completed"), "{timeline:?}");
}

#[tokio::test]
async fn an_ie1_account_called_without_its_region_fails_on_credentials() {
    // The misconfiguration the region setting exists for: IE1 credentials sent to US1.
    let w = world(&[], |c| c.region = Some("ie1".into())).await;
    let r = lead_and_call(&w, "06 12 34 56 78").await;
    assert_eq!((r.status, r.code()), (502, "twilio_auth_failed"), "{}", r.text);
    assert!(w.twilio.calls().is_empty());
}

#[tokio::test]
async fn twilio_429_is_retried_and_500_is_not() {
    let w = world(&[("RATE_LIMIT_CALLS_PER_IP_PER_HOUR", "100")], |_| {}).await;
    w.twilio.inject_fault(Fault::RateLimited);
    let r = lead_and_call(&w, "06 12 34 56 78").await;
    assert_eq!(r.status, 200, "a 429 is retried: Twilio did nothing the first time: {}", r.text);
    let sid = within(w.twilio.wait_for_calls(1)).await[0].sid.clone();
    within(w.twilio.wait_call_finished(&sid)).await;

    w.twilio.inject_fault(Fault::ServerError);
    let before = w.twilio.requests().len();
    let r = lead_and_call(&w, "06 98 76 54 32").await;
    assert_eq!((r.status, r.code()), (502, "twilio_unavailable"), "{}", r.text);
    let creates = w.twilio.requests()[before..].iter().filter(|q| q.path.ends_with("/Calls.json")).count();
    assert_eq!(creates, 1, "a 500 is ambiguous: never retried, the prospect must not ring twice");
    assert_eq!(w.twilio.calls().len(), 1);
}

#[tokio::test]
async fn a_busy_line_is_recorded_and_frees_the_lead() {
    let w = world(&[], |c| {
        c.outcomes.insert("+33612345678".into(), Outcome::Busy);
    })
    .await;
    let r = lead_and_call(&w, "06 12 34 56 78").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let call_id: uuid::Uuid = r.json["call_id"].as_str().unwrap().parse().unwrap();
    let sid = within(w.twilio.wait_for_calls(1)).await[0].sid.clone();
    let done = within(w.twilio.wait_call_finished(&sid)).await;
    assert_eq!(done.status, CallStatus::Busy);
    assert!(w.edge().seen.lock().unwrap().is_empty(), "no stream for an unanswered call");
    let row = w.cp.app.storage.store.get_call(call_id).await.unwrap().unwrap();
    assert_eq!(row.status, "busy");
}

#[tokio::test]
async fn trial_accounts_only_reach_verified_numbers() {
    let w = world(&[("TWILIO_REQUIRE_VERIFIED_NUMBERS", "1")], |c| {
        c.trial = true;
        c.verified_numbers = vec!["+33698765432".into()];
    })
    .await;
    let r = lead_and_call(&w, "06 12 34 56 78").await;
    assert_eq!((r.status, r.code()), (422, "number_not_verified"), "{}", r.text);
    assert!(w.twilio.calls().is_empty());
    let r = lead_and_call(&w, "06 98 76 54 32").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sid = within(w.twilio.wait_for_calls(1)).await[0].sid.clone();
    assert_eq!(within(w.twilio.wait_call_finished(&sid)).await.status, CallStatus::Completed);
}
