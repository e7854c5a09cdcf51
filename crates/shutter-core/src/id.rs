//! Identifiers: UUIDv7, so they are unique without coordination and sort by creation time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An opaque, time-sortable identifier (UUIDv7 rendered as text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(Uuid);

impl Id {
    /// A new identifier for the current instant.
    pub fn new() -> Self {
        Id(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for Id {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The text did not hold an identifier.
#[derive(Debug, thiserror::Error)]
#[error("not an identifier")]
pub struct InvalidId;

impl FromStr for Id {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Id).map_err(|_| InvalidId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_sort_by_creation() {
        let a = Id::new();
        let b = Id::new();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<Id>().ok(), Some(a));
        assert!("not-an-id".parse::<Id>().is_err());
    }
}
