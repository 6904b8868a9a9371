//! Capped exponential back-off with full jitter.

use std::time::Duration;

/// The delay before retry number `attempt` (1 = first retry): a random duration
/// between half and all of `min(base * 2^(attempt-1), max)`.
pub(super) fn delay(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)));
    let cap = exp.min(max);
    let half = cap / 2;
    half + cap.mul_f64(rand::random::<f64>() * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        for _ in 0..100 {
            let first = delay(1, base, max);
            assert!(first >= Duration::from_millis(50) && first <= base);
            let late = delay(30, base, max);
            assert!(late >= max / 2 && late <= max);
        }
        assert!(delay(4, base, max) >= Duration::from_millis(400));
    }
}
