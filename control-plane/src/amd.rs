//! Answering-machine detection (issue 13, item 1), the control plane's side.
//!
//! With `ANSWERING_MACHINE_DETECTION=on`, every call is created with Twilio's asynchronous AMD
//! (`MachineDetection=DetectMessageEnd`, `AsyncAmd=true`, `AsyncAmdStatusCallback` =
//! `PUBLIC_APP_URL/twilio/amd?call_id=…`): the `<Connect><Stream>` starts at once and Twilio
//! reports who answered a few seconds later (a machine once its greeting has ended, so a
//! message left then is recorded whole). The callback is verified like every Twilio callback
//! and its result is a line of the call's timeline (`amd-human`, `amd-machine_end_beep`, …,
//! source `twilio-amd`, detail `MachineDetectionDuration`). Then, by `AnsweredBy`:
//! - `human`: nothing to do, the conversation goes on; `unknown`: treated as a person;
//! - `machine_*`: `VOICEMAIL_POLICY=leave` (default) updates the live call with TwiML that
//!   says the voicemail message (`VOICEMAIL_MESSAGE_FR` / `VOICEMAIL_MESSAGE_EN`, `{first_name}`
//!   replaced, in the lead's language) and hangs up; `hangup` ends the call
//!   (`Status=completed`). Either way a retry is scheduled with [`RetryReason::Voicemail`];
//! - `fax`: the call is ended, no retry (a fax line will not answer better later).
//!
//! Updating the call with new TwiML ends its media stream (Twilio sends `stop` and closes the
//! WebSocket), which is how the gateway learns a voicemail took over; what the gateway does
//! while AMD runs is written in [`contract::internal_api`] (answering-machine detection), and it
//! asks for the result on `POST /internal/v1/calls/{id}/amd` (a long poll,
//! [`crate::routes::internal::amd`]).
//!
//! A repeated callback (Twilio retries on a 5xx or a timeout) is recorded once and acted on
//! once.

use std::fmt;

use contract::env::EnvReader;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::phone;
use crate::retry::{self, RetryReason};
use crate::routes::App;
use crate::store::{StatusUpdate, StoreError, Write};
use crate::twilio::xml_escape;

/// Timeline source of AMD results and of what was done about them.
pub const SOURCE: &str = "twilio-amd";

/// Default French voicemail message.
pub const DEFAULT_MESSAGE_FR: &str = "Bonjour {first_name}, ici Callway. Vous nous avez demandé de vous rappeler : nous réessaierons un peu plus tard. Bonne journée !";
/// Default English voicemail message.
pub const DEFAULT_MESSAGE_EN: &str = "Hello {first_name}, this is Callway returning the call you asked for. We will try again a little later. Goodbye!";

/// What to do when a machine answers (`VOICEMAIL_POLICY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoicemailPolicy {
    /// Say the voicemail message, then hang up.
    Leave,
    /// Hang up at once.
    Hangup,
}

impl fmt::Display for VoicemailPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VoicemailPolicy::Leave => "leave",
            VoicemailPolicy::Hangup => "hangup",
        })
    }
}

/// The AMD settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmdConfig {
    /// `ANSWERING_MACHINE_DETECTION=on` (default off: Twilio bills each detection).
    pub enabled: bool,
    /// `VOICEMAIL_POLICY` (default `leave`).
    pub policy: VoicemailPolicy,
    /// `VOICEMAIL_MESSAGE_FR`.
    pub message_fr: String,
    /// `VOICEMAIL_MESSAGE_EN`.
    pub message_en: String,
}

impl Default for AmdConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            policy: VoicemailPolicy::Leave,
            message_fr: DEFAULT_MESSAGE_FR.into(),
            message_en: DEFAULT_MESSAGE_EN.into(),
        }
    }
}

/// Longest voicemail message: Twilio's `<Say>` takes 4 096 characters, the whole update's
/// TwiML 4 000; a voicemail should be short anyway.
pub const MAX_MESSAGE_CHARS: usize = 600;

/// Reads `ANSWERING_MACHINE_DETECTION`, `VOICEMAIL_POLICY`, `VOICEMAIL_MESSAGE_FR`,
/// `VOICEMAIL_MESSAGE_EN`, one precise message per bad value.
pub fn read_config(r: &mut EnvReader<'_>) -> AmdConfig {
    let mut cfg = AmdConfig { enabled: r.bool("ANSWERING_MACHINE_DETECTION", false), ..AmdConfig::default() };
    match r.opt("VOICEMAIL_POLICY").as_deref() {
        None | Some("leave") => {}
        Some("hangup") => cfg.policy = VoicemailPolicy::Hangup,
        Some(other) => r.problem(format!(
            "VOICEMAIL_POLICY must be leave (say VOICEMAIL_MESSAGE_FR/_EN, then hang up) or hangup, got {other:?}"
        )),
    }
    for (name, slot) in
        [("VOICEMAIL_MESSAGE_FR", &mut cfg.message_fr), ("VOICEMAIL_MESSAGE_EN", &mut cfg.message_en)]
    {
        if let Some(v) = r.opt(name) {
            let n = v.chars().count();
            if v.trim().is_empty() || n > MAX_MESSAGE_CHARS {
                r.problem(format!(
                    "{name} must be 1 to {MAX_MESSAGE_CHARS} characters ({n} given); {{first_name}} is replaced by the lead's first name"
                ));
            } else {
                *slot = v;
            }
        }
    }
    cfg
}

/// The language a lead is spoken to in: French for the French-speaking regions' numbers,
/// English otherwise (the web agent's context is French; this covers a message to a number
/// abroad). `(message language, <Say language>)`.
pub fn lead_language(phone: &phone::Phone) -> (&'static str, &'static str) {
    use phonenumber::country::Id;
    match phone.region {
        Some(
            Id::FR | Id::BE | Id::CH | Id::LU | Id::MC | Id::RE | Id::GP | Id::MQ | Id::GF | Id::YT | Id::PM,
        ) => ("fr", "fr-FR"),
        _ => ("en", "en-US"),
    }
}

/// The TwiML that leaves the message and hangs up.
pub fn voicemail_twiml(template: &str, first_name: &str, say_language: &str) -> String {
    let text = template.replace("{first_name}", first_name.trim());
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say language="{say_language}">{}</Say><Hangup/></Response>"#,
        xml_escape(text.trim())
    )
}

/// What Twilio's `AnsweredBy` calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A person (or undecided): the conversation goes on.
    Person,
    /// An answering machine.
    Machine,
    /// A fax line.
    Fax,
}

/// Classifies `AnsweredBy`; `None` for a value Twilio does not send.
pub fn verdict(answered_by: &str) -> Option<Verdict> {
    match answered_by {
        "human" | "unknown" => Some(Verdict::Person),
        "machine_start" | "machine_end_beep" | "machine_end_silence" | "machine_end_other" => {
            Some(Verdict::Machine)
        }
        "fax" => Some(Verdict::Fax),
        _ => None,
    }
}

/// Twilio's `AnsweredBy` for `call_id`, once its callback has been recorded.
pub async fn result_of(app: &App, call_id: Uuid) -> Result<Option<String>, StoreError> {
    let statuses = app.storage.store.status_timeline(call_id).await?;
    Ok(statuses.iter().find_map(|s| s.strip_prefix("amd-")).map(str::to_owned))
}

async fn timeline(
    app: &App,
    call_id: Uuid,
    call_sid: &str,
    status: String,
    detail: String,
) -> Result<(), StoreError> {
    let update = StatusUpdate {
        call_id,
        call_sid: Some(call_sid.to_owned()),
        status,
        source: SOURCE.into(),
        detail: Some(detail),
        at: OffsetDateTime::now_utc(),
    };
    app.storage.write(Write::RecordStatus(update)).await.map(drop)
}

/// Acts on a verified AMD callback for `call_id`: records the result, then leaves a message,
/// hangs up or lets the conversation go on (see the module doc). Idempotent.
pub async fn on_result(
    app: &App,
    call_id: Uuid,
    call_sid: &str,
    answered_by: &str,
    duration_ms: Option<&str>,
) -> Result<(), StoreError> {
    let Some(verdict) = verdict(answered_by) else {
        return Err(StoreError::Other(format!("AnsweredBy {answered_by:?} is not one Twilio sends")));
    };
    let store = &app.storage.store;
    let status = format!("amd-{answered_by}");
    if result_of(app, call_id).await?.is_some() {
        tracing::info!(%call_id, %call_sid, answered_by, "AMD result already recorded (repeated callback)");
        return Ok(());
    }
    let took = duration_ms.map(|d| format!("decided after {d} ms")).unwrap_or_default();
    timeline(app, call_id, call_sid, status, took).await?;
    Metrics::inc(&app.metrics.amd_results);
    tracing::info!(%call_id, %call_sid, answered_by, "answering-machine detection");
    let call =
        store.get_call(call_id).await?.ok_or_else(|| StoreError::NotFound(format!("call {call_id}")))?;
    match verdict {
        Verdict::Person => Ok(()),
        Verdict::Fax => {
            if let Err(e) = app.twilio.hang_up(call_sid).await {
                tracing::error!(%call_id, %call_sid, error = %e, "could not end a call a fax answered");
            }
            timeline(
                app,
                call_id,
                call_sid,
                "fax-hangup".into(),
                "a fax answered: call ended, no retry".into(),
            )
            .await
        }
        Verdict::Machine => {
            let lead = store.get_lead(call.lead_id).await?;
            let policy = app.config.amd.policy;
            let (status, detail, result) = match (policy, lead) {
                (VoicemailPolicy::Leave, Some(lead)) => {
                    let parsed = phone::parse_phone(&lead.phone_e164, app.config.default_phone_region).ok();
                    let (lang, say) = parsed.as_ref().map_or(("fr", "fr-FR"), lead_language);
                    let template =
                        if lang == "fr" { &app.config.amd.message_fr } else { &app.config.amd.message_en };
                    let twiml = voicemail_twiml(template, &lead.first_name, say);
                    let r = app.twilio.redirect(call_sid, &twiml).await;
                    (
                        "voicemail-left",
                        format!("VOICEMAIL_POLICY=leave: message said in {say}, then hang-up"),
                        r,
                    )
                }
                (_, _) => {
                    let r = app.twilio.hang_up(call_sid).await;
                    ("voicemail-hangup", format!("VOICEMAIL_POLICY={policy}: hung up without a message"), r)
                }
            };
            match result {
                Ok(()) => {
                    Metrics::inc(&app.metrics.voicemails);
                    timeline(app, call_id, call_sid, status.into(), detail).await?;
                }
                Err(e) => {
                    tracing::error!(%call_id, %call_sid, error = %e, code = e.code(), "Twilio refused the voicemail update");
                    timeline(
                        app,
                        call_id,
                        call_sid,
                        "voicemail-failed".into(),
                        format!("Twilio: {}", e.code()),
                    )
                    .await?;
                }
            }
            retry::on_call_outcome(app, call_id, RetryReason::Voicemail).await.map(drop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_voicemail_twiml_escapes_the_name_and_says_the_language() {
        let t = voicemail_twiml(DEFAULT_MESSAGE_FR, " Zoé <script> ", "fr-FR");
        assert!(t.contains(r#"<Say language="fr-FR">Bonjour Zoé &lt;script&gt;, ici Callway."#), "{t}");
        assert!(t.ends_with("</Say><Hangup/></Response>"), "{t}");
    }

    #[test]
    fn every_answered_by_twilio_sends_has_a_verdict() {
        for (by, v) in [
            ("human", Verdict::Person),
            ("unknown", Verdict::Person),
            ("machine_start", Verdict::Machine),
            ("machine_end_beep", Verdict::Machine),
            ("machine_end_silence", Verdict::Machine),
            ("machine_end_other", Verdict::Machine),
            ("fax", Verdict::Fax),
        ] {
            assert_eq!(verdict(by), Some(v), "{by}");
        }
        assert_eq!(verdict("robot"), None);
    }

    #[test]
    fn configuration_is_read_with_one_message_per_bad_value() {
        let get = |k: &str| match k {
            "ANSWERING_MACHINE_DETECTION" => Some("on".to_owned()),
            "VOICEMAIL_POLICY" => Some("shout".to_owned()),
            "VOICEMAIL_MESSAGE_EN" => Some("x".repeat(601)),
            "VOICEMAIL_MESSAGE_FR" => Some("Bonjour {first_name}, à bientôt.".to_owned()),
            _ => None,
        };
        let mut r = EnvReader::new(&get);
        let cfg = read_config(&mut r);
        assert!(cfg.enabled);
        assert_eq!(cfg.message_fr, "Bonjour {first_name}, à bientôt.");
        let text = r.finish().unwrap_err().to_string();
        assert!(text.contains("VOICEMAIL_POLICY must be leave"), "{text}");
        assert!(text.contains("VOICEMAIL_MESSAGE_EN must be 1 to 600 characters (601 given)"), "{text}");
        let none = |_: &str| None;
        assert_eq!(read_config(&mut EnvReader::new(&none)), AmdConfig::default());
    }
}
