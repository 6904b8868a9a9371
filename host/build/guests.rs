//! Building wasm guest workspaces from a build script: shared by `host/build.rs` (which
//! includes it as `mod guests;` with `#[path = "build/guests.rs"]`) and `tests/build.rs`
//! (`#[path = "../host/build/guests.rs"]`).
//!
//! A guest workspace is built by a nested `cargo build --release` with its own target
//! directory, `<target>/guest-build`: the outer build holds the lock on its target directory,
//! so sharing it would deadlock. Every profile of the outer build, and both build scripts,
//! share that one inner directory, so the mappers are built once for the host and the tests.
//!
//! Cargo recompiles, and so reruns, a build script when any file of it changes, this one
//! included: no `rerun-if-changed` is needed for it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target the guests are built for.
const WASM_TARGET: &str = "wasm32-wasip2";

/// The sources of the `guest-mappers` workspace's members, relative to its folder.
pub(crate) const MAPPER_SOURCES: &[&str] = &[
    "types/Cargo.toml",
    "types/src",
    "default/Cargo.toml",
    "default/src",
    "v2/Cargo.toml",
    "v2/src",
];

/// The repository root: the parent of the package whose build script runs.
pub(crate) fn repo_root() -> PathBuf {
    let package = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    package
        .parent()
        .expect("the package sits in the repository root")
        .to_path_buf()
}

/// `<target>/guest-build`, where `<target>` is the outer build's target directory: the first
/// ancestor of `OUT_DIR` that cargo tagged with `CACHEDIR.TAG` (`OUT_DIR` itself if none is).
pub(crate) fn guest_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let target = out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file());
    target.unwrap_or(&out_dir).join("guest-build")
}

/// Where the components of a build into `target_dir` are:
/// `<target_dir>/wasm32-wasip2/release`.
pub(crate) fn release_dir(target_dir: &Path) -> PathBuf {
    target_dir.join(WASM_TARGET).join("release")
}

/// Asks cargo to rerun the build script when the workspace in `dir` changes (its manifest,
/// its lock file or one of `sources`, relative to `dir`), then runs
/// `cargo build --release --locked --target wasm32-wasip2` on it, its output forwarded to
/// this script's stderr (cargo shows it when the build fails).
pub(crate) fn build_wasm_workspace(
    dir: &Path,
    sources: &[&str],
    target_dir: &Path,
) -> Result<(), String> {
    for path in ["Cargo.toml", "Cargo.lock"].iter().chain(sources) {
        println!("cargo:rerun-if-changed={}", dir.join(path).display());
    }

    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", rustc.to_string_lossy()))?;
    let libdir = String::from_utf8_lossy(&libdir.stdout);
    if !Path::new(libdir.trim()).is_dir() {
        return Err(format!(
            "the {WASM_TARGET} target is not installed; run `rustup target add {WASM_TARGET}`"
        ));
    }

    let mut cargo = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(dir)
        .args([
            "build",
            "--release",
            "--locked",
            "--workspace",
            "--target",
            WASM_TARGET,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        // Pin the build directory too, in case the outer build set one: sharing it would
        // deadlock just like sharing the target directory.
        .env("CARGO_BUILD_BUILD_DIR", target_dir)
        // The guests have their own profile and flags; the outer build's must not leak in
        // (a `cargo clippy` of the outer package would otherwise run clippy on the guests
        // too). CARGO_MAKEFLAGS stays, so the inner build shares the outer build's job slots.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        // Nested cargo's stdout would be read as build-script directives.
        .stdout(Stdio::from(std::io::stderr()));
    for (key, _) in env::vars_os() {
        if key.to_string_lossy().starts_with("CARGO_PROFILE_") {
            cargo.env_remove(key);
        }
    }
    let status = cargo
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "building the wasm guests in {} failed ({status}); see the build script's stderr",
            dir.display()
        ))
    }
}
