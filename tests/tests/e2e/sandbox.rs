//! The mapper sandbox against real hostile components: every way the `misbehave`
//! guest breaks the rules ends in the right typed failure, in bounded time, and
//! never harms the host or the next call.
//!
//! These tests call the mapper runtime directly (no HTTP, no database).

mod clock;
mod loading;

use std::collections::BTreeMap;
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use pakaura_host::domain::{Action, Mutation, Origin, Task};
use pakaura_host::mapper::{
    Limits, LoadError, LoadedMapper, MapError, MapFailure, MapperRuntime, MapperSource,
    RuntimeOptions, SettingsTable,
};
use pakaura_tests::guests;
use uuid::Uuid;

/// One runtime (engine + epoch ticker) for the whole test binary, as in the host.
pub(crate) fn runtime() -> &'static MapperRuntime {
    static RUNTIME: OnceLock<MapperRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        MapperRuntime::new(&RuntimeOptions::default()).expect("the mapper runtime starts")
    })
}

/// Runs `f` on its own thread and fails the test if it takes longer than a
/// generous bound: a hang is a failure, but timings are never asserted.
pub(crate) fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the mapper call returned (no hang, no panic)")
}

/// Loads a component with settings given as overrides (seen by `describe` too).
pub(crate) fn load_with(
    path: &str,
    settings: &[(&str, &str)],
    limits: Limits,
) -> Result<LoadedMapper, LoadError> {
    let overrides: BTreeMap<String, String> = settings
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let source = MapperSource::File(path.into());
    bounded(move || {
        LoadedMapper::load(
            runtime(),
            source,
            &limits,
            &SettingsTable::default(),
            &overrides,
        )
    })
}

/// The misbehave guest in `mode`, with the default limits.
fn misbehave(mode: &str) -> LoadedMapper {
    load_with(guests::MISBEHAVE, &[("mode", mode)], Limits::default())
        .expect("the misbehave guest loads")
}

/// A fixed mutation: a created task.
pub(crate) fn mutation() -> Mutation {
    let at = Utc.with_ymd_and_hms(2026, 2, 9, 14, 30, 0).unwrap();
    Mutation {
        id: Uuid::from_u128(0x5a4d_b0c5),
        action: Action::Created,
        task: Task {
            id: Uuid::from_u128(0x7a5c),
            user_id: "user-1".into(),
            title: "Buy milk".into(),
            description: None,
            completed: false,
            due_date: None,
            created_at: at,
            updated_at: at,
        },
        changes: vec![],
        origin: Origin::Rest,
        correlation_id: "9876fedc-ba98-4654-b210-0123456789ab".into(),
        occurred_at: at,
    }
}

/// Maps the fixed mutation with `mapper` on its own thread, bounded.
pub(crate) fn map(mapper: LoadedMapper) -> (LoadedMapper, Result<usize, MapError>) {
    bounded(move || {
        let result = mapper.map(&mutation()).map(|events| events.len());
        (mapper, result)
    })
}

fn failure(mode: &str) -> MapFailure {
    let (_, result) = map(misbehave(mode));
    let err = result.expect_err(mode);
    assert_eq!(err.mapper, "misbehave");
    err.kind
}

#[test]
fn a_well_behaved_call_returns_its_event() {
    assert_eq!(map(misbehave("ok")).1, Ok(1));
}

#[test]
fn a_spinning_mapper_hits_its_deadline() {
    assert_eq!(
        failure("loop"),
        MapFailure::Deadline {
            limit: Duration::from_millis(100)
        }
    );
}

#[test]
fn the_deadline_is_configurable() {
    let limits = Limits {
        deadline: Duration::from_millis(20),
        ..Limits::default()
    };
    let mapper = load_with(guests::MISBEHAVE, &[("mode", "loop")], limits).unwrap();
    let err = map(mapper).1.unwrap_err();
    assert_eq!(
        err.kind,
        MapFailure::Deadline {
            limit: Duration::from_millis(20)
        }
    );
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    // A generous deadline, so that on a busy machine only the memory cap can end
    // the call (touching 64 MiB takes a while when the cores are shared).
    let limits = Limits {
        deadline: Duration::from_secs(10),
        ..Limits::default()
    };
    let mapper = load_with(guests::MISBEHAVE, &[("mode", "membomb")], limits).unwrap();
    let err = map(mapper).1.unwrap_err();
    assert_eq!(err.kind, MapFailure::MemoryLimit { limit: 64 << 20 });
}

#[test]
fn a_panic_is_a_trap_carrying_the_panic_message() {
    let MapFailure::Trap(reason) = failure("panic") else {
        panic!("expected a trap")
    };
    assert!(
        reason.contains("map-mutation panics on purpose"),
        "{reason}"
    );
}

#[test]
fn an_err_is_a_rejection_with_the_mappers_message() {
    assert_eq!(
        failure("err"),
        MapFailure::Rejected("refused on purpose".into())
    );
}

#[test]
fn output_rules_are_enforced_and_named() {
    for (mode, expected) in [
        (
            "undeclared-topic",
            "event 0: topic `reminders` was not declared by the mapper",
        ),
        (
            "disallowed-topic",
            "event 0: topic `secrets` is not in ALLOWED_TOPICS",
        ),
        ("bad-json", "event 0: data is not valid JSON"),
        (
            "bad-extension",
            "event 0: extension name `Bad-Name` must be 1 to 20 characters",
        ),
        (
            "shadow-extension",
            "event 0: extension `id` would shadow the CloudEvents attribute",
        ),
        ("empty-type", "event 0: event-type must not be empty"),
    ] {
        match failure(mode) {
            MapFailure::InvalidOutput(msg) => assert!(msg.starts_with(expected), "{mode}: {msg}"),
            other => panic!("{mode}: expected invalid output, got {other:?}"),
        }
    }
}

#[test]
fn too_many_events_are_refused() {
    assert_eq!(
        failure("too-many-events"),
        MapFailure::TooManyEvents {
            count: 10_000,
            max: 64
        }
    );
}

#[test]
fn an_oversized_event_is_refused() {
    assert_eq!(
        failure("oversized"),
        MapFailure::EventTooLarge {
            index: 0,
            bytes: 4 << 20,
            max: 256 << 10
        }
    );
}

#[test]
fn the_sandbox_denies_every_escape() {
    // A live listener, so a refused connection can only come from the sandbox.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mapper = load_with(
        guests::MISBEHAVE,
        &[("mode", "escape"), ("port", port.as_str())],
        Limits::default(),
    )
    .expect("the misbehave guest loads");
    let events = bounded(move || mapper.map(&mutation())).expect("the escape probe reports");
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "no connection reached the host's listener"
    );
    let report = &events[0].data;
    for probe in ["fs_read", "fs_list", "tcp"] {
        let outcome = report[probe].as_str().unwrap_or_default();
        assert!(outcome.starts_with("denied"), "{probe}: {outcome}");
    }
    assert_eq!(report["env_vars"], 0);
    assert_eq!(report["args"], 0);
}

#[test]
fn a_failing_mapper_does_not_poison_the_next_call() {
    // The memory bomb gets a deadline it cannot reach, so a busy machine does not
    // turn its second failure into a deadline.
    let patient = Limits {
        deadline: Duration::from_secs(10),
        ..Limits::default()
    };
    for (mode, limits) in [
        ("loop", Limits::default()),
        ("membomb", patient),
        ("panic", Limits::default()),
    ] {
        let mapper = load_with(guests::MISBEHAVE, &[("mode", mode)], limits).unwrap();
        let (mapper, first) = map(mapper);
        assert!(first.is_err(), "{mode}");
        // The same loaded mapper fails the same way again, no worse...
        let (_, again) = map(mapper);
        assert_eq!(
            again.unwrap_err().kind.code(),
            first.unwrap_err().kind.code()
        );
        // ...and a healthy mapper on the same runtime is unaffected.
        assert_eq!(map(misbehave("ok")).1, Ok(1), "after {mode}");
    }
}

#[test]
fn settings_reach_the_guest_through_host_config() {
    let mapper = load_with(guests::MISBEHAVE, &[("name", "renamed")], Limits::default()).unwrap();
    assert_eq!(mapper.name(), "renamed");
    assert_eq!(mapper.version(), "0.0.1");
}

/// A log sink shared between the subscriber and the test.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn host_log_lines_reach_the_host_log_tagged_with_the_mapper() {
    let mapper = load_with(guests::V2, &[], Limits::default()).expect("v2 loads");
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || mapper.map(&mutation())).expect("v2 maps");
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["fields"]["mapper"] == "v2")
        .unwrap_or_else(|| panic!("no line tagged mapper=v2 in {logs}"));
    assert_eq!(line["level"], "DEBUG");
    assert!(!line["fields"]["message"].as_str().unwrap().is_empty());
}

/// The `calls` the counter guest reports for the fixed mutation, titled `title`; the
/// error if it failed.
fn counted(mapper: &LoadedMapper, title: &str) -> Result<u64, MapFailure> {
    let mut m = mutation();
    m.task.title = title.to_owned();
    mapper
        .map(&m)
        .map(|events| events[0].data["calls"].as_u64().unwrap())
        .map_err(|e| e.kind)
}

#[test]
fn without_reuse_every_call_gets_a_fresh_instance() {
    let mapper = misbehave("counter");
    let calls = bounded(move || {
        (0..3)
            .map(|_| counted(&mapper, "x").unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(calls, [1, 1, 1]);
}

#[test]
fn a_reused_instance_serves_its_calls_and_is_replaced_after_a_trap_or_its_quota() {
    let limits = Limits {
        instance_reuse: 3,
        ..Limits::default()
    };
    let mapper = load_with(guests::MISBEHAVE, &[("mode", "counter")], limits).unwrap();
    let seen = bounded(move || {
        vec![
            counted(&mapper, "a"),
            counted(&mapper, "b"),
            // The trap discards the instance, whatever quota it had left; the call is
            // tried once more on a fresh instance, which traps too.
            counted(&mapper, "trap"),
            counted(&mapper, "c"),
            counted(&mapper, "d"),
            counted(&mapper, "e"),
            // Three calls served: the next one gets a fresh instance.
            counted(&mapper, "f"),
        ]
    });
    assert_eq!(seen[..2], [Ok(1), Ok(2)]);
    assert!(
        matches!(&seen[2], Err(MapFailure::Trap(reason)) if reason.contains("after 1 calls")),
        "the failure counted is the fresh instance's: {:?}",
        seen[2]
    );
    assert_eq!(seen[3..], [Ok(1), Ok(2), Ok(3), Ok(1)]);
}

#[test]
fn a_reused_instance_is_discarded_after_any_failure_and_the_call_retried_fresh() {
    let limits = Limits {
        instance_reuse: 10,
        ..Limits::default()
    };
    let mapper = load_with(guests::MISBEHAVE, &[("mode", "counter")], limits).unwrap();
    let seen = bounded(move || {
        vec![
            counted(&mapper, "a"),
            // An `err` on the kept instance: retried on a fresh one, which rejects too;
            // neither is kept.
            counted(&mapper, "reject"),
            counted(&mapper, "b"),
            counted(&mapper, "c"),
            // Fails only on an instance that served calls before: the fresh retry
            // succeeds, and the failure never counts.
            counted(&mapper, "stale"),
            counted(&mapper, "d"),
        ]
    });
    assert_eq!(seen[0], Ok(1));
    assert!(
        matches!(&seen[1], Err(MapFailure::Rejected(reason)) if reason.contains("after 1 calls")),
        "{:?}",
        seen[1]
    );
    assert_eq!(
        seen[2..4],
        [Ok(1), Ok(2)],
        "a fresh instance after the rejection"
    );
    assert_eq!(
        seen[4],
        Ok(1),
        "the stale instance was replaced and the call went through"
    );
    assert_eq!(seen[5], Ok(2));
}

#[test]
fn a_guest_passing_too_much_data_to_the_host_traps() {
    // Small output caps make small hostcall fuel (see `Limits::hostcall_fuel`).
    let small = Limits {
        max_events: 1,
        max_event_bytes: 1024,
        ..Limits::default()
    };
    let mapper = load_with(guests::MISBEHAVE, &[("mode", "huge-log")], small).unwrap();
    let kind = map(mapper).1.unwrap_err().kind;
    assert!(
        matches!(&kind, MapFailure::Trap(reason) if reason.contains("fuel allocated for hostcalls has been exhausted")),
        "{kind:?}"
    );
    // A line within the hostcall fuel is logged (and cut to the log's own limit).
    let mapper = load_with(
        guests::MISBEHAVE,
        &[("mode", "huge-log"), ("bytes", "65536")],
        Limits::default(),
    )
    .unwrap();
    assert_eq!(map(mapper).1, Ok(1));
}

#[test]
fn a_chatty_mapper_has_its_log_lines_dropped_past_its_budget() {
    let mapper = misbehave("chatty");
    let mapper = bounded(move || {
        for _ in 0..10 {
            assert_eq!(mapper.map(&mutation()).map(|e| e.len()), Ok(1));
        }
        mapper
    });
    let stats = pakaura_host::mapper::MapperListing::of(&mapper).stats;
    assert_eq!(stats.calls, 10);
    // 2,000 lines against a burst of 1,000 and 100 a second: most of the rest dropped.
    assert!(stats.log_lines_dropped >= 800, "{stats:?}");
}
