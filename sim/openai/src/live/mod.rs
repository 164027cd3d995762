//! GPT-Live (`protocols.md` G) as a second front end of the simulator: `GET /v1/live/sessions`
//! upgraded to a WebSocket, or `POST /v1/live/sessions` with a browser's SDP offer (WebRTC:
//! `create.rs`, `webrtc.rs`, over the Realtime WebRTC transport of `crate::rtc`), the same
//! scripted agent as the Realtime endpoint (replies, tool
//! calls on a user turn, the caller's transcripts, the energy detector, the conversation store)
//! behind another protocol. Models `gpt-live-1`, `gpt-live-1.1` (any `gpt-live-*`); a Realtime
//! model is refused with `invalid_model`, as a Live model is on `/v1/realtime`.
//!
//! Does, as the real API:
//! - the handshake: `Authorization: Bearer` with the server key (no ephemeral keys: Live has
//!   none), OpenAI's 400/401 bodies, the `RefuseHandshake` fault; no subprotocol;
//! - refuses every event before `session.start` (`error` `session_not_started`), and every
//!   event but `session.start` until `session.started` is sent;
//! - checks each client event against the vendored Live client schema (an unknown field is
//!   `unknown_parameter` with its dotted path, the session carries on) and records the
//!   violations ([`crate::LiveRecord::client_schema_violations`]); checks `session.start`
//!   further: the model, the format's rate (µ-law and A-law at 8000, PCM at 16000 or 24000),
//!   instructions ≤ 16 384 tokens, input history ≤ 128 messages;
//! - `session.started` with the resolved session (`id`, `expires_at`, `status`, the format and
//!   voice, the delegation); `session.update` changes the delegation only (`session.updated`;
//!   model, instructions, audio, input, store or client → `immutable_field_update`);
//! - never acknowledges `session.input_audio.append`; `mute`/`unmute` are acknowledged
//!   (`session.input_audio.muted`/`.unmuted`) and a muted caller is heard as silence;
//! - streams `session.output_audio.delta` (type and delta only, no id, no timestamps)
//!   continuously at real-time pace, one `chunk_ms` chunk ([`crate::SimConfig::chunk_ms`],
//!   100 ms by default) at a time, silence included (`0xFF` in µ-law), only while the caller's
//!   audio keeps coming (at most 200 ms ahead of it);
//! - stops talking by itself when the caller's audio turns loud (the Realtime simulator's
//!   energy detector), never starts while the caller talks, and answers when the caller's turn
//!   ends (500 ms of silence);
//! - `session.input_transcript.delta` (a word each, at the end of the caller's turn) and
//!   `session.output_transcript.delta` (with the audio that says the words) carrying
//!   `start_ms`/`end_ms` on the session timeline; no `.done`, no turn boundaries;
//! - `session.instructions.appended`, `.thinking.appended`, `.commentary.appended` with the
//!   `client_event_id` and the timeline position; a commentary makes the agent speak (the next
//!   scripted reply: the greeting after `session.started`); `delegation_id` is required (G),
//!   null or naming a delegation of the session; each text at most 500 tokens;
//! - delegation: with `{"type":"client"}` a scripted tool call is `session.delegation.created`
//!   (target `client`, no task text), and the application's `session.commentary.append` makes
//!   the agent speak the result; with `{"type":"responses"}` it is `session.delegation.created`
//!   (target `responses`, `response_id`) then the Responses stream in `response.event
//!   {event, delegation_id}`, the function call in a nested `response.output_item.done`; the
//!   application answers `response.item.create` (`function_call_output`, never acknowledged)
//!   then `response.create`, which streams a Responses message (or the next call scripted for
//!   the turn) and the agent speaks the reply; interrupting the agent does not cancel it;
//! - `session.usage.updated {usage:{seconds}}`, cumulative, every 60 s of session;
//! - `session.closed {reason, session, usage}`: `close_requested` after `session.close` (then
//!   close 1000), `expired` at the session cap ([`crate::SimConfig::session_cap`], then close
//!   1001); `connection_lost` is recorded ([`crate::LiveRecord::closed_reason`]) when the
//!   socket goes without `session.close`;
//! - faults: `DropAfter`, `CloseAfter`, `StallAfter` as on Realtime, and the Live ones
//!   `ErrorAfter` (a `server_error` `error` event) and `SlowStart` (`session.started` late);
//! - every server event checked against the vendored Live server schema before it is sent
//!   ([`crate::SessionRecord::schema_violations`] stays empty).
//!
//! - WebRTC: `POST /v1/live/sessions` `{session, transport:{type:"webrtc", sdp}}` with the
//!   project key answers `{session:{id}, transport:{type:"webrtc", sdp}}`; the session starts
//!   with the request, `session.started` goes out when the data channel opens, audio is on the
//!   Opus track both ways, and `session.client.data_channel` restricts what the page may send
//!   and see (details in `create.rs` and `webrtc.rs`);
//!
//! Does not (and why):
//! - the sideband `/attach` socket, SIP and its `transport.*` events, `info`, the WebRTC
//!   standby rate of `gpt-live-1.1`: Callway's page forwards tool calls itself (see the
//!   control plane's `openai` module) and the phone path is a WebSocket;
//! - `decisions` delegation and `decision.*` events, `triggers` beyond echoing them, audio
//!   fixtures (`session.output_audio.fixture.play`): answered with `error`
//!   `unsupported_by_simulator`, Callway does not use them;
//! - a model: what is said is the script, whatever the instructions, commentary or input
//!   history say; the session's `content` close reason never happens; no
//!   `context_window` in usage; speech is energy, not words;
//! - echo mode ([`crate::SimConfig::echo`]) and response pacing
//!   ([`crate::SimConfig::speed`]) apply to Realtime only: Live audio is always real time.
//!
//! Codes G does not give (`session_not_started`, `session_already_started`,
//! `string_above_max_length`, `array_above_max_length`, `missing_tool_output`,
//! `invalid_request`, `unsupported_by_simulator`) are the simulator's choice, and so are the
//! default format (`audio/pcm` 24000) and voice (`marin`), the `del_` prefix of delegation
//! ids, and the acknowledgements' `start_ms` = `end_ms` = the timeline position on receipt.
//!
//! Layout: `mod.rs` (the handshake), `driver.rs` (the socket loop, faults, the record),
//! `create.rs` (`POST /v1/live/sessions`, WebRTC), `webrtc.rs` (the session on a WebRTC call),
//! `session.rs` (the behaviour), `config.rs` (`session.start`/`session.update`, formats),
//! `responses.rs` (the delegated Responses stream), `schema.rs` (the vendored schemas).

pub mod schema;

mod config;
mod create;
mod driver;
mod responses;
mod session;
mod webrtc;

pub(crate) use create::create;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::faults::SessionFaults;
use crate::http::{Body, authenticate, json_response};
use crate::server::{
    accept_socket, check_upgrade, handshake_recorder, new_record, refuse_upgrade, switching_protocols,
};
use crate::state::{Shared, lock};
use driver::LiveCtx;
use session::{LiveSession, LiveSettings};

/// `GET /v1/live/sessions`: checks the upgrade and the key, applies a handshake refusal fault,
/// then hands the socket to a new Live session.
pub(crate) fn handshake(mut req: Request<Incoming>, shared: &Arc<Shared>) -> Response<Body> {
    let record = handshake_recorder(&req, shared);
    let key = match check_upgrade(&req) {
        Ok(key) => key,
        Err(message) => {
            record(400);
            return refuse_upgrade(message);
        }
    };
    let auth = match authenticate(shared, req.headers(), false) {
        Ok((auth, _)) => auth,
        Err((status, body)) => {
            record(status);
            return json_response(status, &body);
        }
    };
    let (session, ctx_parts, refusal) = {
        let mut live = lock(&shared.live);
        let refusal = live.take_refusal(true);
        let c = &live.config;
        let faults = SessionFaults::from_list(&c.faults);
        let now = shared.clock.unix_secs();
        let settings = LiveSettings {
            script: c.script.clone(),
            chunk_ms: c.chunk_ms,
            ttfb: c.ttfb,
            slow_start: faults.slow_start.unwrap_or_default(),
            expires_at: now + c.session_cap.as_secs(),
            unix_at_accept: now,
        };
        (LiveSession::new(settings), (faults, c.session_cap, c.record_events, c.check_outgoing), refusal)
    };
    if let Some(r) = refusal {
        record(r.status());
        return json_response(r.status(), &r.body());
    }
    let beta = req.headers().contains_key("openai-beta");
    let rec = new_record(shared, &session.id, String::new(), auth, beta, None);
    record(101);
    let (faults, cap, record_events, check_outgoing) = ctx_parts;
    let ctx =
        LiveCtx { shared: shared.clone(), record: rec.clone(), faults, cap, record_events, check_outgoing };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Some(ws) = accept_socket(on_upgrade, &rec, &ctx.shared).await {
            driver::run(ws, session, ctx).await;
        }
    });
    switching_protocols(&key, None)
}
