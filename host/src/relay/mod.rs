//! The outbox relay: turns committed mutations into published CloudEvents.
//!
//! Three stages run concurrently, each its own task, and meet only in the database:
//!
//! - **map** (`map.rs`): claims batches of pending outbox rows, maps each batch through
//!   the live mapper set on a blocking thread, and stores the envelopes, the per-task
//!   publish queues and any dead letters in one transaction;
//! - **publish** (`dispatch/`): claims ready task queues and keeps up to
//!   `RELAY_MAX_IN_FLIGHT` publish requests in flight through the configured
//!   [`Publisher`] (`publish/`: the seam, and Dapr behind it), one envelope per task at
//!   a time so each task's events leave in mutation order, recording outcomes in
//!   batches;
//! - **housekeeping** (`housekeeping.rs`): prunes finished rows after
//!   `ENVELOPE_RETENTION` and refreshes the backlog gauges.
//!
//! Every stage has one shape (`stage.rs`): a value that runs until told to stop, with
//! the relay's context and its wake-ups; a new stage is a file and a line in
//! [`stage::stages`].
//!
//! Every claim is a lease fenced by a token, so several replicas can share one
//! PostgreSQL database and each event is published by one of them (retries aside,
//! always under the same envelope id). A supervisor restarts the relay after a panic.
//!
//! The request path only calls [`Relay::notify`]; it never waits on the relay.

mod dispatch;
mod housekeeping;
mod map;
pub mod publish;
mod replay;
mod stage;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::config::RelayConfig;
use crate::instruments::{RELAY_RESTARTS, RELAY_UP};
use crate::mapper::MapperRegistry;
use crate::store::{Db, EnvelopeState};
pub use publish::Publisher;
use stage::{Signals, Wakes};

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
    wakes: Arc<Wakes>,
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
    /// `None` when nothing is published (`PUBLISHER=none`): envelopes are stored as
    /// `skipped`.
    publisher: Option<Arc<dyn Publisher>>,
    config: RelayConfig,
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
    /// Events the publisher accepted.
    pub published: u64,
    /// Publish attempts that failed and will be retried.
    pub retried: u64,
    /// Events parked as dead letters: refused by the publisher, or failing past the
    /// limits.
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
    /// The relay of this process over `db` (its own pool) and `mappers`, publishing
    /// through `publisher` (`None`: nothing is published).
    pub fn new(
        db: Db,
        mappers: MapperRegistry,
        publisher: Option<Arc<dyn Publisher>>,
        config: RelayConfig,
        source: String,
    ) -> Self {
        Self {
            db,
            mappers,
            publisher,
            config,
            source,
            id: format!("relay-{}", Uuid::new_v4().simple()),
            inject_panic: AtomicBool::new(false),
            stats: Counters::default(),
        }
    }

    /// The state new envelopes start in: pending when publishing, else skipped.
    fn envelope_state(&self) -> EnvelopeState {
        if self.publisher.is_some() {
            EnvelopeState::Pending
        } else {
            EnvelopeState::Skipped
        }
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
                wakes: Arc::default(),
                running: AtomicBool::new(false),
            }),
        }
    }

    /// Tells the relay a mutation committed.
    pub fn notify(&self) {
        self.shared.wakes.mutations.notify_one();
    }

    /// Replays dead letter `id`: a refused or expired envelope is queued again as it
    /// was (same id, same body); a mutation that could not be mapped is mapped again
    /// with the live mappers. Either way only that letter is resolved.
    pub async fn replay(&self, id: Uuid) -> Result<Replayed, ReplayError> {
        let replayed = replay::replay(&self.shared.ctx, id).await?;
        self.shared.wakes.envelopes.notify_one();
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

/// The relay's stages, until `stop` turns true; a panic in any of them ends the
/// others and is passed on to the supervisor.
async fn run(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let ctx = shared.ctx.clone();
    tracing::info!(
        relay = %ctx.id,
        publisher = ctx.publisher.as_ref().map_or("none", |p| p.system()),
        "relay started"
    );
    let mut stages = JoinSet::new();
    for stage in stage::stages(&ctx) {
        let signals = Signals {
            wakes: shared.wakes.clone(),
            stop: stop.clone(),
        };
        stages.spawn(stage.run(ctx.clone(), signals));
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
