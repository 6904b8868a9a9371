use serde_json::json;

use super::*;

fn set(schemas: &[(&str, Value)]) -> Result<SchemaSet, SchemaError> {
    SchemaSet::compile(
        schemas
            .iter()
            .map(|(t, s)| DeclaredSchema::new(t, "t", &s.to_string()))
            .collect(),
        &["t"],
    )
}

fn task() -> Value {
    json!({
        "$schema": DRAFT_2020_12,
        "type": "object",
        "properties": {
            "task_id": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["task_id"]
    })
}

#[test]
fn a_valid_payload_passes_and_a_violation_names_its_json_path() {
    let set = set(&[("task.created", task())]).unwrap();
    assert_eq!(
        set.check(0, "task.created", "t", &json!({"task_id": "t"})),
        None
    );
    let v = set
        .check(
            2,
            "task.created",
            "t",
            &json!({"task_id": "t", "tags": ["a", 7]}),
        )
        .unwrap();
    assert_eq!(v.index, 2);
    assert_eq!(v.path, "/tags/1");
    assert!(v.message.contains("string"), "{}", v.message);
    assert_eq!(
        v.to_string(),
        format!(
            "event 2 (task.created) breaks its schema at /tags/1: {}",
            v.message
        )
    );
    let missing = set.check(0, "task.created", "t", &json!({})).unwrap();
    assert_eq!(missing.path, "");
    assert!(missing.message.contains("task_id"), "{}", missing.message);
}

#[test]
fn an_undeclared_event_type_is_a_violation_only_when_the_mapper_declares_schemas() {
    let declared = set(&[("task.created", task())]).unwrap();
    let v = declared.check(1, "task.renamed", "t", &json!({})).unwrap();
    assert!(v.message.contains("no schema"), "{}", v.message);
    assert_eq!(
        SchemaSet::default().check(0, "anything", "t", &json!(1)),
        None
    );
    let moved = declared
        .check(0, "task.created", "elsewhere", &json!({"task_id": "t"}))
        .unwrap();
    assert!(
        moved.message.contains("declares topic `t`"),
        "{}",
        moved.message
    );
}

#[test]
fn unusable_schemas_are_refused_naming_the_event_type() {
    let err = set(&[("a", json!({"type": "no-such-type"}))]).unwrap_err();
    assert!(
        matches!(&err, SchemaError::Invalid { event_type, .. } if event_type == "a"),
        "{err}"
    );
    let err = set(&[(
        "a",
        json!({"$schema": "http://json-schema.org/draft-07/schema#"}),
    )])
    .unwrap_err();
    assert!(err.to_string().contains("draft 2020-12"), "{err}");
    let err = set(&[("a", json!(3))]).unwrap_err();
    assert!(err.to_string().contains("object or a boolean"), "{err}");
    let err = set(&[("a", task()), ("a", task())]).unwrap_err();
    assert_eq!(err, SchemaError::Duplicate("a".into()));
    let err = set(&[("", task())]).unwrap_err();
    assert!(matches!(err, SchemaError::BadType(_)), "{err}");
    let err =
        SchemaSet::compile(vec![DeclaredSchema::new("a", "other", "{}")], &["t"]).unwrap_err();
    assert!(matches!(err, SchemaError::UnknownTopic { .. }), "{err}");
}

#[test]
fn remote_refs_are_never_fetched() {
    for target in ["https://example.com/schema.json", "file:///etc/passwd"] {
        let err = set(&[("a", json!({"$ref": target}))]).unwrap_err();
        assert!(err.to_string().contains("never fetches"), "{target}: {err}");
    }
    // A relative one has nothing to resolve against: refused as well.
    assert!(set(&[("a", json!({"$ref": "other.json"}))]).is_err());
    // A `$ref` inside the schema itself is fine.
    let local = json!({
        "$defs": {"id": {"type": "string"}},
        "type": "object",
        "properties": {"id": {"$ref": "#/$defs/id"}}
    });
    let set = set(&[("a", local)]).unwrap();
    assert_eq!(
        set.check(0, "a", "t", &json!({"id": 1})).unwrap().path,
        "/id"
    );
}

#[test]
fn modes_parse_from_their_names() {
    assert_eq!("enforce".parse(), Ok(SchemaMode::Enforce));
    assert_eq!(SchemaMode::default(), SchemaMode::Warn);
    assert!("strict".parse::<SchemaMode>().is_err());
}
