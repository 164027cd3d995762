//! Answering-machine detection end to end on PostgreSQL with the Twilio simulator running
//! Twilio's asynchronous AMD (issue 13, item 1): `trigger_call` asks for it, the simulator
//! answers with a person, a machine (its greeting ending with a beep or silence) or a fax, and
//! sends the signed `AsyncAmdStatusCallback`; the control plane records the result on the
//! call's timeline and applies `VOICEMAIL_POLICY` through Twilio's REST API (a `<Say>` in the
//! lead's language then `<Hangup/>`, or `Status=completed`), scheduling a voicemail retry.
//! Waits are for facts under a hang guard; no timing assertion.

mod common;

use std::time::Duration;

use callway_control::store::Store;
use callway_sim_openai::SimConfig;
use callway_sim_twilio::api::amd::{AmdScript, AnsweredBy};
use callway_sim_twilio::api::{CallStatus, CallerSettings};
use callway_sim_twilio::callbacks::CallbackKind;
use callway_sim_twilio::caller::{CallEnd, EndPolicy, Pacing, Segment};
use common::world::{World, world_through_gateway, world_with};
use serde_json::json;
use uuid::Uuid;

const NUMBER: &str = "+33612345678";
const MESSAGE: &str = "Bonjour {first_name}, nous vous rappellerons.";

async fn within<F: std::future::Future>(f: F) -> F::Output {
    // A hang guard, not a timing assertion.
    tokio::time::timeout(Duration::from_secs(60), f).await.expect("hang")
}

/// A control plane with AMD on and `policy`; the callee's AMD result is `by`, decided 300 ms
/// after the answer, while the callee stays on the line until the call is ended for them.
async fn world(policy: &str, by: AnsweredBy) -> World {
    world_with(
        SimConfig::default(),
        &[
            ("ANSWERING_MACHINE_DETECTION", "on"),
            ("VOICEMAIL_POLICY", policy),
            ("VOICEMAIL_MESSAGE_FR", MESSAGE),
            ("CALL_RETRY_DELAYS", "10m"),
        ],
        |c| {
            c.amd.insert(NUMBER.into(), AmdScript::after(by, Duration::from_millis(300)));
            c.caller = CallerSettings {
                script: vec![Segment::Silence { ms: 200 }],
                pacing: Pacing::Unpaced,
                end: EndPolicy::ServerCloses,
                max_duration: Some(Duration::from_secs(20)),
                ..c.caller.clone()
            };
        },
    )
    .await
}

/// The web flow; returns the lead id, our call id and Twilio's sid.
async fn call(w: &World) -> (Uuid, Uuid, String) {
    w.place_call().await
}

async fn timeline(store: &Store, call_id: Uuid) -> Vec<String> {
    store.status_timeline(call_id).await.unwrap()
}

/// The call's AMD request and callback, as Twilio would see and send them.
fn assert_amd_asked_and_reported(w: &World, sid: &str, call_id: Uuid, by: &str) {
    let snap = w.twilio.call(sid).unwrap();
    let amd = snap.request.amd.as_ref().expect("trigger_call asks for AMD");
    assert_eq!((amd.mode.as_str(), amd.asynchronous), ("DetectMessageEnd", true));
    assert!(amd.callback.as_deref().unwrap().ends_with(&format!("/twilio/amd?call_id={call_id}")), "{amd:?}");
    let cbs: Vec<_> =
        w.twilio.callbacks_for(sid).into_iter().filter(|c| c.kind == CallbackKind::AmdStatus).collect();
    assert_eq!(cbs.len(), 1);
    assert!(cbs[0].params.iter().any(|(k, v)| k == "AnsweredBy" && v == by), "{:?}", cbs[0].params);
    assert_eq!(cbs[0].http_status, Some(204), "signed, verified and accepted: {:?}", cbs[0].error);
}

#[tokio::test]
async fn a_machine_gets_the_voicemail_message_in_french_then_the_call_ends_and_a_retry_is_scheduled() {
    let w = world("leave", AnsweredBy::MachineEndBeep).await;
    let store = &w.cp.app.storage.store;
    let (lead, call_id, sid) = call(&w).await;
    let done = within(w.twilio.wait_call_finished(&sid)).await;
    assert_eq!(done.status, CallStatus::Completed, "{:?}", done.errors);
    assert_amd_asked_and_reported(&w, &sid, call_id, "machine_end_beep");
    assert_eq!(done.answered_by, Some(AnsweredBy::MachineEndBeep));
    // The stream was stopped by the call update, then the message was said, then hang-up.
    assert_eq!(done.updates.len(), 1, "{:?}", done.updates);
    assert!(done.updates[0].ends_with("<Hangup/></Response>"), "{}", done.updates[0]);
    assert!(
        matches!(done.caller_reports[0].end, CallEnd::CallerHungUp { .. }),
        "{:?}",
        done.caller_reports[0].end
    );
    assert_eq!(done.said.len(), 1);
    assert_eq!(done.said[0].text, "Bonjour Claire, nous vous rappellerons.");
    assert_eq!(done.said[0].language.as_deref(), Some("fr-FR"));
    assert!(done.errors.is_empty(), "{:?}", done.errors);

    let t = timeline(store, call_id).await;
    for s in ["in-progress", "amd-machine_end_beep", "voicemail-left", "retry-scheduled", "completed"] {
        assert!(t.contains(&s.to_owned()), "{s} missing from {t:?}");
    }
    let retries = store.retries_for_lead(lead).await.unwrap();
    assert_eq!((retries.len(), retries[0].reason.as_str()), (1, "voicemail"), "{retries:?}");
}

#[tokio::test]
async fn with_voicemail_policy_hangup_a_machine_is_hung_up_on_without_a_message() {
    let w = world("hangup", AnsweredBy::MachineEndSilence).await;
    let store = &w.cp.app.storage.store;
    let (lead, call_id, sid) = call(&w).await;
    let done = within(w.twilio.wait_call_finished(&sid)).await;
    assert_eq!(done.status, CallStatus::Completed);
    assert_amd_asked_and_reported(&w, &sid, call_id, "machine_end_silence");
    assert!(done.said.is_empty() && done.updates.is_empty(), "{:?} {:?}", done.said, done.updates);
    let t = timeline(store, call_id).await;
    assert!(
        t.contains(&"amd-machine_end_silence".to_owned()) && t.contains(&"voicemail-hangup".to_owned()),
        "{t:?}"
    );
    assert_eq!(store.retries_for_lead(lead).await.unwrap()[0].reason, "voicemail");
}

#[tokio::test]
async fn a_person_is_recorded_and_the_conversation_goes_on_a_fax_is_hung_up_on_without_retry() {
    // A person: recorded, nothing else; the call ends when the callee hangs up.
    let w = world("leave", AnsweredBy::Human).await;
    let store = &w.cp.app.storage.store;
    let (lead, call_id, sid) = call(&w).await;
    within(w.twilio.wait_until(|t| t.call(&sid).and_then(|c| c.answered_by))).await;
    let recorded = within(async {
        loop {
            let t = timeline(store, call_id).await;
            if t.contains(&"amd-human".to_owned()) {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(!recorded.iter().any(|s| s.starts_with("voicemail")), "{recorded:?}");
    assert_eq!(w.twilio.call(&sid).unwrap().status, CallStatus::InProgress, "the conversation goes on");
    assert_amd_asked_and_reported(&w, &sid, call_id, "human");
    hang_up(&w, &sid).await;
    assert!(store.retries_for_lead(lead).await.unwrap().is_empty());

    // A fax: ended at once, no retry.
    let w = world("leave", AnsweredBy::Fax).await;
    let store = &w.cp.app.storage.store;
    let (lead, call_id, sid) = call(&w).await;
    let done = within(w.twilio.wait_call_finished(&sid)).await;
    assert_eq!(done.status, CallStatus::Completed);
    assert!(done.said.is_empty());
    assert_amd_asked_and_reported(&w, &sid, call_id, "fax");
    assert!(timeline(store, call_id).await.contains(&"fax-hangup".to_owned()));
    assert!(store.retries_for_lead(lead).await.unwrap().is_empty());
}

/// The gateway's long poll (`contract::internal_api::amd_path`): held until Twilio's result
/// lands, then answered with it; `answered_by: null` while detection has not decided; and
/// `detection: false` when the control plane runs without it.
#[tokio::test]
async fn the_gateway_learns_the_result_by_a_long_poll_held_until_twilio_reports() {
    use contract::internal_api::{AmdStatus, amd_path};
    let status = |r: &common::Answer| -> AmdStatus { serde_json::from_value(r.json.clone()).unwrap() };

    // Held until the result arrives (a person, 300 ms after the answer).
    let w = world("leave", AnsweredBy::Human).await;
    let (_, call_id, sid) = call(&w).await;
    let r = w.cp.post_internal(&amd_path(&call_id.to_string()), &json!({"wait_ms": 10_000})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(status(&r), AmdStatus { detection: true, answered_by: Some("human".into()) });
    hang_up(&w, &sid).await;

    // Not decided yet (detection gives up only at its 30 s timeout): null at once, detection on;
    // a call hung up before the result never gets one.
    let w = world_with(SimConfig::default(), &[("ANSWERING_MACHINE_DETECTION", "on")], |c| {
        c.amd.insert(NUMBER.into(), AmdScript::new(AnsweredBy::Unknown));
        c.caller.end = EndPolicy::ServerCloses;
    })
    .await;
    let (_, call_id, sid) = call(&w).await;
    within(w.twilio.wait_call_status(&sid, CallStatus::InProgress)).await;
    let path = amd_path(&call_id.to_string());
    let r = w.cp.post_internal(&path, &json!({"wait_ms": 0})).await;
    assert_eq!(status(&r), AmdStatus { detection: true, answered_by: None });
    hang_up(&w, &sid).await;
    let r = w.cp.post_internal(&path, &json!({"wait_ms": 200})).await;
    assert_eq!(status(&r), AmdStatus { detection: true, answered_by: None });
    let r = w.cp.post_internal(&path, &json!({"wait_ms": 0, "extra": 1})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = w.cp.post_internal(&amd_path(&Uuid::new_v4().to_string()), &json!({"wait_ms": 0})).await;
    assert_eq!((r.status, r.code()), (404, "call_unknown"));

    // Without detection: said at once.
    let w = world_with(SimConfig::default(), &[], |c| c.caller.end = EndPolicy::ScriptEnd).await;
    let (_, call_id, sid) = call(&w).await;
    let r = w.cp.post_internal(&amd_path(&call_id.to_string()), &json!({"wait_ms": 10_000})).await;
    assert_eq!(status(&r), AmdStatus { detection: false, answered_by: None });
    assert!(w.twilio.call(&sid).unwrap().request.amd.is_none(), "no MachineDetection asked");
    within(w.twilio.wait_call_finished(&sid)).await;
}

/// Ends a call through Twilio's REST API, as an operator or the callee would.
async fn hang_up(w: &World, sid: &str) {
    let res =
        w.cp.http
            .post(format!("{}/Calls/{sid}.json", w.twilio.calls_url().trim_end_matches("/Calls.json")))
            .basic_auth(common::ACCOUNT_SID, Some(common::AUTH_TOKEN))
            .form(&[("Status", "completed")])
            .send()
            .await
            .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    within(w.twilio.wait_call_finished(sid)).await;
}

/// Through the real gateway (`AMD_HOLD_MS` at its default, 4 s), on `engine`'s environment:
/// detection decides `by` one second after the answer; the callee waits for the agent's
/// greeting (a person) or stays silent until the call is ended for them (a machine).
async fn through_gateway(engine: &[(&str, &str)], by: AnsweredBy) -> World {
    let mut env = vec![
        ("ANSWERING_MACHINE_DETECTION", "on"),
        ("VOICEMAIL_POLICY", "leave"),
        ("VOICEMAIL_MESSAGE_FR", MESSAGE),
        ("CALL_RETRY_DELAYS", "10m"),
    ];
    env.extend_from_slice(engine);
    world_through_gateway(SimConfig::default(), &env, |c| {
        c.amd.insert(NUMBER.into(), AmdScript::after(by, Duration::from_secs(1)));
        c.caller = CallerSettings {
            script: if by == AnsweredBy::Human {
                vec![Segment::AwaitAgent { settle_ms: 300, timeout_ms: 20_000 }]
            } else {
                vec![Segment::Silence { ms: 20_000 }]
            },
            pacing: Pacing::RealTime,
            end: if by == AnsweredBy::Human { EndPolicy::ScriptEnd } else { EndPolicy::ServerCloses },
            max_duration: Some(Duration::from_secs(30)),
            ..c.caller.clone()
        };
    })
    .await
}

/// `create_response` of each Realtime `session.update` the OpenAI simulator received.
fn create_response(w: &World) -> Vec<Option<bool>> {
    w.openai
        .session(0)
        .unwrap()
        .received_of("session.update")
        .iter()
        .map(|s| s["session"]["audio"]["input"]["turn_detection"]["create_response"].as_bool())
        .collect()
}

#[tokio::test]
async fn through_the_gateway_a_person_is_greeted_once_detection_says_human() {
    let w = through_gateway(&[], AnsweredBy::Human).await;
    let (_, _, sid) = call(&w).await;
    let done = within(w.twilio.wait_call_finished(&sid)).await;
    let heard = done.caller_reports[0].audio_received_bytes;
    assert!(heard > 0, "the callee heard the greeting: {:?}", done.caller_reports[0].end);
    // The session was configured not to answer, then released, then the greeting asked for.
    assert_eq!(create_response(&w), [Some(false), Some(true)], "{}", w.gateway().log());
    let kinds: Vec<String> = w
        .openai
        .session(0)
        .unwrap()
        .received
        .iter()
        .map(|e| e.kind.clone())
        .filter(|k| k != "input_audio_buffer.append")
        .collect();
    let release = kinds.iter().rposition(|k| k == "session.update").unwrap();
    let greeting = kinds.iter().position(|k| k == "response.create").unwrap();
    assert!(release < greeting, "{kinds:?}");
    // Released by Twilio's answer, not by the gateway's own limit.
    let log = w.gateway().log();
    assert!(log.contains("answering-machine detection") && log.contains("human"), "{log}");
    assert!(w.gateway().metrics().await.contains("callway_gateway_amd_outcomes_total{outcome=\"person\"} 1"));
}

#[tokio::test]
async fn through_the_gateway_a_machine_never_hears_the_agent_and_gets_the_voicemail() {
    // Both engines with the message left; Realtime again with VOICEMAIL_POLICY=hangup (the
    // later setting of the list wins).
    let live = ("OPENAI_VOICE_API", "live");
    let hangup = ("VOICEMAIL_POLICY", "hangup");
    for env in [&[][..], &[live][..], &[hangup][..]] {
        let is_live = env.contains(&live);
        let leaves = !env.contains(&hangup);
        let w = through_gateway(env, AnsweredBy::MachineEndBeep).await;
        let store = &w.cp.app.storage.store;
        let (_, call_id, sid) = call(&w).await;
        let done = within(w.twilio.wait_call_finished(&sid)).await;
        assert_eq!(done.status, CallStatus::Completed, "{:?}", done.errors);
        assert_eq!(done.said.len(), usize::from(leaves), "{env:?}: the voicemail message: {:?}", done.said);
        let report = &done.caller_reports[0];
        assert_eq!(report.audio_received_bytes, 0, "{env:?}: the agent said nothing to the machine");
        let sessions = w.openai.sessions();
        if is_live {
            assert!(
                sessions.iter().all(|s| s.received_of("session.start").is_empty()),
                "GPT-Live: no session started (billed per second) for a machine"
            );
        } else {
            let s = &sessions[0];
            assert!(s.received_of("response.create").is_empty(), "{:?}", s.received);
            assert_eq!(s.audio_deltas_sent, 0);
            assert_eq!(create_response(&w), [Some(false)]);
        }
        let t = timeline(store, call_id).await;
        let outcome = if leaves { "voicemail-left" } else { "voicemail-hangup" };
        assert!(t.contains(&outcome.to_owned()), "{env:?}: {t:?}");
    }
}

#[tokio::test]
async fn through_the_gateway_on_gpt_live_the_session_starts_once_detection_says_human() {
    let w = through_gateway(&[("OPENAI_VOICE_API", "live")], AnsweredBy::Human).await;
    let (_, _, sid) = call(&w).await;
    let done = within(w.twilio.wait_call_finished(&sid)).await;
    assert!(done.caller_reports[0].audio_received_bytes > 0, "the callee heard the greeting");
    let log = w.gateway().log();
    assert!(log.contains("answering-machine detection") && log.contains("human"), "{log}");
    let s = w.openai.session(0).unwrap();
    assert_eq!(s.received_of("session.start").len(), 1);
    assert_eq!(s.received_of("session.commentary.append").len(), 1, "the greeting, once");
}
