//! The `pakaura` binary as operators and platform teams use it: `serve` start-up
//! and configuration errors, `token`, and the `mapper` tool.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pakaura_host::auth::{Authenticator, ClaimPolicy};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_pakaura");
const SECRET: &str = "cli-test-secret-cli-test-secret-0123456";

fn pakaura() -> Command {
    let mut cmd = Command::new(BIN);
    // A clean environment: only what each test sets.
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd
}

fn mutation() -> Value {
    json!({
        "id": "7d3f5c1e-1111-4a2b-9c3d-000000000001",
        "action": "created",
        "task": {
            "id": "0b7e4b4e-2222-4c8f-8a51-000000000002",
            "user_id": "alice",
            "title": "water plants",
            "description": null,
            "completed": false,
            "due_date": "2026-03-01T09:00:00.000Z",
            "created_at": "2026-02-09T14:30:00.000Z",
            "updated_at": "2026-02-09T14:30:00.000Z"
        },
        "changes": [],
        "origin": "rest",
        "correlation_id": "corr-42",
        "occurred_at": "2026-02-09T14:30:00.000Z"
    })
}

fn run_mapper(args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = pakaura()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn token_prints_a_verifiable_token() {
    let out = pakaura()
        .args(["token", "--user", "carol", "--ttl", "5m"])
        .env("JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let keys = pakaura_host::auth::JwtKeys::new(SECRET.as_bytes(), None).unwrap();
    let auth = Authenticator::new(Some(keys), None, ClaimPolicy::default());
    assert_eq!(auth.verify(token.trim()).unwrap(), "carol");
}

#[test]
fn token_carries_the_servers_issuer_audience_and_user_claim() {
    let out = pakaura()
        .args(["token", "--user", "carol"])
        .env("JWT_SECRET", SECRET)
        .env("JWT_ISSUER", "https://idp.example.com")
        .env("JWT_AUDIENCE", "pakaura")
        .env("JWT_USER_CLAIM", "email")
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    let keys = pakaura_host::auth::JwtKeys::new(SECRET.as_bytes(), None).unwrap();
    let policy = ClaimPolicy::new(
        Some("https://idp.example.com"),
        Some("pakaura"),
        Duration::from_secs(5),
        "email",
    );
    let auth = Authenticator::new(Some(keys), None, policy);
    assert_eq!(auth.verify(token.trim()).unwrap(), "carol");
}

#[test]
fn token_without_a_secret_fails_with_one_clear_line() {
    let out = pakaura()
        .args(["token", "--user", "carol"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
}

#[test]
fn invalid_configuration_stops_start_up_naming_the_setting() {
    for (name, value) in [
        ("DAPR_PUBLISH_TIMEOUT", "soon"),
        ("JWT_SECRET", "short"),
        ("MAPPER_MEMORY_LIMIT", "lots"),
        ("ALLOWED_TOPICS", "bad topic!"),
        ("BIND_ADDR", "nowhere"),
        ("JWT_JWKS_URL", "http://idp.example.com/certs"),
        ("JWT_LEEWAY", "forever"),
        ("JWT_USER_CLAIM", "preferred username"),
        ("JWT_ISSUER", " "),
        ("JWT_JWKS_CA_FILE", "/etc/ssl/private-ca.pem"),
    ] {
        let out = pakaura().arg("serve").env(name, value).output().unwrap();
        assert!(!out.status.success(), "{name}={value} must be refused");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let flag = format!("--{}", name.to_lowercase().replace('_', "-"));
        assert!(
            stderr.contains(name) || stderr.contains(&flag),
            "{name}: {stderr}"
        );
        assert!(
            !stderr.contains("short") || name != "JWT_SECRET",
            "secrets are not echoed: {stderr}"
        );
    }
}

#[test]
fn serve_without_a_secret_prints_a_demo_token_reloads_on_sighup_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mappers = dir.path().join("mappers");
    std::fs::create_dir(&mappers).unwrap();
    let database = format!("sqlite:{}", dir.path().join("demo.db").display());
    let (mut child, addr, token) = serve_demo(&database, |serve| {
        serve
            .env("MAPPERS_DIR", &mappers)
            .env("ADMIN_TOKEN", "cli-admin-token-0123456789");
    });
    let url = format!("http://{addr}/tasks");
    let status = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        })
    })
    .join()
    .unwrap();
    assert_eq!(status, 200);
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
}

#[test]
fn mapper_check_describes_the_builtin_mapper() {
    let out = pakaura()
        .args(["mapper", "check", "builtin:default", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["name"], "default");
    assert_eq!(
        info["topics"],
        json!(["reminders", "task-events", "task-updates"])
    );
}

#[test]
fn mapper_check_refuses_a_file_that_is_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"definitely not wasm").unwrap();
    let out = pakaura()
        .args(["mapper", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("junk.wasm"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn mapper_run_prints_the_envelopes_the_host_would_publish() {
    let out = run_mapper(
        &["mapper", "run", "builtin:default", "--mutation", "-"],
        &mutation().to_string(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let envelopes: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = envelopes
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["task.created", "sync.task", "reminder.scheduled"]);
    assert!(
        envelopes
            .iter()
            .all(|e| e["traceid"] == "corr-42" && e["specversion"] == "1.0")
    );
    let again = run_mapper(
        &["mapper", "run", "builtin:default"],
        &mutation().to_string(),
    );
    assert_eq!(
        String::from_utf8(again.stdout).unwrap(),
        stdout,
        "envelope ids are deterministic"
    );
}

#[test]
fn mapper_run_names_what_is_wrong_with_a_bad_mutation() {
    let mut bad = mutation();
    bad["action"] = json!("exploded");
    let out = run_mapper(&["mapper", "run", "builtin:default"], &bad.to_string());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("action") || stderr.contains("exploded"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// Starts `pakaura serve` on `database` without a secret (so with the demo token), set up
/// further by `configure`, and returns the process, the address it listens on and the
/// token; its log is drained in the background.
fn serve_demo(
    database: &str,
    configure: impl FnOnce(&mut Command),
) -> (std::process::Child, String, String) {
    let mut serve = pakaura();
    serve
        .arg("serve")
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", database)
        .stderr(Stdio::piped());
    configure(&mut serve);
    let mut child = serve.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut token, mut addr) = (None, None);
    let started = Instant::now();
    while token.is_none() || addr.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "start-up took too long"
        );
        let line = lines.next().expect("serve exited early").unwrap();
        if line.trim_start().starts_with("ey") {
            token = Some(line.trim().to_owned());
        }
        if let Ok(log) = serde_json::from_str::<Value>(&line)
            && log["message"] == "pakaura listening"
        {
            addr = log["addr"].as_str().map(str::to_owned);
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr.unwrap(), token.unwrap())
}

/// SQLite commits concurrent creations together (group commit): a `201` must still mean
/// that task and its outbox row are committed. 24 clients create tasks as fast as the host
/// answers; the host is killed with SIGKILL mid-stream; every task it acknowledged is
/// there afterwards, each with exactly one `created` outbox row, and no task committed
/// without its outbox row or the other way round.
#[test]
fn every_task_acknowledged_before_a_kill_9_is_committed_with_its_outbox_row() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}", dir.path().join("kill.db").display());
    let (mut child, addr, token) = serve_demo(&database, |serve| {
        serve.env("PUBLISHER", "none");
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let acknowledged: Vec<String> = rt.block_on(async {
        let client = reqwest::Client::new();
        let count = Arc::new(AtomicUsize::new(0));
        let killed = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..24)
            .map(|c| {
                let (client, count, killed) = (client.clone(), count.clone(), killed.clone());
                let (url, token) = (format!("http://{addr}/tasks"), token.clone());
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for n in 0.. {
                        let sent = client
                            .post(&url)
                            .bearer_auth(&token)
                            .json(&json!({"title": format!("client {c} task {n}")}))
                            .send()
                            .await;
                        // Once the host is gone, requests fail; before, every one is a 201.
                        let Ok(response) = sent else { break };
                        let status = response.status();
                        let Ok(body) = response.json::<Value>().await else {
                            break;
                        };
                        assert!(
                            status == 201 || killed.load(Ordering::SeqCst),
                            "{status}: {body}"
                        );
                        if status != 201 {
                            break;
                        }
                        ids.push(body["id"].as_str().unwrap().to_owned());
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    ids
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        while count.load(Ordering::SeqCst) < 600 {
            assert!(
                Instant::now() < deadline && !clients.iter().any(|c| c.is_finished()),
                "the clients stopped before 600 tasks were acknowledged"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        killed.store(true, Ordering::SeqCst);
        child.kill().unwrap();
        let mut ids = Vec::new();
        for c in clients {
            ids.extend(c.await.unwrap());
        }
        ids
    });
    assert!(!child.wait().unwrap().success(), "the host was killed");
    assert!(acknowledged.len() >= 600);

    rt.block_on(async {
        let db = pakaura_host::store::Db::connect(&database).await.unwrap();
        let rows = db.outbox_rows(None).await.unwrap();
        let mut created: Vec<String> = rows
            .iter()
            .filter(|r| r.action == "created")
            .map(|r| r.task_id.to_string())
            .collect();
        assert_eq!(created.len(), rows.len(), "only creations were made");
        created.sort();
        let before = created.len();
        created.dedup();
        assert_eq!(created.len(), before, "one created row per task");
        for id in &acknowledged {
            assert!(
                created.binary_search(id).is_ok(),
                "task {id} was acknowledged but has no outbox row"
            );
            let task = db.get_task("demo", id.parse().unwrap()).await.unwrap();
            assert!(
                task.is_some(),
                "task {id} was acknowledged but is not stored"
            );
        }
        let tasks = db
            .list_tasks(
                "demo",
                &pakaura_host::domain::PageRequest {
                    completed: None,
                    limit: 100_000,
                    after: None,
                    order: pakaura_host::domain::ListOrder::OldestFirst,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            tasks.items.len(),
            created.len(),
            "every stored task has its outbox row and every outbox row its task"
        );
        db.close().await;
    });
}
