//! The TwiML a simulated call runs, parsed with quick-xml.
//!
//! Supported: `<Response>` with `<Connect><Stream url name track statusCallback
//! statusCallbackMethod><Parameter name value/>…</Stream></Connect>` (the bidirectional stream),
//! `<Hangup/>`, `<Pause length>`, `<Say>` (takes time, plays nothing), `<Reject>`,
//! `<Redirect>`, `<Dial timeout action method callerId>` with one `<Number>` or `<Sip>` noun (or
//! the number as its text). Other verbs are kept as [`Verb::Other`] and skipped by the call runner, with
//! warning 12200, as Twilio skips what it does not know. Malformed XML is Twilio's 12100
//! (document parse failure); a well-formed document that breaks TwiML's rules is 12200.

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::codes;

/// A parsed TwiML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Twiml {
    /// The verbs of `<Response>`, in order.
    pub verbs: Vec<Verb>,
}

/// A TwiML verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// `<Connect>`: runs until the stream ends.
    Connect(Connect),
    /// `<Hangup/>`: ends the call.
    Hangup,
    /// `<Pause length="N"/>` (seconds, default 1).
    Pause {
        /// Seconds.
        length: u64,
    },
    /// `<Say>` text (the simulator spends about 60 ms per character, plays nothing).
    Say {
        /// The text.
        text: String,
        /// `language` (`fr-FR`, `en-US`…), if given.
        language: Option<String>,
    },
    /// `<Reject/>`: ends the call without answering.
    Reject {
        /// `rejected` or `busy`.
        reason: Option<String>,
    },
    /// `<Redirect>URL</Redirect>`: fetch new TwiML.
    Redirect {
        /// Where.
        url: String,
        /// `POST` unless said.
        method: Option<String>,
    },
    /// `<Dial>`: calls another party and bridges the call to it.
    Dial(Dial),
    /// A verb the simulator does not run (skipped).
    Other(String),
}

/// `<Dial>` and whom it calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// `action`: requested with `DialCallStatus` & co. when the dialled call ends; its answer
    /// is the call's next TwiML. Without it, the document goes on after `<Dial>`.
    pub action: Option<String>,
    /// `method` for `action` (`POST` default).
    pub method: Option<String>,
    /// `timeout`: seconds to let the dialled party ring (default 30, Twilio allows 5 to 600).
    pub timeout: u64,
    /// `callerId` shown to the dialled party (default: the call's own caller id).
    pub caller_id: Option<String>,
    /// Whom.
    pub target: DialTarget,
}

/// The party a `<Dial>` calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    /// `<Number>+33…</Number>`, or the number as `<Dial>`'s text.
    Number(String),
    /// `<Sip>sip:…</Sip>`.
    Sip(String),
}

impl DialTarget {
    /// The number or URI dialled.
    pub fn address(&self) -> &str {
        match self {
            DialTarget::Number(n) | DialTarget::Sip(n) => n,
        }
    }
}

/// `<Dial timeout>` when not given.
pub const DIAL_DEFAULT_TIMEOUT: u64 = 30;

/// `<Connect>` and what it connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// `action` URL (fetched for new TwiML when the stream ends).
    pub action: Option<String>,
    /// `method` for `action`.
    pub method: Option<String>,
    /// The `<Stream>` noun (`None` if `<Connect>` holds something else).
    pub stream: Option<StreamNoun>,
}

/// `<Stream>` inside `<Connect>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamNoun {
    /// The WebSocket URL, as written.
    pub url: String,
    /// `name`.
    pub name: Option<String>,
    /// `track` (a bidirectional stream only carries `inbound_track`).
    pub track: Option<String>,
    /// `statusCallback` URL.
    pub status_callback: Option<String>,
    /// `statusCallbackMethod` (`POST` default).
    pub status_callback_method: Option<String>,
    /// `<Parameter name value/>`s, in document order.
    pub parameters: Vec<(String, String)>,
}

/// Why TwiML was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwimlError {
    /// Not well-formed XML (12100).
    #[error("12100 Document parse failure: {0}")]
    Parse(String),
    /// Well-formed but not valid TwiML (12200).
    #[error("12200 Schema validation warning: {0}")]
    Invalid(String),
}

impl TwimlError {
    /// Twilio's code.
    pub fn code(&self) -> u32 {
        match self {
            TwimlError::Parse(_) => codes::TWIML_PARSE,
            TwimlError::Invalid(_) => codes::TWIML_INVALID,
        }
    }
}

#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn element(e: &quick_xml::events::BytesStart<'_>) -> Result<Element, TwimlError> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| TwimlError::Parse(err.to_string()))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a.unescape_value().map_err(|err| TwimlError::Parse(err.to_string()))?.into_owned();
        attrs.push((key, value));
    }
    Ok(Element { name, attrs, children: Vec::new(), text: String::new() })
}

fn parse_tree(xml: &str) -> Result<Element, TwimlError> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| TwimlError::Parse(format!("at byte {}: {e}", reader.buffer_position())))?;
        match event {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(TwimlError::Parse("content after the root element".into()));
                }
                stack.push(element(&e)?);
            }
            Event::Empty(e) => {
                let el = element(&e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err(TwimlError::Parse("content after the root element".into())),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| TwimlError::Parse("unexpected end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| TwimlError::Parse(e.to_string()))?;
                let text =
                    quick_xml::escape::unescape(&text).map_err(|e| TwimlError::Parse(e.to_string()))?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(TwimlError::Parse("text outside the root element".into())),
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| TwimlError::Parse(e.to_string()))?;
                let reference = format!("&{name};");
                let text =
                    quick_xml::escape::unescape(&reference).map_err(|e| TwimlError::Parse(e.to_string()))?;
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&text);
                }
            }
            Event::CData(c) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(TwimlError::Parse(format!("unclosed element <{}>", stack[stack.len() - 1].name)));
    }
    root.ok_or_else(|| TwimlError::Parse("empty document".into()))
}

/// Parses a TwiML document.
pub fn parse(xml: &str) -> Result<Twiml, TwimlError> {
    let root = parse_tree(xml)?;
    if root.name != "Response" {
        return Err(TwimlError::Invalid(format!("root element is <{}>, not <Response>", root.name)));
    }
    let mut verbs = Vec::new();
    for v in &root.children {
        verbs.push(match v.name.as_str() {
            "Connect" => Verb::Connect(parse_connect(v)?),
            "Hangup" => Verb::Hangup,
            "Pause" => Verb::Pause {
                length: match v.attr("length") {
                    None => 1,
                    Some(l) => {
                        l.parse().map_err(|_| TwimlError::Invalid(format!("<Pause length=\"{l}\">")))?
                    }
                },
            },
            "Say" => {
                Verb::Say { text: v.text.trim().to_owned(), language: v.attr("language").map(str::to_owned) }
            }
            "Reject" => Verb::Reject { reason: v.attr("reason").map(str::to_owned) },
            "Redirect" => {
                Verb::Redirect { url: v.text.trim().to_owned(), method: v.attr("method").map(str::to_owned) }
            }
            "Dial" => Verb::Dial(parse_dial(v)?),
            other => Verb::Other(other.to_owned()),
        });
    }
    Ok(Twiml { verbs })
}

fn parse_connect(c: &Element) -> Result<Connect, TwimlError> {
    let mut stream = None;
    for n in &c.children {
        if n.name != "Stream" {
            continue;
        }
        if stream.is_some() {
            return Err(TwimlError::Invalid("<Connect> holds more than one <Stream>".into()));
        }
        let url = n.attr("url").ok_or_else(|| TwimlError::Invalid("<Stream> without url".into()))?.to_owned();
        let mut parameters = Vec::new();
        for p in &n.children {
            if p.name != "Parameter" {
                return Err(TwimlError::Invalid(format!("<{}> inside <Stream>", p.name)));
            }
            let name =
                p.attr("name").ok_or_else(|| TwimlError::Invalid("<Parameter> without name".into()))?;
            let value = p.attr("value").unwrap_or("");
            if name.len() + value.len() >= 500 {
                return Err(TwimlError::Invalid(format!(
                    "<Parameter name=\"{name}\">: name plus value must be under 500 characters"
                )));
            }
            parameters.push((name.to_owned(), value.to_owned()));
        }
        stream = Some(StreamNoun {
            url,
            name: n.attr("name").map(str::to_owned),
            track: n.attr("track").map(str::to_owned),
            status_callback: n.attr("statusCallback").map(str::to_owned),
            status_callback_method: n.attr("statusCallbackMethod").map(str::to_owned),
            parameters,
        });
    }
    Ok(Connect {
        action: c.attr("action").map(str::to_owned),
        method: c.attr("method").map(str::to_owned),
        stream,
    })
}

fn parse_dial(d: &Element) -> Result<Dial, TwimlError> {
    let timeout = match d.attr("timeout") {
        None => DIAL_DEFAULT_TIMEOUT,
        Some(t) => match t.trim().parse::<u64>() {
            Ok(n) if (5..=600).contains(&n) => n,
            _ => {
                return Err(TwimlError::Invalid(format!(
                    "<Dial timeout=\"{t}\">: timeout must be a whole number of seconds from 5 to 600"
                )));
            }
        },
    };
    if let Some(m) = d.attr("method")
        && !m.eq_ignore_ascii_case("GET")
        && !m.eq_ignore_ascii_case("POST")
    {
        return Err(TwimlError::Invalid(format!("<Dial method=\"{m}\">: method must be GET or POST")));
    }
    let mut targets = Vec::new();
    for n in &d.children {
        let address = n.text.trim().to_owned();
        if address.is_empty() {
            return Err(TwimlError::Invalid(format!("<{}> inside <Dial> is empty", n.name)));
        }
        targets.push(match n.name.as_str() {
            "Number" => DialTarget::Number(address),
            "Sip" if address.starts_with("sip:") || address.starts_with("sips:") => DialTarget::Sip(address),
            "Sip" => {
                return Err(TwimlError::Invalid(format!("<Sip>{address}</Sip>: a SIP URI starts with sip:")));
            }
            other => {
                return Err(TwimlError::Invalid(format!(
                    "<{other}> inside <Dial>: the simulator dials <Number> and <Sip> only"
                )));
            }
        });
    }
    if targets.is_empty() && !d.text.trim().is_empty() {
        targets.push(DialTarget::Number(d.text.trim().to_owned()));
    } else if !d.text.trim().is_empty() {
        return Err(TwimlError::Invalid("<Dial> holds both text and nouns".into()));
    }
    if targets.len() > 1 {
        return Err(TwimlError::Invalid(format!(
            "<Dial> holds {} nouns: the simulator dials one party per <Dial>",
            targets.len()
        )));
    }
    let target = targets.pop().ok_or_else(|| TwimlError::Invalid("<Dial> with nothing to dial".into()))?;
    Ok(Dial {
        action: d.attr("action").map(str::to_owned),
        method: d.attr("method").map(str::to_ascii_uppercase),
        timeout,
        caller_id: d.attr("callerId").map(str::to_owned),
        target,
    })
}

/// Escapes an XML attribute value.
pub fn escape(value: &str) -> String {
    quick_xml::escape::escape(value).into_owned()
}

/// TwiML for "stream to `url` with `parameters`, then hang up", the way Twilio's libraries
/// write it (`statusCallback` added when given).
pub fn connect_stream(url: &str, status_callback: Option<&str>, parameters: &[(&str, &str)]) -> String {
    let mut s = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream"#);
    if let Some(cb) = status_callback {
        s.push_str(&format!(r#" statusCallback="{}""#, escape(cb)));
    }
    s.push_str(&format!(r#" url="{}">"#, escape(url)));
    for (name, value) in parameters {
        s.push_str(&format!(r#"<Parameter name="{}" value="{}" />"#, escape(name), escape(value)));
    }
    s.push_str("</Stream></Connect><Hangup /></Response>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_is_parsed_with_its_attributes_and_noun() {
        let t = parse(
            r#"<?xml version="1.0"?><Response><Dial timeout="20" action="https://cp.example/twilio/transfer?call_id=1&amp;x=2" method="POST" callerId="+33159000000"><Number>+33612345678</Number></Dial><Say>après</Say></Response>"#,
        )
        .unwrap();
        assert_eq!(
            t.verbs[0],
            Verb::Dial(Dial {
                action: Some("https://cp.example/twilio/transfer?call_id=1&x=2".into()),
                method: Some("POST".into()),
                timeout: 20,
                caller_id: Some("+33159000000".into()),
                target: DialTarget::Number("+33612345678".into()),
            })
        );
        assert!(matches!(t.verbs[1], Verb::Say { .. }));
        let sip = parse("<Response><Dial><Sip>sip:agent@pbx.example.eu</Sip></Dial></Response>").unwrap();
        let Verb::Dial(d) = &sip.verbs[0] else { panic!("{sip:?}") };
        assert_eq!((d.timeout, d.action.as_deref()), (DIAL_DEFAULT_TIMEOUT, None));
        assert_eq!(d.target, DialTarget::Sip("sip:agent@pbx.example.eu".into()));
        let text = parse("<Response><Dial> +33612345678 </Dial></Response>").unwrap();
        assert_eq!(
            text.verbs[0],
            Verb::Dial(Dial { target: DialTarget::Number("+33612345678".into()), ..d.clone() })
        );
    }

    #[test]
    fn bad_dials_are_refused_with_twilio_codes() {
        for (xml, what) in [
            ("<Response><Dial><Conference>room</Conference></Dial></Response>", "<Conference> inside <Dial>"),
            ("<Response><Dial></Dial></Response>", "nothing to dial"),
            (
                "<Response><Dial timeout=\"2\"><Number>+33612345678</Number></Dial></Response>",
                "from 5 to 600",
            ),
            ("<Response><Dial timeout=\"x\">+33612345678</Dial></Response>", "timeout must be"),
            ("<Response><Dial method=\"PUT\">+33612345678</Dial></Response>", "GET or POST"),
            ("<Response><Dial><Sip>agent@pbx</Sip></Dial></Response>", "starts with sip:"),
            ("<Response><Dial><Number></Number></Dial></Response>", "is empty"),
            (
                "<Response><Dial><Number>+33612345678</Number><Number>+33612345679</Number></Dial></Response>",
                "one party",
            ),
        ] {
            let e = parse(xml).unwrap_err();
            assert_eq!(e.code(), codes::TWIML_INVALID, "{xml}");
            assert!(e.to_string().contains(what), "{xml}: {e}");
        }
        assert_eq!(parse("<Response><Dial>+336</Response>").unwrap_err().code(), codes::TWIML_PARSE);
    }
}
