"""Unit tests of the v2 schema: type names, data schema, extension and the exact payload.

A port of the Rust crate's tests (`guest-mappers/v2/src/catalogue/tests.rs`), case for case;
`test_golden.py` checks the exact events against the Rust mapper's own output.
"""

import json

import pytest

from mapper.catalogue import MappingError, Settings, describe, map_mutation
from mapper.types import Action, FieldChange, Mutation, Origin, Task

TASK_ID = "0b6e1c52-3c8f-4d55-9a61-5f2d4f1b2a10"
AT = "2026-02-09T14:30:00.000Z"


def mutation(action: Action, changes: list[tuple[str, str, str]] = ()) -> Mutation:
    return Mutation(
        id="7f0c2a9e-1d1b-4e8e-8f3a-2c4b6d8e0f12",
        action=action,
        task=Task(
            id=TASK_ID,
            user_id="user-42",
            title="Buy milk",
            description="2 litres",
            completed=False,
            due_date="2026-02-12T09:00:00.000Z",
            created_at="2026-02-01T08:00:00.000Z",
            updated_at=AT,
        ),
        changes=[FieldChange(field, old, new) for field, old, new in changes],
        origin=Origin.MCP,
        correlation_id="4bf92f3577b34da6a3ce929d0e0e4736",
        occurred_at=AT,
    )


def map_one(m: Mutation, settings: Settings):
    events = map_mutation(m, settings)
    assert len(events) == 1, events
    return events[0]


def test_describe_names_the_mapper_and_declares_only_task_events():
    info = describe()
    assert info.name == "v2"
    assert info.version == "2.0.0"
    assert info.topics == ["task-events"]


@pytest.mark.parametrize(
    "action, event_type, schema",
    [
        (Action.CREATED, "com.pakaura.task.created.v2", "created"),
        (Action.UPDATED, "com.pakaura.task.updated.v2", "updated"),
        (Action.COMPLETED, "com.pakaura.task.completed.v2", "completed"),
        (Action.UNCOMPLETED, "com.pakaura.task.uncompleted.v2", "uncompleted"),
        (Action.DELETED, "com.pakaura.task.deleted.v2", "deleted"),
    ],
)
def test_every_action_yields_one_versioned_event_on_task_events(action, event_type, schema):
    event = map_one(mutation(action), Settings())
    assert event.topic == "task-events"
    assert event.event_type == event_type
    assert event.subject == TASK_ID
    assert event.data_schema == f"https://schemas.pakaura.dev/events/task/{schema}.v2.json"
    assert event.extensions == [("schemaversion", "2")]
    assert event.partition_key is None


def test_the_payload_is_a_task_snapshot_with_the_list_of_changes():
    m = mutation(
        Action.UPDATED,
        [("title", '"Buy bread"', '"Buy milk"'), ("due_date", "null", '"2026-02-12T09:00:00.000Z"')],
    )
    event = map_one(m, Settings())
    assert json.loads(event.data) == {
        "schema_version": 2,
        "task": {
            "id": TASK_ID, "user_id": "user-42", "title": "Buy milk",
            "description": "2 litres", "completed": False,
            "due_date": "2026-02-12T09:00:00.000Z",
            "created_at": "2026-02-01T08:00:00.000Z", "updated_at": AT,
        },
        "changes": [
            {"field": "title", "old": "Buy bread", "new": "Buy milk"},
            {"field": "due_date", "old": None, "new": "2026-02-12T09:00:00.000Z"},
        ],
        "actor": "user-42",
        "origin": "mcp",
        "occurred_at": AT,
    }
    assert event.data.startswith('{"schema_version":2,"task":{"id":'), event.data


def test_absent_optional_fields_are_null_and_no_changes_is_an_empty_list():
    m = mutation(Action.CREATED)
    m.task.description = None
    m.task.due_date = None
    m.origin = Origin.REST
    data = json.loads(map_one(m, Settings()).data)
    assert data["task"]["description"] is None
    assert data["task"]["due_date"] is None
    assert data["changes"] == []
    assert data["origin"] == "rest"


def test_the_schema_base_url_comes_from_config_without_a_trailing_slash():
    settings = Settings.from_config(
        lambda key: "https://schemas.example.com/v/" if key == "schema-base-url" else None
    )
    event = map_one(mutation(Action.DELETED), settings)
    assert event.data_schema == "https://schemas.example.com/v/task/deleted.v2.json"


def test_a_change_that_is_not_json_is_refused_naming_the_field():
    with pytest.raises(MappingError) as refused:
        map_mutation(mutation(Action.UPDATED, [("title", "nope", "null")]), Settings())
    err = str(refused.value)
    assert "`title`" in err and "old value" in err, err


def test_every_event_type_it_emits_has_a_declared_schema():
    from mapper.schemas import event_schemas

    declared = {s.event_type: json.loads(s.schema) for s in event_schemas()}
    for action in Action:
        (event,) = map_mutation(mutation(action), Settings.from_config(lambda _: None))
        schema = declared[event.event_type]
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert set(schema["required"]) == set(json.loads(event.data))
