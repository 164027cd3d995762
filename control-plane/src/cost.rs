//! The cost of each call (issue 13, item 4), the control plane's side: a price table
//! (`PRICES_FILE`, [`prices`]), Twilio's billed duration from the `completed` status callback
//! (`CallDuration`, recorded on the call's timeline), what the gateway reports of OpenAI's
//! usage (summed on the call's row as its events are stored, [`crate::store::CallUsage`]), the
//! cost of a call, of a lead's calls and of the recent calls computed from those stored facts
//! (`callway-control calls --cost`, `call <id>`, `lead <id>`, the operator page), and
//! Prometheus counters.
//!
//! # `PRICES_FILE`
//! JSON, amounts in `currency` per unit:
//! ```json
//! {
//!   "currency": "EUR",
//!   "openai": {
//!     "gpt-realtime-2.1": {
//!       "input_per_million": 4.0, "output_per_million": 16.0,
//!       "audio_input_per_million": 32.0, "cached_input_per_million": 0.4,
//!       "cached_audio_input_per_million": 0.4, "audio_output_per_million": 64.0
//!     },
//!     "gpt-realtime": { "input_per_million": 32.0, "output_per_million": 64.0 },
//!     "gpt-live-1.1": { "per_minute": 0.05 }
//!   },
//!   "twilio_per_minute": { "FR": 0.0135, "BE": 0.02, "sip": 0.004, "default": 0.05 }
//! }
//! ```
//! - `openai` is per model, and a model is priced one way only:
//!   - a **Realtime** model by token, per million: `input_per_million` and
//!     `output_per_million` (required: text, and every token whose split the gateway did not
//!     report), and optionally `audio_input_per_million` (uncached audio input; absent: the
//!     input price), `cached_input_per_million` (cached text input; absent: the input price),
//!     `cached_audio_input_per_million` (absent: the cached input price, else the input
//!     price), `audio_output_per_million` (absent: the output price). A table with the two
//!     required prices only prices every token as it always did;
//!   - a **GPT-Live** model (`gpt-live-*`) by time: `per_minute` or `per_second` of session,
//!     silence included (protocols.md §G), from the call's Live seconds.
//!
//!   A model priced both ways, or the wrong way for its API (token prices would price a Live
//!   call at 0), is refused at start with a message naming the entry; so is a table without a
//!   price for the configured model (`OPENAI_REALTIME_MODEL` or `OPENAI_LIVE_MODEL`).
//! - `twilio_per_minute` per destination country (ISO 3166 code of the lead's number,
//!   `default` for the others); Twilio bills outbound voice per started minute. A warm
//!   transfer ([`crate::transfer`]) is a second outbound leg Twilio bills on its own: the
//!   `DialCallDuration` of the call's `transfer-completed` line, priced per started minute at
//!   the transfer target's country, or at the `sip` entry for a SIP target (`default` when
//!   absent), counted in the call's Twilio part (`transfer_seconds`).
//!
//! Amounts are kept in millionths of the currency (micros), so sums are exact; each token part
//! is rounded to the micro, then added.
//!
//! # Which model a call is priced at
//! The one its `engine` event names (the gateway reports it when the call's first session
//! opens, stored on the call's row), so calls placed before a model change keep their model.
//! Only a call with usage and no `engine` event (a gateway older than that event) is priced at
//! the configured model. A model the table has no price for gives an OpenAI part of 0, and the
//! cost says so (`unpriced`).
//!
//! # What the gateway reports, what is stored
//! - Realtime: `CallEvent::Usage` per response: `input_tokens`, `output_tokens` and, from
//!   gateways that have it, `details` (input audio, cached, cached audio, output audio; each a
//!   subset of the totals). Summed on the call's row (`input_audio_tokens`,
//!   `input_cached_tokens`, `input_cached_audio_tokens`, `output_audio_tokens`); an event
//!   without a split (an older gateway) adds to the totals only, so its tokens are priced at
//!   the input and output prices as before; a split that does not fit its totals is left out
//!   and logged.
//! - GPT-Live: `CallEvent::LiveUsage { seconds }`, cumulative over the call's sessions; the
//!   largest (the last) is the call's `live_seconds`.
//!
//! # Counters
//! `callway_openai_{input,output}_tokens_total`, `callway_openai_live_seconds_total`,
//! `callway_call_cost_openai_micros_total` (Realtime tokens and Live seconds) count what the
//! store actually inserted ([`counter`], told by [`crate::store::Storage::on_appended`] when a
//! batch is applied, at once or replayed from the outbox), so a batch the gateway sends again
//! is counted once. The OpenAI cost counted is the call's cost after the batch minus before,
//! so the counter's sum is the sum of the calls' costs. `callway_twilio_billed_seconds_total`
//! and `callway_call_cost_twilio_micros_total` count Twilio's `completed` callback of each call
//! once ([`on_twilio_completed`]).

pub mod prices;

pub use prices::{ModelPrice, PriceTable, TimePrice, TokenParts, TokenPrices};

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::record::Numbers;
use crate::routes::App;
use crate::store::outbox::AppendedHook;
use crate::store::{Appended, CallUsage, Store, StoreError};

/// Amounts: one call's, or a sum.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cost {
    /// ISO 4217.
    pub currency: String,
    /// Seconds Twilio billed (its `CallDuration`).
    pub twilio_seconds: u64,
    /// Seconds of the transferred leg (`DialCallDuration`), billed besides the call.
    pub transfer_seconds: u64,
    /// Twilio's part (the call and its transferred leg), millionths of the currency.
    pub twilio_micros: u64,
    /// Realtime tokens in.
    pub input_tokens: u64,
    /// Realtime tokens out.
    pub output_tokens: u64,
    /// GPT-Live seconds of session.
    pub live_seconds: f64,
    /// OpenAI's part, millionths of the currency (0 when the model has no price).
    pub openai_micros: u64,
    /// Both parts.
    pub total_micros: u64,
}

impl Cost {
    fn add(&mut self, o: &Cost) {
        self.twilio_seconds += o.twilio_seconds;
        self.transfer_seconds += o.transfer_seconds;
        self.twilio_micros += o.twilio_micros;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.live_seconds += o.live_seconds;
        self.openai_micros += o.openai_micros;
        self.total_micros += o.total_micros;
    }
}

/// What one call's cost is computed from (a backend reads it, [`crate::record::read::cost_rows`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CostRow {
    /// The call.
    pub call_id: Uuid,
    /// Its lead.
    pub lead_id: Uuid,
    /// The lead's number (in full: its country sets Twilio's price; shown masked).
    pub phone_e164: String,
    /// When the call was asked for.
    pub created_at: OffsetDateTime,
    /// Latest status.
    pub status: String,
    /// What the gateway reported.
    pub usage: CallUsage,
    /// Twilio's `CallDuration` (0 until the `completed` callback).
    pub twilio_seconds: u64,
    /// The transferred leg's `DialCallDuration` (0 without a transfer taken).
    pub transfer_seconds: u64,
}

/// One call's cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallCost {
    /// The call.
    pub call_id: Uuid,
    /// Its lead.
    pub lead_id: Uuid,
    /// The lead's number, masked unless revealed.
    pub phone: String,
    /// When the call was asked for.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Latest status.
    pub status: String,
    /// `realtime` or `live` (`None`: the call never reached OpenAI).
    pub engine: Option<String>,
    /// The model priced.
    pub model: Option<String>,
    /// `call` (its `engine` event) or `configured` (a call from an older gateway).
    pub model_source: Option<&'static str>,
    /// Realtime tokens by how they are priced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenParts>,
    /// Why the OpenAI part is 0 although the call used OpenAI (its model has no price).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpriced: Option<String>,
    /// The amounts.
    #[serde(flatten)]
    pub cost: Cost,
}

/// Calls' costs and their sum.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    /// ISO 4217.
    pub currency: String,
    /// The calls, newest first.
    pub calls: Vec<CallCost>,
    /// Their sum.
    pub total: Cost,
}

/// Which calls a report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallFilter {
    /// Only this lead's calls.
    pub lead: Option<Uuid>,
    /// Only this call.
    pub call: Option<Uuid>,
    /// Only calls asked for at or after this time.
    pub since: Option<OffsetDateTime>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// What pricing needs beyond the stored facts.
#[derive(Debug, Clone)]
pub struct Pricing<'a> {
    /// The table.
    pub prices: &'a PriceTable,
    /// The configured engine: the model of a call whose gateway did not name one.
    pub engine: &'a contract::voice_api::VoiceEngine,
    /// For numbers without a country code.
    pub region: phonenumber::country::Id,
    /// The price key of the warm transfer's target (its country, or `sip`).
    pub transfer_key: Option<String>,
}

/// What `PRICES_FILE` unset means, for an operator asking for costs.
pub const NO_PRICES: &str = "PRICES_FILE is not set, so calls have no cost: point it at a JSON price table \
    (README.md, \"The cost of a call\"; format in control-plane/src/cost.rs) and run the command again";

impl<'a> Pricing<'a> {
    /// From the configuration; `None` without `PRICES_FILE`.
    pub fn of(config: &'a Config) -> Option<Pricing<'a>> {
        Some(Pricing {
            prices: config.prices.as_ref()?,
            engine: &config.voice_engine,
            region: config.default_phone_region,
            transfer_key: transfer_key(config),
        })
    }

    /// The destination country of `e164`.
    fn country(&self, e164: &str) -> Option<String> {
        crate::phone::parse_phone(e164, self.region).ok()?.region.map(|r| r.as_ref().to_owned())
    }

    /// One call's cost.
    pub fn call(&self, row: CostRow, numbers: Numbers) -> CallCost {
        let u = &row.usage;
        let used = u.input_tokens + u.output_tokens > 0 || u.live_seconds > 0.0;
        let (engine, model, source) = match (&u.engine_api, &u.engine_model) {
            (Some(api), Some(model)) => (Some(api.clone()), Some(model.clone()), Some("call")),
            _ if used => (
                Some(self.engine.api.as_str().to_owned()),
                Some(self.engine.model.clone()),
                Some("configured"),
            ),
            _ => (None, None, None),
        };
        let price = model.as_deref().and_then(|m| self.prices.openai.get(m));
        let openai_micros = model.as_deref().and_then(|m| self.prices.openai_micros(m, u)).unwrap_or(0);
        let unpriced = match (&model, price) {
            (Some(m), None) if used => Some(format!(
                "no price for model {m} in PRICES_FILE: add it to \"openai\" (its OpenAI part counts as 0)"
            )),
            _ => None,
        };
        let tokens = match price {
            Some(ModelPrice::Time(_)) => None,
            _ if u.input_tokens + u.output_tokens == 0 => None,
            _ => Some(TokenParts::of(u)),
        };
        let twilio_micros =
            self.prices.twilio_micros(self.country(&row.phone_e164).as_deref(), row.twilio_seconds)
                + self.prices.twilio_micros(self.transfer_key.as_deref(), row.transfer_seconds);
        CallCost {
            call_id: row.call_id,
            lead_id: row.lead_id,
            phone: numbers.show(&row.phone_e164),
            created_at: row.created_at,
            status: row.status,
            engine,
            model,
            model_source: source,
            tokens,
            unpriced,
            cost: Cost {
                currency: self.prices.currency.clone(),
                twilio_seconds: row.twilio_seconds,
                transfer_seconds: row.transfer_seconds,
                twilio_micros,
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
                live_seconds: u.live_seconds,
                openai_micros,
                total_micros: twilio_micros + openai_micros,
            },
        }
    }

    /// The calls `filter` selects, each with its cost, and their sum.
    pub async fn report(
        &self,
        store: &Store,
        filter: CallFilter,
        numbers: Numbers,
    ) -> Result<CostReport, StoreError> {
        let rows = crate::record::read::cost_rows(store, filter).await?;
        let mut total = Cost { currency: self.prices.currency.clone(), ..Cost::default() };
        let calls: Vec<CallCost> = rows
            .into_iter()
            .map(|r| {
                let c = self.call(r, numbers);
                total.add(&c.cost);
                c
            })
            .collect();
        Ok(CostReport { currency: self.prices.currency.clone(), calls, total })
    }
}

/// `CallDuration=…` in the detail of a `completed` status line.
pub fn billed_seconds_in(detail: &str) -> Option<u64> {
    detail.split(' ').find_map(|kv| kv.strip_prefix("CallDuration=")).and_then(|v| v.parse().ok())
}

/// `DialCallDuration=…` in the detail of a `transfer-completed` line ([`crate::transfer`]).
pub fn transfer_seconds_in(detail: &str) -> Option<u64> {
    detail.split(' ').find_map(|kv| kv.strip_prefix("DialCallDuration=")).and_then(|v| v.parse().ok())
}

/// The price key of the transfer target: its number's country, or `sip`.
fn transfer_key(config: &Config) -> Option<String> {
    match config.transfer.target.as_ref()? {
        crate::transfer::TransferTarget::Sip(_) => Some("sip".into()),
        crate::transfer::TransferTarget::Number(n) => {
            crate::phone::parse_phone(n, config.default_phone_region)
                .ok()
                .and_then(|p| p.region)
                .map(|r| r.as_ref().to_owned())
        }
    }
}

/// A warm transfer's leg was connected `seconds` (`DialCallDuration`): counted like a call
/// Twilio billed, at the transfer target's price.
pub fn on_transfer_completed(app: &App, seconds: u64) {
    Metrics::add(&app.metrics.twilio_billed_seconds, seconds);
    if let Some(prices) = &app.config.prices {
        let key = transfer_key(&app.config);
        Metrics::add(&app.metrics.cost_twilio_micros, prices.twilio_micros(key.as_deref(), seconds));
    }
}

/// Every call of `lead_id` with its cost, and their sum; `None` without `PRICES_FILE`.
pub async fn lead_cost(app: &App, lead_id: Uuid) -> Result<Option<CostReport>, StoreError> {
    let Some(pricing) = Pricing::of(&app.config) else { return Ok(None) };
    let filter = CallFilter { lead: Some(lead_id), call: None, since: None, limit: u32::MAX };
    pricing.report(&app.storage.store, filter, Numbers::Masked).await.map(Some)
}

/// Twilio's `completed` callback for `call_id` billed `seconds` (just recorded on the call's
/// timeline): counted (`callway_twilio_billed_seconds_total`,
/// `callway_call_cost_twilio_micros_total`) unless the timeline already held a `completed`
/// line, i.e. Twilio sent the callback again (the cost reads the first one too).
pub async fn on_twilio_completed(app: &App, call_id: Uuid, seconds: u64) -> Result<(), StoreError> {
    let store = &app.storage.store;
    let completed = store.status_timeline(call_id).await?.iter().filter(|s| *s == "completed").count();
    if completed > 1 {
        tracing::debug!(%call_id, "completed callback sent again: not counted twice");
        return Ok(());
    }
    Metrics::add(&app.metrics.twilio_billed_seconds, seconds);
    let Some(pricing) = Pricing::of(&app.config) else { return Ok(()) };
    let Some(call) = store.get_call(call_id).await? else { return Ok(()) };
    let Some(lead) = store.get_lead(call.lead_id).await? else { return Ok(()) };
    let country = pricing.country(&lead.phone_e164);
    Metrics::add(&app.metrics.cost_twilio_micros, pricing.prices.twilio_micros(country.as_deref(), seconds));
    Ok(())
}

/// What the OpenAI counters gain from a call's usage going from `before` to `after`: tokens
/// in, tokens out, whole Live seconds, and micros (`None` without a price for `model`).
fn counted(prices: Option<&PriceTable>, model: &str, before: &CallUsage, after: &CallUsage) -> [u64; 4] {
    let secs = |u: &CallUsage| u.live_seconds.max(0.0).round() as u64;
    let micros = prices
        .and_then(|p| Some(p.openai_micros(model, after)?.saturating_sub(p.openai_micros(model, before)?)))
        .unwrap_or(0);
    [
        after.input_tokens.saturating_sub(before.input_tokens),
        after.output_tokens.saturating_sub(before.output_tokens),
        secs(after).saturating_sub(secs(before)),
        micros,
    ]
}

/// The function [`crate::store::Storage::on_appended`] calls for each batch of call events
/// stored: counts the events and the usage the batch added, once.
pub fn counter(config: &Config, metrics: Arc<Metrics>) -> AppendedHook {
    let prices = config.prices.clone();
    let fallback = config.voice_engine.model.clone();
    Box::new(move |a: &Appended| {
        Metrics::add(&metrics.call_events, a.inserted);
        let model = a.after.engine_model.as_deref().unwrap_or(&fallback);
        let [input, output, live, micros] = counted(prices.as_ref(), model, &a.before, &a.after);
        Metrics::add(&metrics.openai_input_tokens, input);
        Metrics::add(&metrics.openai_output_tokens, output);
        Metrics::add(&metrics.openai_live_seconds, live);
        Metrics::add(&metrics.cost_openai_micros, micros);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::internal_api::TokenDetails;
    use contract::voice_api::{VoiceApi, VoiceEngine};

    const TABLE: &str = r#"{"currency": "EUR",
        "openai": {"gpt-realtime-2.1": {"input_per_million": 4.0, "output_per_million": 16.0,
                       "audio_input_per_million": 32.0, "audio_output_per_million": 64.0},
                   "gpt-live-1.1": {"per_minute": 0.05}},
        "twilio_per_minute": {"FR": 0.0135, "default": 0.05}}"#;

    fn row(usage: CallUsage, twilio_seconds: u64) -> CostRow {
        CostRow {
            transfer_seconds: 0,
            call_id: Uuid::from_u128(1),
            lead_id: Uuid::from_u128(2),
            phone_e164: "+33612345678".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            status: "completed".into(),
            usage,
            twilio_seconds,
        }
    }

    fn pricing<'a>(t: &'a PriceTable, e: &'a VoiceEngine) -> Pricing<'a> {
        Pricing { prices: t, engine: e, region: phonenumber::country::Id::FR, transfer_key: None }
    }

    #[test]
    fn a_call_is_priced_at_the_model_its_gateway_named() {
        let t = PriceTable::parse(TABLE).unwrap();
        let configured = VoiceEngine { api: VoiceApi::Realtime, model: "gpt-realtime-2.1".into() };
        let live = CallUsage {
            live_seconds: 61.0,
            engine_api: Some("live".into()),
            engine_model: Some("gpt-live-1.1".into()),
            ..CallUsage::default()
        };
        let c = pricing(&t, &configured).call(row(live, 61), Numbers::Masked);
        assert_eq!(
            (c.engine.as_deref(), c.model.as_deref(), c.model_source),
            (Some("live"), Some("gpt-live-1.1"), Some("call"))
        );
        // 61 s at 0.05 a minute; Twilio: two started minutes at 0.0135.
        assert_eq!(
            (c.cost.openai_micros, c.cost.twilio_micros, c.cost.total_micros),
            (50_833, 27_000, 77_833)
        );
        assert_eq!(c.tokens, None);
        assert_eq!(c.phone, "+33******78");

        // An older gateway: no engine event, tokens without a split, the configured model.
        let old = CallUsage { input_tokens: 1_000, output_tokens: 500, ..CallUsage::default() };
        let c = pricing(&t, &configured).call(row(old, 0), Numbers::Masked);
        assert_eq!((c.model.as_deref(), c.model_source), (Some("gpt-realtime-2.1"), Some("configured")));
        assert_eq!(c.cost.openai_micros, 1_000 * 4 + 500 * 16);

        // A model no longer in the table: 0, and said.
        let gone = CallUsage {
            input_tokens: 10,
            engine_api: Some("realtime".into()),
            engine_model: Some("gpt-realtime-old".into()),
            ..CallUsage::default()
        };
        let c = pricing(&t, &configured).call(row(gone, 0), Numbers::Masked);
        assert_eq!(c.cost.openai_micros, 0);
        assert!(c.unpriced.unwrap().contains("no price for model gpt-realtime-old in PRICES_FILE"));

        // A call that never reached OpenAI names no model.
        let c = pricing(&t, &configured).call(row(CallUsage::default(), 0), Numbers::Masked);
        assert_eq!((c.engine, c.model, c.unpriced), (None, None, None));
    }

    #[test]
    fn counters_gain_the_difference_a_batch_made() {
        let t = PriceTable::parse(TABLE).unwrap();
        let d = TokenDetails { input_audio_tokens: 800, output_audio_tokens: 400, ..TokenDetails::default() };
        let before =
            CallUsage { input_tokens: 1_000, output_tokens: 500, details: d, ..CallUsage::default() };
        let mut after = before.clone();
        after.add(&contract::internal_api::CallEvent::Usage {
            response_id: "r2".into(),
            input_tokens: 1_000,
            output_tokens: 500,
            details: Some(d),
        });
        // The second response: 200 text in × 4 + 800 audio in × 32 + 100 text out × 16 + 400 audio out × 64.
        let micros = 200 * 4 + 800 * 32 + 100 * 16 + 400 * 64;
        assert_eq!(counted(Some(&t), "gpt-realtime-2.1", &before, &after), [1_000, 500, 0, micros]);
        assert_eq!(counted(Some(&t), "gpt-realtime-2.1", &after, &after), [0, 0, 0, 0], "nothing new");
        let live = |s: f64| CallUsage { live_seconds: s, ..CallUsage::default() };
        assert_eq!(
            counted(Some(&t), "gpt-live-1.1", &live(59.6), &live(120.0)),
            [0, 0, 60, 100_000 - 49_667]
        );
        assert_eq!(counted(None, "gpt-live-1.1", &live(0.0), &live(30.0)), [0, 0, 30, 0]);
    }

    #[test]
    fn a_split_that_does_not_fit_its_totals_is_left_out() {
        let mut u = CallUsage::default();
        let bad = TokenDetails { input_audio_tokens: 11, ..TokenDetails::default() };
        u.add(&contract::internal_api::CallEvent::Usage {
            response_id: "r".into(),
            input_tokens: 10,
            output_tokens: 0,
            details: Some(bad),
        });
        assert_eq!((u.input_tokens, u.details), (10, TokenDetails::default()));
        u.add(&contract::internal_api::CallEvent::LiveUsage { seconds: 30.0 });
        u.add(&contract::internal_api::CallEvent::LiveUsage { seconds: 12.0 });
        assert_eq!(u.live_seconds, 30.0, "cumulative: the largest is the total");
    }

    #[test]
    fn the_billed_duration_is_read_from_the_completed_line() {
        assert_eq!(billed_seconds_in("CallDuration=42 AnsweredBy=human"), Some(42));
        assert_eq!(billed_seconds_in("AnsweredBy=human"), None);
        assert_eq!(billed_seconds_in("CallDuration=x"), None);
        assert_eq!(transfer_seconds_in("DialCallDuration=95"), Some(95));
        assert_eq!(transfer_seconds_in("CallDuration=95"), None);
    }

    #[test]
    fn a_transferred_leg_is_billed_besides_the_call_at_its_target_price() {
        let t = PriceTable::parse(TABLE).unwrap();
        let configured = VoiceEngine { api: VoiceApi::Realtime, model: "gpt-realtime-2.1".into() };
        let at = |key: Option<&str>| Pricing {
            prices: &t,
            engine: &configured,
            region: phonenumber::country::Id::FR,
            transfer_key: key.map(str::to_owned),
        };
        let transferred = CostRow { transfer_seconds: 90, ..row(CallUsage::default(), 61) };
        // 61 s and 90 s to France: two started minutes each at 0.0135.
        let c = at(Some("FR")).call(transferred.clone(), Numbers::Masked);
        assert_eq!(
            (c.cost.twilio_micros, c.cost.transfer_seconds, c.cost.total_micros),
            (54_000, 90, 54_000)
        );
        // To SIP without a `sip` price: the default.
        let c = at(Some("sip")).call(transferred, Numbers::Masked);
        assert_eq!(c.cost.twilio_micros, 27_000 + 2 * 50_000);
    }
}
