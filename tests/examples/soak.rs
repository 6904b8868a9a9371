//! Soak under faults: the release host, in its own process, for a fixed time under
//! steady mixed load while the Dapr sidecar stand-in misbehaves; then every event is
//! accounted for.
//!
//! - Load, open loop at `--rate` requests per second: 60 % creates (a third with a due
//!   date), 20 % edits (title or due date), 10 % completes, 5 % uncompletes, 5 % deletes.
//! - Faults: `--fail-share` of publishes answered 500 (retried); the sidecar stopped for
//!   `--outage` every `--restart-every` (its port closed, then bound again); the
//!   `reminders` topic refused (403) for `--refuse-for` every `--refuse-every`, which
//!   holds the tasks whose reminders it refused; once the topic is allowed again the
//!   driver replays every held event through `POST /admin/dead-letters/{id}/replay`.
//! - Every `--sample-every`: the host's RSS (/proc), the relay's lag, held tasks and
//!   events waiting behind holds (/metrics), and the window's request p99 and errors,
//!   one Markdown table row each.
//! - At the end: the load stops, the faults stop, the driver resolves the last holds and
//!   waits until the database has nothing pending; then it checks that every envelope
//!   in the database was published, that the sidecar accepted each one, and that each
//!   task's events reached each topic in mutation order (first acceptances). It exits
//!   non-zero if anything was lost, left unpublished or reordered.
//!
//! Run: `./scripts/soak` (builds in release, sets PostgreSQL up), or
//! `cargo run --release -p pakaura-tests --example soak -- --host-bin target/release/pakaura`.
//! Traffic goes only to 127.0.0.1.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use pakaura_tests::{Backend, DaprSink, TestDatabase, sink_behaviour};

#[derive(Parser)]
struct Args {
    /// The release host binary.
    #[arg(long, default_value = "target/release/pakaura")]
    host_bin: PathBuf,
    /// sqlite or postgres (a fresh database at PAKAURA_TEST_POSTGRES).
    #[arg(long, default_value = "postgres")]
    database: Backend,
    /// How long the load runs, in minutes.
    #[arg(long, default_value_t = 20.0)]
    minutes: f64,
    /// Requests per second (open loop).
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Share of publishes answered 500 (retried by the host).
    #[arg(long, default_value_t = 0.02)]
    fail_share: f64,
    /// Seconds between sidecar restarts.
    #[arg(long, default_value_t = 240)]
    restart_every: u64,
    /// Seconds the sidecar stays down at each restart.
    #[arg(long, default_value_t = 10)]
    outage: u64,
    /// Seconds between refusals of the `reminders` topic.
    #[arg(long, default_value_t = 300)]
    refuse_every: u64,
    /// Seconds each refusal lasts.
    #[arg(long, default_value_t = 30)]
    refuse_for: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 30)]
    sample_every: u64,
}

const SECRET: &str = "soak-secret-soak-secret-soak-secret-0123";
const ADMIN: &str = "soak-admin-token-0123456789abcdef";
/// Requests in flight at most; beyond that the driver counts the tick as dropped.
const MAX_IN_FLIGHT: usize = 512;
/// Task ids kept for edits (the newest).
const LIVE_TASKS: usize = 5_000;

/// What the load saw in the current sampling window.
#[derive(Default)]
struct Window {
    latencies_ms: Vec<f64>,
    errors: u64,
    dropped: u64,
}

struct Load {
    client: reqwest::Client,
    base: String,
    token: String,
    tasks: Mutex<Vec<String>>,
    window: Mutex<Window>,
    requests: AtomicU64,
    errors: AtomicU64,
}

impl Load {
    async fn one(&self) {
        let (method, path, body) = self.pick();
        let started = Instant::now();
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await;
        let took = started.elapsed().as_secs_f64() * 1000.0;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let ok = match answer {
            Ok(r) if r.status() == StatusCode::CREATED => {
                if let Ok(v) = r.json::<Value>().await
                    && let Some(id) = v["id"].as_str()
                {
                    let mut tasks = self.tasks.lock().unwrap();
                    if tasks.len() >= LIVE_TASKS {
                        tasks.remove(0);
                    }
                    tasks.push(id.to_owned());
                }
                true
            }
            // A task deleted by another request in the meantime is not an error.
            Ok(r) => r.status().is_success() || r.status() == StatusCode::NOT_FOUND,
            Err(_) => false,
        };
        let mut window = self.window.lock().unwrap();
        window.latencies_ms.push(took);
        if !ok {
            window.errors += 1;
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The next request of the mix.
    fn pick(&self) -> (Method, String, Option<Value>) {
        let mut rng = rand::rng();
        let roll: u32 = rng.random_range(0..100);
        let due = |rng: &mut rand::rngs::ThreadRng| {
            format!(
                "2027-0{}-{:02}T09:00:00Z",
                rng.random_range(1..10),
                rng.random_range(1..29)
            )
        };
        let task = {
            let tasks = self.tasks.lock().unwrap();
            (!tasks.is_empty()).then(|| tasks[rng.random_range(0..tasks.len())].clone())
        };
        let Some(task) = task.filter(|_| roll >= 60) else {
            let mut body = json!({"title": format!("soak {}", rng.random::<u32>())});
            if rng.random_range(0..3) == 0 {
                body["due_date"] = json!(due(&mut rng));
            }
            return (Method::POST, "/tasks".into(), Some(body));
        };
        match roll {
            60..80 => {
                let body = if rng.random_bool(0.5) {
                    json!({"due_date": due(&mut rng)})
                } else {
                    json!({"title": format!("edited {}", rng.random::<u32>())})
                };
                (Method::PATCH, format!("/tasks/{task}"), Some(body))
            }
            80..90 => (Method::POST, format!("/tasks/{task}/complete"), None),
            90..95 => (Method::POST, format!("/tasks/{task}/uncomplete"), None),
            _ => {
                self.tasks.lock().unwrap().retain(|t| *t != task);
                (Method::DELETE, format!("/tasks/{task}"), None)
            }
        }
    }
}

/// The host under test, in its own process.
struct Host {
    child: tokio::process::Child,
    base: String,
    client: reqwest::Client,
}

impl Host {
    async fn start(args: &Args, url: &str, sidecar: SocketAddr, log: &std::path::Path) -> Self {
        let port = free_port();
        let log = std::fs::File::create(log).expect("host log");
        let child = tokio::process::Command::new(&args.host_bin)
            .arg("serve")
            .env("DATABASE_URL", url)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("JWT_SECRET", SECRET)
            .env("ADMIN_TOKEN", ADMIN)
            .env("PUBLISHER", "dapr")
            .env("DAPR_HTTP_PORT", sidecar.port().to_string())
            .env("DAPR_API_TOKEN", "dapr-token-123")
            .env("DAPR_PUBSUB_NAME", "pubsub-kafka")
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", args.host_bin.display()));
        let host = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        for _ in 0..300 {
            if let Ok(r) = host
                .client
                .get(format!("{}/healthz", host.base))
                .send()
                .await
                && r.status().is_success()
            {
                return host;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the host did not answer /healthz within 30 s");
    }

    fn rss_mib(&self) -> f64 {
        let pid = self.child.id().expect("host running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    }

    async fn metrics(&self) -> HashMap<String, f64> {
        let text = match self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect()
    }

    async fn admin(&self, method: Method, path: &str) -> reqwest::Response {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("admin request")
    }

    /// Replays every held event; returns how many replays were accepted.
    async fn resolve_holds(&self) -> usize {
        let mut replayed = 0;
        loop {
            let holds: Value = self
                .admin(Method::GET, "/admin/holds?limit=500")
                .await
                .json()
                .await
                .expect("holds");
            let holds = holds["holds"].as_array().cloned().unwrap_or_default();
            if holds.is_empty() {
                return replayed;
            }
            let before = replayed;
            for hold in holds {
                let letter = hold["dead_letter_id"].as_str().expect("dead_letter_id");
                let answer = self
                    .admin(
                        Method::POST,
                        &format!("/admin/dead-letters/{letter}/replay"),
                    )
                    .await;
                if answer.status() == StatusCode::OK {
                    replayed += 1;
                }
            }
            if replayed == before {
                // Refused again (the sidecar is down or still refusing): try later.
                return replayed;
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn p99(latencies: &mut [f64]) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    latencies.sort_by(f64::total_cmp);
    latencies[((latencies.len() as f64 * 0.99).ceil() as usize).min(latencies.len()) - 1]
}

/// Rows of `sql` from the database at `url`: (id, task_id, topic, state) as text.
async fn envelopes(url: &str) -> Vec<(String, String, String, String)> {
    let sql = "SELECT id, CAST(task_id AS TEXT), topic, state FROM envelopes \
               ORDER BY task_id, topic, outbox_seq, event_index";
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
        sqlx::query_as(sql)
            .fetch_all(&pool)
            .await
            .expect("envelopes")
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("postgres");
        sqlx::query_as(sql)
            .fetch_all(&pool)
            .await
            .expect("envelopes")
    }
}

/// Rows not yet done: pending outbox rows, pending or dead envelopes, open letters.
async fn unfinished(url: &str) -> i64 {
    pakaura_tests::database::count(
        url,
        "SELECT (SELECT count(*) FROM outbox WHERE state = 'pending') \
         + (SELECT count(*) FROM envelopes WHERE state <> 'published') \
         + (SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL)",
    )
    .await
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let database = TestDatabase::create(args.database).await;
    let url = database.url.clone();
    let sink = DaprSink::start(sink_behaviour()).await;
    let sidecar = sink.addr;
    let log = std::env::temp_dir().join(format!("pakaura-soak-{}.log", std::process::id()));
    let host = Arc::new(Host::start(&args, &url, sidecar, &log).await);
    eprintln!(
        "soak: host {} (log {}), sidecar {sidecar}, {} req/s for {} min on {:?}",
        host.base,
        log.display(),
        args.rate,
        args.minutes,
        args.database
    );

    let token = pakaura_host::auth::JwtKeys::new(SECRET.as_bytes(), None)
        .unwrap()
        .issue("soak", Duration::from_secs(48 * 3600))
        .unwrap();
    let load = Arc::new(Load {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap(),
        base: host.base.clone(),
        token,
        tasks: Mutex::new(Vec::new()),
        window: Mutex::new(Window::default()),
        requests: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let running = Arc::new(AtomicBool::new(true));
    let run_for = Duration::from_secs_f64(args.minutes * 60.0);
    let started = Instant::now();

    // The load: one request per tick, never more than MAX_IN_FLIGHT at once.
    let generator = {
        let (load, running) = (load.clone(), running.clone());
        let every = Duration::from_secs_f64(1.0 / f64::from(args.rate));
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while running.load(Ordering::Acquire) {
                ticks.tick().await;
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    load.window.lock().unwrap().dropped += 1;
                    continue;
                };
                let load = load.clone();
                tokio::spawn(async move {
                    load.one().await;
                    drop(slot);
                });
            }
            let _ = slots.acquire_many(MAX_IN_FLIGHT as u32).await;
        })
    };

    // The faults: failing publishes, restarts, a refused topic and its holds resolved.
    let faults = {
        let (running, host) = (running.clone(), host.clone());
        let args_rate = f64::from(args.rate);
        let (fail_share, restart_every, outage) =
            (args.fail_share, args.restart_every, args.outage);
        let (refuse_every, refuse_for) = (args.refuse_every, args.refuse_for);
        tokio::spawn(async move {
            let mut sink = sink;
            let mut second = 0u64;
            let mut restarts = 0u32;
            let mut replays = 0usize;
            let mut next_restart = restart_every;
            let mut next_refusal = refuse_every / 2;
            let mut refusing_until = None;
            while running.load(Ordering::Acquire) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                second += 1;
                // About 2.3 events per request: fail that share of each second's events.
                let failing = (args_rate * 2.3 * fail_share).round() as usize;
                sink.behave(|b| b.fail_next = failing);
                if restart_every > 0 && second >= next_restart {
                    eprintln!("soak: {second:>5} s sidecar down for {outage} s");
                    sink.stop().await;
                    tokio::time::sleep(Duration::from_secs(outage)).await;
                    sink = sink.restart().await;
                    restarts += 1;
                    second += outage;
                    next_restart += restart_every;
                }
                if refuse_every > 0 && refusing_until.is_none() && second >= next_refusal {
                    eprintln!("soak: {second:>5} s reminders refused for {refuse_for} s");
                    sink.behave(|b| {
                        b.forbidden_topics.insert("reminders".into());
                    });
                    refusing_until = Some(second + refuse_for);
                    next_refusal += refuse_every;
                }
                if refusing_until.is_some_and(|until| second >= until) {
                    sink.behave(|b| b.forbidden_topics.clear());
                    refusing_until = None;
                    let n = host.resolve_holds().await;
                    replays += n;
                    eprintln!(
                        "soak: {second:>5} s reminders allowed again; replayed {n} held events"
                    );
                }
            }
            sink.behave(|b| {
                b.fail_next = 0;
                b.forbidden_topics.clear();
            });
            (sink, restarts, replays)
        })
    };

    // The samples.
    println!(
        "| minute | requests | errors | p99 (ms) | host RSS (MiB) | lag (s) | held tasks | events behind holds |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut rss = Vec::new();
    let mut worst_lag = 0.0f64;
    let mut worst_holds = 0.0f64;
    while started.elapsed() < run_for {
        tokio::time::sleep(Duration::from_secs(args.sample_every).min(run_for)).await;
        let mut window = std::mem::take(&mut *load.window.lock().unwrap());
        let metrics = host.metrics().await;
        let get = |name: &str| metrics.get(name).copied().unwrap_or(f64::NAN);
        let (lag, holds) = (get("pakaura_relay_lag_seconds"), get("pakaura_relay_holds"));
        worst_lag = worst_lag.max(lag);
        worst_holds = worst_holds.max(holds);
        let mib = host.rss_mib();
        rss.push(mib);
        println!(
            "| {:.1} | {} | {} | {:.1} | {mib:.1} | {lag:.1} | {holds} | {} |",
            started.elapsed().as_secs_f64() / 60.0,
            window.latencies_ms.len(),
            window.errors + window.dropped,
            p99(&mut window.latencies_ms),
            get("pakaura_relay_held_events"),
        );
    }
    running.store(false, Ordering::Release);
    generator.await.unwrap();
    let (sink, restarts, mut replays) = faults.await.unwrap();

    // Drain: resolve what is still held until nothing is left.
    let drain_started = Instant::now();
    while unfinished(&url).await > 0 {
        assert!(
            drain_started.elapsed() < Duration::from_secs(600),
            "events still unfinished 10 minutes after the load stopped ({} rows)",
            unfinished(&url).await
        );
        replays += host.resolve_holds().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drained_in = drain_started.elapsed();

    // Account for every envelope: published in the database, accepted by the sidecar,
    // in order per task and topic.
    let rows = envelopes(&url).await;
    let mut first_accept: HashMap<String, usize> = HashMap::new();
    let mut accepts = 0usize;
    for (i, r) in sink.requests().into_iter().enumerate() {
        if r.status == 204 {
            accepts += 1;
            first_accept.entry(r.id().to_owned()).or_insert(i);
        }
    }
    let mut lost = 0usize;
    let mut unpublished = 0usize;
    let mut out_of_order = 0usize;
    let mut last: Option<(String, String, usize)> = None;
    for (id, task, topic, state) in &rows {
        if state != "published" {
            unpublished += 1;
        }
        let Some(&at) = first_accept.get(id) else {
            lost += 1;
            continue;
        };
        if let Some((t, p, before)) = &last
            && t == task
            && p == topic
            && *before > at
        {
            out_of_order += 1;
        }
        last = Some((task.clone(), topic.clone(), at));
    }
    let requests = load.requests.load(Ordering::Relaxed);
    let first_rss = rss.first().copied().unwrap_or_default();
    let max_rss = rss.iter().copied().fold(0.0, f64::max);
    println!();
    println!(
        "requests {requests} ({} errors), envelopes {}, accepted by the sidecar {} distinct \
         ({} accepts, {} duplicates), lost {lost}, unpublished {unpublished}, out of order \
         {out_of_order}; sidecar restarts {restarts}, held events replayed {replays}; host RSS \
         {first_rss:.1} MiB at the first sample, {:.1} at the last, {max_rss:.1} at most; worst \
         lag {worst_lag:.1} s, most held tasks {worst_holds}; drained {:.1} s after the load stopped",
        load.errors.load(Ordering::Relaxed),
        rows.len(),
        first_accept.len(),
        accepts,
        accepts - first_accept.len(),
        rss.last().copied().unwrap_or_default(),
        drained_in.as_secs_f64(),
    );
    drop(host);
    drop(database);
    if lost + unpublished + out_of_order > 0 {
        std::process::exit(1);
    }
}
