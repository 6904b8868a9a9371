//! The compile cache (`MAPPER_CACHE_DIR`): a second `mapper check` of an unchanged
//! component is served from the entry the first one stored, and an entry overwritten
//! with garbage is ignored and rebuilt.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use super::{V2_WASM, assert_success, pakaura, stderr, stdout};

/// The cache entries under `dir`: wasmtime's `modules/<compiler>/<hash>` files, without
/// the `.stats` files its worker keeps beside them.
fn entries(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(read) = fs::read_dir(dir) else { return };
        for entry in read {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                walk(&path, out);
            } else if !name.ends_with(".stats") && !name.contains(".wip") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("modules"), &mut out);
    out.sort();
    out
}

/// `mapper check` of `wasm` with the cache in `cache`, and the cache verdict it logged.
fn check(wasm: &Path, cache: &Path) -> (Output, &'static str) {
    let out = pakaura()
        .args(["mapper", "check"])
        .arg(wasm)
        .env("MAPPER_CACHE_DIR", cache)
        .env("RUST_LOG", "pakaura_host::mapper=debug")
        .output()
        .unwrap();
    assert_success(&out);
    let log = stderr(&out);
    let line = log
        .lines()
        .find(|l| l.contains("component compiled"))
        .unwrap_or_else(|| panic!("no compile line in the log:\n{log}"));
    let verdict = ["hit", "miss", "not stored", "off"]
        .into_iter()
        .find(|v| line.contains(&format!("\"{v}\"")))
        .unwrap_or_else(|| panic!("no cache verdict in {line}"));
    (out, verdict)
}

#[test]
fn a_second_check_is_served_from_the_cache_and_a_corrupt_entry_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = tmp.path().join("v2.wasm");
    fs::copy(V2_WASM, &wasm).unwrap();
    let cache = tmp.path().join("cache");

    let (first, verdict) = check(&wasm, &cache);
    assert_eq!(verdict, "miss");
    let stored = entries(&cache);
    assert_eq!(stored.len(), 1, "one entry for one component: {stored:?}");
    let entry = &stored[0];
    let bytes = fs::read(entry).unwrap();
    assert_eq!(&bytes[..4], [0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");

    let (second, verdict) = check(&wasm, &cache);
    assert_eq!(verdict, "hit", "{}", stderr(&second));
    assert_eq!(stdout(&second), stdout(&first));
    assert_eq!(
        fs::read(entry).unwrap(),
        bytes,
        "the entry was read, not rewritten"
    );

    fs::write(entry, b"garbage, not a compiled component").unwrap();
    let (third, verdict) = check(&wasm, &cache);
    assert_eq!(verdict, "miss", "the corrupt entry is not trusted");
    assert_eq!(
        stdout(&third),
        stdout(&first),
        "same component, same answer"
    );
    let rebuilt = fs::read(entry).unwrap();
    assert_eq!(&rebuilt[..4], [0x28, 0xb5, 0x2f, 0xfd], "rebuilt in place");

    let (_, verdict) = check(&wasm, &cache);
    assert_eq!(verdict, "hit", "the rebuilt entry serves the next run");
}

#[test]
fn without_a_cache_every_check_compiles() {
    let out = pakaura()
        .args(["mapper", "check", V2_WASM])
        .env("MAPPER_CACHE_DIR", "off")
        .env("RUST_LOG", "pakaura_host::mapper=debug")
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stderr(&out).contains("\"off\""), "{}", stderr(&out));
}
