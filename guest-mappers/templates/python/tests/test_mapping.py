import json

import pytest

from mapping import ACTIONS, DEFAULT_TENANT, NAME, Input, MappingError, event_schemas, map_mutation


def make_input() -> Input:
    return Input(
        task_id="0b6e1c52-3c8f-4d55-9a61-5f2d4f1b2a10",
        action="updated",
        title="Buy milk",
        changed=["title"],
        occurred_at="2026-02-09T14:30:00.000Z",
    )


def test_the_name_is_the_projects():
    assert NAME == "{{name}}"


def test_maps_a_mutation_to_one_event_tagged_with_the_tenant():
    out = map_mutation(make_input(), "acme")
    assert out.event_type == "com.example.task.updated"
    assert out.tenant == "acme"
    data = json.loads(out.data)
    assert data["task_id"] == "0b6e1c52-3c8f-4d55-9a61-5f2d4f1b2a10"
    assert data["changed"] == ["title"]


def test_the_tenant_defaults_when_unset():
    assert map_mutation(make_input(), None).tenant == DEFAULT_TENANT


def test_an_invalid_tenant_setting_is_refused():
    with pytest.raises(MappingError, match="setting `tenant`"):
        map_mutation(make_input(), "Acme Corp")


def test_every_event_it_emits_has_a_declared_schema():
    schemas = dict(event_schemas())
    for action in ACTIONS:
        input = make_input()
        input.action = action
        out = map_mutation(input, None)
        schema = json.loads(schemas[out.event_type])
        assert set(schema["required"]) <= set(json.loads(out.data))
