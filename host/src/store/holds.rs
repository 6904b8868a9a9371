//! Holds as the operator reads them: per held task and topic, since when, which letter
//! holds it first, and how many events wait behind it; and per dead letter, what it
//! holds. (Holds are written with the letters that cause them, in `store/relay/`, and
//! lifted with their resolution, in `store/dead_letters.rs`.)

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::relay::held_back;
use super::{Db, DeadLetterKind, StoreError, with_pool};

/// One task held on one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Hold {
    pub task_id: Uuid,
    pub topic: String,
    /// When the first hold on this task and topic began.
    pub since: DateTime<Utc>,
    /// The letter that holds it first (resolve it to let the events behind it go).
    pub dead_letter_id: Uuid,
    #[sqlx(try_from = "String")]
    pub kind: DeadLetterKind,
    pub mapper: Option<String>,
    /// Why that event could not be mapped or published.
    pub reason: String,
    /// Open letters holding this task on this topic.
    pub letters: i64,
    /// Events of the task on this topic waiting behind the hold.
    pub waiting: i64,
}

/// What one dead letter holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LetterHold {
    /// The topics its task is held on.
    pub topics: Vec<String>,
    /// Events of its task on those topics waiting behind it.
    pub waiting: i64,
}

impl Db {
    /// The held tasks and topics, the longest held first.
    pub async fn holds(&self, limit: i64) -> Result<Vec<Hold>, StoreError> {
        with_pool!(self, |pool| async {
            let rows = sqlx::query_as(concat!(
                "SELECT x.task_id, x.topic, x.since, x.dead_letter_id, d.kind, d.mapper, d.reason, \
                 x.letters, x.waiting FROM (SELECT h.task_id, h.topic, min(h.created_at) AS since, \
                 count(*) AS letters, \
                 (SELECT f.dead_letter_id FROM relay_holds f WHERE f.task_id = h.task_id \
                     AND f.topic = h.topic ORDER BY f.outbox_seq, f.event_index LIMIT 1) AS dead_letter_id, \
                 (SELECT count(*) FROM envelopes e WHERE e.task_id = h.task_id AND e.topic = h.topic \
                     AND e.state = 'pending' AND ",
                held_back!(),
                ") AS waiting FROM relay_holds h GROUP BY h.task_id, h.topic) x \
                 JOIN dead_letters d ON d.id = x.dead_letter_id ORDER BY x.since, x.task_id, x.topic LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows)
        })
    }

    /// What each of `letters` holds (letters that hold nothing are left out). One read of
    /// every hold: holds are few, and only open letters have them.
    pub async fn letter_holds(
        &self,
        letters: &[Uuid],
    ) -> Result<HashMap<Uuid, LetterHold>, StoreError> {
        let rows: Vec<(Uuid, String, i64)> = with_pool!(self, |pool| async {
            sqlx::query_as(concat!(
                "SELECT h.dead_letter_id, h.topic, (SELECT count(*) FROM envelopes e \
                 WHERE e.task_id = h.task_id AND e.topic = h.topic AND e.state = 'pending' AND ",
                held_back!(),
                ") FROM relay_holds h ORDER BY h.topic"
            ))
            .fetch_all(pool)
            .await
        })?;
        let wanted: std::collections::HashSet<&Uuid> = letters.iter().collect();
        let mut holds: HashMap<Uuid, LetterHold> = HashMap::new();
        for (letter, topic, waiting) in rows {
            if wanted.contains(&letter) {
                let hold = holds.entry(letter).or_default();
                hold.topics.push(topic);
                hold.waiting += waiting;
            }
        }
        Ok(holds)
    }
}
