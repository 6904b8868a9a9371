"""Plain Python mirrors of the WIT records of `pakaura:events/types` (`wit/events.wit`).

The mapping logic works on these rather than on componentize-py's generated `wit_world`
classes, so it imports and tests with a plain `python -m pytest`; `app.py` converts
between the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Action(Enum):
    """What happened to the task (WIT `action`); the value is the payload name."""

    CREATED = "created"
    UPDATED = "updated"
    COMPLETED = "completed"
    UNCOMPLETED = "uncompleted"
    DELETED = "deleted"


class Origin(Enum):
    """Which surface caused the mutation (WIT `origin`)."""

    REST = "rest"
    MCP = "mcp"
    SYSTEM = "system"


@dataclass
class Task:
    """A task as stored by the host (WIT `task`). Timestamps are RFC 3339 UTC strings."""

    id: str
    user_id: str
    title: str
    description: str | None
    completed: bool
    due_date: str | None
    created_at: str
    updated_at: str


@dataclass
class FieldChange:
    """One field changed by an `updated` mutation; values are JSON texts (`'"old"'`, `'null'`)."""

    field: str
    old_value: str
    new_value: str


@dataclass
class Mutation:
    """One committed change to one task (WIT `mutation`)."""

    id: str
    action: Action
    task: Task
    changes: list[FieldChange]
    origin: Origin
    correlation_id: str
    occurred_at: str


@dataclass
class Event:
    """One event to publish (WIT `event`); the host wraps it in a CloudEvents envelope."""

    topic: str
    event_type: str
    subject: str | None
    data: str
    data_schema: str | None = None
    extensions: list[tuple[str, str]] = field(default_factory=list)
    partition_key: str | None = None


@dataclass
class MapperInfo:
    """What the mapper says about itself at load (WIT `mapper-info`)."""

    name: str
    version: str
    topics: list[str]


@dataclass
class EventSchema:
    """The JSON Schema of one event type's `data` (WIT `event-schema`, since 1.1.0)."""

    event_type: str
    topic: str
    schema: str
