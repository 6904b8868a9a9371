"""The component glue: exports the v2 mapping as the `pakaura:events/typed-mapper` world.

componentize-py generates the `wit_world` package from the repository's `wit/` at build
time (`./build.sh`); only this module sees it and calls the host. It reads the settings
through `host.config`, converts the mutation, delegates to `mapper.catalogue` and logs one
debug line per mapping through `host.log`, exactly as the Rust v2 mapper does.
"""

from componentize_py_types import Err

import wit_world
from wit_world.imports import host
from wit_world.imports import types as wit

from mapper import catalogue, schemas, types


class WitWorld(wit_world.WitWorld):
    def describe(self) -> wit.MapperInfo:
        info = catalogue.describe()
        return wit.MapperInfo(name=info.name, version=info.version, topics=info.topics)

    def map_mutation(self, mutation: wit.Mutation) -> list[wit.Event]:
        settings = catalogue.Settings.from_config(host.config)
        m = _mutation(mutation)
        try:
            events = catalogue.map_mutation(m, settings)
        except catalogue.MappingError as e:
            _log_outcome(m, f"refused: {e}")
            raise Err(str(e)) from None
        _log_outcome(m, f"{len(events)} event(s)")
        return [_event(e) for e in events]

    def event_schemas(self) -> list[wit.EventSchema]:
        return [
            wit.EventSchema(event_type=s.event_type, topic=s.topic, schema=s.schema)
            for s in schemas.event_schemas()
        ]


def _log_outcome(m: types.Mutation, outcome: str) -> None:
    host.log(
        host.Level.DEBUG,
        f"mutation {m.id} ({m.action.value}) of task {m.task.id}: {outcome}",
    )


def _mutation(m: wit.Mutation) -> types.Mutation:
    t = m.task
    return types.Mutation(
        id=m.id,
        # The WIT enums and the plain ones share their member names (CREATED, REST, ...).
        action=types.Action[m.action.name],
        task=types.Task(
            id=t.id,
            user_id=t.user_id,
            title=t.title,
            description=t.description,
            completed=t.completed,
            due_date=t.due_date,
            created_at=t.created_at,
            updated_at=t.updated_at,
        ),
        changes=[types.FieldChange(c.field, c.old_value, c.new_value) for c in m.changes],
        origin=types.Origin[m.origin.name],
        correlation_id=m.correlation_id,
        occurred_at=m.occurred_at,
    )


def _event(e: types.Event) -> wit.Event:
    return wit.Event(
        topic=e.topic,
        event_type=e.event_type,
        subject=e.subject,
        data=e.data,
        data_schema=e.data_schema,
        extensions=list(e.extensions),
        partition_key=e.partition_key,
    )
