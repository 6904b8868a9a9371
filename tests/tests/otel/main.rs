//! Traces end to end: the spans of a mutation, from the request to each publish, reach
//! an OTLP receiver as one trace linked by parent ids, continuing the caller's.
//!
//! OpenTelemetry's tracer provider belongs to the process and is configured from the
//! environment, which a test must not change in its own process. So the traced host
//! runs in a child process, this test binary again running only [`traced_host`], with
//! the `OTEL_*` variables set, while the test itself plays the OTLP receiver.

mod receiver;

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use pakaura_tests::{Backend, on_both_databases, spawn_with, token_for};
use pakaura_tests::{DaprSink, Recorded, WAIT, dapr_options, sink_behaviour};
use receiver::{OtlpReceiver, Span};

/// The caller's trace and span ids, in the `traceparent` of the first request.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Where the child writes what it saw (the variable also tells it to run).
const REPORT: &str = "PAKAURA_TEST_TRACED_HOST_REPORT";
/// The child's database: `Sqlite` or `Postgres`.
const BACKEND: &str = "PAKAURA_TEST_TRACED_HOST_BACKEND";

/// What the child saw of one task's first publish.
#[derive(Debug, Serialize, Deserialize)]
struct Publish {
    /// The envelope's id.
    envelope: String,
    /// The `traceparent` header the sidecar received.
    header: String,
    /// The envelope's own `traceparent` (its CloudEvents extension).
    body: String,
}

/// The child's report: the task created with the caller's `traceparent`, and one
/// created without.
#[derive(Debug, Serialize, Deserialize)]
struct Report {
    continued: Publish,
    started: Publish,
}

on_both_databases!(a_mutation_is_one_trace_from_the_callers_request_to_each_publish);

async fn a_mutation_is_one_trace_from_the_callers_request_to_each_publish(backend: Backend) {
    let receiver = OtlpReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["traced_host", "--exact", "--include-ignored", "--nocapture"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test",
        )
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .env_remove("OTEL_SDK_DISABLED")
        .env("RUST_LOG", "info")
        .env(REPORT, &report_path)
        .env(BACKEND, format!("{backend:?}"))
        .output()
        .await
        .expect("run the traced host");
    assert!(
        child.status.success(),
        "the traced host failed:\n{}\n{}",
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
    let report: Report =
        serde_json::from_slice(&std::fs::read(&report_path).expect("the child's report")).unwrap();
    let spans = receiver.spans();

    // The caller's trace continues: request → outbox write → mapping and publish.
    let trace = Trace::of(&spans, CALLER_TRACE);
    let request = trace.one("POST /tasks");
    assert_eq!(request.parent_span_id, CALLER_SPAN, "{request:#?}");
    assert_eq!(request.kind, 2, "a server span");
    assert_eq!(request.attribute("http.response.status_code"), Some("201"));
    assert_eq!(request.resource["service.name"], "pakaura");
    assert_eq!(request.resource["deployment.environment.name"], "test");
    let write = trace.one("outbox write");
    assert_eq!(write.parent_span_id, request.span_id);
    trace.assert_relayed(write, &report.continued);
    // The request's log lines carry its trace id.
    let logs = String::from_utf8_lossy(&child.stderr);
    let finished = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"] == "request finished" && line["span"]["route"] == "/tasks")
        .expect("a `request finished` log line");
    assert_eq!(finished["span"]["trace_id"], CALLER_TRACE, "{finished}");

    // Without a caller's context the request starts the trace, and it goes on the same.
    let started = &report.started.body[3..35];
    assert_ne!(started, CALLER_TRACE);
    let trace = Trace::of(&spans, started);
    let request = trace.one("POST /tasks");
    assert_eq!(request.parent_span_id, "", "a root span");
    let write = trace.one("outbox write");
    assert_eq!(write.parent_span_id, request.span_id);
    trace.assert_relayed(write, &report.started);
}

/// The spans of one trace.
struct Trace<'a> {
    id: &'a str,
    spans: Vec<&'a Span>,
}

impl<'a> Trace<'a> {
    fn of(spans: &'a [Span], id: &'a str) -> Self {
        let spans: Vec<&Span> = spans.iter().filter(|s| s.trace_id == id).collect();
        assert!(!spans.is_empty(), "no span of trace {id}");
        Self { id, spans }
    }

    /// The one span called `name`.
    fn one(&self, name: &str) -> &'a Span {
        let found: Vec<&&Span> = self.spans.iter().filter(|s| s.name == name).collect();
        assert_eq!(
            found.len(),
            1,
            "spans `{name}` of trace {}: {:#?}",
            self.id,
            self.spans
        );
        found[0]
    }

    fn children_of(&self, parent: &Span) -> Vec<&'a Span> {
        self.spans
            .iter()
            .copied()
            .filter(|s| s.parent_span_id == parent.span_id)
            .collect()
    }

    /// The relay's spans hang from the outbox write, whose context the row stored: the
    /// mapping (with a span per mapper) and the publish, whose own context is the
    /// header the sidecar received; the envelope keeps the trace in its body.
    fn assert_relayed(&self, write: &Span, publish: &Publish) {
        let children = self.children_of(write);
        let mapping = children
            .iter()
            .find(|s| s.name == "map mutation")
            .unwrap_or_else(|| panic!("no mapping span under the write: {children:#?}"));
        let mappers = self.children_of(mapping);
        assert!(
            !mappers.is_empty() && mappers.iter().all(|s| s.name.starts_with("map ")),
            "one span per mapper: {mappers:#?}"
        );
        let sent = children
            .iter()
            .find(|s| s.attribute("messaging.message.id") == Some(publish.envelope.as_str()))
            .unwrap_or_else(|| panic!("no publish span under the write: {children:#?}"));
        assert!(sent.name.starts_with("publish "), "{sent:#?}");
        assert_eq!(sent.kind, 4, "a producer span");
        assert_eq!(sent.attribute("http.response.status_code"), Some("204"));
        assert_eq!(
            publish.header,
            format!("00-{}-{}-01", self.id, sent.span_id),
            "the sidecar continues the publish span"
        );
        assert_eq!(
            &publish.body[3..35],
            self.id,
            "the envelope keeps the trace"
        );
    }
}

/// The traced host: run by the test above in a child process, with `OTEL_*` set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of {sqlite,postgres}::a_mutation_is_one_trace_from_the_callers_request_to_each_publish"]
async fn traced_host() {
    let Some(report_path) = std::env::var_os(REPORT) else {
        return;
    };
    pakaura_host::telemetry::init_logging();
    assert!(
        pakaura_host::telemetry::traces::enabled(),
        "OTEL_EXPORTER_OTLP_ENDPOINT turns traces on"
    );
    let sink = DaprSink::start(sink_behaviour()).await;
    let backend = match std::env::var(BACKEND).as_deref() {
        Ok("Postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let app = spawn_with(backend, dapr_options(&sink)).await;
    let create = |traceparent: Option<String>| {
        let mut request = app
            .client
            .post(app.url("/tasks"))
            .bearer_auth(token_for("alice"))
            .json(&json!({"title": "water plants"}));
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 201);
            let task: serde_json::Value = response.json().await.unwrap();
            task["id"].as_str().unwrap().to_owned()
        }
    };
    let continued = create(Some(format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))).await;
    let started = create(None).await;
    let continued = first_publish(&sink, &continued).await;
    let started = first_publish(&sink, &started).await;
    app.stop().await;
    pakaura_host::telemetry::traces::shutdown();
    write_report(&report_path, &Report { continued, started });
}

/// The first accepted publish of `task`.
async fn first_publish(sink: &DaprSink, task: &str) -> Publish {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let published = sink.published();
        if let Some(r) = published.iter().find(|r| r.body["subject"] == task) {
            return Publish {
                envelope: r.id().to_owned(),
                header: header(r),
                body: r.body["traceparent"].as_str().unwrap().to_owned(),
            };
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no publish of {task}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn header(r: &Recorded) -> String {
    r.headers["traceparent"].to_str().unwrap().to_owned()
}

fn write_report(path: impl AsRef<Path>, report: &Report) {
    std::fs::write(path, serde_json::to_vec(report).unwrap()).unwrap();
}
