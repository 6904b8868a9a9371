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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::config::{DaprConfig, RelayConfig};
use crate::mapper::MapperRegistry;
use crate::store::Db;
use publisher::Publisher;

pub use map::{MapOutcome, map_row};

/// A handle to wake the relay when a mutation commits (the relay also polls, so a
/// missed wake-up only delays, never loses, a mutation).
#[derive(Clone, Debug, Default)]
pub struct Relay {
    wake: Arc<Notify>,
}

impl Relay {
    /// Tells the relay there is new work.
    pub fn notify(&self) {
        self.wake.notify_one();
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
    /// Runs the relay until `stop` turns true.
    pub fn spawn(
        &self,
        ctx: RelayContext,
        mut stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let wake = self.wake.clone();
        tokio::spawn(async move {
            let sidecar_ready = Arc::new(AtomicBool::new(false));
            let waiter = ctx
                .publisher
                .clone()
                .map(|p| tokio::spawn(wait_for_sidecar(p, sidecar_ready.clone())));
            let mut last_prune = Instant::now() - Duration::from_secs(3600);
            tracing::info!(relay = %ctx.id, dapr = ctx.publisher.is_some(), "relay started");
            loop {
                if *stop.borrow() {
                    break;
                }
                let mapped = map::run(&ctx).await;
                let published = if sidecar_ready.load(Ordering::Acquire) {
                    publish::run(&ctx).await
                } else {
                    0
                };
                if last_prune.elapsed() > Duration::from_secs(60) {
                    last_prune = Instant::now();
                    prune(&ctx).await;
                }
                if mapped == 0 && published == 0 {
                    tokio::select! {
                        () = wake.notified() => {}
                        () = tokio::time::sleep(ctx.config.relay_poll_interval) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
            if let Some(waiter) = waiter {
                waiter.abort();
            }
            tracing::info!(relay = %ctx.id, "relay stopped");
        })
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
