//! The operator layer: what the admin API and the console do, beside the task service
//! ([`crate::tasks`]) that the task API and MCP share. Handlers extract, call one
//! [`Operator`] method and respond; the reads, the replays, the live flow and the
//! playground live here, the SQL in [`crate::store`].
//!
//! Layout: this file (the [`Operator`] service: mappers, dead letters, envelopes,
//! replay, readiness), `backlog` (the one backlog sampler the gauges and the flow read),
//! `flow` (the live flow snapshots every console shares), `playground` (trying mappers
//! out without touching the outbox).

pub mod backlog;
pub mod candidates;
pub mod flow;
pub mod health;
pub mod letters;
pub mod playground;
pub mod reload;
pub mod search;

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use crate::candidate::releases::Releases;
use crate::mapper::{LoadError, MapperListing, MapperRegistry, ReloadReport};
use crate::relay::{Relay, ReplayError, Replayed, Retried, Skipped};
use crate::store::{
    Db, DeadLetter, DeliveryAttempt, EnvelopeFilter, EnvelopeRecord, Hold, LetterHold, StoreError,
};
use backlog::BacklogSampler;
use flow::{FlowHub, FlowSubscription};
use playground::Playground;

/// The operator's service; cheap to clone.
#[derive(Debug, Clone)]
pub struct Operator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The database, through the relay's pool: operator reads never make API requests
    /// wait for a connection.
    db: Db,
    /// The API's pool, whose health readiness reports.
    api_db: Db,
    relay: Relay,
    mappers: MapperRegistry,
    backlog: BacklogSampler,
    flow: Arc<FlowHub>,
    playground: Playground,
    /// The envelopes' CloudEvents `source` (`EVENT_SOURCE`), for the AsyncAPI document.
    event_source: String,
    /// Candidate mappers uploaded to this replica, their diffs and the shadow run.
    candidates: candidates::Candidates,
    /// Promotions and rollbacks, shared by every replica through the database.
    releases: Releases,
}

/// A dead letter, what it holds, and the JSON of the mutation it belongs to (while the
/// outbox keeps it).
#[derive(Debug, Clone)]
pub struct LetterWithMutation {
    pub letter: DeadLetter,
    /// The topics it holds its task on and the events waiting behind it; `None` when it
    /// holds nothing (`RELAY_ON_POISON=skip`, or resolved).
    pub hold: Option<LetterHold>,
    pub mutation: Option<Value>,
}

/// One envelope, its delivery history, and the mutation it was mapped from (while the
/// outbox keeps it).
#[derive(Debug, Clone)]
pub struct EnvelopeWithMutation {
    pub record: EnvelopeRecord,
    /// Its failed publish attempts, oldest first (a publish is the record itself).
    pub attempts: Vec<DeliveryAttempt>,
    /// Its dead letters, oldest first, each with how it was resolved.
    pub dead_letters: Vec<DeadLetter>,
    pub mutation: Option<Value>,
}

/// Whether the host can serve: the database answers and the relay runs.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub database: &'static str,
    /// `running`, `stopped`, or `stalled: <stage>` (between a stall and the restart).
    pub relay: String,
    /// The live mapper set's size (a set is always loaded).
    pub mappers: usize,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.database == "ok" && self.relay == "running"
    }
}

impl Operator {
    /// The operator's service over the API's database `api_db`, the relay, the mapper
    /// registry and its releases; the playground's envelopes carry `event_source`.
    pub fn new(
        api_db: Db,
        relay: Relay,
        mappers: MapperRegistry,
        releases: Releases,
        event_source: String,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db: relay.db().clone(),
                candidates: candidates::Candidates::default(),
                releases,
                api_db,
                relay,
                playground: Playground::new(mappers.clone(), event_source.clone()),
                event_source,
                mappers,
                backlog: BacklogSampler::default(),
                flow: Arc::default(),
            }),
        }
    }

    /// Samples the backlog (gauges and flow) until `stop` turns true.
    pub async fn run_sampler(&self, stop: watch::Receiver<bool>) {
        let sampler = self.inner.backlog.clone();
        let recorder = tokio::spawn(flow::record(
            self.inner.flow.clone(),
            sampler.clone(),
            self.inner.relay.clone(),
            stop.clone(),
        ));
        sampler.run(self.inner.db.clone(), stop).await;
        let _ = recorder.await;
    }

    /// The live mapper set, in call order, with each mapper's statistics.
    pub fn mappers(&self) -> Vec<MapperListing> {
        self.inner.mappers.list()
    }

    /// The payload schema `mapper` at `version` declares for `event_type`, if a mapper set
    /// held since start declared one.
    pub fn schema(
        &self,
        mapper: &str,
        version: &str,
        event_type: &str,
    ) -> Option<crate::mapper::PublishedSchema> {
        self.inner.mappers.schema(mapper, version, event_type)
    }

    /// The AsyncAPI 3.0 document of the live mapper set.
    pub fn asyncapi(&self) -> serde_json::Value {
        self.inner.mappers.asyncapi(&self.inner.event_source)
    }

    /// Reloads the mapper set from `MAPPERS_DIR` (all or nothing) for `source`
    /// (`console`, `admin`), recorded in the reload history; a set that would break
    /// consumers of the live one is refused unless `allow_breaking`.
    pub async fn reload(
        &self,
        source: &str,
        allow_breaking: bool,
    ) -> Result<ReloadReport, LoadError> {
        self.inner.mappers.reload_with(source, allow_breaking).await
    }

    /// Open dead letters, oldest first, each with its hold and its mutation.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<LetterWithMutation>, StoreError> {
        let letters = self.inner.db.dead_letters_with_mutations(limit).await?;
        let ids: Vec<Uuid> = letters.iter().map(|(l, _)| l.id).collect();
        let mut holds = self.inner.db.letter_holds(&ids).await?;
        Ok(letters
            .into_iter()
            .map(|(letter, mutation)| LetterWithMutation {
                hold: holds.remove(&letter.id),
                letter,
                mutation: mutation.as_deref().map(parsed),
            })
            .collect())
    }

    /// The tasks held on a topic, the longest held first.
    pub async fn holds(&self, limit: i64) -> Result<Vec<Hold>, StoreError> {
        self.inner.db.holds(limit).await
    }

    /// Replays dead letter `id` for operator `by` (see [`Relay::replay`]).
    pub async fn replay(&self, id: Uuid, by: &str) -> Result<Replayed, ReplayError> {
        self.inner.relay.replay(id, by).await
    }

    /// Skips dead letter `id` for operator `by`, saying `reason` (see [`Relay::skip`]).
    pub async fn skip(&self, id: Uuid, by: &str, reason: &str) -> Result<Skipped, ReplayError> {
        self.inner.relay.skip(id, by, reason).await
    }

    /// Replays every open letter of `mapper` for operator `by` (see
    /// [`Relay::retry_mapper`]).
    pub async fn retry_mapper(&self, mapper: &str, by: &str) -> Result<Retried, ReplayError> {
        self.inner.relay.retry_mapper(mapper, by).await
    }

    /// The most recent envelopes matching `filter`, newest first, and how many match in
    /// all.
    pub async fn envelopes(
        &self,
        filter: &EnvelopeFilter,
    ) -> Result<(Vec<EnvelopeRecord>, i64), StoreError> {
        let page = self.inner.db.recent_envelopes(filter).await?;
        let total = self.inner.db.count_envelopes(filter).await?;
        Ok((page, total))
    }

    /// Envelope `id` and its mutation; `None` when there is no such envelope (or it was
    /// pruned).
    pub async fn envelope(&self, id: Uuid) -> Result<Option<EnvelopeWithMutation>, StoreError> {
        let id = id.to_string();
        let Some(record) = self.inner.db.envelope(&id).await? else {
            return Ok(None);
        };
        let attempts = self.inner.db.delivery_attempts(&id).await?;
        let dead_letters = self.inner.db.letters_of_envelope(&id).await?;
        let mutation = self
            .inner
            .db
            .outbox_row(record.mutation_id)
            .await?
            .map(|row| parsed(&row.mutation));
        Ok(Some(EnvelopeWithMutation {
            record,
            attempts,
            dead_letters,
            mutation,
        }))
    }

    /// Subscribes to the live flow.
    pub fn flow(&self) -> FlowSubscription {
        self.inner.flow.subscribe(&self.inner.backlog)
    }

    /// The flow's last hour, one point per [`flow::LONG_EVERY`], oldest first.
    pub fn flow_history(&self) -> Vec<flow::FlowPoint> {
        self.inner.flow.long_history()
    }

    /// The delivery's health now: the publisher, the relay, the last publish failure,
    /// retries and holds (the holds from the latest backlog sample).
    pub async fn health(&self) -> health::Health {
        let sample = self.inner.backlog.latest();
        let backlog = sample.as_ref().and_then(|s| s.backlog.as_ref().ok());
        health::Health::read(&self.inner.relay, backlog).await
    }

    /// Whether the host is ready to serve (`/readyz`).
    pub async fn readiness(&self) -> Readiness {
        let database = match self.inner.api_db.ping().await {
            Ok(()) => "ok",
            Err(e) => {
                tracing::warn!(error = %e, "readiness: database unreachable");
                "unreachable"
            }
        };
        let relay = match (
            self.inner.relay.is_running(),
            self.inner.relay.stalled_stage(),
        ) {
            (_, Some(stage)) => format!("stalled: {stage} stage"),
            (true, None) => "running".to_owned(),
            (false, None) => "stopped".to_owned(),
        };
        Readiness {
            database,
            relay,
            mappers: self.inner.mappers.current().len(),
        }
    }

    /// The mapper playground.
    pub fn playground(&self) -> &Playground {
        &self.inner.playground
    }
}

/// A JSON text column for display; `null` if it is not JSON (never expected).
pub(crate) fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}
