//! Vacuuming the relay's task queue table on PostgreSQL.
//!
//! Every task with events to publish inserts a row into `relay_tasks`, claims it and
//! deletes it, so the table gathers dead rows at about the rate tasks are created while
//! it holds only the few hundred in flight. Autovacuum comes by once per
//! `autovacuum_naptime` at most (a server setting no table parameter shortens; one
//! minute by default), and not at all where it is off. Meanwhile the claim walks the
//! `ready_at` index past the dead rows' entries, and once the table has grown to
//! thousands of pages a plan made from fresh statistics (a few rows) reads all of them
//! at every claim. So the relay vacuums the table itself, every `RELAY_VACUUM_INTERVAL`,
//! and it stays a few hundred pages (BENCHMARKS.md, "The relay vacuums its own task
//! queue": the claim's cost fell to a half to a quarter).
//!
//! SQLite has nothing to vacuum here: a deleted row leaves its B-tree page at once.

use super::{Db, PgDb, StoreError, timed};

/// Whether the relay may vacuum its queue table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueVacuum {
    /// The database role may vacuum it: it owns the table or the database (or is a
    /// member of a role that does), is a superuser, or on PostgreSQL 17 and later holds
    /// the MAINTAIN privilege on it.
    Allowed,
    /// `role` may not: PostgreSQL would skip the table, with a warning, at every vacuum.
    NotPermitted { role: String },
    /// The database is SQLite, whose tables need no vacuuming for this.
    Unneeded,
}

/// The role, and whether it may vacuum `relay_tasks`: PostgreSQL lets the table's owner
/// and the database's owner (members of either, and superusers), and from 17 on also a
/// role granted MAINTAIN on the table. `CASE` keeps PostgreSQL before 17, which knows no
/// MAINTAIN privilege, from being asked about it.
const MAY_VACUUM: &str = "SELECT current_user::text, pg_has_role(c.relowner, 'USAGE') \
     OR pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE') \
     OR CASE WHEN current_setting('server_version_num')::int >= 170000 \
        THEN has_table_privilege(c.oid, 'MAINTAIN') ELSE false END \
     FROM pg_class c WHERE c.oid = 'relay_tasks'::regclass";

/// `SKIP_LOCKED`: another replica's vacuum of the same table, autovacuum's, or an
/// `ALTER TABLE` holding it makes this one a no-op rather than a wait (PostgreSQL then
/// sends a warning, "skipping vacuum ... lock not available", which the host logs).
/// `TRUNCATE false`: the empty pages at the table's end stay; giving them back would
/// take the table's exclusive lock, which stops every claim while it is held, every few
/// seconds (autovacuum's visits still give them back). Sent as a simple query: VACUUM
/// runs outside any transaction block or pipeline.
const VACUUM: &str = "VACUUM (SKIP_LOCKED, TRUNCATE false) relay_tasks";

impl Db {
    /// Whether [`Db::vacuum_queue`] can do anything on this database with this role.
    pub async fn may_vacuum_queue(&self) -> Result<QueueVacuum, StoreError> {
        let Db::Postgres(PgDb { pool, .. }) = self else {
            return Ok(QueueVacuum::Unneeded);
        };
        let (role, allowed): (String, bool) = sqlx::query_as(MAY_VACUUM).fetch_one(pool).await?;
        Ok(if allowed {
            QueueVacuum::Allowed
        } else {
            QueueVacuum::NotPermitted { role }
        })
    }

    /// Vacuums the relay's task queue table (PostgreSQL; nothing on SQLite), unless
    /// another vacuum holds it. Timed as the store call `vacuum_queue`.
    pub async fn vacuum_queue(&self) -> Result<(), StoreError> {
        let Db::Postgres(PgDb { pool, .. }) = self else {
            return Ok(());
        };
        timed("vacuum_queue", sqlx::raw_sql(VACUUM).execute(pool)).await?;
        Ok(())
    }
}
