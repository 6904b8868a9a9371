//! [`MapperRegistry`]: the current [`MapperSet`], swappable while the host runs.
//!
//! A reload builds a whole new set on a blocking thread and swaps it in only if
//! every component loads; calls in flight finish on the set they started with.
//! [`MapperRegistry::load_detached`] loads one more component with the same runtime,
//! limits and settings without adding it to the set (the console's playground);
//! [`MapperRegistry::load_candidate`] a whole set (the console's reload preview). A
//! reload keeps the counters of the mappers it does not change.
//!
//! The registry also keeps every payload schema any set it held declared, by mapper,
//! version and event type ([`MapperRegistry::schema`]), so the URL an envelope's
//! `dataschema` names keeps answering after a reload moves the mapper on.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::config::MapperConfig;
use super::diff::SetChanges;
use super::error::LoadError;
use super::limits::Limits;
use super::load::{LoadedMapper, MapperListing, MapperSource};
use super::runtime::{MapperRuntime, RuntimeOptions};
use super::schema::compat::{BreakingChange, Declared, breaking_changes};
use super::set::MapperSet;
use super::settings::{Settings, SettingsTable};
use crate::instruments::MAPPER_RELOADS;

/// The outcome of a successful reload.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReloadReport {
    /// When the new set was assembled (RFC 3339 UTC).
    #[serde(with = "crate::domain::task::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub loaded_at: DateTime<Utc>,
    /// The new set, in order.
    pub mappers: Vec<MapperListing>,
    /// The breaking changes this reload was allowed to make (`allow_breaking`); empty for
    /// a compatible one.
    pub breaking_allowed: Vec<BreakingChange>,
    /// What it changed against the set it replaced.
    pub changes: SetChanges,
}

/// One reload, applied or refused, as the reload history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReloadRecord {
    #[serde(with = "crate::domain::task::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// Who asked: the operator's name (`admin` for `ADMIN_TOKEN`, a name of
    /// `ADMIN_TOKENS`; over the admin API or in a console session), or `sighup`.
    pub source: String,
    /// `applied` or `refused`.
    pub outcome: &'static str,
    /// What changed ("no change" included), or why the set was refused.
    pub summary: String,
}

/// Mappers promoted over the configured set (see [`MapperRegistry::install_overlay`]).
#[derive(Debug, Default)]
struct Overlay {
    generation: i64,
    mappers: Vec<LoadedMapper>,
}

/// `base` with each of `overlay` in the place of the mapper of its name (or after the
/// others).
fn compose(base: &MapperSet, overlay: &[LoadedMapper]) -> MapperSet {
    let mut set = base.copy();
    for m in overlay {
        set = set.replacing(m.copy());
    }
    set
}

/// Reloads the history keeps (this process's, newest last).
const HISTORY: usize = 50;

/// Holds the current mapper set. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct MapperRegistry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    runtime: MapperRuntime,
    config: MapperConfig,
    current: RwLock<Arc<MapperSet>>,
    /// What the configuration describes (`MAPPER_BUILTIN`, `MAPPERS_DIR`), as last
    /// loaded; the live set is this with the overlay's mappers in place.
    base: RwLock<Arc<MapperSet>>,
    /// The promoted mappers over the base, and the release generation they come from.
    overlay: Mutex<Overlay>,
    /// Serialises reloads so two concurrent ones cannot interleave.
    reloading: Mutex<()>,
    /// Every schema a set declared since start, by (mapper, version, event type).
    published: RwLock<BTreeMap<(String, String, String), PublishedSchema>>,
    /// The latest reloads, applied or refused.
    history: Mutex<VecDeque<ReloadRecord>>,
}

/// One published payload schema (`GET /schemas/{mapper}/{version}/{event type}`).
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedSchema {
    /// The schema, as the mapper declared it.
    pub document: Arc<Value>,
    /// Its strong ETag (quoted SHA-256 of its JSON text).
    pub etag: String,
}

impl MapperRegistry {
    /// Creates the process's [`MapperRuntime`] and loads the configured set on a
    /// blocking thread.
    pub async fn load(config: MapperConfig) -> Result<Self, LoadError> {
        tokio::task::spawn_blocking(move || {
            Self::load_blocking(
                MapperRuntime::new(&RuntimeOptions::from_config(&config))?,
                config,
            )
        })
        .await
        .map_err(|e| LoadError::Engine(format!("the loading task failed: {e}")))?
    }

    /// Loads the configured set with `runtime` on the current thread (compiles
    /// components: call it from a blocking thread).
    pub fn load_blocking(runtime: MapperRuntime, config: MapperConfig) -> Result<Self, LoadError> {
        let set = MapperSet::load(&runtime, &config)?;
        Ok(Self::with_set(runtime, config, set))
    }

    /// A registry whose current set is `set`; reloads use `config`.
    pub fn with_set(runtime: MapperRuntime, config: MapperConfig, set: MapperSet) -> Self {
        let set = Arc::new(set);
        let this = Self {
            inner: Arc::new(Inner {
                runtime,
                config,
                base: RwLock::new(set.clone()),
                overlay: Mutex::default(),
                current: RwLock::new(set),
                reloading: Mutex::new(()),
                published: RwLock::default(),
                history: Mutex::default(),
            }),
        };
        this.publish(&this.current());
        this
    }

    /// Keeps the schemas `set` declares for [`Self::schema`].
    fn publish(&self, set: &MapperSet) {
        let mut published = self
            .inner
            .published
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for mapper in set.iter() {
            for (event_type, schema) in mapper.schemas().iter() {
                let key = (
                    mapper.name().to_owned(),
                    mapper.version().to_owned(),
                    event_type.to_owned(),
                );
                published.insert(
                    key,
                    PublishedSchema {
                        document: schema.document.clone(),
                        etag: schema.etag.clone(),
                    },
                );
            }
        }
    }

    /// The schema `mapper` at `version` declared for `event_type`, if a set held since
    /// start declared one (the live set's, or one a reload replaced).
    pub fn schema(&self, mapper: &str, version: &str, event_type: &str) -> Option<PublishedSchema> {
        let published = self
            .inner
            .published
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        published
            .get(&(mapper.to_owned(), version.to_owned(), event_type.to_owned()))
            .cloned()
    }

    /// The current set; hold the `Arc` for the duration of one mutation.
    pub fn current(&self) -> Arc<MapperSet> {
        self.inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The current mappers, in order.
    pub fn list(&self) -> Vec<MapperListing> {
        self.current().listing()
    }

    /// Reloads the set from the configuration (re-reading `MAPPERS_DIR` and
    /// `MAPPER_SETTINGS_FILE`) on a blocking thread. On error the current set stays. A new
    /// set that would break consumers of the live one is refused
    /// ([`LoadError::Breaking`]). `source` (who asked) goes into the reload history.
    pub async fn reload(&self, source: &str) -> Result<ReloadReport, LoadError> {
        self.reload_with(source, false).await
    }

    /// [`Self::reload`], letting breaking changes through (recorded in the report, the
    /// history and the log) when `allow_breaking`.
    pub async fn reload_with(
        &self,
        source: &str,
        allow_breaking: bool,
    ) -> Result<ReloadReport, LoadError> {
        let this = self.clone();
        let source = source.to_owned();
        tokio::task::spawn_blocking(move || this.reload_blocking_with(&source, allow_breaking))
            .await
            .map_err(|e| LoadError::Engine(format!("the reload task failed: {e}")))?
    }

    /// [`Self::reload`] on the current thread, breaking changes refused.
    pub fn reload_blocking(&self, source: &str) -> Result<ReloadReport, LoadError> {
        self.reload_blocking_with(source, false)
    }

    /// [`Self::reload_with`] on the current thread.
    pub fn reload_blocking_with(
        &self,
        source: &str,
        allow_breaking: bool,
    ) -> Result<ReloadReport, LoadError> {
        let _one_at_a_time = self
            .inner
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = self.current();
        let base = match MapperSet::load(&self.inner.runtime, &self.inner.config) {
            Ok(base) => Arc::new(base),
            Err(e) => {
                metrics::counter!(MAPPER_RELOADS, "outcome" => "refused").increment(1);
                self.record(source, "refused", e.to_string());
                return Err(e);
            }
        };
        // The overlay changes only under `reloading`, which this holds: a short lock.
        let mut set = compose(
            &base,
            &self
                .inner
                .overlay
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .mappers,
        );
        // Mappers the reload did not change keep their counters.
        set.carry_over(&before);
        let set = Arc::new(set);
        let breaking = breaking_between(&before, &set);
        if !breaking.is_empty() && !allow_breaking {
            metrics::counter!(MAPPER_RELOADS, "outcome" => "refused").increment(1);
            let refused = LoadError::Breaking(breaking);
            self.record(source, "refused", refused.to_string());
            return Err(refused);
        }
        for change in &breaking {
            tracing::warn!(%change, "breaking schema change allowed by the reload (allow_breaking)");
        }
        metrics::counter!(MAPPER_RELOADS, "outcome" => "applied").increment(1);
        let mappers = set.listing();
        let changes = SetChanges::between(&before.listing(), &mappers);
        let mut summary = changes.summary();
        if !breaking.is_empty() {
            summary.push_str(&format!(
                "; {} breaking schema change(s) allowed",
                breaking.len()
            ));
        }
        self.record(source, "applied", summary);
        let report = ReloadReport {
            loaded_at: set.loaded_at(),
            mappers,
            changes,
            breaking_allowed: breaking,
        };
        self.publish(&set);
        *self
            .inner
            .base
            .write()
            .unwrap_or_else(PoisonError::into_inner) = base;
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = set;
        tracing::info!(mappers = report.mappers.len(), source, summary = %report.changes.summary(), "mapper set reloaded");
        Ok(report)
    }

    /// The release generation the live set's promoted mappers come from (0: none yet).
    pub fn overlay_generation(&self) -> i64 {
        self.inner
            .overlay
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
    }

    /// The configured set, as last loaded (the live one without its promoted mappers).
    fn base(&self) -> Arc<MapperSet> {
        self.inner
            .base
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The set the live one would become with `overlay` as its promoted mappers (not
    /// made live), and what would break for consumers of the live one.
    pub fn preview_overlay(&self, overlay: &[LoadedMapper]) -> (MapperSet, Vec<BreakingChange>) {
        let set = compose(&self.base(), overlay);
        let breaking = breaking_between(&self.current(), &set);
        (set, breaking)
    }

    /// Makes the configured set with `overlay` in place live, as release `generation`
    /// (a promotion or a rollback, here or on another replica), recorded in the reload
    /// history for `source`. All or nothing, like a reload; the compatibility gate was
    /// the promoter's to pass.
    pub fn install_overlay(
        &self,
        generation: i64,
        overlay: Vec<LoadedMapper>,
        source: &str,
        summary: &str,
    ) -> SetChanges {
        let _one_at_a_time = self
            .inner
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = self.current();
        let mut set = compose(&self.base(), &overlay);
        set.carry_over(&before);
        let set = Arc::new(set);
        let changes = SetChanges::between(&before.listing(), &set.listing());
        metrics::counter!(MAPPER_RELOADS, "outcome" => "applied").increment(1);
        self.record(
            source,
            "applied",
            format!("{summary} ({})", changes.summary()),
        );
        self.publish(&set);
        *self
            .inner
            .overlay
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Overlay {
            generation,
            mappers: overlay,
        };
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = set;
        tracing::info!(generation, source, %summary, changes = %changes.summary(), "mapper release applied");
        changes
    }

    /// The runtime, limits and settings a candidate is loaded with: those of the live set.
    pub fn load_stored(&self, label: &str, bytes: Arc<[u8]>) -> Result<LoadedMapper, LoadError> {
        self.load_detached(
            MapperSource::Stored {
                label: label.to_owned(),
                bytes,
            },
            &Settings::new(),
        )
    }

    fn record(&self, source: &str, outcome: &'static str, summary: String) {
        let mut history = self
            .inner
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(ReloadRecord {
            at: Utc::now(),
            source: source.to_owned(),
            outcome,
            summary,
        });
    }

    /// This process's reloads, the newest first.
    pub fn history(&self) -> Vec<ReloadRecord> {
        let history = self
            .inner
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        history.iter().rev().cloned().collect()
    }

    /// Loads one component with the live set's runtime, limits and settings (the
    /// settings re-read as a reload would), `overrides` winning, **without** adding it
    /// to the set: what the relay would run, for trying a mapper out. Compiles the
    /// component: call it from a blocking thread.
    pub fn load_detached(
        &self,
        source: MapperSource,
        overrides: &Settings,
    ) -> Result<LoadedMapper, LoadError> {
        let config = &self.inner.config;
        let settings = SettingsTable::load(config)?;
        LoadedMapper::load(
            &self.inner.runtime,
            source,
            &Limits::from_config(config),
            &settings,
            overrides,
        )
    }

    /// The breaking changes from the live set to the set the configuration describes now
    /// (what a reload would refuse), without loading it into the registry.
    pub fn check_reload_blocking(&self) -> Result<Vec<BreakingChange>, LoadError> {
        let set = self.load_candidate()?;
        Ok(breaking_between(&self.current(), &set))
    }

    /// The AsyncAPI 3.0 document of the live set; `source` is the envelopes' CloudEvents
    /// `source`.
    pub fn asyncapi(&self, source: &str) -> Value {
        let config = &self.inner.config;
        super::asyncapi::document(
            &self.current(),
            &super::asyncapi::AsyncApiSettings {
                server: &config.asyncapi_server,
                source,
            },
        )
    }

    /// Loads the set a reload would make now (`MAPPERS_DIR` and the settings read
    /// again, the promoted mappers kept in place) **without** making it live: for a
    /// preview or a dry run. Compiles the components: call it from a blocking thread.
    pub fn load_candidate(&self) -> Result<MapperSet, LoadError> {
        let base = MapperSet::load(&self.inner.runtime, &self.inner.config)?;
        let overlay = self
            .inner
            .overlay
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(compose(&base, &overlay.mappers))
    }

    /// The folder the live set is loaded from, if any (`MAPPERS_DIR`).
    pub fn mappers_dir(&self) -> Option<&Path> {
        self.inner.config.mappers_dir.as_deref()
    }
}

/// What would break for consumers of `old` if `new` replaced it: for each mapper of `old`
/// that declares schemas (one that declares none promised consumers nothing), by name, its
/// topics and schemas against those of the mapper of the same name in `new` (a mapper gone
/// from `new` declares nothing, so everything it declared is removed).
pub fn breaking_between(old: &MapperSet, new: &MapperSet) -> Vec<BreakingChange> {
    old.iter()
        .filter(|before| !before.schemas().is_empty())
        .flat_map(|before| {
            let after = new
                .iter()
                .find(|m| m.name() == before.name())
                .map(LoadedMapper::declared)
                .unwrap_or_else(Declared::default);
            breaking_changes(before.name(), &before.declared(), &after)
        })
        .collect()
}
