//! The MCP tool surface (Streamable HTTP, JSON-RPC): same auth, rules and events
//! as REST, mutations recorded with origin `mcp`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use pakaura_host::domain::{Action, Origin};
use pakaura_tests::{Backend, TestApp, mutations_of, on_both_databases, spawn_app, token_for};

/// Sends one JSON-RPC request to `/mcp` as `user` and returns the response body.
async fn rpc(app: &TestApp, user: &str, method: &str, params: Value) -> Value {
    let response = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(token_for(user))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("x-correlation-id", "mcp-corr-1")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{method}");
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method}: {e}: {text}"))
}

/// Calls a tool and returns its `result`.
pub(crate) async fn call(app: &TestApp, user: &str, tool: &str, arguments: Value) -> Value {
    let body = rpc(
        app,
        user,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    )
    .await;
    body.get("result")
        .cloned()
        .unwrap_or_else(|| panic!("{tool}: {body}"))
}

async fn the_tools_are_listed(backend: Backend) {
    let app = spawn_app(backend).await;
    let init = rpc(
        &app,
        "alice",
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}),
    )
    .await;
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "{init}"
    );
    let listed = rpc(&app, "alice", "tools/list", json!({})).await;
    let mut names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "add_task",
            "clear_completed",
            "complete_task",
            "delete_task",
            "list_tasks",
            "uncomplete_task",
            "update_task"
        ]
    );
}

async fn tools_manage_the_callers_tasks_and_record_mcp_mutations(backend: Backend) {
    let app = spawn_app(backend).await;
    let added = call(
        &app,
        "alice",
        "add_task",
        json!({"title": " plan trip ", "due_date": "2026-05-01T08:00:00Z"}),
    )
    .await;
    assert_eq!(added["isError"], false, "{added}");
    let task = &added["structuredContent"];
    assert_eq!(task["title"], "plan trip");
    let id = task["id"].as_str().unwrap().to_owned();

    let updated = call(
        &app,
        "alice",
        "update_task",
        json!({"id": id, "title": "plan the trip", "due_date": null}),
    )
    .await;
    assert_eq!(updated["structuredContent"]["due_date"], Value::Null);
    let done = call(&app, "alice", "complete_task", json!({"id": id})).await;
    assert_eq!(done["structuredContent"]["completed"], true);
    let open = call(&app, "alice", "uncomplete_task", json!({"id": id})).await;
    assert_eq!(open["structuredContent"]["completed"], false);
    let listed = call(&app, "alice", "list_tasks", json!({"limit": 10})).await;
    assert_eq!(listed["structuredContent"]["items"][0]["id"], id.as_str());

    // Another user sees nothing and changes nothing.
    let theirs = call(&app, "mallory", "complete_task", json!({"id": id})).await;
    assert_eq!(theirs["isError"], true);
    assert_eq!(theirs["structuredContent"]["status"], 404);
    let empty = call(&app, "mallory", "list_tasks", json!({})).await;
    assert_eq!(empty["structuredContent"]["items"], json!([]));

    call(&app, "alice", "complete_task", json!({"id": id})).await;
    let cleared = call(&app, "alice", "clear_completed", json!({})).await;
    assert_eq!(cleared["structuredContent"]["deleted"], 1);

    let mutations = mutations_of(&app.db, &id).await;
    let actions: Vec<Action> = mutations.iter().map(|m| m.action).collect();
    assert_eq!(
        actions,
        [
            Action::Created,
            Action::Updated,
            Action::Completed,
            Action::Uncompleted,
            Action::Completed,
            Action::Deleted
        ]
    );
    assert!(
        mutations
            .iter()
            .all(|m| m.origin == Origin::Mcp && m.correlation_id == "mcp-corr-1")
    );
}

async fn tool_errors_name_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let blank = call(&app, "alice", "add_task", json!({"title": "   "})).await;
    assert_eq!(blank["isError"], true);
    assert_eq!(blank["structuredContent"]["status"], 422);
    assert_eq!(blank["structuredContent"]["field"], "title");
    let bad_id = call(&app, "alice", "delete_task", json!({"id": "nope"})).await;
    assert_eq!(bad_id["structuredContent"]["field"], "id");
    let bad_limit = call(&app, "alice", "list_tasks", json!({"limit": 500})).await;
    assert_eq!(bad_limit["structuredContent"]["field"], "limit");
}

async fn mcp_needs_a_valid_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .post(app.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}))
        .send()
        .await
        .unwrap();
    pakaura_tests::expect_problem(response, StatusCode::UNAUTHORIZED).await;
}

on_both_databases!(
    the_tools_are_listed,
    tools_manage_the_callers_tasks_and_record_mcp_mutations,
    tool_errors_name_the_field,
    mcp_needs_a_valid_token,
);
