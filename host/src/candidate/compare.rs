//! Comparing what two mapper sets make of one mutation: event by event, field by field.
//!
//! Events are paired by mapper and position in that mapper's output (the pair an
//! envelope id is made of), so an event whose type or topic changed shows as
//! `changed` with those fields, and an event only one side emits as `added` or
//! `removed`. A field-level change is a JSON Pointer into the event as the diff shows
//! it (`/type`, `/topic`, `/subject`, `/partitionkey`, `/dataschema`,
//! `/extensions/<name>`, `/data/...`): added, removed or changed, with both values.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::mapper::{MapError, MappedEvent};

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventResult {
    /// Both sides emit it, identical.
    Same,
    /// Both sides emit it (same mapper and position) with different fields.
    Changed,
    /// Only the candidate emits it.
    Added,
    /// Only the live set emits it.
    Removed,
}

impl EventResult {
    pub const ALL: [EventResult; 4] = [Self::Same, Self::Changed, Self::Added, Self::Removed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Same => "same",
            Self::Changed => "changed",
            Self::Added => "added",
            Self::Removed => "removed",
        }
    }
}

/// What became of one mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MutationResult {
    /// Every event the same (or neither side emits any, or both fail alike: the same
    /// mapper, the same reason).
    Identical,
    /// Some event changed, appeared or vanished.
    Changed,
    /// The candidate set fails on it (and the live set does not, or otherwise).
    Failed,
}

/// How one field of an event changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldChangeKind {
    Added,
    Removed,
    Changed,
}

/// One field that differs between the live event and the candidate's.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldChange {
    /// JSON Pointer into the event (`/data/title`).
    pub path: String,
    pub change: FieldChangeKind,
    /// The live set's value (absent when added).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The candidate's value (absent when removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// One event of a mutation, compared.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EventDiff {
    pub mapper: String,
    /// Its position in the mapper's output.
    pub index: usize,
    pub result: EventResult,
    /// The candidate's type when it emits the event, the live one's otherwise.
    pub event_type: String,
    /// The candidate's topic when it emits the event, the live one's otherwise.
    pub topic: String,
    /// What differs (empty unless `changed`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// The live set's event, as compared.
    #[schema(value_type = Option<Object>)]
    pub live: Option<Value>,
    /// The candidate's event, as compared.
    #[schema(value_type = Option<Object>)]
    pub candidate: Option<Value>,
}

/// A mapper set's failure on a mutation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Failure {
    /// The mapper at fault, if one is (none: the stored mutation does not decode).
    pub mapper: Option<String>,
    pub reason: String,
}

impl Failure {
    pub fn of(e: &MapError) -> Self {
        Self {
            mapper: Some(e.mapper.clone()),
            reason: e.to_string(),
        }
    }
}

/// One mutation, compared.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Comparison {
    pub result: MutationResult,
    /// Every event either side emits, the live set's order first.
    pub events: Vec<EventDiff>,
    /// Why the candidate failed (`failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_failure: Option<Failure>,
    /// Why the live set failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_failure: Option<Failure>,
}

impl Comparison {
    /// Whether some event is not `same` or a side failed differently.
    pub fn differs(&self) -> bool {
        self.result != MutationResult::Identical
    }
}

/// Compares what the live set (`live`) and the candidate set made of one mutation.
pub fn compare(
    live: Result<&[MappedEvent], Failure>,
    candidate: Result<&[MappedEvent], Failure>,
) -> Comparison {
    let (live_events, live_failure) = split(live);
    let (candidate_events, candidate_failure) = split(candidate);
    let mut events = Vec::new();
    let mut unmatched: Vec<Option<&MappedEvent>> = candidate_events.iter().map(Some).collect();
    for before in live_events {
        let pair = unmatched
            .iter_mut()
            .find(|c| c.is_some_and(|c| c.mapper == before.mapper && c.index == before.index))
            .and_then(Option::take);
        events.push(match pair {
            Some(after) => event_pair(before, after),
            None => one_side(before, EventResult::Removed),
        });
    }
    events.extend(
        unmatched
            .into_iter()
            .flatten()
            .map(|after| one_side(after, EventResult::Added)),
    );
    let result = if candidate_failure.is_some() && candidate_failure != live_failure {
        MutationResult::Failed
    } else if candidate_failure.is_some() {
        // Both sides fail alike (a mutation the live set parked too): nothing changes.
        MutationResult::Identical
    } else if events.iter().all(|e| e.result == EventResult::Same) && live_failure.is_none() {
        MutationResult::Identical
    } else {
        MutationResult::Changed
    };
    Comparison {
        result,
        events,
        candidate_failure,
        live_failure,
    }
}

fn split(side: Result<&[MappedEvent], Failure>) -> (&[MappedEvent], Option<Failure>) {
    match side {
        Ok(events) => (events, None),
        Err(failure) => (&[], Some(failure)),
    }
}

fn event_pair(before: &MappedEvent, after: &MappedEvent) -> EventDiff {
    let (live, candidate) = (event_json(before), event_json(after));
    let mut changes = Vec::new();
    diff_values("", &live, &candidate, &mut changes);
    EventDiff {
        mapper: after.mapper.clone(),
        index: after.index,
        result: if changes.is_empty() {
            EventResult::Same
        } else {
            EventResult::Changed
        },
        event_type: after.event_type.clone(),
        topic: after.topic.clone(),
        changes,
        live: Some(live),
        candidate: Some(candidate),
    }
}

fn one_side(event: &MappedEvent, result: EventResult) -> EventDiff {
    let json = Some(event_json(event));
    let (live, candidate) = match result {
        EventResult::Added => (None, json),
        _ => (json, None),
    };
    EventDiff {
        mapper: event.mapper.clone(),
        index: event.index,
        result,
        event_type: event.event_type.clone(),
        topic: event.topic.clone(),
        changes: Vec::new(),
        live,
        candidate,
    }
}

/// An event as the diff shows and compares it: what the mapper decided, in the
/// envelope's attribute names (the id and time follow from the mutation).
pub fn event_json(event: &MappedEvent) -> Value {
    let mut map = Map::new();
    map.insert("type".into(), event.event_type.clone().into());
    map.insert("topic".into(), event.topic.clone().into());
    if let Some(subject) = &event.subject {
        map.insert("subject".into(), subject.clone().into());
    }
    if let Some(key) = &event.partition_key {
        map.insert("partitionkey".into(), key.clone().into());
    }
    if let Some(schema) = &event.data_schema {
        map.insert("dataschema".into(), schema.clone().into());
    }
    if !event.extensions.is_empty() {
        let extensions: Map<String, Value> = event
            .extensions
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        map.insert("extensions".into(), extensions.into());
    }
    map.insert("data".into(), event.data.clone());
    Value::Object(map)
}

/// Appends the differences from `before` to `after` under `path`: objects key by key,
/// arrays position by position, anything else as a whole.
fn diff_values(path: &str, before: &Value, after: &Value, out: &mut Vec<FieldChange>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let child = format!("{path}/{}", escape(key));
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff_values(&child, x, y, out),
                    (Some(x), None) => out.push(removed(child, x)),
                    (None, Some(y)) => out.push(added(child, y)),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let child = format!("{path}/{i}");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => diff_values(&child, x, y, out),
                    (Some(x), None) => out.push(removed(child, x)),
                    (None, Some(y)) => out.push(added(child, y)),
                    (None, None) => {}
                }
            }
        }
        _ if before == after => {}
        _ => out.push(FieldChange {
            path: path.to_owned(),
            change: FieldChangeKind::Changed,
            before: Some(before.clone()),
            after: Some(after.clone()),
        }),
    }
}

fn added(path: String, value: &Value) -> FieldChange {
    FieldChange {
        path,
        change: FieldChangeKind::Added,
        before: None,
        after: Some(value.clone()),
    }
}

fn removed(path: String, value: &Value) -> FieldChange {
    FieldChange {
        path,
        change: FieldChangeKind::Removed,
        before: Some(value.clone()),
        after: None,
    }
}

/// A JSON Pointer reference token (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Counts of events by result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventCounts {
    pub same: u64,
    pub changed: u64,
    pub added: u64,
    pub removed: u64,
}

impl EventCounts {
    pub fn add(&mut self, result: EventResult) {
        *match result {
            EventResult::Same => &mut self.same,
            EventResult::Changed => &mut self.changed,
            EventResult::Added => &mut self.added,
            EventResult::Removed => &mut self.removed,
        } += 1;
    }

    /// Events that are not the same.
    pub fn differing(&self) -> u64 {
        self.changed + self.added + self.removed
    }
}

/// The events of one mapper and type, counted by result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TypeCounts {
    pub mapper: String,
    pub event_type: String,
    #[serde(flatten)]
    pub counts: EventCounts,
}

/// Failures of one mapper with one reason, counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FailureCount {
    pub mapper: Option<String>,
    pub reason: String,
    pub count: u64,
}

/// Running totals over many comparisons: the summary a history diff or a shadow run
/// reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tally {
    /// Mutations compared.
    pub mutations: u64,
    pub identical: u64,
    pub changed: u64,
    /// Mutations the candidate set failed on.
    pub failed: u64,
    /// Mutations the live set failed on (the candidate may or may not).
    pub live_failed: u64,
    /// Events by result, over every mutation.
    pub events: EventCounts,
    /// Events by mapper and type (the candidate's type when it emits the event).
    pub by_type: Vec<TypeCounts>,
    /// The candidate's failures by mapper and reason, the most frequent first.
    pub failures: Vec<FailureCount>,
    /// The fields that changed, by mapper, event type and path, the most frequent first:
    /// what a candidate changes at a glance (a new version changes `/dataschema` on every
    /// event with a schema; a renamed field shows as a removal and an addition).
    pub paths: Vec<PathCount>,
}

/// How often one field of one event type changed one way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PathCount {
    pub mapper: String,
    pub event_type: String,
    pub path: String,
    pub change: FieldChangeKind,
    pub count: u64,
}

/// Most distinct failure reasons a tally keeps (the rest count under the last).
const MAX_FAILURE_REASONS: usize = 50;
/// Most distinct changed fields a tally keeps (array positions and map keys can make
/// many; past it, new ones are not counted).
const MAX_PATHS: usize = 200;

impl Tally {
    /// Counts `c`.
    pub fn add(&mut self, c: &Comparison) {
        self.mutations += 1;
        *match c.result {
            MutationResult::Identical => &mut self.identical,
            MutationResult::Changed => &mut self.changed,
            MutationResult::Failed => &mut self.failed,
        } += 1;
        if c.live_failure.is_some() {
            self.live_failed += 1;
        }
        for e in &c.events {
            self.events.add(e.result);
            let at = self
                .by_type
                .binary_search_by(|t| {
                    (t.mapper.as_str(), t.event_type.as_str())
                        .cmp(&(e.mapper.as_str(), e.event_type.as_str()))
                })
                .unwrap_or_else(|at| {
                    self.by_type.insert(
                        at,
                        TypeCounts {
                            mapper: e.mapper.clone(),
                            event_type: e.event_type.clone(),
                            counts: EventCounts::default(),
                        },
                    );
                    at
                });
            self.by_type[at].counts.add(e.result);
            for change in &e.changes {
                self.count_path(e, change);
            }
        }
        if let Some(f) = &c.candidate_failure {
            let reasons = self.failures.len();
            match self
                .failures
                .iter_mut()
                .find(|x| x.mapper == f.mapper && x.reason == f.reason)
            {
                Some(x) => x.count += 1,
                None if reasons < MAX_FAILURE_REASONS => self.failures.push(FailureCount {
                    mapper: f.mapper.clone(),
                    reason: f.reason.clone(),
                    count: 1,
                }),
                None => {
                    if let Some(last) = self.failures.last_mut() {
                        last.count += 1;
                    }
                }
            }
            self.failures.sort_by_key(|f| std::cmp::Reverse(f.count));
        }
    }

    fn count_path(&mut self, e: &EventDiff, change: &FieldChange) {
        let same = |p: &PathCount| {
            p.path == change.path
                && p.change == change.change
                && p.event_type == e.event_type
                && p.mapper == e.mapper
        };
        if let Some(at) = self.paths.iter().position(same) {
            self.paths[at].count += 1;
            // Keep the most frequent first: move it up past those it now outnumbers.
            let mut i = at;
            while i > 0 && self.paths[i - 1].count < self.paths[i].count {
                self.paths.swap(i - 1, i);
                i -= 1;
            }
        } else if self.paths.len() < MAX_PATHS {
            self.paths.push(PathCount {
                mapper: e.mapper.clone(),
                event_type: e.event_type.clone(),
                path: change.path.clone(),
                change: change.change,
                count: 1,
            });
        }
    }

    /// Whether every mutation compared identical.
    pub fn identical(&self) -> bool {
        self.changed == 0 && self.failed == 0
    }
}

/// The first few comparisons of each kind (changed, added, removed, failed), as a diff
/// shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Samples {
    /// Mutations with a changed event.
    pub changed: Vec<Sample>,
    /// Mutations with an event only the candidate emits.
    pub added: Vec<Sample>,
    /// Mutations with an event only the live set emits.
    pub removed: Vec<Sample>,
    /// Mutations the candidate fails on.
    pub failed: Vec<Sample>,
}

/// One mutation compared, and which it was.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Sample {
    pub mutation_id: uuid::Uuid,
    pub task_id: uuid::Uuid,
    pub action: String,
    /// When the mutation was committed (RFC 3339 UTC).
    pub at: String,
    #[serde(flatten)]
    pub comparison: Comparison,
}

impl Samples {
    /// Keeps `sample` in each kind it shows that has fewer than `per_kind` samples.
    /// With `newest`, a full kind drops its oldest sample for it instead (a shadow run
    /// keeps the latest divergence).
    pub fn offer(&mut self, sample: &Sample, per_kind: usize, newest: bool) {
        let c = &sample.comparison;
        let has = |r: EventResult| c.events.iter().any(|e| e.result == r);
        let kinds: [(bool, &mut Vec<Sample>); 4] = [
            (has(EventResult::Changed), &mut self.changed),
            (has(EventResult::Added), &mut self.added),
            (has(EventResult::Removed), &mut self.removed),
            (c.result == MutationResult::Failed, &mut self.failed),
        ];
        for (shows, kept) in kinds {
            if !shows {
                continue;
            }
            if kept.len() < per_kind {
                kept.push(sample.clone());
            } else if newest && per_kind > 0 {
                kept.remove(0);
                kept.push(sample.clone());
            }
        }
    }
}

/// Groups `by_type` counts by mapper, for a short summary line per mapper.
pub fn by_mapper(by_type: &[TypeCounts]) -> BTreeMap<&str, EventCounts> {
    let mut out: BTreeMap<&str, EventCounts> = BTreeMap::new();
    for t in by_type {
        let c = out.entry(t.mapper.as_str()).or_default();
        c.same += t.counts.same;
        c.changed += t.counts.changed;
        c.added += t.counts.added;
        c.removed += t.counts.removed;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(mapper: &str, index: usize, ty: &str, data: Value) -> MappedEvent {
        MappedEvent {
            mapper: mapper.into(),
            mapper_version: "1".into(),
            index,
            topic: "tasks".into(),
            event_type: ty.into(),
            subject: Some("s".into()),
            data,
            data_schema: None,
            extensions: vec![],
            partition_key: None,
        }
    }

    #[test]
    fn a_renamed_field_is_one_removal_and_one_addition_and_nothing_else() {
        let live = [event("d", 0, "t.v1", json!({"title": "a", "n": [1, 2]}))];
        let cand = [event("d", 0, "t.v1", json!({"name": "a", "n": [1, 2]}))];
        let c = compare(Ok(&live), Ok(&cand));
        assert_eq!(c.result, MutationResult::Changed);
        assert_eq!(c.events.len(), 1);
        let paths: Vec<_> = c.events[0]
            .changes
            .iter()
            .map(|f| (f.path.as_str(), f.change))
            .collect();
        assert_eq!(
            paths,
            [
                ("/data/name", FieldChangeKind::Added),
                ("/data/title", FieldChangeKind::Removed)
            ]
        );
    }

    #[test]
    fn events_pair_by_mapper_and_position() {
        let live = [
            event("a", 0, "x", json!(1)),
            event("b", 0, "y", json!(1)),
            event("b", 1, "z", json!(1)),
        ];
        let cand = [
            event("a", 0, "x2", json!(1)),
            event("b", 0, "y", json!(1)),
            event("c", 0, "w", json!(1)),
        ];
        let c = compare(Ok(&live), Ok(&cand));
        let results: Vec<_> = c
            .events
            .iter()
            .map(|e| (e.mapper.as_str(), e.index, e.result))
            .collect();
        assert_eq!(
            results,
            [
                ("a", 0, EventResult::Changed),
                ("b", 0, EventResult::Same),
                ("b", 1, EventResult::Removed),
                ("c", 0, EventResult::Added),
            ]
        );
        assert_eq!(c.events[0].changes[0].path, "/type");
        let mut tally = Tally::default();
        tally.add(&c);
        assert_eq!(
            tally.events,
            EventCounts {
                same: 1,
                changed: 1,
                added: 1,
                removed: 1
            }
        );
        assert_eq!(tally.by_type.len(), 4);
        assert_eq!(tally.paths.len(), 1);
        assert_eq!(
            (tally.paths[0].path.as_str(), tally.paths[0].count),
            ("/type", 1)
        );
    }

    #[test]
    fn a_candidate_failure_fails_the_mutation_and_counts_by_reason() {
        let live = [event("a", 0, "x", json!(1))];
        let failure = Failure {
            mapper: Some("a".into()),
            reason: "trap".into(),
        };
        let c = compare(Ok(&live), Err(failure));
        assert_eq!(c.result, MutationResult::Failed);
        assert_eq!(c.events[0].result, EventResult::Removed);
        let mut tally = Tally::default();
        tally.add(&c);
        tally.add(&c);
        assert_eq!(tally.failed, 2);
        assert_eq!(tally.failures[0].count, 2);
        assert!(!tally.identical());
    }

    #[test]
    fn both_sides_failing_alike_is_no_difference() {
        let failure = || Failure {
            mapper: Some("a".into()),
            reason: "refused".into(),
        };
        let c = compare(Err(failure()), Err(failure()));
        assert_eq!(c.result, MutationResult::Identical);
        let other = Failure {
            reason: "trap".into(),
            ..failure()
        };
        assert_eq!(
            compare(Err(failure()), Err(other)).result,
            MutationResult::Failed
        );
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        let live = [event("a", 0, "x", json!({"a/b": 1, "c~d": 1}))];
        let cand = [event("a", 0, "x", json!({"a/b": 2, "c~d": 2}))];
        let c = compare(Ok(&live), Ok(&cand));
        let paths: Vec<_> = c.events[0].changes.iter().map(|f| f.path.clone()).collect();
        assert_eq!(paths, ["/data/a~1b", "/data/c~0d"]);
    }
}
