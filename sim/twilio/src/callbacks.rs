//! Requests the simulated Twilio makes to the application: status callbacks (call progress,
//! stream status) and TwiML fetches, signed exactly as Twilio signs them (protocols.md B):
//! `x-twilio-signature` = base64(HMAC-SHA1(auth token, URL + each POST parameter's name and value,
//! sorted by name)). The URL is the one configured, query included; for `https` URLs with an
//! explicit port Twilio signs the URL without the port. A `GET` callback carries the parameters
//! in the query string and signs the full URL with no body parameters.

use std::time::Duration;

use contract::twilio_signature::TwilioSigner;
use serde::Serialize;

/// What kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackKind {
    /// `StatusCallback` of the call (initiated, ringing, answered, completed).
    CallStatus,
    /// `<Stream statusCallback>` (stream-started, stream-stopped, stream-error).
    StreamStatus,
    /// Fetching TwiML from the call's `Url` (or a `<Redirect>`/`action`).
    TwimlFetch,
    /// `AsyncAmdStatusCallback`: the answering-machine detection result.
    AmdStatus,
    /// `<Dial action>`: the dialled call ended (`DialCallStatus`); answered with new TwiML.
    DialAction,
}

/// One request the simulator made, and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct CallbackRecord {
    /// The call.
    pub call_sid: String,
    /// Kind.
    pub kind: CallbackKind,
    /// The event: `initiated`, `ringing`, `answered`, `completed`, `stream-started`, … or `twiml`.
    pub event: String,
    /// `POST` or `GET`.
    pub method: String,
    /// The URL as configured.
    pub url: String,
    /// The URL requested (with the parameters for `GET`).
    pub request_url: String,
    /// Form parameters, in the order sent.
    pub params: Vec<(String, String)>,
    /// `x-twilio-signature` sent.
    pub signature: String,
    /// HTTP status of the answer (`None` if no answer).
    pub http_status: Option<u16>,
    /// Answer body (kept for TwiML fetches).
    pub body: Option<String>,
    /// Transport error, if the request failed.
    pub error: Option<String>,
    /// When it was sent (simulator clock).
    #[serde(with = "crate::caller::report::ms")]
    pub sent_at: Duration,
}

impl CallbackRecord {
    /// The value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The parameters as `(&str, &str)` pairs (for `TwilioSigner::verify_form`).
    pub fn param_pairs(&self) -> Vec<(&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    /// Whether the application answered 2xx.
    pub fn delivered(&self) -> bool {
        self.http_status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The URL Twilio signs for a request to `url`: the same, except that an `https` URL loses an
/// explicit port.
pub fn signing_url(url: &str) -> String {
    if !has_explicit_port(url) {
        return url.to_owned();
    }
    match url::Url::parse(url) {
        Ok(mut u) if u.scheme() == "https" => {
            let _ = u.set_port(None);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Whether the authority of `url` carries a `:port` (even the default one, which the `url`
/// crate hides).
fn has_explicit_port(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let after_host = host_port.rsplit_once(']').map_or(host_port, |(_, p)| p);
    after_host.contains(':')
}

/// The signature of a request to `url` with `method` and form `params`.
pub fn sign(auth_token: &str, url: &str, method: &str, params: &[(String, String)]) -> String {
    let signer = TwilioSigner::new(auth_token.as_bytes());
    if method.eq_ignore_ascii_case("GET") {
        signer.sign(&signing_url(&with_query(url, params)), &[])
    } else {
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        signer.sign(&signing_url(url), &pairs)
    }
}

fn with_query(url: &str, params: &[(String, String)]) -> String {
    if params.is_empty() {
        return url.to_owned();
    }
    let query: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// Makes Twilio's requests to the application.
#[derive(Clone)]
pub struct CallbackSender {
    client: reqwest::Client,
    auth_token: String,
    timeout: Duration,
}

/// The outcome of one request, before it is recorded.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// URL requested.
    pub request_url: String,
    /// Signature sent.
    pub signature: String,
    /// HTTP status.
    pub http_status: Option<u16>,
    /// Body.
    pub body: Option<String>,
    /// Transport error.
    pub error: Option<String>,
}

impl CallbackSender {
    /// A sender signing with `auth_token`, trusting `ca_pem` (plus the public web roots) for
    /// `https` callbacks. Proxies from the environment are ignored: callbacks go straight to
    /// the application, as from Twilio's network.
    pub fn new(auth_token: &str, ca_pem: Option<&[u8]>, timeout: Duration) -> anyhow::Result<Self> {
        let mut builder =
            reqwest::Client::builder().no_proxy().tcp_nodelay(true).user_agent("TwilioProxy/1.1");
        if let Some(pem) = ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Self { client: builder.build()?, auth_token: auth_token.to_owned(), timeout })
    }

    /// Sends one signed request (`POST` form body, or `GET` with the parameters in the query).
    pub async fn send(&self, url: &str, method: &str, params: &[(String, String)]) -> Delivery {
        let signature = sign(&self.auth_token, url, method, params);
        let is_get = method.eq_ignore_ascii_case("GET");
        let request_url = if is_get { with_query(url, params) } else { url.to_owned() };
        let mut request = if is_get {
            self.client.get(&request_url)
        } else {
            let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
            self.client
                .post(&request_url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
        };
        request = request
            .header("x-twilio-signature", &signature)
            .header("i-twilio-idempotency-token", crate::sids::new_sid("ID")[2..].to_owned())
            .header("accept", "*/*");
        let exchange = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body = response.text().await.ok();
            Ok::<_, reqwest::Error>((status, body))
        };
        match crate::time::timeout(self.timeout, exchange).await {
            Ok(Ok((status, body))) => {
                Delivery { request_url, signature, http_status: Some(status), body, error: None }
            }
            Ok(Err(e)) => {
                Delivery { request_url, signature, http_status: None, body: None, error: Some(e.to_string()) }
            }
            Err(_) => Delivery {
                request_url,
                signature,
                http_status: None,
                body: None,
                error: Some(format!("no answer within {:?}", self.timeout)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_port_is_dropped_before_signing() {
        assert_eq!(
            signing_url("https://cp.example.eu:8443/twilio/status?x=1"),
            "https://cp.example.eu/twilio/status?x=1"
        );
        assert_eq!(signing_url("http://127.0.0.1:3000/status"), "http://127.0.0.1:3000/status");
        assert_eq!(signing_url("https://cp.example.eu/twilio/status"), "https://cp.example.eu/twilio/status");
        assert_eq!(signing_url("https://cp.example.eu:443/s"), "https://cp.example.eu/s");
        assert_eq!(signing_url("https://[::1]:8443/s"), "https://[::1]/s");
        assert_eq!(signing_url("https://[::1]/s"), "https://[::1]/s");
    }

    #[test]
    fn testing_md_status_vector() {
        let params: Vec<(String, String)> = [
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("CallSid", "CA11111111111111111111111111111111"),
            ("CallStatus", "completed"),
            ("CallDuration", "42"),
            ("Timestamp", "Tue, 24 Nov 2026 10:00:00 +0000"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            sign("a1b2c3d4e5f60718293a4b5c6d7e8f90", "https://cp.example.eu/twilio/status", "POST", &params),
            "2SCEmF0lNAQ4TyUzUWR2Zo/HWDw="
        );
    }

    #[test]
    fn get_signs_the_full_url() {
        let params = vec![("CallStatus".to_owned(), "ringing".to_owned())];
        let expected = TwilioSigner::new(b"t").sign("http://h/s?a=1&CallStatus=ringing", &[]);
        assert_eq!(sign("t", "http://h/s?a=1", "GET", &params), expected);
    }
}
