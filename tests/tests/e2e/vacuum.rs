//! The relay's queue vacuum (PostgreSQL): it vacuums the task queue table every
//! `RELAY_VACUUM_INTERVAL` while the host publishes, never when set to 0, and only
//! where the database role may.

use std::time::Duration;

use pakaura_host::store::{Db, QueueVacuum};
use pakaura_tests::{Backend, TestApp, TestDatabase, WAIT, dapr_options, spawn_with, start};
use pakaura_tests::{DaprSink, sink_behaviour};
use serde_json::json;
use tokio::time::Instant;

/// How often PostgreSQL has vacuumed `relay_tasks` by hand (autovacuum counts apart) in
/// the database at `url`.
async fn manual_vacuums(url: &str) -> i64 {
    pakaura_tests::database::count(
        url,
        "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'relay_tasks'",
    )
    .await
}

/// Waits until the database at `url` has vacuumed the queue table `n` times by hand
/// (statistics may lag the vacuum), and says how many it had then.
async fn wait_for_vacuums(url: &str, n: i64, why: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = manual_vacuums(url).await;
        if seen >= n {
            return seen;
        }
        assert!(Instant::now() < deadline, "{why}: {seen} vacuums, not {n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates and completes `n` tasks, and waits until the sink has their events (four
/// each) and the `before` it had.
async fn publish_some(app: &TestApp, sink: &DaprSink, n: usize, before: usize) {
    for i in 0..n {
        let id = app
            .create_task_id("alice", json!({"title": format!("t{i}")}))
            .await;
        app.post_task("alice", &id, "complete").await;
    }
    sink.wait_for_published(before + n * 4, WAIT).await;
}

/// Every second while it publishes, the relay vacuums its queue table: again and again,
/// and never more often than the interval says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_vacuums_its_task_queue_every_interval() {
    let sink = DaprSink::start(sink_behaviour()).await;
    let started = Instant::now();
    let app = spawn_with(
        Backend::Postgres,
        dapr_options(&sink).set("RELAY_VACUUM_INTERVAL", "1s"),
    )
    .await;
    let url = app.database.url.clone();
    publish_some(&app, &sink, 10, 0).await;
    let first = manual_vacuums(&url).await;
    wait_for_vacuums(&url, first + 2, "at RELAY_VACUUM_INTERVAL=1s within 30 s").await;
    // A relay that vacuumed without waiting would have done so hundreds of times.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seconds = started.elapsed().as_secs_f64();
    let vacuums = manual_vacuums(&url).await;
    assert!(
        vacuums as f64 <= seconds + 1.0,
        "{vacuums} vacuums in {seconds:.1} s at RELAY_VACUUM_INTERVAL=1s"
    );
    // Claims over the vacuumed table find what comes next.
    publish_some(&app, &sink, 3, 40).await;
}

/// `RELAY_VACUUM_INTERVAL=0` leaves the table to autovacuum: the relay never vacuums it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_interval_leaves_the_queue_to_autovacuum() {
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(
        Backend::Postgres,
        dapr_options(&sink).set("RELAY_VACUUM_INTERVAL", "0"),
    )
    .await;
    publish_some(&app, &sink, 10, 0).await;
    // Past the default interval (5 s), should 0 ever mean it.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(manual_vacuums(&app.database.url).await, 0);
}

/// A login role of its own on the test server. Dropped with the test, before its
/// database: what it owns there goes to the tests' administrative role, and its
/// privileges with it.
struct Role {
    name: String,
    /// `database` as this role.
    url: String,
    /// The database's URL as the administrative role.
    database: String,
}

impl Role {
    const PASSWORD: &'static str = "not-the-owner";

    async fn create(database: &str) -> Self {
        let name = format!("pakaura_test_{}", uuid::Uuid::new_v4().simple());
        admin_sql(
            database,
            &format!("CREATE ROLE {name} LOGIN PASSWORD '{}'", Self::PASSWORD),
        )
        .await;
        let mut url = reqwest::Url::parse(database).unwrap();
        url.set_username(&name).unwrap();
        url.set_password(Some(Self::PASSWORD)).unwrap();
        Self {
            name,
            url: url.into(),
            database: database.to_owned(),
        }
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let name = &self.name;
        if let Err(e) = pakaura_tests::database::sql_from_drop(
            &self.database,
            format!(
                "REASSIGN OWNED BY {name} TO CURRENT_USER; DROP OWNED BY {name}; DROP ROLE {name}"
            ),
        ) {
            eprintln!("could not drop the test role {name}: {e}");
        }
    }
}

/// Runs `sql` in the database at `url` as the tests' administrative role.
async fn admin_sql(url: &str, sql: &str) {
    pakaura_tests::database::execute(url, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// What the store answers a role: `role`'s own connection asks.
async fn may_vacuum_as(role: &Role) -> QueueVacuum {
    let db = Db::connect(&role.url).await.unwrap();
    let answer = db.may_vacuum_queue().await;
    db.close().await;
    answer.unwrap()
}

/// Only a role that may vacuum the table is let: the table's owner (here a superuser)
/// may, and so may the database's owner; another role may not; SQLite needs no vacuum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_role_that_may_vacuum_the_queue_does() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let owner = Db::connect(&database.url).await.unwrap();
    owner.migrate().await.unwrap();
    assert_eq!(
        owner.may_vacuum_queue().await.unwrap(),
        QueueVacuum::Allowed
    );
    let before = manual_vacuums(&database.url).await;
    owner.vacuum_queue().await.unwrap();
    wait_for_vacuums(&database.url, before + 1, "after one vacuum by the owner").await;
    owner.close().await;

    // A role that owns nothing: PostgreSQL would skip the table.
    let role = Role::create(&database.url).await;
    assert_eq!(
        may_vacuum_as(&role).await,
        QueueVacuum::NotPermitted {
            role: role.name.clone()
        }
    );
    // The database's owner may vacuum every table in it.
    let name = database.url.rsplit('/').next().unwrap();
    admin_sql(
        &database.url,
        &format!("ALTER DATABASE {name} OWNER TO {}", role.name),
    )
    .await;
    assert_eq!(may_vacuum_as(&role).await, QueueVacuum::Allowed);
    drop(role);

    let sqlite = TestDatabase::create(Backend::Sqlite).await;
    let db = Db::connect(&sqlite.url).await.unwrap();
    db.migrate().await.unwrap();
    assert_eq!(db.may_vacuum_queue().await.unwrap(), QueueVacuum::Unneeded);
    db.vacuum_queue().await.unwrap();
    db.close().await;
}

/// A host whose role may write the tables but does not own them (another role migrated
/// the database) starts, migrates and publishes as ever, and the queue table is never
/// vacuumed. (That its relay does not even try, which PostgreSQL would only skip with a
/// warning, is the store's answer above.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_role_does_not_own_the_queue_publishes_without_vacuuming_it() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let owner = Db::connect(&database.url).await.unwrap();
    owner.migrate().await.unwrap();
    owner.close().await;
    let role = Role::create(&database.url).await;
    let name = &role.name;
    admin_sql(
        &database.url,
        &format!(
            "GRANT USAGE, CREATE ON SCHEMA public TO {name}; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {name}; \
             GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {name}"
        ),
    )
    .await;

    let sink = DaprSink::start(sink_behaviour()).await;
    let app = start(
        TestDatabase::existing(&role.url),
        dapr_options(&sink).set("RELAY_VACUUM_INTERVAL", "1s"),
    )
    .await;
    publish_some(&app, &sink, 10, 0).await;
    // Three intervals after the events went out.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(manual_vacuums(&database.url).await, 0);
    app.stop().await;
}
