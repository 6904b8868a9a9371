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
