//! Call retries end to end on a real PostgreSQL, with the Twilio simulator answering busy or
//! not at all: a busy call schedules its retry at the right local time (moved into the French
//! calling hours), the worker places it when the control plane's clock says it is due (a
//! [`ManualClock`]: no sleeping, no timed assertion), a new control plane on the same database
//! still places it after a restart, an erasure or an opt-out cancels it, and two control planes
//! running their workers together place each attempt once. Every step is on the lead's timeline.

mod common;

use std::sync::Arc;
use std::time::Duration;

use callway_control::clock::{Clock, ManualClock};
use callway_control::retry;
use callway_control::store::{RetryRow, Store};
use callway_sim_openai::SimConfig;
use callway_sim_twilio::api::{ApiConfig, CallStatus, Outcome};
use common::world::{World, world_with_clock};
use common::{ADMIN_TOKEN, Running};
use serde_json::json;
use time::macros::datetime;
use uuid::Uuid;

const NUMBER: &str = "+33612345678";

async fn within<F: std::future::Future>(f: F) -> F::Output {
    // A hang guard, not a timing assertion.
    tokio::time::timeout(Duration::from_secs(60), f).await.expect("the simulated call did not finish")
}

async fn world(clock: &Arc<ManualClock>, tune: impl FnOnce(&mut ApiConfig)) -> World {
    let clock: Arc<dyn Clock> = clock.clone();
    world_with_clock(
        SimConfig::default(),
        &[("CALL_RETRY_DELAYS", "10m,2h"), ("RATE_LIMIT_CALLS_PER_IP_PER_HOUR", "100")],
        tune,
        clock,
    )
    .await
}

/// The web flow: a session, `save_lead`, `trigger_call`; returns the lead id and Twilio's sid.
async fn lead_and_call(w: &World, phone: &str) -> (Uuid, String) {
    let (lead, sid, _) = lead_and_call_with_session(w, phone).await;
    (lead, sid)
}

/// [`lead_and_call`], also returning the session capability (to ask again).
async fn lead_and_call_with_session(w: &World, phone: &str) -> (Uuid, String, String) {
    let s = w.cp.post_raw("/api/session", None, "application/json", b"{}".to_vec()).await;
    assert_eq!(s.status, 200, "{}", s.text);
    let cap = s.json["capability"].as_str().unwrap().to_owned();
    let body = json!({"first_name": "Claire", "last_name": "Martin", "phone": phone, "consent": true});
    let lead = w.cp.post_json("/api/tools/save_lead", Some(&cap), &body).await;
    assert_eq!(lead.status, 200, "{}", lead.text);
    let t = json!({"lead_id": lead.json["lead_id"], "summary": "Veut une démo de l'agent vocal."});
    let before = w.twilio.calls().len();
    let r = w.cp.post_json("/api/tools/trigger_call", Some(&cap), &t).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sid = within(w.twilio.wait_for_calls(before + 1)).await[before].sid.clone();
    (lead.json["lead_id"].as_str().unwrap().parse().unwrap(), sid, cap)
}

async fn retries(store: &Store, lead: Uuid) -> Vec<RetryRow> {
    store.retries_for_lead(lead).await.unwrap()
}

async fn timeline(store: &Store, lead: Uuid) -> Vec<String> {
    store.lead_timeline(lead).await.unwrap().into_iter().map(|e| e.status).collect()
}

fn position(t: &[String], status: &str) -> usize {
    t.iter().position(|s| s == status).unwrap_or_else(|| panic!("{status} missing from {t:?}"))
}

#[tokio::test]
async fn a_busy_call_is_retried_at_the_next_allowed_hour_by_the_worker() {
    // Monday 7 December 2026, 12:55 in Paris: +10 min falls in the 13:00-14:00 gap.
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-07 11:55 UTC)));
    let w = world(&clock, |c| {
        c.outcomes.insert(NUMBER.into(), Outcome::Busy);
    })
    .await;
    let store = &w.cp.app.storage.store;
    let (lead, sid) = lead_and_call(&w, "06 12 34 56 78").await;
    assert_eq!(within(w.twilio.wait_call_finished(&sid)).await.status, CallStatus::Busy);

    let r = retries(store, lead).await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0].attempt, r[0].state.as_str(), r[0].reason.as_str()), (2, "scheduled", "busy"));
    assert_eq!(r[0].due_at, datetime!(2026-12-07 13:00 UTC), "14:00 in Paris");
    let t = timeline(store, lead).await;
    assert!(position(&t, "busy") < position(&t, "retry-scheduled"), "{t:?}");
    assert!(position(&t, "retry-scheduled") < position(&t, "retry-moved"), "{t:?}");

    // Not yet due: nothing happens.
    clock.set(datetime!(2026-12-07 12:59:59 UTC));
    assert_eq!(retry::run_due(&w.cp.app).await.unwrap().claimed, 0);
    assert_eq!(w.twilio.calls().len(), 1);

    // Due: the worker places attempt 2, which is busy again, so attempt 3 is scheduled 2 h
    // later (16:00 in Paris, inside the hours: not moved).
    clock.set(datetime!(2026-12-07 13:00 UTC));
    let report = retry::run_due(&w.cp.app).await.unwrap();
    assert_eq!((report.claimed, report.placed), (1, 1), "{report:?}");
    let second = within(w.twilio.wait_for_calls(2)).await[1].clone();
    assert_eq!(second.to, NUMBER);
    assert_eq!(within(w.twilio.wait_call_finished(&second.sid)).await.status, CallStatus::Busy);
    let r = retries(store, lead).await;
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0].state, "placed");
    let placed_call = r[0].call_id.expect("the retry names the call it placed");
    assert_eq!(store.get_call(placed_call).await.unwrap().unwrap().status, "busy");
    assert_eq!((r[1].attempt, r[1].state.as_str(), r[1].after_call_id), (3, "scheduled", placed_call));
    assert_eq!(r[1].due_at, datetime!(2026-12-07 15:00 UTC));
    assert_eq!(retry::run_due(&w.cp.app).await.unwrap().claimed, 0, "placed once");

    // Attempt 3, busy too: no delay is left, and the timeline says so.
    clock.set(datetime!(2026-12-07 15:00 UTC));
    assert_eq!(retry::run_due(&w.cp.app).await.unwrap().placed, 1);
    let third = within(w.twilio.wait_for_calls(3)).await[2].clone();
    within(w.twilio.wait_call_finished(&third.sid)).await;
    assert_eq!(retries(store, lead).await.len(), 2);
    let t = timeline(store, lead).await;
    for s in ["retry-scheduled", "retry-moved", "retry-placed", "retry-not-scheduled"] {
        assert!(t.contains(&s.to_owned()), "{s} missing from {t:?}");
    }
    assert_eq!(t.iter().filter(|s| *s == "busy").count(), 3, "each attempt's outcome: {t:?}");
    assert_eq!(t.iter().filter(|s| *s == "retry-placed").count(), 2, "{t:?}");
    let entries = store.lead_timeline(lead).await.unwrap();
    let last = entries.iter().rfind(|e| e.status == "retry-not-scheduled").unwrap();
    assert!(last.detail.as_deref().unwrap().contains("no attempt left"), "{last:?}");
    for c in w.twilio.callbacks() {
        assert_eq!(c.http_status, Some(204), "{} {:?}", c.event, c.error);
    }
}

#[tokio::test]
async fn an_unanswered_call_on_saturday_night_is_retried_on_monday_morning() {
    // The first call is the one the prospect asked for: placed at once whatever the hour.
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-12 22:00 UTC)));
    let w = world(&clock, |c| {
        c.outcomes.insert(NUMBER.into(), Outcome::NoAnswer);
        c.no_answer_after = Some(Duration::from_millis(200));
    })
    .await;
    let (lead, sid) = lead_and_call(&w, "06 12 34 56 78").await;
    assert_eq!(within(w.twilio.wait_call_finished(&sid)).await.status, CallStatus::NoAnswer);
    let r = retries(&w.cp.app.storage.store, lead).await;
    assert_eq!((r[0].reason.as_str(), r[0].due_at), ("no-answer", datetime!(2026-12-14 09:00 UTC)));
    clock.set(datetime!(2026-12-14 08:59 UTC));
    assert_eq!(retry::run_due(&w.cp.app).await.unwrap().claimed, 0);
    clock.set(datetime!(2026-12-14 09:00 UTC));
    assert_eq!(retry::run_due(&w.cp.app).await.unwrap().placed, 1);
    assert_eq!(within(w.twilio.wait_for_calls(2)).await.len(), 2);
}

#[tokio::test]
async fn a_worker_running_late_moves_the_retry_instead_of_ringing() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-07 09:00 UTC)));
    let w = world(&clock, |c| {
        c.outcomes.insert(NUMBER.into(), Outcome::Busy);
    })
    .await;
    let store = &w.cp.app.storage.store;
    let (lead, sid) = lead_and_call(&w, "06 12 34 56 78").await;
    within(w.twilio.wait_call_finished(&sid)).await;
    assert_eq!(retries(store, lead).await[0].due_at, datetime!(2026-12-07 09:10 UTC));
    // The control planes were down all day: the worker first runs at 20:30 in Paris.
    clock.set(datetime!(2026-12-07 19:30 UTC));
    let report = retry::run_due(&w.cp.app).await.unwrap();
    assert_eq!((report.claimed, report.moved, report.placed), (1, 1, 0), "{report:?}");
    let r = retries(store, lead).await;
    assert_eq!((r[0].state.as_str(), r[0].due_at), ("scheduled", datetime!(2026-12-08 09:00 UTC)));
    assert_eq!(w.twilio.calls().len(), 1, "nobody was rung at 20:30");
    let entries = store.lead_timeline(lead).await.unwrap();
    let moved = entries.iter().find(|e| e.status == "retry-moved").expect("the move is on the timeline");
    assert!(moved.detail.as_deref().unwrap().contains("Europe/Paris"), "{moved:?}");
    clock.set(datetime!(2026-12-08 09:00 UTC));
    assert_eq!(retry::run_due(&w.cp.app).await.unwrap().placed, 1);
    within(w.twilio.wait_for_calls(2)).await;
}

#[tokio::test]
async fn a_scheduled_retry_survives_a_restart() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-07 09:00 UTC)));
    let w = world(&clock, |c| {
        c.outcomes.insert(NUMBER.into(), Outcome::Busy);
    })
    .await;
    let (lead, sid) = lead_and_call(&w, "06 12 34 56 78").await;
    within(w.twilio.wait_call_finished(&sid)).await;
    let World { cp, twilio, env, relay: _relay, openai: _openai } = w;
    assert_eq!(retries(&cp.app.storage.store, lead).await[0].due_at, datetime!(2026-12-07 09:10 UTC));
    drop(cp);

    // A new control plane on the same database (new address, new outbox, same clock).
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let cp = Running::start_with_clock(env, "127.0.0.1:0", dyn_clock).await;
    clock.set(datetime!(2026-12-07 09:10 UTC));
    assert_eq!(retry::run_due(&cp.app).await.unwrap().placed, 1);
    let second = within(twilio.wait_for_calls(2)).await[1].clone();
    let done = within(twilio.wait_call_finished(&second.sid)).await;
    assert_eq!(done.status, CallStatus::Busy);
    for c in twilio.callbacks_for(&second.sid) {
        assert_eq!(c.http_status, Some(204), "the new control plane took the callbacks: {}", c.event);
    }
    let r = retries(&cp.app.storage.store, lead).await;
    assert_eq!((r[0].state.as_str(), r[1].attempt, r[1].state.as_str()), ("placed", 3, "scheduled"));
}

#[tokio::test]
async fn erasing_the_number_or_an_opt_out_cancels_the_retry() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-07 09:00 UTC)));
    let other = "+33698765432";
    let w = world(&clock, |c| {
        c.outcomes.insert(NUMBER.into(), Outcome::Busy);
        c.outcomes.insert(other.into(), Outcome::Busy);
    })
    .await;
    let store = &w.cp.app.storage.store;
    let (erased_lead, sid) = lead_and_call(&w, "06 12 34 56 78").await;
    within(w.twilio.wait_call_finished(&sid)).await;
    let (opted_lead, sid) = lead_and_call(&w, "06 98 76 54 32").await;
    within(w.twilio.wait_call_finished(&sid)).await;
    assert_eq!(retries(store, erased_lead).await.len(), 1);
    assert_eq!(retries(store, opted_lead).await.len(), 1);

    let r = w.cp.post_json("/admin/erase", Some(ADMIN_TOKEN), &json!({"phone": "06 12 34 56 78"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["removed"]["retries"], 1);
    assert!(retries(store, erased_lead).await.is_empty());

    let r = w.cp.post_json("/admin/opt-out", Some(ADMIN_TOKEN), &json!({"phone": "06 98 76 54 32"})).await;
    assert_eq!((r.status, r.json["retries_cancelled"].as_u64()), (200, Some(1)), "{}", r.text);
    assert!(!r.text.contains("98765432"), "no number in clear: {}", r.text);
    let rows = retries(store, opted_lead).await;
    assert_eq!(rows[0].state, "cancelled");
    assert!(timeline(store, opted_lead).await.contains(&"retry-cancelled".to_owned()));

    clock.set(datetime!(2026-12-08 09:00 UTC));
    assert_eq!(retry::run_due(&w.cp.app).await.unwrap().claimed, 0);
    assert_eq!(w.twilio.calls().len(), 2, "nobody was called again");
}

#[tokio::test]
async fn a_new_call_asked_from_the_page_supersedes_the_waiting_retry() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-07 09:00 UTC)));
    let w = world(&clock, |c| {
        c.outcomes.insert(NUMBER.into(), Outcome::Busy);
    })
    .await;
    let store = &w.cp.app.storage.store;
    let (lead, sid, cap) = lead_and_call_with_session(&w, "06 12 34 56 78").await;
    within(w.twilio.wait_call_finished(&sid)).await;
    assert_eq!(retries(store, lead).await[0].state, "scheduled");
    // The prospect asks again on the page before the retry is due: that call goes out now and
    // the retry is cancelled, so the prospect does not get a second, unexpected ring later.
    w.twilio.set_outcome(NUMBER, Outcome::Answer);
    let t = json!({"lead_id": lead, "summary": "Rappel demandé à nouveau."});
    let r = w.cp.post_json("/api/tools/trigger_call", Some(&cap), &t).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = retries(store, lead).await;
    assert_eq!(rows[0].state, "cancelled");
    assert!(rows[0].detail.as_deref().unwrap().contains("superseded"), "{rows:?}");
    assert!(timeline(store, lead).await.contains(&"retry-cancelled".to_owned()));
    clock.set(datetime!(2026-12-07 10:00 UTC));
    assert_eq!(retry::run_due(&w.cp.app).await.unwrap().claimed, 0);
    let second = within(w.twilio.wait_for_calls(2)).await[1].clone();
    within(w.twilio.wait_call_finished(&second.sid)).await;
    assert_eq!(w.twilio.calls().len(), 2);
}

#[tokio::test]
async fn two_control_planes_never_place_one_attempt_twice() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-07 09:00 UTC)));
    let numbers: Vec<String> = (0..6).map(|i| format!("+3361234567{i}")).collect();
    let w = world(&clock, |c| {
        for n in &numbers {
            c.outcomes.insert(n.clone(), Outcome::Busy);
        }
    })
    .await;
    let mut leads = Vec::new();
    for n in &numbers {
        let (lead, sid) = lead_and_call(&w, n).await;
        within(w.twilio.wait_call_finished(&sid)).await;
        leads.push(lead);
    }
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let second = Running::start_with_clock(w.env.clone(), "127.0.0.1:0", dyn_clock).await;
    clock.set(datetime!(2026-12-07 09:10 UTC));
    let (a, b) = tokio::join!(retry::run_due(&w.cp.app), retry::run_due(&second.app));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.placed + b.placed, 6, "{a:?} {b:?}");
    let calls = within(w.twilio.wait_for_calls(12)).await;
    assert_eq!(calls.len(), 12);
    for n in &numbers {
        assert_eq!(calls.iter().filter(|c| &c.to == n).count(), 2, "{n} rang exactly twice");
    }
    for lead in leads {
        let r = retries(&w.cp.app.storage.store, lead).await;
        assert_eq!(r.iter().filter(|r| r.state == "placed").count(), 1, "{r:?}");
    }
}

/// A control plane that stops between claiming retries and finishing them leaves them
/// `placing`. Once they have been so for `retry::STUCK_AFTER`, the next worker pass settles
/// each by what reached Twilio: no call stored → requeued and placed in the same pass; a call
/// with Twilio's sid → adopted as placed, not rung again; a call stored whose Twilio answer was
/// lost → failed with the reason, its call closed, not rung again (never twice).
#[tokio::test]
async fn retries_left_placing_by_a_stopped_control_plane_are_settled_by_what_reached_twilio() {
    use callway_control::placing::{PlaceCall, place_call};
    use callway_control::store::NewCall;
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-07 09:00 UTC)));
    let (never_asked, accepted, answer_lost) = ("+33612345671", "+33612345672", "+33612345673");
    let w = world(&clock, |c| {
        for n in [never_asked, accepted, answer_lost] {
            c.outcomes.insert(n.into(), Outcome::Busy);
        }
    })
    .await;
    let store = &w.cp.app.storage.store;
    let mut leads = Vec::new();
    for n in [never_asked, accepted, answer_lost] {
        let (lead, sid) = lead_and_call(&w, n).await;
        within(w.twilio.wait_call_finished(&sid)).await;
        leads.push(lead);
    }

    // The control plane that is about to stop claims the three attempts due at 09:10.
    clock.set(datetime!(2026-12-07 09:10 UTC));
    let claimed = store.claim_due_retries(clock.now(), "stopped-instance", 16).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let of = |lead: Uuid| claimed.iter().find(|r| r.lead_id == lead).unwrap().clone();
    // It got through to Twilio for the second lead (Twilio's sid stored)...
    let previous = store.get_call(of(leads[1]).after_call_id).await.unwrap().unwrap();
    let placed = place_call(
        &w.cp.app,
        &PlaceCall {
            lead_id: leads[1],
            session_id: previous.session_id,
            summary: &previous.summary,
            web_transcript: &previous.web_transcript,
            to_e164: accepted,
            detail: "Calls.create (retry attempt 2 after busy)",
            attempt: 2,
        },
    )
    .await
    .unwrap();
    within(w.twilio.wait_call_finished(&placed.call_sid)).await;
    // ...and stored the third lead's call but never heard Twilio's answer.
    let lost_call = Uuid::new_v4();
    let now = time::OffsetDateTime::now_utc();
    store
        .create_call(&NewCall {
            id: lost_call,
            lead_id: leads[2],
            session_id: None,
            summary: "Veut une démo de l'agent vocal.".into(),
            stream_nonce: "00112233445566778899aabb".into(),
            token_expires_at: now,
            attempt: 2,
            web_transcript: Vec::new(),
            at: now,
        })
        .await
        .unwrap();
    assert_eq!(w.twilio.calls().len(), 4);

    // Not stuck yet: a worker leaves them alone.
    clock.set(datetime!(2026-12-07 09:19:59 UTC));
    let report = retry::run_due(&w.cp.app).await.unwrap();
    assert_eq!((report.recovered, report.claimed), (0, 0), "{report:?}");

    // Stuck: settled, and the requeued one placed in the same pass.
    clock.set(datetime!(2026-12-07 09:20 UTC));
    let report = retry::run_due(&w.cp.app).await.unwrap();
    assert_eq!((report.recovered, report.claimed, report.placed), (3, 1, 1), "{report:?}");
    let calls = within(w.twilio.wait_for_calls(5)).await;
    within(w.twilio.wait_call_finished(&calls[4].sid)).await;
    assert_eq!(calls[4].to, never_asked);
    for (n, rang) in [(never_asked, 2), (accepted, 2), (answer_lost, 1)] {
        assert_eq!(w.twilio.calls().iter().filter(|c| c.to == n).count(), rang, "{n}");
    }

    let first = retries(store, leads[0]).await;
    assert_eq!(first[0].state, "placed", "{first:?}");
    let t = timeline(store, leads[0]).await;
    assert!(position(&t, "retry-requeued") < position(&t, "retry-placed"), "{t:?}");

    let second = retries(store, leads[1]).await;
    assert_eq!((second[0].state.as_str(), second[0].call_id), ("placed", Some(placed.call_id)), "{second:?}");
    assert!(second[0].detail.as_deref().unwrap().contains("recovered"), "{second:?}");

    let third = retries(store, leads[2]).await;
    assert_eq!((third[0].state.as_str(), third[0].call_id), ("failed", Some(lost_call)), "{third:?}");
    assert!(third[0].detail.as_deref().unwrap().contains("never called twice"), "{third:?}");
    assert_eq!(store.get_call(lost_call).await.unwrap().unwrap().status, "failed");
    assert!(timeline(store, leads[2]).await.contains(&"retry-failed".to_owned()));

    // Settled once: the next pass finds nothing stuck.
    clock.set(datetime!(2026-12-07 09:40 UTC));
    assert_eq!(retry::run_due(&w.cp.app).await.unwrap().recovered, 0);
    let text = w.cp.http.get(w.cp.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("callway_retries_recovered_total 3"), "{text}");
}
