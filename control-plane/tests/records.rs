//! The record of leads and calls (issue 18, item 1): the reads on real PostgreSQL and on SQLite,
//! the same reads through Supabase REST against a recording endpoint, and the
//! `callway-control leads | lead | call` commands run as a person runs them.

mod common;

use callway_control::config::StorageConfig;
use callway_control::record::{self, Numbers};
use callway_control::store::Store;
use common::control;
use common::recorder::{Recorder, Reply};
use common::records::{CALL_SID, NUMBER, OUTCOME, seed};
use contract::internal_api::{CallEvent, Side};
use uuid::Uuid;

async fn reads_tell_the_whole_story(s: Store) {
    let seeded = seed(&s).await;
    let list = record::read::leads(&s, 50, Numbers::Masked).await.unwrap();
    let names: Vec<&str> = list.iter().map(|l| l.first_name.as_str()).collect();
    assert_eq!(names, ["Hugo", "Camille"], "newest first");
    assert_eq!(list[0].phone, "+32******56");
    assert_eq!((list[0].calls, list[0].last_call.is_none()), (0, true));
    let last = list[1].last_call.as_ref().expect("Camille's call");
    assert_eq!(
        (last.id, last.status.as_str(), last.end_reason.as_deref()),
        (seeded.call_id, "completed", Some("caller_hung_up"))
    );
    assert_eq!(record::read::leads(&s, 1, Numbers::Masked).await.unwrap().len(), 1, "--limit holds");

    let lead = record::read::lead(&s, seeded.called.id, Numbers::Masked).await.unwrap().unwrap();
    assert_eq!(lead.lead.phone, "+33******78");
    assert_eq!(lead.lead.consent_text, seeded.called.consent_text);
    assert_eq!(lead.calls.iter().map(|c| c.id).collect::<Vec<_>>(), [seeded.call_id]);
    let revealed = record::read::lead(&s, seeded.called.id, Numbers::Revealed).await.unwrap().unwrap();
    assert_eq!(revealed.lead.phone, NUMBER);
    assert!(record::read::lead(&s, Uuid::new_v4(), Numbers::Masked).await.unwrap().is_none());

    let call = record::read::call(&s, seeded.call_id, Numbers::Masked).await.unwrap().unwrap();
    assert_eq!(call.call.call_sid.as_deref(), Some(CALL_SID));
    assert_eq!(call.lead.first_name, "Camille");
    let steps: Vec<&str> = call.timeline.iter().map(|t| t.what.as_str()).collect();
    assert_eq!(
        steps,
        [
            "requested",
            "queued",
            "ringing",
            "in-progress",
            "stream-started",
            "caller_hung_up",
            "stream-stopped",
            "completed"
        ]
    );
    let said: Vec<(&str, &str)> = call.dialogue.iter().map(|l| (l.speaker, l.text.as_str())).collect();
    assert_eq!(
        said,
        [
            ("agent", "Bonjour, je suis Claire."),
            ("caller", "Rappelez-moi pour une démo."),
            ("summary", "Veut une démo lundi."),
            ("agent", "Bonjour Camille, ici Léa."),
            ("caller", "Bonjour !")
        ]
    );
    assert_eq!(call.durations.ringing_ms, Some(2_000));
    assert_eq!(call.durations.talk_ms, Some(9_800));
    assert_eq!(call.durations.total_ms, 13_000);
    assert_eq!((call.usage.input_tokens, call.usage.output_tokens, call.usage.responses), (150, 90, 1));
    assert_eq!(call.summary.call.as_deref(), Some(OUTCOME), "the end-of-call summary");
    assert_eq!(lead.calls[0].outcome_summary.as_deref(), Some(OUTCOME), "shown on the lead");
    assert!(record::read::call(&s, Uuid::new_v4(), Numbers::Masked).await.unwrap().is_none());
    let _ = seeded.fresh;
}

#[tokio::test]
async fn reads_tell_the_whole_story_on_postgres() {
    let url = common::pg::fresh_database().await;
    let s = callway_control::open_store(&StorageConfig::Postgres { url }).await.unwrap();
    s.migrate().await.unwrap();
    reads_tell_the_whole_story(s).await;
}

#[tokio::test]
async fn reads_tell_the_whole_story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("r.sqlite3").display());
    let s = callway_control::open_store(&StorageConfig::Sqlite { url }).await.unwrap();
    s.migrate().await.unwrap();
    reads_tell_the_whole_story(s).await;
}

#[tokio::test]
async fn the_commands_print_leads_and_calls_from_postgres() {
    let url = common::pg::fresh_database().await;
    let s = callway_control::open_store(&StorageConfig::Postgres { url: url.clone() }).await.unwrap();
    s.migrate().await.unwrap();
    let seeded = seed(&s).await;
    let outbox = tempfile::tempdir().unwrap();
    let mut env = common::env_for(&common::Db::Url(url), "http://127.0.0.1:9", "http://127.0.0.1:9");
    env.insert("PUBLIC_APP_URL".into(), "https://cp.example.eu".into());
    env.insert("OUTBOX_DIR".into(), outbox.path().display().to_string());

    let (out, err, ok) = control(&env, &["leads"]);
    assert!(ok, "{out}{err}");
    let hugo = out.find("Hugo Durand").expect("Hugo listed");
    let camille = out.find("Camille Durand").expect("Camille listed");
    assert!(hugo < camille, "newest first:\n{out}");
    assert!(out.contains(&seeded.called.id.to_string()), "ids as text:\n{out}");
    assert!(out.contains("+33******78") && out.contains("completed (caller_hung_up)"), "{out}");
    assert!(!out.contains("612345678") && !err.contains("612345678"), "masked by default:\n{out}{err}");

    let (out, err, ok) = control(&env, &["lead", &seeded.called.id.to_string(), "--json"]);
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["lead"]["id"], seeded.called.id.to_string());
    assert_eq!(v["lead"]["phone"], "+33******78");
    assert_eq!(v["calls"][0]["id"], seeded.call_id.to_string());

    let (out, err, ok) = control(&env, &["call", &seeded.call_id.to_string(), "--json", "--reveal"]);
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["lead"]["phone"], NUMBER, "--reveal shows the number");
    assert_eq!(v["call"]["lead_id"], seeded.called.id.to_string());
    assert_eq!(v["timeline"][5]["what"], "caller_hung_up");
    assert_eq!(v["dialogue"][0]["part"], "web");
    assert_eq!(v["dialogue"][3]["text"], "Bonjour Camille, ici Léa.");

    let (out, err, ok) = control(&env, &["call", &seeded.call_id.to_string()]);
    assert!(ok, "{out}{err}");
    for part in [
        "Timeline (UTC)",
        "ringing 2.0 s, talk 9.8 s",
        "[web] Prospect: Rappelez-moi pour une démo.",
        "[phone 0.3 s] Agent: Bonjour Camille, ici Léa.",
        "web conversation: Veut une démo lundi.",
        "150 input tokens",
        "Prochaine étape : lundi 10 h.",
    ] {
        assert!(out.contains(part), "{part:?} missing in\n{out}");
    }

    let missing = Uuid::new_v4().to_string();
    let (_, err, ok) = control(&env, &["call", &missing]);
    assert!(!ok && err.contains(&format!("no call {missing} in the postgres store")), "{err}");
    let (_, err, ok) = control(&env, &["lead", "42"]);
    assert!(!ok && err.contains("`callway-control leads` lists them"), "{err}");
}

#[tokio::test]
async fn supabase_rest_reads_a_call_with_four_gets() {
    let rec = Recorder::start().await;
    let store = callway_control::open_store(&StorageConfig::SupabaseRest {
        url: rec.base.clone(),
        service_role_key: "sb_secret_x".into(),
    })
    .await
    .unwrap();
    let (call, lead) = ("7d3c2b1a-0000-4000-8000-00000000000a", "7d3c2b1a-0000-4000-8000-00000000000b");
    let ended = serde_json::to_string(&CallEvent::Ended {
        side: Side::Openai,
        reason: "agent_ended".into(),
        duration_ms: 5_000,
    })
    .unwrap();
    rec.script([
        Reply::new(
            200,
            format!(
                r#"[{{"id":"{call}","lead_id":"{lead}","session_id":null,"call_sid":"{CALL_SID}","status":"completed","attempt":1,"summary":"Démo","end_reason":"agent_ended","end_side":"openai","duration_ms":5000,"input_tokens":10,"output_tokens":20,"created_at":"2026-12-06T10:00:00+00:00","token_redeemed_at":"2026-12-06T10:00:03+00:00"}}]"#
            ),
        ),
        Reply::new(200, format!(r#"[{{"first_name":"Camille","last_name":"Durand","phone_e164":"{NUMBER}"}}]"#)),
        Reply::new(200, r#"[{"status":"completed","source":"twilio-call","detail":null,"at":"2026-12-06T10:00:09+00:00"}]"#),
        Reply::new(200, serde_json::json!([{"seq": 0, "payload": ended, "created_at": "2026-12-06T10:00:09+00:00"}]).to_string()),
    ]);
    let r = record::read::call(&store, call.parse().unwrap(), Numbers::Masked).await.unwrap().unwrap();
    assert_eq!(r.lead.phone, "+33******78");
    let steps: Vec<&str> = r.timeline.iter().map(|t| t.what.as_str()).collect();
    assert_eq!(steps, ["requested", "stream token redeemed", "agent_ended", "completed"]);
    let reqs = rec.take();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/rest/v1/calls", "/rest/v1/leads", "/rest/v1/call_status_events", "/rest/v1/call_events"]
    );
    assert!(reqs.iter().all(|r| r.method.as_str() == "GET"), "reads only");
    assert!(reqs[2].query_pairs().contains(&("order".into(), "id.asc".into())));
    assert!(reqs[3].query_pairs().contains(&("order".into(), "seq.asc".into())));
}
