//! The states rows move through, stored as lower-case text.

use serde::Serialize;

/// The state of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeState {
    /// Waiting to be published (or retried).
    Pending,
    /// Dapr accepted it.
    Published,
    /// Built while Dapr was disabled; never sent.
    Skipped,
    /// Refused by Dapr, or failing past the retry limits: parked as a dead letter.
    Dead,
}

impl EnvelopeState {
    /// Every state.
    pub const ALL: [Self; 4] = [Self::Pending, Self::Published, Self::Skipped, Self::Dead];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Published => "published",
            Self::Skipped => "skipped",
            Self::Dead => "dead",
        }
    }

    /// The state stored as `raw`.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl TryFrom<String> for EnvelopeState {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw).ok_or_else(|| format!("unknown envelope state `{raw}`"))
    }
}

/// What kind of failure a dead letter records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterKind {
    /// The mutation could not be mapped; it has no envelope.
    Mapping,
    /// One envelope could not be published.
    Publish,
}

impl DeadLetterKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mapping => "mapping",
            Self::Publish => "publish",
        }
    }
}

impl TryFrom<String> for DeadLetterKind {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        [Self::Mapping, Self::Publish]
            .into_iter()
            .find(|k| k.as_str() == raw)
            .ok_or_else(|| format!("unknown dead-letter kind `{raw}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_stored_names() {
        for s in EnvelopeState::ALL {
            assert_eq!(EnvelopeState::parse(s.as_str()), Some(s));
        }
        assert!(EnvelopeState::parse("Pending").is_none());
        assert_eq!(
            DeadLetterKind::try_from("publish".to_owned()),
            Ok(DeadLetterKind::Publish)
        );
        assert!(DeadLetterKind::try_from("other".to_owned()).is_err());
    }
}
