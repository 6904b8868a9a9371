//! What a Kafka consumer must have read, computed from what the host stored (its outbox in
//! commit order and the envelopes it built), and the assertion that it did: every event
//! once after de-duplication by id, keyed by its task, in its task's partition, in mutation
//! order per topic, with the value and headers Dapr's Kafka component writes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use pakaura_host::events::envelope_id;
use pakaura_host::store::{Db, EnvelopeFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use super::ConsumedRecord;

/// Partitions of each topic (`Broker` makes them so).
const PARTITIONS: u32 = 3;
/// Most events one mutation may yield (`MAPPER_MAX_EVENTS`' default).
const MAX_EVENTS: usize = 64;

/// (topic, task id): where one task's events go.
type Slot = (String, String);
/// Where an event stands among its task's: the commit position of its mutation, then its
/// index among the mutation's events.
type Place = (i64, usize);

/// The events a consumer must read.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// (topic, task id) -> envelope ids, in the order they must be read.
    pub order: BTreeMap<Slot, Vec<String>>,
    /// Envelope id -> the CloudEvent the host built.
    pub envelopes: HashMap<String, Value>,
}

impl Expected {
    /// Every envelope the host stored, ordered per task and topic by the commit order of its
    /// mutation, then by its index among the mutation's events (one mapper in these tests).
    pub async fn from_store(db: &Db) -> Self {
        let position: HashMap<Uuid, i64> = db
            .outbox_rows(None)
            .await
            .expect("outbox rows")
            .into_iter()
            .map(|row| (row.id, row.seq))
            .collect();
        let filter = EnvelopeFilter {
            limit: 1_000_000,
            ..Default::default()
        };
        let mut sorted: BTreeMap<Slot, Vec<(Place, String)>> = BTreeMap::new();
        let mut envelopes = HashMap::new();
        for record in db.recent_envelopes(&filter).await.expect("envelopes") {
            let index = (0..MAX_EVENTS)
                .find(|i| {
                    envelope_id(record.mutation_id, &record.mapper, *i).to_string() == record.id
                })
                .unwrap_or_else(|| panic!("envelope {} has no index", record.id));
            let seq = position[&record.mutation_id];
            sorted
                .entry((record.topic.clone(), record.task_id.to_string()))
                .or_default()
                .push(((seq, index), record.id.clone()));
            envelopes.insert(
                record.id,
                serde_json::from_str(&record.body).expect("JSON body"),
            );
        }
        let order = sorted
            .into_iter()
            .map(|(key, mut ids)| {
                ids.sort();
                (key, ids.into_iter().map(|(_, id)| id).collect())
            })
            .collect();
        Self { order, envelopes }
    }

    /// How many events.
    pub fn len(&self) -> usize {
        self.envelopes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.envelopes.is_empty()
    }

    /// The event types of `task` on `topic`, in order.
    pub fn types(&self, topic: &str, task: &str) -> Vec<String> {
        self.order
            .get(&(topic.to_owned(), task.to_owned()))
            .map(|ids| {
                ids.iter()
                    .map(|id| self.envelopes[id]["type"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Moves `ids`, in this order, to the end of their task's sequence on their topic: where
    /// a replayed event is read today.
    pub fn replayed_last(&mut self, ids: &[String]) {
        for id in ids {
            let sequence = self
                .order
                .values_mut()
                .find(|ids| ids.contains(id))
                .unwrap_or_else(|| panic!("replayed {id} is not expected"));
            sequence.retain(|other| other != id);
            sequence.push(id.clone());
        }
    }
}

/// Sarama's hash partitioner, which Dapr's Kafka component uses for a keyed record: FNV-1a
/// 32 of the key as an int32, Go's remainder, made positive.
pub fn sarama_partition(key: &str, partitions: u32) -> i32 {
    let hash = key.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let signed = i64::from(hash.cast_signed());
    i32::try_from(signed.abs() % i64::from(partitions)).unwrap()
}

/// What the consumers read, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub records: usize,
    /// Distinct events (CloudEvents ids).
    pub events: usize,
    /// Records of an event read before.
    pub duplicates: usize,
    /// Records the consumer recipe called `late` (a replayed event).
    pub late: usize,
}

/// Asserts that `runs` (the records of one consumer after another, e.g. before and after a
/// broker restart) hold every expected event, and only those, each first read in its
/// place; and that the consumer recipe judged each record right (`duplicate`, `late`).
pub fn assert_delivered(runs: &[Vec<ConsumedRecord>], expected: &Expected) -> Delivered {
    let mut first_reads: BTreeMap<Slot, Vec<String>> = BTreeMap::new();
    let mut read = BTreeSet::new();
    for run in runs {
        let ids: Vec<String> = run.iter().map(|r| assert_record(r, expected)).collect();
        assert_verdicts(run, expected);
        for (record, id) in run.iter().zip(ids) {
            if read.insert(id.clone()) {
                let task = record.key.clone().unwrap_or_default();
                first_reads
                    .entry((record.topic.clone(), task))
                    .or_default()
                    .push(id);
            }
        }
    }
    let missing: Vec<&String> = expected
        .envelopes
        .keys()
        .filter(|id| !read.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} events never reached Kafka: {missing:?}",
        missing.len()
    );
    for (key, order) in &expected.order {
        let got = first_reads.get(key).cloned().unwrap_or_default();
        let types = |ids: &[String]| -> Vec<String> {
            ids.iter()
                .map(|id| {
                    format!(
                        "{} {id}",
                        expected.envelopes[id]["type"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        };
        assert_eq!(
            types(&got),
            types(order),
            "events of task {} on {} out of order",
            key.1,
            key.0
        );
    }
    let all = runs.iter().flatten();
    let records = all.clone().count();
    Delivered {
        records,
        events: read.len(),
        duplicates: records - read.len(),
        late: all.filter(|r| r.verdict == "late").count(),
    }
}

/// One record: a known event on its topic, keyed by its task, in the key's partition, with
/// the `partitionKey` header and the host's CloudEvent as Dapr passes it on. Its id.
fn assert_record(record: &ConsumedRecord, expected: &Expected) -> String {
    let event = record.event();
    let id = event["id"].as_str().unwrap_or_default().to_owned();
    let built = expected
        .envelopes
        .get(&id)
        .unwrap_or_else(|| panic!("an event the host never built: {}", record.value));
    let task = built["subject"].as_str().expect("a subject");
    let key = record
        .key
        .as_deref()
        .unwrap_or_else(|| panic!("no key: {record:?}"));
    assert_eq!(key, task, "the record key is the task id");
    assert!(
        expected
            .order
            .contains_key(&(record.topic.clone(), task.to_owned())),
        "{id} on the wrong topic {}",
        record.topic
    );
    assert_eq!(
        record.partition,
        sarama_partition(key, PARTITIONS),
        "{id}: partition of its key"
    );
    assert_eq!(
        record.headers,
        [("partitionKey".to_owned(), key.to_owned())],
        "{id}: headers"
    );
    // What Dapr adds to a structured CloudEvent that has a `traceid` (contrib:
    // pubsub/envelope.go FromCloudEvent); nothing else changes.
    let mut passed_on = built.clone();
    let object = passed_on.as_object_mut().unwrap();
    object.insert("topic".into(), json!(record.topic));
    object.insert("pubsubname".into(), json!("pubsub-kafka"));
    object.insert("tracestate".into(), json!(""));
    assert_eq!(event, passed_on, "{id}: the value is the host's CloudEvent");
    id
}

/// The recipe's verdicts in one run: `duplicate` for an id read before in that run, else
/// `late` for a `time` older than the newest of the same key and topic, else `new`.
fn assert_verdicts(run: &[ConsumedRecord], expected: &Expected) {
    let mut seen = BTreeSet::new();
    let mut newest: HashMap<Slot, chrono::DateTime<chrono::Utc>> = HashMap::new();
    for record in run {
        let id = record.id();
        let time = expected.envelopes[&id]["time"].as_str().unwrap();
        let time: chrono::DateTime<chrono::Utc> = time.parse().expect("an RFC 3339 time");
        let slot = (record.topic.clone(), record.key.clone().unwrap_or_default());
        let verdict = if !seen.insert(id.clone()) {
            "duplicate"
        } else if newest.get(&slot).is_some_and(|n| time < *n) {
            "late"
        } else {
            newest.insert(slot, time);
            "new"
        };
        assert_eq!(
            record.verdict, verdict,
            "the recipe's verdict on {id} at {}@{}",
            record.topic, record.offset
        );
    }
}
