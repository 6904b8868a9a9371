//! Unit tests of the per-mapper settings.

use std::io::Write;

use super::*;

#[test]
fn env_variables_map_to_lower_case_dashed_names_and_keys() {
    let mut s = SettingsTable::default();
    s.apply_env([
        (
            "MAPPER__TASK_V2__SCHEMA_BASE".to_owned(),
            "https://x".to_owned(),
        ),
        ("MAPPERS_DIR".to_owned(), "/ignored".to_owned()),
        ("HOME".to_owned(), "/ignored".to_owned()),
    ])
    .unwrap();
    assert_eq!(
        s.for_mapper("task-v2")
            .get("schema-base")
            .map(String::as_str),
        Some("https://x")
    );
    assert_eq!(s.for_mapper("Task-V2").len(), 1);
    assert!(s.for_mapper("default").is_empty());

    let err = s
        .apply_env([("MAPPER__ONLYNAME".to_owned(), "x".to_owned())])
        .unwrap_err();
    assert!(err.to_string().contains("MAPPER__ONLYNAME"));
}

#[test]
fn file_settings_load_and_env_wins() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(file, r#"{{"Misbehave": {{"mode": "ok", "topic_x": "t"}}}}"#).unwrap();
    let mut s = SettingsTable::from_file(file.path()).unwrap();
    s.apply_env([("MAPPER__MISBEHAVE__MODE".to_owned(), "loop".to_owned())])
        .unwrap();
    let m = s.for_mapper("misbehave");
    assert_eq!(m.get("mode").map(String::as_str), Some("loop"));
    assert_eq!(m.get("topic_x").map(String::as_str), Some("t"));
}

#[test]
fn bad_file_names_the_setting_and_position() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(file, r#"{{"m": {{"k": 1}}}}"#).unwrap();
    let err = SettingsTable::from_file(file.path())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("MAPPER_SETTINGS_FILE"), "{err}");
    assert!(err.contains("line 1"), "{err}");
    let missing = SettingsTable::from_file(Path::new("/nonexistent/settings.json"));
    assert!(matches!(missing, Err(SettingsError::Read { .. })));
}
