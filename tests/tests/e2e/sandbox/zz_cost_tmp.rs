use super::{mutation, runtime};
use pakaura_host::mapper::{Limits, LoadedMapper, MapperSource};
use pakaura_tests::guests;
use std::time::Instant;

#[test]
#[ignore]
fn zz_cost() {
    let m = mutation();
    for (label, src) in [
        ("default", MapperSource::BuiltinDefault),
        ("misbehave-ok", MapperSource::File(guests::MISBEHAVE.into())),
    ] {
        let t = Instant::now();
        let mapper = LoadedMapper::load(
            runtime(),
            src,
            &Limits::default(),
            &Default::default(),
            &Default::default(),
        )
        .unwrap();
        let load = t.elapsed();
        for _ in 0..200 {
            mapper.map(&m).unwrap();
        }
        let n = 3000;
        let t = Instant::now();
        for _ in 0..n {
            mapper.map(&m).unwrap();
        }
        let per = t.elapsed() / n;
        eprintln!("{label}: load {load:?}, per call {per:?}");
    }
}
