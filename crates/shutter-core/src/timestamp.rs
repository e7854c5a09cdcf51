//! Instants in time, stored as milliseconds since the Unix epoch and rendered as RFC 3339 UTC
//! with milliseconds (`2026-11-22T10:00:00.123Z`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, UTC. Both database dialects store this integer, so
/// ordering and keyset comparisons are plain integer comparisons everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Timestamp((now.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn millis(&self) -> i64 {
        self.0
    }

    pub fn plus_secs(&self, secs: i64) -> Self {
        Timestamp(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    pub fn plus_millis(&self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    pub fn unix_seconds(&self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Parses RFC 3339 text (any offset) into a timestamp, truncated to milliseconds.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let dt = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        Some(Timestamp((dt.unix_timestamp_nanos() / 1_000_000) as i64))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1000);
        let ms = self.0.rem_euclid(1000);
        let Ok(dt) = OffsetDateTime::from_unix_timestamp(secs) else {
            return write!(f, "invalid-timestamp({})", self.0);
        };
        let year = match u32::try_from(dt.year()) {
            Ok(year) if year <= 9999 => year,
            // Years before 1 BC, as `write!` renders them.
            _ => {
                return write!(
                    f,
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{ms:03}Z",
                    dt.year(),
                    u8::from(dt.month()),
                    dt.day(),
                    dt.hour(),
                    dt.minute(),
                    dt.second()
                )
            }
        };
        // Digit by digit into a fixed buffer: every post, comment and file a response lists
        // renders two or more of these, and `write!` with seven padded fields cost about as
        // much as the rest of a post's rendering.
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut n: u32| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, u32::from(u8::from(dt.month())));
        put(8, 2, u32::from(dt.day()));
        put(11, 2, u32::from(dt.hour()));
        put(14, 2, u32::from(dt.minute()));
        put(17, 2, u32::from(dt.second()));
        put(20, 3, ms as u32);
        // Only ASCII digits were written into ASCII text.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_field_padded() {
        // 0099-01-02T03:04:05.006Z
        let t = Timestamp::parse_rfc3339("0099-01-02T03:04:05.006Z").map(|t| t.to_string());
        assert_eq!(t.as_deref(), Some("0099-01-02T03:04:05.006Z"));
        assert_eq!(
            Timestamp::from_millis(-1).to_string(),
            "1969-12-31T23:59:59.999Z"
        );
        assert_eq!(
            Timestamp::from_millis(253_402_300_799_999).to_string(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            Timestamp::from_millis(253_402_300_800_000).to_string(),
            "invalid-timestamp(253402300800000)"
        );
    }

    #[test]
    fn renders_rfc3339_utc_with_millis() {
        let t = Timestamp::from_millis(1_795_860_000_123);
        assert_eq!(t.to_string(), "2026-11-28T10:00:00.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_string()), Some(t));
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-28T11:00:00.123+01:00"),
            Some(t)
        );
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }
}
