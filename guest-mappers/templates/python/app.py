"""The component glue: exports the mapping as the `pakaura:events/typed-mapper` world.

componentize-py generates the `wit_world` package from `wit/events.wit` when `./build.sh`
runs (for your editor: `componentize-py -d wit -w typed-mapper bindings .`). Only this module sees
it and calls the host: it reads the `tenant` setting through `host.config`, delegates to
`mapping.py` and logs one line per mutation through `host.log`.
"""

from componentize_py_types import Err

import wit_world
from wit_world.imports import host
from wit_world.imports import types as wit

import mapping


class WitWorld(wit_world.WitWorld):
    def describe(self) -> wit.MapperInfo:
        """Called once, when the host loads the component."""
        return wit.MapperInfo(name=mapping.NAME, version=mapping.VERSION, topics=[mapping.TOPIC])

    def map_mutation(self, mutation: wit.Mutation) -> list[wit.Event]:
        """Called once per committed mutation; raising `Err(reason)` makes it a dead letter."""
        action = mutation.action.name.lower()  # Action.CREATED -> "created"
        input = mapping.Input(
            task_id=mutation.task.id,
            action=action,
            title=mutation.task.title,
            changed=[c.field for c in mutation.changes],
            occurred_at=mutation.occurred_at,
        )
        try:
            out = mapping.map_mutation(input, host.config(mapping.TENANT_KEY))
        except mapping.MappingError as e:
            raise Err(str(e)) from None
        host.log(host.Level.DEBUG, f"mutation {mutation.id} ({action}) of task {mutation.task.id}")
        return [
            wit.Event(
                topic=mapping.TOPIC,
                event_type=out.event_type,
                subject=mutation.task.id,
                data=out.data,
                data_schema=None,
                extensions=[("tenant", out.tenant)],
                # None: the host uses the task id, so one task's events stay in order.
                partition_key=None,
            )
        ]

    def event_schemas(self) -> list[wit.EventSchema]:
        """Called once, when the host loads the component, after `describe`."""
        return [
            wit.EventSchema(event_type=t, topic=mapping.TOPIC, schema=s)
            for t, s in mapping.event_schemas()
        ]
