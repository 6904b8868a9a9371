//! The published URL of a schema: `{SCHEMA_BASE_URL}/schemas/{mapper}/{version}/{event type}`,
//! each segment percent-encoded, so any printable version or event type makes one path.

use std::fmt::Write as _;

/// The URL where the host publishes the schema of `event_type` of `mapper` at `version`.
pub fn schema_url(base: &str, mapper: &str, version: &str, event_type: &str) -> String {
    let mut url = base.trim_end_matches('/').to_owned();
    url.push_str("/schemas");
    for segment in [mapper, version, event_type] {
        url.push('/');
        encode_segment(&mut url, segment);
    }
    url
}

/// Appends `segment` percent-encoded: everything but RFC 3986's unreserved characters.
fn encode_segment(out: &mut String, segment: &str) {
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(
            schema_url("http://h:1/", "default", "1.0.0", "task.created"),
            "http://h:1/schemas/default/1.0.0/task.created"
        );
        assert_eq!(
            schema_url("https://gw/events", "m", "1.0 beta", "a/b"),
            "https://gw/events/schemas/m/1.0%20beta/a%2Fb"
        );
    }
}
