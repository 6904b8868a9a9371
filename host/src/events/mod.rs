//! Events on their way out: the CloudEvents 1.0 envelope the host wraps around
//! each mapped event (SPEC §5).

pub mod envelope;

pub use envelope::{TraceParent, build_envelope, envelope_id};
