//! Calls placed by the REST simulator: ringing, outcomes, TwiML, the Media Stream to a
//! reference gateway, status and stream callbacks (signed as Twilio signs them), hang-up.
//! Under `tokio::time::pause`: the ring delay and timeouts run on the virtual clock.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use callway_sim_twilio::api::{ApiConfig, ApiHandle, CallSnapshot, CallStatus, Outcome, TwilioApiSim};
use callway_sim_twilio::callbacks::{CallbackKind, CallbackRecord};
use callway_sim_twilio::caller::{CallEnd, EndPolicy, HangupCause, Segment};
use callway_sim_twilio::playback::MarkOutcome;
use callway_sim_twilio::{sids, twiml};
use common::{Receiver, connection_counter, serve_once, within};
use contract::twilio_signature::{TwilioSigner, UpgradeSignature};
use serde_json::Value;
use tokio::sync::oneshot;

const FROM: &str = "+33100000001";
const ALL_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().tcp_nodelay(true).build().unwrap()
}

fn base_config() -> ApiConfig {
    ApiConfig { owned_numbers: vec![FROM.into()], ring_delay: Duration::from_secs(2), ..ApiConfig::default() }
}

async fn create(h: &ApiHandle, form: &[(&str, &str)]) -> Value {
    let r = client()
        .post(h.calls_url())
        .basic_auth(h.account_sid(), Some(h.auth_token()))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

async fn update(h: &ApiHandle, sid: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let url = format!("{}/2010-04-01/Accounts/{}/Calls/{sid}.json", h.base_url(), h.account_sid());
    let r =
        client().post(url).basic_auth(h.account_sid(), Some(h.auth_token())).form(form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn with_events<'a>(mut form: Vec<(&'a str, &'a str)>, status_url: &'a str) -> Vec<(&'a str, &'a str)> {
    form.push(("StatusCallback", status_url));
    for e in ALL_EVENTS {
        form.push(("StatusCallbackEvent", e));
    }
    form
}

fn verify(token: &str, cb: &CallbackRecord) -> bool {
    TwilioSigner::new(token.as_bytes()).verify_form(&cb.url, &cb.param_pairs(), &cb.signature)
}

fn status_events(cbs: &[CallbackRecord]) -> Vec<(String, String)> {
    cbs.iter()
        .filter(|c| c.kind == CallbackKind::CallStatus)
        .map(|c| (c.event.clone(), c.param("CallStatus").unwrap().to_owned()))
        .collect()
}

fn statuses(c: &CallSnapshot) -> Vec<CallStatus> {
    c.timeline.iter().map(|s| s.status).collect()
}

#[tokio::test(start_paused = true)]
async fn answered_call_streams_to_the_gateway_with_signed_callbacks() {
    let app = Receiver::spawn().await;
    app.answer("/stream-status", 503, "");
    let mut cfg = base_config();
    cfg.caller.script = vec![Segment::Tone { hz: 300.0, ms: 200 }, Segment::Silence { ms: 10_000 }];
    cfg.caller.end = EndPolicy::ServerCloses;
    let h = TwilioApiSim::spawn(cfg).await.unwrap();
    let token = h.auth_token().to_owned();
    let agent_audio: Vec<u8> = (0..400).map(|i| (i % 200) as u8).collect();
    let sent = agent_audio.clone();
    let path = "/api/twilio/media-stream/v1.abc.def";
    let (stream_url, gateway) = serve_once(path, move |mut peer| async move {
        let (start, _) = peer.until_event("start").await;
        let mz = start["streamSid"].as_str().unwrap().to_owned();
        peer.send_media(&mz, &sent).await;
        peer.send_mark(&mz, "m1").await;
        let (echo, _) = peer.until_event("mark").await;
        assert_eq!(echo["mark"]["name"], "m1");
        let closed = peer.close().await;
        (start, closed)
    })
    .await;
    let status_url = app.url("/status?tenant=7");
    let stream_status_url = app.url("/stream-status");
    let doc = twiml::connect_stream(&stream_url, Some(&stream_status_url), &[("lead_id", "42")]);
    let form = with_events(vec![("To", "+33612345678"), ("From", FROM), ("Twiml", &doc)], &status_url);
    let created = create(&h, &form).await;
    let sid = created["sid"].as_str().unwrap().to_owned();

    let call = within(600, h.wait_call_finished(&sid)).await;
    let (start, gateway_closed) = gateway.await.unwrap();

    // The stream: signed upgrade over the TwiML URL, start with the call's identity and parameters.
    let report = &call.caller_reports[0];
    assert_eq!(
        TwilioSigner::new(token.as_bytes()).verify_upgrade(&stream_url, report.signature.as_bytes()),
        UpgradeSignature::Valid
    );
    assert_eq!(start["start"]["callSid"], sid.as_str());
    assert_eq!(start["start"]["accountSid"], h.account_sid());
    assert_eq!(start["start"]["customParameters"], serde_json::json!({"lead_id": "42"}));
    assert!(sids::is_sid(start["streamSid"].as_str().unwrap(), "MZ"));
    assert_eq!(report.heard, agent_audio);
    assert_eq!(
        report.marks.iter().map(|m| (m.name.as_str(), m.outcome)).collect::<Vec<_>>(),
        vec![("m1", MarkOutcome::Played)]
    );
    assert_eq!(report.end, CallEnd::ServerClosed { code: Some(1000), reason: String::new() });
    assert!(gateway_closed);

    // Status timeline on the simulator's clock: rang for the ring delay, then the TwiML ran to <Hangup/>.
    assert_eq!(
        statuses(&call),
        vec![CallStatus::Queued, CallStatus::Ringing, CallStatus::InProgress, CallStatus::Completed]
    );
    assert!(call.answered_at.unwrap() >= call.created_at + Duration::from_secs(2));
    assert!(call.errors.is_empty(), "{:?}", call.errors);

    // Callbacks: in order, Twilio's parameters, signed, and the status the application answered.
    let cbs = h.callbacks_for(&sid);
    let order: Vec<&str> = cbs.iter().map(|c| c.event.as_str()).collect();
    assert_eq!(
        order,
        vec!["initiated", "ringing", "answered", "stream-started", "stream-stopped", "completed"]
    );
    assert_eq!(
        status_events(&cbs),
        vec![
            ("initiated".into(), "initiated".into()),
            ("ringing".into(), "ringing".into()),
            ("answered".into(), "in-progress".into()),
            ("completed".into(), "completed".into())
        ]
    );
    let progress: Vec<&CallbackRecord> = cbs.iter().filter(|c| c.kind == CallbackKind::CallStatus).collect();
    for (i, cb) in progress.iter().enumerate() {
        assert_eq!(cb.param("SequenceNumber"), Some(i.to_string().as_str()));
        assert_eq!(cb.param("CallSid"), Some(sid.as_str()));
        assert_eq!(cb.param("AccountSid"), Some(h.account_sid()));
        assert_eq!(cb.param("ApiVersion"), Some("2010-04-01"));
        assert_eq!(cb.param("Direction"), Some("outbound-api"));
        assert_eq!(cb.param("CallbackSource"), Some("call-progress-events"));
        assert_eq!((cb.param("To"), cb.param("From")), (Some("+33612345678"), Some(FROM)));
        assert!(
            time::OffsetDateTime::parse(
                cb.param("Timestamp").unwrap(),
                &time::format_description::well_known::Rfc2822
            )
            .is_ok()
        );
        assert_eq!(cb.http_status, Some(200));
        assert_eq!(cb.url, status_url);
    }
    assert_eq!(progress[3].param("CallDuration"), Some(call.duration_secs.unwrap().to_string().as_str()));
    assert!(progress[..3].iter().all(|c| c.param("CallDuration").is_none()));
    let stream_cbs: Vec<&CallbackRecord> =
        cbs.iter().filter(|c| c.kind == CallbackKind::StreamStatus).collect();
    for cb in &stream_cbs {
        assert_eq!(cb.param("StreamSid"), Some(report.stream_sid.as_str()));
        assert_eq!(cb.param("StreamName"), Some(report.stream_sid.as_str()));
        assert_eq!(cb.param("CallSid"), Some(sid.as_str()));
        assert!(cb.param("StreamError").is_none());
        assert!(cb.param("Timestamp").unwrap().ends_with('Z'));
        assert_eq!(cb.http_status, Some(503));
    }
    assert!(cbs.iter().all(|cb| verify(&token, cb)), "every callback verifies with contract's verify_form");

    // What the application received matches: the header, the body, the signature over its URL.
    let received = app.requests();
    assert_eq!(received.len(), 6);
    for (got, cb) in received.iter().zip(&cbs) {
        assert_eq!(got.method, "POST");
        assert_eq!(got.header("content-type"), Some("application/x-www-form-urlencoded"));
        assert_eq!(got.header("x-twilio-signature"), Some(cb.signature.as_str()));
        let url = app.url(&got.path_and_query);
        let form = got.form();
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(TwilioSigner::new(token.as_bytes()).verify_form(
            &url,
            &pairs,
            got.header("x-twilio-signature").unwrap()
        ));
        assert_eq!(form, cb.params);
    }
}

#[tokio::test(start_paused = true)]
async fn no_answer_after_shortens_the_ring_but_never_past_the_timeout() {
    let app = Receiver::spawn().await;
    let cfg = ApiConfig { no_answer_after: Some(Duration::from_secs(3)), ..base_config() };
    let h = TwilioApiSim::spawn(cfg).await.unwrap();
    h.set_outcome("+33600000002", Outcome::NoAnswer);
    let (gw, _) = connection_counter().await;
    let doc = twiml::connect_stream(&format!("ws://{gw}/s"), None, &[]);
    let status_url = app.url("/status");
    let mut sids = Vec::new();
    for timeout in ["15", "2"] {
        let form = with_events(
            vec![("To", "+33600000002"), ("From", FROM), ("Twiml", &doc), ("Timeout", timeout)],
            &status_url,
        );
        sids.push(create(&h, &form).await["sid"].as_str().unwrap().to_owned());
    }
    let short = within(600, h.wait_call_finished(&sids[0])).await;
    let capped = within(600, h.wait_call_finished(&sids[1])).await;
    for c in [&short, &capped] {
        assert_eq!(statuses(c), vec![CallStatus::Queued, CallStatus::Ringing, CallStatus::NoAnswer]);
    }
    let rang = |c: &CallSnapshot| c.ended_at.unwrap() - c.created_at;
    assert!(
        rang(&short) >= Duration::from_secs(3) && rang(&short) < Duration::from_secs(15),
        "{:?}",
        rang(&short)
    );
    assert!(
        rang(&capped) >= Duration::from_secs(2) && rang(&capped) < Duration::from_secs(3),
        "{:?}",
        rang(&capped)
    );
    assert_eq!(h.callbacks_for(&sids[0]).last().unwrap().param("CallStatus"), Some("no-answer"));
}

#[tokio::test(start_paused = true)]
async fn busy_no_answer_and_failed_numbers() {
    let app = Receiver::spawn().await;
    let h = TwilioApiSim::spawn(base_config()).await.unwrap();
    h.set_outcome("+33600000001", Outcome::Busy);
    h.set_outcome("+33600000002", Outcome::NoAnswer);
    h.set_outcome("+33600000003", Outcome::Failed);
    let (gw, connections) = connection_counter().await;
    let doc = twiml::connect_stream(&format!("ws://{gw}/s"), None, &[]);
    let status_url = app.url("/status");
    let mut sids = Vec::new();
    for (to, timeout) in [("+33600000001", "60"), ("+33600000002", "15"), ("+33600000003", "60")] {
        let form =
            with_events(vec![("To", to), ("From", FROM), ("Twiml", &doc), ("Timeout", timeout)], &status_url);
        sids.push(create(&h, &form).await["sid"].as_str().unwrap().to_owned());
    }
    let busy = within(600, h.wait_call_finished(&sids[0])).await;
    let no_answer = within(600, h.wait_call_finished(&sids[1])).await;
    let failed = within(600, h.wait_call_finished(&sids[2])).await;

    assert_eq!(statuses(&busy), vec![CallStatus::Queued, CallStatus::Ringing, CallStatus::Busy]);
    assert_eq!(statuses(&no_answer), vec![CallStatus::Queued, CallStatus::Ringing, CallStatus::NoAnswer]);
    assert_eq!(statuses(&failed), vec![CallStatus::Queued, CallStatus::Failed]);
    // No answer means ringing for the whole Timeout.
    assert!(no_answer.ended_at.unwrap() >= no_answer.created_at + Duration::from_secs(15));
    for c in [&busy, &no_answer, &failed] {
        assert_eq!(c.duration_secs, Some(0));
        assert!(c.answered_at.is_none() && c.caller_reports.is_empty());
    }
    let last = |sid: &str| h.callbacks_for(sid).last().cloned().unwrap();
    assert_eq!(
        status_events(&h.callbacks_for(&sids[0])).iter().map(|(e, _)| e.as_str()).collect::<Vec<_>>(),
        vec!["initiated", "ringing", "completed"]
    );
    assert_eq!(last(&sids[0]).param("CallStatus"), Some("busy"));
    assert_eq!(last(&sids[1]).param("CallStatus"), Some("no-answer"));
    assert_eq!(
        status_events(&h.callbacks_for(&sids[2])).iter().map(|(e, _)| e.as_str()).collect::<Vec<_>>(),
        vec!["initiated", "completed"]
    );
    assert_eq!(last(&sids[2]).param("CallStatus"), Some("failed"));
    assert_eq!(last(&sids[2]).param("CallDuration"), Some("0"));
    // The resource: dialled (start_time), but no duration for a call nobody answered.
    let url = format!("{}/2010-04-01/Accounts/{}/Calls/{}.json", h.base_url(), h.account_sid(), sids[0]);
    let r = client().get(url).basic_auth(h.account_sid(), Some(h.auth_token())).send().await.unwrap();
    let resource: Value = r.json().await.unwrap();
    assert_eq!(resource["status"], "busy");
    assert!(
        resource["duration"].is_null()
            && resource["start_time"].is_string()
            && resource["end_time"].is_string()
    );
    tokio::task::yield_now().await;
    assert_eq!(*connections.lock().unwrap(), 0, "nobody answered, so no stream was opened");
}

#[tokio::test(start_paused = true)]
async fn hang_up_an_answered_call_through_the_api() {
    let app = Receiver::spawn().await;
    let mut cfg = base_config();
    cfg.caller.script = vec![Segment::Silence { ms: 3_600_000 }];
    cfg.caller.end = EndPolicy::ServerCloses;
    let h = TwilioApiSim::spawn(cfg).await.unwrap();
    let (started_tx, started_rx) = oneshot::channel();
    let (stream_url, gateway) = serve_once("/s", move |mut peer| async move {
        let (start, _) = peer.until_event("start").await;
        started_tx.send(start["start"]["callSid"].as_str().unwrap().to_owned()).unwrap();
        let (stop, _) = peer.until_event("stop").await;
        let close = peer.recv().await;
        (stop, matches!(close, Some(tokio_tungstenite::tungstenite::Message::Close(_))))
    })
    .await;
    let doc = twiml::connect_stream(&stream_url, Some(&app.url("/stream")), &[]);
    let status_url = app.url("/status");
    let form = with_events(vec![("To", "+33612345678"), ("From", FROM), ("Twiml", &doc)], &status_url);
    let sid = create(&h, &form).await["sid"].as_str().unwrap().to_owned();
    assert_eq!(within(600, started_rx).await.unwrap(), sid);

    let (status, body) = update(&h, &sid, &[("Status", "completed")]).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("completed")));
    let call = within(600, h.wait_call_finished(&sid)).await;
    let (stop, closed) = gateway.await.unwrap();
    assert_eq!(stop["stop"]["callSid"], sid.as_str());
    assert!(closed, "after `stop` the stream is closed");
    assert_eq!(call.status, CallStatus::Completed);
    assert_eq!(call.caller_reports[0].end, CallEnd::CallerHungUp { cause: HangupCause::Requested });
    let events: Vec<String> = h.callbacks_for(&sid).iter().map(|c| c.event.clone()).collect();
    assert_eq!(
        events,
        vec!["initiated", "ringing", "answered", "stream-started", "stream-stopped", "completed"]
    );
    assert_eq!(h.callbacks_for(&sid).last().unwrap().param("CallStatus"), Some("completed"));
    // Hanging up again changes nothing.
    let (status, body) = update(&h, &sid, &[("Status", "completed")]).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("completed")));
}

#[tokio::test(start_paused = true)]
async fn hang_up_before_answer_cancels() {
    let app = Receiver::spawn().await;
    let mut cfg = base_config();
    cfg.ring_delay = Duration::from_secs(30);
    let h = TwilioApiSim::spawn(cfg).await.unwrap();
    let (gw, connections) = connection_counter().await;
    let doc = twiml::connect_stream(&format!("ws://{gw}/s"), None, &[]);
    let status_url = app.url("/status");
    let sid =
        create(&h, &with_events(vec![("To", "+33612345678"), ("From", FROM), ("Twiml", &doc)], &status_url))
            .await["sid"]
            .as_str()
            .unwrap()
            .to_owned();
    within(600, h.wait_call_status(&sid, CallStatus::Ringing)).await;
    let (status, body) = update(&h, &sid, &[("Status", "completed")]).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("canceled")));
    let call = within(600, h.wait_call_finished(&sid)).await;
    assert_eq!(statuses(&call), vec![CallStatus::Queued, CallStatus::Ringing, CallStatus::Canceled]);
    assert_eq!(
        status_events(&h.callbacks_for(&sid)).last().unwrap(),
        &("completed".to_owned(), "canceled".to_owned())
    );
    assert!(call.ended_at.unwrap() < call.created_at + Duration::from_secs(30), "canceled while ringing");
    tokio::task::yield_now().await;
    assert_eq!(*connections.lock().unwrap(), 0);
    // An unknown status value is refused.
    let (status, body) = update(&h, &sid, &[("Status", "paused")]).await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(20001)));
}

#[tokio::test(start_paused = true)]
async fn stream_url_with_a_query_string_is_refused_with_a_stream_error() {
    let app = Receiver::spawn().await;
    let h = TwilioApiSim::spawn(base_config()).await.unwrap();
    let (gw, connections) = connection_counter().await;
    let doc = twiml::connect_stream(&format!("ws://{gw}/s?token=abc"), Some(&app.url("/stream")), &[]);
    let sid = create(&h, &[("To", "+33612345678"), ("From", FROM), ("Twiml", &doc)]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = within(600, h.wait_call_finished(&sid)).await;
    assert_eq!(call.errors.iter().map(|e| e.code).collect::<Vec<_>>(), vec![31920]);
    let cbs = h.callbacks_for(&sid);
    let stream_error = cbs.iter().find(|c| c.event == "stream-error").expect("stream-error callback");
    assert_eq!(stream_error.param("StreamEvent"), Some("stream-error"));
    assert!(stream_error.param("StreamError").unwrap().starts_with("31920"));
    assert!(verify(h.auth_token(), stream_error));
    assert!(!cbs.iter().any(|c| c.event == "stream-started"));
    // The document went on to <Hangup/>: the call completed normally.
    assert_eq!(call.status, CallStatus::Completed);
    tokio::task::yield_now().await;
    assert_eq!(*connections.lock().unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn strict_mode_refuses_ws_stream_urls_with_31922() {
    let mut cfg = base_config();
    cfg.strict_wss = true;
    let h = TwilioApiSim::spawn(cfg).await.unwrap();
    let (gw, connections) = connection_counter().await;
    let doc = twiml::connect_stream(&format!("ws://{gw}/s"), None, &[]);
    let sid = create(&h, &[("To", "+33612345678"), ("From", FROM), ("Twiml", &doc)]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = within(600, h.wait_call_finished(&sid)).await;
    assert_eq!(call.errors.iter().map(|e| e.code).collect::<Vec<_>>(), vec![31922]);
    tokio::task::yield_now().await;
    assert_eq!(*connections.lock().unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn twiml_is_fetched_from_url_with_a_signed_request() {
    let app = Receiver::spawn().await;
    app.answer("/twiml", 200, r#"<?xml version="1.0"?><Response><Pause length="3"/><Hangup/></Response>"#);
    app.answer("/broken", 500, "");
    let h = TwilioApiSim::spawn(base_config()).await.unwrap();
    let url = app.url("/twiml?campaign=9");
    let sid = create(&h, &[("To", "+33612345678"), ("From", FROM), ("Url", &url)]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = within(600, h.wait_call_finished(&sid)).await;
    assert_eq!(call.status, CallStatus::Completed);
    assert!(call.duration_secs.unwrap() >= 3, "the <Pause> ran");
    let fetch = &h.callbacks_for(&sid)[0];
    assert_eq!(
        (fetch.kind, fetch.method.as_str(), fetch.http_status),
        (CallbackKind::TwimlFetch, "POST", Some(200))
    );
    assert_eq!(fetch.param("CallStatus"), Some("in-progress"));
    assert!(verify(h.auth_token(), fetch));
    let got = &app.requests()[0];
    assert_eq!(got.path_and_query, "/twiml?campaign=9");
    assert_eq!(got.header("x-twilio-signature"), Some(fetch.signature.as_str()));

    // A failing TwiML URL: error 11200, the call ends.
    let sid =
        create(&h, &[("To", "+33612345678"), ("From", FROM), ("Url", &app.url("/broken"))]).await["sid"]
            .as_str()
            .unwrap()
            .to_owned();
    let call = within(600, h.wait_call_finished(&sid)).await;
    assert_eq!(call.errors.iter().map(|e| e.code).collect::<Vec<_>>(), vec![11200]);
    assert_eq!(call.status, CallStatus::Completed);
}

#[tokio::test(start_paused = true)]
async fn get_status_callbacks_sign_the_full_url() {
    let app = Receiver::spawn().await;
    let h = TwilioApiSim::spawn(base_config()).await.unwrap();
    let status_url = app.url("/status?x=1");
    let sid = create(
        &h,
        &[
            ("To", "+33612345678"),
            ("From", FROM),
            ("Twiml", "<Response><Hangup/></Response>"),
            ("StatusCallback", &status_url),
            ("StatusCallbackMethod", "GET"),
        ],
    )
    .await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    within(600, h.wait_call_finished(&sid)).await;
    // Only `completed` when no StatusCallbackEvent is given.
    let cbs = h.callbacks_for(&sid);
    assert_eq!(cbs.len(), 1);
    let got = &app.requests()[0];
    assert_eq!(got.method, "GET");
    assert!(got.body.is_empty());
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(got.path_and_query.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(query.get("CallStatus").map(String::as_str), Some("completed"));
    assert_eq!(query.get("x").map(String::as_str), Some("1"));
    let signer = TwilioSigner::new(h.auth_token().as_bytes());
    assert!(signer.verify_form(
        &app.url(&got.path_and_query),
        &[],
        got.header("x-twilio-signature").unwrap()
    ));
}

#[tokio::test(start_paused = true)]
async fn trial_calls_stop_at_ten_minutes() {
    let mut cfg = base_config();
    cfg.trial = true;
    cfg.verified_numbers = vec!["+33612345678".into()];
    cfg.caller.script = vec![];
    cfg.caller.end = EndPolicy::ServerCloses;
    let h = TwilioApiSim::spawn(cfg).await.unwrap();
    let (stream_url, gateway) = serve_once("/s", |mut peer| async move {
        let mut media = 0u32;
        while let Some(t) = peer.recv_text().await {
            if t.starts_with(r#"{"event":"media""#) {
                media += 1;
            }
        }
        media
    })
    .await;
    let doc = twiml::connect_stream(&stream_url, None, &[]);
    let sid = create(&h, &[("To", "+33612345678"), ("From", FROM), ("Twiml", &doc)]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = within(3600, h.wait_call_finished(&sid)).await;
    let media = gateway.await.unwrap();
    assert_eq!(call.caller_reports[0].end, CallEnd::CallerHungUp { cause: HangupCause::MaxDuration });
    assert_eq!(call.errors.iter().map(|e| e.code).collect::<Vec<_>>(), vec![13805]);
    assert_eq!(media, 30_000, "ten minutes of 20 ms frames");
    assert!(call.duration_secs.unwrap() >= 600);
}

/// Asynchronous answering-machine detection and a live call update, as the control plane uses
/// them for voicemail: the stream starts at once; `AsyncAmdStatusCallback` comes, signed, when
/// the machine's greeting ends (11 s after the answer by default for a beep); new TwiML sent
/// then stops the stream (`stop`, close) and runs: `<Say>` recorded with its language, then
/// `<Hangup/>`. A finished call cannot be given new TwiML (21220); bad XML is refused (12100).
#[tokio::test(start_paused = true)]
async fn async_amd_reports_a_machine_and_new_twiml_replaces_the_stream() {
    use callway_sim_twilio::api::amd::{AmdScript, AnsweredBy};
    let app = Receiver::spawn().await;
    let mut cfg = base_config();
    cfg.caller.script = vec![Segment::Silence { ms: 3_600_000 }];
    cfg.caller.end = EndPolicy::ServerCloses;
    cfg.amd.insert("+33612345678".into(), AmdScript::new(AnsweredBy::MachineEndBeep));
    let h = TwilioApiSim::spawn(cfg).await.unwrap();
    let (stream_url, gateway) = serve_once("/s", move |mut peer| async move {
        let _ = peer.until_event("start").await;
        let (stop, _) = peer.until_event("stop").await;
        stop
    })
    .await;
    let doc = twiml::connect_stream(&stream_url, None, &[]);
    let amd_url = app.url("/amd");
    let form = [
        ("To", "+33612345678"),
        ("From", FROM),
        ("Twiml", doc.as_str()),
        ("MachineDetection", "DetectMessageEnd"),
        ("AsyncAmd", "true"),
        ("AsyncAmdStatusCallback", amd_url.as_str()),
    ];
    let sid = create(&h, &form).await["sid"].as_str().unwrap().to_owned();
    let cb = within(600, async {
        loop {
            if let Some(c) = h.callbacks_for(&sid).into_iter().find(|c| c.kind == CallbackKind::AmdStatus) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(cb.param("AnsweredBy"), Some("machine_end_beep"));
    assert_eq!(cb.param("MachineDetectionDuration"), Some("11000"));
    assert!(verify(h.auth_token(), &cb), "signed like every callback");
    let answered = h.call(&sid).unwrap().answered_at.unwrap();
    assert!(cb.sent_at >= answered + Duration::from_secs(11), "after the greeting's end");

    let bad = update(&h, &sid, &[("Twiml", "<Response><Say>")]).await;
    assert_eq!((bad.0, bad.1["code"].as_u64()), (400, Some(12100)));
    let message = r#"<Response><Say language="fr-FR">Bonjour Claire, nous vous rappellerons.</Say><Hangup/></Response>"#;
    let (status, _) = update(&h, &sid, &[("Twiml", message)]).await;
    assert_eq!(status, 200);
    let stop = gateway.await.unwrap();
    assert_eq!(stop["stop"]["callSid"], sid.as_str());
    let call = within(600, h.wait_call_finished(&sid)).await;
    assert_eq!(call.status, CallStatus::Completed);
    assert_eq!(call.answered_by, Some(AnsweredBy::MachineEndBeep));
    assert_eq!(call.said.len(), 1);
    assert_eq!(call.said[0].text, "Bonjour Claire, nous vous rappellerons.");
    assert_eq!(call.said[0].language.as_deref(), Some("fr-FR"));
    assert!(call.errors.is_empty(), "{:?}", call.errors);
    let (status, body) = update(&h, &sid, &[("Twiml", message)]).await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(21220)));
}

/// `<Dial>` given to a live call by an update, as a warm transfer does: the stream is stopped,
/// the scripted party is rung and bridged, then `action` is requested (signed) with
/// `DialCallStatus`, `DialCallSid`, `DialCallDuration`, and the TwiML it answers runs; a busy
/// party gets the action's `<Say>` then `<Hangup/>`; without `action` the document goes on.
#[tokio::test(start_paused = true)]
async fn dial_bridges_the_scripted_party_then_runs_the_action_answer() {
    use callway_sim_twilio::api::dial::DialScript;
    let app = Receiver::spawn().await;
    app.answer(
        "/after-dial",
        200,
        r#"<Response><Say language="fr-FR">Personne n'est libre.</Say><Hangup/></Response>"#,
    );
    let mut cfg = base_config();
    cfg.caller.script = vec![Segment::Silence { ms: 3_600_000 }];
    cfg.caller.end = EndPolicy::ServerCloses;
    cfg.dial.insert(
        "+33698765432".into(),
        DialScript::Answer { after: Duration::from_secs(3), talk: Duration::from_secs(42) },
    );
    cfg.dial.insert("sip:busy@pbx.example.eu".into(), DialScript::Busy { after: Duration::from_secs(2) });
    let h = TwilioApiSim::spawn(cfg).await.unwrap();
    let action = app.url("/after-dial?call_id=7");

    // Answered: bridged for 42 s, then `completed` reported; the action's TwiML runs.
    let (stream_url, gateway) = serve_once("/s", move |mut peer| async move {
        let _ = peer.until_event("start").await;
        peer.until_event("stop").await.0
    })
    .await;
    let doc = twiml::connect_stream(&stream_url, None, &[]);
    let sid = create(&h, &[("To", "+33612345678"), ("From", FROM), ("Twiml", doc.as_str())]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    within(600, h.wait_call_status(&sid, CallStatus::InProgress)).await;
    let dial = format!(
        r#"<Response><Dial timeout="20" action="{}" callerId="{FROM}"><Number>+33698765432</Number></Dial></Response>"#,
        twiml::escape(&action)
    );
    assert_eq!(update(&h, &sid, &[("Twiml", dial.as_str())]).await.0, 200);
    assert_eq!(gateway.await.unwrap()["stop"]["callSid"], sid.as_str(), "the stream got stop");
    let call = within(600, h.wait_call_finished(&sid)).await;
    assert_eq!(call.status, CallStatus::Completed);
    assert_eq!(call.dials.len(), 1);
    let d = &call.dials[0];
    assert_eq!((d.kind.as_str(), d.target.as_str(), d.timeout_secs), ("number", "+33698765432", 20));
    assert_eq!(
        (d.status.as_deref(), d.duration_secs, d.action_http_status),
        (Some("completed"), Some(42), Some(200))
    );
    assert_eq!(d.caller_id.as_deref(), Some(FROM));
    assert!(call.duration_secs.unwrap() >= 45, "rang 3 s, talked 42 s");
    let cb = h.callbacks_for(&sid).into_iter().find(|c| c.kind == CallbackKind::DialAction).unwrap();
    assert_eq!(cb.param("DialCallStatus"), Some("completed"));
    assert_eq!(cb.param("DialCallDuration"), Some("42"));
    assert_eq!(cb.param("DialCallSid"), Some(d.dial_call_sid.as_str()));
    assert_eq!((cb.param("CallSid"), cb.param("CallStatus")), (Some(sid.as_str()), Some("in-progress")));
    assert_eq!(cb.param("AccountSid"), Some(h.account_sid()));
    assert!(verify(h.auth_token(), &cb), "signed like every callback");
    assert_eq!(app.requests()[0].path_and_query, "/after-dial?call_id=7");
    assert_eq!(call.said.len(), 1, "the action's answer ran");

    // Busy SIP party: reported `busy` with no duration; no action: the document goes on.
    let doc = r#"<Response><Dial><Sip>sip:busy@pbx.example.eu</Sip></Dial><Say>Au revoir.</Say></Response>"#;
    let sid = create(&h, &[("To", "+33612345678"), ("From", FROM), ("Twiml", doc)]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = within(600, h.wait_call_finished(&sid)).await;
    let d = &call.dials[0];
    assert_eq!((d.kind.as_str(), d.status.as_deref(), d.duration_secs), ("sip", Some("busy"), Some(0)));
    assert_eq!(d.action_http_status, None);
    assert_eq!(call.said.iter().map(|s| s.text.as_str()).collect::<Vec<_>>(), ["Au revoir."]);
    assert!(h.callbacks_for(&sid).iter().all(|c| c.kind != CallbackKind::DialAction));

    // An unscripted address that never answers within `timeout`, and a noun the simulator
    // does not dial (12200, the call ends).
    let doc = r#"<Response><Dial timeout="5"><Conference>room</Conference></Dial></Response>"#;
    let sid = create(&h, &[("To", "+33612345678"), ("From", FROM), ("Twiml", doc)]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = within(600, h.wait_call_finished(&sid)).await;
    assert_eq!(call.errors.iter().map(|e| e.code).collect::<Vec<_>>(), vec![12200], "{:?}", call.errors);
    assert!(call.dials.is_empty());
}

/// A party scripted not to answer rings until `<Dial timeout>`: `no-answer`, then the action.
#[tokio::test(start_paused = true)]
async fn dial_no_answer_rings_until_the_timeout() {
    use callway_sim_twilio::api::dial::DialScript;
    let app = Receiver::spawn().await;
    app.answer("/a", 200, "<Response><Hangup/></Response>");
    let mut cfg = base_config();
    cfg.dial.insert("+33698765432".into(), DialScript::NoAnswer);
    cfg.dial.insert("+33698765433".into(), DialScript::Failed);
    let h = TwilioApiSim::spawn(cfg).await.unwrap();
    for (to, status) in [("+33698765432", "no-answer"), ("+33698765433", "failed")] {
        let doc = format!(
            r#"<Response><Dial timeout="7" action="{}">{to}</Dial></Response>"#,
            twiml::escape(&app.url("/a"))
        );
        let sid = create(&h, &[("To", "+33612345678"), ("From", FROM), ("Twiml", doc.as_str())]).await["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        let call = within(600, h.wait_call_finished(&sid)).await;
        let cb = h.callbacks_for(&sid).into_iter().find(|c| c.kind == CallbackKind::DialAction).unwrap();
        assert_eq!(cb.param("DialCallStatus"), Some(status));
        assert_eq!(cb.param("DialBridged"), Some("false"));
        let rang = cb.sent_at - call.answered_at.unwrap();
        if status == "no-answer" {
            assert!(rang >= Duration::from_secs(7), "{rang:?}");
        }
        assert_eq!(call.dials[0].status.as_deref(), Some(status));
    }

    // A callerId the account may not present: 13214, the dial fails at once.
    let doc = format!(
        r#"<Response><Dial callerId="+33100000099" action="{}">+33698765499</Dial></Response>"#,
        twiml::escape(&app.url("/a"))
    );
    let sid = create(&h, &[("To", "+33612345678"), ("From", FROM), ("Twiml", doc.as_str())]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = within(600, h.wait_call_finished(&sid)).await;
    assert_eq!(call.errors.iter().map(|e| e.code).collect::<Vec<_>>(), vec![13214]);
    assert_eq!(call.dials[0].status.as_deref(), Some("failed"));
}

/// The caller hangs up while the dialled party rings: the dial is `canceled`, the action is
/// still requested (with `CallStatus=completed`), and what it answers is not run.
#[tokio::test(start_paused = true)]
async fn a_caller_hanging_up_during_a_dial_cancels_it_and_still_reports_it() {
    use callway_sim_twilio::api::dial::DialScript;
    let app = Receiver::spawn().await;
    app.answer("/a", 200, "<Response><Say>jamais dit</Say></Response>");
    let mut cfg = base_config();
    cfg.dial.insert("+33698765432".into(), DialScript::NoAnswer);
    let h = TwilioApiSim::spawn(cfg).await.unwrap();
    let doc = format!(
        r#"<Response><Dial timeout="60" action="{}">+33698765432</Dial></Response>"#,
        twiml::escape(&app.url("/a"))
    );
    let sid = create(&h, &[("To", "+33612345678"), ("From", FROM), ("Twiml", doc.as_str())]).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    within(600, h.wait_until(|h| h.call(&sid).filter(|c| !c.dials.is_empty()))).await;
    assert_eq!(update(&h, &sid, &[("Status", "completed")]).await.0, 200);
    let call = within(600, h.wait_call_finished(&sid)).await;
    let cb = h.callbacks_for(&sid).into_iter().find(|c| c.kind == CallbackKind::DialAction).unwrap();
    assert_eq!((cb.param("DialCallStatus"), cb.param("CallStatus")), (Some("canceled"), Some("completed")));
    assert_eq!(call.dials[0].status.as_deref(), Some("canceled"));
    assert!(call.said.is_empty(), "nothing runs after the caller hung up: {:?}", call.said);
}
