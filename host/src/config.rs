//! Typed configuration of `pakaura serve`, read from flags and the environment.
//!
//! Every setting has a flag and an environment variable; secrets are never shown
//! in `--help` values or `Debug` output.

use std::net::SocketAddr;
use std::time::Duration;

use crate::auth::{JwtConfig, MIN_SECRET_BYTES};
use crate::mapper::MapperConfig;

/// A secret value: usable, never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: &str) -> Self {
        Self(value.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

/// Checks a `JWT_SECRET`: HS256 wants at least 256 bits of key.
pub fn check_jwt_secret(secret: &Secret) -> Result<(), ConfigError> {
    if secret.expose().len() < MIN_SECRET_BYTES {
        return Err(ConfigError {
            setting: "JWT_SECRET",
            message: format!(
                "must be at least {MIN_SECRET_BYTES} bytes (HS256 needs a 256-bit key)"
            ),
        });
    }
    Ok(())
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A setting that is invalid; names the setting, never echoes a secret.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw.trim()).map_err(|e| format!("{e} (use e.g. 500ms, 2s, 7d)"))
}

/// A parser of durations between `min` and `max` (every duration is bounded: no zero,
/// nothing that overflows time arithmetic).
fn duration_between(
    min: Duration,
    max: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |raw| {
        let d = parse_duration(raw)?;
        if d < min || d > max {
            return Err(format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ));
        }
        Ok(d)
    }
}

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

fn publish_timeout(raw: &str) -> Result<Duration, String> {
    duration_between(10 * MS, 5 * MINUTE)(raw)
}

fn poll_interval(raw: &str) -> Result<Duration, String> {
    duration_between(MS, HOUR)(raw)
}

fn retry_delay(raw: &str) -> Result<Duration, String> {
    duration_between(MS, DAY)(raw)
}

fn lease(raw: &str) -> Result<Duration, String> {
    duration_between(SECOND, HOUR)(raw)
}

fn long_period(raw: &str) -> Result<Duration, String> {
    duration_between(MINUTE, 3650 * DAY)(raw)
}

fn sync_interval(raw: &str) -> Result<Duration, String> {
    duration_between(SECOND, HOUR)(raw)
}

fn history_period(raw: &str) -> Result<Duration, String> {
    duration_between(Duration::ZERO, 3650 * DAY)(raw)
}

fn vacuum_interval(raw: &str) -> Result<Duration, String> {
    let d = parse_duration(raw)?;
    if !d.is_zero() && !(SECOND..=HOUR).contains(&d) {
        return Err("must be between 1s and 1h, or 0 (never)".to_owned());
    }
    Ok(d)
}

fn max_age(raw: &str) -> Result<Duration, String> {
    duration_between(SECOND, 3650 * DAY)(raw)
}

fn stall_timeout(raw: &str) -> Result<Duration, String> {
    duration_between(10 * SECOND, HOUR)(raw)
}

fn database_timeout(raw: &str) -> Result<Duration, String> {
    duration_between(10 * MS, MINUTE)(raw)
}

fn header_timeout(raw: &str) -> Result<Duration, String> {
    duration_between(100 * MS, 5 * MINUTE)(raw)
}

fn bulk_api_version(raw: &str) -> Result<String, String> {
    match raw.trim() {
        v @ ("v1.0-alpha1" | "v1.0") => Ok(v.to_owned()),
        _ => Err("must be v1.0-alpha1 (Dapr before 1.17) or v1.0 (Dapr 1.17 and later)".into()),
    }
}

fn bulk_bytes(raw: &str) -> Result<u64, String> {
    let n = crate::mapper::config::parse_bytes(raw)?;
    if !(1024..=4 << 20).contains(&n) {
        return Err("must be between 1KiB and 4MiB (Dapr's default request limit)".into());
    }
    Ok(n)
}

fn parse_source(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.chars().any(char::is_control) {
        return Err("must be a non-empty URI-reference".into());
    }
    Ok(raw.to_owned())
}

/// Everything `pakaura serve` needs.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Database: `sqlite:PATH` (created if missing) or `postgres://user@host/db`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite:pakaura.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Longest a request waits for a database connection or lock before it is answered
    /// 503 with `Retry-After` (10ms to 1m).
    #[arg(long, env = "DATABASE_TIMEOUT", default_value = "5s", value_parser = database_timeout)]
    pub database_timeout: Duration,

    /// Longest a client may take to send a request's headers before the connection is
    /// closed (100ms to 5m).
    #[arg(long, env = "HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = header_timeout)]
    pub http_header_timeout: Duration,

    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind_addr: SocketAddr,

    /// HS256 secret that signs user JWTs (at least 32 bytes). Unset and no JWT_JWKS_URL:
    /// a secret is made for this process and a demo token printed (local use only).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// The audience user JWTs must carry (their `aud`, a string or an array, must hold
    /// it). Unset: `aud` is not checked.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    #[command(flatten)]
    pub jwt: JwtConfig,

    /// Bearer token of the admin API (at least 16 characters; surrounding whitespace,
    /// such as a secret file's trailing newline, is ignored). Unset: admin API off.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,

    /// Named admin tokens, `name:token,...` (names of 1 to 32 of a-z, 0-9, - and _;
    /// tokens of at least 16 characters), beside or instead of `ADMIN_TOKEN` (named
    /// `admin`): each operator's replays, skips and reloads are recorded with the name.
    #[arg(long, env = "ADMIN_TOKENS", hide_env_values = true)]
    pub admin_tokens: Option<Secret>,

    /// CloudEvents `source` of every envelope.
    #[arg(long, env = "EVENT_SOURCE", default_value = "pakaura/api", value_parser = parse_source)]
    pub event_source: String,

    /// How envelopes leave the host: `dapr` (through the Dapr sidecar) or `none` (built
    /// and kept as `skipped`, nothing sent). Unset: `DAPR_ENABLED` decides (its older
    /// spelling; `none` when that is unset too).
    #[arg(long, env = "PUBLISHER", value_enum)]
    pub publisher: Option<PublisherKind>,

    #[command(flatten)]
    pub dapr: DaprConfig,

    #[command(flatten)]
    pub relay: RelayConfig,

    #[command(flatten)]
    pub mappers: MapperConfig,

    /// A folder holding one candidate mapper (`*.wasm`) to shadow from start: every
    /// mutation the relay maps is also mapped by the live set with the candidate in
    /// place, compared, counted (`pakaura_shadow_*`) and never published.
    #[arg(long, env = "MAPPERS_SHADOW_DIR", value_name = "PATH")]
    pub mappers_shadow_dir: Option<std::path::PathBuf>,

    /// How often this replica looks in the database for mapper promotions and
    /// rollbacks made on another replica (1s to 1h).
    #[arg(long, env = "MAPPER_SYNC_INTERVAL", default_value = "5s", value_parser = sync_interval)]
    pub mapper_sync_interval: Duration,

    #[command(flatten)]
    pub console: ConsoleConfig,
}

/// Which publisher the relay uses (`PUBLISHER`; `DAPR_ENABLED` is its older alias).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PublisherKind {
    /// Through the Dapr sidecar's pub/sub HTTP API.
    Dapr,
    /// Publish nothing: envelopes are built and kept as `skipped`.
    None,
}

impl PublisherKind {
    /// The setting's value.
    pub fn as_str(self) -> &'static str {
        match self {
            PublisherKind::Dapr => "dapr",
            PublisherKind::None => "none",
        }
    }
}

impl ServeConfig {
    /// The publisher `PUBLISHER` names, or `DAPR_ENABLED` when `PUBLISHER` is unset; the
    /// two must agree when both are set.
    pub fn publisher_kind(&self) -> Result<PublisherKind, ConfigError> {
        let alias = self.dapr.dapr_enabled.map(|on| {
            if on {
                PublisherKind::Dapr
            } else {
                PublisherKind::None
            }
        });
        match (self.publisher, alias) {
            (Some(kind), Some(alias)) if kind != alias => Err(ConfigError {
                setting: "PUBLISHER",
                message: format!(
                    "says {} but DAPR_ENABLED says {}; set one of them (DAPR_ENABLED is the older name)",
                    kind.as_str(),
                    alias.as_str()
                ),
            }),
            (Some(kind), _) | (None, Some(kind)) => Ok(kind),
            (None, None) => Ok(PublisherKind::None),
        }
    }

    /// Checks the settings clap cannot check without echoing them (secrets).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.publisher_kind()?;
        if let Some(secret) = &self.jwt_secret {
            check_jwt_secret(secret)?;
        }
        check_jwt(&self.jwt)?;
        if let Some(token) = &self.admin_token
            && token.expose().trim().len() < 16
        {
            return Err(ConfigError {
                setting: "ADMIN_TOKEN",
                message: "must be at least 16 characters".into(),
            });
        }
        if let Err(e) = crate::auth::AdminTokens::new(
            self.admin_token.as_ref().map(Secret::expose),
            self.admin_tokens.as_ref().map(Secret::expose),
        ) {
            return Err(ConfigError {
                setting: "ADMIN_TOKENS",
                message: e.to_string(),
            });
        }
        if let Some(token) = &self.dapr.dapr_api_token
            && token.expose().trim().is_empty()
        {
            return Err(ConfigError {
                setting: "DAPR_API_TOKEN",
                message: "must not be empty when set".into(),
            });
        }
        if self
            .jwt_audience
            .as_deref()
            .is_some_and(|a| a.trim().is_empty() || a.chars().any(char::is_control))
        {
            return Err(ConfigError {
                setting: "JWT_AUDIENCE",
                message: "must be printable text when set".into(),
            });
        }
        if self.dapr.dapr_pubsub_name.trim().is_empty() {
            return Err(ConfigError {
                setting: "DAPR_PUBSUB_NAME",
                message: "must not be empty".into(),
            });
        }
        let timeout = self.dapr.dapr_publish_timeout;
        if self.relay.relay_lease < timeout * 3 + Duration::from_secs(5) {
            return Err(ConfigError {
                setting: "RELAY_LEASE",
                message: format!(
                    "must be at least 3 × DAPR_PUBLISH_TIMEOUT + 5s ({}), so a lease outlives the publishes made under it",
                    humantime::format_duration(timeout * 3 + Duration::from_secs(5))
                ),
            });
        }
        if self.relay.relay_retry_base > self.relay.relay_retry_max {
            return Err(ConfigError {
                setting: "RELAY_RETRY_BASE",
                message: "must not exceed RELAY_RETRY_MAX".into(),
            });
        }
        Ok(())
    }
}

/// Checks the `JWT_*` settings clap cannot check alone; names the setting at fault.
fn check_jwt(jwt: &JwtConfig) -> Result<(), ConfigError> {
    let error = |setting, message: &str| ConfigError {
        setting,
        message: message.to_owned(),
    };
    if jwt
        .jwt_issuer
        .as_deref()
        .is_some_and(|i| i.trim().is_empty() || i.chars().any(char::is_control))
    {
        return Err(error("JWT_ISSUER", "must be printable text when set"));
    }
    let claim = &jwt.jwt_user_claim;
    if claim.is_empty()
        || claim.len() > 128
        || claim.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(error(
            "JWT_USER_CLAIM",
            "must be a claim name (1 to 128 characters, no spaces)",
        ));
    }
    if jwt.jwt_jwks_refresh_min > jwt.jwt_jwks_refresh_max {
        return Err(error(
            "JWT_JWKS_REFRESH_MIN",
            "must not exceed JWT_JWKS_REFRESH_MAX",
        ));
    }
    if jwt.jwt_jwks_ca_file.is_some() && jwt.jwt_jwks_url.is_none() {
        return Err(error("JWT_JWKS_CA_FILE", "is set but JWT_JWKS_URL is not"));
    }
    Ok(())
}

/// How envelopes reach the Dapr sidecar.
#[derive(Debug, Clone, clap::Args)]
pub struct DaprConfig {
    /// Publish through the Dapr sidecar (true/false): the older spelling of
    /// `PUBLISHER=dapr` / `PUBLISHER=none`.
    #[arg(long, env = "DAPR_ENABLED", value_name = "BOOL",
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub dapr_enabled: Option<bool>,

    /// The sidecar's HTTP port (Dapr injects DAPR_HTTP_PORT).
    #[arg(long, env = "DAPR_HTTP_PORT", default_value_t = 3500)]
    pub dapr_http_port: u16,

    /// The sidecar's host.
    #[arg(long, env = "DAPR_HOST", default_value = "127.0.0.1")]
    pub dapr_host: String,

    /// Name of the Dapr pub/sub component.
    #[arg(long, env = "DAPR_PUBSUB_NAME", default_value = "pubsub-kafka")]
    pub dapr_pubsub_name: String,

    /// Timeout of one publish request, e.g. 2s (10ms to 5m).
    #[arg(long, env = "DAPR_PUBLISH_TIMEOUT", default_value = "2s", value_parser = publish_timeout)]
    pub dapr_publish_timeout: Duration,

    /// Publish through Dapr's bulk API (true/false): the ready events of different
    /// tasks that share a topic go in one request. Verify it against your pub/sub
    /// component first (per-entry partition keys, see the README).
    #[arg(long, env = "DAPR_BULK_PUBLISH", default_value = "false", value_name = "BOOL",
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub dapr_bulk_publish: bool,

    /// API version of bulk publishes: v1.0-alpha1 (Dapr before 1.17) or v1.0.
    #[arg(long, env = "DAPR_BULK_API_VERSION", default_value = "v1.0-alpha1", value_parser = bulk_api_version)]
    pub dapr_bulk_api_version: String,

    /// Most events in one bulk request.
    #[arg(long, env = "DAPR_BULK_MAX_ENTRIES", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(2..=1_000))]
    pub dapr_bulk_max_entries: u32,

    /// Most bytes of events in one bulk request (1KiB to 4MiB).
    #[arg(long, env = "DAPR_BULK_MAX_BYTES", default_value = "1MiB", value_parser = bulk_bytes)]
    pub dapr_bulk_max_bytes: u64,

    /// Sent as `dapr-api-token` when set.
    #[arg(long, env = "DAPR_API_TOKEN", hide_env_values = true)]
    pub dapr_api_token: Option<Secret>,
}

/// How the outbox relay runs.
#[derive(Debug, Clone, clap::Args)]
pub struct RelayConfig {
    /// Most mutations claimed per batch. Each batch costs a claim, a transaction and a
    /// hand-off to the mapping thread whatever its size, so under load a larger one keeps
    /// the relay's lag far lower (30 s at a steady 2,100 creations/s on two cores:
    /// PostgreSQL's lag reached 8–10 s at 100, 0.6–2 s at 500; see BENCHMARKS.md); a
    /// quiet host claims what is there.
    #[arg(long, env = "RELAY_BATCH_SIZE", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub relay_batch_size: u32,

    /// Most publish requests in flight at once (different tasks publish concurrently). The
    /// relay waits on round trips: at 32, PostgreSQL's relay fell behind 2,000 creations/s
    /// on two cores within two minutes; at 128 it kept up for those two minutes (not for
    /// five: then the CPU ran out; BENCHMARKS.md).
    #[arg(long, env = "RELAY_MAX_IN_FLIGHT", default_value_t = 128,
          value_parser = clap::value_parser!(u32).range(1..=1_024))]
    pub relay_max_in_flight: u32,

    /// How often the relay looks for work when nothing wakes it (1ms to 1h).
    #[arg(long, env = "RELAY_POLL_INTERVAL", default_value = "1s", value_parser = poll_interval)]
    pub relay_poll_interval: Duration,

    /// First retry delay after a failed publish; doubles per attempt, with jitter.
    #[arg(long, env = "RELAY_RETRY_BASE", default_value = "200ms", value_parser = retry_delay)]
    pub relay_retry_base: Duration,

    /// Longest retry delay.
    #[arg(long, env = "RELAY_RETRY_MAX", default_value = "30s", value_parser = retry_delay)]
    pub relay_retry_max: Duration,

    /// Publish attempts after which a failing event is parked as a dead letter; 0: no
    /// limit (RELAY_MAX_AGE still applies).
    #[arg(long, env = "RELAY_MAX_ATTEMPTS", default_value_t = 0)]
    pub relay_max_attempts: u32,

    /// How long an event may keep failing before it is parked as a dead letter (and
    /// its task's later events go on).
    #[arg(long, env = "RELAY_MAX_AGE", default_value = "24h", value_parser = max_age)]
    pub relay_max_age: Duration,

    /// What an event that cannot be mapped or published does to its task's later
    /// events: `hold` (they wait on its topic until the operator replays or skips it, so
    /// consumers keep the task's order) or `skip` (they go on; the parked one, replayed,
    /// arrives after them).
    #[arg(long, env = "RELAY_ON_POISON", default_value = "hold", value_enum)]
    pub relay_on_poison: OnPoison,

    /// How long a relay stage may go without progress before it counts as stalled:
    /// `/readyz` says so and the relay is restarted (10s to 1h).
    #[arg(long, env = "RELAY_STALL_TIMEOUT", default_value = "2m", value_parser = stall_timeout)]
    pub relay_stall_timeout: Duration,

    /// How long a claim stays leased to one relay before another may take it (1s to
    /// 1h; at least 3 × DAPR_PUBLISH_TIMEOUT + 5s).
    #[arg(long, env = "RELAY_LEASE", default_value = "30s", value_parser = lease)]
    pub relay_lease: Duration,

    /// How often the relay vacuums its task queue table on PostgreSQL (1s to 1h; 0: never,
    /// leaving it to autovacuum). Every task inserts, claims and deletes a row there, and
    /// the claim walks past the dead ones until a vacuum removes them; autovacuum comes by
    /// once per `autovacuum_naptime` at most (a minute by default), and not at all where
    /// it is off. Needs a role that may vacuum the table (the one that migrated the
    /// database may); SQLite has nothing to vacuum.
    #[arg(long, env = "RELAY_VACUUM_INTERVAL", default_value = "5s", value_parser = vacuum_interval)]
    pub relay_vacuum_interval: Duration,

    /// How long published and skipped envelopes are kept before pruning (1m to 10y).
    #[arg(long, env = "ENVELOPE_RETENTION", default_value = "7d", value_parser = long_period)]
    pub envelope_retention: Duration,

    /// How long mapped mutations are kept for a candidate mapper's history diff, however
    /// long their envelopes are (0 to 10y; 0 keeps none past their envelopes).
    #[arg(long, env = "MUTATION_HISTORY", default_value = "7d", value_parser = history_period)]
    pub mutation_history: Duration,
}

/// What a poison event (one that cannot be mapped or published) does to its task's
/// later events on its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnPoison {
    /// They wait until the operator resolves it: order kept, the task held.
    Hold,
    /// They go on: progress kept, order traded.
    Skip,
}

/// How the operator console behaves. Every field is a flag and an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleConfig {
    /// Largest mapper component the console's playground accepts as an upload, in bytes
    /// or with a unit (1KiB to 1GiB). Uploads are kept in memory, never in MAPPERS_DIR.
    #[arg(long, env = "CONSOLE_UPLOAD_LIMIT", default_value = "32MiB", value_parser = parse_upload_limit)]
    pub console_upload_limit: u64,

    /// How long a console session lasts after logging in with the admin token (1m to 7d).
    #[arg(long, env = "CONSOLE_SESSION_TTL", default_value = "12h", value_parser = parse_session_ttl)]
    pub console_session_ttl: Duration,
}

impl Default for ConsoleConfig {
    /// The documented defaults, as if no flag or variable were set.
    fn default() -> Self {
        Self {
            console_upload_limit: 32 << 20,
            console_session_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

impl ConsoleConfig {
    /// The upload limit as a body size.
    pub fn upload_limit(&self) -> usize {
        usize::try_from(self.console_upload_limit).unwrap_or(usize::MAX)
    }
}

fn parse_upload_limit(raw: &str) -> Result<u64, String> {
    let n = crate::mapper::config::parse_bytes(raw)?;
    if !(1 << 10..=1 << 30).contains(&n) {
        return Err("must be between 1KiB and 1GiB".to_owned());
    }
    Ok(n)
}

fn parse_session_ttl(raw: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(raw.trim())
        .map_err(|e| format!("{e} (use e.g. 30m, 12h, 7d)"))?;
    if d < Duration::from_secs(60) || d > Duration::from_secs(7 * 86_400) {
        return Err("must be between 1m and 7d".to_owned());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_config(args: &[&str]) -> ServeConfig {
        #[derive(clap::Parser)]
        struct Args {
            #[command(flatten)]
            config: ServeConfig,
        }
        let argv = std::iter::once("pakaura").chain(args.iter().copied());
        <Args as clap::Parser>::try_parse_from(argv).unwrap().config
    }

    #[test]
    fn publisher_falls_back_to_its_older_spelling() {
        let kind = |args: &[&str]| serve_config(args).publisher_kind();
        assert_eq!(kind(&[]).unwrap(), PublisherKind::None);
        assert_eq!(kind(&["--dapr-enabled=true"]).unwrap(), PublisherKind::Dapr);
        assert_eq!(kind(&["--publisher=dapr"]).unwrap(), PublisherKind::Dapr);
        assert_eq!(
            kind(&["--publisher=none", "--dapr-enabled=false"]).unwrap(),
            PublisherKind::None
        );
        let conflict = kind(&["--publisher=none", "--dapr-enabled=true"]).unwrap_err();
        assert_eq!(conflict.setting, "PUBLISHER");
        assert!(
            conflict.message.contains("DAPR_ENABLED says dapr"),
            "{conflict}"
        );
    }

    #[test]
    fn jwt_settings_are_checked_together_and_named() {
        let mut config = JwtConfig {
            jwt_user_claim: "preferred username".into(),
            ..JwtConfig::default()
        };
        assert_eq!(check_jwt(&config).unwrap_err().setting, "JWT_USER_CLAIM");
        config.jwt_user_claim = "email".into();
        config.jwt_jwks_refresh_min = Duration::from_secs(7200);
        assert_eq!(
            check_jwt(&config).unwrap_err().setting,
            "JWT_JWKS_REFRESH_MIN"
        );
        config.jwt_jwks_refresh_min = Duration::from_secs(60);
        config.jwt_issuer = Some(" ".into());
        assert_eq!(check_jwt(&config).unwrap_err().setting, "JWT_ISSUER");
        config.jwt_issuer = Some("https://idp.example.com/realms/acme".into());
        config.jwt_jwks_ca_file = Some("/etc/ca.pem".into());
        assert_eq!(check_jwt(&config).unwrap_err().setting, "JWT_JWKS_CA_FILE");
        config.jwt_jwks_ca_file = None;
        assert!(check_jwt(&config).is_ok());
    }

    #[test]
    fn the_queue_vacuum_is_bounded_or_off() {
        assert_eq!(
            serve_config(&[]).relay.relay_vacuum_interval,
            Duration::from_secs(5)
        );
        assert_eq!(vacuum_interval("0"), Ok(Duration::ZERO));
        assert_eq!(vacuum_interval("30s"), Ok(Duration::from_secs(30)));
        for wrong in ["500ms", "2h"] {
            let e = vacuum_interval(wrong).unwrap_err();
            assert!(
                e.contains("between 1s and 1h, or 0 (never)"),
                "{wrong}: {e}"
            );
        }
        assert!(vacuum_interval("often").is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(parse_upload_limit("32MiB"), Ok(32 << 20));
        assert!(parse_upload_limit("10").is_err());
        assert!(parse_session_ttl("10s").is_err());
        assert_eq!(
            parse_session_ttl("12h"),
            Ok(ConsoleConfig::default().console_session_ttl)
        );
    }
}
