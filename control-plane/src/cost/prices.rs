//! `PRICES_FILE`: the price table, read and checked at start, and the arithmetic of each part
//! of a call's cost in millionths of the table's currency (sans-IO, unit-tested). The format is
//! documented on [`crate::cost`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::store::CallUsage;

/// A Realtime model's prices per million tokens. The audio and cached prices are optional: an
/// absent one falls back as [`TokenPrices::audio_input`] and its siblings say, so a table with
/// only `input_per_million` and `output_per_million` prices every token as it always did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenPrices {
    /// Text input (and every input token whose split is unknown).
    pub input_per_million: f64,
    /// Text output (and every output token whose split is unknown).
    pub output_per_million: f64,
    /// Uncached audio input.
    pub audio_input_per_million: Option<f64>,
    /// Cached text input.
    pub cached_input_per_million: Option<f64>,
    /// Cached audio input.
    pub cached_audio_input_per_million: Option<f64>,
    /// Audio output.
    pub audio_output_per_million: Option<f64>,
}

impl TokenPrices {
    /// Uncached audio input: `audio_input_per_million`, else `input_per_million`.
    pub fn audio_input(&self) -> f64 {
        self.audio_input_per_million.unwrap_or(self.input_per_million)
    }

    /// Cached text input: `cached_input_per_million`, else `input_per_million`.
    pub fn cached_input(&self) -> f64 {
        self.cached_input_per_million.unwrap_or(self.input_per_million)
    }

    /// Cached audio input: `cached_audio_input_per_million`, else `cached_input_per_million`,
    /// else `input_per_million`.
    pub fn cached_audio_input(&self) -> f64 {
        self.cached_audio_input_per_million.unwrap_or_else(|| self.cached_input())
    }

    /// Audio output: `audio_output_per_million`, else `output_per_million`.
    pub fn audio_output(&self) -> f64 {
        self.audio_output_per_million.unwrap_or(self.output_per_million)
    }
}

/// A GPT-Live model's price per second of session (`per_minute` or `per_second` in the file).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimePrice {
    /// The amount given.
    pub amount: f64,
    /// Seconds it is for: 60 (`per_minute`) or 1 (`per_second`).
    pub per_seconds: u32,
}

/// How a model is billed: by token (Realtime) or by the second (GPT-Live), never both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ModelPrice {
    /// Per million tokens, by kind.
    Tokens(TokenPrices),
    /// Per second of session.
    Time(TimePrice),
}

/// `PRICES_FILE`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    /// ISO 4217 code the amounts are in.
    pub currency: String,
    /// Per OpenAI model.
    pub openai: BTreeMap<String, ModelPrice>,
    /// Per destination country, and `default`.
    pub twilio_per_minute: BTreeMap<String, f64>,
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    currency: String,
    openai: BTreeMap<String, RawModelPrice>,
    twilio_per_minute: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModelPrice {
    input_per_million: Option<f64>,
    output_per_million: Option<f64>,
    audio_input_per_million: Option<f64>,
    cached_input_per_million: Option<f64>,
    cached_audio_input_per_million: Option<f64>,
    audio_output_per_million: Option<f64>,
    per_minute: Option<f64>,
    per_second: Option<f64>,
}

/// Millionths of the currency.
pub fn micros(amount: f64) -> u64 {
    (amount * 1e6).round() as u64
}

/// `tokens` at `per_million`, in micros (a price per million tokens is micros per token).
fn token_micros(tokens: u64, per_million: f64) -> u64 {
    (tokens as f64 * per_million).round() as u64
}

fn not_a_price(what: &str, v: f64) -> Option<String> {
    (!v.is_finite() || v < 0.0).then(|| format!("{what} = {v} is not a price (a number, 0 or more)"))
}

fn model_price(model: &str, p: RawModelPrice) -> Result<ModelPrice, String> {
    let named = [
        ("input_per_million", p.input_per_million),
        ("output_per_million", p.output_per_million),
        ("audio_input_per_million", p.audio_input_per_million),
        ("cached_input_per_million", p.cached_input_per_million),
        ("cached_audio_input_per_million", p.cached_audio_input_per_million),
        ("audio_output_per_million", p.audio_output_per_million),
        ("per_minute", p.per_minute),
        ("per_second", p.per_second),
    ];
    for (field, v) in named {
        if let Some(e) = v.and_then(|v| not_a_price(&format!("openai.{model}.{field}"), v)) {
            return Err(e);
        }
    }
    let tokens = named[..6].iter().any(|(_, v)| v.is_some());
    let live = contract::voice_api::is_live_model(model);
    let time = match (p.per_minute, p.per_second) {
        (Some(_), Some(_)) => {
            return Err(format!("openai.{model}: give per_minute or per_second, not both"));
        }
        (Some(amount), None) => Some(TimePrice { amount, per_seconds: 60 }),
        (None, Some(amount)) => Some(TimePrice { amount, per_seconds: 1 }),
        (None, None) => None,
    };
    match (time, tokens) {
        (Some(_), true) => Err(format!(
            "openai.{model}: a model is priced either by token (input_per_million, output_per_million and the optional audio and cached prices) or by time (per_minute or per_second), not both"
        )),
        (None, false) => Err(format!(
            "openai.{model} has no price: give input_per_million and output_per_million for a Realtime model, per_minute (or per_second) for a GPT-Live model"
        )),
        (Some(_), false) if !live => Err(format!(
            "openai.{model}: Realtime models are billed by token, so per_minute/per_second would price its calls at 0: give input_per_million and output_per_million"
        )),
        (Some(t), false) => Ok(ModelPrice::Time(t)),
        (None, true) if live => Err(format!(
            "openai.{model}: GPT-Live models are billed per second of session, so token prices would price its calls at 0: give per_minute (or per_second) instead"
        )),
        (None, true) => {
            let need = |field: &str, v: Option<f64>| {
                v.ok_or_else(|| format!(
                    "openai.{model}.{field} is missing: a token-priced model needs input_per_million and output_per_million (the audio and cached prices are optional and fall back to them)"
                ))
            };
            Ok(ModelPrice::Tokens(TokenPrices {
                input_per_million: need("input_per_million", p.input_per_million)?,
                output_per_million: need("output_per_million", p.output_per_million)?,
                audio_input_per_million: p.audio_input_per_million,
                cached_input_per_million: p.cached_input_per_million,
                cached_audio_input_per_million: p.cached_audio_input_per_million,
                audio_output_per_million: p.audio_output_per_million,
            }))
        }
    }
}

/// A Realtime call's tokens by how they are priced (from a [`CallUsage`]'s totals and split).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenParts {
    /// Uncached text input (and input whose split is unknown).
    pub text_input: u64,
    /// Uncached audio input.
    pub audio_input: u64,
    /// Cached text input.
    pub cached_text_input: u64,
    /// Cached audio input.
    pub cached_audio_input: u64,
    /// Text output (and output whose split is unknown).
    pub text_output: u64,
    /// Audio output.
    pub audio_output: u64,
}

impl TokenParts {
    /// Splits the totals by the stored split (each part a subset of its total).
    pub fn of(u: &CallUsage) -> TokenParts {
        let d = &u.details;
        let cached_audio_input = d.input_cached_audio_tokens;
        let cached_text_input = d.input_cached_tokens.saturating_sub(cached_audio_input);
        let audio_input = d.input_audio_tokens.saturating_sub(cached_audio_input);
        TokenParts {
            text_input: u.input_tokens.saturating_sub(d.input_audio_tokens).saturating_sub(cached_text_input),
            audio_input,
            cached_text_input,
            cached_audio_input,
            text_output: u.output_tokens.saturating_sub(d.output_audio_tokens),
            audio_output: d.output_audio_tokens,
        }
    }

    /// Their price, each part at its own rate, in micros.
    pub fn micros(&self, p: &TokenPrices) -> u64 {
        token_micros(self.text_input, p.input_per_million)
            + token_micros(self.audio_input, p.audio_input())
            + token_micros(self.cached_text_input, p.cached_input())
            + token_micros(self.cached_audio_input, p.cached_audio_input())
            + token_micros(self.text_output, p.output_per_million)
            + token_micros(self.audio_output, p.audio_output())
    }
}

impl TimePrice {
    /// `seconds` of session, in micros.
    pub fn micros(&self, seconds: f64) -> u64 {
        if !seconds.is_finite() || seconds <= 0.0 {
            return 0;
        }
        (seconds * self.amount * 1e6 / f64::from(self.per_seconds)).round() as u64
    }
}

impl PriceTable {
    /// Parses and checks a table: amounts finite and not negative, a three-letter currency, a
    /// `default` Twilio price, each model priced by token or by time as its API bills it.
    /// Messages name the entry and say what to write.
    pub fn parse(text: &str) -> Result<PriceTable, String> {
        let t: RawTable = serde_json::from_str(text).map_err(|e| format!("not a price table: {e}"))?;
        if t.currency.len() != 3 || !t.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("currency {:?} is not an ISO 4217 code such as EUR", t.currency));
        }
        let mut openai = BTreeMap::new();
        for (model, p) in t.openai {
            let price = model_price(&model, p)?;
            openai.insert(model, price);
        }
        for (cc, v) in &t.twilio_per_minute {
            if let Some(e) = not_a_price(&format!("twilio_per_minute.{cc}"), *v) {
                return Err(e);
            }
        }
        if !t.twilio_per_minute.contains_key("default") {
            return Err("twilio_per_minute needs a \"default\" price for the countries not listed".into());
        }
        Ok(PriceTable { currency: t.currency, openai, twilio_per_minute: t.twilio_per_minute })
    }

    /// Reads `PRICES_FILE`.
    pub fn load(path: &Path) -> Result<PriceTable, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("PRICES_FILE {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("PRICES_FILE {}: {e}", path.display()))
    }

    /// Whether the configured model (`variable` names it) has a price: without one every call's
    /// OpenAI part would be 0.
    pub fn check_model(&self, variable: &str, model: &str) -> Result<(), String> {
        if self.openai.contains_key(model) {
            return Ok(());
        }
        let example = if contract::voice_api::is_live_model(model) {
            "{\"per_minute\": 0.05}"
        } else {
            "{\"input_per_million\": 32.0, \"output_per_million\": 64.0}"
        };
        Err(format!(
            "has no price for {variable}={model}: add \"{model}\": {example} (your prices) to its \"openai\" object"
        ))
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

    /// OpenAI's part of a call that ran `model`, in micros: its tokens part by part (a
    /// token-priced model) or its Live seconds (a time-priced one). `None`: the model has no
    /// price.
    pub fn openai_micros(&self, model: &str, usage: &CallUsage) -> Option<u64> {
        Some(match self.openai.get(model)? {
            ModelPrice::Tokens(p) => TokenParts::of(usage).micros(p),
            ModelPrice::Time(p) => p.micros(usage.live_seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::internal_api::TokenDetails;

    const TABLE: &str = r#"{"currency": "EUR",
        "openai": {
            "gpt-realtime-2.1": {"input_per_million": 32.0, "output_per_million": 64.0},
            "gpt-realtime-split": {"input_per_million": 4.0, "output_per_million": 16.0,
                "audio_input_per_million": 32.0, "cached_input_per_million": 0.4,
                "cached_audio_input_per_million": 0.5, "audio_output_per_million": 64.0},
            "gpt-live-1.1": {"per_minute": 0.05},
            "gpt-live-1": {"per_second": 0.001}
        },
        "twilio_per_minute": {"FR": 0.0135, "default": 0.05}}"#;

    fn tokens(input: u64, output: u64, d: TokenDetails) -> CallUsage {
        CallUsage { input_tokens: input, output_tokens: output, details: d, ..CallUsage::default() }
    }

    #[test]
    fn twilio_bills_started_minutes_by_country() {
        let t = PriceTable::parse(TABLE).unwrap();
        assert_eq!(t.twilio_micros(Some("FR"), 61), 27_000, "two started minutes at 0.0135");
        assert_eq!(t.twilio_micros(Some("FR"), 0), 0);
        assert_eq!(t.twilio_micros(Some("US"), 30), 50_000, "the default");
    }

    #[test]
    fn tokens_without_a_split_are_priced_as_before() {
        let t = PriceTable::parse(TABLE).unwrap();
        let u = tokens(1_000, 500, TokenDetails::default());
        assert_eq!(t.openai_micros("gpt-realtime-2.1", &u), Some(32_000 + 32_000));
        assert_eq!(t.openai_micros("gpt-realtime-split", &u), Some(4_000 + 8_000), "text rates");
        assert_eq!(t.openai_micros("another-model", &u), None);
    }

    #[test]
    fn each_part_of_a_split_has_its_price() {
        let t = PriceTable::parse(TABLE).unwrap();
        // 10 000 in: 6 000 audio (1 000 of them cached), 3 000 cached (so 2 000 cached text);
        // 2 000 out: 1 500 audio.
        let d = TokenDetails {
            input_audio_tokens: 6_000,
            input_cached_tokens: 3_000,
            input_cached_audio_tokens: 1_000,
            output_audio_tokens: 1_500,
        };
        let u = tokens(10_000, 2_000, d);
        let parts = TokenParts::of(&u);
        assert_eq!(
            parts,
            TokenParts {
                text_input: 2_000,
                audio_input: 5_000,
                cached_text_input: 2_000,
                cached_audio_input: 1_000,
                text_output: 500,
                audio_output: 1_500
            }
        );
        let sum = parts.text_input + parts.audio_input + parts.cached_text_input + parts.cached_audio_input;
        assert_eq!(sum, 10_000, "the parts add up to the total");
        // 2 000 × 4 + 5 000 × 32 + 2 000 × 0.4 + 1 000 × 0.5 + 500 × 16 + 1 500 × 64
        let want = 8_000 + 160_000 + 800 + 500 + 8_000 + 96_000;
        assert_eq!(t.openai_micros("gpt-realtime-split", &u), Some(want));
        // Absent split prices fall back to the input and output prices: as without a split.
        assert_eq!(t.openai_micros("gpt-realtime-2.1", &u), Some(10_000 * 32 + 2_000 * 64));
    }

    #[test]
    fn cached_audio_falls_back_to_the_cached_price_then_the_input_price() {
        let p = |extra: &str| {
            let text = format!(
                r#"{{"currency":"EUR","openai":{{"m":{{"input_per_million":4,"output_per_million":16{extra}}}}},"twilio_per_minute":{{"default":0}}}}"#
            );
            match PriceTable::parse(&text).unwrap().openai["m"] {
                ModelPrice::Tokens(p) => p,
                ModelPrice::Time(_) => unreachable!(),
            }
        };
        assert_eq!(p("").cached_audio_input(), 4.0);
        assert_eq!(p(r#","cached_input_per_million":0.4"#).cached_audio_input(), 0.4);
        assert_eq!(p(r#","audio_input_per_million":32"#).audio_input(), 32.0);
        assert_eq!(p("").audio_output(), 16.0);
    }

    #[test]
    fn live_models_are_priced_by_the_second() {
        let t = PriceTable::parse(TABLE).unwrap();
        let live = |s: f64| CallUsage { live_seconds: s, input_tokens: 99, ..CallUsage::default() };
        assert_eq!(t.openai_micros("gpt-live-1.1", &live(90.0)), Some(75_000), "1.5 min at 0.05");
        assert_eq!(t.openai_micros("gpt-live-1.1", &live(60.4)), Some(50_333));
        assert_eq!(t.openai_micros("gpt-live-1", &live(12.5)), Some(12_500));
        assert_eq!(t.openai_micros("gpt-live-1", &live(0.0)), Some(0));
    }

    #[test]
    fn a_bad_table_is_refused_naming_the_entry() {
        let model = |m: &str, fields: &str| {
            format!(
                r#"{{"currency":"EUR","openai":{{"{m}":{{{fields}}}}},"twilio_per_minute":{{"default":1}}}}"#
            )
        };
        let cases = [
            (r#"{"currency":"eur","openai":{},"twilio_per_minute":{"default":1}}"#.to_owned(), "ISO 4217"),
            (r#"{"currency":"EUR","openai":{},"twilio_per_minute":{"FR":1}}"#.to_owned(), "\"default\""),
            (
                model("m", r#""input_per_million":-1,"output_per_million":1"#),
                "openai.m.input_per_million = -1 is not a price",
            ),
            (
                r#"{"currency":"EUR","openai":{},"twilio_per_minute":{"default":1},"vat":0.2}"#.to_owned(),
                "unknown field `vat`",
            ),
            (model("m", r#""input_per_million":1"#), "openai.m.output_per_million is missing"),
            (model("m", ""), "openai.m has no price"),
            (model("gpt-live-1.1", r#""per_minute":0.05,"per_second":0.001"#), "not both"),
            (
                model("gpt-live-1.1", r#""per_minute":0.05,"input_per_million":1"#),
                "openai.gpt-live-1.1: a model is priced either by token",
            ),
            (
                model("gpt-live-1.1", r#""input_per_million":1,"output_per_million":1"#),
                "openai.gpt-live-1.1: GPT-Live models are billed per second",
            ),
            (model("gpt-realtime-2.1", r#""per_minute":0.05"#), "Realtime models are billed by token"),
            (model("m", r#""per_hour":1"#), "unknown field `per_hour`"),
        ];
        for (text, want) in cases {
            let e = PriceTable::parse(&text).unwrap_err();
            assert!(e.contains(want), "{want:?} not in {e}");
        }
        let e = PriceTable::load(Path::new("/nonexistent/prices.json")).unwrap_err();
        assert!(e.starts_with("PRICES_FILE /nonexistent/prices.json"), "{e}");
        let t = PriceTable::parse(TABLE).unwrap();
        assert_eq!(t.check_model("OPENAI_LIVE_MODEL", "gpt-live-1.1"), Ok(()));
        let e = t.check_model("OPENAI_LIVE_MODEL", "gpt-live-2").unwrap_err();
        assert!(e.contains("OPENAI_LIVE_MODEL=gpt-live-2: add \"gpt-live-2\": {\"per_minute\""), "{e}");
    }
}
