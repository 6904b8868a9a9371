-- The pending mutations in `seq` order, for the relay's claims and the backlog, and for
-- no other read: migration 0015's reasoning, for the outbox. `outbox_pending` had the
-- same condition (`state = 'pending'`) as `outbox_pending_task`, so the relay's read of
-- a task's first pending mutation (in `load_envelopes`) could walk it in `seq` order
-- and filter by task: every pending mutation older than the task's read once for each
-- claimed task, which the planner picks as soon as its statistics were taken while the
-- outbox had nothing pending. Only a query that says `seq > 0` (always true) can use
-- this index, and the per-task read does not (see `store/relay/mod.rs`, "Plans").
CREATE INDEX outbox_pending_oldest ON outbox (seq) WHERE state = 'pending' AND seq > 0;
DROP INDEX outbox_pending;
