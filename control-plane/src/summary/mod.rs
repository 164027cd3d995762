//! The end-of-call summary: when a phone call ends with a transcript, a text model
//! (`SUMMARY_MODEL`, through OpenAI's Responses API with the server key; off when unset)
//! writes a short summary in the lead's language (goal, information confirmed, objections,
//! agreed next step), stored on the call (`calls.outcome_summary`) and shown with it.
//!
//! The next call to the same lead starts from it ([`context_for_call`], at token redemption).
//! A summary that failed, or was pending when the process stopped, is caught up by [`sweep`]:
//! the database says which ended calls have a transcript but no summary (durable across
//! restarts and shared by every control plane), and every [`SWEEP_EVERY`] each control plane
//! summarises those it finds. It never blocks the call's end: the gateway's last event batch is answered first, the
//! summary is asked for on a task of its own ([`after_call`]), retried with backoff when OpenAI
//! is unavailable or rate-limited. It is erased with the call (an erasure removes the row).
//!
//! - [`prompt`]: the instructions and the transcript as the model reads them (sans-IO);
//! - the request itself: [`crate::openai::OpenAiClient::respond`].

pub mod prompt;

use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::openai::OpenAiError;
use crate::record::{self, Numbers};
use crate::routes::SharedApp;

/// How often each control plane looks for ended calls still without a summary.
pub const SWEEP_EVERY: Duration = Duration::from_secs(300);
/// A call is left to its own task for this long after it was last updated (its retries take
/// 72 s) before a sweep takes it over.
pub const SWEEP_AFTER: Duration = Duration::from_secs(120);
/// How far back a sweep looks.
pub const SWEEP_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Calls summarised per sweep at most.
pub const SWEEP_LIMIT: u32 = 20;

/// Delays before each new attempt when OpenAI is unavailable or rate-limited.
pub const RETRY_DELAYS: [Duration; 3] =
    [Duration::from_secs(2), Duration::from_secs(10), Duration::from_secs(60)];

/// What became of one summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `SUMMARY_MODEL` is unset.
    Off,
    /// The call has no phone transcript: nothing to summarise.
    NoTranscript,
    /// Stored on the call.
    Stored(String),
    /// OpenAI refused or stayed unavailable after every retry (logged).
    Failed(String),
}

/// The context a new call to `lead_id` starts from: `web_summary`, followed by the summary of
/// the lead's latest earlier call that has one (so the agent knows what was agreed).
pub async fn context_for_call(app: &SharedApp, lead_id: Uuid, call_id: Uuid, web_summary: &str) -> String {
    let previous = match record::read::lead(&app.storage.store, lead_id, Numbers::Masked).await {
        Ok(Some(lead)) => lead.calls.into_iter().filter(|c| c.id != call_id).find_map(|c| c.outcome_summary),
        Ok(None) => None,
        Err(e) => {
            // The call goes on without it: a missing context is better than no call.
            tracing::warn!(%call_id, %lead_id, error = %e, "previous call summary unreadable; the call starts without it");
            None
        }
    };
    match previous {
        Some(p) => format!("{web_summary}\n\nRésumé de l'appel précédent :\n{p}"),
        None => web_summary.to_owned(),
    }
}

/// Summarises call `call_id` (to be spawned once its stream has ended): reads its transcript,
/// asks `SUMMARY_MODEL`, stores the text on the call.
pub async fn after_call(app: SharedApp, call_id: Uuid) -> Outcome {
    let Some(model) = app.config.summary_model.clone() else { return Outcome::Off };
    let rec = match record::read::call(&app.storage.store, call_id, Numbers::Masked).await {
        Ok(Some(r)) => r,
        Ok(None) => return Outcome::Failed("call not found".into()),
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let Some(input) = prompt::transcript(&rec) else { return Outcome::NoTranscript };
    let mut delays = RETRY_DELAYS.iter();
    let text = loop {
        match app.openai.respond(&model, prompt::INSTRUCTIONS_FR, &input).await {
            Ok(text) => break text,
            Err(e @ (OpenAiError::Unavailable(_) | OpenAiError::RateLimited)) => match delays.next() {
                Some(d) => {
                    tracing::warn!(%call_id, error = %e, retry_in_secs = d.as_secs(), "end-of-call summary: OpenAI unavailable; will retry");
                    tokio::time::sleep(*d).await;
                }
                None => {
                    tracing::error!(%call_id, error = %e, "end-of-call summary given up after every retry");
                    return Outcome::Failed(e.to_string());
                }
            },
            Err(e) => {
                tracing::error!(%call_id, error = %e, %model, "end-of-call summary refused by OpenAI: check SUMMARY_MODEL and the key");
                return Outcome::Failed(e.to_string());
            }
        }
    };
    match app.storage.store.set_outcome_summary(call_id, &text, OffsetDateTime::now_utc()).await {
        Ok(()) => {
            tracing::info!(%call_id, lead_id = %rec.lead.id, call_sid = rec.call.call_sid.as_deref().unwrap_or(""), chars = text.chars().count(), "end-of-call summary stored");
            Outcome::Stored(text)
        }
        Err(e) => {
            tracing::error!(%call_id, error = %e, "end-of-call summary not stored");
            Outcome::Failed(e.to_string())
        }
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Calls found without a summary.
    pub found: usize,
    /// Summaries stored.
    pub stored: usize,
}

/// Summarises the calls that ended in the last [`SWEEP_WINDOW`] (and at least [`SWEEP_AFTER`]
/// before `now`) with a transcript but no summary.
pub async fn sweep(app: &SharedApp, now: OffsetDateTime) -> SweepReport {
    if app.config.summary_model.is_none() {
        return SweepReport::default();
    }
    let (since, until) = (now - SWEEP_WINDOW, now - SWEEP_AFTER);
    let ids = match app.storage.store.calls_awaiting_summary(since, until, SWEEP_LIMIT).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "summary sweep: calls without a summary unreadable; next sweep will retry");
            return SweepReport::default();
        }
    };
    let mut report = SweepReport { found: ids.len(), stored: 0 };
    for id in ids {
        if let Outcome::Stored(_) = after_call(app.clone(), id).await {
            report.stored += 1;
        }
    }
    if report.found > 0 {
        tracing::info!(found = report.found, stored = report.stored, "summary sweep");
    }
    report
}

/// Sweeps every [`SWEEP_EVERY`], forever (spawned by [`crate::spawn_background`]).
pub async fn run_sweeper(app: SharedApp) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        sweep(&app, OffsetDateTime::now_utc()).await;
    }
}
