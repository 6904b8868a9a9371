"""The `{{name}}` Pakaura mapper's logic: one `com.example.task.<action>` event on
`task-events` per task mutation, tagged with the operator's `tenant` setting.

Plain Python, unit-tested with `python -m pytest`; `app.py` is the component glue.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

NAME = "{{name}}"
VERSION = "0.1.0"
#: The topic this mapper publishes to; `describe` declares it.
TOPIC = "task-events"
#: The `host.config` key of the tenant, and its value when the operator set none.
TENANT_KEY = "tenant"
DEFAULT_TENANT = "default"
_TENANT = re.compile(r"[a-z0-9-]{1,63}")


#: The actions, as they appear in event types and payloads.
ACTIONS = ("created", "updated", "completed", "uncompleted", "deleted")


def event_schemas() -> list[tuple[str, str]]:
    """`(event type, JSON Schema as a JSON text)` of every event type `map_mutation` may emit
    (all on `TOPIC`).

    Adding a property is compatible; removing or renaming one, narrowing a type or requiring a
    new property is refused on reload (see the host's README, "Payload schemas").
    """
    return [
        (
            f"com.example.task.{action}",
            json.dumps(
                {
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "title": f"com.example.task.{action}",
                    "type": "object",
                    "properties": {
                        "task_id": {"type": "string"},
                        "action": {"const": action},
                        "title": {"type": "string"},
                        "changed": {"type": "array", "items": {"type": "string"}},
                        "at": {"type": "string", "format": "date-time"},
                    },
                    "required": ["task_id", "action", "title", "changed", "at"],
                }
            ),
        )
        for action in ACTIONS
    ]


class MappingError(Exception):
    """The mutation cannot be mapped; the component returns `str(error)` as its `err`."""


@dataclass
class Input:
    """What the mapping needs from a mutation."""

    task_id: str
    action: str  # created, updated, completed, uncompleted or deleted
    title: str
    changed: list[str]  # snake_case names of the changed fields (empty unless updated)
    occurred_at: str


@dataclass
class Output:
    """The one event this mapper emits for a mutation."""

    event_type: str
    data: str
    tenant: str


def map_mutation(input: Input, tenant: str | None) -> Output:
    """Maps one mutation; `tenant` is the `tenant` setting, if the operator set one.

    Raises `MappingError` (the mutation becomes a dead letter, replayable once the setting is
    fixed) when `tenant` is set but is not 1 to 63 characters of a-z, 0-9 and `-`.
    """
    if tenant is None:
        tenant = DEFAULT_TENANT
    if not _TENANT.fullmatch(tenant):
        raise MappingError(
            f"setting `{TENANT_KEY}` must be 1 to 63 characters of a-z, 0-9 and `-`, got {tenant!r}"
        )
    data = {
        "task_id": input.task_id,
        "action": input.action,
        "title": input.title,
        "changed": input.changed,
        "at": input.occurred_at,
    }
    return Output(
        event_type=f"com.example.task.{input.action}",
        data=json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        tenant=tenant,
    )
