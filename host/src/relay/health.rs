//! What this replica's relay knows of its own health, for the operator: whether the
//! publisher (the sidecar) answered its readiness check and since when, and why and when
//! the supervisor last restarted the relay. Written where the relay already looks
//! (the readiness checks of the publish stage and of housekeeping, the supervisor's
//! loop); read by the console's flow and `GET /admin/health`.

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::task::now;

/// The publisher's readiness as last checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PublisherReadiness {
    /// Whether the last check answered ready.
    pub ready: bool,
    /// Since when it has answered so (the first check with this answer).
    #[schema(value_type = String, format = DateTime)]
    pub since: DateTime<Utc>,
    /// When it was last checked.
    #[schema(value_type = String, format = DateTime)]
    pub checked_at: DateTime<Utc>,
}

/// One restart of the relay by its supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RelayRestart {
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// Why: `it panicked: …` or `its publish stage stalled`.
    pub reason: String,
}

/// The relay's own health record.
#[derive(Debug, Default)]
pub(super) struct HealthRecord {
    publisher: Mutex<Option<PublisherReadiness>>,
    restarts: Mutex<(u64, Option<RelayRestart>)>,
}

impl HealthRecord {
    /// The publisher answered its readiness check with `ready`.
    pub(super) fn observe_publisher(&self, ready: bool) {
        let at = now();
        let mut slot = self
            .publisher
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *slot = Some(next_readiness(slot.take(), ready, at));
    }

    /// The supervisor restarts the relay because of `reason`.
    pub(super) fn restarted(&self, reason: &str) {
        let mut slot = self.restarts.lock().unwrap_or_else(PoisonError::into_inner);
        slot.0 += 1;
        slot.1 = Some(RelayRestart {
            at: now(),
            reason: reason.to_owned(),
        });
    }

    /// The publisher's readiness, `None` before the first check.
    pub(super) fn publisher(&self) -> Option<PublisherReadiness> {
        self.publisher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Restarts so far, and the last one.
    pub(super) fn restarts(&self) -> (u64, Option<RelayRestart>) {
        self.restarts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The readiness after a check at `at` answered `ready`: `since` moves only when the
/// answer changes.
fn next_readiness(
    before: Option<PublisherReadiness>,
    ready: bool,
    at: DateTime<Utc>,
) -> PublisherReadiness {
    let since = match before {
        Some(b) if b.ready == ready => b.since,
        _ => at,
    };
    PublisherReadiness {
        ready,
        since,
        checked_at: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_moves_only_when_the_answer_changes() {
        let t = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        let a = next_readiness(None, true, t(10));
        assert_eq!((a.ready, a.since, a.checked_at), (true, t(10), t(10)));
        let b = next_readiness(Some(a), true, t(15));
        assert_eq!((b.since, b.checked_at), (t(10), t(15)));
        let c = next_readiness(Some(b), false, t(20));
        assert_eq!((c.ready, c.since), (false, t(20)));
        let d = next_readiness(Some(c), false, t(25));
        assert_eq!((d.since, d.checked_at), (t(20), t(25)));
    }

    #[test]
    fn restarts_are_counted_with_the_last_reason() {
        let record = HealthRecord::default();
        assert_eq!(record.restarts(), (0, None));
        record.restarted("it panicked: one");
        record.restarted("its publish stage stalled");
        let (n, last) = record.restarts();
        assert_eq!(n, 2);
        assert_eq!(last.unwrap().reason, "its publish stage stalled");
    }
}
