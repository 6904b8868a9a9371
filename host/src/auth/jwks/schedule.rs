//! When the key set is fetched again: a pure policy over the provider's `Cache-Control`
//! and the outcome of the last fetch.
//!
//! After a success the provider's `max-age` decides, held between `JWT_JWKS_REFRESH_MIN`
//! and `JWT_JWKS_REFRESH_MAX` (`no-cache`/`no-store` mean the minimum; no `max-age` means
//! the maximum): providers send anything from `no-cache` (every request) to a day, and
//! neither hammering them nor trusting a withdrawn key for a day is wanted. After a
//! failure the fetch is retried with a doubling delay from 1 s, capped at a minute (and
//! at the minimum), so a provider that comes back is noticed quickly.

use std::time::Duration;

use hyper::HeaderMap;
use hyper::header::CACHE_CONTROL;

/// The longest wait between two attempts while fetches fail.
const RETRY_CAP: Duration = Duration::from_secs(60);

/// What the provider said about caching its set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// `max-age=N`.
    MaxAge(Duration),
    /// `no-cache` or `no-store`: fetch again as soon as allowed.
    Revalidate,
    /// Nothing usable.
    Unspecified,
}

/// Reads the `Cache-Control` headers of a response.
pub(crate) fn freshness(headers: &HeaderMap) -> Freshness {
    let mut max_age = None;
    for directive in headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let (name, value) = directive
            .split_once('=')
            .map_or((directive.trim(), None), |(n, v)| {
                (n.trim(), Some(v.trim().trim_matches('"')))
            });
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return Freshness::Revalidate;
        }
        if name.eq_ignore_ascii_case("max-age")
            && let Some(seconds) = value.and_then(|v| v.parse::<u64>().ok())
        {
            max_age = Some(Duration::from_secs(seconds));
        }
    }
    max_age.map_or(Freshness::Unspecified, Freshness::MaxAge)
}

/// The bounds of the periodic refresh.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) min: Duration,
    pub(crate) max: Duration,
}

impl Bounds {
    /// The wait after a successful fetch.
    pub(crate) fn after_success(self, freshness: Freshness) -> Duration {
        match freshness {
            Freshness::MaxAge(age) => age.clamp(self.min, self.max),
            Freshness::Revalidate => self.min,
            Freshness::Unspecified => self.max,
        }
    }

    /// The wait after the `failures`-th failure in a row (1 for the first).
    pub(crate) fn after_failure(self, failures: u32) -> Duration {
        let doubling = Duration::from_secs(1u64 << failures.saturating_sub(1).min(16));
        doubling.min(RETRY_CAP).min(self.min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn with(values: &[&'static str]) -> Freshness {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(CACHE_CONTROL, HeaderValue::from_static(v));
        }
        freshness(&headers)
    }

    const BOUNDS: Bounds = Bounds {
        min: Duration::from_secs(300),
        max: Duration::from_secs(3600),
    };

    #[test]
    fn cache_control_is_read() {
        assert_eq!(with(&[]), Freshness::Unspecified);
        assert_eq!(
            with(&["public, max-age=900, stale-while-revalidate=60"]),
            Freshness::MaxAge(Duration::from_secs(900))
        );
        assert_eq!(
            with(&["public", "Max-Age=\"60\""]),
            Freshness::MaxAge(Duration::from_secs(60))
        );
        assert_eq!(with(&["max-age=60, no-cache"]), Freshness::Revalidate);
        assert_eq!(with(&["no-store"]), Freshness::Revalidate);
        assert_eq!(with(&["max-age=soon"]), Freshness::Unspecified);
    }

    #[test]
    fn the_provider_decides_within_the_bounds() {
        let secs = Duration::from_secs;
        assert_eq!(
            BOUNDS.after_success(Freshness::MaxAge(secs(900))),
            secs(900)
        );
        assert_eq!(BOUNDS.after_success(Freshness::MaxAge(secs(15))), secs(300));
        assert_eq!(
            BOUNDS.after_success(Freshness::MaxAge(secs(86_400))),
            secs(3600)
        );
        assert_eq!(BOUNDS.after_success(Freshness::Revalidate), secs(300));
        assert_eq!(BOUNDS.after_success(Freshness::Unspecified), secs(3600));
    }

    #[test]
    fn failures_back_off_to_a_minute() {
        let secs = Duration::from_secs;
        let waits: Vec<Duration> = (1..=8).map(|n| BOUNDS.after_failure(n)).collect();
        assert_eq!(
            waits,
            [1, 2, 4, 8, 16, 32, 60, 60].map(secs),
            "doubling, capped"
        );
        assert_eq!(BOUNDS.after_failure(u32::MAX), secs(60));
        let tight = Bounds {
            min: secs(2),
            max: secs(10),
        };
        assert_eq!(tight.after_failure(5), secs(2), "never past the minimum");
    }
}
