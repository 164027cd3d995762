//! The cost of calls (issue 13, item 4, the control plane's side) end to end on PostgreSQL with
//! the Twilio simulator: `PRICES_FILE` prices Twilio's billed minutes (its `CallDuration`, per
//! started minute, by the destination's country), each part of the Realtime tokens the gateway
//! reports at its own price (audio, cached, text), calls from older gateways at the input and
//! output prices, and GPT-Live calls by the second, each at the model its `engine` event names;
//! each call's cost and the lead's sum come from what is stored; Prometheus counts what the
//! store inserted, so a batch sent again is counted once; `callway-control calls --cost`, `call`
//! and `lead` print the costs with numbers masked; a bad table stops the start naming its entry.

mod common;

use std::time::Duration;

use callway_control::cost::lead_cost;
use callway_control::store::{EventsWrite, Write};
use callway_sim_openai::SimConfig;
use common::control;
use common::world::world_with;
use contract::internal_api::{CallEvent, CallEventsBatch, Side, TokenDetails, events_path};
use serde_json::json;
use uuid::Uuid;

async fn within<F: std::future::Future>(f: F) -> F::Output {
    // A hang guard, not a timing assertion.
    tokio::time::timeout(Duration::from_secs(60), f).await.expect("hang")
}

const MODEL: &str = contract::realtime::DEFAULT_MODEL;

/// Text 4, audio 32, cached 0.4 (cached audio falls back to it), text out 16, audio out 64 per
/// million tokens; GPT-Live 0.05 a minute; Twilio 0.0135 a minute to France.
fn prices() -> String {
    format!(
        r#"{{"currency": "EUR",
            "openai": {{
                "{MODEL}": {{"input_per_million": 4.0, "output_per_million": 16.0,
                    "audio_input_per_million": 32.0, "cached_input_per_million": 0.4,
                    "audio_output_per_million": 64.0}},
                "gpt-live-1.1": {{"per_minute": 0.05}}
            }},
            "twilio_per_minute": {{"FR": 0.0135, "default": 0.05}}}}"#
    )
}

fn usage(id: &str, input: u64, output: u64, details: Option<TokenDetails>) -> CallEvent {
    CallEvent::Usage { response_id: id.into(), input_tokens: input, output_tokens: output, details }
}

fn ended() -> CallEvent {
    CallEvent::Ended { side: Side::Twilio, reason: "caller_hung_up".into(), duration_ms: 900 }
}

fn engine(api: &str, model: &str) -> CallEvent {
    CallEvent::Engine { api: api.into(), model: model.into() }
}

/// The gateway's batches of each call (each sent twice: a gateway retry).
fn batches(n: usize) -> Vec<CallEventsBatch> {
    match n {
        // Realtime with the token split: two responses.
        0 => vec![CallEventsBatch {
            seq: 0,
            events: vec![
                engine("realtime", MODEL),
                usage(
                    "resp_1",
                    1_000,
                    500,
                    Some(TokenDetails {
                        input_audio_tokens: 800,
                        input_cached_tokens: 300,
                        input_cached_audio_tokens: 200,
                        output_audio_tokens: 400,
                    }),
                ),
                usage(
                    "resp_2",
                    2_000,
                    250,
                    Some(TokenDetails {
                        input_audio_tokens: 1_500,
                        input_cached_tokens: 1_000,
                        input_cached_audio_tokens: 900,
                        output_audio_tokens: 200,
                    }),
                ),
                ended(),
            ],
        }],
        // An older gateway: no engine event, no split.
        1 => vec![CallEventsBatch { seq: 0, events: vec![usage("resp_1", 1_000, 500, None), ended()] }],
        // GPT-Live: cumulative seconds, the last one is the call's.
        _ => vec![
            CallEventsBatch {
                seq: 0,
                events: vec![engine("live", "gpt-live-1.1"), CallEvent::LiveUsage { seconds: 30.0 }],
            },
            CallEventsBatch { seq: 2, events: vec![CallEvent::LiveUsage { seconds: 75.5 }, ended()] },
        ],
    }
}

/// Each call's OpenAI part, by hand. Call 1: input 3 000 = 500 text + 1 200 audio + 200 cached
/// text + 1 100 cached audio; output 750 = 150 text + 600 audio.
const OPENAI_MICROS: [u64; 3] = [
    500 * 4 + 1_200 * 32 + (200 * 4 / 10) + (1_100 * 4 / 10) + 150 * 16 + 600 * 64,
    1_000 * 4 + 500 * 16,
    62_917, // 75.5 s at 0.05 a minute = 0.0629166…
];

#[tokio::test]
async fn each_call_is_priced_part_by_part_at_its_own_model_and_counted_once() {
    assert_eq!(OPENAI_MICROS[0], 2_000 + 38_400 + 80 + 440 + 2_400 + 38_400);
    let dir = tempfile::tempdir().unwrap();
    let prices_path = dir.path().join("prices.json");
    std::fs::write(&prices_path, prices()).unwrap();
    let extra = [
        ("PRICES_FILE", prices_path.to_str().unwrap()),
        // Three calls to one lead from one web session.
        ("RATE_LIMIT_CALLS_PER_SESSION_PER_HOUR", "10"),
        ("RATE_LIMIT_CALLS_PER_NUMBER_PER_DAY", "10"),
    ];
    let w = world_with(SimConfig::default(), &extra, |_| {}).await;

    let s = w.cp.post_raw("/api/session", None, "application/json", b"{}".to_vec()).await;
    let cap = s.json["capability"].as_str().unwrap().to_owned();
    let body =
        json!({"first_name": "Claire", "last_name": "Martin", "phone": "06 12 34 56 78", "consent": true});
    let lead = w.cp.post_json("/api/tools/save_lead", Some(&cap), &body).await;
    let lead_id: Uuid = lead.json["lead_id"].as_str().unwrap().parse().unwrap();
    let mut billed = Vec::new();
    let mut ids = Vec::new();
    let mut sids = Vec::new();
    for n in 0..3 {
        let t = json!({"lead_id": lead_id, "summary": "Veut une démo."});
        let r = w.cp.post_json("/api/tools/trigger_call", Some(&cap), &t).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let call_id = r.json["call_id"].as_str().unwrap().to_owned();
        let sid = within(w.twilio.wait_for_calls(n + 1)).await[n].sid.clone();
        sids.push(sid.clone());
        let done = within(w.twilio.wait_call_finished(&sid)).await;
        billed.push(done.duration_secs.expect("Twilio billed the answered call"));
        for batch in batches(n) {
            let body = serde_json::to_value(&batch).unwrap();
            for _ in 0..2 {
                // The second time is a gateway retry: stored once, counted once.
                let r = w.cp.post_internal(&events_path(&call_id), &body).await;
                assert_eq!(r.status, 204, "{}", r.text);
            }
        }
        ids.push(call_id.parse::<Uuid>().unwrap());
    }
    assert!(billed.iter().all(|s| *s > 0), "{billed:?}");
    let twilio: Vec<u64> = billed.iter().map(|s| s.div_ceil(60) * 13_500).collect();

    let report = lead_cost(&w.cp.app, lead_id).await.unwrap().expect("PRICES_FILE is set");
    let calls: Vec<_> = report.calls.iter().rev().collect(); // oldest first, as placed
    assert_eq!(calls.iter().map(|c| c.call_id).collect::<Vec<_>>(), ids);
    for (i, c) in calls.iter().enumerate() {
        assert_eq!(c.cost.openai_micros, OPENAI_MICROS[i], "call {i}");
        assert_eq!(c.cost.twilio_micros, twilio[i], "call {i}: France's price per started minute");
        assert_eq!(c.cost.total_micros, OPENAI_MICROS[i] + twilio[i]);
        assert_eq!(c.phone, "+33******78");
    }
    let models: Vec<_> =
        calls.iter().map(|c| (c.engine.as_deref(), c.model.as_deref(), c.model_source)).collect();
    assert_eq!(
        models,
        [
            (Some("realtime"), Some(MODEL), Some("call")),
            (Some("realtime"), Some(MODEL), Some("configured")),
            (Some("live"), Some("gpt-live-1.1"), Some("call"))
        ]
    );
    let parts = calls[0].tokens.unwrap();
    assert_eq!(
        (parts.text_input, parts.audio_input, parts.cached_text_input, parts.cached_audio_input),
        (500, 1_200, 200, 1_100)
    );
    assert_eq!((parts.text_output, parts.audio_output), (150, 600));
    assert_eq!((calls[2].cost.live_seconds, calls[2].tokens), (75.5, None));
    let t = &report.total;
    assert_eq!((t.input_tokens, t.output_tokens, t.live_seconds), (4_000, 1_250, 75.5));
    assert_eq!(t.openai_micros, OPENAI_MICROS.iter().sum::<u64>());
    assert_eq!(t.twilio_micros, twilio.iter().sum::<u64>());
    assert_eq!(t.total_micros, t.openai_micros + t.twilio_micros);
    assert_eq!((t.currency.as_str(), t.twilio_seconds), ("EUR", billed.iter().sum::<u64>()));

    // Twilio sends the first call's `completed` callback again: not counted again.
    let path = format!("/twilio/status?call_id={}", ids[0]);
    let seconds = billed[0].to_string();
    let done = [
        ("AccountSid", common::ACCOUNT_SID),
        ("CallSid", sids[0].as_str()),
        ("CallStatus", "completed"),
        ("CallDuration", seconds.as_str()),
    ];
    let signature = contract::twilio_signature::TwilioSigner::new(common::AUTH_TOKEN.as_bytes())
        .sign(&w.cp.url(&path), &done);
    let r =
        w.cp.http
            .post(w.cp.url(&path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(serde_urlencoded::to_string(done).unwrap())
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 204);

    let text = w.cp.http.get(w.cp.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for line in [
        format!("callway_call_cost_twilio_micros_total {}", t.twilio_micros),
        format!("callway_call_cost_openai_micros_total {}", t.openai_micros),
        "callway_openai_input_tokens_total 4000".to_owned(),
        "callway_openai_output_tokens_total 1250".to_owned(),
        "callway_openai_live_seconds_total 76".to_owned(),
        "callway_call_events_total 10".to_owned(),
        format!("callway_twilio_billed_seconds_total {}", t.twilio_seconds),
    ] {
        assert!(text.contains(&format!("{line}\n")), "{line} missing from\n{text}");
    }

    // The commands, as an operator runs them, on the same database.
    let mut env = w.env.clone();
    env.insert("PUBLIC_APP_URL".into(), "https://cp.example.eu".into());
    env.insert("OUTBOX_DIR".into(), dir.path().join("outbox").display().to_string());
    let (out, err, ok) = control(&env, &["calls", "--cost"]);
    assert!(ok, "{out}{err}");
    let newest = out.find(&ids[2].to_string()).expect("the Live call listed");
    let oldest = out.find(&ids[0].to_string()).expect("the first call listed");
    assert!(newest < oldest, "newest first:\n{out}");
    for part in [
        "gpt-live-1.1".to_owned(),
        "75.5 s".to_owned(),
        "3000/750 tok".to_owned(),
        format!("{:.6}", OPENAI_MICROS[0] as f64 / 1e6).trim_end_matches('0').to_owned(),
        "Total of 3 call(s)".to_owned(),
        format!("{} EUR", callway_control::record::text::amount(t.total_micros)),
        format!("call {}: its gateway did not say which model it ran", ids[1]),
    ] {
        assert!(out.contains(&part), "{part:?} missing in\n{out}");
    }
    assert!(out.contains("+33******78") && !out.contains("612345678"), "masked:\n{out}");

    let (out, err, ok) = control(&env, &["calls", "--cost", "--json", "--lead", &lead_id.to_string()]);
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["currency"], "EUR");
    assert_eq!(v["total"]["openai_micros"], t.openai_micros);
    assert_eq!(v["total"]["total_micros"], t.total_micros);
    assert_eq!(v["calls"][0]["call_id"], ids[2].to_string());
    assert_eq!(v["calls"][0]["engine"], "live");
    assert_eq!(v["calls"][0]["live_seconds"], 75.5);
    assert_eq!(v["calls"][2]["tokens"]["audio_input"], 1_200);
    assert_eq!(v["calls"][2]["phone"], "+33******78");
    assert!(!out.contains("612345678"), "masked:\n{out}");
    let (out, _, ok) = control(&env, &["calls", "--cost", "--json", "--since", "2999-01-01"]);
    assert!(ok && serde_json::from_str::<serde_json::Value>(&out).unwrap()["calls"] == json!([]), "{out}");

    let (out, err, ok) = control(&env, &["call", &ids[0].to_string()]);
    assert!(ok, "{out}{err}");
    let line = format!("Cost: {} EUR", callway_control::record::text::amount(OPENAI_MICROS[0] + twilio[0]));
    assert!(out.contains(&line), "{line:?} missing in\n{out}");
    assert!(out.contains("input 500 text, 1200 audio, 200 cached text, 1100 cached audio"), "{out}");
    let (out, err, ok) = control(&env, &["lead", &lead_id.to_string(), "--json"]);
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cost"]["total"]["total_micros"], t.total_micros);

    // The operator page reads the same shapes.
    let admin = |path: String| w.cp.http.get(w.cp.url(&path)).bearer_auth(common::ADMIN_TOKEN).send();
    let call: serde_json::Value =
        admin(format!("/admin/api/calls/{}", ids[2])).await.unwrap().json().await.unwrap();
    assert_eq!(call["cost"]["openai_micros"], OPENAI_MICROS[2]);
    assert_eq!(call["cost"]["model"], "gpt-live-1.1");
    let lead: serde_json::Value =
        admin(format!("/admin/api/leads/{lead_id}")).await.unwrap().json().await.unwrap();
    assert_eq!(lead["cost"]["total"]["total_micros"], t.total_micros);

    let mut unpriced = env.clone();
    unpriced.remove("PRICES_FILE");
    let (out, err, ok) = control(&unpriced, &["calls", "--cost"]);
    assert!(!ok && out.is_empty() && err.contains("PRICES_FILE is not set"), "{out}{err}");
    let (out, err, ok) = control(&unpriced, &["call", &ids[0].to_string(), "--json"]);
    assert!(ok && !out.contains("\"cost\""), "no cost without a table: {out}{err}");
}

/// The store reports what it inserted (a batch applied again reports nothing new) and keeps the
/// split, the Live seconds and the engine on the call's row: on SQLite here (PostgreSQL above).
#[tokio::test]
async fn sqlite_keeps_the_usage_of_a_batch_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("c.sqlite3").display());
    let s =
        callway_control::open_store(&callway_control::config::StorageConfig::Sqlite { url }).await.unwrap();
    s.migrate().await.unwrap();
    let seeded = common::records::seed(&s).await;
    let (_, before) = s.call_usage(seeded.call_id).await.unwrap().unwrap();
    let batch = Write::AppendEvents(EventsWrite {
        call_id: seeded.call_id,
        seq: 100,
        events: batches(0).remove(0).events,
        at: time::OffsetDateTime::now_utc(),
    });
    let first = s.apply(&batch).await.unwrap().unwrap();
    assert_eq!((first.inserted, &first.before), (4, &before));
    assert_eq!(first.after.input_tokens - before.input_tokens, 3_000);
    assert_eq!(first.after.details.input_cached_audio_tokens, 1_100);
    assert_eq!(first.after.engine_model.as_deref(), Some(MODEL));
    let again = s.apply(&batch).await.unwrap().unwrap();
    assert_eq!((again.inserted, &again.before, &again.after), (0, &first.after, &first.after));
    let (lead, stored) = s.call_usage(seeded.call_id).await.unwrap().unwrap();
    assert_eq!((lead, stored), (seeded.called.id, first.after));
}

#[tokio::test]
async fn an_unusable_prices_file_stops_the_start_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices.json");
    let db = common::Db::Url("sqlite::memory:".into());
    let mut env = common::env_for(&db, "http://127.0.0.1:9", "http://127.0.0.1:9");
    env.insert("PRICES_FILE".into(), prices.display().to_string());
    let start = |text: &str| {
        std::fs::write(&prices, text).unwrap();
        callway_control::config::Config::from_lookup(&|k| env.get(k).cloned()).unwrap_err().to_string()
    };
    let e = start(r#"{"currency": "EUR", "openai": {}, "twilio_per_minute": {"FR": 0.01}}"#);
    assert!(e.contains("PRICES_FILE") && e.contains("\"default\""), "{e}");
    let e = start(
        r#"{"currency": "EUR", "openai": {"gpt-live-1.1": {"per_minute": 0.05, "input_per_million": 4}},
            "twilio_per_minute": {"default": 0.01}}"#,
    );
    assert!(e.contains("openai.gpt-live-1.1: a model is priced either by token"), "{e}");
    let e = start(r#"{"currency": "EUR", "openai": {}, "twilio_per_minute": {"default": 0.01}}"#);
    assert!(e.contains(&format!("has no price for OPENAI_REALTIME_MODEL={MODEL}: add \"{MODEL}\"")), "{e}");
}

/// A database with calls from before schema 4: migrating takes each call's engine and Live
/// seconds from its stored events, so those calls are priced at their own model.
async fn migration_backfills_engine_and_live_seconds(s: callway_control::store::Store) {
    use callway_control::store::Store;
    use callway_control::store::sql::SqlPool;
    let Store::Sql(sql) = &s else { unreachable!("SQL backends only") };
    let (migrations, create) = match &sql.pool {
        SqlPool::Pg(_) => (
            callway_control::store::postgres::MIGRATIONS,
            callway_control::store::postgres::CREATE_MIGRATIONS_TABLE,
        ),
        SqlPool::Sqlite(_) => (
            callway_control::store::sqlite::MIGRATIONS,
            callway_control::store::sqlite::CREATE_MIGRATIONS_TABLE,
        ),
    };
    assert!(migrations.len() >= 4, "schema 4 is the cost's");
    let events = [
        (0, "engine", serde_json::to_string(&engine("live", "gpt-live-1.1")).unwrap()),
        (1, "live_usage", serde_json::to_string(&CallEvent::LiveUsage { seconds: 30.0 }).unwrap()),
        (2, "live_usage", serde_json::to_string(&CallEvent::LiveUsage { seconds: 75.5 }).unwrap()),
    ];
    let lead = Uuid::new_v4();
    let call = Uuid::new_v4();
    let at = time::OffsetDateTime::now_utc();
    macro_rules! schema_3_with_a_live_call {
        ($p:expr) => {{
            sqlx::raw_sql(create).execute($p).await.unwrap();
            for (version, text) in &migrations[..3] {
                sqlx::raw_sql(text).execute($p).await.unwrap();
                sqlx::query("INSERT INTO callway_migrations (version) VALUES ($1)").bind(version).execute($p).await.unwrap();
            }
            s.apply(&Write::UpsertLead(callway_control::store::NewLead {
                id: lead,
                session_id: None,
                first_name: "Claire".into(),
                last_name: "Martin".into(),
                phone_e164: "+33612345678".into(),
                source: "web".into(),
                consent_text: "v1".into(),
                at,
            }))
            .await
            .unwrap();
            // The call as a control plane of schema 3 wrote it (today's insert has later columns).
            sqlx::query(
                "INSERT INTO calls (id, lead_id, session_id, status, status_rank, summary, stream_nonce, \
                 token_expires_at, created_at, updated_at, attempt) VALUES ($1, $2, NULL, 'created', 0, 'Démo', 'n', $3, $3, $3, 1)",
            )
            .bind(call).bind(lead).bind(at)
            .execute($p).await.unwrap();
            for (seq, kind, payload) in &events {
                sqlx::query("INSERT INTO call_events (call_id, seq, kind, payload, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(call).bind(*seq as i64).bind(*kind).bind(payload).bind(at)
                    .execute($p).await.unwrap();
            }
        }};
    }
    match &sql.pool {
        SqlPool::Pg(p) => schema_3_with_a_live_call!(p),
        SqlPool::Sqlite(p) => schema_3_with_a_live_call!(p),
    }
    s.migrate().await.unwrap();
    let (_, usage) = s.call_usage(call).await.unwrap().unwrap();
    assert_eq!(usage.engine_api.as_deref(), Some("live"));
    assert_eq!(usage.engine_model.as_deref(), Some("gpt-live-1.1"));
    assert_eq!(usage.live_seconds, 75.5, "the largest cumulative report");
}

#[tokio::test]
async fn migrating_a_postgres_database_backfills_the_calls_engine_and_live_seconds() {
    let url = common::pg::fresh_database().await;
    let s =
        callway_control::open_store(&callway_control::config::StorageConfig::Postgres { url }).await.unwrap();
    migration_backfills_engine_and_live_seconds(s).await;
}

#[tokio::test]
async fn migrating_a_sqlite_database_backfills_the_calls_engine_and_live_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("m.sqlite3").display());
    let s =
        callway_control::open_store(&callway_control::config::StorageConfig::Sqlite { url }).await.unwrap();
    migration_backfills_engine_and_live_seconds(s).await;
}

/// A batch queued in the outbox (the database was down) is counted when it is replayed, and
/// the same batch sent again afterwards is not counted a second time.
#[tokio::test]
async fn a_batch_replayed_from_the_outbox_is_counted_once() {
    use callway_control::metrics::Metrics;
    use callway_control::store::{Applied, Storage};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let prices_path = dir.path().join("prices.json");
    std::fs::write(&prices_path, prices()).unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("o.sqlite3").display());
    let mut env = common::env_for(&common::Db::Url(url.clone()), "http://127.0.0.1:9", "http://127.0.0.1:9");
    env.insert("PUBLIC_APP_URL".into(), "https://cp.example.eu".into());
    env.insert("PRICES_FILE".into(), prices_path.display().to_string());
    let config = callway_control::config::Config::from_lookup(&|k| env.get(k).cloned()).unwrap();
    let s =
        callway_control::open_store(&callway_control::config::StorageConfig::Sqlite { url }).await.unwrap();
    s.migrate().await.unwrap();
    let seeded = common::records::seed(&s).await;
    let batch = Write::AppendEvents(EventsWrite {
        call_id: seeded.call_id,
        seq: 100,
        events: batches(0).remove(0).events,
        at: time::OffsetDateTime::now_utc(),
    });
    // What a control plane left in its outbox while the database was down.
    let outbox = dir.path().join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    std::fs::write(outbox.join(format!("{:020}.json", 1)), serde_json::to_vec(&batch).unwrap()).unwrap();
    let metrics = Arc::new(Metrics::default());
    let storage = Storage::open(s, &outbox, metrics.clone()).await.unwrap();
    storage.on_appended(callway_control::cost::counter(&config, metrics.clone()));
    assert_eq!(storage.replay().await.replayed, 1);
    assert_eq!(storage.write(batch).await.unwrap(), Applied::Now, "the gateway's retry");
    let text = metrics.render();
    for line in [
        "callway_openai_input_tokens_total 3000".to_owned(),
        "callway_call_events_total 4".to_owned(),
        format!("callway_call_cost_openai_micros_total {}", OPENAI_MICROS[0]),
    ] {
        assert!(text.contains(&format!("{line}\n")), "{line} missing from\n{text}");
    }
}

/// Through the real gateway and the OpenAI simulator, on each engine: the gateway's own
/// reports (engine, Realtime usage with its token split from `response.done`, GPT-Live seconds)
/// reach the call's row, and the call is priced from them at its own model.
#[tokio::test]
async fn through_the_gateway_each_engine_reports_what_its_call_is_priced_from() {
    use callway_sim_twilio::api::CallerSettings;
    use callway_sim_twilio::caller::{EndPolicy, Pacing, Segment};
    let dir = tempfile::tempdir().unwrap();
    let prices_path = dir.path().join("prices.json");
    std::fs::write(&prices_path, prices()).unwrap();
    for engine in ["realtime", "live"] {
        let env = [("PRICES_FILE", prices_path.to_str().unwrap()), ("OPENAI_VOICE_API", engine)];
        let w = common::world::world_through_gateway(SimConfig::default(), &env, |c| {
            c.caller = CallerSettings {
                script: vec![Segment::AwaitAgent { settle_ms: 300, timeout_ms: 20_000 }],
                pacing: Pacing::RealTime,
                end: EndPolicy::ScriptEnd,
                max_duration: Some(Duration::from_secs(30)),
                ..c.caller.clone()
            };
        })
        .await;
        let s = w.cp.post_raw("/api/session", None, "application/json", b"{}".to_vec()).await;
        let cap = s.json["capability"].as_str().unwrap().to_owned();
        let body = json!({"first_name": "Claire", "last_name": "Martin", "phone": "06 12 34 56 78", "consent": true});
        let lead = w.cp.post_json("/api/tools/save_lead", Some(&cap), &body).await;
        let lead_id: Uuid = lead.json["lead_id"].as_str().unwrap().parse().unwrap();
        let t = json!({"lead_id": lead_id, "summary": "Veut une démo."});
        let r = w.cp.post_json("/api/tools/trigger_call", Some(&cap), &t).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let call_id: Uuid = r.json["call_id"].as_str().unwrap().parse().unwrap();
        let sid = within(w.twilio.wait_for_calls(1)).await[0].sid.clone();
        within(w.twilio.wait_call_finished(&sid)).await;
        // The gateway reports after the call: wait for its end event to be stored.
        let store = &w.cp.app.storage.store;
        within(async {
            while store.get_call(call_id).await.unwrap().unwrap().end_reason.is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let (_, usage) = store.call_usage(call_id).await.unwrap().unwrap();
        let report = lead_cost(&w.cp.app, lead_id).await.unwrap().unwrap();
        let c = &report.calls[0];
        assert_eq!(
            (c.engine.as_deref(), c.model_source),
            (Some(engine), Some("call")),
            "{}",
            w.gateway().log()
        );
        if engine == "realtime" {
            assert_eq!(c.model.as_deref(), Some(MODEL));
            assert!(usage.output_tokens > 0, "the greeting was a response: {usage:?}");
            let parts = c.tokens.expect("tokens");
            assert!(parts.audio_output > 0, "the split came through the gateway: {parts:?}");
            let input =
                parts.text_input + parts.audio_input + parts.cached_text_input + parts.cached_audio_input;
            assert_eq!(
                (input, parts.text_output + parts.audio_output),
                (usage.input_tokens, usage.output_tokens)
            );
            let by_hand = parts.text_input as f64 * 4.0
                + parts.audio_input as f64 * 32.0
                + (parts.cached_text_input + parts.cached_audio_input) as f64 * 0.4
                + parts.text_output as f64 * 16.0
                + parts.audio_output as f64 * 64.0;
            assert!(
                (c.cost.openai_micros as f64 - by_hand).abs() <= 6.0,
                "{} vs {by_hand}",
                c.cost.openai_micros
            );
        } else {
            assert_eq!(c.model.as_deref(), Some("gpt-live-1.1"));
            assert!(usage.live_seconds > 0.0 && usage.input_tokens == 0, "{usage:?}");
            assert_eq!(c.cost.openai_micros, (usage.live_seconds * 0.05 * 1e6 / 60.0).round() as u64);
        }
    }
}
