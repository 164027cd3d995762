//! The client side of the WebSocket upgrade (gateway → OpenAI): `ClientHandshake::read_response`
//! on the server's answer, for a handshake whose key is RFC 6455's example.
//!
//! Checks: `Partial` exactly while httparse (run independently) says the head is incomplete;
//! success only for a 101 whose head carries the right `Sec-WebSocket-Accept`; a refusal reports
//! a non-101 status and the head's length; every prefix of a complete head is `Partial`, and
//! bytes after the head (the first frames, or an error body) change nothing.
#![no_main]

use std::sync::LazyLock;

use callway_fuzz::fixtures;
use callway_gateway::core::ws::upgrade::{
    ClientHandshake, HandshakeError, MAX_HEAD_LEN, MAX_HEADERS, Parse, write_client_request,
};
use libfuzzer_sys::fuzz_target;

static HS: LazyLock<ClientHandshake> = LazyLock::new(|| {
    let mut out = [0u8; 512];
    let auth = [("Authorization", "Bearer sk-fuzz")];
    write_client_request(
        &mut out,
        "api.openai.com",
        "/v1/realtime?model=gpt-realtime",
        &auth,
        fixtures::CLIENT_KEY,
    )
    .expect("fits")
    .1
});

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let result = HS.read_response(data);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    let head = res.parse(data);
    match result {
        Ok(Parse::Partial) => {
            assert!(data.len() < MAX_HEAD_LEN);
            assert!(matches!(head, Ok(httparse::Status::Partial)), "Partial but httparse says {head:?}");
        }
        Ok(Parse::Complete(n)) => {
            assert!(n <= data.len() && n <= MAX_HEAD_LEN);
            assert_eq!(head, Ok(httparse::Status::Complete(n)));
            assert!(
                contains(&data[..n], fixtures::CLIENT_ACCEPT.as_bytes()),
                "accepted without the accept key"
            );
            assert_eq!(res.code, Some(101), "accepted a non-101");
        }
        Err(HandshakeError::Refused { status, head_len }) => {
            assert_ne!(status, 101);
            assert!(head_len <= data.len());
            assert_eq!(head, Ok(httparse::Status::Complete(head_len)));
            assert_eq!(res.code, Some(status));
        }
        Err(_) => {}
    }
    if let Ok(httparse::Status::Complete(n)) = head
        && n <= MAX_HEAD_LEN
    {
        for cut in [0, 1, n / 3, n / 2, n.saturating_sub(2), n - 1] {
            if cut < n {
                assert_eq!(HS.read_response(&data[..cut]), Ok(Parse::Partial), "prefix of {cut} of {n}");
            }
        }
        assert_eq!(HS.read_response(&data[..n]), result, "bytes after the head changed the verdict");
    }
});
