"""The v2 schema-evolution mapper in plain Python: no component toolchain needed.

- `mapper.types`: plain mirrors of the WIT records in the repository's `wit/events.wit`.
- `mapper.jsontext`: JSON texts read and written exactly as the Rust mapper's serde_json does.
- `mapper.catalogue`: the v2 mapping itself.

`app.py` (beside this package) is the component glue that componentize-py builds.
"""
