//! The whole system: the control plane on a fresh PostgreSQL database, the Twilio simulator
//! placing real calls over TLS with a test CA, and the OpenAI simulator. What answers Twilio's
//! stream is either the edge stand-in (the gateway's own upgrade authorization and token
//! redemption, no relay: [`world_with`]) or the real `callway-gateway` binary, which relays
//! the call to the OpenAI simulator ([`world_through_gateway`]).

use std::sync::Arc;
use std::time::Duration;

use callway_sim_openai::{OpenAiSim, SimConfig};
use callway_sim_twilio::api::{ApiConfig, ApiHandle, CallerSettings, TwilioApiSim};
use callway_sim_twilio::caller::{EndPolicy, Pacing, Segment};

use super::edge::{Edge, TestPki};
use super::gateway::GatewayProcess;
use super::{Db, Running};

/// The control plane, the Twilio simulator, the edge stand-in and the OpenAI simulator.
pub struct World {
    /// The control plane.
    pub cp: Running,
    /// Twilio's simulator.
    pub twilio: ApiHandle,
    /// What Twilio's streams reach.
    pub relay: Relay,
    /// OpenAI's simulator.
    pub openai: callway_sim_openai::SimHandle,
    /// The control plane's environment (to start another one on the same database).
    pub env: std::collections::HashMap<String, String>,
}

/// What answers the Twilio simulator's streams.
pub enum Relay {
    /// The edge stand-in: authorizes, redeems, records, relays nothing.
    Edge(Edge),
    /// The real gateway binary.
    Gateway(GatewayProcess),
}

impl World {
    /// The web flow a visitor goes through (a session, `save_lead` for Claire Martin at
    /// +33 6 12 34 56 78 with consent, `trigger_call`), until Twilio's simulator has the call:
    /// (lead id, our call id, Twilio's `CallSid`).
    pub async fn place_call(&self) -> (uuid::Uuid, uuid::Uuid, String) {
        let s = self.cp.post_raw("/api/session", None, "application/json", b"{}".to_vec()).await;
        let cap = s.json["capability"].as_str().unwrap().to_owned();
        let body = serde_json::json!({"first_name": "Claire", "last_name": "Martin", "phone": "06 12 34 56 78", "consent": true});
        let lead = self.cp.post_json("/api/tools/save_lead", Some(&cap), &body).await;
        assert_eq!(lead.status, 200, "{}", lead.text);
        let t = serde_json::json!({"lead_id": lead.json["lead_id"], "summary": "Veut une démo."});
        let r = self.cp.post_json("/api/tools/trigger_call", Some(&cap), &t).await;
        assert_eq!(r.status, 200, "{}", r.text);
        // A hang guard, not a timing assertion.
        let calls =
            tokio::time::timeout(Duration::from_secs(60), self.twilio.wait_for_calls(1)).await.expect("hang");
        let id = |v: &serde_json::Value| v.as_str().unwrap().parse().unwrap();
        (id(&lead.json["lead_id"]), id(&r.json["call_id"]), calls[0].sid.clone())
    }

    /// The edge stand-in (panics on a world with the real gateway).
    pub fn edge(&self) -> &Edge {
        match &self.relay {
            Relay::Edge(e) => e,
            Relay::Gateway(_) => panic!("this world runs the real gateway, not the edge stand-in"),
        }
    }

    /// The real gateway (panics on a world with the edge stand-in).
    pub fn gateway(&self) -> &GatewayProcess {
        match &self.relay {
            Relay::Gateway(g) => g,
            Relay::Edge(_) => panic!("this world runs the edge stand-in, not the gateway"),
        }
    }
}

/// Starts everything: the OpenAI simulator with `openai` (its key set to the tests' own),
/// Twilio's tuned by `tune`, the edge, then the control plane with `extra` environment.
pub async fn world_with(
    openai: SimConfig,
    extra: &[(&str, &str)],
    tune: impl FnOnce(&mut ApiConfig),
) -> World {
    world_with_clock(openai, extra, tune, Arc::new(callway_control::clock::SystemClock)).await
}

/// [`world_with`], the control plane reading `clock` for its scheduled work (retries).
pub async fn world_with_clock(
    openai: SimConfig,
    extra: &[(&str, &str)],
    tune: impl FnOnce(&mut ApiConfig),
    clock: Arc<dyn callway_control::clock::Clock>,
) -> World {
    build(openai, extra, tune, clock, false).await
}

/// [`world_with`] with the real `callway-gateway` binary in place of the edge stand-in: the
/// callback is relayed to the OpenAI simulator and back to the Twilio simulator's callee. The
/// gateway gets the engine settings of `extra` (`OPENAI_VOICE_API`, …) as the control plane
/// does.
pub async fn world_through_gateway(
    openai: SimConfig,
    extra: &[(&str, &str)],
    tune: impl FnOnce(&mut ApiConfig),
) -> World {
    build(openai, extra, tune, Arc::new(callway_control::clock::SystemClock), true).await
}

async fn build(
    openai: SimConfig,
    extra: &[(&str, &str)],
    tune: impl FnOnce(&mut ApiConfig),
    clock: Arc<dyn callway_control::clock::Clock>,
    real_gateway: bool,
) -> World {
    let pki = TestPki::new();
    let openai = OpenAiSim::spawn(SimConfig { api_key: "sk-test-key".into(), ..openai }).await.unwrap();
    let mut cfg = ApiConfig {
        account_sid: super::ACCOUNT_SID.into(),
        auth_token: super::AUTH_TOKEN.into(),
        owned_numbers: vec![super::FROM.into()],
        ring_delay: Duration::from_millis(100),
        strict_wss: true,
        caller: CallerSettings {
            script: vec![Segment::Silence { ms: 400 }],
            pacing: Pacing::Unpaced,
            end: EndPolicy::ScriptEnd,
            ca_pem: Some(pki.ca_pem.clone().into_bytes()),
            ..CallerSettings::default()
        },
        ..ApiConfig::default()
    };
    tune(&mut cfg);
    let twilio = TwilioApiSim::spawn(cfg).await.unwrap();
    let db = Db::Url(super::pg::fresh_database().await);
    let mut env = super::env_for(&db, &openai.base_url(), &twilio.base_url());
    // The control plane's own address must be known before the edge starts: bind first.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cp_base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let relay = if real_gateway {
        Relay::Gateway(GatewayProcess::start(
            &pki,
            &cp_base,
            &openai.base_url(),
            "sk-test-key",
            (super::AUTH_TOKEN, super::STREAM_TOKEN_SECRET, super::INTERNAL_API_SECRET),
            // The engine switch is the same for both binaries.
            &extra
                .iter()
                .copied()
                .filter(|(k, _)| {
                    ["OPENAI_VOICE_API", "OPENAI_LIVE_MODEL", "LIVE_DELEGATION_MODEL"].contains(k)
                })
                .collect::<Vec<_>>(),
        ))
    } else {
        Relay::Edge(
            Edge::start(
                &pki,
                cp_base.clone(),
                super::AUTH_TOKEN,
                super::STREAM_TOKEN_SECRET,
                super::INTERNAL_API_SECRET,
            )
            .await,
        )
    };
    let domain = match &relay {
        Relay::Edge(e) => e.domain.clone(),
        Relay::Gateway(g) => g.domain.clone(),
    };
    env.insert("TWILIO_STREAM_DOMAIN".into(), domain);
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    let cp = Running::start_with_clock(env.clone(), cp_base.trim_start_matches("http://"), clock).await;
    World { cp, twilio, relay, openai, env }
}
