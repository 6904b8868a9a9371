-- Tasks and the transactional outbox (PostgreSQL).
CREATE TABLE tasks (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          UUID        NOT NULL UNIQUE,
    user_id     TEXT        NOT NULL,
    title       TEXT        NOT NULL,
    description TEXT,
    completed   BOOLEAN     NOT NULL DEFAULT FALSE,
    due_date    TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX tasks_user_seq ON tasks (user_id, seq);
CREATE INDEX tasks_user_completed_seq ON tasks (user_id, completed, seq);

-- One row per committed mutation, written in the same transaction as the change.
CREATE TABLE outbox (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             UUID        NOT NULL UNIQUE,
    task_id        UUID        NOT NULL,
    user_id        TEXT        NOT NULL,
    action         TEXT        NOT NULL,
    mutation       TEXT        NOT NULL,
    traceparent    TEXT,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX outbox_task_seq ON outbox (task_id, seq);
