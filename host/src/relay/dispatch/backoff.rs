//! Capped exponential back-off with jitter.

use std::time::Duration;

/// The delay before retry number `attempt` (1 = first retry): between half and all of
/// `min(base * 2^(attempt-1), max)`, placed by `jitter` (0 to 1) in that range.
pub(super) fn delay(attempt: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)));
    let cap = exp.min(max);
    let half = cap / 2;
    half + cap.mul_f64(jitter.clamp(0.0, 1.0) * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        for _ in 0..100 {
            let jitter = rand::random::<f64>();
            let first = delay(1, base, max, jitter);
            assert!(first >= Duration::from_millis(50) && first <= base);
            let late = delay(30, base, max, jitter);
            assert!(late >= max / 2 && late <= max);
        }
        assert!(delay(4, base, max, 0.0) >= Duration::from_millis(400));
        assert_eq!(delay(1, base, max, 1.0), base);
    }
}
