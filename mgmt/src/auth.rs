//! Bearer-token authentication. The token is compared in constant time so
//! response timing does not reveal how many leading bytes a guess got
//! right.

use alloc::vec::Vec;

use subtle::ConstantTimeEq;

/// The API token. Every endpoint but the health check requires
/// `Authorization: Bearer <token>`.
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl core::fmt::Debug for Token {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the secret into a log.
        f.write_str("Token(..)")
    }
}

/// Shortest token accepted: a guessable token is no protection.
pub const MIN_TOKEN_LEN: usize = 16;

impl Token {
    /// A token from its text; `None` when it is shorter than
    /// [`MIN_TOKEN_LEN`] or holds characters a header cannot carry
    /// (only visible ASCII is allowed).
    pub fn new(text: &str) -> Option<Token> {
        let ok = text.len() >= MIN_TOKEN_LEN && text.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Token(Vec::from(text.as_bytes())))
    }

    /// Whether an `Authorization` header value carries this token.
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let value = trim(value);
        // The scheme is case-insensitive (RFC 9110 §11.1).
        let Some(scheme) = value.get(..7) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return false;
        }
        let presented = trim(&value[7..]);
        // ct_eq returns false at once for a different length: that leaks
        // only the length, which MIN_TOKEN_LEN makes worthless to know.
        bool::from(presented.ct_eq(&self.0))
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}
