//! Kafka for the tests: a real Kafka-protocol broker per test ([`Broker`], Tansu from
//! `PAKAURA_TANSU`), the Dapr sidecar stand-in that forwards to it ([`KafkaSidecar`],
//! `scripts/kafka/sidecar.py`), a real consumer ([`KafkaConsumer`],
//! `scripts/kafka/consumer.py`, librdkafka through confluent-kafka from
//! `PAKAURA_TOOLS_VENV`), and what a consumer must see, computed from what the host
//! stored ([`Expected`], [`assert_delivered`]). `./scripts/test` sets both variables; a
//! test without them prints `SKIP:` and passes.

mod broker;
mod check;
mod consumer;
mod sidecar;

use std::path::PathBuf;

pub use broker::{Broker, TOPICS};
pub use check::{Delivered, Expected, assert_delivered, sarama_partition};
pub use consumer::{ConsumedRecord, KafkaConsumer};
pub use sidecar::{KafkaSidecar, Offsets, Paused, Requests};

/// The programs the Kafka tests run.
#[derive(Debug, Clone)]
pub struct KafkaTools {
    /// The Tansu broker binary.
    pub tansu: PathBuf,
    /// A Python interpreter with confluent-kafka.
    pub python: PathBuf,
}

impl KafkaTools {
    /// The tools from the environment, or `None` after a `SKIP:` line naming what is missing
    /// (`test` names the test that will not run).
    pub fn from_env(test: &str) -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let tansu = var("PAKAURA_TANSU");
        let venv = var("PAKAURA_TOOLS_VENV");
        match (tansu, venv) {
            (Some(tansu), Some(venv)) => Some(Self {
                tansu: tansu.into(),
                python: PathBuf::from(venv).join("bin").join("python"),
            }),
            (tansu, venv) => {
                let missing: Vec<&str> = [("PAKAURA_TANSU", tansu), ("PAKAURA_TOOLS_VENV", venv)]
                    .into_iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(name, _)| name)
                    .collect();
                eprintln!(
                    "SKIP: {test} did not run: {} unset (./scripts/test sets them; see \
                     scripts/lib/kafka.sh)",
                    missing.join(" and ")
                );
                None
            }
        }
    }

    /// A file of `scripts/kafka/`.
    pub fn script(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../scripts/kafka")
            .join(name)
    }
}

/// Whether the children's output goes to the test's terminal (`TEST_LOG=1`).
fn show_output() -> std::process::Stdio {
    if std::env::var_os("TEST_LOG").is_some() {
        std::process::Stdio::inherit()
    } else {
        std::process::Stdio::null()
    }
}
