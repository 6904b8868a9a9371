//! `pakaura mapper test`: a folder of fixtures that passes, one that fails with a diff,
//! an expected error, settings, and `--bless` writing what the component yields.

use std::fs;
use std::path::Path;

use super::{V2_WASM, assert_success, repo, run, stdout};

/// Copies the repository's mutation fixtures `names` into `dir`.
fn copy_mutations(dir: &Path, names: &[&str]) {
    let from = repo().join("guest-mappers/fixtures/mutations");
    for name in names {
        fs::copy(
            from.join(format!("{name}.json")),
            dir.join(format!("{name}.json")),
        )
        .unwrap();
    }
}

fn test(file: &str, dir: &Path, bless: bool) -> std::process::Output {
    let mut args = vec![
        "mapper".into(),
        "test".into(),
        file.into(),
        dir.as_os_str().to_owned(),
    ];
    if bless {
        args.push("--bless".into());
    }
    run(args)
}

#[test]
fn bless_writes_the_expectations_and_the_fixtures_then_pass() {
    let tmp = tempfile::tempdir().unwrap();
    copy_mutations(
        tmp.path(),
        &["created", "updated-title", "invalid-new-value"],
    );

    let out = test("builtin:default", tmp.path(), false);
    assert_eq!(
        out.status.code(),
        Some(1),
        "no expectation yet is a failure"
    );
    assert!(
        stdout(&out).contains("FAIL created: no expectation"),
        "{}",
        stdout(&out)
    );

    let out = test("builtin:default", tmp.path(), true);
    assert_success(&out);
    let printed = stdout(&out);
    assert!(printed.contains("BLESS created (wrote "), "{printed}");
    assert!(
        printed.ends_with("3 fixtures: 0 passed, 0 failed, 3 blessed\n"),
        "{printed}"
    );

    let created: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(tmp.path().join("created.expected.json")).unwrap(),
    )
    .unwrap();
    let types: Vec<&str> = created
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["task.created", "sync.task", "reminder.scheduled"]);
    assert_eq!(
        created[0]["time"], "2026-02-09T14:30:00.000Z",
        "the mutation's time"
    );
    let error = fs::read_to_string(tmp.path().join("invalid-new-value.error")).unwrap();
    assert!(
        error.starts_with(
            "mapper `default` rejected the mutation: field `description`: new value is not JSON"
        ),
        "{error}"
    );
    assert!(!tmp.path().join("invalid-new-value.expected.json").exists());

    // Deterministic: the blessed files pass as they are, run after run.
    for _ in 0..2 {
        let out = test("builtin:default", tmp.path(), false);
        assert_success(&out);
        assert_eq!(
            stdout(&out),
            "PASS created\nPASS invalid-new-value\nPASS updated-title\n3 fixtures: 3 passed, 0 failed\n"
        );
    }
    // Blessing again changes nothing.
    let before = fs::read(tmp.path().join("created.expected.json")).unwrap();
    assert_success(&test("builtin:default", tmp.path(), true));
    assert_eq!(
        fs::read(tmp.path().join("created.expected.json")).unwrap(),
        before
    );
}

#[test]
fn a_mismatch_fails_with_a_line_diff() {
    let tmp = tempfile::tempdir().unwrap();
    copy_mutations(tmp.path(), &["created", "completed"]);
    assert_success(&test("builtin:default", tmp.path(), true));

    let expected = tmp.path().join("created.expected.json");
    let text = fs::read_to_string(&expected).unwrap();
    fs::write(
        &expected,
        text.replacen("\"type\": \"sync.task\"", "\"type\": \"sync.task.v1\"", 1),
    )
    .unwrap();

    let out = test("builtin:default", tmp.path(), false);
    assert_eq!(out.status.code(), Some(1));
    let printed = stdout(&out);
    assert!(printed.contains("PASS completed\n"), "{printed}");
    assert!(printed.contains("FAIL created\n"), "{printed}");
    assert!(
        printed.contains("    -     \"type\": \"sync.task.v1\"\n"),
        "{printed}"
    );
    assert!(
        printed.contains("    +     \"type\": \"sync.task\"\n"),
        "{printed}"
    );
    assert!(
        printed.ends_with("2 fixtures: 1 passed, 1 failed\n"),
        "{printed}"
    );
    let changed = printed
        .lines()
        .filter(|l| l.starts_with("    -") || l.starts_with("    +"))
        .count();
    assert_eq!(changed, 2, "only the changed line: {printed}");
}

#[test]
fn an_expected_error_passes_and_a_different_outcome_fails() {
    let tmp = tempfile::tempdir().unwrap();
    copy_mutations(tmp.path(), &["invalid-new-value", "created"]);
    fs::write(
        tmp.path().join("invalid-new-value.error"),
        "mapper `default` rejected the mutation: field `description`: new value is not JSON: EOF while parsing a string at line 1 column 13\n",
    )
    .unwrap();
    // `created` expects an error but yields envelopes.
    fs::write(
        tmp.path().join("created.error"),
        "mapper `default` rejected the mutation: nope\n",
    )
    .unwrap();

    let out = test("builtin:default", tmp.path(), false);
    assert_eq!(out.status.code(), Some(1));
    let printed = stdout(&out);
    assert!(printed.contains("PASS invalid-new-value\n"), "{printed}");
    assert!(printed.contains("FAIL created\n"), "{printed}");
    assert!(
        printed.contains("    - error: mapper `default` rejected the mutation: nope\n"),
        "{printed}"
    );
    assert!(printed.contains("    + [\n"), "{printed}");

    // Both kinds of expectation for one fixture is a mistake, named.
    fs::write(tmp.path().join("invalid-new-value.expected.json"), "[]").unwrap();
    let printed = stdout(&test("builtin:default", tmp.path(), false));
    assert!(
        printed.contains("FAIL invalid-new-value: both invalid-new-value.expected.json and invalid-new-value.error exist"),
        "{printed}"
    );
}

#[test]
fn settings_reach_the_mapper_and_a_folder_without_fixtures_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    copy_mutations(tmp.path(), &["created"]);
    fs::copy(
        tmp.path().join("created.json"),
        tmp.path().join("created-custom.json"),
    )
    .unwrap();
    fs::write(
        tmp.path().join("created-custom.settings"),
        "# the operator's schema host\nschema-base-url=https://schemas.example.com/events\n",
    )
    .unwrap();
    assert_success(&test(V2_WASM, tmp.path(), true));
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(tmp.path().join(name)).unwrap()).unwrap()
    };
    assert_eq!(
        read("created.expected.json")[0]["dataschema"],
        "https://schemas.pakaura.dev/events/task/created.v2.json"
    );
    assert_eq!(
        read("created-custom.expected.json")[0]["dataschema"],
        "https://schemas.example.com/events/task/created.v2.json"
    );
    assert_success(&test(V2_WASM, tmp.path(), false));

    let empty = tempfile::tempdir().unwrap();
    let out = test("builtin:default", empty.path(), false);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no fixtures in"));
}
