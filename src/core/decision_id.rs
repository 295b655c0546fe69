//! The decision id: one per check, sortable by time and unique, so that a client's 403, the
//! upstream's request, Envoy's access log and claimgate's decision log can be joined.
//!
//! A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits from the thread's
//! own generator. `uuid`'s `now_v7` would serialise every check on one global mutex for a
//! counter; ids are sortable to the millisecond without it, and unique by their random bits.

use std::fmt;

use uuid::Uuid;

/// The length of a decision id as text (a hyphenated UUID).
pub const LEN: usize = 36;

/// The header that carries the decision id (upstream on allow, to the client on deny).
pub const HEADER: &str = "x-claimgate-decision-id";

/// One decision's id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DecisionId(Uuid);

impl DecisionId {
    /// A new id for a decision made at `unix_millis`.
    pub fn new(unix_millis: u64) -> DecisionId {
        let random: [u8; 10] = rand::random();
        DecisionId(uuid::Builder::from_unix_timestamp_millis(unix_millis, &random).into_uuid())
    }

    /// A new id for a decision made now.
    pub fn now() -> DecisionId {
        DecisionId::new(crate::core::clock::unix_now_millis())
    }

    /// The id as text, without allocating.
    pub fn encode<'b>(&self, buf: &'b mut [u8; LEN]) -> &'b str {
        self.0.hyphenated().encode_lower(buf)
    }
}

impl fmt::Display for DecisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for DecisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_and_sort_by_their_millisecond() {
        let a = DecisionId::new(1_764_439_200_000);
        let b = DecisionId::new(1_764_439_200_001);
        assert_eq!(a.0.get_version_num(), 7);
        assert!(a < b);
        assert_eq!(a.to_string().len(), LEN);
        let mut buf = [0u8; LEN];
        assert_eq!(a.encode(&mut buf), a.to_string());
    }

    #[test]
    fn ids_of_the_same_millisecond_differ() {
        let ids: std::collections::HashSet<DecisionId> =
            (0..1000).map(|_| DecisionId::new(7)).collect();
        assert_eq!(ids.len(), 1000);
    }
}
