//! The cost of calls (issue 13, item 4, the control plane's side) end to end on PostgreSQL with
//! the Twilio simulator: `PRICES_FILE` prices Twilio's billed minutes (its `CallDuration`, per
//! started minute, by the destination's country) and the OpenAI tokens the gateway reports; each
//! call's cost and the lead's sum come from what is stored; Prometheus counts both parts, and a
//! batch sent again is not counted twice.

mod common;

use std::time::Duration;

use callway_control::cost::lead_cost;
use callway_sim_openai::SimConfig;
use common::world::world_with;
use contract::internal_api::{CallEvent, CallEventsBatch, Side, events_path};
use serde_json::json;
use uuid::Uuid;

async fn within<F: std::future::Future>(f: F) -> F::Output {
    // A hang guard, not a timing assertion.
    tokio::time::timeout(Duration::from_secs(60), f).await.expect("hang")
}

#[tokio::test]
async fn each_call_costs_its_twilio_minutes_and_openai_tokens_and_the_lead_sums_them() {
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices.json");
    let model = contract::realtime::DEFAULT_MODEL;
    std::fs::write(
        &prices,
        format!(
            r#"{{"currency": "EUR",
                "openai": {{"{model}": {{"input_per_million": 32.0, "output_per_million": 64.0}}}},
                "twilio_per_minute": {{"FR": 0.0135, "default": 0.05}}}}"#
        ),
    )
    .unwrap();
    let w = world_with(SimConfig::default(), &[("PRICES_FILE", prices.to_str().unwrap())], |_| {}).await;

    let s = w.cp.post_raw("/api/session", None, "application/json", b"{}".to_vec()).await;
    let cap = s.json["capability"].as_str().unwrap().to_owned();
    let body =
        json!({"first_name": "Claire", "last_name": "Martin", "phone": "06 12 34 56 78", "consent": true});
    let lead = w.cp.post_json("/api/tools/save_lead", Some(&cap), &body).await;
    let lead_id: Uuid = lead.json["lead_id"].as_str().unwrap().parse().unwrap();
    let mut billed = Vec::new();
    for (n, (input, output)) in [(1_000u64, 500u64), (2_000, 250)].into_iter().enumerate() {
        let t = json!({"lead_id": lead_id, "summary": "Veut une démo."});
        let r = w.cp.post_json("/api/tools/trigger_call", Some(&cap), &t).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let call_id = r.json["call_id"].as_str().unwrap().to_owned();
        let sid = within(w.twilio.wait_for_calls(n + 1)).await[n].sid.clone();
        let done = within(w.twilio.wait_call_finished(&sid)).await;
        billed.push(done.duration_secs.expect("Twilio billed the answered call"));
        // What the gateway reports: usage, then the end.
        let batch = CallEventsBatch {
            seq: 0,
            events: vec![
                CallEvent::Usage {
                    response_id: "resp_1".into(),
                    input_tokens: input,
                    output_tokens: output,
                    details: None,
                },
                CallEvent::Ended { side: Side::Twilio, reason: "caller_hung_up".into(), duration_ms: 900 },
            ],
        };
        let body = serde_json::to_value(&batch).unwrap();
        let r = w.cp.post_internal(&events_path(&call_id), &body).await;
        assert_eq!(r.status, 204, "{}", r.text);
        // The same batch again (a gateway retry): stored once, counted once.
        let r = w.cp.post_internal(&events_path(&call_id), &body).await;
        assert_eq!(r.status, 204, "{}", r.text);
    }

    let (calls, total) = lead_cost(&w.cp.app, lead_id).await.unwrap().expect("PRICES_FILE is set");
    assert_eq!(calls.len(), 2);
    let minutes: u64 = billed.iter().map(|s| s.div_ceil(60)).sum();
    assert!(billed.iter().all(|s| *s > 0), "{billed:?}");
    assert_eq!(total.twilio_seconds, billed.iter().sum::<u64>());
    assert_eq!(total.twilio_micros, minutes * 13_500, "France's price per started minute");
    assert_eq!((total.input_tokens, total.output_tokens), (3_000, 750));
    assert_eq!(total.openai_micros, 3_000 * 32 + 750 * 64);
    assert_eq!(total.total_micros, total.twilio_micros + total.openai_micros);
    assert_eq!(total.currency, "EUR");
    assert_eq!(calls.iter().map(|(_, c)| c.total_micros).sum::<u64>(), total.total_micros);

    let text = w.cp.http.get(w.cp.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for line in [
        format!("callway_call_cost_twilio_micros_total {}", minutes * 13_500),
        format!("callway_call_cost_openai_micros_total {}", 3_000 * 32 + 750 * 64),
        "callway_openai_input_tokens_total 3000".to_owned(),
        format!("callway_twilio_billed_seconds_total {}", billed.iter().sum::<u64>()),
    ] {
        assert!(text.contains(&line), "{line} missing from\n{text}");
    }
}

#[tokio::test]
async fn an_unusable_prices_file_stops_the_start_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices.json");
    std::fs::write(&prices, r#"{"currency": "EUR", "openai": {}, "twilio_per_minute": {"FR": 0.01}}"#)
        .unwrap();
    let db = common::Db::Url("sqlite::memory:".into());
    let mut env = common::env_for(&db, "http://127.0.0.1:9", "http://127.0.0.1:9");
    env.insert("PRICES_FILE".into(), prices.display().to_string());
    let e = callway_control::config::Config::from_lookup(&|k| env.get(k).cloned()).unwrap_err().to_string();
    assert!(e.contains("PRICES_FILE") && e.contains("\"default\""), "{e}");
}
