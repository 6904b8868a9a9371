//! `pakaura mapper new`: every language's project, the contract and the name in it, and
//! the refusals.

use std::fs;
use std::path::Path;

use super::{assert_success, pakaura, repo, run, stderr, stdout};

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn mapper_new_scaffolds_each_language_with_the_contract_and_the_name() {
    let tmp = tempfile::tempdir().unwrap();
    let contract = fs::read_to_string(repo().join("wit/events.wit")).unwrap();
    for (lang, must_have, build, test) in [
        (
            "rust",
            &["Cargo.toml", "src/lib.rs", "src/component.rs", ".gitignore"][..],
            "cargo build --release --target wasm32-wasip2",
            "cargo test",
        ),
        (
            "python",
            &[
                "app.py",
                "mapping.py",
                "build.sh",
                "pyproject.toml",
                "tests/test_mapping.py",
            ][..],
            "./build.sh",
            "python3 -m pytest",
        ),
        (
            "js",
            &[
                "package.json",
                "build.mjs",
                "src/component.js",
                "src/mapping.js",
                "test/mapping.test.js",
            ][..],
            "node build.mjs",
            "node --test",
        ),
    ] {
        let dir = tmp.path().join(lang);
        let out = pakaura()
            .args(["mapper", "new", "acme-audit", "--lang", lang, "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert_success(&out);
        let printed = stdout(&out);
        assert!(
            printed.contains(&format!("build: cd {} && {build}\n", dir.display())),
            "{lang}: {printed}"
        );
        assert!(
            printed.contains(&format!("test:  cd {} && {test}\n", dir.display())),
            "{lang}: {printed}"
        );

        let listed = files(&dir);
        for file in must_have.iter().chain(&["README.md", "wit/events.wit"]) {
            assert!(
                listed.iter().any(|f| f == file),
                "{lang}: no {file} in {listed:?}"
            );
        }
        assert_eq!(
            fs::read_to_string(dir.join("wit/events.wit")).unwrap(),
            contract,
            "{lang}"
        );
        for file in &listed {
            let text = fs::read_to_string(dir.join(file)).unwrap();
            assert!(!text.contains("{{"), "{lang}/{file}: a placeholder is left");
        }
        let readme = fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(readme.starts_with("# acme-audit\n"), "{lang}: {readme}");
        assert!(
            readme.contains("acme_audit.wasm"),
            "{lang}: the crate name is substituted"
        );
    }

    let cargo = fs::read_to_string(tmp.path().join("rust/Cargo.toml")).unwrap();
    assert!(cargo.contains("name = \"acme-audit\""), "{cargo}");
    assert!(cargo.contains("name = \"acme_audit\""), "{cargo}");
    let lib = fs::read_to_string(tmp.path().join("rust/src/lib.rs")).unwrap();
    assert!(
        lib.contains("\"acme-audit\".to_owned()"),
        "describe names the mapper: {lib}"
    );
    let package: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(tmp.path().join("js/package.json")).unwrap())
            .unwrap();
    assert_eq!(package["name"], "acme-audit");
    let mapping = fs::read_to_string(tmp.path().join("python/mapping.py")).unwrap();
    assert!(mapping.contains("NAME = \"acme-audit\""), "{mapping}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(tmp.path().join("python/build.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_ne!(mode & 0o111, 0, "build.sh is executable");
    }
}

#[test]
fn mapper_new_defaults_to_a_folder_named_after_the_mapper() {
    let tmp = tempfile::tempdir().unwrap();
    let out = pakaura()
        .args(["mapper", "new", "audit_v2", "--lang", "js"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_success(&out);
    assert!(tmp.path().join("audit_v2/src/component.js").is_file());
    assert!(
        stdout(&out).contains("cd audit_v2 && node build.mjs"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn mapper_new_refuses_a_folder_with_files_and_invalid_names() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = tmp.path().join("taken");
    fs::create_dir(&taken).unwrap();
    fs::write(taken.join("keep.txt"), "mine").unwrap();
    let out = pakaura()
        .args(["mapper", "new", "acme-audit", "--lang", "rust", "--dir"])
        .arg(&taken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&taken.display().to_string()) && err.contains("not empty"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(files(&taken), ["keep.txt"], "nothing was written");

    // An empty folder is fine.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let out = pakaura()
        .args(["mapper", "new", "acme-audit", "--lang", "python", "--dir"])
        .arg(&empty)
        .output()
        .unwrap();
    assert_success(&out);

    for name in [
        "Acme",
        "acme.audit",
        "9lives",
        "a/b",
        "",
        "tenant audit",
        &"a".repeat(65),
    ] {
        let dir = tmp.path().join("bad");
        let out = pakaura()
            .args(["mapper", "new", name, "--lang", "js", "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name:?} must be refused");
        let err = stderr(&out);
        assert!(err.contains("invalid mapper name"), "{name:?}: {err}");
        assert!(!dir.exists(), "{name:?}: nothing was written");
    }

    let out = run(["mapper", "new", "acme", "--lang", "cobol"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap refuses an unknown language"
    );
    assert!(
        stderr(&out).contains("rust, python, js"),
        "{}",
        stderr(&out)
    );
}
