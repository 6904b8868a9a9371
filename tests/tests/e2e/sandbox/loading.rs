//! Loading components and sets: what is refused at load and why, set order,
//! and hot reload that keeps the old set when the new one is invalid.

use std::path::Path;

use pakaura_host::mapper::{
    Limits, LoadError, LoadedMapper, MapFailure, MapperConfig, MapperRegistry, MapperSet,
    MapperSource, Refusal,
};
use pakaura_tests::guests;

use super::{bounded, load_with, mutation, runtime};

fn refusal(path: &str, settings: &[(&str, &str)]) -> (String, Refusal) {
    match load_with(path, settings, Limits::default()) {
        Err(LoadError::Refused { file, reason }) => (file, reason),
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(m) => panic!("expected a refusal, {} loaded", m.name()),
    }
}

#[test]
fn a_describe_that_traps_or_spins_refuses_the_component_naming_the_file() {
    let (file, reason) = refusal(guests::MISBEHAVE, &[("describe", "trap")]);
    assert_eq!(file, guests::MISBEHAVE);
    assert!(
        matches!(reason, Refusal::Describe(MapFailure::Trap(_))),
        "{reason}"
    );
    let (_, reason) = refusal(guests::MISBEHAVE, &[("describe", "loop")]);
    assert!(
        matches!(reason, Refusal::Describe(MapFailure::Deadline { .. })),
        "{reason}"
    );
}

#[test]
fn a_component_of_another_world_is_refused() {
    let (file, reason) = refusal(guests::WRONG_WORLD, &[]);
    assert_eq!(file, guests::WRONG_WORLD);
    let msg = reason.to_string();
    assert!(
        msg.contains("does not implement the world pakaura:events/mapper"),
        "{msg}"
    );
}

#[test]
fn a_component_built_against_another_major_version_is_refused_with_the_version() {
    let (_, reason) = refusal(guests::WRONG_VERSION, &[]);
    assert_eq!(
        reason.to_string(),
        "built against pakaura:events@2.0.0; this host supports pakaura:events@1.x"
    );
}

#[test]
fn files_that_are_not_components_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "not wasm").unwrap();
    let module = dir.path().join("module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    assert!(matches!(
        refusal(text.to_str().unwrap(), &[]).1,
        Refusal::NotWasm
    ));
    assert!(matches!(
        refusal(module.to_str().unwrap(), &[]).1,
        Refusal::CoreModule
    ));
    let missing = dir.path().join("missing.wasm");
    assert!(matches!(
        refusal(missing.to_str().unwrap(), &[]).1,
        Refusal::Read(_)
    ));
}

#[test]
fn declaring_a_topic_the_host_does_not_allow_refuses_the_component() {
    let (_, reason) = refusal(guests::MISBEHAVE, &[("topics", "task-events,secrets")]);
    assert!(
        matches!(&reason, Refusal::TopicNotAllowed { topic, .. } if topic == "secrets"),
        "{reason}"
    );
    let (_, reason) = refusal(guests::MISBEHAVE, &[("topics", "not a topic")]);
    assert!(matches!(reason, Refusal::InvalidTopic { .. }), "{reason}");
    let (_, reason) = refusal(guests::MISBEHAVE, &[("name", "")]);
    assert!(matches!(reason, Refusal::BadName(_)), "{reason}");
}

#[test]
fn a_set_concatenates_mapper_outputs_in_order() {
    let default = bounded(|| {
        let limits = Limits::default();
        let settings = Default::default();
        LoadedMapper::load(
            runtime(),
            MapperSource::BuiltinDefault,
            &limits,
            &settings,
            &Default::default(),
        )
    })
    .unwrap();
    let v2 = load_with(guests::V2, &[], Limits::default()).unwrap();
    let (alone_default, alone_v2) = bounded(move || {
        let m = mutation();
        let a = default.map(&m).unwrap();
        let b = v2.map(&m).unwrap();
        let set = MapperSet::new(vec![default, v2]).unwrap();
        assert_eq!(set.map(&m).unwrap(), [a.clone(), b.clone()].concat());
        (a, b)
    });
    assert!(!alone_default.is_empty() && !alone_v2.is_empty());
    assert!(alone_default.iter().all(|e| e.mapper == "default"));
    assert_ne!(alone_v2[0].mapper, "default");
    assert_eq!(alone_v2[0].index, 0, "indexes count within each mapper");
}

fn config(dir: &Path) -> MapperConfig {
    MapperConfig {
        mappers_dir: Some(dir.to_owned()),
        ..MapperConfig::default()
    }
}

fn names(registry: &MapperRegistry) -> Vec<String> {
    registry.list().into_iter().map(|m| m.name).collect()
}

#[test]
fn a_folder_loads_after_the_builtin_in_file_name_order_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(guests::V2, dir.path().join("20-v2.wasm")).unwrap();
    std::fs::copy(guests::MISBEHAVE, dir.path().join("10-misbehave.wasm")).unwrap();
    let cfg = config(dir.path());
    let registry = bounded(move || MapperRegistry::load_blocking(runtime().clone(), cfg)).unwrap();
    let listed = registry.list();
    assert_eq!(listed[0].file, "builtin:default");
    assert_eq!(listed[1].name, "misbehave");
    assert!(listed[2].file.ends_with("20-v2.wasm"));
    assert_eq!(listed[1].sha256.len(), 64);
    let before = names(&registry);

    // An invalid file refuses the whole new set; the old one keeps working.
    std::fs::copy(guests::WRONG_VERSION, dir.path().join("30-bad.wasm")).unwrap();
    let r = registry.clone();
    let err = bounded(move || r.reload_blocking("test")).unwrap_err();
    assert!(err.to_string().contains("30-bad.wasm"), "{err}");
    assert_eq!(names(&registry), before);
    let current = registry.current();
    assert!(bounded(move || current.map(&mutation())).is_ok());

    // Fixed: the reload goes through and lists the new set.
    std::fs::remove_file(dir.path().join("30-bad.wasm")).unwrap();
    std::fs::remove_file(dir.path().join("10-misbehave.wasm")).unwrap();
    let r = registry.clone();
    let report = bounded(move || r.reload_blocking("test")).unwrap();
    assert_eq!(report.mappers.len(), 2);
    assert_eq!(names(&registry).len(), 2);
}

#[test]
fn duplicate_names_in_a_set_are_refused_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(guests::V2, dir.path().join("a.wasm")).unwrap();
    std::fs::copy(guests::V2, dir.path().join("b.wasm")).unwrap();
    let cfg = config(dir.path());
    let err = bounded(move || MapperSet::load(runtime(), &cfg)).unwrap_err();
    let LoadError::DuplicateName { first, second, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        first.ends_with("a.wasm") && second.ends_with("b.wasm"),
        "{err}"
    );
}

#[test]
fn the_settings_file_reaches_mappers_by_file_stem_and_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(guests::MISBEHAVE, dir.path().join("misbehave.wasm")).unwrap();
    let settings = dir.path().join("settings.json");
    std::fs::write(
        &settings,
        r#"{"misbehave": {"name": "from-file", "mode": "err"}}"#,
    )
    .unwrap();
    let cfg = MapperConfig {
        mapper_builtin: false,
        mapper_settings_file: Some(settings),
        ..config(dir.path())
    };
    let set = bounded(move || MapperSet::load(runtime(), &cfg)).unwrap();
    assert_eq!(set.listing()[0].name, "from-file");
    let err = bounded(move || set.map(&mutation())).unwrap_err();
    assert_eq!(err.kind, MapFailure::Rejected("refused on purpose".into()));
}
