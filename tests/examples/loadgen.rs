//! Load generator: starts the real host (in this process, on its own runtime) with
//! a fresh database, drives `POST /tasks` at a fixed concurrency and reports
//! throughput and latency, with publishing off (`DAPR_ENABLED=false`) and on
//! (against a counting Dapr sidecar on loopback), plus how fast the relay drains
//! the resulting events to the sidecar.
//!
//! Run: `cargo run --release -p pakaura-tests --example loadgen -- --requests 2000 --concurrency 32`
//! (`--rate 1500` sends at a fixed rate instead, for latency without coordinated omission)
//! (add `--database postgres` to use a fresh PostgreSQL database at PAKAURA_TEST_POSTGRES).
//! With `--target 127.0.0.1:PORT` it starts nothing and drives a host already running
//! there (another process: `scripts/bench` runs a release `pakaura serve` with its sidecar
//! stand-in, each its own process), with the token in `LOADGEN_TOKEN`, and prints one row.
//! Traffic goes only to 127.0.0.1; the run is bounded by `--requests`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use pakaura_host::config::ServeConfig;
use pakaura_host::startup::Application;

use pakaura_tests::app::create_load_task;
use pakaura_tests::{Backend, CountingSidecar, TestDatabase};

#[derive(Parser)]
struct Args {
    /// Requests per mode.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// sqlite or postgres.
    #[arg(long, default_value = "sqlite")]
    database: Backend,
    /// Send at this fixed rate (requests per second, open loop) instead of keeping
    /// `--concurrency` requests in flight.
    #[arg(long)]
    rate: Option<f64>,
    /// Drive the host already listening at this loopback address (token from
    /// `LOADGEN_TOKEN`) instead of starting one; prints one row.
    #[arg(long, value_parser = loopback)]
    target: Option<SocketAddr>,
}

fn loopback(raw: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = raw
        .parse()
        .map_err(|e| format!("{raw:?} is not an address (IP:PORT): {e}"))?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!(
            "{addr} is not a loopback address: load goes only to this machine"
        ))
    }
}

#[derive(Parser)]
struct Config {
    #[command(flatten)]
    serve: ServeConfig,
}

const SECRET: &str = "loadgen-secret-loadgen-secret-0123456789";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// `--concurrency` workers, each sending its next request when the last one answered.
async fn closed_loop(
    args: &Args,
    addr: SocketAddr,
    client: &reqwest::Client,
    token: &str,
) -> Vec<Duration> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, token, next) = (client.clone(), token.to_owned(), next.clone());
        let total = args.requests;
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let t = Instant::now();
                create_load_task(&client, addr, &token).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.unwrap());
    }
    latencies
}

/// Requests sent on a fixed schedule, `rate` per second, whether or not earlier ones
/// answered; each latency counts from when the request was due, so a stalled server
/// is not hidden by requests that were never sent (no coordinated omission).
async fn open_loop(
    requests: usize,
    rate: f64,
    addr: SocketAddr,
    client: &reqwest::Client,
    token: &str,
) -> Vec<Duration> {
    let start = tokio::time::Instant::now();
    let mut sent = Vec::with_capacity(requests);
    for i in 0..requests {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let (client, token) = (client.clone(), token.to_owned());
        sent.push(tokio::spawn(async move {
            create_load_task(&client, addr, &token).await;
            due.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for request in sent {
        latencies.push(request.await.unwrap());
    }
    latencies
}

/// Sends `args.requests` creations to `addr`, closed or open loop; returns their latencies,
/// sorted, and how long sending them all took.
async fn drive(args: &Args, addr: SocketAddr, token: &str) -> (Vec<Duration>, Duration) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut latencies = match args.rate {
        None => closed_loop(args, addr, &client, token).await,
        Some(rate) => open_loop(args.requests, rate, addr, &client, token).await,
    };
    let load_time = started.elapsed();
    latencies.sort();
    (latencies, load_time)
}

/// Drives the host at `addr` (another process) and prints one row.
async fn run_against(args: &Args, addr: SocketAddr, token: &str) {
    let (latencies, load_time) = drive(args, addr, token).await;
    println!(
        "| {} | {} | {} |",
        args.rate.map_or_else(
            || format!("closed loop, {}", args.concurrency),
            |r| format!("{r:.0} req/s")
        ),
        args.requests,
        rate_and_latencies(&latencies, load_time),
    );
}

/// The table cells of a run: throughput, then p50, p95, p99 and the slowest request.
fn rate_and_latencies(sorted: &[Duration], load_time: Duration) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "{:.0} req/s | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms",
        sorted.len() as f64 / load_time.as_secs_f64(),
        ms(percentile(sorted, 0.50)),
        ms(percentile(sorted, 0.95)),
        ms(percentile(sorted, 0.99)),
        ms(*sorted.last().unwrap()),
    )
}

async fn run_mode(args: &Args, dapr: bool) {
    let database = TestDatabase::create(args.database).await;
    let url = database.url.clone();
    let sink = CountingSidecar::serve(([127, 0, 0, 1], 0).into(), Duration::ZERO).await;
    let sink_port = sink.addr.port();
    let mut argv = vec![
        "pakaura".to_owned(),
        format!("--database-url={url}"),
        "--bind-addr=127.0.0.1:0".into(),
        format!("--jwt-secret={SECRET}"),
        format!("--dapr-enabled={dapr}"),
        format!("--dapr-http-port={sink_port}"),
    ];
    argv.push("--relay-poll-interval=50ms".into());
    let config = Config::parse_from(argv).serve;
    let (app, _) = Application::build(config).await.expect("host starts");
    let addr = app.addr();
    let stop = app.stop_handle();
    let server = tokio::spawn(app.run_until_stopped());

    let token = pakaura_host::auth::JwtKeys::new(SECRET.as_bytes(), None)
        .unwrap()
        .issue("load", Duration::from_secs(3600))
        .unwrap();
    let started = Instant::now();
    let (latencies, load_time) = drive(args, addr, &token).await;
    let expected_events = args.requests * 2;
    let drained = if dapr {
        let deadline = Instant::now() + Duration::from_secs(300);
        while sink.published() < expected_events && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Some(started.elapsed())
    } else {
        None
    };
    println!(
        "| {} | {} | {} | {} | {} |",
        format!("{:?}", args.database).to_lowercase(),
        if dapr { "on" } else { "off" },
        args.requests,
        rate_and_latencies(&latencies, load_time),
        match drained {
            Some(t) => format!(
                "{} events in {:.2} s ({:.0} events/s)",
                sink.published(),
                t.as_secs_f64(),
                sink.published() as f64 / t.as_secs_f64()
            ),
            None => "not published (Dapr off)".into(),
        }
    );
    stop.stop();
    let _ = server.await;
    drop(database);
}

/// The process's peak resident memory (host and load generator together), from
/// `/proc/self/status`.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l[6..].trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(addr) = args.target {
        let token =
            std::env::var("LOADGEN_TOKEN").expect("LOADGEN_TOKEN: a token the host accepts");
        println!("| rate | requests | throughput | p50 | p95 | p99 | max |");
        println!("|---|---|---|---|---|---|---|");
        run_against(&args, addr, &token).await;
        return;
    }
    println!(
        "| database | publishing | requests | throughput | p50 | p95 | p99 | max | relay: events at the sidecar, from first request |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    run_mode(&args, false).await;
    run_mode(&args, true).await;
    println!(
        "\nPeak resident memory of this process (host + load generator): {}",
        peak_rss()
    );
}
