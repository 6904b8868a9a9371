//! The task queues the publish stage holds: per task, the envelopes loaded in publish
//! order, which send of its head is in flight, and the lease it holds them under; and
//! the order in which ready tasks get their turn.
//!
//! Every answer is matched to its send: a send is numbered, and an outcome counts only
//! for the send in flight of a task still held, so a late answer of a dropped and
//! re-claimed task never settles the wrong envelope. A task is in the ready order at
//! most once, so one request never carries the same task twice.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::pending::Pending;
use crate::store::HeldTask;

/// One task queue held by this relay.
struct Held {
    token: i64,
    /// Loaded envelopes not yet settled, in publish order; the front is in flight when
    /// `sending` is set.
    queue: VecDeque<Pending>,
    /// The number of the send of the head in flight.
    sending: Option<u64>,
    /// Whether the task is in the ready order.
    in_ready: bool,
    /// When this relay's lease ends, by its own clock.
    lease_until: Instant,
}

/// The held task queues.
#[derive(Default)]
pub(super) struct Queues {
    held: HashMap<Uuid, Held>,
    /// Tasks whose head may be sent, in turn order.
    ready: VecDeque<Uuid>,
    /// The number of the next send.
    next_send: u64,
    /// Body bytes of every loaded envelope.
    bytes: usize,
}

/// A send in flight: the envelope, and which send of its task it is.
pub(super) type Send = (Pending, u64);

impl Queues {
    /// How many tasks are held.
    pub(super) fn len(&self) -> usize {
        self.held.len()
    }

    /// The body bytes of every loaded envelope.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds `task` under the lease `token` (until `lease_until`), with its loaded
    /// envelopes in publish order; it is ready at once. A task already held (its lease
    /// ran out in the database and this relay claimed it again) keeps its queue and its
    /// send in flight, under the new lease: `queue` is dropped (the envelopes follow
    /// from the database once these are sent).
    pub(super) fn hold(
        &mut self,
        task: Uuid,
        token: i64,
        queue: VecDeque<Pending>,
        lease_until: Instant,
    ) {
        if let Some(held) = self.held.get_mut(&task) {
            held.token = token;
            held.lease_until = lease_until;
            return;
        }
        self.bytes += queue.iter().map(Pending::size).sum::<usize>();
        self.held.insert(
            task,
            Held {
                token,
                queue,
                sending: None,
                in_ready: true,
                lease_until,
            },
        );
        self.ready.push_back(task);
    }

    /// Whether `task` is held.
    pub(super) fn holds(&self, task: Uuid) -> bool {
        self.held.contains_key(&task)
    }

    /// The next ready task whose lease leaves `margin` for a publish; `None` when no
    /// task is ready, or the next one must wait for its lease to be renewed.
    pub(super) fn pop_sendable(&mut self, margin: Duration) -> Option<Uuid> {
        while let Some(task) = self.ready.pop_front() {
            let Some(held) = self.held.get_mut(&task) else {
                continue;
            };
            held.in_ready = false;
            if held.sending.is_some() || held.queue.is_empty() {
                continue;
            }
            if held.lease_until.saturating_duration_since(Instant::now()) < margin {
                // Not enough lease left to publish safely: wait for a renewal.
                held.in_ready = true;
                self.ready.push_back(task);
                return None;
            }
            return Some(task);
        }
        None
    }

    /// Puts tasks taken by [`Queues::pop_sendable`] but not sent back at the front, in
    /// their order.
    pub(super) fn unpop(&mut self, tasks: &[Uuid]) {
        for task in tasks.iter().rev() {
            if let Some(held) = self.held.get_mut(task)
                && !held.in_ready
            {
                held.in_ready = true;
                self.ready.push_front(*task);
            }
        }
    }

    /// The head of a held task.
    pub(super) fn head(&self, task: Uuid) -> &Pending {
        &self.held[&task].queue[0]
    }

    /// Starts a send of the head of `task`: the envelope and the send's number.
    pub(super) fn start(&mut self, task: Uuid) -> Send {
        let send = self.next_send;
        self.next_send += 1;
        let held = self.held.get_mut(&task).expect("a ready task is held");
        held.sending = Some(send);
        (held.queue[0].clone(), send)
    }

    /// Takes the head of `task` out of its queue when the answer of send `send` of
    /// envelope `seq` came: the task under its lease and the envelope. `None` when the
    /// answer is stale (the task was dropped meanwhile, its lease lost, or this is not
    /// the send in flight), or the head is not envelope `seq` (then the task is dropped:
    /// the relay that holds it next starts again from the database).
    pub(super) fn finish_head(
        &mut self,
        task: Uuid,
        seq: i64,
        send: u64,
    ) -> Option<(HeldTask, Pending)> {
        let held = self.held.get_mut(&task)?;
        if held.sending != Some(send) {
            return None;
        }
        if held.queue.front().map(|e| e.seq) != Some(seq) {
            tracing::error!(task_id = %task, seq, "publish outcome for an envelope that is not the task's head");
            self.release(task);
            return None;
        }
        let head = held.queue.pop_front().expect("the head was just seen");
        held.sending = None;
        self.bytes -= head.size();
        Some((
            HeldTask {
                task_id: task,
                token: held.token,
            },
            head,
        ))
    }

    /// The task is held on `topic`: its loaded envelopes there wait (they are dropped
    /// here, and the database does not load them while the hold lasts).
    pub(super) fn hold_topic(&mut self, task: Uuid, topic: &str) {
        if let Some(held) = self.held.get_mut(&task) {
            let before: usize = held.queue.iter().map(Pending::size).sum();
            held.queue.retain(|e| e.topic != topic);
            let after: usize = held.queue.iter().map(Pending::size).sum();
            self.bytes -= before - after;
        }
    }

    /// After a settled head: the task's next envelope is ready, or, with nothing left
    /// loaded, the task is given back (`true`).
    pub(super) fn next_or_release(&mut self, task: Uuid) -> bool {
        match self.held.get_mut(&task) {
            Some(held) if held.queue.is_empty() => {
                self.held.remove(&task);
                true
            }
            Some(held) => {
                if !held.in_ready {
                    held.in_ready = true;
                    self.ready.push_back(task);
                }
                false
            }
            None => false,
        }
    }

    /// Stops holding `task`.
    pub(super) fn release(&mut self, task: Uuid) {
        if let Some(held) = self.held.remove(&task) {
            self.bytes -= held.queue.iter().map(Pending::size).sum::<usize>();
        }
    }

    /// Stops holding `task` if it is still held under `token` (its lease was lost).
    pub(super) fn release_lost(&mut self, task: HeldTask) {
        if self
            .held
            .get(&task.task_id)
            .is_some_and(|h| h.token == task.token)
        {
            tracing::warn!(task_id = %task.task_id, "lease lost to another relay; dropping the task");
            self.release(task.task_id);
        }
    }

    /// Every held task, under its lease.
    pub(super) fn held(&self) -> Vec<HeldTask> {
        self.held
            .iter()
            .map(|(task_id, h)| HeldTask {
                task_id: *task_id,
                token: h.token,
            })
            .collect()
    }

    /// Extends the leases of `renewed` (those still held under the same token) to
    /// `until`.
    pub(super) fn renewed(&mut self, renewed: &[HeldTask], until: Instant) {
        for task in renewed {
            if let Some(held) = self.held.get_mut(&task.task_id)
                && held.token == task.token
            {
                held.lease_until = until;
            }
        }
    }

    /// Gives every held task up (at shutdown).
    pub(super) fn drain(&mut self) -> Vec<HeldTask> {
        let held = self.held();
        self.held.clear();
        self.ready.clear();
        self.bytes = 0;
        held
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::value::RawValue;

    use super::*;

    fn pending(task: Uuid, seq: i64, topic: &str) -> Pending {
        Pending {
            seq,
            id: Uuid::new_v4(),
            task_id: task,
            user_id: "u".into(),
            topic: topic.into(),
            event_type: "t".into(),
            partition_key: task.to_string(),
            body: Arc::from(RawValue::from_string("{}".into()).unwrap()),
            traceparent: None,
            parent: None,
            correlation_id: "c".into(),
            attempts: 0,
            first_failed_at: None,
        }
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn a_reclaimed_task_keeps_its_queue_and_is_ready_once() {
        let mut q = Queues::default();
        let t = Uuid::new_v4();
        q.hold(
            t,
            1,
            VecDeque::from([pending(t, 1, "a"), pending(t, 2, "a")]),
            later(),
        );
        q.hold(t, 2, VecDeque::from([pending(t, 1, "a")]), later());
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop_sendable(Duration::ZERO), Some(t));
        assert_eq!(q.pop_sendable(Duration::ZERO), None, "ready once");
        let (head, send) = q.start(t);
        assert_eq!(head.seq, 1);
        let (task, _) = q.finish_head(t, 1, send).unwrap();
        assert_eq!(task.token, 2, "the outcome goes under the new lease");
        assert!(!q.next_or_release(t), "envelope 2 is still loaded");
    }

    #[test]
    fn only_the_send_in_flight_settles_the_head() {
        let mut q = Queues::default();
        let t = Uuid::new_v4();
        q.hold(t, 1, VecDeque::from([pending(t, 1, "a")]), later());
        q.pop_sendable(Duration::ZERO);
        let (_, send) = q.start(t);
        assert!(q.finish_head(t, 1, send + 1).is_none(), "a stale answer");
        assert!(q.finish_head(t, 1, send).is_some());
        q.release_lost(HeldTask {
            task_id: t,
            token: 9,
        });
        assert!(q.holds(t), "lost under another token: still ours");
        q.release_lost(HeldTask {
            task_id: t,
            token: 1,
        });
        assert!(!q.holds(t));
    }

    #[test]
    fn a_held_topic_drops_its_loaded_envelopes_only() {
        let mut q = Queues::default();
        let t = Uuid::new_v4();
        let queue = VecDeque::from([pending(t, 2, "a"), pending(t, 3, "b"), pending(t, 4, "a")]);
        q.hold(t, 1, queue, later());
        let bytes = q.bytes();
        q.hold_topic(t, "a");
        assert_eq!(q.head(t).seq, 3);
        assert_eq!(q.bytes(), bytes / 3);
    }
}
