//! The admin API's response bodies, as the OpenAPI document describes them.

use serde::Serialize;
use serde_json::Value;

use crate::mapper::{MapperListing, ReloadReport};
use crate::relay::{Replayed, Retried, Skipped};
use crate::store::{DeadLetter, DeliveryAttempt, EnvelopeRecord, Hold, LetterHold};

/// `GET /admin/mappers`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MapperList {
    /// The live set, in call order.
    pub(crate) mappers: Vec<MapperListing>,
}

/// `POST /admin/mappers/reload`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Reloaded {
    /// Always true.
    pub(crate) reloaded: bool,
    pub(crate) report: ReloadReport,
}

/// A dead letter, what it holds, and the mutation it belongs to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeadLetterView {
    #[serde(flatten)]
    pub(crate) letter: DeadLetter,
    /// The topics its task is held on and the events waiting behind it, while it holds
    /// (`RELAY_ON_POISON=hold`); null when it holds nothing.
    pub(crate) hold: Option<LetterHold>,
    /// The mutation as the outbox keeps it (the JSON mappers receive).
    #[schema(value_type = Option<Object>)]
    pub(crate) mutation: Option<Value>,
}

/// `POST /admin/dead-letters/{id}/replay`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ReplayOutcome {
    /// Always true.
    pub(crate) replayed: bool,
    #[serde(flatten)]
    pub(crate) outcome: Replayed,
}

/// `POST /admin/dead-letters/{id}/skip`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SkipOutcome {
    /// Always true.
    pub(crate) skipped: bool,
    #[serde(flatten)]
    pub(crate) outcome: Skipped,
}

/// `GET /admin/holds`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct HoldList {
    /// The longest held first.
    pub(crate) holds: Vec<Hold>,
}

/// `POST /admin/holds/retry`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RetryOutcome {
    /// The mapper whose letters were retried.
    pub(crate) mapper: String,
    #[serde(flatten)]
    pub(crate) outcome: Retried,
}

/// An envelope with its state, delivery history and CloudEvents document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EnvelopeView {
    #[serde(flatten)]
    pub(crate) record: EnvelopeRecord,
    /// The same as `delivery_status`, under its name from when Dapr was the only
    /// publisher; kept for existing clients.
    #[schema(deprecated)]
    pub(crate) dapr_status: Option<i32>,
    /// The exact CloudEvents JSON document published (or to be published).
    #[schema(value_type = Object)]
    pub(crate) envelope: Value,
}

impl EnvelopeView {
    pub(crate) fn of(record: EnvelopeRecord) -> Self {
        let envelope = crate::operator::parsed(&record.body);
        Self {
            dapr_status: record.delivery_status,
            record,
            envelope,
        }
    }
}

/// `GET /admin/envelopes`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EnvelopeList {
    /// Newest first.
    pub(crate) envelopes: Vec<EnvelopeView>,
    /// Envelopes matching the filters, on every page.
    pub(crate) total: i64,
    /// How many matching envelopes came before this page.
    pub(crate) offset: i64,
}

/// `GET /admin/envelopes/{id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EnvelopeDetail {
    #[serde(flatten)]
    pub(crate) view: EnvelopeView,
    /// Its failed publish attempts, oldest first (with the publisher's status and code and
    /// the relay that made each); a successful one is the envelope itself (`finished_at`,
    /// `delivery_status`, `published_by`).
    pub(crate) attempts_history: Vec<DeliveryAttempt>,
    /// Its dead letters, oldest first: when it was parked, and how each was resolved
    /// (replayed or skipped, by whom); a replay refused again links back (`replaces`).
    pub(crate) dead_letters: Vec<DeadLetter>,
    /// The mutation it was mapped from (the outbox JSON), while the outbox keeps it.
    #[schema(value_type = Option<Object>)]
    pub(crate) mutation: Option<Value>,
}
