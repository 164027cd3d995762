//! The server side of the WebSocket upgrade (Twilio → gateway): `ws::upgrade::parse_request`,
//! then the upgrade authorizer (`core::auth`) on what it accepts.
//!
//! Checks, beyond "no panic":
//! - the head is judged only once complete: `Partial` exactly when httparse (run
//!   independently) says the head is incomplete, every prefix of a complete head is `Partial`,
//!   and bytes after the head (the first WebSocket frames) change nothing;
//! - an accepted request borrows from the input, has a non-empty host and a key that is base64
//!   of 16 bytes, and `head_len` is the head's length;
//! - the 101 answer for that key is well formed, and a request written by our own client side
//!   for the same key, host and path parses back to the same values and accepts our 101;
//! - a refusal's status and message form a well-formed HTTP response;
//! - the authorizer accepts only signed, unexpired media-stream paths without a query.
#![no_main]

use std::sync::LazyLock;

use callway_fuzz::{fixtures, within};
use callway_gateway::core::auth::{STREAM_PATH_PREFIX, UpgradeAuthorizer};
use callway_gateway::core::ws::upgrade::{
    MAX_HEAD_LEN, MAX_HEADERS, Parse, UpgradeRequest, parse_request, write_accept, write_client_request,
    write_refusal,
};
use libfuzzer_sys::fuzz_target;

static AUTH: LazyLock<UpgradeAuthorizer> = LazyLock::new(fixtures::authorizer);

fuzz_target!(|data: &[u8]| {
    let result = parse_request(data);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head = httparse::Request::new(&mut headers).parse(data);

    match &result {
        Ok(Parse::Partial) => {
            assert!(data.len() < MAX_HEAD_LEN, "Partial for a {}-byte head", data.len());
            assert!(matches!(head, Ok(httparse::Status::Partial)), "Partial but httparse says {head:?}");
        }
        Ok(Parse::Complete(req)) => {
            assert_eq!(head, Ok(httparse::Status::Complete(req.head_len)));
            accepted(data, req);
        }
        Err(e) => {
            let status = e.status();
            assert!(matches!(status, 400 | 405 | 426 | 431 | 505), "{e:?} -> {status}");
            let message = e.to_string();
            let mut out = [0u8; 1024];
            let n = write_refusal(&mut out, status, &message).expect("refusal fits 1 KiB");
            let mut h = [httparse::EMPTY_HEADER; 16];
            let mut res = httparse::Response::new(&mut h);
            let Ok(httparse::Status::Complete(len)) = res.parse(&out[..n]) else {
                panic!("refusal is not a complete HTTP response")
            };
            assert_eq!(res.code, Some(status));
            assert_eq!(&out[len..n], format!("{message}\n").as_bytes());
        }
    }

    if let Ok(httparse::Status::Complete(n)) = head
        && n <= MAX_HEAD_LEN
    {
        for cut in [0, 1, n / 3, n / 2, n.saturating_sub(2), n - 1] {
            if cut < n {
                assert_eq!(
                    parse_request(&data[..cut]),
                    Ok(Parse::Partial),
                    "prefix of {cut} of a {n}-byte head"
                );
            }
        }
        assert_eq!(parse_request(&data[..n]), result, "bytes after the head changed the verdict");
    }
});

fn accepted(data: &[u8], req: &UpgradeRequest<'_>) {
    assert!(req.head_len <= data.len() && req.head_len <= MAX_HEAD_LEN);
    for s in [req.path, req.host, req.key].into_iter().chain(req.twilio_signature) {
        assert!(within(&data[..req.head_len], s.as_bytes()), "{s:?} is not borrowed from the head");
    }
    assert!(!req.host.is_empty());
    assert_eq!(req.key.len(), 24);
    let key = base64_simd::STANDARD.decode_to_vec(req.key).expect("key is base64");
    let key: [u8; 16] = key.try_into().expect("key is 16 bytes");

    // Our 101 for this key.
    let mut out = [0u8; 256];
    let n = write_accept(&mut out, req.key).expect("101 fits");
    let mut h = [httparse::EMPTY_HEADER; 8];
    let mut res = httparse::Response::new(&mut h);
    assert_eq!(res.parse(&out[..n]), Ok(httparse::Status::Complete(n)));
    assert_eq!(res.code, Some(101));

    // Our client side, asking for the same thing, is understood, and accepts our answer.
    let mut out = vec![0u8; req.path.len() + req.host.len() + 256];
    let (n, hs) = write_client_request(&mut out, req.host, req.path, &[], key).expect("sized");
    if n <= MAX_HEAD_LEN {
        let again = parse_request(&out[..n]);
        let Ok(Parse::Complete(again)) = again else { panic!("our own request refused: {again:?}") };
        assert_eq!((again.path, again.host, again.head_len), (req.path, req.host, n));
        assert_eq!(base64_simd::STANDARD.decode_to_vec(again.key).ok().as_deref(), Some(&key[..]));
        let mut answer = [0u8; 256];
        let m = write_accept(&mut answer, again.key).expect("101 fits");
        assert_eq!(hs.read_response(&answer[..m]), Ok(Parse::Complete(m)), "client refuses our 101");
    }

    // Who may open a stream.
    if let Ok(claims) = AUTH.authorize(req, fixtures::NOW) {
        assert!(req.path.starts_with(STREAM_PATH_PREFIX) && !req.path.contains('?'));
        assert!(req.twilio_signature.is_some());
        assert!(claims.expires_at.saturating_add(fixtures::LEEWAY) >= fixtures::NOW);
    } else if let Err(e) = AUTH.authorize(req, fixtures::NOW) {
        assert!(matches!(e.status(), 400 | 401 | 403 | 404 | 410), "{e:?}");
    }
}
