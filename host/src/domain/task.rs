//! The task and its validated parts.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
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

/// A task title: trimmed, 1 to 500 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTitle(String);

impl TaskTitle {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ValidationError::new("title", "must not be empty"));
        }
        let chars = trimmed.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(ValidationError::new(
                "title",
                format!(
                    "must be at most {} characters, got {chars}",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A task description: at most 10,000 characters; blank becomes none.
pub fn parse_description(raw: Option<&str>) -> Result<Option<String>, ValidationError> {
    const MAX_CHARS: usize = 10_000;
    let Some(raw) = raw else { return Ok(None) };
    if raw.chars().count() > MAX_CHARS {
        return Err(ValidationError::new(
            "description",
            format!("must be at most {MAX_CHARS} characters"),
        ));
    }
    Ok((!raw.trim().is_empty()).then(|| raw.to_owned()))
}

/// A due date given as RFC 3339 text, normalised to UTC milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueDate(DateTime<Utc>);

impl DueDate {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        DateTime::parse_from_rfc3339(raw.trim())
            .map(|t| Self(t.with_timezone(&Utc).trunc_subsecs(3)))
            .map_err(|e| {
                ValidationError::new(
                    "due_date",
                    format!("must be an RFC 3339 timestamp such as 2026-03-01T09:00:00Z ({e})"),
                )
            })
    }

    pub fn into_inner(self) -> DateTime<Utc> {
        self.0
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
    }

    #[test]
    fn due_date_accepts_offsets_and_normalises_to_utc() {
        let d = DueDate::parse("2026-03-01T10:00:00+01:00")
            .unwrap()
            .into_inner();
        assert_eq!(format_time(&d), "2026-03-01T09:00:00.000Z");
        assert_eq!(DueDate::parse("tomorrow").unwrap_err().field, "due_date");
        assert!(DueDate::parse("2026-03-01").is_err());
    }

    #[test]
    fn blank_description_becomes_none() {
        assert_eq!(parse_description(Some("  ")).unwrap(), None);
        assert_eq!(parse_description(Some("x")).unwrap().as_deref(), Some("x"));
    }
}
