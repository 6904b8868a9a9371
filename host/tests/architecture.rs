//! ARCHITECTURE.md's table of modules tells the truth: for each top-level module of
//! `host/src`, the modules it says it depends on are exactly those whose items its code
//! names (`crate::<module>`), and every module has a row.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn host_src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules: `name.rs` or `name/`, but the crate roots.
fn modules() -> BTreeSet<String> {
    std::fs::read_dir(host_src())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lib.rs" && n != "main.rs")
        .map(|n| n.trim_end_matches(".rs").to_owned())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules `module`'s code names through `crate::<name>` (comments left out).
fn used_by(module: &str, all: &BTreeSet<String>) -> BTreeSet<String> {
    let mut files = Vec::new();
    let dir = host_src().join(module);
    if dir.is_dir() {
        rust_files(&dir, &mut files);
    }
    let file = host_src().join(format!("{module}.rs"));
    if file.is_file() {
        files.push(file);
    }
    let mut used = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if name != module && all.contains(&name) {
                    used.insert(name);
                }
            }
        }
    }
    used
}

/// The table's rows: module name (without `/` or `.rs`) → the backticked names of its
/// last column.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ARCHITECTURE.md"),
    )
    .unwrap();
    let section = doc
        .split("## Who owns what")
        .nth(1)
        .expect("ARCHITECTURE.md has a section `Who owns what`");
    let backticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').collect();
        let module = backticked(cells[1]).remove(0);
        let module = module
            .trim_end_matches('/')
            .trim_end_matches(".rs")
            .to_owned();
        let deps = backticked(cells[cells.len() - 2]).into_iter().collect();
        rows.insert(module, deps);
    }
    rows
}

#[test]
fn the_module_table_lists_every_dependency_and_no_other() {
    let all = modules();
    let documented = documented();
    let mut wrong = Vec::new();
    for module in &all {
        let actual = used_by(module, &all);
        match documented.get(module) {
            None => wrong.push(format!("{module}: no row (uses {actual:?})")),
            Some(said) if said != &actual => {
                let missing: Vec<_> = actual.difference(said).collect();
                let extra: Vec<_> = said.difference(&actual).collect();
                wrong.push(format!(
                    "{module}: used but not listed {missing:?}, listed but not used {extra:?}"
                ));
            }
            Some(_) => {}
        }
    }
    for module in documented.keys().filter(|m| !all.contains(*m)) {
        wrong.push(format!("{module}: a row for a module that does not exist"));
    }
    assert!(
        wrong.is_empty(),
        "ARCHITECTURE.md is out of date:\n{}",
        wrong.join("\n")
    );
}
