//! Builds every wasm guest the end-to-end tests load and writes `$OUT_DIR/guests.rs`, the
//! absolute path of each as a `pub const` (see `src/lib.rs`).
//!
//! Both guest workspaces, `guest-mappers/` (the real mappers) and `tests/guests/` (hostile
//! components and candidate mappers), are built by a nested `cargo build --release` into
//! `<target>/guest-build`, the directory `host/build.rs` uses too, so the mappers are built
//! once for both; the code that builds them, `host/build/guests.rs`, is shared with
//! `host/build.rs` as well.

use std::env;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[path = "../host/build/guests.rs"]
mod guests;

/// The workspaces to build, relative to the repository root, with their members' sources.
const WORKSPACES: [(&str, &[&str]); 2] = [
    ("guest-mappers", guests::MAPPER_SOURCES),
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
            "shapes-common",
            "shapes-v1/Cargo.toml",
            "shapes-v1/src",
            "shapes-v2/Cargo.toml",
            "shapes-v2/src",
            "shapes-v3/Cargo.toml",
            "shapes-v3/src",
            "default-catalogue/Cargo.toml",
            "default-catalogue/src",
            "renamed/Cargo.toml",
            "renamed/src",
            "identical/Cargo.toml",
            "identical/src",
            "failing/Cargo.toml",
            "failing/src",
        ],
    ),
];

/// The constants of `guests.rs`: name, component file, what it is.
const GUESTS: [(&str, &str, &str); 11] = [
    (
        "DEFAULT",
        "pakaura_mapper_default.wasm",
        "The default mapper (the event catalogue in the README).",
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
    (
        "SHAPES_V1",
        "shapes_v1.wasm",
        "`shapes` 1.0.0: an event and its payload schemas, the first version.",
    ),
    (
        "SHAPES_V2",
        "shapes_v2.wasm",
        "`shapes` 1.1.0: an additive change of `SHAPES_V1`.",
    ),
    (
        "SHAPES_V3",
        "shapes_v3.wasm",
        "`shapes` 2.0.0: a breaking change of `SHAPES_V1`.",
    ),
    (
        "RENAMED",
        "renamed.wasm",
        "A candidate `default`: the default mapper with `title` renamed `name` in `task.created`.",
    ),
    (
        "IDENTICAL",
        "identical.wasm",
        "A candidate `default` that maps exactly as the built-in default (another build of it).",
    ),
    (
        "FAILING",
        "failing.wasm",
        "A candidate `default` that fails on every `deleted` mutation and maps the rest as the default.",
    ),
];

fn main() -> ExitCode {
    let repo = guests::repo_root();
    println!("cargo:rerun-if-changed={}", repo.join("wit").display());

    let target_dir = guests::guest_target_dir();
    // The tests' one compile cache for mappers, where integration tests' own scratch
    // space is (`CARGO_TARGET_TMPDIR`, which the harness library is not given).
    let scratch = target_dir
        .parent()
        .expect("guest-build sits in the target directory")
        .join("tmp");
    println!(
        "cargo:rustc-env=PAKAURA_TEST_MAPPER_CACHE={}",
        scratch.join("mapper-cache").display()
    );
    for (workspace, sources) in WORKSPACES {
        if let Err(error) =
            guests::build_wasm_workspace(&repo.join(workspace), sources, &target_dir)
        {
            println!("cargo::error={error}");
            return ExitCode::FAILURE;
        }
    }

    let release = guests::release_dir(&target_dir);
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
