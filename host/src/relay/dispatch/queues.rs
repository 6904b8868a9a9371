//! The task queues the publish stage holds: per task, the envelopes loaded in publish
//! order, whether its head is in flight, and the lease it holds them under; and the
//! order in which ready tasks get their turn.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::pending::Pending;
use crate::store::HeldTask;

/// One task queue held by this relay.
struct Held {
    token: i64,
    /// Loaded envelopes not yet settled, in publish order; the front is in flight when
    /// `in_flight` is set.
    queue: VecDeque<Pending>,
    in_flight: bool,
    /// When this relay's lease ends, by its own clock.
    lease_until: Instant,
}

/// The held task queues.
#[derive(Default)]
pub(super) struct Queues {
    held: HashMap<Uuid, Held>,
    /// Tasks whose head may be sent, in turn order.
    ready: VecDeque<Uuid>,
}

impl Queues {
    /// How many tasks are held.
    pub(super) fn len(&self) -> usize {
        self.held.len()
    }

    /// Holds `task` under the lease `token` (until `lease_until`), with its loaded
    /// envelopes in publish order; it is ready at once.
    pub(super) fn hold(
        &mut self,
        task: Uuid,
        token: i64,
        queue: VecDeque<Pending>,
        lease_until: Instant,
    ) {
        self.held.insert(
            task,
            Held {
                token,
                queue,
                in_flight: false,
                lease_until,
            },
        );
        self.ready.push_back(task);
    }

    /// The next ready task whose lease leaves `margin` for a publish; `None` when no
    /// task is ready, or the next one must wait for its lease to be renewed.
    pub(super) fn pop_sendable(&mut self, margin: Duration) -> Option<Uuid> {
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

    /// Puts tasks taken by [`Queues::pop_sendable`] but not sent back at the front, in
    /// their order.
    pub(super) fn unpop(&mut self, tasks: VecDeque<Uuid>) {
        let mut tasks = tasks;
        tasks.append(&mut self.ready);
        self.ready = tasks;
    }

    /// The head of a held task.
    pub(super) fn head(&self, task: Uuid) -> &Pending {
        &self.held[&task].queue[0]
    }

    /// Marks the head of `task` in flight and returns it.
    pub(super) fn start(&mut self, task: Uuid) -> Pending {
        let held = self.held.get_mut(&task).expect("a ready task is held");
        held.in_flight = true;
        held.queue[0].clone()
    }

    /// Takes the head of `task`, whose publish just ended, out of its queue: the task
    /// under its lease and the envelope; `None` when the task was dropped meanwhile (its
    /// lease was lost) or the head is not envelope `seq` (then the task is dropped: the
    /// relay that holds it next starts again from the database).
    pub(super) fn finish_head(&mut self, task: Uuid, seq: i64) -> Option<(HeldTask, Pending)> {
        let held = self.held.get_mut(&task)?;
        let Some(head) = held.queue.pop_front().filter(|e| e.seq == seq) else {
            tracing::error!(task_id = %task, seq, "publish outcome for an envelope that is not the task's head");
            self.held.remove(&task);
            return None;
        };
        held.in_flight = false;
        Some((
            HeldTask {
                task_id: task,
                token: held.token,
            },
            head,
        ))
    }

    /// After a settled head: the task's next envelope is ready, or, with nothing left
    /// loaded, the task is given back (`true`).
    pub(super) fn next_or_release(&mut self, task: Uuid) -> bool {
        match self.held.get(&task) {
            Some(held) if held.queue.is_empty() => {
                self.held.remove(&task);
                true
            }
            Some(_) => {
                self.ready.push_back(task);
                false
            }
            None => false,
        }
    }

    /// Stops holding `task`.
    pub(super) fn release(&mut self, task: Uuid) {
        self.held.remove(&task);
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
        held
    }
}
