//! A shadow run: every mutation the relay maps is also given to a candidate [`Pair`],
//! on a thread of its own, and what the two sides make of it is compared and counted.
//! Nothing the candidate makes is stored or published.
//!
//! The relay never waits for the shadow. [`Shadow::offer`] hands a copy of the row
//! over a bounded queue and returns at once; when the queue is full, or the shadow has
//! used its CPU budget for the current second ([`CPU_BUDGET`] of one core), the row is
//! dropped and counted instead (`pakaura_shadow_dropped_total`). A shadow run on a busy
//! host therefore compares a sample of the traffic, never slows its publishing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::compare::{EventResult, MutationResult, Sample, Samples, Tally};
use super::{CandidateInfo, Pair};
use crate::instruments::{SHADOW_DROPPED, SHADOW_EVENTS, SHADOW_MUTATIONS};
use crate::store::OutboxRow;

/// Rows waiting for the shadow at most; past it, offers are dropped.
const QUEUE: usize = 1024;
/// The share of one core the shadow may use per second; past it, offers are dropped
/// until the next second.
pub const CPU_BUDGET: Duration = Duration::from_millis(250);
/// Latest divergent samples kept per kind.
const SAMPLES: usize = 5;

/// A running (or stopped) shadow run. Dropping the last handle ends its thread.
#[derive(Debug)]
pub struct Shadow {
    queue: SyncSender<OutboxRow>,
    state: Arc<State>,
}

/// What a shadow run has seen; kept after it stops, for its status.
#[derive(Debug)]
pub struct State {
    candidate_id: Uuid,
    info: CandidateInfo,
    started_at: DateTime<Utc>,
    started_by: String,
    stopped_at: Mutex<Option<DateTime<Utc>>>,
    running: AtomicBool,
    /// Set by the thread while it is over its CPU budget for the current second.
    over_budget: AtomicBool,
    offered: AtomicU64,
    dropped: AtomicU64,
    seen: Mutex<(Tally, Samples)>,
}

/// A shadow run's status (`GET /admin/shadow`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShadowStatus {
    pub candidate_id: Uuid,
    pub candidate: CandidateInfo,
    pub running: bool,
    #[serde(with = "crate::domain::task::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: DateTime<Utc>,
    pub started_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub stopped_at: Option<String>,
    /// Mutations the relay offered (compared + dropped + waiting).
    pub offered: u64,
    /// Mutations dropped because the shadow was behind or over its CPU budget.
    pub dropped: u64,
    #[serde(flatten)]
    pub tally: Tally,
    /// The latest divergent mutations of each kind.
    pub samples: Samples,
}

impl Shadow {
    /// Starts shadowing with `pair` for `started_by`.
    pub fn start(pair: Pair, candidate_id: Uuid, started_by: &str) -> std::io::Result<Self> {
        let (queue, rows) = std::sync::mpsc::sync_channel(QUEUE);
        let state = Arc::new(State {
            candidate_id,
            info: pair.info.clone(),
            started_at: Utc::now(),
            started_by: started_by.to_owned(),
            stopped_at: Mutex::new(None),
            running: AtomicBool::new(true),
            over_budget: AtomicBool::new(false),
            offered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            seen: Mutex::default(),
        });
        let worker = state.clone();
        std::thread::Builder::new()
            .name("pakaura-shadow".into())
            .spawn(move || work(&pair, &worker, &rows))?;
        tracing::info!(candidate = %state.info.describe(), started_by, "shadow run started");
        Ok(Self { queue, state })
    }

    /// Hands `row` (a mutation the relay just mapped) to the shadow, or drops it when
    /// the shadow is behind or over budget. Never blocks.
    pub fn offer(&self, row: &OutboxRow) {
        if !self.state.running.load(Ordering::Relaxed) {
            return;
        }
        self.state.offered.fetch_add(1, Ordering::Relaxed);
        let dropped = self.state.over_budget.load(Ordering::Relaxed)
            || matches!(
                self.queue.try_send(row.clone()),
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_))
            );
        if dropped {
            self.state.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(SHADOW_DROPPED).increment(1);
        }
    }

    /// Stops comparing; what it saw stays readable.
    pub fn stop(&self) {
        if self.state.running.swap(false, Ordering::Relaxed) {
            *lock(&self.state.stopped_at) = Some(Utc::now());
            tracing::info!(candidate = %self.state.info.describe(), "shadow run stopped");
        }
    }

    /// The candidate it shadows.
    pub fn candidate_id(&self) -> Uuid {
        self.state.candidate_id
    }

    pub fn is_running(&self) -> bool {
        self.state.running.load(Ordering::Relaxed)
    }

    /// What it saw so far.
    pub fn status(&self) -> ShadowStatus {
        let state = &self.state;
        let (tally, samples) = lock(&state.seen).clone();
        ShadowStatus {
            candidate_id: state.candidate_id,
            candidate: state.info.clone(),
            running: state.running.load(Ordering::Relaxed),
            started_at: state.started_at,
            started_by: state.started_by.clone(),
            stopped_at: lock(&state.stopped_at).map(|t| crate::domain::task::format_time(&t)),
            offered: state.offered.load(Ordering::Relaxed),
            dropped: state.dropped.load(Ordering::Relaxed),
            tally,
            samples,
        }
    }
}

impl Drop for Shadow {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The shadow's thread: compares each row it is given until the run stops or every
/// handle is gone, keeping to its CPU budget.
fn work(pair: &Pair, state: &State, rows: &Receiver<OutboxRow>) {
    let mut second = Instant::now();
    let mut used = Duration::ZERO;
    while state.running.load(Ordering::Relaxed) {
        // Woken at least every tenth of a second, so a budget spent is renewed even
        // while every offer is being dropped.
        let row = rows.recv_timeout(Duration::from_millis(100));
        if second.elapsed() >= Duration::from_secs(1) {
            second = Instant::now();
            used = Duration::ZERO;
            state.over_budget.store(false, Ordering::Relaxed);
        }
        let row = match row {
            Ok(row) => row,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let started = Instant::now();
        let comparison = pair.compare_row(&row);
        used += started.elapsed();
        if used >= CPU_BUDGET {
            state.over_budget.store(true, Ordering::Relaxed);
        }
        count(&comparison);
        let sample = Sample {
            mutation_id: row.id,
            task_id: row.task_id,
            action: row.action,
            at: crate::domain::task::format_time(&row.created_at),
            comparison,
        };
        let mut seen = lock(&state.seen);
        seen.0.add(&sample.comparison);
        if sample.comparison.differs() {
            seen.1.offer(&sample, SAMPLES, true);
        }
    }
}

fn count(c: &super::compare::Comparison) {
    let result = match c.result {
        MutationResult::Identical => "identical",
        MutationResult::Changed => "changed",
        MutationResult::Failed => "failed",
    };
    metrics::counter!(SHADOW_MUTATIONS, "result" => result).increment(1);
    for result in EventResult::ALL {
        let n = c.events.iter().filter(|e| e.result == result).count();
        if n > 0 {
            metrics::counter!(SHADOW_EVENTS, "result" => result.as_str()).increment(n as u64);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
