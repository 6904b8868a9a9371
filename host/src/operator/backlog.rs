//! The one backlog sampler: reads the relay's backlog from the database on a timer
//! (every [`IDLE_EVERY`], every [`WATCHED_EVERY`] while a console watches the flow),
//! sets the backlog gauges from each sample, and hands the latest sample to whoever
//! asks. So a Prometheus scrape never reads a table, and however many consoles are
//! open, the database answers one backlog query per interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};

use crate::domain::task::now;
use crate::instruments::{
    DEAD_LETTERS_OPEN, ENVELOPES_PENDING, HELD_EVENTS, HOLDS, OLDEST_HOLD, OUTBOX_PENDING,
    RELAY_LAG,
};
use crate::store::{Backlog, Db};

/// How often the backlog is sampled while nobody watches.
pub const IDLE_EVERY: Duration = Duration::from_secs(5);
/// How often while a console watches the flow.
pub const WATCHED_EVERY: Duration = Duration::from_secs(2);

/// One reading of the backlog.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: DateTime<Utc>,
    /// The backlog, or why the database could not be read.
    pub backlog: Result<Backlog, String>,
}

/// Samples the backlog; cheap to clone.
#[derive(Debug, Clone)]
pub struct BacklogSampler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    latest: watch::Sender<Option<Arc<Sample>>>,
    watchers: AtomicUsize,
    /// Wakes the sampler when the first watcher arrives, so it speeds up at once.
    watched: Notify,
}

/// While held, the sampler samples every [`WATCHED_EVERY`].
#[derive(Debug)]
pub struct Watching(Arc<Inner>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Default for BacklogSampler {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                latest: watch::channel(None).0,
                watchers: AtomicUsize::new(0),
                watched: Notify::new(),
            }),
        }
    }
}

impl BacklogSampler {
    /// The latest sample, if one was taken.
    pub fn latest(&self) -> Option<Arc<Sample>> {
        self.inner.latest.borrow().clone()
    }

    /// Every new sample, as it is taken.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Sample>>> {
        self.inner.latest.subscribe()
    }

    /// Asks for samples every [`WATCHED_EVERY`] while the guard lives.
    pub fn watch(&self) -> Watching {
        if self.inner.watchers.fetch_add(1, Ordering::AcqRel) == 0 {
            self.inner.watched.notify_one();
        }
        Watching(self.inner.clone())
    }

    /// Samples `db` until `stop` turns true.
    pub async fn run(self, db: Db, mut stop: watch::Receiver<bool>) {
        loop {
            self.sample(&db).await;
            let every = if self.inner.watchers.load(Ordering::Acquire) > 0 {
                WATCHED_EVERY
            } else {
                IDLE_EVERY
            };
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = self.inner.watched.notified() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    async fn sample(&self, db: &Db) {
        let at = now();
        let backlog = match db.backlog(at).await {
            Ok(b) => {
                metrics::gauge!(OUTBOX_PENDING).set(b.outbox_pending as f64);
                metrics::gauge!(ENVELOPES_PENDING).set(b.envelopes_pending as f64);
                metrics::gauge!(RELAY_LAG).set(b.lag.as_secs_f64());
                metrics::gauge!(DEAD_LETTERS_OPEN).set(b.dead_letters_open as f64);
                metrics::gauge!(HOLDS).set(b.holds as f64);
                metrics::gauge!(HELD_EVENTS).set(b.held_events as f64);
                metrics::gauge!(OLDEST_HOLD).set(b.oldest_hold.as_secs_f64());
                Ok(b)
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the backlog failed");
                Err("the database could not be read".to_owned())
            }
        };
        self.inner
            .latest
            .send_replace(Some(Arc::new(Sample { at, backlog })));
    }
}
