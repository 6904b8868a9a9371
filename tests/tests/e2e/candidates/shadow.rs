//! Shadow runs: the relay's traffic mapped by a candidate beside the live set, compared and
//! never published; and a failing candidate, diffed and shadowed, that must leave no dead
//! letter, no hold and no envelope of its own.

use pakaura_tests::{
    Backend, DaprSink, Options, TestApp, dapr_options, expect_problem, guests, on_both_databases,
    sink_behaviour, spawn_with, task_id,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{
    FAILING_REASON, History, RENAMED_TYPE, SLOW, admin, admin_json, candidates, diff, drained,
    id_of, renamed_changes, report_of, the_rename, upload, work_on_tasks,
};

/// Starts a shadow run of `candidate`; its status.
async fn start_shadow(app: &TestApp, candidate: &Value) -> Value {
    let path = format!("/admin/candidates/{}/shadow", id_of(candidate));
    let status = admin_json(app, Method::POST, &path, None, StatusCode::OK).await;
    assert_eq!(status["candidate_id"], candidate["id"], "{status}");
    assert_eq!(status["running"], true, "{status}");
    status
}

/// Waits until the shadow run has been offered `n` mutations and has dealt with each
/// (compared or dropped); its status.
async fn shadow_after(app: &TestApp, n: u64) -> Value {
    let deadline = tokio::time::Instant::now() + SLOW;
    loop {
        let status = admin_json(app, Method::GET, "/admin/shadow", None, StatusCode::OK).await;
        let count = |k: &str| status[k].as_u64().unwrap();
        if count("offered") >= n && count("mutations") + count("dropped") == count("offered") {
            assert_eq!(count("offered"), n, "offered more than made: {status:#}");
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the shadow run did not see {n} mutations: {status:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Every envelope the sink accepted is one the live set made: as many as the host stored,
/// each once, none dead, no dead letter, no hold.
async fn only_the_live_set_published(app: &TestApp, sink: &DaprSink) {
    let backlog = drained(app).await;
    assert_eq!(backlog.dead_letters_open, 0, "{backlog:?}");
    assert_eq!((backlog.holds, backlog.held_events), (0, 0), "{backlog:?}");
    let published = sink.published();
    let mut ids: Vec<&str> = published.iter().map(|r| r.id()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), published.len(), "each envelope once");
    let stored = admin_json(
        app,
        Method::GET,
        "/admin/envelopes?limit=1",
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stored["total"], published.len() as u64, "{stored:#}");
    let dead = admin_json(
        app,
        Method::GET,
        "/admin/envelopes?state=dead&limit=1",
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(dead["total"], 0, "{dead:#}");
    let letters = admin_json(
        app,
        Method::GET,
        "/admin/dead-letters",
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(letters["dead_letters"], json!([]), "{letters:#}");
    let holds = admin_json(app, Method::GET, "/admin/holds", None, StatusCode::OK).await;
    assert_eq!(holds["holds"], json!([]), "{holds:#}");
}

/// A shadow run of the renamed candidate counts every mutation the relay maps, shows the
/// rename in its samples, stops on request, and nothing it made reaches the sidecar.
async fn a_shadow_run_compares_live_traffic_and_publishes_nothing_of_its_own(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    let none = admin(&app, Method::GET, "/admin/shadow", None).await;
    expect_problem(none, StatusCode::NOT_FOUND).await;
    let none = admin(&app, Method::DELETE, "/admin/shadow", None).await;
    expect_problem(none, StatusCode::NOT_FOUND).await;

    let candidate = upload(&app, guests::RENAMED).await;
    let started = start_shadow(&app, &candidate).await;
    assert_eq!(started["candidate"]["sha256"], candidate["sha256"]);
    assert_eq!(started["mutations"], 0);
    let path = format!("/admin/candidates/{}", id_of(&candidate));
    let shown = admin_json(&app, Method::GET, &path, None, StatusCode::OK).await;
    assert_eq!(shown["shadowing"], true);

    let mut history = History::default();
    work_on_tasks(&app, 12, &mut history).await;
    let status = shadow_after(&app, history.len()).await;
    assert_eq!(status["running"], true);
    assert_eq!(status["failed"], 0, "{status:#}");
    let changed = status["changed"].as_u64().unwrap();
    assert!(changed > 0, "{status:#}");
    if status["dropped"] == 0 {
        assert_eq!(changed, history.count("created"), "{status:#}");
        assert_eq!(status["events"]["changed"], changed, "{status:#}");
    }
    assert_eq!(status["events"]["added"], 0);
    assert_eq!(status["events"]["removed"], 0);
    let samples = status["samples"]["changed"].as_array().unwrap();
    assert!(!samples.is_empty() && samples.len() <= 5, "{status:#}");
    for sample in samples {
        assert_eq!(renamed_changes(sample), the_rename());
    }

    // Counted in the metrics too (process-wide: other tests' shadow runs add to them).
    let metric = counter(&app, "pakaura_shadow_mutations_total", "changed").await;
    assert!(metric >= changed as f64, "{metric} < {changed}");
    let metric = counter(&app, "pakaura_shadow_events_total", "changed").await;
    assert!(metric >= changed as f64, "{metric} < {changed}");

    let stopped = admin_json(&app, Method::DELETE, "/admin/shadow", None, StatusCode::OK).await;
    assert_eq!(stopped["running"], false, "{stopped}");
    assert!(stopped["stopped_at"].is_string(), "{stopped}");
    let again = admin(&app, Method::DELETE, "/admin/shadow", None).await;
    expect_problem(again, StatusCode::NOT_FOUND).await;
    let shown = admin_json(&app, Method::GET, &path, None, StatusCode::OK).await;
    assert_eq!(shown["shadowing"], false);

    // Stopped: a new mutation is not offered to it any more.
    task_id(&app, "alice", json!({"title": "after the shadow run"})).await;
    drained(&app).await;
    let after = admin_json(&app, Method::GET, "/admin/shadow", None, StatusCode::OK).await;
    assert_eq!(after["offered"], status["offered"], "{after:#}");
    assert_eq!(after["running"], false);

    // What the sink received is the live set's alone: every task.created with its title.
    only_the_live_set_published(&app, &sink).await;
    let published = sink.published();
    let created: Vec<&Value> = published
        .iter()
        .filter(|r| r.event_type() == RENAMED_TYPE)
        .map(|r| &r.body)
        .collect();
    assert_eq!(created.len() as u64, history.count("created") + 1);
    for envelope in published.iter().map(|r| &r.body) {
        assert!(envelope["data"].get("name").is_none(), "{envelope:#}");
    }
    for envelope in created {
        assert!(envelope["data"]["title"].is_string(), "{envelope:#}");
    }
}

/// A candidate that fails on every deletion: its history diff and its shadow run report
/// each failure, grouped with the reason, and the host publishes what the live set makes,
/// with no dead letter, no hold and no envelope more.
async fn a_failing_candidate_reports_failures_without_a_dead_letter_hold_or_publish(
    backend: Backend,
) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    let mut history = History::default();
    work_on_tasks(&app, 24, &mut history).await;
    only_the_live_set_published(&app, &sink).await;
    let before = sink.published().len();

    let candidate = upload(&app, guests::FAILING).await;
    let job = diff(&app, &candidate, json!({})).await;
    let report = report_of(&job);
    let deleted = history.count("deleted");
    assert!(deleted >= 4);
    assert_eq!(report["mutations"], history.len());
    assert_eq!(report["failed"], deleted, "{report:#}");
    assert_eq!(report["changed"], 0, "{report:#}");
    assert_eq!(report["identical"], history.len() - deleted);
    assert_eq!(report["live_failed"], 0);
    assert_failures(report, deleted);
    let samples = report["samples"]["failed"].as_array().unwrap();
    assert!(!samples.is_empty() && samples.len() <= 5, "{report:#}");
    for sample in samples {
        assert_eq!(sample["action"], "deleted", "{sample:#}");
        assert_eq!(sample["result"], "failed", "{sample:#}");
        let failure = &sample["candidate_failure"];
        assert_eq!(failure["mapper"], "default", "{sample:#}");
        assert!(
            failure["reason"].as_str().unwrap().contains(FAILING_REASON),
            "{sample:#}"
        );
        assert!(sample.get("live_failure").is_none(), "{sample:#}");
    }
    // The diff published nothing and parked nothing.
    only_the_live_set_published(&app, &sink).await;
    assert_eq!(sink.published().len(), before);

    start_shadow(&app, &candidate).await;
    let mut more = History::default();
    work_on_tasks(&app, 12, &mut more).await;
    let status = shadow_after(&app, more.len()).await;
    if status["dropped"] == 0 {
        let deleted = more.count("deleted");
        assert_eq!(status["failed"], deleted, "{status:#}");
        assert_eq!(status["identical"], more.len() - deleted, "{status:#}");
        assert_failures(&status, deleted);
    }
    assert!(status["failed"].as_u64().unwrap() > 0, "{status:#}");
    let failed = status["samples"]["failed"].as_array().unwrap();
    assert!(!failed.is_empty(), "{status:#}");
    admin_json(&app, Method::DELETE, "/admin/shadow", None, StatusCode::OK).await;

    // Every deletion the candidate failed on was published by the live set as usual.
    only_the_live_set_published(&app, &sink).await;
    let published = sink.published();
    for (task, _) in more.mutations.iter().filter(|(_, a)| *a == "deleted") {
        let types: Vec<&str> = published
            .iter()
            .filter(|r| r.body["subject"] == task.as_str())
            .map(|r| r.event_type())
            .collect();
        assert!(types.contains(&"task.deleted"), "{task}: {types:?}");
    }
}

/// `failures` is one group: mapper `default`, the guest's reason, `count`.
fn assert_failures(tally: &Value, count: u64) {
    let failures = tally["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(failures[0]["mapper"], "default");
    assert_eq!(failures[0]["count"], count);
    let reason = failures[0]["reason"].as_str().unwrap();
    assert!(reason.contains(FAILING_REASON), "{reason}");
}

/// `MAPPERS_SHADOW_DIR`'s one candidate is shadowed from start; a shadow run started
/// through the API replaces it; removing the shadowed candidate stops its run.
async fn the_candidate_in_mappers_shadow_dir_is_shadowed_from_start(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(guests::RENAMED, dir.path().join("renamed.wasm")).unwrap();
    let options = Options::default().set("MAPPERS_SHADOW_DIR", dir.path().display().to_string());
    let app = spawn_with(backend, options).await;
    let status = admin_json(&app, Method::GET, "/admin/shadow", None, StatusCode::OK).await;
    assert_eq!(status["running"], true, "{status:#}");
    assert_eq!(status["started_by"], "MAPPERS_SHADOW_DIR");
    assert_eq!(status["candidate"]["file"], "renamed.wasm");
    let listed = candidates(&app).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let renamed = &listed[0];
    assert_eq!(renamed["id"], status["candidate_id"]);
    assert_eq!(renamed["uploaded_by"], "MAPPERS_SHADOW_DIR");
    assert_eq!(renamed["shadowing"], true);

    task_id(&app, "alice", json!({"title": "shadowed from start"})).await;
    let status = shadow_after(&app, 1).await;
    assert_eq!(
        status["changed"].as_u64().unwrap() + status["dropped"].as_u64().unwrap(),
        1
    );

    let failing = upload(&app, guests::FAILING).await;
    start_shadow(&app, &failing).await;
    let path = format!("/admin/candidates/{}", id_of(renamed));
    let shown = admin_json(&app, Method::GET, &path, None, StatusCode::OK).await;
    assert_eq!(shown["shadowing"], false, "replaced: {shown:#}");

    let path = format!("/admin/candidates/{}", id_of(&failing));
    let removed = admin(&app, Method::DELETE, &path, None).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let status = admin_json(&app, Method::GET, "/admin/shadow", None, StatusCode::OK).await;
    assert_eq!(status["running"], false, "{status:#}");
    assert_eq!(status["candidate_id"], failing["id"]);
}

/// The value of the Prometheus counter `name` with label `result="RESULT"`.
async fn counter(app: &TestApp, name: &str, result: &str) -> f64 {
    let metrics = app
        .send(Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find(|l| {
            l.starts_with(&format!("{name}{{")) && l.contains(&format!(r#"result="{result}""#))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name}{{result={result}}} in\n{metrics}"))
}

on_both_databases!(
    a_shadow_run_compares_live_traffic_and_publishes_nothing_of_its_own,
    a_failing_candidate_reports_failures_without_a_dead_letter_hold_or_publish,
    the_candidate_in_mappers_shadow_dir_is_shadowed_from_start,
);
