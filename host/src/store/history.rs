//! Mutation history: the outbox rows of a window (a time range, one task, the last N),
//! in commit order, a page at a time, for a candidate mapper's history diff.
//!
//! The outbox keeps mapped mutations for `MUTATION_HISTORY` (see `prune`), with the
//! envelopes the live set made of them while `ENVELOPE_RETENTION` keeps those. A
//! window is resolved once to a range of outbox sequence numbers (through the
//! `created_at` index), so paging does not move when new mutations arrive.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Db, OutboxRow, StoreError, with_pool};

/// Which mutations a history diff covers. Every bound is optional; all together they
/// intersect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryWindow {
    /// Committed at or after (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub since: Option<DateTime<Utc>>,
    /// Committed before (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<DateTime<Utc>>,
    /// Only this task's mutations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<Uuid>,
    /// Only the last N of them (1 to 10,000,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub last: Option<i64>,
}

/// Most mutations `last` may ask for.
pub const MAX_LAST: i64 = 10_000_000;

impl HistoryWindow {
    /// Checks the window's bounds; the error names what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since >= until
        {
            return Err(format!(
                "`since` ({}) must be before `until` ({})",
                since.to_rfc3339(),
                until.to_rfc3339()
            ));
        }
        if let Some(last) = self.last
            && !(1..=MAX_LAST).contains(&last)
        {
            return Err(format!("`last` must be 1 to {MAX_LAST}, not {last}"));
        }
        Ok(())
    }
}

/// A window resolved to outbox sequence numbers: rows `first..=last` (of `task`, when
/// set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRange {
    pub first: i64,
    pub last: i64,
    pub task: Option<Uuid>,
    /// How many rows the range holds.
    pub count: i64,
}

impl Db {
    /// Resolves `window` to the rows it covers now.
    pub async fn history_range(&self, window: &HistoryWindow) -> Result<HistoryRange, StoreError> {
        with_pool!(self, |pool| async {
            let first: Option<i64> = match window.since {
                Some(since) => {
                    sqlx::query_scalar("SELECT MIN(seq) FROM outbox WHERE created_at >= $1")
                        .bind(since)
                        .fetch_one(pool)
                        .await?
                }
                None => Some(0),
            };
            let last: Option<i64> = match window.until {
                Some(until) => {
                    sqlx::query_scalar("SELECT MAX(seq) FROM outbox WHERE created_at < $1")
                        .bind(until)
                        .fetch_one(pool)
                        .await?
                }
                None => {
                    sqlx::query_scalar("SELECT MAX(seq) FROM outbox")
                        .fetch_one(pool)
                        .await?
                }
            };
            let (Some(mut first), Some(last)) = (first, last) else {
                return Ok(HistoryRange {
                    first: 1,
                    last: 0,
                    task: window.task_id,
                    count: 0,
                });
            };
            if let Some(n) = window.last {
                // The N-th newest row in the range (the oldest of the last N).
                let nth: Option<i64> = sqlx::query_scalar(
                    "SELECT seq FROM outbox WHERE seq BETWEEN $1 AND $2 \
                     AND ($3 IS NULL OR task_id = $3) ORDER BY seq DESC LIMIT 1 OFFSET $4",
                )
                .bind(first)
                .bind(last)
                .bind(window.task_id)
                .bind(n - 1)
                .fetch_optional(pool)
                .await?;
                first = first.max(nth.unwrap_or(first));
            }
            let count: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM outbox WHERE seq BETWEEN $1 AND $2 \
                 AND ($3 IS NULL OR task_id = $3)",
            )
            .bind(first)
            .bind(last)
            .bind(window.task_id)
            .fetch_one(pool)
            .await?;
            Ok(HistoryRange {
                first,
                last,
                task: window.task_id,
                count,
            })
        })
    }

    /// Up to `limit` rows of `range` after sequence number `after`, in commit order.
    pub async fn history_page(
        &self,
        range: &HistoryRange,
        after: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        with_pool!(self, |pool| async {
            Ok(sqlx::query_as(
                "SELECT seq, id, task_id, user_id, action, mutation, traceparent, created_at \
                 FROM outbox WHERE seq > $1 AND seq BETWEEN $2 AND $3 \
                 AND ($4 IS NULL OR task_id = $4) ORDER BY seq LIMIT $5",
            )
            .bind(after)
            .bind(range.first)
            .bind(range.last)
            .bind(range.task)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_names_what_is_wrong() {
        let at = |s: &str| Some(s.parse::<DateTime<Utc>>().unwrap());
        let backwards = HistoryWindow {
            since: at("2026-12-05T02:00:00Z"),
            until: at("2026-12-05T01:00:00Z"),
            ..HistoryWindow::default()
        };
        assert!(backwards.check().unwrap_err().starts_with("`since`"));
        let none = HistoryWindow {
            last: Some(0),
            ..HistoryWindow::default()
        };
        assert!(none.check().unwrap_err().starts_with("`last`"));
        assert_eq!(HistoryWindow::default().check(), Ok(()));
    }
}
