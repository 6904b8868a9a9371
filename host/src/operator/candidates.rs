//! Candidate mappers for the operator: upload, history diff (a job with progress and a
//! cancel), shadow run, promote and roll back. The work itself is
//! [`crate::candidate`]'s; this keeps this replica's candidates and their jobs.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;
use serde::Serialize;
use uuid::Uuid;

use super::Operator;
use crate::candidate::history::{self, DiffReport, Progress};
use crate::candidate::shadow::{Shadow, ShadowStatus};
use crate::candidate::{Candidate, CandidateInfo, Pair, releases::ReleaseError};
use crate::mapper::LoadError;
use crate::store::{HistoryWindow, MapperRelease, StoreError};

/// Candidates one replica keeps at most; the oldest not shadowing goes first.
pub const MAX_CANDIDATES: usize = 8;
/// Samples of each kind a history diff keeps.
const DIFF_SAMPLES: usize = 5;

/// Why a candidate operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CandidateError {
    #[error("no candidate {0} on this replica")]
    NotFound(Uuid),
    /// The component was refused (the reason says why).
    #[error("{0}")]
    Refused(#[from] LoadError),
    #[error("a history diff of candidate {0} is running on this replica; cancel it or wait")]
    DiffRunning(Uuid),
    #[error("{0}")]
    BadWindow(String),
    #[error("no history diff of candidate {0} yet")]
    NoDiff(Uuid),
    #[error("no shadow run")]
    NoShadow,
    #[error("the shadow run could not start: {0}")]
    Thread(#[from] std::io::Error),
    #[error("MAPPERS_SHADOW_DIR {dir}: {reason}")]
    ShadowDir { dir: String, reason: String },
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A candidate as the admin API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CandidateView {
    pub id: Uuid,
    #[serde(with = "crate::domain::task::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub uploaded_at: chrono::DateTime<Utc>,
    pub uploaded_by: String,
    #[serde(flatten)]
    pub info: CandidateInfo,
    /// Its latest history diff, without the report.
    pub diff: Option<DiffJob>,
    /// Whether a shadow run of it is running.
    pub shadowing: bool,
}

/// A history diff job.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DiffJob {
    /// `running`, `done`, `cancelled` or `failed`.
    pub state: &'static str,
    /// Mutations compared so far.
    pub done: u64,
    /// Mutations the window holds.
    pub total: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<DiffReport>,
}

/// This replica's candidates.
#[derive(Debug, Default)]
pub struct Candidates {
    entries: Mutex<Vec<Entry>>,
    shadow: Mutex<Option<Arc<Shadow>>>,
}

#[derive(Debug)]
struct Entry {
    candidate: Arc<Candidate>,
    diff: Option<Job>,
}

#[derive(Debug, Clone)]
struct Job {
    progress: Arc<Progress>,
    outcome: Arc<Mutex<Option<Result<DiffReport, String>>>>,
}

impl Job {
    fn view(&self, with_report: bool) -> DiffJob {
        let outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        let (state, error, report) = match &*outcome {
            None => ("running", None, None),
            Some(Ok(report)) => (
                if report.cancelled {
                    "cancelled"
                } else {
                    "done"
                },
                None,
                with_report.then(|| report.clone()),
            ),
            Some(Err(e)) => ("failed", Some(e.clone()), None),
        };
        DiffJob {
            state,
            done: self.progress.done(),
            total: self.progress.total(),
            error,
            report,
        }
    }

    fn running(&self) -> bool {
        self.outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Operator {
    fn candidates_store(&self) -> &Candidates {
        &self.inner.candidates
    }

    fn view(&self, entry: &Entry) -> CandidateView {
        let c = &entry.candidate;
        let shadowing = lock(&self.candidates_store().shadow)
            .as_ref()
            .is_some_and(|s| s.is_running() && s.candidate_id() == c.id);
        CandidateView {
            id: c.id,
            uploaded_at: c.uploaded_at,
            uploaded_by: c.uploaded_by.clone(),
            info: CandidateInfo::of(&c.mapper, &self.inner.mappers.current()),
            diff: entry.diff.as_ref().map(|j| j.view(false)),
            shadowing,
        }
    }

    /// Loads `bytes` as a candidate (labelled `file`) with the live set's runtime,
    /// limits and settings, for operator `by`; nothing changes in the live set.
    pub async fn upload_candidate(
        &self,
        file: &str,
        bytes: Vec<u8>,
        by: &str,
    ) -> Result<CandidateView, CandidateError> {
        let registry = self.inner.mappers.clone();
        let bytes: Arc<[u8]> = Arc::from(bytes);
        let label = file.to_owned();
        let loaded = bytes.clone();
        let mapper = tokio::task::spawn_blocking(move || registry.load_stored(&label, loaded))
            .await
            .map_err(|e| LoadError::Engine(format!("the loading task failed: {e}")))??;
        let candidate = Arc::new(Candidate {
            id: Uuid::new_v4(),
            mapper,
            bytes,
            uploaded_at: Utc::now(),
            uploaded_by: by.to_owned(),
        });
        let entry = Entry {
            candidate,
            diff: None,
        };
        let view = self.view(&entry);
        tracing::info!(candidate = %view.info.describe(), by, "candidate mapper uploaded");
        let shadowed = self.shadowed_id();
        let mut entries = lock(&self.candidates_store().entries);
        while entries.len() >= MAX_CANDIDATES {
            match entries
                .iter()
                .position(|e| Some(e.candidate.id) != shadowed)
            {
                Some(oldest) => {
                    let gone = entries.remove(oldest);
                    if let Some(job) = gone.diff {
                        job.progress.cancel();
                    }
                }
                None => break,
            }
        }
        entries.push(entry);
        Ok(view)
    }

    /// This replica's candidates, the oldest first.
    pub fn candidates(&self) -> Vec<CandidateView> {
        lock(&self.candidates_store().entries)
            .iter()
            .map(|e| self.view(e))
            .collect()
    }

    /// `read` of candidate `id`'s entry, under the entries' lock.
    fn with_entry<T>(&self, id: Uuid, read: impl FnOnce(&Entry) -> T) -> Result<T, CandidateError> {
        lock(&self.candidates_store().entries)
            .iter()
            .find(|e| e.candidate.id == id)
            .map(read)
            .ok_or(CandidateError::NotFound(id))
    }

    /// Candidate `id`.
    pub fn candidate(&self, id: Uuid) -> Result<CandidateView, CandidateError> {
        self.with_entry(id, |e| self.view(e))
    }

    fn candidate_arc(&self, id: Uuid) -> Result<Arc<Candidate>, CandidateError> {
        self.with_entry(id, |e| e.candidate.clone())
    }

    /// Forgets candidate `id`: cancels its diff and stops its shadow run.
    pub fn remove_candidate(&self, id: Uuid) -> Result<(), CandidateError> {
        let mut entries = lock(&self.candidates_store().entries);
        let at = entries
            .iter()
            .position(|e| e.candidate.id == id)
            .ok_or(CandidateError::NotFound(id))?;
        let gone = entries.remove(at);
        drop(entries);
        if let Some(job) = gone.diff {
            job.progress.cancel();
        }
        if self.shadowed_id() == Some(id) {
            let _ = self.stop_shadow();
        }
        Ok(())
    }

    /// Starts a history diff of candidate `id` over `window` against the live set.
    pub fn start_diff(&self, id: Uuid, window: HistoryWindow) -> Result<DiffJob, CandidateError> {
        window.check().map_err(CandidateError::BadWindow)?;
        let mut entries = lock(&self.candidates_store().entries);
        if !entries.iter().any(|e| e.candidate.id == id) {
            return Err(CandidateError::NotFound(id));
        }
        // One history diff at a time per replica: each keeps a core busy while it runs.
        if let Some(running) = entries
            .iter()
            .find(|e| e.diff.as_ref().is_some_and(Job::running))
        {
            return Err(CandidateError::DiffRunning(running.candidate.id));
        }
        let entry = entries
            .iter_mut()
            .find(|e| e.candidate.id == id)
            .ok_or(CandidateError::NotFound(id))?;
        let job = Job {
            progress: Arc::default(),
            outcome: Arc::default(),
        };
        let pair = Arc::new(Pair::new(
            &self.inner.mappers.current(),
            &entry.candidate.mapper,
        ));
        let db = self.inner.db.clone();
        let running = job.clone();
        tokio::spawn(async move {
            let outcome = history::run(&db, pair, &window, DIFF_SAMPLES, &running.progress)
                .await
                .map_err(|e| e.to_string());
            if let Err(e) = &outcome {
                tracing::warn!(error = %e, "history diff failed");
            }
            *lock(&running.outcome) = Some(outcome);
        });
        let view = job.view(false);
        entry.diff = Some(job);
        Ok(view)
    }

    /// The latest history diff of candidate `id`, with its report once finished.
    pub fn diff(&self, id: Uuid) -> Result<DiffJob, CandidateError> {
        self.with_entry(id, |e| e.diff.as_ref().map(|j| j.view(true)))?
            .ok_or(CandidateError::NoDiff(id))
    }

    /// Asks the running history diff of candidate `id` to stop.
    pub fn cancel_diff(&self, id: Uuid) -> Result<DiffJob, CandidateError> {
        self.with_entry(id, |e| {
            e.diff.as_ref().map(|j| {
                j.progress.cancel();
                j.view(false)
            })
        })?
        .ok_or(CandidateError::NoDiff(id))
    }

    fn shadowed_id(&self) -> Option<Uuid> {
        lock(&self.candidates_store().shadow)
            .as_ref()
            .filter(|s| s.is_running())
            .map(|s| s.candidate_id())
    }

    /// Shadows candidate `id` (stopping any other shadow run) for operator `by`.
    pub fn start_shadow(&self, id: Uuid, by: &str) -> Result<ShadowStatus, CandidateError> {
        let candidate = self.candidate_arc(id)?;
        let pair = Pair::new(&self.inner.mappers.current(), &candidate.mapper);
        let shadow = Arc::new(Shadow::start(pair, id, by)?);
        let status = shadow.status();
        // The relay's shadow changes under the same lock, so it is always the one shown.
        let mut current = lock(&self.candidates_store().shadow);
        if let Some(before) = current.replace(shadow.clone()) {
            before.stop();
        }
        self.inner.relay.set_shadow(Some(shadow));
        Ok(status)
    }

    /// The latest shadow run's status (running or stopped).
    pub fn shadow_status(&self) -> Result<ShadowStatus, CandidateError> {
        lock(&self.candidates_store().shadow)
            .as_ref()
            .map(|s| s.status())
            .ok_or(CandidateError::NoShadow)
    }

    /// Stops the shadow run; its status stays readable.
    pub fn stop_shadow(&self) -> Result<ShadowStatus, CandidateError> {
        let current = lock(&self.candidates_store().shadow);
        let shadow = current
            .as_ref()
            .filter(|s| s.is_running())
            .ok_or(CandidateError::NoShadow)?;
        self.inner.relay.set_shadow(None);
        shadow.stop();
        Ok(shadow.status())
    }

    /// Shadows the one candidate in `dir` from start (`MAPPERS_SHADOW_DIR`).
    pub async fn shadow_from_dir(&self, dir: &Path) -> Result<ShadowStatus, CandidateError> {
        let shown = dir.display().to_string();
        let bad = |reason: String| CandidateError::ShadowDir {
            dir: shown.clone(),
            reason,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| bad(e.to_string()))? {
            let path = entry.map_err(|e| bad(e.to_string()))?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !name.starts_with('.')
                && path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("wasm"))
                && path.is_file()
            {
                files.push((name, path));
            }
        }
        let (name, path) = match files.len() {
            1 => files.remove(0),
            0 => return Err(bad("holds no .wasm file".into())),
            _ => {
                let names: Vec<_> = files.iter().map(|(n, _)| n.as_str()).collect();
                return Err(bad(format!(
                    "holds {} .wasm files ({}); a shadow run takes one candidate",
                    names.len(),
                    names.join(", ")
                )));
            }
        };
        let bytes = std::fs::read(&path).map_err(|e| bad(format!("{name}: {e}")))?;
        let view = self
            .upload_candidate(&name, bytes, "MAPPERS_SHADOW_DIR")
            .await
            .map_err(|e| bad(e.to_string()))?;
        self.start_shadow(view.id, "MAPPERS_SHADOW_DIR")
    }

    /// Promotes candidate `id` into the live set for operator `by`, on every replica;
    /// refused if it would break consumers unless `allow_breaking`. A shadow run of it
    /// stops (it now is the live set).
    pub async fn promote(
        &self,
        id: Uuid,
        by: &str,
        allow_breaking: bool,
    ) -> Result<MapperRelease, CandidateError> {
        let candidate = self.candidate_arc(id)?;
        let release = self
            .inner
            .releases
            .promote(&candidate, by, allow_breaking)
            .await?;
        if self.shadowed_id() == Some(id) {
            let _ = self.stop_shadow();
        }
        Ok(release)
    }

    /// Undoes the latest promotion not undone yet, for operator `by`, on every replica.
    pub async fn rollback(&self, by: &str) -> Result<MapperRelease, CandidateError> {
        Ok(self.inner.releases.rollback(by).await?)
    }

    /// The latest promotions and rollbacks, the newest first.
    pub async fn releases(&self) -> Result<Vec<MapperRelease>, CandidateError> {
        Ok(self.inner.releases.list().await?)
    }
}
