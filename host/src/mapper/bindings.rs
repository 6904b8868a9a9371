//! Rust bindings of the WIT world `pakaura:events/mapper@1.0.0`, generated from
//! `wit/events.wit` at the workspace root (the only copy of the contract).
//!
//! `path` is resolved relative to the host crate's `CARGO_MANIFEST_DIR`.
#![allow(unreachable_pub, missing_docs)]

wasmtime::component::bindgen!({
    world: "mapper",
    path: "../wit",
});

/// The package version this host implements; components built against another
/// major version are refused at load.
pub(crate) const PACKAGE: &str = "pakaura:events";
/// The major version of [`PACKAGE`] this host supports.
pub(crate) const SUPPORTED_MAJOR: u64 = 1;
