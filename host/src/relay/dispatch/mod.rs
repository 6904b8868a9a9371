//! The publish stage: keeps up to `RELAY_MAX_IN_FLIGHT` publish requests in flight,
//! continuously, over the task queues it holds.
//!
//! It claims ready task queues (leases fenced by a token) and loads each one's
//! publishable envelopes in order, within a byte budget. A task has at most one envelope
//! in flight; when the publisher confirms it, the task's next envelope is ready at once.
//! When the publisher takes batches, the ready heads of different tasks that share a
//! topic go in one request (never two entries of one task: a batch need not keep its
//! order), within the publisher's limits as measured on the wire; a batch refused as a
//! whole is split in halves, down to single publishes, until each event has an answer
//! of its own, so no event is parked for its neighbours.
//!
//! A stalled store stops the publishing: while the writer is behind (a store has stalled
//! with outcomes waiting, or too many wait; see `writer.rs`), the stage neither claims nor
//! sends; what is in flight finishes, and it takes work again once a store has taken what
//! waits.
//!
//! A parked event (refused, or failing past the limits) holds its task on its topic
//! (`RELAY_ON_POISON=hold`): the task's other loaded envelopes there are dropped, and
//! the store does not load them until the operator resolves the hold.
//!
//! In parts: this loop moves data and does the I/O; `queues.rs` holds the task queues
//! and their leases; `settle.rs` decides, as a pure function, what each outcome means
//! (published, parked, or retried after a back-off); `report.rs` logs and counts it;
//! `writer.rs` stores outcomes, releases and lease renewals in batches; `pause.rs` counts
//! and reports the stage's pauses while the writer is behind; `pending.rs`
//! decodes each loaded envelope once; `spans.rs` traces each publish.

mod backoff;
mod pause;
mod pending;
mod queues;
mod report;
mod settle;
mod spans;
mod writer;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tracing::{Instrument, Span};
use uuid::Uuid;

use super::RelayContext;
use super::publish::{BatchOutcome, Batching, Outcome, Publisher};
use super::stage::{Signals, Stage};
use crate::domain::task::now;
use crate::instruments::{PUBLISH_DURATION, PUBLISH_IN_FLIGHT, SIDECAR_READY};
use crate::store::{Delivery, DeliveryRecord, HeldTask, Loaded, Release, StoreError};
use pause::Pauses;
use pending::{Corrupt, Pending};
use queues::{Queues, Send};
use settle::{History, Policy, Verdict};
use writer::{FLUSH_EVERY, Writer};

/// Most envelopes of one task loaded per claim; the rest follow once these are sent.
const LOADED_PER_TASK: i64 = 16;
/// Most task queues claimed at once.
const CLAIM_LIMIT: usize = 512;
/// Most body bytes of loaded envelopes the stage keeps; a claim loads within what is
/// left.
const LOAD_BUDGET: usize = 64 << 20;
/// A claim is not worth making with less budget left than this.
const MIN_CLAIM_BUDGET: usize = 1 << 20;

/// The publish stage: waits until the publisher is ready, then dispatches.
pub(super) struct PublishStage {
    publisher: Arc<dyn Publisher>,
}

impl PublishStage {
    pub(super) const NAME: &'static str = "publish";

    pub(super) fn new(publisher: Arc<dyn Publisher>) -> Self {
        Self { publisher }
    }
}

impl Stage for PublishStage {
    fn run(self: Box<Self>, ctx: Arc<RelayContext>, signals: Signals) -> BoxFuture<'static, ()> {
        async move {
            let mut stop = signals.stop.clone();
            tokio::select! {
                () = wait_until_ready(&ctx, self.publisher.as_ref()) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            Dispatcher::new(ctx, self.publisher).run(signals).await;
        }
        .boxed()
    }
}

/// Polls the publisher's readiness until it is ready; the API serves and the map stage
/// runs meanwhile.
async fn wait_until_ready(ctx: &RelayContext, publisher: &dyn Publisher) {
    let mut delay = Duration::from_millis(100);
    let mut warned = false;
    let started = Instant::now();
    metrics::gauge!(SIDECAR_READY).set(0.0);
    while !publisher.ready().await {
        ctx.health.observe_publisher(false);
        ctx.beat(PublishStage::NAME);
        if !warned && started.elapsed() > Duration::from_secs(10) {
            tracing::warn!(
                check = publisher.readiness_check(),
                "the publisher is not ready yet; events wait in the outbox"
            );
            warned = true;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    metrics::gauge!(SIDECAR_READY).set(1.0);
    ctx.health.observe_publisher(true);
    tracing::info!(publisher = publisher.system(), "the publisher is ready");
}

/// The answer to one publish request: the envelopes it carried (with their sends) and
/// what the publisher said.
struct Sent {
    sends: Vec<Send>,
    answer: BatchOutcome,
    topic: String,
    took: Duration,
}

/// What a claim brought back.
struct Claimed {
    token: i64,
    /// How many task queues the claim asked for.
    asked: usize,
    tasks: Vec<Uuid>,
    loaded: Loaded,
    lease_until: Instant,
}

struct Dispatcher {
    ctx: Arc<RelayContext>,
    publisher: Arc<dyn Publisher>,
    policy: Policy,
    queues: Queues,
    in_flight: FuturesUnordered<BoxFuture<'static, Sent>>,
    claiming: Option<BoxFuture<'static, Result<Claimed, StoreError>>>,
    /// Whether a claim is wanted: set by the map stage's wake-ups, a claim that filled
    /// up, room made after one, a task given back ready again, the poll timer.
    claim_wanted: bool,
    /// Whether the last claim took all it asked for or was cut by the byte budget (more
    /// may be ready): then a task drained makes room worth claiming at once.
    more_ready: bool,
    /// When the last claim started: while publishing, the timer claims only once a poll
    /// interval has passed since (a claim that finds nothing costs a write, on SQLite a
    /// turn of the one writer).
    last_claim: Instant,
    writer: Writer,
    /// The stage's pauses while the writer is behind.
    pauses: Pauses,
}

impl Dispatcher {
    fn new(ctx: Arc<RelayContext>, publisher: Arc<dyn Publisher>) -> Self {
        Self {
            policy: Policy::of(&ctx.config),
            writer: Writer::new(ctx.clone()),
            ctx,
            publisher,
            queues: Queues::default(),
            in_flight: FuturesUnordered::new(),
            claiming: None,
            claim_wanted: true,
            more_ready: true,
            last_claim: Instant::now(),
            pauses: Pauses::default(),
        }
    }

    fn max_in_flight(&self) -> usize {
        self.ctx.config.relay_max_in_flight as usize
    }

    fn batching(&self) -> Option<Batching> {
        self.publisher.batching()
    }

    /// Tasks held at most: enough to fill every request in flight twice over.
    fn max_held(&self) -> usize {
        self.max_in_flight() * self.batching().map_or(1, |b| b.max_entries) * 2
    }

    /// Runs until `stop` turns true, then lets requests in flight finish, stores every
    /// outcome and gives the held tasks back.
    async fn run(mut self, signals: Signals) {
        let Signals { wakes, mut stop } = signals;
        let poll = self.ctx.config.relay_poll_interval;
        loop {
            if *stop.borrow() {
                break;
            }
            self.ctx.beat(PublishStage::NAME);
            if !self.paused_for_store() {
                self.start_claim();
                self.start_sends();
            }
            let publishing = !self.in_flight.is_empty();
            self.writer
                .start(self.queues.len(), || self.queues.held(), publishing);
            let claiming = self.claiming.is_some();
            let storing = self.writer.is_storing();
            let idle = !claiming && !publishing && !self.writer.has_outcomes();
            tokio::select! {
                Some(sent) = self.in_flight.next(), if publishing => self.on_sent(sent),
                claimed = settle_slot(&mut self.claiming), if claiming => self.on_claimed(claimed),
                written = self.writer.stored(), if storing => {
                    if let Some(until) = written.renewed_until {
                        self.queues.renewed(&written.renewed, until);
                    }
                    for task in written.lost {
                        self.queues.release_lost(task);
                    }
                    self.claim_wanted |= written.ready_again;
                }
                () = wakes.envelopes.notified() => self.claim_wanted = true,
                () = tokio::time::sleep(if idle { poll } else { FLUSH_EVERY }) => {
                    if idle || self.last_claim.elapsed() >= poll {
                        self.claim_wanted = true;
                    }
                }
                _ = stop.changed() => {}
            }
        }
        self.shut_down().await;
    }

    /// Whether the stage takes no new work because the writer is behind (see
    /// `pause.rs`).
    fn paused_for_store(&mut self) -> bool {
        let writer = &self.writer;
        self.pauses
            .observe(writer.behind(), || (writer.waiting(), writer.storing_for()))
    }

    /// Claims ready task queues when there is room (tasks and bytes) and a reason to look.
    fn start_claim(&mut self) {
        let room = self
            .max_held()
            .saturating_sub(self.queues.len())
            .min(CLAIM_LIMIT);
        let budget = LOAD_BUDGET.saturating_sub(self.queues.bytes());
        if self.claiming.is_some() || !self.claim_wanted || room == 0 || budget < MIN_CLAIM_BUDGET {
            return;
        }
        self.claim_wanted = false;
        self.last_claim = Instant::now();
        let ctx = self.ctx.clone();
        self.claiming = Some(Box::pin(async move {
            let token: i64 = rand::random();
            let lease = ctx.config.relay_lease;
            let lease_until = Instant::now() + lease;
            let tasks = ctx
                .db
                .claim_tasks(&ctx.id, token, lease, room as i64)
                .await?;
            let loaded = if tasks.is_empty() {
                Loaded::default()
            } else {
                ctx.db
                    .load_envelopes(&tasks, LOADED_PER_TASK, budget)
                    .await?
            };
            Ok(Claimed {
                token,
                asked: room,
                tasks,
                loaded,
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
        // A full claim, or one the budget cut, suggests more is waiting; a claim that
        // found fewer than it asked for took all that was ready when it ran. A wake-up
        // that came while it ran may be for rows committed after it: it stands.
        self.more_ready = claimed.tasks.len() >= claimed.asked || !claimed.loaded.cut.is_empty();
        self.claim_wanted |= self.more_ready;
        let held = |task_id| HeldTask {
            task_id,
            token: claimed.token,
        };
        let mut queues: HashMap<Uuid, VecDeque<Pending>> = HashMap::new();
        let mut corrupt: Vec<Corrupt> = Vec::new();
        for row in claimed.loaded.envelopes {
            match Pending::decode(row) {
                Ok(e) => queues.entry(e.task_id).or_default().push_back(e),
                Err(c) => corrupt.push(c),
            }
        }
        for c in corrupt {
            // Never sent: parked at once with the reason, like a refusal (and holding
            // its topic: its envelopes there after it are not sent).
            tracing::error!(task_id = %c.task_id, seq = c.seq, reason = %c.reason, "a stored envelope cannot be sent; parked as a dead letter");
            if self.policy.hold
                && let Some(queue) = queues.get_mut(&c.task_id)
            {
                queue.retain(|e| e.seq < c.seq || e.topic != c.topic);
            }
            self.writer.record(DeliveryRecord {
                seq: c.seq,
                task: held(c.task_id),
                delivery: Delivery::Parked {
                    status: None,
                    code: None,
                    reason: c.reason,
                    hold: self.policy.hold,
                },
            });
        }
        for task_id in claimed.loaded.cut {
            // Loaded nothing for want of budget: ready again at once, for a later claim.
            queues.remove(&task_id);
            if !self.queues.holds(task_id) {
                self.writer
                    .release(held(task_id), Release::After(Duration::ZERO));
            }
        }
        for task_id in claimed.tasks {
            match queues.remove(&task_id) {
                Some(queue) => {
                    self.queues
                        .hold(task_id, claimed.token, queue, claimed.lease_until);
                }
                // Claimed again while this relay still holds it (its lease ran out in the
                // database): keep holding it, under the new lease.
                None if self.queues.holds(task_id) => {
                    self.queues
                        .hold(task_id, claimed.token, VecDeque::new(), claimed.lease_until);
                }
                // Nothing publishable: no pending envelope left, all held back, or an
                // earlier mutation of the task is still being mapped (its envelopes go
                // first).
                None => self.writer.release(
                    held(task_id),
                    Release::Drained {
                        else_after: self.ctx.config.relay_poll_interval,
                    },
                ),
            }
        }
    }

    /// Sends ready heads while there is room in flight.
    fn start_sends(&mut self) {
        let margin = self.publisher.timeout() + Duration::from_secs(1);
        while self.in_flight.len() < self.max_in_flight() {
            let Some(first) = self.queues.pop_sendable(margin) else {
                return;
            };
            let Some(batching) = self.batching() else {
                let send = self.queues.start(first);
                self.send_single(send);
                continue;
            };
            let batch = self.gather(first, batching, margin);
            let sends: Vec<Send> = batch.iter().map(|t| self.queues.start(*t)).collect();
            self.send(sends);
        }
    }

    /// `first` and other ready heads of its topic, one per task, within `batching` as
    /// measured on the wire.
    fn gather(&mut self, first: Uuid, batching: Batching, margin: Duration) -> Vec<Uuid> {
        let topic = self.queues.head(first).topic.clone();
        let mut tasks = vec![first];
        let mut skipped = Vec::new();
        while tasks.len() < batching.max_entries {
            let Some(next) = self.queues.pop_sendable(margin) else {
                break;
            };
            if self.queues.head(next).topic != topic {
                skipped.push(next);
                continue;
            }
            tasks.push(next);
            let events: Vec<_> = tasks
                .iter()
                .map(|t| self.queues.head(*t).outgoing(None))
                .collect();
            if self.publisher.batch_bytes(&events) > batching.max_bytes {
                tasks.pop();
                skipped.push(next);
                break;
            }
        }
        self.queues.unpop(&skipped);
        tasks
    }

    /// Sends `sends` (distinct tasks, one topic): one publish, or one batch.
    fn send(&mut self, mut sends: Vec<Send>) {
        if sends.len() == 1 {
            let send = sends.pop().expect("one send");
            self.send_single(send);
        } else {
            self.send_batch(sends);
        }
    }

    fn send_single(&mut self, (e, send): Send) {
        let publisher = self.publisher.clone();
        metrics::gauge!(PUBLISH_IN_FLIGHT).increment(1.0);
        let span = spans::publish(&e, publisher.system(), 1);
        let carried = spans::carried(&span, &e);
        self.in_flight.push(Box::pin(async move {
            let started = Instant::now();
            let outcome = publisher
                .publish(e.outgoing(carried))
                .instrument(span.clone())
                .await;
            spans::record(&span, &outcome);
            Sent {
                topic: e.topic.clone(),
                sends: vec![(e, send)],
                answer: BatchOutcome::PerEvent(vec![outcome]),
                took: started.elapsed(),
            }
        }));
    }

    fn send_batch(&mut self, sends: Vec<Send>) {
        debug_assert!(
            sends
                .iter()
                .map(|(e, _)| e.task_id)
                .collect::<std::collections::HashSet<_>>()
                .len()
                == sends.len(),
            "one entry per task"
        );
        let publisher = self.publisher.clone();
        let topic = sends[0].0.topic.clone();
        metrics::gauge!(PUBLISH_IN_FLIGHT).increment(1.0);
        // One span per envelope; a batch carries no per-event trace context.
        let spans: Vec<Span> = sends
            .iter()
            .map(|(e, _)| spans::publish(e, publisher.system(), sends.len()))
            .collect();
        self.in_flight.push(Box::pin(async move {
            let started = Instant::now();
            let events: Vec<_> = sends.iter().map(|(e, _)| e.outgoing(None)).collect();
            let answer = publisher.publish_batch(&topic, &events).await;
            for (i, span) in spans.iter().enumerate() {
                match &answer {
                    BatchOutcome::PerEvent(outcomes) => spans::record(span, &outcomes[i]),
                    BatchOutcome::Whole(outcome) => spans::record(span, outcome),
                }
            }
            Sent {
                sends,
                answer,
                topic,
                took: started.elapsed(),
            }
        }));
    }

    fn on_sent(&mut self, sent: Sent) {
        metrics::gauge!(PUBLISH_IN_FLIGHT).decrement(1.0);
        metrics::histogram!(PUBLISH_DURATION, "topic" => sent.topic.clone())
            .record(sent.took.as_secs_f64());
        match sent.answer {
            BatchOutcome::Whole(Outcome::Refused(failure)) if sent.sends.len() > 1 => {
                // Refused as a whole: no entry has its own answer yet. Ask again in
                // halves (down to single publishes), the tasks still in flight.
                tracing::warn!(
                    topic = %sent.topic, entries = sent.sends.len(), reason = %failure.reason,
                    "a batch was refused as a whole; sending it again in halves"
                );
                let mut first = sent.sends;
                let second = first.split_off(first.len() / 2);
                self.send(first);
                self.send(second);
            }
            BatchOutcome::Whole(outcome) => {
                for (e, send) in sent.sends {
                    self.on_outcome(&e, send, outcome.clone());
                }
            }
            BatchOutcome::PerEvent(outcomes) => {
                for ((e, send), outcome) in sent.sends.into_iter().zip(outcomes) {
                    self.on_outcome(&e, send, outcome);
                }
            }
        }
    }

    /// Carries out what `outcome` means for the head of `sent`'s task (see `settle.rs`).
    fn on_outcome(&mut self, sent: &Pending, send: u64, outcome: Outcome) {
        // A stale answer (the task dropped meanwhile, its lease lost, or claimed again
        // and sent again) records nothing: the send in flight, here or at the relay
        // that holds the task now, answers for the envelope, under the same id.
        let task_id = sent.task_id;
        let Some((task, e)) = self.queues.finish_head(task_id, sent.seq, send) else {
            return;
        };
        let history = History {
            attempts: e.attempts,
            first_failed_at: e.first_failed_at,
        };
        let verdict = settle::settle(outcome, history, &self.policy, now(), rand::random());
        report::report(&self.ctx, &e, &verdict);
        self.writer.record(DeliveryRecord {
            seq: e.seq,
            task,
            delivery: verdict.delivery(),
        });
        if verdict.holds() {
            self.queues.hold_topic(task_id, &e.topic);
        }
        if let Verdict::Retry { delay, .. } = verdict {
            self.queues.release(task_id);
            self.writer.release(task, Release::After(delay));
        } else if self.queues.next_or_release(task_id) {
            self.writer.release(
                task,
                Release::Drained {
                    else_after: Duration::ZERO,
                },
            );
            self.claim_wanted |= self.more_ready;
        }
    }

    /// Lets requests in flight finish, stores every outcome and gives the held tasks
    /// back (ready at once, so another replica may take them).
    async fn shut_down(mut self) {
        while let Some(sent) = self.in_flight.next().await {
            self.on_sent(sent);
        }
        if let Some(claim) = self.claiming.take() {
            let claimed = claim.await;
            self.on_claimed(claimed);
        }
        let held = self.queues.drain();
        self.writer.finish(held).await;
    }
}

/// Awaits the future in `slot` (which holds one: its `select!` branch is guarded) and
/// empties the slot.
async fn settle_slot<T>(slot: &mut Option<BoxFuture<'static, T>>) -> T {
    let out = slot.as_mut().expect("guarded by is_some").await;
    *slot = None;
    out
}
