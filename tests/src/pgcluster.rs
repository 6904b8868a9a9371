//! A private PostgreSQL cluster that one test starts, kills and starts again itself: never
//! the shared server, which other tests use at the same time. `initdb` into a temporary
//! folder, a free 127.0.0.1 port, trust authentication, the unix socket in that folder.
//! Dropping the [`PgCluster`] stops the server (immediately) and removes the folder, also
//! when the test panics.
//!
//! The server programs are found in `PAKAURA_PG_BINDIR`, else in the newest
//! `/usr/lib/postgresql/*/bin`. As root, the cluster belongs to the `postgres` user (or
//! `nobody`): PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running (or killed) private cluster.
pub struct PgCluster {
    /// Removed when the cluster is dropped (after the server is stopped).
    dir: tempfile::TempDir,
    programs: Programs,
    pub port: u16,
}

/// The server programs, run in the cluster's folder as its owner.
#[derive(Clone)]
struct Programs {
    dir: PathBuf,
    bindir: PathBuf,
    /// Who runs the server (`None`: this process's user).
    owner: Option<String>,
}

/// The folder holding `initdb`, `pg_ctl` and `postgres`, if there is one.
pub fn pg_bindir() -> Option<PathBuf> {
    let has_all = |d: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|p| d.join(p).is_file())
    };
    if let Some(dir) = std::env::var_os("PAKAURA_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return has_all(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_all(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Runs a command to its end, returning its output as text or why it failed.
fn run(command: &mut Command) -> Result<String, String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{command:?}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!("{command:?} failed ({}): {text}", output.status))
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl PgCluster {
    /// Makes and starts a cluster, or says why it cannot (no server programs, initdb or
    /// the start failed).
    pub async fn start() -> Result<Self, String> {
        let bindir = pg_bindir().ok_or_else(|| {
            "no PostgreSQL server programs (initdb, pg_ctl, postgres) under \
             /usr/lib/postgresql/*/bin; set PAKAURA_PG_BINDIR"
                .to_owned()
        })?;
        tokio::task::spawn_blocking(move || Self::make(bindir))
            .await
            .map_err(|e| e.to_string())?
    }

    fn make(bindir: PathBuf) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("pakaura-pgcluster.")
            .tempdir()
            .map_err(|e| format!("temporary folder: {e}"))?;
        let root = run(Command::new("id").arg("-u"))?.trim() == "0";
        let owner = if root {
            let owner = if run(Command::new("id").args(["-u", "postgres"])).is_ok() {
                "postgres"
            } else {
                "nobody"
            };
            run(Command::new("chown").arg(owner).arg(dir.path()))?;
            Some(owner.to_owned())
        } else {
            None
        };
        let programs = Programs {
            dir: dir.path().to_owned(),
            bindir,
            owner,
        };
        let mut cluster = Self {
            dir,
            programs,
            port: 0,
        };
        let data = cluster.data();
        run(cluster
            .programs
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
            .args(["--locale=C", "-N"]))?;
        // Loopback only, the socket in the private folder. fsync is off (the machine
        // does not crash in a test; an immediate stop loses nothing the OS has), but
        // every commit is written before it is acknowledged: an immediate stop then
        // loses no acknowledged transaction, as in production.
        let settings = format!(
            "\n# pakaura-tests: a private cluster\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\nmax_connections = 100\nfsync = off\n\
             full_page_writes = off\n",
            cluster.dir.path().display()
        );
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(|e| format!("{conf:?}: {e}"))?;
        text.push_str(&settings);
        std::fs::write(&conf, text).map_err(|e| format!("{conf:?}: {e}"))?;
        let mut last = String::new();
        for _ in 0..5 {
            cluster.port = free_port();
            match cluster.programs.start(&data, cluster.port) {
                Ok(()) => return Ok(cluster),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The administrative URL of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Kills the server as a crash would: `pg_ctl stop -m immediate` (no checkpoint, every
    /// connection cut; the next start recovers from the write-ahead log).
    pub async fn kill(&self) {
        let (programs, data) = (self.programs.clone(), self.data());
        tokio::task::spawn_blocking(move || programs.stop_immediately(&data))
            .await
            .expect("pg_ctl stop")
            .unwrap_or_else(|e| panic!("killing the private PostgreSQL: {e}"));
    }

    /// Starts the server again on the same port and data (after [`PgCluster::kill`]).
    pub async fn start_again(&self) {
        let (programs, data, port) = (self.programs.clone(), self.data(), self.port);
        tokio::task::spawn_blocking(move || programs.start(&data, port))
            .await
            .expect("pg_ctl start")
            .unwrap_or_else(|e| panic!("starting the private PostgreSQL again: {e}"));
    }
}

impl Programs {
    fn command(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        let mut command = match &self.owner {
            Some(owner) => {
                let mut c = Command::new("runuser");
                c.args(["-u", owner, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        };
        command.current_dir(&self.dir);
        command
    }

    fn stop_immediately(&self, data: &Path) -> Result<(), String> {
        run(self.command("pg_ctl").arg("-D").arg(data).args([
            "-m",
            "immediate",
            "-w",
            "-t",
            "30",
            "stop",
        ]))
        .map(drop)
    }

    fn start(&self, data: &Path, port: u16) -> Result<(), String> {
        let log = self.dir.join("server.log");
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(data)
            .arg("-l")
            .arg(&log)
            .args(["-o", &format!("-p {port}"), "-w", "-t", "60", "start"]))
        .map(drop)
        .map_err(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{e}\nserver log:\n{log}")
        })
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Stopped or not, it goes: an already stopped server makes pg_ctl fail, which
        // is fine. The folder goes with `dir`.
        if self.data().join("postmaster.pid").exists() {
            let _ = self.programs.stop_immediately(&self.data());
        }
    }
}
