//! The batching writer: publish outcomes and lease releases are stored in batches, one
//! batch at a time ([`Db::record_deliveries`]), behind the publishing; every third of
//! `RELAY_LEASE` a batch also renews the leases of the tasks still held.
//!
//! A task's next envelope may leave before the previous one's outcome is stored, which
//! after a crash means a re-publish under the same id, never a reordering.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use uuid::Uuid;

use crate::domain::task::now;
use crate::relay::{RelayContext, chrono_duration};
use crate::store::{
    DeliveriesStored, DeliveryBatch, DeliveryRecord, HeldTask, Release, StoreError,
};

/// How long outcomes may wait before they are stored, when nothing else prompts it.
pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Outcomes that prompt a store at once.
const FLUSH_AT: usize = 512;

/// What storing a batch came to: the batch, when the leases it renews end (by this
/// relay's clock, counted from before the write), and the store's answer.
pub(super) type Stored = (DeliveryBatch, Instant, Result<DeliveriesStored, StoreError>);

/// What a stored batch means for the held tasks.
#[derive(Debug, Default)]
pub(super) struct Written {
    /// Tasks whose leases were renewed, and until when.
    pub(super) renewed: Vec<HeldTask>,
    pub(super) renewed_until: Option<Instant>,
    /// Tasks whose lease another relay holds now: stop holding them.
    pub(super) lost: Vec<Uuid>,
}

pub(super) struct Writer {
    ctx: Arc<RelayContext>,
    /// Outcomes and releases not yet stored.
    unstored: DeliveryBatch,
    storing: Option<BoxFuture<'static, Stored>>,
    last_store: Instant,
    last_renew: Instant,
}

impl Writer {
    pub(super) fn new(ctx: Arc<RelayContext>) -> Self {
        Self {
            ctx,
            unstored: DeliveryBatch::default(),
            storing: None,
            last_store: Instant::now(),
            last_renew: Instant::now(),
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
        !self.unstored.deliveries.is_empty()
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
        if renew_due {
            self.last_renew = Instant::now();
            batch.renew = held();
        }
        self.last_store = Instant::now();
        let ctx = self.ctx.clone();
        self.storing = Some(Box::pin(async move {
            let renewed_until = Instant::now() + ctx.config.relay_lease;
            let stamp = now();
            let result = ctx
                .db
                .record_deliveries(
                    &batch,
                    stamp,
                    stamp + chrono_duration(ctx.config.relay_lease),
                )
                .await;
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
        self.on_stored(stored)
    }

    fn on_stored(&mut self, (batch, renewed_until, result): Stored) -> Written {
        match result {
            Ok(stored) => {
                for task in &stored.lost {
                    tracing::warn!(task_id = %task, "lease lost to another relay; dropping the task");
                }
                Written {
                    renewed: batch.renew,
                    renewed_until: Some(renewed_until),
                    lost: stored.lost,
                }
            }
            Err(e) => {
                // Keep the outcomes and try again: every record is guarded, so storing
                // one twice changes nothing but an attempt count.
                tracing::warn!(error = %e, outcomes = batch.deliveries.len(), "storing publish outcomes failed; will retry");
                let mut retry = batch;
                retry.renew.clear();
                retry.deliveries.append(&mut self.unstored.deliveries);
                retry.releases.append(&mut self.unstored.releases);
                self.unstored = retry;
                Written::default()
            }
        }
    }

    /// At shutdown: waits for the batch being stored, then stores what is left and
    /// gives `held` back (ready at once, so another replica may take them).
    pub(super) async fn finish(mut self, held: Vec<HeldTask>) {
        if self.storing.is_some() {
            self.stored().await;
        }
        let stamp = now();
        for task in held {
            self.unstored.releases.push((task, Release::ReadyAt(stamp)));
        }
        let batch = std::mem::take(&mut self.unstored);
        if (!batch.deliveries.is_empty() || !batch.releases.is_empty())
            && let Err(e) = self.ctx.db.record_deliveries(&batch, stamp, stamp).await
        {
            tracing::warn!(error = %e, "storing the last publish outcomes failed; they will be published again");
        }
    }
}
