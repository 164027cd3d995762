//! `contract::stream_token`: the verifier on any bytes, and mint → verify → tamper round trips.
//!
//! Input: byte 0 even: the rest is a token, verified at `fixtures::NOW`. Anything accepted must
//! be exactly what one of the configured secrets mints for the claims returned (the encoding
//! is canonical), and unexpired.
//! Byte 0 odd: the rest drives a round trip: claims, a clock, which secret signs (one of the
//! two configured, or one the verifier does not have), a byte to change and how. A minted token
//! verifies to its claims exactly until `expires_at + leeway` and is `Expired` after; a foreign
//! secret's is `BadSignature`; with any byte changed, a byte dropped or one added, it is
//! refused, never for expiry (the tag is checked first). No error message repeats the token's
//! payload or tag.
#![no_main]

use std::sync::LazyLock;

use arbitrary::{Result, Unstructured};
use callway_fuzz::fixtures::{self, FOREIGN_SECRET, LEEWAY, NOW, OLD_TOKEN_SECRET, TOKEN_SECRET};
use contract::stream_token::{StreamClaims, StreamTokenMinter, StreamTokenVerifier, TOKEN_LEN, TokenError};
use libfuzzer_sys::fuzz_target;

static VERIFIER: LazyLock<StreamTokenVerifier> = LazyLock::new(fixtures::verifier);
static MINTERS: LazyLock<[StreamTokenMinter; 3]> = LazyLock::new(|| {
    [TOKEN_SECRET, OLD_TOKEN_SECRET, FOREIGN_SECRET]
        .map(|s| StreamTokenMinter::new(s).expect("strong secret"))
});

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The error message never repeats what is secret-like in a minted (possibly changed) token:
/// its payload or its tag. Only for minted tokens: arbitrary input can be made of the fixed
/// messages themselves (the fuzzer found `v1.ERER…IA.expected v1.<payload>.<tag>, 117 characters`).
fn quiet(e: &TokenError, token: &[u8]) {
    let msg = e.to_string();
    if token.len() == TOKEN_LEN {
        for part in [&token[3..73], &token[74..]] {
            assert!(!contains(msg.as_bytes(), part), "error message repeats part of the token: {msg}");
        }
    }
}

fn raw(token: &[u8]) {
    if let Ok(claims) = VERIFIER.verify(token, NOW) {
        assert!(
            MINTERS[..2].iter().any(|m| m.mint(&claims).as_bytes() == token),
            "accepted a token no configured secret mints"
        );
        assert!(claims.expires_at.saturating_add(LEEWAY) >= NOW);
    }
}

fn round_trip(u: &mut Unstructured<'_>) -> Result<()> {
    let claims = StreamClaims {
        call_id: u.arbitrary()?,
        lead_id: u.arbitrary()?,
        expires_at: if u.arbitrary()? {
            NOW.wrapping_add(u.int_in_range(0..=120)?).wrapping_sub(60)
        } else {
            u.arbitrary()?
        },
        nonce: u.arbitrary()?,
    };
    let now = if u.arbitrary()? {
        claims.expires_at.wrapping_add(LEEWAY).wrapping_add(u.int_in_range(0..=4)?).wrapping_sub(2)
    } else {
        u.arbitrary()?
    };
    let signer = u.int_in_range(0..=2)?;
    let token = MINTERS[signer].mint(&claims).into_bytes();
    assert_eq!(token.len(), TOKEN_LEN);
    assert!(token.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b)));

    let verdict = VERIFIER.verify(&token, now);
    if signer == 2 {
        assert_eq!(verdict, Err(TokenError::BadSignature), "foreign secret");
    } else if now > claims.expires_at.saturating_add(LEEWAY) {
        assert_eq!(
            verdict,
            Err(TokenError::Expired { expires_at: claims.expires_at, now, leeway_secs: LEEWAY })
        );
    } else {
        assert_eq!(verdict, Ok(claims), "a fresh token does not verify to its claims");
    }
    if let Err(e) = verdict {
        quiet(&e, &token);
    }

    let mut tampered = token.clone();
    let i = u.choose_index(token.len())?;
    let x: u8 = u.arbitrary()?;
    tampered[i] ^= x.max(1);
    let mut shorter = token.clone();
    shorter.remove(i);
    let mut longer = token.clone();
    longer.insert(i, *u.choose(b"Aa0-_.v=")?);
    for t in [tampered, shorter, longer] {
        match VERIFIER.verify(&t, now) {
            Ok(c) => panic!("changed token {:?} accepted as {c:?}", String::from_utf8_lossy(&t)),
            Err(e @ TokenError::Expired { .. }) => panic!("changed token refused for expiry only: {e:?}"),
            Err(e) => quiet(&e, &t),
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        raw(rest);
    } else {
        let _ = round_trip(&mut Unstructured::new(rest));
    }
});
