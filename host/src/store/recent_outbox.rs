//! The most recent mutations in the outbox and what the live mappers made of them,
//! for the reload dry run: the new set is compared with what really happened, and the
//! live mappers are not called again (their counters stay the relay's).

use std::collections::BTreeSet;

use super::{Db, OutboxRow, StoreError, with_pool};

/// A recent mutation and its state: `pending` (not mapped yet), `mapped` or `dead`
/// (a mapping dead letter).
#[derive(Debug, sqlx::FromRow)]
pub struct RecentMutation {
    #[sqlx(flatten)]
    pub row: OutboxRow,
    pub state: String,
}

impl Db {
    /// The `limit` most recent outbox rows (oldest of them first) with their state, and
    /// the topics their envelopes went to.
    pub async fn recent_mutations(
        &self,
        limit: i64,
    ) -> Result<(Vec<RecentMutation>, BTreeSet<String>), StoreError> {
        with_pool!(self, |pool| async {
            let mut rows: Vec<RecentMutation> = sqlx::query_as(
                "SELECT seq, id, task_id, user_id, action, mutation, traceparent, created_at, state \
                 FROM outbox ORDER BY seq DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.reverse();
            let topics: Vec<(String,)> = sqlx::query_as(
                "SELECT DISTINCT e.topic FROM envelopes e JOIN \
                 (SELECT id FROM outbox ORDER BY seq DESC LIMIT $1) o ON e.mutation_id = o.id",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok((rows, topics.into_iter().map(|(t,)| t).collect()))
        })
    }
}
