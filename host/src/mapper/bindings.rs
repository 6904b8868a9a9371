//! Rust bindings of the WIT world `pakaura:events/mapper@1.x`, generated from
//! `wit/events.wit` at the workspace root (the only copy of the contract). The bindings
//! require only that world's exports; the optional `event-schemas` of `typed-mapper`
//! (1.1.0) is looked up by name (`call.rs`), so a 1.0.0 component links unchanged.
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
