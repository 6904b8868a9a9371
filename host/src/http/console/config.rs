//! [`ConsoleConfig`]: the operator's settings of the console (`/console`).

use std::time::Duration;

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
