//! A Dapr sidecar stand-in for load tests run from outside (wrk against a release
//! `pakaura serve`): accepts every publish, single or bulk, after `--latency-ms`, and
//! prints how many events it accepted, once a second while the count changes.
//!
//! Run: `cargo run --release -p pakaura-tests --example sidecar -- --port 3500`
//! Listens on 127.0.0.1 only; stops with the process (Ctrl-C, SIGTERM).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Parser;

mod support;
use support::serve_sink;

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
    let count = Arc::new(AtomicUsize::new(0));
    let addr = serve_sink(
        ([127, 0, 0, 1], args.port).into(),
        Duration::from_millis(args.latency_ms),
        count.clone(),
    )
    .await;
    eprintln!("sidecar stand-in listening on {addr}");
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = count.load(Ordering::Relaxed);
        if now != last {
            println!("events accepted: {now}");
            last = now;
        }
    }
}
