"""The Python v2 mapper against the Rust one, byte for byte.

`guest-mappers/fixtures/expected/` is written by the Rust v2 catalogue itself
(`guest-mappers/golden`): the exact events (or `err` text) for every mutation fixture, with
the default and a custom `schema-base-url`, and serde_json's reading of a few hundred JSON
texts (normal form or error message).
"""

import json
from pathlib import Path

import pytest

from mapper import jsontext
from mapper.catalogue import MappingError, Settings, map_mutation
from mapper.types import Action, FieldChange, Mutation, Origin, Task

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
EVENTS = json.loads((FIXTURES / "expected" / "v2-events.json").read_text(encoding="utf-8"))
TEXTS = json.loads((FIXTURES / "expected" / "json-texts.json").read_text(encoding="utf-8"))


def load_mutation(name: str) -> Mutation:
    """A fixture in the outbox form (`pakaura mapper run --mutation`) as a plain mutation."""
    raw = json.loads((FIXTURES / "mutations" / f"{name}.json").read_text(encoding="utf-8"))
    return Mutation(
        id=raw["id"],
        action=Action(raw["action"]),
        task=Task(**raw["task"]),
        changes=[FieldChange(**c) for c in raw.get("changes", [])],
        origin=Origin(raw["origin"]),
        correlation_id=raw["correlation_id"],
        occurred_at=raw["occurred_at"],
    )


def outcome(mutation: Mutation, settings: Settings) -> dict:
    """The mapping as the golden file records it (WIT field names)."""
    try:
        events = map_mutation(mutation, settings)
    except MappingError as e:
        return {"err": str(e)}
    return {"ok": [{**vars(e), "extensions": [list(x) for x in e.extensions]} for e in events]}


def test_every_fixture_has_a_golden_outcome():
    fixtures = sorted(p.stem for p in (FIXTURES / "mutations").glob("*.json"))
    assert fixtures == sorted(EVENTS["fixtures"]), "regenerate with guest-mappers/golden"


@pytest.mark.parametrize("name", sorted(EVENTS["fixtures"]))
def test_the_events_are_the_rust_mappers(name):
    mutation = load_mutation(name)
    custom = EVENTS["custom_schema_base_url"]
    expected = EVENTS["fixtures"][name]
    assert outcome(mutation, Settings()) == expected["default"]
    settings = Settings.from_config(lambda key: custom if key == "schema-base-url" else None)
    assert outcome(mutation, settings) == expected["custom"]


@pytest.mark.parametrize("case", TEXTS, ids=[repr(c["text"])[:40] for c in TEXTS])
def test_json_texts_read_as_serde_json_reads_them(case):
    if "err" in case:
        with pytest.raises(jsontext.JsonError) as refused:
            jsontext.parse(case["text"])
        assert case["err"] == f"field `title`: old value is not JSON: {refused.value}"
    else:
        assert jsontext.dumps(jsontext.parse(case["text"])) == case["value"]
