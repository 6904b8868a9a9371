//! A mapper that misbehaves on purpose, so the host's sandbox and limits can be tested
//! against a real component. One component, many behaviours: `host.config` selects them.
//!
//! `describe` returns name = config `name` (default `misbehave`), version `0.0.1`, topics =
//! config `topics` split on commas (default `task-events`); config `describe` = `trap`
//! panics instead, `loop` never returns.
//!
//! `map-mutation` does what config `mode` says (default `ok`):
//!
//! | mode | behaviour |
//! |---|---|
//! | `ok` | one valid `test.ok` event on `task-events`, data `{"task_id": ...}` |
//! | `loop` | spins forever (the CPU deadline must stop it) |
//! | `membomb` | allocates and touches 1 MiB chunks until allocation fails, then errs |
//! | `panic` | panics (a trap) |
//! | `err` | returns `err("refused on purpose")` |
//! | `undeclared-topic` | publishes to `reminders`, which it did not declare |
//! | `disallowed-topic` | publishes to config `topic` (default `secrets`); declare it in `topics` |
//! | `bad-json` | data `{not json` |
//! | `too-many-events` | config `count` (default 10000) valid events |
//! | `oversized` | one event whose data is a JSON string config `bytes` (default 4 MiB) long |
//! | `bad-extension` | an extension named `Bad-Name` |
//! | `shadow-extension` | an extension named `id` (a core CloudEvents attribute) |
//! | `empty-type` | an event with an empty type |
//! | `escape` | probes files, network, environment and arguments; one `test.escape` event reports each |
//! | `counter` | one `test.ok` event whose data counts the calls this instance served; panics when the task's title is `trap`, returns `err` when it is `reject`, and when it is `stale` on an instance that served a call before |
//! | `clock` | one `test.ok` event whose data is `{"now_ms": <the wall clock, ms since the Unix epoch>}` |
//! | `huge-log` | writes one `host.log` line of config `bytes` (default 2 MiB) |
//! | `chatty` | writes config `lines` (default 200) `host.log` lines, then one `ok` event |
//! | `hostile-err` | for a task titled `hostile…`, returns an `err` whose text carries a NUL and terminal escape sequences; else `ok` |
//! | `hostile-panic` | for a task titled `hostile…`, panics with a message that carries a NUL and terminal escape sequences; else `ok` |

use core::hint::black_box;
use core::sync::atomic::{AtomicU32, Ordering};

use bindings::pakaura::events::host::{Level, config, log};
use bindings::pakaura::events::types::{Event, MapperInfo, Mutation};

// wit-bindgen's generated ABI glue needs `unsafe` and declares `pub` items in this private
// module; both lints are relaxed here and nowhere else.
#[allow(unsafe_code, unreachable_pub)]
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "mapper" });

    use super::Misbehave;
    export!(Misbehave with_types_in self);
}

const TASK_EVENTS: &str = "task-events";

/// Text a hostile mapper puts in its errors: a NUL (PostgreSQL refuses it in `TEXT`) and
/// ANSI escape sequences (they would garble a terminal).
const HOSTILE_TEXT: &str = "refused\0 on \u{1b}[31mpurpose\u{1b}[0m\r\n\u{7}";

/// Calls this instance has served (mode `counter`): survives between calls only when the
/// host reuses the instance.
static CALLS: AtomicU32 = AtomicU32::new(0);

struct Misbehave;

impl bindings::Guest for Misbehave {
    fn describe() -> MapperInfo {
        match config("describe").as_deref() {
            Some("trap") => panic!("describe traps on purpose"),
            Some("loop") => spin_forever(),
            _ => {}
        }
        let topics = match config("topics") {
            Some(list) => list.split(',').map(|t| t.trim().to_owned()).collect(),
            None => vec![TASK_EVENTS.to_owned()],
        };
        MapperInfo {
            name: config("name").unwrap_or_else(|| "misbehave".to_owned()),
            version: "0.0.1".to_owned(),
            topics,
        }
    }

    fn map_mutation(mutation: Mutation) -> Result<Vec<Event>, String> {
        let ok = event(
            TASK_EVENTS,
            "test.ok",
            &mutation.task.id,
            format!(r#"{{"task_id":{}}}"#, json_string(&mutation.task.id)),
        );
        let mode = config("mode").unwrap_or_else(|| "ok".to_owned());
        let events = match mode.as_str() {
            "ok" => vec![ok],
            "loop" => spin_forever(),
            "membomb" => return Err(membomb()),
            "panic" => panic!("map-mutation panics on purpose"),
            "err" => return Err("refused on purpose".to_owned()),
            "undeclared-topic" => vec![Event {
                topic: "reminders".to_owned(),
                ..ok
            }],
            "disallowed-topic" => {
                let topic = config("topic").unwrap_or_else(|| "secrets".to_owned());
                vec![Event { topic, ..ok }]
            }
            "bad-json" => vec![Event {
                data: "{not json".to_owned(),
                ..ok
            }],
            "too-many-events" => vec![ok; config_number("count", 10_000)],
            "oversized" => {
                let bytes = config_number("bytes", 4 << 20);
                let data = format!("\"{}\"", "x".repeat(bytes.saturating_sub(2)));
                vec![Event { data, ..ok }]
            }
            "bad-extension" => vec![Event {
                extensions: extension("Bad-Name"),
                ..ok
            }],
            "shadow-extension" => vec![Event {
                extensions: extension("id"),
                ..ok
            }],
            "empty-type" => vec![Event {
                event_type: String::new(),
                ..ok
            }],
            "escape" => vec![event(
                TASK_EVENTS,
                "test.escape",
                &mutation.task.id,
                escape(),
            )],
            "clock" => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                vec![Event {
                    data: format!(r#"{{"now_ms":{now}}}"#),
                    ..ok
                }]
            }
            "counter" => {
                let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
                match mutation.task.title.as_str() {
                    "trap" => panic!("trapping on purpose after {calls} calls"),
                    "reject" => return Err(format!("rejecting on purpose after {calls} calls")),
                    "stale" if calls > 1 => {
                        return Err(format!("state left by earlier calls ({calls})"));
                    }
                    _ => {}
                }
                vec![Event {
                    data: format!(
                        r#"{{"task_id":{},"calls":{calls}}}"#,
                        json_string(&mutation.task.id)
                    ),
                    ..ok
                }]
            }
            "huge-log" => {
                log(Level::Info, &"x".repeat(config_number("bytes", 2 << 20)));
                vec![ok]
            }
            "chatty" => {
                for i in 0..config_number("lines", 200) {
                    log(Level::Debug, &format!("line {i}"));
                }
                vec![ok]
            }
            "hostile-err" if mutation.task.title.starts_with("hostile") => {
                return Err(HOSTILE_TEXT.to_owned());
            }
            "hostile-panic" if mutation.task.title.starts_with("hostile") => {
                panic!("{HOSTILE_TEXT}")
            }
            "hostile-err" | "hostile-panic" => vec![ok],
            other => return Err(format!("misbehave: unknown mode `{other}`")),
        };
        Ok(events)
    }
}

fn event(topic: &str, event_type: &str, task_id: &str, data: String) -> Event {
    Event {
        topic: topic.to_owned(),
        event_type: event_type.to_owned(),
        subject: Some(task_id.to_owned()),
        data,
        data_schema: None,
        extensions: Vec::new(),
        partition_key: None,
    }
}

fn extension(name: &str) -> Vec<(String, String)> {
    vec![(name.to_owned(), "x".to_owned())]
}

fn config_number(key: &str, default: usize) -> usize {
    config(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Burns CPU until the host's deadline interrupts it; `black_box` keeps the optimiser from
/// proving the loop has no effect.
fn spin_forever() -> ! {
    let mut n = 0_u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Allocates and touches 1 MiB chunks, keeping them all, until an allocation fails (when the
/// host's memory cap refuses to grow the linear memory); returns how far it got.
fn membomb() -> String {
    const CHUNK: usize = 1 << 20;
    // Room for the whole 4 GiB address space, so this list itself never reallocates.
    let mut chunks: Vec<Vec<u8>> = Vec::with_capacity(4096);
    while chunks.len() < chunks.capacity() {
        let mut chunk = Vec::new();
        if chunk.try_reserve_exact(CHUNK).is_err() {
            break;
        }
        chunk.resize(CHUNK, 0xa5);
        chunks.push(black_box(chunk));
    }
    let mib = chunks.len();
    drop(chunks);
    format!("allocation failed after {mib} MiB")
}

/// Tries every way out of the sandbox and reports each as `"allowed"` or `"denied: <error>"`,
/// with the number of environment variables and arguments it could see.
fn escape() -> String {
    fn probe<T>(result: std::io::Result<T>) -> String {
        match result {
            Ok(_) => "allowed".to_owned(),
            Err(e) => format!("denied: {e}"),
        }
    }
    let fs_read = probe(std::fs::read("/etc/hostname"));
    let fs_list = probe(std::fs::read_dir("/"));
    let port = config("port")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(9);
    let tcp = probe(std::net::TcpStream::connect(("127.0.0.1", port)));
    let env_vars = std::env::vars_os().count();
    let args = std::env::args_os().count();
    format!(
        r#"{{"fs_read":{},"fs_list":{},"tcp":{},"env_vars":{env_vars},"args":{args}}}"#,
        json_string(&fs_read),
        json_string(&fs_list),
        json_string(&tcp),
    )
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
