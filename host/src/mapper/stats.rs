//! Per-mapper call statistics since the mapper was loaded, for the admin API and the
//! console (Prometheus has the same as `pakaura_mapper_*` series).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::error::MapFailure;

/// The failure kinds, as [`MapFailure::code`] names them.
const KINDS: [&str; 8] = [
    "trap",
    "deadline",
    "memory_limit",
    "rejected",
    "invalid_output",
    "too_many_events",
    "event_too_large",
    "schema_violation",
];

/// Counters one mapper updates on every call.
#[derive(Debug, Default)]
pub(crate) struct CallStats {
    calls: AtomicU64,
    failures: [AtomicU64; KINDS.len()],
    nanos: AtomicU64,
}

impl CallStats {
    /// Counts one call that took `took` and ended with `failure`, if it failed.
    pub(crate) fn record(&self, took: Duration, failure: Option<&MapFailure>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if let Some(kind) = failure.and_then(|f| KINDS.iter().position(|k| *k == f.code())) {
            self.failures[kind].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters now, with the `host.log` lines the mapper's budget dropped.
    pub(crate) fn snapshot(&self, log_lines_dropped: u64) -> CallStatsSnapshot {
        let calls = self.calls.load(Ordering::Relaxed);
        let nanos = self.nanos.load(Ordering::Relaxed);
        CallStatsSnapshot {
            calls,
            failures: KINDS
                .iter()
                .zip(&self.failures)
                .map(|(kind, n)| ((*kind).to_owned(), n.load(Ordering::Relaxed)))
                .collect(),
            log_lines_dropped,
            mean_call_micros: if calls == 0 {
                0.0
            } else {
                nanos as f64 / calls as f64 / 1000.0
            },
        }
    }
}

/// A mapper's calls since it was loaded.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CallStatsSnapshot {
    /// `map-mutation` calls made.
    pub calls: u64,
    /// Failed calls by kind: trap, deadline, memory_limit, rejected, invalid_output,
    /// too_many_events, event_too_large.
    pub failures: BTreeMap<String, u64>,
    /// Mean duration of a call, output validation included, in microseconds.
    pub mean_call_micros: f64,
    /// `host.log` lines dropped because the mapper logged more than its budget
    /// (a burst of 1,000 lines, then 100 a second).
    pub log_lines_dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_failures_are_counted_by_kind() {
        let stats = CallStats::default();
        stats.record(Duration::from_micros(10), None);
        stats.record(
            Duration::from_micros(30),
            Some(&MapFailure::Rejected("no".into())),
        );
        let s = stats.snapshot(0);
        assert_eq!(s.calls, 2);
        assert_eq!(s.failures["rejected"], 1);
        assert_eq!(s.failures["trap"], 0);
        assert!((s.mean_call_micros - 20.0).abs() < 1e-9);
    }
}
