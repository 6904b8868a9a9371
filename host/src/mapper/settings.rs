//! Per-mapper settings, the values a component reads with `host.config`:
//! [`SettingsTable`] (every mapper's, from `MAPPER_SETTINGS_FILE` and
//! `MAPPER__<NAME>__<KEY>` variables) and [`Settings`] (one mapper's).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::config::MapperConfig;

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
pub struct SettingsTable {
    by_mapper: BTreeMap<String, Settings>,
}

impl SettingsTable {
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
