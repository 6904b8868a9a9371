//! The publish stage: keeps up to `RELAY_MAX_IN_FLIGHT` publish requests in flight,
//! continuously, over the task queues it holds.
//!
//! It claims ready task queues (leases fenced by a token) and loads each one's
//! publishable envelopes in order. A task has at most one envelope in flight; when Dapr
//! confirms it, the task's next envelope is ready at once. With `DAPR_BULK_PUBLISH`, the
//! ready heads of different tasks that share a topic go in one bulk request (never two
//! entries of one task: Dapr does not order the entries of a request).
//!
//! Outcomes are recorded in batches by one writer at a time ([`Db::record_deliveries`]),
//! behind the publishing: a task's next envelope may leave before the previous one's
//! outcome is stored, which after a crash means a re-publish under the same id, never a
//! reordering. A retryable failure gives the task back with its back-off as the time it
//! is ready again; a refusal (4xx), or a failure past `RELAY_MAX_ATTEMPTS` or
//! `RELAY_MAX_AGE`, parks the envelope as a dead letter and the task goes on.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::{Notify, watch};
use tracing::{Instrument, Span};
use uuid::Uuid;

use super::backoff;
use super::publisher::{BulkEntry, Outcome, Publisher};
use super::spans;
use super::{Counters, RelayContext, chrono_duration};
use crate::domain::task::now;
use crate::instruments::{DEAD_LETTERS, PUBLISH_DURATION, PUBLISH_IN_FLIGHT, PUBLISHES};
use crate::store::{
    DeliveriesStored, Delivery, DeliveryBatch, DeliveryRecord, HeldTask, PendingEnvelope, Release,
    StoreError,
};

/// Most envelopes of one task loaded per claim; the rest follow once these are sent.
const LOADED_PER_TASK: i64 = 16;
/// Most task queues claimed at once.
const CLAIM_LIMIT: usize = 512;
/// How long outcomes may wait before they are stored, when nothing else prompts it.
const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Outcomes that prompt a store at once.
const FLUSH_AT: usize = 512;

/// One task queue held by this relay.
struct Held {
    token: i64,
    /// Loaded envelopes not yet sent, in publish order; the front is in flight when
    /// `in_flight` is set.
    queue: VecDeque<PendingEnvelope>,
    in_flight: bool,
    /// When this relay's lease ends, by its own clock.
    lease_until: Instant,
}

/// The answer to one publish request: per envelope, its task and what Dapr said.
struct Sent {
    entries: Vec<(Uuid, i64)>,
    outcomes: Vec<Outcome>,
    topic: String,
    took: Duration,
}

/// What storing a batch came to: the batch, when the leases it renews end (by this
/// relay's clock, counted from before the write), and the store's answer.
type Stored = (DeliveryBatch, Instant, Result<DeliveriesStored, StoreError>);

/// What a claim brought back.
struct Claimed {
    token: i64,
    tasks: Vec<Uuid>,
    envelopes: Vec<PendingEnvelope>,
    lease_until: Instant,
}

pub(super) struct Dispatcher {
    ctx: Arc<RelayContext>,
    publisher: Publisher,
    held: HashMap<Uuid, Held>,
    ready: VecDeque<Uuid>,
    in_flight: FuturesUnordered<BoxFuture<'static, Sent>>,
    claiming: Option<BoxFuture<'static, Result<Claimed, StoreError>>>,
    /// Whether a claim is wanted: set by wake-ups, a claim that filled up, the poll timer.
    claim_wanted: bool,
    /// Outcomes not yet stored.
    unstored: DeliveryBatch,
    storing: Option<BoxFuture<'static, Stored>>,
    last_store: Instant,
    last_renew: Instant,
}

impl Dispatcher {
    pub(super) fn new(ctx: Arc<RelayContext>, publisher: Publisher) -> Self {
        Self {
            ctx,
            publisher,
            held: HashMap::new(),
            ready: VecDeque::new(),
            in_flight: FuturesUnordered::new(),
            claiming: None,
            claim_wanted: true,
            unstored: DeliveryBatch::default(),
            storing: None,
            last_store: Instant::now(),
            last_renew: Instant::now(),
        }
    }

    fn max_in_flight(&self) -> usize {
        self.ctx.config.relay_max_in_flight as usize
    }

    /// Tasks held at most: enough to fill every request in flight twice over.
    fn max_held(&self) -> usize {
        self.max_in_flight() * self.ctx.bulk_entries().unwrap_or(1) * 2
    }

    /// Runs until `stop` turns true, then lets requests in flight finish, stores every
    /// outcome and gives the held tasks back.
    pub(super) async fn run(mut self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        let poll = self.ctx.config.relay_poll_interval;
        loop {
            if *stop.borrow() {
                break;
            }
            self.start_claim();
            self.start_sends();
            self.start_store();
            let claiming = self.claiming.is_some();
            let storing = self.storing.is_some();
            let publishing = !self.in_flight.is_empty();
            let idle = !claiming && !publishing && self.unstored.deliveries.is_empty();
            tokio::select! {
                Some(sent) = self.in_flight.next(), if publishing => self.on_sent(sent),
                claimed = settle(&mut self.claiming), if claiming => self.on_claimed(claimed),
                stored = settle(&mut self.storing), if storing => self.on_stored(stored),
                () = wake.notified() => self.claim_wanted = true,
                () = tokio::time::sleep(if idle { poll } else { FLUSH_EVERY }) => {
                    self.claim_wanted = true;
                }
                _ = stop.changed() => {}
            }
        }
        self.shut_down().await;
    }

    /// Claims ready task queues when there is room and a reason to look.
    fn start_claim(&mut self) {
        let room = self
            .max_held()
            .saturating_sub(self.held.len())
            .min(CLAIM_LIMIT);
        if self.claiming.is_some() || !self.claim_wanted || room == 0 {
            return;
        }
        self.claim_wanted = false;
        let ctx = self.ctx.clone();
        self.claiming = Some(Box::pin(async move {
            let token: i64 = rand::random();
            let started = now();
            let lease = chrono_duration(ctx.config.relay_lease);
            let lease_until = Instant::now() + ctx.config.relay_lease;
            let tasks = ctx
                .db
                .claim_tasks(&ctx.id, token, started, started + lease, room as i64)
                .await?;
            let envelopes = if tasks.is_empty() {
                Vec::new()
            } else {
                ctx.db.load_envelopes(&tasks, LOADED_PER_TASK).await?
            };
            Ok(Claimed {
                token,
                tasks,
                envelopes,
                lease_until,
            })
        }));
    }

    fn on_claimed(&mut self, claimed: Result<Claimed, StoreError>) {
        let claimed = match claimed {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "claiming task queues failed; will retry");
                return;
            }
        };
        // A full claim suggests more is waiting.
        self.claim_wanted = !claimed.tasks.is_empty();
        let mut queues: HashMap<Uuid, VecDeque<PendingEnvelope>> = HashMap::new();
        for e in claimed.envelopes {
            queues.entry(e.task_id).or_default().push_back(e);
        }
        for task_id in claimed.tasks {
            let held = HeldTask {
                task_id,
                token: claimed.token,
            };
            match queues.remove(&task_id) {
                Some(queue) => {
                    self.held.insert(
                        task_id,
                        Held {
                            token: claimed.token,
                            queue,
                            in_flight: false,
                            lease_until: claimed.lease_until,
                        },
                    );
                    self.ready.push_back(task_id);
                }
                // Nothing publishable: no pending envelope left, or an earlier mutation
                // of the task is still being mapped (its envelopes go first).
                None => self.unstored.releases.push((
                    held,
                    Release::Drained {
                        else_at: now() + chrono_duration(self.ctx.config.relay_poll_interval),
                    },
                )),
            }
        }
    }

    /// Sends ready heads while there is room in flight.
    fn start_sends(&mut self) {
        let margin = self.ctx.publish_timeout() + Duration::from_secs(1);
        while self.in_flight.len() < self.max_in_flight() {
            let Some(first) = self.pop_sendable(margin) else {
                return;
            };
            let Some(bulk) = self.ctx.bulk_entries() else {
                self.send_single(first);
                continue;
            };
            // Gather other ready heads of the same topic (one per task).
            let topic = self.head(first).topic.clone();
            let mut tasks = vec![first];
            let mut bytes = self.head(first).body.len();
            let mut skipped = VecDeque::new();
            while tasks.len() < bulk {
                let Some(next) = self.pop_sendable(margin) else {
                    break;
                };
                let head = self.head(next);
                if head.topic == topic && bytes + head.body.len() <= self.ctx.bulk_max_bytes() {
                    bytes += head.body.len();
                    tasks.push(next);
                } else {
                    skipped.push_back(next);
                }
            }
            skipped.append(&mut self.ready);
            self.ready = skipped;
            if tasks.len() == 1 {
                self.send_single(first);
            } else {
                self.send_bulk(topic, &tasks);
            }
        }
    }

    /// The next ready task whose lease leaves time for a publish.
    fn pop_sendable(&mut self, margin: Duration) -> Option<Uuid> {
        while let Some(task) = self.ready.pop_front() {
            let Some(held) = self.held.get(&task) else {
                continue;
            };
            if held.in_flight || held.queue.is_empty() {
                continue;
            }
            if held.lease_until.saturating_duration_since(Instant::now()) < margin {
                // Not enough lease left to publish safely: wait for a renewal.
                self.ready.push_back(task);
                return None;
            }
            return Some(task);
        }
        None
    }

    fn head(&self, task: Uuid) -> &PendingEnvelope {
        &self.held[&task].queue[0]
    }

    fn mark_in_flight(&mut self, task: Uuid) -> PendingEnvelope {
        let held = self.held.get_mut(&task).expect("a ready task is held");
        held.in_flight = true;
        held.queue[0].clone()
    }

    fn send_single(&mut self, task: Uuid) {
        let e = self.mark_in_flight(task);
        let publisher = self.publisher.clone();
        metrics::gauge!(PUBLISH_IN_FLIGHT).increment(1.0);
        let span = spans::publish(&e, 1);
        let traceparent = spans::header(&span, &e);
        self.in_flight.push(Box::pin(async move {
            let started = Instant::now();
            let outcome = publisher
                .publish(&e.topic, &e.partition_key, e.body, traceparent.as_deref())
                .instrument(span.clone())
                .await;
            spans::record(&span, &outcome);
            Sent {
                entries: vec![(e.task_id, e.seq)],
                outcomes: vec![outcome],
                topic: e.topic,
                took: started.elapsed(),
            }
        }));
    }

    fn send_bulk(&mut self, topic: String, tasks: &[Uuid]) {
        let envelopes: Vec<PendingEnvelope> =
            tasks.iter().map(|t| self.mark_in_flight(*t)).collect();
        let publisher = self.publisher.clone();
        metrics::gauge!(PUBLISH_IN_FLIGHT).increment(1.0);
        // One span per envelope; a bulk request carries no per-entry trace header.
        let spans: Vec<Span> = envelopes
            .iter()
            .map(|e| spans::publish(e, envelopes.len()))
            .collect();
        self.in_flight.push(Box::pin(async move {
            let started = Instant::now();
            let entries: Vec<BulkEntry<'_>> = envelopes
                .iter()
                .map(|e| BulkEntry {
                    id: &e.id,
                    body: &e.body,
                    partition_key: &e.partition_key,
                })
                .collect();
            let outcomes = publisher.publish_bulk(&topic, &entries).await;
            for (span, outcome) in spans.iter().zip(&outcomes) {
                spans::record(span, outcome);
            }
            Sent {
                entries: envelopes.iter().map(|e| (e.task_id, e.seq)).collect(),
                outcomes,
                topic,
                took: started.elapsed(),
            }
        }));
    }

    fn on_sent(&mut self, sent: Sent) {
        metrics::gauge!(PUBLISH_IN_FLIGHT).decrement(1.0);
        metrics::histogram!(PUBLISH_DURATION, "topic" => sent.topic.clone())
            .record(sent.took.as_secs_f64());
        for ((task_id, seq), outcome) in sent.entries.into_iter().zip(sent.outcomes) {
            self.on_outcome(task_id, seq, &sent.topic, outcome);
        }
    }

    fn on_outcome(&mut self, task_id: Uuid, seq: i64, topic: &str, outcome: Outcome) {
        // A task dropped meanwhile (its lease was lost) records nothing: the relay that
        // holds it now publishes the envelope again, under the same id.
        let Some(held) = self.held.get_mut(&task_id) else {
            return;
        };
        let Some(e) = held.queue.pop_front().filter(|e| e.seq == seq) else {
            tracing::error!(%task_id, seq, "publish outcome for an envelope that is not the task's head");
            self.drop_task(task_id);
            return;
        };
        held.in_flight = false;
        let task = HeldTask {
            task_id,
            token: held.token,
        };
        let label = |outcome: &'static str| {
            metrics::counter!(PUBLISHES, "topic" => topic.to_owned(), "outcome" => outcome)
                .increment(1);
        };
        let delivery = match outcome {
            Outcome::Published(status) => {
                label("published");
                Counters::add(&self.ctx.stats.published, 1);
                tracing::debug!(
                    event_type = %e.event_type, topic = %e.topic, task_id = %e.task_id, user_id = %e.user_id,
                    correlation_id = %e.correlation_id, dapr_status = status, envelope_id = %e.id, "event published"
                );
                Delivery::Published { status }
            }
            Outcome::Refused {
                status,
                code,
                reason,
            } => {
                label("refused");
                Counters::add(&self.ctx.stats.parked, 1);
                tracing::error!(
                    event_type = %e.event_type, topic = %e.topic, task_id = %e.task_id, user_id = %e.user_id,
                    correlation_id = %e.correlation_id, dapr_status = status, envelope_id = %e.id, reason = %reason,
                    "Dapr refused the event (configuration error); parked as a dead letter"
                );
                metrics::counter!(DEAD_LETTERS, "kind" => "publish").increment(1);
                Delivery::Parked {
                    status: Some(status),
                    code,
                    reason,
                }
            }
            Outcome::Retry {
                status,
                code,
                reason,
            } => match self.ctx.gives_up(&e) {
                Some(limit) => {
                    label("expired");
                    Counters::add(&self.ctx.stats.parked, 1);
                    let reason = format!("{limit}; last error: {reason}");
                    tracing::error!(
                        event_type = %e.event_type, topic = %e.topic, task_id = %e.task_id, user_id = %e.user_id,
                        correlation_id = %e.correlation_id, dapr_status = status.map(i64::from), envelope_id = %e.id,
                        reason = %reason, "publish kept failing; parked as a dead letter"
                    );
                    metrics::counter!(DEAD_LETTERS, "kind" => "publish").increment(1);
                    Delivery::Parked {
                        status,
                        code,
                        reason,
                    }
                }
                None => {
                    label("retry");
                    Counters::add(&self.ctx.stats.retried, 1);
                    let attempt = u32::try_from(e.attempts + 1).unwrap_or(u32::MAX);
                    let delay = backoff::delay(
                        attempt,
                        self.ctx.config.relay_retry_base,
                        self.ctx.config.relay_retry_max,
                    );
                    tracing::warn!(
                        event_type = %e.event_type, topic = %e.topic, task_id = %e.task_id, user_id = %e.user_id,
                        correlation_id = %e.correlation_id, dapr_status = status.map(i64::from), envelope_id = %e.id,
                        attempt, retry_in_ms = delay.as_millis() as u64, reason = %reason, "publish failed; will retry"
                    );
                    self.unstored.deliveries.push(DeliveryRecord {
                        seq,
                        task,
                        delivery: Delivery::Failed {
                            status,
                            code,
                            error: reason,
                        },
                    });
                    self.unstored
                        .releases
                        .push((task, Release::ReadyAt(now() + chrono_duration(delay))));
                    self.held.remove(&task_id);
                    return;
                }
            },
        };
        self.unstored.deliveries.push(DeliveryRecord {
            seq,
            task,
            delivery,
        });
        let held = &self.held[&task_id];
        if held.queue.is_empty() {
            self.held.remove(&task_id);
            self.unstored
                .releases
                .push((task, Release::Drained { else_at: now() }));
            self.claim_wanted = true;
        } else {
            self.ready.push_back(task_id);
        }
    }

    fn drop_task(&mut self, task_id: Uuid) {
        self.held.remove(&task_id);
    }

    /// Stores the unstored outcomes when enough wait or they waited long enough, and
    /// renews the leases of held tasks every third of `RELAY_LEASE`.
    fn start_store(&mut self) {
        if self.storing.is_some() {
            return;
        }
        let renew_due =
            self.last_renew.elapsed() >= self.ctx.config.relay_lease / 3 && !self.held.is_empty();
        let waiting = self.unstored.deliveries.len() + self.unstored.releases.len();
        let due = waiting >= FLUSH_AT
            || (waiting > 0
                && (self.last_store.elapsed() >= FLUSH_EVERY || self.in_flight.is_empty()));
        if !due && !renew_due {
            return;
        }
        let mut batch = std::mem::take(&mut self.unstored);
        if renew_due {
            self.last_renew = Instant::now();
            batch.renew = self
                .held
                .iter()
                .map(|(task_id, h)| HeldTask {
                    task_id: *task_id,
                    token: h.token,
                })
                .collect();
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

    fn on_stored(&mut self, (batch, renewed_until, result): Stored) {
        match result {
            Ok(stored) => {
                for task in &batch.renew {
                    if let Some(held) = self.held.get_mut(&task.task_id)
                        && held.token == task.token
                    {
                        held.lease_until = renewed_until;
                    }
                }
                for task in stored.lost {
                    tracing::warn!(task_id = %task, "lease lost to another relay; dropping the task");
                    self.drop_task(task);
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
            }
        }
    }

    /// Lets requests in flight finish, stores every outcome and gives back the tasks
    /// still held (ready at once, so another replica may take them).
    async fn shut_down(mut self) {
        while let Some(sent) = self.in_flight.next().await {
            self.on_sent(sent);
        }
        if let Some(claim) = self.claiming.take() {
            let claimed = claim.await;
            self.on_claimed(claimed);
        }
        let stamp = now();
        let held: Vec<HeldTask> = self
            .held
            .drain()
            .map(|(task_id, h)| HeldTask {
                task_id,
                token: h.token,
            })
            .collect();
        for task in held {
            self.unstored.releases.push((task, Release::ReadyAt(stamp)));
        }
        if let Some(storing) = self.storing.take() {
            let stored = storing.await;
            self.on_stored(stored);
        }
        let batch = std::mem::take(&mut self.unstored);
        if (!batch.deliveries.is_empty() || !batch.releases.is_empty())
            && let Err(e) = self.ctx.db.record_deliveries(&batch, stamp, stamp).await
        {
            tracing::warn!(error = %e, "storing the last publish outcomes failed; they will be published again");
        }
    }
}

/// Awaits the future in `slot` (which holds one: its `select!` branch is guarded) and
/// empties the slot.
async fn settle<T>(slot: &mut Option<BoxFuture<'static, T>>) -> T {
    let out = slot.as_mut().expect("guarded by is_some").await;
    *slot = None;
    out
}
