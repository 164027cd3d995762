//! Which Twilio region a REST request is addressed to, read from its `Host` header.
//!
//! Twilio picks the processing region by host name (Twilio's "API domain migration guide" and
//! "Understanding Edge Locations", 2026):
//! - `api.twilio.com` and `api.us1.twilio.com`: the United States (US1);
//! - `api.{edge}.{region}.twilio.com`: the region named, entered through the edge named; the
//!   documented pairs for REST processing are `dublin` + `ie1` (Ireland) and `sydney` + `au1`
//!   (Australia);
//! - `api.{region}.twilio.com` for `ie1`, `au1`, `br1`, `de1`, `jp1`, `sg1` and `us2` processed
//!   everything in US1 and stopped answering on 2026-04-28.
//!
//! Credentials are per region: an auth token or API key of one region fails with 20003 in
//! another. The simulator models that when its account is given a region
//! ([`super::ApiConfig::region`]). A request to the simulator's own address (any host outside
//! `twilio.com`) counts as addressed to `api.twilio.com` (US1), since the simulator's address is
//! what replaces `https://api.twilio.com` in a client's configuration: a client of an IE1
//! account must name `api.dublin.ie1.twilio.com` in `Host`, as the control plane does with
//! `TWILIO_REGION`/`TWILIO_EDGE`.

/// A `Host` header, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiHost {
    /// `api.twilio.com` or `api.us1.twilio.com`.
    Us1,
    /// `api.{edge}.{region}.twilio.com` with a documented pair.
    Regional {
        /// `dublin`, `sydney`.
        edge: String,
        /// `ie1`, `au1`.
        region: String,
    },
    /// `api.{region}.twilio.com` (other than `us1`): no longer served.
    Retired {
        /// The region code in the name.
        region: String,
    },
    /// Another `*.twilio.com` name: no such API host.
    Unknown,
    /// Not a Twilio name: the simulator's own address (or none given), standing for
    /// `api.twilio.com`.
    Local,
}

/// Edge and region pairs that process REST requests outside the United States.
pub const REGIONAL_PAIRS: &[(&str, &str)] = &[("dublin", "ie1"), ("sydney", "au1")];

/// Region codes of the retired `api.{region}.twilio.com` names.
const RETIRED_REGIONS: &[&str] = &["ie1", "au1", "br1", "de1", "jp1", "sg1", "us2"];

impl ApiHost {
    /// Classifies a `Host` header value (port and letter case ignored).
    pub fn classify(host: Option<&str>) -> ApiHost {
        let Some(host) = host else { return ApiHost::Local };
        let name = host
            .rsplit_once(':')
            .map_or(host, |(h, port)| if port.bytes().all(|b| b.is_ascii_digit()) { h } else { host });
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let Some(prefix) = name.strip_suffix(".twilio.com") else {
            return ApiHost::Local;
        };
        let labels: Vec<&str> = prefix.split('.').collect();
        match labels.as_slice() {
            ["api"] | ["api", "us1"] => ApiHost::Us1,
            ["api", region] if RETIRED_REGIONS.contains(region) => {
                ApiHost::Retired { region: (*region).to_owned() }
            }
            ["api", edge, region] if REGIONAL_PAIRS.contains(&(*edge, *region)) => {
                ApiHost::Regional { edge: (*edge).to_owned(), region: (*region).to_owned() }
            }
            _ => ApiHost::Unknown,
        }
    }

    /// The region that processes a request sent to this host (`None`: no Twilio region
    /// answers it).
    pub fn processing_region(&self) -> Option<&str> {
        match self {
            ApiHost::Us1 | ApiHost::Local => Some("us1"),
            ApiHost::Regional { region, .. } => Some(region),
            ApiHost::Retired { .. } | ApiHost::Unknown => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified_as_twilio_routes_them() {
        assert_eq!(ApiHost::classify(Some("api.twilio.com")), ApiHost::Us1);
        assert_eq!(ApiHost::classify(Some("API.US1.twilio.com:443")), ApiHost::Us1);
        assert_eq!(
            ApiHost::classify(Some("api.dublin.ie1.twilio.com")),
            ApiHost::Regional { edge: "dublin".into(), region: "ie1".into() }
        );
        assert_eq!(
            ApiHost::classify(Some("api.sydney.au1.twilio.com.")),
            ApiHost::Regional { edge: "sydney".into(), region: "au1".into() }
        );
        assert_eq!(ApiHost::classify(Some("api.ie1.twilio.com")), ApiHost::Retired { region: "ie1".into() });
        assert_eq!(ApiHost::classify(Some("api.de1.twilio.com")), ApiHost::Retired { region: "de1".into() });
        // Frankfurt is an edge location, not a processing region.
        assert_eq!(ApiHost::classify(Some("api.frankfurt.de1.twilio.com")), ApiHost::Unknown);
        assert_eq!(ApiHost::classify(Some("api.dublin.au1.twilio.com")), ApiHost::Unknown);
        assert_eq!(ApiHost::classify(Some("127.0.0.1:4010")), ApiHost::Local);
        assert_eq!(ApiHost::classify(Some("[::1]:4010")), ApiHost::Local);
        assert_eq!(ApiHost::classify(Some("sim-twilio:8082")), ApiHost::Local);
        assert_eq!(ApiHost::classify(None), ApiHost::Local);
    }

    #[test]
    fn processing_region_follows_the_host() {
        assert_eq!(ApiHost::Us1.processing_region(), Some("us1"));
        assert_eq!(ApiHost::Local.processing_region(), Some("us1"));
        let dublin = ApiHost::classify(Some("api.dublin.ie1.twilio.com"));
        assert_eq!(dublin.processing_region(), Some("ie1"));
        assert_eq!(ApiHost::Retired { region: "ie1".into() }.processing_region(), None);
        assert_eq!(ApiHost::Unknown.processing_region(), None);
    }
}
