//! A reload an operator can trust: a preview of what the set in `MAPPERS_DIR` would
//! change (added, removed, changed, unchanged), a dry run of that set over the most
//! recent mutations compared with what the live set made of them (new failures, the
//! topics gained and lost), and the reload history (console, admin API, SIGHUP).
//! Nothing here changes the live set or calls it; `Operator::reload` changes it, after
//! the operator confirmed.

use serde::Serialize;
use std::collections::BTreeSet;
use uuid::Uuid;

use super::Operator;
use crate::mapper::diff::SetChanges;
use crate::mapper::{LoadError, MapperSet, ReloadRecord};
use crate::relay::map_row;
use crate::store::{RecentMutation, StoreError};

/// What reloading now would do.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReloadPreview {
    /// What the set on disk changes against the live one; `unchanged` keep their
    /// counters through the reload.
    pub changes: SetChanges,
    /// Whether the files on disk differ from the live set.
    pub files_differ: bool,
    pub dry_run: DryRun,
}

/// Both sets run over the most recent mutations (nothing stored or published).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct DryRun {
    /// Mutations the new set mapped.
    pub mutations: usize,
    /// How many of them the live set failed (mapping dead letters).
    pub live_failures: usize,
    /// How many the new set fails.
    pub new_failures: usize,
    /// Mutations the live set maps and the new one does not, with why (at most 20).
    pub newly_failing: Vec<DryRunFailure>,
    /// Topics the new set publishes to that the live one did not (on these mutations).
    pub new_topics: Vec<String>,
    /// Topics the live set published to that the new one no longer does.
    pub dropped_topics: Vec<String>,
}

/// A mutation the new set fails.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DryRunFailure {
    pub mutation_id: Uuid,
    pub mapper: Option<String>,
    pub reason: String,
}

/// Why a preview could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The set on disk would be refused (a reload would refuse it too).
    #[error("{0}")]
    Refused(#[from] LoadError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Most mutations a dry run maps.
pub const DRY_RUN_MAX: i64 = 500;

impl Operator {
    /// Previews a reload: loads the set on disk apart, compares it with the live one
    /// and runs both over the `sample` most recent mutations.
    pub async fn preview_reload(&self, sample: i64) -> Result<ReloadPreview, PreviewError> {
        let (rows, live_topics) = self.inner.db.recent_mutations(sample).await?;
        let registry = self.inner.mappers.clone();
        let source = self.inner.playground.event_source().to_owned();
        tokio::task::spawn_blocking(move || {
            let candidate = registry.load_candidate()?;
            let changes = SetChanges::between(&registry.list(), &candidate.listing());
            Ok(ReloadPreview {
                files_differ: !changes.is_empty(),
                dry_run: dry_run(&candidate, &rows, &live_topics, &source),
                changes,
            })
        })
        .await
        .map_err(|e| LoadError::Engine(format!("the preview task failed: {e}")))?
    }

    /// This process's reloads, the newest first.
    pub fn reload_history(&self) -> Vec<ReloadRecord> {
        self.inner.mappers.history()
    }
}

/// Runs `rows` through `candidate` and compares with what the live set made of them
/// (their state, and `live_topics`, the topics their envelopes went to).
fn dry_run(
    candidate: &MapperSet,
    rows: &[RecentMutation],
    live_topics: &BTreeSet<String>,
    source: &str,
) -> DryRun {
    let mut run = DryRun {
        mutations: rows.len(),
        ..DryRun::default()
    };
    let mut new_topics = BTreeSet::new();
    for m in rows {
        let live_failed = m.state == "dead";
        if live_failed {
            run.live_failures += 1;
        }
        match map_row(candidate, &m.row, source).result {
            Ok(envelopes) => new_topics.extend(envelopes.into_iter().map(|e| e.topic)),
            Err(e) => {
                run.new_failures += 1;
                if !live_failed && run.newly_failing.len() < 20 {
                    run.newly_failing.push(DryRunFailure {
                        mutation_id: m.row.id,
                        mapper: e.mapper().map(str::to_owned),
                        reason: e.to_string(),
                    });
                }
            }
        }
    }
    run.new_topics = new_topics.difference(live_topics).cloned().collect();
    run.dropped_topics = live_topics.difference(&new_topics).cloned().collect();
    run
}
