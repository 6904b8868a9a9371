//! The authoring loop of the `pakaura mapper` tool, as a platform team runs it:
//! `mapper new` scaffolds a project, `mapper test` runs a folder of fixtures, and
//! `mapper check` compiles a component once and then serves it from the compile cache.

mod cache;
mod fixtures;
mod new;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_pakaura");
/// The v2 example mapper, built by the host's build script.
const V2_WASM: &str = env!("PAKAURA_V2_MAPPER_WASM");

/// `pakaura` with a clean environment (no compile cache: there is no HOME).
fn pakaura() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1");
    cmd
}

/// Runs `pakaura` with `args`.
fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    pakaura().args(args).output().expect("pakaura runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that `out` succeeded, showing its output when it did not.
fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// The repository root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ sits in the repository")
        .to_path_buf()
}
