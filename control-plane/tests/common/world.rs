//! The whole system but the real gateway: the control plane on a fresh PostgreSQL database, the
//! Twilio simulator placing real calls to the edge stand-in (TLS with a test CA, the gateway's
//! own upgrade authorization and token redemption), and the OpenAI simulator.

use std::sync::Arc;
use std::time::Duration;

use callway_sim_openai::{OpenAiSim, SimConfig};
use callway_sim_twilio::api::{ApiConfig, ApiHandle, CallerSettings, TwilioApiSim};
use callway_sim_twilio::caller::{EndPolicy, Pacing, Segment};

use super::edge::{Edge, TestPki};
use super::{Db, Running};

/// The control plane, the Twilio simulator, the edge stand-in and the OpenAI simulator.
pub struct World {
    /// The control plane.
    pub cp: Running,
    /// Twilio's simulator.
    pub twilio: ApiHandle,
    /// The edge stand-in (the gateway's upgrade authorization).
    pub edge: Edge,
    /// OpenAI's simulator.
    pub openai: callway_sim_openai::SimHandle,
    /// The control plane's environment (to start another one on the same database).
    pub env: std::collections::HashMap<String, String>,
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
    let edge = Edge::start(
        &pki,
        cp_base.clone(),
        super::AUTH_TOKEN,
        super::STREAM_TOKEN_SECRET,
        super::INTERNAL_API_SECRET,
    )
    .await;
    env.insert("TWILIO_STREAM_DOMAIN".into(), edge.domain.clone());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    let cp = Running::start_with_clock(env.clone(), cp_base.trim_start_matches("http://"), clock).await;
    World { cp, twilio, edge, openai, env }
}
