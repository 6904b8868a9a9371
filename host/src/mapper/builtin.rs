//! The built-in default mapper (`guest-mappers/default`), embedded at build time
//! by `host/build.rs` so the host works without any mapper files.

/// The name under which the embedded default mapper is listed and addressed on
/// the command line.
pub const BUILTIN_DEFAULT: &str = "builtin:default";

/// The default mapper component, compiled for `wasm32-wasip2`.
pub static DEFAULT_MAPPER_WASM: &[u8] = include_bytes!(env!("PAKAURA_DEFAULT_MAPPER_WASM"));
