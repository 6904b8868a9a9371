//! The relay's backlog, as one read of a few partial indexes: what waits to be mapped
//! and published, how old the oldest waiting change is, how many dead letters are open,
//! and what holds keep waiting.

use chrono::{DateTime, Utc};

use super::relay::{held_back, pending_oldest};
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

/// The backlog's counts and oldest rows, read in `seq` order through the
/// `*_pending_oldest` indexes (`pending_oldest!`); the held envelopes counted task by
/// task, for the tasks with holds (a query per held task, so that no statistics can
/// make it a read of every pending envelope).
pub(super) const BACKLOG: &str = concat!(
    "SELECT (SELECT count(*) FROM outbox WHERE ",
    pending_oldest!(""),
    "), (SELECT count(*) FROM envelopes WHERE ",
    pending_oldest!(""),
    "), (SELECT created_at FROM outbox WHERE ",
    pending_oldest!(""),
    " ORDER BY seq LIMIT 1), (SELECT e.created_at FROM envelopes e WHERE ",
    pending_oldest!("e."),
    " AND NOT ",
    held_back!(),
    " ORDER BY e.seq LIMIT 1), \
     (SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL), \
     (SELECT count(*) FROM (SELECT DISTINCT task_id, topic FROM relay_holds) k), \
     (SELECT CAST(coalesce(sum((SELECT count(*) FROM envelopes e WHERE e.task_id = k.task_id \
         AND e.state = 'pending' AND ",
    held_back!(),
    ")), 0) AS BIGINT) FROM (SELECT DISTINCT task_id FROM relay_holds) k), \
     (SELECT min(created_at) FROM relay_holds)"
);

impl Db {
    /// The relay's backlog at `now`.
    pub async fn backlog(&self, now: DateTime<Utc>) -> Result<Backlog, StoreError> {
        let row: Row = with_pool!(self, |pool| async {
            let row = sqlx::query_as(BACKLOG).fetch_one(pool).await?;
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
