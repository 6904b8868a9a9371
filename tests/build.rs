//! Builds every wasm guest the end-to-end tests load and writes `$OUT_DIR/guests.rs`, the
//! absolute path of each as a `pub const` (see `src/lib.rs`).
//!
//! Both guest workspaces, `guest-mappers/` (the real mappers) and `tests/guests/` (hostile
//! components), are built by a nested `cargo build --release` into `<target>/guest-build`,
//! the directory `host/build.rs` uses too, so the mappers are built once for both. The outer
//! target directory cannot be used: the outer build holds its lock and would deadlock.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const WASM_TARGET: &str = "wasm32-wasip2";

/// The workspaces to build, relative to the repository root, with their members' sources.
const WORKSPACES: [(&str, &[&str]); 2] = [
    (
        "guest-mappers",
        &[
            "default/Cargo.toml",
            "default/src",
            "v2/Cargo.toml",
            "v2/src",
        ],
    ),
    (
        "tests/guests",
        &[
            "misbehave/Cargo.toml",
            "misbehave/src",
            "wrong-world/Cargo.toml",
            "wrong-world/src",
            "wrong-version/Cargo.toml",
            "wrong-version/src",
            "wrong-version/wit",
        ],
    ),
];

/// The constants of `guests.rs`: name, component file, what it is.
const GUESTS: [(&str, &str, &str); 5] = [
    (
        "DEFAULT",
        "pakaura_mapper_default.wasm",
        "The default mapper (the SPEC §4 catalogue).",
    ),
    (
        "V2",
        "pakaura_mapper_v2.wasm",
        "The v2 example mapper (versioned schema, one topic).",
    ),
    (
        "MISBEHAVE",
        "misbehave.wasm",
        "The hostile mapper; `host.config` `mode` selects how it misbehaves.",
    ),
    (
        "WRONG_WORLD",
        "wrong_world.wasm",
        "A component that does not implement the mapper world.",
    ),
    (
        "WRONG_VERSION",
        "wrong_version.wasm",
        "A mapper built against `pakaura:events@2.0.0`.",
    ),
];

fn main() -> ExitCode {
    let tests_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let repo = tests_dir
        .parent()
        .expect("tests/ sits in the repository root");
    println!("cargo:rerun-if-changed={}", repo.join("wit").display());

    let target_dir = guest_target_dir();
    for (workspace, sources) in WORKSPACES {
        let dir = repo.join(workspace);
        for path in ["Cargo.toml", "Cargo.lock"].iter().chain(sources) {
            println!("cargo:rerun-if-changed={}", dir.join(path).display());
        }
        if let Err(error) = build_wasm_workspace(&dir, &target_dir) {
            println!("cargo::error={error}");
            return ExitCode::FAILURE;
        }
    }

    let release = target_dir.join(WASM_TARGET).join("release");
    let mut code = String::new();
    for (name, file, doc) in GUESTS {
        let path = release.join(file);
        let path = path.to_str().expect("the target directory's path is UTF-8");
        writeln!(code, "/// {doc}\npub const {name}: &str = {path:?};").expect("write to a String");
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("guests.rs");
    std::fs::write(&out, code).expect("write guests.rs to OUT_DIR");
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
/// Same as in `host/build.rs`.
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
        // (a `cargo clippy` of the tests would otherwise run clippy on the guests too).
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
