//! What the console's Flow page shows beside the backlog, while someone watches: each
//! topic's published and parked events over a recent window, and the oldest envelope
//! still waiting to be published (not held back by a hold).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::relay::{held_back, pending_oldest};
use super::{Db, StoreError, with_pool};

/// One topic's activity over a window (all replicas).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TopicActivity {
    pub topic: String,
    /// Envelopes published in the window.
    pub published: i64,
    /// Envelopes parked (refused, or past the retry limits) in the window.
    pub parked: i64,
}

/// The oldest envelope waiting to be published that no hold keeps back.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OldestPending {
    pub id: String,
    pub task_id: Uuid,
    pub topic: String,
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    /// Attempts since it was (last) queued.
    pub attempts: i32,
    pub last_error: Option<String>,
}

impl Db {
    /// Each topic's published and parked envelopes since `since`, busiest first.
    pub async fn topic_activity(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<TopicActivity>, StoreError> {
        with_pool!(self, |pool| async {
            let rows = sqlx::query_as(
                "SELECT topic, CAST(sum(published) AS BIGINT) AS published, \
                 CAST(sum(parked) AS BIGINT) AS parked FROM ( \
                 SELECT topic, count(*) AS published, 0 AS parked FROM envelopes \
                 WHERE state = 'published' AND finished_at >= $1 GROUP BY topic \
                 UNION ALL SELECT topic, 0, count(*) FROM dead_letters \
                 WHERE kind = 'publish' AND topic IS NOT NULL AND created_at >= $1 GROUP BY topic \
                 ) a GROUP BY topic ORDER BY sum(published) + sum(parked) DESC, topic LIMIT 50",
            )
            .bind(since)
            .fetch_all(pool)
            .await?;
            Ok(rows)
        })
    }

    /// The oldest envelope waiting to be published, holds aside.
    pub async fn oldest_pending(&self) -> Result<Option<OldestPending>, StoreError> {
        with_pool!(self, |pool| async {
            let row = sqlx::query_as(concat!(
                "SELECT e.id, e.task_id, e.topic, e.event_type, e.created_at, e.attempts, \
                 e.last_error FROM envelopes e WHERE ",
                pending_oldest!("e."),
                " AND NOT ",
                held_back!(),
                " ORDER BY e.seq LIMIT 1"
            ))
            .fetch_optional(pool)
            .await?;
            Ok(row)
        })
    }
}
