//! Mapper releases: promotions of candidates and their rollbacks, in order, with the
//! component each made live, so that every replica (and a restarted one) runs the same
//! set. The latest row of a mapper name says which component that name runs over the
//! mapper directory's; a NULL component gives the name back to the directory.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Db, StoreError, with_pool, with_writer};

/// One release as listed (without its component).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct MapperRelease {
    pub generation: i64,
    /// `promote` or `rollback`.
    pub action: String,
    pub mapper: String,
    /// The component now live under the name; none after a rollback to the mapper
    /// directory's component.
    pub version: Option<String>,
    pub sha256: Option<String>,
    pub file: Option<String>,
    /// What ran under the name before.
    pub previous_version: Option<String>,
    pub previous_sha256: Option<String>,
    /// The admin token's name that asked.
    #[sqlx(rename = "released_by")]
    pub by: String,
    #[sqlx(rename = "released_at")]
    #[serde(with = "crate::domain::task::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// A rollback: the promotion it undid.
    pub reverts: Option<i64>,
}

/// The component a release made live under a name (none: the directory's).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReleasedComponent {
    pub mapper: String,
    pub component: Option<Vec<u8>>,
    pub file: Option<String>,
    pub version: Option<String>,
    pub sha256: Option<String>,
}

/// A release to record.
#[derive(Debug, Clone)]
pub struct NewMapperRelease<'a> {
    pub action: &'static str,
    pub mapper: &'a str,
    pub component: Option<&'a [u8]>,
    pub file: Option<&'a str>,
    pub version: Option<&'a str>,
    pub sha256: Option<&'a str>,
    pub previous_version: Option<&'a str>,
    pub previous_sha256: Option<&'a str>,
    pub by: &'a str,
    pub reverts: Option<i64>,
}

impl Db {
    /// The latest release's generation; 0 before the first.
    pub async fn release_generation(&self) -> Result<i64, StoreError> {
        with_pool!(self, |pool| async {
            let generation: Option<i64> =
                sqlx::query_scalar("SELECT MAX(generation) FROM mapper_releases")
                    .fetch_one(pool)
                    .await?;
            Ok(generation.unwrap_or(0))
        })
    }

    /// The latest release of each mapper name, by name.
    pub async fn released_components(&self) -> Result<Vec<ReleasedComponent>, StoreError> {
        with_pool!(self, |pool| async {
            Ok(sqlx::query_as(
                "SELECT r.mapper, r.component, r.file, r.version, r.sha256 FROM mapper_releases r \
                 WHERE r.generation = (SELECT MAX(x.generation) FROM mapper_releases x \
                 WHERE x.mapper = r.mapper) ORDER BY r.mapper",
            )
            .fetch_all(pool)
            .await?)
        })
    }

    /// The `limit` latest releases, the newest first.
    pub async fn releases(&self, limit: i64) -> Result<Vec<MapperRelease>, StoreError> {
        with_pool!(self, |pool| async {
            Ok(sqlx::query_as(
                "SELECT generation, action, mapper, version, sha256, file, previous_version, \
                 previous_sha256, released_by, released_at, reverts FROM mapper_releases \
                 ORDER BY generation DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// MapperRelease `generation`.
    pub async fn release(&self, generation: i64) -> Result<MapperRelease, StoreError> {
        with_pool!(self, |pool| async {
            Ok(sqlx::query_as(
                "SELECT generation, action, mapper, version, sha256, file, previous_version, \
                 previous_sha256, released_by, released_at, reverts FROM mapper_releases \
                 WHERE generation = $1",
            )
            .bind(generation)
            .fetch_one(pool)
            .await?)
        })
    }

    /// The latest promotion no rollback has undone, and what its mapper name ran before
    /// it (none: the directory's component).
    pub async fn rollback_target(
        &self,
    ) -> Result<Option<(MapperRelease, Option<ReleasedComponent>)>, StoreError> {
        with_pool!(self, |pool| async {
            let promotion: Option<MapperRelease> = sqlx::query_as(
                "SELECT generation, action, mapper, version, sha256, file, previous_version, \
                 previous_sha256, released_by, released_at, reverts FROM mapper_releases p \
                 WHERE action = 'promote' AND NOT EXISTS \
                 (SELECT 1 FROM mapper_releases r WHERE r.reverts = p.generation) \
                 ORDER BY generation DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?;
            let Some(promotion) = promotion else {
                return Ok(None);
            };
            let before: Option<ReleasedComponent> = sqlx::query_as(
                "SELECT mapper, component, file, version, sha256 FROM mapper_releases \
                 WHERE mapper = $1 AND generation < $2 ORDER BY generation DESC LIMIT 1",
            )
            .bind(&promotion.mapper)
            .bind(promotion.generation)
            .fetch_optional(pool)
            .await?;
            Ok(Some((promotion, before)))
        })
    }

    /// Records `release` on top of generation `parent`; returns its generation, or
    /// `None` when another release was recorded on `parent` first (the caller decided on
    /// a state that is no longer the latest).
    pub async fn record_release(
        &self,
        parent: i64,
        release: &NewMapperRelease<'_>,
    ) -> Result<Option<i64>, StoreError> {
        let inserted = with_writer!(self, |pool| async {
            sqlx::query_scalar(
                "INSERT INTO mapper_releases (action, mapper, component, file, version, sha256, \
                 previous_version, previous_sha256, released_by, released_at, reverts, parent) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING generation",
            )
            .bind(release.action)
            .bind(release.mapper)
            .bind(release.component)
            .bind(release.file)
            .bind(release.version)
            .bind(release.sha256)
            .bind(release.previous_version)
            .bind(release.previous_sha256)
            .bind(release.by)
            .bind(Utc::now())
            .bind(release.reverts)
            .bind(parent)
            .fetch_one(pool)
            .await
        });
        match inserted {
            Ok(generation) => Ok(Some(generation)),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
