//! A Dapr sidecar stand-in for load tests run from outside (wrk against a release
//! `pakaura serve`): accepts every publish, single or bulk, after `--latency-ms`, and
//! once a second while events arrive prints how long after their mutation that second's
//! events arrived (from each CloudEvent's `time`) and how many it accepted in all:
//! `lag p50 3 p99 12 max 15 ms of 4210 events; events accepted: 81234`.
//!
//! Run: `cargo run --release -p pakaura-tests --example sidecar -- --port 3500`
//! Listens on 127.0.0.1 only; stops with the process (Ctrl-C, SIGTERM).

use std::time::Duration;

use clap::Parser;
use pakaura_tests::CountingSidecar;

#[derive(Parser)]
struct Args {
    /// The port to listen on (DAPR_HTTP_PORT of the host under test).
    #[arg(long, default_value_t = 3500)]
    port: u16,
    /// How long each publish takes to answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let sidecar = CountingSidecar::serve(
        ([127, 0, 0, 1], args.port).into(),
        Duration::from_millis(args.latency_ms),
    )
    .await;
    eprintln!("sidecar stand-in listening on {}", sidecar.addr);
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = sidecar.published();
        let mut lags = sidecar.take_lags();
        if now != last {
            lags.sort_unstable();
            let at = |p: f64| lags.get(((lags.len().max(1) - 1) as f64 * p).round() as usize);
            match (at(0.5), at(0.99), lags.last()) {
                (Some(p50), Some(p99), Some(max)) => println!(
                    "lag p50 {p50} p99 {p99} max {max} ms of {} events; events accepted: {now}",
                    lags.len()
                ),
                _ => println!("events accepted: {now}"),
            }
            last = now;
        }
    }
}
