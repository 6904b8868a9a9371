//! The playground: runs a loaded or uploaded mapper on a mutation exactly as the relay
//! would, shows refusals, and touches neither the outbox nor `MAPPERS_DIR`.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use super::api::envelopes_of;
use pakaura_tests::task_id;
use pakaura_tests::{
    ADMIN_TOKEN, Backend, Options, TestApp, expect_problem, on_both_databases, spawn_app,
    spawn_with,
};

async fn run(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/admin/playground/run"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn run_ok(app: &TestApp, body: Value) -> Value {
    let response = run(app, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn upload(
    app: &TestApp,
    name: &str,
    bytes: Vec<u8>,
    content_type: &str,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/admin/playground/uploads?name={name}")))
        .bearer_auth(ADMIN_TOKEN)
        .header(CONTENT_TYPE, content_type)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

/// Rows the relay stored: outbox mutations and envelopes.
async fn stored(app: &TestApp) -> (usize, usize) {
    let outbox = app.db.outbox_rows(None).await.unwrap().len();
    let envelopes = app.admin_json("/admin/envelopes?limit=1000").await["envelopes"]
        .as_array()
        .unwrap()
        .len();
    (outbox, envelopes)
}

async fn the_playground_maps_a_real_mutation_exactly_as_the_relay_did(backend: Backend) {
    let app = spawn_app(backend).await;
    let task = task_id(
        &app,
        "alice",
        json!({"title": "water plants", "due_date": "2026-03-01T09:00:00Z"}),
    )
    .await;
    let relayed = envelopes_of(&app, &task, 3).await;
    let detail = app
        .admin_json(&format!(
            "/admin/envelopes/{}",
            relayed[0]["id"].as_str().unwrap()
        ))
        .await;
    let calls_before =
        app.admin_json("/admin/mappers").await["mappers"][0]["stats"]["calls"].clone();
    let before = stored(&app).await;

    let result = run_ok(
        &app,
        json!({"mapper": "default", "mutation": detail["mutation"]}),
    )
    .await;
    assert_eq!(result["outcome"], "events");
    assert_eq!(result["mapper"]["name"], "default");
    let mut ran: Vec<Value> = result["envelopes"].as_array().unwrap().clone();
    let mut relayed: Vec<Value> = relayed.iter().map(|e| e["envelope"].clone()).collect();
    let by_id = |e: &Value| e["id"].as_str().unwrap().to_owned();
    ran.sort_by_key(by_id);
    relayed.sort_by_key(by_id);
    assert_eq!(ran, relayed, "the same envelopes, ids and all");

    assert_eq!(stored(&app).await, before, "nothing stored");
    assert_eq!(
        app.admin_json("/admin/mappers").await["mappers"][0]["stats"]["calls"],
        calls_before,
        "the live mapper's statistics stay the relay's"
    );

    // A template runs too, and a broken mutation names its field.
    let template = app
        .admin_json("/admin/playground/template?action=updated")
        .await;
    assert_eq!(template["action"], "updated");
    let result = run_ok(&app, json!({"mapper": "default", "mutation": template})).await;
    let types: Vec<&str> = result["envelopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"task.updated"), "{types:?}");
    let problem = expect_problem(
        run(&app, json!({"mapper": "default", "mutation": {"id": 1}})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["field"], "mutation");
    let problem = expect_problem(
        run(&app, json!({"mapper": "nope", "mutation": template})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["field"], "mapper");
}

async fn an_uploaded_mapper_runs_and_its_refusals_show(backend: Backend) {
    let mappers = tempfile::tempdir().unwrap();
    let app = spawn_with(
        backend,
        Options::default().set("MAPPERS_DIR", mappers.path().display().to_string()),
    )
    .await;
    let bytes = std::fs::read(pakaura_tests::guests::MISBEHAVE).unwrap();
    let response = upload(&app, "misbehave.wasm", bytes, "application/wasm").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let uploaded: Value = response.json().await.unwrap();
    assert_eq!(uploaded["mapper"]["name"], "misbehave");
    assert_eq!(uploaded["mapper"]["file"], "upload:misbehave.wasm");
    let id = uploaded["id"].as_str().unwrap();
    assert_eq!(
        std::fs::read_dir(mappers.path()).unwrap().count(),
        0,
        "nothing is written into MAPPERS_DIR"
    );
    let listed = app.admin_json("/admin/playground/uploads").await;
    assert_eq!(listed["uploads"][0]["id"], id);
    assert_eq!(
        app.admin_json("/admin/mappers").await["mappers"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "the live set is unchanged"
    );

    let mutation = app.admin_json("/admin/playground/template").await;
    let ok = run_ok(&app, json!({"upload": id, "mutation": mutation})).await;
    assert_eq!(ok["outcome"], "events");
    assert_eq!(ok["envelopes"][0]["type"], "test.ok");
    assert_eq!(ok["envelopes"][0]["mappername"], "misbehave");
    for (mode, kind) in [("panic", "trap"), ("err", "rejected"), ("loop", "deadline")] {
        let refused = run_ok(
            &app,
            json!({"upload": id, "mutation": mutation, "config": {"mode": mode}}),
        )
        .await;
        assert_eq!(refused["outcome"], "refused", "{mode}");
        assert_eq!(refused["refusal"]["kind"], kind, "{mode}");
        assert_eq!(refused["refusal"]["mapper"], "misbehave");
        assert!(refused["envelopes"].as_array().unwrap().is_empty());
    }
    let (outbox, envelopes) = stored(&app).await;
    assert_eq!((outbox, envelopes), (0, 0), "nothing stored");

    let gone = run(
        &app,
        json!({"upload": uuid::Uuid::new_v4(), "mutation": mutation}),
    )
    .await;
    let problem = expect_problem(gone, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["field"], "upload");
}

async fn uploads_are_checked_and_size_limited(backend: Backend) {
    let app = spawn_with(
        backend,
        Options::default().set("CONSOLE_UPLOAD_LIMIT", "4KiB"),
    )
    .await;
    let too_large = upload(&app, "big.wasm", vec![0u8; 8 << 10], "application/wasm").await;
    expect_problem(too_large, StatusCode::PAYLOAD_TOO_LARGE).await;
    let not_wasm = upload(&app, "text.wasm", b"hello".to_vec(), "application/wasm").await;
    let problem = expect_problem(not_wasm, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["field"], "component");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly file")
    );
    let wrong_type = upload(&app, "x.wasm", b"\0asm".to_vec(), "application/json").await;
    expect_problem(wrong_type, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    // Past the general 64 KiB body limit, under the upload limit: accepted for checking.
    let app = spawn_app(backend).await;
    let mut big = b"\0asm\x01\0\0\0".to_vec();
    big.resize(100 << 10, 0);
    let refused = upload(&app, "big.wasm", big, "application/octet-stream").await;
    expect_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
}

on_both_databases!(
    the_playground_maps_a_real_mutation_exactly_as_the_relay_did,
    an_uploaded_mapper_runs_and_its_refusals_show,
    uploads_are_checked_and_size_limited,
);
