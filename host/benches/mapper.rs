//! What a mapper call costs: the built-in default mapper run as a sandboxed
//! WebAssembly component (fresh store, epoch deadline, memory cap, output
//! validation) versus the same catalogue compiled natively, plus envelope building.
//!
//! With `PAKAURA_V2_PYTHON_WASM` and `PAKAURA_V2_JS_WASM` set (the components
//! `guest-mappers/build-polyglot.sh` builds; `./scripts/test` caches them), the same
//! mapper written in Rust, Python and JavaScript is measured too, with a fresh instance
//! per call and with a reused one.
//!
//! The payload-schema check (`MAPPER_SCHEMAS`) is measured on its own (the default
//! mapper's events against its declared schemas) and as part of a call (off vs enforce).
//!
//! Run: `cargo bench -p pakaura-host --bench mapper`

use std::hint::black_box;

use clap::Parser;
use criterion::{Criterion, criterion_group, criterion_main};
use pakaura_host::domain::{Action, FieldChange, Mutation, Origin, Task};
use pakaura_host::events::envelope::build_envelope;
use pakaura_host::mapper::{
    Limits, LoadedMapper, MapperConfig, MapperRegistry, MapperRuntime, MapperSource,
    RuntimeOptions, Settings, SettingsTable,
};
use pakaura_mapper_default::{catalogue, types};

/// The host binary's allocator (`host/src/main.rs`), so that a call allocates here as it
/// does in the host.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    mappers: MapperConfig,
}

fn mutation(action: Action) -> Mutation {
    let at = chrono::DateTime::parse_from_rfc3339("2026-02-09T14:30:00Z")
        .unwrap()
        .to_utc();
    Mutation {
        id: uuid::Uuid::from_u128(1),
        action,
        task: Task {
            id: uuid::Uuid::from_u128(2),
            user_id: "alice".into(),
            title: "water the plants".into(),
            description: Some("all of them".into()),
            completed: false,
            due_date: Some(at),
            created_at: at,
            updated_at: at,
        },
        changes: if action == Action::Updated {
            vec![
                FieldChange::new("title", &"water plants", &"water the plants"),
                FieldChange::new(
                    "due_date",
                    &None::<String>,
                    &Some("2026-02-09T14:30:00.000Z".to_owned()),
                ),
            ]
        } else {
            Vec::new()
        },
        origin: Origin::Rest,
        correlation_id: "bench".into(),
        occurred_at: at,
    }
}

/// The same mutation in the native catalogue's types.
fn native(m: &Mutation) -> types::Mutation {
    let t = |d: &chrono::DateTime<chrono::Utc>| pakaura_host::domain::task::format_time(d);
    types::Mutation {
        id: m.id.to_string(),
        action: match m.action {
            Action::Created => types::Action::Created,
            Action::Updated => types::Action::Updated,
            Action::Completed => types::Action::Completed,
            Action::Uncompleted => types::Action::Uncompleted,
            Action::Deleted => types::Action::Deleted,
        },
        task: types::Task {
            id: m.task.id.to_string(),
            user_id: m.task.user_id.clone(),
            title: m.task.title.clone(),
            description: m.task.description.clone(),
            completed: m.task.completed,
            due_date: m.task.due_date.as_ref().map(t),
            created_at: t(&m.task.created_at),
            updated_at: t(&m.task.updated_at),
        },
        changes: m
            .changes
            .iter()
            .map(|c| types::FieldChange {
                field: c.field.clone(),
                old_value: c.old_value.clone(),
                new_value: c.new_value.clone(),
            })
            .collect(),
        origin: types::Origin::Rest,
        correlation_id: m.correlation_id.clone(),
        occurred_at: t(&m.occurred_at),
    }
}

/// The built-in mapper loaded with the given extra settings (`--name=value`).
fn load(flags: &[&str]) -> MapperRegistry {
    let argv = std::iter::once("bench").chain(flags.iter().copied());
    let config = Args::parse_from(argv).mappers;
    MapperRegistry::load_blocking(
        MapperRuntime::new(&RuntimeOptions::from_config(&config)).expect("engine"),
        config,
    )
    .expect("load builtin")
}

fn bench(c: &mut Criterion) {
    let registry = load(&[]);
    let set = registry.current();
    let reused_registry = load(&["--mapper-instance-reuse=1000000"]);
    let reused = reused_registry.current();

    for action in [Action::Created, Action::Updated] {
        let m = mutation(action);
        let n = native(&m);
        let mut group = c.benchmark_group(format!("default mapper, {}", action.as_str()));
        group.bench_function("wasm component (sandboxed, validated)", |b| {
            b.iter(|| set.map(black_box(&m)).expect("maps"));
        });
        group.bench_function(
            "wasm component, reused instance (MAPPER_INSTANCE_REUSE)",
            |b| {
                b.iter(|| reused.map(black_box(&m)).expect("maps"));
            },
        );
        group.bench_function("native catalogue", |b| {
            b.iter(|| catalogue::map_mutation(black_box(&n)).expect("maps"));
        });
        group.bench_function("native catalogue + JSON parse of data", |b| {
            b.iter(|| {
                let events = catalogue::map_mutation(black_box(&n)).expect("maps");
                events
                    .iter()
                    .map(|e| serde_json::from_str::<serde_json::Value>(&e.data).expect("json"))
                    .collect::<Vec<_>>()
            });
        });
        group.finish();
    }

    schemas(c);
    polyglot(c);

    let m = mutation(Action::Created);
    let events = set.map(&m).expect("maps");
    c.bench_function("envelope build (3 events)", |b| {
        b.iter(|| {
            events
                .iter()
                .map(|e| {
                    build_envelope(black_box(&m), e, "pakaura/api", None)
                        .body
                        .len()
                })
                .sum::<usize>()
        });
    });
}

/// What checking each event against its declared schema costs: alone, per mutation of the
/// default mapper (its events on a `created` and an `updated` mutation), and as part of a
/// call with `MAPPER_SCHEMAS=off` and `enforce` (a reused instance, so the guest's cost is
/// small beside it).
fn schemas(c: &mut Criterion) {
    let off = load(&["--mapper-schemas=off", "--mapper-instance-reuse=1000000"]);
    let enforce = load(&[
        "--mapper-schemas=enforce",
        "--mapper-instance-reuse=1000000",
    ]);
    let (off, enforce) = (off.current(), enforce.current());
    let checker = enforce.iter().next().expect("the built-in mapper");
    let mut group = c.benchmark_group("schema check (default mapper)");
    for action in [Action::Created, Action::Updated] {
        let m = mutation(action);
        let events = checker.map(&m).expect("maps");
        group.bench_function(
            format!("{}: check alone ({} events)", action.as_str(), events.len()),
            |b| b.iter(|| checker.violations(black_box(&events))),
        );
        group.bench_function(
            format!("{}: call, MAPPER_SCHEMAS=off", action.as_str()),
            |b| {
                b.iter(|| off.map(black_box(&m)).expect("maps"));
            },
        );
        group.bench_function(
            format!("{}: call, MAPPER_SCHEMAS=enforce", action.as_str()),
            |b| {
                b.iter(|| enforce.map(black_box(&m)).expect("maps"));
            },
        );
    }
    group.finish();
}

/// The v2 mapper in three languages, fresh and reused instances, on a `created`
/// mutation.
fn polyglot(c: &mut Criterion) {
    let files: Vec<(&str, Option<String>)> = vec![
        ("rust", Some(env!("PAKAURA_V2_MAPPER_WASM").to_owned())),
        ("python", std::env::var("PAKAURA_V2_PYTHON_WASM").ok()),
        ("js", std::env::var("PAKAURA_V2_JS_WASM").ok()),
    ];
    let m = mutation(Action::Created);
    let mut group = c.benchmark_group("v2 mapper, created");
    for (language, file) in files {
        let Some(file) = file else {
            eprintln!("SKIP v2 in {language}: its component is not set (see the module docs)");
            continue;
        };
        for reuse in [0, 1_000_000] {
            let reuse_flag = format!("--mapper-instance-reuse={reuse}");
            let config = Args::parse_from(["bench", reuse_flag.as_str()]).mappers;
            let runtime =
                MapperRuntime::new(&RuntimeOptions::from_config(&config)).expect("engine");
            let mapper = LoadedMapper::load(
                &runtime,
                MapperSource::File(file.clone().into()),
                &Limits::from_config(&config),
                &SettingsTable::default(),
                &Settings::new(),
            )
            .unwrap_or_else(|e| panic!("{file}: {e}"));
            let how = if reuse == 0 {
                "fresh instance"
            } else {
                "reused instance"
            };
            group.bench_function(format!("{language}, {how}"), |b| {
                b.iter(|| mapper.map(black_box(&m)).expect("maps"));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
