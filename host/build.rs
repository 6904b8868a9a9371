//! Builds the mapper components of `guest-mappers/` for wasm32-wasip2 and hands the default
//! mapper's path to the host crate as `PAKAURA_DEFAULT_MAPPER_WASM` (embedded with
//! `include_bytes!`).
//!
//! It also embeds the `pakaura mapper new` templates (`build/templates.rs` writes
//! `$OUT_DIR/templates.rs`).
//!
//! `guest-mappers/` is a workspace of its own, built by a nested `cargo build --release`
//! into `<target>/guest-build` (see `build/guests.rs`, shared with `tests/build.rs`, which
//! builds the test guests there too).

use std::process::ExitCode;

#[path = "build/guests.rs"]
mod guests;
#[path = "build/templates.rs"]
mod templates;

fn main() -> ExitCode {
    let repo = guests::repo_root();
    println!("cargo:rerun-if-changed={}", repo.join("wit").display());
    // `sqlx::migrate!` embeds the migrations, but on stable Rust it cannot ask cargo to
    // watch their folder: without this, a new migration would not rebuild the crate.
    println!(
        "cargo:rerun-if-changed={}",
        repo.join("host").join("migrations").display()
    );

    let out_dir = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let templates = repo.join("guest-mappers").join("templates");
    if let Err(error) = templates::embed(&templates, &out_dir.join("templates.rs")) {
        println!("cargo::error={error}");
        return ExitCode::FAILURE;
    }

    let target_dir = guests::guest_target_dir();
    let workspace = repo.join("guest-mappers");
    if let Err(error) =
        guests::build_wasm_workspace(&workspace, guests::MAPPER_SOURCES, &target_dir)
    {
        println!("cargo::error={error}");
        return ExitCode::FAILURE;
    }
    let release = guests::release_dir(&target_dir);
    // The v2 example, for the host's own tests of the mapper tool.
    println!(
        "cargo:rustc-env=PAKAURA_V2_MAPPER_WASM={}",
        release.join("pakaura_mapper_v2.wasm").display()
    );
    let default = release.join("pakaura_mapper_default.wasm");
    println!(
        "cargo:rustc-env=PAKAURA_DEFAULT_MAPPER_WASM={}",
        default.display()
    );
    ExitCode::SUCCESS
}
