//! The `v2` mapper in Python and JavaScript yields exactly the envelopes of the Rust
//! `v2` mapper, for every mutation of `guest-mappers/fixtures/mutations/`, with the
//! default and a custom `schema-base-url`, errors included, and declares the same payload
//! schemas.
//!
//! The Python and JavaScript components are built outside cargo (their toolchains come
//! from the registries): `scripts/test` builds them with `guest-mappers/build-polyglot.sh`
//! and sets `PAKAURA_V2_PYTHON_WASM` and `PAKAURA_V2_JS_WASM`. Unset, the test says SKIP.
//! The compile cache is `compiled/` beside the first of them (each component takes some
//! 20 CPU-seconds to compile, so only the first run after a change pays for it).

use std::path::{Path, PathBuf};

use pakaura_host::domain::Mutation;
use pakaura_host::events::build_envelope;
use pakaura_host::mapper::{
    Limits, LoadedMapper, MapperRuntime, MapperSource, RuntimeOptions, Settings, SettingsTable,
};
use pakaura_tests::guests;
use serde_json::Value;

const SOURCE: &str = "pakaura/api";
const CUSTOM_BASE: &str = "https://schemas.example.com/events//";

/// Every mutation fixture, by file name; each must be one the host could hand a mapper.
fn mutations() -> Vec<(String, Mutation)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-mappers/fixtures/mutations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let mutation = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name} is not a mutation the host accepts: {e}"));
            (name, mutation)
        })
        .collect()
}

/// The schemas `path` declares, by event type, as JSON values.
fn declared(runtime: &MapperRuntime, path: &str) -> Vec<(String, Value)> {
    let mapper = LoadedMapper::load(
        runtime,
        MapperSource::File(path.into()),
        &Limits::default(),
        &SettingsTable::default(),
        &Settings::new(),
    )
    .unwrap_or_else(|e| panic!("{path}: {e}"));
    mapper
        .schemas()
        .iter()
        .map(|(t, s)| (t.to_owned(), (*s.document).clone()))
        .collect()
}

/// What `path` yields for every mutation, with `settings`: envelopes or the error.
fn outcomes(
    runtime: &MapperRuntime,
    path: &str,
    settings: &Settings,
    mutations: &[(String, Mutation)],
) -> Vec<(String, Value)> {
    let mapper = LoadedMapper::load(
        runtime,
        MapperSource::File(path.into()),
        &Limits::default(),
        &SettingsTable::default(),
        settings,
    )
    .unwrap_or_else(|e| panic!("{path}: {e}"));
    mutations
        .iter()
        .map(|(name, m)| {
            let outcome = match mapper.map(m) {
                Ok(events) => Value::Array(
                    events
                        .iter()
                        .map(|ev| build_envelope(m, ev, SOURCE, None).document())
                        .collect(),
                ),
                Err(e) => Value::String(format!("error: {e}")),
            };
            (name.clone(), outcome)
        })
        .collect()
}

#[test]
fn python_and_javascript_v2_yield_the_envelopes_of_rust_v2() {
    let ports: Vec<(&str, String)> = [("python", "PAKAURA_V2_PYTHON_WASM"), ("js", "PAKAURA_V2_JS_WASM")]
        .into_iter()
        .filter_map(|(lang, var)| match std::env::var(var) {
            Ok(path) if !path.is_empty() => Some((lang, path)),
            _ => {
                eprintln!("SKIP: {var} is not set: the {lang} v2 mapper is not compared (scripts/test builds it)");
                None
            }
        })
        .collect();
    if ports.is_empty() {
        return;
    }
    let cache_dir = Path::new(&ports[0].1)
        .parent()
        .map(|dir| dir.join("compiled"));
    let runtime = MapperRuntime::new(&RuntimeOptions {
        cache_dir,
        ..RuntimeOptions::default()
    })
    .expect("the mapper runtime starts");
    let mutations = mutations();
    assert!(
        mutations.len() >= 10,
        "the fixtures are there: {}",
        mutations.len()
    );
    // The same payload schemas, declared through `event-schemas` in each language.
    let rust_schemas = declared(&runtime, guests::V2);
    assert_eq!(rust_schemas.len(), 5);
    for (lang, path) in &ports {
        assert_eq!(
            declared(&runtime, path),
            rust_schemas,
            "{lang} v2 declares other schemas than Rust v2"
        );
    }
    let custom: Settings = [("schema-base-url".to_owned(), CUSTOM_BASE.to_owned())].into();
    for settings in [Settings::new(), custom] {
        let rust = outcomes(&runtime, guests::V2, &settings, &mutations);
        for (lang, path) in &ports {
            let port = outcomes(&runtime, path, &settings, &mutations);
            for ((name, expected), (_, actual)) in rust.iter().zip(&port) {
                assert_eq!(
                    actual, expected,
                    "{lang} v2 differs from Rust v2 on {name} with settings {settings:?}"
                );
            }
            assert_eq!(port.len(), rust.len());
        }
    }
}
