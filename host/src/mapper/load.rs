//! [`LoadedMapper`]: one component, compiled, linked, described and checked, ready
//! to map mutations.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::bindings::MapperPre;
use super::bindings::pakaura::events::types as wit;
use super::builtin::{BUILTIN_DEFAULT, DEFAULT_MAPPER_WASM};
use super::call::{CallContext, Instance};
use super::convert::to_wit;
use super::error::{LoadError, MapError, MapFailure, Refusal};
use super::event::MappedEvent;
use super::inspect::{check_contract, check_header, exports_event_schemas};
use super::limits::Limits;
use super::runtime::MapperRuntime;
use super::sandbox::{LogBudget, SandboxState};
use super::schema::compat::Declared;
use super::schema::{SchemaMode, SchemaSet, Violation, schema_url};
use super::settings::{Settings, SettingsTable};
use super::stats::{CallStats, CallStatsSnapshot};
use super::topic::TopicName;
use super::validate::{Producer, check_text, validate};
use crate::domain::Mutation;
use crate::instruments::{
    MAPPER_CALL_DURATION, MAPPER_CALLS, MAPPER_FAILURES, MAPPER_SCHEMA_VIOLATIONS,
};

/// Most idle instances one mapper keeps for reuse.
const MAX_IDLE_INSTANCES: usize = 4;

/// Where a mapper's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapperSource {
    /// The default mapper embedded in the host (`builtin:default`).
    BuiltinDefault,
    /// A `.wasm` file.
    File(PathBuf),
    /// A component held in memory: a candidate uploaded to the admin API, or one a
    /// promotion stored in the database. `label` names it in messages (and its stem
    /// picks its settings, as a file name's does).
    Stored { label: String, bytes: Arc<[u8]> },
}

impl MapperSource {
    /// Parses a command-line argument: `builtin:default` or a path.
    pub fn parse(arg: &str) -> Self {
        if arg == BUILTIN_DEFAULT {
            Self::BuiltinDefault
        } else {
            Self::File(arg.into())
        }
    }

    /// The name whose settings `describe` sees: `default` for the built-in
    /// mapper, the file stem otherwise.
    fn settings_key(&self) -> String {
        match self {
            Self::BuiltinDefault => "default".to_owned(),
            Self::File(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Self::Stored { label, .. } => Path::new(label)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    fn read(&self) -> Result<Cow<'static, [u8]>, Refusal> {
        match self {
            Self::BuiltinDefault => Ok(Cow::Borrowed(DEFAULT_MAPPER_WASM)),
            Self::File(path) => std::fs::read(path).map(Cow::Owned).map_err(Refusal::Read),
            Self::Stored { bytes, .. } => Ok(Cow::Owned(bytes.to_vec())),
        }
    }
}

impl fmt::Display for MapperSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BuiltinDefault => f.write_str(BUILTIN_DEFAULT),
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Stored { label, .. } => f.write_str(label),
        }
    }
}

/// One loaded mapper, as `GET /admin/mappers` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MapperListing {
    /// The name from `describe`.
    pub name: String,
    /// The version from `describe`.
    pub version: String,
    /// The declared topics, sorted.
    pub topics: Vec<String>,
    /// The event types it declares a payload schema for, sorted; empty when it declares
    /// none (`GET /schemas/{name}/{version}/{event type}` serves each).
    pub event_types: Vec<String>,
    /// The file it was loaded from, or `builtin:default`.
    pub file: String,
    /// SHA-256 of the component, lower-case hex.
    pub sha256: String,
    /// When it was loaded (RFC 3339 UTC).
    #[serde(with = "crate::domain::task::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub loaded_at: DateTime<Utc>,
    /// Its calls since it was loaded.
    pub stats: CallStatsSnapshot,
}

impl MapperListing {
    /// The listing of `m`.
    pub fn of(m: &LoadedMapper) -> Self {
        Self {
            name: m.name().to_owned(),
            version: m.version().to_owned(),
            topics: m.topics().map(ToString::to_string).collect(),
            event_types: m.schemas().iter().map(|(t, _)| t.to_owned()).collect(),
            file: m.source().to_string(),
            sha256: m.sha256().to_owned(),
            loaded_at: m.loaded_at(),
            stats: m.stats.snapshot(m.log_budget.dropped()),
        }
    }
}

/// A loaded mapper. Mapping is synchronous: see [`super`] for the calling convention.
pub struct LoadedMapper {
    name: Arc<str>,
    version: String,
    topics: BTreeSet<TopicName>,
    /// The payload schemas from `event-schemas`, compiled at load; empty if none.
    schemas: Arc<SchemaSet>,
    /// The published URL of each declared event type's schema (the `dataschema` of its
    /// events), built at load rather than per event.
    schema_urls: Arc<BTreeMap<String, String>>,
    source: MapperSource,
    sha256: String,
    loaded_at: DateTime<Utc>,
    settings: Arc<Settings>,
    limits: Limits,
    runtime: MapperRuntime,
    pre: MapperPre<SandboxState>,
    /// Instances kept for reuse (`MAPPER_INSTANCE_REUSE`); dropped with the mapper, so
    /// a reload discards them.
    idle: Mutex<Vec<Instance>>,
    /// Instances in a call right now.
    busy: AtomicUsize,
    /// Shared with the same component in the next set when a reload does not change
    /// it, so its counters survive the reload.
    stats: Arc<CallStats>,
    /// Its call counter and duration histogram, registered once at load rather than
    /// looked up by name on every call.
    meters: Meters,
    /// Its `host.log` budget, shared by all its instances.
    log_budget: Arc<LogBudget>,
    /// Whether each call's wall clock reads the mutation's `occurred_at` (see
    /// [`LoadedMapper::freeze_clock`]).
    frozen_clock: bool,
    /// Whether its calls stay out of its statistics and metrics (a copy that maps
    /// history or shadows the relay; see [`LoadedMapper::quiet_copy`]).
    quiet: bool,
}

/// The per-mapper metric handles of the calls (`pakaura_mapper_calls_total`,
/// `pakaura_mapper_call_duration_seconds`).
#[derive(Clone)]
struct Meters {
    calls: metrics::Counter,
    duration: metrics::Histogram,
}

impl Meters {
    fn new(mapper: &str) -> Self {
        Self {
            calls: metrics::counter!(MAPPER_CALLS, "mapper" => mapper.to_owned()),
            duration: metrics::histogram!(MAPPER_CALL_DURATION, "mapper" => mapper.to_owned()),
        }
    }
}

impl fmt::Debug for LoadedMapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedMapper")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl LoadedMapper {
    /// Loads one component: reads and compiles it, checks it against the world,
    /// calls `describe` under the limits and checks what it declares.
    ///
    /// `host.config` answers from `settings`: during `describe`, those of the file
    /// stem (`default` for the built-in); afterwards those of the described name
    /// layered over them. `overrides` win over both.
    pub fn load(
        runtime: &MapperRuntime,
        source: MapperSource,
        limits: &Limits,
        settings: &SettingsTable,
        overrides: &Settings,
    ) -> Result<Self, LoadError> {
        let file = source.to_string();
        Self::load_inner(runtime, source, limits, settings, overrides)
            .map_err(|reason| LoadError::Refused { file, reason })
    }

    fn load_inner(
        runtime: &MapperRuntime,
        source: MapperSource,
        limits: &Limits,
        settings: &SettingsTable,
        overrides: &Settings,
    ) -> Result<Self, Refusal> {
        let bytes = source.read()?;
        check_header(&bytes)?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let component = compile(runtime, &source, &bytes)?;
        check_contract(runtime.engine(), &component)?;
        let pre = runtime
            .linker()
            .instantiate_pre(&component)
            .and_then(MapperPre::new)
            .map_err(|e| Refusal::WrongSignature(format!("{e:#}")))?;

        let stem = source.settings_key();
        let mut describe_settings = (*settings.for_mapper(&stem)).clone();
        describe_settings.extend(overrides.clone());
        let log_budget = Arc::new(LogBudget::default());
        let at_load = CallContext {
            runtime,
            pre: &pre,
            tag: source.to_string().into(),
            settings: Arc::new(describe_settings.clone()),
            log_budget: log_budget.clone(),
            limits,
            wall_clock: None,
        };
        let info = at_load.describe().map_err(Refusal::Describe)?;

        check_mapper_name(&info.name).map_err(Refusal::BadName)?;
        check_text("version", &info.version, 64).map_err(Refusal::BadVersion)?;
        let mut topics = BTreeSet::new();
        for topic in &info.topics {
            let topic = TopicName::parse(topic).map_err(|e| Refusal::InvalidTopic {
                topic: e.topic,
                reason: e.reason,
            })?;
            if !limits.allowed_topics.contains(&topic) {
                return Err(Refusal::TopicNotAllowed {
                    topic: topic.to_string(),
                    allowed: limits.allowed_list(),
                });
            }
            topics.insert(topic);
        }
        let schemas = if exports_event_schemas(runtime.engine(), &component) {
            let declared = at_load.event_schemas().map_err(Refusal::EventSchemas)?;
            let topics: Vec<&str> = topics.iter().map(TopicName::as_str).collect();
            SchemaSet::compile(declared, &topics).map_err(Refusal::Schemas)?
        } else {
            SchemaSet::default()
        };
        let schema_urls = schemas
            .iter()
            .map(|(event_type, _)| {
                let url = schema_url(
                    &limits.schema_base_url,
                    &info.name,
                    &info.version,
                    event_type,
                );
                (event_type.to_owned(), url)
            })
            .collect();
        let mut call_settings = describe_settings;
        call_settings.extend((*settings.for_mapper(&info.name)).clone());
        call_settings.extend(overrides.clone());
        let meters = Meters::new(&info.name);
        Ok(Self {
            name: info.name.into(),
            version: info.version,
            topics,
            schemas: Arc::new(schemas),
            schema_urls: Arc::new(schema_urls),
            source,
            sha256,
            loaded_at: Utc::now(),
            settings: Arc::new(call_settings),
            limits: limits.clone(),
            runtime: runtime.clone(),
            pre,
            idle: Mutex::new(Vec::new()),
            busy: AtomicUsize::new(0),
            stats: Arc::default(),
            meters,
            log_budget,
            frozen_clock: false,
            quiet: false,
        })
    }

    /// The same compiled component, settings and limits with instances of its own: a
    /// copy for another set (a promotion, a rollback) that keeps this one's counters.
    pub fn copy(&self) -> Self {
        Self {
            name: self.name.clone(),
            version: self.version.clone(),
            topics: self.topics.clone(),
            schemas: self.schemas.clone(),
            schema_urls: self.schema_urls.clone(),
            source: self.source.clone(),
            sha256: self.sha256.clone(),
            loaded_at: self.loaded_at,
            settings: self.settings.clone(),
            limits: self.limits.clone(),
            runtime: self.runtime.clone(),
            pre: self.pre.clone(),
            idle: Mutex::new(Vec::new()),
            busy: AtomicUsize::new(0),
            stats: self.stats.clone(),
            meters: self.meters.clone(),
            log_budget: self.log_budget.clone(),
            frozen_clock: self.frozen_clock,
            quiet: self.quiet,
        }
    }

    /// [`Self::copy`] whose calls count nowhere: neither in this mapper's statistics
    /// nor in its metrics. A history diff or a shadow run maps with it, so what the
    /// console and `/metrics` say of the live mapper stays what the relay did.
    pub fn quiet_copy(&self) -> Self {
        Self {
            stats: Arc::default(),
            log_budget: Arc::default(),
            quiet: true,
            ..self.copy()
        }
    }

    /// Makes every later call run on a fresh instance whose wall clock reads the
    /// mutation's `occurred_at`, so a mapper that reads the time still yields the same
    /// events for the same mutation (`pakaura mapper test`; the service only for the copies
    /// that compare two sets: history diffs and shadow runs).
    pub fn freeze_clock(&mut self) {
        self.frozen_clock = true;
    }

    /// Maps one mutation through this mapper alone and validates the output.
    pub fn map(&self, mutation: &Mutation) -> Result<Vec<MappedEvent>, MapError> {
        let started = Instant::now();
        self.busy.fetch_add(1, Ordering::Relaxed);
        let result = self.call(mutation);
        self.busy.fetch_sub(1, Ordering::Relaxed);
        let took = started.elapsed();
        if self.quiet {
            return result.map_err(|kind| MapError {
                mapper: self.name.to_string(),
                kind,
            });
        }
        self.stats.record(took, result.as_ref().err());
        self.meters.calls.increment(1);
        self.meters.duration.record(took.as_secs_f64());
        result.map_err(|kind| {
            let mapper = self.name.to_string();
            metrics::counter!(MAPPER_FAILURES, "mapper" => mapper.clone(), "kind" => kind.code())
                .increment(1);
            MapError { mapper, kind }
        })
    }

    /// One `map-mutation` call and the validation of its output. With reuse on, the
    /// call runs on a kept instance when there is one, and the instance is kept again
    /// only when the call succeeded (valid events) and it has calls left; a call that
    /// failed on a kept instance is tried once more on a fresh one before it counts, so
    /// state a previous mutation left in the instance never fails this one.
    fn call(&self, mutation: &Mutation) -> Result<Vec<MappedEvent>, MapFailure> {
        let reuse = self.limits.instance_reuse > 1 && !self.frozen_clock;
        let wit = to_wit(mutation);
        // Popped into a local: the idle list's lock must not be held during the call.
        let kept = if reuse { self.idle().pop() } else { None };
        if let Some(kept) = kept {
            match self.call_on(kept, &wit) {
                Ok(events) => return Ok(events),
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => {
                    tracing::debug!(mapper = %self.name, error = %e, "a kept instance failed; trying a fresh one");
                }
            }
        }
        let fresh = self.instantiate(mutation)?;
        self.call_on(fresh, &wit)
    }

    /// Calls `instance` on `mutation` and validates the output; keeps the instance for
    /// reuse only after a success.
    fn call_on(
        &self,
        mut instance: Instance,
        wit: &wit::Mutation,
    ) -> Result<Vec<MappedEvent>, MapFailure> {
        let events = instance.map_mutation(&self.runtime, &self.limits, wit)?;
        let producer = Producer {
            name: &self.name,
            version: &self.version,
            topics: &self.topics,
        };
        let mut events = validate(&producer, &self.limits, events)?;
        self.apply_schemas(&mut events)?;
        let reuse = self.limits.instance_reuse > 1 && !self.frozen_clock;
        if reuse && instance.calls() < self.limits.instance_reuse {
            let mut idle = self.idle();
            if idle.len() < MAX_IDLE_INSTANCES {
                idle.push(instance);
            }
        }
        Ok(events)
    }

    /// Points each event with a declared schema and no `data-schema` of its own at the
    /// published schema, then checks every event under `MAPPER_SCHEMAS`.
    fn apply_schemas(&self, events: &mut [MappedEvent]) -> Result<(), MapFailure> {
        if self.schemas.is_empty() {
            return Ok(());
        }
        for ev in events.iter_mut().filter(|ev| ev.data_schema.is_none()) {
            if let Some(url) = self.schema_url(&ev.event_type) {
                ev.data_schema = Some(url.to_owned());
            }
        }
        let mode = self.limits.schemas;
        if mode == SchemaMode::Off {
            return Ok(());
        }
        for violation in self.violations(events) {
            if !self.quiet {
                // The type only when declared, so a mapper cannot grow the label set at will.
                let event_type = match self.schemas.get(&violation.event_type) {
                    Some(_) => violation.event_type.clone(),
                    None => "undeclared".to_owned(),
                };
                metrics::counter!(
                    MAPPER_SCHEMA_VIOLATIONS,
                    "mapper" => self.name.to_string(),
                    "event_type" => event_type,
                    "mode" => mode.to_string(),
                )
                .increment(1);
            }
            if mode == SchemaMode::Enforce {
                return Err(MapFailure::SchemaViolation(violation));
            }
            if !self.quiet {
                tracing::warn!(mapper = %self.name, %violation, "event data breaks its declared schema");
            }
        }
        Ok(())
    }

    /// The events of `events` whose `data` breaks their declared schema, whatever
    /// `MAPPER_SCHEMAS` says (`mapper run`, `mapper test` and the playground show them).
    pub fn violations(&self, events: &[MappedEvent]) -> Vec<Violation> {
        events
            .iter()
            .filter_map(|ev| {
                self.schemas
                    .check(ev.index, &ev.event_type, &ev.topic, &ev.data)
            })
            .collect()
    }

    /// What the compatibility gate compares: its topics and declared schemas.
    pub fn declared(&self) -> Declared<'_> {
        Declared {
            topics: self.topics.iter().map(TopicName::as_str).collect(),
            schemas: self
                .schemas
                .iter()
                .map(|(t, s)| (t, s.topic.as_str(), &*s.document))
                .collect(),
        }
    }

    /// The payload schemas it declared (empty when none).
    pub fn schemas(&self) -> &SchemaSet {
        &self.schemas
    }

    /// Where the host publishes the schema of `event_type` (its events' `dataschema`), if
    /// the mapper declared one.
    pub fn schema_url(&self, event_type: &str) -> Option<&str> {
        self.schema_urls.get(event_type).map(String::as_str)
    }

    /// A fresh instance for a call on `mutation`.
    fn instantiate(&self, mutation: &Mutation) -> Result<Instance, MapFailure> {
        CallContext {
            runtime: &self.runtime,
            pre: &self.pre,
            tag: self.name.clone(),
            settings: self.settings.clone(),
            log_budget: self.log_budget.clone(),
            limits: &self.limits,
            wall_clock: self
                .frozen_clock
                .then(|| SystemTime::from(mutation.occurred_at)),
        }
        .instantiate()
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Instance>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Its instances now: `(busy, idle)`.
    pub fn instances(&self) -> (usize, usize) {
        (self.busy.load(Ordering::Relaxed), self.idle().len())
    }

    /// The name from `describe`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version from `describe`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The declared topics, sorted.
    pub fn topics(&self) -> impl Iterator<Item = &TopicName> {
        self.topics.iter()
    }

    /// Where the component came from.
    pub fn source(&self) -> &MapperSource {
        &self.source
    }

    /// SHA-256 of the component's bytes, lower-case hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// When the component was loaded.
    pub fn loaded_at(&self) -> DateTime<Utc> {
        self.loaded_at
    }

    /// Keeps `previous`'s call statistics and load time when it is the same component
    /// (same name and SHA-256): a reload that did not change a mapper does not reset
    /// its counters. Returns whether it did.
    pub fn adopt_unchanged(&mut self, previous: &LoadedMapper) -> bool {
        if self.name != previous.name || self.sha256 != previous.sha256 {
            return false;
        }
        self.stats = previous.stats.clone();
        self.loaded_at = previous.loaded_at;
        true
    }
}

/// Compiles `bytes`, through the compile cache when there is one, and logs how long it
/// took and whether the cache served it.
fn compile(
    runtime: &MapperRuntime,
    source: &MapperSource,
    bytes: &[u8],
) -> Result<Component, Refusal> {
    let before = runtime.cache_counts();
    let started = Instant::now();
    let component =
        Component::new(runtime.engine(), bytes).map_err(|e| Refusal::Invalid(format!("{e:#}")))?;
    let cache = match (before, runtime.cache_counts()) {
        (Some((hits, _)), Some((hits_after, _))) if hits_after > hits => "hit",
        (Some((_, misses)), Some((_, misses_after))) if misses_after > misses => "miss",
        (Some(_), Some(_)) => "not stored",
        _ => "off",
    };
    tracing::debug!(
        file = %source,
        took_ms = started.elapsed().as_millis() as u64,
        cache,
        "component compiled"
    );
    Ok(component)
}

/// Checks a mapper name: names appear in logs, metrics, envelope ids and setting names,
/// so they are 1 to 64 characters of `a-z A-Z 0-9 . _ -`. The error says why not.
pub fn check_mapper_name(name: &str) -> Result<(), String> {
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{}` must be 1 to 64 characters of a-z, A-Z, 0-9, `.`, `_` and `-`",
            name.chars().take(80).collect::<String>().escape_debug()
        ))
    }
}
