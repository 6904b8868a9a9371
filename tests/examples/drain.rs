//! Relay recovery benchmark: how fast a backlog built during a sidecar outage drains
//! once the sidecar is back, and whether the time per event grows with the backlog.
//!
//! 1. Starts the real host (or `--replicas` hosts on one PostgreSQL database) in this
//!    process with publishing on, pointed at a Dapr sidecar stand-in that is down.
//! 2. Creates `--backlog` tasks through `POST /tasks` (two events each), waits until
//!    every mutation is mapped, so the backlog is all envelopes waiting to publish.
//! 3. Brings the sidecar up (answering 204 after `--latency-ms`, bulk requests too)
//!    and times until it has accepted every event. Prints one Markdown table row: the
//!    time until the first event arrived (the relay noticing the sidecar is back), the
//!    time until the last, and the rate from the first event to the last, over the
//!    whole backlog and over each half (a rate that falls in the second half would
//!    mean claims get slower as the backlog shrinks or grows).
//!
//! Run: `cargo run --release -p pakaura-tests --example drain -- --backlog 10000`
//! (`--database postgres` uses a fresh database at PAKAURA_TEST_POSTGRES; `--bulk`
//! sets DAPR_BULK_PUBLISH=true; `--set NAME=VALUE` passes any other setting).
//! Traffic goes only to 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use pakaura_host::config::ServeConfig;
use pakaura_host::startup::{Application, StopHandle};

use pakaura_tests::app::create_load_task;
use pakaura_tests::{Backend, CountingSidecar, TestDatabase};

#[derive(Parser)]
struct Args {
    /// Tasks created while the sidecar is down (two events each).
    #[arg(long, default_value_t = 10_000)]
    backlog: usize,
    /// sqlite or postgres.
    #[arg(long, default_value = "sqlite")]
    database: Backend,
    /// Hosts sharing the database (PostgreSQL only for more than one).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// How long the sidecar takes to answer each request.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Publish through the bulk API.
    #[arg(long)]
    bulk: bool,
    /// Any other host setting, NAME=VALUE (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Requests in flight while building the backlog.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

#[derive(Parser)]
struct Config {
    #[command(flatten)]
    serve: ServeConfig,
}

const SECRET: &str = "loadgen-secret-loadgen-secret-0123456789";

struct Host {
    addr: SocketAddr,
    stop: StopHandle,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start_host(args: &Args, url: &str, sidecar: SocketAddr) -> Host {
    let mut argv = vec![
        "pakaura".to_owned(),
        format!("--database-url={url}"),
        "--bind-addr=127.0.0.1:0".into(),
        format!("--jwt-secret={SECRET}"),
        "--dapr-enabled=true".into(),
        format!("--dapr-http-port={}", sidecar.port()),
        // Short back-off, so that recovery is not measured as waiting for retries.
        "--relay-retry-base=100ms".into(),
        "--relay-retry-max=500ms".into(),
    ];
    if args.bulk {
        argv.push("--dapr-bulk-publish=true".into());
    }
    for setting in &args.set {
        let (name, value) = setting
            .split_once('=')
            .unwrap_or_else(|| panic!("--set {setting}: expected NAME=VALUE"));
        argv.push(format!(
            "--{}={value}",
            name.to_lowercase().replace('_', "-")
        ));
    }
    let config = Config::parse_from(argv).serve;
    let (app, _) = Application::build(config).await.expect("host starts");
    Host {
        addr: app.addr(),
        stop: app.stop_handle(),
        server: tokio::spawn(app.run_until_stopped()),
    }
}

/// Envelopes stored so far (mapped, whatever their state), read straight from the
/// database so that the figure does not depend on the host's own API.
async fn mapped(url: &str) -> usize {
    pakaura_tests::database::count(url, "SELECT COUNT(*) FROM envelopes").await as usize
}

async fn create_tasks(addr: SocketAddr, n: usize, concurrency: usize) -> Duration {
    let token = pakaura_host::auth::JwtKeys::new(SECRET.as_bytes(), None)
        .unwrap()
        .issue("drain", Duration::from_secs(3600))
        .unwrap();
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, token, next) = (client.clone(), token.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                create_load_task(&client, addr, &token).await;
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    assert!(
        args.replicas == 1 || args.database == Backend::Postgres,
        "--replicas > 1 needs --database postgres"
    );
    let database = TestDatabase::create(args.database).await;
    let url = database.url.clone();
    // The sidecar's port: reserved, then closed, so publishes are refused until the
    // stand-in listens there.
    let sidecar = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut hosts = Vec::new();
    for _ in 0..args.replicas {
        hosts.push(start_host(&args, &url, sidecar).await);
    }

    let took = create_tasks(hosts[0].addr, args.backlog, args.concurrency).await;
    eprintln!(
        "created {} tasks in {:.1} s with the sidecar down",
        args.backlog,
        took.as_secs_f64()
    );
    let events = args.backlog * 2;
    while mapped(&url).await < events {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let every envelope's retry time pass, so the drain starts with all of them due.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let started = Instant::now();
    let sink = CountingSidecar::serve(sidecar, Duration::from_millis(args.latency_ms)).await;
    let deadline = started + Duration::from_secs(3600);
    let mut first = None;
    let mut halfway = None;
    loop {
        let n = sink.published();
        if first.is_none() && n > 0 {
            first = Some(started.elapsed());
        }
        if halfway.is_none() && n >= events / 2 {
            halfway = Some(started.elapsed());
        }
        if n >= events {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backlog did not drain in an hour"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let drained = started.elapsed();
    let first = first.unwrap_or(drained);
    let halfway = halfway.unwrap_or(drained);
    let rate =
        |n: usize, from: Duration, to: Duration| n as f64 / (to - from).as_secs_f64().max(1e-9);
    println!(
        "| {} | {} | {} | {} ms | {} | {} | {:.2} s | {:.2} s | {:.0} events/s | {:.0} events/s | {:.0} events/s |",
        format!("{:?}", args.database).to_lowercase(),
        args.replicas,
        if args.bulk { "bulk" } else { "single" },
        args.latency_ms,
        args.backlog,
        events,
        first.as_secs_f64(),
        drained.as_secs_f64(),
        rate(events, first, drained),
        rate(events / 2, first, halfway),
        rate(events - events / 2, halfway, drained),
    );
    for host in hosts {
        host.stop.stop();
        let _ = host.server.await;
    }
    drop(database);
}
