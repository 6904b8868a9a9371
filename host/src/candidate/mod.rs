//! Candidate mappers: proving a new build of a mapper against what really happened
//! before it goes live, and taking it live (or back) in one step.
//!
//! A candidate is one component. Beside the live set it makes a *pair*: the live set
//! as it is, and the live set with the candidate in the place of the mapper of the same
//! name (or after the others, for a new name). Both sides are quiet copies
//! ([`MapperSet::quiet_copy`]): their calls count in no statistics or metrics of the
//! live mappers, and nothing they produce is stored or published.
//!
//! - [`compare`]: what the two sides make of one mutation, event by event and field by
//!   field, and the running totals ([`compare::Tally`]) and samples a report shows.
//! - [`history`]: a history diff, the pair run over a window of stored mutations.
//! - [`shadow`]: a shadow run, the pair run on what the relay maps, off its path.
//! - [`releases`]: promotions and rollbacks, kept in the database so every replica
//!   runs the same set.

pub mod compare;
pub mod history;
pub mod releases;
pub mod shadow;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::Mutation;
use crate::mapper::{LoadedMapper, MapError, MapFailure, MappedEvent, MapperSet};
use crate::store::OutboxRow;
use compare::{Comparison, Failure, compare};

/// What a candidate is and what it would replace.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CandidateInfo {
    /// The name from `describe`.
    pub name: String,
    pub version: String,
    pub sha256: String,
    /// Where it came from: its file, or the name it was uploaded under.
    pub file: String,
    pub topics: Vec<String>,
    /// The event types it declares schemas for.
    pub event_types: Vec<String>,
    /// The live mapper of the same name it would replace; none: it would be added.
    pub replaces: Option<Replaced>,
}

/// The live mapper a candidate would replace.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Replaced {
    pub version: String,
    pub sha256: String,
}

impl CandidateInfo {
    /// `candidate` as it would go into `live`.
    pub fn of(candidate: &LoadedMapper, live: &MapperSet) -> Self {
        Self {
            name: candidate.name().to_owned(),
            version: candidate.version().to_owned(),
            sha256: candidate.sha256().to_owned(),
            file: candidate.source().to_string(),
            topics: candidate.topics().map(ToString::to_string).collect(),
            event_types: candidate
                .schemas()
                .iter()
                .map(|(t, _)| t.to_owned())
                .collect(),
            replaces: live.get(candidate.name()).map(|m| Replaced {
                version: m.version().to_owned(),
                sha256: m.sha256().to_owned(),
            }),
        }
    }

    /// "default 2.0.0 (sha256 1a2b3c4d…) replacing 1.0.0" / "… new".
    pub fn describe(&self) -> String {
        let sha = self.sha256.get(..12).unwrap_or(&self.sha256);
        match &self.replaces {
            Some(r) => format!(
                "{} {} (sha256 {sha}…) replacing {} (sha256 {}…)",
                self.name,
                self.version,
                r.version,
                r.sha256.get(..12).unwrap_or(&r.sha256)
            ),
            None => format!(
                "{} {} (sha256 {sha}…), a mapper the live set does not have",
                self.name, self.version
            ),
        }
    }
}

/// The live set and the live set with a candidate in it, both quiet, side by side.
#[derive(Debug)]
pub struct Pair {
    pub info: CandidateInfo,
    live: MapperSet,
    candidate: MapperSet,
}

impl Pair {
    /// Pairs `candidate` with `live` (copies of both: calls count nowhere).
    pub fn new(live: &MapperSet, candidate: &LoadedMapper) -> Self {
        let info = CandidateInfo::of(candidate, live);
        let live = live.quiet_copy();
        let mut candidate = candidate.quiet_copy();
        candidate.freeze_clock();
        let candidate = live.replacing(candidate);
        Self {
            info,
            live,
            candidate,
        }
    }

    /// What both sides make of the mutation `row` holds. Synchronous and CPU-bound:
    /// call it from a blocking thread.
    pub fn compare_row(&self, row: &OutboxRow) -> Comparison {
        match row.decode() {
            Ok(mutation) => self.compare(&mutation),
            Err(e) => {
                let unreadable = Failure {
                    mapper: None,
                    reason: format!("stored mutation is unreadable: {e}"),
                };
                compare(Err(unreadable.clone()), Err(unreadable))
            }
        }
    }

    /// What both sides make of `mutation`.
    pub fn compare(&self, mutation: &Mutation) -> Comparison {
        let live = map(&self.live, mutation);
        let candidate = map(&self.candidate, mutation);
        compare(
            live.as_deref().map_err(Failure::of),
            candidate.as_deref().map_err(Failure::of),
        )
    }
}

/// Maps `mutation` with `set`; a deadline missed is tried once more, as the relay does
/// (on a starved host a healthy call can miss it).
fn map(set: &MapperSet, mutation: &Mutation) -> Result<Vec<MappedEvent>, MapError> {
    let result = set.map(mutation);
    if matches!(&result, Err(e) if matches!(e.kind, MapFailure::Deadline { .. })) {
        return set.map(mutation);
    }
    result
}

/// A candidate uploaded to this host (admin API or console) or found in
/// `MAPPERS_SHADOW_DIR`: loaded and checked, kept in memory until removed.
#[derive(Debug)]
pub struct Candidate {
    pub id: uuid::Uuid,
    /// The component, as loaded (a promotion copies it into the live set).
    pub mapper: LoadedMapper,
    /// Its bytes, which a promotion stores for every replica.
    pub bytes: Arc<[u8]>,
    pub uploaded_at: DateTime<Utc>,
    /// Who uploaded it (an admin token's name, or `MAPPERS_SHADOW_DIR`).
    pub uploaded_by: String,
}
