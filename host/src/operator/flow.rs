//! The live event flow every console watches: one snapshot per backlog sample (every
//! [`FLOW_INTERVAL`] while anyone watches), computed once and fanned out to every
//! subscriber through a `watch` channel.
//!
//! The ticker starts with the first subscriber and stops after a sample that finds
//! none left. A snapshot is the latest backlog sample ([`BacklogSampler`], the same
//! reading the gauges show) and this replica's relay counters ([`Relay::stats`]);
//! rates come from the difference of two snapshots.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

use super::backlog::{BacklogSampler, Sample, WATCHED_EVERY};
use crate::relay::{Relay, RelayStats};

/// How often a snapshot is taken while someone watches.
pub const FLOW_INTERVAL: Duration = WATCHED_EVERY;
/// Snapshots kept for a console that connects later (three minutes).
const HISTORY: usize = 90;

/// The event flow at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FlowSnapshot {
    /// When it was taken (RFC 3339 UTC).
    #[serde(with = "crate::domain::task::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// Mutations committed and not yet mapped (all replicas).
    pub outbox_pending: i64,
    /// Envelopes waiting to be published or retried (all replicas).
    pub envelopes_pending: i64,
    /// Age of the oldest pending mutation or envelope, in seconds (0 when none waits).
    pub lag_seconds: f64,
    /// Dead letters not yet replayed (all replicas).
    pub dead_letters_open: i64,
    /// Whether this replica's relay runs.
    pub relay_running: bool,
    /// This replica's relay counters since the process started.
    pub relay: RelayStats,
    /// This replica's rates over the last interval, per second.
    pub rates: FlowRates,
    /// Set when the database could not be read; the counts are then zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Events per second over the last interval (this replica).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FlowRates {
    pub mapped: f64,
    pub published: f64,
    pub retried: f64,
    pub parked: f64,
}

impl FlowRates {
    fn between(before: &RelayStats, after: &RelayStats, seconds: f64) -> Self {
        let rate = |a: u64, b: u64| {
            if seconds > 0.0 {
                b.saturating_sub(a) as f64 / seconds
            } else {
                0.0
            }
        };
        Self {
            mapped: rate(before.mapped, after.mapped),
            published: rate(before.published, after.published),
            retried: rate(before.retried, after.retried),
            parked: rate(before.parked, after.parked),
        }
    }
}

/// Computes snapshots while anyone subscribes, and hands them out.
#[derive(Debug)]
pub struct FlowHub {
    sender: watch::Sender<Option<Arc<FlowSnapshot>>>,
    state: Mutex<HubState>,
}

#[derive(Debug, Default)]
struct HubState {
    running: bool,
    history: VecDeque<Arc<FlowSnapshot>>,
}

impl Default for FlowHub {
    fn default() -> Self {
        Self {
            sender: watch::channel(None).0,
            state: Mutex::default(),
        }
    }
}

/// A subscription: the recent snapshots (oldest first), then every new one.
#[derive(Debug)]
pub struct FlowSubscription {
    pub history: Vec<Arc<FlowSnapshot>>,
    pub updates: watch::Receiver<Option<Arc<FlowSnapshot>>>,
}

impl FlowHub {
    /// Subscribes, starting the ticker on `sampler`'s samples and `relay`'s counters if
    /// it is not running; it ends when `stop` turns true or nobody subscribes any more.
    pub fn subscribe(
        self: &Arc<Self>,
        sampler: &BacklogSampler,
        relay: &Relay,
        stop: watch::Receiver<bool>,
    ) -> FlowSubscription {
        let mut state = self.lock();
        let updates = self.sender.subscribe();
        if !state.running {
            state.running = true;
            tokio::spawn(tick(self.clone(), sampler.clone(), relay.clone(), stop));
        }
        FlowSubscription {
            history: state.history.iter().cloned().collect(),
            updates,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes `snapshot`, or stops (returning false) when nobody listens.
    fn publish(&self, snapshot: FlowSnapshot) -> bool {
        let mut state = self.lock();
        if self.sender.receiver_count() == 0 {
            state.running = false;
            state.history.clear();
            return false;
        }
        let snapshot = Arc::new(snapshot);
        if state.history.len() == HISTORY {
            state.history.pop_front();
        }
        state.history.push_back(snapshot.clone());
        self.sender.send_replace(Some(snapshot));
        true
    }
}

/// The ticker: a snapshot per backlog sample while anyone listens.
async fn tick(
    hub: Arc<FlowHub>,
    sampler: BacklogSampler,
    relay: Relay,
    mut stop: watch::Receiver<bool>,
) {
    let _watching = sampler.watch();
    let mut samples = sampler.subscribe();
    let mut previous: Option<(Instant, RelayStats)> = None;
    loop {
        tokio::select! {
            changed = samples.changed() => if changed.is_err() { break },
            _ = stop.wait_for(|s| *s) => break,
        }
        let Some(sample) = samples.borrow_and_update().clone() else {
            continue;
        };
        let snapshot = take(&sample, &relay, previous.as_ref());
        previous = Some((Instant::now(), snapshot.relay));
        if !hub.publish(snapshot) {
            return;
        }
    }
    hub.lock().running = false;
}

/// The snapshot of `sample`; rates relative to `previous`, if any.
fn take(sample: &Sample, relay: &Relay, previous: Option<&(Instant, RelayStats)>) -> FlowSnapshot {
    let stats = relay.stats();
    let rates = previous.map_or_else(FlowRates::default, |(at, before)| {
        FlowRates::between(before, &stats, at.elapsed().as_secs_f64())
    });
    let mut snapshot = FlowSnapshot {
        at: sample.at,
        outbox_pending: 0,
        envelopes_pending: 0,
        lag_seconds: 0.0,
        dead_letters_open: 0,
        relay_running: relay.is_running(),
        relay: stats,
        rates,
        error: None,
    };
    match &sample.backlog {
        Ok(backlog) => {
            snapshot.outbox_pending = backlog.outbox_pending;
            snapshot.envelopes_pending = backlog.envelopes_pending;
            snapshot.lag_seconds = backlog.lag.as_secs_f64();
            snapshot.dead_letters_open = backlog.dead_letters_open;
        }
        Err(e) => snapshot.error = Some(e.clone()),
    }
    snapshot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_differences() {
        let before = RelayStats {
            mapped: 10,
            mapping_failed: 0,
            published: 100,
            retried: 0,
            parked: 1,
        };
        let after = RelayStats {
            published: 110,
            mapped: 14,
            ..before
        };
        let rates = FlowRates::between(&before, &after, 2.0);
        assert!((rates.published - 5.0).abs() < 1e-9);
        assert!((rates.mapped - 2.0).abs() < 1e-9);
        assert_eq!(rates.parked, 0.0);
        assert_eq!(FlowRates::between(&before, &after, 0.0).published, 0.0);
    }
}
