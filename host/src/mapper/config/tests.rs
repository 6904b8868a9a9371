//! Unit tests of the mapper runtime configuration.

use clap::Parser;

use super::*;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    mapper: MapperConfig,
}

fn parse(args: &[&str]) -> Result<MapperConfig, clap::Error> {
    Cli::try_parse_from(std::iter::once("pakaura").chain(args.iter().copied())).map(|c| c.mapper)
}

#[test]
fn defaults_match_the_documented_ones() {
    let parsed = parse(&[]).unwrap();
    let default = MapperConfig::default();
    assert_eq!(parsed.mapper_deadline, default.mapper_deadline);
    assert_eq!(parsed.mapper_memory_limit, 64 << 20);
    assert_eq!(parsed.mapper_max_events, 64);
    assert_eq!(parsed.mapper_max_event_bytes, 256 << 10);
    assert_eq!(parsed.allowed_topics, default.allowed_topics);
    assert_eq!(parsed.allowed_topics.len(), 3);
    assert!(parsed.mapper_builtin);
}

#[test]
fn flags_accept_units_and_lists() {
    let c = parse(&[
        "--mapper-deadline",
        "2s",
        "--mapper-memory-limit",
        "16 MiB",
        "--allowed-topics",
        "a,b.c",
        "--mapper-builtin",
        "false",
    ])
    .unwrap();
    assert_eq!(c.mapper_deadline, Duration::from_secs(2));
    assert_eq!(c.mapper_memory_limit, 16 << 20);
    assert_eq!(
        c.allowed_topics
            .iter()
            .map(TopicName::as_str)
            .collect::<Vec<_>>(),
        ["a", "b.c"]
    );
    assert!(!c.mapper_builtin);
}

#[test]
fn invalid_values_name_the_setting() {
    for (flag, value) in [
        ("--mapper-deadline", "soon"),
        ("--mapper-memory-limit", "64 parsecs"),
        ("--mapper-memory-limit", "10"),
        ("--allowed-topics", "ok,not ok"),
        ("--mapper-max-events", "0"),
    ] {
        let err = parse(&[flag, value]).unwrap_err().to_string();
        assert!(err.contains(flag), "{flag} {value}: {err}");
    }
}

#[test]
fn byte_counts_parse_with_units() {
    assert_eq!(parse_bytes("65536"), Ok(65536));
    assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
    assert_eq!(parse_bytes("1 kb"), Ok(1000));
    assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
    assert!(parse_bytes("MiB").is_err());
    assert!(parse_bytes("12 apples").is_err());
    assert!(parse_bytes("99999999999999999999GiB").is_err());
}

#[test]
fn the_compile_cache_has_a_folder_of_its_own() {
    let config = MapperConfig::default();
    let dir = config
        .cache_dir()
        .expect("a cache by default (HOME is set)");
    assert!(
        dir.ends_with("pakaura/mappers"),
        "its clean-up deletes what else it finds: {}",
        dir.display()
    );
    let off = MapperConfig {
        mapper_cache_dir: Some("off".into()),
        ..MapperConfig::default()
    };
    assert_eq!(off.cache_dir(), None);
}
