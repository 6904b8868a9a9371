//! The event flow every console watches: one snapshot per backlog sample (every
//! [`FLOW_INTERVAL`] while anyone watches, every 5 s otherwise), computed once and
//! fanned out to every subscriber through a `watch` channel.
//!
//! The recorder runs as long as the host: the last three minutes of snapshots and an
//! hour of points ([`FlowPoint`], one per [`LONG_EVERY`]) are kept, so a console that
//! connects (or reloads) starts with them. A snapshot is the latest backlog sample
//! ([`BacklogSampler`], the same reading the gauges show) and this replica's relay
//! counters ([`Relay::stats`]); rates come from the difference of two snapshots.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

use super::backlog::{BacklogSampler, Sample, WATCHED_EVERY, Watching};
use super::health::Health;
use crate::domain::task::now;
use crate::relay::{Relay, RelayStats};
use crate::store::{DeliveryHealth, Hold, OldestPending, TopicActivity};

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
    /// The publisher, the relay, the last publish failure, retries and holds (the
    /// database's part only while a console watches).
    pub health: Health,
    /// Per-topic rates, the oldest pending envelope, the tasks held longest (only while
    /// a console watches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<FlowDetail>,
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
    /// Events parked (refused by the publisher, or past the retry limits).
    pub parked: f64,
    /// Mutations that could not be mapped.
    pub mapping_failed: f64,
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
            mapping_failed: rate(before.mapping_failed, after.mapping_failed),
        }
    }
}

/// One point of the flow's long history (the last hour, one point per
/// [`LONG_EVERY`]): the backlog, the holds, and this replica's rates at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FlowPoint {
    #[serde(with = "crate::domain::task::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    pub outbox_pending: i64,
    pub envelopes_pending: i64,
    pub lag_seconds: f64,
    pub dead_letters_open: i64,
    pub held_tasks: i64,
    pub rates: FlowRates,
}

impl FlowPoint {
    fn of(s: &FlowSnapshot) -> Self {
        Self {
            at: s.at,
            outbox_pending: s.outbox_pending,
            envelopes_pending: s.envelopes_pending,
            lag_seconds: s.lag_seconds,
            dead_letters_open: s.dead_letters_open,
            held_tasks: s.health.holds.held_tasks,
            rates: s.rates,
        }
    }
}

/// One point of the long history per this interval.
pub const LONG_EVERY: Duration = Duration::from_secs(30);
/// Points kept: the last hour.
const LONG_HISTORY: usize = 120;

/// Computes a snapshot per backlog sample, keeps the recent ones and an hour of points,
/// and hands them out.
#[derive(Debug)]
pub struct FlowHub {
    sender: watch::Sender<Option<Arc<FlowSnapshot>>>,
    state: Mutex<HubState>,
}

#[derive(Debug, Default)]
struct HubState {
    history: VecDeque<Arc<FlowSnapshot>>,
    long: VecDeque<FlowPoint>,
    /// Held while anyone watches: the sampler samples every [`WATCHED_EVERY`].
    watching: Option<Watching>,
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
    /// Subscribes: the recent snapshots, then every new one; the sampler speeds up
    /// while anyone subscribes.
    pub fn subscribe(&self, sampler: &BacklogSampler) -> FlowSubscription {
        let mut state = self.lock();
        let updates = self.sender.subscribe();
        if state.watching.is_none() {
            state.watching = Some(sampler.watch());
        }
        FlowSubscription {
            history: state.history.iter().cloned().collect(),
            updates,
        }
    }

    /// The last hour, one point per [`LONG_EVERY`], oldest first.
    pub fn long_history(&self) -> Vec<FlowPoint> {
        self.lock().long.iter().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn watched(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    /// Keeps `snapshot` and hands it to the subscribers; stops speeding the sampler up
    /// when nobody listens any more.
    fn publish(&self, snapshot: FlowSnapshot) {
        let mut state = self.lock();
        if !self.watched() {
            state.watching = None;
        }
        let snapshot = Arc::new(snapshot);
        let due = state
            .long
            .back()
            .is_none_or(|p| (snapshot.at - p.at).to_std().unwrap_or_default() >= LONG_EVERY);
        if due {
            if state.long.len() == LONG_HISTORY {
                state.long.pop_front();
            }
            state.long.push_back(FlowPoint::of(&snapshot));
        }
        if state.history.len() == HISTORY {
            state.history.pop_front();
        }
        state.history.push_back(snapshot.clone());
        self.sender.send_replace(Some(snapshot));
    }
}

/// Records the flow: a snapshot per backlog sample (every 5 s, every 2 s while a
/// console watches), until `stop` turns true. What only a watching console shows (the
/// delivery's health from the database, per-topic rates, the oldest pending envelope,
/// the holds) is read only while someone watches.
pub async fn record(
    hub: Arc<FlowHub>,
    sampler: BacklogSampler,
    relay: Relay,
    mut stop: watch::Receiver<bool>,
) {
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
        let (delivery, detail) = if hub.watched() {
            (read_delivery(&relay).await, read_detail(&relay).await)
        } else {
            (None, None)
        };
        let mut snapshot = take(&sample, &relay, previous.as_ref(), delivery);
        snapshot.detail = detail;
        previous = Some((Instant::now(), snapshot.relay));
        hub.publish(snapshot);
    }
}

async fn read_delivery(relay: &Relay) -> Option<DeliveryHealth> {
    match relay.db().delivery_health(now()).await {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!(error = %e, "reading the delivery's health failed");
            None
        }
    }
}

/// The window per-topic rates are measured over.
const TOPIC_WINDOW: Duration = Duration::from_secs(60);
/// Held tasks a snapshot lists.
const LONGEST_HOLDS: i64 = 5;

async fn read_detail(relay: &Relay) -> Option<FlowDetail> {
    let db = relay.db();
    let since = now() - chrono::Duration::from_std(TOPIC_WINDOW).unwrap_or_default();
    let read = async {
        let topics = db.topic_activity(since).await?;
        let oldest_pending = db.oldest_pending().await?;
        let longest_holds = db.holds(LONGEST_HOLDS).await?;
        Ok::<_, crate::store::StoreError>(FlowDetail {
            window_seconds: TOPIC_WINDOW.as_secs_f64(),
            topics: topics
                .into_iter()
                .map(|t| TopicRate::of(t, TOPIC_WINDOW))
                .collect(),
            oldest_pending,
            longest_holds,
        })
    };
    match read.await {
        Ok(detail) => Some(detail),
        Err(e) => {
            tracing::warn!(error = %e, "reading the flow's detail failed");
            None
        }
    }
}

/// What a watching console sees beside the counts.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FlowDetail {
    /// The window the per-topic rates cover, in seconds.
    pub window_seconds: f64,
    /// Per topic (all replicas), the busiest first.
    pub topics: Vec<TopicRate>,
    /// The oldest envelope waiting to be published that no hold keeps back.
    pub oldest_pending: Option<OldestPending>,
    /// The tasks held longest (at most five).
    pub longest_holds: Vec<Hold>,
}

/// One topic's rates over the window.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TopicRate {
    pub topic: String,
    pub published: i64,
    pub parked: i64,
    /// Published per second.
    pub published_rate: f64,
    /// Parked (refused or expired) per second.
    pub parked_rate: f64,
}

impl TopicRate {
    fn of(t: TopicActivity, window: Duration) -> Self {
        let per_second = |n: i64| n as f64 / window.as_secs_f64();
        Self {
            published_rate: per_second(t.published),
            parked_rate: per_second(t.parked),
            topic: t.topic,
            published: t.published,
            parked: t.parked,
        }
    }
}

/// The snapshot of `sample` and `delivery`; rates relative to `previous`, if any.
fn take(
    sample: &Sample,
    relay: &Relay,
    previous: Option<&(Instant, RelayStats)>,
    delivery: Option<DeliveryHealth>,
) -> FlowSnapshot {
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
        health: Health::of(relay, sample.backlog.as_ref().ok(), delivery),
        detail: None,
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
