//! Building and running the application: what `pakaura serve` and the tests start.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::future::OptionFuture;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::{AdminTokens, Authenticator, ClaimPolicy, Jwks, JwtKeys};
use crate::candidate::releases::Releases;
use crate::config::{ConfigError, ServeConfig};
use crate::http::{self, AppState};
use crate::mapper::MapperRegistry;
use crate::operator::Operator;
use crate::relay::{Relay, RelayContext};
use crate::store::{Db, PoolSettings};
use crate::tasks::TaskService;

/// A built application: bound, migrated, mappers loaded, not yet serving.
pub struct Application {
    addr: SocketAddr,
    listener: TcpListener,
    /// The API's database pool.
    db: Db,
    relay: Relay,
    mappers: MapperRegistry,
    releases: Releases,
    /// `MAPPER_SYNC_INTERVAL`.
    release_sync: Duration,
    state: AppState,
    stop: watch::Sender<bool>,
    /// `HTTP_HEADER_TIMEOUT`.
    header_timeout: Duration,
}

/// Stops a running [`Application`] gracefully.
#[derive(Clone, Debug)]
pub struct StopHandle(watch::Sender<bool>);

impl StopHandle {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

/// What `build` hands back besides the application when no JWT secret was set.
#[derive(Debug)]
pub struct DemoCredentials {
    pub user: String,
    pub token: String,
    /// The admin token made for this process when `ADMIN_TOKEN` is unset too, so a
    /// local run serves the console; `None` when `ADMIN_TOKEN` is set.
    pub admin_token: Option<String>,
}

impl Application {
    /// Connects and migrates the database, loads the mappers and binds the listener.
    pub async fn build(config: ServeConfig) -> anyhow::Result<(Self, Option<DemoCredentials>)> {
        config.validate()?;
        // The recorder first: mappers register their metric handles as they load.
        let metrics = crate::telemetry::metrics_handle();
        let pool = PoolSettings {
            timeout: config.database_timeout,
            ..PoolSettings::default()
        };
        let db = Db::connect_with(&config.database_url, &pool)
            .await
            .context("connecting to the database (DATABASE_URL)")?;
        db.migrate().await.context("migrating the database")?;

        let (auth, mut demo) = authenticator(&config).await?;
        // A local run (no JWT_SECRET, no identity provider: the demo token) without
        // ADMIN_TOKEN gets an admin token for this process, so the console is there from
        // the first command; anywhere else the console stays off unless configured.
        let admin_secret: Option<String> = match (&config.admin_token, demo.as_mut()) {
            (Some(token), _) => Some(token.expose().trim().to_owned()),
            (None, _) if config.admin_tokens.is_some() => None,
            (None, Some(demo)) => {
                let bytes: [u8; 16] = rand::random();
                let token = hex::encode(bytes);
                demo.admin_token = Some(token.clone());
                Some(token)
            }
            (None, None) => None,
        };
        let admin_tokens = AdminTokens::new(
            admin_secret.as_deref(),
            config.admin_tokens.as_ref().map(|t| t.expose()),
        )?
        .map(Arc::new);

        let mappers = MapperRegistry::load(config.mappers.clone())
            .await
            .context("loading mappers")?;

        let listener = TcpListener::bind(config.bind_addr)
            .await
            .with_context(|| format!("binding BIND_ADDR {}", config.bind_addr))?;
        let addr = listener.local_addr()?;

        let relay_pool = PoolSettings {
            max_connections: 4,
            ..pool
        };
        let relay_db = db
            .companion(&relay_pool)
            .await
            .context("connecting the relay to the database (DATABASE_URL)")?;
        let publisher = crate::relay::publish::build(config.publisher_kind()?, &config.dapr)?;
        let relay = Relay::new(RelayContext::new(
            relay_db,
            mappers.clone(),
            publisher,
            config.relay.clone(),
            config.event_source.clone(),
        ));

        // Promotions recorded by any replica before this one started are live here too
        // before the relay maps anything. One that no longer loads here (the limits or
        // topics changed) leaves the configured set live, loudly, until it is rolled back.
        let releases = Releases::new(relay.db().clone(), mappers.clone());
        if let Err(e) = releases.sync().await {
            tracing::error!(error = %e, "the mapper releases in the database could not be applied; the configured set stays live until they load or are rolled back");
        }
        let operator = Operator::new(
            db.clone(),
            relay.clone(),
            mappers.clone(),
            releases.clone(),
            config.event_source.clone(),
        );
        if let Some(dir) = &config.mappers_shadow_dir {
            operator
                .shadow_from_dir(dir)
                .await
                .context("starting the shadow run (MAPPERS_SHADOW_DIR)")?;
        }

        let (stop, _) = watch::channel(false);
        let state = AppState {
            tasks: TaskService::new(db.clone(), relay.clone()),
            operator,
            auth,
            admin_token: admin_tokens.clone(),
            metrics,
            console: http::console::Console::new(config.console.clone(), admin_tokens.as_deref()),
        };
        Ok((
            Self {
                addr,
                listener,
                db,
                relay,
                mappers,
                releases,
                release_sync: config.mapper_sync_interval,
                state,
                stop,
                header_timeout: config.http_header_timeout,
            },
            demo,
        ))
    }

    /// The bound address (its port is the real one when BIND_ADDR said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The database the application uses.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The application's relay.
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// A handle that stops the application gracefully.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// Serves and relays until SIGTERM, Ctrl-C or the stop handle; reloads mappers
    /// on SIGHUP.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self {
            listener,
            db,
            relay,
            mappers,
            releases,
            release_sync,
            state,
            stop,
            header_timeout,
            ..
        } = self;
        let mut stopped = stop.subscribe();
        let relay_db = relay.db().clone();
        let relay_task = relay.spawn(stop.subscribe());
        let sampler = {
            let operator = state.operator.clone();
            let stop = stop.subscribe();
            tokio::spawn(async move { operator.run_sampler(stop).await })
        };
        let release_task = {
            let stop = stop.subscribe();
            tokio::spawn(async move { releases.run(release_sync, stop).await })
        };
        let jwks_task = state.auth.jwks().map(|jwks| jwks.spawn(stop.subscribe()));
        let reload = tokio::spawn(reload_on_sighup(mappers));
        let metrics = state.metrics.clone();
        // The recorder's histograms only drain on upkeep (or a scrape); keep them bounded.
        let upkeep = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                metrics.run_upkeep();
            }
        });
        let console = state.console.clone();
        let router = http::router(state);
        let shutdown = async move {
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => {}
                () = terminate_signal() => tracing::info!("shutdown signal received"),
            }
            // Live console streams never end by themselves: end them, so the
            // graceful shutdown is not held open.
            console.shut_down();
        };
        http::serve(listener, router, header_timeout, shutdown).await;
        reload.abort();
        upkeep.abort();
        let _ = stop.send(true);
        if let Err(e) = relay_task.await {
            tracing::error!(error = %e, "relay task failed");
        }
        let _ = sampler.await;
        let _ = release_task.await;
        if let Some(Err(e)) = OptionFuture::from(jwks_task).await {
            tracing::error!(error = %e, "JWKS refresh task failed");
        }
        db.close().await;
        relay_db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The user-token verifier: the shared secret (`JWT_SECRET`), the identity provider's keys
/// (`JWT_JWKS_URL`, fetched once here), or both. With neither, a secret is made for this
/// process and a demo token issued with it (local use only).
async fn authenticator(
    config: &ServeConfig,
) -> anyhow::Result<(Authenticator, Option<DemoCredentials>)> {
    let policy = ClaimPolicy::new(
        config.jwt.jwt_issuer.as_deref(),
        config.jwt_audience.as_deref(),
        config.jwt.jwt_leeway,
        &config.jwt.jwt_user_claim,
    );
    let keys = |secret: &[u8]| -> anyhow::Result<JwtKeys> {
        Ok(JwtKeys::new(secret, policy.audience())?
            .with_issuer(policy.issuer())
            .with_user_claim(policy.user_claim()))
    };
    let jwks = match config.jwt.jwks() {
        Some(settings) => Some(Jwks::start(settings).await.map_err(|message| ConfigError {
            setting: "JWT_JWKS_CA_FILE",
            message,
        })?),
        None => None,
    };
    let (secret, demo) = match (&config.jwt_secret, &jwks) {
        (Some(secret), _) => (Some(keys(secret.expose().as_bytes())?), None),
        (None, Some(_)) => (None, None),
        (None, None) => {
            let secret: [u8; 32] = rand::random();
            let keys = keys(&secret)?;
            let user = "demo".to_owned();
            let token = keys.issue(&user, Duration::from_secs(24 * 3600))?;
            (
                Some(keys),
                Some(DemoCredentials {
                    user,
                    token,
                    admin_token: None,
                }),
            )
        }
    };
    Ok((Authenticator::new(secret, jwks, policy), demo))
}

async fn terminate_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Reloads the mapper folder on every SIGHUP (as `POST /admin/mappers/reload` does).
async fn reload_on_sighup(mappers: MapperRegistry) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            match mappers.reload("sighup").await {
                Ok(report) => tracing::info!(?report, "mappers reloaded on SIGHUP"),
                Err(e) => tracing::error!(
                    error = %e,
                    "mapper reload on SIGHUP refused; the previous set stays live"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = mappers;
}
