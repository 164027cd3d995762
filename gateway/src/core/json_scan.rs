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
    /// The field's value is an object (top level only: deeper nesting is outside the subset).
    /// Reported before the object's own fields, which follow with this key as their parent, so
    /// that an empty object, or an object where a scalar belongs, is seen too.
    Object,
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
    s.iter().fold(0u8, |acc, &c| acc | u8::from(c < 0x20) | u8::from(c == b'\\')) != 0
}

/// Strings up to this length are scanned byte by byte; longer ones (audio) with `memchr`
/// and a vectorised check. A call to `memchr` costs more than a short loop.
const SHORT_STRING: usize = 48;

/// Reads a string starting at the opening quote `b[i]`; returns its contents and the index
/// after the closing quote.
#[inline]
fn string(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let short_end = (start + SHORT_STRING).min(b.len());
    let mut j = start;
    while j < short_end {
        let c = b[j];
        if c == b'"' {
            return Some((&b[start..j], j + 1));
        }
        if c < 0x20 || c == b'\\' {
            return None;
        }
        j += 1;
    }
    let end = j + memchr::memchr(b'"', &b[j..])?;
    if has_escape_or_control(&b[j..end]) {
        return None;
    }
    Some((&b[start..end], end + 1))
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

fn object<'a, F>(b: &'a [u8], i: usize, parent: Parent<'a>, on_field: &mut F) -> Option<usize>
where
    F: FnMut(Parent<'a>, &'a [u8], Value<'a>) -> Option<()>,
{
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
                on_field(parent, key, Value::Object)?;
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
#[inline]
pub fn scan<'a, F>(b: &'a [u8], on_field: &mut F) -> Option<()>
where
    F: FnMut(Parent<'a>, &'a [u8], Value<'a>) -> Option<()>,
{
    let start = skip_ws(b, 0);
    let end = object(b, start, None, on_field)?;
    (skip_ws(b, end) == b.len()).then_some(())
}

/// Whether `s` is canonical standard base64 (alphabet, padding, length): the SIMD check of
/// base64-simd. Both the fast and the full parsers use it on audio, so they agree.
#[inline]
pub fn is_base64(s: &[u8]) -> bool {
    base64_simd::STANDARD.check(s).is_ok()
}

/// Matches a message against the exact layout a service documents: fixed literals compared
/// in one go, only the variable fields scanned. Cheaper than [`scan`] (a handful of
/// data-dependent branches instead of two per string) and used first; any mismatch sends the
/// caller to [`scan`] and then to the full parser.
#[derive(Debug)]
pub struct Template<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Template<'a> {
    /// Starts at the beginning of `b`.
    #[inline]
    pub fn new(b: &'a [u8]) -> Self {
        Self { b, i: 0 }
    }

    /// The next bytes are exactly `lit`.
    #[inline]
    pub fn lit(&mut self, lit: &[u8]) -> Option<()> {
        let end = self.i + lit.len();
        if self.b.get(self.i..end)? != lit {
            return None;
        }
        self.i = end;
        Some(())
    }

    /// A short string's contents (ids, names) up to the closing quote, which is consumed. No
    /// backslash (escapes go to the full parser) and no control character, as JSON requires.
    #[inline]
    pub fn short_str(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        let window = &self.b[start..(start + SHORT_STRING).min(self.b.len())];
        let len = memchr::memchr(b'"', window)?;
        let s = &window[..len];
        if has_escape_or_control(s) {
            return None;
        }
        self.i = start + len + 1;
        Some(s)
    }

    /// 1 to 19 digits followed by a closing quote (Twilio's numbers-as-strings).
    #[inline]
    pub fn digit_str(&mut self) -> Option<u64> {
        let (v, end) = integer_digits(self.b, self.i)?;
        if self.b.get(end) != Some(&b'"') {
            return None;
        }
        self.i = end + 1;
        Some(v)
    }

    /// A bare JSON integer (no leading zeros, no fraction).
    #[inline]
    pub fn int(&mut self) -> Option<u64> {
        let (v, end) = integer(self.b, self.i)?;
        self.i = end;
        Some(v)
    }

    /// Base64 audio up to the closing quote (consumed), checked with [`is_base64`].
    #[inline]
    pub fn base64_str(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        let end = start + memchr::memchr(b'"', &self.b[start..])?;
        let s = &self.b[start..end];
        if !is_base64(s) {
            return None;
        }
        self.i = end + 1;
        Some(s)
    }

    /// The message ends here.
    #[inline]
    pub fn end(&self) -> Option<()> {
        (self.i == self.b.len()).then_some(())
    }
}

fn integer_digits(b: &[u8], start: usize) -> Option<(u64, usize)> {
    let mut i = start;
    let mut v: u64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        if i - start == 19 {
            return None;
        }
        v = v * 10 + u64::from(b[i] - b'0');
        i += 1;
    }
    (i > start).then_some((v, i))
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
        assert_eq!(f.len(), 5);
        assert_eq!(f[2], r#"None/o=Object"#);
        assert_eq!(fields("{}").unwrap().len(), 0);
        // An empty object is reported too (found by the differential fuzz targets: it was
        // invisible, so `"media":{}` or `"transcript":{}` slipped past the fast paths).
        assert_eq!(fields(r#"{"e":{}}"#).unwrap(), [r#"None/e=Object"#]);
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
    fn short_strings() {
        let mut t = Template::new(b"MZ18ad\"rest");
        assert_eq!(t.short_str(), Some(&b"MZ18ad"[..]));
        assert_eq!(t.lit(b"rest"), Some(()));
        assert_eq!(Template::new(b"a\\b\"").short_str(), None);
        assert_eq!(Template::new(b"a\x01b\"").short_str(), None);
        assert_eq!(Template::new("é\"".as_bytes()).short_str(), Some("é".as_bytes()));
        assert_eq!(Template::new(&[b'a'; SHORT_STRING + 1]).short_str(), None);
    }

    #[test]
    fn alphabet_checks() {
        assert!(is_base64(b"AZaz09+/"));
        assert!(is_base64(b"AA=="));
        assert!(!is_base64(b"ab-c"));
        assert!(!is_base64(b"ab c"));
        assert!(!is_base64(b"AAA"));
        assert!(has_escape_or_control(b"a\\b"));
        assert!(has_escape_or_control(b"a\x1fb"));
        assert!(!has_escape_or_control("é✓".as_bytes()));
    }
}
