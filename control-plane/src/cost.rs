//! The cost of each call (issue 13, item 4), the control plane's side: a price table
//! (`PRICES_FILE`), Twilio's billed duration from the `completed` status callback
//! (`CallDuration`, recorded on the call's timeline), the OpenAI tokens the gateway reports
//! (`CallEvent::Usage`, summed on the call's row), the cost of a call and of every call of a
//! lead computed from those stored facts, and Prometheus counters.
//!
//! # `PRICES_FILE`
//! JSON, amounts in `currency` per unit:
//! ```json
//! {
//!   "currency": "EUR",
//!   "openai": { "gpt-realtime-2.1": { "input_per_million": 32.0, "output_per_million": 64.0 } },
//!   "twilio_per_minute": { "FR": 0.0135, "BE": 0.02, "default": 0.05 }
//! }
//! ```
//! `openai` is per Realtime model (`OPENAI_REALTIME_MODEL`), per million tokens;
//! `twilio_per_minute` per destination country (ISO 3166 code of the lead's number, `default`
//! for the others); Twilio bills outbound voice per started minute. Amounts are kept in
//! millionths of the currency, so sums are exact.
//!
//! A warm transfer ([`crate::transfer`]) is a second outbound leg Twilio bills on its own: the
//! `DialCallDuration` of the call's `transfer-completed` line, priced per started minute at the
//! transfer target's country (`twilio_per_minute`), or at the `sip` entry for a SIP target
//! (`default` when absent), counted in the call's Twilio part (`transfer_seconds`).
//!
//! # What the gateway must report for an exact OpenAI cost (not built yet)
//! Today's `CallEvent::Usage` carries `input_tokens` and `output_tokens` only, so every token
//! is priced at the model's one input and one output rate. `response.done.response.usage` also
//! has `input_token_details` (`text_tokens`, `audio_tokens`, `cached_tokens`,
//! `cached_tokens_details.{text_tokens,audio_tokens}`) and `output_token_details`
//! (`text_tokens`, `audio_tokens`), priced differently (audio is several times text; cached
//! input is a tenth). The gateway should add these to the event (new optional fields of
//! `CallEvent::Usage`, `#[serde(default)]`, so older control planes keep reading it); the price
//! table then grows `audio_input_per_million`, `cached_input_per_million`,
//! `audio_output_per_million` and this module prices each part.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::routes::App;
use crate::store::{StoreError, TimelineEntry};

/// One Realtime model's prices.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Per million input tokens.
    pub input_per_million: f64,
    /// Per million output tokens.
    pub output_per_million: f64,
}

/// `PRICES_FILE`, checked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// ISO 4217 code the amounts are in.
    pub currency: String,
    /// Per Realtime model.
    pub openai: BTreeMap<String, ModelPrice>,
    /// Per destination country, and `default`.
    pub twilio_per_minute: BTreeMap<String, f64>,
}

/// Millionths of the currency.
fn micros(amount: f64) -> u64 {
    (amount * 1e6).round() as u64
}

impl PriceTable {
    /// Parses and checks a table: amounts finite and not negative, a three-letter currency, a
    /// `default` Twilio price. Messages name the entry.
    pub fn parse(text: &str) -> Result<PriceTable, String> {
        let t: PriceTable = serde_json::from_str(text).map_err(|e| format!("not a price table: {e}"))?;
        if t.currency.len() != 3 || !t.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("currency {:?} is not an ISO 4217 code such as EUR", t.currency));
        }
        let bad = |what: String, v: f64| {
            (!v.is_finite() || v < 0.0).then(|| format!("{what} = {v} is not a price"))
        };
        for (model, p) in &t.openai {
            if let Some(e) = bad(format!("openai.{model}.input_per_million"), p.input_per_million)
                .or_else(|| bad(format!("openai.{model}.output_per_million"), p.output_per_million))
            {
                return Err(e);
            }
        }
        for (cc, v) in &t.twilio_per_minute {
            if let Some(e) = bad(format!("twilio_per_minute.{cc}"), *v) {
                return Err(e);
            }
        }
        if !t.twilio_per_minute.contains_key("default") {
            return Err("twilio_per_minute needs a \"default\" price for the countries not listed".into());
        }
        Ok(t)
    }

    /// Reads `PRICES_FILE`.
    pub fn load(path: &Path) -> Result<PriceTable, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("PRICES_FILE {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("PRICES_FILE {}: {e}", path.display()))
    }

    /// Twilio's part for `billed_secs` to `country`, in micros (per started minute).
    pub fn twilio_micros(&self, country: Option<&str>, billed_secs: u64) -> u64 {
        let per_minute = country
            .and_then(|c| self.twilio_per_minute.get(c))
            .or_else(|| self.twilio_per_minute.get("default"))
            .copied()
            .unwrap_or(0.0);
        billed_secs.div_ceil(60) * micros(per_minute)
    }

    /// OpenAI's part for the tokens of `model`, in micros (`None`: the model has no price).
    pub fn openai_micros(&self, model: &str, input_tokens: u64, output_tokens: u64) -> Option<u64> {
        let p = self.openai.get(model)?;
        let part = |tokens: u64, per_million: f64| (tokens as f64 * per_million).round() as u64;
        Some(part(input_tokens, p.input_per_million) + part(output_tokens, p.output_per_million))
    }
}

/// What a call (or every call of a lead) cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cost {
    /// ISO 4217.
    pub currency: String,
    /// Seconds Twilio billed (its `CallDuration`).
    pub twilio_seconds: u64,
    /// Seconds of the transferred leg (`DialCallDuration`), billed besides the call.
    pub transfer_seconds: u64,
    /// Twilio's part, millionths of the currency.
    pub twilio_micros: u64,
    /// OpenAI tokens in.
    pub input_tokens: u64,
    /// OpenAI tokens out.
    pub output_tokens: u64,
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
        self.openai_micros += o.openai_micros;
        self.total_micros += o.total_micros;
    }
}

/// Twilio's `CallDuration` as the `completed` status line of a call's timeline holds it.
pub fn billed_seconds(entries: &[TimelineEntry], call_id: Uuid) -> u64 {
    entries
        .iter()
        .filter(|e| e.call_id == call_id && e.status == "completed" && e.source == "twilio-call")
        .filter_map(|e| e.detail.as_deref()?.split(' ').find_map(|kv| kv.strip_prefix("CallDuration=")))
        .find_map(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The transferred leg's `DialCallDuration`, as the call's `transfer-completed` line holds it.
pub fn transfer_seconds(entries: &[TimelineEntry], call_id: Uuid) -> u64 {
    entries
        .iter()
        .filter(|e| {
            e.call_id == call_id && e.status == "transfer-completed" && e.source == crate::transfer::SOURCE
        })
        .filter_map(|e| e.detail.as_deref()?.strip_prefix("DialCallDuration="))
        .find_map(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The price key of the transfer target: its number's country, or `sip`.
fn transfer_key(app: &App) -> Option<String> {
    match app.config.transfer.target.as_ref()? {
        crate::transfer::TransferTarget::Sip(_) => Some("sip".into()),
        crate::transfer::TransferTarget::Number(n) => {
            crate::phone::parse_phone(n, app.config.default_phone_region)
                .ok()
                .and_then(|p| p.region)
                .map(|r| r.as_ref().to_owned())
        }
    }
}

/// The destination country of `lead_id`'s number.
async fn country_of(app: &App, lead_id: Uuid) -> Result<Option<String>, StoreError> {
    let Some(lead) = app.storage.store.get_lead(lead_id).await? else { return Ok(None) };
    let region = crate::phone::parse_phone(&lead.phone_e164, app.config.default_phone_region)
        .ok()
        .and_then(|p| p.region);
    Ok(region.map(|r| r.as_ref().to_owned()))
}

/// A call's facts: billed seconds to `country`, the transferred leg's seconds to
/// `transfer_key`, the tokens.
struct Facts<'a> {
    country: Option<&'a str>,
    seconds: u64,
    transfer_key: Option<&'a str>,
    transfer_seconds: u64,
    input_tokens: u64,
    output_tokens: u64,
}

fn cost_of(prices: &PriceTable, model: &str, f: Facts<'_>) -> Cost {
    let Facts { country, seconds, transfer_key, transfer_seconds, input_tokens, output_tokens } = f;
    let twilio_micros =
        prices.twilio_micros(country, seconds) + prices.twilio_micros(transfer_key, transfer_seconds);
    let openai_micros = prices.openai_micros(model, input_tokens, output_tokens).unwrap_or(0);
    Cost {
        currency: prices.currency.clone(),
        twilio_seconds: seconds,
        transfer_seconds,
        twilio_micros,
        input_tokens,
        output_tokens,
        openai_micros,
        total_micros: twilio_micros + openai_micros,
    }
}

/// Every call of `lead_id` with its cost, and their sum; `None` without `PRICES_FILE`.
pub async fn lead_cost(app: &App, lead_id: Uuid) -> Result<Option<(Vec<(Uuid, Cost)>, Cost)>, StoreError> {
    let Some(prices) = &app.config.prices else { return Ok(None) };
    let store = &app.storage.store;
    let entries = store.lead_timeline(lead_id).await?;
    let country = country_of(app, lead_id).await?;
    let transfer_key = transfer_key(app);
    let mut ids: Vec<Uuid> = entries.iter().map(|e| e.call_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut calls = Vec::new();
    let mut total = Cost { currency: prices.currency.clone(), ..Cost::default() };
    for id in ids {
        let Some(call) = store.get_call(id).await? else { continue };
        let tokens = |t: i64| u64::try_from(t).unwrap_or(0);
        let facts = Facts {
            country: country.as_deref(),
            seconds: billed_seconds(&entries, id),
            transfer_key: transfer_key.as_deref(),
            transfer_seconds: transfer_seconds(&entries, id),
            input_tokens: tokens(call.input_tokens),
            output_tokens: tokens(call.output_tokens),
        };
        let cost = cost_of(prices, &app.config.openai_realtime_model, facts);
        total.add(&cost);
        calls.push((id, cost));
    }
    Ok(Some((calls, total)))
}

/// Twilio's `completed` callback for `call_id` billed `seconds`: counted
/// (`callway_twilio_billed_seconds_total`, `callway_call_cost_micros_total{part="twilio"}`).
pub async fn on_twilio_completed(app: &App, call_id: Uuid, seconds: u64) -> Result<(), StoreError> {
    crate::metrics::Metrics::add(&app.metrics.twilio_billed_seconds, seconds);
    let Some(prices) = &app.config.prices else { return Ok(()) };
    let Some(call) = app.storage.store.get_call(call_id).await? else { return Ok(()) };
    let country = country_of(app, call.lead_id).await?;
    crate::metrics::Metrics::add(
        &app.metrics.cost_twilio_micros,
        prices.twilio_micros(country.as_deref(), seconds),
    );
    Ok(())
}

/// A warm transfer's leg was connected `seconds` (`DialCallDuration`): counted like a call
/// Twilio billed, at the transfer target's price.
pub fn on_transfer_completed(app: &App, seconds: u64) {
    crate::metrics::Metrics::add(&app.metrics.twilio_billed_seconds, seconds);
    if let Some(prices) = &app.config.prices {
        let key = transfer_key(app);
        crate::metrics::Metrics::add(
            &app.metrics.cost_twilio_micros,
            prices.twilio_micros(key.as_deref(), seconds),
        );
    }
}

/// The gateway reported `input_tokens`/`output_tokens` more for a call: counted
/// (`callway_openai_tokens_total`, `callway_call_cost_micros_total{part="openai"}`).
pub fn on_usage(app: &App, input_tokens: u64, output_tokens: u64) {
    use crate::metrics::Metrics;
    Metrics::add(&app.metrics.openai_input_tokens, input_tokens);
    Metrics::add(&app.metrics.openai_output_tokens, output_tokens);
    if let Some(m) = app
        .config
        .prices
        .as_ref()
        .and_then(|p| p.openai_micros(&app.config.openai_realtime_model, input_tokens, output_tokens))
    {
        Metrics::add(&app.metrics.cost_openai_micros, m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = r#"{"currency": "EUR",
        "openai": {"gpt-realtime-2.1": {"input_per_million": 32.0, "output_per_million": 64.0}},
        "twilio_per_minute": {"FR": 0.0135, "default": 0.05}}"#;

    #[test]
    fn prices_are_exact_in_micros_and_twilio_bills_started_minutes() {
        let t = PriceTable::parse(TABLE).unwrap();
        assert_eq!(t.twilio_micros(Some("FR"), 61), 27_000, "two started minutes at 0.0135");
        assert_eq!(t.twilio_micros(Some("FR"), 0), 0);
        assert_eq!(t.twilio_micros(Some("US"), 30), 50_000, "the default");
        assert_eq!(t.openai_micros("gpt-realtime-2.1", 1_000, 500), Some(32_000 + 32_000));
        assert_eq!(t.openai_micros("another-model", 1, 1), None);
        let facts = |transfer_key, transfer_seconds| Facts {
            country: Some("FR"),
            seconds: 61,
            transfer_key,
            transfer_seconds,
            input_tokens: 1_000,
            output_tokens: 500,
        };
        let c = cost_of(&t, "gpt-realtime-2.1", facts(None, 0));
        assert_eq!((c.twilio_micros, c.openai_micros, c.total_micros), (27_000, 64_000, 91_000));
        // A transferred leg of 90 s to a French desk: two more started minutes; to SIP without
        // a `sip` price, the default.
        let c = cost_of(&t, "gpt-realtime-2.1", facts(Some("FR"), 90));
        assert_eq!((c.twilio_micros, c.transfer_seconds, c.total_micros), (54_000, 90, 118_000));
        let c = cost_of(&t, "gpt-realtime-2.1", facts(Some("sip"), 30));
        assert_eq!(c.twilio_micros, 27_000 + 50_000);
    }

    #[test]
    fn a_bad_table_is_refused_naming_the_entry() {
        let cases = [
            (r#"{"currency":"eur","openai":{},"twilio_per_minute":{"default":1}}"#, "ISO 4217"),
            (r#"{"currency":"EUR","openai":{},"twilio_per_minute":{"FR":1}}"#, "\"default\""),
            (
                r#"{"currency":"EUR","openai":{"m":{"input_per_million":-1,"output_per_million":1}},"twilio_per_minute":{"default":1}}"#,
                "openai.m.input_per_million = -1",
            ),
            (
                r#"{"currency":"EUR","openai":{},"twilio_per_minute":{"default":1},"vat":0.2}"#,
                "unknown field `vat`",
            ),
        ];
        for (text, want) in cases {
            let e = PriceTable::parse(text).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        let e = PriceTable::load(Path::new("/nonexistent/prices.json")).unwrap_err();
        assert!(e.starts_with("PRICES_FILE /nonexistent/prices.json"), "{e}");
    }

    #[test]
    fn the_billed_duration_is_read_from_the_completed_line() {
        let id = Uuid::new_v4();
        let at = time::OffsetDateTime::now_utc();
        let line = |status: &str, source: &str, detail: Option<&str>| TimelineEntry {
            call_id: id,
            status: status.into(),
            source: source.into(),
            detail: detail.map(str::to_owned),
            at,
        };
        let entries = [
            line("in-progress", "twilio-call", None),
            line("completed", "twilio-call", Some("CallDuration=42 AnsweredBy=human")),
        ];
        assert_eq!(billed_seconds(&entries, id), 42);
        assert_eq!(billed_seconds(&entries, Uuid::new_v4()), 0);
        assert_eq!(transfer_seconds(&entries, id), 0);
        let transferred = [line("transfer-completed", crate::transfer::SOURCE, Some("DialCallDuration=95"))];
        assert_eq!(transfer_seconds(&transferred, id), 95);
        assert_eq!(transfer_seconds(&transferred, Uuid::new_v4()), 0);
    }
}
