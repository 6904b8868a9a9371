//! Builds the mapper components of `guest-mappers/` for wasm32-wasip2 and hands their paths
//! to the host crate as `PAKAURA_DEFAULT_MAPPER_WASM` (embedded with `include_bytes!`) and
//! `PAKAURA_V2_MAPPER_WASM`.
//!
//! `guest-mappers/` is a workspace of its own, built by a nested `cargo build --release`
//! with its own target directory, `<target>/guest-build`: the outer build holds the lock on
//! its target directory, so sharing it would deadlock. Every profile of the outer build (and
//! `tests/build.rs`, which builds the test guests there too) shares that one inner directory.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    let host_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let repo = host_dir
        .parent()
        .expect("host/ sits in the repository root");
    let guests = repo.join("guest-mappers");
    for path in [
        "Cargo.toml",
        "Cargo.lock",
        "default/Cargo.toml",
        "default/src",
        "v2/Cargo.toml",
        "v2/src",
    ] {
        println!("cargo:rerun-if-changed={}", guests.join(path).display());
    }
    println!("cargo:rerun-if-changed={}", repo.join("wit").display());

    let target_dir = guest_target_dir();
    if let Err(error) = build_wasm_workspace(&guests, &target_dir) {
        println!("cargo::error={error}");
        return ExitCode::FAILURE;
    }
    let release = target_dir.join(WASM_TARGET).join("release");
    for (var, file) in [
        ("PAKAURA_DEFAULT_MAPPER_WASM", "pakaura_mapper_default.wasm"),
        ("PAKAURA_V2_MAPPER_WASM", "pakaura_mapper_v2.wasm"),
    ] {
        println!("cargo:rustc-env={var}={}", release.join(file).display());
    }
    ExitCode::SUCCESS
}

/// `<target>/guest-build`, where `<target>` is the outer build's target directory: the first
/// ancestor of `OUT_DIR` that cargo tagged with `CACHEDIR.TAG` (`OUT_DIR` itself if none is).
fn guest_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let target = out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file());
    target.unwrap_or(&out_dir).join("guest-build")
}

/// Runs `cargo build --release --locked --target wasm32-wasip2` on the workspace in `dir`,
/// its output forwarded to this script's stderr (cargo shows it when the build fails).
fn build_wasm_workspace(dir: &Path, target_dir: &Path) -> Result<(), String> {
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
        // (a `cargo clippy` of the host would otherwise run clippy on the guests too).
        // CARGO_MAKEFLAGS stays, so the inner build shares the outer build's job slots.
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
