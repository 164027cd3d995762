//! What the sales team and the operator read about leads and calls: one read model, filled
//! from whichever store is configured (PostgreSQL, SQLite, Supabase REST), shown by the CLI
//! (`callway-control leads | lead <id> | call <id>`, [`crate::cli`]) and by the operator page
//! (`/admin`, [`crate::admin`]).
//!
//! - [`read`]: the three reads, dispatched to the backend; numbers masked unless
//!   [`Numbers::Revealed`];
//! - [`sql`] and [`supabase`]: the queries of each backend (read-only);
//! - [`call_view`]: a call's rows turned into a timeline, a dialogue, durations and usage
//!   (sans-IO, unit-tested);
//! - [`text`]: the CLI's plain-text rendering.
//!
//! Ids are always their text form (`0b6f9a8e-…`), times RFC 3339 in UTC; the JSON shapes are the
//! ones `--json` prints and the operator page reads.

pub mod call_view;
pub mod read;
pub mod sql;
pub mod supabase;
pub mod text;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

pub use call_view::{CallRecord, DialogueLine, Durations, TimelineItem, Usage};

/// Whether phone numbers are shown in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbers {
    /// `+33******78` (the default everywhere).
    Masked,
    /// In full (`--reveal`; the operator page never reveals).
    Revealed,
}

impl Numbers {
    /// `e164` as this setting shows it.
    pub fn show(self, e164: &str) -> String {
        match self {
            Numbers::Masked => crate::phone::mask(e164),
            Numbers::Revealed => e164.to_owned(),
        }
    }
}

/// A call in a list: what it came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallBrief {
    /// Call id.
    pub id: Uuid,
    /// Latest status (`completed`, `busy`, `in-progress`, …).
    pub status: String,
    /// Which attempt to reach the lead (1 = the call the prospect asked for).
    pub attempt: u32,
    /// Why the stream ended (`caller_hung_up`, `agent_ended`, …), once known.
    pub end_reason: Option<String>,
    /// Milliseconds of stream, once ended.
    pub duration_ms: Option<i64>,
    /// The end-of-call summary (`SUMMARY_MODEL`), once written.
    pub outcome_summary: Option<String>,
    /// When it was asked for.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One lead in the list, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeadListItem {
    /// Lead id.
    pub id: Uuid,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// The number, masked unless revealed.
    pub phone: String,
    /// `web`, `phone`.
    pub source: String,
    /// When the prospect gave consent to be called.
    #[serde(with = "time::serde::rfc3339")]
    pub consent_at: OffsetDateTime,
    /// When the lead was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// How many calls it had.
    pub calls: i64,
    /// Its latest call.
    pub last_call: Option<CallBrief>,
}

/// A lead in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeadDetail {
    /// Lead id.
    pub id: Uuid,
    /// The web session that created it.
    pub session_id: Option<Uuid>,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// The number, masked unless revealed.
    pub phone: String,
    /// `web`, `phone`.
    pub source: String,
    /// When the prospect gave consent.
    #[serde(with = "time::serde::rfc3339")]
    pub consent_at: OffsetDateTime,
    /// The wording consented to.
    pub consent_text: String,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last changed (a correction on the phone, a new visit).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A scheduled, placed or cancelled retry of a lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryView {
    /// Which attempt it is.
    pub attempt: u32,
    /// Why (`busy`, `no-answer`, `failed`).
    pub reason: String,
    /// `scheduled`, `placed`, `cancelled`, …
    pub state: String,
    /// When it may ring.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// The call it placed.
    pub call_id: Option<Uuid>,
    /// Why it was cancelled or failed, or how it was placed.
    pub detail: Option<String>,
}

/// A lead, its calls (newest first) and its retries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadRecord {
    /// The lead.
    pub lead: LeadDetail,
    /// Its calls, newest first.
    pub calls: Vec<CallBrief>,
    /// Its retries, oldest first.
    pub retries: Vec<RetryView>,
    /// Its calls' costs and their sum, with `PRICES_FILE` ([`read::lead_priced`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::CostReport>,
}

impl From<crate::store::RetryRow> for RetryView {
    fn from(r: crate::store::RetryRow) -> Self {
        RetryView {
            attempt: r.attempt,
            reason: r.reason,
            state: r.state,
            due_at: r.due_at,
            call_id: r.call_id,
            detail: r.detail,
        }
    }
}
