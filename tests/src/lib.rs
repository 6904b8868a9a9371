//! End-to-end test crate for the Pakaura host; the tests live in `tests/e2e/`.

pub mod guests {
    //! Absolute paths of the wasm components the tests load, built by `tests/build.rs`.
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}
