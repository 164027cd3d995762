//! Operations: health, readiness, metrics, and the personal-data routes (erasure of everything
//! held about a number, retention purge), admin-token protected.

mod common;

use common::web::*;
use serde_json::json;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let w = web().await;
    let h = w.app.http.get(w.app.url("/healthz")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    let r = w.app.http.get(w.app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ready: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ready["storage"], "sqlite");
    saved(&w, "06 12 34 56 78").await;
    let m = w.app.http.get(w.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("# TYPE callway_leads_saved_total counter\ncallway_leads_saved_total 1\n"), "{m}");
    assert!(!m.contains("+33612345678"));
}

#[tokio::test]
async fn erasure_removes_everything_about_a_number_and_says_what() {
    let w = web().await;
    let (call_id, lead_id, _) = placed_call(&w, "06 12 34 56 78").await;
    let other = saved(&w, "06 98 76 54 32").await.1;
    let body = json!({"phone": "06 12 34 56 78"});
    assert_eq!(w.app.post_json("/admin/erase", None, &body).await.status, 401);
    assert_eq!(w.app.post_json("/admin/erase", Some("wrong-token-wrong-token-x"), &body).await.status, 401);
    let r = w.app.post_json("/admin/erase", Some(common::ADMIN_TOKEN), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["phone"], "+33******78", "the answer masks the number");
    assert_eq!(r.json["removed"]["leads"], 1);
    assert_eq!(r.json["removed"]["calls"], 1);
    assert!(r.json["removed"]["call_status_events"].as_u64().unwrap() >= 1);
    let store = &w.app.app.storage.store;
    assert!(store.get_lead(lead_id.parse().unwrap()).await.unwrap().is_none());
    assert!(store.get_call(call_id.parse().unwrap()).await.unwrap().is_none());
    assert!(store.get_lead(other.parse().unwrap()).await.unwrap().is_some());
    let r = w.app.post_json("/admin/erase", Some(common::ADMIN_TOKEN), &json!({"phone": "abc"})).await;
    assert_eq!(r.status, 422);
    let r = w.app.post_json("/admin/purge-transcripts", Some(common::ADMIN_TOKEN), &json!({})).await;
    assert_eq!((r.status, r.json["purged_transcript_lines"].as_u64()), (200, Some(0)));
}

#[tokio::test]
async fn admin_routes_are_off_without_a_token() {
    let w = web_with(&[("ADMIN_API_TOKEN", "")]).await;
    let r = w
        .app
        .post_json("/admin/erase", Some("anything-anything-anything"), &json!({"phone": "0612345678"}))
        .await;
    assert_eq!((r.status, r.code()), (404, "admin_disabled"));
}

#[tokio::test]
async fn the_erase_command_says_what_it_removed_without_the_number() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}?mode=rwc", dir.path().join("cp.sqlite3").display());
    let mut env = common::env_for(&common::Db::Url(db.clone()), "http://127.0.0.1:9", "http://127.0.0.1:9");
    env.insert("PUBLIC_APP_URL".into(), "https://cp.example.eu".into());
    env.insert("OUTBOX_DIR".into(), dir.path().join("outbox").display().to_string());
    let store = callway_control::open_store(&callway_control::config::StorageConfig::Sqlite { url: db })
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let lead = callway_control::store::NewLead {
        id: uuid::Uuid::new_v4(),
        session_id: None,
        first_name: "Claire".into(),
        last_name: "Martin".into(),
        phone_e164: "+33612345678".into(),
        source: "web".into(),
        consent_text: "v1".into(),
        at: time::OffsetDateTime::now_utc(),
    };
    store.apply(&callway_control::store::Write::UpsertLead(lead.clone())).await.unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callway-control"))
        .args(["erase", "06 12 34 56 78"])
        .env_clear()
        .envs(&env)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        stdout.trim(),
        "erased +33******78: 1 lead(s), 0 call(s), 0 status event(s), 0 call event(s), 0 retr(y/ies)"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("612345678"), "no number in the logs");
    assert!(store.get_lead(lead.id).await.unwrap().is_none());
}
