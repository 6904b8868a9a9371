//! Delivery as the operator reads it in an incident, from the database (so every
//! replica agrees): the last failed publish attempt with the publisher's status and
//! code, the envelopes waiting to be tried again, when the next one is due, and the
//! last successful publish.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::relay::pending_oldest;
use super::{Db, StoreError, with_pool};

/// The last failed publish attempt, of any envelope.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LastFailure {
    pub at: DateTime<Utc>,
    /// The envelope it was for.
    pub envelope_id: String,
    /// `retry` (tried again later) or `parked` (a dead letter).
    pub outcome: String,
    /// The publisher's status (for Dapr, the HTTP status); none for a transport failure.
    pub status: Option<i32>,
    /// The publisher's error code (Dapr's `errorCode`).
    pub code: Option<String>,
    pub error: String,
    /// The relay that made the attempt.
    pub relay: String,
}

/// Publishing, as the database records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeliveryHealth {
    /// The last failed attempt, if any is still recorded (attempts go with their
    /// envelope after `ENVELOPE_RETENTION`).
    pub last_failure: Option<LastFailure>,
    /// When an envelope was last published.
    pub last_published_at: Option<DateTime<Utc>>,
    /// Pending envelopes that failed at least once and wait to be tried again.
    pub retrying: i64,
    /// When the next task waiting for a retry is due (none when nothing waits).
    pub next_retry_at: Option<DateTime<Utc>>,
}

impl Db {
    /// Publishing as recorded at `now`.
    pub async fn delivery_health(&self, now: DateTime<Utc>) -> Result<DeliveryHealth, StoreError> {
        with_pool!(self, |pool| async {
            let last_failure: Option<LastFailure> = sqlx::query_as(
                "SELECT at, envelope_id, outcome, status, code, error, relay \
                 FROM delivery_attempts ORDER BY at DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?;
            let (last_published_at, retrying, next_retry_at): (
                Option<DateTime<Utc>>,
                i64,
                Option<DateTime<Utc>>,
            ) = sqlx::query_as(concat!(
                "SELECT (SELECT max(finished_at) FROM envelopes WHERE state = 'published'), \
                 (SELECT count(*) FROM envelopes WHERE ",
                pending_oldest!(""),
                " AND attempts > 0), (SELECT min(ready_at) FROM relay_tasks WHERE ready_at > $1)"
            ))
            .bind(now)
            .fetch_one(pool)
            .await?;
            Ok(DeliveryHealth {
                last_failure,
                last_published_at,
                retrying,
                next_retry_at,
            })
        })
    }
}
