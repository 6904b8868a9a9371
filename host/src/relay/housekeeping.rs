//! Housekeeping: refreshes the relay's own gauges every few seconds (publisher
//! readiness, the mapper set and its instances; the backlog gauges are the operator
//! layer's sampler's) and prunes finished rows past `ENVELOPE_RETENTION` once a minute,
//! in small batches so that no prune holds a write lock for long.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::watch;

use super::stage::{Signals, Stage};
use super::{RelayContext, chrono_duration};
use crate::domain::task::now;
use crate::instruments::{MAPPER_INSTANCES, MAPPERS_LOADED, SIDECAR_READY};

/// How often the gauges are refreshed.
const GAUGES_EVERY: Duration = Duration::from_secs(5);
/// How often finished rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Rows deleted per prune statement.
const PRUNE_BATCH: i64 = 1_000;

/// The housekeeping stage.
pub(super) struct Housekeeping;

impl Housekeeping {
    pub(super) const NAME: &'static str = "housekeeping";
}

impl Stage for Housekeeping {
    fn run(self: Box<Self>, ctx: Arc<RelayContext>, signals: Signals) -> BoxFuture<'static, ()> {
        run(ctx, signals.stop).boxed()
    }
}

async fn run(ctx: Arc<RelayContext>, mut stop: watch::Receiver<bool>) {
    let mut last_prune: Option<Instant> = None;
    let mut reported = BTreeSet::new();
    loop {
        ctx.beat(Housekeeping::NAME);
        refresh_gauges(&ctx, &mut reported).await;
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(Instant::now());
            prune(&ctx, &mut stop).await;
        }
        tokio::select! {
            () = tokio::time::sleep(GAUGES_EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// `reported`: the mapper names whose instance gauges were set last time, so that a
/// mapper gone with a reload reads 0 rather than its last value.
async fn refresh_gauges(ctx: &RelayContext, reported: &mut BTreeSet<String>) {
    if let Some(publisher) = &ctx.publisher {
        let ready = publisher.ready().await;
        ctx.health.observe_publisher(ready);
        metrics::gauge!(SIDECAR_READY).set(if ready { 1.0 } else { 0.0 });
    }
    let set = ctx.mappers.current();
    metrics::gauge!(MAPPERS_LOADED).set(set.len() as f64);
    let mut now_reported = BTreeSet::new();
    for mapper in set.iter() {
        let (busy, idle) = mapper.instances();
        set_instances(mapper.name(), busy, idle);
        now_reported.insert(mapper.name().to_owned());
    }
    for gone in reported.difference(&now_reported) {
        set_instances(gone, 0, 0);
    }
    *reported = now_reported;
}

fn set_instances(mapper: &str, busy: usize, idle: usize) {
    for (state, n) in [("busy", busy), ("idle", idle)] {
        metrics::gauge!(MAPPER_INSTANCES, "mapper" => mapper.to_owned(), "state" => state)
            .set(n as f64);
    }
}

async fn prune(ctx: &RelayContext, stop: &mut watch::Receiver<bool>) {
    let before = now() - chrono_duration(ctx.config.envelope_retention);
    let history_before = now() - chrono_duration(ctx.config.mutation_history);
    let mut total = 0;
    loop {
        match ctx.db.prune_some(before, history_before, PRUNE_BATCH).await {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => {
                tracing::warn!(error = %e, "pruning relay rows failed; will try again");
                break;
            }
        }
        if *stop.borrow() {
            break;
        }
        // Let other writers in between batches.
        tokio::task::yield_now().await;
    }
    if total > 0 {
        tracing::info!(
            rows = total,
            "pruned finished relay rows past ENVELOPE_RETENTION and MUTATION_HISTORY"
        );
    }
}
