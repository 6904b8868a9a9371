//! The task and its validated parts.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};

use super::text::control_character;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A value that failed validation, with the field it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The JSON field at fault, e.g. `title`.
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

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

/// Formats a timestamp the way every surface shows it: RFC 3339, UTC, milliseconds.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A task title: at most 500 characters as sent, no control character, not blank;
/// stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTitle(String);

impl TaskTitle {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let chars = raw.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(ValidationError::new(
                "title",
                format!(
                    "must be at most {} characters, got {chars}",
                    Self::MAX_CHARS
                ),
            ));
        }
        if let Some(c) = control_character(raw, &[]) {
            return Err(ValidationError::new(
                "title",
                format!(
                    "must not contain control characters (found U+{:04X})",
                    u32::from(c)
                ),
            ));
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ValidationError::new("title", "must not be blank"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Control characters a description may hold: tab, line feed, carriage return.
pub const DESCRIPTION_CONTROLS: [char; 3] = ['\t', '\n', '\r'];

/// A task description: at most 10,000 characters, no control character but tab and
/// line breaks; blank becomes none.
pub fn parse_description(raw: Option<&str>) -> Result<Option<String>, ValidationError> {
    const MAX_CHARS: usize = 10_000;
    let Some(raw) = raw else { return Ok(None) };
    if raw.chars().count() > MAX_CHARS {
        return Err(ValidationError::new(
            "description",
            format!("must be at most {MAX_CHARS} characters"),
        ));
    }
    if let Some(c) = control_character(raw, &DESCRIPTION_CONTROLS) {
        return Err(ValidationError::new(
            "description",
            format!(
                "must not contain control characters other than tab and line breaks (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    Ok((!raw.trim().is_empty()).then(|| raw.to_owned()))
}

/// A due date: an RFC 3339 timestamp with upper-case `T` and `Z` (or a `±hh:mm`
/// offset) and a year from 0001 to 9998, normalised to UTC milliseconds. The year
/// bounds keep every normalised instant within four-digit years, which every surface,
/// both databases and RFC 3339 itself can represent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueDate(DateTime<Utc>);

impl DueDate {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = |why: String| {
            ValidationError::new(
                "due_date",
                format!("must be an RFC 3339 timestamp such as 2026-03-01T09:00:00Z ({why})"),
            )
        };
        if !rfc3339_shape(raw) {
            return Err(invalid(
                "expected YYYY-MM-DDThh:mm:ss, optional fraction, then Z or ±hh:mm".into(),
            ));
        }
        let year: u32 = raw[..4].parse().unwrap_or(0);
        if !(1..=9998).contains(&year) {
            return Err(invalid(format!(
                "the year must be 0001 to 9998, got {year:04}"
            )));
        }
        DateTime::parse_from_rfc3339(raw)
            .map(|t| Self(t.with_timezone(&Utc).trunc_subsecs(3)))
            .map_err(|e| invalid(e.to_string()))
    }

    pub fn into_inner(self) -> DateTime<Utc> {
        self.0
    }
}

/// Whether `raw` has the shape `YYYY-MM-DDThh:mm:ss[.f{1,9}](Z|±hh:mm)` in ASCII digits
/// (what the OpenAPI document's pattern for due dates says).
fn rfc3339_shape(raw: &str) -> bool {
    let b = raw.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut rest = &b[19..];
    if let [b'.', tail @ ..] = rest {
        let fraction = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&fraction) {
            return false;
        }
        rest = &tail[fraction..];
    }
    match rest {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
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

    #[test]
    fn title_is_trimmed_and_bounded() {
        assert_eq!(
            TaskTitle::parse("  buy milk ").unwrap().into_inner(),
            "buy milk"
        );
        assert_eq!(TaskTitle::parse("   ").unwrap_err().field, "title");
        assert!(TaskTitle::parse(&"é".repeat(500)).is_ok());
        assert!(TaskTitle::parse(&"é".repeat(501)).is_err());
        assert!(
            TaskTitle::parse(&format!(" {}", "x".repeat(500))).is_err(),
            "the limit counts what was sent"
        );
    }

    #[test]
    fn control_characters_are_refused_naming_the_field() {
        for bad in ["nul\0here", "line\nbreak", "tab\t", "\u{1b}[31m", "\u{85}"] {
            let e = TaskTitle::parse(bad).unwrap_err();
            assert_eq!(e.field, "title");
            assert!(e.message.contains("control characters"), "{e}");
        }
        assert!(parse_description(Some("two\nlines\r\n\ttabbed")).is_ok());
        assert_eq!(
            parse_description(Some("nul\0")).unwrap_err().field,
            "description"
        );
        assert!(TaskTitle::parse("ünïcödé ✓ 🦀").is_ok());
    }

    #[test]
    fn due_date_accepts_offsets_and_normalises_to_utc() {
        let d = DueDate::parse("2026-03-01T10:00:00+01:00")
            .unwrap()
            .into_inner();
        assert_eq!(format_time(&d), "2026-03-01T09:00:00.000Z");
        assert_eq!(DueDate::parse("tomorrow").unwrap_err().field, "due_date");
        assert!(DueDate::parse("2026-03-01").is_err());
        assert!(DueDate::parse("2026-03-01T09:00:00.123456789Z").is_ok());
    }

    #[test]
    fn due_dates_stay_within_four_digit_years() {
        for bad in [
            "9999-12-31T23:00:00-05:00",
            "0000-01-01T00:00:00+01:00",
            "10000-01-01T00:00:00Z",
            "+2026-03-01T09:00:00Z",
            " 2026-03-01T09:00:00Z",
            "2026-03-01t09:00:00z",
            "2026-03-01 09:00:00Z",
            "2026-13-01T09:00:00Z",
        ] {
            assert!(DueDate::parse(bad).is_err(), "{bad}");
        }
        let early = DueDate::parse("0001-01-01T00:00:00+23:59")
            .unwrap()
            .into_inner();
        assert_eq!(format_time(&early), "0000-12-31T00:01:00.000Z");
        let late = DueDate::parse("9998-12-31T23:59:59-23:59")
            .unwrap()
            .into_inner();
        assert_eq!(format_time(&late), "9999-01-01T23:58:59.000Z");
    }

    #[test]
    fn blank_description_becomes_none() {
        assert_eq!(parse_description(Some("  ")).unwrap(), None);
        assert_eq!(parse_description(Some("x")).unwrap().as_deref(), Some("x"));
    }
}
