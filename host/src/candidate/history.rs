//! A history diff: a candidate [`Pair`] run over a window of stored mutations, never
//! publishing, with progress a caller can read and a cancel it can set.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::compare::{Sample, Samples, Tally};
use super::{CandidateInfo, Pair};
use crate::store::{Db, HistoryWindow, StoreError};

/// Mutations read and mapped per step.
const PAGE: i64 = 200;

/// How far a history diff got; shared between the run and whoever watches it.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
    cancel: AtomicBool,
}

impl Progress {
    /// Mutations compared so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Mutations the window holds (known once the run has started).
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Asks the run to stop after the step in hand; its report says it was cancelled.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// What a history diff found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DiffReport {
    pub candidate: CandidateInfo,
    pub window: HistoryWindow,
    /// Whether the run was cancelled before the end of the window (the totals cover
    /// what it compared).
    pub cancelled: bool,
    #[serde(with = "crate::domain::task::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::domain::task::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub finished_at: DateTime<Utc>,
    /// Commit time of the first and last mutation compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_mutation_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_mutation_at: Option<String>,
    #[serde(flatten)]
    pub tally: Tally,
    /// The first mutations of each kind of difference.
    pub samples: Samples,
}

impl DiffReport {
    /// The command line's exit status: 0 identical, 1 differences, 2 failures.
    pub fn exit_status(&self) -> u8 {
        if self.tally.failed > 0 {
            2
        } else if self.tally.identical() {
            0
        } else {
            1
        }
    }
}

/// Runs `pair` over the mutations of `window`, `samples` of each kind of difference
/// kept, reporting into `progress`; stops early (reporting what it did) when
/// `progress` is cancelled.
pub async fn run(
    db: &Db,
    pair: Arc<Pair>,
    window: &HistoryWindow,
    samples: usize,
    progress: &Progress,
) -> Result<DiffReport, StoreError> {
    let started_at = Utc::now();
    let started = Instant::now();
    let range = db.history_range(window).await?;
    progress
        .total
        .store(range.count.max(0) as u64, Ordering::Relaxed);
    let mut report = DiffReport {
        candidate: pair.info.clone(),
        window: window.clone(),
        cancelled: false,
        started_at,
        finished_at: started_at,
        first_mutation_at: None,
        last_mutation_at: None,
        tally: Tally::default(),
        samples: Samples::default(),
    };
    let mut after = range.first - 1;
    loop {
        if progress.cancelled() {
            report.cancelled = true;
            break;
        }
        let rows = db.history_page(&range, after, PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        let pair = pair.clone();
        // Mapping is CPU-bound: one blocking thread per page.
        let compared = tokio::task::spawn_blocking(move || {
            rows.into_iter()
                .map(|row| {
                    let comparison = pair.compare_row(&row);
                    Sample {
                        mutation_id: row.id,
                        task_id: row.task_id,
                        action: row.action,
                        at: crate::domain::task::format_time(&row.created_at),
                        comparison,
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| std::io::Error::other(format!("the diff task failed: {e}")))
        .map_err(sqlx::Error::Io)?;
        for sample in &compared {
            report
                .first_mutation_at
                .get_or_insert_with(|| sample.at.clone());
            report.last_mutation_at = Some(sample.at.clone());
            report.tally.add(&sample.comparison);
            if sample.comparison.differs() {
                report.samples.offer(sample, samples, false);
            }
        }
        progress
            .done
            .fetch_add(compared.len() as u64, Ordering::Relaxed);
    }
    report.finished_at = Utc::now();
    tracing::debug!(
        candidate = %report.candidate.name,
        mutations = report.tally.mutations,
        changed = report.tally.changed,
        failed = report.tally.failed,
        cancelled = report.cancelled,
        took_ms = started.elapsed().as_millis() as u64,
        "history diff finished"
    );
    Ok(report)
}
