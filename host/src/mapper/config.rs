//! [`MapperConfig`]: the operator's settings of the mapper runtime (folder, built-in
//! mapper, limits, allowed topics, settings file), read from flags and the environment.

use std::path::PathBuf;
use std::time::Duration;

use super::schema::SchemaMode;
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
/// `MAPPER__<NAME>__<KEY>=value`; see [`super::SettingsTable`].
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

    /// Calls one mapper instance may serve before it is discarded; 0 (the default):
    /// a fresh instance per call. Reuse is faster but a mapper then keeps its memory
    /// from one mutation to the next (see the README); an instance that traps, misses
    /// its deadline or hits a limit is always discarded, and a reload discards all.
    #[arg(long, env = "MAPPER_INSTANCE_REUSE", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub mapper_instance_reuse: u32,

    /// Topics mappers may publish to, comma-separated Kafka topic names.
    #[arg(long, env = "ALLOWED_TOPICS", default_value = DEFAULT_ALLOWED_TOPICS,
          value_delimiter = ',', num_args = 1.., value_parser = parse_topic)]
    pub allowed_topics: Vec<TopicName>,

    /// JSON file of per-mapper settings: `{"<mapper name>": {"<key>": "<value>"}}`.
    #[arg(long, env = "MAPPER_SETTINGS_FILE")]
    pub mapper_settings_file: Option<PathBuf>,

    /// Folder where compiled mappers are cached, keyed by the component's content and
    /// the engine's configuration, so an unchanged mapper is not compiled again at
    /// start-up, reload or `mapper check`. Default: `$XDG_CACHE_HOME/pakaura/mappers`
    /// (else `~/.cache/pakaura/mappers`); `off` disables the cache. The folder must be the
    /// cache's own: its clean-up deletes whatever else it finds there. Keep it writable
    /// by the host only: its entries are loaded as code.
    #[arg(long, env = "MAPPER_CACHE_DIR", value_name = "DIR|off")]
    pub mapper_cache_dir: Option<String>,

    /// What to do with an event whose `data` breaks the JSON Schema its mapper declared
    /// for its type: `off` (no check), `warn` (log and count it, publish it) or `enforce`
    /// (fail the mapping: the mutation is held with the failing JSON path in the reason).
    #[arg(long, env = "MAPPER_SCHEMAS", default_value = "warn", value_enum)]
    pub mapper_schemas: SchemaMode,

    /// Where consumers reach this host's published schemas: the envelope's `dataschema` is
    /// `{SCHEMA_BASE_URL}/schemas/{mapper}/{version}/{event type}` for every event whose
    /// mapper declared a schema and gave no `data-schema` of its own. Set it to the
    /// gateway's public URL when the host sits behind one.
    #[arg(long, env = "SCHEMA_BASE_URL", default_value = DEFAULT_SCHEMA_BASE_URL,
          value_parser = parse_base_url)]
    pub schema_base_url: String,

    /// The Kafka bootstrap server the AsyncAPI document (`GET /asyncapi.json`,
    /// `pakaura asyncapi`) names for consumers, `host:port`.
    #[arg(long, env = "ASYNCAPI_SERVER", default_value = "localhost:9092")]
    pub asyncapi_server: String,
}

/// The default `SCHEMA_BASE_URL`: the host itself at the default `BIND_ADDR`.
pub const DEFAULT_SCHEMA_BASE_URL: &str = "http://127.0.0.1:8080";

impl MapperConfig {
    /// The compile cache's folder, if there is one.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        match self.mapper_cache_dir.as_deref().map(str::trim) {
            Some("off" | "") => None,
            Some(dir) => Some(PathBuf::from(dir)),
            None => std::env::var_os("XDG_CACHE_HOME")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                // A folder of its own: wasmtime's cache clean-up removes anything it does
                // not recognise, and `pakaura/` holds other tools' caches too.
                .map(|base| base.join("pakaura").join("mappers")),
        }
    }
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
            mapper_instance_reuse: 0,
            allowed_topics: DEFAULT_ALLOWED_TOPICS
                .split(',')
                .filter_map(|t| TopicName::parse(t).ok())
                .collect(),
            mapper_settings_file: None,
            mapper_cache_dir: None,
            mapper_schemas: SchemaMode::Warn,
            schema_base_url: DEFAULT_SCHEMA_BASE_URL.to_owned(),
            asyncapi_server: "localhost:9092".to_owned(),
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

fn parse_base_url(raw: &str) -> Result<String, String> {
    let url = raw.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("expected an http:// or https:// URL, got `{raw}`"))?;
    let valid = !rest.is_empty()
        && !rest.starts_with('/')
        && rest
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '?' | '#' | '"' | '<' | '>' | '\\'));
    if !valid {
        return Err(format!(
            "expected a URL with a host and no query or fragment, got `{raw}`"
        ));
    }
    Ok(url.to_owned())
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

#[cfg(test)]
mod tests;
