//! Embedding the `pakaura mapper new` templates: writes `$OUT_DIR/templates.rs`, one
//! `TemplateFile` per file of `guest-mappers/templates/<lang>/`, its contents pulled in
//! with `include_bytes!`, so the binary scaffolds projects without this repository.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The languages, in the order `pakaura mapper new --lang` lists them.
const LANGUAGES: [&str; 3] = ["rust", "python", "js"];

/// Folders never embedded: the contract (written from `wit/` instead) and what a local
/// build or install of a template leaves behind.
const SKIPPED_DIRS: [&str; 7] = [
    "wit",
    "target",
    "node_modules",
    ".venv",
    "__pycache__",
    "wit_world",
    ".pytest_cache",
];

/// Writes `out` (the generated table) from the templates under `templates` and asks cargo
/// to rerun when they change.
pub(crate) fn embed(templates: &Path, out: &Path) -> Result<(), String> {
    println!("cargo:rerun-if-changed={}", templates.display());
    let mut code = String::from("&[\n");
    for lang in LANGUAGES {
        let root = templates.join(lang);
        let mut files = Vec::new();
        collect(&root, &root, &mut files)?;
        files.sort();
        if files.is_empty() {
            return Err(format!("the {lang} template {} is empty", root.display()));
        }
        for (relative, absolute) in files {
            let executable = is_executable(&absolute)?;
            writeln!(
                code,
                "    TemplateFile {{ lang: {lang:?}, path: {relative:?}, contents: include_bytes!({:?}), executable: {executable} }},",
                absolute.display().to_string()
            )
            .expect("writing to a String");
        }
    }
    code.push(']');
    fs::write(out, code).map_err(|e| format!("cannot write {}: {e}", out.display()))
}

/// Adds the files under `dir` to `files` as (path relative to `root` with `/`, path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_str()) {
                collect(root, &path, files)?;
            }
        } else if !name.ends_with(".wasm") {
            let relative = path
                .strip_prefix(root)
                .expect("under the root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push((relative, path));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn is_executable(path: &Path) -> Result<bool, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    Ok(meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_path: &Path) -> Result<bool, String> {
    Ok(false)
}
