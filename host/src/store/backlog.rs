//! The relay's backlog, as one read of a few partial indexes: what waits to be mapped
//! and published, how old the oldest waiting change is, how many dead letters are open.

use chrono::{DateTime, Utc};

use super::{Db, StoreError, with_pool};

/// The relay's backlog, for the gauges.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backlog {
    pub outbox_pending: i64,
    pub envelopes_pending: i64,
    /// Age of the oldest pending mutation or envelope (zero when none waits).
    pub lag: std::time::Duration,
    pub dead_letters_open: i64,
}

impl Db {
    /// The relay's backlog at `now`.
    pub async fn backlog(&self, now: DateTime<Utc>) -> Result<Backlog, StoreError> {
        let (
            outbox_pending,
            envelopes_pending,
            oldest_mutation,
            oldest_envelope,
            dead_letters_open,
        ): (i64, i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>, i64) =
            with_pool!(self, |pool| async {
                let row = sqlx::query_as(
                    "SELECT (SELECT count(*) FROM outbox WHERE state = 'pending'), \
                 (SELECT count(*) FROM envelopes WHERE state = 'pending'), \
                 (SELECT created_at FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT 1), \
                 (SELECT created_at FROM envelopes WHERE state = 'pending' ORDER BY seq LIMIT 1), \
                 (SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL)",
                )
                .fetch_one(pool)
                .await?;
                Ok::<_, StoreError>(row)
            })?;
        let oldest = [oldest_mutation, oldest_envelope]
            .into_iter()
            .flatten()
            .min();
        Ok(Backlog {
            outbox_pending,
            envelopes_pending,
            lag: oldest
                .and_then(|t| (now - t).to_std().ok())
                .unwrap_or_default(),
            dead_letters_open,
        })
    }
}
