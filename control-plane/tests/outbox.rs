//! Nothing lost: writes accepted while the real PostgreSQL is stopped go to the durable outbox,
//! survive a restart of the control plane, and are replayed in order when the database is back.
//! The server is really stopped (`pg_ctl stop -m immediate` on a private cluster), not mocked.

mod common;

use std::sync::Arc;

use callway_control::config::StorageConfig;
use callway_control::metrics::Metrics;
use callway_control::store::{Applied, NewLead, StatusUpdate, Storage, Write};
use common::pg::PgCluster;
use common::{Db, Running};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

fn lead(id: Uuid, first: &str) -> Write {
    Write::UpsertLead(NewLead {
        id,
        session_id: None,
        first_name: first.into(),
        last_name: "Martin".into(),
        phone_e164: "+33612345678".into(),
        source: "web".into(),
        consent_text: "v1".into(),
        at: OffsetDateTime::now_utc(),
    })
}

#[tokio::test]
async fn save_lead_while_postgres_is_down_is_replayed_when_it_returns() {
    let pg = PgCluster::start();
    let app =
        Running::start(common::env_for(&Db::Url(pg.url()), "http://127.0.0.1:9", "http://127.0.0.1:9")).await;
    let body = |first: &str| json!({"first_name": first, "last_name": "Martin", "phone": "06 12 34 56 78", "consent": true});

    let (_, before) = app.capability();
    let r = app.post_json("/api/tools/save_lead", Some(&before), &body("Avant")).await;
    assert_eq!(r.status, 200, "{}", r.text);

    pg.stop();
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let (_, during) = app.capability();
    let mut lead_ids = Vec::new();
    for first in ["Pendant", "Corrigé"] {
        // The same session twice: the second write must win after replay (order kept).
        let r = app.post_json("/api/tools/save_lead", Some(&during), &body(first)).await;
        assert_eq!(r.status, 200, "accepted while the database is down: {}", r.text);
        lead_ids.push(r.json["lead_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(lead_ids[0], lead_ids[1]);
    assert_eq!(app.app.storage.pending(), 2);
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("callway_outbox_pending 2"), "{metrics}");

    // Nothing replays while it is still down.
    let report = app.app.storage.replay().await;
    assert_eq!((report.replayed, report.pending), (0, 2));

    pg.resume();
    let report = app.app.storage.replay().await;
    assert_eq!((report.replayed, report.dead, report.pending), (2, 0, 0));
    let lead = app.app.storage.store.get_lead(lead_ids[0].parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(lead.first_name, "Corrigé", "replayed in the order accepted");
    assert_eq!(app.http.get(app.url("/readyz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn queued_writes_survive_a_restart_and_refused_ones_go_to_dead_letters() {
    let pg = PgCluster::start();
    let cfg = StorageConfig::Postgres { url: pg.url() };
    let store = callway_control::open_store(&cfg).await.unwrap();
    store.migrate().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = Uuid::new_v4();
    {
        let storage = Storage::open(store, dir.path(), Arc::new(Metrics::default())).await.unwrap();
        assert_eq!(storage.write(lead(a, "Un")).await.unwrap(), Applied::Now);
        pg.stop();
        assert_eq!(storage.write(lead(a, "Deux")).await.unwrap(), Applied::Queued);
        let orphan = Write::RecordStatus(StatusUpdate {
            call_id: Uuid::new_v4(),
            call_sid: None,
            status: "ringing".into(),
            source: "twilio-call".into(),
            detail: None,
            at: OffsetDateTime::now_utc(),
        });
        assert_eq!(storage.write(orphan).await.unwrap(), Applied::Queued);
        let b = Uuid::new_v4();
        assert_eq!(storage.write(lead(b, "Trois")).await.unwrap(), Applied::Queued);
    } // the process "dies" here with three writes on disk
    pg.resume();
    let store = callway_control::open_store(&cfg).await.unwrap();
    let storage = Storage::open(store, dir.path(), Arc::new(Metrics::default())).await.unwrap();
    assert_eq!(storage.pending(), 3, "the outbox is reloaded from disk");
    let report = storage.replay().await;
    assert_eq!((report.replayed, report.dead, report.pending), (2, 1, 0));
    assert_eq!(storage.store.get_lead(a).await.unwrap().unwrap().first_name, "Deux");
    let dead: Vec<_> = std::fs::read_dir(dir.path().join("dead")).unwrap().collect();
    assert_eq!(dead.len(), 1, "a write the database refuses for good is kept aside, not dropped");
}

/// Erasure reaches the outbox (issue 13, item 5): writes queued while PostgreSQL was down
/// about an erased number — a lead saved only in the outbox, a correction, its call's status
/// and transcript events — and a dead letter holding the number are removed before they can
/// be replayed or kept on disk; another number's queued writes are untouched and replayed.
#[tokio::test]
async fn erasing_a_number_removes_its_queued_writes_and_dead_letters_from_the_outbox() {
    use callway_control::store::{EventsWrite, LeadCorrection, NewCall};
    use contract::internal_api::{CallEvent, Speaker};
    let (erased, kept) = ("+33612345678", "+33698765432");
    let lead_of = |id: Uuid, first: &str, phone: &str| {
        Write::UpsertLead(NewLead {
            id,
            session_id: None,
            first_name: first.into(),
            last_name: "Martin".into(),
            phone_e164: phone.into(),
            source: "web".into(),
            consent_text: "v1".into(),
            at: OffsetDateTime::now_utc(),
        })
    };
    let call_of = |lead_id: Uuid| NewCall {
        id: Uuid::new_v4(),
        lead_id,
        session_id: None,
        summary: "Veut une démo.".into(),
        stream_nonce: Uuid::new_v4().simple().to_string(),
        token_expires_at: OffsetDateTime::now_utc(),
        attempt: 1,
        web_transcript: Vec::new(),
        at: OffsetDateTime::now_utc(),
    };
    let transcript = |call_id: Uuid, text: &str| {
        Write::AppendEvents(EventsWrite {
            call_id,
            seq: 0,
            events: vec![CallEvent::Transcript { speaker: Speaker::Caller, text: text.into(), at_ms: 1200 }],
            at: OffsetDateTime::now_utc(),
        })
    };
    let completed = |call_id: Uuid| {
        Write::RecordStatus(StatusUpdate {
            call_id,
            call_sid: None,
            status: "completed".into(),
            source: "twilio-call".into(),
            detail: None,
            at: OffsetDateTime::now_utc(),
        })
    };

    let pg = PgCluster::start();
    let store = callway_control::open_store(&StorageConfig::Postgres { url: pg.url() }).await.unwrap();
    store.migrate().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(store, dir.path(), Arc::new(Metrics::default())).await.unwrap();
    let (a, k) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(storage.write(lead_of(a, "Claire", erased)).await.unwrap(), Applied::Now);
    assert_eq!(storage.write(lead_of(k, "Karim", kept)).await.unwrap(), Applied::Now);
    let (ca, ck) = (call_of(a), call_of(k));
    storage.store.create_call(&ca).await.unwrap();
    storage.store.create_call(&ck).await.unwrap();

    // A dead letter holding the number: a save the database refuses for good (name too long).
    pg.stop();
    assert_eq!(
        storage.write(lead_of(Uuid::new_v4(), &"C".repeat(81), erased)).await.unwrap(),
        Applied::Queued
    );
    pg.resume();
    assert_eq!(storage.replay().await.dead, 1);

    // Down again: writes about both numbers queue up.
    pg.stop();
    let only_queued = Uuid::new_v4();
    let queued = [
        transcript(ca.id, "Oui, rappelez-moi au 06 12 34 56 78."),
        completed(ca.id),
        Write::CorrectLead(LeadCorrection {
            lead_id: a,
            first_name: Some("Claire-Marie".into()),
            last_name: None,
            phone_e164: None,
            at: OffsetDateTime::now_utc(),
        }),
        lead_of(only_queued, "Claire", erased),
        Write::CorrectLead(LeadCorrection {
            lead_id: only_queued,
            first_name: Some("Clara".into()),
            last_name: None,
            phone_e164: None,
            at: OffsetDateTime::now_utc(),
        }),
        transcript(ck.id, "Plutôt jeudi."),
        completed(ck.id),
    ];
    for w in queued {
        assert_eq!(storage.write(w).await.unwrap(), Applied::Queued);
    }
    assert_eq!(storage.pending(), 7);
    pg.resume();

    let removed = storage.erase_phone(erased).await.unwrap();
    assert_eq!((removed.leads, removed.calls, removed.outbox), (1, 1, 6), "{removed:?}");
    assert_eq!(storage.pending(), 2, "the other number's writes stay queued");
    let on_disk = |d: &std::path::Path| -> String {
        std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let left = on_disk(dir.path()) + &on_disk(&dir.path().join("dead"));
    for gone in [erased, "06 12 34 56 78", &a.to_string(), &ca.id.to_string(), &only_queued.to_string()] {
        assert!(!left.contains(gone), "{gone} still in the outbox: {left}");
    }
    assert!(left.contains("Plutôt jeudi"), "{left}");

    let report = storage.replay().await;
    assert_eq!((report.replayed, report.dead, report.pending), (2, 0, 0));
    for id in [a, only_queued] {
        assert!(storage.store.get_lead(id).await.unwrap().is_none(), "nothing erased comes back");
    }
    assert!(storage.store.get_call(ca.id).await.unwrap().is_none());
    assert_eq!(storage.store.get_call(ck.id).await.unwrap().unwrap().status, "completed");
    assert_eq!(storage.store.get_lead(k).await.unwrap().unwrap().first_name, "Karim");
}
