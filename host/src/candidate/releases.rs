//! Promotions and rollbacks, kept in the database so every replica runs the same set.
//!
//! A promotion records the candidate's component as the latest release of its mapper
//! name, then makes the live set the configured one (`MAPPER_BUILTIN`, `MAPPERS_DIR`)
//! with the latest release of each name in place. A rollback undoes the latest
//! promotion no rollback has undone yet: its name goes back to the component it ran
//! before (an earlier release, or the mapper directory's). Every replica looks at the
//! latest generation every `MAPPER_SYNC_INTERVAL` and at start, and applies what moved;
//! a release is one row, so a replica applies all of it or none.
//!
//! Components a release names are compiled once per process and kept (by SHA-256), so
//! a rollback to the previous set does not wait for a compile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use super::Candidate;
use crate::instruments::MAPPER_RELEASES;
use crate::mapper::schema::compat::BreakingChange;
use crate::mapper::{LoadError, LoadedMapper, MapperRegistry};
use crate::store::{Db, MapperRelease, NewMapperRelease, ReleasedComponent, StoreError};

/// Why a promotion or a rollback did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// Promoting the candidate would break consumers of the live set, and
    /// `allow_breaking` was not given.
    #[error("{}", breaking_message(.0))]
    Breaking(Vec<BreakingChange>),
    /// A stored component no longer loads (the runtime's limits or settings changed).
    #[error("{0}")]
    Refused(#[from] LoadError),
    /// Another promotion or rollback was recorded between reading the state and
    /// recording this one.
    #[error(
        "another promotion or rollback was recorded at the same time; read the releases and try again"
    )]
    Conflict,
    #[error("nothing to roll back: no promotion is live")]
    NothingToRollBack,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn breaking_message(changes: &[BreakingChange]) -> String {
    let all: Vec<String> = changes.iter().map(ToString::to_string).collect();
    format!(
        "promoting it would break consumers of the live set ({} breaking change{}; promote with allow_breaking=true to accept them): {}",
        changes.len(),
        if changes.len() == 1 { "" } else { "s" },
        all.join("; ")
    )
}

/// Promotions, rollbacks and keeping this replica in step with them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Releases {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    registry: MapperRegistry,
    /// Released components compiled by this process, by SHA-256.
    compiled: Mutex<HashMap<String, LoadedMapper>>,
    /// Serialises this replica's promotions, rollbacks and syncs.
    one_at_a_time: tokio::sync::Mutex<()>,
}

/// Releases listed at most.
pub const LISTED: i64 = 100;

impl Releases {
    pub fn new(db: Db, registry: MapperRegistry) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                registry,
                compiled: Mutex::default(),
                one_at_a_time: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Applies the database's releases if they moved past the live set's; returns
    /// whether they had.
    pub async fn sync(&self) -> Result<bool, ReleaseError> {
        let _one = self.inner.one_at_a_time.lock().await;
        self.sync_locked().await
    }

    async fn sync_locked(&self) -> Result<bool, ReleaseError> {
        let generation = self.inner.db.release_generation().await?;
        if generation == self.inner.registry.overlay_generation() {
            return Ok(false);
        }
        let components = self.inner.db.released_components().await?;
        let overlay = self.compile(components).await?;
        let summary = format!("release {generation} applied from the database");
        let registry = self.inner.registry.clone();
        tokio::task::spawn_blocking(move || {
            registry.install_overlay(generation, overlay, "release", &summary)
        })
        .await
        .map_err(|e| LoadError::Engine(format!("the release task failed: {e}")))?;
        Ok(true)
    }

    /// Makes `candidate` live under its name for operator `by`, on every replica; a
    /// candidate that would break consumers of the live set is refused unless
    /// `allow_breaking`.
    pub async fn promote(
        &self,
        candidate: &Candidate,
        by: &str,
        allow_breaking: bool,
    ) -> Result<MapperRelease, ReleaseError> {
        let _one = self.inner.one_at_a_time.lock().await;
        // Decided on the database's latest state (not this replica's, which may lag by
        // up to MAPPER_SYNC_INTERVAL); recorded only on top of it.
        let parent = self.inner.db.release_generation().await?;
        let name = candidate.mapper.name().to_owned();
        let others = self.released_except(&name).await?;
        let mut overlay = self.compile(others).await?;
        overlay.push(candidate.mapper.copy());
        let (_, breaking) = self.inner.registry.preview_overlay(&overlay);
        if !breaking.is_empty() && !allow_breaking {
            return Err(ReleaseError::Breaking(breaking));
        }
        for change in &breaking {
            tracing::warn!(%change, "breaking schema change allowed by the promotion (allow_breaking)");
        }
        let live = self.inner.registry.current();
        let previous = live.get(&name);
        let file = candidate.mapper.source().to_string();
        let release = NewMapperRelease {
            action: "promote",
            mapper: &name,
            component: Some(&candidate.bytes),
            file: Some(&file),
            version: Some(candidate.mapper.version()),
            sha256: Some(candidate.mapper.sha256()),
            previous_version: previous.map(LoadedMapper::version),
            previous_sha256: previous.map(LoadedMapper::sha256),
            by,
            reverts: None,
        };
        let generation = self.record(parent, &release).await?;
        self.remember(&candidate.mapper);
        let summary = format!(
            "{by} promoted {name} {} (release {generation})",
            candidate.mapper.version()
        );
        self.install(generation, overlay, by, summary).await?;
        metrics::counter!(MAPPER_RELEASES, "action" => "promote").increment(1);
        self.release(generation).await
    }

    /// Undoes the latest promotion not undone yet, for operator `by`, on every replica.
    pub async fn rollback(&self, by: &str) -> Result<MapperRelease, ReleaseError> {
        let _one = self.inner.one_at_a_time.lock().await;
        // As a promotion; and nothing the rollback undoes is compiled, so a release whose
        // component no longer loads here can still be rolled back.
        let parent = self.inner.db.release_generation().await?;
        let (promotion, before) = self
            .inner
            .db
            .rollback_target()
            .await?
            .ok_or(ReleaseError::NothingToRollBack)?;
        let name = promotion.mapper.clone();
        let mut components = self.released_except(&name).await?;
        let restored = before.filter(|b| b.component.is_some());
        components.extend(restored.clone());
        let overlay = self.compile(components).await?;
        let live = self.inner.registry.current();
        let previous = live.get(&name);
        let release = NewMapperRelease {
            action: "rollback",
            mapper: &name,
            component: restored.as_ref().and_then(|r| r.component.as_deref()),
            file: restored.as_ref().and_then(|r| r.file.as_deref()),
            version: restored.as_ref().and_then(|r| r.version.as_deref()),
            sha256: restored.as_ref().and_then(|r| r.sha256.as_deref()),
            previous_version: previous.map(LoadedMapper::version),
            previous_sha256: previous.map(LoadedMapper::sha256),
            by,
            reverts: Some(promotion.generation),
        };
        let generation = self.record(parent, &release).await?;
        let to = match &restored {
            Some(r) => format!("release of {}", r.version.as_deref().unwrap_or("?")),
            None => "the configured component".to_owned(),
        };
        let summary = format!(
            "{by} rolled {name} back to {to}, undoing release {} (release {generation})",
            promotion.generation
        );
        self.install(generation, overlay, by, summary).await?;
        metrics::counter!(MAPPER_RELEASES, "action" => "rollback").increment(1);
        self.release(generation).await
    }

    /// The latest releases, the newest first.
    pub async fn list(&self) -> Result<Vec<MapperRelease>, StoreError> {
        self.inner.db.releases(LISTED).await
    }

    /// Looks for releases every `every` until `stop` turns true.
    pub async fn run(&self, every: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            if let Err(e) = self.sync().await {
                tracing::warn!(error = %e, "applying the mapper releases failed; will try again");
            }
        }
    }

    /// The latest release of every mapper name but `name`.
    async fn released_except(&self, name: &str) -> Result<Vec<ReleasedComponent>, StoreError> {
        let mut components = self.inner.db.released_components().await?;
        components.retain(|c| c.mapper != name);
        Ok(components)
    }

    async fn record(
        &self,
        parent: i64,
        release: &NewMapperRelease<'_>,
    ) -> Result<i64, ReleaseError> {
        self.inner
            .db
            .record_release(parent, release)
            .await?
            .ok_or(ReleaseError::Conflict)
    }

    async fn release(&self, generation: i64) -> Result<MapperRelease, ReleaseError> {
        Ok(self.inner.db.release(generation).await?)
    }

    async fn install(
        &self,
        generation: i64,
        overlay: Vec<LoadedMapper>,
        by: &str,
        summary: String,
    ) -> Result<(), ReleaseError> {
        let registry = self.inner.registry.clone();
        let by = by.to_owned();
        tokio::task::spawn_blocking(move || {
            registry.install_overlay(generation, overlay, &by, &summary)
        })
        .await
        .map_err(|e| LoadError::Engine(format!("the release task failed: {e}")))?;
        Ok(())
    }

    fn remember(&self, mapper: &LoadedMapper) {
        let mut compiled = self
            .inner
            .compiled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        compiled
            .entry(mapper.sha256().to_owned())
            .or_insert_with(|| mapper.copy());
    }

    /// The mappers `components` name (those with a component), compiled once per
    /// process, on a blocking thread.
    async fn compile(
        &self,
        components: Vec<ReleasedComponent>,
    ) -> Result<Vec<LoadedMapper>, ReleaseError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut overlay = Vec::new();
            for c in components {
                let (Some(bytes), Some(sha)) = (c.component, c.sha256) else {
                    continue;
                };
                let known = this
                    .inner
                    .compiled
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&sha)
                    .map(LoadedMapper::copy);
                let mapper = match known {
                    Some(m) => m,
                    None => {
                        let label = c.file.unwrap_or_else(|| format!("{}.wasm", c.mapper));
                        let m = this.inner.registry.load_stored(&label, Arc::from(bytes))?;
                        this.remember(&m);
                        m
                    }
                };
                overlay.push(mapper);
            }
            Ok(overlay)
        })
        .await
        .map_err(|e| LoadError::Engine(format!("the release task failed: {e}")))?
    }
}
