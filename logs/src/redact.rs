//! Masking of what must never be written in clear: phone numbers and stream tokens (and, for
//! the simulators' banners, secrets).
//!
//! [`redact`] finds, anywhere in a line:
//! - an E.164 number, `+` then 7 to 15 digits, also URL-encoded (`%2B33612345678`), and
//!   replaces it with [`mask_phone`]'s form (`+33******78`);
//! - a stream token (`v1.` followed by 40 or more base64url characters and dots, the shape of
//!   `contract::stream_token`), wherever it is (a `<Stream url>` path, a WebSocket URL), and
//!   replaces it with `v1.[redacted]`.
//!
//! A line without either is returned as it is, without copying.

use std::borrow::Cow;

/// What a stream token becomes in a log line.
pub const TOKEN_REDACTED: &str = "v1.[redacted]";

/// Shortest run after `v1.` taken for a token (a real one has 114 characters).
const MIN_TOKEN_TAIL: usize = 40;
/// Digits of an E.164 number (ITU-T E.164: at most 15; national numbers are at least 6 long
/// with their country code).
const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

/// `text` with every phone number and stream token masked.
pub fn redact(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while let Some(off) = memchr::memchr3(b'+', b'%', b'v', &bytes[i..]) {
        let at = i + off;
        match sensitive_at(text, at) {
            Some((len, masked)) => {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                o.push_str(&text[copied..at]);
                o.push_str(&masked);
                i = at + len;
                copied = i;
            }
            None => i = at + 1,
        }
    }
    match out {
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
        None => Cow::Borrowed(text),
    }
}

/// A phone number or token starting at byte `at`: its length and its masked form.
fn sensitive_at(text: &str, at: usize) -> Option<(usize, String)> {
    let b = text.as_bytes();
    let rest = &b[at..];
    let prefix = if rest.starts_with(b"+") {
        1
    } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2b") {
        3
    } else if rest.starts_with(b"v1.") {
        // Not inside a word (`dev1.…`).
        if at > 0 && (b[at - 1].is_ascii_alphanumeric()) {
            return None;
        }
        let tail = rest[3..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            .count();
        return (tail >= MIN_TOKEN_TAIL).then(|| (3 + tail, TOKEN_REDACTED.to_owned()));
    } else {
        return None;
    };
    let digits = rest[prefix..].iter().take_while(|c| c.is_ascii_digit()).count();
    if !PHONE_DIGITS.contains(&digits) {
        return None;
    }
    let number = &text[at + prefix..at + prefix + digits];
    Some((prefix + digits, mask_digits(number)))
}

/// Masks a phone number for logs and screens: the country calling code and the last two digits
/// kept, a fixed run of stars between (`+33612345678` → `+33******78`): the mask hides the
/// number's length too. Separators in the input are ignored; fewer than 6 digits give `+***`.
pub fn mask_phone(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    mask_digits(&digits)
}

fn mask_digits(digits: &str) -> String {
    if digits.len() < 6 {
        return "+***".into();
    }
    let cc = country_code_len(digits);
    let mut out = String::with_capacity(cc + 9);
    out.push('+');
    out.push_str(&digits[..cc]);
    out.push_str("******");
    out.push_str(&digits[digits.len() - 2..]);
    out
}

/// Length of the country calling code at the start of `digits`. E.164 codes are prefix-free:
/// `1` and `7` are the one-digit zones, the two-digit codes are listed below (ITU-T E.164
/// assignments), every other code has three digits.
fn country_code_len(digits: &str) -> usize {
    const TWO_DIGIT: &[&str] = &[
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48",
        "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81",
        "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
    ];
    match digits.as_bytes().first() {
        Some(b'1' | b'7') => 1,
        _ if TWO_DIGIT.contains(&&digits[..2]) => 2,
        _ => 3,
    }
}

/// Masks a secret for a banner: its first four characters and its length (`sk-d… (24
/// characters)`); a secret shorter than 12 characters shows none of it.
pub fn mask_secret(secret: &str) -> String {
    let n = secret.chars().count();
    if n < 12 {
        return format!("*** ({n} characters)");
    }
    let head: String = secret.chars().take(4).collect();
    format!("{head}… ({n} characters)")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "v1.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8AAAAAZ1oHgAECAwQFBgcICQoL.4k3wQ2Zx0pYc8Hn5mXr2V1bT6sLq9dEjFgUaKoNi7ePw";

    #[test]
    fn numbers_keep_their_country_code_and_last_two_digits() {
        assert_eq!(mask_phone("+33612345678"), "+33******78");
        assert_eq!(mask_phone("+12025550143"), "+1******43");
        assert_eq!(mask_phone("+4915123456789"), "+49******89");
        assert_eq!(mask_phone("+352621123456"), "+352******56");
        assert_eq!(mask_phone("+33 6 12 34 56 78"), "+33******78");
        assert_eq!(mask_phone("+123"), "+***");
    }

    #[test]
    fn a_line_loses_its_numbers_and_tokens() {
        let line = format!(
            "call CA1 +33612345678 -> %2B33159000000 wss://127.0.0.1:8443/api/twilio/media-stream/{TOKEN} done"
        );
        assert_eq!(
            redact(&line),
            "call CA1 +33******78 -> +33******00 wss://127.0.0.1:8443/api/twilio/media-stream/v1.[redacted] done"
        );
        let json = format!(r#"{{"to":"+447400123456","token":"{TOKEN}"}}"#);
        assert_eq!(redact(&json), r#"{"to":"+44******56","token":"v1.[redacted]"}"#);
    }

    #[test]
    fn ordinary_lines_are_left_alone_and_not_copied() {
        for line in [
            "2026-12-06T10:00:00.123+01:00 INFO listening on 127.0.0.1:8080",
            "GET /v1/realtime/calls 404 +5 ms %20 dev1.abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
            "api version v1.2 answered; sum 1+2=3",
            "ends with +",
        ] {
            assert!(matches!(redact(line), Cow::Borrowed(_)), "{line}");
        }
    }

    #[test]
    fn secrets_show_four_characters_at_most() {
        assert_eq!(mask_secret("sk-demo"), "*** (7 characters)");
        assert_eq!(mask_secret("demo-auth-token-0123456789abcdef"), "demo… (32 characters)");
    }
}
