//! `/metrics` as a pager sees it. The Prometheus recorder is process-wide, so these
//! tests live in a test binary of their own and run one host at a time: the gauges
//! they read belong to that host alone.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::{Connection, Executor};
use tokio::sync::Mutex;

use jsonwebtoken::Algorithm;
use pakaura_tests::{
    Backend, JwksServer, SigningKey, TestApp, claims_for, on_both_databases, spawn_with,
};
use pakaura_tests::{
    DaprSink, StuckStore, WAIT, create_tasks, dapr_options, holding_sidecar, refusing_reminders,
    sink_behaviour, task_id, wait_for_dead_letters,
};

/// One host at a time in this process.
static ONE_HOST: Mutex<()> = Mutex::const_new(());

/// The gauges are refreshed every 5 s; give them a few rounds.
const GAUGE_WAIT: Duration = Duration::from_secs(30);

async fn scrape(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// The value of the series `name{labels}` (or `name` alone), if exported.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Scrapes until `check` holds for the page, panicking with the last page after
/// `within`.
async fn scrape_until(app: &TestApp, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + GAUGE_WAIT;
    loop {
        let text = scrape(app).await;
        if check(&text) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics never showed {what}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn backlog_gauges_follow_an_outage_and_its_drain(backend: Backend) {
    let _one = ONE_HOST.lock().await;
    let mut sidecar = DaprSink::start(sink_behaviour()).await;
    sidecar.stop().await;
    let app = spawn_with(backend, dapr_options(&sidecar)).await;

    for i in 0..10 {
        task_id(&app, "alice", json!({"title": format!("outage {i}")})).await;
    }
    // Each task without a due date maps to two envelopes (task-events, task-updates).
    // The relay waits for the sidecar's health check before it publishes, so all of
    // them wait as envelopes.
    let during = scrape_until(&app, "a backlog with lag", |t| {
        value(t, "pakaura_envelopes_pending") == Some(20.0)
            && value(t, "pakaura_relay_lag_seconds").is_some_and(|s| s > 0.0)
    })
    .await;
    assert_eq!(
        value(&during, "pakaura_outbox_pending"),
        Some(0.0),
        "{during}"
    );
    assert_eq!(
        value(&during, "pakaura_sidecar_ready"),
        Some(0.0),
        "{during}"
    );

    let sidecar = sidecar.restart().await;
    sidecar.wait_for_published(20, WAIT).await;
    let after = scrape_until(&app, "the backlog drained", |t| {
        value(t, "pakaura_envelopes_pending") == Some(0.0)
            && value(t, "pakaura_outbox_pending") == Some(0.0)
            && value(t, "pakaura_relay_lag_seconds") == Some(0.0)
            && value(t, "pakaura_sidecar_ready") == Some(1.0)
    })
    .await;
    assert!(
        value(
            &after,
            "pakaura_publish_total{topic=\"task-events\",outcome=\"published\"}"
        )
        .is_some_and(|n| n >= 10.0),
        "{after}"
    );
    assert_eq!(value(&after, "pakaura_dead_letters_open"), Some(0.0));
    assert_eq!(value(&after, "pakaura_relay_up"), Some(1.0));
    app.stop().await;
}

/// A task held on a refused topic shows in the hold gauges, with the event waiting
/// behind it, until the operator replays the held event once the topic is allowed.
async fn hold_gauges_follow_a_hold_and_its_replay(backend: Backend) {
    let _one = ONE_HOST.lock().await;
    let (sink, app, id) = refusing_reminders(backend).await;
    let letters = wait_for_dead_letters(&app, 1).await;
    // The rescheduled reminder waits behind the refused one, on the same topic.
    let patched = app
        .send(
            Method::PATCH,
            &format!("/tasks/{id}"),
            Some("alice"),
            Some(json!({"due_date": "2026-03-02T09:00:00Z"})),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let held = scrape_until(&app, "one hold with one event behind it", |t| {
        value(t, "pakaura_relay_holds") == Some(1.0)
            && value(t, "pakaura_relay_held_events") == Some(1.0)
            && value(t, "pakaura_relay_oldest_hold_seconds").is_some_and(|s| s > 0.0)
    })
    .await;
    assert_eq!(
        value(&held, "pakaura_dead_letters_open"),
        Some(1.0),
        "{held}"
    );

    sink.behave(|b| b.forbidden_topics.clear());
    let letter = letters[0]["id"].as_str().unwrap();
    assert_eq!(app.replay(letter).await.status(), StatusCode::OK);
    scrape_until(&app, "the hold resolved", |t| {
        value(t, "pakaura_relay_holds") == Some(0.0)
            && value(t, "pakaura_relay_held_events") == Some(0.0)
            && value(t, "pakaura_relay_oldest_hold_seconds") == Some(0.0)
            && value(t, "pakaura_dead_letters_open") == Some(0.0)
    })
    .await;
    app.stop().await;
}

async fn histograms_expose_buckets_and_every_metric_is_described(backend: Backend) {
    let _one = ONE_HOST.lock().await;
    let sidecar = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(
        backend,
        dapr_options(&sidecar).set("MAPPER_INSTANCE_REUSE", "100"),
    )
    .await;
    task_id(&app, "alice", json!({"title": "measure me"})).await;
    sidecar.wait_for_published(2, WAIT).await;
    let text = scrape_until(&app, "the publish histogram and instance gauges", |t| {
        t.contains("pakaura_publish_duration_seconds_bucket{")
            && t.contains("pakaura_mapper_instances{mapper=\"default\",state=\"idle\"} 1")
            && t.contains("pakaura_store_duration_seconds_count{call=\"record_deliveries\"}")
    })
    .await;

    for histogram in [
        "pakaura_http_request_duration_seconds",
        "pakaura_publish_duration_seconds",
        "pakaura_mapper_call_duration_seconds",
        "pakaura_mapper_chain_duration_seconds",
        "pakaura_store_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {histogram} histogram")),
            "{histogram} is a histogram:\n{text}"
        );
        assert!(
            text.contains(&format!("{histogram}_bucket{{")) && text.contains("le=\"+Inf\""),
            "{histogram} has buckets:\n{text}"
        );
    }
    assert!(
        value(
            &text,
            "pakaura_http_requests_total{method=\"POST\",route=\"/tasks\",status=\"201\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    // Counters with known labels start at zero, so rate() sees the first event. (The
    // recorder is the process's: a test here that parks a publish may have run first.)
    for zero in [
        "pakaura_dead_letters_total{kind=\"mapping\"} 0",
        "pakaura_relay_restarts_total 0",
    ] {
        assert!(text.contains(zero), "{zero}:\n{text}");
    }
    assert!(
        value(&text, "pakaura_dead_letters_total{kind=\"publish\"}").is_some(),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "pakaura_mapper_instances{mapper=\"default\",state=\"busy\"}"
        ),
        Some(0.0)
    );
    // Each store call on the write path was timed on the way from the request to the
    // sidecar.
    for call in [
        "create_tasks",
        "claim_mutations",
        "record_mappings",
        "claim_tasks",
        "load_envelopes",
        "record_deliveries",
    ] {
        let series = format!("pakaura_store_duration_seconds_count{{call=\"{call}\"}}");
        assert!(
            value(&text, &series).is_some_and(|n| n >= 1.0),
            "{series}:\n{text}"
        );
    }
    if backend == Backend::Sqlite {
        assert!(
            value(&text, "pakaura_sqlite_writer_idle_seconds_count").is_some_and(|n| n >= 1.0),
            "{text}"
        );
    }
    // Every metric the host exports says what it means.
    let types: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert!(types.len() >= 15, "{text}");
    for name in types {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no help text:\n{text}"
        );
    }

    let reload = app
        .admin(reqwest::Method::POST, "/admin/mappers/reload")
        .await;
    assert_eq!(reload.status(), StatusCode::OK);
    let text = scrape(&app).await;
    assert!(
        value(&text, "pakaura_mapper_reloads_total{outcome=\"applied\"}").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    app.stop().await;
}

/// `pakaura_publish_waiting_for_store` reads 1 while the store of publish outcomes is
/// stuck behind a row lock and publishing has paused for it, and 0 again once it is not;
/// `pakaura_publish_store_pause_seconds` then holds the pause.
async fn the_pause_for_a_stuck_store_shows() {
    let _one = ONE_HOST.lock().await;
    let (sink, options) = holding_sidecar().await;
    let app = spawn_with(Backend::Postgres, options).await;
    let before = scrape(&app).await;
    assert_eq!(
        value(&before, "pakaura_publish_waiting_for_store"),
        Some(0.0),
        "{before}"
    );
    let stuck = StuckStore::hold(&app, &sink).await;
    create_tasks(&app, 2_500).await;
    scrape_until(&app, "publishing paused for the store", |t| {
        value(t, "pakaura_publish_waiting_for_store") == Some(1.0)
    })
    .await;
    assert_eq!(
        value(&before, "pakaura_publish_store_pause_seconds_count"),
        None,
        "no pause before: {before}"
    );
    let paused_for = Duration::from_millis(500);
    tokio::time::sleep(paused_for).await;
    stuck.release().await;
    let after = scrape_until(&app, "publishing going on, everything published", |t| {
        value(t, "pakaura_publish_waiting_for_store") == Some(0.0)
            && value(t, "pakaura_envelopes_pending") == Some(0.0)
            && value(t, "pakaura_outbox_pending") == Some(0.0)
    })
    .await;
    assert!(
        value(&after, "pakaura_publish_store_pause_seconds_count").is_some_and(|n| n >= 1.0),
        "{after}"
    );
    assert!(
        value(&after, "pakaura_publish_store_pause_seconds_sum")
            .is_some_and(|s| s >= paused_for.as_secs_f64()),
        "the pause lasted while the lock was held: {after}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_paused_for_a_stuck_store_shows_in_a_gauge() {
    the_pause_for_a_stuck_store_shows().await;
}

/// A scrape reads no table: it answers while every table the gauges describe is
/// locked against readers (a scrape that counted rows would wait for the lock).
async fn a_scrape_reads_no_rows() {
    let _one = ONE_HOST.lock().await;
    let app = spawn_with(Backend::Postgres, pakaura_tests::Options::default()).await;
    task_id(&app, "alice", json!({"title": "a row"})).await;
    let mut locker = sqlx::PgConnection::connect(&app.database.url)
        .await
        .unwrap();
    locker.execute("BEGIN").await.unwrap();
    locker
        .execute("LOCK TABLE tasks, outbox, envelopes, dead_letters IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let response = app
        .client
        .get(app.url("/metrics"))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .expect("the scrape answers while the tables are locked");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("pakaura_relay_up"));
    locker.execute("ROLLBACK").await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_does_not_wait_for_the_database() {
    a_scrape_reads_no_rows().await;
}

/// The identity provider's key set as a pager sees it: the keys held, the time of the
/// last success (kept through an outage), and fetches by outcome and trigger. Auth does
/// not touch the database, so SQLite alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_series_follow_the_provider() {
    let _one = ONE_HOST.lock().await;
    let keys = ["k1", "k2"].map(|kid| SigningKey::generate(kid, Algorithm::ES256));
    let idp = JwksServer::start(keys.iter().map(SigningKey::jwk).collect()).await;
    let app = spawn_with(Backend::Sqlite, idp.options()).await;
    let series = |outcome: &str, trigger: &str| {
        format!("pakaura_jwks_refreshes_total{{outcome=\"{outcome}\",trigger=\"{trigger}\"}}")
    };
    let text = scrape(&app).await;
    assert_eq!(value(&text, "pakaura_jwks_keys"), Some(2.0), "{text}");
    let fetched_at = value(&text, "pakaura_jwks_last_success_timestamp_seconds").unwrap();
    assert!(fetched_at > 1.7e9, "a Unix time: {text}");
    assert_eq!(
        value(&text, &series("success", "startup")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, &series("failure", "unknown_kid")),
        Some(0.0),
        "{text}"
    );

    idp.set_up(false);
    let stranger = SigningKey::generate("k3", Algorithm::ES256);
    let refused = app
        .client
        .get(app.url("/tasks"))
        .bearer_auth(stranger.sign(&claims_for("alice", &json!({}))))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let text = scrape(&app).await;
    assert_eq!(
        value(&text, &series("failure", "unknown_kid")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "pakaura_jwks_keys"),
        Some(2.0),
        "cached keys stay: {text}"
    );
    assert_eq!(
        value(&text, "pakaura_jwks_last_success_timestamp_seconds"),
        Some(fetched_at),
        "{text}"
    );
    app.stop().await;
}

on_both_databases!(
    backlog_gauges_follow_an_outage_and_its_drain,
    hold_gauges_follow_a_hold_and_its_replay,
    histograms_expose_buckets_and_every_metric_is_described,
);
