//! `callway-sim twilio-call` and `callway-sim twilio-api`: the caller and the REST simulator
//! from the shell, for people (the demo, poking at a gateway by hand).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::api::{ApiConfig, ApiHandle, CallerSettings, Fault, Outcome, TwilioApiSim};
use crate::audio;
use crate::caller::{self, CallerConfig, DtmfPress, EndPolicy, Pacing, Segment};

fn parse_pacing(s: &str) -> Result<Pacing, String> {
    match s {
        "realtime" | "real-time" => Ok(Pacing::RealTime),
        "unpaced" => Ok(Pacing::Unpaced),
        _ => s
            .strip_prefix('x')
            .or_else(|| s.strip_suffix('x'))
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| *n >= 1)
            .map(Pacing::Accelerated)
            .ok_or_else(|| format!("`{s}`: expected realtime, unpaced or xN (e.g. x10)")),
    }
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}`: expected NAME=VALUE"))
}

/// `ADDRESS=SCRIPT`, split at the last `=` (a SIP URI may carry `;transport=tls`).
fn parse_dial_pair(s: &str) -> Result<(String, String), String> {
    s.rsplit_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}`: expected ADDRESS=SCRIPT"))
}

/// When the simulated person hangs up.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum EndArg {
    /// As soon as the script is over.
    Script,
    /// Once the script is over and all agent audio received has played (see --max-wait-ms).
    Playback,
    /// Never: wait for the server to close the stream (or --max-duration-s).
    Server,
}

/// How the simulated person on the line behaves (shared by both subcommands).
#[derive(clap::Args, Debug, Clone)]
pub struct CalleeArgs {
    /// What the person says, in order; repeat for several segments: `file:PATH` (raw μ-law such
    /// as sox's `.ul`, or WAV μ-law/16-bit PCM, 8 kHz mono), `tone:HZ:MS`, `silence:MS`,
    /// `await-agent:SETTLE_MS:TIMEOUT_MS` (silence until the agent has spoken then been quiet
    /// SETTLE_MS). Default: tone:440:1000 then await-agent:800:10000.
    #[arg(long = "segment", value_name = "SPEC", value_parser = clap::value_parser!(Segment))]
    pub segments: Vec<Segment>,
    /// A key press at MS milliseconds after `start`, e.g. `1500:5` (repeatable).
    #[arg(long = "dtmf", value_name = "MS:DIGIT", value_parser = clap::value_parser!(DtmfPress))]
    pub dtmf: Vec<DtmfPress>,
    /// Clock: `realtime` (Twilio's pace), `xN` (N times faster, stream clock and playback
    /// alike) or `unpaced` (script audio back to back, waits in real time).
    #[arg(long, value_name = "PACING", default_value = "realtime", value_parser = parse_pacing)]
    pub pacing: Pacing,
    /// When the person hangs up.
    #[arg(long, value_enum, default_value = "playback")]
    pub end: EndArg,
    /// With `--end playback`: longest wait for the agent's audio to finish after the script.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub max_wait_ms: u64,
    /// Longest call, in seconds of stream time (hang up then).
    #[arg(long, value_name = "SECS")]
    pub max_duration_s: Option<u64>,
    /// PEM file of the CA(s) to trust for `wss://` stream URLs (default: the public web roots).
    #[arg(long, value_name = "FILE")]
    pub ca_pem: Option<PathBuf>,
    /// Limit for each of TCP connect, TLS handshake and WebSocket upgrade.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub connect_timeout_ms: u64,
}

impl CalleeArgs {
    fn script(&self) -> Vec<Segment> {
        if self.segments.is_empty() { CallerConfig::new("", "").script } else { self.segments.clone() }
    }

    fn end(&self) -> EndPolicy {
        match self.end {
            EndArg::Script => EndPolicy::ScriptEnd,
            EndArg::Playback => {
                EndPolicy::ScriptEndAndPlayback { max_wait: Duration::from_millis(self.max_wait_ms) }
            }
            EndArg::Server => EndPolicy::ServerCloses,
        }
    }

    fn ca(&self) -> anyhow::Result<Option<Vec<u8>>> {
        self.ca_pem
            .as_ref()
            .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
            .transpose()
    }
}

/// Arguments of `callway-sim twilio-call`.
#[derive(clap::Args, Debug)]
#[command(about = "Be Twilio on one call: open a Media Streams WebSocket to URL, talk, listen, report.")]
pub struct TwilioCallArgs {
    /// The stream URL exactly as it would be written in `<Stream url>` (`ws://` or `wss://`,
    /// no query string: Twilio refuses one). It is signed as written.
    #[arg(long)]
    pub url: String,
    /// Auth token that signs the upgrade (`x-twilio-signature`).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: String,
    /// Account SID announced in `start` (default: a random `AC…`).
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    pub account_sid: Option<String>,
    /// Call SID (default: a random `CA…`).
    #[arg(long)]
    pub call_sid: Option<String>,
    /// Stream SID (default: a random `MZ…`).
    #[arg(long)]
    pub stream_sid: Option<String>,
    /// A `<Parameter>` sent in `start.customParameters` (repeatable, in order).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub params: Vec<(String, String)>,
    /// Refuse `ws://` like Twilio does (31922).
    #[arg(long)]
    pub strict_wss: bool,
    /// Wait this long between `connected` and `start` (Twilio: 0).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub start_delay_ms: u64,
    /// Write what the caller heard, on the call's timeline, to this WAV file (μ-law 8 kHz).
    #[arg(long, value_name = "FILE.wav")]
    pub save_heard: Option<PathBuf>,
    /// Print the full report as JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// The person on the line.
    #[command(flatten)]
    pub callee: CalleeArgs,
}

/// Arguments of `callway-sim twilio-api`.
#[derive(clap::Args, Debug)]
#[command(
    about = "Be Twilio's REST API: accept Calls.json, place the calls (TwiML, Media Stream) and send signed callbacks."
)]
pub struct TwilioApiArgs {
    /// Address to listen on.
    #[arg(long, env = "TWILIO_SIM_LISTEN", default_value = "127.0.0.1:4010")]
    pub listen: SocketAddr,
    /// Account SID (Basic auth user; default: a random `AC…`, printed at start).
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    pub account_sid: Option<String>,
    /// Auth token (Basic auth password; signs callbacks and stream upgrades; default: random, printed).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// An API key accepted for Basic auth, as `SK…:SECRET` (repeatable).
    #[arg(long = "api-key", value_name = "SID:SECRET")]
    pub api_keys: Vec<String>,
    /// A Twilio number the account owns, usable as `From` (repeatable; default +15005550006).
    #[arg(long = "number", value_name = "E164")]
    pub numbers: Vec<String>,
    /// A verified caller ID: usable as `From`, and on trial the only callable `To` (repeatable).
    #[arg(long = "verified", value_name = "E164")]
    pub verified: Vec<String>,
    /// Trial account: calls to unverified numbers fail with 21219, calls stop at ten minutes.
    #[arg(long)]
    pub trial: bool,
    /// How long the callee's phone rings before the outcome.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub ring_ms: u64,
    /// What happens when NUMBER is dialled: answer, busy, no-answer, failed (repeatable).
    #[arg(long = "outcome", value_name = "NUMBER=OUTCOME", value_parser = parse_pair)]
    pub outcomes: Vec<(String, String)>,
    /// What the party a `<Dial>` calls does, by number or SIP URI: answer (rings 1 s, talks
    /// 30 s), answer:RING_MS:TALK_MS, busy, busy:RING_MS, no-answer, failed (repeatable).
    #[arg(long = "dial", value_name = "ADDRESS=SCRIPT", value_parser = parse_dial_pair)]
    pub dials: Vec<(String, String)>,
    /// Fail the next create-call request with 429 (20429) or 500 (20500), in order (repeatable).
    #[arg(long = "fault", value_name = "429|500")]
    pub faults: Vec<String>,
    /// Refuse `ws://` stream URLs (31922) as Twilio does.
    #[arg(long)]
    pub strict_wss: bool,
    /// PEM CA(s) to trust for `https` callbacks and TwiML URLs (plus the public web roots).
    #[arg(long, value_name = "FILE")]
    pub callback_ca_pem: Option<PathBuf>,
    /// Limit for each callback request.
    #[arg(long, value_name = "MS", default_value_t = 15_000)]
    pub callback_timeout_ms: u64,
    /// The Twilio region the account lives in (`us1`, `ie1`, `au1`): requests whose `Host`
    /// names another region (`api.twilio.com` and this simulator's own address are `us1`,
    /// `api.dublin.ie1.twilio.com` is `ie1`) are refused with 20003, as Twilio refuses another
    /// region's credentials. Default: any.
    #[arg(long, env = "TWILIO_SIM_REGION", value_parser = ["us1", "ie1", "au1"])]
    pub region: Option<String>,
    /// The person who answers the calls.
    #[command(flatten)]
    pub callee: CalleeArgs,
}

/// Runs one simulated call and prints its report.
pub async fn run_call(args: TwilioCallArgs) -> anyhow::Result<()> {
    let mut cfg = CallerConfig::new(args.url.clone(), args.auth_token.clone());
    if let Some(s) = args.account_sid.filter(|s| !s.is_empty()) {
        cfg.account_sid = s;
    }
    if let Some(s) = args.call_sid {
        cfg.call_sid = s;
    }
    if let Some(s) = args.stream_sid {
        cfg.stream_sid = s;
    }
    cfg.custom_parameters = args.params;
    cfg.script = args.callee.script();
    cfg.dtmf = args.callee.dtmf.clone();
    cfg.pacing = args.callee.pacing;
    cfg.end = args.callee.end();
    cfg.max_duration = args.callee.max_duration_s.map(Duration::from_secs);
    cfg.ca_pem = args.callee.ca()?;
    cfg.connect_timeout = Duration::from_millis(args.callee.connect_timeout_ms);
    cfg.allow_insecure_ws = !args.strict_wss;
    cfg.start_delay = Duration::from_millis(args.start_delay_ms);

    let report = caller::run_call(cfg).await;
    if args.json {
        println!("{}", callway_logs::redact(&serde_json::to_string_pretty(&report)?));
    } else {
        print!("{}", callway_logs::redact(&report.summary()));
    }
    if let Some(path) = &args.save_heard {
        std::fs::write(path, audio::wav_bytes(&report.heard_track()))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("heard audio written to {}", path.display());
    }
    if let Some(f) = &report.handshake_failure {
        anyhow::bail!("the stream did not open: {f}");
    }
    Ok(())
}

/// Runs the REST simulator until Ctrl-C, printing each call when it is over.
pub async fn run_api(args: TwilioApiArgs) -> anyhow::Result<()> {
    let mut cfg = ApiConfig { listen: args.listen, ..ApiConfig::default() };
    if let Some(s) = args.account_sid.filter(|s| !s.is_empty()) {
        cfg.account_sid = s;
    }
    if let Some(t) = args.auth_token.filter(|t| !t.is_empty()) {
        cfg.auth_token = t;
    }
    for k in &args.api_keys {
        let (sid, secret) =
            k.split_once(':').with_context(|| format!("--api-key `{k}`: expected SID:SECRET"))?;
        cfg.api_keys.push((sid.to_owned(), secret.to_owned()));
    }
    if !args.numbers.is_empty() {
        cfg.owned_numbers = args.numbers;
    }
    cfg.verified_numbers = args.verified;
    cfg.trial = args.trial;
    cfg.ring_delay = Duration::from_millis(args.ring_ms);
    for (number, outcome) in &args.outcomes {
        cfg.outcomes.insert(number.clone(), outcome.parse::<Outcome>().map_err(anyhow::Error::msg)?);
    }
    for (address, script) in &args.dials {
        cfg.dial.insert(address.clone(), script.parse().map_err(anyhow::Error::msg)?);
    }
    for f in &args.faults {
        cfg.faults.push(f.parse::<Fault>().map_err(anyhow::Error::msg)?);
    }
    cfg.strict_wss = args.strict_wss;
    cfg.callback_ca_pem = args
        .callback_ca_pem
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    cfg.callback_timeout = Duration::from_millis(args.callback_timeout_ms);
    cfg.region = args.region;
    cfg.caller = CallerSettings {
        script: args.callee.script(),
        dtmf: args.callee.dtmf.clone(),
        pacing: args.callee.pacing,
        end: args.callee.end(),
        max_duration: args.callee.max_duration_s.map(Duration::from_secs),
        ca_pem: args.callee.ca()?,
        connect_timeout: Duration::from_millis(args.callee.connect_timeout_ms),
    };

    let handle = TwilioApiSim::spawn(cfg).await?;
    println!("Twilio REST simulator on {}", handle.base_url());
    println!("  account SID  {}", handle.account_sid());
    println!("  auth token   {}", callway_logs::mask_secret(handle.auth_token()));
    println!("  create calls POST {}", handle.calls_url());
    println!(
        "  caller IDs   GET  {}/2010-04-01/Accounts/{}/OutgoingCallerIds.json",
        handle.base_url(),
        handle.account_sid()
    );
    tokio::select! {
        _ = print_calls(&handle) => Ok(()),
        r = tokio::signal::ctrl_c() => {
            r?;
            println!("stopping");
            handle.shutdown().await;
            Ok(())
        }
    }
}

async fn print_calls(handle: &ApiHandle) {
    let mut printed = HashSet::new();
    loop {
        let done = handle
            .wait_until(|h| {
                let fresh: Vec<_> =
                    h.calls().into_iter().filter(|c| c.finished && !printed.contains(&c.sid)).collect();
                (!fresh.is_empty()).then_some(fresh)
            })
            .await;
        for call in done {
            printed.insert(call.sid.clone());
            let timeline: Vec<&str> = call.timeline.iter().map(|s| s.status.as_str()).collect();
            say(&format!(
                "call {} {} -> {}: {} ({} s)",
                call.sid,
                call.from,
                call.to,
                timeline.join(" → "),
                call.duration_secs.unwrap_or(0)
            ));
            for e in &call.errors {
                say(&format!("  error {} {}", e.code, e.message));
            }
            for cb in handle.callbacks_for(&call.sid) {
                let answer =
                    cb.http_status.map_or_else(|| cb.error.clone().unwrap_or_default(), |s| s.to_string());
                say(&format!("  {} {} {} -> {}", cb.event, cb.method, cb.url, answer));
            }
            for r in &call.caller_reports {
                for line in r.summary().lines() {
                    say(&format!("  | {line}"));
                }
            }
        }
    }
}

/// Prints a line of a finished call's account with its numbers and stream token masked, as
/// every Callway binary does (`callway_logs::redact`).
fn say(line: &str) {
    println!("{}", callway_logs::redact(line));
}
