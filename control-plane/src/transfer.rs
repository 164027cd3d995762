//! Warm transfer to a person (issue 13, item 3), the control plane's side.
//!
//! With `TRANSFER_TARGET` set (an E.164 number or a `sip:` URI), redeem tells the gateway
//! `transfer: true` and the gateway offers the model [`contract::internal_api::TRANSFER_TOOL`];
//! with `TRANSFER_HOURS` too (the team's hours, in `TRANSFER_TIME_ZONE`), only inside them: a
//! call redeemed outside is not offered the tool, and a request that comes once the team has
//! gone is answered `transfer_closed` (timeline `transfer-closed`, the model tells the caller
//! someone will call back).
//! Once the agent has said it is transferring, the gateway calls
//! `POST /internal/v1/calls/{id}/tools/transfer_to_human` with the model's
//! [`TransferArguments`] (`reason`, `summary`); [`on_tool`]:
//! 1. checks the arguments (a model mistake is `ok: false` with an output the model can act
//!    on, never a 5xx) and that the call is live and not already being transferred (the same
//!    request sent again, or a second request for the same call, dials nothing more: requests
//!    racing on any number of control planes are serialised by a lease on the call's row
//!    ([`crate::store::Store::claim_transfer`], 60 s at most), and the transfer is recorded
//!    once per call);
//! 2. updates the live call through Twilio's REST API with `<Dial>` to the target
//!    ([`dial_twiml`]; `action` = `PUBLIC_APP_URL/twilio/transfer?call_id=…`): Twilio stops the
//!    media stream (the gateway sees `stop`) and rings the person;
//! 3. records `transfer-requested` on the call's timeline (source `transfer`, detail: the
//!    reason and which kind of target; never a number);
//! 4. then, the update accepted (a refused transfer is never announced), POSTs the hand-over
//!    note to `TRANSFER_WEBHOOK_URL` when set ([`WebhookPayload`], signed the Standard
//!    Webhooks way, [`sign_webhook`]) while the person's phone rings, and answers `ok: true`.
//!
//! A webhook that fails is logged and recorded (`transfer-webhook-failed`, HTTP status or
//! transport error) but does not stop the transfer; Twilio refusing the update is
//! `transfer-refused` and `ok: false` (the conversation goes on, the model is told so).
//!
//! When the dialled call ends Twilio requests the `<Dial action>` ([`on_dial_result`], route
//! `POST /twilio/transfer`, signed like every callback): `completed`/`answered` →
//! `transfer-completed` (detail `DialCallDuration=N`), then hang-up; `busy`, `no-answer`,
//! `failed`, `canceled` → `transfer-failed-<status>`, the answer says
//! `TRANSFER_FAILED_MESSAGE_FR`/`_EN` in the lead's language and hangs up, and a
//! `transfer-failed` retry is scheduled like a voicemail's. A repeated callback is recorded
//! and acted on once.
//!
//! # The hand-over note
//! `POST TRANSFER_WEBHOOK_URL`, `content-type: application/json`, headers `webhook-id:
//! transfer_<call id>` (the same on a repeat), `webhook-timestamp: <Unix seconds>`,
//! `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>` (Standard
//! Webhooks; the key is `TRANSFER_WEBHOOK_SECRET`'s bytes, or a `whsec_` secret base64-decoded).
//! Any 2xx is success; one attempt, at most 5 s. The body:
//! ```json
//! {"type": "call.transfer_requested",
//!  "timestamp": "2026-12-06T21:00:00Z",
//!  "data": {
//!    "call_id": "0b6f9a8e-…", "lead_id": "5d1c…", "call_sid": "CA…",
//!    "lead": {"first_name": "Claire", "last_name": "Martin", "phone_e164": "+33612345678",
//!             "language": "fr"},
//!    "reason": "asked_for_human",
//!    "summary": "the model's words for the person taking over",
//!    "web_summary": "the web conversation's summary the call was placed with",
//!    "transcript": [{"speaker": "agent", "text": "Bonjour Claire !", "at_ms": 400},
//!                   {"speaker": "caller", "text": "…", "at_ms": 2100}]}}
//! ```
//! When Twilio reports the outcome a second note follows (`webhook-id:
//! transfer_<call id>_outcome`), in the background:
//! ```json
//! {"type": "call.transfer_failed",
//!  "timestamp": "2026-12-06T21:00:25Z",
//!  "data": {"call_id": "0b6f9a8e-…", "lead_id": "5d1c…", "call_sid": "CA…",
//!           "dial_status": "no-answer", "duration_secs": 0, "retry_scheduled": true}}
//! ```
//! (`call.transfer_completed` when a person took the call, `duration_secs` how long they
//! talked), so the team learns of a transfer nobody took.
//!
//! The first note is sent while the call is being dialled, so it can reach the person before their phone
//! rings; if Twilio then refuses the update the note has gone out for a transfer that did not
//! happen (the timeline says `transfer-refused`).
//!
//! # What leaves the control plane
//! The webhook carries the lead's **full phone number** (the person taking over may need to
//! call back): it is the only place a full number is sent anywhere, so `TRANSFER_WEBHOOK_URL`
//! must be an HTTPS endpoint of your own (your CRM, a chat channel you control). Logs and the
//! timeline never hold it. Nothing of the transfer is stored besides the call's timeline lines,
//! which an erasure removes with the call.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use contract::env::EnvReader;
use contract::internal_api::{ToolRequest, ToolResponse, TransferArguments};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::calling_hours::{CallingHours, Holidays};
use crate::metrics::Metrics;
use crate::phone;
use crate::record::{self, Numbers};
use crate::retry::{self, RetryReason};
use crate::routes::{App, SharedApp};
use crate::store::{CallRow, StatusUpdate, StoreError, Write};
use crate::twilio::xml_escape;

/// Timeline source of every transfer line.
pub const SOURCE: &str = "transfer";

/// Default French message when nobody takes the transfer.
pub const DEFAULT_FAILED_MESSAGE_FR: &str = "Je suis désolée, aucun conseiller n'est disponible pour le moment. Nous vous rappellerons très vite. Bonne journée !";
/// Default English message when nobody takes the transfer.
pub const DEFAULT_FAILED_MESSAGE_EN: &str =
    "I am sorry, nobody is available to take your call right now. We will call you back soon. Goodbye!";

/// `TRANSFER_TIMEOUT_SECS` when unset: how long the person's phone rings.
pub const DEFAULT_TIMEOUT_SECS: u32 = 20;
/// Longest failure message (see [`crate::amd::MAX_MESSAGE_CHARS`]).
pub const MAX_MESSAGE_CHARS: usize = 600;
/// Shortest `TRANSFER_WEBHOOK_SECRET`.
pub const MIN_SECRET_LEN: usize = 32;
/// How long the webhook may take (it runs while the call is being dialled).
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest `summary` the model may give (what a person reads in a few seconds).
pub const MAX_SUMMARY_CHARS: usize = 2000;
/// The `reason`s the tool's schema allows.
pub const REASONS: [&str; 3] = ["asked_for_human", "out_of_scope", "complaint"];

/// Where the call is handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    /// An E.164 number (`<Number>`).
    Number(String),
    /// A SIP URI (`<Sip>`).
    Sip(String),
}

impl TransferTarget {
    /// `number` or `sip`, as the timeline says it.
    pub fn kind(&self) -> &'static str {
        match self {
            TransferTarget::Number(_) => "number",
            TransferTarget::Sip(_) => "sip",
        }
    }
}

/// `TRANSFER_WEBHOOK_URL` and the key signing it.
#[derive(Clone, PartialEq, Eq)]
pub struct TransferWebhook {
    /// Where the hand-over note is POSTed.
    pub url: String,
    /// HMAC-SHA256 key (`TRANSFER_WEBHOOK_SECRET`; a `whsec_` value is base64-decoded).
    pub key: Vec<u8>,
}

impl std::fmt::Debug for TransferWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferWebhook").field("url", &self.url).finish_non_exhaustive()
    }
}

/// The transfer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferConfig {
    /// `TRANSFER_TARGET`; `None` = no transfer (the tool is not offered).
    pub target: Option<TransferTarget>,
    /// `TRANSFER_WEBHOOK_URL` + `TRANSFER_WEBHOOK_SECRET`.
    pub webhook: Option<TransferWebhook>,
    /// `TRANSFER_TIMEOUT_SECS` (`<Dial timeout>`).
    pub timeout_secs: u32,
    /// `TRANSFER_FAILED_MESSAGE_FR`.
    pub failed_message_fr: String,
    /// `TRANSFER_FAILED_MESSAGE_EN`.
    pub failed_message_en: String,
    /// `TRANSFER_HOURS` (format of `CALLING_HOURS_*`); `None` = at any time.
    pub hours: Option<CallingHours>,
    /// `TRANSFER_TIME_ZONE`: the zone `hours` are read in (default `Europe/Paris`).
    pub zone: chrono_tz::Tz,
}

impl TransferConfig {
    /// Whether a transfer can be made at `at`: a target is set and the team is in (its hours).
    pub fn open_at(&self, at: OffsetDateTime) -> bool {
        self.target.is_some() && self.hours.as_ref().is_none_or(|h| h.allows(&[self.zone], at))
    }
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            target: None,
            webhook: None,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            failed_message_fr: DEFAULT_FAILED_MESSAGE_FR.into(),
            failed_message_en: DEFAULT_FAILED_MESSAGE_EN.into(),
            hours: None,
            zone: chrono_tz::Europe::Paris,
        }
    }
}

/// Whether `uri` is a SIP URI Twilio's `<Sip>` dials: `sip:` or `sips:`, a user and a host,
/// no spaces or XML-breaking characters, at most 255 characters.
fn valid_sip(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("sip:").or_else(|| uri.strip_prefix("sips:")) else { return false };
    let host = rest.split_once('@').map(|(user, host)| (!user.is_empty()).then_some(host));
    uri.len() <= 255
        && matches!(host, Some(Some(h)) if !h.is_empty() && !h.starts_with(';'))
        && !uri.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\"'".contains(c))
}

/// Reads `TRANSFER_TARGET`, `TRANSFER_WEBHOOK_URL`, `TRANSFER_WEBHOOK_SECRET`,
/// `TRANSFER_TIMEOUT_SECS`, `TRANSFER_FAILED_MESSAGE_FR`, `TRANSFER_FAILED_MESSAGE_EN`,
/// `TRANSFER_HOURS`, `TRANSFER_TIME_ZONE`, one precise message per bad value (never echoing a
/// number in full or the secret). `from` is `TWILIO_PHONE_NUMBER_FROM` (a transfer to it
/// would ring ourselves).
pub fn read_config(
    r: &mut EnvReader<'_>,
    default_region: phonenumber::country::Id,
    from: &str,
) -> TransferConfig {
    let mut cfg = TransferConfig::default();
    if let Some(raw) = r.opt("TRANSFER_TARGET") {
        if raw.starts_with("sip:") || raw.starts_with("sips:") {
            if valid_sip(&raw) {
                cfg.target = Some(TransferTarget::Sip(raw));
            } else {
                r.problem(
                    "TRANSFER_TARGET is not a SIP URI Twilio can dial: use sip:user@host (no spaces, quotes or <>, at most 255 characters)",
                );
            }
        } else {
            match phone::parse_phone(&raw, default_region) {
                Ok(p) if raw.starts_with('+') && p.e164 == from => r.problem(
                    "TRANSFER_TARGET is TWILIO_PHONE_NUMBER_FROM: the call would be handed to our own number; set the number of the person or desk taking over",
                ),
                Ok(p) if raw.starts_with('+') => cfg.target = Some(TransferTarget::Number(p.e164)),
                _ => r.problem(format!(
                    "TRANSFER_TARGET must be a valid number in E.164 form (+33…) or a sip:user@host URI, got {:?}",
                    phone::mask(&raw)
                )),
            }
        }
    }
    let url = r.opt("TRANSFER_WEBHOOK_URL").map(|_| r.url("TRANSFER_WEBHOOK_URL", None, ""));
    let secret = r.opt("TRANSFER_WEBHOOK_SECRET");
    match (url, secret) {
        (None, None) => {}
        (None, Some(_)) => r.problem(
            "TRANSFER_WEBHOOK_SECRET is set without TRANSFER_WEBHOOK_URL: set the URL the hand-over note goes to, or unset the secret",
        ),
        (Some(_), None) => r.problem(
            "TRANSFER_WEBHOOK_URL needs TRANSFER_WEBHOOK_SECRET (at least 32 bytes, e.g. `openssl rand -base64 48`, or a Standard Webhooks whsec_ key) to sign the hand-over note",
        ),
        (Some(url), Some(secret)) => match webhook_key(&secret) {
            Ok(key) => cfg.webhook = Some(TransferWebhook { url, key }),
            Err(why) => r.problem(format!("TRANSFER_WEBHOOK_SECRET {why}")),
        },
    }
    if cfg.webhook.is_some() && cfg.target.is_none() {
        r.problem("TRANSFER_WEBHOOK_URL is set but TRANSFER_TARGET is not: no transfer would ever be made; set the target or unset the webhook");
    }
    if let Some(raw) = r.opt("TRANSFER_TIME_ZONE") {
        match raw.parse::<chrono_tz::Tz>() {
            Ok(z) => cfg.zone = z,
            Err(_) => r.problem(format!(
                "TRANSFER_TIME_ZONE must be an IANA zone such as Europe/Paris, got {raw:?}"
            )),
        }
    }
    if let Some(raw) = r.opt("TRANSFER_HOURS") {
        match CallingHours::parse(&raw, Holidays::None) {
            Ok(h) => cfg.hours = Some(h),
            Err(e) => r.problem(format!(
                "TRANSFER_HOURS (when a person can take a transfer, in TRANSFER_TIME_ZONE): {e}"
            )),
        }
    }
    cfg.timeout_secs = r.number("TRANSFER_TIMEOUT_SECS", DEFAULT_TIMEOUT_SECS, 5, 600);
    for (name, slot) in [
        ("TRANSFER_FAILED_MESSAGE_FR", &mut cfg.failed_message_fr),
        ("TRANSFER_FAILED_MESSAGE_EN", &mut cfg.failed_message_en),
    ] {
        if let Some(v) = r.opt(name) {
            let n = v.chars().count();
            if n > MAX_MESSAGE_CHARS {
                r.problem(format!(
                    "{name} must be 1 to {MAX_MESSAGE_CHARS} characters ({n} given): it is said to the caller when nobody takes the transfer"
                ));
            } else {
                *slot = v;
            }
        }
    }
    cfg
}

/// The HMAC key of a `TRANSFER_WEBHOOK_SECRET`: a Standard Webhooks `whsec_<base64>` secret is
/// decoded; any other value is used as its bytes. At least [`MIN_SECRET_LEN`] bytes as given.
fn webhook_key(secret: &str) -> Result<Vec<u8>, String> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(format!(
            "is {} bytes, at least {MIN_SECRET_LEN} are required: generate one with `openssl rand -base64 48`",
            secret.len()
        ));
    }
    match secret.strip_prefix("whsec_") {
        Some(b64) => STANDARD
            .decode(b64)
            .map_err(|_| "starts with whsec_ but the rest is not base64 (copy the key whole)".to_owned()),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// Standard Webhooks' signature of one delivery: `v1,` + base64(HMAC-SHA256(key,
/// `{id}.{timestamp}.{body}`)), sent in `webhook-signature` with `webhook-id` and
/// `webhook-timestamp` (Unix seconds). Receivers verify it with any Standard Webhooks library
/// (given the `whsec_` secret), or by recomputing it and refusing timestamps more than five
/// minutes away.
pub fn sign_webhook(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
}

/// `<Dial>` to `target`, its `action` reporting to `action_url`; `caller_id` is our Twilio
/// number (what the person's phone shows).
pub fn dial_twiml(target: &TransferTarget, timeout_secs: u32, action_url: &str, caller_id: &str) -> String {
    let noun = match target {
        TransferTarget::Number(n) => format!("<Number>{}</Number>", xml_escape(n)),
        TransferTarget::Sip(uri) => format!("<Sip>{}</Sip>", xml_escape(uri)),
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial timeout="{timeout_secs}" action="{}" method="POST" callerId="{}">{noun}</Dial></Response>"#,
        xml_escape(action_url),
        xml_escape(caller_id),
    )
}

/// What the caller hears when nobody took the transfer, then the hang-up.
pub fn failed_twiml(message: &str, say_language: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say language="{say_language}">{}</Say><Hangup/></Response>"#,
        xml_escape(message.trim())
    )
}

/// The TwiML that ends the call (after a completed transfer: the person hung up).
pub const HANGUP_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>"#;

/// The hand-over note POSTed to `TRANSFER_WEBHOOK_URL` (Standard Webhooks' envelope: `type`,
/// `timestamp`, `data`).
#[derive(Debug, Clone, Serialize)]
pub struct WebhookPayload {
    /// `call.transfer_requested`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When the transfer was asked for (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// The note itself.
    pub data: TransferNote,
}

/// What the person taking over needs.
#[derive(Debug, Clone, Serialize)]
pub struct TransferNote {
    /// Our call id.
    pub call_id: Uuid,
    /// The lead.
    pub lead_id: Uuid,
    /// Twilio's `CallSid`.
    pub call_sid: String,
    /// Who is on the line.
    pub lead: NoteLead,
    /// The model's `reason` (`asked_for_human`, `out_of_scope`, `complaint`).
    pub reason: String,
    /// The model's summary for the person taking over.
    pub summary: String,
    /// The web conversation's summary (what the prospect said on the site).
    pub web_summary: String,
    /// The phone conversation so far, in order.
    pub transcript: Vec<NoteLine>,
}

/// The lead, in full.
#[derive(Debug, Clone, Serialize)]
pub struct NoteLead {
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// The number in full (E.164): the only place one leaves the control plane.
    pub phone_e164: String,
    /// `fr` or `en`: the language the agent spoke.
    pub language: &'static str,
}

/// One line of the phone transcript.
#[derive(Debug, Clone, Serialize)]
pub struct NoteLine {
    /// `agent` or `caller`.
    pub speaker: &'static str,
    /// The words.
    pub text: String,
    /// Milliseconds since the stream started.
    pub at_ms: Option<u64>,
}

/// How long a transfer's lease holds ([`crate::store::Store::claim_transfer`]): more than
/// Twilio's answer and the note take, so that a control plane that dies mid-transfer blocks the
/// call's transfer for this long at most.
const TRANSFER_LEASE: time::Duration = time::Duration::seconds(60);

fn answer(ok: bool, output: serde_json::Value) -> ToolResponse {
    ToolResponse { ok, output: output.to_string() }
}

async fn timeline(app: &App, call: &CallRow, status: &str, detail: String) -> Result<(), StoreError> {
    let update = StatusUpdate {
        call_id: call.id,
        call_sid: call.call_sid.clone(),
        status: status.to_owned(),
        source: SOURCE.into(),
        detail: Some(detail),
        at: OffsetDateTime::now_utc(),
    };
    app.storage.write(Write::RecordStatus(update)).await.map(drop)
}

/// Checks the model's arguments; `Err` is the output telling the model what to fix.
pub fn check_arguments(raw: &str) -> Result<TransferArguments, serde_json::Value> {
    let args: TransferArguments = serde_json::from_str(raw).map_err(|e| {
        json!({"error": "arguments_invalid", "message": format!("transfer_to_human takes {{\"reason\", \"summary\"}}: {e}")})
    })?;
    if !REASONS.contains(&args.reason.as_str()) {
        return Err(json!({
            "error": "reason_invalid",
            "message": format!("reason must be one of {}", REASONS.join(", ")),
        }));
    }
    let n = args.summary.trim().chars().count();
    if n == 0 || n > MAX_SUMMARY_CHARS {
        return Err(json!({
            "error": "summary_invalid",
            "message": format!("summary must be 1 to {MAX_SUMMARY_CHARS} characters ({n} given): a few sentences for the person taking over"),
        }));
    }
    Ok(args)
}

/// The `transfer_to_human` tool (see the module doc). Storage failures are the only `Err`.
pub async fn on_tool(app: &App, call: &CallRow, req: &ToolRequest) -> Result<ToolResponse, StoreError> {
    let cfg = &app.config.transfer;
    let Some(target) = cfg.target.clone() else {
        Metrics::inc(&app.metrics.transfers_refused);
        return Ok(answer(
            false,
            json!({"error": "transfer_unavailable", "message": "No person can take this call: tell the caller nobody is available and go on with the conversation."}),
        ));
    };
    let args = match check_arguments(&req.arguments) {
        Ok(a) => a,
        Err(output) => {
            Metrics::inc(&app.metrics.transfers_refused);
            tracing::warn!(tool_call_id = %req.tool_call_id, error = %output["error"], "transfer arguments refused");
            return Ok(answer(false, output));
        }
    };
    if !cfg.open_at(app.clock.now()) {
        Metrics::inc(&app.metrics.transfers_refused);
        tracing::info!(reason = %args.reason, "transfer asked for outside TRANSFER_HOURS");
        timeline(app, call, "transfer-closed", format!("reason={} outside TRANSFER_HOURS", args.reason))
            .await?;
        return Ok(answer(
            false,
            json!({"error": "transfer_closed", "message": "Nobody can take calls at this hour: tell the caller a person will call them back, and go on with the conversation."}),
        ));
    }
    let Some(call_sid) = call.call_sid.clone() else {
        return Ok(answer(
            false,
            json!({"error": "call_not_connected", "message": "the call has no Twilio CallSid yet; go on with the conversation"}),
        ));
    };
    // One transfer of this call at a time, across every control plane.
    let now = app.clock.now();
    if !app.storage.store.claim_transfer(call.id, now, now + TRANSFER_LEASE).await? {
        tracing::info!(tool_call_id = %req.tool_call_id, "transfer already under way (concurrent request)");
        return Ok(answer(true, json!({"transferring": true, "already": true})));
    }
    let outcome = hand_over(app, call, req, &args, &target, &call_sid).await;
    if let Err(e) = app.storage.store.release_transfer(call.id).await {
        tracing::warn!(error = %e, "the transfer's lease was not given back; it expires by itself within a minute");
    }
    outcome
}

/// The transfer itself, under the call's lease: once per call (the timeline's
/// `transfer-requested`), Twilio's `<Dial>` first, then the hand-over note, so a note never
/// announces a transfer Twilio refused.
async fn hand_over(
    app: &App,
    call: &CallRow,
    req: &ToolRequest,
    args: &TransferArguments,
    target: &TransferTarget,
    call_sid: &str,
) -> Result<ToolResponse, StoreError> {
    let cfg = &app.config.transfer;
    let statuses = app.storage.store.status_timeline(call.id).await?;
    if statuses.iter().any(|s| s == "transfer-requested") {
        tracing::info!(tool_call_id = %req.tool_call_id, "transfer already requested (repeated tool request)");
        return Ok(answer(true, json!({"transferring": true, "already": true})));
    }
    // The gateway's end of call; otherwise Twilio is the judge (a call it has ended refuses
    // the update, which is answered below).
    if call.end_reason.is_some() {
        return Ok(answer(false, json!({"error": "call_ended", "message": "the call has already ended"})));
    }
    let action = format!("{}/twilio/transfer?call_id={}", app.config.public_app_url, call.id);
    let twiml = dial_twiml(target, cfg.timeout_secs, &action, &app.config.twilio_phone_number_from);
    if let Err(e) = app.twilio.redirect(call_sid, &twiml).await {
        Metrics::inc(&app.metrics.twilio_errors);
        Metrics::inc(&app.metrics.transfers_refused);
        tracing::error!(error = %e, code = e.code(), "Twilio refused the transfer's call update; the conversation goes on");
        timeline(app, call, "transfer-refused", format!("Twilio: {}", e.code())).await?;
        return Ok(answer(
            false,
            json!({"error": e.code(), "message": "the transfer could not be made; tell the caller and go on"}),
        ));
    }
    // Recorded as soon as Twilio has answered: the dial's outcome may come back before the
    // note is delivered.
    Metrics::inc(&app.metrics.transfers_requested);
    let detail = format!("reason={} target={} tool={}", args.reason, target.kind(), req.tool_call_id);
    timeline(app, call, "transfer-requested", detail).await?;
    tracing::info!(reason = %args.reason, target = target.kind(), timeout_secs = cfg.timeout_secs, "call handed over to a person (Dial)");
    // The person's phone rings for seconds before they pick up: the note, sent now, is there
    // when they do.
    if let Some(hook) = &cfg.webhook {
        match send_webhook(app, hook, call, call_sid, args).await {
            Ok(status) => timeline(app, call, "transfer-webhook-sent", format!("HTTP {status}")).await?,
            Err(why) => {
                Metrics::inc(&app.metrics.transfer_webhook_failures);
                tracing::error!(error = %why, "the transfer's hand-over note was not delivered (TRANSFER_WEBHOOK_URL); the transfer goes on");
                timeline(app, call, "transfer-webhook-failed", why).await?;
            }
        }
    }
    Ok(answer(
        true,
        json!({"transferring": true, "message": "The call is being handed over to a person: say nothing more."}),
    ))
}

/// Builds and POSTs the hand-over note; the receiver's HTTP status, or why it failed.
async fn send_webhook(
    app: &App,
    hook: &TransferWebhook,
    call: &CallRow,
    call_sid: &str,
    args: &TransferArguments,
) -> Result<u16, String> {
    let store = &app.storage.store;
    let lead = store.get_lead(call.lead_id).await.map_err(|e| format!("lead not read: {e}"))?;
    let lead = lead.ok_or_else(|| "the lead no longer exists".to_owned())?;
    let rec = record::read::call(store, call.id, Numbers::Masked).await.ok().flatten();
    let transcript = rec
        .as_ref()
        .map(|r| {
            r.dialogue
                .iter()
                .filter(|l| l.part == "phone")
                .map(|l| NoteLine {
                    speaker: if l.speaker == "agent" { "agent" } else { "caller" },
                    text: l.text.clone(),
                    at_ms: l.at_ms,
                })
                .collect()
        })
        .unwrap_or_default();
    let parsed = phone::parse_phone(&lead.phone_e164, app.config.default_phone_region).ok();
    let (language, _) = parsed.as_ref().map_or(("fr", "fr-FR"), crate::amd::lead_language);
    let payload = WebhookPayload {
        kind: "call.transfer_requested",
        timestamp: OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc()),
        data: TransferNote {
            call_id: call.id,
            lead_id: call.lead_id,
            call_sid: call_sid.to_owned(),
            lead: NoteLead {
                first_name: lead.first_name,
                last_name: lead.last_name,
                phone_e164: lead.phone_e164,
                language,
            },
            reason: args.reason.clone(),
            summary: args.summary.trim().to_owned(),
            web_summary: call.summary.clone(),
            transcript,
        },
    };
    let body = serde_json::to_vec(&payload).map_err(|e| e.to_string())?;
    deliver(hook, &format!("transfer_{}", call.id), body).await
}

/// POSTs `body` to the webhook, signed with delivery id `id`: the receiver's 2xx status, or
/// why it failed (status or transport error; never the URL).
async fn deliver(hook: &TransferWebhook, id: &str, body: Vec<u8>) -> Result<u16, String> {
    let ts = crate::routes::now_secs();
    let res = reqwest::Client::new()
        .post(&hook.url)
        .timeout(WEBHOOK_TIMEOUT)
        .header("content-type", "application/json")
        .header("user-agent", crate::store::supabase::USER_AGENT)
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sign_webhook(&hook.key, id, ts, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                format!("timed out after {} s", WEBHOOK_TIMEOUT.as_secs())
            } else if e.is_connect() {
                "connection failed".to_owned()
            } else {
                "request failed".to_owned()
            }
        })?;
    let status = res.status().as_u16();
    if res.status().is_success() { Ok(status) } else { Err(format!("HTTP {status}")) }
}

/// The transfer's outcome, POSTed to `TRANSFER_WEBHOOK_URL` once Twilio has reported it
/// (`type` `call.transfer_completed` or `call.transfer_failed`), so the team learns of a
/// transfer nobody took.
#[derive(Debug, Clone, Serialize)]
pub struct OutcomePayload {
    /// `call.transfer_completed` or `call.transfer_failed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When Twilio reported it (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// What happened.
    pub data: OutcomeNote,
}

/// The outcome itself.
#[derive(Debug, Clone, Serialize)]
pub struct OutcomeNote {
    /// Our call id.
    pub call_id: Uuid,
    /// The lead.
    pub lead_id: Uuid,
    /// Twilio's `CallSid`.
    pub call_sid: String,
    /// Twilio's `DialCallStatus`: `completed`, `answered`, `busy`, `no-answer`, `failed`,
    /// `canceled`.
    pub dial_status: String,
    /// `DialCallDuration`: seconds the person and the caller were connected.
    pub duration_secs: u64,
    /// Whether a retry was scheduled (a transfer nobody took).
    pub retry_scheduled: bool,
}

/// Sends the outcome note in the background (Twilio is waiting for the action's answer): a
/// failure is logged and recorded as `transfer-webhook-failed`.
fn send_outcome(app: &SharedApp, call: &CallRow, note: OutcomeNote) {
    let Some(hook) = app.config.transfer.webhook.clone() else { return };
    let (app, call) = (app.clone(), call.clone());
    tokio::spawn(async move {
        let payload = OutcomePayload {
            kind: if matches!(note.dial_status.as_str(), "completed" | "answered") {
                "call.transfer_completed"
            } else {
                "call.transfer_failed"
            },
            timestamp: OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or_else(|_| OffsetDateTime::now_utc()),
            data: note,
        };
        let Ok(body) = serde_json::to_vec(&payload) else { return };
        if let Err(why) = deliver(&hook, &format!("transfer_{}_outcome", call.id), body).await {
            Metrics::inc(&app.metrics.transfer_webhook_failures);
            tracing::error!(call_id = %call.id, error = %why, "the transfer's outcome note was not delivered (TRANSFER_WEBHOOK_URL)");
            if let Err(e) = timeline(&app, &call, "transfer-webhook-failed", format!("outcome: {why}")).await
            {
                tracing::error!(call_id = %call.id, error = %e, "could not record the failed outcome note");
            }
        }
    });
}

/// What a verified `<Dial action>` request leads to: the TwiML to answer Twilio with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialResult {
    /// The TwiML the call runs next.
    pub twiml: String,
    /// Whether this request was the first for the transfer (a repeat is only answered).
    pub first: bool,
}

/// Whether `status` is a `DialCallStatus` Twilio sends.
pub fn known_dial_status(status: &str) -> bool {
    ["completed", "answered", "busy", "no-answer", "failed", "canceled"].contains(&status)
}

/// Acts on Twilio's `<Dial action>` for `call_id` (see the module doc). Idempotent.
pub async fn on_dial_result(
    app: &SharedApp,
    call_id: Uuid,
    dial_status: &str,
    duration: Option<&str>,
) -> Result<DialResult, StoreError> {
    let store = &app.storage.store;
    let call =
        store.get_call(call_id).await?.ok_or_else(|| StoreError::NotFound(format!("call {call_id}")))?;
    let lead = store.get_lead(call.lead_id).await?;
    let parsed =
        lead.as_ref().and_then(|l| phone::parse_phone(&l.phone_e164, app.config.default_phone_region).ok());
    let (lang, say) = parsed.as_ref().map_or(("fr", "fr-FR"), crate::amd::lead_language);
    let cfg = &app.config.transfer;
    let message = if lang == "fr" { &cfg.failed_message_fr } else { &cfg.failed_message_en };
    let answered = matches!(dial_status, "completed" | "answered");
    let twiml = if answered { HANGUP_TWIML.to_owned() } else { failed_twiml(message, say) };
    let statuses = store.status_timeline(call_id).await?;
    if statuses.iter().any(|s| s == "transfer-completed" || s.starts_with("transfer-failed-")) {
        tracing::info!(%call_id, dial_status, "transfer outcome already recorded (repeated callback)");
        return Ok(DialResult { twiml, first: false });
    }
    // Signed by Twilio, but only a number goes on the timeline.
    let secs: u64 = duration.and_then(|d| d.trim().parse().ok()).unwrap_or(0);
    let mut retry_scheduled = false;
    if answered {
        timeline(app, &call, "transfer-completed", format!("DialCallDuration={secs}")).await?;
        Metrics::inc(&app.metrics.transfers_completed);
        crate::cost::on_transfer_completed(app, secs);
        tracing::info!(%call_id, call_sid = call.call_sid.as_deref().unwrap_or(""), dial_status, talk_secs = secs, "transfer taken by a person");
    } else {
        timeline(
            app,
            &call,
            &format!("transfer-failed-{dial_status}"),
            format!("nobody took the call: message said in {say}, then hang-up"),
        )
        .await?;
        Metrics::inc(&app.metrics.transfers_failed);
        tracing::warn!(%call_id, call_sid = call.call_sid.as_deref().unwrap_or(""), dial_status, "transfer not taken; the caller is told and the call ends");
        // Twilio waits for this answer: a retry that cannot be stored is logged, the caller
        // still hears the message.
        match retry::on_call_outcome(app, call_id, RetryReason::TransferFailed).await {
            Ok(scheduled) => retry_scheduled = matches!(scheduled, retry::Scheduled::Retry(_)),
            Err(e) => tracing::error!(%call_id, error = %e, "retry after a failed transfer not scheduled"),
        }
    }
    let note = OutcomeNote {
        call_id,
        lead_id: call.lead_id,
        call_sid: call.call_sid.clone().unwrap_or_default(),
        dial_status: dial_status.to_owned(),
        duration_secs: secs,
        retry_scheduled,
    };
    send_outcome(app, &call, note);
    Ok(DialResult { twiml, first: true })
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonenumber::country::Id;

    const PERSON: &str = "+33698765432";

    fn read(vars: &[(&str, &str)]) -> (TransferConfig, Result<(), String>) {
        let get = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned());
        let mut r = EnvReader::new(&get);
        let cfg = read_config(&mut r, Id::FR, "+33159000000");
        (cfg, r.finish().map_err(|e| e.to_string()))
    }

    #[test]
    fn the_webhook_signature_matches_the_standard_webhooks_vector() {
        // The Standard Webhooks specification's example (also Svix's documentation).
        let key = webhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign_webhook(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        // A plain secret is used as its bytes.
        assert_eq!(webhook_key(&"k".repeat(32)).unwrap(), vec![b'k'; 32]);
    }

    #[test]
    fn the_dial_twiml_escapes_and_picks_the_noun() {
        let t = dial_twiml(
            &TransferTarget::Number("+33612345678".into()),
            20,
            "https://cp.example/twilio/transfer?call_id=1&x=2",
            "+33159000000",
        );
        assert_eq!(
            t,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial timeout="20" action="https://cp.example/twilio/transfer?call_id=1&amp;x=2" method="POST" callerId="+33159000000"><Number>+33612345678</Number></Dial></Response>"#
        );
        let t = dial_twiml(&TransferTarget::Sip("sip:desk@pbx.example.eu;transport=tls".into()), 5, "u", "f");
        assert!(t.contains("<Sip>sip:desk@pbx.example.eu;transport=tls</Sip>"), "{t}");
        let f = failed_twiml(" Désolée <b> ", "fr-FR");
        assert!(f.ends_with(r#"<Say language="fr-FR">Désolée &lt;b&gt;</Say><Hangup/></Response>"#), "{f}");
    }

    #[test]
    fn configuration_is_read_with_one_message_per_bad_value() {
        let (cfg, ok) = read(&[]);
        assert_eq!((cfg, ok), (TransferConfig::default(), Ok(())));
        let (cfg, ok) = read(&[
            ("TRANSFER_TARGET", "+33 6 98 76 54 32"),
            ("TRANSFER_WEBHOOK_URL", "https://crm.example.eu/hooks/transfer"),
            ("TRANSFER_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("TRANSFER_TIMEOUT_SECS", "30"),
        ]);
        ok.unwrap();
        assert_eq!(cfg.target, Some(TransferTarget::Number("+33698765432".into())));
        assert_eq!(
            (cfg.webhook.unwrap().url.as_str(), cfg.timeout_secs),
            ("https://crm.example.eu/hooks/transfer", 30)
        );
        let (cfg, ok) = read(&[("TRANSFER_TARGET", "sip:desk@pbx.example.eu")]);
        ok.unwrap();
        assert_eq!(cfg.target, Some(TransferTarget::Sip("sip:desk@pbx.example.eu".into())));

        let (_, err) = read(&[
            ("TRANSFER_TARGET", "0698765432"),
            ("TRANSFER_WEBHOOK_URL", "ftp://crm"),
            ("TRANSFER_TIMEOUT_SECS", "2"),
            ("TRANSFER_FAILED_MESSAGE_EN", &"x".repeat(601)),
        ]);
        let err = err.unwrap_err();
        for part in [
            "TRANSFER_TARGET must be a valid number in E.164 form",
            "TRANSFER_WEBHOOK_URL must be an http(s):// URL",
            "TRANSFER_WEBHOOK_URL needs TRANSFER_WEBHOOK_SECRET",
            "TRANSFER_TIMEOUT_SECS must be a whole number from 5 to 600",
            "TRANSFER_FAILED_MESSAGE_EN must be 1 to 600 characters (601 given)",
        ] {
            assert!(err.contains(part), "{part} missing: {err}");
        }
        assert!(!err.contains("0698765432"), "the number is masked: {err}");
        let (_, err) = read(&[
            ("TRANSFER_TARGET", "sip:nobody"),
            ("TRANSFER_WEBHOOK_URL", "https://crm.example.eu/h"),
            ("TRANSFER_WEBHOOK_SECRET", "short"),
        ]);
        let err = err.unwrap_err();
        assert!(err.contains("TRANSFER_TARGET is not a SIP URI"), "{err}");
        assert!(err.contains("TRANSFER_WEBHOOK_SECRET is 5 bytes, at least 32"), "{err}");
        assert!(!err.contains("short"), "the secret is never echoed: {err}");
        let (_, err) = read(&[("TRANSFER_WEBHOOK_SECRET", &"s".repeat(40))]);
        assert!(err.unwrap_err().contains("without TRANSFER_WEBHOOK_URL"));
        let (_, err) = read(&[
            ("TRANSFER_TARGET", "+33 1 59 00 00 00"),
            ("TRANSFER_HOURS", "mon-fri 25:00-26:00"),
            ("TRANSFER_TIME_ZONE", "Mars/Olympus"),
        ]);
        let err = err.unwrap_err();
        for part in [
            "TRANSFER_TARGET is TWILIO_PHONE_NUMBER_FROM",
            "TRANSFER_HOURS (when a person",
            "TRANSFER_TIME_ZONE must be an IANA zone",
        ] {
            assert!(err.contains(part), "{part} missing: {err}");
        }
    }

    #[test]
    fn transfers_are_open_only_inside_the_teams_hours() {
        let (cfg, ok) = read(&[
            ("TRANSFER_TARGET", PERSON),
            ("TRANSFER_HOURS", "mon-fri 09:00-18:00"),
            ("TRANSFER_TIME_ZONE", "Europe/Paris"),
        ]);
        ok.unwrap();
        let at = |s: &str| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
        // Monday 7 December 2026: 08:30 UTC is 09:30 in Paris; 17:30 UTC is 18:30.
        assert!(cfg.open_at(at("2026-12-07T08:30:00Z")));
        assert!(!cfg.open_at(at("2026-12-07T17:30:00Z")));
        assert!(!cfg.open_at(at("2026-12-06T10:00:00Z")), "a Sunday");
        let (always, _) = read(&[("TRANSFER_TARGET", PERSON)]);
        assert!(always.open_at(at("2026-12-06T03:00:00Z")));
        assert!(!TransferConfig::default().open_at(at("2026-12-07T08:30:00Z")), "no target, never");
    }

    #[test]
    fn the_models_arguments_are_checked() {
        assert!(check_arguments(r#"{"reason":"complaint","summary":"Client mécontent."}"#).is_ok());
        for (raw, code) in [
            ("not json", "arguments_invalid"),
            (r#"{"reason":"complaint"}"#, "arguments_invalid"),
            (r#"{"reason":"complaint","summary":"x","extra":1}"#, "arguments_invalid"),
            (r#"{"reason":"bored","summary":"x"}"#, "reason_invalid"),
            (r#"{"reason":"complaint","summary":"  "}"#, "summary_invalid"),
        ] {
            assert_eq!(check_arguments(raw).unwrap_err()["error"], code, "{raw}");
        }
    }
}
