//! The OpenAI Realtime settings both binaries read the same way: which model answers, and who
//! decides when the caller (or the web visitor) has finished speaking.
//!
//! Models were checked on 2026-12-06 against OpenAI's deprecations page and model pages:
//! `gpt-realtime` and `gpt-realtime-mini` (and their dated snapshots) shut down on 2027-01-20,
//! the recommended replacements being `gpt-realtime-2.1` and `gpt-realtime-2.1-mini`; the
//! `gpt-4o-*realtime-preview*` models are already shut down. GPT-Live models (`gpt-live-*`)
//! speak another protocol on another endpoint (`/v1/live/sessions`) and are refused on
//! `/v1/realtime` with `invalid_model`.
//!
//! | name | meaning | default |
//! |---|---|---|
//! | `OPENAI_REALTIME_MODEL` | the Realtime model | [`DEFAULT_MODEL`] |
//! | `REALTIME_TURN_DETECTION` | `server_vad`, `semantic_vad` or `none` (the client commits) | `server_vad` |
//! | `REALTIME_VAD_EAGERNESS` | `semantic_vad` only: `low`, `medium`, `high`, `auto` | `auto` |
//! | `REALTIME_USE_SERVER_VAD` | the original switch: `false` is `REALTIME_TURN_DETECTION=none` | `true` |

use crate::env::EnvReader;

/// The Realtime model used when `OPENAI_REALTIME_MODEL` is unset: the current GA model
/// (OpenAI's recommended replacement for `gpt-realtime`).
pub const DEFAULT_MODEL: &str = "gpt-realtime-2.1";

/// Realtime models with an announced shutdown, and what OpenAI recommends instead.
/// (model prefix, shutdown date, replacement). A prefix covers the dated snapshots.
const SCHEDULED_SHUTDOWNS: &[(&str, &str, &str)] = &[
    ("gpt-4o-realtime-preview", "already shut down", "gpt-realtime-2.1"),
    ("gpt-4o-mini-realtime-preview", "already shut down", "gpt-realtime-2.1-mini"),
    ("gpt-realtime-mini", "2027-01-20", "gpt-realtime-2.1-mini"),
    ("gpt-realtime-2025-08-28", "2027-01-20", "gpt-realtime-2.1"),
];

/// When `model` is one OpenAI has scheduled for shutdown (or already shut down): a sentence
/// for the operator saying when and what to use instead. `None` for current models.
pub fn shutdown_notice(model: &str) -> Option<String> {
    let (prefix, date, replacement) = if model == "gpt-realtime" {
        ("gpt-realtime", "2027-01-20", "gpt-realtime-2.1")
    } else {
        *SCHEDULED_SHUTDOWNS.iter().find(|(prefix, _, _)| model.starts_with(prefix))?
    };
    let when = if date.starts_with("already") { date.to_owned() } else { format!("shuts down on {date}") };
    Some(format!(
        "OPENAI_REALTIME_MODEL={model} ({prefix} family) {when}: set OPENAI_REALTIME_MODEL={replacement}"
    ))
}

/// Reads `OPENAI_REALTIME_MODEL`: a model name (letters, digits, `-`, `_`, `.`), not a GPT-Live
/// model. Defaults to [`DEFAULT_MODEL`].
pub fn read_model(r: &mut EnvReader<'_>) -> String {
    let model = r.opt("OPENAI_REALTIME_MODEL").unwrap_or_else(|| DEFAULT_MODEL.to_owned());
    if !model.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        r.problem(format!(
            "OPENAI_REALTIME_MODEL must be a model name (letters, digits, - _ .), got {model:?}"
        ));
    } else if model.starts_with("gpt-live") {
        r.problem(format!(
            "OPENAI_REALTIME_MODEL={model} is a GPT-Live model, which the Realtime API refuses (invalid_model): set a Realtime model such as {DEFAULT_MODEL}"
        ));
    }
    model
}

/// How eagerly `semantic_vad` ends the caller's turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eagerness {
    /// Waits longest: lets the caller take their time.
    Low,
    /// Balanced.
    Medium,
    /// Answers soonest.
    High,
    /// OpenAI's choice (currently the same as medium).
    Auto,
}

impl Eagerness {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Eagerness::Low => "low",
            Eagerness::Medium => "medium",
            Eagerness::High => "high",
            Eagerness::Auto => "auto",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "low" => Eagerness::Low,
            "medium" => Eagerness::Medium,
            "high" => Eagerness::High,
            "auto" => Eagerness::Auto,
            _ => return None,
        })
    }
}

/// Who decides that a turn has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnDetection {
    /// OpenAI, on the audio's energy and silence (`server_vad`).
    ServerVad,
    /// OpenAI, on what was said (`semantic_vad`).
    SemanticVad {
        /// How soon it answers.
        eagerness: Eagerness,
    },
    /// Nobody at OpenAI (`turn_detection: null`): the client commits the audio and asks for
    /// a response itself (the gateway's own commit policy).
    Off,
}

impl TurnDetection {
    /// Whether OpenAI detects turns (and so creates and interrupts responses itself).
    pub fn by_server(self) -> bool {
        !matches!(self, TurnDetection::Off)
    }

    /// The `REALTIME_TURN_DETECTION` spelling.
    pub fn name(self) -> &'static str {
        match self {
            TurnDetection::ServerVad => "server_vad",
            TurnDetection::SemanticVad { .. } => "semantic_vad",
            TurnDetection::Off => "none",
        }
    }
}

/// Reads `REALTIME_TURN_DETECTION`, `REALTIME_VAD_EAGERNESS` and the original
/// `REALTIME_USE_SERVER_VAD`, refusing combinations that contradict each other.
pub fn read_turn_detection(r: &mut EnvReader<'_>) -> TurnDetection {
    let legacy = r.opt("REALTIME_USE_SERVER_VAD").map(|_| r.bool("REALTIME_USE_SERVER_VAD", true));
    let eagerness = r.opt("REALTIME_VAD_EAGERNESS");
    let parsed_eagerness = match eagerness.as_deref().map(|e| (e, Eagerness::parse(e))) {
        None => Eagerness::Auto,
        Some((_, Some(e))) => e,
        Some((e, None)) => {
            r.problem(format!("REALTIME_VAD_EAGERNESS must be low, medium, high or auto, got {e:?}"));
            Eagerness::Auto
        }
    };
    let mut valid = true;
    let detection = match r.opt("REALTIME_TURN_DETECTION").as_deref() {
        None => match legacy {
            Some(false) => TurnDetection::Off,
            _ => TurnDetection::ServerVad,
        },
        Some("server_vad") => TurnDetection::ServerVad,
        Some("semantic_vad") => TurnDetection::SemanticVad { eagerness: parsed_eagerness },
        Some("none") => TurnDetection::Off,
        Some(other) => {
            r.problem(format!(
                "REALTIME_TURN_DETECTION must be server_vad, semantic_vad or none (the gateway commits), got {other:?}"
            ));
            valid = false;
            TurnDetection::ServerVad
        }
    };
    if let Some(legacy) = legacy
        && valid
        && r.opt("REALTIME_TURN_DETECTION").is_some()
        && legacy != detection.by_server()
    {
        r.problem(format!(
            "REALTIME_USE_SERVER_VAD={} contradicts REALTIME_TURN_DETECTION={}: unset REALTIME_USE_SERVER_VAD",
            if legacy { "true" } else { "false" },
            detection.name()
        ));
    }
    if valid && eagerness.is_some() && !matches!(detection, TurnDetection::SemanticVad { .. }) {
        r.problem(format!(
            "REALTIME_VAD_EAGERNESS only applies to REALTIME_TURN_DETECTION=semantic_vad (it is {}): unset it or switch to semantic_vad",
            detection.name()
        ));
    }
    detection
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read<T>(vars: &[(&str, &str)], f: impl Fn(&mut EnvReader<'_>) -> T) -> Result<T, Vec<String>> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let get = move |k: &str| map.get(k).cloned();
        let mut r = EnvReader::new(&get);
        let v = f(&mut r);
        r.finish().map(|()| v).map_err(|e| e.0)
    }

    #[test]
    fn the_default_model_is_the_current_ga_model() {
        assert_eq!(read(&[], read_model).unwrap(), "gpt-realtime-2.1");
        assert_eq!(shutdown_notice(DEFAULT_MODEL), None);
        assert_eq!(
            read(&[("OPENAI_REALTIME_MODEL", "gpt-realtime-2.1-mini")], read_model).unwrap(),
            "gpt-realtime-2.1-mini"
        );
    }

    #[test]
    fn retiring_models_are_accepted_with_a_notice_naming_the_date_and_replacement() {
        for (model, replacement) in [
            ("gpt-realtime", "gpt-realtime-2.1"),
            ("gpt-realtime-2025-08-28", "gpt-realtime-2.1"),
            ("gpt-realtime-mini", "gpt-realtime-2.1-mini"),
            ("gpt-realtime-mini-2025-10-06", "gpt-realtime-2.1-mini"),
        ] {
            assert_eq!(read(&[("OPENAI_REALTIME_MODEL", model)], read_model).unwrap(), model);
            let notice = shutdown_notice(model).unwrap();
            assert!(notice.contains("2027-01-20") && notice.ends_with(replacement), "{notice}");
        }
        assert!(shutdown_notice("gpt-4o-realtime-preview-2024-12-17").unwrap().contains("already shut down"));
        for current in ["gpt-realtime-2", "gpt-realtime-2.1", "gpt-realtime-2.1-mini", "gpt-realtime-1.5"] {
            assert_eq!(shutdown_notice(current), None, "{current}");
        }
    }

    #[test]
    fn a_live_model_or_a_malformed_name_is_refused_precisely() {
        let e = read(&[("OPENAI_REALTIME_MODEL", "gpt-live-1")], read_model).unwrap_err();
        assert!(e[0].contains("GPT-Live") && e[0].contains("gpt-realtime-2.1"), "{e:?}");
        let e = read(&[("OPENAI_REALTIME_MODEL", "gpt realtime")], read_model).unwrap_err();
        assert!(e[0].contains("must be a model name"), "{e:?}");
    }

    #[test]
    fn turn_detection_defaults_to_server_vad() {
        assert_eq!(read(&[], read_turn_detection).unwrap(), TurnDetection::ServerVad);
    }

    #[test]
    fn semantic_vad_with_and_without_eagerness() {
        assert_eq!(
            read(&[("REALTIME_TURN_DETECTION", "semantic_vad")], read_turn_detection).unwrap(),
            TurnDetection::SemanticVad { eagerness: Eagerness::Auto }
        );
        for (name, e) in [("low", Eagerness::Low), ("medium", Eagerness::Medium), ("high", Eagerness::High)] {
            assert_eq!(
                read(
                    &[("REALTIME_TURN_DETECTION", "semantic_vad"), ("REALTIME_VAD_EAGERNESS", name)],
                    read_turn_detection
                )
                .unwrap(),
                TurnDetection::SemanticVad { eagerness: e }
            );
            assert_eq!(e.as_str(), name);
        }
    }

    #[test]
    fn none_and_the_original_switch_mean_the_gateway_commits() {
        assert_eq!(
            read(&[("REALTIME_TURN_DETECTION", "none")], read_turn_detection).unwrap(),
            TurnDetection::Off
        );
        assert_eq!(
            read(&[("REALTIME_USE_SERVER_VAD", "false")], read_turn_detection).unwrap(),
            TurnDetection::Off
        );
        assert_eq!(
            read(&[("REALTIME_USE_SERVER_VAD", "1")], read_turn_detection).unwrap(),
            TurnDetection::ServerVad
        );
        assert_eq!(
            read(
                &[("REALTIME_USE_SERVER_VAD", "true"), ("REALTIME_TURN_DETECTION", "semantic_vad")],
                read_turn_detection
            )
            .unwrap(),
            TurnDetection::SemanticVad { eagerness: Eagerness::Auto }
        );
    }

    #[test]
    fn contradictions_and_bad_values_get_one_line_each() {
        let e = read(
            &[("REALTIME_USE_SERVER_VAD", "false"), ("REALTIME_TURN_DETECTION", "semantic_vad")],
            read_turn_detection,
        )
        .unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("contradicts"), "{e:?}");
        let e = read(
            &[("REALTIME_TURN_DETECTION", "server_vad"), ("REALTIME_VAD_EAGERNESS", "high")],
            read_turn_detection,
        )
        .unwrap_err();
        assert!(e[0].contains("only applies to REALTIME_TURN_DETECTION=semantic_vad"), "{e:?}");
        let e = read(
            &[("REALTIME_TURN_DETECTION", "semantic"), ("REALTIME_VAD_EAGERNESS", "eager")],
            read_turn_detection,
        )
        .unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e.iter().any(|m| m.contains("must be server_vad, semantic_vad or none")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("must be low, medium, high or auto")), "{e:?}");
    }
}
