#!/usr/bin/env python3
"""A Dapr sidecar stand-in that forwards to Kafka: Dapr's pub/sub publish API over HTTP, in
front of a real Kafka producer, doing what the Dapr runtime and its Kafka component do
(dapr_rules.py names the source of each rule). Used by `./scripts/run --kafka` and by the
Kafka end-to-end tests (tests/tests/kafka/); needs confluent-kafka (scripts/tools/requirements.txt).

    sidecar.py --port 3500 --metadata brokers=127.0.0.1:9092 [--metadata NAME=VALUE]...

Routes: POST /v1.0/publish/{pubsub}/{topic} (metadata as `metadata.NAME` query parameters),
POST /v1.0-alpha1/publish/bulk/{pubsub}/{topic} and /v1.0/publish/bulk/... (a JSON array of
{entryId, event, contentType, metadata}), GET /v1.0/healthz and /v1.0/healthz/outbound.
With --test-controls, also: POST /test/forbid?topic=T and /test/allow?topic=T (refuse a topic
with 403, as Dapr's publishing scopes do), POST /test/pause (wait for the publishes in flight,
then answer every publish 500 without producing, as when the producer fails; the answer is
{"acked": {topic: {partition: next offset}}, "requests": {"single", "bulk", "entries"}}: the
records the broker acknowledged since the last pause, and the publish requests served so
far) and POST /test/resume.
Prints `listening on HOST:PORT` on standard output once it serves (--port 0 picks a port).
"""

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from confluent_kafka import KafkaException

import dapr_rules
from bulk import publish_bulk
from forwarder import Forwarder, Settings, SettingsError


class State:
    """What every request shares: the settings, the producer, the test controls."""

    def __init__(self, args, forwarder):
        self.args = args
        self.forwarder = forwarder
        self.forbidden = set()
        self.paused = False
        self.in_flight = 0
        self.requests = {"single": 0, "bulk": 0, "entries": 0}
        self.changed = threading.Condition()

    def begin(self, pubsub, topic, entries=None):
        """Starts a publish (of `entries` when bulk), or raises the refusal Dapr answers
        before producing anything."""
        with self.changed:
            if topic in self.forbidden:
                raise dapr_rules.forbidden(topic, self.args.app_id)
            if self.paused:
                raise dapr_rules.publish_failed(pubsub, topic, "kafka: producer paused by the test")
            self.in_flight += 1
            if entries is None:
                self.requests["single"] += 1
            else:
                self.requests["bulk"] += 1
                self.requests["entries"] += entries

    def end(self):
        with self.changed:
            self.in_flight -= 1
            self.changed.notify_all()

    def pause(self):
        with self.changed:
            self.paused = True
            self.changed.wait_for(lambda: self.in_flight == 0)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if self.state.args.verbose:
            super().log_message(format, *args)

    def answer(self, status, body=b"", content_type="application/json"):
        self.send_response(status)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def fail(self, error):
        self.answer(error.status, json.dumps(error.body()).encode())

    def authorised(self):
        """dapr: pkg/api/http/middlewares.go APITokenAuthMiddleware (health routes exempt)."""
        token = self.state.args.api_token
        if not token or self.headers.get("dapr-api-token") == token:
            return True
        self.answer(401, b"invalid api token\n", "text/plain; charset=utf-8")
        return False

    def do_GET(self):  # noqa: N802 (http.server's naming)
        path = urlsplit(self.path).path.rstrip("/")
        if path in ("/v1.0/healthz", "/v1.0/healthz/outbound"):
            self.answer(204)
        else:
            self.answer(404)

    def do_POST(self):  # noqa: N802
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if parts[:1] == ["test"] and self.state.args.test_controls:
            return self.control(parts[1:], parse_qs(url.query))
        if not self.authorised():
            return None
        # dapr: pkg/api/http/http.go getMetadataFromRequest: `metadata.NAME` query parameters.
        metadata = {k[9:]: v[0] for k, v in parse_qs(url.query).items() if k.startswith("metadata.")}
        if parts[:2] == ["v1.0", "publish"] and len(parts) >= 4 and parts[2] != "bulk":
            return self.publish(parts[2], "/".join(parts[3:]), body, metadata)
        if parts[0] in ("v1.0", "v1.0-alpha1") and parts[1:3] == ["publish", "bulk"] and len(parts) >= 5:
            return publish_bulk(self, parts[3], "/".join(parts[4:]), body, metadata)
        return self.answer(404)

    def check_metadata(self, metadata):
        """dapr: pkg/api/http/http.go onPublish: a `rawPayload` that is not a boolean is a
        DeserializeError (400) before anything else is read."""
        try:
            dapr_rules.is_raw_payload(metadata)
        except ValueError as error:
            raise dapr_rules.DaprError(
                400, "ERR_PUBSUB_REQUEST_METADATA", "DAPR_PUBSUB_METADATA_DESERIALIZATION",
                f"failed deserializing metadata. Error: {error}",
            ) from None

    def publish(self, pubsub, topic, body, metadata):
        """dapr: pkg/api/http/http.go onPublish, then contrib: pubsub/kafka/kafka.go Publish."""
        try:
            if pubsub != self.state.args.pubsub:
                raise dapr_rules.pubsub_not_found(pubsub)
            self.check_metadata(metadata)
            self.state.begin(pubsub, topic)
        except dapr_rules.DaprError as refusal:
            self.log_failure(topic, refusal)
            return self.fail(refusal)
        try:
            record = self.record(topic, pubsub, body, self.headers.get("Content-Type", ""), metadata)
            (error,) = self.state.forwarder.send([record])
            if error is not None:
                raise dapr_rules.publish_failed(pubsub, topic, error)
            self.answer(204)
        except dapr_rules.DaprError as error:
            self.log_failure(topic, error)
            self.fail(error)
        finally:
            self.state.end()
        return None

    def record(self, topic, pubsub, body, content_type, metadata):
        """The record for one event, or the DaprError Dapr answers instead."""
        args = self.state.args
        try:
            value = dapr_rules.record_value(
                body, content_type, metadata, topic, pubsub, args.app_id,
                self.headers.get("traceparent"), self.headers.get("tracestate", ""),
            )
        except ValueError as error:
            # dapr: pkg/api/errors/pubsub.go CloudEventCreation.
            raise dapr_rules.DaprError(
                500, "ERR_PUBSUB_CLOUD_EVENTS_SER", "DAPR_PUBSUB_CLOUD_EVENT_CREATION",
                "cannot create cloudevent", {"error": str(error)},
            ) from None
        try:
            return dapr_rules.record_of(topic, value, metadata, self.state.forwarder.settings.exclude_headers)
        except ValueError as error:
            raise dapr_rules.publish_failed(pubsub, topic, error) from None

    def log_failure(self, topic, error):
        print(f"sidecar: {topic}: {error.status} {error.code}: {error.message}", file=sys.stderr, flush=True)

    def control(self, parts, query):
        topic = (query.get("topic") or [""])[0]
        state = self.state
        with state.changed:
            if parts == ["forbid"] and topic:
                state.forbidden.add(topic)
            elif parts == ["allow"] and topic:
                state.forbidden.discard(topic)
            elif parts == ["resume"]:
                state.paused = False
            elif parts != ["pause"]:
                return self.answer(404)
        if parts == ["pause"]:
            state.pause()
            with state.changed:
                requests = dict(state.requests)
            paused = {"acked": state.forwarder.take_acked(), "requests": requests}
            return self.answer(200, json.dumps(paused).encode())
        return self.answer(204)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3500, help="0 picks a free port")
    parser.add_argument("--pubsub", default="pubsub-kafka", help="the component's name (DAPR_PUBSUB_NAME)")
    parser.add_argument("--app-id", default="pakaura", help="Dapr app id (CloudEvents source of wrapped payloads, 403 text)")
    parser.add_argument("--api-token", default="", help="require this dapr-api-token (DAPR_API_TOKEN)")
    parser.add_argument("--metadata", action="append", default=[], metavar="NAME=VALUE",
                        help="component metadata (scripts/kafka/component.json), e.g. brokers=127.0.0.1:9092")
    parser.add_argument("--delivery-timeout", type=float, default=1.5,
                        help="seconds a record may take to be acknowledged before the publish fails (500)")
    parser.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to wait for the broker at start")
    parser.add_argument("--test-controls", action="store_true", help="serve /test/ (tests only)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args()
    try:
        settings = Settings.parse(args.metadata)
    except SettingsError as error:
        parser.error(f"--metadata {error}")
    forwarder = Forwarder(settings, args.delivery_timeout)
    try:
        forwarder.wait_for_broker(args.connect_timeout)
    except KafkaException as error:
        sys.exit(f"sidecar: no Kafka broker answers at {settings.brokers}: {error.args[0].str()}")
    Handler.state = State(args, forwarder)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    host, port = server.server_address[:2]
    print(f"listening on {host}:{port}", flush=True)
    print(f"sidecar: Dapr pub/sub {args.pubsub!r} on http://{host}:{port} -> Kafka {settings.brokers}",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        forwarder.close()


if __name__ == "__main__":
    main()
