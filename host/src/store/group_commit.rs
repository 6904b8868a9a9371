//! Group commit of task creations.
//!
//! A creation on its own costs a round trip per statement and a commit: on SQLite four
//! hand-offs to sqlx's worker thread (`BEGIN IMMEDIATE`, the task, its outbox row,
//! `COMMIT`) and a WAL append, all waiting for the one writer connection; on PostgreSQL
//! a statement, a pooled connection and a WAL flush of its own. Concurrent creations are
//! independent (each is a new task with a fresh id), so one task, [`run`], takes all
//! that are waiting and writes them together: on SQLite in one transaction of two
//! multi-row statements, on PostgreSQL in one statement (array parameters, so its text,
//! and the statement PostgreSQL prepares for it, is the same for one row or a hundred).
//! Each caller is answered only after the commit that holds its rows. Nobody waits for a
//! batch to fill: a creation arriving when the writer is free commits alone, at once;
//! under load, the creations that arrived while the batches in flight were committing
//! form the next. SQLite has one batch in flight (it has one writer); PostgreSQL up to half
//! its pool (eight with the default sixteen connections: with four, creations queued behind
//! the slots doubled the p90 under load, see BENCHMARKS.md),
//! so commits overlap as lone creations' did.
//!
//! The guarantees are a lone creation's: the caller's `Ok` means its task row and outbox row
//! are committed (durable as any other commit here, see the README), and a failed
//! batch commits none of its rows. A batch refused for its rows is retried one creation per
//! transaction, so one bad row fails only its own caller, with its own error; a batch that
//! failed because the database was busy or unavailable fails all its callers at once (each
//! gets a transient error, answered 503), as does a creation that waited longer than the
//! store's timeout (`DATABASE_TIMEOUT`) to be queued or to be taken into a batch. A creation
//! whose caller has gone (the request was dropped) before its batch is written is left out.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgConnection, PgPool, QueryBuilder, Sqlite, SqlitePool};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::outbox::{OutboxEntry, insert_outbox};
use super::tasks::insert_tasks;
use super::{WritePool, timed, transient};
use crate::domain::Task;

/// Most creations in one batch (on SQLite two statements of 8 and 7 parameters per row,
/// far below its 32,766).
const MAX_BATCH: usize = 128;

/// Creations waiting for the writer before callers wait to queue (back pressure).
const QUEUE: usize = 4 * MAX_BATCH;

/// Most PostgreSQL batches committing at once.
const POSTGRES_IN_FLIGHT: usize = 8;

/// One task creation to commit: the task row and its mutation's outbox row.
pub(super) struct NewTaskRows {
    pub(super) task: Task,
    pub(super) entry: OutboxEntry,
}

/// A creation waiting in the queue, with where to send its outcome.
struct Job {
    rows: NewTaskRows,
    /// Past this, the creation is refused as timed out instead of written.
    deadline: Instant,
    done: oneshot::Sender<Result<(), sqlx::Error>>,
}

/// Where batches are written.
#[derive(Clone)]
enum Writer {
    /// The one writer connection.
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Writer {
    /// Batches committing at once.
    fn in_flight(&self) -> usize {
        match self {
            Writer::Sqlite(_) => 1,
            // Half the pool at most: reads and other changes keep connections.
            Writer::Postgres(pool) => {
                (pool.options().get_max_connections() as usize / 2).clamp(1, POSTGRES_IN_FLIGHT)
            }
        }
    }

    /// Inserts `rows` (tasks, then their outbox rows, in the given order), committed
    /// together. On PostgreSQL a connection must be had by `deadline` (on SQLite the
    /// queue is the wait for the one writer, whose own acquire is bounded by the timeout).
    async fn insert(&self, rows: &[&NewTaskRows], deadline: Instant) -> Result<(), sqlx::Error> {
        match self {
            Writer::Sqlite(pool) => insert_sqlite(pool, rows).await,
            Writer::Postgres(pool) => {
                let mut conn = tokio::time::timeout_at(deadline, pool.acquire())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)??;
                insert_postgres(&mut conn, rows).await
            }
        }
    }
}

/// The queue of creations in front of the writer; cheap to clone.
#[derive(Clone, Debug)]
pub(super) struct CreateQueue {
    jobs: mpsc::Sender<Job>,
    /// How long a creation may wait to be queued, or in the queue.
    timeout: Duration,
}

impl CreateQueue {
    /// Starts the task that commits queued creations on SQLite's `writer`, each waiting
    /// at most `timeout` before it is written. It ends when the last handle on the queue
    /// is dropped.
    pub(super) fn sqlite(writer: SqlitePool, timeout: Duration) -> Self {
        Self::start(Writer::Sqlite(writer), timeout)
    }

    /// The same on PostgreSQL's `pool`.
    pub(super) fn postgres(pool: PgPool, timeout: Duration) -> Self {
        Self::start(Writer::Postgres(pool), timeout)
    }

    fn start(writer: Writer, timeout: Duration) -> Self {
        let (jobs, queued) = mpsc::channel(QUEUE);
        let in_flight = writer.in_flight();
        tokio::spawn(run(writer, queued, in_flight));
        Self { jobs, timeout }
    }

    /// Commits `rows`, alone or with other creations waiting at the same time; returns once
    /// the transaction holding them has committed (or failed).
    pub(super) async fn insert(&self, rows: NewTaskRows) -> Result<(), sqlx::Error> {
        let (done, outcome) = oneshot::channel();
        let deadline = Instant::now() + self.timeout;
        let job = Job {
            rows,
            deadline,
            done,
        };
        // A closed queue means the committing task is gone (the runtime is shutting down,
        // or it panicked): like a crashed driver worker, nothing was committed for us, or
        // we cannot know.
        match tokio::time::timeout_at(deadline, self.jobs.send(job)).await {
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
            Ok(Err(_)) => return Err(sqlx::Error::WorkerCrashed),
            Ok(Ok(())) => {}
        }
        outcome.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }
}

/// Takes queued creations, everything waiting (up to [`MAX_BATCH`]) each time a batch may
/// start, and commits each batch with at most `in_flight` committing at once (with one,
/// batches commit in the order their creations arrived).
async fn run(writer: Writer, mut queued: mpsc::Receiver<Job>, in_flight: usize) {
    let slots = Arc::new(Semaphore::new(in_flight));
    let mut taken = Vec::with_capacity(MAX_BATCH);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        if queued.recv_many(&mut taken, MAX_BATCH).await == 0 {
            return;
        }
        let now = Instant::now();
        let mut batch = Vec::with_capacity(taken.len());
        for job in taken.drain(..) {
            if job.done.is_closed() {
                continue;
            }
            if job.deadline <= now {
                let _ = job.done.send(Err(sqlx::Error::PoolTimedOut));
                continue;
            }
            batch.push(job);
        }
        if batch.is_empty() {
            continue;
        }
        let writer = writer.clone();
        tokio::spawn(async move {
            commit(&writer, batch).await;
            drop(slot);
        });
    }
}

/// Commits `batch` and answers each of its callers.
async fn commit(writer: &Writer, mut batch: Vec<Job>) {
    let rows: Vec<&NewTaskRows> = batch.iter().map(|job| &job.rows).collect();
    let deadline = batch.iter().map(|job| job.deadline).min().expect("a batch");
    let outcome = timed("create_tasks", writer.insert(&rows, deadline)).await;
    drop(rows);
    match outcome {
        Ok(()) => {
            for job in batch {
                let _ = job.done.send(Ok(()));
            }
        }
        Err(e) if batch.len() == 1 => {
            let _ = batch.pop().map(|job| job.done.send(Err(e)));
        }
        // Busy or unavailable: one by one would only wait again, once per creation.
        Err(e) if transient(&e) => {
            let text = e.to_string();
            let timed_out = matches!(e, sqlx::Error::PoolTimedOut);
            let mut first = Some(e);
            for job in batch {
                let e = first.take().unwrap_or_else(|| {
                    if timed_out {
                        sqlx::Error::PoolTimedOut
                    } else {
                        sqlx::Error::Io(std::io::Error::other(text.clone()))
                    }
                });
                let _ = job.done.send(Err(e));
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, rows = batch.len(), "batched creation refused; committing one by one");
            let mut jobs = batch.into_iter();
            while let Some(job) = jobs.next() {
                let outcome = if job.deadline <= Instant::now() {
                    Err(sqlx::Error::PoolTimedOut)
                } else {
                    writer.insert(&[&job.rows], job.deadline).await
                };
                // The database went away meanwhile: the rest would each wait for it again.
                let gone = matches!(&outcome, Err(e) if transient(e));
                let _ = job.done.send(outcome);
                if gone {
                    for job in jobs.by_ref() {
                        let _ = job.done.send(Err(sqlx::Error::PoolTimedOut));
                    }
                }
            }
        }
    }
}

/// SQLite: one write transaction of two multi-row inserts.
async fn insert_sqlite(writer: &SqlitePool, rows: &[&NewTaskRows]) -> Result<(), sqlx::Error> {
    let mut tx = writer.begin_write().await?;
    let mut tasks = QueryBuilder::<Sqlite>::new(insert_tasks!());
    tasks.push_values(rows, |mut b, r| {
        let t = &r.task;
        b.push_bind(t.id)
            .push_bind(t.user_id.as_str())
            .push_bind(t.title.as_str())
            .push_bind(t.description.as_deref())
            .push_bind(t.completed)
            .push_bind(t.due_date)
            .push_bind(t.created_at)
            .push_bind(t.updated_at);
    });
    tasks.build().execute(&mut *tx).await?;
    let mut outbox = QueryBuilder::<Sqlite>::new(insert_outbox!());
    outbox.push_values(rows, |mut b, r| {
        let e = &r.entry;
        b.push_bind(e.id)
            .push_bind(e.task_id)
            .push_bind(e.user_id.as_str())
            .push_bind(e.action)
            .push_bind(e.mutation.as_str())
            .push_bind(e.traceparent.as_deref())
            .push_bind(e.occurred_at);
    });
    outbox.build().execute(&mut *tx).await?;
    tx.commit().await
}

/// PostgreSQL: one statement (atomic, so the tasks and their outbox rows commit
/// together), whatever the number of rows: each column is one array parameter, unnested
/// in order.
async fn insert_postgres(
    conn: &mut PgConnection,
    rows: &[&NewTaskRows],
) -> Result<(), sqlx::Error> {
    fn column<'r, T>(rows: &[&'r NewTaskRows], f: impl Fn(&'r NewTaskRows) -> T) -> Vec<T> {
        rows.iter().map(|r| f(r)).collect()
    }
    sqlx::query(concat!(
        "WITH task AS (",
        insert_tasks!(),
        "SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::boolean[], \
         $6::timestamptz[], $7::timestamptz[], $8::timestamptz[])) ",
        insert_outbox!(),
        "SELECT * FROM UNNEST($9::uuid[], $1::uuid[], $2::text[], $10::text[], $11::text[], \
         $12::text[], $13::timestamptz[])"
    ))
    .bind(column(rows, |r| r.task.id))
    .bind(column(rows, |r| r.task.user_id.as_str()))
    .bind(column(rows, |r| r.task.title.as_str()))
    .bind(column(rows, |r| r.task.description.as_deref()))
    .bind(column(rows, |r| r.task.completed))
    .bind(column(rows, |r| r.task.due_date))
    .bind(column(rows, |r| r.task.created_at))
    .bind(column(rows, |r| r.task.updated_at))
    .bind(column(rows, |r| r.entry.id))
    .bind(column(rows, |r| r.entry.action))
    .bind(column(rows, |r| r.entry.mutation.as_str()))
    .bind(column(rows, |r| r.entry.traceparent.as_deref()))
    .bind(column(rows, |r| r.entry.occurred_at))
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use crate::domain::{
        Description, ListOrder, Mutation, MutationContext, NewTask, Origin, PageRequest, Task,
        TaskTitle,
    };
    use crate::store::{Db, PoolSettings, StoreError};

    fn creation(user: &str, title: &str) -> Mutation {
        let ctx = MutationContext {
            origin: Origin::Rest,
            correlation_id: format!("c-{title}"),
            traceparent: None,
        };
        let new = NewTask {
            title: TaskTitle::parse(title).unwrap(),
            description: Description::parse(&format!("about {title}")).unwrap(),
            due_date: None,
        };
        Mutation::created(user, new, &ctx)
    }

    async fn sqlite(dir: &tempfile::TempDir, settings: &PoolSettings) -> Db {
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let db = Db::connect_with(&url, settings).await.unwrap();
        db.migrate().await.unwrap();
        db
    }

    /// The outbox's mutation ids, in commit order.
    async fn outbox_ids(db: &Db) -> Vec<uuid::Uuid> {
        db.outbox_rows(None)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect()
    }

    /// Polls each future once, in order, then awaits them all: on a current-thread runtime,
    /// every creation is queued, in this order, before the committing task first runs
    /// (unconstrained: tokio's cooperative budget would refuse the 129th send of one poll).
    async fn together<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
        tokio::task::unconstrained(async {
            let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
            for f in &mut futures {
                let _ = futures::poll!(f);
            }
            futures::future::join_all(futures).await
        })
        .await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_creations_commit_in_arrival_order_each_with_its_outbox_row() {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite(&dir, &PoolSettings::default()).await;
        let mutations: Vec<Mutation> = (0..200)
            .map(|i| creation("ann", &format!("t{i}")))
            .collect();
        let outcomes = together(mutations.iter().map(|m| db.insert_task(m, None)).collect()).await;
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");

        let rows = db.outbox_rows(None).await.unwrap();
        let ids = outbox_ids(&db).await;
        let want: Vec<_> = mutations.iter().map(|m| m.id).collect();
        assert_eq!(
            ids, want,
            "one outbox row per creation, in the order they were asked"
        );
        for (row, m) in rows.iter().zip(&mutations) {
            assert_eq!(row.decode().unwrap(), *m);
            assert_eq!(row.task_id, m.task.id);
            assert_eq!(row.action, "created");
        }
        let page = db
            .list_tasks(
                "ann",
                &PageRequest {
                    completed: None,
                    limit: 500,
                    after: None,
                    order: ListOrder::OldestFirst,
                },
            )
            .await
            .unwrap();
        let tasks: Vec<Task> = page.items;
        assert_eq!(
            tasks,
            mutations.iter().map(|m| m.task.clone()).collect::<Vec<_>>()
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_creation_that_fails_fails_alone_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite(&dir, &PoolSettings::default()).await;
        let first = creation("ann", "first");
        db.insert_task(&first, None).await.unwrap();

        // The middle one reuses the first task's id: the tasks table refuses it.
        let mut clash = creation("ann", "clash");
        clash.task.id = first.task.id;
        let batch = [creation("ann", "a"), clash, creation("ann", "b")];
        let outcomes = together(batch.iter().map(|m| db.insert_task(m, None)).collect()).await;
        assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{outcomes:?}");
        let Err(StoreError::Database(sqlx::Error::Database(e))) = &outcomes[1] else {
            panic!(
                "the clash should fail with the database's error: {:?}",
                outcomes[1]
            );
        };
        assert!(e.is_unique_violation(), "{e}");

        assert_eq!(
            outbox_ids(&db).await,
            [first.id, batch[0].id, batch[2].id],
            "no outbox row of the clash"
        );
        let clashed = db.outbox_row(batch[1].id).await.unwrap();
        assert!(clashed.is_none());
        let kept = db.get_task("ann", first.task.id).await.unwrap().unwrap();
        assert_eq!(kept.title, first.task.title, "the first task is untouched");
    }

    /// While something else holds the writer past the store's timeout, every queued creation
    /// fails as busy (a 503), none is written, and the next one after goes through.
    #[tokio::test(flavor = "current_thread")]
    async fn creations_that_cannot_get_the_writer_in_time_fail_as_busy() {
        let dir = tempfile::tempdir().unwrap();
        // Created and migrated under the default timeout first: the short one below is
        // for the writer the test holds, and a loaded machine can take longer than it to
        // create the file and switch it to WAL.
        sqlite(&dir, &PoolSettings::default()).await.close().await;
        let settings = PoolSettings {
            max_connections: 4,
            timeout: std::time::Duration::from_millis(500),
        };
        let db = sqlite(&dir, &settings).await;
        let Db::Sqlite(sqlite) = &db else {
            unreachable!()
        };
        let held = sqlite.writer().begin().await.unwrap();
        let batch: Vec<Mutation> = (0..3).map(|i| creation("ann", &format!("t{i}"))).collect();
        let outcomes = together(batch.iter().map(|m| db.insert_task(m, None)).collect()).await;
        for outcome in &outcomes {
            let Err(e) = outcome else {
                panic!("{outcomes:?}")
            };
            assert!(e.is_transient(), "{e}");
        }
        drop(held);
        let later = creation("ann", "later");
        db.insert_task(&later, None).await.unwrap();
        assert_eq!(
            outbox_ids(&db).await,
            [later.id],
            "nothing of the refused creations was written"
        );
    }
}
