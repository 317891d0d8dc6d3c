//! Token parsing and the bearer check.

use crate::auth::*;

#[test]
fn short_or_odd_tokens_are_refused() {
    assert!(Token::new("short").is_none());
    assert!(Token::new("0123456789abcdef\n").is_none());
    assert!(Token::new("0123456789 abcdef").is_none());
    assert!(Token::new("0123456789abcdef").is_some());
}

#[test]
fn only_the_exact_bearer_token_passes() {
    let t = Token::new("0123456789abcdef").unwrap();
    assert!(t.accepts(Some(b"Bearer 0123456789abcdef")));
    assert!(t.accepts(Some(b"bearer   0123456789abcdef ")));
    assert!(!t.accepts(None));
    assert!(!t.accepts(Some(b"")));
    assert!(!t.accepts(Some(b"Bearer")));
    assert!(!t.accepts(Some(b"Basic 0123456789abcdef")));
    assert!(!t.accepts(Some(b"Bearer 0123456789abcdeF")));
    assert!(!t.accepts(Some(b"Bearer 0123456789abcde")));
    assert!(!t.accepts(Some(b"Bearer 0123456789abcdef0")));
    assert!(!t.accepts(Some(b"Bearer0123456789abcdef")));
}

#[test]
fn debug_output_hides_the_secret() {
    let t = Token::new("0123456789abcdef").unwrap();
    assert!(!alloc::format!("{t:?}").contains("0123"));
}
