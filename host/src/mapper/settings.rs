//! The operator's mapper settings: [`MapperConfig`] (limits, folder, topics) and
//! [`MapperSettings`], the per-mapper values a component reads with `host.config`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::topic::TopicName;

/// Default topics a mapper may publish to.
pub const DEFAULT_ALLOWED_TOPICS: &str = "task-events,task-updates,reminders";

/// How the host loads and confines mapper components.
///
/// Every field is a CLI flag and an environment variable; invalid values stop
/// start-up with an error naming the setting.
///
/// Per-mapper settings (read by a component with `host.config(key)`) come from
/// `MAPPER_SETTINGS_FILE` and from environment variables
/// `MAPPER__<NAME>__<KEY>=value`; see [`MapperSettings`].
#[derive(Debug, Clone, clap::Args)]
pub struct MapperConfig {
    /// Folder of mapper components: every `*.wasm` file in it is loaded, in
    /// lexicographic file-name order, after the built-in default mapper.
    #[arg(long, env = "MAPPERS_DIR")]
    pub mappers_dir: Option<PathBuf>,

    /// Load the built-in default mapper first (true/false); switch it off when a
    /// mapper in MAPPERS_DIR replaces it.
    #[arg(long, env = "MAPPER_BUILTIN", default_value = "true", value_name = "BOOL",
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub mapper_builtin: bool,

    /// CPU deadline of one mapper call (and of `describe` at load), e.g. 100ms, 1s.
    #[arg(long, env = "MAPPER_DEADLINE", default_value = "100ms", value_parser = parse_deadline)]
    pub mapper_deadline: Duration,

    /// Memory cap of one mapper instance, in bytes or with a unit (64MiB, 512KiB).
    #[arg(long, env = "MAPPER_MEMORY_LIMIT", default_value = "64MiB", value_parser = parse_memory)]
    pub mapper_memory_limit: u64,

    /// Most events one mapper may return for one mutation.
    #[arg(long, env = "MAPPER_MAX_EVENTS", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub mapper_max_events: u32,

    /// Largest `data` of one event, in bytes or with a unit (256KiB).
    #[arg(long, env = "MAPPER_MAX_EVENT_BYTES", default_value = "256KiB", value_parser = parse_event_bytes)]
    pub mapper_max_event_bytes: u64,

    /// Topics mappers may publish to, comma-separated Kafka topic names.
    #[arg(long, env = "ALLOWED_TOPICS", default_value = DEFAULT_ALLOWED_TOPICS,
          value_delimiter = ',', num_args = 1.., value_parser = parse_topic)]
    pub allowed_topics: Vec<TopicName>,

    /// JSON file of per-mapper settings: `{"<mapper name>": {"<key>": "<value>"}}`.
    #[arg(long, env = "MAPPER_SETTINGS_FILE")]
    pub mapper_settings_file: Option<PathBuf>,
}

impl Default for MapperConfig {
    /// The documented defaults, as if no flag or variable were set.
    fn default() -> Self {
        Self {
            mappers_dir: None,
            mapper_builtin: true,
            mapper_deadline: Duration::from_millis(100),
            mapper_memory_limit: 64 << 20,
            mapper_max_events: 64,
            mapper_max_event_bytes: 256 << 10,
            allowed_topics: DEFAULT_ALLOWED_TOPICS
                .split(',')
                .filter_map(|t| TopicName::parse(t).ok())
                .collect(),
            mapper_settings_file: None,
        }
    }
}

fn parse_deadline(raw: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(raw.trim())
        .map_err(|e| format!("expected a duration such as 100ms or 2s ({e})"))?;
    if d < Duration::from_millis(1) || d > Duration::from_secs(60) {
        return Err("must be between 1ms and 60s".to_owned());
    }
    Ok(d)
}

fn parse_memory(raw: &str) -> Result<u64, String> {
    let n = parse_bytes(raw)?;
    if !(1 << 20..=4 << 30).contains(&n) {
        return Err("must be between 1MiB and 4GiB".to_owned());
    }
    Ok(n)
}

fn parse_event_bytes(raw: &str) -> Result<u64, String> {
    let n = parse_bytes(raw)?;
    if !(1..=64 << 20).contains(&n) {
        return Err("must be between 1 byte and 64MiB".to_owned());
    }
    Ok(n)
}

fn parse_topic(raw: &str) -> Result<TopicName, String> {
    raw.parse::<TopicName>().map_err(|e| e.to_string())
}

/// Parses a byte count: plain digits, or digits followed by B, KB, KiB, MB, MiB,
/// GB or GiB (case-insensitive, optional space). KB/MB/GB are powers of 1000.
pub fn parse_bytes(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("expected a byte count such as 65536 or 64MiB, got `{raw}`"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit `{other}` (use B, KB, KiB, MB, MiB, GB or GiB)"
            ));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{raw}` is too large"))
}

/// A per-mapper settings source that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The settings file is missing or unreadable.
    #[error("MAPPER_SETTINGS_FILE {path}: {error}")]
    Read {
        /// The file named by the setting.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The settings file is not `{"<mapper>": {"<key>": "<string>"}}`.
    #[error(
        "MAPPER_SETTINGS_FILE {path}: expected {{\"<mapper>\": {{\"<key>\": \"<value>\"}}}} ({error})"
    )]
    Parse {
        /// The file named by the setting.
        path: PathBuf,
        /// What serde found wrong, with line and column.
        error: serde_json::Error,
    },
    /// A `MAPPER__...` variable does not have the form `MAPPER__<NAME>__<KEY>`.
    #[error("{var}: per-mapper settings are named MAPPER__<NAME>__<KEY>")]
    BadVariable {
        /// The variable's name.
        var: String,
    },
}

/// The values of one mapper, by key.
pub type Settings = BTreeMap<String, String>;

/// Per-mapper settings, keyed by mapper name, as read by `host.config(key)`.
///
/// Sources, later ones winning:
/// 1. `MAPPER_SETTINGS_FILE`: `{"<mapper name>": {"<key>": "<value>"}}`; names and
///    keys are used as written (names match case-insensitively).
/// 2. Environment variables `MAPPER__<NAME>__<KEY>=value`: NAME and KEY are
///    lower-cased and every `_` in them becomes `-`. So
///    `MAPPER__TASK_V2__SCHEMA_BASE=x` sets key `schema-base` of mapper `task-v2`.
///    A key containing `_` can only be set through the file.
/// 3. `pakaura mapper run --config key=value` (one mapper, CLI only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapperSettings {
    by_mapper: BTreeMap<String, Settings>,
}

impl MapperSettings {
    /// Reads the settings file named by `config` and the process environment.
    pub fn load(config: &MapperConfig) -> Result<Self, SettingsError> {
        let mut settings = match &config.mapper_settings_file {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        settings.apply_env(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )?;
        Ok(settings)
    }

    /// Reads a settings file.
    pub fn from_file(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|error| SettingsError::Read {
            path: path.to_owned(),
            error,
        })?;
        let raw: BTreeMap<String, Settings> =
            serde_json::from_str(&text).map_err(|error| SettingsError::Parse {
                path: path.to_owned(),
                error,
            })?;
        let mut settings = Self::default();
        for (name, values) in raw {
            settings
                .by_mapper
                .entry(name_key(&name))
                .or_default()
                .extend(values);
        }
        Ok(settings)
    }

    /// Applies `MAPPER__<NAME>__<KEY>` variables from `vars`; other variables are ignored.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), SettingsError> {
        for (var, value) in vars {
            let Some(rest) = var.strip_prefix("MAPPER__") else {
                continue;
            };
            let Some((name, key)) = rest.split_once("__") else {
                return Err(SettingsError::BadVariable { var });
            };
            if name.is_empty() || key.is_empty() {
                return Err(SettingsError::BadVariable { var });
            }
            self.set(&env_part(name), &env_part(key), value);
        }
        Ok(())
    }

    /// Sets one value, overriding any earlier one.
    pub fn set(&mut self, mapper: &str, key: &str, value: String) {
        self.by_mapper
            .entry(name_key(mapper))
            .or_default()
            .insert(key.to_owned(), value);
    }

    /// The settings of the mapper called `name` (empty if none).
    pub fn for_mapper(&self, name: &str) -> Arc<Settings> {
        Arc::new(
            self.by_mapper
                .get(&name_key(name))
                .cloned()
                .unwrap_or_default(),
        )
    }
}

/// Mapper names match case-insensitively.
fn name_key(name: &str) -> String {
    name.to_lowercase()
}

fn env_part(raw: &str) -> String {
    raw.to_lowercase().replace('_', "-")
}

#[cfg(test)]
mod tests;
