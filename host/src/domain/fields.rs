//! The validated parts of a task: what a title, a description and a due date may be.
//! Parse, don't validate: a surface turns raw input into these types once, and they
//! stay typed until the store binds them.

use chrono::{DateTime, SubsecRound, Utc};

use super::text::control_character;

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

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Control characters a description may hold: tab, line feed, carriage return.
pub const DESCRIPTION_CONTROLS: [char; 3] = ['\t', '\n', '\r'];

/// A task description: at most 10,000 characters, no control character but tab and
/// line breaks, not blank (a blank description is none). Stored as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 10_000;

    /// The description in `raw`; `None` when it is blank.
    pub fn parse(raw: &str) -> Result<Option<Self>, ValidationError> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(
                "description",
                format!("must be at most {} characters", Self::MAX_CHARS),
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
        Ok((!raw.trim().is_empty()).then(|| Self(raw.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
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

    /// The instant, in UTC milliseconds.
    pub fn get(self) -> DateTime<Utc> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::task::format_time;

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
        assert!(Description::parse("two\nlines\r\n\ttabbed").is_ok());
        assert_eq!(
            Description::parse("nul\0").unwrap_err().field,
            "description"
        );
        assert!(TaskTitle::parse("ünïcödé ✓ 🦀").is_ok());
    }

    #[test]
    fn due_date_accepts_offsets_and_normalises_to_utc() {
        let d = DueDate::parse("2026-03-01T10:00:00+01:00").unwrap().get();
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
        let early = DueDate::parse("0001-01-01T00:00:00+23:59").unwrap().get();
        assert_eq!(format_time(&early), "0000-12-31T00:01:00.000Z");
        let late = DueDate::parse("9998-12-31T23:59:59-23:59").unwrap().get();
        assert_eq!(format_time(&late), "9999-01-01T23:58:59.000Z");
    }

    #[test]
    fn blank_description_becomes_none() {
        assert_eq!(Description::parse("  ").unwrap(), None);
        assert_eq!(
            Description::parse("x")
                .unwrap()
                .as_ref()
                .map(Description::as_str),
            Some("x")
        );
    }
}
