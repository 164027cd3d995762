//! Leads and calls with a whole story, written through the store as the routes write them:
//! for the record's tests (CLI, operator page).

use callway_control::store::{EventsWrite, NewCall, NewLead, StatusUpdate, Store, Write};
use contract::internal_api::{CallEvent, Side, Speaker, TranscriptLine};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The called lead's number.
pub const NUMBER: &str = "+33612345678";
/// The end-of-call summary written on the seeded call.
pub const OUTCOME: &str = "Objectif : démonstration.\nProchaine étape : lundi 10 h.";
/// The call's Twilio SID.
pub const CALL_SID: &str = "CA0123456789abcdef0123456789abcdef";

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_796_000_000).unwrap()
}

fn new_lead(first: &str, phone: &str, at: OffsetDateTime) -> NewLead {
    NewLead {
        id: Uuid::new_v4(),
        session_id: Some(Uuid::new_v4()),
        first_name: first.into(),
        last_name: "Durand".into(),
        phone_e164: phone.into(),
        source: "web".into(),
        consent_text: "v1: j'accepte d'être rappelée".into(),
        at,
    }
}

fn status(call_id: Uuid, s: &str, source: &str, at: OffsetDateTime) -> Write {
    Write::RecordStatus(StatusUpdate {
        call_id,
        call_sid: Some(CALL_SID.into()),
        status: s.into(),
        source: source.into(),
        detail: (s == "completed").then(|| "CallDuration=9".into()),
        at,
    })
}

/// Two leads (the older with a finished call, the newer without) and the call's id.
pub struct Seeded {
    /// The older lead, called once (completed, with a transcript).
    pub called: NewLead,
    /// The newer lead, never called.
    pub fresh: NewLead,
    /// The call.
    pub call_id: Uuid,
}

/// Writes the story into `s`.
/// The web conversation the seeded call was asked from.
pub fn web_lines() -> Vec<TranscriptLine> {
    vec![
        TranscriptLine { speaker: Speaker::Agent, text: "Bonjour, je suis Claire.".into() },
        TranscriptLine { speaker: Speaker::Caller, text: "Rappelez-moi pour une démo.".into() },
    ]
}

pub async fn seed(s: &Store) -> Seeded {
    let called = new_lead("Camille", NUMBER, t0());
    let fresh = new_lead("Hugo", "+32470123456", t0() + Duration::minutes(5));
    s.apply(&Write::UpsertLead(called.clone())).await.unwrap();
    s.apply(&Write::UpsertLead(fresh.clone())).await.unwrap();
    let call_id = Uuid::new_v4();
    s.create_call(&NewCall {
        id: call_id,
        lead_id: called.id,
        session_id: called.session_id,
        summary: "Veut une démo lundi.".into(),
        stream_nonce: Uuid::new_v4().simple().to_string(),
        token_expires_at: t0() + Duration::minutes(2),
        attempt: 1,
        web_transcript: web_lines(),
        at: t0() + Duration::seconds(1),
    })
    .await
    .unwrap();
    for (st, src, sec) in [
        ("queued", "twilio-call", 1),
        ("ringing", "twilio-call", 2),
        ("in-progress", "twilio-call", 4),
        ("stream-started", "twilio-stream", 4),
        ("stream-stopped", "twilio-stream", 14),
        ("completed", "twilio-call", 14),
    ] {
        s.apply(&status(call_id, st, src, t0() + Duration::seconds(sec))).await.unwrap();
    }
    s.redeem(call_id, "not-this-nonce", None, t0()).await.unwrap();
    s.apply(&Write::AppendEvents(EventsWrite {
        call_id,
        seq: 0,
        events: vec![
            CallEvent::Transcript {
                speaker: Speaker::Agent,
                text: "Bonjour Camille, ici Léa.".into(),
                at_ms: 300,
            },
            CallEvent::Transcript { speaker: Speaker::Caller, text: "Bonjour !".into(), at_ms: 2_100 },
            CallEvent::Usage {
                response_id: "resp_1".into(),
                input_tokens: 150,
                output_tokens: 90,
                details: None,
            },
            CallEvent::Ended { side: Side::Twilio, reason: "caller_hung_up".into(), duration_ms: 9_800 },
        ],
        at: t0() + Duration::seconds(14),
    }))
    .await
    .unwrap();
    s.set_outcome_summary(call_id, OUTCOME, t0() + Duration::seconds(15)).await.unwrap();
    Seeded { called, fresh, call_id }
}
