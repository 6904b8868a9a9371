-- Relay state: outbox processing, envelopes to publish, dead letters (SQLite).
ALTER TABLE outbox ADD COLUMN state TEXT NOT NULL DEFAULT 'pending';   -- pending | mapped | dead
ALTER TABLE outbox ADD COLUMN locked_by TEXT;
ALTER TABLE outbox ADD COLUMN locked_until TEXT;
ALTER TABLE outbox ADD COLUMN processed_at TEXT;
CREATE INDEX outbox_state_seq ON outbox (state, seq);

CREATE TABLE envelopes (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,     -- the CloudEvents id, deterministic per (mutation, event)
    mutation_id     BLOB    NOT NULL,
    outbox_seq      INTEGER NOT NULL,
    event_index     INTEGER NOT NULL,
    task_id         BLOB    NOT NULL,
    user_id         TEXT    NOT NULL,
    mapper          TEXT    NOT NULL,
    topic           TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    partition_key   TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    traceparent     TEXT,
    correlation_id  TEXT    NOT NULL,
    state           TEXT    NOT NULL,            -- pending | published | skipped | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    locked_by       TEXT,
    locked_until    TEXT,
    last_error      TEXT,
    dapr_status     INTEGER,
    created_at      TEXT    NOT NULL,
    finished_at     TEXT
);
CREATE INDEX envelopes_state_task ON envelopes (state, task_id, outbox_seq, event_index);
CREATE INDEX envelopes_mutation ON envelopes (mutation_id);

CREATE TABLE dead_letters (
    id           BLOB    PRIMARY KEY,
    mutation_id  BLOB    NOT NULL,
    kind         TEXT    NOT NULL,               -- mapping | publish
    mapper       TEXT,
    envelope_id  TEXT,
    reason       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    created_at   TEXT    NOT NULL,
    resolved_at  TEXT
);
CREATE INDEX dead_letters_open ON dead_letters (resolved_at, created_at);
