//! A faithful stand-in for Twilio, for Callway's tests, benches and demo (Twilio cannot be
//! reached from the test machines).
//!
//! - [`caller`]: the caller's side of a bidirectional Media Stream (`<Connect><Stream>`):
//!   signed WebSocket upgrade, `connected`/`start`/`media`/`dtmf`/`stop` with Twilio's exact
//!   shapes, playback of what the server sends (marks echoed when played, `clear` honoured),
//!   Twilio's warnings for invalid messages, handshake failures as 319xx codes, and a report.
//! - [`api`]: the REST API (`Calls.json`, call update, `OutgoingCallerIds.json`) with Twilio's
//!   validation and error JSON, trial mode, ring delay and per-number outcomes; it places the
//!   calls (TwiML → caller) and sends signed status callbacks ([`callbacks`]).
//! - [`twiml`]: the TwiML subset a call runs (`<Connect><Stream>`, `<Parameter>`, `<Hangup/>` …).
//! - [`playback`], [`audio`], [`sids`], [`codes`]: the pieces underneath.
//! - [`cli`]: `callway-sim twilio-call` and `callway-sim twilio-api`.
//!
//! Protocol facts come from `shared/protocols.md` (sections A and B); signatures use the
//! `contract` crate's `TwilioSigner`.
//!
//! Spawning the REST simulator and reading its callbacks:
//! ```no_run
//! # async fn demo() {
//! use callway_sim_twilio::api::{ApiConfig, TwilioApiSim};
//! let sim = TwilioApiSim::spawn(ApiConfig::default()).await.unwrap();
//! // POST {sim.calls_url()} with Basic auth (sim.account_sid(), sim.auth_token()) …
//! let calls = sim.calls();
//! if let Some(call) = calls.first() {
//!     let done = sim.wait_call_finished(&call.sid).await;
//!     for cb in sim.callbacks() {
//!         println!("{} {:?} -> {:?}", cb.url, cb.params, cb.http_status);
//!     }
//!     println!("{:?}", done.status);
//! }
//! # }
//! ```
//!
//! Running one caller against a URL:
//! ```no_run
//! # async fn demo() {
//! use callway_sim_twilio::caller::{CallerConfig, run_call};
//! let mut cfg = CallerConfig::new("ws://127.0.0.1:8080/api/twilio/media-stream/tok", "auth-token");
//! cfg.custom_parameters.push(("lead_id".into(), "42".into()));
//! let report = run_call(cfg).await;
//! println!("{}", report.summary());
//! # }
//! ```

pub mod api;
pub mod audio;
pub mod callbacks;
pub mod caller;
pub mod cli;
pub mod codes;
pub mod playback;
pub mod sids;
pub mod time;
pub mod twiml;
