//! Which OpenAI voice API answers the calls and the web visits: Realtime (`/v1/realtime`, the
//! session and tool model, billed by token) or GPT-Live (`/v1/live/sessions`, full duplex, the
//! model decides when to stop talking, billed by the second; `protocols.md` §G). Both binaries
//! read the switch the same way, so the phone call and the web visit use the same engine.
//!
//! | name | meaning | default |
//! |---|---|---|
//! | `OPENAI_VOICE_API` | `realtime` or `live` | `realtime` |
//! | `OPENAI_REALTIME_MODEL` | the Realtime model (read only with `realtime`) | [`crate::realtime::DEFAULT_MODEL`] |
//! | `OPENAI_LIVE_MODEL` | the GPT-Live model (read only with `live`) | [`LIVE_DEFAULT_MODEL`] |
//!
//! A GPT-Live model with the Realtime engine, or a Realtime model with the Live engine, is a
//! start-up error naming both values: OpenAI would refuse the session with `invalid_model` on
//! the first call instead.

use crate::env::EnvReader;

/// The GPT-Live model used when `OPENAI_LIVE_MODEL` is unset.
pub const LIVE_DEFAULT_MODEL: &str = "gpt-live-1.1";

/// The two OpenAI voice protocols Callway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VoiceApi {
    /// The Realtime API: sessions, server VAD, responses, truncation on barge-in.
    Realtime,
    /// GPT-Live: a continuous full-duplex audio stream; the model takes and yields the turn.
    Live,
}

impl VoiceApi {
    /// The `OPENAI_VOICE_API` spelling, also used as the `engine` label in metrics and on the
    /// call's timeline.
    pub fn as_str(self) -> &'static str {
        match self {
            VoiceApi::Realtime => "realtime",
            VoiceApi::Live => "live",
        }
    }

    /// Both engines, in the order metrics list them.
    pub const ALL: [VoiceApi; 2] = [VoiceApi::Realtime, VoiceApi::Live];
}

impl std::fmt::Display for VoiceApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The engine and the model it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceEngine {
    /// Which protocol.
    pub api: VoiceApi,
    /// The model name sent to OpenAI.
    pub model: String,
}

/// Whether `model` names a GPT-Live model (`gpt-live-*`).
pub fn is_live_model(model: &str) -> bool {
    model.starts_with("gpt-live")
}

/// Reads `OPENAI_VOICE_API` and the model of the chosen engine, refusing a model of the other
/// engine with a message naming both values and what to set instead.
pub fn read_engine(r: &mut EnvReader<'_>) -> VoiceEngine {
    let api = match r.opt("OPENAI_VOICE_API").as_deref() {
        None | Some("realtime") => VoiceApi::Realtime,
        Some("live") => VoiceApi::Live,
        Some(other) => {
            r.problem(format!(
                "OPENAI_VOICE_API must be realtime (the Realtime API) or live (GPT-Live), got {other:?}"
            ));
            VoiceApi::Realtime
        }
    };
    let model = match api {
        VoiceApi::Realtime => {
            let model = r.opt("OPENAI_REALTIME_MODEL");
            if let Some(m) = model.as_deref().filter(|m| is_live_model(m)) {
                r.problem(format!(
                    "OPENAI_REALTIME_MODEL={m} is a GPT-Live model but OPENAI_VOICE_API=realtime: set OPENAI_VOICE_API=live and OPENAI_LIVE_MODEL={m}, or a Realtime model such as {}",
                    crate::realtime::DEFAULT_MODEL
                ));
                m.to_owned()
            } else {
                crate::realtime::read_model(r)
            }
        }
        VoiceApi::Live => {
            let model = r.opt("OPENAI_LIVE_MODEL").unwrap_or_else(|| LIVE_DEFAULT_MODEL.to_owned());
            if !model.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                r.problem(format!(
                    "OPENAI_LIVE_MODEL must be a model name (letters, digits, - _ .), got {model:?}"
                ));
            } else if !is_live_model(&model) {
                r.problem(format!(
                    "OPENAI_LIVE_MODEL={model} is not a GPT-Live model but OPENAI_VOICE_API=live: set OPENAI_LIVE_MODEL={LIVE_DEFAULT_MODEL} (or gpt-live-1), or OPENAI_VOICE_API=realtime with OPENAI_REALTIME_MODEL={model}"
                ));
            }
            model
        }
    };
    VoiceEngine { api, model }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<VoiceEngine, Vec<String>> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let get = move |k: &str| map.get(k).cloned();
        let mut r = EnvReader::new(&get);
        let v = read_engine(&mut r);
        r.finish().map(|()| v).map_err(|e| e.0)
    }

    #[test]
    fn realtime_is_the_default_engine_with_its_default_model() {
        let e = read(&[]).unwrap();
        assert_eq!((e.api, e.model.as_str()), (VoiceApi::Realtime, crate::realtime::DEFAULT_MODEL));
    }

    #[test]
    fn live_has_its_own_model_default() {
        let e = read(&[("OPENAI_VOICE_API", "live")]).unwrap();
        assert_eq!((e.api, e.model.as_str()), (VoiceApi::Live, "gpt-live-1.1"));
        let e = read(&[("OPENAI_VOICE_API", "live"), ("OPENAI_LIVE_MODEL", "gpt-live-1")]).unwrap();
        assert_eq!(e.model, "gpt-live-1");
        // The Realtime model is not read on the Live engine (a leftover value is harmless).
        let e = read(&[("OPENAI_VOICE_API", "live"), ("OPENAI_REALTIME_MODEL", "gpt-realtime-2.1")]).unwrap();
        assert_eq!(e.model, "gpt-live-1.1");
    }

    #[test]
    fn a_model_of_the_other_engine_is_refused_naming_both_values() {
        let e = read(&[("OPENAI_REALTIME_MODEL", "gpt-live-1")]).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("OPENAI_REALTIME_MODEL=gpt-live-1") && e[0].contains("OPENAI_VOICE_API=realtime"),
            "{e:?}"
        );
        let e = read(&[("OPENAI_VOICE_API", "live"), ("OPENAI_LIVE_MODEL", "gpt-realtime-2.1")]).unwrap_err();
        assert!(
            e[0].contains("OPENAI_LIVE_MODEL=gpt-realtime-2.1") && e[0].contains("OPENAI_VOICE_API=live"),
            "{e:?}"
        );
    }

    #[test]
    fn an_unknown_engine_or_a_malformed_model_is_refused() {
        let e = read(&[("OPENAI_VOICE_API", "gpt-live")]).unwrap_err();
        assert!(e[0].contains("realtime") && e[0].contains("\"gpt-live\""), "{e:?}");
        let e = read(&[("OPENAI_VOICE_API", "live"), ("OPENAI_LIVE_MODEL", "gpt live")]).unwrap_err();
        assert!(e[0].contains("must be a model name"), "{e:?}");
    }
}
