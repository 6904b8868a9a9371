//! Unit tests of the envelope.

use chrono::{TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::domain::{Action, Origin, Task};
use crate::trace::TraceParent;

fn mutation(correlation_id: &str) -> Mutation {
    let at = Utc.with_ymd_and_hms(2026, 2, 9, 14, 30, 0).unwrap();
    Mutation {
        id: Uuid::parse_str("6f1c2b8e-1f7a-4c1e-9a51-0c9f4a2b7d10").unwrap(),
        action: Action::Created,
        task: Task {
            id: Uuid::from_u128(7),
            user_id: "user-1".into(),
            title: "buy milk".into(),
            description: None,
            completed: false,
            due_date: None,
            created_at: at,
            updated_at: at,
        },
        changes: vec![],
        origin: Origin::Rest,
        correlation_id: correlation_id.into(),
        occurred_at: at,
    }
}

fn event(index: usize) -> MappedEvent {
    MappedEvent {
        mapper: "default".into(),
        mapper_version: "1.0.0".into(),
        index,
        topic: "task-events".into(),
        event_type: "task.created".into(),
        subject: Some("t".into()),
        data: json!({"task_id": "t"}),
        data_schema: None,
        extensions: vec![("tenant".into(), "acme".into())],
        partition_key: None,
    }
}

const CID: &str = "9876fedc-ba98-4654-b210-0123456789ab";

#[test]
fn ids_are_deterministic_per_mutation_mapper_and_index() {
    let m = mutation(CID);
    let a = build_envelope(&m, &event(0), "pakaura/api", None).document();
    assert_eq!(
        a,
        build_envelope(&m, &event(0), "pakaura/api", None).document()
    );
    let b = build_envelope(&m, &event(1), "pakaura/api", None).document();
    assert_ne!(a["id"], b["id"]);
    let other = MappedEvent {
        mapper: "v2".into(),
        ..event(0)
    };
    assert_ne!(
        a["id"],
        build_envelope(&m, &other, "pakaura/api", None).document()["id"]
    );
    assert_eq!(a["id"], envelope_id(m.id, "default", 0).to_string());
    assert_eq!(
        Uuid::parse_str(a["id"].as_str().unwrap())
            .unwrap()
            .get_version_num(),
        5
    );
}

#[test]
fn the_envelope_has_every_attribute() {
    let m = mutation(CID);
    let e = build_envelope(&m, &event(0), "pakaura/api", None).document();
    assert_eq!(e["specversion"], "1.0");
    assert_eq!(e["source"], "pakaura/api");
    assert_eq!(e["type"], "task.created");
    assert_eq!(e["time"], "2026-02-09T14:30:00.000Z");
    assert_eq!(e["subject"], "t");
    assert_eq!(e["datacontenttype"], "application/json");
    assert_eq!(e["data"]["task_id"], "t");
    assert_eq!(e["traceid"], CID);
    assert_eq!(e["mappername"], "default");
    assert_eq!(e["mapperversion"], "1.0.0");
    assert_eq!(e["tenant"], "acme");
    assert!(e.get("dataschema").is_none());
}

#[test]
fn traceparent_is_valid_and_derived_from_a_uuid_correlation_id() {
    let e = build_envelope(&mutation(CID), &event(0), "s", None).document();
    let tp = e["traceparent"].as_str().unwrap();
    assert!(TraceParent::parse(tp).is_some(), "{tp}");
    assert!(
        tp.starts_with("00-9876fedcba984654b2100123456789ab-"),
        "{tp}"
    );
    assert!(tp.ends_with("-01"));
}

#[test]
fn a_non_uuid_correlation_id_is_hashed_into_a_trace_id() {
    for cid in ["req-42", "", "00000000-0000-0000-0000-000000000000"] {
        let e = build_envelope(&mutation(cid), &event(0), "s", None).document();
        let tp = TraceParent::parse(e["traceparent"].as_str().unwrap()).unwrap();
        assert_ne!(tp.trace_id, [0; 16], "{cid:?}");
    }
}

#[test]
fn a_valid_incoming_trace_id_and_flags_are_kept() {
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let e = build_envelope(&mutation(CID), &event(0), "s", TraceParent::parse(incoming)).document();
    let tp = e["traceparent"].as_str().unwrap();
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{tp}"
    );
    assert!(tp.ends_with("-00"), "{tp}");
    assert!(
        !tp.contains("00f067aa0ba902b7"),
        "the span is the envelope's own"
    );
}

#[test]
fn invalid_incoming_contexts_are_ignored() {
    for bad in [
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    ] {
        assert!(TraceParent::parse(bad).is_none(), "{bad}");
        let e = build_envelope(&mutation(CID), &event(0), "s", TraceParent::parse(bad)).document();
        assert!(
            e["traceparent"]
                .as_str()
                .unwrap()
                .starts_with("00-9876fedc"),
            "{bad}"
        );
    }
    let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
    assert!(TraceParent::parse(future).is_some());
}

#[test]
fn optional_attributes_appear_only_when_set() {
    let ev = MappedEvent {
        subject: None,
        data_schema: Some("https://schemas.example/task/1".into()),
        ..event(0)
    };
    let e = build_envelope(&mutation(CID), &ev, "s", None).document();
    assert!(e.get("subject").is_none());
    assert_eq!(e["dataschema"], "https://schemas.example/task/1");
}

#[test]
fn an_extension_cannot_overwrite_a_core_attribute() {
    let ev = MappedEvent {
        extensions: vec![("id".into(), "mine".into()), ("source".into(), "x".into())],
        ..event(0)
    };
    let e = build_envelope(&mutation(CID), &ev, "pakaura/api", None).document();
    assert_ne!(e["id"], "mine");
    assert_eq!(e["source"], "pakaura/api");
}

#[test]
fn the_text_is_compact_json_with_attributes_in_name_order() {
    let ev = MappedEvent {
        // Names that sort among, before and after the core attributes, one of them twice
        // over a host attribute.
        extensions: vec![
            ("zeta".into(), "z".into()),
            ("aardvark".into(), "a".into()),
            ("datax".into(), "d".into()),
            ("subject".into(), "not mine".into()),
        ],
        data: json!({"b": [1, {"y": null, "x": "\u{1}"}], "a": "é"}),
        data_schema: Some("https://schemas.example/task/1".into()),
        ..event(0)
    };
    let envelope = build_envelope(&mutation(CID), &ev, "pakaura/api", None);
    // The text a JSON map of the same document writes: sorted names, no spaces.
    let document = envelope.document();
    assert_eq!(envelope.body, serde_json::to_string(&document).unwrap());
    let names: Vec<&str> = document
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        [
            "aardvark",
            "data",
            "datacontenttype",
            "dataschema",
            "datax",
            "id",
            "mappername",
            "mapperversion",
            "source",
            "specversion",
            "subject",
            "time",
            "traceid",
            "traceparent",
            "type",
            "zeta",
        ]
    );
    assert_eq!(document["subject"], "t");
    assert!(
        envelope
            .body
            .contains(r#""data":{"a":"é","b":[1,{"x":"\u0001","y":null}]}"#)
    );
}

#[test]
fn of_two_extensions_of_one_name_the_later_wins_as_in_a_json_map() {
    let ev = MappedEvent {
        extensions: vec![
            ("tenant".into(), "first".into()),
            ("tenant".into(), "later".into()),
        ],
        ..event(0)
    };
    let envelope = build_envelope(&mutation(CID), &ev, "pakaura/api", None);
    assert_eq!(envelope.document()["tenant"], "later");
    assert_eq!(envelope.body.matches("\"tenant\"").count(), 1);
}
