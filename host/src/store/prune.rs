//! Pruning: finished rows leave after `ENVELOPE_RETENTION`, mapped mutations after
//! `MUTATION_HISTORY` (and never before their envelopes), a bounded batch at a time.

use chrono::{DateTime, Utc};

use super::{Db, StoreError, WritePool, with_writer};

impl Db {
    /// Deletes up to `limit` each of finished envelopes, resolved dead letters and the
    /// delivery history of envelopes gone, older than `before`, and of mapped mutations
    /// without envelopes older than `history_before`; returns how many rows went.
    pub async fn prune_some(
        &self,
        before: DateTime<Utc>,
        history_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let statements = [
            (
                "DELETE FROM envelopes WHERE seq IN (SELECT seq FROM envelopes \
             WHERE state IN ('published', 'skipped') AND finished_at < $1 LIMIT $2)",
                before,
            ),
            (
                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE state = 'mapped' \
             AND processed_at < $1 AND NOT EXISTS (SELECT 1 FROM envelopes e WHERE e.mutation_id = outbox.id) \
             LIMIT $2)",
                history_before,
            ),
            (
                "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters WHERE resolved_at < $1 LIMIT $2)",
                before,
            ),
            (
                "DELETE FROM delivery_attempts WHERE (envelope_id, attempt) IN (SELECT a.envelope_id, a.attempt \
             FROM delivery_attempts a WHERE a.at < $1 \
             AND NOT EXISTS (SELECT 1 FROM envelopes e WHERE e.id = a.envelope_id) LIMIT $2)",
                before,
            ),
        ];
        let mut total = 0;
        for (sql, before) in statements {
            total += with_writer!(self, |pool| async {
                let mut tx = pool.begin_write().await?;
                let n = sqlx::query(sql)
                    .bind(before)
                    .bind(limit)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok::<_, StoreError>(n)
            })?;
        }
        Ok(total)
    }
}
