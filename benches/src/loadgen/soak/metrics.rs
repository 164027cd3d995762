//! The gateway's own counters: one `GET /metrics` on its ops port at the end of a soak
//! (Prometheus text), kept as `name{labels} → value`.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Fetches `/metrics` from the ops address.
pub fn scrape(ops: SocketAddr) -> Result<BTreeMap<String, f64>, String> {
    let timeout = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&ops, timeout).map_err(|e| format!("cannot reach {ops}: {e}"))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: ops\r\nconnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| format!("reading /metrics: {e}"))?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP head in the /metrics answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("/metrics answered {}", head.lines().next().unwrap_or_default()));
    }
    Ok(parse(body))
}

/// Every sample line of a Prometheus text exposition.
pub fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.trim().to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_labelled_samples_and_skips_comments() {
        let m = parse(
            "# HELP a x\n# TYPE a counter\ncallway_gateway_active_calls 0\n\
             callway_gateway_calls_total{reason=\"caller_hung_up\"} 12\nbroken\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m["callway_gateway_calls_total{reason=\"caller_hung_up\"}"], 12.0);
        assert_eq!(m["callway_gateway_active_calls"], 0.0);
    }
}
