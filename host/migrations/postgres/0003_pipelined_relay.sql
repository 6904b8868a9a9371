-- The pipelined relay (PostgreSQL): fenced leases, per-task publish queues, and
-- partial indexes so that claiming k rows costs O(k) whatever the backlog.

-- Outbox: a lease is fenced by a token; only pending rows are indexed for claims.
ALTER TABLE outbox ADD COLUMN lock_token BIGINT;
DROP INDEX outbox_state_seq;
CREATE INDEX outbox_pending ON outbox (seq) WHERE state = 'pending';
CREATE INDEX outbox_pending_task ON outbox (task_id, seq) WHERE state = 'pending';
CREATE INDEX outbox_mapped_processed ON outbox (processed_at) WHERE state = 'mapped';

-- Envelopes: scheduling moves to relay_tasks; a retried envelope remembers its first
-- failure (for RELAY_MAX_AGE) and Dapr's last error code.
DROP INDEX envelopes_state_task;
ALTER TABLE envelopes DROP COLUMN next_attempt_at;
ALTER TABLE envelopes DROP COLUMN locked_by;
ALTER TABLE envelopes DROP COLUMN locked_until;
ALTER TABLE envelopes ADD COLUMN first_failed_at TIMESTAMPTZ;
ALTER TABLE envelopes ADD COLUMN error_code TEXT;
CREATE INDEX envelopes_pending_task ON envelopes (task_id, outbox_seq, event_index) WHERE state = 'pending';
CREATE INDEX envelopes_pending_seq ON envelopes (seq) WHERE state = 'pending';
CREATE INDEX envelopes_state_seq ON envelopes (state, seq);
CREATE INDEX envelopes_task_seq ON envelopes (task_id, seq);
CREATE INDEX envelopes_finished ON envelopes (finished_at) WHERE state IN ('published', 'skipped');

-- One row per task with pending envelopes: when its head may be sent next, and the
-- relay that holds it (lease fenced by a token).
CREATE TABLE relay_tasks (
    task_id      UUID        PRIMARY KEY,
    ready_at     TIMESTAMPTZ NOT NULL,
    locked_by    TEXT,
    lock_token   BIGINT,
    locked_until TIMESTAMPTZ
);
CREATE INDEX relay_tasks_ready ON relay_tasks (ready_at);
INSERT INTO relay_tasks (task_id, ready_at)
    SELECT task_id, MIN(created_at) FROM envelopes WHERE state = 'pending' GROUP BY task_id;

CREATE INDEX dead_letters_envelope ON dead_letters (envelope_id) WHERE envelope_id IS NOT NULL;
