//! Warm transfer to a person end to end on PostgreSQL with the Twilio simulator (issue 13,
//! item 3): a call is placed and answered, the gateway's `transfer_to_human` tool request is
//! made here (the edge stand-in runs no model), the control plane POSTs the signed hand-over
//! note to a recording endpoint, updates the live call with `<Dial>` (the stream gets `stop`),
//! the simulator rings the scripted person and requests the signed `<Dial action>`, whose
//! answer the call runs. Waits are for facts under a hang guard; no timing assertion.

mod common;

use std::time::Duration;

use callway_control::store::Store;
use callway_control::transfer;
use callway_sim_openai::SimConfig;
use callway_sim_twilio::api::dial::DialScript;
use callway_sim_twilio::api::{CallStatus, CallerSettings};
use callway_sim_twilio::callbacks::CallbackKind;
use callway_sim_twilio::caller::{CallEnd, EndPolicy, Pacing, Segment};
use common::recorder::{Recorder, Reply};
use common::world::{World, world_with};
use contract::internal_api::{
    CallEvent, CallEventsBatch, Speaker, TRANSFER_TOOL, ToolRequest, events_path, tool_path,
};
use serde_json::json;
use uuid::Uuid;

const NUMBER: &str = "+33612345678";
const PERSON: &str = "+33698765432";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ARGS: &str = r#"{"reason":"asked_for_human","summary":"Claire veut parler des tarifs entreprise."}"#;

async fn within<F: std::future::Future>(f: F) -> F::Output {
    // A hang guard, not a timing assertion.
    tokio::time::timeout(Duration::from_secs(60), f).await.expect("hang")
}

/// A control plane with `extra`; the person at [`PERSON`] does `person`; the callee stays on
/// the line until the call is ended or updated for them.
async fn world(extra: &[(&str, &str)], person: DialScript) -> World {
    let mut env = vec![("CALL_RETRY_DELAYS", "10m")];
    env.extend_from_slice(extra);
    world_with(SimConfig::default(), &env, |c| {
        c.dial.insert(PERSON.into(), person);
        c.no_answer_after = Some(Duration::from_millis(300));
        c.caller = CallerSettings {
            script: vec![Segment::Silence { ms: 200 }],
            pacing: Pacing::Unpaced,
            end: EndPolicy::ServerCloses,
            max_duration: Some(Duration::from_secs(30)),
            ..c.caller.clone()
        };
    })
    .await
}

/// The web flow, then the call answered and its token redeemed: (lead id, call id, CallSid).
async fn answered_call(w: &World) -> (Uuid, Uuid, String) {
    let (lead_id, call_id, sid) = w.place_call().await;
    within(w.twilio.wait_call_status(&sid, CallStatus::InProgress)).await;
    // The stream runs once the token is redeemed.
    timeline_with(&w.cp.app.storage.store, call_id, "stream-started").await;
    (lead_id, call_id, sid)
}

/// The context the edge stand-in got when it redeemed the call's token (known once the
/// stream has ended).
fn redeemed_context(w: &World) -> serde_json::Value {
    let seen = w.edge().seen.lock().unwrap();
    let (status, ctx) = seen.iter().find_map(|s| s.redeemed.clone()).unwrap();
    assert_eq!(status, 200, "{ctx}");
    ctx
}

async fn use_tool(
    w: &World,
    call_id: Uuid,
    tool_call_id: &str,
    arguments: &str,
) -> (bool, serde_json::Value) {
    use_tool_on(&w.cp, call_id, tool_call_id, arguments).await
}

/// [`use_tool`] on the control plane `cp`.
async fn use_tool_on(
    cp: &common::Running,
    call_id: Uuid,
    tool_call_id: &str,
    arguments: &str,
) -> (bool, serde_json::Value) {
    let req = ToolRequest { tool_call_id: tool_call_id.into(), arguments: arguments.into() };
    let r = cp
        .post_internal(&tool_path(&call_id.to_string(), TRANSFER_TOOL), &serde_json::to_value(&req).unwrap())
        .await;
    assert_eq!(r.status, 200, "model mistakes are answers, never errors: {}", r.text);
    let output: serde_json::Value = serde_json::from_str(r.json["output"].as_str().unwrap()).unwrap();
    (r.json["ok"].as_bool().unwrap(), output)
}

/// Waits for `n` requests at the webhook and takes them.
async fn notes(hook: &Recorder, n: usize) -> Vec<common::recorder::Recorded> {
    let mut got = Vec::new();
    within(async {
        while got.len() < n {
            got.extend(hook.take());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(got.len(), n, "{got:?}");
    got
}

async fn timeline(store: &Store, call_id: Uuid) -> Vec<String> {
    store.status_timeline(call_id).await.unwrap()
}

async fn timeline_with(store: &Store, call_id: Uuid, status: &str) -> Vec<String> {
    within(async {
        loop {
            let t = timeline(store, call_id).await;
            if t.iter().any(|s| s == status) {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test]
async fn a_transfer_a_person_takes_is_dialled_once_announced_by_a_signed_note_and_recorded() {
    let hook = Recorder::start().await;
    hook.script([Reply::new(200, "{}"), Reply::new(204, "")]);
    let url = format!("{}/hooks/transfer", hook.base);
    let prices_dir = tempfile::tempdir().unwrap();
    let prices = prices_dir.path().join("prices.json");
    std::fs::write(
        &prices,
        r#"{"currency":"EUR","openai":{"gpt-realtime-2.1":{"input_per_million":32,"output_per_million":64}},"twilio_per_minute":{"FR":0.02,"default":0.05}}"#,
    )
    .unwrap();
    let prices = prices.display().to_string();
    let w = world(
        &[
            ("PRICES_FILE", &prices),
            ("TRANSFER_TARGET", PERSON),
            ("TRANSFER_WEBHOOK_URL", &url),
            ("TRANSFER_WEBHOOK_SECRET", SECRET),
            ("TRANSFER_TIMEOUT_SECS", "15"),
            ("TRANSFER_HOURS", "mon-sun 00:00-24:00"),
        ],
        DialScript::Answer { after: Duration::from_millis(200), talk: Duration::from_millis(1500) },
    )
    .await;
    let store = &w.cp.app.storage.store;
    let (lead, call_id, sid) = answered_call(&w).await;
    // What the gateway reported of the conversation so far.
    let batch = CallEventsBatch {
        seq: 0,
        events: vec![
            CallEvent::Transcript { speaker: Speaker::Agent, text: "Bonjour Claire !".into(), at_ms: 400 },
            CallEvent::Transcript {
                speaker: Speaker::Caller,
                text: "Je voudrais parler à quelqu'un.".into(),
                at_ms: 2100,
            },
        ],
    };
    let r =
        w.cp.post_internal(&events_path(&call_id.to_string()), &serde_json::to_value(&batch).unwrap()).await;
    assert_eq!(r.status, 204, "{}", r.text);

    let (ok, output) = use_tool(&w, call_id, "call_tr1", ARGS).await;
    assert!(ok, "{output}");
    assert_eq!(output["transferring"], true);
    // The gateway sends the same request again (a lost answer): nothing is dialled twice.
    let (ok, again) = use_tool(&w, call_id, "call_tr1", ARGS).await;
    assert!(ok && again["already"] == true, "{again}");

    let done = within(w.twilio.wait_call_finished(&sid)).await;
    assert_eq!(done.status, CallStatus::Completed, "{:?}", done.errors);
    assert!(done.errors.is_empty(), "{:?}", done.errors);
    assert_eq!(done.updates.len(), 1, "dialled once: {:?}", done.updates);
    let action = format!("{}/twilio/transfer?call_id={call_id}", w.cp.base);
    assert_eq!(
        done.updates[0],
        transfer::dial_twiml(&transfer::TransferTarget::Number(PERSON.into()), 15, &action, common::FROM)
    );
    assert!(
        done.updates[0].contains(&format!(r#"<Dial timeout="15" action="{}"#, action.replace('&', "&amp;")))
    );
    assert!(
        matches!(done.caller_reports[0].end, CallEnd::CallerHungUp { .. }),
        "the stream was stopped by the update: {:?}",
        done.caller_reports[0].end
    );
    assert_eq!(done.dials.len(), 1);
    let d = &done.dials[0];
    assert_eq!(
        (d.kind.as_str(), d.target.as_str(), d.status.as_deref()),
        ("number", PERSON, Some("completed"))
    );
    assert_eq!((d.caller_id.as_deref(), d.action_http_status), (Some(common::FROM), Some(200)));
    assert!(done.said.is_empty(), "nothing said after a person took the call: {:?}", done.said);
    assert_eq!(redeemed_context(&w)["transfer"], true, "a target is configured: the tool is offered");
    let cb = w.twilio.callbacks_for(&sid).into_iter().find(|c| c.kind == CallbackKind::DialAction).unwrap();
    assert_eq!(cb.param("DialCallStatus"), Some("completed"));

    let t = timeline_with(store, call_id, "transfer-completed").await;
    let pos = |s: &str| t.iter().position(|x| x == s).unwrap_or_else(|| panic!("{s} missing from {t:?}"));
    pos("transfer-webhook-sent");
    assert!(pos("transfer-requested") < pos("transfer-completed"), "{t:?}");
    assert_eq!(t.iter().filter(|s| *s == "transfer-requested").count(), 1, "{t:?}");
    let rec = callway_control::record::read::call(store, call_id, callway_control::record::Numbers::Masked)
        .await
        .unwrap()
        .unwrap();
    let detail =
        |what: &str| rec.timeline.iter().find(|i| i.what == what).and_then(|i| i.detail.clone()).unwrap();
    let kinds: Vec<&str> =
        rec.timeline.iter().filter(|i| i.what.starts_with("transfer-")).map(|i| i.kind).collect();
    assert!(kinds.len() >= 3 && kinds.iter().all(|k| *k == "transfer"), "{kinds:?}");
    let requested = detail("transfer-requested");
    assert!(
        requested.contains("reason=asked_for_human") && requested.contains("target=number"),
        "{requested}"
    );
    assert!(!requested.contains("98765432"), "no number on the timeline: {requested}");
    let secs = d.duration_secs.unwrap();
    assert_eq!(detail("transfer-completed"), format!("DialCallDuration={secs}"));
    assert!(
        store.retries_for_lead(lead).await.unwrap().is_empty(),
        "a transfer taken is no reason to call again"
    );
    // The transferred leg is billed besides the call, at the target's price.
    timeline_with(store, call_id, "completed").await;
    let total = callway_control::cost::lead_cost(&w.cp.app, lead).await.unwrap().unwrap().total;
    assert_eq!(total.transfer_seconds, secs);
    let twilio_secs = total.twilio_seconds;
    assert_eq!(total.twilio_micros, (twilio_secs.div_ceil(60) + secs.div_ceil(60)) * 20_000, "{total:?}");

    // The hand-over note: signed (Standard Webhooks), with what the person needs; then the
    // outcome.
    let got = notes(&hook, 2).await;
    let note = &got[0];
    assert_eq!(note.path, "/hooks/transfer");
    let (id, ts) = (note.header("webhook-id").unwrap(), note.header("webhook-timestamp").unwrap());
    assert_eq!(id, format!("transfer_{call_id}"));
    let key = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &SECRET[6..]).unwrap();
    assert_eq!(
        note.header("webhook-signature").unwrap(),
        transfer::sign_webhook(&key, id, ts.parse().unwrap(), &note.body),
        "signed over id.timestamp.body"
    );
    let body = note.json();
    assert_eq!(body["type"], "call.transfer_requested");
    let data = &body["data"];
    assert_eq!(
        (data["call_id"].as_str(), data["lead_id"].as_str()),
        (Some(&*call_id.to_string()), Some(&*lead.to_string()))
    );
    assert_eq!(data["call_sid"], sid.as_str());
    assert_eq!(
        data["lead"],
        json!({"first_name": "Claire", "last_name": "Martin", "phone_e164": NUMBER, "language": "fr"})
    );
    assert_eq!(
        (data["reason"].as_str(), data["web_summary"].as_str()),
        (Some("asked_for_human"), Some("Veut une démo."))
    );
    assert_eq!(data["summary"], "Claire veut parler des tarifs entreprise.");
    assert_eq!(
        data["transcript"],
        json!([
            {"speaker": "agent", "text": "Bonjour Claire !", "at_ms": 400},
            {"speaker": "caller", "text": "Je voudrais parler à quelqu'un.", "at_ms": 2100},
        ])
    );

    let outcome = &got[1];
    let (id, ts) = (outcome.header("webhook-id").unwrap(), outcome.header("webhook-timestamp").unwrap());
    assert_eq!(id, format!("transfer_{call_id}_outcome"));
    assert_eq!(
        outcome.header("webhook-signature").unwrap(),
        transfer::sign_webhook(&key, id, ts.parse().unwrap(), &outcome.body)
    );
    let body = outcome.json();
    assert_eq!(body["type"], "call.transfer_completed");
    assert_eq!(
        body["data"],
        json!({"call_id": call_id, "lead_id": lead, "call_sid": sid, "dial_status": "completed",
               "duration_secs": secs, "retry_scheduled": false})
    );
    assert_eq!(hook.unused(), 0);

    let metrics = w.cp.app.metrics.render();
    for line in [
        "callway_transfers_total{outcome=\"requested\"} 1",
        "callway_transfers_total{outcome=\"completed\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing: {metrics}");
    }

    // Erasing the number removes the transfer's traces with the call.
    let r = w.cp.post_json("/admin/erase", Some(common::ADMIN_TOKEN), &json!({"phone": NUMBER})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(timeline(store, call_id).await.is_empty());
    assert!(store.get_call(call_id).await.unwrap().is_none());
}

#[tokio::test]
async fn two_control_planes_asked_at_once_dial_the_person_once() {
    let w = world(
        &[("TRANSFER_TARGET", PERSON), ("TRANSFER_HOURS", "mon-sun 00:00-24:00")],
        DialScript::Answer { after: Duration::from_millis(200), talk: Duration::from_millis(1000) },
    )
    .await;
    // A second control plane on the same database, as behind a load balancer.
    let second = common::Running::start(w.env.clone()).await;
    let (_, call_id, sid) = answered_call(&w).await;
    let (a, b) = within(async {
        tokio::join!(
            use_tool_on(&w.cp, call_id, "call_tr_a", ARGS),
            use_tool_on(&second, call_id, "call_tr_b", ARGS)
        )
    })
    .await;
    assert!(a.0 && b.0, "both answered ok: {a:?} {b:?}");
    let told_already = [&a.1, &b.1].iter().filter(|o| o["already"] == true).count();
    assert_eq!(told_already, 1, "one dials, the other is told it is under way: {a:?} {b:?}");
    let done = within(w.twilio.wait_call_finished(&sid)).await;
    assert_eq!(done.updates.len(), 1, "dialled once: {:?}", done.updates);
    let t = timeline(&w.cp.app.storage.store, call_id).await;
    assert_eq!(t.iter().filter(|s| *s == "transfer-requested").count(), 1, "{t:?}");
}

#[tokio::test]
async fn nobody_taking_the_transfer_hears_the_message_in_french_then_a_retry_is_scheduled() {
    for (person, status) in [
        (DialScript::Busy { after: Duration::from_millis(200) }, "busy"),
        (DialScript::NoAnswer, "no-answer"),
    ] {
        let hook = Recorder::start().await;
        // The hand-over note is refused: logged and recorded, the transfer goes on.
        hook.script([Reply::new(500, "{}"), Reply::new(200, "{}")]);
        let url = format!("{}/hooks/transfer", hook.base);
        let env = [
            ("TRANSFER_TARGET", PERSON),
            ("TRANSFER_WEBHOOK_URL", &url),
            ("TRANSFER_WEBHOOK_SECRET", SECRET),
        ];
        let w = world(&env, person).await;
        let store = &w.cp.app.storage.store;
        let (lead, call_id, sid) = answered_call(&w).await;
        let (ok, output) = use_tool(&w, call_id, "call_tr2", ARGS).await;
        assert!(ok, "{output}");
        let done = within(w.twilio.wait_call_finished(&sid)).await;
        assert_eq!(done.status, CallStatus::Completed, "{:?}", done.errors);
        assert_eq!(done.dials[0].status.as_deref(), Some(status));
        assert_eq!(done.said.len(), 1, "{status}: {:?}", done.said);
        assert_eq!(done.said[0].text, transfer::DEFAULT_FAILED_MESSAGE_FR);
        assert_eq!(done.said[0].language.as_deref(), Some("fr-FR"));
        let failed = format!("transfer-failed-{status}");
        let t = timeline_with(store, call_id, &failed).await;
        assert!(t.contains(&"transfer-requested".to_owned()), "{t:?}");
        let t = timeline_with(store, call_id, "retry-scheduled").await;
        assert_eq!(t.iter().filter(|s| **s == failed).count(), 1, "{t:?}");
        let retries = store.retries_for_lead(lead).await.unwrap();
        assert_eq!((retries.len(), retries[0].reason.as_str()), (1, "transfer-failed"), "{retries:?}");
        let metrics = w.cp.app.metrics.render();
        assert!(metrics.contains("callway_transfers_total{outcome=\"failed\"} 1"), "{metrics}");
        assert!(t.contains(&"transfer-webhook-failed".to_owned()), "{t:?}");
        let got = notes(&hook, 2).await;
        let outcome = got[1].json();
        assert_eq!(outcome["type"], "call.transfer_failed");
        assert_eq!(
            (outcome["data"]["dial_status"].as_str(), outcome["data"]["retry_scheduled"].as_bool()),
            (Some(status), Some(true))
        );
    }
}

#[tokio::test]
async fn without_a_target_the_tool_is_not_offered_and_refused_if_called() {
    let w = world(&[], DialScript::Failed).await;
    let store = &w.cp.app.storage.store;
    let (_, call_id, sid) = answered_call(&w).await;
    let (ok, output) = use_tool(&w, call_id, "call_tr3", ARGS).await;
    assert!(!ok);
    assert_eq!(output["error"], "transfer_unavailable");
    assert!(output["message"].as_str().unwrap().contains("go on"), "{output}");
    let snap = w.twilio.call(&sid).unwrap();
    assert!(snap.updates.is_empty() && snap.dials.is_empty());
    assert!(!timeline(store, call_id).await.iter().any(|s| s.starts_with("transfer-")));
    hang_up(&w, &sid).await;
    let ctx = redeemed_context(&w);
    assert!(ctx.get("transfer").is_none_or(|t| t == false), "{ctx}");
}

#[tokio::test]
async fn outside_the_teams_hours_the_tool_is_not_offered_and_refused_if_called() {
    let w = world(&[("TRANSFER_TARGET", PERSON), ("TRANSFER_HOURS", "none")], DialScript::Failed).await;
    let store = &w.cp.app.storage.store;
    let (_, call_id, sid) = answered_call(&w).await;
    let (ok, output) = use_tool(&w, call_id, "call_late", ARGS).await;
    assert!(!ok);
    assert_eq!(output["error"], "transfer_closed");
    let snap = w.twilio.call(&sid).unwrap();
    assert!(snap.updates.is_empty() && snap.dials.is_empty());
    let t = timeline(store, call_id).await;
    assert!(
        t.contains(&"transfer-closed".to_owned()) && !t.contains(&"transfer-requested".to_owned()),
        "{t:?}"
    );
    hang_up(&w, &sid).await;
    let ctx = redeemed_context(&w);
    assert!(ctx.get("transfer").is_none_or(|t| t == false), "{ctx}");
}

#[tokio::test]
async fn bad_arguments_are_answered_to_the_model_and_nothing_is_dialled() {
    let w = world(&[("TRANSFER_TARGET", "sip:desk@pbx.example.eu")], DialScript::Failed).await;
    let store = &w.cp.app.storage.store;
    let (_, call_id, sid) = answered_call(&w).await;
    for (args, code) in [
        ("{not json", "arguments_invalid"),
        (r#"{"reason":"asked_for_human"}"#, "arguments_invalid"),
        (r#"{"reason":"lunch","summary":"x"}"#, "reason_invalid"),
        (r#"{"reason":"complaint","summary":""}"#, "summary_invalid"),
    ] {
        let (ok, output) = use_tool(&w, call_id, "call_bad", args).await;
        assert!(!ok, "{args}");
        assert_eq!(output["error"], code, "{args}: {output}");
    }
    let snap = w.twilio.call(&sid).unwrap();
    assert!(snap.updates.is_empty() && snap.dials.is_empty(), "{:?}", snap.updates);
    assert!(!timeline(store, call_id).await.iter().any(|s| s.starts_with("transfer-")));
    assert!(w.cp.app.metrics.render().contains("callway_transfers_total{outcome=\"refused\"} 4"));
    // An unknown call is the gateway's mistake, not the model's.
    let req = json!({"tool_call_id": "c", "arguments": ARGS});
    let r = w.cp.post_internal(&tool_path(&Uuid::new_v4().to_string(), TRANSFER_TOOL), &req).await;
    assert_eq!((r.status, r.code()), (404, "call_unknown"));
    hang_up(&w, &sid).await;

    // Twilio refuses to move a call that has ended: the model is told, the refusal recorded.
    let (ok, output) = use_tool(&w, call_id, "call_late", ARGS).await;
    assert!(!ok);
    assert_eq!(output["message"], "the transfer could not be made; tell the caller and go on");
    let t = timeline(store, call_id).await;
    assert!(
        t.contains(&"transfer-refused".to_owned()) && !t.contains(&"transfer-requested".to_owned()),
        "{t:?}"
    );
}

#[tokio::test]
async fn a_transfer_twilio_refuses_is_never_announced_and_may_be_asked_again() {
    let hook = Recorder::start().await;
    let url = format!("{}/hooks/transfer", hook.base);
    let w = world(
        &[("TRANSFER_TARGET", PERSON), ("TRANSFER_WEBHOOK_URL", &url), ("TRANSFER_WEBHOOK_SECRET", SECRET)],
        DialScript::Answer { after: Duration::from_millis(200), talk: Duration::from_millis(500) },
    )
    .await;
    let (_, call_id, sid) = answered_call(&w).await;
    hang_up(&w, &sid).await;
    for attempt in ["call_late_1", "call_late_2"] {
        let (ok, output) = use_tool(&w, call_id, attempt, ARGS).await;
        assert!(!ok, "{output}");
        assert!(output.get("already").is_none(), "the lease was given back: {output}");
    }
    let t = timeline(&w.cp.app.storage.store, call_id).await;
    assert_eq!(t.iter().filter(|s| *s == "transfer-refused").count(), 2, "{t:?}");
    assert!(!t.iter().any(|s| s.starts_with("transfer-webhook")), "{t:?}");
    assert!(hook.take().is_empty(), "no hand-over note for a transfer that did not happen");
}

#[tokio::test]
async fn the_dial_action_is_verified_and_acted_on_once() {
    let w = world(&[("TRANSFER_TARGET", PERSON)], DialScript::Failed).await;
    let store = &w.cp.app.storage.store;
    let (lead, call_id, sid) = answered_call(&w).await;
    let path = format!("/twilio/transfer?call_id={call_id}");
    let form = [
        ("AccountSid", common::ACCOUNT_SID),
        ("CallSid", sid.as_str()),
        ("CallStatus", "in-progress"),
        ("DialCallDuration", "0"),
        ("DialCallSid", "CA00000000000000000000000000000001"),
        ("DialCallStatus", "no-answer"),
    ];
    let body = serde_urlencoded::to_string(form).unwrap();
    let post = |sig: Option<String>| {
        let mut req =
            w.cp.http
                .post(w.cp.url(&path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone());
        if let Some(s) = sig {
            req = req.header("x-twilio-signature", s);
        }
        async move { common::Answer::of_response(req.send().await.unwrap()).await }
    };
    let r = post(None).await;
    assert_eq!((r.status, r.code()), (401, "signature_missing"));
    let forged =
        contract::twilio_signature::TwilioSigner::new(b"not-the-auth-token").sign(&w.cp.url(&path), &form);
    let r = post(Some(forged)).await;
    assert_eq!((r.status, r.code()), (403, "signature_invalid"));
    assert!(!timeline(store, call_id).await.iter().any(|s| s.starts_with("transfer-")), "nothing recorded");
    assert!(store.retries_for_lead(lead).await.unwrap().is_empty());

    // Signed as Twilio signs it, twice (Twilio retried): recorded and acted on once, the same
    // TwiML answered both times.
    let signed = contract::twilio_signature::TwilioSigner::new(common::AUTH_TOKEN.as_bytes())
        .sign(&w.cp.url(&path), &form);
    let first = post(Some(signed.clone())).await;
    let second = post(Some(signed)).await;
    assert_eq!((first.status, second.status), (200, 200), "{}", first.text);
    assert!(first.headers["content-type"].to_str().unwrap().starts_with("text/xml"));
    assert!(
        first.text.contains(transfer::DEFAULT_FAILED_MESSAGE_FR.split('\'').next().unwrap()),
        "{}",
        first.text
    );
    assert!(first.text.ends_with("<Hangup/></Response>"));
    assert_eq!(first.text, second.text);
    let t = timeline(store, call_id).await;
    assert_eq!(t.iter().filter(|s| *s == "transfer-failed-no-answer").count(), 1, "{t:?}");
    assert_eq!(store.retries_for_lead(lead).await.unwrap().len(), 1);
    hang_up(&w, &sid).await;
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

/// Through the real gateway, on each engine: the agent greets, the callee asks for a person,
/// the model announces the transfer and calls `transfer_to_human`; once the announcement has
/// played the gateway runs the tool, the control plane dials the person with `<Dial>`, Twilio
/// stops the stream and the gateway ends its call as `transferred`.
#[tokio::test]
async fn through_the_gateway_the_announcement_plays_then_the_call_is_handed_to_the_person() {
    use callway_sim_openai::{Reply as Say, Script, ToolCall};
    for engine in [&[][..], &[("OPENAI_VOICE_API", "live")][..]] {
        let script = Script::replies([Say::tone(440.0, 600, "Bonjour Claire, ici Callway.")]).with_tool_call(
            ToolCall::new(1, TRANSFER_TOOL, ARGS).with_preamble(Say::tone(
                440.0,
                800,
                "Je vous passe un conseiller, un instant.",
            )),
        );
        let mut env = vec![("TRANSFER_TARGET", PERSON), ("CALL_RETRY_DELAYS", "10m")];
        env.extend_from_slice(engine);
        let w =
            common::world::world_through_gateway(SimConfig { script, ..SimConfig::default() }, &env, |c| {
                c.dial.insert(
                    PERSON.into(),
                    DialScript::Answer {
                        after: Duration::from_millis(300),
                        talk: Duration::from_millis(500),
                    },
                );
                c.caller = CallerSettings {
                    // Hears the greeting, asks for a person, then listens until the call moves.
                    script: vec![
                        Segment::AwaitAgent { settle_ms: 300, timeout_ms: 20_000 },
                        Segment::Tone { hz: 300.0, ms: 800 },
                        Segment::Silence { ms: 20_000 },
                    ],
                    pacing: Pacing::RealTime,
                    end: EndPolicy::ServerCloses,
                    max_duration: Some(Duration::from_secs(40)),
                    ..c.caller.clone()
                };
            })
            .await;
        let store = &w.cp.app.storage.store;
        let (_, call_id, sid) = answered_call(&w).await;
        let done = within(w.twilio.wait_call_finished(&sid)).await;
        assert_eq!(done.status, CallStatus::Completed, "{engine:?}: {:?}", done.errors);
        assert_eq!(done.dials.len(), 1, "{engine:?}: the person was dialled once: {:?}", done.dials);
        let t = timeline_with(store, call_id, "transfer-completed").await;
        assert!(t.contains(&"transfer-requested".to_owned()), "{engine:?}: {t:?}");
        let report = &done.caller_reports[0];
        assert!(report.audio_received_bytes > 0, "{engine:?}: greeting and announcement heard");
        let metrics = w.gateway().metrics().await;
        assert!(
            metrics.contains("callway_gateway_calls_total{reason=\"transferred\"} 1"),
            "{engine:?}: {}\n{}",
            metrics.lines().filter(|l| l.contains("calls_total")).collect::<Vec<_>>().join("\n"),
            w.gateway().log()
        );
    }
}
