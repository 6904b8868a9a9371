//! Golden files for the Python and JavaScript ports of the v2 mapper, written by the Rust v2
//! catalogue itself (`pakaura_mapper_v2::catalogue`), so the ports are checked event for
//! event and byte for byte against the real thing without building any component:
//!
//! - `expected/v2-events.json`: for every `mutations/*.json` (the outbox form that
//!   `pakaura mapper run --mutation` reads), the events, or the `err` text, with the
//!   default settings and with `schema-base-url` set to [`CUSTOM_SCHEMA_BASE_URL`].
//! - `expected/json-texts.json`: for every text of `json-texts.json`, what the payload holds
//!   for a change whose old value is that text (serde_json's normal form), or the `err` text.
//!
//! Usage: `pakaura-v2-golden FIXTURES_DIR [--check]`; `--check` compares instead of writing
//! and exits with status 1 when a file is stale.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use pakaura_mapper_v2::catalogue::{self, Settings};
use pakaura_mapper_v2::types;
use serde::Deserialize;
use serde_json::{Value, json};

/// The `schema-base-url` of the "custom" runs (its trailing slashes are trimmed).
const CUSTOM_SCHEMA_BASE_URL: &str = "https://schemas.example.com/events//";

/// The outbox form of a mutation (host/src/domain/mutation.rs), as the fixtures hold it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Mutation {
    id: String,
    action: String,
    task: Task,
    #[serde(default)]
    changes: Vec<FieldChange>,
    origin: String,
    correlation_id: String,
    occurred_at: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Task {
    id: String,
    user_id: String,
    title: String,
    description: Option<String>,
    completed: bool,
    due_date: Option<String>,
    created_at: String,
    updated_at: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldChange {
    field: String,
    old_value: String,
    new_value: String,
}

impl Mutation {
    fn into_types(self) -> Result<types::Mutation, String> {
        use types::{Action, Origin};
        let action = match self.action.as_str() {
            "created" => Action::Created,
            "updated" => Action::Updated,
            "completed" => Action::Completed,
            "uncompleted" => Action::Uncompleted,
            "deleted" => Action::Deleted,
            other => return Err(format!("unknown action `{other}`")),
        };
        let origin = match self.origin.as_str() {
            "rest" => Origin::Rest,
            "mcp" => Origin::Mcp,
            "system" => Origin::System,
            other => return Err(format!("unknown origin `{other}`")),
        };
        Ok(types::Mutation {
            id: self.id,
            action,
            task: types::Task {
                id: self.task.id,
                user_id: self.task.user_id,
                title: self.task.title,
                description: self.task.description,
                completed: self.task.completed,
                due_date: self.task.due_date,
                created_at: self.task.created_at,
                updated_at: self.task.updated_at,
            },
            changes: self
                .changes
                .into_iter()
                .map(|c| types::FieldChange {
                    field: c.field,
                    old_value: c.old_value,
                    new_value: c.new_value,
                })
                .collect(),
            origin,
            correlation_id: self.correlation_id,
            occurred_at: self.occurred_at,
        })
    }
}

/// One mapping's outcome: `{"ok": [events]}` (WIT field names, `data` as its exact text) or
/// `{"err": text}`.
fn outcome(result: Result<Vec<types::Event>, String>) -> Value {
    match result {
        Ok(events) => json!({ "ok": events.into_iter().map(|e| json!({
            "topic": e.topic,
            "event_type": e.event_type,
            "subject": e.subject,
            "data": e.data,
            "data_schema": e.data_schema,
            "extensions": e.extensions,
            "partition_key": e.partition_key,
        })).collect::<Vec<_>>() }),
        Err(reason) => json!({ "err": reason }),
    }
}

fn custom_settings() -> Settings {
    Settings::from_config(|key| {
        (key == Settings::SCHEMA_BASE_URL_KEY).then(|| CUSTOM_SCHEMA_BASE_URL.to_owned())
    })
}

fn events_golden(fixtures: &Path) -> Result<Value, String> {
    let dir = fixtures.join("mutations");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    let mut golden = BTreeMap::new();
    for path in names {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mutation: Mutation =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mutation = mutation
            .into_types()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        golden.insert(
            stem,
            json!({
                "default": outcome(catalogue::map_mutation(&mutation, &Settings::default())),
                "custom": outcome(catalogue::map_mutation(&mutation, &custom_settings())),
            }),
        );
    }
    Ok(json!({
        "custom_schema_base_url": CUSTOM_SCHEMA_BASE_URL,
        "fixtures": golden,
    }))
}

fn json_texts_golden(fixtures: &Path) -> Result<Value, String> {
    let path = fixtures.join("json-texts.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let texts: Vec<String> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    // The payload around the change's old value, with the fixed task below.
    let before = r#""changes":[{"field":"title","old":"#;
    let after = r#","new":null}],"actor""#;
    let mut out = Vec::new();
    for text in texts {
        let mutation = types::Mutation {
            id: "7f0c2a9e-1d1b-4e8e-8f3a-2c4b6d8e0f12".to_owned(),
            action: types::Action::Updated,
            task: types::Task {
                id: "0b6e1c52-3c8f-4d55-9a61-5f2d4f1b2a10".to_owned(),
                user_id: "user-42".to_owned(),
                title: "t".to_owned(),
                description: None,
                completed: false,
                due_date: None,
                created_at: "2026-02-01T08:00:00.000Z".to_owned(),
                updated_at: "2026-02-01T08:00:00.000Z".to_owned(),
            },
            changes: vec![types::FieldChange {
                field: "title".to_owned(),
                old_value: text.clone(),
                new_value: "null".to_owned(),
            }],
            origin: types::Origin::Rest,
            correlation_id: "c".to_owned(),
            occurred_at: "2026-02-01T08:00:00.000Z".to_owned(),
        };
        out.push(
            match catalogue::map_mutation(&mutation, &Settings::default()) {
                Ok(events) => {
                    let data = &events[0].data;
                    let start = data.find(before).expect("the payload's changes") + before.len();
                    let end = data.rfind(after).expect("the payload's changes");
                    json!({ "text": text, "value": &data[start..end] })
                }
                Err(reason) => json!({ "text": text, "err": reason }),
            },
        );
    }
    Ok(Value::Array(out))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, check) = match args.as_slice() {
        [dir] => (dir, false),
        [dir, flag] if flag == "--check" => (dir, true),
        _ => {
            eprintln!("usage: pakaura-v2-golden FIXTURES_DIR [--check]");
            return ExitCode::from(2);
        }
    };
    let fixtures = Path::new(dir);
    let files = [
        ("v2-events.json", events_golden(fixtures)),
        ("json-texts.json", json_texts_golden(fixtures)),
    ];
    let mut stale = false;
    for (name, golden) in files {
        let golden = match golden {
            Ok(golden) => golden,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let path = fixtures.join("expected").join(name);
        let text = serde_json::to_string_pretty(&golden).expect("JSON values serialise") + "\n";
        if check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                eprintln!("stale: {} (regenerate without --check)", path.display());
                stale = true;
            }
        } else if let Err(e) = std::fs::create_dir_all(fixtures.join("expected"))
            .and_then(|()| std::fs::write(&path, text))
        {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::FAILURE;
        } else {
            println!("wrote {}", path.display());
        }
    }
    if stale {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
