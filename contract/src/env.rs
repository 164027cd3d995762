//! How both binaries read their configuration: from the environment (or a map in tests),
//! collecting every problem — one precise line per missing or bad value, all at once — instead
//! of stopping at the first. No message ever repeats a secret's value.

use std::net::SocketAddr;

/// Every problem found in the environment, one line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads named values through a lookup function and records what is wrong with them.
pub struct EnvReader<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<String>,
}

impl<'a> EnvReader<'a> {
    /// A reader over `get` (`|k| std::env::var(k).ok()`, or a map in tests).
    pub fn new(get: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { get, errors: Vec::new() }
    }

    /// Records a problem found by the caller's own checks.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.errors.push(message.into());
    }

    /// `Ok` if nothing was wrong, else every problem.
    pub fn finish(self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() { Ok(()) } else { Err(ConfigErrors(self.errors)) }
    }

    /// The trimmed value; unset and blank are the same.
    pub fn opt(&self, name: &str) -> Option<String> {
        (self.get)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A value that must be set; `hint` says what it is.
    pub fn required(&mut self, name: &str, hint: &str) -> String {
        self.opt(name).unwrap_or_else(|| {
            self.errors.push(format!("{name} is not set: {hint}"));
            String::new()
        })
    }

    /// An `http(s)://` URL without query or fragment, trailing `/` removed; `default` when
    /// unset, else required (`hint` says what it is).
    pub fn url(&mut self, name: &str, default: Option<&str>, hint: &str) -> String {
        let v = match (self.opt(name), default) {
            (Some(v), _) => v,
            (None, Some(d)) => return d.to_owned(),
            (None, None) => {
                self.errors.push(format!("{name} is not set: {hint}"));
                return String::new();
            }
        };
        if !(v.starts_with("https://") || v.starts_with("http://")) || v.contains(char::is_whitespace) {
            self.errors.push(format!("{name} must be an http(s):// URL, got {v:?}"));
        } else if v.contains('?') || v.contains('#') {
            self.errors.push(format!("{name} must not carry a query string or fragment, got {v:?}"));
        }
        v.trim_end_matches('/').to_owned()
    }

    /// A secret shared by the gateway and the control plane, at least `min` bytes; its value
    /// never appears in a message.
    pub fn secret(&mut self, name: &str, min: usize) -> Vec<u8> {
        let Some(v) = self.opt(name) else {
            self.errors.push(format!(
                "{name} is not set: generate one with `openssl rand -base64 48` and give the gateway and the control plane the same value"
            ));
            return Vec::new();
        };
        if v.len() < min {
            self.errors.push(format!(
                "{name} is {} bytes, at least {min} are required: generate one with `openssl rand -base64 48` (the same value on the gateway and the control plane)",
                v.len()
            ));
        }
        v.into_bytes()
    }

    /// The previous value of the secret `current_name` during a rotation (`name`, e.g.
    /// `STREAM_TOKEN_SECRET_PREVIOUS`): optional, at least `min` bytes, and not the current
    /// value (that would be a rotation that rotates nothing). Verifiers accept both values;
    /// signers use only the current one. Its value never appears in a message.
    pub fn previous_secret(
        &mut self,
        name: &str,
        current_name: &str,
        current: &[u8],
        min: usize,
    ) -> Option<Vec<u8>> {
        let v = self.opt(name)?;
        if v.len() < min {
            self.errors.push(format!(
                "{name} is {} bytes, at least {min} are required: it must be the exact value {current_name} had before the rotation (or unset it once the rotation is over)",
                v.len()
            ));
        } else if v.as_bytes() == current {
            self.errors.push(format!(
                "{name} is the same value as {current_name}: set {current_name} to the new secret and {name} to the old one, or unset {name}"
            ));
        }
        Some(v.into_bytes())
    }

    /// `1/0`, `true/false`, `yes/no`, `on/off`; `default` when unset.
    pub fn bool(&mut self, name: &str, default: bool) -> bool {
        match self.opt(name).as_deref() {
            None => default,
            Some("0" | "false" | "no" | "off") => false,
            Some("1" | "true" | "yes" | "on") => true,
            Some(other) => {
                self.errors.push(format!("{name} must be 1/0 (or true/false), got {other:?}"));
                default
            }
        }
    }

    /// A whole number in `min..=max`; `default` when unset.
    pub fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
        &mut self,
        name: &str,
        default: T,
        min: T,
        max: T,
    ) -> T {
        let Some(v) = self.opt(name) else { return default };
        match v.parse::<T>() {
            Ok(n) if n >= min && n <= max => n,
            _ => {
                self.errors.push(format!("{name} must be a whole number from {min} to {max}, got {v:?}"));
                default
            }
        }
    }

    /// An `ip:port`; `default` (which must parse) when unset.
    pub fn addr(&mut self, name: &str, default: &str) -> SocketAddr {
        let fallback: SocketAddr = default.parse().expect("the default address is a valid ip:port");
        let Some(raw) = self.opt(name) else { return fallback };
        raw.parse().unwrap_or_else(|_| {
            self.errors.push(format!("{name} must be ip:port (e.g. {default}), got {raw:?}"));
            fallback
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn every_problem_is_reported_once_and_secrets_never_shown() {
        let m: HashMap<&str, &str> = HashMap::from([
            ("URL", "ftp://x"),
            ("Q", "https://x/?a=1"),
            ("SECRET", "short-secret-value"),
            ("FLAG", "maybe"),
            ("N", "0"),
            ("ADDR", "localhost"),
            ("BLANK", "   "),
        ]);
        let get = |k: &str| m.get(k).map(|v| v.to_string());
        let mut r = EnvReader::new(&get);
        assert_eq!(r.url("URL", None, "a URL"), "ftp://x");
        r.url("Q", None, "a URL");
        r.url("MISSING_URL", None, "the public URL");
        assert_eq!(r.url("DEFAULTED", Some("https://d"), ""), "https://d");
        r.secret("SECRET", 32);
        r.secret("NO_SECRET", 32);
        assert!(!r.bool("FLAG", false));
        assert_eq!(r.number("N", 5u32, 1, 10), 5);
        assert_eq!(r.addr("ADDR", "0.0.0.0:80"), "0.0.0.0:80".parse().unwrap());
        assert_eq!(r.required("BLANK", "something"), "");
        let e = r.finish().unwrap_err();
        let text = e.to_string();
        assert_eq!(e.0.len(), 9, "{text}");
        for needle in [
            "URL must be an http(s):// URL",
            "Q must not carry a query string",
            "MISSING_URL is not set: the public URL",
            "SECRET is 18 bytes, at least 32",
            "NO_SECRET is not set",
            "FLAG must be 1/0",
            "N must be a whole number from 1 to 10",
            "ADDR must be ip:port",
            "BLANK is not set: something",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        assert!(!text.contains("short-secret-value"));
    }

    #[test]
    fn a_previous_secret_is_optional_long_enough_and_not_the_current_one() {
        let current = "0123456789abcdef0123456789abcdef-current";
        let m: HashMap<&str, &str> = HashMap::from([
            ("A_PREVIOUS", "0123456789abcdef0123456789abcdef-old"),
            ("B_PREVIOUS", "short-old-value"),
            ("C_PREVIOUS", current),
        ]);
        let get = |k: &str| m.get(k).map(|v| v.to_string());
        let mut r = EnvReader::new(&get);
        assert_eq!(r.previous_secret("UNSET_PREVIOUS", "UNSET", current.as_bytes(), 32), None);
        assert_eq!(
            r.previous_secret("A_PREVIOUS", "A", current.as_bytes(), 32).as_deref(),
            Some(&b"0123456789abcdef0123456789abcdef-old"[..])
        );
        r.previous_secret("B_PREVIOUS", "B", current.as_bytes(), 32);
        r.previous_secret("C_PREVIOUS", "C", current.as_bytes(), 32);
        let text = r.finish().unwrap_err().to_string();
        assert!(text.contains("B_PREVIOUS is 15 bytes, at least 32"), "{text}");
        assert!(text.contains("C_PREVIOUS is the same value as C"), "{text}");
        assert!(!text.contains("short-old-value") && !text.contains(current), "{text}");
        assert!(!text.contains("A_PREVIOUS") && !text.contains("UNSET"), "{text}");
    }
}
