//! How every Callway binary writes its logs: the gateway, the control plane and the simulators
//! call [`init`] once at start and get the same rules.
//!
//! - Logs go to **stderr** (stdout stays for what a command prints as its result).
//! - `LOG_FORMAT=json`: one JSON object per line (unchanged since the first release);
//!   `LOG_FORMAT=text` or unset: human-readable lines.
//! - Colours only when stderr is a terminal and `NO_COLOR` is unset or empty
//!   (<https://no-color.org>): a file, a pipe or journald gets plain text, never `ESC[2m`.
//! - `RUST_LOG` filters (each binary passes its own default, e.g. `info,sqlx=warn`).
//! - Every line goes through [`redact::redact`] before it is written: a full phone number or a
//!   stream token never reaches a log, whatever a call site formats by mistake. Call sites still
//!   mask what they log on purpose ([`redact::mask_phone`]); the writer is the safety net.
//!
//! This crate is deliberately tiny (`tracing-subscriber` and `memchr`): the gateway, the
//! control plane and the simulators depend on it without depending on each other.
#![forbid(unsafe_code)]

pub mod colour;
pub mod redact;
pub mod writer;

pub use redact::{mask_phone, mask_secret, redact};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines (colours on a terminal only).
    Text,
    /// One JSON object per line (`LOG_FORMAT=json`).
    Json,
}

impl Format {
    /// Reads `LOG_FORMAT`: unset or `text` is [`Format::Text`], `json` is [`Format::Json`];
    /// anything else is an error naming the accepted values (binaries report it at start with
    /// their other configuration problems).
    pub fn from_env() -> Result<Format, String> {
        Format::parse(std::env::var("LOG_FORMAT").ok().as_deref())
    }

    /// [`Format::from_env`] on a given value.
    pub fn parse(value: Option<&str>) -> Result<Format, String> {
        match value {
            None | Some("" | "text") => Ok(Format::Text),
            Some("json") => Ok(Format::Json),
            Some(other) => Err(format!("LOG_FORMAT must be json or text, got {other:?}")),
        }
    }
}

/// Installs the global `tracing` subscriber: `RUST_LOG` (else `default_filter`), `format`,
/// stderr, colours per [`colour::enabled`], every line redacted. Call once, first thing in
/// `main`; a second call (a test harness that already installed one) is ignored.
pub fn init(default_filter: &str, format: Format) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let writer = writer::RedactingStderr;
    let _ = match format {
        Format::Json => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .json()
            .with_current_span(true)
            .try_init(),
        Format::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(colour::enabled_for_stderr())
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_accepts_text_and_json_only() {
        assert_eq!(Format::parse(None), Ok(Format::Text));
        assert_eq!(Format::parse(Some("text")), Ok(Format::Text));
        assert_eq!(Format::parse(Some("json")), Ok(Format::Json));
        let e = Format::parse(Some("JSON")).unwrap_err();
        assert!(e.contains("json or text") && e.contains("\"JSON\""), "{e}");
    }
}
