//! The stub control plane: HTTP/1.1 on loopback, keep-alive, answering the internal API the
//! way the real one does when everything is fine, and checking nothing (not even the HMAC).
//!
//! - `POST /internal/v1/stream-tokens/redeem` → `200` with a valid [`CallContext`] (the call id
//!   is read from the token's payload when it decodes, so the gateway's logs name the call);
//! - `POST /internal/v1/calls/{id}/events` → `204`;
//! - `POST /internal/v1/calls/{id}/tools/{name}` → `200` with the [`ToolResponse`] of a tool
//!   that worked (`save_lead`: saved; `end_call`: ended; another name: `ok: false`);
//! - anything else → `404`.

use callway_gateway::core::buf::RecvBuf;
use contract::internal_api::{CallContext, REDEEM_PATH, ToolResponse};
use contract::stream_token::StreamTokenVerifier;

use super::conn::Outbox;
use super::recorder::Counts;

/// Receive buffer of a control-plane connection (requests are well under 4 KiB).
pub const RECV: usize = 16 * 1024;

/// Handles every complete request in `recv`, queueing the answers in `out`. Returns `false`
/// when the connection should be dropped (a request it cannot read).
pub fn process(
    recv: &mut RecvBuf,
    out: &mut Outbox,
    verifier: Option<&StreamTokenVerifier>,
    counts: &mut Counts,
) -> bool {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let data = recv.data();
        let head_len = match req.parse(data) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return data.len() < RECV,
            Err(_) => {
                out.push_raw(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                return false;
            }
        };
        let body_len = req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if data.len() < head_len + body_len {
            return head_len + body_len <= RECV;
        }
        let path = req.path.unwrap_or("");
        let body = &data[head_len..head_len + body_len];
        counts.control_requests += 1;
        respond(path, body, verifier, out, counts);
        recv.consume(head_len + body_len);
    }
}

fn respond(
    path: &str,
    body: &[u8],
    verifier: Option<&StreamTokenVerifier>,
    out: &mut Outbox,
    counts: &mut Counts,
) {
    if path == REDEEM_PATH {
        let json = serde_json::to_string(&context(body, verifier)).unwrap_or_default();
        ok_json(out, json.as_bytes());
    } else if path.starts_with("/internal/v1/calls/") && path.ends_with("/events") {
        counts.event_batches += 1;
        out.push_raw(b"HTTP/1.1 204 No Content\r\n\r\n");
    } else if path.starts_with("/internal/v1/calls/") && path.contains("/tools/") {
        counts.tool_requests += 1;
        // What the control plane answers when the tool works (control-plane/src/routes/internal.rs).
        let (ok, output) = if path.ends_with("/tools/save_lead") {
            (true, r#"{"lead_id":"22222222-2222-2222-2222-222222222222","saved":true,"phone_e164":null}"#)
        } else if path.ends_with("/tools/end_call") {
            (true, r#"{"ended":true}"#)
        } else {
            (false, r#"{"error":"unknown_tool","message":"no such tool"}"#)
        };
        let r = ToolResponse { ok, output: output.into() };
        ok_json(out, serde_json::to_string(&r).unwrap_or_default().as_bytes());
    } else {
        let msg =
            br#"{"code":"not_found","message":"the load generator's stub control plane has no such route"}"#;
        let mut n = itoa::Buffer::new();
        out.push_raw(b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: ");
        out.push_raw(n.format(msg.len()).as_bytes());
        out.push_raw(b"\r\n\r\n");
        out.push_raw(msg);
    }
}

fn ok_json(out: &mut Outbox, body: &[u8]) {
    let mut n = itoa::Buffer::new();
    out.push_raw(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ");
    out.push_raw(n.format(body.len()).as_bytes());
    out.push_raw(b"\r\n\r\n");
    out.push_raw(body);
}

fn uuid(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The call context for a redeem request's body (`{"token":"…"}`).
fn context(body: &[u8], verifier: Option<&StreamTokenVerifier>) -> CallContext {
    let token = memchr::memmem::find(body, br#""token":""#).and_then(|i| {
        let rest = &body[i + 9..];
        Some(&rest[..memchr::memchr(b'"', rest)?])
    });
    // Not a check: the gateway verified the token already; this only names the call.
    let claims = token.zip(verifier).and_then(|(t, v)| v.verify(t, 0).ok());
    let (call_id, lead_id) = match claims {
        Some(c) => (uuid(&c.call_id), uuid(&c.lead_id)),
        None => (uuid(&[0x11; 16]), uuid(&[0x22; 16])),
    };
    CallContext {
        call_id,
        lead_id,
        first_name: "Camille".into(),
        summary: "Le prospect a demandé à être rappelé au sujet de l'offre.".into(),
        language: "fr".into(),
        voice: "marin".into(),
        instructions: "Tu es l'agent commercial de Callway. Reprends la conversation commencée sur le site, \
                       présente-toi brièvement et réponds aux questions du prospect."
            .into(),
        transfer: false,
        web_transcript: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::stream_token::{StreamClaims, StreamTokenMinter};

    fn answers(input: &[u8], verifier: Option<&StreamTokenVerifier>) -> (bool, String, Counts) {
        let mut recv = RecvBuf::with_capacity(RECV);
        recv.push(input);
        let mut out = Outbox::default();
        let mut counts = Counts::default();
        let keep = process(&mut recv, &mut out, verifier, &mut counts);
        let mut wire = Vec::new();
        out.flush(&mut wire).unwrap();
        (keep, String::from_utf8(wire).unwrap(), counts)
    }

    #[test]
    fn redeem_answers_a_call_context_for_the_token() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let claims =
            StreamClaims { call_id: [0xAB; 16], lead_id: [0xCD; 16], expires_at: 10, nonce: [0; 12] };
        let token = StreamTokenMinter::new(secret).unwrap().mint(&claims);
        let verifier = StreamTokenVerifier::new(&[secret], 0).unwrap();
        let body = format!(r#"{{"token":"{token}"}}"#);
        let req = format!(
            "POST {REDEEM_PATH} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let (keep, wire, counts) = answers(req.as_bytes(), Some(&verifier));
        assert!(keep);
        assert!(wire.starts_with("HTTP/1.1 200 OK\r\n"), "{wire}");
        let json = &wire[wire.find("\r\n\r\n").unwrap() + 4..];
        let ctx: CallContext = serde_json::from_str(json).unwrap();
        assert!(ctx.call_id.starts_with("abababab-abab-"), "{ctx:?}");
        assert_eq!(counts.control_requests, 1);
    }

    #[test]
    fn events_keep_alive_and_partial_requests() {
        let one = "POST /internal/v1/calls/x/events HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}";
        let two = format!("{one}{one}");
        let (keep, wire, counts) = answers(two.as_bytes(), None);
        assert!(keep);
        assert_eq!(wire.matches("HTTP/1.1 204 No Content").count(), 2);
        assert_eq!(counts.event_batches, 2);
        let (keep, wire, _) = answers(&one.as_bytes()[..one.len() - 1], None);
        assert!(keep && wire.is_empty(), "waits for the body");
        let (_, wire, _) = answers(b"GET /nope HTTP/1.1\r\n\r\n", None);
        assert!(wire.starts_with("HTTP/1.1 404"));
        let tool = "POST /internal/v1/calls/x/tools/save_lead HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}";
        let (_, wire, counts) = answers(tool.as_bytes(), None);
        let json = &wire[wire.find("\r\n\r\n").unwrap() + 4..];
        let r: ToolResponse = serde_json::from_str(json).unwrap();
        assert!(r.ok && r.output.contains(r#""saved":true"#), "{r:?}");
        assert_eq!(counts.tool_requests, 1);
        let (keep, wire, _) = answers(b"\x00\x01 garbage\r\n\r\n", None);
        assert!(!keep && wire.starts_with("HTTP/1.1 400"));
    }
}
