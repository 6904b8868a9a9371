//! The `pakaura` binary: parses the command line and runs the chosen command.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use pakaura_host::auth::JwtKeys;
use pakaura_host::cli::{Cli, Command, TokenArgs, asyncapi, mapper};
use pakaura_host::config::{ServeConfig, check_jwt_secret};
use pakaura_host::startup::Application;
use pakaura_host::telemetry;

/// mimalloc: the relay and the request path allocate many small, short-lived buffers
/// across threads, which glibc's malloc served at ~13 % of the host's CPU under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Token(args)) => token(args).map(|()| ExitCode::SUCCESS),
        Some(Command::Mapper { command, config }) => mapper::execute(command, &config),
        Some(Command::Asyncapi(args)) => asyncapi::execute(&args).map(|()| ExitCode::SUCCESS),
        Some(Command::Serve(config)) => serve(*config).map(|()| ExitCode::SUCCESS),
        None => {
            // `pakaura` alone serves with flags taken from the environment.
            let config = <ServeConfigOnly as Parser>::parse_from(["pakaura"]).config;
            serve(config).map(|()| ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

/// Parses only the serve settings (for `pakaura` with no subcommand).
#[derive(Parser)]
struct ServeConfigOnly {
    #[command(flatten)]
    config: ServeConfig,
}

fn serve(config: ServeConfig) -> anyhow::Result<()> {
    telemetry::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(async {
        let (app, demo) = Application::build(config).await?;
        if let Some(demo) = demo {
            tracing::warn!(
                user = %demo.user,
                "JWT_SECRET is not set: using a secret made for this process; tokens stop working at restart. Set JWT_SECRET in production."
            );
            eprintln!(
                "\nDemo bearer token for user `{}` (valid 24h, this process only):\n\n  {}\n",
                demo.user, demo.token
            );
            if let Some(admin) = &demo.admin_token {
                let mut shown = app.addr();
                if shown.ip().is_unspecified() {
                    shown.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                eprintln!(
                    "Console: http://{shown}/console\nAdmin token for this process (ADMIN_TOKEN is unset; set it to choose one):\n\n  {admin}\n"
                );
            }
        }
        tracing::info!(addr = %app.addr(), database = app.db().kind(), "pakaura listening");
        app.run_until_stopped().await
    });
    // The last spans (the shutdown's own among them) leave before the process does.
    telemetry::traces::shutdown();
    served
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    let Some(secret) = args.jwt_secret else {
        bail!("JWT_SECRET is not set: a token must be signed with the server's secret");
    };
    check_jwt_secret(&secret)?;
    if args.user.trim().is_empty() {
        bail!("--user must not be empty");
    }
    if args.ttl < Duration::from_secs(1) {
        bail!("--ttl must be at least 1s");
    }
    let keys = JwtKeys::new(secret.expose().as_bytes(), args.jwt_audience.as_deref())?
        .with_issuer(args.jwt_issuer.as_deref())
        .with_user_claim(&args.jwt_user_claim);
    let token = keys.issue(args.user.trim(), args.ttl)?;
    println!("{token}");
    Ok(())
}
