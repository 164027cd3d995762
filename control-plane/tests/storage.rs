//! The storage contract, run against both SQL backends: a real PostgreSQL (fresh database per
//! test) and SQLite. Every rule the routes rely on is checked here at the store level: upserts
//! are idempotent, one active call per lead, statuses only move forward, a stream token is
//! redeemed once even under a race, event batches are idempotent by `seq`, retention purge and
//! erasure remove exactly what they say.

mod common;

use std::sync::Arc;

use callway_control::config::StorageConfig;
use callway_control::store::{
    EventsWrite, LeadCorrection, NewCall, NewLead, NewRetry, Redeem, StatusUpdate, Store, StoreError, Write,
};
use contract::internal_api::{CallEvent, Side, Speaker, TranscriptLine};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

async fn postgres() -> Store {
    let url = common::pg::fresh_database().await;
    let s = callway_control::open_store(&StorageConfig::Postgres { url }).await.unwrap();
    s.migrate().await.unwrap();
    s.migrate().await.expect("migrations are idempotent");
    s
}

async fn sqlite(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("t.sqlite3").display());
    let s = callway_control::open_store(&StorageConfig::Sqlite { url }).await.unwrap();
    s.migrate().await.unwrap();
    s.migrate().await.expect("migrations are idempotent");
    s
}

fn lead(phone: &str) -> NewLead {
    NewLead {
        id: Uuid::new_v4(),
        session_id: Some(Uuid::new_v4()),
        first_name: "Claire".into(),
        last_name: "Martin".into(),
        phone_e164: phone.into(),
        source: "web".into(),
        consent_text: "v1: ok".into(),
        at: OffsetDateTime::now_utc(),
    }
}

fn call(lead_id: Uuid) -> NewCall {
    let at = OffsetDateTime::now_utc();
    NewCall {
        id: Uuid::new_v4(),
        lead_id,
        session_id: None,
        summary: "Veut une démo lundi.".into(),
        stream_nonce: Uuid::new_v4().simple().to_string(),
        token_expires_at: at + Duration::minutes(2),
        attempt: 1,
        web_transcript: Vec::new(),
        at,
    }
}

fn status(call_id: Uuid, s: &str, source: &str) -> Write {
    Write::RecordStatus(StatusUpdate {
        call_id,
        call_sid: Some("CA0123456789abcdef0123456789abcdef".into()),
        status: s.into(),
        source: source.into(),
        detail: None,
        at: OffsetDateTime::now_utc(),
    })
}

async fn upsert_is_idempotent_and_correction_applies(s: Store) {
    let mut l = lead("+33612345678");
    s.apply(&Write::UpsertLead(l.clone())).await.unwrap();
    l.first_name = "Claire-Marie".into();
    s.apply(&Write::UpsertLead(l.clone())).await.unwrap();
    let got = s.get_lead(l.id).await.unwrap().unwrap();
    assert_eq!(got.first_name, "Claire-Marie");
    s.apply(&Write::CorrectLead(LeadCorrection {
        lead_id: l.id,
        first_name: None,
        last_name: Some("Durand".into()),
        phone_e164: Some("+33698765432".into()),
        at: OffsetDateTime::now_utc(),
    }))
    .await
    .unwrap();
    let got = s.get_lead(l.id).await.unwrap().unwrap();
    assert_eq!((got.first_name.as_str(), got.last_name.as_str()), ("Claire-Marie", "Durand"));
    assert_eq!(got.phone_e164, "+33698765432");
    let missing = LeadCorrection {
        lead_id: Uuid::new_v4(),
        first_name: Some("X".into()),
        last_name: None,
        phone_e164: None,
        at: OffsetDateTime::now_utc(),
    };
    assert!(matches!(s.apply(&Write::CorrectLead(missing)).await, Err(StoreError::NotFound(_))));
    assert!(s.get_lead(Uuid::new_v4()).await.unwrap().is_none());
}

async fn one_active_call_per_lead(s: Store) {
    let l = lead("+33612345678");
    s.apply(&Write::UpsertLead(l.clone())).await.unwrap();
    let first = call(l.id);
    s.create_call(&first).await.unwrap();
    assert!(matches!(s.create_call(&call(l.id)).await, Err(StoreError::Conflict(_))));
    s.apply(&status(first.id, "ringing", "twilio-call")).await.unwrap();
    assert!(matches!(s.create_call(&call(l.id)).await, Err(StoreError::Conflict(_))));
    s.apply(&status(first.id, "no-answer", "twilio-call")).await.unwrap();
    s.create_call(&call(l.id)).await.expect("a finished call frees the slot");
    let orphan = call(Uuid::new_v4());
    assert!(s.create_call(&orphan).await.is_err(), "a call needs an existing lead");
}

async fn statuses_only_move_forward(s: Store) {
    let l = lead("+33612345678");
    s.apply(&Write::UpsertLead(l.clone())).await.unwrap();
    let c = call(l.id);
    s.create_call(&c).await.unwrap();
    s.apply(&status(c.id, "ringing", "twilio-call")).await.unwrap();
    s.apply(&status(c.id, "initiated", "twilio-call")).await.unwrap(); // late callback
    s.apply(&status(c.id, "stream-started", "twilio-stream")).await.unwrap();
    let row = s.get_call(c.id).await.unwrap().unwrap();
    assert_eq!(row.status, "ringing");
    assert_eq!(row.call_sid.as_deref(), Some("CA0123456789abcdef0123456789abcdef"));
    s.apply(&status(c.id, "in-progress", "twilio-call")).await.unwrap();
    s.apply(&status(c.id, "completed", "twilio-call")).await.unwrap();
    assert_eq!(s.get_call(c.id).await.unwrap().unwrap().status, "completed");
    assert_eq!(
        s.status_timeline(c.id).await.unwrap(),
        ["ringing", "initiated", "stream-started", "in-progress", "completed"]
    );
    let unknown = status(Uuid::new_v4(), "ringing", "twilio-call");
    assert!(matches!(s.apply(&unknown).await, Err(StoreError::NotFound(_))));
}

async fn token_redeemed_exactly_once_even_when_raced(s: Store) {
    let l = lead("+33612345678");
    s.apply(&Write::UpsertLead(l.clone())).await.unwrap();
    let c = call(l.id);
    s.create_call(&c).await.unwrap();
    assert_eq!(
        s.redeem(c.id, "wrong-nonce", None, OffsetDateTime::now_utc()).await.unwrap(),
        Redeem::Unknown
    );
    let s = Arc::new(s);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, nonce) = (s.clone(), c.stream_nonce.clone());
        tasks.push(tokio::spawn(async move {
            s.redeem(c.id, &nonce, Some("CA0123456789abcdef0123456789abcdef"), OffsetDateTime::now_utc())
                .await
                .unwrap()
        }));
    }
    let mut won = Vec::new();
    let mut already = 0;
    for t in tasks {
        match t.await.unwrap() {
            Redeem::Redeemed(r) => won.push(r),
            Redeem::AlreadyRedeemed => already += 1,
            Redeem::Unknown => panic!("the call exists"),
        }
    }
    assert_eq!((won.len(), already), (1, 7));
    assert_eq!(won[0].first_name, "Claire");
    assert_eq!(won[0].summary, "Veut une démo lundi.");
    assert_eq!(won[0].lead_id, l.id);
    assert!(won[0].web_transcript.is_empty(), "no web conversation stored with this call");
}

fn web_lines() -> Vec<TranscriptLine> {
    vec![
        TranscriptLine { speaker: Speaker::Agent, text: "Bonjour, je suis Claire.".into() },
        TranscriptLine { speaker: Speaker::Caller, text: "Rappelez-moi \"lundi\", s'il vous plaît.".into() },
    ]
}

/// The transfer lease: one holder at a time, free again once released or expired.
async fn a_transfer_lease_has_one_holder_until_released_or_expired(s: Store) {
    let l = lead("+33612345678");
    s.apply(&Write::UpsertLead(l.clone())).await.unwrap();
    let c = call(l.id);
    s.create_call(&c).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let lease = Duration::seconds(60);
    assert!(s.claim_transfer(c.id, now, now + lease).await.unwrap());
    assert!(!s.claim_transfer(c.id, now + Duration::seconds(1), now + lease).await.unwrap(), "held");
    s.release_transfer(c.id).await.unwrap();
    assert!(s.claim_transfer(c.id, now, now + lease).await.unwrap(), "released");
    let later = now + lease + Duration::seconds(1);
    assert!(s.claim_transfer(c.id, later, later + lease).await.unwrap(), "expired: a dead holder");
    assert!(matches!(s.claim_transfer(Uuid::new_v4(), now, now + lease).await, Err(StoreError::NotFound(_))));
}

/// The web conversation stored with the call comes back with the redemption (for the gateway)
/// and with the call (for a retry).
async fn the_web_conversation_comes_back_with_the_redemption_and_the_call(s: Store) {
    let l = lead("+33612345678");
    s.apply(&Write::UpsertLead(l.clone())).await.unwrap();
    let c = NewCall { web_transcript: web_lines(), ..call(l.id) };
    s.create_call(&c).await.unwrap();
    assert_eq!(s.get_call(c.id).await.unwrap().unwrap().web_transcript, web_lines());
    match s.redeem(c.id, &c.stream_nonce, None, OffsetDateTime::now_utc()).await.unwrap() {
        Redeem::Redeemed(r) => assert_eq!(r.web_transcript, web_lines()),
        other => panic!("first redemption: {other:?}"),
    }
}

/// The CallSid Twilio gave when the call was placed comes back with the redemption, so the
/// "stream token redeemed" line names the call even when the gateway does not know it yet.
async fn redemption_names_the_call_sid_recorded_when_placed(s: Store) {
    let l = lead("+33612345678");
    s.apply(&Write::UpsertLead(l.clone())).await.unwrap();
    let c = call(l.id);
    s.create_call(&c).await.unwrap();
    s.apply(&status(c.id, "queued", "twilio-call")).await.unwrap();
    match s.redeem(c.id, &c.stream_nonce, None, OffsetDateTime::now_utc()).await.unwrap() {
        Redeem::Redeemed(r) => assert_eq!(r.call_sid.as_deref(), Some("CA0123456789abcdef0123456789abcdef")),
        other => panic!("first redemption: {other:?}"),
    }
}

async fn event_batches_are_idempotent(s: Store) {
    let l = lead("+33612345678");
    s.apply(&Write::UpsertLead(l.clone())).await.unwrap();
    let c = call(l.id);
    s.create_call(&c).await.unwrap();
    let batch = Write::AppendEvents(EventsWrite {
        call_id: c.id,
        seq: 0,
        events: vec![
            CallEvent::Transcript { speaker: Speaker::Agent, text: "Bonjour Claire".into(), at_ms: 400 },
            CallEvent::Usage {
                response_id: "resp_1".into(),
                input_tokens: 100,
                output_tokens: 40,
                details: None,
            },
        ],
        at: OffsetDateTime::now_utc(),
    });
    s.apply(&batch).await.unwrap();
    s.apply(&batch).await.expect("a retried batch is harmless");
    let end = Write::AppendEvents(EventsWrite {
        call_id: c.id,
        seq: 1, // overlaps the usage event: only seq 2 is new
        events: vec![
            CallEvent::Usage {
                response_id: "resp_1".into(),
                input_tokens: 100,
                output_tokens: 40,
                details: None,
            },
            CallEvent::Ended { side: Side::Twilio, reason: "caller_hung_up".into(), duration_ms: 61_000 },
        ],
        at: OffsetDateTime::now_utc(),
    });
    s.apply(&end).await.unwrap();
    let row = s.get_call(c.id).await.unwrap().unwrap();
    assert_eq!((row.input_tokens, row.output_tokens), (100, 40));
    assert_eq!(row.end_reason.as_deref(), Some("caller_hung_up"));
    let orphan = Write::AppendEvents(EventsWrite {
        call_id: Uuid::new_v4(),
        seq: 0,
        events: vec![],
        at: OffsetDateTime::now_utc(),
    });
    assert!(matches!(s.apply(&orphan).await, Err(StoreError::NotFound(_))));
}

async fn purge_and_erase_remove_what_they_say(s: Store) {
    let old = OffsetDateTime::now_utc() - Duration::days(40);
    let l = lead("+33612345678");
    let other = lead("+33698765432");
    s.apply(&Write::UpsertLead(l.clone())).await.unwrap();
    s.apply(&Write::UpsertLead(other.clone())).await.unwrap();
    // The first call was asked for 40 days ago from a web conversation; the second one now.
    let c = NewCall { web_transcript: web_lines(), at: old, ..call(l.id) };
    let c2 = NewCall { web_transcript: web_lines(), ..call(other.id) };
    s.create_call(&c).await.unwrap();
    s.create_call(&c2).await.unwrap();
    s.apply(&status(c.id, "ringing", "twilio-call")).await.unwrap();
    for (call_id, at) in [(c.id, old), (c2.id, OffsetDateTime::now_utc())] {
        s.apply(&Write::AppendEvents(EventsWrite {
            call_id,
            seq: 0,
            events: vec![
                CallEvent::Transcript { speaker: Speaker::Caller, text: "Oui".into(), at_ms: 1 },
                CallEvent::Usage {
                    response_id: "r".into(),
                    input_tokens: 1,
                    output_tokens: 1,
                    details: None,
                },
            ],
            at,
        }))
        .await
        .unwrap();
    }
    let purged = s.purge_transcripts(OffsetDateTime::now_utc() - Duration::days(30)).await.unwrap();
    assert_eq!(
        purged, 3,
        "the old transcript line and the old call's two web lines, not usage, not the recent ones"
    );
    assert!(
        s.get_call(c.id).await.unwrap().unwrap().web_transcript.is_empty(),
        "the old web conversation is gone"
    );
    assert_eq!(s.get_call(c2.id).await.unwrap().unwrap().web_transcript, web_lines(), "the recent one stays");
    assert_eq!(s.purge_transcripts(OffsetDateTime::now_utc() - Duration::days(30)).await.unwrap(), 0);
    let erased = s.erase_phone("+33612345678").await.unwrap();
    assert_eq!((erased.leads, erased.calls, erased.call_status_events, erased.call_events), (1, 1, 1, 1));
    assert!(s.get_lead(l.id).await.unwrap().is_none());
    assert!(s.get_call(c.id).await.unwrap().is_none());
    assert!(s.get_lead(other.id).await.unwrap().is_some(), "other people's data stays");
    assert_eq!(s.erase_phone("+33612345678").await.unwrap(), Default::default());
}

async fn concurrent_status_updates_of_one_call_all_land(s: Store) {
    // Our `queued` record and Twilio's first callbacks race on the same call row; on Postgres
    // the wrong lock order made one of them a deadlock victim.
    let l = lead("+33612345678");
    s.apply(&Write::UpsertLead(l.clone())).await.unwrap();
    let c = call(l.id);
    s.create_call(&c).await.unwrap();
    let s = Arc::new(s);
    let statuses = ["queued", "initiated", "ringing", "in-progress", "stream-started", "completed"];
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let s = s.clone();
            let w = status(c.id, statuses[i % statuses.len()], "twilio-call");
            tokio::spawn(async move { s.apply(&w).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("every concurrent status write lands");
    }
    assert_eq!(s.status_timeline(c.id).await.unwrap().len(), 24);
    assert_eq!(s.get_call(c.id).await.unwrap().unwrap().status, "completed");
}

fn retry_after(lead_id: Uuid, call_id: Uuid, due_at: OffsetDateTime) -> NewRetry {
    NewRetry {
        id: Uuid::new_v4(),
        lead_id,
        after_call_id: call_id,
        attempt: 2,
        reason: "busy".into(),
        requested_at: due_at - Duration::minutes(30),
        due_at,
        at: due_at - Duration::hours(1),
    }
}

/// A lead whose first call was busy, and the retry scheduled after it (due 2026-12-07 13:00 UTC).
async fn busy_call_with_retry(s: &Store) -> (NewLead, NewCall, NewRetry, OffsetDateTime) {
    let l = lead("+33612345678");
    s.apply(&Write::UpsertLead(l.clone())).await.unwrap();
    let c = call(l.id);
    s.create_call(&c).await.unwrap();
    s.apply(&status(c.id, "busy", "twilio-call")).await.unwrap();
    let due = time::macros::datetime!(2026-12-07 13:00 UTC);
    let r = retry_after(l.id, c.id, due);
    assert!(s.schedule_retry(&r).await.unwrap());
    (l, c, r, due)
}

async fn a_retry_is_scheduled_once_claimed_once_and_erased(s: Store) {
    let (l, c, r, due) = busy_call_with_retry(&s).await;
    assert!(!s.schedule_retry(&retry_after(l.id, c.id, due)).await.unwrap(), "one retry per call");
    assert_eq!(s.attempt_of_call(c.id).await.unwrap(), 1, "a call the prospect asked for is attempt 1");

    assert!(
        s.claim_due_retries(due - Duration::seconds(1), "w1", 10).await.unwrap().is_empty(),
        "not due yet"
    );
    let got = s.claim_due_retries(due, "w1", 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].id, got[0].state.as_str(), got[0].attempt, got[0].due_at), (r.id, "placing", 2, due));
    assert!(
        s.claim_due_retries(due + Duration::hours(1), "w2", 10).await.unwrap().is_empty(),
        "claimed once"
    );

    // Placed as a new call: that call is attempt 2.
    s.apply(&status(c.id, "completed", "twilio-call")).await.unwrap();
    let c2 = NewCall { attempt: 2, ..call(l.id) };
    s.create_call(&c2).await.unwrap();
    assert!(s.finish_retry(r.id, "placed", Some(c2.id), "placed", due).await.unwrap());
    assert!(!s.finish_retry(r.id, "failed", None, "again", due).await.unwrap(), "only from placing");
    assert_eq!(s.attempt_of_call(c2.id).await.unwrap(), 2);
    let rows = s.retries_for_lead(l.id).await.unwrap();
    assert_eq!((rows.len(), rows[0].state.as_str(), rows[0].call_id), (1, "placed", Some(c2.id)));

    // A second retry, cancelled by the prospect's number; then erasure removes it.
    let r3 = NewRetry { attempt: 3, ..retry_after(l.id, c2.id, due + Duration::days(1)) };
    assert!(s.schedule_retry(&r3).await.unwrap());
    let cancelled = s.cancel_retries(None, Some("+33612345678"), "opt-out", due).await.unwrap();
    assert_eq!(cancelled.iter().map(|r| r.id).collect::<Vec<_>>(), vec![r3.id]);
    assert!(s.cancel_retries(Some(l.id), None, "again", due).await.unwrap().is_empty());
    assert!(s.claim_due_retries(due + Duration::days(2), "w1", 10).await.unwrap().is_empty());

    s.apply(&Write::RecordStatus(StatusUpdate {
        call_id: c.id,
        call_sid: None,
        status: "retry-scheduled".into(),
        source: "retry".into(),
        detail: Some("attempt 2".into()),
        at: OffsetDateTime::now_utc(),
    }))
    .await
    .unwrap();
    let timeline = s.lead_timeline(l.id).await.unwrap();
    assert!(
        timeline.iter().any(|e| e.status == "retry-scheduled" && e.source == "retry" && e.call_id == c.id)
    );
    assert!(timeline.iter().any(|e| e.status == "busy"), "{timeline:?}");

    let erased = s.erase_phone("+33612345678").await.unwrap();
    assert_eq!((erased.leads, erased.calls, erased.retries), (1, 2, 2));
    assert!(s.retries_for_lead(l.id).await.unwrap().is_empty());
}

async fn racing_workers_claim_each_retry_exactly_once(s: Store) {
    let due = time::macros::datetime!(2026-12-07 13:00 UTC);
    let mut ids = Vec::new();
    for i in 0..24 {
        let l = lead(&format!("+336123456{i:02}"));
        s.apply(&Write::UpsertLead(l.clone())).await.unwrap();
        let c = call(l.id);
        s.create_call(&c).await.unwrap();
        let r = retry_after(l.id, c.id, due);
        s.schedule_retry(&r).await.unwrap();
        ids.push(r.id);
    }
    let s = Arc::new(s);
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = s.claim_due_retries(due, &format!("w{w}"), 3).await.expect("claim");
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|r| r.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(n, all.len(), "a retry went to two workers");
    ids.sort();
    assert_eq!(all, ids, "every due retry was claimed");
}

/// A retry claimed and never finished is found once it has been `placing` long enough, and the
/// call stored for its attempt is told apart from the calls other retries already point to.
async fn stuck_retries_and_the_call_of_their_attempt_are_found(s: Store) {
    let (l, c, r, due) = busy_call_with_retry(&s).await;
    assert!(
        s.stuck_retries(due + Duration::hours(1), 10).await.unwrap().is_empty(),
        "scheduled is not stuck"
    );
    assert_eq!(s.claim_due_retries(due, "w1", 10).await.unwrap().len(), 1);
    assert!(s.stuck_retries(due - Duration::seconds(1), 10).await.unwrap().is_empty(), "claimed after that");
    let stuck = s.stuck_retries(due, 10).await.unwrap();
    assert_eq!(stuck.iter().map(|r| (r.id, r.state.as_str())).collect::<Vec<_>>(), vec![(r.id, "placing")]);

    // No call of attempt 2 yet; then one, which is unlinked until the retry names it.
    assert_eq!(s.unlinked_call_of_attempt(l.id, 2).await.unwrap(), None);
    s.apply(&status(c.id, "completed", "twilio-call")).await.unwrap();
    let c2 = NewCall { attempt: 2, ..call(l.id) };
    s.create_call(&c2).await.unwrap();
    assert_eq!(s.unlinked_call_of_attempt(l.id, 2).await.unwrap().map(|c| c.id), Some(c2.id));
    assert_eq!(s.unlinked_call_of_attempt(l.id, 3).await.unwrap(), None);
    assert!(s.finish_retry(r.id, "placed", Some(c2.id), "placed", due).await.unwrap());
    assert_eq!(s.unlinked_call_of_attempt(l.id, 2).await.unwrap(), None, "now linked");
    assert!(s.stuck_retries(due + Duration::hours(1), 10).await.unwrap().is_empty(), "settled");
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_postgres {
            use super::*;
            $( #[tokio::test] async fn $name() { super::$name(postgres().await).await } )*
        }
        mod on_sqlite {
            use super::*;
            $( #[tokio::test] async fn $name() {
                let dir = tempfile::tempdir().unwrap();
                super::$name(sqlite(&dir).await).await
            } )*
        }
    };
}

both_backends!(
    upsert_is_idempotent_and_correction_applies,
    one_active_call_per_lead,
    statuses_only_move_forward,
    token_redeemed_exactly_once_even_when_raced,
    redemption_names_the_call_sid_recorded_when_placed,
    event_batches_are_idempotent,
    purge_and_erase_remove_what_they_say,
    the_web_conversation_comes_back_with_the_redemption_and_the_call,
    a_transfer_lease_has_one_holder_until_released_or_expired,
    concurrent_status_updates_of_one_call_all_land,
    a_retry_is_scheduled_once_claimed_once_and_erased,
    racing_workers_claim_each_retry_exactly_once,
    stuck_retries_and_the_call_of_their_attempt_are_found,
);
