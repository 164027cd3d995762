//! The Supabase REST (PostgREST) backend against a recording endpoint: each request is checked
//! exactly (method, path, filters, headers, body), and PostgREST's documented answers and
//! errors (protocols.md D) are replayed to check how each is classified.

mod common;

use callway_control::config::StorageConfig;
use callway_control::store::{NewCall, NewLead, Redeem, Store, StoreError, Write};
use common::recorder::{Recorded, Recorder, Reply};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

async fn store(key: &str) -> (Store, Recorder) {
    let rec = Recorder::start().await;
    let cfg = StorageConfig::SupabaseRest { url: format!("{}/", rec.base), service_role_key: key.into() };
    (callway_control::open_store(&cfg).await.unwrap(), rec)
}

fn lead() -> NewLead {
    NewLead {
        id: Uuid::parse_str("0b6f9a8e-6a0e-4f47-9a43-6e1f5b8f2c11").unwrap(),
        session_id: None,
        first_name: "Claire".into(),
        last_name: "Martin".into(),
        phone_e164: "+33612345678".into(),
        source: "web".into(),
        consent_text: "v1".into(),
        at: OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap(),
    }
}

fn check_headers(r: &Recorded, key: &str) {
    assert_eq!(r.header("apikey"), Some(key));
    assert!(r.header("user-agent").unwrap().starts_with("callway-control/"), "never a browser's UA");
    if key.starts_with("sb_") {
        assert_eq!(r.header("authorization"), None, "sb_secret keys are not JWTs: apikey only");
    } else {
        assert_eq!(r.header("authorization"), Some(format!("Bearer {key}").as_str()));
    }
}

const DUPLICATE: &str = r#"{"code":"23505","details":"Key (id)=(0b6f9a8e-6a0e-4f47-9a43-6e1f5b8f2c11) already exists.","hint":null,"message":"duplicate key value violates unique constraint \"leads_pkey\""}"#;

#[tokio::test]
async fn upsert_lead_inserts_then_patches_on_duplicate() {
    let key = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz";
    let (s, rec) = store(key).await;
    rec.script([Reply::new(201, ""), Reply::new(409, DUPLICATE), Reply::new(204, "")]);
    s.apply(&Write::UpsertLead(lead())).await.unwrap();
    s.apply(&Write::UpsertLead(lead())).await.unwrap();
    let reqs = rec.take();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        check_headers(r, key);
    }
    let (insert, retry, patch) = (&reqs[0], &reqs[1], &reqs[2]);
    assert_eq!((insert.method.as_str(), insert.path.as_str()), ("POST", "/rest/v1/leads"));
    assert_eq!(insert.header("prefer"), Some("return=minimal"));
    assert_eq!(insert.header("content-type"), Some("application/json"));
    assert_eq!(
        insert.json(),
        json!({"id": "0b6f9a8e-6a0e-4f47-9a43-6e1f5b8f2c11", "session_id": null, "first_name": "Claire",
               "last_name": "Martin", "phone_e164": "+33612345678", "source": "web",
               "consent_at": "2026-11-18T11:06:40Z", "consent_text": "v1",
               "created_at": "2026-11-18T11:06:40Z", "updated_at": "2026-11-18T11:06:40Z"})
    );
    assert_eq!(retry.path, "/rest/v1/leads");
    assert_eq!(
        (patch.method.as_str(), patch.query.as_str()),
        ("PATCH", "id=eq.0b6f9a8e-6a0e-4f47-9a43-6e1f5b8f2c11")
    );
    assert_eq!(patch.json()["first_name"], "Claire");
    assert!(patch.json().get("id").is_none(), "the key is in the filter, not the patch");
}

#[tokio::test]
async fn a_legacy_jwt_key_goes_in_both_headers() {
    let key = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.sig";
    let (s, rec) = store(key).await;
    let latest = callway_control::store::postgres::MIGRATIONS.last().unwrap().0;
    rec.script([Reply::new(200, format!(r#"[{{"version":{latest}}}]"#))]);
    s.migrate().await.unwrap();
    let r = &rec.take()[0];
    check_headers(r, key);
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/rest/v1/callway_migrations"));
    assert_eq!(
        r.query_pairs(),
        [
            ("select".into(), "version".into()),
            ("order".into(), "version.desc".into()),
            ("limit".into(), "1".into())
        ]
    );
}

#[tokio::test]
async fn schema_missing_or_behind_says_how_to_migrate() {
    let (s, rec) = store("sb_secret_x").await;
    rec.script([
        Reply::new(404, r#"{"code":"PGRST205","details":null,"hint":"Perhaps you meant the table 'public.leads'","message":"Could not find the table 'public.callway_migrations' in the schema cache"}"#),
        Reply::new(200, "[]"),
    ]);
    let e = s.migrate().await.unwrap_err();
    assert!(matches!(e, StoreError::Schema(_)), "{e}");
    assert!(e.to_string().contains("callway-control migrate"), "{e}");
    let e = s.migrate().await.unwrap_err();
    assert!(e.to_string().contains("schema is at version 0"), "{e}");
}

#[tokio::test]
async fn documented_errors_are_classified() {
    let (s, rec) = store("sb_secret_x").await;
    let cases = [
        (
            409,
            r#"{"code":"23503","details":"Key is not present in table \"calls\".","hint":null,"message":"insert or update on table violates foreign key constraint"}"#,
            "not found",
        ),
        (
            401,
            r#"{"code":"PGRST301","details":null,"hint":null,"message":"JWT invalid"}"#,
            "refused SUPABASE_SERVICE_ROLE_KEY",
        ),
        (
            403,
            r#"{"code":"42501","details":null,"hint":null,"message":"permission denied for table leads"}"#,
            "grants are missing",
        ),
        (
            503,
            r#"{"code":"PGRST001","details":null,"hint":null,"message":"Database client error. Retrying the connection."}"#,
            "unavailable",
        ),
        (
            400,
            r#"{"code":"PGRST102","details":null,"hint":null,"message":"Empty or invalid json"}"#,
            "database error",
        ),
    ];
    for (status, body, needle) in cases {
        rec.script([Reply::new(status, body)]);
        let e = s.apply(&Write::UpsertLead(lead())).await.unwrap_err();
        assert!(e.to_string().contains(needle), "{status}: {e}");
    }
    // Unreachable (nothing listens): unavailable, so the outbox queues the write.
    let cfg = StorageConfig::SupabaseRest {
        url: "http://127.0.0.1:9".into(),
        service_role_key: "sb_secret_x".into(),
    };
    let down = callway_control::open_store(&cfg).await.unwrap();
    assert!(matches!(down.apply(&Write::UpsertLead(lead())).await, Err(StoreError::Unavailable(_))));
}

#[tokio::test]
async fn create_call_conflict_and_atomic_redeem() {
    let (s, rec) = store("sb_secret_x").await;
    let at = OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap();
    let call = NewCall {
        id: Uuid::new_v4(),
        lead_id: lead().id,
        session_id: None,
        summary: "Démo".into(),
        stream_nonce: "00112233445566778899aabb".into(),
        token_expires_at: at,
        attempt: 1,
        web_transcript: Vec::new(),
        at,
    };
    rec.script([Reply::new(409, r#"{"code":"23505","details":"Key (lead_id)=(…) already exists.","hint":null,"message":"duplicate key value violates unique constraint \"calls_one_active_per_lead\""}"#)]);
    assert!(matches!(s.create_call(&call).await, Err(StoreError::Conflict(_))));
    rec.take();

    rec.script([
        Reply::new(200, format!(r#"[{{"lead_id":"{}","summary":"Démo"}}]"#, lead().id)),
        Reply::new(200, r#"[{"first_name":"Claire"}]"#),
        Reply::new(200, "[]"),
        Reply::new(200, format!(r#"[{{"id":"{}"}}]"#, call.id)),
    ]);
    let first =
        s.redeem(call.id, &call.stream_nonce, Some("CA0123456789abcdef0123456789abcdef"), at).await.unwrap();
    assert!(matches!(first, Redeem::Redeemed(ref r) if r.first_name == "Claire" && r.summary == "Démo"));
    let second = s.redeem(call.id, &call.stream_nonce, None, at).await.unwrap();
    assert_eq!(second, Redeem::AlreadyRedeemed);
    let reqs = rec.take();
    let patch = &reqs[0];
    assert_eq!((patch.method.as_str(), patch.path.as_str()), ("PATCH", "/rest/v1/calls"));
    assert_eq!(
        patch.query_pairs(),
        [
            ("id".into(), format!("eq.{}", call.id)),
            ("stream_nonce".into(), "eq.00112233445566778899aabb".into()),
            ("token_redeemed_at".into(), "is.null".into()),
            ("select".into(), "lead_id,summary,call_sid,web_transcript".into()),
        ],
        "one conditional UPDATE … RETURNING: atomic single use"
    );
    assert_eq!(patch.header("prefer"), Some("return=representation"));
    assert_eq!(patch.json()["call_sid"], "CA0123456789abcdef0123456789abcdef");
    assert_eq!(reqs[2].method.as_str(), "PATCH");
    assert_eq!(reqs[3].method.as_str(), "GET", "an empty PATCH result is told apart: used vs unknown");
}

#[tokio::test]
async fn a_transfer_lease_is_one_conditional_patch() {
    let (s, rec) = store("sb_secret_x").await;
    let id = Uuid::new_v4();
    let now = time::macros::datetime!(2026-12-07 13:00 UTC);
    let until = now + time::Duration::seconds(60);
    rec.script([
        Reply::new(200, format!(r#"[{{"id":"{id}"}}]"#)),
        // Held by another control plane: nothing comes back, and the call exists.
        Reply::new(200, "[]"),
        Reply::new(200, format!(r#"[{{"id":"{id}"}}]"#)),
        Reply::new(204, ""),
    ]);
    assert!(s.claim_transfer(id, now, until).await.unwrap());
    assert!(!s.claim_transfer(id, now, until).await.unwrap());
    s.release_transfer(id).await.unwrap();
    let reqs = rec.take();
    assert_eq!((reqs[0].method.as_str(), reqs[0].path.as_str()), ("PATCH", "/rest/v1/calls"));
    assert_eq!(
        reqs[0].query_pairs(),
        [
            ("id".into(), format!("eq.{id}")),
            (
                "or".into(),
                "(transfer_lease_until.is.null,transfer_lease_until.lt.2026-12-07T13:00:00Z)".into()
            ),
            ("select".into(), "id".into()),
        ],
        "one conditional UPDATE: free or expired"
    );
    assert_eq!(reqs[0].header("prefer"), Some("return=representation"));
    assert_eq!(reqs[0].json(), json!({"transfer_lease_until": "2026-12-07T13:01:00Z"}));
    assert_eq!(reqs[2].method.as_str(), "GET", "an empty PATCH result is told apart: held vs unknown");
    assert_eq!((reqs[3].method.as_str(), reqs[3].query.as_str()), ("PATCH", format!("id=eq.{id}").as_str()));
    assert_eq!(reqs[3].json(), json!({"transfer_lease_until": null}));
}

#[tokio::test]
async fn retries_are_claimed_one_conditional_patch_each() {
    let (s, rec) = store("sb_secret_x").await;
    let (a, b) = ("7d3c2b1a-0000-4000-8000-00000000000a", "7d3c2b1a-0000-4000-8000-00000000000b");
    let row = format!(
        r#"[{{"id":"{a}","lead_id":"{}","after_call_id":"{b}","attempt":2,"reason":"busy","state":"placing","due_at":"2026-12-07T13:00:00+00:00","call_id":null,"detail":null}}]"#,
        lead().id
    );
    rec.script([
        Reply::new(200, format!(r#"[{{"id":"{a}"}},{{"id":"{b}"}}]"#)),
        Reply::new(200, row),
        // Another control plane took `b` between our read and our PATCH: nothing comes back.
        Reply::new(200, "[]"),
    ]);
    let got = s.claim_due_retries(time::macros::datetime!(2026-12-07 13:00 UTC), "cp-1", 16).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].id.to_string().as_str(), got[0].state.as_str(), got[0].attempt), (a, "placing", 2));
    let reqs = rec.take();
    assert_eq!((reqs[0].method.as_str(), reqs[0].path.as_str()), ("GET", "/rest/v1/call_retries"));
    assert_eq!(
        reqs[0].query_pairs(),
        [
            ("state".into(), "eq.scheduled".into()),
            ("due_at".into(), "lte.2026-12-07T13:00:00Z".into()),
            ("order".into(), "due_at.asc".into()),
            ("limit".into(), "16".into()),
            ("select".into(), "id".into()),
        ]
    );
    for (r, id) in [(&reqs[1], a), (&reqs[2], b)] {
        assert_eq!(r.method.as_str(), "PATCH");
        let q = r.query_pairs();
        assert_eq!(q[..2], [("id".into(), format!("eq.{id}")), ("state".into(), "eq.scheduled".into())]);
        assert_eq!(r.header("prefer"), Some("return=representation"));
        assert_eq!(
            (r.json()["state"].as_str(), r.json()["claimed_by"].as_str()),
            (Some("placing"), Some("cp-1"))
        );
    }
}

#[tokio::test]
async fn calls_awaiting_a_summary_are_one_get_with_their_transcript_inner_joined() {
    let (s, rec) = store("sb_secret_x").await;
    let id = "7d3c2b1a-0000-4000-8000-00000000000a";
    rec.script([Reply::new(200, format!(r#"[{{"id":"{id}","call_events":[{{"kind":"transcript"}}]}}]"#))]);
    let since = OffsetDateTime::from_unix_timestamp(1_796_000_000).unwrap();
    let until = since + time::Duration::hours(1);
    let ids = s.calls_awaiting_summary(since, until, 20).await.unwrap();
    assert_eq!(ids, [Uuid::parse_str(id).unwrap()]);
    let r = &rec.take()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/rest/v1/calls"));
    assert_eq!(
        r.query_pairs(),
        [
            ("select".into(), "id,call_events!inner(kind)".into()),
            ("outcome_summary".into(), "is.null".into()),
            ("end_reason".into(), "not.is.null".into()),
            (
                "and".into(),
                r#"(updated_at.gte."2026-11-30T00:53:20Z",updated_at.lte."2026-11-30T01:53:20Z")"#.into()
            ),
            ("call_events.kind".into(), "eq.transcript".into()),
            ("call_events.limit".into(), "1".into()),
            ("order".into(), "updated_at.asc".into()),
            ("limit".into(), "20".into()),
        ]
    );
}

/// A batch's usage goes onto the call's row in one `PATCH` computed from the rows PostgREST says
/// it inserted; the same batch again inserts nothing and writes nothing (issue 13, cost).
#[tokio::test]
async fn a_batch_adds_its_usage_once_with_one_patch() {
    use callway_control::store::EventsWrite;
    use contract::internal_api::{CallEvent, TokenDetails};
    let (s, rec) = store("sb_secret_x").await;
    let call = Uuid::parse_str("7d3c2b1a-0000-4000-8000-00000000000a").unwrap();
    let lead = "7d3c2b1a-0000-4000-8000-00000000000b";
    let batch = Write::AppendEvents(EventsWrite {
        call_id: call,
        seq: 4,
        events: vec![
            CallEvent::Engine { api: "realtime".into(), model: "gpt-realtime-2.1".into() },
            CallEvent::Usage {
                response_id: "resp_1".into(),
                input_tokens: 100,
                output_tokens: 50,
                details: Some(TokenDetails {
                    input_audio_tokens: 60,
                    input_cached_tokens: 20,
                    input_cached_audio_tokens: 10,
                    output_audio_tokens: 40,
                }),
            },
        ],
        at: OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap(),
    });
    rec.script([
        Reply::new(201, r#"[{"seq":4},{"seq":5}]"#),
        Reply::new(
            200,
            format!(
                r#"[{{"lead_id":"{lead}","input_tokens":10,"output_tokens":5,"input_audio_tokens":0,"input_cached_tokens":0,"input_cached_audio_tokens":0,"output_audio_tokens":0,"live_seconds":0,"engine_api":null,"engine_model":null}}]"#
            ),
        ),
        Reply::new(204, ""),
        Reply::new(201, "[]"),
    ]);
    let first = s.apply(&batch).await.unwrap().unwrap();
    assert_eq!((first.inserted, first.before.input_tokens, first.after.input_tokens), (2, 10, 110));
    let again = s.apply(&batch).await.unwrap().unwrap();
    assert_eq!((again.inserted, again.before == again.after), (0, true), "nothing new, nothing counted");
    let reqs = rec.take();
    let calls: Vec<(&str, &str)> = reqs.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    assert_eq!(
        calls,
        [
            ("POST", "/rest/v1/call_events"),
            ("GET", "/rest/v1/calls"),
            ("PATCH", "/rest/v1/calls"),
            ("POST", "/rest/v1/call_events")
        ]
    );
    assert_eq!(reqs[2].query, format!("id=eq.{call}"));
    assert_eq!(
        reqs[2].json(),
        json!({"input_tokens": 110, "output_tokens": 55, "input_audio_tokens": 60, "input_cached_tokens": 20,
               "input_cached_audio_tokens": 10, "output_audio_tokens": 40, "live_seconds": 0.0,
               "engine_api": "realtime", "engine_model": "gpt-realtime-2.1"})
    );
}

/// The calls a cost report covers are one `GET` embedding the lead's number, the `completed`
/// callback and the `transfer-completed` line (issue 13, cost).
#[tokio::test]
async fn cost_rows_are_one_get_with_the_number_and_the_completed_callback() {
    use callway_control::cost::CallFilter;
    let (s, rec) = store("sb_secret_x").await;
    let (call, lead) = ("7d3c2b1a-0000-4000-8000-00000000000a", "7d3c2b1a-0000-4000-8000-00000000000b");
    rec.script([Reply::new(
        200,
        format!(
            r#"[{{"id":"{call}","lead_id":"{lead}","created_at":"2026-12-06T10:00:00+00:00","status":"completed","input_tokens":0,"output_tokens":0,"input_audio_tokens":0,"input_cached_tokens":0,"input_cached_audio_tokens":0,"output_audio_tokens":0,"live_seconds":75.5,"engine_api":"live","engine_model":"gpt-live-1.1","leads":{{"phone_e164":"+33612345678"}},"completed":[{{"detail":"CallDuration=80 AnsweredBy=human"}}],"transfer":[{{"detail":"DialCallDuration=95"}}]}}]"#
        ),
    )]);
    let since = OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap();
    let filter = CallFilter { lead: Some(lead.parse().unwrap()), call: None, since: Some(since), limit: 20 };
    let rows = callway_control::record::read::cost_rows(&s, filter).await.unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!((r.phone_e164.as_str(), r.twilio_seconds, r.usage.live_seconds), ("+33612345678", 80, 75.5));
    assert_eq!(r.transfer_seconds, 95);
    assert_eq!(r.usage.engine_model.as_deref(), Some("gpt-live-1.1"));
    let q = rec.take()[0].query_pairs();
    for pair in [
        ("lead_id", format!("eq.{lead}")),
        ("created_at", "gte.2026-11-18T11:06:40Z".to_owned()),
        ("completed.status", "eq.completed".to_owned()),
        ("completed.limit", "1".to_owned()),
        ("transfer.status", "eq.transfer-completed".to_owned()),
        ("transfer.source", "eq.transfer".to_owned()),
        ("order", "created_at.desc,id.desc".to_owned()),
        ("limit", "20".to_owned()),
    ] {
        assert!(q.contains(&(pair.0.to_owned(), pair.1.clone())), "{pair:?} not in {q:?}");
    }
    let select = &q.iter().find(|(k, _)| k == "select").unwrap().1;
    assert!(
        select.ends_with(
            "engine_model,leads(phone_e164),completed:call_status_events(detail),transfer:call_status_events(detail)"
        ),
        "{select}"
    );
}
