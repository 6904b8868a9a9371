//! Housekeeping: refreshes the backlog gauges every few seconds (so a scrape never
//! counts rows) and prunes finished rows past `ENVELOPE_RETENTION` once a minute, in
//! small batches so that no prune holds a write lock for long.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{RelayContext, chrono_duration};
use crate::domain::task::now;

/// How often the backlog gauges are refreshed.
const GAUGES_EVERY: Duration = Duration::from_secs(5);
/// How often finished rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Rows deleted per prune statement.
const PRUNE_BATCH: i64 = 1_000;

pub(super) async fn run(ctx: Arc<RelayContext>, mut stop: watch::Receiver<bool>) {
    let mut last_prune: Option<Instant> = None;
    loop {
        refresh_gauges(&ctx).await;
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

async fn refresh_gauges(ctx: &RelayContext) {
    match ctx.db.backlog(now()).await {
        Ok(b) => {
            metrics::gauge!("pakaura_outbox_pending").set(b.outbox_pending as f64);
            metrics::gauge!("pakaura_envelopes_pending").set(b.envelopes_pending as f64);
            metrics::gauge!("pakaura_relay_lag_seconds").set(b.lag.as_secs_f64());
            metrics::gauge!("pakaura_dead_letters_open").set(b.dead_letters_open as f64);
        }
        Err(e) => tracing::warn!(error = %e, "reading the backlog for the gauges failed"),
    }
    if let Some(publisher) = &ctx.publisher {
        let ready = publisher.sidecar_ready().await;
        metrics::gauge!("pakaura_sidecar_ready").set(if ready { 1.0 } else { 0.0 });
    }
    metrics::gauge!("pakaura_mappers_loaded").set(ctx.mappers.current().len() as f64);
}

async fn prune(ctx: &RelayContext, stop: &mut watch::Receiver<bool>) {
    let before = now() - chrono_duration(ctx.config.envelope_retention);
    let mut total = 0;
    loop {
        match ctx.db.prune_some(before, PRUNE_BATCH).await {
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
            "pruned finished relay rows past ENVELOPE_RETENTION"
        );
    }
}
