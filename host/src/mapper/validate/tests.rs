//! Unit tests of the output rules.

use super::*;

fn event() -> wit::Event {
    wit::Event {
        topic: "task-events".into(),
        event_type: "task.created".into(),
        subject: Some("t1".into()),
        data: r#"{"task_id":"t1"}"#.into(),
        data_schema: None,
        extensions: vec![("tenant".into(), "acme".into())],
        partition_key: None,
    }
}

fn run(events: Vec<wit::Event>) -> Result<Vec<MappedEvent>, MapFailure> {
    let topics: BTreeSet<TopicName> = ["task-events", "task-updates"]
        .iter()
        .map(|t| TopicName::parse(t).unwrap())
        .collect();
    let producer = Producer {
        name: "m",
        version: "1.0.0",
        topics: &topics,
    };
    let limits = Limits {
        max_events: 3,
        max_event_bytes: 64,
        ..Limits::default()
    };
    validate(&producer, &limits, events)
}

fn invalid(ev: wit::Event) -> String {
    match run(vec![event(), ev]) {
        Err(MapFailure::InvalidOutput(msg)) => msg,
        other => panic!("expected invalid output, got {other:?}"),
    }
}

#[test]
fn a_valid_event_keeps_its_fields_and_index() {
    let out = run(vec![event(), event()]).unwrap();
    assert_eq!(out[1].index, 1);
    assert_eq!(out[0].mapper, "m");
    assert_eq!(out[0].data["task_id"], "t1");
    assert_eq!(
        out[0].extensions,
        [("tenant".to_owned(), "acme".to_owned())]
    );
}

#[test]
fn topics_must_be_allowed_and_declared() {
    let msg = invalid(wit::Event {
        topic: "secrets".into(),
        ..event()
    });
    assert!(
        msg.starts_with("event 1: topic `secrets` is not in ALLOWED_TOPICS"),
        "{msg}"
    );
    let msg = invalid(wit::Event {
        topic: "reminders".into(),
        ..event()
    });
    assert!(
        msg.contains("not declared by the mapper (declared: task-events, task-updates)"),
        "{msg}"
    );
}

#[test]
fn event_types_are_non_empty_printable_and_bounded() {
    assert!(
        invalid(wit::Event {
            event_type: String::new(),
            ..event()
        })
        .contains("event-type must not be empty")
    );
    assert!(
        invalid(wit::Event {
            event_type: "a\nb".into(),
            ..event()
        })
        .contains("control characters")
    );
    assert!(
        invalid(wit::Event {
            event_type: "x".repeat(257),
            ..event()
        })
        .contains("257 bytes")
    );
}

#[test]
fn data_must_be_json_within_the_byte_cap() {
    assert!(
        invalid(wit::Event {
            data: "{not json".into(),
            ..event()
        })
        .contains("data is not valid JSON")
    );
    let big = wit::Event {
        data: format!("\"{}\"", "x".repeat(100)),
        ..event()
    };
    assert_eq!(
        run(vec![big]).unwrap_err(),
        MapFailure::EventTooLarge {
            index: 0,
            bytes: 102,
            max: 64
        }
    );
}

#[test]
fn event_count_is_capped() {
    assert_eq!(
        run(vec![event(); 4]).unwrap_err(),
        MapFailure::TooManyEvents { count: 4, max: 3 }
    );
}

#[test]
fn extension_names_follow_cloudevents_and_do_not_shadow() {
    let with = |name: &str| wit::Event {
        extensions: vec![(name.into(), "v".into())],
        ..event()
    };
    assert!(invalid(with("Bad-Name")).contains("must be 1 to 20 characters of a-z and 0-9"));
    assert!(invalid(with("")).contains("must be 1 to 20"));
    assert!(invalid(with(&"a".repeat(21))).contains("must be 1 to 20"));
    assert!(invalid(with("id")).contains("shadow the CloudEvents attribute `id`"));
    assert!(invalid(with("traceparent")).contains("shadow the host-set attribute"));
    let twice = wit::Event {
        extensions: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
        ..event()
    };
    assert!(invalid(twice).contains("given twice"));
}

#[test]
fn optional_attributes_are_sane_when_present() {
    assert!(
        invalid(wit::Event {
            subject: Some(String::new()),
            ..event()
        })
        .contains("subject must not be empty")
    );
    assert!(
        invalid(wit::Event {
            data_schema: Some("a b".into()),
            ..event()
        })
        .contains("data-schema")
    );
    assert!(
        invalid(wit::Event {
            partition_key: Some("\u{7}".into()),
            ..event()
        })
        .contains("partition-key")
    );
}

#[test]
fn control_characters_are_found_in_ascii_and_in_unicode_text() {
    for text in [
        "a\u{0}b",
        "tab\there",
        "del\u{7f}",
        "ünï\u{85}code",
        "ü\u{9f}",
        "\n",
    ] {
        assert!(has_control(text), "{text:?}");
    }
    for text in ["plain", "ünïcödé ✓", "\u{a0}no-break space", "~"] {
        assert!(!has_control(text), "{text:?}");
    }
}
