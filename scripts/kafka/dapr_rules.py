"""What Dapr's sidecar and its Kafka pub/sub component do to a publish, as pure functions.

sidecar.py serves Dapr's publish API with these rules and hands the records to a real
Kafka producer. Each rule names the Dapr source it follows; the paths are in
github.com/dapr/dapr ("dapr:") and github.com/dapr/components-contrib ("contrib:"), and
Sarama (github.com/IBM/sarama, Dapr's Kafka client) where the client decides. Where this
stand-in differs from Dapr on purpose, the comment says so.
"""

import base64
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

# The component metadata this stand-in knows (one list, also read by helm/check/check.py).
COMPONENT_FILE = Path(__file__).with_name("component.json")

# contrib: common/component/kafka/metadata.go: `key = "partitionKey"`,
# `keyMetadataKey = "__key"`, `partitionNumberKey = "partitionNumber"`.
KEY_METADATA = ("__key", "partitionKey")
PARTITION_NUMBER_METADATA = "partitionNumber"


class DaprError(Exception):
    """An error answer of the sidecar: HTTP status, Dapr `errorCode`, gRPC reason, message.

    dapr: pkg/api/errors/pubsub.go builds these; pkg/messages/errorcodes/errorcodes.go names
    the codes; kit's errors.JSONErrorValue gives the body {errorCode, message, details}.
    """

    def __init__(self, status, code, reason, message, metadata=None):
        super().__init__(message)
        self.status, self.code, self.reason, self.message = status, code, reason, message
        self.metadata = metadata or {}

    def body(self):
        info = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": self.reason,
            "domain": "dapr.io",
            "metadata": self.metadata,
        }
        return {"errorCode": self.code, "message": self.message, "details": [info]}


def publish_failed(pubsub, topic, error):
    """dapr: pkg/api/errors/pubsub.go PublishMessage: the component failed (500)."""
    return DaprError(
        500,
        "ERR_PUBSUB_PUBLISH_MESSAGE",
        "DAPR_PUBSUB_PUBLISH_MESSAGE",
        f"error when publishing to topic {topic} in pubsub {pubsub}: {error}",
        {"topic": topic, "error": str(error)},
    )


def forbidden(topic, app_id):
    """dapr: pkg/api/errors/pubsub.go PublishForbidden: the topic is outside the app's scopes."""
    return DaprError(
        403,
        "ERR_PUBSUB_FORBIDDEN",
        "DAPR_PUBSUB_FORBIDDEN",
        f"topic {topic} is not allowed for app id {app_id}",
        {"topic": topic},
    )


def pubsub_not_found(pubsub):
    """dapr: pkg/api/http/http.go validateAndGetPubsubAndTopic → NotFound (404)."""
    return DaprError(
        404, "ERR_PUBSUB_NOT_FOUND", "DAPR_PUBSUB_NOT_FOUND", f"pubsub {pubsub} is not found"
    )


# --- JSON as Go's encoding/json reads and writes it ---------------------------------------


class Number(str):
    """A JSON number kept as its text, as Dapr decodes with UseNumber (contrib:
    pubsub/envelope.go unmarshalPrecise) and writes back unchanged."""


def _no_constant(name):
    raise ValueError(f"invalid JSON value {name}")


def loads_precise(raw):
    """Decodes JSON keeping numbers exact; Go replaces invalid UTF-8 with U+FFFD."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return json.loads(text, parse_int=Number, parse_float=Number, parse_constant=_no_constant)


_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _go_string(text):
    encoded = json.dumps(text, ensure_ascii=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _GO_ESCAPES[m.group()], encoded)


def go_json(value):
    """Encodes as Go's json.Marshal does for the map Dapr builds (dapr: pkg/api/http/http.go
    onPublish `json.Marshal(envelope)`): object keys sorted, no spaces, `<>&` and U+2028/9
    escaped (HTML-safe), other text as UTF-8."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{_go_string(k)}:{go_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, Number):
        return str(value)
    if isinstance(value, str):
        return _go_string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return json.dumps(value)


# --- The CloudEvent Dapr writes as the record value ---------------------------------------


def _content_type_is(content_type, expected):
    """contrib: contenttype/utils.go isContentType (case-insensitive, parameters ignored)."""
    return content_type.lower().split(";", 1)[0] == expected


def is_cloud_event(content_type):
    return _content_type_is(content_type, "application/cloudevents+json")


def child_traceparent(header):
    """The traceparent of the span Dapr's HTTP middleware starts for the request: the
    caller's trace (from the `traceparent` header) with a span of its own, or a new trace."""
    match = re.fullmatch(r"00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})", header or "")
    trace, flags = (match.group(1), match.group(2)) if match else (secrets.token_hex(16), "01")
    return f"00-{trace}-{secrets.token_hex(8)}-{flags}"


def _now_rfc3339():
    # Go's time.Now().Format(time.RFC3339): seconds, the local offset (Z for UTC).
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _from_cloud_event(body, topic, pubsub, traceparent, tracestate):
    """contrib: pubsub/envelope.go FromCloudEvent: the app's structured CloudEvent kept, with
    `time` added if missing, `traceid`+`traceparent` set to Dapr's span only if `traceid` is
    missing, `tracestate` added if missing, `topic` and `pubsubname` overwritten, `source`,
    `type`, `specversion` defaulted if absent or null. Never an `id`."""
    event = loads_precise(body)
    if not isinstance(event, dict):
        raise ValueError("a structured CloudEvent must be a JSON object")
    event.setdefault("time", _now_rfc3339())
    if "traceid" not in event:
        event["traceid"] = traceparent
        event["traceparent"] = traceparent
    event.setdefault("tracestate", tracestate)
    event["topic"] = topic
    event["pubsubname"] = pubsub
    for name, default in (("source", "Dapr"), ("type", "com.dapr.event.sent"), ("specversion", "1.0")):
        if event.get(name) is None:
            event[name] = default
    return event


def _override(metadata, name):
    """dapr: pkg/runtime/pubsub/cloudevents.go: `cloudevent.*` metadata, decoded by
    mapstructure.WeakDecode, so the key's case does not matter."""
    wanted = f"cloudevent.{name}"
    return next((v for k, v in metadata.items() if k.lower() == wanted), "")


def _new_envelope(body, content_type, metadata, topic, pubsub, app_id, traceparent, tracestate):
    """dapr: pkg/runtime/pubsub/cloudevents.go NewCloudEvent and contrib: pubsub/envelope.go
    NewCloudEventsEnvelope: a payload that is not a CloudEvent is wrapped in one. (Protobuf
    CloudEvents are not recognised here; they become base64 only with octet-stream.)"""
    trace = _override(metadata, "traceparent") or _override(metadata, "traceid") or traceparent
    content_type = content_type or "text/plain"
    if _content_type_is(content_type, "application/json"):
        try:
            data_field, data = "data", loads_precise(body)
        except ValueError:
            data_field, data = "data", body.decode("utf-8", errors="replace")
    elif _content_type_is(content_type, "application/octet-stream"):
        data_field, data = "data_base64", base64.b64encode(body).decode()
    else:
        data_field, data = "data", body.decode("utf-8", errors="replace")
    event = {
        "id": _override(metadata, "id") or str(uuid.uuid4()),
        "specversion": "1.0",
        "datacontenttype": content_type,
        "source": _override(metadata, "source") or app_id or "Dapr",
        "type": _override(metadata, "type") or "com.dapr.event.sent",
        "topic": topic,
        "pubsubname": pubsub,
        "traceid": trace,
        "traceparent": trace,
        "tracestate": _override(metadata, "tracestate") or tracestate,
        "time": _now_rfc3339(),
        data_field: data,
    }
    if _override(metadata, "subject"):
        event["subject"] = _override(metadata, "subject")
    return event


def _go_duration(text):
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return timedelta(seconds=sum(float(n) * units[u] for n, u in parts))


def _ttl(metadata):
    """contrib: metadata/utils.go TryGetTTL (`ttl` or `ttlInSeconds`: a Go duration or whole
    seconds); an invalid value is ignored, as pubsub/envelope.go ApplyMetadata ignores it."""
    value = metadata.get("ttl") or metadata.get("ttlInSeconds") or ""
    if not value:
        return None
    ttl = _go_duration(value)
    if ttl is None and value.isdigit() and int(value) > 0:
        ttl = timedelta(seconds=int(value))
    return ttl


def is_raw_payload(metadata):
    """contrib: metadata/utils.go IsRawPayload (strconv.ParseBool). Raises on a bad value."""
    value = metadata.get("rawPayload", "")
    if value == "":
        return False
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"rawPayload value must be a valid boolean: actual is '{value}'")


def record_value(body, content_type, metadata, topic, pubsub, app_id, traceparent_header, tracestate):
    """The bytes Dapr hands to the component as the record value (dapr: pkg/api/http/http.go
    onPublish, and onBulkPublish per entry): the body as sent with `rawPayload=true`, else the
    CloudEvent built above with `expiration` added for a TTL (contrib: pubsub/envelope.go
    ApplyMetadata; Kafka has no native message TTL), encoded as Go does."""
    if is_raw_payload(metadata):
        return body
    span = child_traceparent(traceparent_header)
    if is_cloud_event(content_type):
        event = _from_cloud_event(body, topic, pubsub, span, tracestate)
    else:
        event = _new_envelope(body, content_type, metadata, topic, pubsub, app_id, span, tracestate)
    ttl = _ttl(metadata)
    if ttl is not None:
        event["expiration"] = (datetime.now(timezone.utc) + ttl).strftime("%Y-%m-%dT%H:%M:%SZ")
    return go_json(event).encode()


# --- From publish metadata to a Kafka record ------------------------------------------------


@dataclass
class Record:
    """One Kafka record as Dapr's Kafka component builds it."""

    topic: str
    value: bytes
    key: bytes | None = None
    partition: int | None = None  # None: Sarama's hash partitioner chooses
    headers: list = field(default_factory=list)


def record_of(topic, value, metadata, exclude_headers):
    """contrib: common/component/kafka/producer.go Publish (and BulkPublish per entry):
    `partitionKey` or `__key` becomes the record key, `partitionNumber` the partition (an
    error if it is not a non-negative int32), and every metadata entry, those three included,
    becomes a header unless `excludeHeaderMetaRegex` matches its name. Go walks the map in
    random order; here names are sorted, so with both key names set `partitionKey` wins."""
    record = Record(topic=topic, value=value)
    for name in sorted(metadata):
        text = metadata[name]
        if name in KEY_METADATA:
            record.key = text.encode()
        elif name == PARTITION_NUMBER_METADATA:
            if not re.fullmatch(r"[+-]?\d+", text) or not 0 <= int(text) < 2**31:
                raise ValueError(f"invalid partitionNumber metadata value {text!r}")
            record.partition = int(text)
        if exclude_headers is not None and exclude_headers.search(name):
            continue
        record.headers.append((name, text.encode()))
    return record


def sarama_partition(key, partitions):
    """Sarama's NewHashPartitioner (partitioner.go), which Dapr's partitioner wraps (contrib:
    common/component/kafka/partitioner.go): FNV-1a 32 of the key bytes as an int32, Go's
    truncated remainder by the partition count, made positive."""
    h = 0x811C9DC5
    for byte in key:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    signed = h - (1 << 32) if h >= 1 << 31 else h
    return abs(signed) % partitions


def sarama_byte_size(record):
    """Sarama's ProducerMessage.ByteSize for record batches (Kafka >= 0.11), which the async
    producer compares with Producer.MaxMessageBytes before sending anything."""
    size = 5 * 5 + 10 + 1  # maximumRecordOverhead: 5 varint32 + 1 varint64 + 1
    size += sum(len(k.encode()) + len(v) + 2 * 5 for k, v in record.headers)
    return size + len(record.key or b"") + len(record.value)


def too_large(record, max_message_bytes):
    """The error text Sarama returns (async_producer.go dispatcher, wrapped in its
    ConfigurationError and ProducerError) for a record over maxMessageBytes, or None."""
    size = sarama_byte_size(record)
    if size <= max_message_bytes:
        return None
    return (
        f"kafka: Failed to produce message to topic {record.topic}: kafka: invalid configuration "
        f"(Attempt to produce message larger than configured Producer.MaxMessageBytes: "
        f"{size} > {max_message_bytes})"
    )
