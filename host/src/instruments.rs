//! The metrics the host exports on `/metrics`: every name in one place, with its help
//! text, its unit and, for histograms, buckets chosen for what it measures, so that the
//! series of several replicas aggregate (`histogram_quantile` over summed buckets).
//!
//! Counters and gauges whose label values are known in advance are registered at
//! zero, so that `rate()` and `increase()` see the first event and alerts on a
//! missing series are not needed. Nothing here reads the database: the backlog gauges
//! are refreshed by the relay's housekeeping stage, never by a scrape.

use metrics::Unit;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

pub const HTTP_REQUESTS: &str = "pakaura_http_requests_total";
pub const HTTP_DURATION: &str = "pakaura_http_request_duration_seconds";

pub const OUTBOX_PENDING: &str = "pakaura_outbox_pending";
pub const ENVELOPES_PENDING: &str = "pakaura_envelopes_pending";
pub const RELAY_LAG: &str = "pakaura_relay_lag_seconds";
pub const DEAD_LETTERS_OPEN: &str = "pakaura_dead_letters_open";
pub const HOLDS: &str = "pakaura_relay_holds";
pub const HELD_EVENTS: &str = "pakaura_relay_held_events";
pub const OLDEST_HOLD: &str = "pakaura_relay_oldest_hold_seconds";
pub const DEAD_LETTERS: &str = "pakaura_dead_letters_total";
pub const ENVELOPES_BUILT: &str = "pakaura_envelopes_built_total";
pub const RELAY_UP: &str = "pakaura_relay_up";
pub const RELAY_RESTARTS: &str = "pakaura_relay_restarts_total";

pub const SIDECAR_READY: &str = "pakaura_sidecar_ready";
pub const PUBLISHES: &str = "pakaura_publish_total";
pub const PUBLISH_DURATION: &str = "pakaura_publish_duration_seconds";
pub const PUBLISH_IN_FLIGHT: &str = "pakaura_publish_in_flight";
pub const PUBLISH_WAITING_FOR_STORE: &str = "pakaura_publish_waiting_for_store";
pub const PUBLISH_STORE_PAUSE: &str = "pakaura_publish_store_pause_seconds";

pub const MAPPERS_LOADED: &str = "pakaura_mappers_loaded";
pub const MAPPER_CALLS: &str = "pakaura_mapper_calls_total";
pub const MAPPER_FAILURES: &str = "pakaura_mapper_failures_total";
pub const MAPPER_CALL_DURATION: &str = "pakaura_mapper_call_duration_seconds";
pub const MAPPER_CHAIN_DURATION: &str = "pakaura_mapper_chain_duration_seconds";
pub const MAPPER_INSTANCES: &str = "pakaura_mapper_instances";
pub const MAPPER_RELOADS: &str = "pakaura_mapper_reloads_total";
pub const MAPPER_SCHEMA_VIOLATIONS: &str = "pakaura_mapper_schema_violations_total";
pub const SHADOW_MUTATIONS: &str = "pakaura_shadow_mutations_total";
pub const SHADOW_EVENTS: &str = "pakaura_shadow_events_total";
pub const SHADOW_DROPPED: &str = "pakaura_shadow_dropped_total";
pub const MAPPER_RELEASES: &str = "pakaura_mapper_releases_total";

pub const STORE_DURATION: &str = "pakaura_store_duration_seconds";
pub const SQLITE_WRITER_IDLE: &str = "pakaura_sqlite_writer_idle_seconds";

pub const JWKS_REFRESHES: &str = "pakaura_jwks_refreshes_total";
pub const JWKS_KEYS: &str = "pakaura_jwks_keys";
pub const JWKS_LAST_SUCCESS: &str = "pakaura_jwks_last_success_timestamp_seconds";

/// Request latency: from a fast cached read to a slow database.
const HTTP_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// One publish through the sidecar: a local hop to Kafka acks, up to the publish
/// timeout (2s by default).
const PUBLISH_BUCKETS: &[f64] = &[
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// One mapper call: tens of microseconds (Rust, reused instance) to the 100 ms deadline.
const MAPPER_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 1.0,
];

/// One of the relay's store calls or a group commit: a fraction of a millisecond alone,
/// up to the store's timeout (`DATABASE_TIMEOUT`, 5 s by default) waiting for a busy
/// writer.
const STORE_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0,
];

/// A pause of the publish stage for its store: a store transaction's overrun, from a
/// few milliseconds to a database stalled for minutes.
const PAUSE_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The recorder builder with every histogram's buckets set.
pub fn builder() -> Result<PrometheusBuilder, BuildError> {
    [
        (HTTP_DURATION, HTTP_BUCKETS),
        (PUBLISH_DURATION, PUBLISH_BUCKETS),
        (MAPPER_CALL_DURATION, MAPPER_BUCKETS),
        (MAPPER_CHAIN_DURATION, MAPPER_BUCKETS),
        (STORE_DURATION, STORE_BUCKETS),
        (SQLITE_WRITER_IDLE, STORE_BUCKETS),
        (PUBLISH_STORE_PAUSE, PAUSE_BUCKETS),
    ]
    .into_iter()
    .try_fold(PrometheusBuilder::new(), |builder, (name, buckets)| {
        builder.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
    })
}

/// Describes every metric to the installed recorder and registers those with known
/// label values at zero.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};

    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route (the matched pattern) and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by method, route and status."
    );
    describe_gauge!(
        OUTBOX_PENDING,
        "Committed mutations not yet mapped (refreshed every few seconds)."
    );
    describe_gauge!(
        ENVELOPES_PENDING,
        "Envelopes mapped but not yet published, including those waiting for a retry."
    );
    describe_gauge!(
        RELAY_LAG,
        Unit::Seconds,
        "Age of the oldest unpublished mutation or envelope; 0 when nothing waits."
    );
    describe_gauge!(
        DEAD_LETTERS_OPEN,
        "Dead letters not yet replayed (GET /admin/dead-letters)."
    );
    describe_gauge!(
        HOLDS,
        "Tasks held on a topic (RELAY_ON_POISON=hold): their later events there wait for the operator (GET /admin/holds)."
    );
    describe_gauge!(
        HELD_EVENTS,
        "Pending envelopes waiting behind a hold, not counted in the lag."
    );
    describe_gauge!(
        OLDEST_HOLD,
        Unit::Seconds,
        "Age of the oldest hold; 0 when no task is held."
    );
    describe_counter!(
        DEAD_LETTERS,
        "Mutations (kind=mapping) or envelopes (kind=publish) parked as dead letters."
    );
    describe_counter!(
        ENVELOPES_BUILT,
        "CloudEvents envelopes built by the map stage."
    );
    describe_gauge!(RELAY_UP, "1 while the relay's stages are running, else 0.");
    describe_counter!(
        RELAY_RESTARTS,
        "Times the supervisor restarted the relay after a panic or a stalled stage."
    );
    describe_gauge!(
        SIDECAR_READY,
        "1 when the Dapr sidecar answered its outbound health check, else 0."
    );
    describe_counter!(
        PUBLISHES,
        "Publish attempts by topic and outcome: published, retry (will be tried again), refused (Dapr answered 4xx: dead letter), expired (failed past RELAY_MAX_ATTEMPTS or RELAY_MAX_AGE: dead letter)."
    );
    describe_histogram!(
        PUBLISH_DURATION,
        Unit::Seconds,
        "Time of one publish request to the sidecar, by topic."
    );
    describe_gauge!(PUBLISH_IN_FLIGHT, "Publish requests in flight now.");
    describe_gauge!(
        PUBLISH_WAITING_FOR_STORE,
        "1 while the publish stage takes no new work because publish outcomes wait to be stored faster than the database stores them, else 0."
    );
    describe_histogram!(
        PUBLISH_STORE_PAUSE,
        Unit::Seconds,
        "Each pause of the publish stage for its store (see pakaura_publish_waiting_for_store), recorded when it ends: the rate of its sum is the share of time publishing waited for the database."
    );
    describe_gauge!(MAPPERS_LOADED, "Mappers in the live set.");
    describe_counter!(MAPPER_CALLS, "map-mutation calls, by mapper.");
    describe_counter!(
        MAPPER_FAILURES,
        "Failed map-mutation calls, by mapper and kind (trap, deadline, memory_limit, rejected, invalid_output, too_many_events, event_too_large, schema_violation)."
    );
    describe_histogram!(
        MAPPER_CALL_DURATION,
        Unit::Seconds,
        "Time of one map-mutation call including instantiation and validation, by mapper."
    );
    describe_histogram!(
        MAPPER_CHAIN_DURATION,
        Unit::Seconds,
        "Time to map one mutation through the whole chain of mappers."
    );
    describe_gauge!(
        MAPPER_INSTANCES,
        "Mapper instances by mapper and state: busy (in a call) or idle (kept for reuse, MAPPER_INSTANCE_REUSE)."
    );
    describe_counter!(
        MAPPER_RELOADS,
        "Mapper set reloads by outcome (applied, refused)."
    );
    describe_counter!(
        SHADOW_MUTATIONS,
        "Mutations a shadow run compared, by result (identical, changed, failed: the candidate failed on it)."
    );
    describe_counter!(
        SHADOW_EVENTS,
        "Events a shadow run compared, by result (same, changed, added: only the candidate emits it, removed: only the live set does)."
    );
    describe_counter!(
        SHADOW_DROPPED,
        "Mutations a shadow run dropped because it was behind or over its CPU budget (publishing never waits for it)."
    );
    describe_counter!(
        MAPPER_RELEASES,
        "Promotions and rollbacks of mappers this replica applied, by action (promote, rollback)."
    );
    describe_counter!(
        MAPPER_SCHEMA_VIOLATIONS,
        "Events whose data broke their declared schema, by mapper, event type and MAPPER_SCHEMAS mode (warn: published anyway; enforce: the mutation held)."
    );
    describe_histogram!(
        STORE_DURATION,
        Unit::Seconds,
        "Time of a store call on the write path, from the call to its answer, including any wait for a connection or, on SQLite, for the one writer; by call (create_tasks: one group commit of task creations; claim_mutations, record_mappings: the map stage; claim_tasks, load_envelopes, record_deliveries: the publish stage)."
    );
    describe_histogram!(
        SQLITE_WRITER_IDLE,
        Unit::Seconds,
        "SQLite only: each stretch the one writer connection sat unused, recorded when a write next takes it. One minus the rate of its sum is the share of time a write held the writer."
    );
    // The JWKS series exist only with JWT_JWKS_URL (registered at zero by auth::Jwks), so
    // a host without an identity provider never looks like one that cannot reach it.
    describe_counter!(
        JWKS_REFRESHES,
        "Fetches of the identity provider's JWK set by outcome (success, failure) and trigger (startup, periodic, unknown_kid)."
    );
    describe_gauge!(JWKS_KEYS, "Signing keys of the identity provider held now.");
    describe_gauge!(
        JWKS_LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of the last successful JWK set fetch; 0 until the first."
    );

    for kind in ["mapping", "publish"] {
        metrics::counter!(DEAD_LETTERS, "kind" => kind).absolute(0);
    }
    for outcome in ["applied", "refused"] {
        metrics::counter!(MAPPER_RELOADS, "outcome" => outcome).absolute(0);
    }
    metrics::counter!(SHADOW_DROPPED).absolute(0);
    metrics::gauge!(PUBLISH_WAITING_FOR_STORE).set(0.0);
    metrics::counter!(RELAY_RESTARTS).absolute(0);
    metrics::counter!(ENVELOPES_BUILT).absolute(0);
}
