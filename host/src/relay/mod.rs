//! The outbox relay: turns committed mutations into published CloudEvents.
//!
//! Three stages run concurrently, each its own task, and meet only in the database:
//!
//! - **map** (`map.rs`): claims batches of pending outbox rows, maps each batch through
//!   the live mapper set on a blocking thread, and stores the envelopes, the per-task
//!   publish queues and any dead letters in one transaction;
//! - **publish** (`dispatch.rs`): claims ready task queues and keeps up to
//!   `RELAY_MAX_IN_FLIGHT` publish requests in flight through the Dapr sidecar
//!   (`publisher.rs`), one envelope per task at a time so each task's events leave in
//!   mutation order, recording outcomes in batches (with traces on, a span per
//!   publish: `spans.rs`);
//! - **housekeeping** (`housekeeping.rs`): prunes finished rows after
//!   `ENVELOPE_RETENTION` and refreshes the backlog gauges.
//!
//! Every claim is a lease fenced by a token, so several replicas can share one
//! PostgreSQL database and each event is published by one of them (retries aside,
//! always under the same envelope id). A supervisor restarts the relay after a panic.
//!
//! The request path only calls [`Relay::notify`]; it never waits on the relay.

mod backoff;
mod dispatch;
mod housekeeping;
mod map;
pub mod publisher;
mod replay;
mod spans;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::config::{DaprConfig, RelayConfig};
use crate::instruments::{RELAY_RESTARTS, RELAY_UP, SIDECAR_READY};
use crate::mapper::MapperRegistry;
use crate::store::{Db, EnvelopeState, PendingEnvelope};
use dispatch::Dispatcher;
use publisher::Publisher;

pub use map::{MapOutcome, MappingError, map_row};
pub use replay::{ReplayError, Replayed};

/// A handle on the relay: wake it when a mutation commits (it also polls, so a missed
/// wake-up only delays, never loses, a mutation), replay dead letters, see whether it
/// runs. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
}

struct Shared {
    ctx: Arc<RelayContext>,
    /// Wakes the map stage: a mutation committed.
    map_wake: Arc<Notify>,
    /// Wakes the publish stage: envelopes were stored.
    publish_wake: Arc<Notify>,
    running: AtomicBool,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("id", &self.shared.ctx.id)
            .finish_non_exhaustive()
    }
}

/// What the relay works with.
pub struct RelayContext {
    db: Db,
    mappers: MapperRegistry,
    /// `None` when Dapr is disabled: envelopes are stored as `skipped`.
    publisher: Option<Publisher>,
    config: RelayConfig,
    dapr: DaprConfig,
    /// The CloudEvents `source` of every envelope.
    source: String,
    /// This process's relay id, written into leases.
    id: String,
    /// Set by [`Relay::inject_panic`].
    inject_panic: AtomicBool,
    stats: Counters,
}

/// What this replica's relay did since it started.
#[derive(Debug, Default)]
struct Counters {
    mapped: AtomicU64,
    mapping_failed: AtomicU64,
    published: AtomicU64,
    retried: AtomicU64,
    parked: AtomicU64,
}

/// What this replica's relay did since the process started (other replicas count
/// their own): the admin API's and the console's view of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RelayStats {
    /// Mutations mapped into envelopes.
    pub mapped: u64,
    /// Mutations parked as dead letters because they could not be mapped.
    pub mapping_failed: u64,
    /// Events Dapr accepted.
    pub published: u64,
    /// Publish attempts that failed and will be retried.
    pub retried: u64,
    /// Events parked as dead letters: refused by Dapr, or failing past the limits.
    pub parked: u64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> RelayStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RelayStats {
            mapped: get(&self.mapped),
            mapping_failed: get(&self.mapping_failed),
            published: get(&self.published),
            retried: get(&self.retried),
            parked: get(&self.parked),
        }
    }
}

impl RelayContext {
    /// The relay of this process over `db` (its own pool) and `mappers`.
    pub fn new(
        db: Db,
        mappers: MapperRegistry,
        dapr: &DaprConfig,
        config: RelayConfig,
        source: String,
    ) -> Result<Self, reqwest::Error> {
        let publisher = dapr
            .dapr_enabled
            .then(|| Publisher::new(dapr))
            .transpose()?;
        Ok(Self {
            db,
            mappers,
            publisher,
            config,
            dapr: dapr.clone(),
            source,
            id: format!("relay-{}", Uuid::new_v4().simple()),
            inject_panic: AtomicBool::new(false),
            stats: Counters::default(),
        })
    }

    /// The state new envelopes start in: pending when publishing, else skipped.
    fn envelope_state(&self) -> EnvelopeState {
        if self.publisher.is_some() {
            EnvelopeState::Pending
        } else {
            EnvelopeState::Skipped
        }
    }

    /// Most entries of one bulk request, when bulk publishing is on.
    fn bulk_entries(&self) -> Option<usize> {
        self.dapr
            .dapr_bulk_publish
            .then_some(self.dapr.dapr_bulk_max_entries as usize)
    }

    /// Most bytes of envelopes in one bulk request.
    fn bulk_max_bytes(&self) -> usize {
        usize::try_from(self.dapr.dapr_bulk_max_bytes).unwrap_or(usize::MAX)
    }

    fn publish_timeout(&self) -> Duration {
        self.dapr.dapr_publish_timeout
    }

    /// Why the relay stops retrying `e` after one more failure, if it does:
    /// `RELAY_MAX_ATTEMPTS` attempts made, or failing for `RELAY_MAX_AGE`.
    fn gives_up(&self, e: &PendingEnvelope) -> Option<String> {
        let attempts = u32::try_from(e.attempts + 1).unwrap_or(u32::MAX);
        if self.config.relay_max_attempts > 0 && attempts >= self.config.relay_max_attempts {
            return Some(format!(
                "gave up after {attempts} attempts (RELAY_MAX_ATTEMPTS)"
            ));
        }
        let failing = e
            .first_failed_at
            .map(|first| crate::domain::task::now() - first)
            .and_then(|d| d.to_std().ok())?;
        (failing >= self.config.relay_max_age).then(|| {
            format!(
                "gave up after failing for {} (RELAY_MAX_AGE)",
                humantime::format_duration(Duration::from_secs(failing.as_secs()))
            )
        })
    }

    /// Panics if a panic was injected (see [`Relay::inject_panic`]).
    fn check_injected_panic(&self) {
        if self.inject_panic.swap(false, Ordering::AcqRel) {
            panic!("panic injected into the relay");
        }
    }
}

/// `d` as a chrono duration (configuration bounds every duration, so this never
/// saturates in practice).
fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Relay {
    /// The relay that works with `ctx`; it runs once [`Relay::spawn`]ed.
    pub fn new(ctx: RelayContext) -> Self {
        Self {
            shared: Arc::new(Shared {
                ctx: Arc::new(ctx),
                map_wake: Arc::new(Notify::new()),
                publish_wake: Arc::new(Notify::new()),
                running: AtomicBool::new(false),
            }),
        }
    }

    /// Tells the relay a mutation committed.
    pub fn notify(&self) {
        self.shared.map_wake.notify_one();
    }

    /// Replays dead letter `id`: a refused or expired envelope is queued again as it
    /// was (same id, same body); a mutation that could not be mapped is mapped again
    /// with the live mappers. Either way only that letter is resolved.
    pub async fn replay(&self, id: Uuid) -> Result<Replayed, ReplayError> {
        let replayed = replay::replay(&self.shared.ctx, id).await?;
        self.shared.publish_wake.notify_one();
        Ok(replayed)
    }

    /// The relay's database pool (closed at shutdown).
    pub fn db(&self) -> &Db {
        &self.shared.ctx.db
    }

    /// What this replica's relay did since the process started.
    pub fn stats(&self) -> RelayStats {
        self.shared.ctx.stats.snapshot()
    }

    /// Whether the relay runs (false before it starts, after it stopped, and between a
    /// panic and its restart).
    pub fn is_running(&self) -> bool {
        self.shared.running.load(Ordering::Acquire)
    }

    /// Makes the relay panic at its next turn, to test the supervisor.
    #[doc(hidden)]
    pub fn inject_panic(&self) {
        self.shared.ctx.inject_panic.store(true, Ordering::Release);
        self.notify();
    }

    /// Runs the relay until `stop` turns true, under a supervisor: a relay that panics
    /// is logged, counted (`pakaura_relay_restarts_total`) and restarted after a
    /// back-off; meanwhile [`Relay::is_running`] is false, so `/readyz` says so.
    pub fn spawn(&self, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut restart_delay = Duration::from_millis(100);
            loop {
                shared.set_running(true);
                let outcome = tokio::spawn(run(shared.clone(), stop.clone())).await;
                shared.set_running(false);
                match outcome {
                    Ok(()) => break,
                    Err(e) if e.is_panic() => {
                        let panic = e.into_panic();
                        let message = panic
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "(no message)".to_owned());
                        tracing::error!(
                            relay = %shared.ctx.id, panic = %message,
                            restart_in_ms = restart_delay.as_millis() as u64,
                            "the relay panicked; restarting it"
                        );
                        metrics::counter!(RELAY_RESTARTS).increment(1);
                    }
                    Err(_) => break,
                }
                let mut stop = stop.clone();
                tokio::select! {
                    () = tokio::time::sleep(restart_delay) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
                restart_delay = (restart_delay * 2).min(Duration::from_secs(30));
            }
        })
    }
}

impl Shared {
    fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Release);
        metrics::gauge!(RELAY_UP).set(if running { 1.0 } else { 0.0 });
    }
}

/// The relay's three stages, until `stop` turns true; a panic in any of them ends
/// the others and is passed on to the supervisor.
async fn run(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let ctx = shared.ctx.clone();
    tracing::info!(relay = %ctx.id, dapr = ctx.publisher.is_some(), "relay started");
    let mut stages = JoinSet::new();
    stages.spawn(map::run(
        ctx.clone(),
        shared.map_wake.clone(),
        shared.publish_wake.clone(),
        stop.clone(),
    ));
    stages.spawn(housekeeping::run(ctx.clone(), stop.clone()));
    if let Some(publisher) = ctx.publisher.clone() {
        let wake = shared.publish_wake.clone();
        let mut stop = stop.clone();
        let ctx = ctx.clone();
        stages.spawn(async move {
            tokio::select! {
                () = wait_for_sidecar(&publisher) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            Dispatcher::new(ctx, publisher).run(wake, stop).await;
        });
    }
    while let Some(done) = stages.join_next().await {
        if let Err(e) = done
            && e.is_panic()
        {
            stages.abort_all();
            std::panic::resume_unwind(e.into_panic());
        }
    }
    tracing::info!(relay = %ctx.id, "relay stopped");
}

/// Polls `/v1.0/healthz/outbound` until the sidecar is ready; the API serves and the
/// map stage runs meanwhile.
async fn wait_for_sidecar(publisher: &Publisher) {
    let mut delay = Duration::from_millis(100);
    let mut warned = false;
    let started = Instant::now();
    metrics::gauge!(SIDECAR_READY).set(0.0);
    while !publisher.sidecar_ready().await {
        if !warned && started.elapsed() > Duration::from_secs(10) {
            tracing::warn!(
                "Dapr sidecar not ready yet (GET /v1.0/healthz/outbound); events wait in the outbox"
            );
            warned = true;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    metrics::gauge!(SIDECAR_READY).set(1.0);
    tracing::info!("Dapr sidecar ready");
}
