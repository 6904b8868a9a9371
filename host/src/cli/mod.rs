//! The `pakaura` command line: `serve` (the default), `token`, the `mapper` tool and
//! `asyncapi`.

pub mod asyncapi;
mod diff;
mod fixtures;
pub mod history;
pub mod mapper;
pub mod scaffold;

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::{Secret, ServeConfig};
use crate::mapper::MapperConfig;

/// Pakaura event host: task API, transactional outbox, WebAssembly mappers, Dapr publishing.
#[derive(Debug, Parser)]
#[command(name = "pakaura", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API and run the outbox relay (the default).
    Serve(Box<ServeConfig>),
    /// Print a bearer token for a user, signed with JWT_SECRET.
    Token(TokenArgs),
    /// Write the AsyncAPI 3.0 document of the mapper set `serve` would load (MAPPERS_DIR,
    /// MAPPER_BUILTIN): one channel per topic, the declared event types as messages.
    Asyncapi(asyncapi::AsyncApiArgs),
    /// Scaffold, check, run or test a mapper component without starting the service.
    Mapper {
        #[command(subcommand)]
        command: mapper::MapperCommand,
        #[command(flatten)]
        config: Box<MapperConfig>,
    },
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The user id (`sub`).
    #[arg(long)]
    pub user: String,
    /// How long the token is valid, e.g. 1h, 30m, 7d.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    /// The signing secret (the server's JWT_SECRET).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// The audience (`aud`) to issue the token for (the server's JWT_AUDIENCE).
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The issuer (`iss`) to put in the token (the server's JWT_ISSUER).
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The claim that also carries the user id (the server's JWT_USER_CLAIM).
    #[arg(long, env = "JWT_USER_CLAIM", default_value = "sub")]
    pub jwt_user_claim: String,
}
