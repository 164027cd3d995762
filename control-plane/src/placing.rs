//! Placing one outbound call: mint the stream token, store the call (the database refuses a
//! second active call for the lead), ask Twilio to call with the `<Connect><Stream>` TwiML, and
//! record the outcome on the call's timeline. Shared by the web `trigger_call` (the callback the
//! prospect just asked for) and the retry worker ([`crate::retry`]); each turns a
//! [`PlaceError`] into its own answer.

use contract::stream_token::StreamClaims;
use ring::rand::SecureRandom as _;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::phone;
use crate::routes::{App, now_secs};
use crate::store::{NewCall, StatusUpdate, StoreError, Write};
use crate::twilio::{CreateCall, TwilioError, connect_stream_twiml};

/// What to call.
#[derive(Debug, Clone)]
pub struct PlaceCall<'a> {
    /// The lead.
    pub lead_id: Uuid,
    /// The web session that asked (kept on the call).
    pub session_id: Option<Uuid>,
    /// Summary of the web conversation (the phone agent's context).
    pub summary: &'a str,
    /// The web conversation itself, as the page saw it (empty if none), already bounded
    /// ([`contract::internal_api::bound_web_transcript`]).
    pub web_transcript: &'a [contract::internal_api::TranscriptLine],
    /// E.164 destination, already checked against the call policy.
    pub to_e164: &'a str,
    /// Detail of the `queued` timeline line (`Calls.create`, `Calls.create (retry attempt 2)`).
    pub detail: &'a str,
    /// 1 for the call the prospect asked for, then 2, 3 for retries.
    pub attempt: u32,
}

/// A call Twilio accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Our call id.
    pub call_id: Uuid,
    /// Twilio's `CallSid`.
    pub call_sid: String,
}

/// Why a call was not placed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// The lead already has a call in progress (the database's one-active-call rule).
    #[error("the lead already has a call in progress")]
    ActiveCall,
    /// The call could not be stored.
    #[error("{0}")]
    Storage(StoreError),
    /// Twilio refused or failed; the call is stored with status `failed`.
    #[error("Twilio: {error}")]
    Twilio {
        /// Our call id (its timeline says `failed`).
        call_id: Uuid,
        /// What Twilio said.
        error: TwilioError,
    },
    /// A local failure (random generator, TwiML).
    #[error("{code}: {message}")]
    Internal {
        /// Stable code.
        code: &'static str,
        /// What failed.
        message: String,
    },
}

/// Places the call described by `req` (see the module doc).
pub async fn place_call(app: &App, req: &PlaceCall<'_>) -> Result<Placed, PlaceError> {
    let call_id = Uuid::new_v4();
    let mut nonce = [0u8; 12];
    app.rng.fill(&mut nonce).map_err(|_| PlaceError::Internal {
        code: "rng_failed",
        message: "system random number generator failed".into(),
    })?;
    let expires_at = now_secs() + app.config.stream_token_ttl_secs;
    let token = app.minter.mint(&StreamClaims {
        call_id: *call_id.as_bytes(),
        lead_id: *req.lead_id.as_bytes(),
        expires_at,
        nonce,
    });
    let at = OffsetDateTime::now_utc();
    let call = NewCall {
        id: call_id,
        lead_id: req.lead_id,
        session_id: req.session_id,
        summary: req.summary.to_owned(),
        stream_nonce: crate::routes::web::hex(&nonce),
        token_expires_at: OffsetDateTime::from_unix_timestamp(expires_at as i64).unwrap_or(at),
        attempt: req.attempt,
        web_transcript: req.web_transcript.to_vec(),
        at,
    };
    match app.storage.store.create_call(&call).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(PlaceError::ActiveCall),
        Err(e) => return Err(PlaceError::Storage(e)),
    }

    let base = &app.config.public_app_url;
    let twiml = connect_stream_twiml(
        &app.config.stream_url(&token),
        Some(&format!("{base}/twilio/stream-status?call_id={call_id}")),
        &[("call_id", &call_id.to_string()), ("lead_id", &req.lead_id.to_string())],
    )
    .map_err(|e| {
        tracing::error!(error = %e, "TwiML");
        PlaceError::Internal { code: "twiml_invalid", message: e.to_string() }
    })?;
    let status_callback = format!("{base}/twilio/status?call_id={call_id}");
    let amd_callback = format!("{base}/twilio/amd?call_id={call_id}");
    let created = app
        .twilio
        .create_call(&CreateCall {
            to: req.to_e164,
            from: &app.config.twilio_phone_number_from,
            twiml: &twiml,
            status_callback: &status_callback,
            timeout_secs: 30,
            time_limit_secs: app.config.twilio_call_time_limit_secs,
            amd_callback: app.config.amd.enabled.then_some(amd_callback.as_str()),
        })
        .await;
    match created {
        Ok(c) => {
            Metrics::inc(&app.metrics.calls_placed);
            tracing::info!(%call_id, lead_id = %req.lead_id, call_sid = %c.sid, to = %phone::mask(req.to_e164), "call placed");
            let update = StatusUpdate {
                call_id,
                call_sid: Some(c.sid.clone()),
                status: c.status.clone(),
                source: "twilio-call".into(),
                detail: Some(req.detail.to_owned()),
                at: OffsetDateTime::now_utc(),
            };
            if let Err(e) = app.storage.write(Write::RecordStatus(update)).await {
                tracing::error!(%call_id, error = %e, "could not record the call sid");
            }
            Ok(Placed { call_id, call_sid: c.sid })
        }
        Err(e) => {
            let update = StatusUpdate {
                call_id,
                call_sid: None,
                status: "failed".into(),
                source: "control-plane".into(),
                detail: Some(format!("{}: {e}", e.code())),
                at: OffsetDateTime::now_utc(),
            };
            if let Err(se) = app.storage.write(Write::RecordStatus(update)).await {
                tracing::error!(%call_id, error = %se, "could not record the failed call");
            }
            Err(PlaceError::Twilio { call_id, error: e })
        }
    }
}
