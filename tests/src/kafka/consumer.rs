//! A real Kafka consumer for one test: the consumer recipe (`scripts/kafka/consumer.py`)
//! reading every partition of the three topics from the start (`--assign --json`), its
//! records collected as they arrive.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use super::sidecar::Offsets;
use super::{Broker, KafkaTools, show_output};

/// One record as the consumer read it, with the recipe's verdict on it.
#[derive(Debug, Clone, Deserialize)]
pub struct ConsumedRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The record value as text (the CloudEvent's JSON).
    pub value: String,
    /// `new`, `duplicate` (an id read before) or `late` (older `time` than the newest event
    /// of its key on its topic: a replayed event).
    pub verdict: String,
}

impl ConsumedRecord {
    /// The value, parsed.
    pub fn event(&self) -> Value {
        serde_json::from_str(&self.value)
            .unwrap_or_else(|e| panic!("record value is not JSON ({e}): {}", self.value))
    }

    pub fn id(&self) -> String {
        self.event()["id"].as_str().unwrap_or_default().to_owned()
    }
}

#[derive(Default)]
struct Shared {
    records: Mutex<Vec<ConsumedRecord>>,
    changed: Notify,
}

/// A running consumer (killed when dropped).
pub struct KafkaConsumer {
    child: Child,
    shared: Arc<Shared>,
}

impl KafkaConsumer {
    /// Starts reading every partition of the three topics of `broker` from offset 0.
    pub async fn start(tools: &KafkaTools, broker: &Broker) -> Self {
        let mut child = Command::new(&tools.python)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(KafkaTools::script("consumer.py"))
            .args(["--bootstrap", &broker.bootstrap(), "--assign", "--json"])
            .stdout(Stdio::piped())
            .stderr(show_output())
            .kill_on_drop(true)
            .spawn()
            .expect("the consumer starts");
        let shared = Arc::new(Shared::default());
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let collected = shared.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let record: ConsumedRecord = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("consumer line ({e}): {line}"));
                collected.records.lock().unwrap().push(record);
                collected.changed.notify_waiters();
            }
        });
        Self { child, shared }
    }

    /// The records read so far, in reading order.
    pub fn records(&self) -> Vec<ConsumedRecord> {
        self.shared.records.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the records read, or panics after `within` with `what`.
    pub async fn wait_until(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&[ConsumedRecord]) -> bool,
    ) -> Vec<ConsumedRecord> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.shared.changed.notified();
            let records = self.records();
            if done(&records) {
                return records;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("the consumer did not see {what} within {within:?}");
            }
        }
    }

    /// Waits until `n` distinct CloudEvents ids were read.
    pub async fn wait_for_events(&self, n: usize, within: Duration) -> Vec<ConsumedRecord> {
        self.wait_until(&format!("{n} events"), within, |records| {
            records
                .iter()
                .map(ConsumedRecord::id)
                .collect::<BTreeSet<_>>()
                .len()
                >= n
        })
        .await
    }

    /// Waits until every record below `offsets` (per topic and partition) was read.
    pub async fn wait_for_offsets(&self, offsets: &Offsets, within: Duration) {
        self.wait_until("every acknowledged record", within, |records| {
            offsets.iter().all(|(topic, partitions)| {
                partitions.iter().all(|(partition, next)| {
                    records.iter().any(|r| {
                        &r.topic == topic
                            && r.partition.to_string() == *partition
                            && r.offset == next - 1
                    })
                })
            })
        })
        .await;
    }

    /// Stops reading; the records read.
    pub async fn stop(&mut self) -> Vec<ConsumedRecord> {
        let _ = self.child.kill().await;
        self.records()
    }
}
