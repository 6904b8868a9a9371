//! The watchdog: each stage beats whenever it makes progress (a loop turn, a mutation
//! mapped, an outcome stored); a stage silent for longer than `RELAY_STALL_TIMEOUT` is
//! stalled. The watchdog then says so (log, `/readyz`) and ends the relay's run, so the
//! supervisor restarts it, as after a panic.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// How often the watchdog looks.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The stages' last beats, and the last stall seen.
#[derive(Debug)]
pub(super) struct Heartbeats {
    started: Instant,
    /// Per stage name: milliseconds since `started` at its last beat.
    beats: BTreeMap<&'static str, AtomicU64>,
    /// The stage found stalled, and when; cleared when the relay runs again.
    stalled: Mutex<Option<(&'static str, Instant)>>,
}

impl Heartbeats {
    /// Heartbeats for the stages named `stages`.
    pub(super) fn new(stages: &[&'static str]) -> Self {
        Self {
            started: Instant::now(),
            beats: stages.iter().map(|s| (*s, AtomicU64::new(0))).collect(),
            stalled: Mutex::new(None),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Stage `stage` made progress.
    pub(super) fn beat(&self, stage: &'static str) {
        if let Some(beat) = self.beats.get(stage) {
            beat.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// Every stage starts afresh (a new run of the relay).
    pub(super) fn reset(&self) {
        let now = self.now_ms();
        for beat in self.beats.values() {
            beat.store(now, Ordering::Relaxed);
        }
        *self.stalled.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The stage silent for longer than `bound`, if any.
    fn silent(&self, bound: Duration) -> Option<&'static str> {
        let now = self.now_ms();
        let bound = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
        self.beats
            .iter()
            .find(|(_, beat)| now.saturating_sub(beat.load(Ordering::Relaxed)) > bound)
            .map(|(stage, _)| *stage)
    }

    /// Each stage and how long ago it last beat.
    pub(super) fn ages(&self) -> Vec<(&'static str, Duration)> {
        let now = self.now_ms();
        self.beats
            .iter()
            .map(|(stage, beat)| {
                let ms = now.saturating_sub(beat.load(Ordering::Relaxed));
                (*stage, Duration::from_millis(ms))
            })
            .collect()
    }

    /// The stage found stalled, if the relay has not run again since.
    pub(super) fn stalled(&self) -> Option<&'static str> {
        self.stalled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|(stage, _)| stage)
    }

    /// Watches until a stage is silent for longer than `bound` (returning it) or `stop`
    /// turns true (returning `None`).
    pub(super) async fn watch(
        &self,
        bound: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> Option<&'static str> {
        loop {
            tokio::select! {
                () = tokio::time::sleep(CHECK_EVERY) => {}
                _ = stop.wait_for(|s| *s) => return None,
            }
            if let Some(stage) = self.silent(bound) {
                *self.stalled.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some((stage, Instant::now()));
                return Some(stage);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_stage_is_found_and_a_beat_clears_it() {
        let beats = Heartbeats::new(&["map", "publish"]);
        beats.reset();
        assert_eq!(beats.silent(Duration::from_secs(60)), None);
        std::thread::sleep(Duration::from_millis(30));
        beats.beat("map");
        assert_eq!(beats.silent(Duration::from_millis(20)), Some("publish"));
        beats.beat("publish");
        assert_eq!(beats.silent(Duration::from_millis(20)), None);
    }
}
