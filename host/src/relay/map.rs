//! The map stage: claims a batch of committed mutations (outbox rows, oldest first),
//! maps the whole batch through the live mapper set on one blocking thread (renewing its
//! lease meanwhile), and stores its envelopes, queue rows and dead letters in
//! transactions bounded in bytes as well as rows.
//!
//! Nothing wedges: a batch whose store fails while the database answers is split down
//! to single rows, and a single row that keeps failing is parked as a dead letter (and
//! holds its task) like any poison mutation, so no error stalls other tasks for ever. A
//! mutation the host was too busy to map (no free instance slot) is given back, not
//! parked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, OptionFuture};

use super::stage::{Signals, Stage};
use super::{Counters, RelayContext};
use crate::domain::task::now;
use crate::events::build_envelope;
use crate::instruments::{DEAD_LETTERS, ENVELOPES_BUILT, MAPPER_CHAIN_DURATION};
use crate::mapper::{MapError, MapFailure, MapperSet};
use crate::store::{MappedRow, Mapping, NewEnvelope, OutboxRow, StoreError};
use crate::telemetry::traces;

/// Why a mutation could not be mapped.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The stored mutation does not decode (it was written by another version, or
    /// damaged).
    #[error("stored mutation is unreadable: {0}")]
    Unreadable(#[from] serde_json::Error),
    /// A mapper failed on it.
    #[error(transparent)]
    Mapper(#[from] MapError),
}

impl MappingError {
    /// The mapper at fault, if one is.
    pub fn mapper(&self) -> Option<&str> {
        match self {
            MappingError::Unreadable(_) => None,
            MappingError::Mapper(e) => Some(&e.mapper),
        }
    }
}

/// What mapping one outbox row came to.
#[derive(Debug)]
pub struct MapOutcome {
    /// The correlation id of the request that caused the mutation (empty when the
    /// mutation is unreadable).
    pub correlation_id: String,
    /// Its envelopes in publish order, or why there are none.
    pub result: Result<Vec<NewEnvelope>, MappingError>,
}

impl MapOutcome {
    /// The outcome as the store records it; a failure holds the task on `hold`.
    pub(crate) fn into_mapping(self, hold: &[String]) -> (String, Mapping) {
        let mapping = match self.result {
            Ok(envelopes) => Mapping::Mapped(envelopes),
            Err(e) => Mapping::Failed {
                mapper: e.mapper().map(str::to_owned),
                reason: e.to_string(),
                hold: hold.to_vec(),
            },
        };
        (self.correlation_id, mapping)
    }

    /// Whether the host was too busy to map it (not the mutation's fault).
    fn busy(&self) -> bool {
        matches!(&self.result, Err(MappingError::Mapper(e)) if e.kind.is_transient())
    }
}

/// Maps one stored mutation with `set` and builds its envelopes. Synchronous and
/// CPU-bound (see [`crate::mapper`]'s calling convention).
///
/// With traces on, mapping runs in a `map mutation` span whose parent is the mutation's
/// stored trace context, with one span per mapper under it.
pub fn map_row(set: &MapperSet, row: &OutboxRow, source: &str) -> MapOutcome {
    let span = traces::span(|| {
        tracing::info_span!(
            "map mutation",
            mutation.id = %row.id,
            mutation.action = %row.action,
            task.id = %row.task_id,
            otel.status_code = tracing::field::Empty,
        )
    });
    if !span.is_none()
        && let Some(parent) = row.trace_context()
    {
        traces::set_parent(&span, parent);
    }
    let outcome = span.in_scope(|| map_decoded(set, row, source));
    if outcome.result.is_err() {
        span.record("otel.status_code", "error");
    }
    outcome
}

fn map_decoded(set: &MapperSet, row: &OutboxRow, source: &str) -> MapOutcome {
    let mutation = match row.decode() {
        Ok(m) => m,
        Err(e) => {
            return MapOutcome {
                correlation_id: String::new(),
                result: Err(e.into()),
            };
        }
    };
    let started = Instant::now();
    let mut result = set.map(&mutation);
    // The deadline is wall-clock (epoch) time: on a starved host a healthy call can
    // miss it. One more try tells a busy host from a mapper that hangs.
    if matches!(&result, Err(e) if matches!(e.kind, MapFailure::Deadline { .. })) {
        result = set.map(&mutation);
    }
    metrics::histogram!(MAPPER_CHAIN_DURATION).record(started.elapsed().as_secs_f64());
    let incoming = row.trace_context();
    let result = result.map_err(MappingError::from).map(|events| {
        events
            .iter()
            .zip(0..)
            .map(|(event, index)| {
                let envelope = build_envelope(&mutation, event, source, incoming);
                NewEnvelope {
                    id: envelope.id,
                    event_index: index,
                    mapper: event.mapper.clone(),
                    topic: event.topic.clone(),
                    event_type: event.event_type.clone(),
                    partition_key: event.partition_key_for(&mutation),
                    traceparent: envelope.traceparent.to_string(),
                    body: envelope.body,
                }
            })
            .collect()
    });
    MapOutcome {
        correlation_id: mutation.correlation_id,
        result,
    }
}

/// A batch of rows mapped with one set.
pub(super) struct Mapped {
    pub(super) rows: Vec<OutboxRow>,
    pub(super) outcomes: Vec<MapOutcome>,
    /// The topics a failed mutation holds its task on: every topic the set's mappers
    /// declared (the topics it could have reached), none with `RELAY_ON_POISON=skip`.
    pub(super) hold: Vec<String>,
}

/// Maps `rows` with the live set on one blocking thread; with `beat`, each mapped row
/// is progress of the map stage (for the watchdog).
pub(super) async fn map_rows(ctx: &Arc<RelayContext>, rows: Vec<OutboxRow>, beat: bool) -> Mapped {
    let set: Arc<MapperSet> = ctx.mappers.current();
    let hold = if ctx.holds() {
        set.topics().into_iter().collect()
    } else {
        Vec::new()
    };
    let source = ctx.source.clone();
    let beats = ctx.clone();
    let shadow = ctx
        .shadow
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if let Some(shadow) = shadow {
        // Never waits: a shadow that is behind drops (and counts) the rows instead.
        rows.iter().for_each(|row| shadow.offer(row));
    }
    let mapped = tokio::task::spawn_blocking(move || {
        let outcomes = rows
            .iter()
            .map(|row| {
                let outcome = map_row(&set, row, &source);
                if beat {
                    beats.beat(MapStage::NAME);
                }
                outcome
            })
            .collect();
        (rows, outcomes)
    })
    .await;
    match mapped {
        Ok((rows, outcomes)) => Mapped {
            rows,
            outcomes,
            hold,
        },
        // A panic while mapping is a host bug: let the supervisor restart the relay.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The map stage: claims, maps and stores batches until stopped; wakes the publish
/// stage whenever envelopes were stored.
///
/// On PostgreSQL two batches overlap: while one batch's outcomes are stored, the next is
/// claimed and mapped. Stores commit one at a time; a task's events do not depend on
/// their order, since the publish stage loads a task's envelopes only up to its oldest
/// mutation still pending (`store/relay`), as it must with several replicas. A batch
/// waiting for the store before it keeps its lease: that lease was taken or renewed
/// after the storing batch's, so it cannot end first. On SQLite the claim and the store
/// would both wait for the one writer, and back to back they keep the API's commits
/// waiting longer, so a batch is stored before the next is claimed (BENCHMARKS.md).
pub(super) struct MapStage;

impl MapStage {
    pub(super) const NAME: &'static str = "map";
}

impl Stage for MapStage {
    fn run(self: Box<Self>, ctx: Arc<RelayContext>, signals: Signals) -> BoxFuture<'static, ()> {
        run(ctx, signals).boxed()
    }
}

async fn run(ctx: Arc<RelayContext>, signals: Signals) {
    let Signals { wakes, mut stop } = signals;
    // A batch mapped and not yet stored.
    let mut unstored: Option<Batch> = None;
    loop {
        let stopping = *stop.borrow();
        if stopping && unstored.is_none() {
            return;
        }
        ctx.beat(MapStage::NAME);
        ctx.check_injected_panic();
        let storing = OptionFuture::from(unstored.take().map(|batch| store_batch(&ctx, batch)));
        let claiming = async {
            if stopping {
                Ok(None)
            } else {
                claim_batch(&ctx).await
            }
        };
        let (next, stored) = if ctx.db.writes_in_parallel() {
            futures::join!(claiming, storing)
        } else {
            let stored = storing.await;
            (claiming.await, stored)
        };
        let mut failed = false;
        match stored {
            Some(Ok(())) => wakes.envelopes.notify_one(),
            Some(Err(e)) => {
                failed = true;
                tracing::warn!(error = %e, "storing a mapped batch failed; its rows are mapped again when their lease ends");
            }
            None => {}
        }
        match next {
            Ok(Some(batch)) => unstored = Some(batch),
            Ok(None) => {}
            Err(e) => {
                failed = true;
                tracing::warn!(error = %e, "claiming a batch failed; will retry");
            }
        }
        if unstored.is_some() && !failed {
            continue;
        }
        tokio::select! {
            () = wakes.mutations.notified(), if !failed => {}
            () = tokio::time::sleep(ctx.config.relay_poll_interval) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Most bytes of envelopes one store transaction carries.
const STORE_CHUNK_BYTES: usize = 16 << 20;
/// Tries of a single row's store before it is parked (while the database answers).
const STORE_TRIES: u32 = 3;

/// A claimed batch and what mapping it came to, under the lease of `token`.
struct Batch {
    token: i64,
    mapped: Mapped,
}

/// Claims a batch and maps it; `None` when nothing is pending.
async fn claim_batch(ctx: &Arc<RelayContext>) -> Result<Option<Batch>, StoreError> {
    let token: i64 = rand::random();
    let lease = ctx.config.relay_lease;
    let rows = ctx
        .db
        .claim_mutations(
            &ctx.id,
            token,
            lease,
            i64::from(ctx.config.relay_batch_size),
        )
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mapped = map_renewing(ctx, token, rows).await;
    Ok(Some(Batch { token, mapped }))
}

/// Stores what a batch's mapping came to, giving back the rows the host was too busy
/// to map.
async fn store_batch(ctx: &Arc<RelayContext>, batch: Batch) -> Result<(), StoreError> {
    let Batch { token, mapped } = batch;
    let mut busy = Vec::new();
    let mut rows = Vec::with_capacity(mapped.rows.len());
    for (row, outcome) in mapped.rows.iter().zip(mapped.outcomes) {
        if outcome.busy() {
            busy.push(row.seq);
            continue;
        }
        log_outcome(ctx, row, &outcome);
        let (correlation_id, mapping) = outcome.into_mapping(&mapped.hold);
        rows.push(MappedRow {
            row,
            correlation_id,
            mapping,
        });
    }
    if !busy.is_empty() {
        tracing::warn!(
            rows = busy.len(),
            "the mapper runtime was too busy for some mutations; they are given back"
        );
        ctx.db.release_mutations(&busy, token).await?;
    }
    let mut chunk: Vec<MappedRow<'_>> = Vec::new();
    let mut bytes = 0;
    for row in rows {
        let size = stored_bytes(&row);
        if !chunk.is_empty() && bytes + size > STORE_CHUNK_BYTES {
            store(ctx, token, &chunk, &mapped.hold).await?;
            chunk.clear();
            bytes = 0;
        }
        bytes += size;
        chunk.push(row);
    }
    if !chunk.is_empty() {
        store(ctx, token, &chunk, &mapped.hold).await?;
    }
    Ok(())
}

/// Maps `rows`, renewing their lease every third of `RELAY_LEASE` until done, so that a
/// slow batch never outlives its lease.
async fn map_renewing(ctx: &Arc<RelayContext>, token: i64, rows: Vec<OutboxRow>) -> Mapped {
    let lease = ctx.config.relay_lease;
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    let mapping = map_rows(ctx, rows, true);
    tokio::pin!(mapping);
    let every = lease / 3;
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            mapped = &mut mapping => return mapped,
            _ = renew.tick() => {
                if let Err(e) = ctx.db.renew_mutations(&seqs, token, lease).await {
                    tracing::warn!(error = %e, "renewing the lease of a batch being mapped failed");
                }
            }
        }
    }
}

/// About how many bytes storing `row` writes.
fn stored_bytes(row: &MappedRow<'_>) -> usize {
    const ROW_OVERHEAD: usize = 512;
    match &row.mapping {
        Mapping::Mapped(envelopes) => envelopes
            .iter()
            .map(|e| e.body.len() + ROW_OVERHEAD)
            .sum::<usize>()
            .max(ROW_OVERHEAD),
        Mapping::Failed { reason, .. } => reason.len() + ROW_OVERHEAD,
    }
}

fn log_outcome(ctx: &RelayContext, row: &OutboxRow, outcome: &MapOutcome) {
    match &outcome.result {
        Ok(envelopes) => {
            Counters::add(&ctx.stats.mapped, 1);
            metrics::counter!(ENVELOPES_BUILT).increment(envelopes.len() as u64);
            if ctx.publisher.is_none() {
                for e in envelopes {
                    tracing::debug!(
                        event_type = %e.event_type, topic = %e.topic, task_id = %row.task_id,
                        user_id = %row.user_id, correlation_id = %outcome.correlation_id, envelope_id = %e.id,
                        "event not published: PUBLISHER=none"
                    );
                }
            }
        }
        Err(e) => {
            Counters::add(&ctx.stats.mapping_failed, 1);
            tracing::error!(
                task_id = %row.task_id, user_id = %row.user_id, mutation_id = %row.id,
                correlation_id = %outcome.correlation_id, action = %row.action,
                mapper = e.mapper().unwrap_or("-"), reason = %e, holds = ctx.holds(),
                "mutation could not be mapped; parked as a dead letter"
            );
            metrics::counter!(DEAD_LETTERS, "kind" => "mapping").increment(1);
        }
    }
}

/// Stores a mapped batch. When it fails while the database answers, the batch is split
/// in halves down to single rows (see [`store_row`]); while the database does not
/// answer, the error is returned and the batch, still leased, is tried again later.
fn store<'a>(
    ctx: &'a Arc<RelayContext>,
    token: i64,
    batch: &'a [MappedRow<'a>],
    hold: &'a [String],
) -> BoxFuture<'a, Result<(), StoreError>> {
    async move {
        let state = ctx.envelope_state();
        let error = match ctx.db.record_mappings(token, batch, state, now()).await {
            Ok(stored) => {
                report(&stored);
                return Ok(());
            }
            Err(e) => e,
        };
        if !database_answers(ctx).await {
            return Err(error);
        }
        if let [row] = batch {
            return store_row(ctx, token, row, hold, error).await;
        }
        tracing::warn!(error = %error, rows = batch.len(), "storing a mapped batch failed; storing it in halves");
        let (first, second) = batch.split_at(batch.len() / 2);
        store(ctx, token, first, hold).await?;
        store(ctx, token, second, hold).await
    }
    .boxed()
}

/// Stores one mapped row whose store failed with `error` while the database answered:
/// tries it again a few times, and parks it as a dead letter saying why (holding its
/// task) when it keeps failing, so it never blocks the rows behind it.
async fn store_row(
    ctx: &Arc<RelayContext>,
    token: i64,
    row: &MappedRow<'_>,
    hold: &[String],
    mut error: StoreError,
) -> Result<(), StoreError> {
    let state = ctx.envelope_state();
    for attempt in 1..STORE_TRIES {
        tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
        match ctx
            .db
            .record_mappings(token, std::slice::from_ref(row), state, now())
            .await
        {
            Ok(stored) => {
                report(&stored);
                return Ok(());
            }
            Err(e) if !database_answers(ctx).await => return Err(e),
            Err(e) => error = e,
        }
    }
    tracing::error!(
        mutation_id = %row.row.id, error = %error,
        "a mapping outcome cannot be stored; parked as a dead letter"
    );
    Counters::add(&ctx.stats.mapping_failed, 1);
    metrics::counter!(DEAD_LETTERS, "kind" => "mapping").increment(1);
    let parked = MappedRow {
        row: row.row,
        correlation_id: row.correlation_id.clone(),
        mapping: Mapping::Failed {
            mapper: None,
            reason: format!("its mapping outcome could not be stored: {error}"),
            hold: hold.to_vec(),
        },
    };
    let stored = ctx
        .db
        .record_mappings(token, std::slice::from_ref(&parked), state, now())
        .await?;
    report(&stored);
    Ok(())
}

/// Whether the database answers a trivial query within a few seconds: a failure it
/// answers through is the data's, not the database's.
async fn database_answers(ctx: &RelayContext) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(5), ctx.db.ping()).await,
        Ok(Ok(()))
    )
}

fn report(stored: &crate::store::MappingStored) {
    if stored.lost > 0 {
        tracing::warn!(
            rows = stored.lost,
            "mapped rows whose lease passed to another relay were not stored"
        );
    }
}
