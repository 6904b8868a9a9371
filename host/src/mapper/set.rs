//! [`MapperSet`]: the ordered set of loaded mappers every mutation goes through.
//!
//! Order: the built-in default mapper first (when `MAPPER_BUILTIN` is on), then
//! every `*.wasm` file of `MAPPERS_DIR` in lexicographic (byte-wise) file-name
//! order; names starting with `.` are skipped (Kubernetes volume internals).
//! The events of all mappers are concatenated in that order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::config::MapperConfig;
use super::error::{LoadError, MapError};
use super::event::MappedEvent;
use super::limits::Limits;
use super::load::{LoadedMapper, MapperListing, MapperSource};
use super::runtime::MapperRuntime;
use super::settings::{Settings, SettingsTable};
use crate::domain::Mutation;
use crate::telemetry::traces;

/// An ordered, immutable set of mappers with distinct names.
#[derive(Debug)]
pub struct MapperSet {
    mappers: Vec<LoadedMapper>,
    loaded_at: DateTime<Utc>,
}

impl MapperSet {
    /// Loads the set `config` describes. All-or-nothing: the first component
    /// refused refuses the whole set.
    pub fn load(runtime: &MapperRuntime, config: &MapperConfig) -> Result<Self, LoadError> {
        let limits = Limits::from_config(config);
        let settings = SettingsTable::load(config)?;
        let mut sources = Vec::new();
        if config.mapper_builtin {
            sources.push(MapperSource::BuiltinDefault);
        }
        if let Some(dir) = &config.mappers_dir {
            sources.extend(wasm_files(dir)?.into_iter().map(MapperSource::File));
        }
        if sources.is_empty() {
            return Err(LoadError::Empty);
        }
        let no_overrides = Settings::new();
        let mappers = sources
            .into_iter()
            .map(|source| LoadedMapper::load(runtime, source, &limits, &settings, &no_overrides))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(mappers)
    }

    /// A set of already loaded mappers, in the given order; refuses duplicate names.
    pub fn new(mappers: Vec<LoadedMapper>) -> Result<Self, LoadError> {
        let mut seen: BTreeMap<&str, &LoadedMapper> = BTreeMap::new();
        for m in &mappers {
            if let Some(first) = seen.insert(m.name(), m) {
                return Err(LoadError::DuplicateName {
                    name: m.name().to_owned(),
                    first: first.source().to_string(),
                    second: m.source().to_string(),
                });
            }
        }
        Ok(Self {
            mappers,
            loaded_at: Utc::now(),
        })
    }

    /// This set with `candidate` in the place of the mapper of the same name, or after
    /// the others when none has its name; the other mappers are copies (see
    /// [`LoadedMapper::copy`]) that keep their counters.
    pub fn replacing(&self, candidate: LoadedMapper) -> Self {
        let mut candidate = Some(candidate);
        let mut mappers: Vec<LoadedMapper> = self
            .mappers
            .iter()
            .map(|m| match &candidate {
                Some(c) if c.name() == m.name() => candidate.take().expect("checked"),
                _ => m.copy(),
            })
            .collect();
        mappers.extend(candidate);
        Self {
            mappers,
            loaded_at: Utc::now(),
        }
    }

    /// A copy of this set (see [`LoadedMapper::copy`]).
    pub fn copy(&self) -> Self {
        Self {
            mappers: self.mappers.iter().map(LoadedMapper::copy).collect(),
            loaded_at: Utc::now(),
        }
    }

    /// The mapper named `name`, if the set holds one.
    pub fn get(&self, name: &str) -> Option<&LoadedMapper> {
        self.mappers.iter().find(|m| m.name() == name)
    }

    /// A copy of this set whose calls count nowhere (see [`LoadedMapper::quiet_copy`])
    /// and read the mutation's `occurred_at` as the time (see
    /// [`LoadedMapper::freeze_clock`]): for comparing two sets on the same mutation, by a
    /// history diff or a shadow run, so a mapper that stamps the time compares equal.
    pub fn quiet_copy(&self) -> Self {
        Self {
            mappers: self
                .mappers
                .iter()
                .map(|m| {
                    let mut m = m.quiet_copy();
                    m.freeze_clock();
                    m
                })
                .collect(),
            loaded_at: self.loaded_at,
        }
    }

    /// Keeps the counters (and load time) of every mapper that `previous` holds
    /// unchanged (same name and SHA-256); returns how many.
    pub fn carry_over(&mut self, previous: &MapperSet) -> usize {
        let mut kept = 0;
        for mapper in &mut self.mappers {
            if let Some(old) = previous.mappers.iter().find(|o| o.name() == mapper.name())
                && mapper.adopt_unchanged(old)
            {
                kept += 1;
            }
        }
        kept
    }

    /// Maps `mutation` through every mapper in order and concatenates the events.
    ///
    /// The first failing mapper fails the whole mutation, so a mutation is either
    /// published completely or becomes one dead letter. Synchronous and CPU-bound:
    /// call it from `spawn_blocking`.
    pub fn map(&self, mutation: &Mutation) -> Result<Vec<MappedEvent>, MapError> {
        let mut events = Vec::new();
        for mapper in &self.mappers {
            // With traces on, one span per mapper call (a child of the current span).
            let span = traces::span(|| {
                tracing::info_span!(
                    "mapper",
                    otel.name = %format_args!("map {}", mapper.name()),
                    mapper.name = mapper.name(),
                    mapper.version = mapper.version(),
                    mapper.events = tracing::field::Empty,
                    error.type = tracing::field::Empty,
                    otel.status_code = tracing::field::Empty,
                )
            });
            match span.in_scope(|| mapper.map(mutation)) {
                Ok(mapped) => {
                    span.record("mapper.events", mapped.len());
                    events.extend(mapped);
                }
                Err(e) => {
                    span.record("error.type", e.kind.code());
                    span.record("otel.status_code", "error");
                    return Err(e);
                }
            }
        }
        Ok(events)
    }

    /// Every topic a mapper of the set declared: the topics a mutation may reach.
    pub fn topics(&self) -> std::collections::BTreeSet<String> {
        self.mappers
            .iter()
            .flat_map(|m| m.topics().map(ToString::to_string))
            .collect()
    }

    /// The mappers, in chain order.
    pub fn iter(&self) -> impl Iterator<Item = &LoadedMapper> {
        self.mappers.iter()
    }

    /// How many mappers the set holds.
    pub fn len(&self) -> usize {
        self.mappers.len()
    }

    /// Whether the set holds no mapper.
    pub fn is_empty(&self) -> bool {
        self.mappers.is_empty()
    }

    /// When the set was assembled.
    pub fn loaded_at(&self) -> DateTime<Utc> {
        self.loaded_at
    }

    /// A serialisable description of each mapper, in order.
    pub fn listing(&self) -> Vec<MapperListing> {
        self.mappers.iter().map(MapperListing::of).collect()
    }
}

/// The `*.wasm` files of `dir`, sorted by file name.
fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let io = |error| LoadError::Dir {
        dir: dir.to_owned(),
        error,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let is_wasm = Path::new(name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("wasm"));
        // `metadata` follows symlinks, as Kubernetes ConfigMap and Secret mounts use them.
        if is_wasm && !name.starts_with('.') && std::fs::metadata(&path).is_ok_and(|m| m.is_file())
        {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_wasm_files_are_listed_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.wasm", "a.WASM", "c.txt", ".hidden.wasm", "10.wasm"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        std::fs::create_dir(dir.path().join("d.wasm")).unwrap();
        let names: Vec<_> = wasm_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["10.wasm", "a.WASM", "b.wasm"]);
    }

    #[test]
    fn a_missing_folder_names_the_setting() {
        let err = wasm_files(Path::new("/nonexistent/mappers")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("MAPPERS_DIR /nonexistent/mappers")
        );
    }
}
