//! Checks a component against the contract before linking it, so a refusal says
//! what is wrong in the contract's terms (wrong file kind, other major version of
//! `pakaura:events`, unknown import, missing export) instead of a raw link error.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::bindings::{PACKAGE, SUPPORTED_MAJOR};
use super::error::Refusal;

/// The exports of the `mapper` world.
const EXPORTS: [&str; 2] = ["describe", "map-mutation"];

/// WASI 0.2 packages the host links (all of them deny access; see `imports`).
const WASI_PACKAGES: [&str; 6] = [
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
];

/// Refuses bytes that are not a WebAssembly component by their header.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), Refusal> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(Refusal::NotWasm);
    }
    // Bytes 6..8 are the layer: 0 for core modules, 1 for components.
    if bytes[6..8] == [0, 0] {
        return Err(Refusal::CoreModule);
    }
    Ok(())
}

/// Refuses a compiled component whose imports or exports do not fit the world.
pub(crate) fn check_contract(engine: &Engine, component: &Component) -> Result<(), Refusal> {
    let ty = component.component_type();
    let imports: Vec<&str> = ty.imports(engine).map(|(name, _)| name).collect();
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    for name in imports.iter().chain(&exports) {
        check_version(name)?;
    }
    for name in &imports {
        let ours = name.starts_with("pakaura:events/");
        let wasi = WASI_PACKAGES.iter().any(|p| name.starts_with(p)) && name.contains("@0.2.");
        if !ours && !wasi {
            return Err(Refusal::UnknownImport((*name).to_owned()));
        }
    }
    for export in EXPORTS {
        if !exports.contains(&export) {
            return Err(Refusal::MissingExport(export));
        }
    }
    Ok(())
}

/// Whether the component exports `event-schemas` (the `typed-mapper` world of 1.1.0); one
/// that does not is a mapper that declares no schemas.
pub(crate) fn exports_event_schemas(engine: &Engine, component: &Component) -> bool {
    component
        .component_type()
        .exports(engine)
        .any(|(name, _)| name == super::call::EVENT_SCHEMAS)
}

/// Refuses an import or export of `pakaura:events` at another major version.
fn check_version(name: &str) -> Result<(), Refusal> {
    let Some(rest) = name.strip_prefix(PACKAGE).and_then(|r| r.strip_prefix('/')) else {
        return Ok(());
    };
    let version = rest.split_once('@').map(|(_, v)| v);
    let major = version.and_then(|v| v.split('.').next()?.parse::<u64>().ok());
    if major == Some(SUPPORTED_MAJOR) {
        return Ok(());
    }
    Err(Refusal::WrongVersion {
        found: match version {
            Some(v) => format!("{PACKAGE}@{v}"),
            None => format!("an unversioned {PACKAGE}"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_tell_modules_from_components() {
        assert!(matches!(
            check_header(b"hello world"),
            Err(Refusal::NotWasm)
        ));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0"),
            Err(Refusal::CoreModule)
        ));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn versions_other_than_1_x_are_named() {
        assert!(check_version("pakaura:events/host@1.0.0").is_ok());
        assert!(check_version("pakaura:events/host@1.4.2").is_ok());
        assert!(check_version("wasi:io/streams@0.2.0").is_ok());
        let err = check_version("pakaura:events/host@2.0.0").unwrap_err();
        assert_eq!(
            err.to_string(),
            "built against pakaura:events@2.0.0; this host supports pakaura:events@1.x"
        );
        let err = check_version("pakaura:events/types").unwrap_err();
        assert!(err.to_string().contains("unversioned"));
    }
}
