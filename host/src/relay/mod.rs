//! The outbox relay: drains committed mutations through the mapper chain into
//! stored envelopes, then publishes those through the Dapr sidecar.
//!
//! Two stages run in one loop. **Map**: lease a batch of pending outbox rows, run
//! the live mapper set on each (on a blocking thread), store the envelopes (or a
//! dead letter) and mark the row. **Publish**: lease each task's oldest unpublished
//! envelope (so one task's events leave in mutation order while different tasks go
//! concurrently), send them with bounded concurrency, record the outcome: published,
//! retried later with capped exponential back-off and jitter, or parked on a 4xx.
//! Leases make it safe for several replicas to share one PostgreSQL database.
//!
//! The request path only calls [`Relay::notify`]; it never waits on the relay.

mod backoff;
mod map;
mod publish;
pub mod publisher;
mod replay;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::config::{DaprConfig, RelayConfig};
use crate::mapper::MapperRegistry;
use crate::store::{Db, EnvelopeState};
use publisher::Publisher;

pub use map::{MapOutcome, map_row};
pub use replay::{ReplayError, Replayed};

/// A handle on the relay: wake it when a mutation commits (it also polls, so a missed
/// wake-up only delays, never loses, a mutation) and replay dead letters. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
}

struct Shared {
    wake: Notify,
    ctx: RelayContext,
    running: AtomicBool,
    inject_panic: AtomicBool,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("id", &self.shared.ctx.id)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// The relay that works with `ctx`; it runs once [`Relay::spawn`]ed.
    pub fn new(ctx: RelayContext) -> Self {
        Self {
            shared: Arc::new(Shared {
                wake: Notify::new(),
                ctx,
                running: AtomicBool::new(false),
                inject_panic: AtomicBool::new(false),
            }),
        }
    }

    /// Tells the relay there is new work.
    pub fn notify(&self) {
        self.shared.wake.notify_one();
    }

    /// Maps dead letter `id`'s mutation again with the live mappers and stores its
    /// envelopes (ids already published keep their row and are not sent again); a new
    /// failure keeps the letter open with the new reason.
    pub async fn replay(&self, id: Uuid) -> Result<Replayed, ReplayError> {
        let replayed = replay::replay(&self.shared.ctx, id).await?;
        self.notify();
        Ok(replayed)
    }

    /// The relay's database pool (closed at shutdown).
    pub fn db(&self) -> &Db {
        &self.shared.ctx.db
    }
}

/// What the relay loop works with.
#[derive(Clone)]
pub struct RelayContext {
    pub db: Db,
    pub mappers: MapperRegistry,
    /// `None` when Dapr is disabled: envelopes are stored as `skipped`.
    pub publisher: Option<Publisher>,
    pub config: RelayConfig,
    pub source: String,
    /// This process's relay id, written into leases.
    pub id: String,
}

impl RelayContext {
    /// The state new envelopes start in: pending when publishing, else skipped.
    fn new_envelope_state(&self) -> EnvelopeState {
        if self.publisher.is_some() {
            EnvelopeState::Pending
        } else {
            EnvelopeState::Skipped
        }
    }

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
            source,
            id: format!("relay-{}", Uuid::new_v4().simple()),
        })
    }
}

impl Relay {
    /// Runs the relay until `stop` turns true, under a supervisor: a relay loop that
    /// panics is logged, counted (`pakaura_relay_restarts_total`) and restarted after
    /// a back-off; meanwhile [`Relay::is_running`] is false, so `/readyz` says so.
    pub fn spawn(&self, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut restart_delay = Duration::from_millis(100);
            loop {
                shared.set_running(true);
                let run = tokio::spawn(run(shared.clone(), stop.clone()));
                let outcome = run.await;
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
                            relay = %shared.ctx.id, panic = %message, restart_in_ms = restart_delay.as_millis() as u64,
                            "the relay panicked; restarting it"
                        );
                        metrics::counter!("pakaura_relay_restarts_total").increment(1);
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

    /// Whether the relay loop runs (false before it starts, after it stopped, and
    /// between a panic and its restart).
    pub fn is_running(&self) -> bool {
        self.shared.running.load(Ordering::Acquire)
    }

    /// Makes the running relay loop panic at its next turn, to test the supervisor.
    #[doc(hidden)]
    pub fn inject_panic(&self) {
        self.shared.inject_panic.store(true, Ordering::Release);
        self.notify();
    }
}

impl Shared {
    fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Release);
        metrics::gauge!("pakaura_relay_up").set(if running { 1.0 } else { 0.0 });
    }
}

/// The relay loop: map, publish, prune, wait for work; until `stop` turns true.
async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let ctx = &shared.ctx;
    let wake = &shared.wake;
    let sidecar_ready = Arc::new(AtomicBool::new(false));
    let waiter = ctx
        .publisher
        .clone()
        .map(|p| tokio::spawn(wait_for_sidecar(p, sidecar_ready.clone())));
    // Aborts the sidecar waiter however this loop ends, a panic included.
    let _waiter = waiter.map(AbortOnDrop);
    let mut last_prune = Instant::now() - Duration::from_secs(3600);
    tracing::info!(relay = %ctx.id, dapr = ctx.publisher.is_some(), "relay started");
    loop {
        if *stop.borrow() {
            break;
        }
        if shared.inject_panic.swap(false, Ordering::AcqRel) {
            panic!("panic injected into the relay");
        }
        let mapped = map::run(ctx).await;
        let published = if sidecar_ready.load(Ordering::Acquire) {
            publish::run(ctx).await
        } else {
            0
        };
        if last_prune.elapsed() > Duration::from_secs(60) {
            last_prune = Instant::now();
            prune(ctx).await;
        }
        if mapped == 0 && published == 0 {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(ctx.config.relay_poll_interval) => {}
                _ = stop.changed() => {}
            }
        }
    }
    tracing::info!(relay = %ctx.id, "relay stopped");
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Polls `/v1.0/healthz/outbound` until the sidecar is ready; the API serves and
/// the map stage runs meanwhile.
async fn wait_for_sidecar(publisher: Publisher, ready: Arc<AtomicBool>) {
    let mut delay = Duration::from_millis(100);
    let mut warned = false;
    let started = Instant::now();
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
    tracing::info!("Dapr sidecar ready");
    ready.store(true, Ordering::Release);
}

async fn prune(ctx: &RelayContext) {
    let Ok(retention) = chrono::Duration::from_std(ctx.config.envelope_retention) else {
        return;
    };
    let before = crate::domain::task::now() - retention;
    match ctx.db.prune(before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            rows = n,
            "pruned finished relay rows past ENVELOPE_RETENTION"
        ),
        Err(e) => tracing::warn!(error = %e, "pruning relay rows failed; will try again"),
    }
}
