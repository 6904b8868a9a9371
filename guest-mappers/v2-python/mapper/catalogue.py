"""The v2 event schema, as plain Python: how a mapper evolves the catalogue without a host release.

The same mapper as the Rust crate `guest-mappers/v2` (`src/catalogue.rs`), event for event
and byte for byte: every mutation yields exactly one event on `task-events`; its type carries
the schema version (`com.pakaura.task.created.v2`), its payload is a full task snapshot plus
the list of changes, it points at a published JSON schema (`dataschema`) and it carries a
`schemaversion` extension attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import jsontext
from .types import Event, FieldChange, MapperInfo, Mutation

#: The mapper's name and version: the same as the Rust v2 mapper's, because the host derives
#: envelope ids from the name and the three implementations are interchangeable.
NAME = "v2"
VERSION = "2.0.0"
#: The only topic this mapper publishes to.
TASK_EVENTS = "task-events"
#: The schema version this mapper produces, in payloads and in the `schemaversion` extension.
SCHEMA_VERSION = 2


class MappingError(Exception):
    """The mutation cannot be mapped; the component returns `str(error)` as its `err`."""


@dataclass(frozen=True)
class Settings:
    """The operator's settings for this mapper, read through `host.config`."""

    #: Where the JSON schemas are published; `dataschema` is `{base}/task/{action}.v2.json`.
    schema_base_url: str = "https://schemas.pakaura.dev/events"

    #: The `host.config` key of `schema_base_url`.
    SCHEMA_BASE_URL_KEY = "schema-base-url"
    #: The schema base URL used when the operator set none.
    DEFAULT_SCHEMA_BASE_URL = "https://schemas.pakaura.dev/events"

    @classmethod
    def from_config(cls, config: Callable[[str], str | None]) -> Settings:
        """Reads the settings through `config` (the component passes `host.config`).

        An unset key falls back to the default; a set one is used as it is (even when empty),
        less any trailing slashes.
        """
        base = config(cls.SCHEMA_BASE_URL_KEY)
        if base is None:
            base = cls.DEFAULT_SCHEMA_BASE_URL
        return cls(schema_base_url=base.rstrip("/"))


def describe() -> MapperInfo:
    """Names this mapper and declares its single topic."""
    return MapperInfo(name=NAME, version=VERSION, topics=[TASK_EVENTS])


def map_mutation(mutation: Mutation, settings: Settings) -> list[Event]:
    """Maps one mutation to its single v2 event.

    Raises `MappingError` only when a change's old or new value is not a JSON text.
    """
    task = mutation.task
    action = mutation.action.value
    payload = {
        "schema_version": SCHEMA_VERSION,
        "task": {
            "id": task.id,
            "user_id": task.user_id,
            "title": task.title,
            "description": task.description,
            "completed": task.completed,
            "due_date": task.due_date,
            "created_at": task.created_at,
            "updated_at": task.updated_at,
        },
        "changes": [_change_payload(change) for change in mutation.changes],
        "actor": task.user_id,
        "origin": mutation.origin.value,
        "occurred_at": mutation.occurred_at,
    }
    return [
        Event(
            topic=TASK_EVENTS,
            event_type=f"com.pakaura.task.{action}.v2",
            subject=task.id,
            data=jsontext.dumps(payload),
            data_schema=f"{settings.schema_base_url}/task/{action}.v2.json",
            extensions=[("schemaversion", str(SCHEMA_VERSION))],
            partition_key=None,
        )
    ]


def _change_payload(change: FieldChange) -> dict[str, object]:
    """One change, with its old and new values as JSON values rather than JSON texts."""

    def value(which: str, text: str) -> object:
        try:
            return jsontext.parse(text)
        except jsontext.JsonError as e:
            raise MappingError(f"field `{change.field}`: {which} value is not JSON: {e}") from None

    old = value("old", change.old_value)
    new = value("new", change.new_value)
    return {"field": change.field, "old": old, "new": new}
