//! `pakaura mapper`: the platform teams' tool to scaffold a mapper project, check a
//! component against the contract, run it on a mutation and test it on a folder of
//! fixtures, without starting the service.
//!
//! `FILE` is a path to a `.wasm` component or `builtin:default` (the embedded
//! default mapper). Failures print one line on stderr and exit with status 1.
//!
//! `run` and `test` always check each event against the schema its mapper declared,
//! whatever `MAPPER_SCHEMAS` says, and show every violation (`run`: on stderr, exit
//! status 1; `test`: the fixture fails).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};

use super::fixtures::{self, TestOptions};
use super::scaffold::{Lang, scaffold};
use crate::domain::Mutation;
use crate::events::build_envelope;
use crate::mapper::Settings;
use crate::mapper::schema::compat::breaking_changes;
use crate::mapper::{
    Limits, LoadedMapper, MapperConfig, MapperListing, MapperRuntime, MapperSource, RuntimeOptions,
    SchemaMode, SettingsTable,
};
use crate::trace::TraceParent;

/// The mapper tool's commands.
#[derive(Debug, clap::Subcommand)]
pub enum MapperCommand {
    /// Scaffold a mapper project (the contract in `wit/`, a mapping, a unit test, a
    /// one-command build) and print how to build and test it.
    New {
        /// The mapper's name, also its package name: a-z, 0-9, `-` and `_`, starting
        /// with a letter, at most 64 characters.
        name: String,
        /// The language to write it in.
        #[arg(long, value_enum)]
        lang: Lang,
        /// The project's folder, which must not exist or be empty (default: ./NAME).
        #[arg(long, value_name = "PATH")]
        dir: Option<PathBuf>,
    },
    /// Load a component, call `describe` and check it against the contract;
    /// print its name, version, topics, file and SHA-256.
    Check {
        /// The component: a `.wasm` path or `builtin:default`.
        file: String,
        /// Print one JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Run a component on one mutation and print the envelopes it yields, one
    /// JSON object per line; an event whose data breaks its declared schema is shown
    /// on stderr and makes the exit status 1.
    Run {
        /// The component: a `.wasm` path or `builtin:default`.
        file: String,
        /// The mutation as JSON (the outbox form), from a file or `-` for stdin.
        #[arg(long, default_value = "-", value_name = "PATH|-")]
        mutation: String,
        /// A setting the mapper reads with `host.config`, as KEY=VALUE; repeatable.
        /// Overrides MAPPER_SETTINGS_FILE and MAPPER__<NAME>__<KEY> variables.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_setting)]
        config: Vec<(String, String)>,
        /// The CloudEvents `source` of the envelopes.
        #[arg(long, env = "EVENT_SOURCE", default_value = "pakaura/api")]
        source: String,
        /// The W3C `traceparent` of the causing request, to continue its trace.
        #[arg(long)]
        traceparent: Option<String>,
    },
    /// Compare two builds of a mapper as a reload would: every breaking change to its
    /// payload schemas and topics (a property removed or renamed, a type changed or
    /// narrowed, a property newly required, an enum narrowed, an event type or topic
    /// removed), one line each with its JSON path.
    ///
    /// Exit status: 0 compatible (or `--allow-breaking`), 1 breaking changes, 2 a
    /// component could not be loaded.
    Compat {
        /// The build consumers read today: a `.wasm` path or `builtin:default`.
        old: String,
        /// The build to ship.
        new: String,
        /// Report the breaking changes but exit 0: the break is intended (a new major
        /// version, as `allow_breaking` on a reload).
        #[arg(long)]
        allow_breaking: bool,
    },
    /// Run a candidate over the stored mutation history beside the set `serve` would
    /// run (MAPPERS_DIR, MAPPER_BUILTIN, the promotions recorded in the database) and compare, per mutation, event by event and
    /// field by field: identical, changed (type, topic, subject, data paths added,
    /// removed, changed), added, removed or failed. Never stores or publishes anything.
    ///
    /// Exit status: 0 identical, 1 differences, 2 failures (the candidate failed on a
    /// mutation, or it, the live set or the database could not be used).
    Diff(super::history::DiffArgs),
    /// Run a component on a folder of fixtures and compare what it yields with what
    /// each expects.
    ///
    /// A fixture NAME is NAME.json (the mutation), NAME.settings (optional KEY=VALUE
    /// lines) and NAME.expected.json (the envelopes) or NAME.error (the error). Prints
    /// a PASS or FAIL line each, with a line diff on a mismatch, then a summary; the
    /// exit status is 1 when any fails.
    Test {
        /// The component: a `.wasm` path or `builtin:default`.
        file: String,
        /// The folder of fixtures.
        dir: PathBuf,
        /// Write what the component yields as each fixture's expectation.
        #[arg(long)]
        bless: bool,
        /// The CloudEvents `source` of the envelopes (EVENT_SOURCE is not read, so
        /// fixtures do not depend on the environment).
        #[arg(long, default_value = "pakaura/api")]
        source: String,
    },
}

fn parse_setting(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got `{raw}`")),
    }
}

/// Runs `cmd` with the mapper settings `cfg`. Errors are meant to be printed as
/// one line (`{e:#}`) with exit status 1.
///
/// The work runs on its own thread, outside any async runtime, so this may be
/// called from anywhere.
pub fn execute(cmd: MapperCommand, cfg: &MapperConfig) -> anyhow::Result<ExitCode> {
    init_logging();
    std::thread::scope(|scope| {
        scope
            .spawn(move || match cmd {
                MapperCommand::New { name, lang, dir } => new(&name, lang, dir),
                MapperCommand::Check { file, json } => check(&file, json, cfg).map(success),
                MapperCommand::Diff(args) => super::history::diff(&args, cfg),
                MapperCommand::Compat {
                    old,
                    new,
                    allow_breaking,
                } => compat(&old, &new, allow_breaking, cfg),
                MapperCommand::Test {
                    file,
                    dir,
                    bless,
                    source,
                } => {
                    let opts = TestOptions {
                        file: &file,
                        dir: &dir,
                        bless,
                        source: &source,
                    };
                    fixtures::run(&opts, cfg).map(|all_passed| {
                        if all_passed {
                            ExitCode::SUCCESS
                        } else {
                            ExitCode::FAILURE
                        }
                    })
                }
                MapperCommand::Run {
                    file,
                    mutation,
                    config,
                    source,
                    traceparent,
                } => run(
                    &file,
                    &mutation,
                    config,
                    &source,
                    traceparent.as_deref(),
                    cfg,
                ),
            })
            .join()
            .map_err(|_| anyhow!("the mapper tool panicked"))?
    })
}

fn success((): ()) -> ExitCode {
    ExitCode::SUCCESS
}

fn new(name: &str, lang: Lang, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let done = scaffold(name, lang, &dir)?;
    let mut out = std::io::stdout().lock();
    let cd = shell_quote(&done.dir.display().to_string());
    writeln!(
        out,
        "created the {lang} mapper `{name}` in {} ({} files)",
        done.dir.display(),
        done.files.len()
    )?;
    if let Some(setup) = done.setup {
        writeln!(out, "once:  cd {cd} && {setup}")?;
    }
    writeln!(out, "build: cd {cd} && {}", done.build)?;
    writeln!(out, "test:  cd {cd} && {}", done.test)?;
    writeln!(out, "check: pakaura mapper check {cd}/{}", done.component)?;
    Ok(ExitCode::SUCCESS)
}

/// `s` as one shell word: as it is when it is plain, else in single quotes.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Shows the mapper's `host.log` lines on stderr (level from RUST_LOG, default info)
/// unless the caller already installed a subscriber.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .try_init();
}

/// The limits the tool loads components with: the configured ones, but with the schema
/// check left to the tool, which shows every violation rather than logging or failing on
/// the first.
pub(super) fn tool_limits(cfg: &MapperConfig) -> Limits {
    Limits {
        schemas: SchemaMode::Off,
        ..Limits::from_config(cfg)
    }
}

fn load(file: &str, cfg: &MapperConfig, overrides: &Settings) -> anyhow::Result<LoadedMapper> {
    let runtime = MapperRuntime::new(&RuntimeOptions::from_config(cfg))?;
    let settings = SettingsTable::load(cfg)?;
    let limits = tool_limits(cfg);
    Ok(LoadedMapper::load(
        &runtime,
        MapperSource::parse(file),
        &limits,
        &settings,
        overrides,
    )?)
}

fn check(file: &str, json: bool, cfg: &MapperConfig) -> anyhow::Result<()> {
    let mapper = load(file, cfg, &Settings::new())?;
    let listing = MapperListing::of(&mapper);
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &listing)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "ok: {} implements pakaura:events/mapper@1",
            listing.file
        )?;
        writeln!(out, "name:    {}", listing.name)?;
        writeln!(out, "version: {}", listing.version)?;
        writeln!(out, "topics:  {}", listing.topics.join(", "))?;
        if listing.event_types.is_empty() {
            writeln!(out, "schemas: none declared")?;
        } else {
            writeln!(out, "schemas: {}", listing.event_types.join(", "))?;
        }
        writeln!(out, "file:    {}", listing.file)?;
        writeln!(out, "sha256:  {}", listing.sha256)?;
    }
    Ok(())
}

fn compat(
    old: &str,
    new: &str,
    allow_breaking: bool,
    cfg: &MapperConfig,
) -> anyhow::Result<ExitCode> {
    let loaded = load(old, cfg, &Settings::new()).and_then(|before| {
        let after = load(new, cfg, &Settings::new())?;
        Ok((before, after))
    });
    let (before, after) = match loaded {
        Ok(both) => both,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let changes = breaking_changes(before.name(), &before.declared(), &after.declared());
    let mut out = std::io::stdout().lock();
    if before.name() != after.name() {
        writeln!(
            out,
            "note: the builds name themselves `{}` and `{}`; a reload compares mappers by name, so it would see a removal and an addition",
            before.name(),
            after.name()
        )?;
    }
    let compared = before.schemas().iter().count();
    if changes.is_empty() {
        writeln!(
            out,
            "compatible: {} {} -> {} ({compared} event type schema(s) compared)",
            before.name(),
            before.version(),
            after.version()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    for change in &changes {
        writeln!(out, "breaking: {change}")?;
    }
    writeln!(
        out,
        "{} breaking change(s) from {} {} to {}{}",
        changes.len(),
        before.name(),
        before.version(),
        after.version(),
        if allow_breaking {
            " (allowed: --allow-breaking)"
        } else {
            ""
        }
    )?;
    Ok(if allow_breaking {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run(
    file: &str,
    mutation_path: &str,
    config: Vec<(String, String)>,
    source: &str,
    traceparent: Option<&str>,
    cfg: &MapperConfig,
) -> anyhow::Result<ExitCode> {
    let traceparent = traceparent
        .map(|raw| {
            TraceParent::parse(raw)
                .ok_or_else(|| anyhow!("--traceparent `{raw}` is not a valid W3C traceparent"))
        })
        .transpose()?;
    let mutation = read_mutation(mutation_path)?;
    let mapper = load(file, cfg, &config.into_iter().collect())?;
    let events = mapper.map(&mutation)?;
    let mut out = std::io::stdout().lock();
    for ev in &events {
        let envelope = build_envelope(&mutation, ev, source, traceparent);
        out.write_all(envelope.body.as_bytes())?;
        writeln!(out)?;
    }
    out.flush()?;
    let violations = mapper.violations(&events);
    let mut err = std::io::stderr().lock();
    for violation in &violations {
        writeln!(err, "schema violation: {violation}")?;
    }
    Ok(if violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn read_mutation(path: &str) -> anyhow::Result<Mutation> {
    let (text, from) = if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the mutation from stdin")?;
        (text, "stdin".to_owned())
    } else {
        let text = std::fs::read_to_string(Path::new(path))
            .with_context(|| format!("reading the mutation file {path}"))?;
        (text, path.to_owned())
    };
    serde_json::from_str(&text)
        .with_context(|| format!("mutation JSON from {from} is not a valid mutation"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_key_value_pairs() {
        assert_eq!(
            parse_setting("mode=loop"),
            Ok(("mode".into(), "loop".into()))
        );
        assert_eq!(parse_setting("k=a=b"), Ok(("k".into(), "a=b".into())));
        assert!(parse_setting("novalue").is_err());
        assert!(parse_setting("=x").is_err());
    }
}
