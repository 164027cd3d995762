//! `POST /v1/realtime/client_secrets`: body checks with OpenAI's error shapes, the
//! ephemeral key answer, faults, the record, and the key opening a WebSocket session.

mod common;

use std::time::Duration;

use callway_sim_openai::{Auth, Fault, OpenAiSim, Refusal, SimConfig};
use common::*;
use serde_json::{Value, json};

const PATH: &str = "/v1/realtime/client_secrets";

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

async fn post(sim: &callway_sim_openai::SimHandle, auth: Option<&str>, body: &str) -> HttpReply {
    let mut headers = vec![("content-type", "application/json")];
    let bearer;
    if let Some(a) = auth {
        bearer = format!("Bearer {a}");
        headers.push(("authorization", bearer.as_str()));
    }
    http(sim.addr(), "POST", PATH, &headers, body).await
}

#[tokio::test]
async fn a_valid_request_gets_an_ephemeral_key_that_opens_a_session() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let body = json!({"expires_after":{"anchor":"created_at","seconds":600},
        "session":{"type":"realtime","model":"gpt-realtime","instructions":"Parle français.",
                   "audio":{"output":{"voice":"cedar"}}}});
    let before = unix_now();
    let r = post(&sim, Some("sk-test"), &body.to_string()).await;
    let after = unix_now();
    assert_eq!(r.status, 200, "{:?}", r.json);
    let value = r.json["value"].as_str().unwrap().to_owned();
    assert!(value.starts_with("ek_"));
    let expires_at = r.json["expires_at"].as_u64().unwrap();
    assert!((before + 600..=after + 600).contains(&expires_at), "{expires_at}");
    let s = &r.json["session"];
    assert_eq!((s["type"].as_str(), s["model"].as_str()), (Some("realtime"), Some("gpt-realtime")));
    assert_eq!(s["instructions"], "Parle français.");
    assert_eq!(s["audio"]["output"]["voice"], "cedar");
    assert_eq!(s["audio"]["input"]["format"]["type"], "audio/pcm", "defaults filled in");
    assert_eq!(s["object"], "realtime.session");
    assert!(s["id"].as_str().unwrap().starts_with("sess_"));

    let recs = sim.client_secret_requests();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(serde_json::from_str::<Value>(&recs[0].body).unwrap(), body);
    assert_eq!((recs[0].status, &recs[0].response), (200, &r.json));

    // The key opens a session carrying its configuration (model from the key).
    let url = format!("{}/v1/realtime", sim.ws_base_url());
    let auth = format!("Bearer {value}");
    let mut c = try_connect(sim.addr(), &url, &[("authorization", &auth)]).await.unwrap();
    let created = c.expect("session.created").await;
    assert_eq!(created["session"]["instructions"], "Parle français.");
    assert_eq!(created["session"]["audio"]["output"]["voice"], "cedar");
    sim.wait_until(|s| !s.sessions().is_empty()).await;
    assert_eq!(sim.session(0).unwrap().auth, Auth::Ephemeral(value.clone()));

    // An ephemeral key does not mint keys.
    assert_eq!(post(&sim, Some(&value), "{}").await.status, 401);
    // An empty body is a default realtime session for 600 s.
    let r = post(&sim, Some("sk-test"), "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["session"]["model"], "gpt-realtime");
    assert_schema_clean(&sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_documented_error_shapes() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let r = post(&sim, None, "{}").await;
    assert_eq!(r.status, 401);
    assert_rest_error(&r.json, "invalid_request_error", None);
    let r = post(&sim, Some("sk-nope"), "{}").await;
    assert_eq!(r.status, 401);
    assert_rest_error(&r.json, "invalid_request_error", Some("invalid_api_key"));

    let cases: [(Value, &str, &str); 8] = [
        (
            json!({"expires_after":{"anchor":"created_at","seconds":5}}),
            "integer_below_min_value",
            "expires_after.seconds",
        ),
        (
            json!({"expires_after":{"anchor":"created_at","seconds":7201}}),
            "integer_above_max_value",
            "expires_after.seconds",
        ),
        (json!({"expires_after":{"anchor":"now","seconds":60}}), "invalid_value", "expires_after.anchor"),
        (json!({"expires_after":{"seconds":60}}), "missing_required_parameter", "expires_after.anchor"),
        (
            json!({"expires_after":{"anchor":"created_at","seconds":"60"}}),
            "invalid_type",
            "expires_after.seconds",
        ),
        (
            json!({"session":{"type":"realtime","temperature":0.7}}),
            "unknown_parameter",
            "session.temperature",
        ),
        (
            json!({"session":{"type":"realtime","audio":{"input":{"format":{"type":"audio/pcm","rate":16000}}}}}),
            "invalid_value",
            "session.audio.input.format.rate",
        ),
        (json!({"session":{"type":"realtime"},"ttl":60}), "unknown_parameter", "ttl"),
    ];
    for (body, code, param) in cases {
        let r = post(&sim, Some("sk-test"), &body.to_string()).await;
        assert_eq!(r.status, 400, "{body}");
        assert_rest_error(&r.json, "invalid_request_error", Some(code));
        assert_eq!(r.json["error"]["param"], param, "{body} -> {}", r.json);
    }
    let r = post(&sim, Some("sk-test"), r#"{"session":{"type":"realtime","model":"gpt-realtime""#).await;
    assert_eq!(r.status, 400);
    assert_rest_error(&r.json, "invalid_request_error", None);
    assert!(r.json["error"]["message"].as_str().unwrap().starts_with("We could not parse the JSON body"));
    let r = post(&sim, Some("sk-test"), r#"{"session":{"model":"gpt-realtime"}}"#).await;
    assert_eq!(r.json["error"]["code"], "missing_required_parameter");
    assert_eq!(r.json["error"]["param"], "session.type");
    assert!(r.json["error"]["message"].as_str().unwrap().contains("'session.type'"));

    let statuses: Vec<u16> = sim.client_secret_requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.len(), 12);
    assert!(statuses[2..].iter().all(|s| *s == 400));
    sim.shutdown().await;
}

#[tokio::test]
async fn refusals_on_demand() {
    let sim = OpenAiSim::spawn(SimConfig {
        faults: vec![
            Fault::RefuseClientSecrets { refusal: Refusal::QuotaExceeded, times: Some(1) },
            Fault::RefuseClientSecrets { refusal: Refusal::ServerError, times: Some(1) },
        ],
        ..fast_config()
    })
    .await
    .unwrap();
    let r = post(&sim, Some("sk-test"), "{}").await;
    assert_eq!(r.status, 429);
    assert_rest_error(&r.json, "insufficient_quota", Some("insufficient_quota"));
    let r = post(&sim, Some("sk-test"), "{}").await;
    assert_eq!(r.status, 500);
    assert_rest_error(&r.json, "server_error", None);
    assert_eq!(post(&sim, Some("sk-test"), "{}").await.status, 200);
    // Authentication comes first.
    sim.set_faults(vec![Fault::RefuseClientSecrets { refusal: Refusal::RateLimited, times: None }]);
    assert_eq!(post(&sim, None, "{}").await.status, 401);
    assert_eq!(post(&sim, Some("sk-test"), "{}").await.status, 429);
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_expired_ephemeral_key_cannot_start_a_session() {
    let sim = OpenAiSim::spawn(fast_config()).await.unwrap();
    let r = post(&sim, Some("sk-test"), r#"{"expires_after":{"anchor":"created_at","seconds":10}}"#).await;
    let key = r.json["value"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {key}");
    tokio::time::advance(Duration::from_secs(11)).await;
    let r = upgrade_attempt(sim.addr(), "?model=gpt-realtime", &[("authorization", &auth)]).await;
    assert_eq!(r.status, 401);
    assert_rest_error(&r.json, "invalid_request_error", Some("invalid_api_key"));
    sim.shutdown().await;
}
