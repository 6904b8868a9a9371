//! Errors at the mapper runtime's two boundaries: loading a set of components
//! ([`LoadError`], with a [`Refusal`] naming why one file was refused) and mapping a
//! mutation ([`MapError`], with a [`MapFailure`] naming the rule broken).

use std::path::PathBuf;
use std::time::Duration;

use super::schema::compat::BreakingChange;
use super::schema::{SchemaError, Violation};
use super::settings::SettingsError;

/// Why a set of mappers could not be loaded. Loading is all-or-nothing: the
/// previous set, if any, keeps running.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// One component was refused.
    #[error("mapper {file} refused: {reason}")]
    Refused {
        /// The file (or `builtin:default`).
        file: String,
        /// Why.
        reason: Refusal,
    },
    /// Two components of the set describe themselves with the same name.
    #[error("mapper name `{name}` is used by both {first} and {second}")]
    DuplicateName {
        /// The shared name.
        name: String,
        /// The first file with that name.
        first: String,
        /// The second file with that name.
        second: String,
    },
    /// `MAPPERS_DIR` cannot be listed.
    #[error("MAPPERS_DIR {dir}: {error}")]
    Dir {
        /// The folder.
        dir: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The set is empty: the built-in mapper is off and the folder has no `.wasm` file.
    #[error("no mappers to load: MAPPER_BUILTIN is false and MAPPERS_DIR holds no .wasm file")]
    Empty,
    /// The new set would break consumers of the live one (the compatibility gate); a
    /// reload with `allow_breaking` lets it through.
    #[error("{}", breaking_message(.0))]
    Breaking(Vec<BreakingChange>),
    /// Per-mapper settings could not be read.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The engine could not be created, or the loading task failed.
    #[error("mapper runtime: {0}")]
    Engine(String),
}

/// Why one component was refused at load.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The file cannot be read.
    #[error("cannot read the file: {0}")]
    Read(std::io::Error),
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly file (no `\\0asm` header)")]
    NotWasm,
    /// A core module was given where a component is needed.
    #[error(
        "a core WebAssembly module, not a component; build for wasm32-wasip2 or convert it with `wasm-tools component new`"
    )]
    CoreModule,
    /// The component does not validate or compile.
    #[error("not a valid component: {0}")]
    Invalid(String),
    /// The component was built against another major version of the contract.
    #[error("built against {found}; this host supports pakaura:events@1.x")]
    WrongVersion {
        /// The package and version the component names, e.g. `pakaura:events@2.0.0`.
        found: String,
    },
    /// The component imports an interface the host does not provide.
    #[error(
        "imports `{0}`, which this host does not provide (mappers may import pakaura:events/host and WASI 0.2)"
    )]
    UnknownImport(String),
    /// The component lacks an export of the `mapper` world.
    #[error("does not implement the world pakaura:events/mapper: no export `{0}`")]
    MissingExport(&'static str),
    /// An import or export has the wrong type.
    #[error("does not implement the world pakaura:events/mapper: {0}")]
    WrongSignature(String),
    /// `describe` failed (trap, deadline, memory cap).
    #[error("describe failed: {0}")]
    Describe(MapFailure),
    /// `event-schemas` failed (trap, deadline, memory cap) or has the wrong type.
    #[error("event-schemas failed: {0}")]
    EventSchemas(MapFailure),
    /// `event-schemas` declared a schema the host cannot use.
    #[error("{0}")]
    Schemas(SchemaError),
    /// `describe` returned a name the host cannot use.
    #[error("describe returned an invalid name: {0}")]
    BadName(String),
    /// `describe` returned a version the host cannot use.
    #[error("describe returned an invalid version: {0}")]
    BadVersion(String),
    /// `describe` declared a topic that is not a valid topic name.
    #[error("declares topic `{topic}`, which is not a valid topic name ({reason})")]
    InvalidTopic {
        /// The declared text.
        topic: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// `describe` declared a topic the host does not allow.
    #[error("declares topic `{topic}`, which is not in ALLOWED_TOPICS ({allowed})")]
    TopicNotAllowed {
        /// The declared topic.
        topic: String,
        /// The allowed topics, comma-separated.
        allowed: String,
    },
}

/// A mapper failed on one mutation. The mutation becomes a dead letter carrying
/// this error; other mutations and other calls are unaffected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("mapper `{mapper}` {kind}")]
pub struct MapError {
    /// The failing mapper's name.
    pub mapper: String,
    /// What went wrong.
    pub kind: MapFailure,
}

/// What went wrong in one mapper call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapFailure {
    /// The guest trapped (panic, `unreachable`, stack overflow, exit, ...).
    #[error("trapped: {0}")]
    Trap(String),
    /// The call ran (or asked to wait) past its CPU deadline.
    #[error("exceeded its deadline of {}", humantime::format_duration(*.limit))]
    Deadline {
        /// The configured deadline.
        limit: Duration,
    },
    /// The guest tried to grow its memory past the cap.
    #[error("exceeded its memory limit of {}", human_bytes(*.limit))]
    MemoryLimit {
        /// The configured cap in bytes.
        limit: u64,
    },
    /// The mapper returned `err` with this message.
    #[error("rejected the mutation: {0}")]
    Rejected(String),
    /// An event breaks an output rule; the message names the event index and rule.
    #[error("returned invalid output: {0}")]
    InvalidOutput(String),
    /// More events than `MAPPER_MAX_EVENTS`.
    #[error("returned {count} events; the limit is {max} (MAPPER_MAX_EVENTS)")]
    TooManyEvents {
        /// Events returned.
        count: usize,
        /// The configured maximum.
        max: usize,
    },
    /// One event's `data` exceeds `MAPPER_MAX_EVENT_BYTES`.
    #[error(
        "returned event {index} with {bytes} bytes of data; the limit is {} (MAPPER_MAX_EVENT_BYTES)",
        human_bytes(*.max as u64)
    )]
    EventTooLarge {
        /// The event's index in the mapper's output.
        index: usize,
        /// Its `data` length in bytes.
        bytes: usize,
        /// The configured maximum.
        max: usize,
    },
    /// An event's `data` breaks the schema its mapper declared for its type
    /// (`MAPPER_SCHEMAS=enforce`).
    #[error("returned {0}")]
    SchemaViolation(Violation),
    /// Every instance slot of the pool stayed taken for `waited`: the host is busy, the
    /// mapper did nothing wrong. Not the mutation's fault: the relay tries it again later.
    #[error("found no free instance slot within {} (the host is busy)", humantime::format_duration(*.waited))]
    Busy {
        /// How long the call waited for a slot.
        waited: Duration,
    },
}

impl MapFailure {
    /// A short stable code for metrics labels and dead-letter reasons.
    pub fn code(&self) -> &'static str {
        match self {
            MapFailure::Trap(_) => "trap",
            MapFailure::Deadline { .. } => "deadline",
            MapFailure::MemoryLimit { .. } => "memory_limit",
            MapFailure::Rejected(_) => "rejected",
            MapFailure::InvalidOutput(_) => "invalid_output",
            MapFailure::TooManyEvents { .. } => "too_many_events",
            MapFailure::EventTooLarge { .. } => "event_too_large",
            MapFailure::SchemaViolation(_) => "schema_violation",
            MapFailure::Busy { .. } => "busy",
        }
    }

    /// Whether the failure is the host's, not the mutation's or the mapper's: the same
    /// call may succeed later, so it must not park the mutation.
    pub fn is_transient(&self) -> bool {
        matches!(self, MapFailure::Busy { .. })
    }
}

fn breaking_message(changes: &[BreakingChange]) -> String {
    let all: Vec<String> = changes.iter().map(ToString::to_string).collect();
    format!(
        "the new set would break consumers ({} breaking change{}; reload with allow_breaking to accept them): {}",
        changes.len(),
        if changes.len() == 1 { "" } else { "s" },
        all.join("; ")
    )
}

/// A byte count for messages: `64 MiB`, `256 KiB` or `1000 bytes`.
fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_show_limits_in_readable_units() {
        assert_eq!(
            MapFailure::MemoryLimit { limit: 64 << 20 }.to_string(),
            "exceeded its memory limit of 64 MiB"
        );
        let too_large = MapFailure::EventTooLarge {
            index: 2,
            bytes: 300_000,
            max: 256 << 10,
        };
        assert_eq!(
            too_large.to_string(),
            "returned event 2 with 300000 bytes of data; the limit is 256 KiB (MAPPER_MAX_EVENT_BYTES)"
        );
        assert_eq!(human_bytes(1000), "1000 bytes");
    }
}
