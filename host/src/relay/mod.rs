//! The outbox relay: turns committed mutations into published CloudEvents.
//!
//! The stages run concurrently, each its own task, and meet only in the database:
//!
//! - **map** (`map.rs`): claims batches of pending outbox rows, maps each batch through
//!   the live mapper set on a blocking thread, and stores the envelopes, the per-task
//!   publish queues and any dead letters in one transaction (on PostgreSQL while it
//!   claims and maps the next batch);
//! - **publish** (`dispatch/`): claims ready task queues and keeps up to
//!   `RELAY_MAX_IN_FLIGHT` publish requests in flight through the configured
//!   [`Publisher`] (`publish/`: the seam, and Dapr behind it), one envelope per task at
//!   a time so each task's events leave in mutation order, recording outcomes in
//!   batches;
//! - **housekeeping** (`housekeeping.rs`): prunes finished rows after
//!   `ENVELOPE_RETENTION` and refreshes the backlog gauges;
//! - **vacuum** (`vacuum.rs`, PostgreSQL): vacuums the task queue table every
//!   `RELAY_VACUUM_INTERVAL`, so the publish stage's claims stay fast between
//!   autovacuum's visits.
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
mod health;
mod housekeeping;
mod map;
pub mod publish;
mod replay;
mod stage;
mod vacuum;
mod watchdog;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::candidate::shadow::Shadow;
use crate::config::{OnPoison, RelayConfig};
use crate::instruments::{RELAY_RESTARTS, RELAY_UP};
use crate::mapper::MapperRegistry;
use crate::store::{Db, EnvelopeState};
pub use health::{PublisherReadiness, RelayRestart};
pub use publish::Publisher;
pub use replay::{Retried, RetriedLetter, Skipped};
use stage::{Signals, Wakes};
use watchdog::Heartbeats;

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
    /// The stages' progress, for the watchdog.
    beats: Heartbeats,
    /// The publisher's readiness and the restarts, for the operator.
    health: health::HealthRecord,
    /// The shadow run the map stage hands what it maps to, if one runs.
    shadow: RwLock<Option<Arc<Shadow>>>,
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
        let beats = Heartbeats::new(&stage::names(
            publisher.is_some(),
            vacuum::VacuumStage::wanted(&db, &config),
        ));
        Self {
            db,
            mappers,
            publisher,
            config,
            source,
            id: format!("relay-{}", Uuid::new_v4().simple()),
            inject_panic: AtomicBool::new(false),
            stats: Counters::default(),
            beats,
            health: health::HealthRecord::default(),
            shadow: RwLock::default(),
        }
    }

    /// Stage `stage` made progress (see `watchdog.rs`).
    fn beat(&self, stage: &'static str) {
        self.beats.beat(stage);
    }

    /// Whether a poison event holds its task (`RELAY_ON_POISON=hold`).
    fn holds(&self) -> bool {
        self.config.relay_on_poison == OnPoison::Hold
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

    /// Replays dead letter `id` for operator `by`: a refused or expired envelope is
    /// queued again as it was (same id, same body, attempts counted afresh); a mutation
    /// that could not be mapped is mapped again with the live mappers. Either way only
    /// that letter is resolved, its holds lift, and the events that waited behind it
    /// follow it out, in order.
    pub async fn replay(&self, id: Uuid, by: &str) -> Result<Replayed, ReplayError> {
        let replayed = replay::replay(&self.shared.ctx, id, by).await?;
        self.shared.wakes.envelopes.notify_one();
        Ok(replayed)
    }

    /// Skips dead letter `id` for operator `by`, saying `reason`: its event is never
    /// published, its holds lift and the events behind it go on.
    pub async fn skip(&self, id: Uuid, by: &str, reason: &str) -> Result<Skipped, ReplayError> {
        let skipped = replay::skip(&self.shared.ctx, id, by, reason).await?;
        self.shared.wakes.envelopes.notify_one();
        Ok(skipped)
    }

    /// Replays every open dead letter of `mapper`, oldest first (after a reload fixed
    /// it), each as [`Relay::replay`] would; one failing does not stop the others.
    pub async fn retry_mapper(&self, mapper: &str, by: &str) -> Result<Retried, ReplayError> {
        let retried = replay::retry_mapper(&self.shared.ctx, mapper, by).await?;
        self.shared.wakes.envelopes.notify_one();
        Ok(retried)
    }

    /// Makes the map stage hand every mutation it maps to `shadow` as well (`None`:
    /// to no shadow run).
    pub fn set_shadow(&self, shadow: Option<Arc<Shadow>>) {
        *self
            .shared
            .ctx
            .shadow
            .write()
            .unwrap_or_else(PoisonError::into_inner) = shadow;
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
    /// panic or a stall and its restart).
    pub fn is_running(&self) -> bool {
        self.shared.running.load(Ordering::Acquire)
    }

    /// The stage the watchdog last found stalled, until the relay runs again.
    pub fn stalled_stage(&self) -> Option<&'static str> {
        self.shared.ctx.beats.stalled()
    }

    /// The publisher's readiness as last checked (`None` before the first check, or
    /// when nothing is published).
    pub fn publisher_readiness(&self) -> Option<PublisherReadiness> {
        self.shared.ctx.health.publisher()
    }

    /// The publishing system (`dapr`), `None` with `PUBLISHER=none`.
    pub fn publisher_system(&self) -> Option<&'static str> {
        self.shared.ctx.publisher.as_ref().map(|p| p.system())
    }

    /// The restarts of this replica's relay so far, and the last one.
    pub fn restarts(&self) -> (u64, Option<RelayRestart>) {
        self.shared.ctx.health.restarts()
    }

    /// Each stage and how long ago it last made progress.
    pub fn stage_beats(&self) -> Vec<(&'static str, Duration)> {
        self.shared.ctx.beats.ages()
    }

    /// Makes the relay panic at its next turn, to test the supervisor.
    #[doc(hidden)]
    pub fn inject_panic(&self) {
        self.shared.ctx.inject_panic.store(true, Ordering::Release);
        self.notify();
    }

    /// Runs the relay until `stop` turns true, under a supervisor: a relay that panics,
    /// or whose stage stalls (`RELAY_STALL_TIMEOUT`), is logged, counted
    /// (`pakaura_relay_restarts_total`) and restarted after a back-off that doubles up to
    /// 30 s and starts again from 100 ms once a run lasted a minute; a restarted relay
    /// first takes back the leases its failed run held. Meanwhile
    /// [`Relay::is_running`] is false, so `/readyz` says so.
    pub fn spawn(&self, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        const FIRST_DELAY: Duration = Duration::from_millis(100);
        const HEALTHY_RUN: Duration = Duration::from_secs(60);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut restart_delay = FIRST_DELAY;
            let mut restarting = false;
            loop {
                if restarting {
                    shared.take_back_leases().await;
                }
                restarting = true;
                shared.ctx.beats.reset();
                shared.set_running(true);
                let started = std::time::Instant::now();
                let outcome = tokio::spawn(run(shared.clone(), stop.clone())).await;
                shared.set_running(false);
                let why = match outcome {
                    Ok(Ended::Stopped) => break,
                    Ok(Ended::Stalled(stage)) => format!("its {stage} stage stalled"),
                    Err(e) if e.is_panic() => {
                        let panic = e.into_panic();
                        let message = panic
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "(no message)".to_owned());
                        format!("it panicked: {message}")
                    }
                    Err(_) => break,
                };
                if started.elapsed() >= HEALTHY_RUN {
                    restart_delay = FIRST_DELAY;
                }
                tracing::error!(
                    relay = %shared.ctx.id, reason = %why,
                    restart_in_ms = restart_delay.as_millis() as u64,
                    "the relay failed; restarting it"
                );
                metrics::counter!(RELAY_RESTARTS).increment(1);
                shared.ctx.health.restarted(&why);
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

/// How long the other stages get to finish what they hold when a run ends because one
/// panicked or stalled, before they are cut off (a stalled one never finishes).
const WIND_DOWN: Duration = Duration::from_secs(10);

/// Waits for the halted stages to finish, at most [`WIND_DOWN`], then aborts the rest.
async fn wind_down(stages: &mut JoinSet<()>) {
    let finished = tokio::time::timeout(WIND_DOWN, async {
        while stages.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        stages.abort_all();
    }
}

/// How a run of the relay ended (a panic ends it too, as a panic).
enum Ended {
    /// Told to stop.
    Stopped,
    /// The watchdog found this stage stalled.
    Stalled(&'static str),
}

impl Shared {
    /// Gives back what the failed run held (its claimed mutations and task queues), so
    /// that the next run claims them at once instead of waiting out `RELAY_LEASE`. A
    /// database that does not answer within a few seconds is left to the leases.
    async fn take_back_leases(&self) {
        let ctx = &self.ctx;
        match tokio::time::timeout(Duration::from_secs(5), ctx.db.release_owner(&ctx.id)).await {
            Ok(Ok(released)) => {
                tracing::info!(relay = %ctx.id, released, "took back the failed run's leases");
            }
            Ok(Err(e)) => tracing::warn!(relay = %ctx.id, error = %e,
                "could not take back the failed run's leases; they expire after RELAY_LEASE"),
            Err(_) => tracing::warn!(relay = %ctx.id,
                "the database did not answer; the failed run's leases expire after RELAY_LEASE"),
        }
    }

    fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Release);
        metrics::gauge!(RELAY_UP).set(if running { 1.0 } else { 0.0 });
    }
}

/// The relay's stages, until `stop` turns true or the watchdog finds one stalled; a
/// panic in any of them ends the others and is passed on to the supervisor.
async fn run(shared: Arc<Shared>, stop: watch::Receiver<bool>) -> Ended {
    let ctx = shared.ctx.clone();
    tracing::info!(
        relay = %ctx.id,
        publisher = ctx.publisher.as_ref().map_or("none", |p| p.system()),
        "relay started"
    );
    // The stages stop on this run's own signal: the host stopping, or the run ending
    // because another stage panicked or stalled. So the healthy stages finish what they
    // hold (a transaction, a request in flight, the task queues they give back) instead
    // of being cut off in the middle: a future dropped inside `BEGIN` leaves its
    // connection in an open transaction that the pool cannot see.
    let (halt, halted) = watch::channel(false);
    let mut stages = JoinSet::new();
    for stage in stage::stages(&ctx) {
        let signals = Signals {
            wakes: shared.wakes.clone(),
            stop: halted.clone(),
        };
        stages.spawn(stage.run(ctx.clone(), signals));
    }
    let watchdog = ctx
        .beats
        .watch(ctx.config.relay_stall_timeout, stop.clone());
    tokio::pin!(watchdog);
    let ended = loop {
        tokio::select! {
            done = stages.join_next() => match done {
                None => break Ended::Stopped,
                Some(Err(e)) if e.is_panic() => {
                    let _ = halt.send(true);
                    wind_down(&mut stages).await;
                    std::panic::resume_unwind(e.into_panic());
                }
                Some(_) => {}
            },
            stalled = &mut watchdog => match stalled {
                Some(stage) => {
                    tracing::error!(relay = %ctx.id, stage, timeout = ?ctx.config.relay_stall_timeout,
                        "a relay stage made no progress within RELAY_STALL_TIMEOUT");
                    let _ = halt.send(true);
                    wind_down(&mut stages).await;
                    break Ended::Stalled(stage);
                }
                // Stopping: let the stages finish what they hold.
                None => {
                    let _ = halt.send(true);
                    while let Some(done) = stages.join_next().await {
                        if let Err(e) = done
                            && e.is_panic()
                        {
                            std::panic::resume_unwind(e.into_panic());
                        }
                    }
                    break Ended::Stopped;
                }
            },
        }
    };
    tracing::info!(relay = %ctx.id, "relay stopped");
    ended
}
