//! Dead letters at scale, as the operator works with them: filtered (kind, mapper,
//! topic, reason, task, time), newest or oldest first, paged with a total, and grouped
//! by what went wrong (kind, mapper, topic, reason) with a count per group.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::dead_letters::letter_columns;
use super::{Db, DeadLetter, DeadLetterKind, StoreError, with_pool};

/// Which open dead letters.
#[derive(Debug, Clone, Default)]
pub struct LetterFilter {
    pub kind: Option<DeadLetterKind>,
    pub mapper: Option<String>,
    pub topic: Option<String>,
    /// The exact reason (as a group shows it).
    pub reason: Option<String>,
    pub task_id: Option<Uuid>,
    /// Parked at or after.
    pub since: Option<DateTime<Utc>>,
    /// Parked before.
    pub until: Option<DateTime<Utc>>,
}

/// One page of the letters a filter matches.
#[derive(Debug, Clone, Copy)]
pub struct LetterPage {
    pub newest_first: bool,
    pub limit: i64,
    pub offset: i64,
}

/// Open letters that went wrong the same way.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LetterGroup {
    #[sqlx(try_from = "String")]
    pub kind: DeadLetterKind,
    pub mapper: Option<String>,
    pub topic: Option<String>,
    pub reason: String,
    /// Open letters in the group.
    pub count: i64,
    /// The oldest one was parked at.
    pub first_at: DateTime<Utc>,
    /// The newest one was parked at.
    pub last_at: DateTime<Utc>,
}

/// The `WHERE` clause of a filter: open letters, `$1`…`$7` as in [`bind_filter`].
macro_rules! open_matching {
    () => {
        " FROM dead_letters d WHERE d.resolved_at IS NULL AND ($1 IS NULL OR d.kind = $1) \
         AND ($2 IS NULL OR d.mapper = $2) AND ($3 IS NULL OR d.topic = $3) \
         AND ($4 IS NULL OR d.reason = $4) AND ($5 IS NULL OR d.task_id = $5) \
         AND ($6 IS NULL OR d.created_at >= $6) AND ($7 IS NULL OR d.created_at < $7)"
    };
}

/// Binds `$1`…`$7` of [`open_matching!`].
macro_rules! bind_filter {
    ($query:expr, $f:expr) => {
        $query
            .bind($f.kind.map(DeadLetterKind::as_str))
            .bind($f.mapper.as_deref())
            .bind($f.topic.as_deref())
            .bind($f.reason.as_deref())
            .bind($f.task_id)
            .bind($f.since)
            .bind($f.until)
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    #[sqlx(flatten)]
    letter: DeadLetter,
    mutation: Option<String>,
}

impl Db {
    /// One page of the open letters matching `filter`, each with its mutation's JSON
    /// (while the outbox keeps it).
    pub async fn search_letters(
        &self,
        filter: &LetterFilter,
        page: LetterPage,
    ) -> Result<Vec<(DeadLetter, Option<String>)>, StoreError> {
        const NEWEST: &str = concat!(
            "SELECT ",
            letter_columns!(),
            ", (SELECT o.mutation FROM outbox o WHERE o.id = d.mutation_id) AS mutation",
            open_matching!(),
            " ORDER BY d.created_at DESC, d.id DESC LIMIT $8 OFFSET $9"
        );
        const OLDEST: &str = concat!(
            "SELECT ",
            letter_columns!(),
            ", (SELECT o.mutation FROM outbox o WHERE o.id = d.mutation_id) AS mutation",
            open_matching!(),
            " ORDER BY d.created_at, d.id LIMIT $8 OFFSET $9"
        );
        let sql = if page.newest_first { NEWEST } else { OLDEST };
        let rows: Vec<Row> = with_pool!(self, |pool| async {
            bind_filter!(sqlx::query_as(sql), filter)
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(|r| (r.letter, r.mutation)).collect())
    }

    /// How many open letters match `filter`.
    pub async fn count_letters(&self, filter: &LetterFilter) -> Result<i64, StoreError> {
        let (n,): (i64,) = with_pool!(self, |pool| async {
            bind_filter!(
                sqlx::query_as(concat!("SELECT count(*)", open_matching!())),
                filter
            )
            .fetch_one(pool)
            .await
        })?;
        Ok(n)
    }

    /// The ids of the open letters matching `filter`, oldest first, at most `limit`.
    pub async fn letter_ids(
        &self,
        filter: &LetterFilter,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        let rows: Vec<(Uuid,)> = with_pool!(self, |pool| async {
            bind_filter!(
                sqlx::query_as(concat!(
                    "SELECT d.id",
                    open_matching!(),
                    " ORDER BY d.created_at, d.id LIMIT $8"
                )),
                filter
            )
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The open letters matching `filter` grouped by kind, mapper, topic and reason, the
    /// largest groups first, at most `limit` groups.
    pub async fn letter_groups(
        &self,
        filter: &LetterFilter,
        limit: i64,
    ) -> Result<Vec<LetterGroup>, StoreError> {
        with_pool!(self, |pool| async {
            let rows = bind_filter!(
                sqlx::query_as(concat!(
                    "SELECT d.kind, d.mapper, d.topic, d.reason, count(*) AS count, \
                     min(d.created_at) AS first_at, max(d.created_at) AS last_at",
                    open_matching!(),
                    " GROUP BY d.kind, d.mapper, d.topic, d.reason \
                     ORDER BY count(*) DESC, min(d.created_at) LIMIT $8"
                )),
                filter
            )
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows)
        })
    }

    /// The open letter that replaced letter `id` (its replay was refused again), if any.
    pub async fn replacement_of(&self, id: Uuid) -> Result<Option<DeadLetter>, StoreError> {
        with_pool!(self, |pool| async {
            let row = sqlx::query_as(concat!(
                "SELECT ",
                letter_columns!(),
                " FROM dead_letters d WHERE d.replaces = $1 ORDER BY d.created_at DESC LIMIT 1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(row)
        })
    }
}
