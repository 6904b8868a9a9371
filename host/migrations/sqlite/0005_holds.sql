-- Holds (RELAY_ON_POISON=hold): an event that could not be mapped or published holds its
-- task on its topic; the task's later events on that topic wait until the operator
-- replays or skips the held one, so a consumer of the topic never sees them out of order.
CREATE TABLE relay_holds (
    dead_letter_id BLOB    NOT NULL,
    task_id        BLOB    NOT NULL,
    topic          TEXT    NOT NULL,
    -- The held event's place in the task's order; the task's envelopes on this topic
    -- after it wait. event_index -1: a mutation that could not be mapped (all its events
    -- and every later one wait).
    outbox_seq     INTEGER NOT NULL,
    event_index    INTEGER NOT NULL,
    created_at     TEXT    NOT NULL,
    PRIMARY KEY (dead_letter_id, topic)
);
CREATE INDEX relay_holds_task_topic ON relay_holds (task_id, topic, outbox_seq, event_index);
CREATE INDEX relay_holds_created ON relay_holds (created_at);

-- Dead letters say which task (and, for a publish, which topic and type) they hold, how
-- they were resolved and by whom, and which earlier letter a failed replay replaced.
ALTER TABLE dead_letters ADD COLUMN task_id BLOB;
ALTER TABLE dead_letters ADD COLUMN topic TEXT;
ALTER TABLE dead_letters ADD COLUMN event_type TEXT;
ALTER TABLE dead_letters ADD COLUMN resolution TEXT;      -- replayed | skipped
ALTER TABLE dead_letters ADD COLUMN resolved_by TEXT;
ALTER TABLE dead_letters ADD COLUMN resolution_note TEXT;
ALTER TABLE dead_letters ADD COLUMN replaces BLOB;
UPDATE dead_letters SET task_id = (SELECT o.task_id FROM outbox o WHERE o.id = dead_letters.mutation_id);
UPDATE dead_letters SET topic = (SELECT e.topic FROM envelopes e WHERE e.id = dead_letters.envelope_id),
    event_type = (SELECT e.event_type FROM envelopes e WHERE e.id = dead_letters.envelope_id);
UPDATE dead_letters SET resolution = 'replayed' WHERE resolved_at IS NOT NULL;
CREATE INDEX dead_letters_task ON dead_letters (task_id);

-- A replay starts an envelope's attempts again; the lifetime count stays for the record,
-- with the letter the replay resolved (so a new refusal links back to it).
ALTER TABLE envelopes ADD COLUMN total_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE envelopes ADD COLUMN replayed_letter BLOB;
UPDATE envelopes SET total_attempts = attempts;
