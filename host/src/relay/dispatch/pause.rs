//! The publish stage's pauses for its store: while the writer is behind, the stage takes
//! no new work (see `writer.rs`).
//!
//! A store near its limit pauses the stage for a fraction of a second, many times a
//! minute, which a gauge scraped every 15 s would rarely catch. So each pause is also
//! recorded, when it ends, in `pakaura_publish_store_pause_seconds` (its count: how many,
//! its sum: how long in all), and the log reports them without a line per pause: a warning
//! when a pause starts, at most once a minute, with the pauses since the last warning; and
//! one when a pause that lasted a second or more ends.

use std::time::{Duration, Instant};

use crate::instruments::{PUBLISH_STORE_PAUSE, PUBLISH_WAITING_FOR_STORE};

/// The least time between two warnings that a pause started.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// A pause this long is reported when it ends.
const LONG_PAUSE: Duration = Duration::from_secs(1);

/// What the log should say about a change (returned for the tests; [`Pauses::observe`]
/// says it).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Report {
    Nothing,
    /// A pause started; `earlier` pauses (lasting `earlier_time` in all) since the last
    /// warning went unreported.
    Started {
        earlier: u64,
        earlier_time: Duration,
    },
    /// A long pause ended.
    Ended {
        lasted: Duration,
    },
}

#[derive(Debug, Default)]
pub(super) struct Pauses {
    since: Option<Instant>,
    last_warned: Option<Instant>,
    unreported: u64,
    unreported_time: Duration,
}

impl Pauses {
    /// Notes whether the writer is `behind` now, gauges, records and logs the change
    /// (`state`: the records waiting and how long the store has run, read only for a
    /// warning), and returns `behind`.
    pub(super) fn observe(
        &mut self,
        behind: bool,
        state: impl FnOnce() -> (usize, Option<Duration>),
    ) -> bool {
        if behind == self.since.is_some() {
            return behind;
        }
        match self.change(behind, Instant::now()) {
            Report::Nothing => {}
            Report::Started {
                earlier,
                earlier_time,
            } => {
                let (waiting, store_running) = state();
                tracing::warn!(
                    waiting,
                    store_running_ms = store_running.map(|d| d.as_millis() as u64),
                    earlier_pauses = earlier,
                    earlier_paused_ms = earlier_time.as_millis() as u64,
                    "publish outcomes are not being stored as fast as they come; claiming and \
                 sending pause until the store catches up"
                );
            }
            Report::Ended { lasted } => tracing::warn!(
                paused_ms = lasted.as_millis() as u64,
                "the store caught up; claiming and sending resume"
            ),
        }
        behind
    }

    /// The change `behind` at `now` makes, with its gauge and histogram.
    fn change(&mut self, behind: bool, now: Instant) -> Report {
        match (behind, self.since) {
            (true, None) => {
                self.since = Some(now);
                metrics::gauge!(PUBLISH_WAITING_FOR_STORE).set(1.0);
                if self
                    .last_warned
                    .is_some_and(|at| now.duration_since(at) < WARN_EVERY)
                {
                    return Report::Nothing;
                }
                self.last_warned = Some(now);
                Report::Started {
                    earlier: std::mem::take(&mut self.unreported),
                    earlier_time: std::mem::take(&mut self.unreported_time),
                }
            }
            (false, Some(since)) => {
                self.since = None;
                let lasted = now.duration_since(since);
                metrics::gauge!(PUBLISH_WAITING_FOR_STORE).set(0.0);
                metrics::histogram!(PUBLISH_STORE_PAUSE).record(lasted.as_secs_f64());
                if lasted >= LONG_PAUSE {
                    return Report::Ended { lasted };
                }
                self.unreported += 1;
                self.unreported_time += lasted;
                Report::Nothing
            }
            _ => Report::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_pauses_are_warned_of_once_a_minute_and_counted_in_the_next_warning() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = Pauses::default();
        assert_eq!(p.change(false, at(0)), Report::Nothing);
        assert_eq!(
            p.change(true, at(10)),
            Report::Started {
                earlier: 0,
                earlier_time: Duration::ZERO
            }
        );
        assert_eq!(p.change(true, at(20)), Report::Nothing, "still paused");
        assert_eq!(p.change(false, at(110)), Report::Nothing, "a short pause");
        for start in [1_000, 2_000, 3_000] {
            assert_eq!(
                p.change(true, at(start)),
                Report::Nothing,
                "warned < 1 min ago"
            );
            assert_eq!(p.change(false, at(start + 200)), Report::Nothing);
        }
        assert_eq!(
            p.change(true, at(61_000)),
            Report::Started {
                earlier: 4,
                earlier_time: Duration::from_millis(100 + 3 * 200)
            }
        );
        assert_eq!(
            p.change(false, at(62_500)),
            Report::Ended {
                lasted: Duration::from_millis(1_500)
            },
            "a long pause is reported when it ends"
        );
        assert_eq!(p.change(true, at(63_000)), Report::Nothing);
        assert_eq!(p.change(false, at(63_100)), Report::Nothing);
        assert_eq!(
            p.change(true, at(121_001)),
            Report::Started {
                earlier: 1,
                earlier_time: Duration::from_millis(100)
            },
            "a long pause's own report leaves it out of the next warning"
        );
    }
}
