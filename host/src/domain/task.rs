//! The task as stored, and the one textual form of its timestamps.

use chrono::{DateTime, Datelike, SecondsFormat, SubsecRound, Timelike, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A task as stored (WIT `types.task`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub id: Uuid,
    /// The owner (the JWT `sub`).
    pub user_id: String,
    pub title: String,
    pub description: Option<String>,
    pub completed: bool,
    /// RFC 3339 UTC.
    #[serde(with = "rfc3339::option")]
    pub due_date: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
}

/// The current time at the precision the host stores (milliseconds), so a value
/// read back from either database equals the value written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// Formats a timestamp the way every surface shows it: RFC 3339, UTC, milliseconds
/// (`2026-02-09T14:30:00.000Z`), exactly as chrono's `to_rfc3339_opts(Millis, true)`.
///
/// Every mutation formats four of these for its mapper call and more for its envelopes
/// and responses, so the common case (years 0–9999, no leap second) writes the digits
/// itself instead of going through `fmt`; anything else is left to chrono.
pub fn format_time(t: &DateTime<Utc>) -> String {
    let year = t.year();
    let nanos = t.nanosecond();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return t.to_rfc3339_opts(SecondsFormat::Millis, true);
    }
    let mut text = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, value: u32, digits: usize| {
        let mut value = value;
        for i in (at..at + digits).rev() {
            // Each value is below 10^digits here, so every digit fits a u8.
            text[i] = b'0' + u8::try_from(value % 10).unwrap_or(0);
            value /= 10;
        }
    };
    put(0, year.unsigned_abs(), 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    put(17, t.second(), 2);
    put(20, nanos / 1_000_000, 3);
    String::from_utf8_lossy(&text).into_owned()
}

/// Serde for timestamps in the host's one textual form (see [`format_time`]).
pub mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }

    /// The same for optional timestamps.
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|raw| {
                    DateTime::parse_from_rfc3339(&raw)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(serde::de::Error::custom)
                })
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    fn chrono_form(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    #[test]
    fn the_written_form_is_chronos_at_the_edges() {
        let edges = [
            Utc.with_ymd_and_hms(2026, 2, 9, 14, 30, 0).unwrap(),
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap()
                + chrono::Duration::nanoseconds(999_999_999),
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 6, 15, 12, 0, 0).unwrap(),
            // A leap second: chrono writes it as second 60.
            NaiveDate::from_ymd_opt(2016, 12, 31)
                .unwrap()
                .and_hms_milli_opt(23, 59, 59, 1_500)
                .unwrap()
                .and_utc(),
        ];
        for t in edges {
            assert_eq!(format_time(&t), chrono_form(&t), "{t:?}");
        }
        assert_eq!(
            format_time(&Utc.with_ymd_and_hms(2026, 2, 9, 14, 30, 0).unwrap()),
            "2026-02-09T14:30:00.000Z"
        );
    }

    #[test]
    fn the_written_form_is_chronos_across_the_range() {
        // A deterministic sweep (xorshift) over years -2200 to 11,500 and every
        // sub-second value: both sides of the fast path.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let secs = i64::try_from(x % 432_000_000_000).unwrap() - 132_000_000_000;
            let nanos = u32::try_from((x >> 20) % 1_000_000_000).unwrap();
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            assert_eq!(format_time(&t), chrono_form(&t), "{secs} {nanos}");
        }
    }
}
