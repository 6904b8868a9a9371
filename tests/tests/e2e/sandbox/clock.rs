//! The guest's wall clock: the host's time by default; the mutation's `occurred_at` once
//! the mapper's clock is frozen, as `pakaura mapper test` does, so fixtures are stable.

use pakaura_host::mapper::{Limits, LoadedMapper};
use pakaura_tests::guests;

use super::{bounded, load_with, mutation};

/// What the `clock` mode read as the time, in ms since the Unix epoch.
fn now_ms(mapper: LoadedMapper) -> (LoadedMapper, i64) {
    bounded(move || {
        let events = mapper.map(&mutation()).expect("the clock mode maps");
        let now = events[0].data["now_ms"]
            .as_i64()
            .expect("now_ms is a number");
        (mapper, now)
    })
}

#[test]
fn a_frozen_clock_reads_the_mutations_time_and_a_live_one_the_hosts() {
    let occurred_ms = mutation().occurred_at.timestamp_millis();
    let limits = Limits {
        instance_reuse: 4,
        ..Limits::default()
    };
    let mapper = load_with(guests::MISBEHAVE, &[("mode", "clock")], limits).unwrap();
    let before = chrono::Utc::now().timestamp_millis();
    let (mut mapper, live) = now_ms(mapper);
    assert!(live >= before, "the host's time: {live} < {before}");

    mapper.freeze_clock();
    let (mapper, frozen) = now_ms(mapper);
    assert_eq!(frozen, occurred_ms);
    let (_, again) = now_ms(mapper);
    assert_eq!(
        again, occurred_ms,
        "every call, never a reused instance's clock"
    );
}
