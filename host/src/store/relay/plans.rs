//! The plans PostgreSQL picks for the relay's statements and the backlog read, checked
//! with statistics taken while nothing was pending and no task queue was left (the
//! planner then believes the pending indexes and the queue table empty) and with
//! statistics from a large backlog (see "Plans" in `relay/mod.rs`). Each statement is
//! planned the ways it runs: for its parameters (`EXPLAIN` with the statement's own
//! text and parameters bound as the relay binds them, with nested loops off for the
//! statements the relay runs so) and, if it is prepared, generic.
//!
//! Needs PostgreSQL: the server at `PAKAURA_TEST_POSTGRES` (as the other database tests,
//! default `postgres://postgres@127.0.0.1:5432/test`); the test makes its own database
//! and drops it.

use chrono::Utc;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Execute, Executor, PgPool, Postgres, Row};
use uuid::Uuid;

use super::postgres::{
    CLAIM_MUTATIONS, CLAIM_TASKS, FAILED_MARK, JOINED_WITH_QUEUES, LOAD_ENVELOPES, LOCK_TASKS,
    MAPPED_MARK, PARKED_MARK, PUBLISHED_MARK, RELEASE_DRAINED, RELEASE_LATER, RELEASE_MUTATIONS,
    RENEW_MUTATIONS, RENEW_TASKS, per_batch,
};
use crate::store::Db;
use crate::store::backlog::BACKLOG;

/// Finished history, and task queues come and gone: what the statistics see first.
const HISTORY: &str = "\
    INSERT INTO outbox (id, task_id, user_id, action, mutation, created_at, state, processed_at) \
    SELECT md5('m' || i)::uuid, md5('t' || i % 2000)::uuid, 'u', 'create', '{}', now(), 'mapped', now() \
    FROM generate_series(1, 20000) i; \
    INSERT INTO envelopes (id, mutation_id, outbox_seq, event_index, task_id, user_id, mapper, topic, \
        event_type, partition_key, correlation_id, state, created_at, finished_at) \
    SELECT 'e' || i, md5('m' || i)::uuid, i, 0, md5('t' || i % 2000)::uuid, 'u', 'm', 'tasks', 't', 'k', \
        'c', 'published', now(), now() \
    FROM generate_series(1, 20000) i; \
    INSERT INTO envelope_bodies (seq, body) SELECT seq, '{}' FROM envelopes; \
    INSERT INTO relay_tasks (task_id, ready_at) \
    SELECT md5('q' || i)::uuid, now() FROM generate_series(1, 20000) i; \
    DELETE FROM relay_tasks";

/// A backlog over 2,000 tasks, every queue and pending mutation leased: mutations under
/// token 9, task queues under token 7.
const BACKLOG_ROWS: &str = "\
    INSERT INTO outbox (id, task_id, user_id, action, mutation, created_at, state, locked_by, \
        locked_until, lock_token) \
    SELECT md5('n' || i)::uuid, md5('t' || i % 2000)::uuid, 'u', 'update', '{}', now(), 'pending', 'r', \
        now() + interval '1 hour', 9 \
    FROM generate_series(1, 5000) i; \
    INSERT INTO envelopes (id, mutation_id, outbox_seq, event_index, task_id, user_id, mapper, topic, \
        event_type, partition_key, correlation_id, state, created_at) \
    SELECT 'p' || i, md5('n' || i)::uuid, 20000 + i, 0, md5('t' || i % 2000)::uuid, 'u', 'm', 'tasks', \
        't', 'k', 'c', 'pending', now() \
    FROM generate_series(1, 10000) i; \
    INSERT INTO envelope_bodies (seq, body) SELECT seq, '{}' FROM envelopes WHERE state = 'pending'; \
    INSERT INTO relay_tasks (task_id, ready_at, locked_by, lock_token, locked_until) \
    SELECT md5('t' || i)::uuid, now(), 'r', 7, now() + interval '1 hour' FROM generate_series(0, 1999) i";

const TABLES: &str = "outbox, envelopes, envelope_bodies, relay_tasks";

/// How a statement must reach its pending rows, beyond what every statement must
/// ([`faults`]).
#[derive(Clone, Copy)]
enum Access {
    /// By primary key on `table`, touching none of its partial indexes.
    ByKey(&'static str),
    /// Through the per-task pending index of each table.
    PerTask(&'static [&'static str]),
    /// Through the `*_pending_oldest` index of each table.
    Oldest(&'static [&'static str]),
}

const RELAY_TABLES: [&str; 3] = ["envelopes", "outbox", "relay_tasks"];

/// Indexes read only by task: read whole, they cost a backlog's worth of rows (every
/// pending envelope or mutation, every task queue).
const BY_TASK: [&str; 3] = [
    "envelopes_pending_task",
    "outbox_pending_task",
    "relay_tasks_pkey",
];

/// What is wrong with `plan` (nothing: empty). Every statement: no sequential scan of
/// the relay's tables; every read of an index in [`BY_TASK`] is a lookup by task, never
/// a walk of the whole index, nor of the batch's array per task. Then what `accesses`
/// ask.
fn faults(plan: &str, accesses: &[Access]) -> Vec<String> {
    let lines: Vec<&str> = plan.lines().collect();
    let mut faults = Vec::new();
    let forbid = |faults: &mut Vec<String>, what: &str| {
        if plan.contains(what) {
            faults.push(format!("uses {what}"));
        }
    };
    let require = |faults: &mut Vec<String>, what: &str| {
        if !plan.contains(what) {
            faults.push(format!("does not use {what}"));
        }
    };
    for table in RELAY_TABLES {
        forbid(&mut faults, &format!("Seq Scan on {table}"));
    }
    for index in BY_TASK {
        for (i, line) in lines.iter().enumerate() {
            let by_task = lines
                .get(i + 1)
                .is_some_and(|next| next.contains("Index Cond: ") && next.contains("task_id = "));
            if line.contains(&format!(" {index} ")) && !by_task {
                faults.push(format!("reads {index} without a task: {}", line.trim()));
            }
        }
    }
    for line in &lines {
        // A lookup by one task that also names the whole batch walks the batch's array
        // on every row it is run for: a batch of n tasks costs n² index descents.
        if line.contains("Index Cond: ")
            && line.contains("task_id = ANY (")
            && line.matches("task_id = ").count() > 1
        {
            faults.push(format!("walks the batch for every row: {}", line.trim()));
        }
        // A filter on an array parameter is not hashed (only an array of constants is):
        // it compares each row it reads against the whole array, n² for a batch of n.
        if line.contains("Filter: ") && line.contains("ANY ($") {
            faults.push(format!(
                "compares every row with the whole array: {}",
                line.trim()
            ));
        }
    }
    // The inner side of a nested loop runs once per outer row: a batch's array unnested
    // there is read whole for every row of the outer side, n² for a batch of n.
    for (i, line) in lines.iter().enumerate() {
        if !line.contains("Nested Loop") {
            continue;
        }
        let children: Vec<&str> = lines[i + 1..]
            .iter()
            .copied()
            .take_while(|l| indent(l) > indent(line))
            .filter(|l| l.trim_start().starts_with("->"))
            .collect();
        let depth = children.first().map_or(0, |c| indent(c));
        if let Some(inner) = children.iter().filter(|c| indent(c) == depth).nth(1)
            && inner.contains("Function Scan")
        {
            faults.push(format!(
                "unnests the batch once per outer row: {} over {}",
                line.trim(),
                inner.trim()
            ));
        }
    }
    for access in accesses {
        match *access {
            Access::ByKey(table) => {
                require(&mut faults, &format!("{table}_pkey"));
                forbid(&mut faults, &format!("{table}_pending"));
            }
            Access::PerTask(tables) => {
                for table in tables {
                    require(&mut faults, &format!("{table}_pending_task"));
                }
            }
            Access::Oldest(tables) => {
                for table in tables {
                    require(&mut faults, &format!("{table}_pending_oldest"));
                }
            }
        }
    }
    faults
}

/// How far `line` of a plan is indented.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The custom plan of `query` (planned for its parameters, as an unprepared statement
/// always is and a prepared one for its first five executions) and, for a prepared
/// statement, its generic plan ([`explain_generic`]).
async fn explain(
    pool: &PgPool,
    mut query: Query<'_, Postgres, PgArguments>,
) -> Vec<(&'static str, String)> {
    let persistent = Execute::persistent(&query);
    let arguments = query
        .take_arguments()
        .expect("arguments")
        .unwrap_or_default();
    let sql = query.sql();
    let mut conn = pool.acquire().await.expect("connection");
    // Run as the relay runs them (`nested_loops` in `postgres.rs`).
    let queue_join = JOINED_WITH_QUEUES.contains(&sql.as_str());
    if queue_join {
        run_sql(&mut *conn, "SET enable_nestloop = off".into()).await;
    }
    let rows: Vec<(String,)> = sqlx::query_as_with(
        AssertSqlSafe(format!("EXPLAIN {}", sql.as_str())),
        arguments,
    )
    .fetch_all(&mut *conn)
    .await
    .expect("EXPLAIN");
    if queue_join {
        run_sql(&mut *conn, "RESET enable_nestloop".into()).await;
    }
    let custom = rows.into_iter().map(|(line,)| line + "\n").collect();
    let mut plans = vec![("custom", custom)];
    // An unprepared statement ([`per_batch`]) is planned for its parameters every time.
    if persistent {
        plans.push(("generic", explain_generic(pool, sql.as_str()).await));
    }
    plans
}

/// The generic plan of `sql`: what a prepared statement runs once PostgreSQL finds it no
/// dearer than planning for each execution's parameters (after five executions), in
/// the dark about them (the arrays' lengths, for one). `EXPLAIN EXECUTE` of a `PREPARE`d
/// copy under `plan_cache_mode = force_generic_plan`; the parameters' values are not
/// looked at, so they are NULLs.
async fn explain_generic(pool: &PgPool, sql: &str) -> String {
    let mut conn = pool.acquire().await.expect("connection");
    let nulls = (1..)
        .take_while(|n| sql.contains(&format!("${n}")))
        .map(|_| "NULL")
        .collect::<Vec<_>>();
    let params = match nulls.is_empty() {
        true => String::new(),
        false => format!("({})", nulls.join(", ")),
    };
    run_sql(
        &mut *conn,
        format!("SET plan_cache_mode = force_generic_plan; PREPARE plan_check AS {sql}"),
    )
    .await;
    let rows = run_sql(&mut *conn, format!("EXPLAIN EXECUTE plan_check{params}")).await;
    run_sql(
        &mut *conn,
        "DEALLOCATE plan_check; RESET plan_cache_mode".into(),
    )
    .await;
    rows.iter()
        .map(|row| row.get::<String, _>(0) + "\n")
        .collect()
}

/// Every checked statement's plans (custom and generic) against its expected access;
/// returns the faults, each with the statement's name, the regime and its plan.
async fn check_all(pool: &PgPool, regime: &str) -> Vec<String> {
    let envelope_seqs: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM envelopes WHERE state = 'pending' ORDER BY seq LIMIT 64",
    )
    .fetch_all(pool)
    .await
    .expect("pending envelopes");
    let outbox_seqs: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT 64")
            .fetch_all(pool)
            .await
            .expect("pending mutations");
    let tasks: Vec<Uuid> =
        sqlx::query_scalar("SELECT task_id FROM relay_tasks ORDER BY ready_at, task_id LIMIT 64")
            .fetch_all(pool)
            .await
            .expect("queued tasks");
    assert_eq!(
        (envelope_seqs.len(), outbox_seqs.len(), tasks.len()),
        (64, 64, 64)
    );
    let n = envelope_seqs.len();
    let now = Utc::now();
    let statuses = vec![Some(500_i32); n];
    let texts = vec!["boom".to_owned(); n];
    let codes = vec![Some("ERR_PUBSUB_PUBLISH_MESSAGE".to_owned()); n];
    let tokens = vec![7_i64; n];
    let letters: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let checks: Vec<(&str, &[Access], Query<'_, Postgres, PgArguments>)> = vec![
        (
            "published mark",
            &[Access::ByKey("envelopes")],
            per_batch(PUBLISHED_MARK)
                .bind(&envelope_seqs)
                .bind(&statuses)
                .bind(now)
                .bind("r"),
        ),
        (
            "failed mark",
            &[Access::ByKey("envelopes")],
            per_batch(FAILED_MARK)
                .bind(&envelope_seqs)
                .bind(&statuses)
                .bind(&texts)
                .bind(&codes)
                .bind(now)
                .bind("r"),
        ),
        (
            "parked mark",
            &[Access::ByKey("envelopes")],
            per_batch(PARKED_MARK)
                .bind(&envelope_seqs)
                .bind(&statuses)
                .bind(&texts)
                .bind(&codes)
                .bind(now)
                .bind(vec![true; n])
                .bind(&letters)
                .bind("r"),
        ),
        (
            "task queues locked",
            &[],
            per_batch(LOCK_TASKS).bind(&tasks).bind(&tokens),
        ),
        (
            "task queues renewed",
            &[],
            per_batch(RENEW_TASKS)
                .bind(&tasks)
                .bind(&tokens)
                .bind(30_000_i64),
        ),
        (
            "task queues released",
            &[],
            per_batch(RELEASE_LATER)
                .bind(&tasks)
                .bind(&tokens)
                .bind(vec![0_i64; n]),
        ),
        (
            "mutations renewed",
            &[Access::ByKey("outbox")],
            per_batch(RENEW_MUTATIONS)
                .bind(&outbox_seqs)
                .bind(9_i64)
                .bind(30_000_i64),
        ),
        (
            "mutations released",
            &[Access::ByKey("outbox")],
            per_batch(RELEASE_MUTATIONS).bind(&outbox_seqs).bind(9_i64),
        ),
        (
            "mapped mark",
            &[Access::ByKey("outbox")],
            per_batch(MAPPED_MARK)
                .bind(&outbox_seqs)
                .bind(Vec::<i64>::new())
                .bind(now)
                .bind(9_i64),
        ),
        (
            "envelopes loaded",
            &[Access::PerTask(&["envelopes", "outbox"])],
            per_batch(LOAD_ENVELOPES)
                .bind(&tasks)
                .bind(16_i64)
                .bind(1_000_000_i64),
        ),
        (
            "drained queues released",
            &[Access::PerTask(&["envelopes"])],
            per_batch(RELEASE_DRAINED).bind(&tasks).bind(&tokens),
        ),
        (
            "mutations claimed",
            &[Access::Oldest(&["outbox"])],
            sqlx::query(CLAIM_MUTATIONS)
                .bind("r")
                .bind(30_000_i64)
                .bind(256_i64)
                .bind(10_i64),
        ),
        (
            "task queues claimed",
            &[],
            sqlx::query(CLAIM_TASKS)
                .bind("r")
                .bind(30_000_i64)
                .bind(64_i64)
                .bind(11_i64),
        ),
        (
            "backlog",
            &[
                Access::Oldest(&["outbox", "envelopes"]),
                Access::PerTask(&["envelopes"]),
            ],
            sqlx::query(BACKLOG),
        ),
    ];
    let mut all = Vec::new();
    for (name, accesses, query) in checks {
        for (kind, plan) in explain(pool, query).await {
            for fault in faults(&plan, accesses) {
                all.push(format!("{name}, {kind} plan, {regime}: {fault}\n{plan}"));
            }
        }
    }
    all
}

/// Runs `sql` (one or more statements, no parameters).
async fn run_sql<'c>(on: impl Executor<'c, Database = Postgres>, sql: String) -> Vec<PgRow> {
    sqlx::raw_sql(AssertSqlSafe(sql.clone()))
        .fetch_all(on)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn run(pool: &PgPool) -> Vec<String> {
    // Only this test takes statistics.
    for table in TABLES.split(", ") {
        run_sql(
            pool,
            format!("ALTER TABLE {table} SET (autovacuum_enabled = false)"),
        )
        .await;
    }
    run_sql(pool, HISTORY.into()).await;
    run_sql(pool, format!("ANALYZE {TABLES}")).await;
    run_sql(pool, BACKLOG_ROWS.into()).await;
    let mut faults = check_all(pool, "statistics from an empty pending set").await;
    run_sql(pool, format!("ANALYZE {TABLES}")).await;
    faults.extend(check_all(pool, "statistics from a large pending set").await);
    faults
}

#[tokio::test]
async fn pending_rows_are_read_through_the_index_each_statement_is_written_for() {
    let admin_url = std::env::var("PAKAURA_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let admin = PgPool::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} (set PAKAURA_TEST_POSTGRES): {e}"));
    let name = format!("pakaura_plans_{}", Uuid::new_v4().simple());
    run_sql(&admin, format!("CREATE DATABASE {name}")).await;
    // The tables here are small, and a sequential scan of one can be the cheapest read
    // for a statement that reads hundreds of their rows; in production they are large.
    // Without sequential scans, the planner chooses among the indexes as it would there.
    let url = match admin_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}?options=-c%20enable_seqscan%3Doff"),
        None => panic!("PAKAURA_TEST_POSTGRES has no database name: {admin_url}"),
    };
    // On its own task, so that the database is dropped whatever happens to the checks.
    let checks = tokio::spawn(async move {
        let db = Db::connect(&url).await.expect("connect");
        db.migrate().await.expect("migrate");
        let Db::Postgres(pg) = &db else {
            unreachable!("a postgres:// URL")
        };
        run(pg.pool()).await
    })
    .await;
    run_sql(&admin, format!("DROP DATABASE {name} WITH (FORCE)")).await;
    let faults = checks.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    assert!(faults.is_empty(), "{}", faults.join("\n"));
}
