//! Slowing down guessed admin tokens: each refused console login waits longer than the
//! one before (250 ms, doubling, at most 8 s) while refusals keep coming; ten minutes
//! without one start it again from 250 ms. A login with the right token is answered at
//! once and starts it again too. The count is the host's (not per client: behind a
//! proxy every client has the proxy's address), so a guesser slows down every wrong
//! attempt, never a right one.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The first refusal's wait.
const FIRST: Duration = Duration::from_millis(250);
/// The longest wait.
const MOST: Duration = Duration::from_secs(8);
/// Refusals further apart than this start again from [`FIRST`].
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// Recent refused logins.
#[derive(Debug, Default)]
pub(crate) struct LoginThrottle {
    recent: Mutex<Option<(u32, Instant)>>,
}

impl LoginThrottle {
    /// A login was refused: how long to wait before answering.
    pub(crate) fn refused(&self) -> Duration {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let count = match *recent {
            Some((n, at)) if now.duration_since(at) < FORGET_AFTER => n + 1,
            _ => 1,
        };
        *recent = Some((count, now));
        wait_after(count)
    }

    /// A login succeeded.
    pub(crate) fn accepted(&self) {
        *self.recent.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// The wait after the `n`th refusal in a row (counting from 1).
fn wait_after(n: u32) -> Duration {
    let doublings = n.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << doublings).min(MOST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_waits_twice_as_long_up_to_eight_seconds() {
        assert_eq!(wait_after(1), Duration::from_millis(250));
        assert_eq!(wait_after(2), Duration::from_millis(500));
        assert_eq!(wait_after(4), Duration::from_secs(2));
        assert_eq!(wait_after(6), Duration::from_secs(8));
        assert_eq!(wait_after(1000), Duration::from_secs(8));
    }

    #[test]
    fn a_right_token_starts_it_again() {
        let t = LoginThrottle::default();
        assert_eq!(t.refused(), Duration::from_millis(250));
        assert_eq!(t.refused(), Duration::from_millis(500));
        t.accepted();
        assert_eq!(t.refused(), Duration::from_millis(250));
    }
}
