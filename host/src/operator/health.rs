//! The delivery's health as an operator needs it in an incident, on the Flow page, in
//! the console's header and at `GET /admin/health`: is the publisher (the sidecar)
//! ready and since when, does the relay run (or which stage stalled, why it last
//! restarted), what did the last failed publish say, how many envelopes wait for a
//! retry and when the next is due, and what holds keep waiting.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::task::now;
use crate::relay::{PublisherReadiness, Relay, RelayRestart};
use crate::store::{Backlog, DeliveryHealth};

/// The whole picture at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub publisher: PublisherHealth,
    pub relay: RelayHealth,
    /// Publishing as the database records it (all replicas); absent when the database
    /// could not be read.
    pub delivery: Option<DeliveryHealth>,
    pub holds: HoldsHealth,
}

/// The publisher as this replica sees it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PublisherHealth {
    /// `dapr`, or `none` when nothing is published (`PUBLISHER=none`).
    pub system: &'static str,
    /// `ready`, `not_ready`, `unknown` (not checked yet) or `off` (nothing is published).
    pub status: &'static str,
    /// Since when its readiness check has answered so.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub since: Option<DateTime<Utc>>,
    /// When it was last checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub checked_at: Option<DateTime<Utc>>,
}

/// This replica's relay.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RelayHealth {
    /// `running`, `stalled` (a stage made no progress; it is being restarted) or
    /// `restarting` (after a panic, or before it first runs).
    pub status: &'static str,
    /// The stage found stalled, while it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalled_stage: Option<&'static str>,
    /// Restarts since the process started.
    pub restarts: u64,
    /// The last restart and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_restart: Option<RelayRestart>,
    /// Each stage and how long ago it last made progress.
    pub stages: Vec<StageBeat>,
}

/// One stage of the relay.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StageBeat {
    pub name: &'static str,
    /// Seconds since it last made progress.
    pub idle_seconds: f64,
}

/// What holds keep waiting (all replicas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HoldsHealth {
    /// Tasks held on a topic.
    pub held_tasks: i64,
    /// Events waiting behind holds.
    pub events_waiting: i64,
    /// Age of the oldest hold, in seconds (0 when none).
    pub oldest_seconds: f64,
}

impl Health {
    /// The health of `relay`, with `backlog` (the latest sample) and `delivery` (read
    /// from the database, `None` if that failed).
    pub fn of(relay: &Relay, backlog: Option<&Backlog>, delivery: Option<DeliveryHealth>) -> Self {
        let (restarts, last_restart) = relay.restarts();
        let stalled_stage = relay.stalled_stage();
        Self {
            publisher: publisher(relay.publisher_system(), relay.publisher_readiness()),
            relay: RelayHealth {
                status: match (stalled_stage, relay.is_running()) {
                    (Some(_), _) => "stalled",
                    (None, true) => "running",
                    (None, false) => "restarting",
                },
                stalled_stage,
                restarts,
                last_restart,
                stages: relay
                    .stage_beats()
                    .into_iter()
                    .map(|(name, idle)| StageBeat {
                        name,
                        idle_seconds: idle.as_secs_f64(),
                    })
                    .collect(),
            },
            delivery,
            holds: backlog.map_or_else(HoldsHealth::default, |b| HoldsHealth {
                held_tasks: b.holds,
                events_waiting: b.held_events,
                oldest_seconds: b.oldest_hold.as_secs_f64(),
            }),
        }
    }

    /// Reads what the database records and puts it together.
    pub async fn read(relay: &Relay, backlog: Option<&Backlog>) -> Self {
        let delivery = match relay.db().delivery_health(now()).await {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(error = %e, "reading the delivery's health failed");
                None
            }
        };
        Self::of(relay, backlog, delivery)
    }
}

/// The publisher's health from its system and last readiness check.
fn publisher(
    system: Option<&'static str>,
    readiness: Option<PublisherReadiness>,
) -> PublisherHealth {
    match (system, readiness) {
        (None, _) => PublisherHealth {
            system: "none",
            status: "off",
            since: None,
            checked_at: None,
        },
        (Some(system), None) => PublisherHealth {
            system,
            status: "unknown",
            since: None,
            checked_at: None,
        },
        (Some(system), Some(r)) => PublisherHealth {
            system,
            status: if r.ready { "ready" } else { "not_ready" },
            since: Some(r.since),
            checked_at: Some(r.checked_at),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_publisher_says_off_unknown_ready_or_not() {
        assert_eq!(publisher(None, None).status, "off");
        assert_eq!(publisher(Some("dapr"), None).status, "unknown");
        let at = DateTime::from_timestamp(100, 0).unwrap();
        let down = publisher(
            Some("dapr"),
            Some(PublisherReadiness {
                ready: false,
                since: at,
                checked_at: at,
            }),
        );
        assert_eq!((down.status, down.since), ("not_ready", Some(at)));
    }
}
