//! `pakaura mapper diff`: a candidate component run over the stored mutation history
//! beside the set `serve` would run on that database (`MAPPER_BUILTIN`, `MAPPERS_DIR`, the
//! promotions recorded in it), compared event by event and field by field; nothing is
//! stored or published.
//!
//! Exit status: 0 identical, 1 differences, 2 failures (the candidate failed on a
//! mutation, or the component, the live set or the database could not be used).

use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::candidate::Pair;
use crate::candidate::compare::{EventResult, FieldChangeKind, Sample, by_mapper};
use crate::candidate::history::{self, DiffReport, Progress};
use crate::mapper::{
    LoadedMapper, MapperConfig, MapperRuntime, MapperSet, MapperSource, RuntimeOptions, Settings,
    SettingsTable,
};
use crate::store::{Db, HistoryWindow, ReleasedComponent};

/// Arguments of `pakaura mapper diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The candidate: a `.wasm` path (or `builtin:default`).
    pub candidate: String,
    /// The database whose mutation history to replay (`sqlite:PATH` or
    /// `postgres://…`); only read.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database: String,
    /// Only mutations committed at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub since: Option<DateTime<Utc>>,
    /// Only mutations committed before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<DateTime<Utc>>,
    /// Only this task's mutations.
    #[arg(long, value_name = "ID")]
    pub task: Option<Uuid>,
    /// Only the last N mutations (of the window).
    #[arg(long, value_name = "N")]
    pub last: Option<i64>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Mutations shown per kind of difference.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub samples: usize,
}

/// Runs `pakaura mapper diff`; errors print one line and exit 2.
pub fn diff(args: &DiffArgs, cfg: &MapperConfig) -> anyhow::Result<ExitCode> {
    match run(args, cfg) {
        Ok(report) => {
            let mut out = std::io::stdout().lock();
            if args.json {
                serde_json::to_writer(&mut out, &report)?;
                writeln!(out)?;
            } else {
                out.write_all(render(&report).as_bytes())?;
            }
            Ok(ExitCode::from(report.exit_status()))
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(2))
        }
    }
}

fn run(args: &DiffArgs, cfg: &MapperConfig) -> anyhow::Result<DiffReport> {
    let window = HistoryWindow {
        since: args.since,
        until: args.until,
        task_id: args.task,
        last: args.last,
    };
    window.check().map_err(anyhow::Error::msg)?;
    if let Some(path) = args.database.strip_prefix("sqlite:")
        && !std::path::Path::new(path.split('?').next().unwrap_or(path)).exists()
    {
        anyhow::bail!("--database {}: no such file", args.database);
    }
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    tokio.block_on(async {
        let db = Db::connect(&args.database)
            .await
            .context("connecting to --database")?;
        let released = db
            .released_components()
            .await
            .context("reading the mapper releases (is --database a Pakaura database?)")?;
        let pair = tokio::task::spawn_blocking({
            let cfg = cfg.clone();
            let candidate = args.candidate.clone();
            move || pair(&cfg, &candidate, released)
        })
        .await??;
        let progress = Arc::new(Progress::default());
        let watcher = tokio::spawn(watch(progress.clone()));
        let report = history::run(&db, Arc::new(pair), &window, args.samples, &progress).await;
        watcher.abort();
        db.close().await;
        report.context("reading the mutation history")
    })
}

/// The live set as `serve` would run it on this database (the configured set with the
/// promoted mappers in place) beside the candidate.
fn pair(
    cfg: &MapperConfig,
    candidate: &str,
    released: Vec<ReleasedComponent>,
) -> anyhow::Result<Pair> {
    let runtime = MapperRuntime::new(&RuntimeOptions::from_config(cfg))?;
    let mut live = MapperSet::load(&runtime, cfg)
        .context("loading the live set (MAPPERS_DIR, MAPPER_BUILTIN)")?;
    let settings = SettingsTable::load(cfg)?;
    let limits = crate::mapper::Limits::from_config(cfg);
    let load = |source| LoadedMapper::load(&runtime, source, &limits, &settings, &Settings::new());
    for c in released {
        let Some(bytes) = c.component else { continue };
        let label = c.file.unwrap_or_else(|| format!("{}.wasm", c.mapper));
        let promoted = load(MapperSource::Stored {
            label: label.clone(),
            bytes: Arc::from(bytes),
        })
        .with_context(|| format!("loading the promoted mapper {} ({label})", c.mapper))?;
        live = live.replacing(promoted);
    }
    let candidate = load(MapperSource::parse(candidate))?;
    Ok(Pair::new(&live, &candidate))
}

/// Reports progress on stderr every few seconds of a long run, and cancels it on
/// Ctrl-C (the report then covers what was compared).
async fn watch(progress: Arc<Progress>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => eprintln!("compared {} of {} mutations (Ctrl-C stops and reports)", progress.done(), progress.total()),
            signal = tokio::signal::ctrl_c() => {
                if signal.is_ok() {
                    eprintln!("stopping after the mutations in hand");
                    progress.cancel();
                }
                return;
            }
        }
    }
}

/// The report as lines for a terminal.
fn render(report: &DiffReport) -> String {
    let t = &report.tally;
    let mut out = String::new();
    let _ = writeln!(out, "candidate: {}", report.candidate.describe());
    match (&report.first_mutation_at, &report.last_mutation_at) {
        (Some(first), Some(last)) => {
            let _ = writeln!(
                out,
                "history:   {} mutations, {first} … {last}",
                t.mutations
            );
        }
        _ => {
            let _ = writeln!(out, "history:   no mutations in the window");
        }
    }
    let _ = writeln!(
        out,
        "mutations: {} identical, {} changed, {} failed (the live set failed on {})",
        t.identical, t.changed, t.failed, t.live_failed
    );
    let _ = writeln!(
        out,
        "events:    {} same, {} changed, {} added, {} removed",
        t.events.same, t.events.changed, t.events.added, t.events.removed
    );
    for (mapper, c) in by_mapper(&t.by_type) {
        if c.differing() > 0 {
            let _ = writeln!(
                out,
                "  {mapper}: {} same, {} changed, {} added, {} removed",
                c.same, c.changed, c.added, c.removed
            );
        }
    }
    for ty in t.by_type.iter().filter(|ty| ty.counts.differing() > 0) {
        let c = &ty.counts;
        let _ = writeln!(
            out,
            "    {}: {} same, {} changed, {} added, {} removed",
            ty.event_type, c.same, c.changed, c.added, c.removed
        );
    }
    if !t.paths.is_empty() {
        let _ = writeln!(out, "fields changed:");
        for p in t.paths.iter().take(20) {
            let sign = match p.change {
                FieldChangeKind::Added => '+',
                FieldChangeKind::Removed => '-',
                FieldChangeKind::Changed => '~',
            };
            let _ = writeln!(
                out,
                "  {sign} {} {} {}: {} event(s)",
                p.mapper, p.event_type, p.path, p.count
            );
        }
    }
    for f in &t.failures {
        let _ = writeln!(
            out,
            "failed {}×: {}{}",
            f.count,
            f.mapper
                .as_deref()
                .map(|m| format!("{m}: "))
                .unwrap_or_default(),
            f.reason
        );
    }
    let kinds = [
        ("changed", &report.samples.changed),
        ("added", &report.samples.added),
        ("removed", &report.samples.removed),
        ("failed", &report.samples.failed),
    ];
    for (kind, samples) in kinds {
        for sample in samples {
            render_sample(&mut out, kind, sample);
        }
    }
    if report.cancelled {
        let _ = writeln!(out, "cancelled before the end of the window");
    }
    let verdict = match report.exit_status() {
        0 => "identical",
        1 => "differences",
        _ => "failures",
    };
    let _ = writeln!(out, "result: {verdict}");
    out
}

fn render_sample(out: &mut String, kind: &str, s: &Sample) {
    let _ = writeln!(
        out,
        "\n{kind}: mutation {} ({}, task {}, {})",
        s.mutation_id, s.action, s.task_id, s.at
    );
    if let Some(f) = &s.comparison.candidate_failure {
        let _ = writeln!(
            out,
            "  candidate failed: {}{}",
            f.mapper
                .as_deref()
                .map(|m| format!("{m}: "))
                .unwrap_or_default(),
            f.reason
        );
    }
    for e in s
        .comparison
        .events
        .iter()
        .filter(|e| e.result != EventResult::Same)
    {
        let _ = writeln!(
            out,
            "  {} {}[{}] {} → {}",
            e.result.as_str(),
            e.mapper,
            e.index,
            e.event_type,
            e.topic
        );
        for c in &e.changes {
            let show = |v: &Option<serde_json::Value>| {
                v.as_ref().map(ToString::to_string).unwrap_or_default()
            };
            let line = match c.change {
                FieldChangeKind::Added => format!("    + {}: {}", c.path, show(&c.after)),
                FieldChangeKind::Removed => format!("    - {}: {}", c.path, show(&c.before)),
                FieldChangeKind::Changed => {
                    format!("    ~ {}: {} → {}", c.path, show(&c.before), show(&c.after))
                }
            };
            let _ = writeln!(out, "{line}");
        }
    }
}
