//! The end-of-call summary (issue 18, item 2), end to end on real PostgreSQL: a placed call's
//! last event batch (transcript, end) is answered at once, then the control plane asks
//! `SUMMARY_MODEL` through the OpenAI simulator's Responses API, retries once OpenAI answers
//! 500, and stores the simulator's summary on the call, where the record, the CLI's JSON and
//! the lead show it, and the next call to the lead starts from it; a call without a transcript
//! gets none; an erasure removes it. A call left without one (summaries were off, or OpenAI
//! stayed down) is caught up by the sweep, from what the database says.

mod common;

use std::time::Duration;

use callway_control::record::{self, Numbers};
use callway_control::summary::{self, Outcome};
use callway_sim_openai::{Fault, OpenAiSim, Refusal, SimConfig, SimHandle};
use common::web::*;
use contract::internal_api::events_path;
use serde_json::json;
use uuid::Uuid;

async fn sim() -> SimHandle {
    OpenAiSim::spawn(SimConfig { api_key: "sk-test-key".into(), ..SimConfig::default() }).await.unwrap()
}

/// Polls the call's record until it carries a summary (bounded: a summary that never comes
/// fails the test).
async fn summary_of(w: &Web, call_id: Uuid) -> String {
    for _ in 0..300 {
        let r =
            record::read::call(&w.app.app.storage.store, call_id, Numbers::Masked).await.unwrap().unwrap();
        if let Some(s) = r.summary.call {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no end-of-call summary within 30 s");
}

#[tokio::test]
async fn a_finished_call_gets_its_summary_through_the_responses_api() {
    let openai = sim().await;
    let w = web_on_postgres_with_openai(&openai.base_url(), &[("SUMMARY_MODEL", "gpt-5-mini")]).await;
    let (call_id, lead_id, _token) = placed_call(&w, "06 12 34 56 78").await;
    let call: Uuid = call_id.parse().unwrap();
    // OpenAI fails once: the summary is retried, never lost.
    openai.set_faults(vec![Fault::RefuseClientSecrets { refusal: Refusal::ServerError, times: Some(1) }]);
    let batch = json!({"seq": 0, "events": [
        {"kind": "transcript", "speaker": "agent", "text": "Bonjour Camille, ici Claire de Callway.", "at_ms": 300},
        {"kind": "transcript", "speaker": "caller", "text": "Oui, bonjour.", "at_ms": 2100},
        {"kind": "transcript", "speaker": "caller", "text": "Lundi 10 h me va.", "at_ms": 6000},
        {"kind": "transcript", "speaker": "agent", "text": "C'est noté, à lundi.", "at_ms": 8000},
        {"kind": "ended", "side": "twilio", "reason": "caller_hung_up", "duration_ms": 9000}
    ]});
    let r = w.app.post_internal(&events_path(&call_id), &batch).await;
    assert_eq!(r.status, 204, "the gateway's batch is answered before the summary: {}", r.text);

    let stored = summary_of(&w, call).await;
    let rec = record::read::call(&w.app.app.storage.store, call, Numbers::Masked).await.unwrap().unwrap();
    let input = summary::prompt::transcript(&rec).unwrap();
    assert_eq!(
        stored,
        callway_sim_openai::summarise(&[("user".into(), input)]),
        "what the model wrote, as is"
    );
    assert!(stored.contains("« Lundi 10 h me va. »"), "{stored}");

    let lead = record::read::lead(&w.app.app.storage.store, lead_id.parse().unwrap(), Numbers::Masked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lead.calls[0].outcome_summary.as_deref(), Some(stored.as_str()), "shown on the lead");
    let json = serde_json::to_value(&rec).unwrap();
    assert_eq!(json["summary"]["call"], stored.as_str());

    // The next call to this lead starts from it.
    let next =
        summary::context_for_call(&w.app.app, lead_id.parse().unwrap(), Uuid::new_v4(), "Rappel demandé.")
            .await;
    assert_eq!(next, format!("Rappel demandé.\n\nRésumé de l'appel précédent :\n{stored}"));

    // An erasure takes the summary with the call.
    w.app.app.storage.store.erase_phone("+33612345678").await.unwrap();
    assert!(record::read::call(&w.app.app.storage.store, call, Numbers::Masked).await.unwrap().is_none());
}

#[tokio::test]
async fn no_transcript_no_summary_and_off_without_summary_model() {
    let openai = sim().await;
    let w = web_on_postgres_with_openai(&openai.base_url(), &[("SUMMARY_MODEL", "gpt-5-mini")]).await;
    let (call_id, _, _) = placed_call(&w, "06 12 34 56 78").await;
    let call: Uuid = call_id.parse().unwrap();
    assert_eq!(summary::after_call(w.app.app.clone(), call).await, Outcome::NoTranscript);

    let off = web_on_postgres_with_openai(&openai.base_url(), &[]).await;
    let (call_id, _, _) = placed_call(&off, "06 12 34 56 78").await;
    assert_eq!(summary::after_call(off.app.app.clone(), call_id.parse().unwrap()).await, Outcome::Off);
}

#[tokio::test]
async fn the_sweep_catches_up_calls_left_without_a_summary() {
    let openai = sim().await;
    // A control plane without SUMMARY_MODEL carries a call to its end: no summary.
    let off = web_on_postgres_with_openai(&openai.base_url(), &[]).await;
    let (call_id, _, _) = placed_call(&off, "06 12 34 56 78").await;
    let call: Uuid = call_id.parse().unwrap();
    let batch = json!({"seq": 0, "events": [
        {"kind": "transcript", "speaker": "agent", "text": "Bonjour Camille.", "at_ms": 300},
        {"kind": "transcript", "speaker": "caller", "text": "Rappelez-moi demain.", "at_ms": 2100},
        {"kind": "ended", "side": "twilio", "reason": "caller_hung_up", "duration_ms": 4000}
    ]});
    assert_eq!(off.app.post_internal(&events_path(&call_id), &batch).await.status, 204);

    // Another control plane on the same database, with SUMMARY_MODEL, sweeps.
    let callway_control::config::StorageConfig::Postgres { url } = off.app.app.config.storage.clone() else {
        panic!("the test runs on PostgreSQL")
    };
    let mut env = common::env_for(&common::Db::Url(url), &openai.base_url(), &off.twilio.base);
    env.insert("SUMMARY_MODEL".into(), "gpt-5-mini".into());
    let on = common::Running::start(env).await;
    let now = time::OffsetDateTime::now_utc();
    let fresh = summary::sweep(&on.app, now).await;
    assert_eq!(fresh.found, 0, "a call that just ended is left to its own task");
    let later = now + time::Duration::minutes(3);
    assert_eq!(summary::sweep(&on.app, later).await, summary::SweepReport { found: 1, stored: 1 });
    let rec = record::read::call(&on.app.storage.store, call, Numbers::Masked).await.unwrap().unwrap();
    let text = rec.summary.call.clone().expect("summarised by the sweep");
    assert!(text.contains("« Rappelez-moi demain. »"), "{text}");
    assert_eq!(summary::sweep(&on.app, later).await.found, 0, "summarised once");
}
