//! The compatibility gate with real components: `shapes` 1.0.0, then 1.1.0 (additive: it
//! reloads), then 2.0.0 (breaking: the reload is refused naming each path, the old set stays
//! live, and `allow_breaking` lets it through and reports what it broke); the same through
//! the admin API and `pakaura mapper compat`.

use std::path::Path;
use std::process::ExitCode;

use pakaura_host::cli::mapper::{MapperCommand, execute};
use pakaura_host::mapper::{LoadError, MapperConfig, MapperRegistry};
use pakaura_tests::{Backend, expect_problem, guests, on_both_databases, spawn_with};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::sandbox::{bounded, runtime};

/// What `shapes` 2.0.0 breaks for a consumer of 1.0.0, as the gate reports it.
const BREAKS: [&str; 5] = [
    "mapper `shapes` shape.changed at /status: enum narrowed: [\"done\"] no longer allowed",
    "mapper `shapes` shape.changed at /title: property removed (renamed? added: owner)",
    "mapper `shapes` shape.changed at /priority: type changed or narrowed from integer to string",
    "mapper `shapes` shape.changed at /owner: property newly required",
    "mapper `shapes` shape.removed: event type removed",
];

fn install(dir: &Path, build: &str) {
    std::fs::copy(build, dir.join("shapes.wasm")).unwrap();
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

fn expected() -> Vec<String> {
    sorted(BREAKS.iter().map(ToString::to_string).collect())
}

#[test]
fn a_reload_passes_additive_changes_and_refuses_breaking_ones_naming_each_path() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), guests::SHAPES_V1);
    let config = MapperConfig {
        mappers_dir: Some(dir.path().to_owned()),
        mapper_builtin: false,
        ..MapperConfig::default()
    };
    let registry =
        bounded(move || MapperRegistry::load_blocking(runtime().clone(), config)).unwrap();
    let reload = |allow: bool| {
        let r = registry.clone();
        bounded(move || r.reload_blocking_with("test", allow))
    };
    let version = |r: &MapperRegistry| r.list()[0].version.clone();

    install(dir.path(), guests::SHAPES_V2);
    let report = reload(false).expect("an additive change reloads");
    assert!(report.breaking_allowed.is_empty());
    assert_eq!(version(&registry), "1.1.0");

    // Back to 1.0.0 would drop 1.1.0's `note` and `shape.archived`: refused too.
    install(dir.path(), guests::SHAPES_V1);
    assert!(matches!(reload(false), Err(LoadError::Breaking(_))));

    install(dir.path(), guests::SHAPES_V2);
    let r = registry.clone();
    let ahead = bounded(move || r.check_reload_blocking()).unwrap();
    assert!(ahead.is_empty(), "{ahead:?}");

    // 2.0.0 against the live 1.1.0: every path it breaks is named, and the refusal keeps
    // 1.1.0 live.
    install(dir.path(), guests::SHAPES_V3);
    let Err(LoadError::Breaking(changes)) = reload(false) else {
        panic!("2.0.0 must be refused");
    };
    let found: Vec<String> = changes.iter().map(ToString::to_string).collect();
    for named in [
        "shape.changed at /status: enum narrowed",
        "shape.changed at /title: property removed",
        "shape.changed at /note: property removed",
        "shape.changed at /priority: type changed or narrowed from number to string",
        "shape.changed at /owner: property newly required",
        "shape.removed: event type removed",
        "shape.archived: event type removed",
    ] {
        assert!(
            found.iter().any(|f| f.contains(named)),
            "{named} in {found:#?}"
        );
    }
    assert_eq!(found.len(), 7, "{found:#?}");
    let message = LoadError::Breaking(changes).to_string();
    assert!(message.contains("allow_breaking"), "{message}");
    assert_eq!(version(&registry), "1.1.0", "the old set stays live");

    // Intended: allowed, and the report says what it broke.
    let report = reload(true).expect("allow_breaking lets it through");
    assert_eq!(report.breaking_allowed.len(), found.len());
    assert_eq!(version(&registry), "2.0.0");
    // The schemas of the versions it replaced are still served.
    assert!(
        registry
            .schema("shapes", "1.0.0", "shape.removed")
            .is_some()
    );
    assert!(
        registry
            .schema("shapes", "2.0.0", "shape.removed")
            .is_none()
    );
}

/// The same gate through `POST /admin/mappers/reload`.
async fn the_admin_reload_refuses_a_breaking_set_unless_allowed(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), guests::SHAPES_V1);
    let app = spawn_with(
        backend,
        pakaura_tests::Options::default().set("MAPPERS_DIR", dir.path().display().to_string()),
    )
    .await;
    install(dir.path(), guests::SHAPES_V3);
    let refused = app.admin(Method::POST, "/admin/mappers/reload").await;
    let problem = expect_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    let detail = problem["detail"].as_str().unwrap();
    for line in BREAKS {
        assert!(detail.contains(line), "{line} in {detail}");
    }
    let allowed = app
        .admin(Method::POST, "/admin/mappers/reload?allow_breaking=true")
        .await;
    assert_eq!(allowed.status(), StatusCode::OK);
    let body: Value = allowed.json().await.unwrap();
    let broke: Vec<String> = body["report"]["breaking_allowed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let at = c["path"].as_str().unwrap();
            let at = if at.is_empty() {
                String::new()
            } else {
                format!(" at {at}")
            };
            format!(
                "mapper `{}` {}{at}: {}",
                c["mapper"].as_str().unwrap(),
                c["event_type"].as_str().unwrap(),
                c["change"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(sorted(broke), expected());
}

on_both_databases!(the_admin_reload_refuses_a_breaking_set_unless_allowed);

#[test]
fn mapper_compat_exits_by_whether_the_new_build_breaks_consumers() {
    let compat = |old: &str, new: &str, allow_breaking: bool| {
        let cmd = MapperCommand::Compat {
            old: old.to_owned(),
            new: new.to_owned(),
            allow_breaking,
        };
        bounded(move || execute(cmd, &MapperConfig::default()).unwrap())
    };
    assert_eq!(
        compat(guests::SHAPES_V1, guests::SHAPES_V2, false),
        ExitCode::SUCCESS
    );
    assert_eq!(
        compat(guests::SHAPES_V1, guests::SHAPES_V3, false),
        ExitCode::FAILURE
    );
    assert_eq!(
        compat(guests::SHAPES_V1, guests::SHAPES_V3, true),
        ExitCode::SUCCESS
    );
    assert_eq!(
        compat(guests::SHAPES_V1, "/nonexistent.wasm", false),
        ExitCode::from(2)
    );
}
