//! Configuration from the environment, validated at start. Every bad value gets its own precise
//! message (all of them at once, not the first only), and no message ever echoes a secret.
//!
//! Storage is chosen by what is set: `DATABASE_URL` (`postgres://…`, a Supabase connection
//! string, or `sqlite:…`), else Supabase REST with `SUPABASE_URL` + `SUPABASE_SERVICE_ROLE_KEY`,
//! else the embedded SQLite file `callway.sqlite3`.
//!
//! Twilio's region: `TWILIO_REGION` + `TWILIO_EDGE` (both or neither; `ie1` + `dublin` for the
//! EU) make the API host `api.{edge}.{region}.twilio.com` ([`crate::twilio::TwilioRegion`]);
//! with `TWILIO_API_BASE` also set (a simulator), requests go there and name the regional host
//! in `Host`. The names and defaults of every variable are in README.md's table.
//!
//! Call retries: `CALL_RETRY_DELAYS` (`10m,2h`; unset = no retries), `CALLING_HOURS_<CC>` per
//! country (format in [`crate::calling_hours::CallingHours::parse`]; France is built in),
//! `CALLING_HOURS_DEFAULT` for the others, `CALL_RETRY_WORKER_SECS`.
//!
//! Warm transfer ([`crate::transfer`]): `TRANSFER_TARGET` (an E.164 number, or a
//! `sip:user@host` URI; unset = no transfer, the tool is not offered), `TRANSFER_WEBHOOK_URL`
//! (where the hand-over note, with the lead's full number, is POSTed) with
//! `TRANSFER_WEBHOOK_SECRET` (required with the URL, at least 32 bytes, or a Standard Webhooks
//! `whsec_` key), `TRANSFER_TIMEOUT_SECS` (how long the person's phone rings, 5 to 600,
//! default 20), `TRANSFER_FAILED_MESSAGE_FR` / `_EN` (said when nobody answers, then hang-up).

use std::net::SocketAddr;
use std::path::PathBuf;

use contract::env::EnvReader;
use phonenumber::country::Id;

use crate::phone::{self, CallPolicy};
use crate::ratelimit::Quota;

/// Where data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// Direct Postgres connection (Supabase's pooler or direct string works).
    Postgres {
        /// The connection string.
        url: String,
    },
    /// Embedded SQLite.
    Sqlite {
        /// `sqlite:` URL.
        url: String,
    },
    /// Supabase through PostgREST with the service role key.
    SupabaseRest {
        /// `https://<project>.supabase.co`.
        url: String,
        /// Service role key (legacy JWT or `sb_secret_…`).
        service_role_key: String,
    },
}

/// Rate limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `/api/session` per client IP.
    pub sessions_per_ip: Quota,
    /// Tool calls (`save_lead`) per web session.
    pub saves_per_session: Quota,
    /// `trigger_call` per web session.
    pub calls_per_session: Quota,
    /// `trigger_call` per destination number.
    pub calls_per_number: Quota,
    /// `trigger_call` per client IP.
    pub calls_per_ip: Quota,
    /// `GET /api/calls/{call_id}` (the page's progress polling) per client IP.
    pub progress_per_ip: Quota,
    /// GPT-Live WebRTC sessions started (`POST /api/session/webrtc`) per web session.
    pub offers_per_session: Quota,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            sessions_per_ip: Quota::per_hour(30),
            saves_per_session: Quota::per_hour(20),
            calls_per_session: Quota::per_hour(2),
            calls_per_number: Quota::per_day(3),
            calls_per_ip: Quota::per_hour(5),
            // The page asks every 1.5 s (40 a minute): room for three tabs behind one address.
            progress_per_ip: Quota::per_minute(120),
            // Each is a session OpenAI bills: a retry or two after a network loss.
            offers_per_session: Quota::per_hour(3),
        }
    }
}

/// The whole configuration.
#[derive(Clone)]
pub struct Config {
    /// `OPENAI_API_KEY`.
    pub openai_api_key: String,
    /// `OPENAI_VOICE_API` and the model of that engine (`OPENAI_REALTIME_MODEL` or
    /// `OPENAI_LIVE_MODEL`): which API the web visit speaks (the gateway reads the same
    /// switch for the phone call).
    pub voice_engine: contract::voice_api::VoiceEngine,
    /// `LIVE_DELEGATION_MODEL` (default [`crate::openai::LIVE_DELEGATION_MODEL`], as the
    /// gateway's): the Responses model the web visit's tools are delegated to on GPT-Live.
    pub live_delegation_model: String,
    /// The Realtime model, for the Realtime path (ephemeral secrets, the page's WebRTC call):
    /// the engine's model with `OPENAI_VOICE_API=realtime`; with `live` the Realtime path is
    /// not used and this holds [`contract::realtime::DEFAULT_MODEL`].
    pub openai_realtime_model: String,
    /// `REALTIME_TURN_DETECTION` (+ `REALTIME_VAD_EAGERNESS`) for the web session.
    pub realtime_turn_detection: contract::realtime::TurnDetection,
    /// `OPENAI_BASE_URL` (default `https://api.openai.com`).
    pub openai_base_url: String,
    /// `OPENAI_VOICE` (default `marin`).
    pub openai_voice: String,
    /// `TWILIO_ACCOUNT_SID`.
    pub twilio_account_sid: String,
    /// `TWILIO_AUTH_TOKEN`.
    pub twilio_auth_token: String,
    /// `TWILIO_PHONE_NUMBER_FROM` (E.164).
    pub twilio_phone_number_from: String,
    /// `TWILIO_STREAM_DOMAIN` (host[:port] of the gateway; default: `PUBLIC_APP_URL`'s host).
    pub twilio_stream_domain: String,
    /// `TWILIO_REQUIRE_VERIFIED_NUMBERS`.
    pub twilio_require_verified_numbers: bool,
    /// Where Twilio REST requests go: `TWILIO_API_BASE`, else the regional host of
    /// `TWILIO_REGION` + `TWILIO_EDGE`, else `https://api.twilio.com`.
    pub twilio_api_base: String,
    /// `TWILIO_REGION` + `TWILIO_EDGE` (`None`: US1).
    pub twilio_region: Option<crate::twilio::TwilioRegion>,
    /// The regional host named in `Host` when `TWILIO_API_BASE` points at a stand-in (a
    /// simulator) and a region is set; `None` otherwise.
    pub twilio_api_host_header: Option<String>,
    /// `TWILIO_CALL_TIME_LIMIT_SECS` (default 900).
    pub twilio_call_time_limit_secs: u32,
    /// `PUBLIC_APP_URL`, without trailing `/`.
    pub public_app_url: String,
    /// Storage choice.
    pub storage: StorageConfig,
    /// `STREAM_TOKEN_SECRET`.
    pub stream_token_secret: Vec<u8>,
    /// `STREAM_TOKEN_TTL_SECS` (default 120): how long Twilio has to open the stream.
    pub stream_token_ttl_secs: u64,
    /// `INTERNAL_API_SECRET`.
    pub internal_api_secret: Vec<u8>,
    /// `STREAM_TOKEN_SECRET_PREVIOUS`: tokens it signed still redeem during a rotation.
    pub stream_token_secret_previous: Option<Vec<u8>>,
    /// `INTERNAL_API_SECRET_PREVIOUS`: gateways still signing with it are accepted during a
    /// rotation.
    pub internal_api_secret_previous: Option<Vec<u8>>,
    /// `TRANSCRIPT_RETENTION_DAYS` (default 30).
    pub transcript_retention_days: u32,
    /// `CONTROL_LISTEN_ADDR` (default `0.0.0.0:8080`).
    pub listen_addr: SocketAddr,
    /// `ADMIN_API_TOKEN`: admin routes are off when unset.
    pub admin_api_token: Option<String>,
    /// `SUMMARY_MODEL`: the text model that summarises each phone call once it has ended
    /// (OpenAI's Responses API); off when unset.
    pub summary_model: Option<String>,
    /// `DEFAULT_PHONE_REGION` (default `FR`).
    pub default_phone_region: Id,
    /// `ALLOWED_CALL_COUNTRIES` (default: the EU member states).
    pub call_policy: CallPolicy,
    /// `OUTBOX_DIR` (default `callway-outbox`).
    pub outbox_dir: PathBuf,
    /// Rate limits (`RATE_LIMIT_*`, defaults in [`Limits::default`]).
    pub limits: Limits,
    /// Call retries (`CALL_RETRY_DELAYS`, `CALLING_HOURS_*`, `CALL_RETRY_WORKER_SECS`).
    pub retry: crate::retry::RetryConfig,
    /// Answering-machine detection and voicemail (`ANSWERING_MACHINE_DETECTION`,
    /// `VOICEMAIL_POLICY`, `VOICEMAIL_MESSAGE_FR`, `VOICEMAIL_MESSAGE_EN`).
    pub amd: crate::amd::AmdConfig,
    /// Warm transfer to a person (`TRANSFER_TARGET`, `TRANSFER_WEBHOOK_URL`,
    /// `TRANSFER_WEBHOOK_SECRET`, `TRANSFER_TIMEOUT_SECS`, `TRANSFER_FAILED_MESSAGE_FR`,
    /// `TRANSFER_FAILED_MESSAGE_EN`, `TRANSFER_HOURS`, `TRANSFER_TIME_ZONE`; [`crate::transfer`]).
    pub transfer: crate::transfer::TransferConfig,
    /// `PRICES_FILE`: the price table for each call's cost ([`crate::cost`]); unset = no cost.
    pub prices: Option<crate::cost::PriceTable>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are left out on purpose.
        f.debug_struct("Config")
            .field("voice_engine", &self.voice_engine)
            .field("openai_realtime_model", &self.openai_realtime_model)
            .field("realtime_turn_detection", &self.realtime_turn_detection)
            .field("openai_base_url", &self.openai_base_url)
            .field("twilio_api_base", &self.twilio_api_base)
            .field("twilio_region", &self.twilio_region)
            .field("twilio_stream_domain", &self.twilio_stream_domain)
            .field("public_app_url", &self.public_app_url)
            .field("listen_addr", &self.listen_addr)
            .finish_non_exhaustive()
    }
}

pub use contract::env::ConfigErrors;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let mut r = EnvReader::new(get);

        let openai_api_key =
            r.required("OPENAI_API_KEY", "the server-side OpenAI key (never sent to browsers)");
        let voice_engine = contract::voice_api::read_engine(&mut r);
        let openai_realtime_model = match voice_engine.api {
            contract::voice_api::VoiceApi::Realtime => voice_engine.model.clone(),
            contract::voice_api::VoiceApi::Live => contract::realtime::DEFAULT_MODEL.to_owned(),
        };
        let realtime_turn_detection = contract::realtime::read_turn_detection(&mut r);
        let live_delegation_model =
            r.opt("LIVE_DELEGATION_MODEL").unwrap_or_else(|| crate::openai::LIVE_DELEGATION_MODEL.to_owned());
        if !live_delegation_model.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            r.problem(format!(
                "LIVE_DELEGATION_MODEL must be a model name (letters, digits, - _ .), got {live_delegation_model:?}"
            ));
        }
        let openai_base_url = r.url("OPENAI_BASE_URL", Some("https://api.openai.com"), "");
        let openai_voice = r.opt("OPENAI_VOICE").unwrap_or_else(|| "marin".into());

        let twilio_account_sid = r.required("TWILIO_ACCOUNT_SID", "the Twilio account SID (AC…)");
        let sid_shape_ok = twilio_account_sid.len() == 34
            && twilio_account_sid.starts_with("AC")
            && twilio_account_sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if !twilio_account_sid.is_empty() && !sid_shape_ok {
            r.problem(format!(
                "TWILIO_ACCOUNT_SID must be AC followed by 32 hex digits, got {} characters starting {:?}",
                twilio_account_sid.len(),
                twilio_account_sid.get(..2).unwrap_or("")
            ));
        }
        let twilio_auth_token = r.required("TWILIO_AUTH_TOKEN", "the Twilio auth token (signs callbacks)");
        let default_region_raw = r.opt("DEFAULT_PHONE_REGION").unwrap_or_else(|| "FR".into());
        let default_phone_region = match default_region_raw.to_ascii_uppercase().parse::<Id>() {
            Ok(id) => id,
            Err(_) => {
                r.problem(format!(
                    "DEFAULT_PHONE_REGION must be an ISO 3166 alpha-2 region such as FR, got {default_region_raw:?}"
                ));
                Id::FR
            }
        };
        let from_raw = r.required("TWILIO_PHONE_NUMBER_FROM", "your Twilio number in E.164 (+33…)");
        let twilio_phone_number_from = if from_raw.is_empty() {
            String::new()
        } else {
            match phone::parse_phone(&from_raw, default_phone_region) {
                Ok(p) if from_raw.starts_with('+') => p.e164,
                _ => {
                    r.problem(format!(
                        "TWILIO_PHONE_NUMBER_FROM must be a valid number in E.164 form (+33…), got {:?}",
                        phone::mask(&from_raw)
                    ));
                    String::new()
                }
            }
        };
        let twilio_require_verified_numbers = r.bool("TWILIO_REQUIRE_VERIFIED_NUMBERS", false);
        let api_base_set = r.opt("TWILIO_API_BASE");
        let api_base = r.url("TWILIO_API_BASE", Some("https://api.twilio.com"), "");
        let twilio_region = match crate::twilio::TwilioRegion::from_settings(
            r.opt("TWILIO_REGION").as_deref(),
            r.opt("TWILIO_EDGE").as_deref(),
        ) {
            Ok(region) => region,
            Err(e) => {
                r.problem(e.to_string());
                None
            }
        };
        let (twilio_api_base, twilio_api_host_header) = match (&twilio_region, api_base_set) {
            (None, _) => (api_base, None),
            (Some(region), None) => (region.api_base(), None),
            (Some(region), Some(_)) => {
                let host = host_of(&api_base).unwrap_or_default();
                let name = host.rsplit_once(':').map_or(host, |(h, _)| h).to_ascii_lowercase();
                if name == region.api_host() {
                    (api_base, None)
                } else {
                    if name == "twilio.com" || name.ends_with(".twilio.com") {
                        r.problem(format!(
                            "TWILIO_API_BASE names Twilio's {name} while TWILIO_REGION/TWILIO_EDGE name {}: unset TWILIO_API_BASE (the regional host is derived from them)",
                            region.api_host()
                        ));
                    }
                    (api_base, Some(region.api_host()))
                }
            }
        };
        let twilio_call_time_limit_secs = r.number("TWILIO_CALL_TIME_LIMIT_SECS", 900u32, 30, 14_400);

        let public_app_url = r.url(
            "PUBLIC_APP_URL",
            None,
            "the public https:// URL of this service (Twilio signs its callbacks over it)",
        );
        let twilio_stream_domain = match r.opt("TWILIO_STREAM_DOMAIN") {
            Some(d) if d.contains('/') || d.contains('?') || d.contains(char::is_whitespace) => {
                r.problem(format!(
                    "TWILIO_STREAM_DOMAIN must be a bare host (edge.example.eu), without scheme or path, got {d:?}"
                ));
                String::new()
            }
            Some(d) => d,
            None => host_of(&public_app_url).unwrap_or_default().to_owned(),
        };

        let storage = match (r.opt("DATABASE_URL"), r.opt("SUPABASE_URL"), r.opt("SUPABASE_SERVICE_ROLE_KEY"))
        {
            (Some(url), _, _) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                StorageConfig::Postgres { url }
            }
            (Some(url), _, _) if url.starts_with("sqlite:") => StorageConfig::Sqlite { url },
            (Some(url), _, _) => {
                let scheme = url.split(':').next().unwrap_or("");
                r.problem(format!(
                    "DATABASE_URL must start with postgres://, postgresql:// or sqlite:, got scheme {scheme:?}"
                ));
                StorageConfig::Sqlite { url: String::new() }
            }
            (None, Some(url), Some(key)) => {
                if !url.starts_with("https://") && !url.starts_with("http://") {
                    r.problem(format!("SUPABASE_URL must be an https:// URL, got {url:?}"));
                }
                StorageConfig::SupabaseRest {
                    url: url.trim_end_matches('/').to_owned(),
                    service_role_key: key,
                }
            }
            (None, Some(_), None) => {
                r.problem(
                    "SUPABASE_URL is set but SUPABASE_SERVICE_ROLE_KEY is not: set both (or DATABASE_URL)",
                );
                StorageConfig::Sqlite { url: String::new() }
            }
            (None, None, Some(_)) => {
                r.problem(
                    "SUPABASE_SERVICE_ROLE_KEY is set but SUPABASE_URL is not: set both (or DATABASE_URL)",
                );
                StorageConfig::Sqlite { url: String::new() }
            }
            (None, None, None) => StorageConfig::Sqlite { url: "sqlite:callway.sqlite3?mode=rwc".into() },
        };

        let stream_token_secret = r.secret("STREAM_TOKEN_SECRET", contract::stream_token::MIN_SECRET_LEN);
        let stream_token_ttl_secs = r.number("STREAM_TOKEN_TTL_SECS", 120u64, 10, 3600);
        let internal_api_secret = r.secret("INTERNAL_API_SECRET", 32);
        let stream_token_secret_previous = r.previous_secret(
            "STREAM_TOKEN_SECRET_PREVIOUS",
            "STREAM_TOKEN_SECRET",
            &stream_token_secret,
            contract::stream_token::MIN_SECRET_LEN,
        );
        let internal_api_secret_previous = r.previous_secret(
            "INTERNAL_API_SECRET_PREVIOUS",
            "INTERNAL_API_SECRET",
            &internal_api_secret,
            32,
        );
        let transcript_retention_days = r.number("TRANSCRIPT_RETENTION_DAYS", 30u32, 1, 3650);
        let listen_addr = r.addr("CONTROL_LISTEN_ADDR", "0.0.0.0:8080");
        let admin_api_token = r.opt("ADMIN_API_TOKEN");
        if let Some(t) = &admin_api_token
            && t.len() < 24
        {
            r.problem(format!(
                "ADMIN_API_TOKEN is {} characters, at least 24 are required (or leave it unset to turn admin routes off)",
                t.len()
            ));
        }
        let summary_model = r.opt("SUMMARY_MODEL");
        if let Some(m) = &summary_model
            && (m.contains("realtime") || m.starts_with("gpt-live") || m.contains(char::is_whitespace))
        {
            r.problem(format!(
                "SUMMARY_MODEL must be a text model of the Responses API (gpt-5-mini, for one), got {m:?}: realtime and GPT-Live models do not serve /v1/responses"
            ));
        }
        let call_policy = match r.opt("ALLOWED_CALL_COUNTRIES") {
            None => CallPolicy::eu(),
            Some(list) => {
                let mut allowed = Vec::new();
                for c in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                    if c.eq_ignore_ascii_case("EU") {
                        allowed.extend(CallPolicy::eu().allowed_regions);
                    } else {
                        match c.to_ascii_uppercase().parse::<Id>() {
                            Ok(id) => allowed.push(id),
                            Err(_) => r.problem(format!(
                                "ALLOWED_CALL_COUNTRIES: {c:?} is not an ISO 3166 alpha-2 region (comma-separated list such as FR,BE,DE or EU)"
                            )),
                        }
                    }
                }
                if allowed.is_empty() {
                    r.problem("ALLOWED_CALL_COUNTRIES is empty: no call could ever be placed");
                }
                CallPolicy { allowed_regions: allowed }
            }
        };
        let outbox_dir = PathBuf::from(r.opt("OUTBOX_DIR").unwrap_or_else(|| "callway-outbox".into()));
        let d = Limits::default();
        // Each limit keeps its window; the environment sets how many fit in it.
        let mut quota =
            |name: &str, q: Quota, max: u32| Quota { limit: r.number(name, q.limit, 1, max), ..q };
        let limits = Limits {
            sessions_per_ip: quota("RATE_LIMIT_SESSIONS_PER_IP_PER_HOUR", d.sessions_per_ip, 100_000),
            saves_per_session: quota("RATE_LIMIT_SAVES_PER_SESSION_PER_HOUR", d.saves_per_session, 1_000),
            calls_per_session: quota("RATE_LIMIT_CALLS_PER_SESSION_PER_HOUR", d.calls_per_session, 100),
            calls_per_number: quota("RATE_LIMIT_CALLS_PER_NUMBER_PER_DAY", d.calls_per_number, 100),
            calls_per_ip: quota("RATE_LIMIT_CALLS_PER_IP_PER_HOUR", d.calls_per_ip, 10_000),
            progress_per_ip: quota("RATE_LIMIT_PROGRESS_PER_IP_PER_MINUTE", d.progress_per_ip, 100_000),
            offers_per_session: quota("RATE_LIMIT_WEBRTC_PER_SESSION_PER_HOUR", d.offers_per_session, 100),
        };

        let retry = read_retry(&mut r, &call_policy);
        let amd = crate::amd::read_config(&mut r);
        let transfer = crate::transfer::read_config(&mut r, default_phone_region, &twilio_phone_number_from);
        let prices = r.opt("PRICES_FILE").and_then(|p| {
            let table =
                crate::cost::PriceTable::load(std::path::Path::new(&p)).map_err(|e| r.problem(e)).ok()?;
            // Without a price for the configured model every call's OpenAI part would be 0.
            let variable = match voice_engine.api {
                contract::voice_api::VoiceApi::Realtime => "OPENAI_REALTIME_MODEL",
                contract::voice_api::VoiceApi::Live => "OPENAI_LIVE_MODEL",
            };
            table
                .check_model(variable, &voice_engine.model)
                .map_err(|e| r.problem(format!("PRICES_FILE {p} {e}")))
                .ok()?;
            Some(table)
        });

        r.finish()?;
        Ok(Config {
            openai_api_key,
            voice_engine,
            live_delegation_model,
            openai_realtime_model,
            realtime_turn_detection,
            openai_base_url,
            openai_voice,
            twilio_account_sid,
            twilio_auth_token,
            twilio_phone_number_from,
            twilio_stream_domain,
            twilio_require_verified_numbers,
            twilio_api_base,
            twilio_region,
            twilio_api_host_header,
            twilio_call_time_limit_secs,
            public_app_url,
            storage,
            stream_token_secret,
            stream_token_ttl_secs,
            internal_api_secret,
            stream_token_secret_previous,
            internal_api_secret_previous,
            transcript_retention_days,
            listen_addr,
            admin_api_token,
            summary_model,
            default_phone_region,
            call_policy,
            outbox_dir,
            limits,
            retry,
            amd,
            transfer,
            prices,
        })
    }

    /// The `wss://` URL Twilio opens for a stream token (a path segment, never a query).
    pub fn stream_url(&self, token: &str) -> String {
        format!("wss://{}/api/twilio/media-stream/{token}", self.twilio_stream_domain)
    }
}

/// `CALL_RETRY_DELAYS`, `CALL_RETRY_WORKER_SECS`, `CALLING_HOURS_DEFAULT` and
/// `CALLING_HOURS_<CC>` for every country that may be called (the allow-list) or has a built-in
/// rule.
fn read_retry(r: &mut EnvReader<'_>, policy: &CallPolicy) -> crate::retry::RetryConfig {
    use crate::calling_hours::{CallingHours, FRENCH_RULE_REGIONS, Holidays};
    let mut cfg = crate::retry::RetryConfig::default();
    if let Some(raw) = r.opt("CALL_RETRY_DELAYS") {
        match crate::retry::parse_delays(&raw) {
            Ok(d) => cfg.delays = d,
            Err(e) => r.problem(format!("CALL_RETRY_DELAYS: {e}")),
        }
    }
    cfg.worker_period = std::time::Duration::from_secs(r.number("CALL_RETRY_WORKER_SECS", 30u64, 1, 3600));
    if let Some(raw) = r.opt("CALLING_HOURS_DEFAULT") {
        match CallingHours::parse(&raw, Holidays::None) {
            Ok(h) => cfg.hours.default = h,
            Err(e) => r.problem(format!("CALLING_HOURS_DEFAULT: {e}")),
        }
    }
    let mut regions: Vec<Id> = policy.allowed_regions.clone();
    regions.extend(FRENCH_RULE_REGIONS.iter().filter_map(|c| c.parse::<Id>().ok()));
    regions.sort_by_key(|id| id.as_ref().to_owned());
    regions.dedup();
    for id in regions {
        let name = format!("CALLING_HOURS_{}", id.as_ref());
        let Some(raw) = r.opt(&name) else { continue };
        // French law's holidays stay closed whatever the windows say.
        let holidays =
            if FRENCH_RULE_REGIONS.contains(&id.as_ref()) { Holidays::France } else { Holidays::None };
        match CallingHours::parse(&raw, holidays) {
            Ok(h) => cfg.hours.set(id, h),
            Err(e) => r.problem(format!("{name}: {e}")),
        }
    }
    cfg
}

/// `host[:port]` of an http(s) URL.
fn host_of(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    Some(rest.split('/').next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("OPENAI_API_KEY", "sk-test"),
            ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000"),
            ("TWILIO_AUTH_TOKEN", "tok"),
            ("TWILIO_PHONE_NUMBER_FROM", "+33123456789"),
            ("PUBLIC_APP_URL", "https://cp.example.eu/"),
            ("STREAM_TOKEN_SECRET", "0123456789abcdef0123456789abcdef!"),
            ("INTERNAL_API_SECRET", "0123456789abcdef0123456789abcdef?"),
        ])
    }

    fn load(m: &HashMap<&str, &str>) -> Result<Config, ConfigErrors> {
        Config::from_lookup(&|k| m.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn defaults() {
        let c = load(&base()).unwrap();
        assert_eq!(c.public_app_url, "https://cp.example.eu");
        assert_eq!(c.twilio_stream_domain, "cp.example.eu");
        assert_eq!(c.stream_url("v1.a.b"), "wss://cp.example.eu/api/twilio/media-stream/v1.a.b");
        assert_eq!(c.storage, StorageConfig::Sqlite { url: "sqlite:callway.sqlite3?mode=rwc".into() });
        assert_eq!(c.openai_base_url, "https://api.openai.com");
        assert_eq!(c.default_phone_region, Id::FR);
        assert!(!c.twilio_require_verified_numbers);
        assert_eq!(c.transcript_retention_days, 30);
        assert!(!format!("{c:?}").contains("sk-test"));
    }

    #[test]
    fn the_voice_engine_is_read_with_its_model() {
        use contract::voice_api::VoiceApi;
        let c = load(&base()).unwrap();
        assert_eq!(
            (c.voice_engine.api, c.voice_engine.model.as_str()),
            (VoiceApi::Realtime, "gpt-realtime-2.1")
        );
        assert_eq!(c.openai_realtime_model, "gpt-realtime-2.1");
        let mut m = base();
        m.insert("OPENAI_REALTIME_MODEL", "gpt-realtime-2.1-mini");
        let c = load(&m).unwrap();
        assert_eq!(
            (c.voice_engine.model.as_str(), c.openai_realtime_model.as_str()),
            ("gpt-realtime-2.1-mini", "gpt-realtime-2.1-mini")
        );
        m.insert("OPENAI_VOICE_API", "live");
        let c = load(&m).unwrap();
        assert_eq!((c.voice_engine.api, c.voice_engine.model.as_str()), (VoiceApi::Live, "gpt-live-1.1"));
        assert!(format!("{c:?}").contains("Live"));
        assert_eq!(c.live_delegation_model, "gpt-5-mini");
        m.insert("LIVE_DELEGATION_MODEL", "gpt-5.1");
        assert_eq!(load(&m).unwrap().live_delegation_model, "gpt-5.1");
        m.insert("LIVE_DELEGATION_MODEL", "gpt 5");
        assert!(load(&m).unwrap_err().to_string().contains("LIVE_DELEGATION_MODEL must be a model name"));
        m.remove("LIVE_DELEGATION_MODEL");
        m.insert("OPENAI_LIVE_MODEL", "gpt-realtime-2.1");
        let text = load(&m).unwrap_err().to_string();
        assert!(
            text.contains("OPENAI_LIVE_MODEL=gpt-realtime-2.1") && text.contains("OPENAI_VOICE_API=live"),
            "{text}"
        );
    }

    #[test]
    fn rate_limits_keep_their_window_and_take_their_count_from_the_environment() {
        let c = load(&base()).unwrap();
        assert_eq!(c.limits.progress_per_ip, Quota::per_minute(120));
        assert_eq!(c.limits.offers_per_session, Quota::per_hour(3));
        let mut m = base();
        m.insert("RATE_LIMIT_PROGRESS_PER_IP_PER_MINUTE", "3");
        m.insert("RATE_LIMIT_CALLS_PER_NUMBER_PER_DAY", "5");
        let c = load(&m).unwrap();
        assert_eq!(c.limits.progress_per_ip, Quota::per_minute(3));
        assert_eq!(c.limits.calls_per_number, Quota::per_day(5));
        m.insert("RATE_LIMIT_WEBRTC_PER_SESSION_PER_HOUR", "0");
        let text = load(&m).unwrap_err().to_string();
        assert!(
            text.contains("RATE_LIMIT_WEBRTC_PER_SESSION_PER_HOUR must be a whole number from 1 to 100"),
            "{text}"
        );
    }

    #[test]
    fn twilio_region_picks_the_regional_api_host() {
        let mut m = base();
        assert_eq!(load(&m).unwrap().twilio_api_base, "https://api.twilio.com");
        m.insert("TWILIO_REGION", "ie1");
        m.insert("TWILIO_EDGE", "dublin");
        let c = load(&m).unwrap();
        assert_eq!(c.twilio_api_base, "https://api.dublin.ie1.twilio.com");
        assert_eq!(c.twilio_api_host_header, None);
        assert!(format!("{c:?}").contains("ie1"));
        // Callbacks are still signed over PUBLIC_APP_URL, whatever the region.
        assert_eq!(c.public_app_url, "https://cp.example.eu");

        // Through a stand-in (the simulator): requests go there and name the regional host.
        m.insert("TWILIO_API_BASE", "http://127.0.0.1:8082/");
        let c = load(&m).unwrap();
        assert_eq!(c.twilio_api_base, "http://127.0.0.1:8082");
        assert_eq!(c.twilio_api_host_header.as_deref(), Some("api.dublin.ie1.twilio.com"));
    }

    #[test]
    fn contradictory_twilio_regions_are_refused_at_start() {
        let mut m = base();
        m.insert("TWILIO_REGION", "ie1");
        m.insert("TWILIO_API_BASE", "https://api.twilio.com");
        let text = load(&m).unwrap_err().to_string();
        assert!(text.contains("TWILIO_REGION=ie1 needs TWILIO_EDGE"), "{text}");
        m.insert("TWILIO_EDGE", "dublin");
        let text = load(&m).unwrap_err().to_string();
        assert!(text.contains("TWILIO_API_BASE names Twilio's api.twilio.com"), "{text}");
        m.insert("TWILIO_API_BASE", "https://api.dublin.ie1.twilio.com");
        let c = load(&m).unwrap();
        assert_eq!(
            (c.twilio_api_base.as_str(), c.twilio_api_host_header),
            ("https://api.dublin.ie1.twilio.com", None)
        );
        m.remove("TWILIO_API_BASE");
        m.insert("TWILIO_REGION", "de1");
        m.insert("TWILIO_EDGE", "frankfurt");
        let text = load(&m).unwrap_err().to_string();
        assert!(text.contains("TWILIO_REGION=de1 is not a Twilio processing region"), "{text}");
    }

    #[test]
    fn storage_selection() {
        let mut m = base();
        m.insert("SUPABASE_URL", "https://x.supabase.co");
        m.insert("SUPABASE_SERVICE_ROLE_KEY", "sb_secret_abc");
        assert!(matches!(load(&m).unwrap().storage, StorageConfig::SupabaseRest { .. }));
        m.insert("DATABASE_URL", "postgresql://u:p@db.x.supabase.co:5432/postgres");
        assert!(matches!(load(&m).unwrap().storage, StorageConfig::Postgres { .. }));
    }

    #[test]
    fn one_precise_message_per_bad_value_without_secrets() {
        let mut m = base();
        m.remove("OPENAI_API_KEY");
        m.insert("TWILIO_ACCOUNT_SID", "XX123");
        m.insert("TWILIO_PHONE_NUMBER_FROM", "0612345678");
        m.insert("PUBLIC_APP_URL", "cp.example.eu");
        m.insert("STREAM_TOKEN_SECRET", "short-secret-value");
        m.insert("TRANSCRIPT_RETENTION_DAYS", "0");
        m.insert("TWILIO_REQUIRE_VERIFIED_NUMBERS", "maybe");
        m.insert("TWILIO_STREAM_DOMAIN", "wss://edge.example.eu/x");
        m.insert("ALLOWED_CALL_COUNTRIES", "FR,XX");
        m.insert("SUPABASE_URL", "https://x.supabase.co");
        m.insert("CONTROL_LISTEN_ADDR", "localhost");
        let e = load(&m).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.0.len(), 11, "{text}");
        for needle in [
            "OPENAI_API_KEY is not set",
            "TWILIO_ACCOUNT_SID must be AC",
            "TWILIO_PHONE_NUMBER_FROM must be a valid number in E.164",
            "PUBLIC_APP_URL must be an http(s)://",
            "STREAM_TOKEN_SECRET is 18 bytes, at least 32",
            "TRANSCRIPT_RETENTION_DAYS must be a whole number from 1 to 3650",
            "TWILIO_REQUIRE_VERIFIED_NUMBERS must be 1/0",
            "TWILIO_STREAM_DOMAIN must be a bare host",
            "ALLOWED_CALL_COUNTRIES: \"XX\"",
            "SUPABASE_URL is set but SUPABASE_SERVICE_ROLE_KEY is not",
            "CONTROL_LISTEN_ADDR must be ip:port",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(!text.contains("short-secret-value"));
        assert!(!text.contains("0612345678"));
    }

    #[test]
    fn retries_are_off_by_default_and_read_when_set() {
        let c = load(&base()).unwrap();
        assert!(c.retry.delays.is_empty());
        assert_eq!(c.retry.worker_period, std::time::Duration::from_secs(30));
        let mut m = base();
        m.insert("CALL_RETRY_DELAYS", "10m, 2h");
        m.insert("CALLING_HOURS_BE", "mon-fri 09:00-12:00,13:00-19:00; sat 10:00-12:00");
        m.insert("CALLING_HOURS_DEFAULT", "mon-fri 11:00-18:00");
        let c = load(&m).unwrap();
        assert_eq!(c.retry.delays.len(), 2);
        let be = c.retry.hours.for_region(Some(Id::BE));
        assert_eq!(be.windows(5).len(), 1, "Saturday morning in Belgium");
        assert_eq!(c.retry.hours.for_region(Some(Id::FR)), &crate::calling_hours::CallingHours::france());
        assert_eq!(c.retry.hours.for_region(Some(Id::US)).windows(0)[0].start, 11 * 60);
    }

    #[test]
    fn bad_retry_settings_get_one_message_each() {
        let mut m = base();
        m.insert("CALL_RETRY_DELAYS", "10m,2x");
        m.insert("CALLING_HOURS_BE", "mon-fry 10:00-12:00");
        m.insert("CALLING_HOURS_FR", "mon-fri 10:00");
        m.insert("CALLING_HOURS_DEFAULT", "mon 18:00-09:00");
        m.insert("CALL_RETRY_WORKER_SECS", "0");
        let e = load(&m).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.0.len(), 5, "{text}");
        for needle in [
            "CALL_RETRY_DELAYS: \"2x\" is not a delay",
            "CALLING_HOURS_BE: \"fry\" is not a day",
            "CALLING_HOURS_FR: \"10:00\" is not a window",
            "CALLING_HOURS_DEFAULT: window \"18:00-09:00\" ends before it starts",
            "CALL_RETRY_WORKER_SECS must be a whole number from 1 to 3600",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        m.insert("CALL_RETRY_DELAYS", "10m,1h,2h,1d");
        let text = load(&m).unwrap_err().to_string();
        assert!(text.contains("CALL_RETRY_DELAYS: 4 delays given, at most 3"), "{text}");
    }
}
