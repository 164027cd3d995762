//! The fast path's JSON: a scanner for the strict subset of JSON that hot events use.
//!
//! It walks one object (and objects nested one level inside it) and reports each field whose
//! value is a string without escapes or a non-negative integer. Anything outside that subset —
//! an escape, a float, `true`/`false`/`null`, an array, deeper nesting, trailing bytes — makes
//! it give up (`None`), and the caller falls back to the full parser (simd-json). Giving up is
//! always safe; accepting must mean the full parser would read the same values, which the
//! differential fuzz target checks.
//!
//! Input is assumed to be valid UTF-8 (the WebSocket decoder guarantees it for text frames).

/// A field value in the fast subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// A string with no escapes and no control characters (the bytes between the quotes).
    Str(&'a [u8]),
    /// A non-negative integer without leading zeros that fits a `u64`.
    Int(u64),
}

/// Where a field sits: at the top level, or inside the object under `parent`.
pub type Parent<'a> = Option<&'a [u8]>;

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

/// Whether `s` contains a byte a plain JSON string may not hold unescaped (control characters)
/// or a backslash (an escape, which the fast path does not decode). Branch-free so it
/// vectorises over long audio payloads.
#[inline]
pub fn has_escape_or_control(s: &[u8]) -> bool {
    s.iter().fold(false, |acc, &c| acc | (c < 0x20) | (c == b'\\'))
}

/// Whether every byte of `s` is in the standard base64 alphabet (padding included).
/// Branch-free so it vectorises.
#[inline]
pub fn is_base64_alphabet(s: &[u8]) -> bool {
    s.iter().fold(true, |acc, &c| {
        let alpha = (c | 0x20).wrapping_sub(b'a') < 26;
        let digit = c.wrapping_sub(b'0') < 10;
        acc & (alpha | digit | (c == b'+') | (c == b'/') | (c == b'='))
    })
}

/// Reads a string starting at the opening quote `b[i]`; returns its contents and the index
/// after the closing quote.
#[inline]
fn string(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let end = i + 1 + memchr::memchr(b'"', &b[i + 1..])?;
    let s = &b[i + 1..end];
    if has_escape_or_control(s) {
        return None;
    }
    Some((s, end + 1))
}

#[inline]
fn integer(b: &[u8], mut i: usize) -> Option<(u64, usize)> {
    let start = i;
    let mut v: u64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add(u64::from(b[i] - b'0'))?;
        i += 1;
    }
    let n = i - start;
    if n == 0 || (n > 1 && b[start] == b'0') {
        return None;
    }
    // A fraction or exponent makes it a float: not ours.
    if matches!(b.get(i), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    Some((v, i))
}

fn object<'a>(
    b: &'a [u8],
    i: usize,
    parent: Parent<'a>,
    on_field: &mut dyn FnMut(Parent<'a>, &'a [u8], Value<'a>) -> Option<()>,
) -> Option<usize> {
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        let (key, next) = string(b, i)?;
        i = skip_ws(b, next);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        match *b.get(i)? {
            b'"' => {
                let (s, next) = string(b, i)?;
                on_field(parent, key, Value::Str(s))?;
                i = next;
            }
            b'0'..=b'9' => {
                let (v, next) = integer(b, i)?;
                on_field(parent, key, Value::Int(v))?;
                i = next;
            }
            b'{' if parent.is_none() => {
                i = object(b, i, Some(key), on_field)?;
            }
            _ => return None,
        }
        i = skip_ws(b, i);
        match *b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// Scans the whole of `b` as one object, calling `on_field` for each field (nested fields with
/// their parent's key). `on_field` returns `None` to give up. Returns `None` if `b` is not
/// entirely in the fast subset.
pub fn scan<'a>(
    b: &'a [u8],
    on_field: &mut dyn FnMut(Parent<'a>, &'a [u8], Value<'a>) -> Option<()>,
) -> Option<()> {
    let start = skip_ws(b, 0);
    let end = object(b, start, None, on_field)?;
    (skip_ws(b, end) == b.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(s: &str) -> Option<Vec<String>> {
        let mut out = Vec::new();
        scan(s.as_bytes(), &mut |p, k, v| {
            let p = p.map(|p| String::from_utf8_lossy(p).into_owned());
            out.push(format!("{p:?}/{}={v:?}", String::from_utf8_lossy(k)));
            Some(())
        })?;
        Some(out)
    }

    #[test]
    fn reads_the_subset() {
        let f = fields(r#" {"a":"x", "n" : 12 ,"o":{"b":"y","m":0}} "#).unwrap();
        assert_eq!(f.len(), 4);
        assert_eq!(fields("{}").unwrap().len(), 0);
    }

    #[test]
    fn gives_up_outside_the_subset() {
        for s in [
            r#"{"a":"x\"y"}"#,
            r#"{"a":"\u0041"}"#,
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":-1}"#,
            r#"{"a":01}"#,
            r#"{"a":true}"#,
            r#"{"a":null}"#,
            r#"{"a":[1]}"#,
            r#"{"a":{"b":{"c":1}}}"#,
            r#"{"a":"x"} x"#,
            r#"{"a":"x",}"#,
            r#"{"a" "x"}"#,
            r#"{"a":"x""#,
            "{\"a\":\"x\ty\"}",
            r#"{"a":99999999999999999999}"#,
            "",
            "[]",
        ] {
            assert!(fields(s).is_none(), "{s}");
        }
    }

    #[test]
    fn alphabet_checks() {
        assert!(is_base64_alphabet(b"AZaz09+/=="));
        assert!(!is_base64_alphabet(b"ab-c"));
        assert!(!is_base64_alphabet(b"ab c"));
        assert!(has_escape_or_control(b"a\\b"));
        assert!(has_escape_or_control(b"a\x1fb"));
        assert!(!has_escape_or_control("é✓".as_bytes()));
    }
}
