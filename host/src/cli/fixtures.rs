//! `pakaura mapper test FILE DIR`: runs a component on a folder of fixtures and compares
//! the envelopes (or the error) with what each fixture expects.
//!
//! A fixture `NAME` is a set of files in `DIR`:
//!
//! - `NAME.json`: the mutation, in the outbox form `pakaura mapper run --mutation` reads;
//! - `NAME.settings` (optional): the mapper's `host.config` settings, `KEY=VALUE` lines
//!   (blank lines and lines starting with `#` are skipped);
//! - `NAME.expected.json`: the envelopes expected, a JSON array (or one JSON object a line);
//! - or `NAME.error`: the expected error, the text `mapper run` prints after `error: `.
//!
//! Envelopes are deterministic: their `id` derives from the mutation id, the mapper's
//! name and the event's index, their `time` is the mutation's `occurred_at`, their
//! `source` is `pakaura/api` unless `--source` says otherwise, and each fixture runs in a
//! fresh instance whose wall clock reads the mutation's `occurred_at`, with only its own
//! settings (no MAPPER_SETTINGS_FILE, no `MAPPER__<NAME>__<KEY>` variables).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

use super::diff::line_diff;
use crate::domain::Mutation;
use crate::events::build_envelope;
use crate::mapper::{
    LoadedMapper, MapperConfig, MapperRuntime, MapperSource, RuntimeOptions, Settings,
    SettingsTable, Violation,
};

/// Suffix of the expected envelopes of a fixture.
const EXPECTED: &str = ".expected.json";
/// Suffix of the expected error of a fixture.
const ERROR: &str = ".error";
/// Suffix of the settings of a fixture.
const SETTINGS: &str = ".settings";

/// One fixture's files.
#[derive(Debug)]
struct Fixture {
    name: String,
    dir: PathBuf,
}

impl Fixture {
    fn file(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}{suffix}", self.name))
    }
}

/// What a component did with a fixture's mutation, as text: the pretty-printed array
/// of envelopes, or the error.
#[derive(Debug, PartialEq)]
enum Outcome {
    Envelopes(Value),
    Error(String),
}

impl Outcome {
    fn render(&self) -> String {
        match self {
            Self::Envelopes(v) => pretty(v),
            Self::Error(e) => format!("error: {e}\n"),
        }
    }
}

/// The options of `mapper test`.
#[derive(Debug)]
pub(crate) struct TestOptions<'a> {
    /// The component: a `.wasm` path or `builtin:default`.
    pub(crate) file: &'a str,
    /// The folder of fixtures.
    pub(crate) dir: &'a Path,
    /// Write the actual outcome of every fixture as its expectation.
    pub(crate) bless: bool,
    /// The CloudEvents `source` of the envelopes.
    pub(crate) source: &'a str,
}

/// Runs every fixture of `opts.dir`, prints a PASS/FAIL line each (with a diff on a
/// mismatch) and a summary; returns whether all passed.
pub(crate) fn run(opts: &TestOptions<'_>, cfg: &MapperConfig) -> anyhow::Result<bool> {
    let fixtures = discover(opts.dir)?;
    let runtime = MapperRuntime::new(&RuntimeOptions::from_config(cfg))?;
    let limits = super::mapper::tool_limits(cfg);
    let mut mappers: BTreeMap<Settings, Result<LoadedMapper, String>> = BTreeMap::new();
    let mut out = std::io::stdout().lock();
    let (mut passed, mut failed, mut blessed) = (0, 0, 0);
    for fixture in &fixtures {
        let verdict = (|| -> Result<Verdict, String> {
            let mutation = read_mutation(&fixture.file(".json"))?;
            let settings = read_settings(&fixture.file(SETTINGS))?;
            let mapper = mappers.entry(settings.clone()).or_insert_with(|| {
                LoadedMapper::load(
                    &runtime,
                    MapperSource::parse(opts.file),
                    &limits,
                    &SettingsTable::default(),
                    &settings,
                )
                .map(|mut mapper| {
                    mapper.freeze_clock();
                    mapper
                })
                .map_err(|e| format!("{e:#}"))
            });
            let mapper = mapper.as_ref().map_err(Clone::clone)?;
            let (actual, violations) = outcome(mapper, &mutation, opts.source);
            if !violations.is_empty() {
                // Never blessed: an expectation that breaks the declared schema is a bug.
                let all: Vec<String> = violations.iter().map(ToString::to_string).collect();
                return Ok(Verdict::Broken(all.join("; ")));
            }
            if opts.bless {
                bless(fixture, &actual)
            } else {
                compare(fixture, &actual)
            }
        })()
        .unwrap_or_else(Verdict::Broken);
        match verdict {
            Verdict::Pass => {
                passed += 1;
                writeln!(out, "PASS {}", fixture.name)?;
            }
            Verdict::Blessed(file) => {
                blessed += 1;
                writeln!(out, "BLESS {} (wrote {})", fixture.name, file.display())?;
            }
            Verdict::Mismatch(report) => {
                failed += 1;
                writeln!(out, "FAIL {}", fixture.name)?;
                write!(out, "{report}")?;
            }
            Verdict::Broken(reason) => {
                failed += 1;
                writeln!(out, "FAIL {}: {reason}", fixture.name)?;
            }
        }
    }
    let mut summary = format!(
        "{} fixtures: {passed} passed, {failed} failed",
        fixtures.len()
    );
    if opts.bless {
        let _ = write!(summary, ", {blessed} blessed");
    }
    writeln!(out, "{summary}")?;
    out.flush()?;
    Ok(failed == 0)
}

enum Verdict {
    Pass,
    Blessed(PathBuf),
    Mismatch(String),
    /// The fixture could not be run: unreadable files, a component that does not load.
    Broken(String),
}

/// The fixtures of `dir`: every `NAME.json` but the `NAME.expected.json` files, by name.
fn discover(dir: &Path) -> anyhow::Result<Vec<Fixture>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading the fixtures folder {}", dir.display()))?;
    let mut fixtures = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.ends_with(EXPECTED) || !entry.path().is_file() {
            continue;
        }
        if let Some(name) = file_name.strip_suffix(".json") {
            fixtures.push(Fixture {
                name: name.to_owned(),
                dir: dir.to_path_buf(),
            });
        }
    }
    if fixtures.is_empty() {
        bail!(
            "no fixtures in {}: a fixture is a mutation NAME.json with NAME{EXPECTED} or NAME{ERROR} beside it",
            dir.display()
        );
    }
    fixtures.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(fixtures)
}

fn read_mutation(path: &Path) -> Result<Mutation, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a valid mutation: {e}", path.display()))
}

/// The settings file's `KEY=VALUE` lines; none when the file does not exist.
fn read_settings(path: &Path) -> Result<Settings, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut settings = Settings::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                settings.insert(key.trim().to_owned(), value.to_owned());
            }
            _ => {
                return Err(format!(
                    "{}:{}: expected KEY=VALUE, got `{line}`",
                    path.display(),
                    number + 1
                ));
            }
        }
    }
    Ok(settings)
}

/// What `mapper` yields for `mutation`, and the events that break their declared schema.
fn outcome(mapper: &LoadedMapper, mutation: &Mutation, source: &str) -> (Outcome, Vec<Violation>) {
    match mapper.map(mutation) {
        Ok(events) => (
            Outcome::Envelopes(Value::Array(
                events
                    .iter()
                    .map(|ev| build_envelope(mutation, ev, source, None).document())
                    .collect(),
            )),
            mapper.violations(&events),
        ),
        Err(e) => (Outcome::Error(e.to_string()), Vec::new()),
    }
}

/// What the fixture expects, read from its files.
fn expected(fixture: &Fixture) -> Result<Outcome, String> {
    let envelopes = read_optional(&fixture.file(EXPECTED))?;
    let error = read_optional(&fixture.file(ERROR))?;
    match (envelopes, error) {
        (Some(_), Some(_)) => Err(format!(
            "both {0}{EXPECTED} and {0}{ERROR} exist; keep one",
            fixture.name
        )),
        (None, None) => Err(format!(
            "no expectation: write {0}{EXPECTED} or {0}{ERROR}, or run with --bless",
            fixture.name
        )),
        (Some(text), None) => parse_envelopes(&text)
            .map(Outcome::Envelopes)
            .map_err(|e| format!("{}{EXPECTED}: {e}", fixture.name)),
        (None, Some(text)) => Ok(Outcome::Error(text.trim_end().to_owned())),
    }
}

/// A JSON array of envelopes, or JSON lines of envelopes (no line: none).
fn parse_envelopes(text: &str) -> Result<Value, String> {
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(text).map_err(|e| e.to_string());
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect::<Result<Vec<Value>, _>>()
        .map(Value::Array)
}

fn read_optional(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn compare(fixture: &Fixture, actual: &Outcome) -> Result<Verdict, String> {
    let expected = expected(fixture)?;
    if expected == *actual {
        return Ok(Verdict::Pass);
    }
    let diff = line_diff(&expected.render(), &actual.render(), "    ")
        .unwrap_or_else(|| "    (equal as text, different as JSON)\n".to_owned());
    Ok(Verdict::Mismatch(format!(
        "  - expected ({}), + actual:\n{diff}",
        match expected {
            Outcome::Envelopes(_) => fixture.file(EXPECTED),
            Outcome::Error(_) => fixture.file(ERROR),
        }
        .display()
    )))
}

/// Writes `actual` as the fixture's expectation (removing the other kind), unless it
/// already passes.
fn bless(fixture: &Fixture, actual: &Outcome) -> Result<Verdict, String> {
    if matches!(expected(fixture), Ok(e) if e == *actual) {
        return Ok(Verdict::Pass);
    }
    let (write, remove, text) = match actual {
        Outcome::Envelopes(v) => (fixture.file(EXPECTED), fixture.file(ERROR), pretty(v)),
        Outcome::Error(e) => (
            fixture.file(ERROR),
            fixture.file(EXPECTED),
            format!("{e}\n"),
        ),
    };
    std::fs::write(&write, text).map_err(|e| format!("{}: {e}", write.display()))?;
    match std::fs::remove_file(&remove) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", remove.display())),
    }
    Ok(Verdict::Blessed(write))
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("a JSON value serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_key_value_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.settings");
        std::fs::write(&path, "# comment\n\ntenant=acme\nurl=a=b\n").unwrap();
        let settings = read_settings(&path).unwrap();
        assert_eq!(settings.get("tenant").map(String::as_str), Some("acme"));
        assert_eq!(settings.get("url").map(String::as_str), Some("a=b"));
        std::fs::write(&path, "novalue\n").unwrap();
        assert!(read_settings(&path).unwrap_err().contains(":1:"));
        assert!(read_settings(&dir.path().join("none")).unwrap().is_empty());
    }

    #[test]
    fn envelopes_are_an_array_or_json_lines() {
        let lines = parse_envelopes("{\"a\":1}\n\n{\"b\":2}\n").unwrap();
        let array = parse_envelopes("[{\"a\":1},{\"b\":2}]").unwrap();
        assert_eq!(lines, array);
        assert_eq!(parse_envelopes("").unwrap(), Value::Array(vec![]));
        assert!(parse_envelopes("{").is_err());
    }
}
