//! W3C trace context: [`TraceParent`], the one parser of `traceparent` values in the host.
//!
//! Requests may carry a `traceparent` header; the host keeps a valid one with the mutation
//! and continues its trace in every envelope (see `events::envelope`).

use std::fmt;

/// A W3C trace context (`traceparent` value), normalised to version `00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// 16 bytes, never all zero.
    pub trace_id: [u8; 16],
    /// 8 bytes, never all zero.
    pub span_id: [u8; 8],
    /// Trace flags (01 = sampled).
    pub flags: u8,
}

impl TraceParent {
    /// Parses a `traceparent` value by the W3C rules: lower-case hex only, non-zero ids,
    /// version `ff` invalid, version `00` exactly four fields; a later version may append
    /// fields, and its first four are read as version `00`. `None` unless valid.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let mut parts = raw.split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        hex_lower::<1>(version)?;
        let trace_id = hex_lower::<16>(trace).filter(|t| t.iter().any(|&b| b != 0))?;
        let span_id = hex_lower::<8>(span).filter(|s| s.iter().any(|&b| b != 0))?;
        let [flags] = hex_lower::<1>(flags)?;
        Some(Self {
            trace_id,
            span_id,
            flags,
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            self.flags
        )
    }
}

/// `N` bytes from exactly `2N` lower-case hex digits.
fn hex_lower<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_contexts_parse_and_print_back() {
        let raw = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let tp = TraceParent::parse(raw).unwrap();
        assert_eq!(tp.to_string(), raw);
        assert_eq!(tp.flags, 1);
    }

    #[test]
    fn invalid_contexts_are_refused() {
        for bad in [
            "garbage",
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_later_version_is_read_as_version_00() {
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        let tp = TraceParent::parse(future).unwrap();
        assert_eq!(
            tp.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }
}
