//! The batching writer: publish outcomes and lease releases are stored in batches, one
//! batch at a time ([`Db::record_deliveries`]), behind the publishing; every third of
//! `RELAY_LEASE` a batch also renews the leases of the tasks still held.
//!
//! A task's next envelope may leave before the previous one's outcome is stored, which
//! after a crash means a re-publish under the same id, never a reordering. How far
//! publishing may run ahead of the store is bounded: the writer is behind
//! ([`Writer::behind`]) when a store has stalled with a batch's worth waiting, or when
//! [`MAX_WAITING`] records wait, and then the stage takes no new work until a store takes
//! them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::domain::task::now;
use crate::relay::RelayContext;
use crate::store::{
    DeliveriesStored, DeliveryBatch, DeliveryRecord, HeldTask, Release, StoreError,
};

/// How long outcomes may wait before they are stored, when nothing else prompts it.
pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Outcomes that prompt a store at once.
const FLUSH_AT: usize = 512;
/// Records (outcomes and releases) that may wait to be stored at most. Without a bound,
/// a store that stalls (a lock wait, a slow plan) would let the stage publish on with
/// nothing recorded: every one of those events would go out again after a crash, and the
/// next transaction would carry all of them, which makes it slower still.
const MAX_WAITING: usize = 16 * FLUSH_AT;
/// A store running this long has stalled. Under load a store takes tens of milliseconds
/// and at times several hundred (a checkpoint, autovacuum); publishing goes on through
/// those, and stops only for a stall.
const STALLED_AFTER: Duration = Duration::from_secs(1);
/// Failed stores in a row after which a batch is narrowed down.
const SPLIT_AFTER: u32 = 3;

/// What storing a batch came to: the batch, when the leases it renews end (by this
/// relay's clock, counted from before the write), and the store's answer.
pub(super) type Stored = (DeliveryBatch, Instant, Result<DeliveriesStored, StoreError>);

/// What a stored batch means for the held tasks.
#[derive(Debug, Default)]
pub(super) struct Written {
    /// Tasks whose leases were renewed, and until when.
    pub(super) renewed: Vec<HeldTask>,
    pub(super) renewed_until: Option<Instant>,
    /// Tasks whose lease another relay holds now (under the token this relay had):
    /// stop holding them.
    pub(super) lost: Vec<HeldTask>,
    /// Whether a task given back is ready again at once (worth a claim).
    pub(super) ready_again: bool,
}

pub(super) struct Writer {
    ctx: Arc<RelayContext>,
    /// Outcomes and releases not yet stored.
    unstored: DeliveryBatch,
    storing: Option<BoxFuture<'static, Stored>>,
    /// Records in the batch being stored.
    storing_len: usize,
    last_store: Instant,
    /// When the store running now began, counting a failing batch's earlier tries.
    store_began: Instant,
    last_renew: Instant,
    /// Stores that failed in a row.
    failures: u32,
    /// Records set aside while a failing batch is narrowed down; stored after it.
    deferred: DeliveryBatch,
}

impl Writer {
    pub(super) fn new(ctx: Arc<RelayContext>) -> Self {
        Self {
            ctx,
            unstored: DeliveryBatch::default(),
            storing: None,
            storing_len: 0,
            last_store: Instant::now(),
            store_began: Instant::now(),
            last_renew: Instant::now(),
            failures: 0,
            deferred: DeliveryBatch::default(),
        }
    }

    pub(super) fn record(&mut self, record: DeliveryRecord) {
        self.unstored.deliveries.push(record);
    }

    pub(super) fn release(&mut self, task: HeldTask, release: Release) {
        self.unstored.releases.push((task, release));
    }

    /// Whether outcomes wait to be stored.
    pub(super) fn has_outcomes(&self) -> bool {
        !self.unstored.deliveries.is_empty() || !self.deferred.deliveries.is_empty()
    }

    /// Records waiting to be stored (not counting the batch being stored).
    pub(super) fn waiting(&self) -> usize {
        self.unstored.deliveries.len()
            + self.unstored.releases.len()
            + self.deferred.deliveries.len()
            + self.deferred.releases.len()
    }

    /// Whether the store is behind the publishing: a batch's worth waits behind a store
    /// that has run for [`STALLED_AFTER`] (a failing one's tries counted together), or
    /// [`MAX_WAITING`] records wait, the batch being stored included. Either way what
    /// waits is due, so a store starts as soon as the one running ends.
    pub(super) fn behind(&self) -> bool {
        let waiting = self.waiting();
        waiting + self.storing_len >= MAX_WAITING
            || (waiting >= FLUSH_AT && self.storing_for().is_some_and(|d| d >= STALLED_AFTER))
    }

    /// How long the store running now has been at it (a failing batch's earlier tries
    /// included), if one runs or is to be tried again.
    pub(super) fn storing_for(&self) -> Option<Duration> {
        (self.storing.is_some() || self.failures > 0).then(|| self.store_began.elapsed())
    }

    /// Whether a batch is being stored.
    pub(super) fn is_storing(&self) -> bool {
        self.storing.is_some()
    }

    /// Starts storing what waits when enough waits, it waited long enough or nothing
    /// is in flight (`publishing` false); every third of `RELAY_LEASE`, renews the
    /// leases of the tasks held (`held_count` of them, listed by `held`).
    pub(super) fn start(
        &mut self,
        held_count: usize,
        held: impl FnOnce() -> Vec<HeldTask>,
        publishing: bool,
    ) {
        if self.storing.is_some() {
            return;
        }
        let renew_due =
            self.last_renew.elapsed() >= self.ctx.config.relay_lease / 3 && held_count > 0;
        let waiting = self.unstored.deliveries.len() + self.unstored.releases.len();
        let due = waiting >= FLUSH_AT
            || (waiting > 0 && (self.last_store.elapsed() >= FLUSH_EVERY || !publishing));
        if !due && !renew_due {
            return;
        }
        let mut batch = std::mem::take(&mut self.unstored);
        batch.relay.clone_from(&self.ctx.id);
        if renew_due {
            self.last_renew = Instant::now();
            batch.renew = held();
        }
        self.last_store = Instant::now();
        if self.failures == 0 {
            self.store_began = self.last_store;
        }
        self.storing_len = batch.deliveries.len() + batch.releases.len();
        let ctx = self.ctx.clone();
        self.storing = Some(Box::pin(async move {
            let renewed_until = Instant::now() + ctx.config.relay_lease;
            let result = ctx
                .db
                .record_deliveries(&batch, now(), ctx.config.relay_lease)
                .await;
            if result.is_ok() {
                ctx.beat(super::PublishStage::NAME);
            }
            (batch, renewed_until, result)
        }));
    }

    /// Waits for the batch being stored (call only while [`Writer::is_storing`]).
    pub(super) async fn stored(&mut self) -> Written {
        let stored = self
            .storing
            .as_mut()
            .expect("a batch is being stored")
            .await;
        self.storing = None;
        self.storing_len = 0;
        self.on_stored(stored)
    }

    fn on_stored(&mut self, (batch, renewed_until, result): Stored) -> Written {
        match result {
            Ok(stored) => {
                self.failures = 0;
                if !self.deferred.deliveries.is_empty() || !self.deferred.releases.is_empty() {
                    let mut next = std::mem::take(&mut self.deferred);
                    next.deliveries.append(&mut self.unstored.deliveries);
                    next.releases.append(&mut self.unstored.releases);
                    self.unstored = next;
                }
                Written {
                    renewed: batch.renew,
                    renewed_until: Some(renewed_until),
                    lost: stored.lost,
                    ready_again: stored.ready_again > 0,
                }
            }
            Err(e) => {
                // Keep the outcomes and try again: every record is guarded, so storing
                // one twice changes nothing but an attempt count. A batch that keeps
                // failing is split, and a single record that keeps failing is given up
                // (its task's lease runs out and the envelope is published again under
                // its id), so one bad record never stalls the others.
                self.failures += 1;
                tracing::warn!(error = %e, outcomes = batch.deliveries.len(), failures = self.failures,
                    "storing publish outcomes failed; will retry");
                let mut retry = batch;
                retry.renew.clear();
                if self.failures >= SPLIT_AFTER {
                    retry = self.shed(retry);
                }
                retry.deliveries.append(&mut self.unstored.deliveries);
                retry.releases.append(&mut self.unstored.releases);
                self.unstored = retry;
                Written::default()
            }
        }
    }

    /// After repeated failures: keeps the first half of `batch` for the next try (the
    /// rest waits in `deferred`), or, down to one record, gives that record up.
    fn shed(&mut self, mut batch: DeliveryBatch) -> DeliveryBatch {
        let records = batch.deliveries.len() + batch.releases.len();
        if records <= 1 {
            tracing::error!(batch = ?batch, "a publish outcome cannot be stored; giving it up (the envelope will be published again under its id)");
            self.failures = 0;
            let mut next = std::mem::take(&mut self.deferred);
            next.renew.clear();
            return next;
        }
        let keep_deliveries = batch.deliveries.len().div_ceil(2);
        let deferred_deliveries = batch.deliveries.split_off(keep_deliveries);
        let deferred_releases = if batch.deliveries.is_empty() {
            batch.releases.split_off(batch.releases.len().div_ceil(2))
        } else {
            std::mem::take(&mut batch.releases)
        };
        let mut deferred = std::mem::take(&mut self.deferred);
        deferred.deliveries.splice(0..0, deferred_deliveries);
        deferred.releases.splice(0..0, deferred_releases);
        self.deferred = deferred;
        self.failures = SPLIT_AFTER - 1;
        batch
    }

    /// At shutdown: waits for the batch being stored, then stores what is left and
    /// gives `held` back (ready at once, so another replica may take them).
    pub(super) async fn finish(mut self, held: Vec<HeldTask>) {
        if self.storing.is_some() {
            self.stored().await;
        }
        for task in held {
            self.unstored
                .releases
                .push((task, Release::After(Duration::ZERO)));
        }
        let mut batch = std::mem::take(&mut self.deferred);
        batch.relay.clone_from(&self.ctx.id);
        batch.deliveries.append(&mut self.unstored.deliveries);
        batch.releases.append(&mut self.unstored.releases);
        if (!batch.deliveries.is_empty() || !batch.releases.is_empty())
            && let Err(e) = self
                .ctx
                .db
                .record_deliveries(&batch, now(), Duration::ZERO)
                .await
        {
            tracing::warn!(error = %e, "storing the last publish outcomes failed; they will be published again");
        }
    }
}
