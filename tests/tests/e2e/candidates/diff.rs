//! History diffs through the admin API: a renamed field shows as exactly that change, an
//! identical build as nothing over a thousand mutations; a window covers exactly its
//! mutations; a long diff can be cancelled; candidates are listed, shown and removed.

use pakaura_tests::{
    Backend, DaprSink, Options, dapr_options, expect_problem, guests, on_both_databases,
    sink_behaviour, spawn_with,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{
    History, RENAMED_TYPE, admin, admin_json, candidates, create_many, diff, drained,
    finished_diff, id_of, live_default, renamed_changes, report_of, the_rename, type_counts,
    upload, upload_bytes, work_on_tasks,
};

/// Every `task.created` event, and nothing else, differs: `title` removed, `name` added.
/// The counts by type agree with what the live set really published.
async fn a_renamed_field_shows_as_exactly_that_change_on_every_affected_event(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    let mut history = History::default();
    work_on_tasks(&app, 36, &mut history).await;
    drained(&app).await;
    let live = live_default(&app).await;

    let candidate = upload(&app, guests::RENAMED).await;
    assert_eq!(candidate["name"], "default");
    assert_eq!(candidate["version"], live["version"]);
    assert_ne!(candidate["sha256"], live["sha256"]);
    assert_eq!(candidate["file"], "renamed.wasm");
    assert_eq!(
        candidate["replaces"],
        json!({"version": live["version"], "sha256": live["sha256"]})
    );
    assert_eq!(candidate["topics"], live["topics"]);
    assert_eq!(candidate["event_types"], live["event_types"]);
    assert_eq!(candidate["diff"], Value::Null);
    assert_eq!(candidate["shadowing"], false);

    let job = diff(&app, &candidate, json!({})).await;
    let report = report_of(&job);
    let created = history.count("created");
    assert_eq!(report["mutations"], history.len(), "{report:#}");
    assert_eq!(report["changed"], created, "{report:#}");
    assert_eq!(report["identical"], history.len() - created, "{report:#}");
    assert_eq!(report["failed"], 0);
    assert_eq!(report["live_failed"], 0);
    assert_eq!(report["events"]["changed"], created, "{report:#}");
    assert_eq!(report["events"]["added"], 0, "{report:#}");
    assert_eq!(report["events"]["removed"], 0, "{report:#}");
    assert_eq!(report["failures"], json!([]));
    assert_eq!(report["candidate"]["sha256"], candidate["sha256"]);
    assert_eq!(report["window"], json!({}));

    // By type: only task.created changes, every one of them; the live side of each type is
    // exactly what the sink received.
    let published = sink.published();
    let mut types: Vec<&str> = published.iter().map(|r| r.event_type()).collect();
    types.sort_unstable();
    types.dedup();
    let by_type = report["by_type"].as_array().unwrap();
    assert_eq!(by_type.len(), types.len(), "{by_type:#?}");
    assert_eq!(types.len(), 9, "the history holds every type: {types:?}");
    for ty in types {
        let sent = published.iter().filter(|r| r.event_type() == ty).count() as u64;
        let [same, changed, added, removed] = type_counts(report, ty);
        assert_eq!((added, removed), (0, 0), "{ty}");
        if ty == RENAMED_TYPE {
            assert_eq!((same, changed), (0, created), "{ty}");
        } else {
            assert_eq!((same, changed), (sent, 0), "{ty}");
        }
        assert_eq!(same + changed, sent, "{ty}");
    }
    assert_eq!(
        report["events"]["same"].as_u64().unwrap() + created,
        published.len() as u64
    );

    // Each sample shows the rename and nothing else.
    let samples = &report["samples"];
    let changed = samples["changed"].as_array().unwrap();
    assert!(!changed.is_empty() && changed.len() <= 5, "{samples:#}");
    for sample in changed {
        assert_eq!(sample["action"], "created", "{sample:#}");
        assert_eq!(sample["result"], "changed", "{sample:#}");
        assert_eq!(renamed_changes(sample), the_rename());
    }
    for kind in ["added", "removed", "failed"] {
        assert_eq!(samples[kind], json!([]), "{kind}");
    }
}

/// Another build of the default catalogue compares identical on every one of more than a
/// thousand mutations.
async fn an_identical_candidate_shows_no_difference_over_a_thousand_mutations(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    let mut history = History::default();
    work_on_tasks(&app, 12, &mut history).await;
    create_many(&app, 1000, &mut history).await;
    assert!(history.len() > 1000);

    let candidate = upload(&app, guests::IDENTICAL).await;
    assert_ne!(candidate["sha256"], live_default(&app).await["sha256"]);
    let job = diff(&app, &candidate, json!({})).await;
    let report = report_of(&job);
    assert_eq!(report["mutations"], history.len());
    assert_eq!(report["identical"], history.len(), "{report:#}");
    assert_eq!(report["changed"], 0);
    assert_eq!(report["failed"], 0);
    let events = &report["events"];
    assert!(events["same"].as_u64().unwrap() >= 2 * history.len());
    assert_eq!(
        [&events["changed"], &events["added"], &events["removed"]],
        [0, 0, 0]
    );
    for kind in ["changed", "added", "removed", "failed"] {
        assert_eq!(report["samples"][kind], json!([]), "{kind}");
    }
}

/// `last`, `task_id`, `since` and `until` each narrow the diff to exactly their mutations;
/// a window that cannot hold any is refused, naming the field.
async fn a_history_diff_covers_exactly_its_window(backend: Backend) {
    let app = pakaura_tests::spawn_app(backend).await;
    let mut history = History::default();
    work_on_tasks(&app, 12, &mut history).await;
    let before = history.len();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let mid = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    create_many(&app, 4, &mut history).await;
    let candidate = upload(&app, guests::RENAMED).await;

    let report = |job: &Value| report_of(job).clone();
    let last = report(&diff(&app, &candidate, json!({"last": 5})).await);
    assert_eq!(last["mutations"], 5, "{last:#}");
    assert_eq!(last["window"], json!({"last": 5}));
    // The last five: the four bulk creates and the deletion of task 11 before them.
    assert_eq!(last["changed"], 4, "{last:#}");
    assert_eq!(last["identical"], 1, "{last:#}");

    let task = history.tasks()[0].to_owned();
    let one = report(&diff(&app, &candidate, json!({"task_id": task})).await);
    assert_eq!(one["mutations"], history.of_task(&task), "{one:#}");
    assert_eq!(one["changed"], 1, "only its creation differs: {one:#}");
    for sample in one["samples"]["changed"].as_array().unwrap() {
        assert_eq!(sample["task_id"], task.as_str());
    }

    let since = report(&diff(&app, &candidate, json!({"since": mid.to_rfc3339()})).await);
    assert_eq!(since["mutations"], 4, "{since:#}");
    assert_eq!(since["changed"], 4);
    let until = report(&diff(&app, &candidate, json!({"until": mid.to_rfc3339()})).await);
    assert_eq!(until["mutations"], before, "{until:#}");
    let both =
        json!({"since": mid.to_rfc3339(), "until": chrono::Utc::now().to_rfc3339(), "last": 2});
    let both = report(&diff(&app, &candidate, both).await);
    assert_eq!(both["mutations"], 2, "{both:#}");

    let path = format!("/admin/candidates/{}/diff", id_of(&candidate));
    let later = (mid + chrono::Duration::seconds(1)).to_rfc3339();
    for (window, field) in [
        (json!({"since": later, "until": mid.to_rfc3339()}), "since"),
        (
            json!({"since": mid.to_rfc3339(), "until": mid.to_rfc3339()}),
            "since",
        ),
        (json!({"last": 0}), "last"),
        (json!({"last": 10_000_001}), "last"),
    ] {
        let response = admin(&app, Method::POST, &path, Some(window.clone())).await;
        let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(field) || problem["field"] == field,
            "{window} names `{field}`: {problem}"
        );
    }
    // The refused windows left the last diff as it was.
    let job = admin_json(&app, Method::GET, &path, None, StatusCode::OK).await;
    assert_eq!(job["report"]["mutations"], 2);
}

/// Cancelling a diff of a long history stops it part way: `cancelled`, with what it
/// compared so far (`done < total`) and a report of exactly that.
async fn cancelling_a_long_diff_stops_it_part_way(backend: Backend) {
    let app = pakaura_tests::spawn_app(backend).await;
    let mut history = History::default();
    create_many(&app, 3000, &mut history).await;
    let candidate = upload(&app, guests::RENAMED).await;
    let path = format!("/admin/candidates/{}/diff", id_of(&candidate));
    // A fast machine may finish before the cancel arrives: try a few times.
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        admin_json(
            &app,
            Method::POST,
            &path,
            Some(json!({})),
            StatusCode::ACCEPTED,
        )
        .await;
        // A diff of thousands of mutations takes far longer than one request: it runs.
        let again = admin(&app, Method::POST, &path, Some(json!({}))).await;
        expect_problem(again, StatusCode::CONFLICT).await;
        let asked = admin_json(&app, Method::DELETE, &path, None, StatusCode::OK).await;
        assert!(
            ["running", "cancelled", "done"].contains(&asked["state"].as_str().unwrap()),
            "{asked}"
        );
        let job = finished_diff(&app, &candidate).await;
        let (done, total) = (
            job["done"].as_u64().unwrap(),
            job["total"].as_u64().unwrap(),
        );
        assert_eq!(total, history.len(), "{job}");
        assert!(done <= total, "{job}");
        assert_eq!(job["report"]["mutations"], done, "{job}");
        match job["state"].as_str().unwrap() {
            "cancelled" => assert_eq!(job["report"]["cancelled"], true, "{job}"),
            "done" => assert_eq!(done, total, "{job}"),
            other => panic!("a cancelled diff ends cancelled or done, not {other}: {job}"),
        }
        outcomes.push((job["state"].as_str().unwrap().to_owned(), done));
        if job["state"] == "cancelled" && done < total {
            break;
        }
    }
    assert!(
        outcomes
            .iter()
            .any(|(s, done)| s == "cancelled" && *done < history.len()),
        "no diff of {} mutations was cancelled part way: {outcomes:?}",
        history.len()
    );
    // The candidate's summary shows the latest job, without its report.
    let shown = admin_json(
        &app,
        Method::GET,
        &format!("/admin/candidates/{}", id_of(&candidate)),
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["diff"]["state"], "cancelled");
    assert!(shown["diff"].get("report").is_none(), "{shown}");
}

/// Candidates are listed oldest first and shown one by one; a refused component is a 400
/// naming why; removing a candidate forgets it and its diff.
async fn candidates_are_listed_shown_refused_and_removed(backend: Backend) {
    let options = Options::default().set("CONSOLE_UPLOAD_LIMIT", "256KiB");
    let app = spawn_with(backend, options).await;
    assert_eq!(candidates(&app).await, Vec::<Value>::new());

    let refused = upload_bytes(
        &app,
        "wrong.wasm",
        std::fs::read(guests::WRONG_WORLD).unwrap(),
    )
    .await;
    let problem = expect_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["field"], "component", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("wrong.wasm"),
        "{problem}"
    );
    let junk = upload_bytes(&app, "junk.wasm", b"not a component".to_vec()).await;
    let problem = expect_problem(junk, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["field"], "component", "{problem}");
    let untyped = app
        .client
        .post(app.url("/admin/candidates"))
        .bearer_auth(pakaura_tests::ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(std::fs::read(guests::RENAMED).unwrap())
        .send()
        .await
        .unwrap();
    expect_problem(untyped, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let large = upload_bytes(&app, "large.wasm", vec![0; 300 * 1024]).await;
    expect_problem(large, StatusCode::PAYLOAD_TOO_LARGE).await;

    let renamed = upload(&app, guests::RENAMED).await;
    let failing = upload(&app, guests::FAILING).await;
    let list = candidates(&app).await;
    let ids: Vec<&str> = list.iter().map(id_of).collect();
    assert_eq!(ids, [id_of(&renamed), id_of(&failing)]);
    assert_eq!(list[0]["uploaded_at"], renamed["uploaded_at"]);
    assert!(!renamed["uploaded_by"].as_str().unwrap().is_empty());

    let path = format!("/admin/candidates/{}", id_of(&renamed));
    let diff_path = format!("{path}/diff");
    let none = admin(&app, Method::GET, &diff_path, None).await;
    expect_problem(none, StatusCode::NOT_FOUND).await;
    diff(&app, &renamed, json!({})).await;
    let shown = admin_json(&app, Method::GET, &path, None, StatusCode::OK).await;
    assert_eq!(shown["diff"]["state"], "done");
    assert_eq!(shown["sha256"], renamed["sha256"]);

    let deleted = admin(&app, Method::DELETE, &path, None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    for gone in [&path, &diff_path] {
        let response = admin(&app, Method::GET, gone, None).await;
        expect_problem(response, StatusCode::NOT_FOUND).await;
    }
    let list = candidates(&app).await;
    let ids: Vec<&str> = list.iter().map(id_of).collect();
    assert_eq!(ids, [id_of(&failing)]);
    let unknown = format!("/admin/candidates/{}", uuid::Uuid::new_v4());
    let response = admin(&app, Method::GET, &unknown, None).await;
    expect_problem(response, StatusCode::NOT_FOUND).await;
}

on_both_databases!(
    a_renamed_field_shows_as_exactly_that_change_on_every_affected_event,
    an_identical_candidate_shows_no_difference_over_a_thousand_mutations,
    a_history_diff_covers_exactly_its_window,
    cancelling_a_long_diff_stops_it_part_way,
    candidates_are_listed_shown_refused_and_removed,
);
