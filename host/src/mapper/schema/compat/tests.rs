//! One row per rule: an old and a new schema of `e`, and the breaking changes expected
//! (`path: change` prefixes); an empty list means the change is compatible.

use serde_json::{Value, json};

use super::*;

fn breaks(old: &Value, new: &Value) -> Vec<String> {
    let old = Declared {
        topics: vec!["t"],
        schemas: vec![("e", "t", old)],
    };
    let new = Declared {
        topics: vec!["t"],
        schemas: vec![("e", "t", new)],
    };
    breaking_changes("m", &old, &new)
        .into_iter()
        .map(|b| format!("{}: {}", b.path, b.change))
        .collect()
}

fn object(properties: &Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

#[test]
fn each_rule_names_its_path_and_additive_changes_pass() {
    let base = object(
        &json!({
            "id": {"type": "string"},
            "n": {"type": "integer"},
            "status": {"enum": ["open", "done"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "task": {"type": "object", "properties": {"title": {"type": "string"}}}
        }),
        &["id"],
    );
    let with = |change: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        change(&mut v);
        v
    };
    let rows: Vec<(&str, Value, Vec<&str>)> = vec![
        ("unchanged", base.clone(), vec![]),
        (
            "a new optional property",
            with(&|v| v["properties"]["note"] = json!({"type": "string"})),
            vec![],
        ),
        (
            "integer widened to number",
            with(&|v| v["properties"]["n"] = json!({"type": "number"})),
            vec![],
        ),
        (
            "a type added to a list",
            with(&|v| v["properties"]["id"] = json!({"type": ["string", "null"]})),
            vec![],
        ),
        (
            "a new enum value",
            with(&|v| v["properties"]["status"] = json!({"enum": ["open", "done", "archived"]})),
            vec![],
        ),
        (
            "a property removed",
            with(&|v| {
                v["properties"].as_object_mut().unwrap().remove("n");
            }),
            vec!["/n: property removed"],
        ),
        (
            "a property renamed",
            with(&|v| {
                let props = v["properties"].as_object_mut().unwrap();
                let n = props.remove("n").unwrap();
                props.insert("count".into(), n);
            }),
            vec!["/n: property removed (renamed? added: count)"],
        ),
        (
            "a nested property removed",
            with(&|v| v["properties"]["task"]["properties"] = json!({})),
            vec!["/task/title: property removed"],
        ),
        (
            "a type changed",
            with(&|v| v["properties"]["n"] = json!({"type": "string"})),
            vec!["/n: type changed or narrowed from integer to string"],
        ),
        (
            "an array item's type changed",
            with(&|v| v["properties"]["tags"]["items"] = json!({"type": "integer"})),
            vec!["/tags/*: type changed or narrowed from string to integer"],
        ),
        (
            "a property newly required",
            with(&|v| v["required"] = json!(["id", "n"])),
            vec!["/n: property newly required"],
        ),
        (
            "an enum narrowed",
            with(&|v| v["properties"]["status"] = json!({"enum": ["open"]})),
            vec![r#"/status: enum narrowed: ["done"] no longer allowed"#],
        ),
        (
            "a const where anything went",
            with(&|v| v["properties"]["id"]["const"] = json!("x")),
            vec![r#"/id: values narrowed to ["x"]"#],
        ),
    ];
    for (name, new, expected) in rows {
        assert_eq!(breaks(&base, &new), expected, "{name}");
    }
    // Narrowing number to integer, the other way round from the widening above.
    let mut wide = base.clone();
    wide["properties"]["n"] = json!({"type": "number"});
    assert_eq!(
        breaks(&wide, &base),
        ["/n: type changed or narrowed from number to integer"]
    );
}

#[test]
fn removed_event_types_and_topics_break_and_new_ones_do_not() {
    let schema = json!({"type": "object"});
    let old = Declared {
        topics: vec!["a", "b"],
        schemas: vec![
            ("x", "a", &schema),
            ("y", "a", &schema),
            ("w", "a", &schema),
        ],
    };
    let new = Declared {
        topics: vec!["a", "c"],
        schemas: vec![
            ("x", "a", &schema),
            ("z", "a", &schema),
            ("w", "c", &schema),
        ],
    };
    let found: Vec<String> = breaking_changes("m", &old, &new)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "mapper `m`: topic `b` removed",
            "mapper `m` y: event type removed",
            "mapper `m` w: moved from topic `a` to `c`",
        ]
    );
    assert!(breaking_changes("m", &new, &Declared { ..new.clone() }).is_empty());
}
