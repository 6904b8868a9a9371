//! A Dapr sidecar stand-in for load tests run from outside (wrk against a release
//! `pakaura serve`): accepts every publish, single or bulk, after `--latency-ms`, and
//! prints how many events it accepted, once a second while the count changes.
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
        if now != last {
            println!("events accepted: {now}");
            last = now;
        }
    }
}
