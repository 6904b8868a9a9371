//! Envelopes as the operator reads them: the most recent ones by filter (ids or their
//! prefixes, correlation and user id, type or its prefix, topic, state, time), their
//! total, and one by id.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Db, EnvelopeState, PgDb, StoreError, with_pool};

/// An envelope as the admin API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct EnvelopeRecord {
    /// The CloudEvents id.
    pub id: String,
    pub mutation_id: Uuid,
    pub task_id: Uuid,
    /// The mapper that produced it.
    pub mapper: String,
    pub topic: String,
    pub event_type: String,
    #[sqlx(try_from = "String")]
    pub state: EnvelopeState,
    /// Publish attempts made since it was last queued (a replay starts them again).
    pub attempts: i32,
    /// Publish attempts made in all.
    pub total_attempts: i32,
    /// The last failure, if the last attempt failed.
    pub last_error: Option<String>,
    /// The publisher's error code of the last failure (Dapr's `errorCode`).
    pub error_code: Option<String>,
    /// The publisher's status of the last attempt (for Dapr, the HTTP status).
    pub delivery_status: Option<i32>,
    /// When it was mapped.
    pub created_at: DateTime<Utc>,
    /// When publishing first failed, if it did.
    pub first_failed_at: Option<DateTime<Utc>>,
    /// When it was published, skipped or parked.
    pub finished_at: Option<DateTime<Utc>>,
    /// The relay that published it.
    pub published_by: Option<String>,
    /// The CloudEvents JSON document (shown parsed, as `envelope`).
    #[serde(skip)]
    pub body: String,
}

/// Which envelopes to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct EnvelopeFilter {
    pub state: Option<EnvelopeState>,
    /// The exact CloudEvents type.
    pub event_type: Option<String>,
    pub topic: Option<String>,
    pub task_id: Option<Uuid>,
    /// Task ids starting or ending with these digits.
    pub task_part: Option<IdPart>,
    /// Mutation ids starting or ending with these digits.
    pub mutation_part: Option<IdPart>,
    /// Envelope ids (stored as text) starting or ending with these digits.
    pub id_part: Option<TextIdPart>,
    pub correlation_id: Option<String>,
    pub user_id: Option<String>,
    /// The CloudEvents type starts with this.
    pub type_prefix: Option<String>,
    /// Mapped at or after.
    pub since: Option<DateTime<Utc>>,
    /// Mapped before.
    pub until: Option<DateTime<Utc>>,
    pub limit: i64,
    /// How many matching envelopes to pass over first.
    pub offset: i64,
}

/// Ids whose first or last digits are these: part of an id, as an operator searches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPart {
    /// The smallest and the largest id starting with the digits.
    pub range: (Uuid, Uuid),
    /// The digits, lower-case hex without dashes, that the id's hex may end with (none
    /// for a whole id, which its range holds).
    pub end: Option<String>,
}

/// Text ids (`8-4-4-4-12`) whose start or end is this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextIdPart {
    /// The start, dashed as in a whole id.
    pub start: String,
    /// The end, dashed as in a whole id.
    pub end: String,
}

/// The `WHERE` clause of an [`EnvelopeFilter`], `$1`…`$17` as [`bind_envelope_filter!`]
/// binds them. `$hex_task` and `$hex_mutation` are the database's expressions for the
/// task's and the mutation's id as 32 lower-case hex digits. A whole task or mutation id
/// is an index lookup; part of one (its start or its end) has no index to use, so such a
/// search reads the envelopes the other filters leave (the table holds what
/// `ENVELOPE_RETENTION` keeps).
macro_rules! envelopes_matching {
    ($hex_task:literal, $hex_mutation:literal) => {
        concat!(
            " FROM envelopes WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR event_type = $2) \
             AND ($3 IS NULL OR topic = $3) AND ($4 IS NULL OR task_id = $4) \
             AND ($5 IS NULL OR (task_id >= $5 AND task_id <= $6) OR substr(",
            $hex_task,
            ", 33 - length($15)) = $15) \
             AND ($7 IS NULL OR (mutation_id >= $7 AND mutation_id <= $8) OR substr(",
            $hex_mutation,
            ", 33 - length($16)) = $16) \
             AND ($9 IS NULL OR id LIKE $9 OR id LIKE $17) AND ($10 IS NULL OR correlation_id = $10) \
             AND ($11 IS NULL OR user_id = $11) \
             AND ($12 IS NULL OR substr(event_type, 1, length($12)) = $12) \
             AND ($13 IS NULL OR created_at >= $13) AND ($14 IS NULL OR created_at < $14)"
        )
    };
}

/// Runs `$query` (a macro taking the two hex expressions of [`envelopes_matching!`]) on
/// the database's readers, bound by `$bind`, fetched with `$fetch`.
macro_rules! on_envelopes {
    ($db:expr, $query:ident, $fetch:ident, |$q:ident| $bind:expr) => {
        match $db {
            Db::Sqlite(sqlite) => {
                let pool = sqlite.reader();
                let $q = sqlx::query_as($query!("lower(hex(task_id))", "lower(hex(mutation_id))"));
                $bind.$fetch(pool).await
            }
            Db::Postgres(PgDb { pool, .. }) => {
                let $q = sqlx::query_as($query!(
                    "replace(task_id::text, '-', '')",
                    "replace(mutation_id::text, '-', '')"
                ));
                $bind.$fetch(pool).await
            }
        }
    };
}

/// Binds `$1`…`$17` of [`envelopes_matching!`] (`$15`… `$17` after the caller's own).
macro_rules! bind_envelope_filter {
    ($query:expr, $f:expr, $state:expr) => {
        $query
            .bind($state)
            .bind($f.event_type.as_deref())
            .bind($f.topic.as_deref())
            .bind($f.task_id)
            .bind($f.task_part.as_ref().map(|p| p.range.0))
            .bind($f.task_part.as_ref().map(|p| p.range.1))
            .bind($f.mutation_part.as_ref().map(|p| p.range.0))
            .bind($f.mutation_part.as_ref().map(|p| p.range.1))
            .bind($f.id_part.as_ref().map(|p| format!("{}%", p.start)))
            .bind($f.correlation_id.as_deref())
            .bind($f.user_id.as_deref())
            .bind($f.type_prefix.as_deref())
            .bind($f.since)
            .bind($f.until)
            .bind($f.task_part.as_ref().and_then(|p| p.end.as_deref()))
            .bind($f.mutation_part.as_ref().and_then(|p| p.end.as_deref()))
            .bind($f.id_part.as_ref().map(|p| format!("%{}", p.end)))
    };
}

/// The columns of an [`EnvelopeRecord`]: one list for every query.
macro_rules! envelope_columns {
    () => {
        "id, mutation_id, task_id, mapper, topic, event_type, state, attempts, total_attempts, \
         last_error, error_code, delivery_status, created_at, first_failed_at, finished_at, \
         published_by, (SELECT b.body FROM envelope_bodies b WHERE b.seq = envelopes.seq) AS body"
    };
}

/// One failed publish attempt of an envelope.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeliveryAttempt {
    /// The envelope's lifetime attempt number.
    pub attempt: i32,
    pub at: DateTime<Utc>,
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

impl Db {
    /// The most recent envelopes matching `filter`, newest first.
    pub async fn recent_envelopes(
        &self,
        filter: &EnvelopeFilter,
    ) -> Result<Vec<EnvelopeRecord>, StoreError> {
        let state = filter.state.map(EnvelopeState::as_str);
        macro_rules! query {
            ($hex_task:literal, $hex_mutation:literal) => {
                concat!(
                    "SELECT ",
                    envelope_columns!(),
                    envelopes_matching!($hex_task, $hex_mutation),
                    " ORDER BY seq DESC LIMIT $18 OFFSET $19"
                )
            };
        }
        let rows = on_envelopes!(self, query, fetch_all, |q| bind_envelope_filter!(
            q, filter, state
        )
        .bind(filter.limit)
        .bind(filter.offset))?;
        Ok(rows)
    }

    /// How many envelopes match `filter` (its limit and offset aside).
    pub async fn count_envelopes(&self, filter: &EnvelopeFilter) -> Result<i64, StoreError> {
        let state = filter.state.map(EnvelopeState::as_str);
        macro_rules! query {
            ($hex_task:literal, $hex_mutation:literal) => {
                concat!(
                    "SELECT count(*)",
                    envelopes_matching!($hex_task, $hex_mutation)
                )
            };
        }
        let (n,): (i64,) = on_envelopes!(self, query, fetch_one, |q| bind_envelope_filter!(
            q, filter, state
        ))?;
        Ok(n)
    }

    /// Envelope `id` (its CloudEvents id), whatever its state.
    pub async fn envelope(&self, id: &str) -> Result<Option<EnvelopeRecord>, StoreError> {
        with_pool!(self, |pool| async {
            let row = sqlx::query_as(concat!(
                "SELECT ",
                envelope_columns!(),
                " FROM envelopes WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(row)
        })
    }

    /// The failed publish attempts of envelope `id`, oldest first.
    pub async fn delivery_attempts(&self, id: &str) -> Result<Vec<DeliveryAttempt>, StoreError> {
        with_pool!(self, |pool| async {
            let rows = sqlx::query_as(
                "SELECT attempt, at, outcome, status, code, error, relay FROM delivery_attempts \
                 WHERE envelope_id = $1 ORDER BY attempt, at",
            )
            .bind(id)
            .fetch_all(pool)
            .await?;
            Ok(rows)
        })
    }
}
