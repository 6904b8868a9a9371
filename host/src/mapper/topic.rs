//! [`TopicName`]: a Kafka topic name the host may publish to.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A valid Kafka topic name: 1 to 249 characters of `a-z A-Z 0-9 . _ -`, and not
/// `.` or `..` (Kafka's own rules).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TopicName(String);

/// Why a text is not a valid topic name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid topic name `{topic}`: {reason}")]
pub struct InvalidTopic {
    /// The text as given (truncated to 300 characters).
    pub topic: String,
    /// Which rule it breaks.
    pub reason: &'static str,
}

impl TopicName {
    /// The longest topic name Kafka accepts.
    pub const MAX_LEN: usize = 249;

    /// Parses a topic name, applying Kafka's naming rules.
    pub fn parse(raw: &str) -> Result<Self, InvalidTopic> {
        let fail = |reason| InvalidTopic {
            topic: raw.chars().take(300).collect(),
            reason,
        };
        if raw.is_empty() {
            return Err(fail("must not be empty"));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(fail("must be at most 249 characters"));
        }
        if raw == "." || raw == ".." {
            return Err(fail("must not be `.` or `..`"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(fail("may only contain a-z, A-Z, 0-9, `.`, `_` and `-`"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TopicName {
    type Err = InvalidTopic;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.trim())
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kafka_names() {
        for ok in ["task-events", "reminders", "a", "A.b_c-1", &"x".repeat(249)] {
            assert_eq!(TopicName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_names_kafka_refuses() {
        for bad in [
            "",
            ".",
            "..",
            "with space",
            "slash/es",
            "ünï",
            &"x".repeat(250),
        ] {
            assert!(TopicName::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn from_str_trims_list_items() {
        assert_eq!(
            " reminders ".parse::<TopicName>().unwrap().as_str(),
            "reminders"
        );
    }
}
