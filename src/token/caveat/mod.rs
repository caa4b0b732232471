//! The first-party caveats the server understands.
//!
//! | caveat | meaning |
//! |---|---|
//! | `tokenType = T` | the token is of type `T` (`space_support_token`, `space_create_token`, `access_token`, `provider_token`) and may only be used as such |
//! | `time < N` | the token is valid only while the current unix time is below `N` |
//!
//! Any other predicate makes verification fail.

use crate::model::TokenKind;

/// A caveat the verifier understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caveat {
    /// `tokenType = ...`.
    TokenType(TokenKind),
    /// `time < N` (unix seconds).
    TimeBefore(u64),
}

impl Caveat {
    /// Parses a predicate; `None` if it is not understood.
    pub fn parse(predicate: &[u8]) -> Option<Caveat> {
        let s = std::str::from_utf8(predicate).ok()?;
        if let Some(kind) = s.strip_prefix("tokenType = ") {
            return TokenKind::from_wire_name(kind).map(Caveat::TokenType);
        }
        if let Some(n) = s.strip_prefix("time < ") {
            if n.is_empty() || n.len() > 20 || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            return n.parse().ok().map(Caveat::TimeBefore);
        }
        None
    }

    /// The predicate text.
    pub fn to_predicate(self) -> String {
        match self {
            Caveat::TokenType(k) => format!("tokenType = {}", k.wire_name()),
            Caveat::TimeBefore(t) => format!("time < {t}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_rejects_the_unknown() {
        for c in [
            Caveat::TokenType(TokenKind::SpaceSupport),
            Caveat::TokenType(TokenKind::SpaceCreate),
            Caveat::TimeBefore(1496140144),
        ] {
            assert_eq!(Caveat::parse(c.to_predicate().as_bytes()), Some(c));
        }
        for bad in [
            "time < ",
            "time < -1",
            "time < +5",
            "time < 1e9",
            "time <  5",
            "time > 5",
            "tokenType = root",
            "tokentype = space_support_token",
            "ip = 127.0.0.1",
            "time < 99999999999999999999999",
        ] {
            assert_eq!(Caveat::parse(bad.as_bytes()), None, "{bad}");
        }
    }
}
