//! The publish stage: keeps up to `RELAY_MAX_IN_FLIGHT` publish requests in flight,
//! continuously, over the task queues it holds.
//!
//! It claims ready task queues (leases fenced by a token) and loads each one's
//! publishable envelopes in order. A task has at most one envelope in flight; when the
//! publisher confirms it, the task's next envelope is ready at once. When the publisher
//! takes batches, the ready heads of different tasks that share a topic go in one
//! request (never two entries of one task: a batch need not keep its order).
//!
//! In parts: this loop moves data and does the I/O; `queues.rs` holds the task queues
//! and their leases; `settle.rs` decides, as a pure function, what each outcome means
//! (published, parked, or retried after a back-off); `report.rs` logs and counts it;
//! `writer.rs` stores outcomes, releases and lease renewals in batches; `pending.rs`
//! decodes each loaded envelope once; `spans.rs` traces each publish.

mod backoff;
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

use super::publish::{Batching, Outcome, Publisher};
use super::stage::{Signals, Stage};
use super::{RelayContext, chrono_duration};
use crate::domain::task::now;
use crate::instruments::{PUBLISH_DURATION, PUBLISH_IN_FLIGHT, SIDECAR_READY};
use crate::store::{DeliveryRecord, HeldTask, Release, StoreError};
use pending::{Corrupt, Pending};
use queues::Queues;
use settle::{History, Policy, Verdict};
use writer::{FLUSH_EVERY, Writer};

/// Most envelopes of one task loaded per claim; the rest follow once these are sent.
const LOADED_PER_TASK: i64 = 16;
/// Most task queues claimed at once.
const CLAIM_LIMIT: usize = 512;

/// The publish stage: waits until the publisher is ready, then dispatches.
pub(super) struct PublishStage {
    publisher: Arc<dyn Publisher>,
}

impl PublishStage {
    pub(super) fn new(publisher: Arc<dyn Publisher>) -> Self {
        Self { publisher }
    }
}

impl Stage for PublishStage {
    fn run(self: Box<Self>, ctx: Arc<RelayContext>, signals: Signals) -> BoxFuture<'static, ()> {
        async move {
            let mut stop = signals.stop.clone();
            tokio::select! {
                () = wait_until_ready(self.publisher.as_ref()) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            Dispatcher::new(ctx, self.publisher).run(signals).await;
        }
        .boxed()
    }
}

/// Polls the publisher's readiness until it is ready; the API serves and the map stage
/// runs meanwhile.
async fn wait_until_ready(publisher: &dyn Publisher) {
    let mut delay = Duration::from_millis(100);
    let mut warned = false;
    let started = Instant::now();
    metrics::gauge!(SIDECAR_READY).set(0.0);
    while !publisher.ready().await {
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
    tracing::info!(publisher = publisher.system(), "the publisher is ready");
}

/// The answer to one publish request: per envelope, its task and what the publisher
/// said.
struct Sent {
    entries: Vec<(Uuid, i64)>,
    outcomes: Vec<Outcome>,
    topic: String,
    took: Duration,
}

/// What a claim brought back.
struct Claimed {
    token: i64,
    tasks: Vec<Uuid>,
    envelopes: Vec<crate::store::PendingRow>,
    lease_until: Instant,
}

struct Dispatcher {
    ctx: Arc<RelayContext>,
    publisher: Arc<dyn Publisher>,
    policy: Policy,
    queues: Queues,
    in_flight: FuturesUnordered<BoxFuture<'static, Sent>>,
    claiming: Option<BoxFuture<'static, Result<Claimed, StoreError>>>,
    /// Whether a claim is wanted: set by wake-ups, a claim that filled up, the poll timer.
    claim_wanted: bool,
    writer: Writer,
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
            self.start_claim();
            self.start_sends();
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
                        self.queues.release(task);
                    }
                }
                () = wakes.envelopes.notified() => self.claim_wanted = true,
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
            .saturating_sub(self.queues.len())
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
        let mut queues: HashMap<Uuid, VecDeque<Pending>> = HashMap::new();
        let mut corrupt: Vec<Corrupt> = Vec::new();
        for row in claimed.envelopes {
            match Pending::decode(row) {
                Ok(e) => queues.entry(e.task_id).or_default().push_back(e),
                Err(c) => corrupt.push(c),
            }
        }
        for c in corrupt {
            // Never sent: parked at once with the reason, like a refusal.
            tracing::error!(task_id = %c.task_id, seq = c.seq, reason = %c.reason, "a stored envelope cannot be sent; parked as a dead letter");
            self.writer.record(DeliveryRecord {
                seq: c.seq,
                task: HeldTask {
                    task_id: c.task_id,
                    token: claimed.token,
                },
                delivery: crate::store::Delivery::Parked {
                    status: None,
                    code: None,
                    reason: c.reason,
                },
            });
        }
        for task_id in claimed.tasks {
            match queues.remove(&task_id) {
                Some(queue) => {
                    self.queues
                        .hold(task_id, claimed.token, queue, claimed.lease_until);
                }
                // Nothing publishable: no pending envelope left, or an earlier mutation
                // of the task is still being mapped (its envelopes go first).
                None => self.writer.release(
                    HeldTask {
                        task_id,
                        token: claimed.token,
                    },
                    Release::Drained {
                        else_at: now() + chrono_duration(self.ctx.config.relay_poll_interval),
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
                self.send_single(first);
                continue;
            };
            // Gather other ready heads of the same topic (one per task).
            let topic = self.queues.head(first).topic.clone();
            let mut tasks = vec![first];
            let mut bytes = self.queues.head(first).body.get().len();
            let mut skipped = VecDeque::new();
            while tasks.len() < batching.max_entries {
                let Some(next) = self.queues.pop_sendable(margin) else {
                    break;
                };
                let head = self.queues.head(next);
                let size = head.body.get().len();
                if head.topic == topic && bytes + size <= batching.max_bytes {
                    bytes += size;
                    tasks.push(next);
                } else {
                    skipped.push_back(next);
                }
            }
            self.queues.unpop(skipped);
            if tasks.len() == 1 {
                self.send_single(first);
            } else {
                self.send_batch(topic, &tasks);
            }
        }
    }

    fn send_single(&mut self, task: Uuid) {
        let e = self.queues.start(task);
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
                entries: vec![(e.task_id, e.seq)],
                outcomes: vec![outcome],
                topic: e.topic,
                took: started.elapsed(),
            }
        }));
    }

    fn send_batch(&mut self, topic: String, tasks: &[Uuid]) {
        let envelopes: Vec<Pending> = tasks.iter().map(|t| self.queues.start(*t)).collect();
        let publisher = self.publisher.clone();
        metrics::gauge!(PUBLISH_IN_FLIGHT).increment(1.0);
        // One span per envelope; a batch carries no per-event trace context.
        let spans: Vec<Span> = envelopes
            .iter()
            .map(|e| spans::publish(e, publisher.system(), envelopes.len()))
            .collect();
        self.in_flight.push(Box::pin(async move {
            let started = Instant::now();
            let events: Vec<_> = envelopes.iter().map(|e| e.outgoing(None)).collect();
            let outcomes = publisher.publish_batch(&topic, &events).await;
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
            self.on_outcome(task_id, seq, outcome);
        }
    }

    /// Carries out what `outcome` means for the head of `task_id` (see `settle.rs`).
    fn on_outcome(&mut self, task_id: Uuid, seq: i64, outcome: Outcome) {
        // A task dropped meanwhile (its lease was lost) records nothing: the relay that
        // holds it now publishes the envelope again, under the same id.
        let Some((task, e)) = self.queues.finish_head(task_id, seq) else {
            return;
        };
        let history = History {
            attempts: e.attempts,
            first_failed_at: e.first_failed_at,
        };
        let verdict = settle::settle(outcome, history, &self.policy, now(), rand::random());
        report::report(&self.ctx, &e, &verdict);
        self.writer.record(DeliveryRecord {
            seq,
            task,
            delivery: verdict.delivery(),
        });
        if let Verdict::Retry { retry_at, .. } = verdict {
            self.queues.release(task_id);
            self.writer.release(task, Release::ReadyAt(retry_at));
        } else if self.queues.next_or_release(task_id) {
            self.writer
                .release(task, Release::Drained { else_at: now() });
            self.claim_wanted = true;
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
