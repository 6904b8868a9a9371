//! `pakaura mapper new`: scaffolds a mapper project from the templates embedded in the
//! binary (`guest-mappers/templates/<lang>/`, see `host/build/templates.rs`) and the
//! contract, `wit/events.wit`, so it works outside this repository.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::mapper::check_mapper_name;

/// One file of a template, embedded at build time.
struct TemplateFile {
    /// `rust`, `python` or `js`.
    lang: &'static str,
    /// Its path in the project, `/`-separated.
    path: &'static str,
    contents: &'static [u8],
    /// Whether it is a script to run (`build.sh`).
    executable: bool,
}

/// Every template file, by language.
static TEMPLATE_FILES: &[TemplateFile] = include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// The contract every project gets a copy of, as `wit/events.wit`.
const CONTRACT: &str = include_str!("../../../wit/events.wit");

/// The languages a mapper can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, built with cargo for wasm32-wasip2.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js.
    Js,
}

impl Lang {
    fn key(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Python => "python",
            Self::Js => "js",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Why a project was not scaffolded.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name is no valid mapper or package name.
    #[error("invalid mapper name {0}")]
    InvalidName(String),
    /// The destination holds files already.
    #[error("{} exists and is not empty; choose another --dir or remove it", .0.display())]
    NotEmpty(PathBuf),
    /// Reading or writing the destination failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
}

/// What was scaffolded, with the commands to run next.
#[derive(Debug)]
pub struct Scaffolded {
    /// The project's folder.
    pub dir: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<String>,
    /// The one command that runs the project's unit tests.
    pub test: &'static str,
    /// The one command that builds the component.
    pub build: &'static str,
    /// The component the build writes, relative to `dir`.
    pub component: String,
    /// What to install once before building, if anything.
    pub setup: Option<&'static str>,
}

/// Scaffolds a `lang` mapper called `name` into `dir`, which must not exist or be empty.
pub fn scaffold(name: &str, lang: Lang, dir: &Path) -> Result<Scaffolded, ScaffoldError> {
    check_name(name)?;
    let crate_name = name.replace('-', "_");
    if !is_empty_or_missing(dir)? {
        return Err(ScaffoldError::NotEmpty(dir.to_path_buf()));
    }
    let mut files = Vec::new();
    for file in TEMPLATE_FILES.iter().filter(|f| f.lang == lang.key()) {
        let contents = substitute(file.contents, name, &crate_name);
        write(dir, file.path, &contents, file.executable)?;
        files.push(file.path.to_owned());
    }
    write(dir, "wit/events.wit", CONTRACT.as_bytes(), false)?;
    files.push("wit/events.wit".to_owned());
    let (test, build, component, setup) = match lang {
        Lang::Rust => (
            "cargo test",
            "cargo build --release --target wasm32-wasip2",
            format!("target/wasm32-wasip2/release/{crate_name}.wasm"),
            Some("rustup target add wasm32-wasip2"),
        ),
        Lang::Python => (
            "python3 -m pytest",
            "./build.sh",
            format!("{crate_name}.wasm"),
            Some(
                "python3 -m venv .venv && .venv/bin/pip install componentize-py==0.25.1 pytest && export PATH=$PWD/.venv/bin:$PATH",
            ),
        ),
        Lang::Js => (
            "node --test",
            "node build.mjs",
            format!("{crate_name}.wasm"),
            Some("npm install"),
        ),
    };
    Ok(Scaffolded {
        dir: dir.to_path_buf(),
        files,
        test,
        build,
        component,
        setup,
    })
}

/// A mapper name the contract accepts that is also a Cargo, npm and Python package name
/// and a file name: 1 to 64 characters of `a-z`, `0-9`, `-` and `_`, starting with a letter.
fn check_name(name: &str) -> Result<(), ScaffoldError> {
    check_mapper_name(name).map_err(ScaffoldError::InvalidName)?;
    let package = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'));
    if package {
        Ok(())
    } else {
        Err(ScaffoldError::InvalidName(format!(
            "`{}`: a new mapper's name is also its package name: use a-z, 0-9, `-` and `_`, starting with a letter",
            name.escape_debug()
        )))
    }
}

fn is_empty_or_missing(dir: &Path) -> Result<bool, ScaffoldError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(source) => Err(ScaffoldError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Replaces `{{name}}` (as given, kebab-case) and `{{crate_name}}` (`-` as `_`).
fn substitute(contents: &[u8], name: &str, crate_name: &str) -> Vec<u8> {
    match std::str::from_utf8(contents) {
        Ok(text) => text
            .replace("{{name}}", name)
            .replace("{{crate_name}}", crate_name)
            .into_bytes(),
        Err(_) => contents.to_vec(),
    }
}

fn write(
    dir: &Path,
    relative: &str,
    contents: &[u8],
    executable: bool,
) -> Result<(), ScaffoldError> {
    let path = relative
        .split('/')
        .fold(dir.to_path_buf(), |p, part| p.join(part));
    let io_error = |source| ScaffoldError::Io {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| ScaffoldError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(&path, contents).map_err(io_error)?;
    #[cfg(unix)]
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(io_error)?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_a_template_and_placeholders_are_known() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            let files: Vec<_> = TEMPLATE_FILES
                .iter()
                .filter(|f| f.lang == lang.key())
                .collect();
            assert!(files.iter().any(|f| f.path == "README.md"), "{lang}");
            for file in files {
                let text = substitute(file.contents, "a", "a");
                let text = String::from_utf8_lossy(&text);
                assert!(
                    !text.contains("{{"),
                    "{lang}/{}: unknown placeholder",
                    file.path
                );
            }
        }
    }

    #[test]
    fn names_are_mapper_and_package_names() {
        for ok in ["acme-audit", "a", "audit_v2", &"a".repeat(64)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Acme",
            "1audit",
            "acme.audit",
            "-x",
            "a b",
            "ü",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn placeholders_are_substituted() {
        let out = substitute(b"{{name}} {{crate_name}}", "acme-audit", "acme_audit");
        assert_eq!(out, b"acme-audit acme_audit");
    }
}
