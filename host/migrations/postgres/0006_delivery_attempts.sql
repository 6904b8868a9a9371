-- Delivery history: every failed publish attempt of an envelope (a retry, or the one that
-- parked it), with the publisher's status and code and the relay that made it. A
-- successful attempt is the envelope row itself (finished_at, delivery_status,
-- published_by); dead letters and their replays are in dead_letters.
CREATE TABLE delivery_attempts (
    envelope_id TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,   -- the envelope's lifetime attempt number
    at          TIMESTAMPTZ NOT NULL,
    outcome     TEXT    NOT NULL,   -- retry | parked
    status      INTEGER,
    code        TEXT,
    error       TEXT    NOT NULL,
    relay       TEXT    NOT NULL
);
CREATE INDEX delivery_attempts_envelope ON delivery_attempts (envelope_id, attempt);

ALTER TABLE envelopes ADD COLUMN published_by TEXT;
