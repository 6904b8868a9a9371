//! `pakaura asyncapi`: the AsyncAPI 3.0 document of the mapper set `serve` would load,
//! the same document `GET /asyncapi.json` serves, written without starting the service.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::mapper::{MapperConfig, MapperRegistry, MapperRuntime, RuntimeOptions};

/// The options of `pakaura asyncapi`.
#[derive(Debug, clap::Args)]
pub struct AsyncApiArgs {
    /// Write the document to this file instead of stdout.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// The envelopes' CloudEvents `source`.
    #[arg(long, env = "EVENT_SOURCE", default_value = "pakaura/api")]
    pub source: String,
    #[command(flatten)]
    pub config: Box<MapperConfig>,
}

/// Loads the configured set and writes its document.
pub fn execute(args: &AsyncApiArgs) -> anyhow::Result<()> {
    let config = (*args.config).clone();
    let runtime = MapperRuntime::new(&RuntimeOptions::from_config(&config))?;
    let registry = MapperRegistry::load_blocking(runtime, config)?;
    let mut text = serde_json::to_string_pretty(&registry.asyncapi(&args.source))?;
    text.push('\n');
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("writing the AsyncAPI document to {}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}
