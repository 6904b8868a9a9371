//! What one publish outcome means for its envelope and its task: a pure function of the
//! outcome, the envelope's history, the policy and the time, so the policy is tested
//! without a database, a publisher or a clock. The dispatcher's loop only carries out
//! what [`settle`] decides (records the delivery, gives the task back or goes on).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::backoff;
use crate::config::{OnPoison, RelayConfig};
use crate::relay::chrono_duration;
use crate::relay::publish::{Failure, Outcome};
use crate::store::Delivery;

/// The retry and give-up settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Policy {
    /// `RELAY_MAX_ATTEMPTS`: attempts after which a failing event is parked; 0: no limit.
    pub(super) max_attempts: u32,
    /// `RELAY_MAX_AGE`: how long an event may keep failing before it is parked.
    pub(super) max_age: Duration,
    /// `RELAY_RETRY_BASE` and `RELAY_RETRY_MAX`: the back-off between attempts.
    pub(super) retry_base: Duration,
    pub(super) retry_max: Duration,
    /// `RELAY_ON_POISON=hold`: a parked event holds its task on its topic.
    pub(super) hold: bool,
}

impl Policy {
    pub(super) fn of(config: &RelayConfig) -> Self {
        Self {
            max_attempts: config.relay_max_attempts,
            max_age: config.relay_max_age,
            retry_base: config.relay_retry_base,
            retry_max: config.relay_retry_max,
            hold: config.relay_on_poison == OnPoison::Hold,
        }
    }
}

/// What an envelope had been through before this attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct History {
    /// Attempts made before this one.
    pub(super) attempts: i32,
    /// When publishing it first failed, if it did.
    pub(super) first_failed_at: Option<DateTime<Utc>>,
}

/// What an outcome came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Published: the task's next envelope may go.
    Published { status: Option<u16> },
    /// Refused: parked as a dead letter. With `hold`, the task's later envelopes on its
    /// topic wait for the operator; its other topics go on.
    Refused { failure: Failure, hold: bool },
    /// Failed once too often (`limit` says which limit): parked as a dead letter, with
    /// `hold` as for a refusal.
    Expired {
        failure: Failure,
        limit: String,
        hold: bool,
    },
    /// Failed: the task waits until `retry_at` and tries again.
    Retry {
        failure: Failure,
        /// The number of the attempt that comes next (1 = the first retry).
        attempt: u32,
        delay: Duration,
        retry_at: DateTime<Utc>,
    },
}

impl Verdict {
    /// Whether the task's later envelopes on this topic must wait (a parked event that
    /// holds).
    pub(super) fn holds(&self) -> bool {
        matches!(
            self,
            Verdict::Refused { hold: true, .. } | Verdict::Expired { hold: true, .. }
        )
    }

    /// What the store records for this attempt.
    pub(super) fn delivery(&self) -> Delivery {
        match self.clone() {
            Verdict::Published { status } => Delivery::Published { status },
            Verdict::Refused { failure, hold } => Delivery::Parked {
                status: failure.status,
                code: failure.code,
                reason: failure.reason,
                hold,
            },
            Verdict::Expired {
                failure,
                limit,
                hold,
            } => Delivery::Parked {
                status: failure.status,
                code: failure.code,
                reason: format!("{limit}; last error: {}", failure.reason),
                hold,
            },
            Verdict::Retry { failure, .. } => Delivery::Failed {
                status: failure.status,
                code: failure.code,
                error: failure.reason,
            },
        }
    }
}

/// Decides what `outcome` means for an envelope with `history`, at `now`; `jitter`
/// (0 to 1) spreads the retries of many tasks failing at once.
pub(super) fn settle(
    outcome: Outcome,
    history: History,
    policy: &Policy,
    now: DateTime<Utc>,
    jitter: f64,
) -> Verdict {
    match outcome {
        Outcome::Published { status } => Verdict::Published { status },
        Outcome::Refused(failure) => Verdict::Refused {
            failure,
            hold: policy.hold,
        },
        Outcome::Retry(failure) => match gives_up(history, policy, now) {
            Some(limit) => Verdict::Expired {
                failure,
                limit,
                hold: policy.hold,
            },
            None => {
                let attempt = u32::try_from(history.attempts + 1).unwrap_or(u32::MAX);
                let delay = backoff::delay(attempt, policy.retry_base, policy.retry_max, jitter);
                Verdict::Retry {
                    failure,
                    attempt,
                    delay,
                    retry_at: now + chrono_duration(delay),
                }
            }
        },
    }
}

/// Why the relay stops retrying after one more failure, if it does:
/// `RELAY_MAX_ATTEMPTS` attempts made, or failing for `RELAY_MAX_AGE`.
fn gives_up(history: History, policy: &Policy, now: DateTime<Utc>) -> Option<String> {
    let attempts = u32::try_from(history.attempts + 1).unwrap_or(u32::MAX);
    if policy.max_attempts > 0 && attempts >= policy.max_attempts {
        return Some(format!(
            "gave up after {attempts} attempts (RELAY_MAX_ATTEMPTS)"
        ));
    }
    let failing = history
        .first_failed_at
        .map(|first| now - first)
        .and_then(|d| d.to_std().ok())?;
    (failing >= policy.max_age).then(|| {
        format!(
            "gave up after failing for {} (RELAY_MAX_AGE)",
            humantime::format_duration(Duration::from_secs(failing.as_secs()))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            max_attempts: 3,
            max_age: Duration::from_secs(60),
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            hold: true,
        }
    }

    fn failure(status: Option<u16>) -> Failure {
        Failure {
            status,
            code: Some("ERR".into()),
            reason: "it broke".into(),
        }
    }

    fn fresh() -> History {
        History {
            attempts: 0,
            first_failed_at: None,
        }
    }

    #[test]
    fn a_publish_and_a_refusal_let_the_task_go_on() {
        let now = Utc::now();
        let published = settle(
            Outcome::Published { status: Some(204) },
            fresh(),
            &policy(),
            now,
            0.5,
        );
        assert_eq!(published, Verdict::Published { status: Some(204) });
        assert_eq!(
            published.delivery(),
            Delivery::Published { status: Some(204) }
        );
        let refused = settle(
            Outcome::Refused(failure(Some(403))),
            fresh(),
            &policy(),
            now,
            0.5,
        );
        assert_eq!(
            refused,
            Verdict::Refused {
                failure: failure(Some(403)),
                hold: true
            }
        );
        assert!(refused.holds());
        assert!(matches!(
            refused.delivery(),
            Delivery::Parked {
                status: Some(403),
                hold: true,
                ..
            }
        ));
        let skipping = Policy {
            hold: false,
            ..policy()
        };
        let parked = settle(
            Outcome::Refused(failure(Some(403))),
            fresh(),
            &skipping,
            now,
            0.5,
        );
        assert!(
            !parked.holds(),
            "RELAY_ON_POISON=skip parks without holding"
        );
    }

    #[test]
    fn a_failure_is_retried_after_a_growing_back_off() {
        let now = Utc::now();
        let first = settle(Outcome::Retry(failure(None)), fresh(), &policy(), now, 0.0);
        let Verdict::Retry {
            attempt,
            delay,
            retry_at,
            ..
        } = first
        else {
            panic!("retried: {first:?}");
        };
        assert_eq!(attempt, 1);
        assert_eq!(
            delay,
            Duration::from_millis(50),
            "half the base with no jitter"
        );
        assert_eq!(retry_at, now + chrono_duration(delay));
        let second = History {
            attempts: 1,
            first_failed_at: Some(now),
        };
        let Verdict::Retry { delay, .. } = settle(
            Outcome::Retry(failure(Some(500))),
            second,
            &policy(),
            now,
            1.0,
        ) else {
            panic!("retried again");
        };
        assert_eq!(
            delay,
            Duration::from_millis(200),
            "the whole cap with full jitter"
        );
    }

    #[test]
    fn the_attempt_limit_parks_naming_the_limit_and_the_last_error() {
        let history = History {
            attempts: 2,
            first_failed_at: Some(Utc::now()),
        };
        let verdict = settle(
            Outcome::Retry(failure(Some(503))),
            history,
            &policy(),
            Utc::now(),
            0.5,
        );
        assert_eq!(
            verdict.delivery(),
            Delivery::Parked {
                status: Some(503),
                code: Some("ERR".into()),
                reason: "gave up after 3 attempts (RELAY_MAX_ATTEMPTS); last error: it broke"
                    .into(),
                hold: true,
            }
        );
    }

    #[test]
    fn the_age_limit_counts_from_the_first_failure() {
        let now = Utc::now();
        let unlimited = Policy {
            max_attempts: 0,
            ..policy()
        };
        let young = History {
            attempts: 50,
            first_failed_at: Some(now - chrono::Duration::seconds(59)),
        };
        assert!(matches!(
            settle(Outcome::Retry(failure(None)), young, &unlimited, now, 0.5),
            Verdict::Retry { .. }
        ));
        let old = History {
            first_failed_at: Some(now - chrono::Duration::seconds(61)),
            ..young
        };
        let Verdict::Expired { limit, .. } =
            settle(Outcome::Retry(failure(None)), old, &unlimited, now, 0.5)
        else {
            panic!("expired");
        };
        assert_eq!(limit, "gave up after failing for 1m 1s (RELAY_MAX_AGE)");
    }
}
