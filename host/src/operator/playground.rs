//! The playground: runs a mapper on a mutation in the relay's sandbox and limits and
//! shows the envelopes it would yield, or its refusal. Nothing touches the outbox or
//! publishes anything.
//!
//! A mapper runs as a *detached copy* ([`MapperRegistry::load_detached`]): the live
//! set's runtime, limits and settings, but not the live instance, so the live
//! mappers' call statistics stay the relay's own. Copies are kept in a small cache.
//!
//! Uploaded components stay in memory (at most [`MAX_UPLOADS`], each for
//! [`UPLOAD_TTL`]); loading one writes it for the moment of the load into a private
//! temporary folder outside `MAPPERS_DIR`, removed right after. Loads (compiling an
//! interpreter-based component takes ~20 s cold) and calls run on blocking threads,
//! one load at a time.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::domain::Mutation;
use crate::events::build_envelope;
use crate::mapper::{
    LoadError, LoadedMapper, MapError, MapperListing, MapperRegistry, MapperSource, Settings,
    Violation,
};

/// Most uploads kept at once; a new one evicts the oldest.
pub const MAX_UPLOADS: usize = 4;
/// How long an upload is kept.
pub const UPLOAD_TTL: Duration = Duration::from_secs(30 * 60);
/// Most loaded copies kept (each holds a compiled component).
const MAX_LOADED: usize = 6;

/// An uploaded component, as the admin API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UploadView {
    /// The upload's id, to run it.
    pub id: Uuid,
    /// The file name it was uploaded as.
    pub name: String,
    /// Its size in bytes.
    pub size: usize,
    /// The mapper as loaded (`file` is `upload:<name>`).
    pub mapper: MapperListing,
    #[serde(with = "crate::domain::task::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub uploaded_at: DateTime<Utc>,
    /// When it is forgotten.
    #[serde(with = "crate::domain::task::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: DateTime<Utc>,
}

struct Upload {
    view: UploadView,
    bytes: Bytes,
    expires: Instant,
}

/// Which mapper to run.
#[derive(Debug, Clone)]
pub enum Target {
    /// A mapper of the live set, by name.
    Live(String),
    /// An upload, by id.
    Upload(Uuid),
}

/// What one run gave.
#[derive(Debug)]
pub struct RunOutcome {
    /// The mapper that ran (the copy's listing).
    pub mapper: MapperListing,
    /// The envelopes (CloudEvents documents), or the mapper's refusal.
    pub result: Result<Vec<Value>, MapError>,
    /// The events whose data breaks their declared schema (checked whatever
    /// `MAPPER_SCHEMAS` says; under `enforce` the first is the refusal instead).
    pub violations: Vec<Violation>,
    /// How long the call took, validation included.
    pub took: Duration,
}

/// Why the playground could not run or keep something.
#[derive(Debug, thiserror::Error)]
pub enum PlaygroundError {
    #[error("no loaded mapper is named `{0}` (see GET /admin/mappers)")]
    UnknownMapper(String),
    #[error("no upload {0}: uploads are kept for 30 minutes, {MAX_UPLOADS} at most")]
    UnknownUpload(Uuid),
    #[error(
        "{file} changed on disk since the live set was loaded (sha256 {live} live, {found} now); reload the mappers first"
    )]
    Changed {
        file: String,
        live: String,
        found: String,
    },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("the playground could not stage the upload: {0}")]
    Stage(String),
}

/// Keeps uploads and loaded copies. See the module documentation.
pub struct Playground {
    /// The live set's registry: its runtime, limits and settings load every copy.
    registry: MapperRegistry,
    /// The CloudEvents `source` envelopes carry (`EVENT_SOURCE`).
    source: String,
    uploads: Mutex<VecDeque<Upload>>,
    loaded: Mutex<VecDeque<(CopyKey, Arc<LoadedMapper>)>>,
    /// One compilation at a time: the machine's cores belong to the relay.
    loading: Semaphore,
}

impl std::fmt::Debug for Playground {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playground").finish_non_exhaustive()
    }
}

/// Identifies a loaded copy: where it came from, its bytes and its setting overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CopyKey {
    origin: String,
    sha256: String,
    overrides: Settings,
}

impl Playground {
    pub(super) fn new(registry: MapperRegistry, source: String) -> Self {
        Self {
            registry,
            source,
            uploads: Mutex::default(),
            loaded: Mutex::default(),
            loading: Semaphore::new(1),
        }
    }

    /// Loads `bytes`, uploaded as `name`, with the live runtime, limits and settings;
    /// keeps it when it loads. A refused component is [`PlaygroundError::Load`].
    pub async fn upload(&self, name: &str, bytes: Bytes) -> Result<UploadView, PlaygroundError> {
        let id = Uuid::new_v4();
        let stem = file_stem(name);
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let key = CopyKey {
            origin: format!("upload:{id}"),
            sha256,
            overrides: Settings::new(),
        };
        let loaded = self
            .load(key, LoadFrom::Bytes(stem.clone(), bytes.clone()))
            .await?;
        let now = Utc::now();
        let view = UploadView {
            id,
            name: format!("{stem}.wasm"),
            size: bytes.len(),
            mapper: upload_listing(&loaded, &stem),
            uploaded_at: now,
            expires_at: now + UPLOAD_TTL,
        };
        let mut uploads = self.uploads();
        if uploads.len() >= MAX_UPLOADS {
            uploads.pop_front();
        }
        uploads.push_back(Upload {
            view: view.clone(),
            bytes,
            expires: Instant::now() + UPLOAD_TTL,
        });
        drop(uploads);
        self.forget_dropped_uploads();
        tracing::info!(upload = %id, name = %view.name, mapper = %view.mapper.name, "playground upload loaded");
        Ok(view)
    }

    /// The uploads kept, oldest first.
    /// The CloudEvents `source` the envelopes carry (`EVENT_SOURCE`).
    pub fn event_source(&self) -> &str {
        &self.source
    }

    pub fn uploads_list(&self) -> Vec<UploadView> {
        self.forget_dropped_uploads();
        self.uploads().iter().map(|u| u.view.clone()).collect()
    }

    /// Runs `target` on `mutation` with setting `overrides`.
    pub async fn run(
        &self,
        target: Target,
        overrides: Settings,
        mutation: Mutation,
    ) -> Result<RunOutcome, PlaygroundError> {
        let (mapper, listing) = match target {
            Target::Live(name) => {
                let live = self
                    .registry
                    .list()
                    .into_iter()
                    .find(|m| m.name == name)
                    .ok_or(PlaygroundError::UnknownMapper(name))?;
                let key = CopyKey {
                    origin: live.file.clone(),
                    sha256: live.sha256.clone(),
                    overrides: overrides.clone(),
                };
                let from = LoadFrom::Source(MapperSource::parse(&live.file), overrides);
                let copy = self.load(key, from).await?;
                if copy.sha256() != live.sha256 {
                    self.evict(copy.sha256());
                    return Err(PlaygroundError::Changed {
                        file: live.file,
                        live: live.sha256,
                        found: copy.sha256().to_owned(),
                    });
                }
                let listing = MapperListing::of(&copy);
                (copy, listing)
            }
            Target::Upload(id) => {
                self.forget_dropped_uploads();
                let (bytes, view) = self
                    .uploads()
                    .iter()
                    .find(|u| u.view.id == id)
                    .map(|u| (u.bytes.clone(), u.view.clone()))
                    .ok_or(PlaygroundError::UnknownUpload(id))?;
                let stem = view.name.trim_end_matches(".wasm").to_owned();
                let key = CopyKey {
                    origin: format!("upload:{id}"),
                    sha256: view.mapper.sha256.clone(),
                    overrides: overrides.clone(),
                };
                let copy = self.load(key, LoadFrom::Bytes(stem.clone(), bytes)).await?;
                let listing = upload_listing(&copy, &stem);
                (copy, listing)
            }
        };
        let source = self.source.clone();
        let (result, violations, took) = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mapped = mapper.map(&mutation);
            let took = started.elapsed();
            let violations = match &mapped {
                Ok(events) => mapper.violations(events),
                Err(_) => Vec::new(),
            };
            let result = mapped.map(|events| {
                events
                    .iter()
                    .map(|ev| build_envelope(&mutation, ev, &source, None).document())
                    .collect()
            });
            (result, violations, took)
        })
        .await
        .map_err(|e| PlaygroundError::Stage(format!("the mapper call failed: {e}")))?;
        Ok(RunOutcome {
            mapper: listing,
            result,
            violations,
            took,
        })
    }

    /// The copy `key`, from the cache or loaded on a blocking thread.
    async fn load(
        &self,
        key: CopyKey,
        from: LoadFrom,
    ) -> Result<Arc<LoadedMapper>, PlaygroundError> {
        if let Some(hit) = self.cached(&key) {
            return Ok(hit);
        }
        let _one_at_a_time = self
            .loading
            .acquire()
            .await
            .map_err(|e| PlaygroundError::Stage(e.to_string()))?;
        if let Some(hit) = self.cached(&key) {
            return Ok(hit);
        }
        let registry = self.registry.clone();
        let overrides = key.overrides.clone();
        let loaded = tokio::task::spawn_blocking(move || match from {
            LoadFrom::Source(source, overrides) => registry
                .load_detached(source, &overrides)
                .map_err(PlaygroundError::from),
            LoadFrom::Bytes(stem, bytes) => load_bytes(&registry, &stem, &bytes, &overrides),
        })
        .await
        .map_err(|e| PlaygroundError::Stage(format!("the loading task failed: {e}")))??;
        let loaded = Arc::new(loaded);
        let mut cache = self.loaded();
        if cache.len() >= MAX_LOADED {
            cache.pop_front();
        }
        cache.push_back((key, loaded.clone()));
        Ok(loaded)
    }

    fn cached(&self, key: &CopyKey) -> Option<Arc<LoadedMapper>> {
        let mut cache = self.loaded();
        let at = cache.iter().position(|(k, _)| k == key)?;
        // Most recently used last.
        let entry = cache.remove(at)?;
        let hit = entry.1.clone();
        cache.push_back(entry);
        Some(hit)
    }

    fn evict(&self, sha256: &str) {
        self.loaded().retain(|(k, _)| k.sha256 != sha256);
    }

    /// Drops expired uploads and the copies of uploads no longer kept.
    fn forget_dropped_uploads(&self) {
        let now = Instant::now();
        let mut uploads = self.uploads();
        uploads.retain(|u| u.expires > now);
        let kept: Vec<String> = uploads
            .iter()
            .map(|u| format!("upload:{}", u.view.id))
            .collect();
        drop(uploads);
        self.loaded()
            .retain(|(k, _)| !k.origin.starts_with("upload:") || kept.contains(&k.origin));
    }

    fn uploads(&self) -> std::sync::MutexGuard<'_, VecDeque<Upload>> {
        self.uploads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn loaded(&self) -> std::sync::MutexGuard<'_, VecDeque<(CopyKey, Arc<LoadedMapper>)>> {
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

enum LoadFrom {
    Source(MapperSource, Settings),
    /// An upload: its file stem (whose settings `describe` sees) and bytes.
    Bytes(String, Bytes),
}

/// The listing of an uploaded copy, naming the upload rather than its staging file.
fn upload_listing(loaded: &LoadedMapper, stem: &str) -> MapperListing {
    MapperListing {
        file: format!("upload:{stem}.wasm"),
        ..MapperListing::of(loaded)
    }
}

/// A safe file stem for an uploaded name: its last path component without `.wasm`,
/// limited to `A-Z a-z 0-9 . _ -` (64 at most); `upload` when nothing is left.
pub(crate) fn file_stem(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let base = base
        .strip_suffix(".wasm")
        .or_else(|| base.strip_suffix(".WASM"))
        .unwrap_or(base);
    let stem: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(64)
        .collect();
    let stem = stem.trim_start_matches('.');
    if stem.is_empty() {
        "upload".to_owned()
    } else {
        stem.to_owned()
    }
}

/// Loads uploaded `bytes` through a file in a private temporary folder (the loader
/// reads files), never inside `MAPPERS_DIR`; the folder is removed afterwards.
fn load_bytes(
    registry: &MapperRegistry,
    stem: &str,
    bytes: &[u8],
    overrides: &Settings,
) -> Result<LoadedMapper, PlaygroundError> {
    let stage = StagingDir::create(registry.mappers_dir())?;
    let path = stage.0.join(format!("{stem}.wasm"));
    std::fs::write(&path, bytes).map_err(|e| PlaygroundError::Stage(e.to_string()))?;
    let loaded = registry.load_detached(MapperSource::File(path), overrides);
    drop(stage);
    Ok(loaded?)
}

/// A private temporary folder, removed on drop.
struct StagingDir(PathBuf);

impl StagingDir {
    fn create(mappers_dir: Option<&Path>) -> Result<Self, PlaygroundError> {
        let stage = |e: std::io::Error| PlaygroundError::Stage(e.to_string());
        let base = std::env::temp_dir();
        if let Some(dir) = mappers_dir {
            let (base, dir) = (base.canonicalize().map_err(stage)?, dir.canonicalize());
            if dir.is_ok_and(|dir| base.starts_with(&dir)) {
                return Err(PlaygroundError::Stage(
                    "the temporary folder lies inside MAPPERS_DIR; point TMPDIR elsewhere"
                        .to_owned(),
                ));
            }
        }
        let path = base.join(format!("pakaura-playground-{}", Uuid::new_v4().simple()));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path).map_err(stage)?;
        Ok(Self(path))
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploaded_names_become_safe_stems() {
        assert_eq!(file_stem("acme_audit.wasm"), "acme_audit");
        assert_eq!(file_stem("../../etc/passwd"), "passwd");
        assert_eq!(file_stem("C:\\mappers\\v2.WASM"), "v2");
        assert_eq!(file_stem("..wasm"), "upload");
        assert_eq!(file_stem("a b$c.wasm"), "abc");
        assert_eq!(file_stem(""), "upload");
    }

    #[test]
    fn staging_folders_are_private_and_removed() {
        let stage = StagingDir::create(None).unwrap();
        let path = stage.0.clone();
        assert!(path.is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        drop(stage);
        assert!(!path.exists());
    }
}
