//! The relay's backlog, as one read of a few partial indexes: what waits to be mapped
//! and published, how old the oldest waiting change is, how many dead letters are open,
//! and what holds keep waiting.

use chrono::{DateTime, Utc};

use super::relay::held_back;
use super::{Db, StoreError, with_pool};

/// The relay's backlog, for the gauges.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backlog {
    pub outbox_pending: i64,
    /// Envelopes waiting to be published or retried, those held back by holds included.
    pub envelopes_pending: i64,
    /// Age of the oldest pending mutation or envelope that is not held back (zero when
    /// none waits): how far publishing is behind. Held events are counted apart.
    pub lag: std::time::Duration,
    pub dead_letters_open: i64,
    /// Tasks held on a topic (a task held on two topics counts twice).
    pub holds: i64,
    /// Envelopes waiting behind holds.
    pub held_events: i64,
    /// Age of the oldest hold (zero when none).
    pub oldest_hold: std::time::Duration,
}

type Row = (
    i64,
    i64,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    i64,
    i64,
    i64,
    Option<DateTime<Utc>>,
);

impl Db {
    /// The relay's backlog at `now`.
    pub async fn backlog(&self, now: DateTime<Utc>) -> Result<Backlog, StoreError> {
        // `seq > 0` (always true) lets PostgreSQL read the pending envelopes through
        // `envelopes_pending_oldest`, an index only such reads can use (migration 0015).
        let row: Row = with_pool!(self, |pool| async {
            let row = sqlx::query_as(concat!(
                "SELECT (SELECT count(*) FROM outbox WHERE state = 'pending'), \
                 (SELECT count(*) FROM envelopes WHERE state = 'pending' AND seq > 0), \
                 (SELECT created_at FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT 1), \
                 (SELECT e.created_at FROM envelopes e WHERE e.state = 'pending' AND e.seq > 0 AND NOT ",
                held_back!(),
                " ORDER BY e.seq LIMIT 1), \
                 (SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL), \
                 (SELECT count(*) FROM (SELECT DISTINCT task_id, topic FROM relay_holds) k), \
                 (SELECT count(*) FROM envelopes e WHERE e.state = 'pending' \
                     AND e.task_id IN (SELECT task_id FROM relay_holds) AND ",
                held_back!(),
                "), (SELECT min(created_at) FROM relay_holds)"
            ))
            .fetch_one(pool)
            .await?;
            Ok::<_, StoreError>(row)
        })?;
        let (outbox, envelopes, oldest_mutation, oldest_envelope, open, holds, held, oldest_hold) =
            row;
        let age =
            |t: Option<DateTime<Utc>>| t.and_then(|t| (now - t).to_std().ok()).unwrap_or_default();
        Ok(Backlog {
            outbox_pending: outbox,
            envelopes_pending: envelopes,
            lag: age([oldest_mutation, oldest_envelope]
                .into_iter()
                .flatten()
                .min()),
            dead_letters_open: open,
            holds,
            held_events: held,
            oldest_hold: age(oldest_hold),
        })
    }
}
