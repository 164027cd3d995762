//! A JSON document generator for the differential targets, driven by the fuzzer's bytes.
//!
//! It starts from one of a protocol's real messages (the ones its fast path is written for,
//! and a few others), applies a handful of structural mutations — reorder, duplicate, drop or
//! add a field, replace a value (with an empty or nested object, an array, a literal, a float,
//! a negative or huge number, a string with escapes) — then writes it with random whitespace
//! and, now and then, escapes that need not be there. Most documents stay close enough to the
//! real shape for the fast path to accept them, which is where a disagreement with the full
//! parser can show; random bytes and seed mutations alone rarely get that far.

use arbitrary::{Result, Unstructured};

/// A JSON value, as the generator builds it.
#[derive(Debug, Clone)]
pub enum J {
    /// A string (escaped when written).
    Str(String),
    /// Written verbatim: numbers, literals, arrays.
    Raw(String),
    /// An object, fields in order (duplicates allowed).
    Obj(Vec<(String, J)>),
}

fn s(v: &str) -> J {
    J::Str(v.to_owned())
}

fn raw(v: &str) -> J {
    J::Raw(v.to_owned())
}

fn obj(fields: &[(&str, J)]) -> J {
    J::Obj(fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}

/// Vocabulary and base messages of one protocol.
#[derive(Debug, Clone, Copy)]
pub struct Vocabulary {
    /// Keys (top level and nested).
    pub keys: &'static [&'static str],
    /// String values.
    pub words: &'static [&'static str],
    /// The real messages mutations start from.
    pub base: fn(&mut Unstructured<'_>) -> Result<J>,
}

fn b64(u: &mut Unstructured<'_>) -> Result<String> {
    let len = u.int_in_range(0..=40)?;
    let bytes: Vec<u8> = (0..len).map(|_| u.arbitrary::<u8>()).collect::<Result<_>>()?;
    Ok(base64_simd::STANDARD.encode_to_string(bytes))
}

fn digits(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(if u.ratio(1, 8)? {
        u.arbitrary::<u64>()?.to_string()
    } else {
        u.int_in_range(0u32..=3000)?.to_string()
    })
}

fn twilio_base(u: &mut Unstructured<'_>) -> Result<J> {
    let sid = s("MZ18ad3ab5a668481ce02b83e7395059f0");
    Ok(match u.int_in_range(0..=9)? {
        0..=4 => obj(&[
            ("event", s("media")),
            ("sequenceNumber", J::Str(digits(u)?)),
            (
                "media",
                obj(&[
                    ("track", s("inbound")),
                    ("chunk", J::Str(digits(u)?)),
                    ("timestamp", J::Str(digits(u)?)),
                    ("payload", J::Str(b64(u)?)),
                ]),
            ),
            ("streamSid", sid),
        ]),
        5..=7 => obj(&[
            ("event", s("mark")),
            ("sequenceNumber", J::Str(digits(u)?)),
            ("streamSid", sid),
            ("mark", obj(&[("name", s("r7-c3-1840"))])),
        ]),
        8 => obj(&[("event", s("connected")), ("protocol", s("Call")), ("version", s("1.0.0"))]),
        _ => obj(&[
            ("event", s("stop")),
            ("sequenceNumber", J::Str(digits(u)?)),
            ("stop", obj(&[("accountSid", s("AC1")), ("callSid", s("CA1"))])),
            ("streamSid", sid),
        ]),
    })
}

fn openai_base(u: &mut Unstructured<'_>) -> Result<J> {
    let index = |u: &mut Unstructured<'_>| -> Result<J> {
        Ok(J::Raw(if u.ratio(1, 8)? {
            u.arbitrary::<u64>()?.to_string()
        } else {
            u.int_in_range(0u8..=3)?.to_string()
        }))
    };
    Ok(match u.int_in_range(0..=9)? {
        0..=7 => obj(&[
            ("type", s("response.output_audio.delta")),
            ("event_id", s("event_4950")),
            ("response_id", s("resp_CAbc123")),
            ("item_id", s("item_CAbc456")),
            ("output_index", index(u)?),
            ("content_index", index(u)?),
            ("delta", J::Str(b64(u)?)),
        ]),
        8 => obj(&[
            ("type", s("input_audio_buffer.speech_started")),
            ("event_id", s("e")),
            ("audio_start_ms", raw("1000")),
            ("item_id", s("item_1")),
        ]),
        _ => obj(&[
            ("type", s("response.done")),
            ("event_id", s("e")),
            ("response", obj(&[("id", s("resp_1")), ("status", s("completed"))])),
        ]),
    })
}

/// Twilio Media Streams (protocols.md A2).
pub const TWILIO: Vocabulary = Vocabulary {
    keys: &[
        "event",
        "sequenceNumber",
        "streamSid",
        "protocol",
        "version",
        "media",
        "mark",
        "start",
        "stop",
        "dtmf",
        "track",
        "chunk",
        "timestamp",
        "payload",
        "name",
        "extra",
    ],
    words: &[
        "media",
        "mark",
        "start",
        "stop",
        "dtmf",
        "connected",
        "inbound",
        "MZ1",
        "r1-c1-20",
        "1",
        "20",
        "",
    ],
    base: twilio_base,
};

/// OpenAI Realtime server events (protocols.md C4).
pub const OPENAI: Vocabulary = Vocabulary {
    keys: &[
        "type",
        "event_id",
        "response_id",
        "item_id",
        "output_index",
        "content_index",
        "delta",
        "transcript",
        "call_id",
        "name",
        "arguments",
        "audio_start_ms",
        "audio_end_ms",
        "response",
        "error",
        "obfuscation",
        "id",
        "status",
    ],
    words: &["response.output_audio.delta", "response.done", "error", "resp_1", "item_1", "AAAA", ""],
    base: openai_base,
};

/// Generates one document.
pub fn document(u: &mut Unstructured<'_>, voc: &Vocabulary) -> Result<Vec<u8>> {
    let mut doc = (voc.base)(u)?;
    for _ in 0..u.int_in_range(0..=4)? {
        mutate(u, voc, &mut doc)?;
    }
    let mut out = Vec::new();
    ws(u, &mut out)?;
    write(u, &doc, &mut out)?;
    ws(u, &mut out)?;
    if u.ratio(1, 64)? {
        out.push(*u.choose(b"x}],\" 0")?);
    }
    Ok(out)
}

fn mutate(u: &mut Unstructured<'_>, voc: &Vocabulary, doc: &mut J) -> Result<()> {
    let J::Obj(top) = doc else { return Ok(()) };
    // The object to change: the top level or one nested object.
    let nested: Vec<usize> =
        top.iter().enumerate().filter(|(_, (_, v))| matches!(v, J::Obj(_))).map(|(i, _)| i).collect();
    let fields = if !nested.is_empty() && u.ratio(1, 3)? {
        let i = *u.choose(&nested)?;
        let J::Obj(f) = &mut top[i].1 else { unreachable!() };
        f
    } else {
        top
    };
    let n = fields.len();
    match u.int_in_range(0..=5)? {
        0 if n >= 2 => {
            let (a, b) = (u.choose_index(n)?, u.choose_index(n)?);
            fields.swap(a, b);
        }
        1 if n >= 1 => {
            let i = u.choose_index(n)?;
            let f = fields[i].clone();
            let at = u.choose_index(n + 1)?;
            fields.insert(at, f);
        }
        2 if n >= 1 => {
            let i = u.choose_index(n)?;
            fields.remove(i);
        }
        3 if n >= 1 => {
            let i = u.choose_index(n)?;
            fields[i].1 = value(u, voc, 0)?;
        }
        _ => {
            let key =
                if u.ratio(1, 8)? { u.arbitrary::<String>()? } else { (*u.choose(voc.keys)?).to_owned() };
            let v = value(u, voc, 0)?;
            let at = u.choose_index(n + 1)?;
            fields.insert(at, (key, v));
        }
    }
    Ok(())
}

fn value(u: &mut Unstructured<'_>, voc: &Vocabulary, depth: u32) -> Result<J> {
    Ok(match u.int_in_range(0..=12)? {
        0..=2 => s(u.choose(voc.words)?),
        3 => J::Str(b64(u)?),
        4 => J::Str(digits(u)?),
        5 => J::Raw(digits(u)?),
        6 => J::Str(u.arbitrary()?),
        7 => raw(u.choose(&[
            "true",
            "false",
            "null",
            "1.5",
            "-1",
            "1e3",
            "0",
            "00",
            "-0",
            "18446744073709551615",
            "18446744073709551616",
            "[]",
            "[1,\"a\"]",
        ])?),
        8 => J::Obj(Vec::new()),
        9 if depth < 2 => {
            let mut fields = Vec::new();
            for _ in 0..u.int_in_range(1..=3)? {
                fields.push(((*u.choose(voc.keys)?).to_owned(), value(u, voc, depth + 1)?));
            }
            J::Obj(fields)
        }
        _ => s(u.choose(voc.words)?),
    })
}

fn ws(u: &mut Unstructured<'_>, out: &mut Vec<u8>) -> Result<()> {
    if u.ratio(1, 8)? {
        for _ in 0..u.int_in_range(1..=2)? {
            out.push(*u.choose(b" \n\r\t")?);
        }
    }
    Ok(())
}

fn write(u: &mut Unstructured<'_>, v: &J, out: &mut Vec<u8>) -> Result<()> {
    match v {
        J::Str(text) => string(u, text, out)?,
        J::Raw(text) => out.extend_from_slice(text.as_bytes()),
        J::Obj(fields) => {
            out.push(b'{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                ws(u, out)?;
                string(u, k, out)?;
                ws(u, out)?;
                out.push(b':');
                ws(u, out)?;
                write(u, v, out)?;
                ws(u, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Writes `text` as a JSON string: escapes what must be escaped and, now and then, a
/// character that need not be (`\u0062`, `\/`), which the fast paths must leave to the full
/// parser.
fn string(u: &mut Unstructured<'_>, text: &str, out: &mut Vec<u8>) -> Result<()> {
    let gratuitous = u.ratio(1, 32)?;
    out.push(b'"');
    for (i, c) in text.char_indices() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{0}'..='\u{1f}' => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            'a'..='z' if gratuitous && i == 0 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            '/' if gratuitous => out.extend_from_slice(b"\\/"),
            _ => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
    Ok(())
}
