//! Events on their way out: the CloudEvents 1.0 envelope the host wraps around
//! each mapped event.

pub mod envelope;

pub use envelope::{Envelope, build_envelope, envelope_id};
