//! The queue vacuum (PostgreSQL): vacuums the task queue table every
//! `RELAY_VACUUM_INTERVAL`, so that the publish stage's claim does not walk past the
//! dead rows of tasks already published until autovacuum comes by (see
//! `store/queue_vacuum.rs`). Runs only on PostgreSQL with the interval set; where the
//! role may not vacuum the table it warns once, and then only beats.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;

use super::RelayContext;
use super::stage::{Signals, Stage};
use crate::config::RelayConfig;
use crate::store::{Db, QueueVacuum, StoreError};

/// Longest time between beats while the stage waits (the watchdog's bound is 10 s at
/// the least, the interval up to an hour).
const BEAT_EVERY: Duration = Duration::from_secs(5);

/// The queue vacuum stage.
pub(super) struct VacuumStage;

impl VacuumStage {
    pub(super) const NAME: &'static str = "vacuum";

    /// Whether a relay on `db` with `config` runs this stage.
    pub(super) fn wanted(db: &Db, config: &RelayConfig) -> bool {
        matches!(db, Db::Postgres(_)) && !config.relay_vacuum_interval.is_zero()
    }
}

impl Stage for VacuumStage {
    fn run(self: Box<Self>, ctx: Arc<RelayContext>, signals: Signals) -> BoxFuture<'static, ()> {
        run(ctx, signals.stop).boxed()
    }
}

async fn run(ctx: Arc<RelayContext>, mut stop: watch::Receiver<bool>) {
    let every = ctx.config.relay_vacuum_interval;
    let mut allowed = None;
    let (mut check_failing, mut vacuum_failing) = (false, false);
    let mut due = Instant::now() + every;
    loop {
        ctx.beat(VacuumStage::NAME);
        if allowed.is_none() {
            let Some(answer) = beating(&ctx, &mut stop, ctx.db.may_vacuum_queue()).await else {
                return;
            };
            // None while the database cannot say: asked again at the next beat.
            allowed = said_once(
                answer,
                &mut check_failing,
                "asking whether the relay may vacuum its task queue",
            )
            .map(permitted);
        }
        if Instant::now() >= due {
            // The next one is due an interval from now, whether this one runs or not.
            due = Instant::now() + every;
            if allowed == Some(true) {
                let Some(vacuumed) = beating(&ctx, &mut stop, ctx.db.vacuum_queue()).await else {
                    return;
                };
                said_once(
                    vacuumed,
                    &mut vacuum_failing,
                    "vacuuming the relay's task queue",
                );
            }
        }
        let wait = due
            .saturating_duration_since(Instant::now())
            .min(BEAT_EVERY);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Awaits `call`, beating every `BEAT_EVERY` meanwhile: a vacuum of a bloated table, or
/// a wait for a connection, is slow work, not a stall. `None` when the relay stops first
/// (the call is dropped).
async fn beating<T>(
    ctx: &RelayContext,
    stop: &mut watch::Receiver<bool>,
    call: impl Future<Output = T>,
) -> Option<T> {
    let mut call = std::pin::pin!(call);
    loop {
        tokio::select! {
            answer = &mut call => return Some(answer),
            () = tokio::time::sleep(BEAT_EVERY) => ctx.beat(VacuumStage::NAME),
            _ = stop.wait_for(|s| *s) => return None,
        }
    }
}

/// The value of a store call `what` (the next turn tries again after a failure): a
/// failure is said once per run of them, and the recovery after.
fn said_once<T>(answer: Result<T, StoreError>, failing: &mut bool, what: &str) -> Option<T> {
    match answer {
        Ok(value) => {
            if std::mem::take(failing) {
                tracing::info!("{what} works again");
            }
            Some(value)
        }
        Err(e) => {
            if !std::mem::replace(failing, true) {
                tracing::warn!(error = %e, "{what} failed; will try again");
            }
            None
        }
    }
}

/// Whether the store's answer lets the relay vacuum the queue table; a role that may
/// not is told once, here.
fn permitted(answer: QueueVacuum) -> bool {
    match answer {
        QueueVacuum::Allowed => true,
        QueueVacuum::NotPermitted { role } => {
            tracing::warn!(
                %role,
                "the database role may not vacuum the relay's task queue table (relay_tasks), so \
                 its claims slow down as dead rows gather until autovacuum comes by: make the \
                 role the table's owner (or grant it MAINTAIN on PostgreSQL 17), or set \
                 RELAY_VACUUM_INTERVAL=0 to leave the table to autovacuum"
            );
            false
        }
        QueueVacuum::Unneeded => false,
    }
}
