//! The identity provider's keys (`JWT_JWKS_URL`): fetched at start-up, kept in memory,
//! refreshed in the background, and once more when a token names a key the cached set
//! lacks.
//!
//! Requests read the set through a snapshot (`RwLock<Arc<KeySet>>`, held for a clone), so
//! verification never waits for the network. Refreshes run off the request path in a task
//! the application owns ([`Jwks::spawn`], stopped at shutdown), on the schedule of
//! `schedule.rs`. The one exception is an unknown `kid`, which makes the request wait for a
//! single fetch: at most one per `JWT_JWKS_COOLDOWN`, shared by every request that arrives
//! meanwhile, bounded by `JWT_JWKS_TIMEOUT` ([`Jwks::refresh_for_unknown_key`]). A flood
//! of tokens with made-up key ids therefore costs the provider one request per cooldown.
//!
//! A failed fetch never drops the cached keys: they stay in use, the failure shows in
//! `pakaura_jwks_refreshes_total{outcome="failure"}` and in `/readyz`'s detail, and the
//! fetch is retried with back-off. Only a host that has never fetched the set is not ready.

mod fetch;
mod keys;
mod schedule;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::instruments::{JWKS_KEYS, JWKS_LAST_SUCCESS, JWKS_REFRESHES};
pub use fetch::{FetchError, JwksUrl};
use fetch::{Fetched, Fetcher};
pub use keys::KeySet;
use keys::Skipped;
use schedule::Bounds;

/// How the key set is fetched and refreshed (the `JWT_JWKS_*` settings).
#[derive(Debug, Clone)]
pub struct JwksSettings {
    pub url: JwksUrl,
    /// Extra trusted CA certificates (PEM), for a provider with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Longest one fetch may take.
    pub timeout: Duration,
    /// Bounds of the periodic refresh (see `schedule.rs`).
    pub refresh_min: Duration,
    pub refresh_max: Duration,
    /// Least time between two refreshes caused by unknown key ids.
    pub cooldown: Duration,
}

/// Why a fetch happened (the `trigger` label of the refresh counter).
#[derive(Debug, Clone, Copy)]
enum Trigger {
    Startup,
    Periodic,
    UnknownKey,
}

impl Trigger {
    const ALL: [Trigger; 3] = [Trigger::Startup, Trigger::Periodic, Trigger::UnknownKey];

    fn label(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Periodic => "periodic",
            Trigger::UnknownKey => "unknown_kid",
        }
    }
}

/// The state of the key set, for `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct JwksStatus {
    /// Keys held now.
    pub keys: usize,
    /// When the set was last fetched successfully; `None`: never (not ready).
    pub last_success: Option<DateTime<Utc>>,
    /// When the current run of failed fetches began; `None` while the last one succeeded.
    pub failing_since: Option<DateTime<Utc>>,
    /// Why the last fetch failed, while failing.
    pub last_error: Option<String>,
    /// Failed fetches in a row.
    failures: u32,
    /// The wait before the next periodic fetch.
    next: Duration,
}

/// The provider's key set; cheap to clone.
#[derive(Clone)]
pub struct Jwks {
    inner: Arc<Inner>,
}

struct Inner {
    fetcher: Fetcher,
    bounds: Bounds,
    cooldown: Duration,
    keys: RwLock<Arc<KeySet>>,
    status: Mutex<JwksStatus>,
    /// When the last unknown-`kid` refresh began; held across that fetch, so concurrent
    /// requests wait for it and share its result.
    gate: tokio::sync::Mutex<Option<Instant>>,
}

impl Jwks {
    /// Sets up the fetcher (an unreadable `ca_file` is an error) and fetches the set once.
    /// A provider that does not answer does not stop start-up: the host starts without
    /// keys (not ready) and keeps trying in the background.
    pub async fn start(settings: JwksSettings) -> Result<Self, String> {
        let jwks = Self::new(settings)?;
        jwks.refresh(Trigger::Startup).await;
        Ok(jwks)
    }

    /// A set with no keys yet.
    fn new(settings: JwksSettings) -> Result<Self, String> {
        let fetcher = Fetcher::new(settings.url, settings.ca_file.as_deref(), settings.timeout)?;
        for trigger in Trigger::ALL {
            for outcome in ["success", "failure"] {
                metrics::counter!(JWKS_REFRESHES, "outcome" => outcome, "trigger" => trigger.label())
                    .absolute(0);
            }
        }
        metrics::gauge!(JWKS_KEYS).set(0.0);
        metrics::gauge!(JWKS_LAST_SUCCESS).set(0.0);
        Ok(Self {
            inner: Arc::new(Inner {
                fetcher,
                bounds: Bounds {
                    min: settings.refresh_min,
                    max: settings.refresh_max,
                },
                cooldown: settings.cooldown,
                keys: RwLock::new(Arc::new(KeySet::default())),
                status: Mutex::new(JwksStatus::default()),
                gate: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// A set holding the keys of `document`, as if just fetched (for unit tests).
    #[cfg(test)]
    pub(crate) fn holding(document: &serde_json::Value) -> Self {
        let settings = JwksSettings {
            url: JwksUrl::parse("http://127.0.0.1:9/jwks").expect("a loopback URL"),
            ca_file: None,
            timeout: Duration::from_secs(1),
            refresh_min: Duration::from_secs(60),
            refresh_max: Duration::from_secs(60),
            cooldown: Duration::from_secs(60),
        };
        let jwks = Self::new(settings).expect("no CA file to read");
        let (set, skipped) = KeySet::parse(document.to_string().as_bytes()).expect("a usable set");
        jwks.replace(set, &skipped, Trigger::Startup);
        jwks
    }

    /// The keys held now.
    pub fn keys(&self) -> Arc<KeySet> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The state of the set, for readiness.
    pub fn status(&self) -> JwksStatus {
        let mut status = self.lock_status().clone();
        status.keys = self.keys().len();
        status
    }

    /// Whether the last fetch failed.
    pub(crate) fn is_failing(&self) -> bool {
        self.lock_status().failures > 0
    }

    /// Fetches the set again for a token whose `kid` the cached set lacks, unless a
    /// refresh for that reason began less than `JWT_JWKS_COOLDOWN` ago. A request that
    /// arrives while one runs waits for it (at most `JWT_JWKS_TIMEOUT`) and uses its result.
    pub async fn refresh_for_unknown_key(&self) {
        let mut last = self.inner.gate.lock().await;
        if last.is_some_and(|began| began.elapsed() < self.inner.cooldown) {
            return;
        }
        *last = Some(Instant::now());
        self.refresh(Trigger::UnknownKey).await;
    }

    /// Refreshes the set on its schedule until `stop` turns true.
    pub fn spawn(&self, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let jwks = self.clone();
        tokio::spawn(async move {
            let mut wait = jwks.lock_status().next;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
                tokio::select! {
                    next = jwks.refresh(Trigger::Periodic) => wait = next,
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
            }
        })
    }

    /// One fetch: on success the set is replaced, on failure the cached one stays.
    /// Returns the wait before the next periodic fetch.
    async fn refresh(&self, trigger: Trigger) -> Duration {
        let result = self
            .inner
            .fetcher
            .fetch()
            .await
            .and_then(|Fetched { body, freshness }| {
                KeySet::parse(&body)
                    .map(|(set, skipped)| (set, skipped, freshness))
                    .map_err(FetchError::Invalid)
            });
        let outcome = if result.is_ok() { "success" } else { "failure" };
        metrics::counter!(JWKS_REFRESHES, "outcome" => outcome, "trigger" => trigger.label())
            .increment(1);
        match result {
            Ok((set, skipped, freshness)) => {
                let next = self.inner.bounds.after_success(freshness);
                self.replace(set, &skipped, trigger);
                let mut status = self.lock_status();
                status.last_success = Some(Utc::now());
                status.failing_since = None;
                status.last_error = None;
                status.failures = 0;
                status.next = next;
                next
            }
            Err(error) => {
                let mut status = self.lock_status();
                status.failures = status.failures.saturating_add(1);
                let failing_since = *status.failing_since.get_or_insert_with(Utc::now);
                status.last_error = Some(error.to_string());
                status.next = self.inner.bounds.after_failure(status.failures);
                tracing::warn!(
                    url = %self.inner.fetcher.url(),
                    trigger = trigger.label(),
                    error = %error,
                    %failing_since,
                    cached_keys = self.keys().len(),
                    retry_in_ms = status.next.as_millis() as u64,
                    "fetching the JWK set failed; the cached keys stay in use"
                );
                status.next
            }
        }
    }

    fn replace(&self, set: KeySet, skipped: &[Skipped], trigger: Trigger) {
        let (before, after) = (self.keys().kids(), set.kids());
        metrics::gauge!(JWKS_KEYS).set(set.len() as f64);
        metrics::gauge!(JWKS_LAST_SUCCESS).set(Utc::now().timestamp_millis() as f64 / 1000.0);
        *self
            .inner
            .keys
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        if before == after {
            tracing::debug!(trigger = trigger.label(), keys = ?after, "JWK set refreshed, unchanged");
            return;
        }
        let left_out: Vec<String> = skipped
            .iter()
            .map(|s| format!("{}: {}", s.kid.as_deref().unwrap_or("(no kid)"), s.reason))
            .collect();
        tracing::info!(
            url = %self.inner.fetcher.url(),
            trigger = trigger.label(),
            keys = ?after,
            added = ?after.iter().filter(|k| !before.contains(k)).collect::<Vec<_>>(),
            removed = ?before.iter().filter(|k| !after.contains(k)).collect::<Vec<_>>(),
            left_out = ?left_out,
            "JWK set refreshed"
        );
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, JwksStatus> {
        self.inner
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
