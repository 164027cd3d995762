//! `callway-sim openai`: the simulator from the shell, for the local demo and manual checks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::faults::Fault;
use crate::script::{Reply, Script};
use crate::{OpenAiSim, SimConfig};

/// Arguments of `callway-sim openai`.
///
/// Serves `GET /v1/realtime` (WebSocket, `Authorization: Bearer <key>`) and
/// `POST /v1/realtime/client_secrets` on one port, in OpenAI Realtime GA shapes, and GPT-Live's
/// `GET /v1/live/sessions` (WebSocket) with the same script.
#[derive(clap::Args, Debug)]
pub struct OpenAiArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081", env = "CALLWAY_SIM_OPENAI_LISTEN")]
    pub listen: SocketAddr,
    /// API key clients must present as `Authorization: Bearer <key>`.
    #[arg(long, default_value = "sk-test", env = "CALLWAY_SIM_OPENAI_API_KEY")]
    pub api_key: String,
    /// Echo mode: answer each `input_audio_buffer.append` at once with one
    /// `response.output_audio.delta` carrying the same audio (for load tests).
    #[arg(long)]
    pub echo: bool,
    /// Time to first byte of a response, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub ttfb_ms: u64,
    /// How many times faster than real time replies are streamed (0: as fast as possible).
    #[arg(long, default_value_t = 4.0)]
    pub speed: f64,
    /// Reply audio: a raw μ-law 8 kHz file (`sox in.wav -r 8000 -c 1 -e u-law out.ul`).
    /// Without it, replies are a 1 s 440 Hz tone.
    #[arg(long, value_name = "FILE.ul")]
    pub response_audio: Option<PathBuf>,
    /// Transcript of the reply.
    #[arg(long, default_value = "Bonjour, ici l'assistante Callway.")]
    pub response_text: String,
    /// The replies in order, instead of the single one above (repeatable; the last repeats):
    /// `FILE.wav=TEXT` (16-bit PCM mono WAV, e.g. from `espeak-ng -w`), `FILE.ul=TEXT` (raw
    /// μ-law 8 kHz), or `TEXT` alone (a tone). A scripted story for the demo.
    #[arg(long, value_name = "[FILE=]TEXT")]
    pub reply: Vec<String>,
    /// Call a tool after user turn N: `N:NAME:JSON_ARGUMENTS` (repeatable).
    #[arg(long, value_name = "N:NAME:ARGS")]
    pub tool_call: Vec<String>,
    /// Session length limit in seconds (the real service's is 3600): then `error`
    /// `session_expired` and close 1001.
    #[arg(long, default_value_t = 3600)]
    pub session_cap_secs: u64,
    /// Faults (repeatable): `refuse-handshake=429|quota|500|503[:N]`,
    /// `refuse-secrets=429|quota|500|503[:N]`, `close-after=5s[:CODE]`, `drop-after=5s`,
    /// `drop-mid-message=5s` (Realtime only), `stall-after=5s[:silent|frozen]`, `error-after=5s`,
    /// `slow-start=2s` (GPT-Live only).
    #[arg(long, value_name = "FAULT")]
    pub fault: Vec<Fault>,
}

/// One `--reply`.
fn parse_reply(spec: &str) -> anyhow::Result<Reply> {
    match spec.split_once('=') {
        Some((file, text)) if file.ends_with(".wav") => {
            Reply::from_wav_file(file, text, 1.0).with_context(|| format!("--reply `{spec}`: reading {file}"))
        }
        Some((file, text)) if file.ends_with(".ul") => {
            Reply::from_mulaw_file(file, text).with_context(|| format!("--reply `{spec}`: reading {file}"))
        }
        _ => {
            // A tone about as long as the text would take to say.
            let ms = (spec.chars().count() as u32 * 60).clamp(1000, 8000);
            Ok(Reply::tone(440.0, ms, spec))
        }
    }
}

impl OpenAiArgs {
    /// The simulator configuration these arguments describe.
    pub fn to_config(&self) -> anyhow::Result<SimConfig> {
        let reply = match &self.response_audio {
            Some(path) => Reply::from_mulaw_file(path, &self.response_text)
                .with_context(|| format!("reading {}", path.display()))?,
            None => Reply::tone(440.0, 1000, &self.response_text),
        };
        let mut script = if self.reply.is_empty() {
            Script::replies([reply])
        } else {
            Script::replies(self.reply.iter().map(|r| parse_reply(r)).collect::<anyhow::Result<Vec<_>>>()?)
        };
        for spec in &self.tool_call {
            let mut parts = spec.splitn(3, ':');
            let (Some(n), Some(name), Some(args)) = (parts.next(), parts.next(), parts.next()) else {
                anyhow::bail!("--tool-call `{spec}`: expected N:NAME:JSON_ARGUMENTS");
            };
            let n: u32 = n.parse().with_context(|| format!("--tool-call `{spec}`: bad turn number"))?;
            serde_json::from_str::<serde_json::Value>(args)
                .with_context(|| format!("--tool-call `{spec}`: arguments are not JSON"))?;
            script = script.with_tool_call(crate::script::ToolCall::new(n, name, args));
        }
        Ok(SimConfig {
            addr: self.listen,
            api_key: self.api_key.clone(),
            script,
            ttfb: Duration::from_millis(self.ttfb_ms),
            speed: (self.speed > 0.0).then_some(self.speed),
            echo: self.echo,
            session_cap: Duration::from_secs(self.session_cap_secs),
            faults: self.fault.clone(),
            ..SimConfig::default()
        })
    }
}

/// Runs the simulator until Ctrl-C.
pub async fn run(args: OpenAiArgs) -> anyhow::Result<()> {
    let config = args.to_config()?;
    let sim = OpenAiSim::spawn(config).await.with_context(|| format!("binding {}", args.listen))?;
    println!("OpenAI Realtime simulator on {}", sim.base_url());
    println!("  WebSocket: {} (Authorization: Bearer {})", sim.ws_url(), crate::http::mask(sim.api_key()));
    println!("  REST:      POST {}/v1/realtime/client_secrets", sim.base_url());
    println!("  GPT-Live:  {} (WebSocket, same key; the model goes in session.start)", sim.live_url());
    if args.echo {
        println!("  echo mode: each append is answered with the same audio");
    }
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    let sessions = sim.sessions();
    println!("shutting down after {} session(s)", sessions.len());
    sim.shutdown().await;
    Ok(())
}
