//! A Tansu broker for one test: a free port on 127.0.0.1, memory storage, the host's three
//! topics with 3 partitions each; it can be killed and started again on the same port.

use std::time::Duration;

use tokio::process::{Child, Command};

use super::{KafkaTools, show_output};

/// The topics the host publishes to, as `./scripts/run --kafka` creates them.
pub const TOPICS: [&str; 3] = ["task-events", "task-updates", "reminders"];
const PARTITIONS: &str = "3";

/// A running broker (killed when dropped).
pub struct Broker {
    tools: KafkaTools,
    pub port: u16,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker on a free port with the three topics.
    pub async fn start(tools: &KafkaTools) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut broker = Self {
            tools: tools.clone(),
            port,
            child: None,
        };
        broker.launch().await;
        broker
    }

    /// `host:port`, for Kafka clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn launch(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&self.tools.tansu)
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(show_output())
            .stderr(show_output())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.tools.tansu.display()));
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the broker did not listen on port {} within 10 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for topic in TOPICS {
            let out = Command::new(&self.tools.tansu)
                .args(["topic", "create", topic, "--partitions", PARTITIONS])
                .args(["--broker", &url])
                .output()
                .await
                .expect("tansu topic create runs");
            assert!(
                out.status.success(),
                "creating {topic}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Kills the broker at once (no clean shutdown); its memory storage is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill the broker");
        }
    }

    /// Starts it again, empty, on the same port, with the three topics.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.launch().await;
    }
}
