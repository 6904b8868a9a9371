"""Bulk publish in the sidecar stand-in: dapr: pkg/api/http/http.go onBulkPublish, then
contrib: common/component/kafka/producer.go BulkPublish (the Kafka component publishes a
bulk request natively, every entry as its own record with its own key, all sent together).
"""

import base64
import json
import sys

import dapr_rules


def _events_error(reason, message):
    """dapr: pkg/api/errors/pubsub.go UnmarshalEvents / MarshalEnvelope / MarshalEvents (400)."""
    return dapr_rules.DaprError(400, "ERR_PUBSUB_EVENTS_SER", reason, message)


def _event_bytes(event, content_type):
    """dapr: pkg/api/http/util.go ConvertEventToBytes."""
    lowered = content_type.lower().split(";", 1)[0]
    if lowered == "application/octet-stream":
        if not isinstance(event, str):
            raise ValueError("content type does not match event format")
        return base64.b64decode(event, validate=True)
    if lowered.startswith("text/") or lowered == "application/xml":
        if not isinstance(event, str):
            raise ValueError("content type does not match event format")
        return event.encode()
    if lowered in ("application/json", "application/cloudevents+json"):
        return dapr_rules.go_json(event).encode()
    raise ValueError("content type does not match event format")


def _entries(body, pubsub, topic):
    try:
        entries = dapr_rules.loads_precise(body)
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("expected a JSON array of entries")
    except ValueError as error:
        raise _events_error(
            "DAPR_PUBSUB_UNMARSHAL_EVENTS",
            f"error when unmarshaling the request for topic {topic} pubsub {pubsub}: {error}",
        ) from None
    seen = set()
    for entry in entries:
        entry_id = entry.get("entryId") or ""
        if entry_id in seen or not entry_id:
            raise _events_error(
                "DAPR_PUBSUB_MARSHAL_EVENTS",
                f"error marshaling events to bytes for topic {topic} pubsub {pubsub}. "
                "error: entryId is duplicated or not present for entry",
            )
        seen.add(entry_id)
    return entries


def _entry_metadata(entry, request):
    """dapr: utils/utils.go PopulateMetadataForBulkPublishEntry fills an entry's metadata (when
    it has any) with request metadata it lacks; then the component copies the request
    metadata over every entry's (contrib: producer.go BulkPublish `maps.Copy`), so in the end
    a request-level name wins over the entry's."""
    metadata = dict(entry.get("metadata") or {})
    metadata.update(request)
    return {str(k): str(v) for k, v in metadata.items()}


def _records(handler, entries, pubsub, topic, metadata):
    records = []
    for entry in entries:
        content_type = str(entry.get("contentType") or "")
        try:
            event = _event_bytes(entry.get("event"), content_type)
        except ValueError as error:
            raise _events_error(
                "DAPR_PUBSUB_MARSHAL_ENVELOPE",
                f"error when marshalling cloud event envelope for topic {topic} pubsub {pubsub}: {error}",
            ) from None
        records.append(handler.record(topic, pubsub, event, content_type, _entry_metadata(entry, metadata)))
    return records


def publish_bulk(handler, pubsub, topic, body, metadata):
    """Answers 204 when every entry was acknowledged, else 500 with `failedEntries`."""
    try:
        if pubsub != handler.state.args.pubsub:
            raise dapr_rules.pubsub_not_found(pubsub)
        handler.check_metadata(metadata)
        entries = _entries(body, pubsub, topic)
        handler.state.begin(pubsub, topic, len(entries))
    except dapr_rules.DaprError as refusal:
        handler.log_failure(topic, refusal)
        return handler.fail(refusal)
    try:
        records = _records(handler, entries, pubsub, topic, metadata)
    except dapr_rules.DaprError as error:
        handler.state.end()
        if error.code != "ERR_PUBSUB_PUBLISH_MESSAGE":
            handler.log_failure(topic, error)
            return handler.fail(error)
        # A bad partitionNumber fails every entry (contrib: producer.go BulkPublish).
        return _failed(handler, topic, [(e.get("entryId"), error.message) for e in entries])
    try:
        errors = handler.state.forwarder.send(records)
    finally:
        handler.state.end()
    failed = [(e["entryId"], err) for e, err in zip(entries, errors) if err is not None]
    return _failed(handler, topic, failed) if failed else handler.answer(204)


def _failed(handler, topic, failed):
    """dapr: pkg/api/http/http.go onBulkPublish: 500, `failedEntries` and the error code."""
    print(f"sidecar: {topic}: bulk: {len(failed)} entries failed: {failed[0][1]}", file=sys.stderr, flush=True)
    body = {
        "failedEntries": [{"entryId": entry_id, "error": error} for entry_id, error in failed],
        "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE",
    }
    return handler.answer(500, json.dumps(body).encode())
