//! The fixed points of shared/testing.md: TwiML as Twilio's library writes it, and the
//! signature vectors, checked against the simulator's parser and signer and against
//! contract's `verify_form`/`verify_upgrade`.

use callway_sim_twilio::callbacks;
use callway_sim_twilio::caller::connect::upgrade_signature;
use callway_sim_twilio::twiml::{self, Connect, StreamNoun, Twiml, TwimlError, Verb};
use contract::twilio_signature::{TwilioSigner, UpgradeSignature};

const TESTING_MD_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://edge.example.eu/api/twilio/media-stream/v1.abc.def"><Parameter name="lead_id" value="42" /></Stream></Connect><Hangup /></Response>"#;

fn expected(status_callback: Option<&str>) -> Twiml {
    Twiml {
        verbs: vec![
            Verb::Connect(Connect {
                action: None,
                method: None,
                stream: Some(StreamNoun {
                    url: "wss://edge.example.eu/api/twilio/media-stream/v1.abc.def".into(),
                    name: None,
                    track: None,
                    status_callback: status_callback.map(str::to_owned),
                    status_callback_method: None,
                    parameters: vec![("lead_id".into(), "42".into())],
                }),
            }),
            Verb::Hangup,
        ],
    }
}

#[test]
fn parses_the_testing_md_twiml() {
    assert_eq!(twiml::parse(TESTING_MD_TWIML).unwrap(), expected(None));
}

#[test]
fn the_builder_writes_what_twilio_writes() {
    let ours = twiml::connect_stream(
        "wss://edge.example.eu/api/twilio/media-stream/v1.abc.def",
        None,
        &[("lead_id", "42")],
    );
    assert_eq!(twiml::parse(&ours).unwrap(), twiml::parse(TESTING_MD_TWIML).unwrap());
    let with_cb = twiml::connect_stream(
        "wss://edge.example.eu/api/twilio/media-stream/v1.abc.def",
        Some("https://cp.example.eu/api/twilio/stream-status"),
        &[("lead_id", "42")],
    );
    assert_eq!(
        twiml::parse(&with_cb).unwrap(),
        expected(Some("https://cp.example.eu/api/twilio/stream-status"))
    );
}

#[test]
fn attribute_values_are_escaped_and_come_back_intact() {
    let tricky = r#"a&b <c> "d" 'e'"#;
    let doc = twiml::connect_stream("wss://h/p", None, &[("note", tricky)]);
    assert!(!doc.contains(tricky), "escaped in the document");
    let Verb::Connect(c) = &twiml::parse(&doc).unwrap().verbs[0] else { panic!() };
    assert_eq!(c.stream.as_ref().unwrap().parameters, vec![("note".to_owned(), tricky.to_owned())]);
}

#[test]
fn other_verbs_and_errors() {
    let doc = r#"<Response><Say voice="alice">Bonjour &amp; bienvenue</Say><Pause length="2"/><Play>x.mp3</Play><Redirect method="GET">/next</Redirect><Reject reason="busy"/></Response>"#;
    assert_eq!(
        twiml::parse(doc).unwrap().verbs,
        vec![
            Verb::Say { text: "Bonjour & bienvenue".into(), language: None },
            Verb::Pause { length: 2 },
            Verb::Other("Play".into()),
            Verb::Redirect { url: "/next".into(), method: Some("GET".into()) },
            Verb::Reject { reason: Some("busy".into()) },
        ]
    );
    for bad in [
        "<Response><Connect></Response>",
        "<Response>",
        "",
        "<Response></Response><Response/>",
        "<Response><Hangup></Response>",
    ] {
        let e = twiml::parse(bad).unwrap_err();
        assert!(matches!(e, TwimlError::Parse(_)), "{bad}: {e:?}");
        assert_eq!(e.code(), 12100);
    }
    for invalid in [
        "<Play>x</Play>",
        "<Response><Connect><Stream/></Connect></Response>",
        "<Response><Connect><Stream url=\"wss://h\"><Parameter value=\"1\"/></Stream></Connect></Response>",
        "<Response><Pause length=\"soon\"/></Response>",
    ] {
        assert_eq!(twiml::parse(invalid).unwrap_err().code(), 12200, "{invalid}");
    }
    let long = format!(
        r#"<Response><Connect><Stream url="wss://h"><Parameter name="k" value="{}"/></Stream></Connect></Response>"#,
        "v".repeat(499)
    );
    assert_eq!(twiml::parse(&long).unwrap_err().code(), 12200, "name plus value must stay under 500");
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn callback_signing_matches_the_testing_md_vectors() {
    let form = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ];
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    let sig = callbacks::sign("12345", url, "POST", &owned(&form));
    assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    assert!(TwilioSigner::new(b"12345").verify_form(url, &form, &sig));

    let status = [
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("CallSid", "CA11111111111111111111111111111111"),
        ("CallStatus", "completed"),
        ("CallDuration", "42"),
        ("Timestamp", "Tue, 24 Nov 2026 10:00:00 +0000"),
    ];
    let token = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
    let sig = callbacks::sign(token, "https://cp.example.eu/twilio/status", "POST", &owned(&status));
    assert_eq!(sig, "2SCEmF0lNAQ4TyUzUWR2Zo/HWDw=");
    assert!(TwilioSigner::new(token.as_bytes()).verify_form(
        "https://cp.example.eu/twilio/status",
        &status,
        &sig
    ));
    // Twilio drops the port of an https URL before signing: the same signature.
    assert_eq!(
        callbacks::sign(token, "https://cp.example.eu:443/twilio/status", "POST", &owned(&status)),
        sig
    );
    assert_eq!(
        callbacks::sign(token, "https://cp.example.eu:8443/twilio/status", "POST", &owned(&status)),
        sig
    );
}

#[test]
fn upgrade_signature_matches_the_testing_md_vectors() {
    let url = "wss://edge.example.eu/api/twilio/media-stream/v1.abc.def";
    assert_eq!(upgrade_signature(url, "12345"), "24fy8gg1vgNB/teYcvsiUvJw6Zo=");
    assert_eq!(upgrade_signature(&format!("{url}/"), "12345"), "H3wCTAT7wFDOgJHsvxr9HX2thw4=");
    assert_eq!(
        TwilioSigner::new(b"12345").verify_upgrade(url, upgrade_signature(url, "12345").as_bytes()),
        UpgradeSignature::Valid
    );
}
