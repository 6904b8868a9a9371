//! The built-in default mapper's envelopes for every action, with and without due
//! dates, compared with the golden files in `tests/golden/default/`; and the same for
//! the default mapper as built against `pakaura:events@1.0.0`, kept as a binary
//! (`tests/fixtures/contract-1.0.0/`), against `tests/golden/contract-1.0.0/`: every
//! later contract change must keep it loading and yielding exactly those envelopes.
//!
//! Mutation ids, task ids and timestamps are fixed, so the envelopes (ids and
//! `traceparent` included) are deterministic. After an intended change to the
//! default mapper or the envelope, regenerate the files and review the diff:
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test -p pakaura-tests --test e2e golden
//! ```

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use pakaura_host::domain::{Action, FieldChange, Mutation, Origin, Task};
use pakaura_host::events::build_envelope;
use pakaura_host::mapper::{Limits, LoadedMapper, MapperSource, SchemaMode};
use serde_json::Value;
use uuid::Uuid;

use crate::sandbox::{bounded, runtime};

const SOURCE: &str = "pakaura/api";
const CORRELATION_ID: &str = "9876fedc-ba98-4654-b210-0123456789ab";

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 9, hour, minute, 0).unwrap()
}

fn due(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 9, 0, 0).unwrap()
}

/// One golden case: a file name and its mutation.
fn case(
    name: &'static str,
    action: Action,
    completed: bool,
    due_date: Option<DateTime<Utc>>,
    changes: Vec<FieldChange>,
) -> (&'static str, Mutation) {
    let mutation = Mutation {
        id: Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()),
        action,
        task: Task {
            id: Uuid::parse_str("3f8e5a2c-9b1d-4c6e-8a7f-2d4b6c8e0a1f").unwrap(),
            user_id: "user-42".into(),
            title: "Write the quarterly report".into(),
            description: Some("Numbers from finance first".into()),
            completed,
            due_date,
            created_at: at(9, 0),
            updated_at: at(14, 30),
        },
        changes,
        origin: Origin::Rest,
        correlation_id: CORRELATION_ID.into(),
        occurred_at: at(14, 30),
    };
    (name, mutation)
}

fn cases() -> Vec<(&'static str, Mutation)> {
    use Action::*;
    let title = FieldChange::new("title", &"Write the report", &"Write the quarterly report");
    let due_change = |old: Option<DateTime<Utc>>, new: Option<DateTime<Utc>>| {
        let text =
            |d: Option<DateTime<Utc>>| d.map(|d| pakaura_host::domain::task::format_time(&d));
        FieldChange::new("due_date", &text(old), &text(new))
    };
    vec![
        case("created", Created, false, None, vec![]),
        case(
            "created_with_due_date",
            Created,
            false,
            Some(due(1)),
            vec![],
        ),
        case("updated_title", Updated, false, None, vec![title.clone()]),
        case(
            "updated_title_with_due_date",
            Updated,
            false,
            Some(due(1)),
            vec![title],
        ),
        case(
            "updated_due_date_set",
            Updated,
            false,
            Some(due(1)),
            vec![due_change(None, Some(due(1)))],
        ),
        case(
            "updated_due_date_changed",
            Updated,
            false,
            Some(due(2)),
            vec![due_change(Some(due(1)), Some(due(2)))],
        ),
        case(
            "updated_due_date_removed",
            Updated,
            false,
            None,
            vec![due_change(Some(due(1)), None)],
        ),
        case("completed", Completed, true, None, vec![]),
        case(
            "completed_with_due_date",
            Completed,
            true,
            Some(due(1)),
            vec![],
        ),
        case("uncompleted", Uncompleted, false, None, vec![]),
        case(
            "uncompleted_with_due_date",
            Uncompleted,
            false,
            Some(due(1)),
            vec![],
        ),
        case("deleted", Deleted, false, None, vec![]),
        case(
            "deleted_with_due_date",
            Deleted,
            false,
            Some(due(1)),
            vec![],
        ),
    ]
}

/// The folder of `tests/` at `relative`.
fn tests_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

#[test]
fn the_default_mapper_matches_its_golden_envelopes() {
    check_golden(MapperSource::BuiltinDefault, "golden/default");
}

#[test]
fn a_component_built_against_contract_1_0_0_keeps_its_envelopes() {
    check_golden(
        MapperSource::File(tests_path("fixtures/contract-1.0.0/default-mapper.wasm")),
        "golden/contract-1.0.0",
    );
}

/// Loads `source` as the host loads a mapper and compares its envelopes for every case
/// with the golden files in `tests/{golden}/`.
fn check_golden(source: MapperSource, golden: &str) {
    let actual: Vec<(&str, Value)> = bounded(move || {
        // Enforced: every golden event must also satisfy the schema its mapper declares
        // (the 1.0.0 component declares none).
        let limits = Limits {
            schemas: SchemaMode::Enforce,
            ..Limits::default()
        };
        let mapper = LoadedMapper::load(
            runtime(),
            source,
            &limits,
            &Default::default(),
            &Default::default(),
        )
        .expect("the mapper loads");
        cases()
            .into_iter()
            .map(|(name, m)| {
                let events = mapper.map(&m).unwrap_or_else(|e| panic!("{name}: {e}"));
                let envelopes = events
                    .iter()
                    .map(|ev| {
                        let envelope = build_envelope(&m, ev, SOURCE, None);
                        let document = envelope.document();
                        // The text stored and published: the document's compact JSON with
                        // its names in order, the bytes every earlier version wrote.
                        assert_eq!(
                            envelope.body,
                            serde_json::to_string(&document).unwrap(),
                            "{name}"
                        );
                        document
                    })
                    .collect();
                (name, Value::Array(envelopes))
            })
            .collect()
    });

    // The 1.0.0 component's envelopes are never regenerated: a change there is a change
    // that deployed mappers would see.
    let update =
        golden == "golden/default" && std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut mismatched = Vec::new();
    for (name, envelopes) in &actual {
        let path = tests_path(golden).join(format!("{name}.json"));
        let pretty = serde_json::to_string_pretty(envelopes).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &pretty).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
                path.display()
            )
        });
        let expected: Value = serde_json::from_str(&expected).unwrap();
        if &expected != envelopes {
            eprintln!(
                "--- {} (golden)\n{expected:#}\n+++ actual\n{pretty}",
                path.display()
            );
            mismatched.push(*name);
        }
    }
    assert!(
        mismatched.is_empty(),
        "envelopes differ from the golden files: {mismatched:?}"
    );
}

#[test]
fn reminder_events_follow_the_due_date_transitions() {
    let mapper = bounded(|| {
        LoadedMapper::load(
            runtime(),
            MapperSource::BuiltinDefault,
            &Limits::default(),
            &Default::default(),
            &Default::default(),
        )
    })
    .unwrap();
    let types: Vec<(&str, Vec<String>)> = bounded(move || {
        cases()
            .into_iter()
            .map(|(name, m)| {
                let types = mapper
                    .map(&m)
                    .unwrap()
                    .into_iter()
                    .map(|e| e.event_type)
                    .collect();
                (name, types)
            })
            .collect()
    });
    let reminder = |name: &str| {
        let (_, types) = types.iter().find(|(n, _)| *n == name).unwrap();
        types.iter().find(|t| t.starts_with("reminder.")).cloned()
    };
    assert_eq!(reminder("created"), None);
    assert_eq!(
        reminder("created_with_due_date").as_deref(),
        Some("reminder.scheduled")
    );
    assert_eq!(reminder("updated_title_with_due_date"), None);
    assert_eq!(
        reminder("updated_due_date_set").as_deref(),
        Some("reminder.scheduled")
    );
    assert_eq!(
        reminder("updated_due_date_changed").as_deref(),
        Some("reminder.rescheduled")
    );
    assert_eq!(
        reminder("updated_due_date_removed").as_deref(),
        Some("reminder.cancelled")
    );
    assert_eq!(
        reminder("completed_with_due_date").as_deref(),
        Some("reminder.cancelled")
    );
    assert_eq!(
        reminder("uncompleted_with_due_date").as_deref(),
        Some("reminder.scheduled")
    );
    assert_eq!(
        reminder("deleted_with_due_date").as_deref(),
        Some("reminder.cancelled")
    );
}
